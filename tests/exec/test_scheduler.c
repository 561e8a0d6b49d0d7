/* tests/exec/test_scheduler.c — the scheduler with a fake clock (never sleeps): due posts,
 * backoff with jitter, retry limits, rate limits, missed windows, dead leases, two scheduler
 * processes on one data directory, and the libevent timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "exec/account.h"
#include "exec/obj.h"
#include "exec/post.h"
#include "exec/publish.h"
#include "exec/sandbox.h"
#include "exec/scheduler.h"
#include "exec/workspace.h"
#include "tests/exec/helpers.h"

#define WS "ws_sched"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX], li[EX_ID_MAX];
} fx;

static void make_account(th_env *e, const char *platform, char *out)
{
    assert_int_equal(th_account(e, WS, platform, platform, out), PL_OK);
}

/* Replaces the sandboxes by ones journaling to dir (the platform's own record of what landed). */
static void journaled(th_env *e, const char *dir)
{
    ex_connectors_free(&e->reg);
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        ex_sandbox_options opt = {.journal_dir = dir};
        ex_connector *c = NULL;
        assert_int_equal(ex_sandbox_new((ex_platform)p, &opt, &c), PL_OK);
        ex_connectors_set_take(&e->reg, c);
    }
    ex_connectors_install(&e->reg, &e->ctx);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    json_t *o = NULL, *a = th_json("{\"name\":\"S\"}");
    assert_int_equal(ex_workspace_ensure(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
    make_account(&f->env, "x", f->x);
    make_account(&f->env, "linkedin", f->li);
    *state = f;
    return 0;
}

static void schedule_post(th_env *e, const char *text, const char *acc, int64_t at_ms, char *id)
{
    char at[40];
    ex_time_format(at_ms, at, sizeof at);
    json_t *a = json_pack("{s:s,s:[s],s:s}", "text", text, "account_ids", acc, "scheduled_at", at);
    json_t *p = NULL;
    ex_err err = {0};
    pl_rc rc = ex_post_create(&e->ctx, WS, a, &p, &err);
    if (rc != PL_OK)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, PL_OK);
    snprintf(id, EX_ID_MAX, "%s", th_str(p, "id"));
    json_decref(p);
    json_decref(a);
}

static json_t *get_post(th_env *e, const char *id)
{
    json_t *a = json_pack("{s:s}", "post_id", id), *p = NULL;
    assert_int_equal(ex_post_get(&e->ctx, WS, a, &p, NULL), PL_OK);
    json_decref(a);
    return p;
}

static const json_t *t0(const json_t *p)
{
    return json_array_get(json_object_get(p, "targets"), 0);
}

