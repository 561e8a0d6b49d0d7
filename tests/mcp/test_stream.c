/*
 * tests/mcp/test_stream.c — the listening stream (GET /mcp) and resource subscriptions over
 * loopback: postly-mcp in-process on port 0 with the authorization server's directory (grants
 * revocable), tokens and grants made by tests/mcp/mcp_fixture in its own process (LMDB forbids
 * one process opening the authz environment twice), a real LMDB execution store, and a raw
 * socket as the SSE client on the same event loop (its reads are libevent events: no sleeps,
 * no threads). The server's clock is a fake one starting at the real time (the fixture's
 * tokens are minted on the real clock); keep-alives and expiry are driven by advancing it and
 * calling mcp_server_stream_tick(), as the program's one-second timer does.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "authz/directory.h"
#include "core/http.h"
#include "core/http_client.h"
#include "exec/account.h"
#include "exec/args.h"
#include "exec/batch.h"
#include "exec/connector.h"
#include "exec/scheduler.h"
#include "exec/store.h"
#include "keys/keyset.h"
#include "keys/verify.h"
#include "mcp/config.h"
#include "mcp/http.h"
#include "mcp/server.h"
#include "policy/policy.h"
#include "tests/common/lmdb_fault.h"

#define ISSUER "http://127.0.0.1:1"
#define WS     "ws_stream"
#define WS2    "ws_other"

static const char *ALL_SCOPES =
    "workspace:read workspace:list posts:read posts:create posts:update posts:delete "
    "posts:schedule posts:publish posts:status:read drafts:read campaigns:read campaigns:create "
    "campaigns:update social_accounts:read social_accounts:list analytics:read "
    "analytics:linkedin:read analytics:x:read";

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
    az_directory *directory;
    ex_store *store;
    ex_batcher *batcher; /* group commit, as postly-mcp runs it */
    ex_ctx ex;
    ex_connectors conns;
    mcp_server *srv;
    uint16_t port;
    char host[32];
    char tok[KEY_TOKEN_MAX];
    char gid[80];
} fx;

