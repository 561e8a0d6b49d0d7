/*
 * bench/webhook/bench_webhook.c — what webhooks cost the rest of the system, each against a
 * baseline measured in the same run (docs/performance.md, "Webhooks"):
 *
 *  1. enqueue: a write transaction that stores a post-sized JSON record (the baseline) versus
 *     the same transaction plus ex_webhook_enqueue() for 0, 1 and 5 subscribers; once with
 *     MDB_NOSYNC (the CPU cost inside the writer lock) and once durable (what a publishing
 *     transaction actually pays, fsync included).
 *  2. delivery: N signed deliveries through the dispatcher to an evhttp receiver on loopback
 *     (claim, sign, POST, record) versus a bare evhttp client posting the same body to the
 *     same receiver with the same concurrency (no store, no signature).
 *
 * Rounds are interleaved and the best round of each is kept (the least disturbed on a shared
 * machine); medians are printed too. Exit status 0 always: nothing is asserted.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "exec/store.h"
#include "exec/webhook.h"

#define ROUNDS      7
#define TXNS        2000
#define DELIVERIES  2000
#define CONCURRENCY 8
#define WS          "wsp_bench"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double best_of(double *v, int n, double *median)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *median = v[n / 2];
    return v[0];
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void die(const char *what, pl_rc rc)
{
    fprintf(stderr, "bench_webhook: %s: %s\n", what, pl_strerror(rc));
    exit(1);
}

/* ---- 1. enqueue ---- */

typedef struct store_fx {
    char dir[256];
    ex_store *st;
    ex_ctx ctx;
    json_t *post, *data;
} store_fx;

static void store_open(store_fx *f, unsigned flags, int subscribers)
{
    memset(f, 0, sizeof *f);
    const char *base = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/postly-bench-webhook-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(f->dir))
        die("mkdtemp", PL_ERR_IO);
    pl_rc rc = ex_store_open(f->dir, 0, flags, &f->st);
    if (rc != PL_OK)
        die("store", rc);
    f->ctx.store = f->st;
    f->ctx.clock = core_clock_real();
    ex_limits_default(&f->ctx.limits);
    for (int i = 0; i < subscribers; i++) {
        json_t *args = json_pack("{s:s, s:[s]}", "url", "https://hooks.example.com/postly",
                                 "events", "post.published"),
               *out = NULL;
        ex_err err;
        rc = ex_webhook_create(&f->ctx, WS, args, NULL, &out, &err);
        if (rc != PL_OK)
            die(err.msg, rc);
        json_decref(out);
        json_decref(args);
    }
    /* A post of realistic size: text, three targets with results. */
    f->post = json_pack(
        "{s:s, s:s, s:s, s:i, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, "
        "s:s}]}",
        "id", "pst_0192f3a1b2c3k3j9abcdefghjkmn", "status", "published", "text",
        "Launch day! Our new product is live; read the story on the blog and "
        "tell us what you think. #launch #product",
        "version", 3, "targets", "platform", "x", "status", "published", "url",
        "https://x.com/i/status/1234567890123456789", "platform", "linkedin", "status", "published",
        "url", "https://www.linkedin.com/feed/update/urn:li:share:1234567890123456789/", "platform",
        "facebook", "status", "published", "url", "https://www.facebook.com/1234567890123456789");
    f->data = json_pack("{s:s, s:s, s:O}", "post_id", "pst_0192f3a1b2c3k3j9abcdefghjkmn", "status",
                        "published", "targets", json_object_get(f->post, "targets"));
}

static void store_close(store_fx *f)
{
    json_decref(f->post);
    json_decref(f->data);
    ex_store_free(f->st);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* n write transactions; with_event adds ex_webhook_enqueue to each. µs per txn. */
static double run_txns(store_fx *f, int with_event, int n)
{
    char key[64];
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        ex_txn txn;
        pl_rc rc = ex_txn_begin(f->st, 1, &txn);
        snprintf(key, sizeof key, WS "|pst|bench_%06d", i);
        if (rc == PL_OK)
            rc = ex_txn_put_json(&txn, EX_DB_POSTS, key, f->post);
        if (rc == PL_OK && with_event)
            rc = ex_webhook_enqueue(&f->ctx, &txn, WS, "post.published", f->data);
        if (rc == PL_OK)
            rc = ex_txn_commit(&txn);
        else
            ex_txn_abort(&txn);
        if (rc != PL_OK)
            die("txn", rc);
    }
    return (now_us() - t0) / n;
}

static void bench_enqueue(unsigned flags, int n, const char *what)
{
    static const int subs[] = {0, 1, 5};
    store_fx fx[3] = {0};
    double base[ROUNDS], with[3][ROUNDS];
    for (int s = 0; s < 3; s++)
        store_open(&fx[s], flags, subs[s]);
    for (int r = 0; r < ROUNDS; r++) {
        base[r] = run_txns(&fx[0], 0, n);
        for (int s = 0; s < 3; s++)
            with[s][r] = run_txns(&fx[s], 1, n);
    }
    double med, b = best_of(base, ROUNDS, &med);
    printf("enqueue (write transaction of one post record, %s, %d txns/round, best of %d)\n", what,
           n, ROUNDS);
    printf("  %-44s %8.2f us/txn (median %.2f)  1.00 x\n", "baseline: put the post", b, med);
    for (int s = 0; s < 3; s++) {
        char label[80];
        double m, w = best_of(with[s], ROUNDS, &m);
        snprintf(label, sizeof label, "put + enqueue, %d subscriber%s", subs[s],
                 subs[s] == 1 ? "" : "s");
        printf("  %-44s %8.2f us/txn (median %.2f)  %.2f x\n", label, w, m, w / b);
    }
    for (int s = 0; s < 3; s++)
        store_close(&fx[s]);
}