static int64_t i_(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static ex_sched_stats run(th_env *e)
{
    ex_scheduler *s = NULL;
    ex_sched_stats st = {0};
    assert_int_equal(ex_scheduler_new(&e->ctx, "test", &s), PL_OK);
    assert_int_equal(ex_scheduler_run_once(s, 16, &st), PL_OK);
    ex_scheduler_free(s);
    return st;
}

static void test_due_post_published_once(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    schedule_post(&f->env, "hello", f->x, TH_T0 + 3600000, id);
    assert_int_equal(run(&f->env).targets, 0); /* not yet due */
    int64_t due;
    assert_int_equal(ex_scheduler_next_due(&f->env.ctx, &due), PL_OK);
    assert_int_equal(due, TH_T0 + 3600000);
    core_fake_clock_advance(&f->env.clock, 3600000);
    ex_sched_stats st = run(&f->env);
    assert_int_equal(st.posts, 1);
    assert_int_equal(st.targets, 1);
    json_t *p = get_post(&f->env, id);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
    assert_int_equal(run(&f->env).targets, 0); /* nothing left */
    assert_int_equal(ex_scheduler_next_due(&f->env.ctx, &due), PL_OK);
    assert_int_equal(due, -1);
}

static void test_backoff_with_jitter(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    const ex_limits *l = &f->env.ctx.limits;
    schedule_post(&f->env, "[sandbox:transient*2] flaky", f->x, TH_T0 + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1000);
    int64_t now = TH_T0 + 1000;
    for (int failure = 1; failure <= 2; failure++) {
        assert_int_equal(run(&f->env).targets, 1);
        json_t *p = get_post(&f->env, id);
        assert_string_equal(th_str(p, "status"), "publishing");
        assert_string_equal(th_str(t0(p), "status"), "pending");
        assert_int_equal(i_(t0(p), "failures"), failure);
        int64_t wait = i_(t0(p), "next_attempt_at_ms") - now;
        int64_t nominal = l->backoff_base_ms << (failure - 1);
        assert_true(wait >= nominal * 3 / 4);
        assert_true(wait <= nominal * 5 / 4);
        json_decref(p);
        /* One millisecond early: nothing happens. */
        core_fake_clock_advance(&f->env.clock, wait - 1);
        assert_int_equal(run(&f->env).targets, 0);
        core_fake_clock_advance(&f->env.clock, 1);
        now += wait;
    }
    assert_int_equal(run(&f->env).targets, 1);
    json_t *p = get_post(&f->env, id);
    assert_string_equal(th_str(p, "status"), "published");
    assert_int_equal(i_(t0(p), "attempts"), 3);
    json_decref(p);
    /* The jitter is deterministic per target and attempt, and bounded. */
    for (int k = 1; k < 12; k++) {
        int64_t d = ex_backoff_ms(l, "pst_a:acc_b", k, 0);
        int64_t nominal = l->backoff_base_ms;
        for (int j = 1; j < k && nominal < l->backoff_max_ms; j++)
            nominal *= 2;
        if (nominal > l->backoff_max_ms)
            nominal = l->backoff_max_ms;
        assert_true(d >= nominal * 3 / 4 && d <= nominal * 5 / 4);
        assert_int_equal(d, ex_backoff_ms(l, "pst_a:acc_b", k, 0));
    }
    assert_int_equal(ex_backoff_ms(l, "k", 1, 999999999), 999999999); /* retry_after wins */
}

static void test_retry_limit(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    f->env.ctx.limits.max_attempts = 3;
    schedule_post(&f->env, "[sandbox:transient] always", f->x, TH_T0 + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(&f->env).targets, 1);
        core_fake_clock_advance(&f->env.clock, f->env.ctx.limits.backoff_max_ms * 2);
    }
    assert_int_equal(run(&f->env).targets, 0);
    json_t *p = get_post(&f->env, id);
    assert_string_equal(th_str(p, "status"), "failed");
    assert_string_equal(th_str(t0(p), "status"), "failed");
    assert_int_equal(i_(t0(p), "attempts"), 3);
    assert_non_null(strstr(th_str(json_object_get(t0(p), "error"), "message"), "gave up after 3"));
    json_decref(p);
}

static void test_rate_limit_waits_without_failing(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    schedule_post(&f->env, "[sandbox:rate_limit*1] busy", f->li, TH_T0 + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1000);
    assert_int_equal(run(&f->env).targets, 1);
    json_t *p = get_post(&f->env, id);
    assert_int_equal(i_(t0(p), "failures"), 0);
    assert_true(i_(t0(p), "next_attempt_at_ms") - (TH_T0 + 1000) >=
                EX_SANDBOX_RETRY_AFTER_DEFAULT_MS);
    json_decref(p);
    core_fake_clock_advance(&f->env.clock, f->env.ctx.limits.backoff_max_ms);
    assert_int_equal(run(&f->env).targets, 1);
    p = get_post(&f->env, id);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
}

static void test_missed_window(void **state)
{
    fx *f = *state;
    char late[EX_ID_MAX], ok[EX_ID_MAX];
    schedule_post(&f->env, "late", f->x, TH_T0 + 1000, late);
    schedule_post(&f->env, "in grace", f->li, TH_T0 + 1000 + f->env.ctx.limits.grace_ms, ok);
    core_fake_clock_advance(&f->env.clock, 1000 + f->env.ctx.limits.grace_ms + 1);
    ex_sched_stats st = run(&f->env);
    assert_int_equal(st.targets, 1);
    json_t *p = get_post(&f->env, late);
    assert_string_equal(th_str(p, "status"), "failed");
    assert_string_equal(th_str(json_object_get(t0(p), "error"), "code"), "missed_window");
    assert_int_equal(i_(t0(p), "attempts"), 0);
    json_decref(p);
    p = get_post(&f->env, ok);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
    /* A smaller configured grace fails what a larger one accepts. */
    char id[EX_ID_MAX];
    f->env.ctx.limits.grace_ms = 10;
    int64_t now = core_clock_now_ms(&f->env.clock.base);
    schedule_post(&f->env, "tight", f->x, now + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1011);
    run(&f->env);
    p = get_post(&f->env, id);
    assert_string_equal(th_str(json_object_get(t0(p), "error"), "code"), "missed_window");
    json_decref(p);
}