/* Runs the fixture: "mint WS SCOPES" -> token (and grant id), "revoke GID". */
static void fixture(fx *f, const char *cmd, char *out, size_t outsz, char *gid, size_t gidsz)
{
    char line[KEY_TOKEN_MAX + 256], full[2048];
    FILE *p;
    int n = snprintf(full, sizeof full, "%s %s", MCP_FIXTURE_BIN, cmd);
    assert_true(n > 0 && (size_t)n < sizeof full);
    (void)f;
    p = popen(full, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    assert_int_equal(pclose(p), 0);
    if (out) {
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        snprintf(out, outsz, "%s", line);
        if (gid) {
            sp[1 + strcspn(sp + 1, "\r\n")] = '\0';
            snprintf(gid, gidsz, "%s", sp + 1);
        }
    }
}

static void mint(fx *f, const char *ws, const char *scopes, char *out, size_t outsz, char *gid,
                 size_t gidsz)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mint %s %s %s %s preregistered 3600 %s", f->dir, ISSUER,
             f->cfg.canonical_url, ws, scopes);
    fixture(f, cmd, out, outsz, gid, gidsz);
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

    snprintf(f->dir, sizeof f->dir, "/tmp/mcp-stream-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    core_fake_clock_init(&f->clock, core_clock_now_ms(core_clock_real()));
    f->log.level = CORE_LOG_ERROR;
    f->log.component = "mcp-stream-test";
    f->base = event_base_new();
    memset(&hc, 0, sizeof hc);
    hc.host = "127.0.0.1";
    hc.limits.timeout_s = 1; /* the idle timeout a listening stream must be exempt from */
    hc.log = &f->log;
    assert_int_equal(core_http_new(f->base, &hc, &f->http), PL_OK);
    f->port = core_http_port(f->http);
    snprintf(f->host, sizeof f->host, "127.0.0.1:%u", f->port);

    mcp_config_defaults(&f->cfg);
    f->cfg.listen_port = f->port;
    snprintf(f->cfg.authz_url, sizeof f->cfg.authz_url, "%s", ISSUER);
    f->cfg.limits.max_sessions = 64;
    f->cfg.limits.sessions_per_principal = 0;
    f->cfg.limits.token_rate_per_min = 0;
    f->cfg.limits.max_streams = 2;
    f->cfg.limits.max_subscriptions = 3;
    f->cfg.limits.keepalive_s = 15;
    assert_int_equal(mcp_config_finish(&f->cfg, f->port, err, sizeof err), PL_OK);

    /* The first mint creates the key set, the user, the workspace and a grant. */
    mint(f, WS, ALL_SCOPES, f->tok, sizeof f->tok, f->gid, sizeof f->gid);

    pol_diags_init(&d);
    snprintf(path, sizeof path, "%s/policy/default.policy", POSTLY_SOURCE_DIR);
    assert_int_equal(pol_load_file(path, 0, &d, &f->policy), PL_OK);
    pol_diags_free(&d);
    memset(&kc, 0, sizeof kc);
    kc.data_dir = f->dir;
    kc.leeway_s = -1;
    kc.public_only = 1;
    assert_int_equal(key_keyset_open(&kc, &f->keys, &ke), PL_OK);
    memset(&vc, 0, sizeof vc);
    vc.issuer = ISSUER;
    vc.audience = f->cfg.canonical_url;
    vc.leeway_s = -1; /* the fixture mints on the real clock, a little ahead of the fake one */
    vc.clock = &f->clock.base;
    vc.keyset = f->keys;
    assert_int_equal(key_verifier_new(&vc, &f->verifier), PL_OK);
    assert_int_equal(az_directory_open(f->dir, &f->directory), PL_OK);

    snprintf(path, sizeof path, "%s/exec", f->dir);
    assert_int_equal(ex_store_open(path, 0, EX_STORE_NOSYNC, &f->store), PL_OK);
    f->ex.store = f->store;
    f->ex.clock = &f->clock.base;
    f->ex.log = &f->log;
    ex_limits_default(&f->ex.limits);
    assert_int_equal(ex_connectors_init_sandbox(&f->conns), PL_OK);
    ex_connectors_install(&f->conns, &f->ex);

    assert_int_equal(ex_batcher_new(f->base, f->store, &f->log, &f->batcher), PL_OK);

    memset(&deps, 0, sizeof deps);
    deps.batcher = f->batcher;
    deps.clock = &f->clock.base;
    deps.log = &f->log;
    deps.verifier = f->verifier;
    deps.policy = f->policy;
    deps.policy_revision = "sha256:test";
    deps.ex = &f->ex;
    deps.directory = f->directory;
    assert_int_equal(mcp_server_new(&f->cfg, &deps, &f->srv), PL_OK);
    assert_int_equal(mcp_http_attach(f->http, f->srv), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    ex_batcher_free(f->batcher); /* sends what it still holds, before the HTTP layer goes */
    core_http_free(f->http);
    mcp_server_free(f->srv); /* closes the streams left open */
    ex_store_free(f->store);
    ex_connectors_free(&f->conns);
    az_directory_free(f->directory);
    key_verifier_free(f->verifier);
    key_keyset_free(f->keys);
    pol_compiled_free(f->policy);
    event_base_free(f->base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- plain requests (core_http_fetch) ---- */

typedef struct rq {
    const char *method, *token, *session, *body, *accept;
} rq;

static void send_rq(fx *f, const rq *r, core_http_fetch_resp *resp)
{
    core_http_fetch_req q;
    const char *h[16];
    size_t n = 0;
    char auth[KEY_TOKEN_MAX + 16];
    h[n++] = "Host";
    h[n++] = f->host;
    h[n++] = "Content-Type";
    h[n++] = "application/json";
    h[n++] = "Accept";
    h[n++] = r->accept ? r->accept : "application/json, text/event-stream";
    h[n++] = "MCP-Protocol-Version";
    h[n++] = "2025-11-25";
    if (r->token) {
        snprintf(auth, sizeof auth, "Bearer %s", r->token);
        h[n++] = "Authorization";
        h[n++] = auth;
    }
    if (r->session) {
        h[n++] = "MCP-Session-Id";
        h[n++] = r->session;
    }
    h[n] = NULL;
    memset(&q, 0, sizeof q);
    q.method = r->method ? r->method : "POST";
    q.host = "127.0.0.1";
    q.port = f->port;
    q.target = "/mcp";
    q.headers = h;
    q.body = r->body;
    q.body_len = r->body ? strlen(r->body) : 0;
    memset(resp, 0, sizeof *resp);
    assert_int_equal(core_http_fetch(f->base, &q, resp), PL_OK);
}

static json_t *body_json(const core_http_fetch_resp *resp)
{
    json_error_t je;
    return json_loadb(resp->body.p ? resp->body.p : "", resp->body.len, 0, &je);
}

static void open_session(fx *f, const char *token, char *sid, size_t sidsz, json_t **init_result)
{
    core_http_fetch_resp r;
    rq q = {0};
    q.token = token;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    snprintf(sid, sidsz, "%s", core_http_fetch_header(&r, "MCP-Session-Id"));
    if (init_result) {
        json_t *j = body_json(&r);
        *init_result = json_incref(json_object_get(j, "result"));
        json_decref(j);
    }
    core_http_fetch_resp_free(&r);
    q.session = sid;
    q.body = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 202);
    core_http_fetch_resp_free(&r);
}

/* One JSON-RPC request; returns the parsed body, *status the HTTP status, www (when non-NULL,
 * size 512) the WWW-Authenticate header. */
static json_t *rpc(fx *f, const char *token, const char *sid, const char *method,
                   const char *params, int *status, char *www)
{
    core_http_fetch_resp r;
    char body[4096];
    rq q = {0};
    json_t *j;
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\",\"params\":%s}",
             method, params);
    q.token = token;
    q.session = sid;
    q.body = body;
    send_rq(f, &q, &r);
    *status = r.status;
    if (www) {
        const char *w = core_http_fetch_header(&r, "WWW-Authenticate");
        snprintf(www, 512, "%s", w ? w : "");
    }
    j = body_json(&r);
    core_http_fetch_resp_free(&r);
    return j;
}

static int err_code(const json_t *j)
{
    return (int)json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *err_msg(const json_t *j)
{
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    return m ? m : "";
}

/* resources/subscribe or unsubscribe of uri: the JSON-RPC error code (0 = success). */
static int sub(fx *f, const char *token, const char *sid, const char *method, const char *uri,
               int *status)
{
    char params[512];
    json_t *j;
    int code;
    snprintf(params, sizeof params, "{\"uri\":\"%s\"}", uri);
    j = rpc(f, token, sid, method, params, status, NULL);
    code = err_code(j);
    if (*status == 200 && code == 0)
        assert_true(json_is_object(json_object_get(j, "result")));
    json_decref(j);
    return code;
}

/* tools/call; returns structuredContent's "id" into id (asserts success). */
static void tool(fx *f, const char *sid, const char *name, const char *args, char *id, size_t idsz)
{
    char params[2048];
    json_t *j, *res;
    int st;
    snprintf(params, sizeof params, "{\"name\":\"%s\",\"arguments\":%s}", name, args);
    j = rpc(f, f->tok, sid, "tools/call", params, &st, NULL);
    assert_int_equal(st, 200);
    res = json_object_get(j, "result");
    if (!res || json_is_true(json_object_get(res, "isError"))) {
        char *s = json_dumps(j, 0);
        fail_msg("%s: %s", name, s ? s : "?");
    }
    if (id)
        snprintf(
            id, idsz, "%s",
            json_string_value(json_object_get(json_object_get(res, "structuredContent"), "id")));
    json_decref(j);
}

/* ---- the SSE client: a raw socket whose reads are events on the server's loop ---- */

typedef struct sse {
    int fd;
    struct event *ev;
    char buf[1 << 16];
    size_t len, pos; /* pos: what earlier waits consumed */
    int eof;
} sse;

static void sse_read(evutil_socket_t fd, short what, void *arg)
{
    sse *c = arg;
    (void)what;
    for (;;) {
        ssize_t n = recv(fd, c->buf + c->len, sizeof c->buf - 1 - c->len, MSG_DONTWAIT);
        if (n > 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            continue;
        }
        if (n == 0 || c->len + 1 >= sizeof c->buf)
            c->eof = 1;
        break;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until needle appears after c->pos (then consumes through it) or 5 s pass
 * (a failure, not a synchronisation). Returns 1 when found. */
static int sse_wait(fx *f, sse *c, const char *needle)
{
    int timed_out = 0;
    struct timeval tv = {5, 0};
    struct event *to = evtimer_new(f->base, on_timeout, &timed_out);
    char *hit = NULL;
    evtimer_add(to, &tv);
    while (!(hit = strstr(c->buf + c->pos, needle)) && !c->eof && !timed_out)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_free(to);
    if (!hit)
        hit = strstr(c->buf + c->pos, needle);
    if (hit)
        c->pos = (size_t)(hit - c->buf) + strlen(needle);
    return hit != NULL;
}

/* Opens GET /mcp for sid with token; returns the HTTP status (the connection stays open on
 * 200: the stream). */
static int sse_open_resume(fx *f, sse *c, const char *token, const char *sid,
                           const char *last_event_id)
{
    struct sockaddr_in a;
    char req[KEY_TOKEN_MAX + 512];
    int n, status = 0;
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(f->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    n = snprintf(req, sizeof req,
                 "GET /mcp HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                 "Authorization: Bearer %s\r\nMCP-Session-Id: %s\r\n"
                 "MCP-Protocol-Version: 2025-11-25\r\n%s%s%s\r\n",
                 f->host, token, sid, last_event_id ? "Last-Event-ID: " : "",
                 last_event_id ? last_event_id : "", last_event_id ? "\r\n" : "");
    assert_int_equal(send(c->fd, req, (size_t)n, 0), n);
    c->ev = event_new(f->base, c->fd, EV_READ | EV_PERSIST, sse_read, c);
    event_add(c->ev, NULL);
    assert_true(sse_wait(f, c, "\r\n\r\n"));
    if (strncmp(c->buf, "HTTP/1.1 ", 9) == 0)
        status = (int)strtol(c->buf + 9, NULL, 10);
    return status;
}

static int sse_open(fx *f, sse *c, const char *token, const char *sid)
{
    return sse_open_resume(f, c, token, sid, NULL);
}

static void sse_close(sse *c)
{
    if (c->ev)
        event_free(c->ev);
    if (c->fd >= 0)
        close(c->fd);
    c->ev = NULL;
    c->fd = -1;
}

/* The server ended the stream: chunked encoding's last chunk. */
#define STREAM_END "\r\n0\r\n\r\n"

/* Runs the loop (and the stream tick, as the program's timer would) until n streams are open,
 * or 5 s pass. The clock is not advanced: only clients that went away are closed. */
static void pump_until_streams(fx *f, size_t n)
{
    int timed_out = 0;
    struct timeval tv = {5, 0};
    struct event *to = evtimer_new(f->base, on_timeout, &timed_out);
    evtimer_add(to, &tv);
    mcp_server_stream_tick(f->srv);
    while (mcp_server_stream_count(f->srv) != n && !timed_out) {
        event_base_loop(f->base, EVLOOP_ONCE);
        mcp_server_stream_tick(f->srv);
    }
    event_free(to);
    assert_int_equal(mcp_server_stream_count(f->srv), n);
}

static void advance_and_tick(fx *f, int64_t ms)
{
    core_fake_clock_advance(&f->clock, ms);
    mcp_server_stream_tick(f->srv);
}

/* ---- tests ---- */

static void test_open_and_refusals(void **state)
{
    fx *f = *state;
    char sid[64], sid2[64], tok2[KEY_TOKEN_MAX];
    core_http_fetch_resp r;
    json_t *init = NULL, *j;
    rq q = {0};
    sse c, c2;

    open_session(f, f->tok, sid, sizeof sid, &init);
    /* initialize declares subscriptions (server/resources "Capabilities") */
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(init, "capabilities"), "resources"), "subscribe")));
    json_decref(init);

    q.method = "GET";
    q.token = f->tok;
    q.session = sid;
    q.accept = "application/json"; /* no text/event-stream → 406 */
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 406);
    j = body_json(&r);
    assert_non_null(strstr(err_msg(j), "text/event-stream"));
    json_decref(j);
    core_http_fetch_resp_free(&r);
    q.accept = "text/event-stream";
    q.session = NULL; /* no session → 400 */
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 400);
    core_http_fetch_resp_free(&r);
    q.session = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; /* unknown → 404 */
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 404);
    core_http_fetch_resp_free(&r);
    q.session = sid; /* no token → 401 */
    q.token = NULL;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(core_http_fetch_header(&r, "WWW-Authenticate"));
    core_http_fetch_resp_free(&r);
    /* another principal's session → 404 (sessions are bound to their principal) */
    mint(f, WS2, ALL_SCOPES, tok2, sizeof tok2, NULL, 0);
    q.token = tok2;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 404);
    core_http_fetch_resp_free(&r);

    /* the stream: 200 text/event-stream, not cacheable */
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    assert_non_null(strstr(c.buf, "Content-Type: text/event-stream"));
    /* the route's no-store (stricter than the usual SSE no-cache: nothing may keep it) */
    assert_non_null(strstr(c.buf, "Cache-Control: no-store"));
    assert_int_equal(mcp_server_stream_count(f->srv), 1);
    /* a second one for the same session → 409 naming the reason */
    q.token = f->tok;
    q.session = sid;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 409);
    j = body_json(&r);
    assert_non_null(strstr(err_msg(j), "one listening stream"));
    json_decref(j);
    core_http_fetch_resp_free(&r);
    /* POSTs in the session go on as before */
    {
        int st;
        j = rpc(f, f->tok, sid, "ping", "{}", &st, NULL);
        assert_int_equal(st, 200);
        json_decref(j);
    }

    /* DELETE ends the session and with it the stream */
    q.method = "DELETE";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 204);
    core_http_fetch_resp_free(&r);
    assert_true(sse_wait(f, &c, ": closing: the session ended"));
    assert_true(sse_wait(f, &c, STREAM_END));
    assert_int_equal(mcp_server_stream_count(f->srv), 0);
    sse_close(&c);

    /* a client that went away: its stream is closed at the next tick, and its session may
     * open a new one */
    open_session(f, f->tok, sid2, sizeof sid2, NULL);
    assert_int_equal(sse_open(f, &c, f->tok, sid2), 200);
    sse_close(&c);
    pump_until_streams(f, 0);
    assert_int_equal(sse_open(f, &c2, f->tok, sid2), 200);
    assert_int_equal(mcp_server_stream_count(f->srv), 1);
    sse_close(&c2);
}

