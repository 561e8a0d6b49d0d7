#include "post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/args.h"
#include "exec/campaign.h"
#include "exec/cursor.h"
#include "exec/events.h"
#include "exec/idempotency.h"
#include "exec/media.h"
#include "exec/obj.h"
#include "exec/publish.h"
#include "exec/schedule.h"
#include "exec/workspace.h"

static const char *const post_states[] = {
    "draft", "scheduled", "publishing", "published", "partially_published", "failed", NULL};

void ex_post_present(json_t *p)
{
    json_object_del(p, "queue_due_ms");
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int is_status(const json_t *post, const char *s)
{
    const char *st = str(post, "status");
    return st && strcmp(st, s) == 0;
}

static const ex_obj_type posts = {EX_DB_POSTS, "pst", "post_id", "post"};

static pl_rc locked(const json_t *post, ex_err *err)
{
    return ex_err_set(err, PL_ERR_STATE, "post_id",
                      "post %s is %s; edits are locked while it is being published",
                      str(post, "id"), str(post, "status"));
}

static const char *const editable[] = {"draft", "scheduled", NULL};
static const char *const scheduled_only[] = {"scheduled", NULL};

/* PL_OK when post's status is one of ok (NULL-terminated); else PL_ERR_STATE: locked() while
 * it is publishing, otherwise "post <id> is <status>; <rule>". */
static pl_rc require_status(const json_t *post, const char *const ok[], const char *rule,
                            ex_err *err)
{
    for (size_t i = 0; ok[i]; i++)
        if (is_status(post, ok[i]))
            return PL_OK;
    if (is_status(post, "publishing"))
        return locked(post, err);
    return ex_err_set(err, PL_ERR_STATE, "post_id", "post %s is %s; %s", str(post, "id"),
                      str(post, "status"), rule);
}

/* ---- content: text, title, link, media_ids, settings, board_id, location_id ---- */

/* Copies the content members present in args onto obj. Targets also take settings, board_id
 * and location_id. field_prefix names errors ("targets[1]."). */
static pl_rc apply_content(const json_t *args, json_t *obj, int is_target, const char *prefix,
                           ex_err *err)
{
    static const struct {
        const char *name;
        size_t max;
        int target_only;
    } strs[] = {
        {"text", EX_TEXT_MAX_BYTES, 0}, {"title", EX_TITLE_MAX, 0}, {"link", EX_LINK_MAX, 0},
        {"board_id", 128, 1},           {"location_id", 128, 1},
    };
    ex_err sub = {0};
    pl_rc rc;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i].target_only && !is_target)
            continue;
        const json_t *v = json_object_get(args, strs[i].name);
        if (!v)
            continue;
        if (json_is_null(v)) {
            json_object_del(obj, strs[i].name);
            continue;
        }
        const char *s = NULL;
        rc = ex_arg_str(args, strs[i].name, EX_ARG_OPTIONAL, strs[i].max, &s, &sub);
        if (rc != PL_OK)
            return ex_err_set(err, rc, NULL, "%s%s", prefix, sub.msg);
        json_object_set_new(obj, strs[i].name, json_string(s));
    }
    const json_t *ids = NULL;
    rc = ex_arg_id_array(args, "media_ids", EX_ARG_OPTIONAL, EX_MEDIA_PER_POST, "med", &ids, &sub);
    if (rc == PL_OK)
        json_object_set_new(obj, "media_ids", json_deep_copy(ids));
    else if (rc != PL_ERR_NOT_FOUND)
        return ex_err_set(err, rc, NULL, "%s%s", prefix, sub.msg);
    if (is_target) {
        const json_t *set = NULL;
        rc = ex_arg_object(args, "settings", EX_ARG_OPTIONAL, EX_SETTINGS_MAX, &set, &sub);
        if (rc == PL_OK)
            json_object_set_new(obj, "settings", json_deep_copy(set));
        else if (rc != PL_ERR_NOT_FOUND)
            return ex_err_set(err, rc, NULL, "%s%s", prefix, sub.msg);
    }
    return PL_OK;
}

static json_t *new_target(const char *account_id)
{
    return json_pack("{s:s,s:o,s:s,s:i,s:i,s:n,s:n,s:n,s:n,s:n,s:n}", "account_id", account_id,
                     "settings", json_object(), "status", "pending", "attempts", 0, "failures", 0,
                     "next_attempt_at", "next_attempt_at_ms", "remote_id", "url", "published_at",
                     "error");
}

/* Builds post["targets"] from args "targets" or "account_ids" (one required on create), looking
 * up each account (platform copied from it). */