static void test_dead_lease_becomes_unconfirmed(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    schedule_post(&f->env, "crashy", f->x, TH_T0 + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1000);
    /* A worker claims and dies before recording. */
    ex_txn txn;
    json_t *p = NULL;
    ex_pub_job *job = calloc(1, sizeof *job);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_obj_load(&txn, EX_DB_POSTS, WS, "pst", id, "post_id", "post", &p, NULL),
                     PL_OK);
    assert_int_equal(ex_pub_claim_txn(&f->env.ctx, &txn, p, "dead", EX_CLAIM_DUE, job, NULL),
                     PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(p);
    ex_pub_job_clear(job);
    free(job);
    /* While the lease lives, nobody touches it. */
    ex_sched_stats st = run(&f->env);
    assert_int_equal(st.targets + st.recovered, 0);
    p = get_post(&f->env, id);
    assert_string_equal(th_str(t0(p), "status"), "publishing");
    json_decref(p);
    core_fake_clock_advance(&f->env.clock, f->env.ctx.limits.lease_ms);
    st = run(&f->env);
    assert_int_equal(st.recovered, 1);
    assert_int_equal(st.targets, 0);
    p = get_post(&f->env, id);
    assert_string_equal(th_str(t0(p), "status"), "unconfirmed");
    assert_string_equal(th_str(p, "status"), "failed");
    json_decref(p);
}

/* Two scheduler processes on one data directory publish 120 posts: each target lands exactly
 * once (counted in the sandboxes' journals, the platforms' own record). */
static void test_two_processes_no_double_publish(void **state)
{
    fx *f = *state;
    enum { N = 120 };
    static char ids[N][EX_ID_MAX];
    for (int i = 0; i < N; i++)
        schedule_post(&f->env, "race", i % 2 ? f->x : f->li, TH_T0 + 1000, ids[i]);
    th_env_close(&f->env); /* never fork with an open LMDB environment */
    char journal[300];
    snprintf(journal, sizeof journal, "%s/journal", f->env.dir);
    assert_int_equal(mkdir(journal, 0700), 0);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            th_env e;
            memset(&e, 0, sizeof e);
            core_fake_clock_init(&e.clock, TH_T0 + 2000);
            th_env_open_at(&e, f->env.dir);
            journaled(&e, journal);
            ex_scheduler *s = NULL;
            char name[16];
            snprintf(name, sizeof name, "proc%d", k);
            if (ex_scheduler_new(&e.ctx, name, &s) != PL_OK)
                _exit(2);
            int64_t due = 0;
            ex_sched_stats st = {0};
            for (int round = 0; round < 1000; round++) {
                if (ex_scheduler_run_once(s, 4, &st) != PL_OK)
                    _exit(3);
                if (ex_scheduler_next_due(&e.ctx, &due) != PL_OK)
                    _exit(4);
                if (due < 0)
                    break;
            }
            ex_scheduler_free(s);
            th_env_close(&e);
            char cf[320];
            snprintf(cf, sizeof cf, "%s/claimed%d", f->env.dir, k);
            FILE *fp = fopen(cf, "w");
            if (!fp)
                _exit(6);
            fprintf(fp, "%zu %zu\n", st.posts, st.targets);
            fclose(fp);
            _exit(due < 0 ? 0 : 5);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* Every claim was made by exactly one process: the claims add up to N. */
    size_t total_posts = 0, total_targets = 0;
    for (int k = 0; k < 2; k++) {
        char cf[320];
        size_t posts = 0, targets = 0;
        snprintf(cf, sizeof cf, "%s/claimed%d", f->env.dir, k);
        FILE *fp = fopen(cf, "r");
        assert_non_null(fp);
        char line[64] = "";
        assert_non_null(fgets(line, sizeof line, fp));
        char *end = NULL;
        posts = strtoul(line, &end, 10);
        targets = strtoul(end, NULL, 10);
        fclose(fp);
        total_posts += posts;
        total_targets += targets;
    }
    assert_int_equal(total_posts, N);
    assert_int_equal(total_targets, N);
    th_env_open_at(&f->env, f->env.dir);
    journaled(&f->env, journal);
    for (int i = 0; i < N; i++) {
        json_t *p = get_post(&f->env, ids[i]);
        assert_string_equal(th_str(p, "status"), "published");
        char key[128];
        int kn = snprintf(key, sizeof key, "%s:%s", ids[i], th_str(t0(p), "account_id"));
        assert_true(kn > 0 && (size_t)kn < sizeof key);
        uint32_t landings = 0;
        const ex_connector *c = f->env.ctx.connectors[i % 2 ? EX_PLATFORM_X : EX_PLATFORM_LINKEDIN];
        assert_int_equal(ex_sandbox_landings(c, key, &landings), PL_OK);
        assert_int_equal(landings, 1);
        assert_int_equal(i_(t0(p), "attempts"), 1);
        json_decref(p);
    }
}

