/* bench/authz/bench_authz.c — authorization-code exchanges and refresh rotations per second:
 * postly-authz against node-oidc-provider configured equivalently (oidc_baseline.mjs), same
 * run, same load generator, same machine (target >= 5x, ARCHITECTURE.md §11).
 *
 * Each round measures five servers one after the other, each its own process on a fresh
 * store: postly-authz durable (its default: a grant is acknowledged once on disk), with
 * --unsafe-no-fsync, and with --unsafe-no-fsync --sign-on-loop (one thread, "1T");
 * oidc-provider with a durable SQLite adapter (node:sqlite, WAL,
 * synchronous=FULL: each write on disk before the adapter returns) and with an in-memory
 * adapter (nothing on disk). It prints each server's rates and requests per second of
 * server CPU, and four pairings: durable vs durable and no-fsync vs in-memory (equal
 * durability; the latter also with postly-authz signing on its loop thread), durable vs
 * in-memory (for information); after BENCH_ROUNDS rounds, the
 * min-max of every ratio.
 *
 * The load generator (this process, libevent) keeps BENCH_CONC (default 32) requests in
 * flight over keep-alive connections. Codes are created ahead of time through each server's
 * own store (postly-authz: the LMDB store API; oidc-provider: its models), the refresh tokens
 * are those the exchanges returned, each rotated once. BENCH_N (default 4000) requests per
 * phase (BENCH_N_SQLITE, default min(BENCH_N, 1000), for the SQLite baseline, which runs at
 * disk speed), after BENCH_WARM (default 500) warm-up exchanges. BENCH_INLINE=1 runs the
 * durable postly-authz with --inline-fsync; BENCH_AUTHZ_BIN measures another binary.
 *
 * Subcommands seed and drive serve callgrind_authz.sh (below). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "authz/store.h"
#include "core/crypto.h"
#include "core/http.h"

#define RESOURCE     "http://127.0.0.1:8081/mcp"
#define REDIRECT_ENC "http%3A%2F%2F127.0.0.1%2Fcb"
#define RESOURCE_ENC "http%3A%2F%2F127.0.0.1%3A8081%2Fmcp"

typedef struct item {
    char code[64];
    char verifier[64];
    char rt[128];
} item;

typedef struct load {
    struct event_base *base;
    struct evhttp_connection **conns;
    int conc;
    int port;
    item *items;
    size_t n, next, done, ok;
    int phase; /* 0 exchange, 1 refresh */
    const char *client_id;
} load;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The load generator's event base: with the epoll changelist, as postly-authz's
 * (core_http_base_new: two epoll_ctl per request fewer for the generator too, which shares
 * the two cores with the server under test); BENCH_GEN_PLAIN=1 for a plain event_base_new(). */
static struct event_base *gen_base(void)
{
    return getenv("BENCH_GEN_PLAIN") ? event_base_new() : core_http_base_new();
}

static void send_next(load *l, struct evhttp_connection *c);

static void on_reply(struct evhttp_request *req, void *arg)
{
    void **a = arg;
    load *l = a[0];
    struct evhttp_connection *c = a[1];
    size_t idx = (size_t)(uintptr_t)a[2];
    free(a);
    l->done++;
    if (req && evhttp_request_get_response_code(req) == 200) {
        /* The generator stays cheap: find the refresh token by hand instead of parsing. */
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *body = (const char *)evbuffer_pullup(in, -1);
        const char *p = body ? memmem(body, len, "\"refresh_token\":\"", 17) : NULL;
        if (p) {
            const char *e = memchr(p + 17, '"', len - (size_t)(p + 17 - body));
            if (e && (size_t)(e - p - 17) < sizeof l->items[idx].rt) {
                memcpy(l->items[idx].rt, p + 17, (size_t)(e - p - 17));
                l->items[idx].rt[e - p - 17] = '\0';
                l->ok++;
            }
        }
    } else if (l->done - l->ok < 3) {
        struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
        fprintf(stderr, "bench_authz: request failed: %d %.*s\n",
                req ? evhttp_request_get_response_code(req) : 0,
                in ? (int)evbuffer_get_length(in) : 0,
                in ? (const char *)evbuffer_pullup(in, -1) : "");
    }
    if (l->done == l->n)
        event_base_loopbreak(l->base);
    else
        send_next(l, c);
}