static pl_rc parse_targets(ex_txn *txn, const char *ws, const json_t *args, json_t *post,
                           int required, ex_err *err)
{
    const json_t *targets = json_object_get(args, "targets");
    const json_t *accs = json_object_get(args, "account_ids");
    if (targets && accs)
        return ex_err_set(err, PL_ERR_INVALID, "targets",
                          "give either targets or account_ids, not both");
    if (!targets && !accs)
        return required ? ex_err_set(err, PL_ERR_INVALID, "account_ids",
                                     "required (or targets): at least one social account")
                        : PL_ERR_NOT_FOUND;
    json_t *list = json_array();
    pl_rc rc = PL_OK;
    if (accs) {
        const json_t *ids = NULL;
        rc =
            ex_arg_id_array(args, "account_ids", EX_ARG_REQUIRED, EX_TARGETS_MAX, "acc", &ids, err);
        if (rc != PL_OK)
            goto out;
        for (size_t i = 0; i < json_array_size(ids); i++)
            json_array_append_new(list, new_target(json_string_value(json_array_get(ids, i))));
    } else {
        if (!json_is_array(targets) || json_array_size(targets) > EX_TARGETS_MAX) {
            rc = ex_err_set(err, PL_ERR_INVALID, "targets", "must be an array of at most %d",
                            EX_TARGETS_MAX);
            goto out;
        }
        size_t i;
        const json_t *v;
        json_array_foreach(targets, i, v)
        {
            static const char *const allowed[] = {"account_id", "text",        "title",
                                                  "link",       "media_ids",   "settings",
                                                  "board_id",   "location_id", NULL};
            char prefix[32];
            snprintf(prefix, sizeof prefix, "targets[%zu].", i);
            ex_err sub = {0};
            const char *acc = NULL;
            if (ex_args_only(v, allowed, &sub) != PL_OK ||
                ex_arg_id(v, "account_id", "acc", &acc, &sub) != PL_OK) {
                rc = ex_err_set(err, PL_ERR_INVALID, NULL, "%s%s", prefix, sub.msg);
                goto out;
            }
            for (size_t j = 0; j < json_array_size(list); j++)
                if (strcmp(acc, str(json_array_get(list, j), "account_id")) == 0) {
                    rc = ex_err_set(err, PL_ERR_INVALID, NULL,
                                    "%saccount_id: %s is already a target", prefix, acc);
                    goto out;
                }
            json_t *t = new_target(acc);
            json_array_append_new(list, t);
            rc = apply_content(v, t, 1, prefix, err);
            if (rc != PL_OK)
                goto out;
        }
    }
    if (json_array_size(list) == 0) {
        rc = ex_err_set(err, PL_ERR_INVALID, accs ? "account_ids" : "targets",
                        "at least one social account is required");
        goto out;
    }
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_t *acc = NULL;
        char field[48];
        snprintf(field, sizeof field, accs ? "account_ids[%zu]" : "targets[%zu].account_id", i);
        rc = ex_obj_load(txn, EX_DB_ACCOUNTS, ws, "acc", str(t, "account_id"), field,
                         "social account", &acc, err);
        if (rc != PL_OK)
            goto out;
        json_object_set(t, "platform", json_object_get(acc, "platform"));
        json_decref(acc);
    }
    json_object_set_new(post, "targets", list);
    list = NULL;
out:
    json_decref(list);
    return rc;
}

/* ---- validation through the connectors ---- */

/* Validates every target of post; appends problems to *problems (created). PL_OK when none,
 * PL_ERR_INVALID / PL_ERR_NOT_FOUND / PL_ERR_UNSUPPORTED with err set to the first. */
static pl_rc validate_post(const ex_ctx *ctx, ex_txn *txn, const char *ws, const json_t *post,
                           json_t *problems, ex_err *err)
{
    pl_rc first = PL_OK;
    const json_t *targets = json_object_get(post, "targets");
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(targets); i++) {
        const json_t *t = json_array_get(targets, i);
        const char *plat = str(t, "platform");
        ex_platform p;
        ex_target_buf b;
        ex_err sub = {0};
        ex_problems pr;
        memset(&pr, 0, sizeof pr);
        pl_rc rc = ex_target_build(txn, ws, post, i, &b, &sub);
        if (rc == PL_OK) {
            if (ex_platform_parse(plat, &p) != PL_OK || !ctx->connectors[p]) {
                rc = PL_ERR_UNSUPPORTED;
                snprintf(pr.items[0].field, sizeof pr.items[0].field, "platform");
                snprintf(pr.items[0].code, sizeof pr.items[0].code, "no_connector");
                snprintf(pr.items[0].message, sizeof pr.items[0].message,
                         "platform: no connector is configured for %.32s", plat ? plat : "?");
                pr.count = 1;
            } else {
                rc = ex_connector_validate(ctx->connectors[p], &b.t, &pr);
                if (rc == PL_OK && pr.count > 0)
                    rc = PL_ERR_INVALID;
            }
        } else {
            snprintf(pr.items[0].field, sizeof pr.items[0].field, "%s", sub.field);
            snprintf(pr.items[0].code, sizeof pr.items[0].code,
                     rc == PL_ERR_NOT_FOUND ? "not_found" : "invalid");
            snprintf(pr.items[0].message, sizeof pr.items[0].message, "%s", sub.msg);
            pr.count = 1;
        }
        ex_target_buf_clear(&b);
        for (size_t k = 0; k < pr.count; k++) {
            total++;
            json_array_append_new(problems,
                                  json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "target", (int)i,
                                            "account_id", str(t, "account_id"), "platform",
                                            plat ? plat : "", "field", pr.items[k].field, "code",
                                            pr.items[k].code, "message", pr.items[k].message));
            if (first == PL_OK) {
                first = rc == PL_OK ? PL_ERR_INVALID : rc;
                ex_err_set(err, first, NULL, "%s", pr.items[k].message);
                if (err)
                    snprintf(err->field, sizeof err->field, "targets[%d].%.40s", (int)(i % 100),
                             pr.items[k].field);
            }
        }
        total += pr.dropped;
    }
    if (first != PL_OK && total > 1 && err) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof err->msg - n, " (and %zu more problem%s)", total - 1,
                 total == 2 ? "" : "s");
    }
    return first;
}

