/* tests/exec/test_batch.c — group commit (exec/batch.h, exec/store.h "batches") on a real
 * libevent loop and a real LMDB environment in a mkdtemp directory, opened durable
 * (EX_STORE_GROUP_COMMIT: the meta page is synced by the syncer thread).
 *
 * Each "request" is enter / a service call / leave / hold, as postly-mcp does; the loop is run
 * with EVLOOP_ONCE until every held callback has been called (no sleeps). */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "exec/args.h"
#include "exec/batch.h"
#include "exec/draft.h"
#include "exec/post.h"
#include "exec/scheduler.h"
#include "exec/workspace.h"
#include "tests/exec/helpers.h"
#include "tests/common/lmdb_fault.h"

#define WS "ws_batch"

typedef struct fx {
    th_env env;
    struct event_base *base;
    ex_batcher *b;
} fx;

/* A held reply: what the callback saw. */
typedef struct ack {
    fx *f;
    int called;
    pl_rc rc;
    uint64_t syncs; /* syncer syncs completed when the callback ran */
    int visible;    /* the draft was readable by a fresh read transaction at that moment */
    char id[EX_ID_MAX];
} ack;

static void open_env(th_env *e, unsigned flags)
{
    memset(e, 0, sizeof *e);
    th_tmpdir(e->dir, sizeof e->dir);
    core_fake_clock_init(&e->clock, TH_T0);
    assert_int_equal(ex_store_open(e->dir, (size_t)1 << 30, flags, &e->st), PL_OK);
    assert_int_equal(ex_connectors_init_sandbox(&e->reg), PL_OK);
    e->log.level = CORE_LOG_OFF;
    e->log.component = "test";
    e->ctx.store = e->st;
    e->ctx.clock = &e->clock.base;
    e->ctx.log = &e->log;
    ex_limits_default(&e->ctx.limits);
    ex_connectors_install(&e->reg, &e->ctx);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    open_env(&f->env, EX_STORE_GROUP_COMMIT);
    json_t *o = NULL, *a = th_json("{\"name\":\"B\"}");
    assert_int_equal(ex_workspace_ensure(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(ex_batcher_new(f->base, f->env.st, &f->env.log, &f->b), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ex_batcher_free(f->b);
    if (f->base)
        event_base_free(f->base);
    th_env_free(&f->env);
    free(f);
    return 0;
}

/* For the crash test: the store only, no batcher, so no syncer thread exists when it forks
 * (a fork while another thread holds an allocator lock — ASan's, libc's — can leave the child
 * deadlocked on it). */
static int setup_single_thread(void **state)
{
    fx *f = calloc(1, sizeof *f);
    open_env(&f->env, EX_STORE_GROUP_COMMIT);
    *state = f;
    return 0;
}

static int draft_visible(fx *f, const char *id)
{
    json_t *a = json_pack("{s:s}", "draft_id", id), *d = NULL;
    pl_rc rc = ex_draft_get(&f->env.ctx, WS, a, &d, NULL);
    json_decref(a);
    json_decref(d);
    return rc == PL_OK;
}

static void on_done(void *arg, pl_rc rc)
{
    ack *k = arg;
    ex_batch_stats st;
    k->called++;
    k->rc = rc;
    ex_batcher_stats(k->f->b, &st);
    k->syncs = st.syncs;
    k->visible = k->id[0] ? draft_visible(k->f, k->id) : 0;
}

/* One request creating a draft with args (JSON text); returns the service's rc and holds the
 * reply in k when the request touched the batch. */
static pl_rc create(fx *f, const char *args, ack *k, ex_err *err)
{
    json_t *a = th_json(args), *out = NULL;
    memset(k, 0, sizeof *k);
    k->f = f;
    ex_batcher_enter(f->b);
    pl_rc rc = ex_draft_create(&f->env.ctx, WS, a, &out, err);
    int held = ex_batcher_leave(f->b);
    if (rc == PL_OK)
        snprintf(k->id, sizeof k->id, "%s", th_str(out, "id"));
    if (held)
        assert_int_equal(ex_batcher_hold(f->b, on_done, k), PL_OK);
    else
        k->called = -1; /* not held */
    json_decref(out);
    json_decref(a);
    return rc;
}

static void drain(fx *f, ack *k, size_t n)
{
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += k[i].called == 0;
        if (!left)
            return;
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
}

static size_t count_drafts(fx *f)
{
    json_t *a = th_json("{\"limit\":100}"), *out = NULL;
    assert_int_equal(ex_draft_list(&f->env.ctx, WS, a, &out, NULL), PL_OK);
    size_t n = json_array_size(json_object_get(out, "items"));
    json_decref(out);
    json_decref(a);
    return n;
}

static void test_batch_commits_all_once(void **state)
{
    fx *f = *state;
    ack k[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(create(f, "{\"text\":\"t\"}", &k[i], NULL), PL_OK);
    /* In the batch, not committed: no reply yet, and a reader sees nothing. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(k[i].called, 0);
        assert_false(draft_visible(f, k[i].id));
    }
    assert_int_equal(count_drafts(f), 0);
    drain(f, k, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(k[i].called, 1);
        assert_int_equal(k[i].rc, PL_OK);
        assert_true(k[i].visible);
    }
    ex_batch_stats st;
    ex_batcher_stats(f->b, &st);
    assert_int_equal(st.commits, 1); /* five writes, one commit */
    assert_int_equal(st.held, 5);
    assert_int_equal(st.failed, 0);
    assert_int_equal(count_drafts(f), 5);
}

static void test_replies_wait_for_the_sync(void **state)
{
    fx *f = *state;
    ack k;
    assert_int_equal(create(f, "{\"text\":\"t\"}", &k, NULL), PL_OK);
    ex_batch_stats st;
    ex_batcher_stats(f->b, &st);
    uint64_t before = st.syncs;
    drain(f, &k, 1);
    /* Released only by the syncer's callback, after a sync that followed the commit. */
    assert_int_equal(k.rc, PL_OK);
    assert_true(k.syncs > before);
    /* A second batch needs a sync of its own. */
    ack k2;
    assert_int_equal(create(f, "{\"text\":\"u\"}", &k2, NULL), PL_OK);
    drain(f, &k2, 1);
    assert_true(k2.syncs > k.syncs);
}

static void test_failed_write_drops_only_its_own(void **state)
{
    fx *f = *state;
    ack k[3];
    ex_err err = {0};
    assert_int_equal(create(f, "{\"text\":\"first\"}", &k[0], NULL), PL_OK);
    /* A unit that writes, then fails and aborts its transaction. */
    ex_batcher_enter(f->b);
    ex_txn txn = {0};
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_true(txn.child);
    assert_int_equal(ex_txn_put_raw(&txn, EX_DB_META, "test_partial", "x", 1), PL_OK);
    ex_txn_abort(&txn);
    assert_int_equal(ex_batcher_leave(f->b), 1);
    /* A service refusing bad input (no write). */
    assert_int_equal(create(f, "{\"text\":\"t\",\"media_ids\":[\"nope\"]}", &k[1], &err),
                     PL_ERR_INVALID);
    assert_int_equal(create(f, "{\"text\":\"third\"}", &k[2], NULL), PL_OK);
    drain(f, k, 3);
    assert_int_equal(k[0].rc, PL_OK);
    assert_int_equal(k[2].rc, PL_OK);
    assert_true(k[0].visible);
    assert_true(k[2].visible);
    assert_int_equal(count_drafts(f), 2);
    ex_txn r = {0};
    MDB_val v;
    assert_int_equal(ex_txn_begin(f->env.st, 0, &r), PL_OK);
    assert_int_equal(ex_txn_get_raw(&r, EX_DB_META, "test_partial", &v), PL_ERR_NOT_FOUND);
    ex_txn_abort(&r);
}

static void test_idempotency_within_one_batch(void **state)
{
    fx *f = *state;
    ack k[3];
    ex_err err = {0};
    assert_int_equal(create(f, "{\"text\":\"a\",\"idempotency_key\":\"k1\"}", &k[0], NULL), PL_OK);
    /* Same key, same arguments, same batch: the first result is replayed. */
    assert_int_equal(create(f, "{\"text\":\"a\",\"idempotency_key\":\"k1\"}", &k[1], NULL), PL_OK);
    assert_string_equal(k[1].id, k[0].id);
    assert_int_not_equal(k[1].called, -1); /* held too: it revealed unsynced data */
    /* Same key, other arguments: refused, as across batches. */
    assert_int_equal(create(f, "{\"text\":\"b\",\"idempotency_key\":\"k1\"}", &k[2], &err),
                     PL_ERR_CONFLICT);
    assert_string_equal(err.field, "idempotency_key");
    drain(f, k, 2);
    assert_int_equal(count_drafts(f), 1);
    /* And in the next batch, the same answers. */
    ack n[2];
    assert_int_equal(create(f, "{\"text\":\"a\",\"idempotency_key\":\"k1\"}", &n[0], NULL), PL_OK);
    assert_string_equal(n[0].id, k[0].id);
    assert_int_equal(create(f, "{\"text\":\"b\",\"idempotency_key\":\"k1\"}", &n[1], &err),
                     PL_ERR_CONFLICT);
    drain(f, n, 1);
    assert_int_equal(count_drafts(f), 1);
}

/* The scheduler's write on the loop thread while a batch is open: the batch is committed and
 * synced first (no deadlock on LMDB's writer lock), the held reply is still released. */
static void test_scheduler_runs_while_batch_open(void **state)
{
    fx *f = *state;
    char acc[EX_ID_MAX], at[40];
    assert_int_equal(th_account(&f->env, WS, "x", "x", acc), PL_OK);
    ex_time_format(TH_T0 + 60000, at, sizeof at);
    json_t *a = json_pack("{s:s,s:[s],s:s}", "text", "due", "account_ids", acc, "scheduled_at", at);
    json_t *p = NULL;
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &p, NULL), PL_OK);
    json_decref(a);
    core_fake_clock_advance(&f->env.clock, 120000);

    ack k;
    assert_int_equal(create(f, "{\"text\":\"in batch\"}", &k, NULL), PL_OK);
    assert_true(ex_store_batch_pending(f->env.st));
    ex_scheduler *s = NULL;
    ex_sched_stats st = {0};
    assert_int_equal(ex_scheduler_new(&f->env.ctx, "test", &s), PL_OK);
    assert_int_equal(ex_scheduler_run_once(s, 8, &st), PL_OK);
    ex_scheduler_free(s);
    assert_int_equal(st.targets, 1);
    /* The early flush made the batch durable; the reply is released at the commit event. */
    assert_true(draft_visible(f, k.id));
    assert_int_equal(k.called, 0);
    drain(f, &k, 1);
    assert_int_equal(k.rc, PL_OK);
    json_t *g = json_pack("{s:s}", "post_id", th_str(p, "id")), *q = NULL;
    assert_int_equal(ex_post_get(&f->env.ctx, WS, g, &q, NULL), PL_OK);
    assert_string_equal(th_str(q, "status"), "published");
    json_decref(q);
    json_decref(g);
    json_decref(p);
}

/* The data file's descriptors made read-only: LMDB's page writes fail at the batch commit. */
static int break_data_file(const char *dir)
{
    char want[600];
    snprintf(want, sizeof want, "%s/data.mdb", dir);
    return tf_break_data_file(want);
}

static void test_failed_commit_turns_replies_into_errors(void **state)
{
    fx *f = *state;
    ack k[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(create(f, "{\"text\":\"lost\"}", &k[i], NULL), PL_OK);
    assert_true(break_data_file(f->env.dir) > 0);
    drain(f, k, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(k[i].called, 1);
        assert_int_not_equal(k[i].rc, PL_OK);
    }
    ex_batch_stats st;
    ex_batcher_stats(f->b, &st);
    assert_int_equal(st.failed, 3);
    /* Reopened: none of them is there (and the store opens: nothing corrupted). */
    ex_batcher_free(f->b);
    f->b = NULL;
    th_env_close(&f->env);
    th_env_open_at(&f->env, f->env.dir);
    assert_int_equal(count_drafts(f), 0);
}

/* Crash safety: a child writes drafts in batches and reports each id only when its held
 * callback says it is durable; the parent SIGKILLs it mid-stream and reopens the store. The
 * child keeps writes coming while commits are in flight, as postly-mcp does: a write that
 * finds a commit in progress is parked and runs in the next batch. */
typedef struct crash_ack {
    int fd;
    int *outstanding;
    ex_batcher *b;
    const ex_ctx *ctx;
    const json_t *args;
    char id[EX_ID_MAX];
} crash_ack;

static void crash_done(void *arg, pl_rc rc)
{
    crash_ack *c = arg;
    char line[80];
    (*c->outstanding)--;
    if (rc == PL_OK) {
        int n = snprintf(line, sizeof line, "%s\n", c->id);
        if (write(c->fd, line, (size_t)n) != n)
            _exit(9);
    }
    free(c);
}

static void crash_unit(void *arg)
{
    crash_ack *c = arg;
    json_t *out = NULL;
    ex_batcher_enter(c->b);
    pl_rc rc = ex_draft_create(c->ctx, WS, c->args, &out, NULL);
    int held = ex_batcher_leave(c->b);
    if (rc != PL_OK || !held)
        _exit(4);
    snprintf(c->id, sizeof c->id, "%s", th_str(out, "id"));
    json_decref(out);
    if (ex_batcher_hold(c->b, crash_done, c) != PL_OK)
        _exit(5);
}

static void crash_child(const char *dir, int fd)
{
    th_env e;
    int outstanding = 0;
    memset(&e, 0, sizeof e);
    core_fake_clock_init(&e.clock, TH_T0);
    if (ex_store_open(dir, (size_t)1 << 30, EX_STORE_GROUP_COMMIT, &e.st) != PL_OK)
        _exit(2);
    e.log.level = CORE_LOG_OFF;
    e.ctx.store = e.st;
    e.ctx.clock = &e.clock.base;
    e.ctx.log = &e.log;
    ex_limits_default(&e.ctx.limits);
    struct event_base *base = event_base_new();
    ex_batcher *b = NULL;
    if (!base || ex_batcher_new(base, e.st, &e.log, &b) != PL_OK)
        _exit(3);
    json_t *a = json_pack("{s:s}", "text", "crash");
    for (;;) { /* until killed */
        for (int i = 0; i < 8 && outstanding < 32; i++) {
            crash_ack *c = calloc(1, sizeof *c);
            if (!c)
                _exit(6);
            c->fd = fd;
            c->outstanding = &outstanding;
            c->b = b;
            c->ctx = &e.ctx;
            c->args = a;
            outstanding++;
            if (ex_batcher_ready(b))
                crash_unit(c);
            else if (ex_batcher_park(b, crash_unit, NULL, c) != PL_OK)
                _exit(7);
        }
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void test_crash_keeps_every_acknowledged_write(void **state)
{
    fx *f = *state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/crash", f->env.dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(dir, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    static char ids[200][EX_ID_MAX];
    size_t n = 0;
    char line[128];
    while (n < 150 && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(ids[n++], EX_ID_MAX, "%.47s", line);
    }
    kill(pid, SIGKILL); /* mid-stream: batches open, commits and syncs in progress */
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    /* Acknowledged before the kill but not read yet count too. */
    while (n < 200 && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(ids[n++], EX_ID_MAX, "%.47s", line);
    }
    fclose(in);
    assert_true(n >= 150);
    th_env e;
    memset(&e, 0, sizeof e);
    core_fake_clock_init(&e.clock, TH_T0);
    th_env_open_at(&e, dir);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_pack("{s:s}", "draft_id", ids[i]), *d = NULL;
        assert_int_equal(ex_draft_get(&e.ctx, WS, a, &d, NULL), PL_OK);
        json_decref(d);
        json_decref(a);
    }
    th_env_close(&e);
}

/* The early release of a batch at the next commit rests on ex_store_batch_commit's
 * data_synced: 1 only when LMDB really committed (and so fdatasynced) a transaction. */
static void test_data_synced_only_after_a_real_commit(void **state)
{
    fx *f = *state;
    ex_txn t = {0};
    int needs = -1, synced = -1;
    /* A batch that wrote. */
    ex_store_batch_enter(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_META, "ds_test", "1", 1), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    ex_store_batch_leave(f->env.st);
    assert_int_equal(ex_store_batch_commit(f->env.st, &needs, &synced), PL_OK);
    assert_int_equal(needs, 1);
    assert_int_equal(synced, 1);
    /* A batch whose only child wrote and aborted: LMDB commits (and syncs) nothing. */
    ex_store_batch_enter(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_META, "ds_test2", "2", 1), PL_OK);
    ex_txn_abort(&t);
    ex_store_batch_leave(f->env.st);
    assert_true(ex_store_batch_pending(f->env.st));
    assert_int_equal(ex_store_batch_commit(f->env.st, &needs, &synced), PL_OK);
    assert_int_equal(synced, 0);
    /* Nothing open at all. */
    assert_int_equal(ex_store_batch_commit(f->env.st, &needs, &synced), PL_OK);
    assert_int_equal(needs, 0);
    assert_int_equal(synced, 0);
    /* An early flush (a write outside enter/leave while a batch is open) syncs in full. */
    ex_store_batch_enter(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_META, "ds_test3", "3", 1), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    ex_store_batch_leave(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_false(t.child);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_META, "ds_test4", "4", 1), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    assert_int_equal(ex_store_batch_commit(f->env.st, &needs, &synced), PL_OK);
    assert_int_equal(needs, 0); /* nothing left open */
    assert_int_equal(synced, 1);
}

/* ---- the change observer and batches (exec/store.h "the change observer") ----
 * A batch's keys are reported only once the batch is durable — when its held replies are
 * released — never for a failed batch, and always in commit order. */

typedef struct seen {
    char keys[8][EX_KEY_MAX + 1];
    int n;
    ack *k; /* replies whose release must come first */
    size_t nk;
    int before_reply; /* a report came while one of those replies was still held */
} seen;

static void on_key(void *arg, ex_db db, const char *key)
{
    seen *s = arg;
    assert_int_equal(db, EX_DB_DRAFTS);
    for (size_t i = 0; i < s->nk; i++)
        s->before_reply += s->k[i].called == 0;
    if (s->n < 8)
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    s->n++;
}

static void expect_key(const seen *s, int i, const char *id)
{
    char key[EX_KEY_MAX + 1];
    assert_int_equal(ex_key_build(key, sizeof key, WS, "drf", id), PL_OK);
    assert_string_equal(s->keys[i], key);
}

static void test_observer_reports_at_release(void **state)
{
    fx *f = *state;
    ack k[2];
    seen s = {.k = k, .nk = 2};
    ex_store_set_observer(f->env.st, 1u << EX_DB_DRAFTS, on_key, &s);
    assert_int_equal(create(f, "{\"text\":\"one\"}", &k[0], NULL), PL_OK);
    assert_int_equal(create(f, "{\"text\":\"two\"}", &k[1], NULL), PL_OK);
    /* Merged into the open batch: not durable, not reported. */
    assert_int_equal(s.n, 0);
    drain(f, k, 2);
    /* Reported once the replies were released, not a moment before, in commit order. */
    assert_int_equal(k[0].rc, PL_OK);
    assert_int_equal(k[1].rc, PL_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.before_reply, 0);
    expect_key(&s, 0, k[0].id);
    expect_key(&s, 1, k[1].id);
    ex_store_set_observer(f->env.st, 0, NULL, NULL);
}

static void test_observer_silent_for_failed_batch(void **state)
{
    fx *f = *state;
    ack k[2];
    seen s = {.k = k, .nk = 2};
    ex_store_set_observer(f->env.st, 1u << EX_DB_DRAFTS, on_key, &s);
    assert_int_equal(create(f, "{\"text\":\"lost\"}", &k[0], NULL), PL_OK);
    assert_int_equal(create(f, "{\"text\":\"lost\"}", &k[1], NULL), PL_OK);
    assert_true(break_data_file(f->env.dir) > 0);
    drain(f, k, 2);
    assert_int_not_equal(k[0].rc, PL_OK);
    assert_int_not_equal(k[1].rc, PL_OK);
    /* The replies became errors: no report of a change that is not there. */
    assert_int_equal(s.n, 0);
    ex_batcher_free(f->b);
    f->b = NULL;
    assert_int_equal(s.n, 0);
    ex_store_set_observer(f->env.st, 0, NULL, NULL);
    th_env_close(&f->env);
    th_env_open_at(&f->env, f->env.dir);
    assert_int_equal(count_drafts(f), 0);
}

/* A write on the loop thread outside enter/leave (a scheduler timer) while a batch is open:
 * the batch is flushed first and the timer's own write commits durably, but its report waits
 * for the batch's, so reports keep the commit order; a later batch comes after both. */
static void test_observer_keeps_commit_order(void **state)
{
    fx *f = *state;
    ack k[2];
    seen s = {.k = k, .nk = 1};
    json_t *a = th_json("{\"text\":\"timer\"}"), *out = NULL;
    char timer_id[EX_ID_MAX];
    ex_store_set_observer(f->env.st, 1u << EX_DB_DRAFTS, on_key, &s);
    assert_int_equal(create(f, "{\"text\":\"batched\"}", &k[0], NULL), PL_OK);
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, a, &out, NULL), PL_OK); /* top level */
    snprintf(timer_id, sizeof timer_id, "%s", th_str(out, "id"));
    assert_true(draft_visible(f, timer_id)); /* durable, yet not reported before the batch */
    assert_int_equal(s.n, 0);
    drain(f, k, 1);
    assert_int_equal(k[0].rc, PL_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.before_reply, 0);
    expect_key(&s, 0, k[0].id);
    expect_key(&s, 1, timer_id);
    s.k = &k[1];
    assert_int_equal(create(f, "{\"text\":\"later\"}", &k[1], NULL), PL_OK);
    assert_int_equal(s.n, 2);
    drain(f, &k[1], 1);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.before_reply, 0);
    expect_key(&s, 2, k[1].id);
    /* With no batch kept, a top-level write reports at its commit. */
    json_decref(out);
    out = NULL;
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, a, &out, NULL), PL_OK);
    assert_int_equal(s.n, 4);
    expect_key(&s, 3, th_str(out, "id"));
    ex_store_set_observer(f->env.st, 0, NULL, NULL);
    json_decref(out);
    json_decref(a);
}

