#include "directory.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

struct az_directory {
    MDB_env *env;
    MDB_dbi workspaces, members, grant_state;
};

static int valid_id(const char *s)
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

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    snprintf(dst, dstsz, "%s", src ? src : "");
}

pl_rc az_directory_open(const char *data_dir, az_directory **out)
{
    pl_rc rc = PL_OK;
    az_directory *d = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k = {6, "schema"}, v;
    char path[4096];
    struct stat st;

    *out = NULL;
    if (!data_dir || snprintf(path, sizeof path, "%s/authz", data_dir) >= (int)sizeof path)
        return PL_ERR_INVALID;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return PL_ERR_NOT_FOUND;
    d = calloc(1, sizeof *d);
    if (!d)
        return PL_ERR_NOMEM;
    if (mdb_env_create(&d->env) != 0 || mdb_env_set_maxdbs(d->env, 32) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (mdb_env_open(d->env, path, MDB_RDONLY | MDB_NOTLS, 0600) != 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if (mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (mdb_dbi_open(txn, "meta", 0, &meta) != 0 || mdb_get(txn, meta, &k, &v) != 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if (v.mv_size != 1 || memcmp(v.mv_data, "1", 1) != 0) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (mdb_dbi_open(txn, "workspaces", 0, &d->workspaces) != 0 ||
        mdb_dbi_open(txn, "members", 0, &d->members) != 0 ||
        mdb_dbi_open(txn, "grant_state", 0, &d->grant_state) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    /* Committing a read transaction keeps the dbi handles for the environment's life. */
    rc = mdb_txn_commit(txn) == 0 ? PL_OK : PL_ERR_STORE;
    txn = NULL;
    if (rc != PL_OK)
        goto out;
    *out = d;
    d = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    az_directory_free(d);
    return rc;
}

void az_directory_free(az_directory *d)
{
    if (!d)
        return;
    if (d->env)
        mdb_env_close(d->env);
    free(d);
}

static pl_rc rtxn(az_directory *d, MDB_txn **txn)
{
    int e = mdb_txn_begin(d->env, NULL, MDB_RDONLY, txn);
    if (e == MDB_MAP_RESIZED) {
        /* The writer grew the map: adopt the new size and retry once. */
        if (mdb_env_set_mapsize(d->env, 0) == 0)
            e = mdb_txn_begin(d->env, NULL, MDB_RDONLY, txn);
    }
    return e == 0 ? PL_OK : PL_ERR_STORE;
}

/* Fills ws from a workspaces record. */
static pl_rc parse_ws(const MDB_val *v, az_dir_workspace *ws)
{
    json_error_t je;
    json_t *o = json_loadb(v->mv_data, v->mv_size, 0, &je);
    if (!o)
        return PL_ERR_STORE;
    copy_str(ws->id, sizeof ws->id, json_string_value(json_object_get(o, "id")));
    copy_str(ws->name, sizeof ws->name, json_string_value(json_object_get(o, "name")));
    copy_str(ws->plan, sizeof ws->plan, json_string_value(json_object_get(o, "plan")));
    json_decref(o);
    return PL_OK;
}

pl_rc az_directory_workspace_get(az_directory *d, const char *ws_id, az_dir_workspace *out)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    pl_rc rc;
    if (!valid_id(ws_id))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    k.mv_data = (void *)ws_id;
    k.mv_size = strlen(ws_id);
    switch (mdb_get(txn, d->workspaces, &k, &v)) {
    case 0:
        rc = out ? parse_ws(&v, out) : PL_OK;
        break;
    case MDB_NOTFOUND:
        rc = PL_ERR_NOT_FOUND;
        break;
    default:
        rc = PL_ERR_STORE;
    }
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_user_workspaces(az_directory *d, const char *uid, az_dir_membership *out,
                                   size_t max, size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    pl_rc rc;
    char prefix[AZ_ID_MAX + 2];
    size_t plen;
    int e;
    *n = 0;
    if (!valid_id(uid))
        return PL_OK;
    plen = (size_t)snprintf(prefix, sizeof prefix, "%s|", uid);
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    if (mdb_cursor_open(txn, d->members, &cur) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    k.mv_data = prefix;
    k.mv_size = plen;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0;
         e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char ws_id[AZ_ID_MAX + 1];
        MDB_val wk, wv;
        if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (k.mv_size - plen > AZ_ID_MAX)
            continue;
        memcpy(ws_id, (char *)k.mv_data + plen, k.mv_size - plen);
        ws_id[k.mv_size - plen] = '\0';
        wk.mv_data = ws_id;
        wk.mv_size = k.mv_size - plen;
        if (mdb_get(txn, d->workspaces, &wk, &wv) != 0)
            continue; /* a membership of a deleted workspace */
        if (*n == max) {
            rc = PL_ERR_TOO_LARGE;
            goto out;
        }
        rc = parse_ws(&wv, &out[*n].ws);
        if (rc != PL_OK)
            goto out;
        snprintf(out[*n].role, sizeof out[*n].role, "%.*s", (int)(v.mv_size < 15 ? v.mv_size : 15),
                 (const char *)v.mv_data);
        (*n)++;
    }
    if (e != 0 && e != MDB_NOTFOUND)
        rc = PL_ERR_STORE;
out:
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_member_role(az_directory *d, const char *uid, const char *ws_id, char role[16])
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    pl_rc rc;
    char key[2 * AZ_ID_MAX + 2];
    if (!valid_id(uid) || !valid_id(ws_id))
        return PL_ERR_NOT_FOUND;
    k.mv_size = (size_t)snprintf(key, sizeof key, "%s|%s", uid, ws_id);
    k.mv_data = key;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    switch (mdb_get(txn, d->members, &k, &v)) {
    case 0:
        snprintf(role, 16, "%.*s", (int)(v.mv_size < 15 ? v.mv_size : 15), (const char *)v.mv_data);
        break;
    case MDB_NOTFOUND:
        rc = PL_ERR_NOT_FOUND;
        break;
    default:
        rc = PL_ERR_STORE;
    }
    mdb_txn_abort(txn);
    return rc;
}

pl_rc az_directory_grant_check(az_directory *d, const char *gid)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    pl_rc rc;
    az_grant_state gs;
    if (!valid_id(gid))
        return PL_ERR_DENIED;
    rc = rtxn(d, &txn);
    if (rc != PL_OK)
        return rc;
    k.mv_data = (void *)gid;
    k.mv_size = strlen(gid);
    switch (mdb_get(txn, d->grant_state, &k, &v)) {
    case 0:
        if (v.mv_size != sizeof gs) {
            rc = PL_ERR_STORE;
            break;
        }
        memcpy(&gs, v.mv_data, sizeof gs);
        rc = gs.revoked_ms == 0 ? PL_OK : PL_ERR_DENIED;
        break;
    case MDB_NOTFOUND:
        rc = PL_ERR_DENIED;
        break;
    default:
        rc = PL_ERR_STORE;
    }
    mdb_txn_abort(txn);
    return rc;
}