/* ---- create / get / list ---- */

static const char *const create_args[] = {
    "account_ids", "targets",      "text",     "title",           "link", "media_ids",
    "campaign_id", "scheduled_at", "timezone", "idempotency_key", NULL};

/* Builds a post object (not stored) from create arguments; shared by create and validate. */
static pl_rc build_post(const ex_ctx *ctx, ex_txn *txn, const char *ws, const json_t *args,
                        json_t **out, int64_t *sched_ms, ex_err *err)
{
    char id[EX_ID_MAX];
    json_t *p = NULL;
    const char *at = NULL, *tz = NULL, *cmp = NULL;
    *out = NULL;
    *sched_ms = -1;
    pl_rc rc = ex_args_only(args, create_args, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_id_new(ctx->clock, "pst", id, sizeof id);
    if (rc != PL_OK)
        return rc;
    p = json_object();
    ex_obj_init(p, id, ws, core_clock_now_ms(ctx->clock));
    json_object_set_new(p, "status", json_string("draft"));
    json_object_set_new(p, "media_ids", json_array());
    json_object_set_new(p, "campaign_id", json_null());
    json_object_set_new(p, "scheduled_at", json_null());
    json_object_set_new(p, "scheduled_at_ms", json_null());
    rc = apply_content(args, p, 0, "", err);
    if (rc != PL_OK)
        goto out;
    rc = parse_targets(txn, ws, args, p, 1, err);
    if (rc != PL_OK)
        goto out;
    rc = ex_arg_str(args, "timezone", EX_ARG_OPTIONAL, 64, &tz, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    char wtz[72];
    ex_workspace_timezone(txn, ws, wtz, sizeof wtz);
    if (tz && ex_tz_check(tz) != PL_OK) {
        rc = ex_err_set(err, PL_ERR_INVALID, "timezone", "unknown IANA zone \"%.64s\"", tz);
        goto out;
    }
    json_object_set_new(p, "timezone", json_string(tz ? tz : wtz));
    rc = ex_arg_str(args, "scheduled_at", EX_ARG_OPTIONAL, 40, &at, err);
    if (rc == PL_OK) {
        rc = ex_schedule_check(ctx, at, tz, sched_ms, err);
        if (rc != PL_OK)
            goto out;
    } else if (rc != PL_ERR_NOT_FOUND) {
        goto out;
    }
    rc = ex_arg_str(args, "campaign_id", EX_ARG_OPTIONAL, EX_ID_MAX, &cmp, err);
    if (rc == PL_OK && !ex_id_valid(cmp, "cmp"))
        rc = ex_err_set(err, PL_ERR_INVALID, "campaign_id", "\"%.48s\" is not a valid campaign id",
                        cmp);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    if (cmp)
        json_object_set_new(p, "campaign_id", json_string(cmp));
    rc = PL_OK;
    *out = p;
    p = NULL;
out:
    json_decref(p);
    return rc;
}

static void set_schedule(json_t *p, int64_t ms)
{
    if (ms < 0) {
        json_object_set_new(p, "scheduled_at", json_null());
        json_object_set_new(p, "scheduled_at_ms", json_null());
        return;
    }
    char t[40];
    ex_time_format(ms, t, sizeof t);
    json_object_set_new(p, "scheduled_at", json_string(t));
    json_object_set_new(p, "scheduled_at_ms", json_integer(ms));
}

static pl_rc emit_post(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                       const json_t *post)
{
    json_t *copy = json_deep_copy(post);
    if (!copy)
        return PL_ERR_NOMEM;
    ex_post_present(copy);
    pl_rc rc = ex_event_emit(ctx, txn, ws, type, copy);
    json_decref(copy);
    return rc;
}

pl_rc ex_post_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    ex_txn txn = {0};
    json_t *p = NULL, *replay = NULL, *problems = json_array();
    ex_idem idem;
    int64_t sched = -1;
    *out = NULL;
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        goto out;
    rc = ex_idem_begin(ctx, &txn, ws, "post.create", args, &idem, &replay, err);
    if (rc != PL_OK)
        goto out;
    if (replay) {
        *out = replay;
        goto out;
    }
    rc = build_post(ctx, &txn, ws, args, &p, &sched, err);
    if (rc != PL_OK)
        goto out;
    rc = validate_post(ctx, &txn, ws, p, problems, err);
    if (rc != PL_OK)
        goto out;
    const char *cmp = str(p, "campaign_id");
    if (cmp) {
        char c[EX_ID_MAX];
        snprintf(c, sizeof c, "%s", cmp);
        json_object_set_new(p, "campaign_id", json_null());
        rc = ex_campaign_link_txn(&txn, ws, p, c, err);
        if (rc != PL_OK)
            goto out;
    }
    rc = ex_media_refs_add(&txn, ws, json_object_get(p, "media_ids"), str(p, "id"), err);
    for (size_t i = 0; rc == PL_OK && i < json_array_size(json_object_get(p, "targets")); i++)
        rc = ex_media_refs_add(
            &txn, ws,
            json_object_get(json_array_get(json_object_get(p, "targets"), i), "media_ids"),
            str(p, "id"), err);
    if (rc != PL_OK)
        goto out;
    if (sched >= 0) {
        set_schedule(p, sched);
        json_object_set_new(p, "status", json_string("scheduled"));
        rc = ex_queue_set(&txn, p, ws, sched);
        if (rc == PL_OK)
            rc = emit_post(ctx, &txn, ws, "post.scheduled", p);
        if (rc != PL_OK)
            goto out;
    }
    rc = ex_obj_store(&txn, posts.db, ws, posts.kind, p);
    if (rc != PL_OK)
        goto out;
    ex_post_present(p);
    rc = ex_idem_finish(ctx, &txn, &idem, p);
    if (rc != PL_OK)
        goto out;
    rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    *out = p;
    p = NULL;
out:
    ex_txn_abort(&txn);
    json_decref(p);
    json_decref(problems);
    return rc;
}

/* Loads post_id from args in txn. */
static pl_rc load_post(ex_txn *txn, const char *ws, const json_t *args, json_t **post, ex_err *err)
{
    const char *id = NULL;
    pl_rc rc = ex_arg_id(args, "post_id", "pst", &id, err);
    if (rc != PL_OK)
        return rc;
    return ex_obj_load(txn, posts.db, ws, posts.kind, id, posts.field, posts.what, post, err);
}

pl_rc ex_post_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out, ex_err *err)
{
    static const char *const allowed[] = {"post_id", NULL};
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &posts, ws, args, 0, &txn, out, err);
    ex_txn_abort(&txn);
    if (rc == PL_OK)
        ex_post_present(*out);
    return rc;
}

