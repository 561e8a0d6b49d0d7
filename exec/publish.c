#include "publish.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "exec/account.h"
#include "exec/events.h"
#include "exec/obj.h"
#include "exec/post.h"
#include "exec/schedule.h"

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int streq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Media kinds by the name stored in a medium ("image", ...): a table, not branches. */
static const char *const kind_names[EX_MEDIA__COUNT] = {
    [EX_MEDIA_IMAGE] = "image",
    [EX_MEDIA_GIF] = "gif",
    [EX_MEDIA_VIDEO] = "video",
    [EX_MEDIA_DOCUMENT] = "document",
};

static ex_media_kind kind_of(const char *name)
{
    for (int i = 0; i < EX_MEDIA__COUNT; i++)
        if (streq(name, kind_names[i]))
            return (ex_media_kind)i;
    return EX_MEDIA_DOCUMENT;
}

void ex_target_buf_clear(ex_target_buf *b)
{
    if (!b)
        return;
    json_decref(b->hold);
    memset(b, 0, sizeof *b);
}

/* The only account board/location when exactly one exists. */
static const char *only_id(const json_t *acc, const char *list)
{
    const json_t *a = json_object_get(acc, list);
    if (json_array_size(a) != 1)
        return NULL;
    return str(json_array_get(a, 0), "id");
}

pl_rc ex_target_build(ex_txn *txn, const char *ws, const json_t *post, size_t i, ex_target_buf *b,
                      ex_err *err)
{
    memset(b, 0, sizeof *b);
    b->hold = json_array();
    json_t *p = json_deep_copy(post);
    if (!b->hold || !p) {
        json_decref(p);
        return PL_ERR_NOMEM;
    }
    json_array_append_new(b->hold, p);
    const json_t *t = json_array_get(json_object_get(p, "targets"), i);
    if (!t)
        return PL_ERR_INTERNAL;
    json_t *acc = NULL;
    char field[48];
    snprintf(field, sizeof field, "targets[%zu].account_id", i);
    pl_rc rc = ex_obj_load(txn, EX_DB_ACCOUNTS, ws, "acc", str(t, "account_id"), field,
                           "social account", &acc, err);
    if (rc != PL_OK)
        return rc;
    json_array_append_new(b->hold, acc);
    ex_platform plat;
    if (ex_platform_parse(str(acc, "platform"), &plat) != PL_OK)
        return ex_err_set(err, PL_ERR_INTERNAL, field, "account has an unknown platform");

    b->t.platform = plat;
    b->t.workspace_id = str(p, "workspace_id");
    b->t.account_id = str(t, "account_id");
    b->t.remote_account = str(acc, "remote_account");
    b->t.board_id = str(t, "board_id") ? str(t, "board_id") : only_id(acc, "boards");
    b->t.location_id = str(t, "location_id") ? str(t, "location_id") : only_id(acc, "locations");
    const json_t *text = json_object_get(t, "text");
    if (!text)
        text = json_object_get(p, "text");
    b->t.text = json_string_value(text);
    b->t.text_len = text ? json_string_length(text) : 0;
    b->t.title = str(t, "title") ? str(t, "title") : str(p, "title");
    b->t.link = str(t, "link") ? str(t, "link") : str(p, "link");
    const json_t *settings = json_object_get(t, "settings");
    b->t.settings = json_is_object(settings) ? settings : NULL;
    const json_t *ids = json_object_get(t, "media_ids");
    if (!ids)
        ids = json_object_get(p, "media_ids");
    size_t n = json_array_size(ids);
    if (n > EX_MEDIA_PER_POST)
        n = EX_MEDIA_PER_POST;
    for (size_t k = 0; k < n; k++) {
        json_t *m = NULL;
        snprintf(field, sizeof field, "media_ids[%zu]", k);
        rc = ex_obj_load(txn, EX_DB_MEDIA, ws, "med", json_string_value(json_array_get(ids, k)),
                         field, "medium", &m, err);
        if (rc != PL_OK)
            return rc;
        json_array_append_new(b->hold, m);
        ex_media_ref *r = &b->media[k];
        r->id = str(m, "id");
        r->mime_type = str(m, "mime_type");
        r->kind = kind_of(str(m, "kind"));
        r->size_bytes = (uint64_t)json_integer_value(json_object_get(m, "size_bytes"));
        r->width = (uint32_t)json_integer_value(json_object_get(m, "width"));
        r->height = (uint32_t)json_integer_value(json_object_get(m, "height"));
        r->duration_ms = (uint32_t)json_integer_value(json_object_get(m, "duration_ms"));
    }
    b->t.media = n ? b->media : NULL;
    b->t.media_count = n;
    snprintf(b->idem_key, sizeof b->idem_key, "%s:%s", str(p, "id"), str(t, "account_id"));
    return PL_OK;
}