static void send_next(load *l, struct evhttp_connection *c)
{
    struct evhttp_request *req;
    char body[512];
    void **a;
    size_t idx;
    if (l->next >= l->n)
        return;
    idx = l->next++;
    if (l->phase == 0)
        snprintf(body, sizeof body,
                 "grant_type=authorization_code&client_id=%s&code=%s&code_verifier=%s"
                 "&redirect_uri=%s&resource=%s",
                 l->client_id, l->items[idx].code, l->items[idx].verifier, REDIRECT_ENC,
                 RESOURCE_ENC);
    else
        snprintf(body, sizeof body, "grant_type=refresh_token&client_id=%s&refresh_token=%s",
                 l->client_id, l->items[idx].rt);
    a = malloc(3 * sizeof *a);
    a[0] = l;
    a[1] = c;
    a[2] = (void *)(uintptr_t)idx;
    req = evhttp_request_new(on_reply, a);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/x-www-form-urlencoded");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    evhttp_make_request(c, req, EVHTTP_REQ_POST, "/token");
}

/* Runs items[from, from+n) through phase; returns requests per second. */
static double run(struct event_base *base, int port, int conc, item *items, size_t n, int phase,
                  const char *client_id, size_t *ok)
{
    load l = {0};
    double t0, t1;
    l.base = base;
    l.conc = conc;
    l.port = port;
    l.items = items;
    l.n = n;
    l.phase = phase;
    l.client_id = client_id;
    l.conns = calloc((size_t)conc, sizeof(struct evhttp_connection *));
    for (int i = 0; i < conc; i++)
        l.conns[i] = evhttp_connection_base_new(base, NULL, "127.0.0.1", (uint16_t)port);
    t0 = now_s();
    for (int i = 0; i < conc; i++)
        send_next(&l, l.conns[i]);
    event_base_dispatch(base);
    t1 = now_s();
    for (int i = 0; i < conc; i++)
        evhttp_connection_free(l.conns[i]);
    free(l.conns);
    *ok = l.ok;
    return (double)n / (t1 - t0);
}

/* Starts argv, reads its stdout until a line containing `marker`, returns the number after
 * the marker's first ':' run (port). */
static pid_t spawn_wait(char *const argv[], const char *marker, int *port)
{
    int fds[2];
    pid_t pid;
    FILE *fp;
    char line[1024];
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    fp = fdopen(fds[0], "r");
    *port = 0;
    while (fp && fgets(line, sizeof line, fp)) {
        const char *m = strstr(line, marker);
        if (m) {
            *port = (int)strtol(m + strlen(marker), NULL, 10);
            break;
        }
    }
    /* Keep reading the pipe in the background would be nicer; the servers print little. */
    return *port ? pid : -1;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static size_t envn(const char *name, size_t def)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? (size_t)n : def;
}

