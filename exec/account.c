#include "account.h"

#include <string.h>

#include "exec/args.h"
#include "exec/cursor.h"
#include "exec/obj.h"
#include "exec/post.h"

static const ex_obj_type accounts = {EX_DB_ACCOUNTS, "acc", "account_id", "social account"};

static const char *const states[] = {"connected", "needs_reconnect", NULL};

/* [{id, name}] with at most 200 entries of bounded strings. */
static pl_rc named_list(const json_t *args, const char *field, json_t **out, ex_err *err)
{
    const json_t *v = json_object_get(args, field);
    *out = NULL;
    if (!v || json_is_null(v))
        return PL_OK;
    if (!json_is_array(v) || json_array_size(v) > 200)
        return ex_err_set(err, PL_ERR_INVALID, field,
                          "must be an array of at most 200 {id, name} objects");
    json_t *res = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *id = NULL, *name = NULL;
        ex_err sub = {0};
        if (ex_arg_str(e, "id", EX_ARG_REQUIRED, 128, &id, &sub) != PL_OK ||
            (ex_arg_str(e, "name", EX_ARG_OPTIONAL, EX_NAME_MAX, &name, &sub) != PL_OK && name)) {
            json_decref(res);
            return ex_err_set(err, PL_ERR_INVALID, field, "item %zu: %s", i, sub.msg);
        }
        json_array_append_new(res, json_pack("{s:s,s:s}", "id", id, "name", name ? name : id));
    }
    *out = res;
    return PL_OK;
}