void ex_post_status_recompute(json_t *post)
{
    const json_t *ts = json_object_get(post, "targets");
    size_t n = json_array_size(ts), published = 0, open = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = str(json_array_get(ts, i), "status");
        published += streq(s, "published");
        open += streq(s, "pending") || streq(s, "publishing");
    }
    const char *st = open             ? "publishing"
                     : published == n ? "published"
                     : published == 0 ? "failed"
                                      : "partially_published";
    json_object_set_new(post, "status", json_string(st));
}

int64_t ex_backoff_ms(const ex_limits *l, const char *target_key, int failures,
                      int64_t retry_after_ms)
{
    int64_t d = l->backoff_base_ms;
    for (int i = 1; i < failures && d < l->backoff_max_ms; i++)
        d *= 2;
    if (d > l->backoff_max_ms)
        d = l->backoff_max_ms;
    /* Jitter: deterministic per target and attempt, so every instance and every test agrees,
     * yet retries of different targets spread out. Factor in [0.75, 1.25]. */
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s|%d", target_key, failures);
    uint8_t h[CORE_SHA256_LEN];
    core_sha256(buf, n > 0 ? (size_t)n : 0, h);
    unsigned r = ((unsigned)h[0] << 8 | h[1]) % 501u;
    d = d * (int64_t)(750 + r) / 1000;
    if (d < retry_after_ms)
        d = retry_after_ms;
    return d;
}

static void set_error(json_t *t, const char *code, const char *msg)
{
    json_object_set_new(t, "error", json_pack("{s:s,s:s}", "code", code, "message", msg));
}

static void set_time(json_t *t, const char *key, const char *key_ms, int64_t ms)
{
    char buf[40];
    ex_time_format(ms, buf, sizeof buf);
    json_object_set_new(t, key, json_string(buf));
    if (key_ms)
        json_object_set_new(t, key_ms, json_integer(ms));
}

static void clear_next(json_t *t)
{
    json_object_set_new(t, "next_attempt_at", json_null());
    json_object_set_new(t, "next_attempt_at_ms", json_null());
}

/* Requeues the post at its earliest pending target (or removes it from the queue). */
static pl_rc requeue(ex_txn *txn, json_t *post, const char *ws, int64_t now)
{
    const json_t *ts = json_object_get(post, "targets");
    int64_t due = -1;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        const json_t *t = json_array_get(ts, i);
        if (!streq(str(t, "status"), "pending"))
            continue;
        const json_t *nx = json_object_get(t, "next_attempt_at_ms");
        int64_t d = json_is_integer(nx) ? json_integer_value(nx) : now;
        if (due < 0 || d < due)
            due = d;
    }
    return ex_queue_set(txn, post, ws, due);
}

static pl_rc emit_final(const ex_ctx *ctx, ex_txn *txn, const char *ws, const json_t *post)
{
    const char *ev = ex_event_for_final_status(str(post, "status"));
    if (!ev)
        return PL_OK;
    json_t *copy = json_deep_copy(post);
    if (!copy)
        return PL_ERR_NOMEM;
    ex_post_present(copy);
    pl_rc rc = ex_event_emit(ctx, txn, ws, ev, copy);
    json_decref(copy);
    return rc;
}

static pl_rc emit_unconfirmed(const ex_ctx *ctx, ex_txn *txn, const char *ws, const json_t *post)
{
    json_t *copy = json_deep_copy(post);
    if (!copy)
        return PL_ERR_NOMEM;
    ex_post_present(copy);
    pl_rc rc = ex_event_emit(ctx, txn, ws, "post.unconfirmed", copy);
    json_decref(copy);
    return rc;
}

