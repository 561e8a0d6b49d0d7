/* authz/record.c — directory records shared by the store and the read-only directory
 * (record.h). */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

int az_rec_id_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= AZ_ID_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

size_t az_rec_join(char *out, size_t outsz, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 2 > outsz) { /* never for valid ids (record.h): an empty key finds nothing */
        if (outsz)
            out[0] = '\0';
        return 0;
    }
    memcpy(out, a, la);
    out[la] = '|';
    memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '\0';
    return la + 1 + lb;
}

pl_rc az_rec_mdb(int e)
{
    switch (e) {
    case 0:
        return PL_OK;
    case MDB_NOTFOUND:
        return PL_ERR_NOT_FOUND;
    case MDB_KEYEXIST:
        return PL_ERR_EXISTS;
    case MDB_MAP_FULL:
        return PL_ERR_LIMIT;
    default:
        return PL_ERR_STORE;
    }
}

pl_rc az_rec_scan_user(MDB_txn *t, MDB_dbi db, const char *uid, az_rec_scan_fn fn, void *arg)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    char prefix[AZ_ID_MAX + 2];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%s|", uid);
    int e;
    if (mdb_cursor_open(t, db, &c) != 0)
        return PL_ERR_STORE;
    k.mv_data = prefix;
    k.mv_size = plen;
    for (e = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); e == 0;
         e = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen) != 0 || !fn(arg, &k, &v))
            break;
    }
    mdb_cursor_close(c);
    return e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE;
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

static void copy_role(char role[16], const MDB_val *v)
{
    size_t n = v->mv_size < 15 ? v->mv_size : 15;
    memcpy(role, v->mv_data, n);
    role[n] = '\0';
}

/* Fills ws from a workspaces record: JSON {"id","name","plan","created_ms"}. */
static pl_rc parse_ws(const MDB_val *v, az_dir_workspace *ws)
{
    json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    if (!o)
        return PL_ERR_STORE;
    copy_str(ws->id, sizeof ws->id, json_string_value(json_object_get(o, "id")));
    copy_str(ws->name, sizeof ws->name, json_string_value(json_object_get(o, "name")));
    copy_str(ws->plan, sizeof ws->plan, json_string_value(json_object_get(o, "plan")));
    json_decref(o);
    return PL_OK;
}

pl_rc az_rec_workspace_get(MDB_txn *t, MDB_dbi workspaces, const char *ws_id, az_dir_workspace *out)
{
    MDB_val k = {strlen(ws_id), (void *)ws_id}, v;
    pl_rc rc = az_rec_mdb(mdb_get(t, workspaces, &k, &v));
    if (rc == PL_OK && out)
        rc = parse_ws(&v, out);
    return rc;
}

pl_rc az_rec_member_role(MDB_txn *t, MDB_dbi members, const char *uid, const char *ws_id,
                         char role[16])
{
    char key[2 * AZ_ID_MAX + 2];
    MDB_val k = {0, key}, v;
    pl_rc rc;
    k.mv_size = az_rec_join(key, sizeof key, uid, ws_id);
    rc = az_rec_mdb(mdb_get(t, members, &k, &v));
    if (rc == PL_OK)
        copy_role(role, &v);
    return rc;
}

typedef struct ws_scan {
    MDB_txn *t;
    MDB_dbi workspaces;
    size_t plen, max, *n;
    az_dir_membership *out;
    pl_rc rc;
} ws_scan;

static int ws_row(void *arg, const MDB_val *k, const MDB_val *v)
{
    ws_scan *x = arg;
    MDB_val wk = {k->mv_size - x->plen, (char *)k->mv_data + x->plen}, wv;
    if (wk.mv_size > AZ_ID_MAX || mdb_get(x->t, x->workspaces, &wk, &wv) != 0)
        return 1; /* a membership of a deleted workspace */
    if (*x->n == x->max) {
        x->rc = PL_ERR_TOO_LARGE;
        return 0;
    }
    x->rc = parse_ws(&wv, &x->out[*x->n].ws);
    if (x->rc != PL_OK)
        return 0;
    copy_role(x->out[*x->n].role, v);
    (*x->n)++;
    return 1;
}

pl_rc az_rec_user_workspaces(MDB_txn *t, MDB_dbi members, MDB_dbi workspaces, const char *uid,
                             az_dir_membership *out, size_t max, size_t *n)
{
    ws_scan x = {t, workspaces, strlen(uid) + 1, max, n, out, PL_OK};
    pl_rc rc;
    *n = 0;
    rc = az_rec_scan_user(t, members, uid, ws_row, &x);
    return rc != PL_OK ? rc : x.rc;
}

pl_rc az_rec_grant_state(MDB_txn *t, MDB_dbi grant_state, const char *gid, az_grant_state *out)
{
    MDB_val k = {strlen(gid), (void *)gid}, v;
    pl_rc rc = az_rec_mdb(mdb_get(t, grant_state, &k, &v));
    if (rc == PL_OK && v.mv_size != sizeof *out)
        rc = PL_ERR_STORE;
    if (rc == PL_OK)
        memcpy(out, v.mv_data, sizeof *out);
    return rc;
}