/* ---- 2. delivery ---- */

typedef struct sink {
    struct evhttp *http;
    int port;
    long count;
} sink;

static void on_sink(struct evhttp_request *req, void *arg)
{
    sink *s = arg;
    s->count++;
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void sink_start(struct event_base *base, sink *s)
{
    memset(s, 0, sizeof *s);
    s->http = evhttp_new(base);
    evhttp_set_gencb(s->http, on_sink, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (!bs || getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0)
        die("bind", PL_ERR_IO);
    s->port = ntohs(sa.sin_port);
}

/* Baseline: a bare client, CONCURRENCY requests in flight, a new connection per request
 * (as the dispatcher does: Connection: close). */
typedef struct bare {
    struct event_base *base;
    int port;
    const char *body;
    long started, done, total;
} bare;

static void bare_start(bare *b);

static void on_bare_done(struct evhttp_request *req, void *arg)
{
    bare *b = arg;
    (void)req;
    b->done++;
    if (b->started < b->total)
        bare_start(b);
}

static void bare_start(bare *b)
{
    struct evhttp_connection *c =
        evhttp_connection_base_new(b->base, NULL, "127.0.0.1", (unsigned short)b->port);
    evhttp_connection_free_on_completion(c);
    struct evhttp_request *req = evhttp_request_new(on_bare_done, b);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Connection", "close");
    evbuffer_add(evhttp_request_get_output_buffer(req), b->body, strlen(b->body));
    b->started++;
    evhttp_make_request(c, req, EVHTTP_REQ_POST, "/hook");
}

static double run_bare(struct event_base *base, int port, const char *body)
{
    bare b = {base, port, body, 0, 0, DELIVERIES};
    double t0 = now_us();
    for (int i = 0; i < CONCURRENCY; i++)
        bare_start(&b);
    while (b.done < b.total)
        event_base_loop(base, EVLOOP_ONCE);
    return (now_us() - t0) / DELIVERIES;
}

static double run_dispatch(struct event_base *base, store_fx *f, sink *s)
{
    ex_webhook_options o;
    ex_webhook_dispatcher *d = NULL;
    ex_webhook_stats st;
    ex_webhook_options_default(&o);
    o.max_in_flight = CONCURRENCY;
    o.poll_ms = 3600 * 1000LL;
    for (int i = 0; i < DELIVERIES; i++) {
        ex_txn txn;
        pl_rc rc = ex_txn_begin(f->st, 1, &txn);
        if (rc == PL_OK)
            rc = ex_webhook_enqueue(&f->ctx, &txn, WS, "post.published", f->data);
        if (rc == PL_OK)
            rc = ex_txn_commit(&txn);
        if (rc != PL_OK)
            die("enqueue", rc);
    }
    pl_rc rc = ex_webhook_dispatcher_new(base, f->st, f->ctx.clock, NULL, &o, &d);
    if (rc != PL_OK)
        die("dispatcher", rc);
    double t0 = now_us();
    ex_webhook_dispatcher_kick(d, NULL);
    do {
        event_base_loop(base, EVLOOP_ONCE);
        ex_webhook_dispatcher_stats(d, &st);
    } while (st.delivered < DELIVERIES);
    double us = (now_us() - t0) / DELIVERIES;
    ex_webhook_dispatcher_free(d);
    (void)s;
    return us;
}

static void bench_delivery(void)
{
    struct event_base *base = event_base_new();
    sink s;
    store_fx f = {0};
    double base_r[ROUNDS], disp_r[ROUNDS];
    sink_start(base, &s);
    store_open(&f, EX_STORE_NOSYNC, 0);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", s.port);
    json_t *args = json_pack("{s:s, s:[s]}", "url", url, "events", "post.published"), *out = NULL;
    ex_webhook_url_policy dev = {1};
    ex_err err;
    pl_rc rc = ex_webhook_create(&f.ctx, WS, args, &dev, &out, &err);
    if (rc != PL_OK)
        die(err.msg, rc);
    json_decref(out);
    json_decref(args);
    char *body = json_dumps(f.data, JSON_COMPACT);
    for (int r = 0; r < ROUNDS; r++) {
        base_r[r] = run_bare(base, s.port, body);
        disp_r[r] = run_dispatch(base, &f, &s);
    }
    double mb, md, b = best_of(base_r, ROUNDS, &mb), d = best_of(disp_r, ROUNDS, &md);
    printf("delivery (loopback receiver answering 200, %d in flight, %d per round, best of %d)\n",
           CONCURRENCY, DELIVERIES, ROUNDS);
    printf("  %-44s %8.1f us each = %7.0f /s (median %.1f)  1.00 x\n",
           "baseline: bare evhttp client POSTs", b, 1e6 / b, mb);
    printf("  %-44s %8.1f us each = %7.0f /s (median %.1f)  %.2f x\n",
           "dispatcher: claim, sign, POST, record", d, 1e6 / d, md, d / b);
    printf("  (receiver saw %ld requests)\n", s.count);
    free(body);
    store_close(&f);
    evhttp_free(s.http);
    event_base_free(base);
}

int main(void)
{
    bench_enqueue(EX_STORE_NOSYNC, TXNS, "MDB_NOSYNC: CPU inside the writer lock");
    bench_enqueue(0, TXNS / 10, "durable: fsync per commit, the production setting");
    bench_delivery();
    return 0;
}
