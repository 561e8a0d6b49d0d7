#include "workspace.h"

#include <stdio.h>
#include <string.h>

#include "exec/args.h"
#include "exec/obj.h"
#include "exec/schedule.h"

static const char *const plans[] = {"free", "starter", "pro", "business", "enterprise", NULL};

/* Applies the optional members of args onto ws; shared by ensure and update. */
static pl_rc apply(json_t *w, const json_t *args, int creating, ex_err *err)
{
    const char *name = NULL, *plan = NULL, *tz = NULL;
    const json_t *settings = NULL;
    pl_rc rc = ex_arg_str(args, "name", creating ? EX_ARG_REQUIRED : EX_ARG_OPTIONAL, EX_NAME_MAX,
                          &name, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_enum(args, "plan", EX_ARG_OPTIONAL, plans, &plan, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_str(args, "timezone", EX_ARG_OPTIONAL, 64, &tz, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    if (tz && ex_tz_check(tz) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "timezone", "unknown IANA zone \"%.64s\"", tz);
    rc = ex_arg_object(args, "settings", EX_ARG_OPTIONAL, EX_SETTINGS_MAX, &settings, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    if (name)
        json_object_set_new(w, "name", json_string(name));
    if (plan || creating)
        json_object_set_new(w, "plan", json_string(plan ? plan : "free"));
    if (tz || creating)
        json_object_set_new(w, "timezone", json_string(tz ? tz : "UTC"));
    if (settings)
        json_object_set_new(w, "settings", json_deep_copy(settings));
    else if (creating)
        json_object_set_new(w, "settings", json_object());
    return PL_OK;
}

/* Stores *w under ws, commits, and hands *w over to *out. */
static pl_rc save(ex_txn *txn, const char *ws, json_t **w, json_t **out)
{
    pl_rc rc = ex_txn_put_json(txn, EX_DB_WORKSPACES, ws, *w);
    if (rc == PL_OK)
        rc = ex_txn_commit(txn);
    if (rc == PL_OK) {
        *out = *w;
        *w = NULL;
    }
    return rc;
}

pl_rc ex_workspace_ensure(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                          ex_err *err)
{
    static const char *const allowed[] = {"name", "plan", "timezone", "settings", NULL};
    ex_txn txn = {0};
    json_t *w = NULL;
    *out = NULL;
    if (!ex_ws_valid(ws))
        return ex_err_set(err, PL_ERR_INVALID, "workspace", "not a valid workspace id");
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        return rc;
    rc = ex_obj_get_json(&txn, EX_DB_WORKSPACES, ws, &w);
    if (rc == PL_OK) {
        *out = w;
        ex_txn_abort(&txn);
        return PL_OK;
    }
    if (rc != PL_ERR_NOT_FOUND)
        goto out;
    w = json_object();
    ex_obj_init(w, ws, ws, core_clock_now_ms(ctx->clock));
    json_object_del(w, "workspace_id");
    rc = apply(w, args, 1, err);
    if (rc == PL_OK)
        rc = save(&txn, ws, &w, out);
out:
    ex_txn_abort(&txn);
    json_decref(w);
    return rc;
}

pl_rc ex_workspace_get(const ex_ctx *ctx, const char *ws, json_t **out, ex_err *err)
{
    ex_txn txn = {0};
    *out = NULL;
    if (!ex_ws_valid(ws))
        return ex_err_set(err, PL_ERR_NOT_FOUND, "workspace", "no such workspace");
    pl_rc rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc != PL_OK)
        return rc;
    rc = ex_obj_get_json(&txn, EX_DB_WORKSPACES, ws, out);
    ex_txn_abort(&txn);
    if (rc == PL_ERR_NOT_FOUND && err) {
        /* ex_err_set(err, rc, "workspace", "no such workspace") without printf: postly-mcp
         * asks on every read of a workspace that has no record yet */
        static const char field[] = "workspace", msg[] = "workspace: no such workspace";
        _Static_assert(sizeof field <= sizeof err->field && sizeof msg <= sizeof err->msg,
                       "ex_err holds the message");
        memcpy(err->field, field, sizeof field);
        memcpy(err->msg, msg, sizeof msg);
    }
    return rc;
}

pl_rc ex_workspace_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                          ex_err *err)
{
    static const char *const allowed[] = {
        "name", "plan", "timezone", "settings", "expected_version", NULL};
    ex_txn txn = {0};
    json_t *w = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    if (!ex_ws_valid(ws))
        return ex_err_set(err, PL_ERR_NOT_FOUND, "workspace", "no such workspace");
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        return rc;
    rc = ex_obj_get_json(&txn, EX_DB_WORKSPACES, ws, &w);
    if (rc != PL_OK) {
        if (rc == PL_ERR_NOT_FOUND)
            ex_err_set(err, rc, "workspace", "no such workspace");
        goto out;
    }
    rc = ex_obj_check_version(w, args, "workspace", err);
    if (rc != PL_OK)
        goto out;
    rc = apply(w, args, 0, err);
    if (rc != PL_OK)
        goto out;
    ex_obj_touch(w, core_clock_now_ms(ctx->clock));
    rc = save(&txn, ws, &w, out);
out:
    ex_txn_abort(&txn);
    json_decref(w);
    return rc;
}

void ex_workspace_timezone(ex_txn *txn, const char *ws, char *buf, size_t bufsz)
{
    json_t *w = NULL;
    const char *tz = NULL;
    if (ex_obj_get_json(txn, EX_DB_WORKSPACES, ws, &w) == PL_OK)
        tz = json_string_value(json_object_get(w, "timezone"));
    snprintf(buf, bufsz, "%s", tz ? tz : "UTC");
    json_decref(w);
}