static pl_rc claim_key(char *buf, size_t n, const char *ws, const char *post_id)
{
    if (!ex_ws_valid(ws))
        return PL_ERR_INVALID;
    int r = snprintf(buf, n, "%s|%s", ws, post_id);
    return r < 0 || (size_t)r >= n ? PL_ERR_TOO_LARGE : PL_OK;
}

/* Targets left "publishing" by a dead claim become "unconfirmed". */
static size_t mark_unconfirmed(json_t *post)
{
    size_t n = 0;
    json_t *ts = json_object_get(post, "targets");
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_array_get(ts, i);
        if (!streq(str(t, "status"), "publishing"))
            continue;
        json_object_set_new(t, "status", json_string("unconfirmed"));
        set_error(t, "outcome_unknown",
                  "the publisher stopped before recording the platform's answer; check the "
                  "platform, then retry with force: true if it is not there");
        n++;
    }
    return n;
}

pl_rc ex_pub_claim_txn(const ex_ctx *ctx, ex_txn *txn, json_t *post, const char *owner,
                       ex_claim_mode mode, ex_pub_job *job, ex_err *err)
{
    const char *ws = str(post, "workspace_id");
    const char *pid = str(post, "id");
    int64_t now = core_clock_now_ms(ctx->clock);
    char ck[EX_KEY_MAX + 1];
    json_t *claim = NULL;
    pl_rc rc = claim_key(ck, sizeof ck, ws, pid);
    if (rc != PL_OK)
        return rc;
    size_t changed = 0;
    ex_idem keep = job->idem; /* set by the caller before the claim */
    memset(job, 0, sizeof *job);
    job->idem = keep;
    snprintf(job->ws, sizeof job->ws, "%s", ws);
    snprintf(job->post_id, sizeof job->post_id, "%s", pid);
    snprintf(job->owner, sizeof job->owner, "%s", owner);

    if (ex_txn_get_json(txn, EX_DB_CLAIMS, ck, &claim) == PL_OK) {
        int64_t until = json_integer_value(json_object_get(claim, "lease_until_ms"));
        json_decref(claim);
        if (until > now)
            return ex_err_set(err, PL_ERR_BUSY, "post_id",
                              "post %s is being published by another worker; retry shortly", pid);
        changed += mark_unconfirmed(post); /* the previous claim died */
    }

    json_t *ts = json_object_get(post, "targets");
    int64_t sched = json_integer_value(json_object_get(post, "scheduled_at_ms"));
    int has_sched = json_is_integer(json_object_get(post, "scheduled_at_ms"));
    for (size_t i = 0; i < json_array_size(ts) && job->n < EX_TARGETS_MAX; i++) {
        json_t *t = json_array_get(ts, i);
        if (!streq(str(t, "status"), "pending"))
            continue;
        const json_t *nx = json_object_get(t, "next_attempt_at_ms");
        if (mode == EX_CLAIM_DUE) {
            int64_t due = json_is_integer(nx) ? json_integer_value(nx) : (has_sched ? sched : now);
            if (due > now)
                continue;
            int64_t attempts = json_integer_value(json_object_get(t, "attempts"));
            if (attempts == 0 && has_sched && now > sched + ctx->limits.grace_ms) {
                char a[40], b[40], m[256];
                ex_time_format(sched, a, sizeof a);
                ex_time_format(now, b, sizeof b);
                snprintf(m, sizeof m,
                         "missed its window: scheduled for %s, reached at %s, after the grace "
                         "period of %lld s",
                         a, b, (long long)(ctx->limits.grace_ms / 1000));
                json_object_set_new(t, "status", json_string("failed"));
                set_error(t, "missed_window", m);
                clear_next(t);
                changed++;
                continue;
            }
        }
        json_t *acc = NULL;
        if (ex_obj_load(txn, EX_DB_ACCOUNTS, ws, "acc", str(t, "account_id"), "account_id",
                        "social account", &acc, NULL) == PL_OK &&
            streq(str(acc, "state"), "needs_reconnect")) {
            json_decref(acc);
            json_object_set_new(t, "status", json_string("failed"));
            set_error(t, "account_needs_reconnect",
                      "the social account's authorization expired; reconnect it, then retry");
            clear_next(t);
            changed++;
            continue;
        }
        json_decref(acc);
        ex_err sub = {0};
        ex_target_buf *b = &job->tb[job->n];
        rc = ex_target_build(txn, ws, post, i, b, &sub);
        if (rc != PL_OK) {
            ex_target_buf_clear(b);
            if (rc == PL_ERR_NOMEM || rc == PL_ERR_STORE)
                return rc;
            json_object_set_new(t, "status", json_string("failed"));
            set_error(t, rc == PL_ERR_NOT_FOUND ? "not_found" : "invalid", sub.msg);
            clear_next(t);
            changed++;
            continue;
        }
        int64_t attempts = json_integer_value(json_object_get(t, "attempts")) + 1;
        json_object_set_new(t, "attempts", json_integer(attempts));
        json_object_set_new(t, "status", json_string("publishing"));
        clear_next(t);
        job->idx[job->n] = i;
        job->attempt[job->n] = (uint32_t)attempts;
        job->n++;
    }
    if (job->n == 0 && changed == 0)
        return PL_OK; /* nothing due: the post is left exactly as it was */
    ex_post_status_recompute(post);
    rc = requeue(txn, post, ws, now);
    if (rc != PL_OK)
        return rc;
    if (job->n > 0) {
        int64_t lease_until = now + ctx->limits.lease_ms;
        job->leased_at_ms = now;
        json_t *c = json_pack("{s:s,s:I,s:I}", "owner", owner, "lease_until_ms",
                              (json_int_t)lease_until, "claimed_at_ms", (json_int_t)now);
        rc = c ? ex_txn_put_json(txn, EX_DB_CLAIMS, ck, c) : PL_ERR_NOMEM;
        json_decref(c);
    } else {
        rc = ex_txn_del(txn, EX_DB_CLAIMS, ck);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
        if (rc == PL_OK)
            rc = emit_final(ctx, txn, ws, post);
    }
    if (rc != PL_OK)
        return rc;
    ex_obj_touch(post, now);
    return ex_obj_store(txn, EX_DB_POSTS, ws, "pst", post);
}

