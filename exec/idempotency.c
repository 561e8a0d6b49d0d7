#include "idempotency.h"

#include <string.h>

#include "core/crypto.h"
#include "exec/args.h"
#include "exec/obj.h"

static int key_chars_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.' || c == ':';
        if (!ok)
            return 0;
    }
    return 1;
}

pl_rc ex_idem_begin(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *op,
                    const json_t *args, ex_idem *idem, json_t **replay, ex_err *err)
{
    memset(idem, 0, sizeof *idem);
    *replay = NULL;
    const char *key = NULL;
    pl_rc rc = ex_arg_str(args, "idempotency_key", EX_ARG_OPTIONAL, 128, &key, err);
    if (rc == PL_ERR_NOT_FOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    if (!*key || !key_chars_ok(key))
        return ex_err_set(err, PL_ERR_INVALID, "idempotency_key",
                          "must be 1-128 characters of A-Z a-z 0-9 _ - . :");
    rc = ex_key_build(idem->key, sizeof idem->key, ws, op, key);
    if (rc != PL_OK)
        return ex_err_set(err, rc, "idempotency_key", "too long");
    rc = ex_json_hash(args, "idempotency_key", idem->hash);
    if (rc != PL_OK)
        return rc;
    idem->active = 1;

    json_t *rec = NULL;
    rc = ex_obj_get_json(txn, EX_DB_IDEMPOTENCY, idem->key, &rec);
    if (rc == PL_ERR_NOT_FOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    int64_t now = core_clock_now_ms(ctx->clock);
    int64_t expires = json_integer_value(json_object_get(rec, "expires_at_ms"));
    const char *state = json_string_value(json_object_get(rec, "state"));
    const char *hhex = json_string_value(json_object_get(rec, "args_sha256"));
    char mine[65];
    core_hex_encode(idem->hash, 32, mine, sizeof mine);
    if (expires <= now || !state || !hhex) {
        rc = PL_OK; /* expired: as if absent */
    } else if (strcmp(hhex, mine) != 0) {
        rc = ex_err_set(err, PL_ERR_CONFLICT, "idempotency_key",
                        "already used with different arguments for %s", op);
    } else if (strcmp(state, "in_flight") == 0) {
        rc = ex_err_set(err, PL_ERR_BUSY, "idempotency_key",
                        "a %s call with this key is still in flight; retry shortly", op);
    } else {
        json_t *res = json_object_get(rec, "result");
        *replay = json_deep_copy(res ? res : json_null());
        rc = *replay ? PL_OK : PL_ERR_NOMEM;
    }
    json_decref(rec);
    return rc;
}

static pl_rc put(const ex_ctx *ctx, ex_txn *txn, const ex_idem *idem, const char *state,
                 const json_t *result, int64_t ttl)
{
    char hhex[65];
    core_hex_encode(idem->hash, 32, hhex, sizeof hhex);
    int64_t now = core_clock_now_ms(ctx->clock);
    int64_t expires = now + ttl;
    json_t *rec = json_pack("{s:s,s:s,s:I,s:I}", "state", state, "args_sha256", hhex,
                            "created_at_ms", (json_int_t)now, "expires_at_ms", (json_int_t)expires);
    if (!rec)
        return PL_ERR_NOMEM;
    if (result)
        json_object_set_new(rec, "result", json_deep_copy(result));
    pl_rc rc = ex_txn_put_json(txn, EX_DB_IDEMPOTENCY, idem->key, rec);
    json_decref(rec);
    return rc;
}

pl_rc ex_idem_mark_in_flight(const ex_ctx *ctx, ex_txn *txn, const ex_idem *idem)
{
    if (!idem->active)
        return PL_OK;
    return put(ctx, txn, idem, "in_flight", NULL, ctx->limits.lease_ms);
}

pl_rc ex_idem_finish(const ex_ctx *ctx, ex_txn *txn, const ex_idem *idem, const json_t *result)
{
    if (!idem->active)
        return PL_OK;
    int64_t ttl = ctx->limits.idempotency_ttl_ms;
    if (ttl < 24LL * 3600 * 1000)
        ttl = 24LL * 3600 * 1000; /* kept at least 24 h, whatever the configuration */
    return put(ctx, txn, idem, "done", result, ttl);
}

/* Condemns an idempotency record whose expires_at_ms has passed. */
static int expired(const MDB_val *key, const MDB_val *val, void *arg)
{
    const int64_t *now = arg;
    json_error_t je;
    json_t *rec = json_loadb(val->mv_data, val->mv_size, 0, &je);
    int64_t exp = rec ? json_integer_value(json_object_get(rec, "expires_at_ms")) : 0;
    json_decref(rec);
    (void)key;
    return exp <= *now;
}

pl_rc ex_idem_purge(const ex_ctx *ctx, size_t max_scan, size_t *purged)
{
    ex_txn txn = {0};
    size_t n = 0;
    int64_t now = core_clock_now_ms(ctx->clock);
    *purged = 0;
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_txn_sweep(&txn, EX_DB_IDEMPOTENCY, "idem_purge_pos", max_scan, expired, &now, &n);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc == PL_OK)
        *purged = n;
    ex_txn_abort(&txn);
    return rc;
}