static int seed_authz(const char *dir, item *items, size_t n)
{
    az_store *st = NULL;
    az_store_cfg cfg = {.data_dir = dir, .nosync = 1, .scrypt_n = 1024};
    az_client c;
    char uid[AZ_ID_MAX + 1];
    int ok = az_store_open(&cfg, &st) == PL_OK &&
             az_user_add(st, "bench", "bench password", uid) == PL_OK &&
             az_ws_add(st, "bench", "Bench", "pro") == PL_OK &&
             az_member_set(st, uid, "bench", "owner") == PL_OK;
    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "%s", "bench");
    snprintf(c.name, sizeof c.name, "%s", "Bench");
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "%s", "http://127.0.0.1/cb");
    c.nredirect = 1;
    snprintf(c.cls, sizeof c.cls, "%s", "preregistered");
    ok = ok && az_client_put(st, &c) == PL_OK;
    for (size_t i = 0; ok && i < n; i++) {
        az_code code;
        uint8_t h[32], raw[32];
        memset(&code, 0, sizeof code);
        core_random(raw, sizeof raw);
        core_b64url_encode(raw, sizeof raw, items[i].verifier, sizeof items[i].verifier, NULL);
        core_sha256(items[i].verifier, strlen(items[i].verifier), h);
        core_b64url_encode(h, sizeof h, code.challenge, sizeof code.challenge, NULL);
        snprintf(code.client_id, sizeof code.client_id, "%s", "bench");
        snprintf(code.redirect_uri, sizeof code.redirect_uri, "%s", "http://127.0.0.1/cb");
        snprintf(code.resource, sizeof code.resource, "%s", RESOURCE);
        snprintf(code.ws, sizeof code.ws, "%s", "bench");
        snprintf(code.uid, sizeof code.uid, "%s", uid);
        snprintf(code.cls, sizeof code.cls, "%s", "preregistered");
        code.scope = 0x800003; /* workspace:read workspace:list analytics:read */
        ok = az_code_issue(st, &code, items[i].code) == PL_OK;
    }
    az_store_free(st);
    return ok ? 0 : -1;
}

static int load_oidc_codes(const char *path, item *items, size_t n)
{
    json_error_t je;
    json_t *a = json_load_file(path, 0, &je);
    if (!a || json_array_size(a) != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(a, i);
        snprintf(items[i].code, sizeof items[i].code, "%s",
                 json_string_value(json_object_get(o, "code")));
        snprintf(items[i].verifier, sizeof items[i].verifier, "%s",
                 json_string_value(json_object_get(o, "verifier")));
    }
    json_decref(a);
    return 0;
}

typedef struct result {
    double code_rps, refresh_rps;
    double code_cpu, refresh_cpu; /* server CPU seconds used by the phase */
    double gen_us;                /* the load generator's CPU per request, both phases */
    size_t code_ok, refresh_ok;
} result;

/* CPU seconds (user + system, all threads) used so far by process pid. */
static double cpu_of(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, stt = 0;
    FILE *fp;
    const char *p;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (!fp)
        return 0;
    if (!fgets(buf, sizeof buf, fp))
        buf[0] = '\0';
    fclose(fp);
    p = strrchr(buf, ')'); /* the command name may contain spaces */
    if (!p)
        return 0;
    /* Fields after the name: state, then 10 numbers, then utime and stime (proc(5)). */
    p += 2;
    for (int i = 0; i < 11 && p; i++) {
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        return 0;
    {
        char *end;
        ut = strtoul(p, &end, 10);
        stt = strtoul(end, NULL, 10);
    }
    return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static int measure(struct event_base *base, pid_t pid, int port, int conc, item *items, size_t warm,
                   size_t n, result *r)
{
    size_t ok;
    double c0, c1, c2, g0;
    run(base, port, conc, items, warm, 0, "bench", &ok);
    g0 = cpu_of(getpid());
    c0 = cpu_of(pid);
    r->code_rps = run(base, port, conc, items + warm, n, 0, "bench", &r->code_ok);
    c1 = cpu_of(pid);
    r->refresh_rps = run(base, port, conc, items + warm, n, 1, "bench", &r->refresh_ok);
    c2 = cpu_of(pid);
    r->gen_us = (cpu_of(getpid()) - g0) * 1e6 / (2.0 * (double)n);
    r->code_cpu = c1 - c0;
    r->refresh_cpu = c2 - c1;
    return r->code_ok == n && r->refresh_ok == n ? 0 : -1;
}

/* ---- callgrind_authz.sh's helpers ----------------------------------------------------------
 * bench_authz seed DIR N FILE: seeds DIR like the benchmark and writes "code verifier" lines.
 * bench_authz drive PORT FILE WARM N PID: WARM exchanges and WARM rotations to warm up, then
 * zeroes callgrind's counters of PID, N exchanges, dumps, zeroes, N rotations (of the tokens
 * those exchanges returned), dumps. Exit status 0 when every request succeeded. */
static int cg_control(const char *what, const char *pid)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "callgrind_control %s %s > /dev/null 2>&1", what, pid);
    return system(cmd) == 0 ? 0 : -1;
}