static void test_keepalive_and_expiry(void **state)
{
    fx *f = *state;
    char sid[64];
    sse c;
    int i, st;
    json_t *j;

    open_session(f, f->tok, sid, sizeof sid, NULL);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    advance_and_tick(f, 14000); /* not yet */
    advance_and_tick(f, 999);
    for (i = 0; i < 4; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_null(strstr(c.buf + c.pos, "keep-alive"));
    advance_and_tick(f, 1);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    /* 35 minutes of keep-alives: the open stream keeps its session alive past the 30 min idle
     * expiry (no request in between) */
    for (i = 0; i < 140; i++) {
        advance_and_tick(f, 15000);
        assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    }
    j = rpc(f, f->tok, sid, "ping", "{}", &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    /* the token (3600 s) expires: the next check closes the stream */
    advance_and_tick(f, 3600 * 1000 - 141 * 15000 + 15000);
    assert_true(sse_wait(f, &c, ": closing: the access token expired"));
    assert_true(sse_wait(f, &c, STREAM_END));
    assert_int_equal(mcp_server_stream_count(f->srv), 0);
    sse_close(&c);
}

static void on_exit_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* The connection's idle timeout (1 s here) does not end a listening stream: the loop runs for
 * 2.5 s of real time (observing that a timeout does NOT fire needs time to pass), then the
 * stream still carries a keep-alive. */
static void test_stream_outlives_idle_timeout(void **state)
{
    fx *f = *state;
    struct timeval tv = {2, 500000};
    struct event *stop;
    char sid[64];
    sse c;

    open_session(f, f->tok, sid, sizeof sid, NULL);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    stop = evtimer_new(f->base, on_exit_loop, f->base);
    evtimer_add(stop, &tv);
    event_base_dispatch(f->base);
    event_free(stop);
    assert_false(c.eof);
    assert_int_equal(mcp_server_stream_count(f->srv), 1);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_false(c.eof);
    sse_close(&c);
}

static void test_revocation_closes(void **state)
{
    fx *f = *state;
    char sid[64], cmd[256];
    sse c;
    int st;
    json_t *j;

    open_session(f, f->tok, sid, sizeof sid, NULL);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    snprintf(cmd, sizeof cmd, "revoke %s %s", f->dir, f->gid);
    fixture(f, cmd, NULL, 0, NULL, 0); /* "disconnect" in postly-authz */
    /* within one keep-alive interval (15 s here, at most 30 s) */
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": closing: the grant behind the token was revoked"));
    assert_true(sse_wait(f, &c, STREAM_END));
    assert_int_equal(mcp_server_stream_count(f->srv), 0);
    sse_close(&c);
    j = rpc(f, f->tok, sid, "ping", "{}", &st, NULL);
    assert_int_equal(st, 401);
    json_decref(j);
}

