/*
 * bench/exec/bench_exec.c — the execution layer's figures, each against a baseline measured in
 * the same run (docs/performance.md, "Execution layer"):
 *
 *   1. creates per second: ex_post_create (argument checks, connector validation, idempotency,
 *      JSON, one write transaction) vs a raw LMDB put of a value of the same size, one
 *      transaction each; both with MDB_NOSYNC, and both durable (fsync per commit).
 *   2. list latency: one page of 25 (ex_post_list) in a workspace of 10^3, 10^5 and 10^6 posts,
 *      as ratios to the 10^3 case: listing cost must not grow with the store size. The bulk of
 *      the posts is loaded directly (one transaction per 10^4) to keep the run short.
 *   3. scheduler claim throughput: due posts claimed, published (sandbox) and recorded per
 *      second by ex_scheduler_run_once, vs creates per second.
 *
 * Usage: bench_exec [max_posts]   (default 1000000; POSTLY_BENCH_QUICK=1 uses 100000)
 * Data goes to a mkdtemp directory under $TMPDIR, removed at the end.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec/account.h"
#include "exec/args.h"
#include "exec/connector.h"
#include "exec/obj.h"
#include "exec/post.h"
#include "exec/scheduler.h"
#include "exec/store.h"

#define WS "ws_bench"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* benchmarks measure elapsed time, not the clock */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[2048];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                rmtree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

typedef struct env {
    char dir[512];
    ex_store *st;
    ex_connectors reg;
    core_fake_clock clock;
    core_log log;
    ex_ctx ctx;
    char acc[EX_ID_MAX];
} env;

static int env_open(env *e, const char *base, const char *name, unsigned flags)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s/%s", base, name);
    core_fake_clock_init(&e->clock, 1800000000000LL);
    if (ex_store_open(e->dir, (size_t)16 << 30, flags, &e->st) != PL_OK ||
        ex_connectors_init_sandbox(&e->reg) != PL_OK)
        return -1;
    e->log.level = CORE_LOG_OFF;
    e->ctx.store = e->st;
    e->ctx.clock = &e->clock.base;
    e->ctx.log = &e->log;
    ex_limits_default(&e->ctx.limits);
    e->ctx.limits.lease_ms = 3600000;
    ex_connectors_install(&e->reg, &e->ctx);
    json_t *a = json_pack("{s:s,s:s}", "platform", "x", "display_name", "bench"), *o = NULL;
    if (ex_account_create(&e->ctx, WS, a, &o, NULL) != PL_OK)
        return -1;
    snprintf(e->acc, sizeof e->acc, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    json_decref(a);
    return 0;
}

static void env_close(env *e)
{
    ex_store_free(e->st);
    ex_connectors_free(&e->reg);
}

/* Creates n posts through the service; returns creates per second. */
static double service_creates(env *e, int n, int64_t sched_ahead_ms)
{
    json_t *a = json_pack("{s:s,s:[s]}", "text", "benchmark post with a little text #bench",
                          "account_ids", e->acc);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        json_t *o = NULL;
        if (sched_ahead_ms > 0) {
            char at[40];
            ex_time_format(core_clock_now_ms(&e->clock.base) + sched_ahead_ms, at, sizeof at);
            json_object_set_new(a, "scheduled_at", json_string(at));
        }
        ex_err err = {0};
        if (ex_post_create(&e->ctx, WS, a, &o, &err) != PL_OK) {
            fprintf(stderr, "create failed: %s\n", err.msg);
            exit(1);
        }
        json_decref(o);
        core_fake_clock_advance(&e->clock, 1);
    }
    double dt = now_s() - t0;
    json_decref(a);
    return n / dt;
}

/* The baseline: a raw LMDB put of a same-size value, one transaction each. */
static double raw_puts(env *e, int n, size_t vlen, int base)
{
    char *v = malloc(vlen);
    memset(v, 'v', vlen);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        ex_txn txn;
        char key[64];
        snprintf(key, sizeof key, "raw|%012d", base + i);
        if (ex_txn_begin(e->st, 1, &txn) != PL_OK ||
            ex_txn_put_raw(&txn, EX_DB_META, key, v, vlen) != PL_OK || ex_txn_commit(&txn) != PL_OK)
            exit(1);
    }
    double dt = now_s() - t0;
    free(v);
    return n / dt;
}