pl_rc ex_account_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err)
{
    static const char *const allowed[] = {"platform", "display_name", "remote_account",
                                          "boards",   "locations",    NULL};
    ex_txn txn = {0};
    json_t *a = NULL, *boards = NULL, *locations = NULL;
    const char *platform = NULL, *display = NULL, *remote = NULL;
    ex_platform p;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_str(args, "platform", EX_ARG_REQUIRED, 32, &platform, err);
    if (rc != PL_OK)
        return rc;
    if (ex_platform_parse(platform, &p) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "platform",
                          "\"%.32s\" is not one of facebook, instagram, pinterest, youtube, "
                          "google_business, linkedin, x",
                          platform);
    rc = ex_arg_str(args, "display_name", EX_ARG_REQUIRED, EX_NAME_MAX, &display, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_str(args, "remote_account", EX_ARG_OPTIONAL, 128, &remote, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = named_list(args, "boards", &boards, err);
    if (rc == PL_OK)
        rc = named_list(args, "locations", &locations, err);
    if (rc != PL_OK)
        goto out;
    char id[EX_ID_MAX];
    rc = ex_id_new(ctx->clock, "acc", id, sizeof id);
    if (rc != PL_OK)
        goto out;
    a = json_object();
    ex_obj_init(a, id, ws, core_clock_now_ms(ctx->clock));
    json_object_set_new(a, "platform", json_string(ex_platform_name(p)));
    json_object_set_new(a, "display_name", json_string(display));
    json_object_set_new(a, "state", json_string("connected"));
    json_object_set_new(a, "remote_account", remote ? json_string(remote) : json_null());
    json_object_set_new(a, "boards", boards ? boards : json_array());
    json_object_set_new(a, "locations", locations ? locations : json_array());
    boards = locations = NULL;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        goto out;
    rc = ex_obj_store(&txn, accounts.db, ws, accounts.kind, a);
    if (rc != PL_OK)
        goto out;
    rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    *out = a;
    a = NULL;
out:
    ex_txn_abort(&txn);
    json_decref(a);
    json_decref(boards);
    json_decref(locations);
    return rc;
}

pl_rc ex_account_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_obj_open(ctx, &accounts, ws, args, 0, &txn, out, err);
    ex_txn_abort(&txn);
    return rc;
}

typedef struct acc_filter {
    const char *platform;
    const char *state;
} acc_filter;

static int acc_keep(const json_t *a, void *arg)
{
    const acc_filter *f = arg;
    const char *platform = json_string_value(json_object_get(a, "platform"));
    const char *state = json_string_value(json_object_get(a, "state"));
    if (f->platform && (!platform || strcmp(f->platform, platform) != 0))
        return 0;
    if (f->state && (!state || strcmp(f->state, state) != 0))
        return 0;
    return 1;
}

pl_rc ex_account_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"platform", "state", "limit", "cursor", NULL};
    acc_filter f = {0};
    ex_platform p;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_str(args, "platform", EX_ARG_OPTIONAL, 32, &f.platform, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    if (f.platform && ex_platform_parse(f.platform, &p) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "platform", "unknown platform \"%.32s\"",
                          f.platform);
    rc = ex_arg_enum(args, "state", EX_ARG_OPTIONAL, states, &f.state, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    ex_listing l = {.name = "accounts",
                    .scan_db = EX_DB_ACCOUNTS,
                    .scan_kind = "acc",
                    .filter = acc_keep,
                    .filter_arg = &f};
    return ex_list_run(ctx, ws, &l, args, out, err);
}

pl_rc ex_account_set_state_txn(const ex_ctx *ctx, ex_txn *txn, const char *ws,
                               const char *account_id, const char *state)
{
    json_t *a = NULL;
    pl_rc rc = ex_obj_load(txn, accounts.db, ws, accounts.kind, account_id, accounts.field,
                           accounts.what, &a, NULL);
    if (rc != PL_OK)
        return rc;
    const char *cur = json_string_value(json_object_get(a, "state"));
    if (!cur || strcmp(cur, state) != 0) {
        json_object_set_new(a, "state", json_string(state));
        ex_obj_touch(a, core_clock_now_ms(ctx->clock));
        rc = ex_obj_store(txn, accounts.db, ws, accounts.kind, a);
    }
    json_decref(a);
    return rc;
}

pl_rc ex_account_set_state(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err)
{
    static const char *const allowed[] = {"account_id", "state", "expected_version", NULL};
    const char *id = NULL, *state = NULL;
    ex_txn txn = {0};
    json_t *a = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_id(args, "account_id", "acc", &id, err);
    if (rc == PL_OK)
        rc = ex_arg_enum(args, "state", EX_ARG_REQUIRED, states, &state, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        return rc;
    rc = ex_obj_load(&txn, accounts.db, ws, accounts.kind, id, accounts.field, accounts.what, &a,
                     err);
    if (rc == PL_OK)
        rc = ex_obj_check_version(a, args, accounts.what, err);
    if (rc == PL_OK) {
        json_object_set_new(a, "state", json_string(state));
        rc = ex_obj_save(ctx, &accounts, &txn, ws, a);
    }
    if (rc == PL_OK) {
        *out = a;
        a = NULL;
    }
    ex_txn_abort(&txn);
    json_decref(a);
    return rc;
}

pl_rc ex_account_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err)
{
    static const char *const allowed[] = {"account_id", "expected_version", "force", NULL};
    ex_txn txn = {0};
    json_t *a = NULL;
    int force = 0;
    size_t n_posts = 0, n_failed = 0;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK) {
        rc = ex_arg_bool(args, "force", EX_ARG_OPTIONAL, &force, err);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &accounts, ws, args, 1, &txn, &a, err);
    if (rc == PL_OK) {
        rc = ex_post_account_removed_txn(ctx, &txn, ws, json_string_value(json_object_get(a, "id")),
                                         force, &n_posts, &n_failed);
        if (rc != PL_OK)
            rc =
                ex_err_set(err, rc, accounts.field, "store error reading the posts that target it");
    }
    if (rc == PL_OK && n_posts > 0 && !force)
        rc = ex_err_set(err, PL_ERR_STATE, accounts.field,
                        "%zu scheduled or publishing post%s target%s social account %s; unschedule "
                        "or edit %s, or pass force: true to fail %s targets for it with \"account "
                        "removed\"",
                        n_posts, n_posts == 1 ? "" : "s", n_posts == 1 ? "s" : "",
                        json_string_value(json_object_get(a, "id")), n_posts == 1 ? "it" : "them",
                        n_posts == 1 ? "its" : "their");
    if (rc == PL_OK)
        rc = ex_obj_remove(&accounts, &txn, ws, a, out);
    if (rc == PL_OK) {
        json_object_set_new(*out, "posts_affected", json_integer((json_int_t)n_posts));
        json_object_set_new(*out, "targets_failed", json_integer((json_int_t)n_failed));
    }
    ex_txn_abort(&txn);
    json_decref(a);
    return rc;
}