static void test_stream_limit(void **state)
{
    fx *f = *state;
    char s1[64], s2[64], s3[64];
    core_http_fetch_resp r;
    sse a, b, c;
    rq q = {0};
    json_t *j;

    open_session(f, f->tok, s1, sizeof s1, NULL);
    open_session(f, f->tok, s2, sizeof s2, NULL);
    open_session(f, f->tok, s3, sizeof s3, NULL);
    assert_int_equal(sse_open(f, &a, f->tok, s1), 200);
    assert_int_equal(sse_open(f, &b, f->tok, s2), 200);
    q.method = "GET";
    q.token = f->tok;
    q.session = s3;
    q.accept = "text/event-stream";
    send_rq(f, &q, &r); /* max_streams = 2 */
    assert_int_equal(r.status, 503);
    assert_non_null(core_http_fetch_header(&r, "Retry-After"));
    j = body_json(&r);
    assert_non_null(strstr(err_msg(j), "too many listening streams"));
    json_decref(j);
    core_http_fetch_resp_free(&r);
    /* one client goes away: its slot is free again after the next tick */
    sse_close(&a);
    pump_until_streams(f, 1);
    assert_int_equal(sse_open(f, &c, f->tok, s3), 200);
    sse_close(&b);
    sse_close(&c);
}