/* The store's side alone: a committed batch's keys wait for ex_store_batch_settle; a verdict
 * other than PL_OK drops them; an aborted child's keys are never kept. */
static void test_observer_mark_and_settle(void **state)
{
    fx *f = *state;
    seen s = {0};
    ex_txn t = {0};
    uint64_t m1, m2;
    ex_store_set_observer(f->env.st, 1u << EX_DB_DRAFTS, on_key, &s);
    ex_store_batch_enter(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_DRAFTS, WS "|drf|a", "{}", 2), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_DRAFTS, WS "|drf|x", "{}", 2), PL_OK);
    ex_txn_abort(&t);
    ex_store_batch_leave(f->env.st);
    assert_int_equal(ex_store_batch_commit(f->env.st, NULL, NULL), PL_OK);
    m1 = ex_store_batch_mark(f->env.st);
    ex_store_batch_enter(f->env.st);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_DRAFTS, WS "|drf|b", "{}", 2), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    ex_store_batch_leave(f->env.st);
    assert_int_equal(ex_store_batch_commit(f->env.st, NULL, NULL), PL_OK);
    m2 = ex_store_batch_mark(f->env.st);
    assert_true(m2 > m1);
    assert_int_equal(s.n, 0);
    ex_store_batch_settle(f->env.st, m1, PL_ERR_IO); /* the first batch failed: dropped */
    assert_int_equal(s.n, 0);
    ex_store_batch_settle(f->env.st, m2, PL_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.keys[0], WS "|drf|b");
    ex_store_batch_settle(f->env.st, m2, PL_OK); /* settled once */
    assert_int_equal(s.n, 1);
    ex_store_set_observer(f->env.st, 0, NULL, NULL);
}