/* A connector that takes 0.6 of a lease per call (on the fake clock) and, on the third call of
 * the post, lets another scheduler look for dead leases. One wrapper per platform; the call
 * count is shared. */
typedef struct slow_shared {
    core_fake_clock *clock;
    const ex_ctx *ctx;
    int calls;
    size_t recovered;
} slow_shared;

typedef struct slow {
    ex_connector base;
    const ex_connector *inner;
    slow_shared *sh;
} slow;

static pl_rc slow_validate(const ex_connector *c, const ex_target *t, ex_problems *p)
{
    return ex_connector_validate(((const slow *)c->impl)->inner, t, p);
}

static pl_rc slow_publish(const ex_connector *c, const ex_target *t, const ex_publish_req *req,
                          ex_outcome *out)
{
    const slow *sl = c->impl;
    slow_shared *sh = sl->sh;
    core_fake_clock_advance(sh->clock, sh->ctx->limits.lease_ms * 6 / 10);
    if (++sh->calls == 3) {
        ex_scheduler *other = NULL;
        ex_sched_stats st = {0};
        if (ex_scheduler_new(sh->ctx, "other", &other) == PL_OK &&
            ex_scheduler_run_once(other, 8, &st) == PL_OK)
            sh->recovered = st.recovered;
        ex_scheduler_free(other);
    }
    return ex_connector_publish(sl->inner, t, req, out);
}

static const ex_connector_ops slow_ops = {.validate = slow_validate, .publish = slow_publish};

static void test_lease_extended_between_slow_calls(void **state)
{
    fx *f = *state;
    char fb[EX_ID_MAX];
    make_account(&f->env, "facebook", fb);
    slow_shared sh = {.clock = &f->env.clock, .ctx = &f->env.ctx};
    slow sl[3];
    const ex_platform plats[3] = {EX_PLATFORM_X, EX_PLATFORM_LINKEDIN, EX_PLATFORM_FACEBOOK};
    for (int i = 0; i < 3; i++) {
        memset(&sl[i], 0, sizeof sl[i]);
        sl[i].inner = ex_connectors_get(&f->env.reg, plats[i]);
        sl[i].sh = &sh;
        sl[i].base.ops = &slow_ops;
        sl[i].base.platform = plats[i];
        sl[i].base.name = "slow";
        sl[i].base.impl = &sl[i];
        f->env.ctx.connectors[plats[i]] = &sl[i].base;
    }
    json_t *a = json_pack("{s:s,s:[s,s,s]}", "text", "slow", "account_ids", f->x, f->li, fb),
           *p = NULL;
    ex_err err = {0};
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &p, &err), PL_OK);
    json_decref(a);
    a = json_pack("{s:O}", "post_id", json_object_get(p, "id"));
    json_decref(p);
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, a, &p, &err), PL_OK);
    json_decref(a);
    /* 1.8 leases went by during the calls, yet the lease was extended between them: the other
     * scheduler took nothing for dead, and all three targets are published. */
    assert_int_equal(sh.calls, 3);
    assert_int_equal(sh.recovered, 0);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
}

static void test_libevent_timer(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    schedule_post(&f->env, "timer", f->x, TH_T0 + 1000, id);
    core_fake_clock_advance(&f->env.clock, 1000);
    struct event_base *base = event_base_new();
    ex_scheduler *s = NULL;
    assert_int_equal(ex_scheduler_new(&f->env.ctx, NULL, &s), PL_OK);
    assert_int_equal(ex_scheduler_attach(s, base, 60000), PL_OK);
    /* The first pass is armed at 0 ms: one loop iteration runs it. */
    assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
    ex_sched_stats st;
    ex_scheduler_stats(s, &st);
    assert_int_equal(st.targets, 1);
    json_t *p = get_post(&f->env, id);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
    ex_scheduler_free(s);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_due_post_published_once, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_backoff_with_jitter, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_retry_limit, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_waits_without_failing, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_missed_window, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_dead_lease_becomes_unconfirmed, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_two_processes_no_double_publish, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_lease_extended_between_slow_calls, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_libevent_timer, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