typedef struct post_filter {
    const char *status;
    const char *campaign_id;
    const char *platform;
    int64_t from_ms, to_ms; /* -1: open */
} post_filter;

static int64_t post_time_ms(const json_t *p)
{
    const json_t *s = json_object_get(p, "scheduled_at_ms");
    if (json_is_integer(s))
        return json_integer_value(s);
    int64_t ms = 0;
    const char *c = str(p, "created_at");
    if (c && ex_time_parse(c, &ms) == PL_OK)
        return ms;
    return 0;
}

static int post_keep(const json_t *p, void *arg)
{
    const post_filter *f = arg;
    if (f->status && !is_status(p, f->status))
        return 0;
    if (f->campaign_id) {
        const char *c = str(p, "campaign_id");
        if (!c || strcmp(c, f->campaign_id) != 0)
            return 0;
    }
    if (f->platform) {
        int found = 0;
        const json_t *ts = json_object_get(p, "targets");
        for (size_t i = 0; i < json_array_size(ts) && !found; i++) {
            const char *pl = str(json_array_get(ts, i), "platform");
            found = pl && strcmp(pl, f->platform) == 0;
        }
        if (!found)
            return 0;
    }
    if (f->from_ms >= 0 || f->to_ms >= 0) {
        int64_t t = post_time_ms(p);
        if (f->from_ms >= 0 && t < f->from_ms)
            return 0;
        if (f->to_ms >= 0 && t >= f->to_ms)
            return 0;
    }
    return 1;
}