static int cmd_seed(const char *dir, size_t n, const char *file)
{
    item *items = calloc(n, sizeof *items);
    FILE *fp = NULL;
    int ret = -1;
    if (items && seed_authz(dir, items, n) == 0 && (fp = fopen(file, "w")) != NULL) {
        for (size_t i = 0; i < n; i++)
            fprintf(fp, "%s %s\n", items[i].code, items[i].verifier);
        ret = fclose(fp) == 0 ? 0 : -1;
    }
    free(items);
    return ret;
}

static int cmd_drive(int port, const char *file, size_t warm, size_t n, const char *pid)
{
    item *items = calloc(warm + n, sizeof *items);
    struct event_base *base = gen_base();
    FILE *fp = fopen(file, "r");
    int conc = (int)envn("BENCH_CONC", 32), ret = -1;
    size_t ok[4] = {0}, i = 0;
    if (!items || !base || !fp)
        goto out;
    for (; i < warm + n; i++)
        if (fscanf(fp, "%63s %63s", items[i].code, items[i].verifier) != 2)
            goto out;
    run(base, port, conc, items, warm, 0, "bench", &ok[0]);
    run(base, port, conc, items, warm, 1, "bench", &ok[1]);
    if (cg_control("-z", pid) != 0)
        goto out;
    run(base, port, conc, items + warm, n, 0, "bench", &ok[2]);
    if (cg_control("-d", pid) != 0 || cg_control("-z", pid) != 0)
        goto out;
    run(base, port, conc, items + warm, n, 1, "bench", &ok[3]);
    if (cg_control("-d", pid) != 0)
        goto out;
    ret = ok[0] == warm && ok[1] == warm && ok[2] == n && ok[3] == n ? 0 : -1;
    if (ret != 0)
        fprintf(stderr, "bench_authz drive: %zu/%zu %zu/%zu %zu/%zu %zu/%zu requests ok\n", ok[0],
                warm, ok[1], warm, ok[2], n, ok[3], n);
out:
    if (fp)
        fclose(fp);
    if (base)
        event_base_free(base);
    free(items);
    return ret;
}

/* bench_authz cpu PORT FILE WARM N PID: like drive without callgrind, for a server running
 * natively: WARM exchanges and rotations, then N of each, printing for each phase the rate,
 * the server's user and system CPU per request (from /proc, all threads) and the generator's.
 * Used to compare variants of one binary on this shared machine (docs/performance.md). */
static void cpu_split(pid_t pid, double *user, double *sys)
{
    char path[64], buf[1024];
    FILE *fp;
    const char *p;
    *user = *sys = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(fp = fopen(path, "r")))
        return;
    if (!fgets(buf, sizeof buf, fp))
        buf[0] = '\0';
    fclose(fp);
    if (!(p = strrchr(buf, ')')))
        return;
    p += 2;
    for (int i = 0; i < 11 && p; i++) {
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    if (p) {
        char *end;
        *user = (double)strtoul(p, &end, 10) / (double)sysconf(_SC_CLK_TCK);
        *sys = (double)strtoul(end, NULL, 10) / (double)sysconf(_SC_CLK_TCK);
    }
}