/* Extends this job's lease when half of it has passed (calls to several targets of one post
 * run one after the other). Only the owner's own, unexpired lease is extended: a lease already
 * taken over stays with its new owner. */
static void renew_lease(const ex_ctx *ctx, ex_pub_job *job)
{
    int64_t now = core_clock_now_ms(ctx->clock);
    if (now - job->leased_at_ms < ctx->limits.lease_ms / 2)
        return;
    char ck[EX_KEY_MAX + 1];
    ex_txn txn = {0};
    json_t *c = NULL;
    if (claim_key(ck, sizeof ck, job->ws, job->post_id) != PL_OK ||
        ex_txn_begin(ctx->store, 1, &txn) != PL_OK)
        return;
    if (ex_txn_get_json(&txn, EX_DB_CLAIMS, ck, &c) == PL_OK &&
        streq(str(c, "owner"), job->owner) &&
        json_integer_value(json_object_get(c, "lease_until_ms")) > now) {
        json_object_set_new(c, "lease_until_ms", json_integer(now + ctx->limits.lease_ms));
        if (ex_txn_put_json(&txn, EX_DB_CLAIMS, ck, c) == PL_OK && ex_txn_commit(&txn) == PL_OK)
            job->leased_at_ms = now;
    }
    ex_txn_abort(&txn);
    json_decref(c);
}

void ex_pub_call(const ex_ctx *ctx, ex_pub_job *job)
{
    for (size_t k = 0; k < job->n; k++) {
        renew_lease(ctx, job);
        ex_target_buf *b = &job->tb[k];
        const ex_connector *c = ctx->connectors[b->t.platform];
        memset(&job->out[k], 0, sizeof job->out[k]);
        if (!c) {
            job->call_rc[k] = PL_ERR_UNSUPPORTED;
            continue;
        }
        ex_publish_req req = {.idempotency_key = b->idem_key,
                              .attempt = job->attempt[k],
                              .now_ms = core_clock_now_ms(ctx->clock)};
        job->call_rc[k] = ex_connector_publish(c, &b->t, &req, &job->out[k]);
    }
}

