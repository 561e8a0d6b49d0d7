#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/crypto.h"
#include "exec/idempotency.h"
#include "exec/media.h"
#include "exec/obj.h"
#include "exec/publish.h"
#include "exec/schedule.h"

#define BATCH_DEFAULT 16

struct ex_scheduler {
    const ex_ctx *ctx;
    char name[64];
    struct event *timer;
    int64_t interval_ms;
    ex_sched_stats total;
};

pl_rc ex_scheduler_new(const ex_ctx *ctx, const char *name, ex_scheduler **out)
{
    *out = NULL;
    ex_scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return PL_ERR_NOMEM;
    s->ctx = ctx;
    if (name) {
        snprintf(s->name, sizeof s->name, "%s", name);
    } else {
        char tok[24];
        pl_rc rc = core_random_token(tok, sizeof tok, 9);
        if (rc != PL_OK) {
            free(s);
            return rc;
        }
        snprintf(s->name, sizeof s->name, "sched-%s", tok);
    }
    *out = s;
    return PL_OK;
}

void ex_scheduler_free(ex_scheduler *s)
{
    if (!s)
        return;
    ex_scheduler_detach(s);
    free(s);
}

static void add_stats(ex_sched_stats *a, const ex_sched_stats *b)
{
    a->posts += b->posts;
    a->targets += b->targets;
    a->recovered += b->recovered;
    a->stale += b->stale;
}

/* Splits a queue key "<16 hex>|<ws>|<post id>". */
static int parse_qkey(const MDB_val *k, int64_t *due, char *ws, size_t wssz, char *pid,
                      size_t pidsz)
{
    char buf[EX_KEY_MAX + 1];
    if (k->mv_size >= sizeof buf || k->mv_size < 20)
        return 0;
    memcpy(buf, k->mv_data, k->mv_size);
    buf[k->mv_size] = '\0';
    if (buf[16] != '|')
        return 0;
    buf[16] = '\0';
    char *end = NULL;
    *due = (int64_t)strtoull(buf, &end, 16);
    if (*end)
        return 0;
    char *w = buf + 17, *bar = strchr(w, '|');
    if (!bar)
        return 0;
    *bar = '\0';
    if (strlen(w) >= wssz || strlen(bar + 1) >= pidsz)
        return 0;
    memcpy(ws, w, strlen(w) + 1);
    memcpy(pid, bar + 1, strlen(bar + 1) + 1);
    return 1;
}