static int cmd_cpu(int port, const char *file, size_t warm, size_t n, pid_t pid)
{
    item *items = calloc(warm + n, sizeof *items);
    struct event_base *base = gen_base();
    FILE *fp = fopen(file, "r");
    int conc = (int)envn("BENCH_CONC", 32), ret = -1;
    size_t ok[2] = {0}, i = 0;
    if (!items || !base || !fp)
        goto out;
    for (; i < warm + n; i++)
        if (fscanf(fp, "%63s %63s", items[i].code, items[i].verifier) != 2)
            goto out;
    run(base, port, conc, items, warm, 0, "bench", &ok[0]);
    run(base, port, conc, items, warm, 1, "bench", &ok[1]);
    ret = 0;
    for (int phase = 0; phase < 2; phase++) {
        double u0, s0, u1, s1, g0, g1, rate;
        size_t good = 0;
        cpu_split(pid, &u0, &s0);
        g0 = cpu_of(getpid());
        rate = run(base, port, conc, items + warm, n, phase, "bench", &good);
        cpu_split(pid, &u1, &s1);
        g1 = cpu_of(getpid());
        printf("%-8s %8.0f/s  server %5.1f us/req (user %5.1f, sys %5.1f)  generator %5.1f "
               "us/req  %zu/%zu ok\n",
               phase ? "refresh" : "code", rate, (u1 - u0 + s1 - s0) * 1e6 / (double)n,
               (u1 - u0) * 1e6 / (double)n, (s1 - s0) * 1e6 / (double)n,
               (g1 - g0) * 1e6 / (double)n, good, n);
        if (good != n)
            ret = -1;
    }
out:
    if (fp)
        fclose(fp);
    if (base)
        event_base_free(base);
    free(items);
    return ret;
}

static int bench_main(void);

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "seed") == 0)
        return cmd_seed(argv[2], (size_t)strtoul(argv[3], NULL, 10), argv[4]) == 0 ? 0 : 1;
    if (argc == 7 && strcmp(argv[1], "drive") == 0)
        return cmd_drive((int)strtol(argv[2], NULL, 10), argv[3],
                         (size_t)strtoul(argv[4], NULL, 10), (size_t)strtoul(argv[5], NULL, 10),
                         argv[6]) == 0
                   ? 0
                   : 1;
    if (argc == 7 && strcmp(argv[1], "cpu") == 0)
        return cmd_cpu((int)strtol(argv[2], NULL, 10), argv[3], (size_t)strtoul(argv[4], NULL, 10),
                       (size_t)strtoul(argv[5], NULL, 10), (pid_t)strtol(argv[6], NULL, 10)) == 0
                   ? 0
                   : 1;
    if (argc != 1) {
        fprintf(stderr, "usage: bench_authz | bench_authz seed DIR N FILE | bench_authz drive "
                        "PORT FILE WARM N CALLGRIND_PID | bench_authz cpu PORT FILE WARM N PID\n");
        return 2;
    }
    return bench_main();
}

/* The five servers of a round: postly-authz durable (the default), --unsafe-no-fsync, and
 * --unsafe-no-fsync --sign-on-loop; oidc-provider with the durable SQLite adapter and with
 * the in-memory one. */
enum {
    S_AUTHZ_DURABLE,
    S_AUTHZ_NOSYNC,
    S_AUTHZ_NOSYNC_LOOP,
    S_OIDC_SQLITE,
    S_OIDC_MEMORY,
    S__COUNT
};
static const char *const server_names[S__COUNT] = {"postly-authz durable", "postly-authz no-fsync",
                                                   "postly-authz no-fsync 1T",
                                                   "oidc-provider sqlite", "oidc-provider memory"};

/* The pairings reported, and what each means (docs/performance.md). */
static const struct {
    int a, o;
    const char *name;
} pairings[] = {
    {S_AUTHZ_DURABLE, S_OIDC_SQLITE, "durable vs durable (equal durability)"},
    {S_AUTHZ_NOSYNC, S_OIDC_MEMORY, "no-fsync vs in-memory (equal durability)"},
    {S_AUTHZ_NOSYNC_LOOP, S_OIDC_MEMORY, "the same, postly signing on its loop"},
    {S_AUTHZ_DURABLE, S_OIDC_MEMORY, "durable vs in-memory (information)"},
};
#define NPAIR (sizeof pairings / sizeof pairings[0])

typedef struct bench_env {
    struct event_base *base;
    char dir[256];
    int conc;
    size_t warm, n[S__COUNT];
    item *items;
} bench_env;