static double median5(double *v)
{
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    return v[2];
}

typedef struct worker {
    env *e;
    int n;
} worker;

static void *create_main(void *arg)
{
    worker *w = arg;
    json_t *a = json_pack("{s:s,s:[s]}", "text", "benchmark post with a little text #bench",
                          "account_ids", w->e->acc);
    for (int i = 0; i < w->n; i++) {
        json_t *o = NULL;
        if (ex_post_create(&w->e->ctx, WS, a, &o, NULL) != PL_OK)
            exit(1);
        json_decref(o);
    }
    json_decref(a);
    return NULL;
}

/* Durable creates from 4 threads at once; the clock is the real one (threads share it). */
static double threaded_creates(const char *base, const char *name, unsigned flags)
{
    enum { THREADS = 4, EACH = 100 };
    env e;
    if (env_open(&e, base, name, flags) != 0)
        exit(1);
    e.ctx.clock = core_clock_real();
    pthread_t th[THREADS];
    worker w[THREADS];
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){&e, EACH};
        pthread_create(&th[i], NULL, create_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    env_close(&e);
    return THREADS * EACH / dt;
}

/* Size of one stored post, for the baseline. */
static size_t post_size(env *e)
{
    json_t *a = json_pack("{s:s,s:[s]}", "text", "benchmark post with a little text #bench",
                          "account_ids", e->acc),
           *o = NULL;
    ex_post_create(&e->ctx, WS, a, &o, NULL);
    char *s = json_dumps(o, JSON_COMPACT);
    size_t n = strlen(s) + 20;
    free(s);
    json_decref(o);
    json_decref(a);
    return n;
}

/* Bulk load up to total posts (copies of a template with fresh ids), 10^4 per transaction. */
static void bulk_load(env *e, long have, long total)
{
    json_t *a = json_pack("{s:s,s:[s]}", "text", "bulk", "account_ids", e->acc), *tmpl = NULL;
    if (ex_post_create(&e->ctx, WS, a, &tmpl, NULL) != PL_OK)
        exit(1);
    json_decref(a);
    for (long i = have; i < total;) {
        ex_txn txn;
        if (ex_txn_begin(e->st, 1, &txn) != PL_OK)
            exit(1);
        for (long k = 0; k < 10000 && i < total; k++, i++) {
            char id[EX_ID_MAX];
            ex_id_new(&e->clock.base, "pst", id, sizeof id);
            json_object_set_new(tmpl, "id", json_string(id));
            if (ex_obj_store(&txn, EX_DB_POSTS, WS, "pst", tmpl) != PL_OK)
                exit(1);
            if (k % 16 == 0)
                core_fake_clock_advance(&e->clock, 1);
        }
        if (ex_txn_commit(&txn) != PL_OK)
            exit(1);
    }
    json_decref(tmpl);
}

/* Median time of one page of 25 from the start and from a cursor in the middle. */
static double page_us(env *e)
{
    enum { R = 301 };
    double t[R];
    json_t *a = json_pack("{s:i}", "limit", 25), *o = NULL;
    /* A cursor near the middle: walk a few pages to get one. */
    char mid[600] = "";
    ex_post_list(&e->ctx, WS, a, &o, NULL);
    snprintf(mid, sizeof mid, "%s", json_string_value(json_object_get(o, "next_cursor")));
    json_decref(o);
    for (int r = 0; r < R; r++) {
        json_t *args = json_pack("{s:i}", "limit", 25);
        if (r % 2)
            json_object_set_new(args, "cursor", json_string(mid));
        double t0 = now_s();
        if (ex_post_list(&e->ctx, WS, args, &o, NULL) != PL_OK)
            exit(1);
        t[r] = (now_s() - t0) * 1e6;
        json_decref(o);
        json_decref(args);
    }
    json_decref(a);
    for (int i = 1; i < R; i++) /* insertion sort: R is small */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[R / 2];
}