static void test_subscribe_errors(void **state)
{
    fx *f = *state;
    char sid[64], sid2[64], tok2[KEY_TOKEN_MAX], tokr[KEY_TOKEN_MAX], sidr[64], www[512];
    char other_post[64], args[256], uri[128], acc[64];
    json_t *in, *obj, *j;
    ex_err xe;
    int st;

    open_session(f, f->tok, sid, sizeof sid, NULL);
    /* params.uri required, bounded */
    j = rpc(f, f->tok, sid, "resources/subscribe", "{}", &st, NULL);
    assert_int_equal(err_code(j), -32602);
    assert_non_null(strstr(err_msg(j), "params.uri"));
    json_decref(j);
    j = rpc(f, f->tok, sid, "resources/unsubscribe", "{\"uri\":3}", &st, NULL);
    assert_int_equal(err_code(j), -32602);
    json_decref(j);
    /* unknown URIs and ids → -32002 */
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "test://static-text", &st), -32002);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://posts/pst_nope", &st),
                     -32002);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://analytics/myspace", &st),
                     -32002);
    /* another workspace's post → -32002 (existence does not leak) */
    in = json_pack("{s:s, s:s}", "platform", "linkedin", "display_name", "Other");
    assert_int_equal(ex_account_create(&f->ex, WS2, in, &obj, &xe), PL_OK);
    snprintf(acc, sizeof acc, "%s", json_string_value(json_object_get(obj, "id")));
    json_decref(in);
    json_decref(obj);
    mint(f, WS2, ALL_SCOPES, tok2, sizeof tok2, NULL, 0);
    open_session(f, tok2, sid2, sizeof sid2, NULL);
    {
        char params[512];
        snprintf(params, sizeof params,
                 "{\"name\":\"postly_create_post\",\"arguments\":{\"account_ids\":[\"%s\"],"
                 "\"text\":\"theirs\"}}",
                 acc);
        j = rpc(f, tok2, sid2, "tools/call", params, &st, NULL);
        snprintf(other_post, sizeof other_post, "%s",
                 json_string_value(json_object_get(
                     json_object_get(json_object_get(j, "result"), "structuredContent"), "id")));
        json_decref(j);
    }
    snprintf(uri, sizeof uri, "postly://posts/%s", other_post);
    assert_int_equal(sub(f, tok2, sid2, "resources/subscribe", uri, &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", uri, &st), -32002);
    /* a token without posts:read → 403 step-up naming the scope */
    mint(f, WS, "workspace:read", tokr, sizeof tokr, NULL, 0);
    open_session(f, tokr, sidr, sizeof sidr, NULL);
    snprintf(args, sizeof args, "{\"uri\":\"%s\"}", "postly://workspace");
    j = rpc(f, tokr, sidr, "resources/subscribe", args, &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    j = rpc(f, tokr, sidr, "resources/subscribe", "{\"uri\":\"postly://analytics/summary\"}", &st,
            www);
    assert_int_equal(st, 403);
    assert_non_null(strstr(www, "insufficient_scope"));
    assert_non_null(strstr(www, "analytics:read"));
    json_decref(j);
    /* idempotent, bounded (max_subscriptions = 3 distinct URIs) */
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://workspace", &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://workspace", &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://analytics/summary", &st),
                     0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://analytics/linkedin", &st),
                     0);
    j = rpc(f, f->tok, sid, "resources/subscribe", "{\"uri\":\"postly://analytics/x\"}", &st, NULL);
    assert_int_equal(err_code(j), -32602);
    assert_non_null(strstr(err_msg(j), "limit"));
    json_decref(j);
    /* unsubscribing frees a slot; unsubscribing twice (or what was never subscribed) is fine */
    assert_int_equal(
        sub(f, f->tok, sid, "resources/unsubscribe", "postly://analytics/linkedin", &st), 0);
    assert_int_equal(
        sub(f, f->tok, sid, "resources/unsubscribe", "postly://analytics/linkedin", &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/unsubscribe", "postly://nothing", &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", "postly://analytics/x", &st), 0);
}

/* A LinkedIn sandbox account in WS, created directly in the execution layer; its id in acc. */
static void new_account(fx *f, char *acc, size_t accsz)
{
    json_t *in = json_pack("{s:s, s:s}", "platform", "linkedin", "display_name", "Acme"), *obj;
    ex_err xe;
    assert_int_equal(ex_account_create(&f->ex, WS, in, &obj, &xe), PL_OK);
    snprintf(acc, accsz, "%s", json_string_value(json_object_get(obj, "id")));
    json_decref(in);
    json_decref(obj);
}

static void test_updated_after_tool_write_and_publish(void **state)
{
    fx *f = *state;
    char sid[64], sid_nostream[64], acc[64], p1[64], p2[64], cmp[64], args[512], uri1[128],
        uri2[128], ucmp[128], when[40], needle[256];
    ex_scheduler *sched = NULL;
    ex_sched_stats stats;
    sse c;
    int st;
    size_t mark;

    new_account(f, acc, sizeof acc);
    open_session(f, f->tok, sid, sizeof sid, NULL);
    open_session(f, f->tok, sid_nostream, sizeof sid_nostream, NULL);
    tool(f, sid, "postly_create_campaign", "{\"name\":\"Spring\",\"goal\":\"launch\"}", cmp,
         sizeof cmp);
    snprintf(args, sizeof args, "{\"account_ids\":[\"%s\"],\"text\":\"one\"}", acc);
    tool(f, sid, "postly_create_post", args, p1, sizeof p1);
    tool(f, sid, "postly_create_post", args, p2, sizeof p2);
    snprintf(uri1, sizeof uri1, "postly://posts/%s", p1);
    snprintf(uri2, sizeof uri2, "postly://posts/%s", p2);
    snprintf(ucmp, sizeof ucmp, "postly://campaigns/%s", cmp);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", uri1, &st), 0);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", ucmp, &st), 0);
    /* the session without a stream subscribes too: its notifications are dropped */
    assert_int_equal(sub(f, f->tok, sid_nostream, "resources/subscribe", uri2, &st), 0);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);

    /* a tool write to a subscribed post */
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"edited\"}", p1);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    snprintf(needle, sizeof needle,
             "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{"
             "\"uri\":\"%s\"}}",
             uri1);
    assert_true(sse_wait(f, &c, needle));
    /* a write to a post nobody with a stream subscribed to: nothing (the keep-alive that
     * follows is the next thing on the stream) */
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"edited too\"}", p2);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_null(strstr(c.buf, uri2));
    /* adding the post to the campaign changes the campaign */
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"campaign_id\":\"%s\"}", p2, cmp);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    snprintf(needle, sizeof needle, "\"params\":{\"uri\":\"%s\"}", ucmp);
    assert_true(sse_wait(f, &c, needle));

    /* the scheduler publishes p1 (the injected clock reaches its time) */
    ex_time_format(core_clock_now_ms(&f->clock.base) + (int64_t)600 * 1000, when, sizeof when);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"scheduled_at\":\"%s\"}", p1, when);
    tool(f, sid, "postly_schedule_post", args, NULL, 0);
    snprintf(needle, sizeof needle, "\"params\":{\"uri\":\"%s\"}", uri1);
    assert_true(sse_wait(f, &c, needle)); /* scheduling is a change too */
    core_fake_clock_advance(&f->clock, (int64_t)600 * 1000 + 1000);
    assert_int_equal(ex_scheduler_new(&f->ex, "test", &sched), PL_OK);
    memset(&stats, 0, sizeof stats);
    assert_int_equal(ex_scheduler_run_once(sched, 10, &stats), PL_OK);
    assert_int_equal(stats.posts, 1);
    ex_scheduler_free(sched);
    if (!sse_wait(f, &c, needle))
        fail_msg("no notification after the publication; stream: %s", c.buf + c.pos);
    {
        json_t *j;
        snprintf(args, sizeof args, "{\"uri\":\"%s\"}", uri1);
        j = rpc(f, f->tok, sid, "resources/read", args, &st, NULL);
        assert_non_null(
            strstr(json_string_value(json_object_get(
                       json_array_get(json_object_get(json_object_get(j, "result"), "contents"), 0),
                       "text")),
                   "\"published\""));
        json_decref(j);
    }
    /* unsubscribed: no more notifications for it (a keep-alive first, so that every
     * notification of the publication has arrived before the mark) */
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    mark = c.pos;
    assert_int_equal(sub(f, f->tok, sid, "resources/unsubscribe", uri1, &st), 0);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\"}", p1);
    tool(f, sid, "postly_delete_post", args, NULL, 0);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    c.buf[c.pos] = '\0';
    assert_null(strstr(c.buf + mark, uri1));
    sse_close(&c);
}