/* Applies one outcome to target t. *reconnect is set for an expired authorization. */
static void apply_outcome(const ex_ctx *ctx, json_t *t, const char *target_key, pl_rc call_rc,
                          const ex_outcome *o, int64_t now, int *reconnect)
{
    if (call_rc != PL_OK) {
        json_object_set_new(t, "status", json_string("failed"));
        set_error(t, "connector_error", pl_strerror(call_rc));
        clear_next(t);
        return;
    }
    char msg[EX_CONN_MSG_MAX + 64];
    switch (ex_outcome_action(o->kind)) {
    case EX_ACTION_DONE:
        json_object_set_new(t, "status", json_string("published"));
        json_object_set_new(t, "remote_id", json_string(o->remote_id));
        json_object_set_new(t, "url", json_string(o->url));
        set_time(t, "published_at", NULL, o->published_at_ms ? o->published_at_ms : now);
        json_object_set_new(t, "error", json_null());
        clear_next(t);
        return;
    case EX_ACTION_RETRY: {
        int64_t failures = json_integer_value(json_object_get(t, "failures"));
        int64_t attempts = json_integer_value(json_object_get(t, "attempts"));
        if (o->kind != EX_OUTCOME_RATE_LIMITED)
            failures++; /* a rate limit is not a failure of the post */
        json_object_set_new(t, "failures", json_integer(failures));
        if (failures >= ctx->limits.max_attempts ||
            attempts >= 4 * (int64_t)ctx->limits.max_attempts) {
            snprintf(msg, sizeof msg, "gave up after %lld attempts: %s", (long long)attempts,
                     o->message);
            json_object_set_new(t, "status", json_string("failed"));
            set_error(t, *o->code ? o->code : "retries_exhausted", msg);
            clear_next(t);
            return;
        }
        int64_t wait = ex_backoff_ms(&ctx->limits, target_key, (int)(failures ? failures : 1),
                                     o->retry_after_ms);
        json_object_set_new(t, "status", json_string("pending"));
        set_error(t, *o->code ? o->code : ex_outcome_name(o->kind), o->message);
        set_time(t, "next_attempt_at", "next_attempt_at_ms", now + wait);
        return;
    }
    case EX_ACTION_RECONNECT:
        *reconnect = 1;
        json_object_set_new(t, "status", json_string("failed"));
        set_error(t, *o->code ? o->code : "auth_expired", o->message);
        clear_next(t);
        return;
    case EX_ACTION_UNCONFIRMED:
        json_object_set_new(t, "status", json_string("unconfirmed"));
        set_error(t, *o->code ? o->code : "outcome_unknown", o->message);
        clear_next(t);
        return;
    case EX_ACTION_FAIL:
    default:
        json_object_set_new(t, "status", json_string("failed"));
        set_error(t, *o->code ? o->code : ex_outcome_name(o->kind), o->message);
        clear_next(t);
        return;
    }
}