/* Runs one server through warm-up, n exchanges and n rotations. 0 when all succeeded. */
static int bench_server(bench_env *e, int which, int round, result *r)
{
    char sub[300], codes[340], mode[360], nstr[32], *argv[16];
    size_t n = e->n[which], total = n + e->warm;
    int port = 0, ret = -1, k = 0;
    pid_t pid = -1;
    memset(r, 0, sizeof *r);
    memset(e->items, 0, total * sizeof *e->items);
    snprintf(sub, sizeof sub, "%s/r%d-%d", e->dir, round, which);
    if (mkdir(sub, 0700) != 0)
        return -1;
    if (which == S_AUTHZ_DURABLE || which == S_AUTHZ_NOSYNC || which == S_AUTHZ_NOSYNC_LOOP) {
        if (seed_authz(sub, e->items, total) != 0) {
            fprintf(stderr, "bench_authz: seeding the store failed\n");
            return -1;
        }
        argv[k++] =
            getenv("BENCH_AUTHZ_BIN") ? getenv("BENCH_AUTHZ_BIN") : (char *)POSTLY_AUTHZ_BIN;
        argv[k++] = "--data";
        argv[k++] = sub;
        argv[k++] = "--port";
        argv[k++] = "0";
        argv[k++] = "--resource";
        argv[k++] = RESOURCE;
        argv[k++] = "--log-level";
        argv[k++] = "info";
        if (which == S_AUTHZ_NOSYNC || which == S_AUTHZ_NOSYNC_LOOP)
            argv[k++] = "--unsafe-no-fsync";
        else if (getenv("BENCH_INLINE"))
            argv[k++] = "--inline-fsync";
        if (which == S_AUTHZ_NOSYNC_LOOP || getenv("BENCH_SIGN_ON_LOOP"))
            argv[k++] = "--sign-on-loop";
        argv[k] = NULL;
        pid = spawn_wait(argv, "listening on http://127.0.0.1:", &port);
    } else {
        snprintf(codes, sizeof codes, "%s/oidc-codes.json", sub);
        snprintf(nstr, sizeof nstr, "%zu", total);
        snprintf(mode, sizeof mode, "%s%s", which == S_OIDC_SQLITE ? "sqlite:" : "memory",
                 which == S_OIDC_SQLITE ? sub : "");
        if (which == S_OIDC_SQLITE)
            snprintf(mode + strlen(mode), sizeof mode - strlen(mode), "/oidc.sqlite");
        argv[0] = (char *)POSTLY_NODE;
        argv[1] = "--disable-warning=ExperimentalWarning"; /* node:sqlite in Node 22 */
        argv[2] = (char *)POSTLY_BENCH_DIR "/oidc_baseline.mjs";
        argv[3] = nstr;
        argv[4] = codes;
        argv[5] = mode;
        argv[6] = NULL;
        pid = spawn_wait(argv, "READY ", &port);
        if (pid > 0 && load_oidc_codes(codes, e->items, total) != 0) {
            stop(pid);
            pid = -1;
        }
    }
    if (pid < 0) {
        fprintf(stderr, "bench_authz: %s did not start\n", server_names[which]);
        return -1;
    }
    if (measure(e->base, pid, port, e->conc, e->items, e->warm, n, r) == 0)
        ret = 0;
    else
        fprintf(stderr, "bench_authz: %s: %zu/%zu exchanges, %zu/%zu rotations ok\n",
                server_names[which], r->code_ok, n, r->refresh_ok, n);
    stop(pid);
    return ret;
}

static double per_cpu(size_t n, double cpu)
{
    return cpu > 0 ? (double)n / cpu : 0;
}

static void minmax(double v, double *lo, double *hi)
{
    if (v < *lo)
        *lo = v;
    if (v > *hi)
        *hi = v;
}

