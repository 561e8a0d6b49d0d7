#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "exec/args.h"

#define PAYLOAD_MAX 360

pl_rc ex_cursor_encode(const ex_store *st, const char *listing, const char *ws,
                       const uint8_t fhash[8], const char *last_id, char *out, size_t outsz)
{
    char payload[PAYLOAD_MAX];
    char fh[17];
    core_hex_encode(fhash, 8, fh, sizeof fh);
    int n = snprintf(payload, sizeof payload, "1|%s|%s|%s|%s", listing, ws, fh, last_id);
    if (n < 0 || (size_t)n >= sizeof payload)
        return PL_ERR_TOO_LARGE;
    uint8_t mac[CORE_SHA256_LEN];
    pl_rc rc = core_hmac_sha256(ex_store_cursor_secret(st), 32, payload, (size_t)n, mac);
    if (rc != PL_OK)
        return rc;
    size_t len = 0;
    rc = core_b64url_encode((const uint8_t *)payload, (size_t)n, out, outsz, &len);
    if (rc != PL_OK)
        return rc;
    if (len + 2 >= outsz)
        return PL_ERR_TOO_LARGE;
    out[len] = '.';
    return core_b64url_encode(mac, sizeof mac, out + len + 1, outsz - len - 1, NULL);
}

pl_rc ex_cursor_decode(const ex_store *st, const char *listing, const char *ws,
                       const uint8_t fhash[8], const char *cursor, char *last_id, size_t lastsz,
                       ex_err *err)
{
    size_t len = strlen(cursor);
    if (len > EX_CURSOR_MAX)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed (too long)");
    const char *dot = strchr(cursor, '.');
    if (!dot || strchr(dot + 1, '.'))
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed");
    char payload[PAYLOAD_MAX + 1];
    uint8_t mac[CORE_SHA256_LEN + 4];
    size_t plen = 0, mlen = 0;
    if (core_b64url_decode(cursor, (size_t)(dot - cursor), (uint8_t *)payload, sizeof payload - 1,
                           &plen) != PL_OK ||
        core_b64url_decode(dot + 1, strlen(dot + 1), mac, sizeof mac, &mlen) != PL_OK ||
        mlen != CORE_SHA256_LEN)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed");
    uint8_t want[CORE_SHA256_LEN];
    if (core_hmac_sha256(ex_store_cursor_secret(st), 32, payload, plen, want) != PL_OK)
        return ex_err_set(err, PL_ERR_INTERNAL, "cursor", "cannot be checked");
    if (!core_ct_equal(want, mac, sizeof want))
        return ex_err_set(err, PL_ERR_INVALID, "cursor",
                          "signature does not verify (edited or forged)");
    payload[plen] = '\0';
    /* Signed by us, so well-formed; still parse defensively. */
    char *parts[5] = {0};
    char *p = payload;
    for (int i = 0; i < 5; i++) {
        parts[i] = p;
        char *bar = i < 4 ? strchr(p, '|') : NULL;
        if (i < 4 && !bar)
            return ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed");
        if (bar) {
            *bar = '\0';
            p = bar + 1;
        }
    }
    if (strcmp(parts[0], "1") != 0)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "unsupported version");
    if (strcmp(parts[1], listing) != 0)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "belongs to another listing (%s)",
                          parts[1]);
    if (strcmp(parts[2], ws) != 0)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "belongs to another workspace");
    char fh[17];
    core_hex_encode(fhash, 8, fh, sizeof fh);
    if (strcmp(parts[3], fh) != 0)
        return ex_err_set(err, PL_ERR_INVALID, "cursor",
                          "was issued for other filters; start again without a cursor");
    if (strlen(parts[4]) >= lastsz)
        return ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed");
    memcpy(last_id, parts[4], strlen(parts[4]) + 1);
    return PL_OK;
}