pl_rc ex_post_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out, ex_err *err)
{
    static const char *const allowed[] = {"status", "campaign_id", "platform", "from",
                                          "to",     "limit",       "cursor",   NULL};
    post_filter f = {.from_ms = -1, .to_ms = -1};
    ex_platform p;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_enum(args, "status", EX_ARG_OPTIONAL, post_states, &f.status, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_str(args, "campaign_id", EX_ARG_OPTIONAL, EX_ID_MAX, &f.campaign_id, err);
    if (rc == PL_OK && !ex_id_valid(f.campaign_id, "cmp"))
        return ex_err_set(err, PL_ERR_INVALID, "campaign_id", "not a valid campaign id");
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_str(args, "platform", EX_ARG_OPTIONAL, 32, &f.platform, err);
    if (rc == PL_OK && ex_platform_parse(f.platform, &p) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "platform", "unknown platform \"%.32s\"",
                          f.platform);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    static const char *const range[] = {"from", "to"};
    for (int i = 0; i < 2; i++) {
        const char *s = NULL;
        rc = ex_arg_str(args, range[i], EX_ARG_OPTIONAL, 40, &s, err);
        if (rc == PL_OK) {
            int64_t ms;
            if (ex_time_parse(s, &ms) != PL_OK)
                return ex_err_set(err, PL_ERR_INVALID, range[i],
                                  "not an RFC 3339 date-time with offset");
            *(i ? &f.to_ms : &f.from_ms) = ms;
        } else if (rc != PL_ERR_NOT_FOUND) {
            return rc;
        }
    }
    if (f.from_ms >= 0 && f.to_ms >= 0 && f.to_ms <= f.from_ms)
        return ex_err_set(err, PL_ERR_INVALID, "to", "must be later than from");
    ex_listing l = {.name = "posts",
                    .scan_db = EX_DB_POSTS,
                    .scan_kind = "pst",
                    .filter = post_keep,
                    .filter_arg = &f,
                    .present = ex_post_present};
    if (f.campaign_id) {
        /* The campaign index is one range "<ws>|cpl|<campaign id>|": O(page) too. */
        char scan_kind[EX_ID_MAX + 8];
        snprintf(scan_kind, sizeof scan_kind, "cpl|%s", f.campaign_id);
        l.scan_db = EX_DB_CAMPAIGNS;
        l.scan_kind = scan_kind;
        l.resolve_db = EX_DB_POSTS;
        l.resolve_kind = "pst";
        return ex_list_run(ctx, ws, &l, args, out, err);
    }
    return ex_list_run(ctx, ws, &l, args, out, err);
}

/* ---- update / delete ---- */

static pl_rc media_refs_all(ex_txn *txn, const char *ws, const json_t *p, int add, ex_err *err)
{
    pl_rc rc = PL_OK;
    const char *id = str(p, "id");
    const json_t *ts = json_object_get(p, "targets");
    for (size_t i = 0; rc == PL_OK && i <= json_array_size(ts); i++) {
        const json_t *ids = json_object_get(i == 0 ? p : json_array_get(ts, i - 1), "media_ids");
        if (!ids)
            continue;
        rc = add ? ex_media_refs_add(txn, ws, ids, id, err) : ex_media_refs_del(txn, ws, ids, id);
    }
    return rc;
}

pl_rc ex_post_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    static const char *const allowed[] = {
        "post_id",   "expected_version", "text",        "title",       "link",
        "media_ids", "targets",          "account_ids", "campaign_id", NULL};
    ex_txn txn = {0};
    json_t *p = NULL, *problems = json_array();
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &posts, ws, args, 1, &txn, &p, err);
    if (rc == PL_OK)
        rc = require_status(p, editable, "only draft or scheduled posts can be edited", err);
    if (rc != PL_OK)
        goto out;
    rc = media_refs_all(&txn, ws, p, 0, err);
    if (rc != PL_OK)
        goto out;
    rc = apply_content(args, p, 0, "", err);
    if (rc != PL_OK)
        goto out;
    rc = parse_targets(&txn, ws, args, p, 0, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    rc = media_refs_all(&txn, ws, p, 1, err);
    if (rc != PL_OK)
        goto out;
    const json_t *cv = json_object_get(args, "campaign_id");
    if (cv) {
        const char *c = json_string_value(cv);
        if (!json_is_null(cv) && (!c || !ex_id_valid(c, "cmp"))) {
            rc = ex_err_set(err, PL_ERR_INVALID, "campaign_id", "not a valid campaign id");
            goto out;
        }
        char cbuf[EX_ID_MAX] = "";
        if (c)
            snprintf(cbuf, sizeof cbuf, "%s", c);
        rc = ex_campaign_link_txn(&txn, ws, p, c ? cbuf : NULL, err);
        if (rc != PL_OK)
            goto out;
    }
    rc = validate_post(ctx, &txn, ws, p, problems, err);
    if (rc == PL_OK)
        rc = ex_obj_save(ctx, &posts, &txn, ws, p);
    if (rc != PL_OK)
        goto out;
    ex_post_present(p);
    *out = p;
    p = NULL;
out:
    ex_txn_abort(&txn);
    json_decref(p);
    json_decref(problems);
    return rc;
}

pl_rc ex_post_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    static const char *const allowed[] = {"post_id", "expected_version", NULL};
    ex_txn txn = {0};
    json_t *p = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &posts, ws, args, 1, &txn, &p, err);
    if (rc == PL_OK && is_status(p, "publishing"))
        rc = locked(p, err);
    if (rc == PL_OK)
        rc = ex_queue_set(&txn, p, ws, -1);
    if (rc == PL_OK)
        rc = ex_campaign_link_txn(&txn, ws, p, NULL, err);
    if (rc == PL_OK)
        rc = media_refs_all(&txn, ws, p, 0, err);
    if (rc == PL_OK)
        rc = ex_obj_remove(&posts, &txn, ws, p, out);
    ex_txn_abort(&txn);
    json_decref(p);
    return rc;
}