pl_rc ex_pub_record(const ex_ctx *ctx, ex_pub_job *job, json_t **post_out, ex_err *err)
{
    ex_txn txn = {0};
    json_t *post = NULL, *claim = NULL;
    char ck[EX_KEY_MAX + 1];
    if (post_out)
        *post_out = NULL;
    pl_rc rc = claim_key(ck, sizeof ck, job->ws, job->post_id);
    if (rc != PL_OK)
        return rc;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        return rc;
    rc =
        ex_obj_load(&txn, EX_DB_POSTS, job->ws, "pst", job->post_id, "post_id", "post", &post, err);
    if (rc != PL_OK)
        goto out;
    int64_t now = core_clock_now_ms(ctx->clock);
    json_t *ts = json_object_get(post, "targets");
    size_t unconfirmed = 0;
    char was[32];
    snprintf(was, sizeof was, "%s", str(post, "status") ? str(post, "status") : "");
    for (size_t k = 0; k < job->n; k++) {
        json_t *t = json_array_get(ts, job->idx[k]);
        const char *st = str(t, "status");
        /* Only the attempt we claimed: a target recovered as unconfirmed meanwhile still
         * takes the real answer; anything else moved on and is left alone. */
        if (!t || !(streq(st, "publishing") || streq(st, "unconfirmed")) ||
            json_integer_value(json_object_get(t, "attempts")) != (json_int_t)job->attempt[k])
            continue;
        int reconnect = 0;
        apply_outcome(ctx, t, job->tb[k].idem_key, job->call_rc[k], &job->out[k], now, &reconnect);
        unconfirmed += streq(str(t, "status"), "unconfirmed");
        if (reconnect) {
            rc = ex_account_set_state_txn(ctx, &txn, job->ws, str(t, "account_id"),
                                          "needs_reconnect");
            if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
                goto out;
        }
    }
    ex_post_status_recompute(post);
    rc = requeue(&txn, post, job->ws, now);
    if (rc != PL_OK)
        goto out;
    if (ex_txn_get_json(&txn, EX_DB_CLAIMS, ck, &claim) == PL_OK &&
        streq(str(claim, "owner"), job->owner)) {
        rc = ex_txn_del(&txn, EX_DB_CLAIMS, ck);
        if (rc != PL_OK)
            goto out;
    }
    ex_obj_touch(post, now);
    /* An event per change: a claim that decided everything itself (nothing to call) already
     * emitted it. */
    rc = streq(was, str(post, "status")) ? PL_OK : emit_final(ctx, &txn, job->ws, post);
    if (rc == PL_OK && unconfirmed)
        rc = emit_unconfirmed(ctx, &txn, job->ws, post);
    if (rc == PL_OK)
        rc = ex_obj_store(&txn, EX_DB_POSTS, job->ws, "pst", post);
    if (rc != PL_OK)
        goto out;
    ex_post_present(post);
    rc = ex_idem_finish(ctx, &txn, &job->idem, post);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    if (post_out) {
        *post_out = post;
        post = NULL;
    }
out:
    ex_txn_abort(&txn);
    json_decref(claim);
    json_decref(post);
    return rc;
}

void ex_pub_job_clear(ex_pub_job *job)
{
    if (!job)
        return;
    for (size_t k = 0; k < EX_TARGETS_MAX; k++)
        ex_target_buf_clear(&job->tb[k]);
    job->n = 0;
}