/* Event ids and Last-Event-ID: what a session missed while its stream was down is resent when
 * it resumes (the last 8 kept); a stream opened without Last-Event-ID gets nothing old. */
static void test_resumption(void **state)
{
    fx *f = *state;
    char sid[64], acc[64], post[64], args[256], uri[128], needle[256];
    sse c;
    int st, i;
    size_t mark;

    new_account(f, acc, sizeof acc);
    open_session(f, f->tok, sid, sizeof sid, NULL);
    snprintf(args, sizeof args, "{\"account_ids\":[\"%s\"],\"text\":\"v0\"}", acc);
    tool(f, sid, "postly_create_post", args, post, sizeof post);
    snprintf(uri, sizeof uri, "postly://posts/%s", post);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", uri, &st), 0);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"v1\"}", post);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    snprintf(needle, sizeof needle,
             "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
             "\"notifications/resources/updated\",\"params\":{\"uri\":\"%s\"}}",
             uri);
    assert_true(sse_wait(f, &c, needle));

    /* the stream breaks; two changes happen meanwhile (ids 2 and 3) */
    sse_close(&c);
    pump_until_streams(f, 0);
    for (i = 2; i <= 3; i++) {
        snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"v%d\"}", post, i);
        tool(f, sid, "postly_update_post", args, NULL, 0);
    }
    /* resumed after id 1: ids 2 and 3 arrive at once, in order */
    assert_int_equal(sse_open_resume(f, &c, f->tok, sid, "1"), 200);
    assert_true(sse_wait(f, &c, "id: 2\n"));
    assert_true(sse_wait(f, &c, uri));
    assert_true(sse_wait(f, &c, "id: 3\n"));
    assert_true(sse_wait(f, &c, uri));
    assert_null(strstr(c.buf, "id: 1\n"));
    sse_close(&c);
    pump_until_streams(f, 0);

    /* a new stream without Last-Event-ID: nothing old (id 4 happened while it was down) */
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"v4\"}", post);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_null(strstr(c.buf, "id: 4\n"));
    sse_close(&c);
    pump_until_streams(f, 0);

    /* ten more while down (ids 5..14): only the last 8 (7..14) are kept; an unusable
     * Last-Event-ID is a fresh stream */
    for (i = 5; i <= 14; i++) {
        snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"v%d\"}", post, i);
        tool(f, sid, "postly_update_post", args, NULL, 0);
    }
    assert_int_equal(sse_open_resume(f, &c, f->tok, sid, "x1"), 200);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_null(strstr(c.buf, "id: "));
    sse_close(&c);
    pump_until_streams(f, 0);
    assert_int_equal(sse_open_resume(f, &c, f->tok, sid, "4"), 200);
    mark = c.pos;
    assert_true(sse_wait(f, &c, "id: 14\n"));
    c.buf[c.pos] = '\0';
    assert_null(strstr(c.buf + mark, "id: 6\n"));
    assert_non_null(strstr(c.buf + mark, "id: 7\n"));
    assert_true(strstr(c.buf + mark, "id: 7\n") < strstr(c.buf + mark, "id: 13\n"));
    sse_close(&c);
}

