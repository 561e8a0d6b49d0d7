#include "campaign.h"

#include <stdio.h>
#include <string.h>

#include "exec/args.h"
#include "exec/cursor.h"
#include "exec/obj.h"
#include "exec/post.h"

static const ex_obj_type campaigns = {EX_DB_CAMPAIGNS, "cmp", "campaign_id", "campaign"};

static const char *const statuses[] = {"planned", "active", "completed", "archived", NULL};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* YYYY-MM-DD with a real month and day. */
static int date_ok(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int dm[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > dm[m - 1])
        return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    return 1;
}

static pl_rc apply(json_t *c, const json_t *args, int creating, ex_err *err)
{
    const char *name = NULL, *goal = NULL, *status = NULL;
    pl_rc rc = ex_arg_str(args, "name", creating ? EX_ARG_REQUIRED : EX_ARG_OPTIONAL, EX_NAME_MAX,
                          &name, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_str(args, "goal", EX_ARG_OPTIONAL, 2000, &goal, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_enum(args, "status", EX_ARG_OPTIONAL, statuses, &status, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    static const char *const dates[] = {"start_date", "end_date"};
    for (int i = 0; i < 2; i++) {
        const char *d = NULL;
        rc = ex_arg_str(args, dates[i], EX_ARG_OPTIONAL, 10, &d, err);
        if (rc == PL_ERR_TOO_LARGE || (rc == PL_OK && !date_ok(d)))
            return ex_err_set(err, PL_ERR_INVALID, dates[i], "must be a date YYYY-MM-DD");
        if (rc == PL_OK)
            json_object_set_new(c, dates[i], json_string(d));
        else if (rc != PL_ERR_NOT_FOUND)
            return rc;
        else if (creating)
            json_object_set_new(c, dates[i], json_null());
    }
    const char *s = str(c, "start_date"), *e = str(c, "end_date");
    if (s && e && strcmp(e, s) < 0)
        return ex_err_set(err, PL_ERR_INVALID, "end_date", "%s is before start_date %s", e, s);
    if (name)
        json_object_set_new(c, "name", json_string(name));
    if (goal || creating)
        json_object_set_new(c, "goal", goal ? json_string(goal) : json_null());
    if (status || creating)
        json_object_set_new(c, "status", json_string(status ? status : "planned"));
    return PL_OK;
}

static pl_rc fill_new(json_t *c, const json_t *args, ex_err *err)
{
    json_object_set_new(c, "post_count", json_integer(0));
    return apply(c, args, 1, err);
}

pl_rc ex_campaign_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err)
{
    static const char *const allowed[] = {
        "name", "goal", "start_date", "end_date", "status", "idempotency_key", NULL};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    return ex_obj_create(ctx, &campaigns, ws, args, "campaign.create", fill_new, out, err);
}

pl_rc ex_campaign_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_obj_open(ctx, &campaigns, ws, args, 0, &txn, out, err);
    ex_txn_abort(&txn);
    return rc;
}

static int status_keep(const json_t *c, void *arg)
{
    const char *want = arg;
    return !want || (str(c, "status") && strcmp(str(c, "status"), want) == 0);
}

pl_rc ex_campaign_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err)
{
    static const char *const allowed[] = {"status", "limit", "cursor", NULL};
    const char *status = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_enum(args, "status", EX_ARG_OPTIONAL, statuses, &status, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    ex_listing l = {.name = "campaigns",
                    .scan_db = EX_DB_CAMPAIGNS,
                    .scan_kind = "cmp",
                    .filter = status_keep,
                    .filter_arg = (void *)status};
    return ex_list_run(ctx, ws, &l, args, out, err);
}

pl_rc ex_campaign_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err)
{
    static const char *const allowed[] = {"campaign_id",      "name",     "goal",
                                          "start_date",       "end_date", "status",
                                          "expected_version", NULL};
    ex_txn txn = {0};
    json_t *c = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &campaigns, ws, args, 1, &txn, &c, err);
    if (rc == PL_OK)
        rc = apply(c, args, 0, err);
    if (rc == PL_OK)
        rc = ex_obj_save(ctx, &campaigns, &txn, ws, c);
    if (rc == PL_OK) {
        *out = c;
        c = NULL;
    }
    ex_txn_abort(&txn);
    json_decref(c);
    return rc;
}

static pl_rc link_key(char *buf, size_t n, const char *ws, const char *cmp, const char *post)
{
    if (!ex_ws_valid(ws))
        return PL_ERR_INVALID;
    int r = snprintf(buf, n, "%s|cpl|%s|%s", ws, cmp, post);
    return r < 0 || (size_t)r >= n ? PL_ERR_TOO_LARGE : PL_OK;
}

/* post_count += delta (never below 0) on campaign cmp. */
static pl_rc bump(ex_txn *txn, const char *ws, const char *cmp, int delta, ex_err *err)
{
    json_t *c = NULL;
    pl_rc rc = ex_obj_load(txn, campaigns.db, ws, campaigns.kind, cmp, campaigns.field,
                           campaigns.what, &c, err);
    if (rc != PL_OK)
        return rc;
    json_int_t n = json_integer_value(json_object_get(c, "post_count")) + delta;
    json_object_set_new(c, "post_count", json_integer(n < 0 ? 0 : n));
    rc = ex_obj_store(txn, campaigns.db, ws, campaigns.kind, c);
    json_decref(c);
    return rc;
}