/* ---- validate / schedule / unschedule ---- */

pl_rc ex_post_validate(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err)
{
    ex_txn txn = {0};
    json_t *p = NULL, *problems = json_array();
    int64_t sched;
    ex_err first = {0};
    *out = NULL;
    pl_rc rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc != PL_OK)
        goto out;
    if (json_object_get(args, "post_id")) {
        static const char *const allowed[] = {"post_id", NULL};
        rc = ex_args_only(args, allowed, err);
        if (rc == PL_OK)
            rc = load_post(&txn, ws, args, &p, err);
    } else {
        rc = build_post(ctx, &txn, ws, args, &p, &sched, err);
    }
    if (rc != PL_OK)
        goto out;
    rc = validate_post(ctx, &txn, ws, p, problems, &first);
    if (rc != PL_OK && rc != PL_ERR_INVALID && rc != PL_ERR_NOT_FOUND && rc != PL_ERR_UNSUPPORTED) {
        if (err)
            *err = first;
        goto out;
    }
    *out = json_pack("{s:b,s:O}", "valid", json_array_size(problems) == 0, "problems", problems);
    rc = PL_OK;
out:
    ex_txn_abort(&txn);
    json_decref(p);
    json_decref(problems);
    return rc;
}

pl_rc ex_post_schedule(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err)
{
    static const char *const allowed[] = {"post_id", "scheduled_at", "timezone", "expected_version",
                                          NULL};
    ex_txn txn = {0};
    json_t *p = NULL, *problems = json_array();
    const char *at = NULL, *tz = NULL;
    int64_t ms;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_str(args, "scheduled_at", EX_ARG_REQUIRED, 40, &at, err);
    if (rc == PL_OK) {
        rc = ex_arg_str(args, "timezone", EX_ARG_OPTIONAL, 64, &tz, err);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &posts, ws, args, 1, &txn, &p, err);
    if (rc == PL_OK)
        rc = ex_schedule_check(ctx, at, tz, &ms, err);
    if (rc == PL_OK)
        rc = require_status(p, editable, "only a draft or scheduled post can be scheduled", err);
    if (rc != PL_OK)
        goto out;
    rc = validate_post(ctx, &txn, ws, p, problems, err);
    if (rc != PL_OK)
        goto out;
    set_schedule(p, ms);
    if (tz)
        json_object_set_new(p, "timezone", json_string(tz));
    json_object_set_new(p, "status", json_string("scheduled"));
    rc = ex_queue_set(&txn, p, ws, ms);
    if (rc != PL_OK)
        goto out;
    ex_obj_touch(p, core_clock_now_ms(ctx->clock));
    rc = emit_post(ctx, &txn, ws, "post.scheduled", p);
    if (rc == PL_OK)
        rc = ex_obj_store(&txn, posts.db, ws, posts.kind, p);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    ex_post_present(p);
    *out = p;
    p = NULL;
out:
    ex_txn_abort(&txn);
    json_decref(p);
    json_decref(problems);
    return rc;
}

pl_rc ex_post_unschedule(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err)
{
    static const char *const allowed[] = {"post_id", "expected_version", NULL};
    ex_txn txn = {0};
    json_t *p = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &posts, ws, args, 1, &txn, &p, err);
    if (rc == PL_OK)
        rc = require_status(p, scheduled_only, "only a scheduled post can be unscheduled", err);
    if (rc == PL_OK)
        rc = ex_queue_set(&txn, p, ws, -1);
    if (rc != PL_OK)
        goto out;
    set_schedule(p, -1);
    json_object_set_new(p, "status", json_string("draft"));
    rc = ex_obj_save(ctx, &posts, &txn, ws, p);
    if (rc != PL_OK)
        goto out;
    ex_post_present(p);
    *out = p;
    p = NULL;
out:
    ex_txn_abort(&txn);
    json_decref(p);
    return rc;
}

/* ---- publish now / retry ---- */

/* Claims in one transaction (after prepare() moves the post into publishing), calls the
 * connectors, records. */