pl_rc ex_pub_recover_txn(const ex_ctx *ctx, ex_txn *txn, size_t max, size_t *n)
{
    MDB_cursor *cur = NULL;
    json_t *expired = json_array();
    *n = 0;
    int64_t now = core_clock_now_ms(ctx->clock);
    pl_rc rc = PL_OK;
    if (mdb_cursor_open(txn->mdb, ex_store_dbi(ctx->store, EX_DB_CLAIMS), &cur) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    MDB_val k, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (r == 0 && json_array_size(expired) < max) {
        json_error_t je;
        json_t *c = json_loadb(v.mv_data, v.mv_size, 0, &je);
        int64_t until = c ? json_integer_value(json_object_get(c, "lease_until_ms")) : 0;
        json_decref(c);
        if (until <= now)
            json_array_append_new(expired, json_stringn(k.mv_data, k.mv_size));
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    size_t i;
    json_t *kv;
    json_array_foreach(expired, i, kv)
    {
        const char *key = json_string_value(kv);
        const char *bar = strchr(key, '|');
        json_t *post = NULL;
        if (!bar)
            continue;
        char ws[EX_WS_MAX];
        snprintf(ws, sizeof ws, "%.*s", (int)(bar - key), key);
        rc = ex_txn_del(txn, EX_DB_CLAIMS, key);
        if (rc != PL_OK)
            goto out;
        if (ex_obj_load(txn, EX_DB_POSTS, ws, "pst", bar + 1, "post_id", "post", &post, NULL) !=
            PL_OK)
            continue;
        if (mark_unconfirmed(post) > 0) {
            ex_post_status_recompute(post);
            rc = requeue(txn, post, ws, now);
            if (rc == PL_OK) {
                ex_obj_touch(post, now);
                rc = emit_final(ctx, txn, ws, post);
            }
            if (rc == PL_OK)
                rc = emit_unconfirmed(ctx, txn, ws, post);
            if (rc == PL_OK)
                rc = ex_obj_store(txn, EX_DB_POSTS, ws, "pst", post);
            (*n)++;
        }
        json_decref(post);
        if (rc != PL_OK)
            goto out;
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    json_decref(expired);
    return rc;
}

pl_rc ex_pub_reconcile(const ex_ctx *ctx, const char *ws, const char *post_id, json_t **post_out,
                       ex_err *err)
{
    ex_txn txn = {0};
    json_t *post = NULL;
    ex_pub_job *job = calloc(1, sizeof *job);
    ex_remote_status st[EX_TARGETS_MAX];
    pl_rc crc[EX_TARGETS_MAX];
    if (post_out)
        *post_out = NULL;
    if (!job)
        return PL_ERR_NOMEM;
    /* 1. What to ask, in a read transaction. */
    pl_rc rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc == PL_OK)
        rc = ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", post_id, "post_id", "post", &post, err);
    if (rc != PL_OK)
        goto out;
    const json_t *ts = json_object_get(post, "targets");
    for (size_t i = 0; i < json_array_size(ts) && job->n < EX_TARGETS_MAX; i++) {
        const json_t *t = json_array_get(ts, i);
        if (!streq(str(t, "status"), "unconfirmed"))
            continue;
        if (ex_target_build(&txn, ws, post, i, &job->tb[job->n], NULL) != PL_OK) {
            ex_target_buf_clear(&job->tb[job->n]);
            continue;
        }
        job->idx[job->n] = i;
        job->attempt[job->n] = (uint32_t)json_integer_value(json_object_get(t, "attempts"));
        job->n++;
    }
    ex_txn_abort(&txn);
    json_decref(post);
    post = NULL;
    /* 2. Ask, holding no transaction. */
    int64_t now = core_clock_now_ms(ctx->clock);
    for (size_t k = 0; k < job->n; k++) {
        const ex_connector *c = ctx->connectors[job->tb[k].t.platform];
        ex_status_req req = {.remote_id = NULL,
                             .target = &job->tb[k].t,
                             .idempotency_key = job->tb[k].idem_key,
                             .now_ms = now};
        memset(&st[k], 0, sizeof st[k]);
        crc[k] = c ? ex_connector_status(c, &req, &st[k]) : PL_ERR_UNSUPPORTED;
    }
    /* 3. Record, in a write transaction. */
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", post_id, "post_id", "post", &post, err);
    if (rc != PL_OK)
        goto out;
    const char *before = str(post, "status");
    char old_status[32];
    snprintf(old_status, sizeof old_status, "%s", before ? before : "");
    json_t *tw = json_object_get(post, "targets");
    size_t changed = 0;
    for (size_t k = 0; k < job->n; k++) {
        json_t *t = json_array_get(tw, job->idx[k]);
        if (!t || !streq(str(t, "status"), "unconfirmed") || crc[k] != PL_OK ||
            json_integer_value(json_object_get(t, "attempts")) != (json_int_t)job->attempt[k])
            continue;
        char when[40], msg[200];
        ex_time_format(now, when, sizeof when);
        switch (st[k].state) {
        case EX_REMOTE_LIVE:
        case EX_REMOTE_PROCESSING:
            json_object_set_new(t, "status", json_string("published"));
            json_object_set_new(t, "remote_id", json_string(st[k].remote_id));
            json_object_set_new(t, "url", json_string(st[k].url));
            set_time(t, "published_at", NULL, now);
            json_object_set_new(t, "error", json_null());
            break;
        case EX_REMOTE_DELETED:
            json_object_set_new(t, "status", json_string("failed"));
            snprintf(msg, sizeof msg, "the post was deleted on the platform (checked %s)", when);
            set_error(t, "deleted_remotely", msg);
            break;
        case EX_REMOTE_NOT_FOUND:
        default:
            snprintf(msg, sizeof msg,
                     "not found on the platform as of %s; retry with force: true to publish it",
                     when);
            set_error(t, "not_found_remotely", msg);
            break;
        }
        changed++;
    }
    if (changed) {
        ex_post_status_recompute(post);
        ex_obj_touch(post, now);
        if (strcmp(old_status, str(post, "status")) != 0)
            rc = emit_final(ctx, &txn, ws, post);
        if (rc == PL_OK)
            rc = ex_obj_store(&txn, EX_DB_POSTS, ws, "pst", post);
        if (rc == PL_OK)
            rc = ex_txn_commit(&txn);
        if (rc != PL_OK)
            goto out;
    }
    if (post_out) {
        ex_post_present(post);
        *post_out = post;
        post = NULL;
    }
out:
    ex_txn_abort(&txn);
    json_decref(post);
    ex_pub_job_clear(job);
    free(job);
    return rc;
}