static int bench_main(void)
{
    bench_env e = {0};
    size_t n = envn("BENCH_N", 4000), rounds = envn("BENCH_ROUNDS", 1);
    /* The durable baseline commits each write with an fsync on the event loop: a few hundred
     * requests per second, so it gets fewer requests (same steady state, shorter phases). */
    size_t n_sqlite = envn("BENCH_N_SQLITE", n < 1000 ? n : 1000);
    const char *tmp = getenv("TMPDIR");
    /* [pairing][flow 0 code, 1 refresh][0 wall, 1 cpu][0 lo, 1 hi] */
    double range[NPAIR][2][2][2];
    int ret = 1, ok_rounds = 0;

    e.warm = envn("BENCH_WARM", 500);
    e.conc = (int)envn("BENCH_CONC", 32);
    e.n[S_AUTHZ_DURABLE] = e.n[S_AUTHZ_NOSYNC] = e.n[S_AUTHZ_NOSYNC_LOOP] = e.n[S_OIDC_MEMORY] = n;
    e.n[S_OIDC_SQLITE] = n_sqlite;
    e.items = calloc((n > n_sqlite ? n : n_sqlite) + e.warm, sizeof *e.items);
    e.base = gen_base();
    for (size_t p = 0; p < NPAIR; p++)
        for (int f = 0; f < 2; f++)
            for (int k = 0; k < 2; k++) {
                range[p][f][k][0] = 1e30;
                range[p][f][k][1] = 0;
            }
    snprintf(e.dir, sizeof e.dir, "%s/postly-bench-authz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!e.items || !e.base || !mkdtemp(e.dir))
        return 1;
    printf("bench_authz: per server: %zu code exchanges then %zu refresh rotations (%zu for "
           "oidc-provider sqlite), %d in flight, after %zu warm-up exchanges; %zu round(s) of "
           "the five servers%s\n",
           n, n, n_sqlite, e.conc, e.warm, rounds,
           getenv("BENCH_INLINE") ? "; postly-authz durable with --inline-fsync" : "");
    for (size_t round = 1; round <= rounds; round++) {
        result res[S__COUNT];
        int failed = 0;
        for (int w = 0; w < S__COUNT; w++)
            if (bench_server(&e, w, (int)round, &res[w]) != 0)
                failed = 1;
        printf("round %zu: requests/s (per server CPU-second)\n", round);
        for (int w = 0; w < S__COUNT; w++)
            printf("  %-24s code %7.0f/s (%7.0f)   refresh %7.0f/s (%7.0f)   generator %4.1f "
                   "us/request\n",
                   server_names[w], res[w].code_rps, per_cpu(e.n[w], res[w].code_cpu),
                   res[w].refresh_rps, per_cpu(e.n[w], res[w].refresh_cpu), res[w].gen_us);
        if (failed) {
            printf("  (a server failed: round not counted)\n");
            continue;
        }
        ok_rounds++;
        for (size_t p = 0; p < NPAIR; p++) {
            const result *a = &res[pairings[p].a], *o = &res[pairings[p].o];
            size_t na = e.n[pairings[p].a], no = e.n[pairings[p].o];
            double v[2][2] = {
                {a->code_rps / o->code_rps, per_cpu(na, a->code_cpu) / per_cpu(no, o->code_cpu)},
                {a->refresh_rps / o->refresh_rps,
                 per_cpu(na, a->refresh_cpu) / per_cpu(no, o->refresh_cpu)},
            };
            printf("  %-42s code %6.1fx (CPU %5.1fx)   refresh %6.1fx (CPU %5.1fx)\n",
                   pairings[p].name, v[0][0], v[0][1], v[1][0], v[1][1]);
            for (int f = 0; f < 2; f++)
                for (int k = 0; k < 2; k++)
                    minmax(v[f][k], &range[p][f][k][0], &range[p][f][k][1]);
        }
        fflush(stdout);
    }
    if (ok_rounds > 0) {
        printf("ratios over %d round(s), min-max: requests/s ratio (per server CPU-second ratio)\n",
               ok_rounds);
        for (size_t p = 0; p < NPAIR; p++)
            printf("  %-42s code %.1f-%.1fx (%.1f-%.1fx)   refresh %.1f-%.1fx (%.1f-%.1fx)\n",
                   pairings[p].name, range[p][0][0][0], range[p][0][0][1], range[p][0][1][0],
                   range[p][0][1][1], range[p][1][0][0], range[p][1][0][1], range[p][1][1][0],
                   range[p][1][1][1]);
        ret = 0;
    }
    event_base_free(e.base);
    free(e.items);
    {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", e.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_authz: could not remove %s\n", e.dir);
    }
    return ret;
}