static pl_rc publish_common(const ex_ctx *ctx, const char *ws, const json_t *args, const char *op,
                            int retry, json_t **out, ex_err *err)
{
    ex_txn txn = {0};
    json_t *p = NULL, *replay = NULL;
    ex_pub_job *job = calloc(1, sizeof *job);
    int force = 0;
    *out = NULL;
    if (!job)
        return PL_ERR_NOMEM;
    static const char *const allowed_pub[] = {"post_id", "idempotency_key", NULL};
    static const char *const allowed_retry[] = {"post_id", "idempotency_key", "force", NULL};
    pl_rc rc = ex_args_only(args, retry ? allowed_retry : allowed_pub, err);
    if (rc != PL_OK)
        goto out;
    rc = ex_arg_bool(args, "force", EX_ARG_OPTIONAL, &force, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        goto out;
    rc = ex_idem_begin(ctx, &txn, ws, op, args, &job->idem, &replay, err);
    if (rc != PL_OK)
        goto out;
    if (replay) {
        *out = replay;
        goto out;
    }
    rc = load_post(&txn, ws, args, &p, err);
    if (rc != PL_OK)
        goto out;
    json_t *ts = json_object_get(p, "targets");
    if (!retry) {
        if (!is_status(p, "draft") && !is_status(p, "scheduled")) {
            rc = is_status(p, "publishing")
                     ? ex_err_set(err, PL_ERR_STATE, "post_id",
                                  "post %s is already being published", str(p, "id"))
                     : ex_err_set(err, PL_ERR_STATE, "post_id",
                                  "post %s is %s; use retry for failed targets", str(p, "id"),
                                  str(p, "status"));
            goto out;
        }
        json_t *problems = json_array();
        rc = validate_post(ctx, &txn, ws, p, problems, err);
        json_decref(problems);
        if (rc != PL_OK)
            goto out;
    } else {
        if (!is_status(p, "failed") && !is_status(p, "partially_published") &&
            !is_status(p, "publishing")) {
            rc = ex_err_set(err, PL_ERR_STATE, "post_id",
                            "post %s is %s; only failed or partially published posts can be "
                            "retried",
                            str(p, "id"), str(p, "status"));
            goto out;
        }
        size_t again = 0, unconfirmed = 0;
        for (size_t i = 0; i < json_array_size(ts); i++) {
            json_t *t = json_array_get(ts, i);
            int is_unc = strcmp(str(t, "status"), "unconfirmed") == 0;
            int is_failed = strcmp(str(t, "status"), "failed") == 0;
            unconfirmed += is_unc;
            if (is_failed || (is_unc && force)) {
                json_object_set_new(t, "status", json_string("pending"));
                json_object_set_new(t, "failures", json_integer(0));
                json_object_set_new(t, "error", json_null());
                json_object_set_new(t, "next_attempt_at", json_null());
                json_object_set_new(t, "next_attempt_at_ms", json_null());
                again++;
            }
        }
        if (again == 0) {
            rc = unconfirmed
                     ? ex_err_set(err, PL_ERR_STATE, "force",
                                  "%zu target%s of post %s %s unconfirmed (the platform may "
                                  "have published it); pass force: true to publish again",
                                  unconfirmed, unconfirmed == 1 ? "" : "s", str(p, "id"),
                                  unconfirmed == 1 ? "is" : "are")
                     : ex_err_set(err, PL_ERR_STATE, "post_id",
                                  "post %s has no failed target to retry", str(p, "id"));
            goto out;
        }
    }
    char owner[64];
    snprintf(owner, sizeof owner, "api:%s", op);
    rc = ex_pub_claim_txn(ctx, &txn, p, owner, EX_CLAIM_NOW, job, err);
    if (rc != PL_OK)
        goto out;
    rc = ex_idem_mark_in_flight(ctx, &txn, &job->idem);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    ex_pub_call(ctx, job);
    rc = ex_pub_record(ctx, job, out, err);
out:
    ex_txn_abort(&txn);
    json_decref(p);
    if (job)
        ex_pub_job_clear(job);
    free(job);
    return rc;
}

pl_rc ex_post_publish(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    return publish_common(ctx, ws, args, "post.publish", 0, out, err);
}

pl_rc ex_post_retry(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err)
{
    return publish_common(ctx, ws, args, "post.retry", 1, out, err);
}

pl_rc ex_post_status(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err)
{
    json_t *p = NULL;
    *out = NULL;
    pl_rc rc = ex_post_get(ctx, ws, args, &p, err);
    if (rc != PL_OK)
        return rc;
    json_t *targets = json_array();
    const json_t *ts = json_object_get(p, "targets");
    static const char *const keep[] = {"account_id", "platform",        "status",
                                       "attempts",   "next_attempt_at", "remote_id",
                                       "url",        "published_at",    "error"};
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_object();
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            json_t *v = json_object_get(json_array_get(ts, i), keep[k]);
            json_object_set(t, keep[k], v ? v : json_null());
        }
        json_array_append_new(targets, t);
    }
    *out = json_pack("{s:O,s:O,s:O,s:O,s:o}", "id", json_object_get(p, "id"), "status",
                     json_object_get(p, "status"), "version", json_object_get(p, "version"),
                     "scheduled_at", json_object_get(p, "scheduled_at"), "targets", targets);
    json_decref(p);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

pl_rc ex_post_reconcile(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err)
{
    static const char *const allowed[] = {"post_id", NULL};
    const char *id = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_id(args, "post_id", "pst", &id, err);
    if (rc != PL_OK)
        return rc;
    return ex_pub_reconcile(ctx, ws, id, out, err);
}

/* ---- a removed social account (ex_account_delete) ---- */

/* 1 when the len bytes at p contain needle (the cheap test before parsing a post). */
static int bytes_contain(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (p[i] == needle[0] && memcmp(p + i, needle, n) == 0)
            return 1;
    return 0;
}

/* 1 when a target of post for account_id is still to be published (pending or publishing)
 * and the post is scheduled or publishing. */