/* Loads the shipped policy with `extra` appended and makes it the server's, as SIGHUP does. */
static void reload_policy(fx *f, const char *extra)
{
    char path[512];
    pol_diags d;
    pol_compiled *p = NULL;
    FILE *fp;
    long n;
    char *buf;
    size_t el = strlen(extra);
    snprintf(path, sizeof path, "%s/policy/default.policy", POSTLY_SOURCE_DIR);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    buf = malloc((size_t)n + el + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    memcpy(buf + n, extra, el + 1);
    pol_diags_init(&d);
    assert_int_equal(pol_load_buffer("reloaded.policy", buf, (size_t)n + el, 0, &d, &p), PL_OK);
    pol_diags_free(&d);
    free(buf);
    assert_int_equal(mcp_server_set_policy(f->srv, p, "sha256:reloaded"), PL_OK);
    pol_compiled_free(f->policy);
    f->policy = p;
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (; (hay = strstr(hay, needle)) != NULL; hay++)
        k++;
    return k;
}

/* 1 when tools/list (as the session sees it now) names tool. */
static int listed(fx *f, const char *sid, const char *tool_name)
{
    int st, found = 0;
    size_t i;
    json_t *j = rpc(f, f->tok, sid, "tools/list", "{}", &st, NULL), *t;
    assert_int_equal(st, 200);
    json_array_foreach(json_object_get(json_object_get(j, "result"), "tools"), i, t) found |=
        strcmp(json_string_value(json_object_get(t, "name")), tool_name) == 0;
    json_decref(j);
    return found;
}

#define TOOLS_CHANGED "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}"
#define RES_CHANGED                                                                                \
    "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/list_changed\"}"

static void test_list_changed_on_policy_reload(void **state)
{
    fx *f = *state;
    static const char forbid_delete[] =
        "forbid f-test-delete class=preregistered scopes=posts:delete\n";
    static const char forbid_x[] = "forbid f-test-x class=preregistered scopes=analytics:x:read\n";
    char sid[64], both[256];
    json_t *init;
    sse c;

    open_session(f, f->tok, sid, sizeof sid, &init);
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(init, "capabilities"), "tools"), "listChanged")));
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(init, "capabilities"), "resources"), "listChanged")));
    json_decref(init);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    pump_until_streams(f, 1);
    assert_true(listed(f, sid, "postly_delete_post"));

    /* a reload that changes nothing this client is listed: nothing is sent */
    reload_policy(f, "rate r-test class=* tool=postly_get_workspace limit=1000/min per=client\n");
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_int_equal(count(c.buf, "list_changed"), 0);

    /* posts:delete forbidden to this client's class: postly_delete_post is hidden, the
     * resources are not affected */
    reload_policy(f, forbid_delete);
    assert_true(sse_wait(f, &c, TOOLS_CHANGED));
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_int_equal(count(c.buf, "list_changed"), 1);
    assert_false(listed(f, sid, "postly_delete_post"));

    /* analytics:x:read forbidden as well: postly://analytics/x leaves resources/list, the
     * tools listing stays as it was */
    snprintf(both, sizeof both, "%s%s", forbid_delete, forbid_x);
    reload_policy(f, both);
    assert_true(sse_wait(f, &c, RES_CHANGED));
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_int_equal(count(c.buf, "list_changed"), 2);

    /* a reload while the stream is closed: the reopened stream is told of both listings */
    sse_close(&c);
    pump_until_streams(f, 0);
    reload_policy(f, "");
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);
    assert_true(sse_wait(f, &c, TOOLS_CHANGED));
    assert_true(sse_wait(f, &c, RES_CHANGED));
    assert_true(listed(f, sid, "postly_delete_post"));
    sse_close(&c);
}

/* The exec store's data file made read-only under LMDB: its next commit fails. */
static int break_data_file(const char *dir)
{
    char want[600];
    snprintf(want, sizeof want, "%s/exec/data.mdb", dir);
    return tf_break_data_file(want);
}

/* A batched tool write is notified once its batch is durable; a write whose batch fails to
 * commit (the client gets HTTP 500) is never notified. */