pl_rc ex_scheduler_run_once(ex_scheduler *s, size_t max_posts, ex_sched_stats *stats)
{
    const ex_ctx *ctx = s->ctx;
    ex_sched_stats st = {0};
    ex_txn txn = {0};
    MDB_cursor *cur = NULL;
    json_t *keys = json_array();
    ex_pub_job *jobs = NULL;
    size_t njobs = 0, jobs_cap = 0;
    if (max_posts == 0)
        max_posts = BATCH_DEFAULT;
    if (!keys)
        return PL_ERR_NOMEM;
    int64_t now = core_clock_now_ms(ctx->clock);
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc != PL_OK)
        goto out;
    rc = ex_pub_recover_txn(ctx, &txn, 16, &st.recovered);
    if (rc != PL_OK)
        goto out;
    /* Collect due queue keys first (the claim below rewrites the queue). */
    if (mdb_cursor_open(txn.mdb, ex_store_dbi(ctx->store, EX_DB_QUEUE), &cur) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    MDB_val k, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (r == 0 && json_array_size(keys) < max_posts * 2) {
        int64_t due;
        char ws[EX_WS_MAX], pid[EX_ID_MAX];
        if (!parse_qkey(&k, &due, ws, sizeof ws, pid, sizeof pid)) {
            json_array_append_new(keys,
                                  json_pack("{s:s%,s:b}", "key", k.mv_data, k.mv_size, "bad", 1));
        } else {
            if (due > now)
                break;
            json_array_append_new(keys, json_pack("{s:s%,s:s,s:s}", "key", k.mv_data, k.mv_size,
                                                  "ws", ws, "post", pid));
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    /* Jobs are large (every target's buffers): allocated only for the due entries found, so an
     * idle tick allocates nothing. */
    jobs_cap = json_array_size(keys) < max_posts ? json_array_size(keys) : max_posts;
    if (jobs_cap > 0 && !(jobs = calloc(jobs_cap, sizeof *jobs))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(keys, i, e)
    {
        if (njobs >= jobs_cap)
            break;
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *ws = json_string_value(json_object_get(e, "ws"));
        const char *pid = json_string_value(json_object_get(e, "post"));
        json_t *post = NULL;
        if (!ws || ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", pid, "post_id", "post", &post, NULL) !=
                       PL_OK) {
            rc = ex_txn_del(&txn, EX_DB_QUEUE, key);
            st.stale++;
            if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
                goto out;
            rc = PL_OK;
            continue;
        }
        const char *status = json_string_value(json_object_get(post, "status"));
        int claimable = status && (!strcmp(status, "scheduled") || !strcmp(status, "publishing"));
        int64_t version = json_integer_value(json_object_get(post, "version"));
        ex_pub_job *job = &jobs[njobs];
        pl_rc crc = claimable ? ex_pub_claim_txn(ctx, &txn, post, s->name, EX_CLAIM_DUE, job, NULL)
                              : PL_ERR_STATE;
        int wrote = claimable && crc == PL_OK &&
                    json_integer_value(json_object_get(post, "version")) != version;
        if (crc == PL_OK && job->n > 0) {
            st.posts++;
            st.targets += job->n;
            njobs++;
        } else if (crc == PL_ERR_NOMEM || crc == PL_ERR_STORE || crc == PL_ERR_LIMIT) {
            json_decref(post);
            rc = crc;
            goto out;
        } else {
            ex_pub_job_clear(job);
            if (!wrote) {
                /* Not due, not claimable here, or claimed elsewhere (whose record requeues
                 * it): this entry is stale. */
                rc = ex_txn_del(&txn, EX_DB_QUEUE, key);
                if (rc != PL_OK && rc != PL_ERR_NOT_FOUND) {
                    json_decref(post);
                    goto out;
                }
                rc = PL_OK;
                st.stale++;
            }
        }
        json_decref(post);
    }
    rc = ex_txn_commit(&txn);
    if (rc != PL_OK) {
        njobs = 0; /* nothing was claimed */
        goto out;
    }
    for (size_t j = 0; j < njobs; j++) {
        ex_pub_call(ctx, &jobs[j]);
        pl_rc rrc = ex_pub_record(ctx, &jobs[j], NULL, NULL);
        if (rrc != PL_OK)
            core_log_error(ctx->log,
                           "scheduler: recording post %s failed: %s (the lease will "
                           "expire and its targets become unconfirmed)",
                           jobs[j].post_id, pl_strerror(rrc));
    }
out:
    if (cur)
        mdb_cursor_close(cur);
    ex_txn_abort(&txn);
    for (size_t j = 0; j < jobs_cap; j++)
        ex_pub_job_clear(&jobs[j]);
    free(jobs);
    json_decref(keys);
    add_stats(&s->total, &st);
    if (stats)
        add_stats(stats, &st);
    return rc;
}

pl_rc ex_scheduler_next_due(const ex_ctx *ctx, int64_t *due_ms)
{
    ex_txn txn = {0};
    MDB_cursor *cur = NULL;
    *due_ms = -1;
    pl_rc rc = ex_txn_begin(ctx->store, 0, &txn);
    if (rc != PL_OK)
        return rc;
    if (mdb_cursor_open(txn.mdb, ex_store_dbi(ctx->store, EX_DB_QUEUE), &cur) == 0) {
        MDB_val k, v;
        char ws[EX_WS_MAX], pid[EX_ID_MAX];
        if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0)
            parse_qkey(&k, due_ms, ws, sizeof ws, pid, sizeof pid);
        mdb_cursor_close(cur);
    } else {
        rc = PL_ERR_STORE;
    }
    ex_txn_abort(&txn);
    return rc;
}

static void arm(ex_scheduler *s, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    ex_scheduler *s = arg;
    (void)fd;
    (void)what;
    ex_sched_stats st = {0};
    pl_rc rc = ex_scheduler_run_once(s, BATCH_DEFAULT, &st);
    if (rc != PL_OK)
        core_log_warn(s->ctx->log, "scheduler %s: pass failed: %s", s->name, pl_strerror(rc));
    size_t purged = 0;
    (void)ex_idem_purge(s->ctx, 256, &purged);
    (void)ex_media_gc(s->ctx, 24LL * 3600 * 1000, 256, &purged);
    /* A full pass means more may be due: go again at once. Otherwise wake at the next due
     * entry, and at least every interval (another process may add earlier work). */
    int64_t wait = s->interval_ms, due = -1;
    if (st.posts + st.stale >= BATCH_DEFAULT)
        wait = 0;
    else if (ex_scheduler_next_due(s->ctx, &due) == PL_OK && due >= 0) {
        int64_t until = due - core_clock_now_ms(s->ctx->clock);
        if (until < wait)
            wait = until < 0 ? 0 : until;
    }
    arm(s, wait);
}

pl_rc ex_scheduler_attach(ex_scheduler *s, struct event_base *base, int64_t interval_ms)
{
    if (!base || interval_ms < 0)
        return PL_ERR_INVALID;
    ex_scheduler_detach(s);
    s->timer = evtimer_new(base, on_timer, s);
    if (!s->timer)
        return PL_ERR_NOMEM;
    s->interval_ms = interval_ms;
    arm(s, 0);
    return PL_OK;
}

void ex_scheduler_detach(ex_scheduler *s)
{
    if (s && s->timer) {
        event_free(s->timer);
        s->timer = NULL;
    }
}

void ex_scheduler_stats(const ex_scheduler *s, ex_sched_stats *out)
{
    *out = s->total;
}