pl_rc ex_campaign_link_txn(ex_txn *txn, const char *ws, json_t *post, const char *campaign_id,
                           ex_err *err)
{
    const char *pid = str(post, "id");
    const char *old = str(post, "campaign_id");
    char key[EX_KEY_MAX + 1];
    pl_rc rc;
    if (old && campaign_id && strcmp(old, campaign_id) == 0)
        return PL_OK;
    if (campaign_id) {
        rc = bump(txn, ws, campaign_id, +1, err);
        if (rc != PL_OK)
            return rc;
        rc = link_key(key, sizeof key, ws, campaign_id, pid);
        if (rc == PL_OK)
            rc = ex_txn_put_raw(txn, EX_DB_CAMPAIGNS, key, "", 0);
        if (rc != PL_OK)
            return rc;
    }
    if (old) {
        rc = link_key(key, sizeof key, ws, old, pid);
        if (rc != PL_OK)
            return rc;
        rc = ex_txn_del(txn, EX_DB_CAMPAIGNS, key);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            return rc;
        rc = bump(txn, ws, old, -1, NULL);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            return rc;
    }
    json_object_set_new(post, "campaign_id", campaign_id ? json_string(campaign_id) : json_null());
    return PL_OK;
}

pl_rc ex_campaign_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err)
{
    static const char *const allowed[] = {"campaign_id", "expected_version", NULL};
    const char *id = NULL;
    ex_txn txn = {0};
    json_t *c = NULL, *posts = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &campaigns, ws, args, 1, &txn, &c, err);
    if (rc != PL_OK)
        goto out;
    id = str(c, "id");
    /* Collect the linked posts (one range), then unlink each: posts are never deleted. */
    char prefix[EX_KEY_MAX + 1];
    snprintf(prefix, sizeof prefix, "%s|cpl|%s|", ws, id);
    rc = ex_txn_suffixes(&txn, EX_DB_CAMPAIGNS, prefix, &posts);
    if (rc != PL_OK)
        goto out;
    int64_t now = core_clock_now_ms(ctx->clock);
    size_t i;
    json_t *pv;
    json_array_foreach(posts, i, pv)
    {
        json_t *p = NULL;
        char key[EX_KEY_MAX + 1];
        rc = link_key(key, sizeof key, ws, id, json_string_value(pv));
        if (rc == PL_OK)
            rc = ex_txn_del(&txn, EX_DB_CAMPAIGNS, key);
        if (rc != PL_OK)
            goto out;
        if (ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", json_string_value(pv), "post_id", "post", &p,
                        NULL) != PL_OK)
            continue;
        json_object_set_new(p, "campaign_id", json_null());
        ex_obj_touch(p, now);
        rc = ex_obj_store(&txn, EX_DB_POSTS, ws, "pst", p);
        json_decref(p);
        if (rc != PL_OK)
            goto out;
    }
    rc = ex_obj_delete(&txn, EX_DB_CAMPAIGNS, ws, "cmp", id);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    *out = json_pack("{s:s,s:b,s:I}", "id", id, "deleted", 1, "unlinked_posts",
                     (json_int_t)json_array_size(posts));
out:
    ex_txn_abort(&txn);
    json_decref(c);
    json_decref(posts);
    return rc;
}

pl_rc ex_campaign_assign(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err)
{
    static const char *const allowed[] = {"campaign_id", "post_ids", NULL};
    const json_t *ids = NULL;
    const char *cmp = NULL;
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    const json_t *cv = json_object_get(args, "campaign_id");
    if (!cv)
        return ex_err_set(err, PL_ERR_INVALID, "campaign_id", "required (null to unassign)");
    if (!json_is_null(cv)) {
        rc = ex_arg_id(args, "campaign_id", "cmp", &cmp, err);
        if (rc != PL_OK)
            return rc;
    }
    rc = ex_arg_id_array(args, "post_ids", EX_ARG_REQUIRED, EX_BATCH_MAX, "pst", &ids, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        return rc;
    int64_t now = core_clock_now_ms(ctx->clock);
    size_t i;
    const json_t *pv;
    json_array_foreach(ids, i, pv)
    {
        json_t *p = NULL;
        char field[32];
        snprintf(field, sizeof field, "post_ids[%zu]", i);
        rc = ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", json_string_value(pv), field, "post", &p,
                         err);
        if (rc == PL_OK)
            rc = ex_campaign_link_txn(&txn, ws, p, cmp, err);
        if (rc == PL_OK) {
            ex_obj_touch(p, now);
            rc = ex_obj_store(&txn, EX_DB_POSTS, ws, "pst", p);
        }
        json_decref(p);
        if (rc != PL_OK)
            goto out;
    }
    rc = ex_txn_commit(&txn);
    if (rc == PL_OK)
        *out = json_pack("{s:o,s:I}", "campaign_id", cmp ? json_string(cmp) : json_null(),
                         "assigned", (json_int_t)json_array_size(ids));
out:
    ex_txn_abort(&txn);
    return rc;
}