int main(int argc, char **argv)
{
    long max_posts = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (getenv("POSTLY_BENCH_QUICK"))
        max_posts = 100000;
    if (max_posts < 1000)
        max_posts = 1000;
    const char *tmp = getenv("TMPDIR");
    char base[512];
    snprintf(base, sizeof base, "%s/postly-bench-exec-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        return 1;
    env e;

    /* 1. creates per second */
    if (env_open(&e, base, "nosync", EX_STORE_NOSYNC) != 0)
        return 1;
    size_t vlen = post_size(&e);
    double raw_ns = raw_puts(&e, 20000, vlen, 0);
    double svc_ns = service_creates(&e, 20000, 0);
    env_close(&e);
    if (env_open(&e, base, "durable", 0) != 0)
        return 1;
    /* fsync cost drifts on a shared disk: interleave 5 rounds and keep the medians. */
    double rd[5], sd[5];
    for (int r = 0; r < 5; r++) {
        rd[r] = raw_puts(&e, 100, vlen, 100 * r);
        sd[r] = service_creates(&e, 100, 0);
    }
    double raw_d = median5(rd), svc_d = median5(sd);
    env_close(&e);
    printf("exec creates/s (MDB_NOSYNC): service %.0f, raw LMDB put %.0f, ratio %.2f\n", svc_ns,
           raw_ns, svc_ns / raw_ns);
    printf("exec creates/s (durable):    service %.0f, raw LMDB put %.0f, ratio %.2f\n", svc_d,
           raw_d, svc_d / raw_d);

    /* 1b. durable creates from 4 threads: plain commits vs group commit, 5 interleaved
     * rounds, medians (fsync cost on this shared disk drifts a lot between seconds) */
    double plain[5], group[5];
    for (int r = 0; r < 5; r++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "plain%d", r);
        snprintf(n2, sizeof n2, "group%d", r);
        plain[r] = threaded_creates(base, n1, 0);
        group[r] = threaded_creates(base, n2, EX_STORE_GROUP_COMMIT);
    }
    double pm = median5(plain), gm = median5(group);
    printf("exec creates/s (durable, 4 threads): plain %.0f, group commit %.0f, ratio %.2f\n", pm,
           gm, gm / pm);

    /* 2. list latency vs store size */
    if (env_open(&e, base, "list", EX_STORE_NOSYNC) != 0)
        return 1;
    long sizes[3] = {1000, 100000, max_posts};
    double us[3];
    long have = 0;
    for (int k = 0; k < 3; k++) {
        bulk_load(&e, have, sizes[k]);
        have = sizes[k];
        us[k] = page_us(&e);
    }
    for (int k = 0; k < 3; k++)
        printf("exec list page of 25 at %ld posts: %.1f us median, ratio to 10^3: %.2f\n", sizes[k],
               us[k], us[k] / us[0]);
    env_close(&e);

    /* 3. scheduler claim throughput */
    if (env_open(&e, base, "sched", EX_STORE_NOSYNC) != 0)
        return 1;
    enum { DUE = 5000 };
    double creates = service_creates(&e, DUE, 60000);
    core_fake_clock_advance(&e.clock, 120000);
    ex_scheduler *s = NULL;
    ex_sched_stats st = {0};
    ex_scheduler_new(&e.ctx, "bench", &s);
    double t0 = now_s();
    int64_t due = 0;
    while (ex_scheduler_run_once(s, 64, &st) == PL_OK &&
           ex_scheduler_next_due(&e.ctx, &due) == PL_OK && due >= 0 &&
           due <= core_clock_now_ms(&e.clock.base))
        ;
    double dt = now_s() - t0;
    printf("exec scheduler: %zu posts claimed+published+recorded in %.2f s = %.0f/s; "
           "ratio to creates/s %.2f\n",
           st.posts, dt, st.posts / dt, (st.posts / dt) / creates);
    ex_scheduler_free(s);
    env_close(&e);
    rmtree(base);
    return st.posts == DUE ? 0 : 1;
}