pl_rc ex_list_run(const ex_ctx *ctx, const char *ws, const ex_listing *l, const json_t *args,
                  json_t **out, ex_err *err)
{
    pl_rc rc = PL_OK;
    ex_txn txn = {0};
    MDB_cursor *cur = NULL;
    json_t *items = NULL, *filters = NULL;
    *out = NULL;
    int64_t limit = EX_LIST_DEFAULT_PAGE;
    rc = ex_arg_int(args, "limit", EX_ARG_OPTIONAL, 1, (int64_t)ctx->limits.page_max, &limit, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    const char *cursor = NULL;
    rc = ex_arg_str(args, "cursor", EX_ARG_OPTIONAL, EX_CURSOR_MAX, &cursor, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc == PL_ERR_TOO_LARGE
                   ? ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed (too long)")
                   : rc;

    if (!ex_ws_valid(ws))
        return ex_err_set(err, PL_ERR_INVALID, "workspace", "not a valid workspace id");
    filters = args ? json_deep_copy(args) : json_object();
    if (!filters)
        return PL_ERR_NOMEM;
    json_object_del(filters, "limit");
    json_object_del(filters, "cursor");
    uint8_t h[32];
    rc = ex_json_hash(filters, NULL, h);
    if (rc != PL_OK)
        goto out;

    char prefix[EX_KEY_MAX + 2];
    int plen = snprintf(prefix, sizeof prefix, "%s|%s|", ws, l->scan_kind);
    if (plen < 0 || (size_t)plen >= sizeof prefix) {
        rc = ex_err_set(err, PL_ERR_INVALID, "workspace", "id too long");
        goto out;
    }
    char start[EX_KEY_MAX + 2];
    snprintf(start, sizeof start, "%s", prefix);
    if (cursor && *cursor) {
        char last[EX_KEY_MAX];
        rc = ex_cursor_decode(ctx->store, l->name, ws, h, cursor, last, sizeof last, err);
        if (rc != PL_OK)
            goto out;
        int n = snprintf(start, sizeof start, "%s%s", prefix, last);
        if (n < 0 || (size_t)n >= sizeof start) {
            rc = ex_err_set(err, PL_ERR_INVALID, "cursor", "malformed");
            goto out;
        }
    }

    items = json_array();
    if (!items) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc != PL_OK)
        goto out;
    if (mdb_cursor_open(txn.mdb, ex_store_dbi(ctx->store, l->scan_db), &cur) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    MDB_val k = {strlen(start), start}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* After a cursor, skip the key it names. */
    if (r == 0 && cursor && *cursor && k.mv_size == strlen(start) &&
        memcmp(k.mv_data, start, k.mv_size) == 0)
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    size_t scanned = 0;
    size_t budget =
        ctx->limits.list_scan_budget ? ctx->limits.list_scan_budget : EX_LIST_SCAN_BUDGET;
    int more = 0;
    char last_id[EX_KEY_MAX] = "";
    while (r == 0) {
        if (k.mv_size < (size_t)plen || memcmp(k.mv_data, prefix, (size_t)plen) != 0)
            break;
        if ((int64_t)json_array_size(items) >= limit || scanned >= budget) {
            more = 1;
            break;
        }
        scanned++;
        size_t idlen = k.mv_size - (size_t)plen;
        if (idlen == 0 || idlen >= sizeof last_id) {
            r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        memcpy(last_id, (const char *)k.mv_data + plen, idlen);
        last_id[idlen] = '\0';
        json_t *item = NULL;
        if (l->resolve_kind) {
            const char *id = strrchr(last_id, '|');
            id = id ? id + 1 : last_id;
            char rkey[EX_KEY_MAX + 1];
            if (ex_key_build(rkey, sizeof rkey, ws, l->resolve_kind, id) == PL_OK)
                (void)ex_txn_get_json(&txn, l->resolve_db, rkey, &item);
        } else {
            json_error_t je;
            item = json_loadb(v.mv_data, v.mv_size, 0, &je);
        }
        if (item && (!l->filter || l->filter(item, l->filter_arg))) {
            if (l->present)
                l->present(item);
            json_array_append_new(items, item);
        } else {
            json_decref(item);
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (r != 0 && r != MDB_NOTFOUND) {
        rc = PL_ERR_STORE;
        goto out;
    }
    json_t *res = json_object();
    json_object_set_new(res, "items", items);
    items = NULL;
    if (more && *last_id) {
        char next[EX_CURSOR_MAX + 1];
        rc = ex_cursor_encode(ctx->store, l->name, ws, h, last_id, next, sizeof next);
        if (rc != PL_OK) {
            json_decref(res);
            goto out;
        }
        json_object_set_new(res, "next_cursor", json_string(next));
    } else {
        json_object_set_new(res, "next_cursor", json_null());
    }
    *out = res;
    rc = PL_OK;
out:
    if (cur)
        mdb_cursor_close(cur);
    ex_txn_abort(&txn);
    json_decref(items);
    json_decref(filters);
    return rc;
}
