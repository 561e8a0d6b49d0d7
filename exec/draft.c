#include "draft.h"

#include "exec/args.h"
#include "exec/cursor.h"
#include "exec/obj.h"

static const ex_obj_type drafts = {EX_DB_DRAFTS, "drf", "draft_id", "draft"};

/* The content fields: a table of names, bounds and kinds (tables over branches). */
static const struct {
    const char *name;
    size_t max;
    const char *id_kind; /* non-NULL: an array of ids of that kind */
} fields[] = {
    {"text", EX_TEXT_MAX_BYTES, NULL},
    {"title", EX_TITLE_MAX, NULL},
    {"link", EX_LINK_MAX, NULL},
    {"notes", 4000, NULL},
    {"media_ids", EX_MEDIA_PER_POST, "med"},
    {"account_ids", EX_TARGETS_MAX, "acc"},
};

static pl_rc apply(json_t *d, const json_t *args, int creating, ex_err *err)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *v = json_object_get(args, fields[i].name);
        pl_rc rc;
        if (!v) { /* absent: what the getters' PL_ERR_NOT_FOUND leads to, without them */
            if (creating)
                json_object_set_new_nocheck(d, fields[i].name,
                                            fields[i].id_kind ? json_array() : json_null());
            continue;
        }
        if (fields[i].id_kind) {
            const json_t *arr = NULL;
            rc = ex_arg_id_array(args, fields[i].name, EX_ARG_OPTIONAL, fields[i].max,
                                 fields[i].id_kind, &arr, err);
            if (rc == PL_OK)
                json_object_set_new(d, fields[i].name, json_deep_copy(arr));
            else if (rc == PL_ERR_NOT_FOUND && (creating || (v && json_is_null(v))))
                json_object_set_new(d, fields[i].name, json_array());
            else if (rc != PL_ERR_NOT_FOUND)
                return rc;
        } else {
            const char *s = NULL;
            rc = ex_arg_str(args, fields[i].name, EX_ARG_OPTIONAL, fields[i].max, &s, err);
            if (rc == PL_OK) /* v itself: a string of args, never changed in place */
                json_object_set_nocheck(d, fields[i].name, (json_t *)v);
            else if (rc == PL_ERR_NOT_FOUND && (creating || (v && json_is_null(v))))
                json_object_set_new(d, fields[i].name, json_null());
            else if (rc != PL_ERR_NOT_FOUND)
                return rc;
        }
    }
    return PL_OK;
}

static pl_rc fill_new(json_t *d, const json_t *args, ex_err *err)
{
    return apply(d, args, 1, err);
}

pl_rc ex_draft_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {
        "text", "title", "link", "media_ids", "account_ids", "notes", "idempotency_key", NULL};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    return ex_obj_create(ctx, &drafts, ws, args, "draft.create", fill_new, out, err);
}

pl_rc ex_draft_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out, ex_err *err)
{
    static const char *const allowed[] = {"draft_id", NULL};
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &drafts, ws, args, 0, &txn, out, err);
    ex_txn_abort(&txn);
    return rc;
}

pl_rc ex_draft_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    ex_listing l = {.name = "drafts", .scan_db = EX_DB_DRAFTS, .scan_kind = "drf"};
    return ex_list_run(ctx, ws, &l, args, out, err);
}

pl_rc ex_draft_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"draft_id",  "expected_version", "text",  "title", "link",
                                          "media_ids", "account_ids",      "notes", NULL};
    ex_txn txn = {0};
    json_t *d = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &drafts, ws, args, 1, &txn, &d, err);
    if (rc == PL_OK)
        rc = apply(d, args, 0, err);
    if (rc == PL_OK)
        rc = ex_obj_save(ctx, &drafts, &txn, ws, d);
    if (rc == PL_OK) {
        *out = d;
        d = NULL;
    }
    ex_txn_abort(&txn);
    json_decref(d);
    return rc;
}

pl_rc ex_draft_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"draft_id", "expected_version", NULL};
    ex_txn txn = {0};
    json_t *d = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &drafts, ws, args, 1, &txn, &d, err);
    if (rc == PL_OK)
        rc = ex_obj_remove(&drafts, &txn, ws, d, out);
    ex_txn_abort(&txn);
    json_decref(d);
    return rc;
}
