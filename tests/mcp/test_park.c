/*
 * tests/mcp/test_park.c — postly-mcp's write path with the group-commit committer
 * (exec/store.h "the committer", docs/mcp.md "Group commit"), over loopback HTTP: the server
 * in-process on port 0 with a durable store (EX_STORE_GROUP_COMMIT), real ES256 tokens, the
 * shipped policy. A commit hook on the store stands in for the batch commit's fsync: it blocks
 * on the committer thread until the test releases it, so the test sees what the event loop
 * does while a commit is in progress — it must serve reads, park writes (answered only once
 * they have run in the next batch and that batch is durable), and turn a failed commit into
 * HTTP 500 / -32603 for every reply of its batch. Writes in flight are sent on raw sockets
 * (the synchronous client would wait for their replies); bounded waits (30 s) make a loop
 * that blocks fail instead of hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/http.h"
#include "core/http_client.h"
#include "exec/batch.h"
#include "exec/connector.h"
#include "exec/store.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"
#include "mcp/config.h"
#include "mcp/http.h"
#include "mcp/server.h"
#include "policy/policy.h"

#define ISSUER "http://127.0.0.1:1"
#define WS     "ws_park"

typedef struct fx {
    char dir[64];
    core_fake_clock clock;
    core_log log;
    struct event_base *base;
    core_http *http;
    mcp_config cfg;
    pol_compiled *policy;
    key_keyset *keys;
    key_verifier *verifier;
    ex_store *store;
    ex_batcher *batcher;
    ex_ctx ex;
    ex_connectors conns;
    mcp_server *srv;
    uint16_t port;
    char host[32];
    char tok[KEY_TOKEN_MAX];
    char sid[80];
} fx;

/* ---- the commit gate: a commit hook that blocks until released ---- */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, released;
    pl_rc fail; /* the next commit's outcome (then PL_OK again) */
} gate;

static gate g_gate; /* the hook's argument; reset by setup */

static int deadline_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &ts);
}