static void test_no_update_for_a_failed_batch(void **state)
{
    fx *f = *state;
    char sid[64], acc[64], p1[64], args[512], uri[128], needle[256];
    ex_batch_stats b0, b1;
    json_t *j;
    sse c;
    int st;
    size_t from;

    new_account(f, acc, sizeof acc);
    open_session(f, f->tok, sid, sizeof sid, NULL);
    snprintf(args, sizeof args, "{\"account_ids\":[\"%s\"],\"text\":\"one\"}", acc);
    tool(f, sid, "postly_create_post", args, p1, sizeof p1);
    snprintf(uri, sizeof uri, "postly://posts/%s", p1);
    assert_int_equal(sub(f, f->tok, sid, "resources/subscribe", uri, &st), 0);
    assert_int_equal(sse_open(f, &c, f->tok, sid), 200);

    /* durable batch: held, released, notified */
    ex_batcher_stats(f->batcher, &b0);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"edited\"}", p1);
    tool(f, sid, "postly_update_post", args, NULL, 0);
    ex_batcher_stats(f->batcher, &b1);
    assert_int_equal(b1.held, b0.held + 1);
    snprintf(needle, sizeof needle, "\"params\":{\"uri\":\"%s\"}", uri);
    assert_true(sse_wait(f, &c, needle));

    /* failed batch: an error for the client, and no notification */
    from = c.pos;
    assert_true(break_data_file(f->dir) > 0);
    snprintf(args, sizeof args,
             "{\"name\":\"postly_update_post\",\"arguments\":{\"post_id\":\"%s\",\"text\":"
             "\"lost\"}}",
             p1);
    j = rpc(f, f->tok, sid, "tools/call", args, &st, NULL);
    assert_int_equal(st, 500);
    assert_int_equal(err_code(j), -32603);
    json_decref(j);
    advance_and_tick(f, 15000);
    assert_true(sse_wait(f, &c, ": keep-alive\n\n"));
    assert_null(strstr(c.buf + from, uri));
    sse_close(&c);
}

/* ---- the hook itself: exec/store.h's change observer, which the notifications rely on ---- */

typedef struct seen_keys {
    char text[2048];
    int calls;
} seen_keys;

static void record(void *arg, ex_db db, const char *key)
{
    seen_keys *k = arg;
    size_t n = strlen(k->text);
    snprintf(k->text + n, sizeof k->text - n, "%d:%s;", (int)db, key);
    k->calls++;
}

static void put(ex_store *st, ex_db db, const char *key, int commit)
{
    ex_txn t;
    assert_int_equal(ex_txn_begin(st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, db, key, "{}", 2), PL_OK);
    if (commit)
        assert_int_equal(ex_txn_commit(&t), PL_OK);
    else
        ex_txn_abort(&t);
}

static void test_store_observer(void **state)
{
    char dir[64], expect[256], cmd[128];
    ex_store *st = NULL;
    seen_keys k;
    ex_txn t;
    int needs_sync = 0;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/mcp-observer-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(ex_store_open(dir, 0, EX_STORE_NOSYNC, &st), PL_OK);
    memset(&k, 0, sizeof k);
    put(st, EX_DB_POSTS, "ws|pst|before", 1); /* no observer yet: nothing */
    ex_store_set_observer(st, 1u << EX_DB_POSTS, record, &k);

    /* one transaction: each key of an observed database once, in first-write order, after
     * the commit; other databases are not reported */
    assert_int_equal(ex_txn_begin(st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_POSTS, "ws|pst|a", "1", 1), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_ACCOUNTS, "ws|acc|x", "1", 1), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_POSTS, "ws|pst|b", "1", 1), PL_OK);
    assert_int_equal(ex_txn_put_raw(&t, EX_DB_POSTS, "ws|pst|a", "2", 1), PL_OK);
    assert_int_equal(ex_txn_del(&t, EX_DB_POSTS, "ws|pst|before"), PL_OK);
    assert_int_equal(k.calls, 0);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    snprintf(expect, sizeof expect, "%d:ws|pst|a;%d:ws|pst|b;%d:ws|pst|before;", EX_DB_POSTS,
             EX_DB_POSTS, EX_DB_POSTS);
    assert_string_equal(k.text, expect);

    /* an aborted transaction reports nothing */
    memset(&k, 0, sizeof k);
    put(st, EX_DB_POSTS, "ws|pst|c", 0);
    assert_int_equal(k.calls, 0);

    /* in a batch: a child's keys are kept with the batch, reported only when the batch is
     * settled as durable (exec/batch.c does so when it releases the replies); an aborted
     * child reports nothing */
    assert_int_equal(ex_store_batch_thread(st), PL_OK);
    ex_store_batch_enter(st);
    put(st, EX_DB_POSTS, "ws|pst|d", 1);
    put(st, EX_DB_POSTS, "ws|pst|e", 0);
    assert_int_equal(k.calls, 0);
    ex_store_batch_leave(st);
    assert_int_equal(ex_store_batch_commit(st, &needs_sync, NULL), PL_OK);
    assert_int_equal(k.calls, 0);
    ex_store_batch_settle(st, ex_store_batch_mark(st), PL_OK);
    snprintf(expect, sizeof expect, "%d:ws|pst|d;", EX_DB_POSTS);
    assert_string_equal(k.text, expect);
    assert_int_equal(k.calls, 1);

    /* removed: nothing more */
    ex_store_set_observer(st, 0, NULL, NULL);
    put(st, EX_DB_POSTS, "ws|pst|f", 1);
    assert_int_equal(k.calls, 1);
    ex_store_free(st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_observer),
        cmocka_unit_test_setup_teardown(test_open_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_outlives_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resumption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_changed_on_policy_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subscribe_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_updated_after_tool_write_and_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_update_for_a_failed_batch, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