static int targets_account(const json_t *post, const char *account_id)
{
    if (!is_status(post, "scheduled") && !is_status(post, "publishing"))
        return 0;
    const json_t *ts = json_object_get(post, "targets");
    for (size_t i = 0; i < json_array_size(ts); i++) {
        const json_t *t = json_array_get(ts, i);
        const char *acc = str(t, "account_id"), *st = str(t, "status");
        if (acc && strcmp(acc, account_id) == 0 && st &&
            (strcmp(st, "pending") == 0 || strcmp(st, "publishing") == 0))
            return 1;
    }
    return 0;
}

/* The posts of ws that targets_account(), as a new array (*out). One pass over the
 * workspace's "<ws>|pst|" range; only values that mention the id are parsed. */
static pl_rc posts_targeting(ex_txn *txn, const char *ws, const char *account_id, json_t **out)
{
    char prefix[EX_KEY_MAX + 1];
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *found = json_array();
    *out = NULL;
    int n = snprintf(prefix, sizeof prefix, "%s|pst|", ws);
    if (!found)
        return PL_ERR_NOMEM;
    if (!ex_ws_valid(ws) || n < 0 || (size_t)n >= sizeof prefix) {
        json_decref(found);
        return PL_ERR_INVALID;
    }
    if (mdb_cursor_open(txn->mdb, ex_store_dbi(txn->st, EX_DB_POSTS), &cur) != 0) {
        json_decref(found);
        return PL_ERR_STORE;
    }
    k.mv_data = prefix;
    k.mv_size = (size_t)n;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < (size_t)n || memcmp(k.mv_data, prefix, (size_t)n) != 0)
            break;
        if (!bytes_contain(v.mv_data, v.mv_size, account_id))
            continue;
        json_error_t je;
        json_t *p = json_loadb(v.mv_data, v.mv_size, 0, &je);
        if (p && targets_account(p, account_id))
            json_array_append(found, p);
        json_decref(p);
    }
    mdb_cursor_close(cur);
    if (r != 0 && r != MDB_NOTFOUND) {
        json_decref(found);
        return PL_ERR_STORE;
    }
    *out = found;
    return PL_OK;
}

/* Fails p's pending targets for account_id, recomputes its status and queue entry, emits the
 * final event when the status became final, and stores it. *failed += targets failed. */
static pl_rc fail_targets(const ex_ctx *ctx, ex_txn *txn, const char *ws, json_t *p,
                          const char *account_id, size_t *failed)
{
    int64_t now = core_clock_now_ms(ctx->clock), due = -1;
    int pending = 0;
    char was[32];
    snprintf(was, sizeof was, "%s", str(p, "status") ? str(p, "status") : "");
    json_t *ts = json_object_get(p, "targets");
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_array_get(ts, i);
        const char *acc = str(t, "account_id"), *st = str(t, "status");
        if (!st || strcmp(st, "pending") != 0)
            continue;
        if (acc && strcmp(acc, account_id) == 0) {
            json_object_set_new(t, "status", json_string("failed"));
            json_object_set_new(
                t, "error",
                json_pack("{s:s,s:s}", "code", "account_removed", "message", "account removed"));
            json_object_set_new(t, "next_attempt_at", json_null());
            json_object_set_new(t, "next_attempt_at_ms", json_null());
            (*failed)++;
            continue;
        }
        pending = 1;
        const json_t *nx = json_object_get(t, "next_attempt_at_ms");
        int64_t d = json_is_integer(nx) ? json_integer_value(nx) : now;
        if (due < 0 || d < due)
            due = d;
    }
    pl_rc rc = PL_OK;
    /* A scheduled post with other targets left stays scheduled at its time; otherwise the
     * status follows the targets as after any failure (exec/publish.h). */
    if (!(strcmp(was, "scheduled") == 0 && pending)) {
        ex_post_status_recompute(p);
        rc = ex_queue_set(txn, p, ws, due);
    }
    const char *ev =
        strcmp(was, str(p, "status")) != 0 ? ex_event_for_final_status(str(p, "status")) : NULL;
    ex_obj_touch(p, now);
    if (rc == PL_OK && ev)
        rc = emit_post(ctx, txn, ws, ev, p);
    if (rc == PL_OK)
        rc = ex_obj_store(txn, posts.db, ws, posts.kind, p);
    return rc;
}

pl_rc ex_post_account_removed_txn(const ex_ctx *ctx, ex_txn *txn, const char *ws,
                                  const char *account_id, int apply, size_t *n_posts,
                                  size_t *n_failed)
{
    json_t *found = NULL, *p;
    size_t i;
    *n_posts = 0;
    *n_failed = 0;
    pl_rc rc = posts_targeting(txn, ws, account_id, &found);
    if (rc != PL_OK)
        return rc;
    *n_posts = json_array_size(found);
    json_array_foreach(found, i, p)
    {
        if (!apply)
            break;
        rc = fail_targets(ctx, txn, ws, p, account_id, n_failed);
        if (rc != PL_OK)
            break;
    }
    json_decref(found);
    return rc;
}
