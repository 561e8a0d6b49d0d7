#include "obj.h"

#include <string.h>

#include "core/json_text.h"
#include "exec/args.h"
#include "exec/idempotency.h"

pl_rc ex_obj_get_json(ex_txn *txn, ex_db db, const char *key, json_t **out)
{
    MDB_val v;
    json_error_t je;
    *out = NULL;
    pl_rc rc = ex_txn_get_raw(txn, db, key, &v);
    if (rc != PL_OK)
        return rc;
    *out = core_json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, &je);
    return *out ? PL_OK : PL_ERR_STORE;
}

pl_rc ex_obj_load(ex_txn *txn, ex_db db, const char *ws, const char *kind, const char *id,
                  const char *field, const char *what, json_t **out, ex_err *err)
{
    char key[EX_KEY_MAX + 1];
    *out = NULL;
    if (ex_key_build(key, sizeof key, ws, kind, id) != PL_OK)
        return ex_err_set(err, PL_ERR_NOT_FOUND, field, "no %s %.48s in this workspace", what,
                          id ? id : "");
    pl_rc rc = ex_obj_get_json(txn, db, key, out);
    if (rc == PL_ERR_NOT_FOUND)
        return ex_err_set(err, PL_ERR_NOT_FOUND, field, "no %s %.48s in this workspace", what, id);
    if (rc != PL_OK)
        return ex_err_set(err, rc, field, "store error reading %s", what);
    return PL_OK;
}

pl_rc ex_obj_store(ex_txn *txn, ex_db db, const char *ws, const char *kind, const json_t *obj)
{
    char key[EX_KEY_MAX + 1];
    pl_rc rc =
        ex_key_build(key, sizeof key, ws, kind, json_string_value(json_object_get(obj, "id")));
    if (rc != PL_OK)
        return rc;
    return ex_txn_put_json(txn, db, key, obj);
}

pl_rc ex_obj_delete(ex_txn *txn, ex_db db, const char *ws, const char *kind, const char *id)
{
    char key[EX_KEY_MAX + 1];
    pl_rc rc = ex_key_build(key, sizeof key, ws, kind, id);
    if (rc != PL_OK)
        return rc;
    return ex_txn_del(txn, db, key);
}

pl_rc ex_obj_check_version(const json_t *obj, const json_t *args, const char *what, ex_err *err)
{
    int64_t want = 0;
    pl_rc rc = ex_arg_int(args, "expected_version", EX_ARG_OPTIONAL, 1, INT64_MAX, &want, err);
    if (rc == PL_ERR_NOT_FOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    int64_t have = json_integer_value(json_object_get(obj, "version"));
    if (want != have)
        return ex_err_set(err, PL_ERR_CONFLICT, "expected_version",
                          "%lld but the %s is at version %lld (re-read it and retry)",
                          (long long)want, what, (long long)have);
    return PL_OK;
}

void ex_obj_touch(json_t *obj, int64_t now_ms)
{
    char t[40];
    ex_time_format(now_ms, t, sizeof t);
    json_object_set_new(obj, "version",
                        json_integer(json_integer_value(json_object_get(obj, "version")) + 1));
    json_object_set_new(obj, "updated_at", json_string(t));
}

void ex_obj_init(json_t *obj, const char *id, const char *ws, int64_t now_ms)
{
    char t[40];
    json_t *ts;
    ex_time_format(now_ms, t, sizeof t);
    /* One string value for both times (nothing sets a string in place); the keys are
     * literals, so jansson's UTF-8 check of them is skipped. */
    ts = json_string(t);
    json_object_set_new_nocheck(obj, "id", json_string(id));
    json_object_set_new_nocheck(obj, "workspace_id", json_string(ws));
    json_object_set_new_nocheck(obj, "version", json_integer(1));
    json_object_set_nocheck(obj, "created_at", ts);
    json_object_set_new_nocheck(obj, "updated_at", ts);
}

pl_rc ex_arg_id(const json_t *args, const char *field, const char *kind, const char **out,
                ex_err *err)
{
    const char *s = NULL;
    pl_rc rc = ex_arg_str(args, field, EX_ARG_REQUIRED, EX_ID_MAX, &s, err);
    if (rc != PL_OK)
        return rc == PL_ERR_TOO_LARGE ? ex_err_set(err, PL_ERR_INVALID, field, "not a valid id")
                                      : rc;
    if (!ex_id_valid(s, kind))
        return ex_err_set(err, PL_ERR_INVALID, field, "\"%.48s\" is not a valid %s id", s, kind);
    *out = s;
    return PL_OK;
}

pl_rc ex_obj_open(const ex_ctx *ctx, const ex_obj_type *t, const char *ws, const json_t *args,
                  int write, ex_txn *txn, json_t **obj, ex_err *err)
{
    const char *id = NULL;
    *obj = NULL;
    pl_rc rc = ex_arg_id(args, t->field, t->kind, &id, err);
    if (rc == PL_OK)
        rc = ex_txn_begin(ctx->store, write, txn);
    if (rc == PL_OK)
        rc = ex_obj_load(txn, t->db, ws, t->kind, id, t->field, t->what, obj, err);
    if (rc == PL_OK && write)
        rc = ex_obj_check_version(*obj, args, t->what, err);
    return rc;
}

pl_rc ex_obj_save(const ex_ctx *ctx, const ex_obj_type *t, ex_txn *txn, const char *ws, json_t *obj)
{
    ex_obj_touch(obj, core_clock_now_ms(ctx->clock));
    pl_rc rc = ex_obj_store(txn, t->db, ws, t->kind, obj);
    return rc == PL_OK ? ex_txn_commit(txn) : rc;
}

pl_rc ex_obj_remove(const ex_obj_type *t, ex_txn *txn, const char *ws, const json_t *obj,
                    json_t **out)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    pl_rc rc = ex_obj_delete(txn, t->db, ws, t->kind, id);
    if (rc == PL_OK)
        rc = ex_txn_commit(txn);
    if (rc != PL_OK)
        return rc;
    *out = json_pack("{s:s,s:b}", "id", id, "deleted", 1);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

pl_rc ex_obj_create(const ex_ctx *ctx, const ex_obj_type *t, const char *ws, const json_t *args,
                    const char *op, ex_obj_fill_fn fill, json_t **out, ex_err *err)
{
    ex_txn txn = {0};
    json_t *o = NULL, *replay = NULL;
    ex_idem idem;
    char id[EX_ID_MAX];
    *out = NULL;
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_idem_begin(ctx, &txn, ws, op, args, &idem, &replay, err);
    if (rc != PL_OK || replay) {
        *out = replay;
        goto out;
    }
    rc = ex_id_new(ctx->clock, t->kind, id, sizeof id);
    if (rc != PL_OK)
        goto out;
    o = json_object();
    ex_obj_init(o, id, ws, core_clock_now_ms(ctx->clock));
    rc = fill(o, args, err);
    if (rc == PL_OK)
        rc = ex_obj_store(&txn, t->db, ws, t->kind, o);
    if (rc == PL_OK)
        rc = ex_idem_finish(ctx, &txn, &idem, o);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc == PL_OK) {
        *out = o;
        o = NULL;
    }
out:
    ex_txn_abort(&txn);
    json_decref(o);
    return rc;
}