/* Outside a batch nothing changes: a write is its own durable transaction. */
static void test_no_batch_outside_enter(void **state)
{
    fx *f = *state;
    json_t *a = th_json("{\"text\":\"plain\"}"), *out = NULL;
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, a, &out, NULL), PL_OK);
    assert_false(ex_store_batch_pending(f->env.st));
    assert_true(draft_visible(f, th_str(out, "id")));
    json_decref(out);
    json_decref(a);
}

/* ---- the committer (exec/store.h "the committer"): the commit off the loop thread ----
 * A commit hook stands in for the commit's fsync: it blocks on the committer thread until the
 * test releases it, so the test can see what the loop does meanwhile. A bounded wait (30 s)
 * turns a hook that never runs, or one run on the loop thread itself, into a failure instead
 * of a hang; nothing here sleeps to synchronise. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;   /* commits that reached the hook */
    int released;  /* commits the test let through */
    pthread_t who; /* the thread of the last commit */
    pl_rc fail;    /* returned by the next commit (then PL_OK again) */
} gate;

static void gate_init(gate *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static int timed_wait(gate *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    return pthread_cond_timedwait(&g->cv, &g->mu, &ts);
}

static pl_rc gate_hook(void *arg)
{
    gate *g = arg;
    pl_rc rc;
    pthread_mutex_lock(&g->mu);
    int mine = ++g->entered;
    g->who = pthread_self();
    pthread_cond_broadcast(&g->cv);
    while (g->released < mine)
        if (timed_wait(g) != 0)
            break; /* the test failed to release: let it fail, not hang */
    rc = g->fail;
    g->fail = PL_OK;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Waits (bounded) until n commits have reached the hook. */
static void gate_wait_entered(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->entered < n)
        if (timed_wait(g) != 0)
            break;
    int got = g->entered;
    pthread_mutex_unlock(&g->mu);
    assert_true(got >= n);
}

static void gate_release(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    g->released = n;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Runs the loop until the batcher has submitted n batches to the committer. */
static void until_submitted(fx *f, uint64_t n)
{
    ex_batch_stats st;
    for (;;) {
        ex_batcher_stats(f->b, &st);
        if (st.commits >= n)
            return;
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
}

/* A parked unit: a draft created when the batcher runs it. */
typedef struct unit {
    fx *f;
    ack k;
    int ran;
    int joined_commit; /* the batches submitted before it ran */
    int finished;
    int finish_commit;    /* the batches submitted when its finish part ran */
    int finish_saw_reply; /* its held reply had been released before finish: a bug */
} unit;

static void finish_unit(void *arg)
{
    unit *u = arg;
    ex_batch_stats st;
    ex_batcher_stats(u->f->b, &st);
    u->finished++;
    u->finish_commit = (int)st.commits;
    u->finish_saw_reply = u->k.called != 0;
}

static void run_unit(void *arg)
{
    unit *u = arg;
    ex_batch_stats st;
    ex_batcher_stats(u->f->b, &st);
    u->joined_commit = (int)st.commits;
    u->ran++;
    assert_int_equal(create(u->f, "{\"text\":\"parked\"}", &u->k, NULL), PL_OK);
    assert_int_equal(u->k.called, 0); /* held: in the batch, not durable yet */
}

static void test_loop_serves_while_commit_in_flight(void **state)
{
    fx *f = *state;
    gate g;
    ack a;
    unit u = {.f = f};
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    assert_true(ex_batcher_ready(f->b)); /* idle: a write may run at once */
    assert_int_equal(create(f, "{\"text\":\"first\"}", &a, NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    /* The commit (its fsync) is in progress on the committer thread, not on this one... */
    assert_false(pthread_equal(g.who, pthread_self()));
    /* ...and this thread goes on: reads are served, a write is parked, not blocked. */
    assert_int_equal(count_drafts(f), 0);
    assert_false(ex_batcher_ready(f->b));
    assert_int_equal(ex_batcher_park(f->b, run_unit, finish_unit, &u), PL_OK);
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
    assert_int_equal(u.ran, 0);
    assert_int_equal(a.called, 0); /* not durable: not answered */
    gate_release(&g, 2);           /* this commit and the parked one's */
    drain(f, &a, 1);
    assert_int_equal(a.rc, PL_OK);
    assert_true(a.visible);
    while (!u.ran)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(u.joined_commit, 1); /* it ran in the next batch */
    /* Its finish part ran once that batch had gone to the committer, before its release. */
    assert_int_equal(u.finished, 1);
    assert_int_equal(u.finish_commit, 2);
    assert_false(u.finish_saw_reply);
    drain(f, &u.k, 1);
    assert_int_equal(u.k.rc, PL_OK);
    assert_true(u.k.visible); /* answered only once its batch was committed */
    ex_batch_stats st;
    ex_batcher_stats(f->b, &st);
    assert_int_equal(st.commits, 2);
    assert_int_equal(st.parked, 1);
    assert_int_equal(g.entered, 2);
    assert_int_equal(count_drafts(f), 2);
    ex_store_set_commit_hook(f->env.st, NULL, NULL);
    gate_destroy(&g);
}

/* A failed commit turns every reply of its batch into an error, parked units included when
 * theirs fails; the next batch is unaffected. */
static void test_failed_commit_errors_held_and_parked(void **state)
{
    fx *f = *state;
    gate g;
    ack a[2];
    unit u = {.f = f};
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    assert_int_equal(create(f, "{\"text\":\"one\"}", &a[0], NULL), PL_OK);
    assert_int_equal(create(f, "{\"text\":\"two\"}", &a[1], NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    assert_int_equal(ex_batcher_park(f->b, run_unit, NULL, &u), PL_OK);
    pthread_mutex_lock(&g.mu);
    g.fail = PL_ERR_IO; /* this commit fails */
    pthread_mutex_unlock(&g.mu);
    gate_release(&g, 1);
    drain(f, a, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a[i].called, 1);
        assert_int_equal(a[i].rc, PL_ERR_IO);
        assert_false(a[i].visible);
    }
    /* The parked unit ran in the next batch; make that one fail too. */
    while (!u.ran)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    until_submitted(f, 2);
    gate_wait_entered(&g, 2);
    pthread_mutex_lock(&g.mu);
    g.fail = PL_ERR_STORE;
    pthread_mutex_unlock(&g.mu);
    gate_release(&g, 2);
    drain(f, &u.k, 1);
    assert_int_not_equal(u.k.rc, PL_OK);
    assert_false(u.k.visible);
    ex_batch_stats st;
    ex_batcher_stats(f->b, &st);
    assert_int_equal(st.failed, 3);
    assert_int_equal(count_drafts(f), 0);
    /* Afterwards writes work again (a failed commit is not a failed sync: no fail-stop). */
    ex_store_set_commit_hook(f->env.st, NULL, NULL);
    ack b;
    assert_int_equal(create(f, "{\"text\":\"after\"}", &b, NULL), PL_OK);
    drain(f, &b, 1);
    assert_int_equal(b.rc, PL_OK);
    gate_destroy(&g);
}

/* Shutdown with a commit in flight and units parked: every one is answered — the parked run
 * in a last batch, committed and synced — nothing is dropped. */
static void test_shutdown_answers_parked(void **state)
{
    fx *f = *state;
    gate g;
    ack a;
    unit u[3];
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    assert_int_equal(create(f, "{\"text\":\"in flight\"}", &a, NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    for (int i = 0; i < 3; i++) {
        memset(&u[i], 0, sizeof u[i]);
        u[i].f = f;
        assert_int_equal(ex_batcher_park(f->b, run_unit, finish_unit, &u[i]), PL_OK);
    }
    gate_release(&g, 100);
    ex_batcher_free(f->b); /* without running the loop again */
    f->b = NULL;
    assert_int_equal(a.called, 1);
    assert_int_equal(a.rc, PL_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(u[i].ran, 1);
        assert_int_equal(u[i].finished, 1);
        assert_false(u[i].finish_saw_reply);
        assert_int_equal(u[i].k.called, 1);
        assert_int_equal(u[i].k.rc, PL_OK);
    }
    /* Reopened: all four are on disk. */
    th_env_close(&f->env);
    th_env_open_at(&f->env, f->env.dir);
    assert_int_equal(count_drafts(f), 4);
    gate_destroy(&g);
}

/* A write on the loop thread outside enter/leave (a timer) while a batch is in flight: it
 * waits for that commit, then runs on its own; the parked unit still runs afterwards. */
static void test_early_flush_with_commit_in_flight(void **state)
{
    fx *f = *state;
    gate g;
    ack a;
    unit u = {.f = f};
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    assert_int_equal(create(f, "{\"text\":\"batched\"}", &a, NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    assert_int_equal(ex_batcher_park(f->b, run_unit, NULL, &u), PL_OK);
    gate_release(&g, 100);
    json_t *args = th_json("{\"text\":\"timer\"}"), *out = NULL;
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, args, &out, NULL), PL_OK);
    assert_true(draft_visible(f, th_str(out, "id")));
    json_decref(out);
    json_decref(args);
    drain(f, &a, 1);
    assert_int_equal(a.rc, PL_OK);
    while (!u.ran)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    drain(f, &u.k, 1);
    assert_int_equal(u.k.rc, PL_OK);
    assert_int_equal(count_drafts(f), 3);
    ex_store_set_commit_hook(f->env.st, NULL, NULL);
    gate_destroy(&g);
}

/* A batch committed while units are parked does not ask the syncer: the next batch's commit
 * (its data fdatasync) makes it durable. When that commit fails, the earlier batch's replies
 * become errors too (what the failed fsync dropped is unknown); when it has nothing to write,
 * the syncer syncs the earlier batch after all. */
static void bad_unit(void *arg)
{
    unit *u = arg;
    u->ran++;
    /* A unit that ends up writing nothing (refused before its first write). */
    ex_batcher_enter(u->f->b);
    u->k.called = ex_batcher_leave(u->f->b) ? 0 : -1;
}

static void test_deferred_sync_follows_the_next_commit(void **state)
{
    fx *f = *state;
    gate g;
    ack a, c;
    unit u = {.f = f}, v = {.f = f};
    ex_batch_stats st0, st1;
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    /* 1. The covering commit fails: the deferred batch fails with it. */
    assert_int_equal(create(f, "{\"text\":\"deferred\"}", &a, NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    assert_int_equal(ex_batcher_park(f->b, run_unit, NULL, &u), PL_OK);
    ex_batcher_stats(f->b, &st0);
    gate_release(&g, 1);
    while (!u.ran)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(a.called, 0); /* committed, but its meta page is not synced yet */
    gate_wait_entered(&g, 2);
    pthread_mutex_lock(&g.mu);
    g.fail = PL_ERR_IO;
    pthread_mutex_unlock(&g.mu);
    gate_release(&g, 2);
    drain(f, &a, 1);
    drain(f, &u.k, 1);
    assert_int_not_equal(a.rc, PL_OK);
    assert_int_not_equal(u.k.rc, PL_OK);
    ex_batcher_stats(f->b, &st1);
    assert_int_equal(st1.syncs, st0.syncs); /* no syncer fsync was asked for */
    /* 2. The covering batch writes nothing: the syncer makes the deferred one durable. */
    assert_int_equal(create(f, "{\"text\":\"deferred 2\"}", &c, NULL), PL_OK);
    until_submitted(f, 3);
    gate_wait_entered(&g, 3);
    assert_int_equal(ex_batcher_park(f->b, bad_unit, NULL, &v), PL_OK);
    gate_release(&g, 100);
    drain(f, &c, 1);
    assert_int_equal(c.rc, PL_OK);
    assert_true(c.visible);
    assert_int_equal(v.ran, 1);
    assert_int_equal(v.k.called, -1); /* it did not join */
    ex_batcher_stats(f->b, &st1);
    assert_true(st1.syncs > st0.syncs);
    ex_store_set_commit_hook(f->env.st, NULL, NULL);
    gate_destroy(&g);
}

/* The batcher's wake-up pipe: the lowest free descriptor when ex_batcher_new runs (its first
 * allocation is that pipe; setup runs single-threaded). */
static int g_wake_fd = -1;

static int setup_wake_fd(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    g_wake_fd = p[0];
    return setup(state);
}

/* A batch's reply is never released with the PREVIOUS commit's result. The loop takes batch B
 * (ex_batcher_ready: a tools/call that found an offer) after A's commit finished but before
 * the committer's wake-up was read (its pipe write landed after the loop polled: the test
 * reads it away), and request C joins B. B is held in the commit hook: A's reply may go out,
 * C's must not until B is committed and synced. Regression test: C was released with A. */
static void test_reply_waits_for_its_own_commit(void **state)
{
    fx *f = *state;
    gate g;
    ack a, c;
    int early;
    struct pollfd pfd;
    char buf[64];
    time_t deadline = time(NULL) + 10;
    gate_init(&g);
    ex_store_set_commit_hook(f->env.st, gate_hook, &g);
    assert_int_equal(create(f, "{\"text\":\"first\"}", &a, NULL), PL_OK);
    until_submitted(f, 1);
    gate_wait_entered(&g, 1);
    gate_release(&g, 1); /* A commits; the committer begins B at once and offers it */
    while (!ex_batcher_ready(f->b)) {
        assert_true(time(NULL) < deadline); /* a failure, not a synchronisation */
        sched_yield();
    }
    pfd.fd = g_wake_fd;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 10000), 1); /* the committer's wake-up */
    while (read(g_wake_fd, buf, sizeof buf) > 0)
        ;
    assert_int_equal(create(f, "{\"text\":\"second\"}", &c, NULL), PL_OK);
    drain(f, &a, 1);  /* A's reply: its commit and a sync after it */
    early = c.called; /* B is still in the hook: nothing of C is durable yet */
    /* Before any assertion: the committer must be out of the hook (joined) when g goes. */
    gate_release(&g, 10);
    drain(f, &c, 1);
    ex_store_set_commit_hook(f->env.st, NULL, NULL);
    ex_batcher_free(f->b);
    f->b = NULL;
    gate_destroy(&g);
    assert_int_equal(early, 0);
    assert_int_equal(a.rc, PL_OK);
    assert_true(a.visible);
    assert_int_equal(c.rc, PL_OK);
    assert_true(c.visible);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_commits_all_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_wait_for_the_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_drops_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_within_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_runs_while_batch_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_turns_replies_into_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_every_acknowledged_write,
                                        setup_single_thread, teardown),
        cmocka_unit_test_setup_teardown(test_no_batch_outside_enter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_synced_only_after_a_real_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_reports_at_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_silent_for_failed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_keeps_commit_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_mark_and_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_serves_while_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_errors_held_and_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_answers_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_early_flush_with_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_sync_follows_the_next_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_waits_for_its_own_commit, setup_wake_fd,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