static pl_rc gate_hook(void *arg)
{
    gate *g = arg;
    pl_rc rc;
    pthread_mutex_lock(&g->mu);
    int mine = ++g->entered;
    pthread_cond_broadcast(&g->cv);
    while (g->released < mine)
        if (deadline_wait(&g->cv, &g->mu, 30000) != 0)
            break; /* never released: let the test fail, not hang */
    rc = g->fail;
    g->fail = PL_OK;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static int gate_entered(gate *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->entered;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static void gate_release(gate *g, int n, pl_rc fail)
{
    pthread_mutex_lock(&g->mu);
    g->released = n;
    g->fail = fail;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop (without blocking in it) until cond(f) holds; 30 s bound. */
static void loop_until(fx *f, int (*cond)(fx *), const char *what)
{
    int64_t end = mono_ms() + 30000;
    while (!cond(f)) {
        if (mono_ms() > end)
            fail_msg("timed out waiting for %s", what);
        assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
        pthread_mutex_lock(&g_gate.mu);
        (void)deadline_wait(&g_gate.cv, &g_gate.mu, 2); /* the hook wakes it early */
        pthread_mutex_unlock(&g_gate.mu);
    }
}

static int first_commit_in_hook(fx *f)
{
    (void)f;
    return gate_entered(&g_gate) >= 1;
}

static int one_parked(fx *f)
{
    ex_batch_stats st;
    ex_batcher_stats(f->batcher, &st);
    return st.parked >= 1;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    core_http_config hc;
    key_keyset_cfg kc;
    key_verifier_cfg vc;
    key_error ke;
    pol_diags d;
    mcp_deps deps;
    char path[512], err[256];

    memset(&g_gate, 0, sizeof g_gate);
    pthread_mutex_init(&g_gate.mu, NULL);
    pthread_cond_init(&g_gate.cv, NULL);
    snprintf(f->dir, sizeof f->dir, "/tmp/mcp-park-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    core_fake_clock_init(&f->clock, 1800000000000LL);
    f->log.level = CORE_LOG_OFF;
    f->log.component = "mcp-park";
    f->base = event_base_new();
    memset(&hc, 0, sizeof hc);
    hc.host = "127.0.0.1";
    hc.port = 0;
    hc.limits.max_body = 65536 + 65536;
    hc.log = &f->log;
    assert_int_equal(core_http_new(f->base, &hc, &f->http), PL_OK);
    f->port = core_http_port(f->http);
    snprintf(f->host, sizeof f->host, "127.0.0.1:%u", f->port);

    mcp_config_defaults(&f->cfg);
    f->cfg.listen_port = f->port;
    snprintf(f->cfg.authz_url, sizeof f->cfg.authz_url, "%s", ISSUER);
    f->cfg.limits.token_rate_per_min = 0;
    f->cfg.limits.sessions_per_principal = 0;
    assert_int_equal(mcp_config_finish(&f->cfg, f->port, err, sizeof err), PL_OK);

    pol_diags_init(&d);
    snprintf(path, sizeof path, "%s/policy/default.policy", POSTLY_SOURCE_DIR);
    assert_int_equal(pol_load_file(path, 0, &d, &f->policy), PL_OK);
    pol_diags_free(&d);
    memset(&kc, 0, sizeof kc);
    kc.data_dir = f->dir;
    kc.clock = &f->clock.base;
    kc.leeway_s = -1;
    kc.create = 1;
    assert_int_equal(key_keyset_open(&kc, &f->keys, &ke), PL_OK);
    memset(&vc, 0, sizeof vc);
    vc.issuer = ISSUER;
    vc.audience = f->cfg.canonical_url;
    vc.clock = &f->clock.base;
    vc.keyset = f->keys;
    assert_int_equal(key_verifier_new(&vc, &f->verifier), PL_OK);

    snprintf(path, sizeof path, "%s/exec", f->dir);
    assert_int_equal(ex_store_open(path, 0, EX_STORE_GROUP_COMMIT, &f->store), PL_OK);
    assert_int_equal(ex_batcher_new(f->base, f->store, &f->log, &f->batcher), PL_OK);
    f->ex.store = f->store;
    f->ex.clock = &f->clock.base;
    f->ex.log = &f->log;
    ex_limits_default(&f->ex.limits);
    assert_int_equal(ex_connectors_init_sandbox(&f->conns), PL_OK);
    ex_connectors_install(&f->conns, &f->ex);
    memset(&deps, 0, sizeof deps);
    deps.clock = &f->clock.base;
    deps.log = &f->log;
    deps.verifier = f->verifier;
    deps.policy = f->policy;
    deps.policy_revision = "sha256:test";
    deps.ex = &f->ex;
    deps.batcher = f->batcher;
    assert_int_equal(mcp_server_new(&f->cfg, &deps, &f->srv), PL_OK);
    assert_int_equal(mcp_http_attach(f->http, f->srv), PL_OK);

    key_claims c;
    memset(&c, 0, sizeof c);
    c.iss = ISSUER;
    c.sub = "usr_alice";
    c.aud = f->cfg.canonical_url;
    c.client_id = "client-test";
    c.scope = "workspace:read drafts:read drafts:create";
    c.ws = WS;
    c.gid = "grt_test";
    c.cls = "preregistered";
    c.lifetime_s = 3600;
    assert_int_equal(key_token_mint(f->keys, &f->clock.base, &c, f->tok, sizeof f->tok, NULL, NULL),
                     PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    gate_release(&g_gate, 1000, PL_OK);
    ex_batcher_free(f->batcher);
    core_http_free(f->http);
    mcp_server_free(f->srv);
    ex_store_free(f->store);
    ex_connectors_free(&f->conns);
    key_verifier_free(f->verifier);
    key_keyset_free(f->keys);
    pol_compiled_free(f->policy);
    event_base_free(f->base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_cond_destroy(&g_gate.cv);
    pthread_mutex_destroy(&g_gate.mu);
    free(f);
    return 0;
}

/* ---- the synchronous client (runs the loop until the reply) ---- */

static json_t *fetch(fx *f, const char *body, int *status, char *sid_out, size_t sidsz)
{
    core_http_fetch_req q;
    core_http_fetch_resp r;
    char auth[KEY_TOKEN_MAX + 16];
    const char *h[16];
    size_t n = 0;
    json_error_t je;
    snprintf(auth, sizeof auth, "Bearer %s", f->tok);
    h[n++] = "Host";
    h[n++] = f->host;
    h[n++] = "Content-Type";
    h[n++] = "application/json";
    h[n++] = "Accept";
    h[n++] = "application/json, text/event-stream";
    h[n++] = "Authorization";
    h[n++] = auth;
    if (f->sid[0]) {
        h[n++] = "MCP-Session-Id";
        h[n++] = f->sid;
        h[n++] = "MCP-Protocol-Version";
        h[n++] = "2025-11-25";
    }
    h[n] = NULL;
    memset(&q, 0, sizeof q);
    q.method = "POST";
    q.host = "127.0.0.1";
    q.port = f->port;
    q.target = "/mcp";
    q.headers = h;
    q.body = body;
    q.body_len = strlen(body);
    memset(&r, 0, sizeof r);
    assert_int_equal(core_http_fetch(f->base, &q, &r), PL_OK);
    *status = r.status;
    if (sid_out && core_http_fetch_header(&r, "MCP-Session-Id"))
        snprintf(sid_out, sidsz, "%s", core_http_fetch_header(&r, "MCP-Session-Id"));
    json_t *j = json_loadb(r.body.p ? r.body.p : "", r.body.len, 0, &je);
    core_http_fetch_resp_free(&r);
    return j;
}

static void open_session(fx *f)
{
    int status;
    char sid[80] = "";
    json_t *j = fetch(f,
                      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                      "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
                      "\"name\":\"t\",\"version\":\"1\"}}}",
                      &status, sid, sizeof sid);
    assert_int_equal(status, 200);
    json_decref(j);
    snprintf(f->sid, sizeof f->sid, "%s", sid);
    j = fetch(f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &status, NULL,
              0);
    assert_int_equal(status, 202);
    json_decref(j);
}

/* ---- raw requests in flight: sent now, the reply read later ---- */

typedef struct raw {
    int fd;
    char buf[16384];
    size_t len;
    int eof;
} raw;

static void raw_send(fx *f, raw *r, int id, const char *text)
{
    char body[512], req[4096];
    struct sockaddr_in a;
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_create_draft\",\"arguments\":{\"text\":\"%s\"}}}",
             id, text);
    int n = snprintf(req, sizeof req,
                     "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nAuthorization: Bearer %s\r\n"
                     "MCP-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                     f->host, f->tok, f->sid, strlen(body), body);
    assert_true(n > 0 && (size_t)n < sizeof req);
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(r->fd, req, (size_t)n), n);
}

/* Reads what has arrived (never blocks). */
static void raw_poll(raw *r)
{
    struct pollfd p = {r->fd, POLLIN, 0};
    while (!r->eof && poll(&p, 1, 0) == 1) {
        ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - 1 - r->len);
        if (got <= 0) {
            r->eof = 1;
            break;
        }
        r->len += (size_t)got;
        r->buf[r->len] = '\0';
    }
}

/* Runs the loop until the server has closed the connection (the whole reply read). */
static void raw_finish(fx *f, raw *r)
{
    int64_t end = mono_ms() + 30000;
    for (raw_poll(r); !r->eof; raw_poll(r)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        if (mono_ms() > end)
            fail_msg("no reply within 30 s");
        assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
        (void)poll(&p, 1, 2); /* the reply, or the next loop turn */
    }
    close(r->fd);
    r->fd = -1;
}

static int raw_status(const raw *r)
{
    if (strncmp(r->buf, "HTTP/1.1 ", 9) != 0)
        return 0;
    return (int)strtol(r->buf + 9, NULL, 10);
}

static json_t *raw_json(const raw *r)
{
    const char *b = strstr(r->buf, "\r\n\r\n");
    json_error_t je;
    return b ? json_loads(b + 4, 0, &je) : NULL;
}

static int count_drafts(fx *f)
{
    int status;
    json_t *j =
        fetch(f,
              "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":"
              "\"postly_list_drafts\",\"arguments\":{\"limit\":50}}}",
              &status, NULL, 0);
    assert_int_equal(status, 200);
    const json_t *items = json_object_get(
        json_object_get(json_object_get(j, "result"), "structuredContent"), "items");
    int n = (int)json_array_size(items);
    json_decref(j);
    return n;
}

static void test_reads_served_and_writes_parked_during_commit(void **state)
{
    fx *f = *state;
    raw a, b;
    int status;
    open_session(f);
    ex_store_set_commit_hook(f->store, gate_hook, &g_gate);
    raw_send(f, &a, 11, "first");
    loop_until(f, first_commit_in_hook, "the first commit");
    /* The commit is in progress (blocked in the hook, on the committer thread). The loop
     * answers a read at once... */
    json_t *j = fetch(f,
                      "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{"
                      "\"name\":\"postly_get_workspace\",\"arguments\":{}}}",
                      &status, NULL, 0);
    assert_int_equal(status, 200);
    assert_non_null(json_object_get(j, "result"));
    json_decref(j);
    /* ...and parks a second write instead of blocking on the writer lock. */
    raw_send(f, &b, 12, "second");
    loop_until(f, one_parked, "the second write to park");
    raw_poll(&a);
    raw_poll(&b);
    assert_int_equal(a.len, 0); /* nothing acknowledged before it is durable */
    assert_int_equal(b.len, 0);
    assert_int_equal(gate_entered(&g_gate), 1);
    gate_release(&g_gate, 1000, PL_OK);
    raw_finish(f, &a);
    raw_finish(f, &b);
    assert_int_equal(raw_status(&a), 200);
    assert_int_equal(raw_status(&b), 200);
    json_t *ja = raw_json(&a), *jb = raw_json(&b);
    assert_int_equal(json_integer_value(json_object_get(ja, "id")), 11);
    assert_int_equal(json_integer_value(json_object_get(jb, "id")), 12);
    assert_false(json_is_true(json_object_get(json_object_get(jb, "result"), "isError")));
    json_decref(ja);
    json_decref(jb);
    /* The parked write ran in a batch of its own, committed before it was answered. */
    assert_int_equal(gate_entered(&g_gate), 2);
    ex_batch_stats st;
    ex_batcher_stats(f->batcher, &st);
    assert_int_equal(st.parked, 1);
    assert_int_equal(st.commits, 2);
    assert_int_equal(st.failed, 0);
    assert_int_equal(count_drafts(f), 2);
    ex_store_set_commit_hook(f->store, NULL, NULL);
}

static void test_failed_commit_with_a_parked_write(void **state)
{
    fx *f = *state;
    raw a, b;
    open_session(f);
    ex_store_set_commit_hook(f->store, gate_hook, &g_gate);
    raw_send(f, &a, 21, "lost");
    loop_until(f, first_commit_in_hook, "the first commit");
    raw_send(f, &b, 22, "kept");
    loop_until(f, one_parked, "the second write to park");
    gate_release(&g_gate, 1000, PL_ERR_IO); /* the first commit fails, the next succeeds */
    raw_finish(f, &a);
    raw_finish(f, &b);
    /* Never a success for a write that is not on disk. */
    assert_int_equal(raw_status(&a), 500);
    json_t *ja = raw_json(&a), *jb = raw_json(&b);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ja, "error"), "code")),
                     -32603);
    assert_int_equal(json_integer_value(json_object_get(ja, "id")), 21);
    assert_null(json_object_get(ja, "result"));
    /* The parked write ran in the next batch, which committed. */
    assert_int_equal(raw_status(&b), 200);
    assert_int_equal(json_integer_value(json_object_get(jb, "id")), 22);
    assert_non_null(json_object_get(jb, "result"));
    json_decref(ja);
    json_decref(jb);
    assert_int_equal(count_drafts(f), 1);
    ex_store_set_commit_hook(f->store, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_served_and_writes_parked_during_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_with_a_parked_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
