/*
 * tests/mcp/test_server.c — postly-mcp over loopback HTTP: the server in-process on port 0
 * (core/http), real ES256 tokens minted by keys/ and verified by keys/verify, the shipped
 * policy file, a real LMDB execution store in a mkdtemp directory, and core_http_fetch as the
 * client on the same event loop. The clock is a fake one (tokens expire without sleeping).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/crypto.h"
#include "core/http.h"
#include "core/http_client.h"
#include "exec/account.h"
#include "exec/batch.h"
#include "exec/campaign.h"
#include "exec/connector.h"
#include "exec/post.h"
#include "exec/store.h"
#include "exec/workspace.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"
#include "mcp/config.h"
#include "mcp/http.h"
#include "mcp/server.h"
#include "mcp/usage.h"
#include "policy/policy.h"
#include "tests/common/lmdb_fault.h"

#define ISSUER "http://127.0.0.1:1"
#define WS     "ws_test"

typedef struct fx {
    char dir[64];
    char audit_path[128];
    core_fake_clock clock;
    core_log log;
    struct event_base *base;
    core_http *http;
    mcp_config cfg;
    pol_compiled *policy;
    key_keyset *keys;
    key_verifier *verifier;
    ex_store *store;
    ex_batcher *batcher; /* group commit, as postly-mcp runs it */
    ex_ctx ex;
    ex_connectors conns;
    FILE *audit;
    mcp_usage *usage;
    mcp_server *srv;
    uint16_t port;
    char host[32];
    char url[96];
} fx;

/* cmocka prestate for setup: a durable store (EX_STORE_GROUP_COMMIT). */
static const int DURABLE = 1;

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

    snprintf(f->dir, sizeof f->dir, "/tmp/mcp-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    core_fake_clock_init(&f->clock, 1800000000000LL);
    f->log.level = CORE_LOG_ERROR;
    f->log.component = "mcp-test";
    f->base = event_base_new();
    memset(&hc, 0, sizeof hc);
    hc.host = "127.0.0.1";
    hc.port = 0;
    /* as main.c: the socket layer's cap is above ours, so a body just over our limit gets
     * our JSON 413 rather than a closed connection */
    hc.limits.max_body = 65536 + 65536;
    hc.log = &f->log;
    assert_int_equal(core_http_new(f->base, &hc, &f->http), PL_OK);
    f->port = core_http_port(f->http);
    snprintf(f->host, sizeof f->host, "127.0.0.1:%u", f->port);

    mcp_config_defaults(&f->cfg);
    f->cfg.listen_port = f->port;
    snprintf(f->cfg.authz_url, sizeof f->cfg.authz_url, "%s", ISSUER);
    f->cfg.limits.max_body = 65536;
    f->cfg.limits.max_depth = 16;
    f->cfg.limits.max_string = 4096;
    f->cfg.limits.max_sessions = 64;
    f->cfg.limits.sessions_per_principal = 0; /* test_session.c covers the per-principal bound */
    f->cfg.limits.token_rate_per_min = 0;     /* the policy's rules are tested here; test_rate.c
                                                 covers the per-token bucket */
    assert_int_equal(mcp_config_finish(&f->cfg, f->port, err, sizeof err), PL_OK);
    snprintf(f->url, sizeof f->url, "%s", f->cfg.canonical_url);

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
    vc.leeway_s = 0;
    vc.clock = &f->clock.base;
    vc.keyset = f->keys;
    assert_int_equal(key_verifier_new(&vc, &f->verifier), PL_OK);

    /* The prestate DURABLE asks for the store as postly-mcp opens it (group commit, fsyncs);
     * the other tests skip the fsyncs. Either way writes go through the batcher. */
    snprintf(path, sizeof path, "%s/exec", f->dir);
    assert_int_equal(ex_store_open(path, 0,
                                   *state == &DURABLE ? EX_STORE_GROUP_COMMIT : EX_STORE_NOSYNC,
                                   &f->store),
                     PL_OK);
    assert_int_equal(ex_batcher_new(f->base, f->store, &f->log, &f->batcher), PL_OK);
    f->ex.store = f->store;
    f->ex.clock = &f->clock.base;
    f->ex.log = &f->log;
    ex_limits_default(&f->ex.limits);
    assert_int_equal(ex_connectors_init_sandbox(&f->conns), PL_OK);
    ex_connectors_install(&f->conns, &f->ex);

    snprintf(f->audit_path, sizeof f->audit_path, "%s/audit.jsonl", f->dir);
    f->audit = fopen(f->audit_path, "a+");
    assert_int_equal(mcp_usage_open(f->dir, &f->clock.base, 1, &f->usage), PL_OK);
    memset(&deps, 0, sizeof deps);
    deps.clock = &f->clock.base;
    deps.log = &f->log;
    deps.verifier = f->verifier;
    deps.policy = f->policy;
    deps.policy_revision = "sha256:test";
    deps.ex = &f->ex;
    deps.audit = f->audit;
    deps.usage = f->usage;
    deps.batcher = f->batcher;
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
    mcp_server_free(f->srv);
    mcp_usage_free(f->usage);
    fclose(f->audit);
    ex_store_free(f->store);
    ex_connectors_free(&f->conns);
    key_verifier_free(f->verifier);
    key_keyset_free(f->keys);
    pol_compiled_free(f->policy);
    event_base_free(f->base);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- helpers ---- */

typedef struct tok_opts {
    const char *scope, *ws, *cls, *sub, *aud;
    int64_t lifetime_s;
} tok_opts;

static void mint(fx *f, const tok_opts *o, char *out, size_t outsz)
{
    key_claims c;
    memset(&c, 0, sizeof c);
    c.iss = ISSUER;
    c.sub = o->sub ? o->sub : "usr_alice";
    c.aud = o->aud ? o->aud : f->cfg.canonical_url;
    c.client_id = "client-test";
    c.scope = o->scope;
    c.ws = o->ws ? o->ws : WS;
    c.gid = "grt_test";
    c.cls = o->cls ? o->cls : "preregistered";
    c.lifetime_s = o->lifetime_s;
    assert_int_equal(key_token_mint(f->keys, &f->clock.base, &c, out, outsz, NULL, NULL), PL_OK);
}

static const char *ALL_SCOPES =
    "workspace:read workspace:list posts:read posts:create posts:update posts:delete "
    "posts:schedule posts:publish posts:status:read drafts:read drafts:create drafts:update "
    "drafts:delete media:read media:upload media:update media:delete campaigns:read "
    "campaigns:create campaigns:update campaigns:delete social_accounts:read "
    "social_accounts:list analytics:read analytics:facebook:read analytics:instagram:read "
    "analytics:pinterest:read analytics:youtube:read analytics:gmb:read analytics:linkedin:read "
    "analytics:x:read";

typedef struct hdrs {
    const char *v[24];
    size_t n;
} hdrs;

static void hadd(hdrs *h, const char *name, const char *value)
{
    h->v[h->n++] = name;
    h->v[h->n++] = value;
    h->v[h->n] = NULL;
}

/* Sends method to target with the usual MCP headers (Host, Content-Type, Accept, bearer,
 * session) unless overridden with NULL; extra headers appended. */
typedef struct rq {
    const char *method, *target, *token, *session, *body;
    const char *host;    /* NULL: the server's */
    const char *ctype;   /* NULL: application/json */
    const char *accept;  /* NULL: both */
    const char *version; /* MCP-Protocol-Version */
    const char *origin;
    int no_host_default;
} rq;

static void send_rq(fx *f, const rq *r, core_http_fetch_resp *resp)
{
    core_http_fetch_req q;
    hdrs h;
    char auth[KEY_TOKEN_MAX + 16];
    memset(&h, 0, sizeof h);
    hadd(&h, "Host", r->host ? r->host : f->host);
    hadd(&h, "Content-Type", r->ctype ? r->ctype : "application/json");
    hadd(&h, "Accept", r->accept ? r->accept : "application/json, text/event-stream");
    if (r->token) {
        snprintf(auth, sizeof auth, "Bearer %s", r->token);
        hadd(&h, "Authorization", auth);
    }
    if (r->session)
        hadd(&h, "MCP-Session-Id", r->session);
    if (r->version)
        hadd(&h, "MCP-Protocol-Version", r->version);
    if (r->origin)
        hadd(&h, "Origin", r->origin);
    memset(&q, 0, sizeof q);
    q.method = r->method ? r->method : "POST";
    q.host = "127.0.0.1";
    q.port = f->port;
    q.target = r->target ? r->target : "/mcp";
    q.headers = h.v;
    q.body = r->body;
    q.body_len = r->body ? strlen(r->body) : 0;
    memset(resp, 0, sizeof *resp);
    assert_int_equal(core_http_fetch(f->base, &q, resp), PL_OK);
}

/* Sends q and asserts only its HTTP status. */
static void expect_status(fx *f, const rq *q, int status)
{
    core_http_fetch_resp r;
    send_rq(f, q, &r);
    assert_int_equal(r.status, status);
    core_http_fetch_resp_free(&r);
}

/* Appends s to the NUL-terminated text in b (size sz), truncating. */
static void append(char *b, size_t sz, const char *s)
{
    size_t n = strlen(b);
    snprintf(b + n, sz - n, "%s", s);
}

static json_t *body_json(const core_http_fetch_resp *resp)
{
    json_error_t je;
    return json_loadb(resp->body.p ? resp->body.p : "", resp->body.len, 0, &je);
}

/* initialize + notifications/initialized; returns the session id in sid. */
static void open_session(fx *f, const char *token, char *sid, size_t sidsz)
{
    core_http_fetch_resp r;
    rq q = {0};
    q.token = token;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(core_http_fetch_header(&r, "MCP-Session-Id"));
    snprintf(sid, sidsz, "%s", core_http_fetch_header(&r, "MCP-Session-Id"));
    core_http_fetch_resp_free(&r);
    q.session = sid;
    q.version = "2025-11-25";
    q.body = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 202);
    assert_int_equal(r.body.len, 0);
    core_http_fetch_resp_free(&r);
}

/* One JSON-RPC request in a session; returns the parsed body and the status. */
static json_t *call(fx *f, const char *token, const char *sid, const char *body, int *status,
                    core_http_fetch_resp *keep)
{
    core_http_fetch_resp r;
    rq q = {0};
    json_t *j;
    q.token = token;
    q.session = sid;
    q.version = "2025-11-25";
    q.body = body;
    send_rq(f, &q, &r);
    *status = r.status;
    j = body_json(&r);
    if (keep)
        *keep = r;
    else
        core_http_fetch_resp_free(&r);
    return j;
}

static const json_t *result_of(const json_t *j)
{
    const json_t *res = json_object_get(j, "result");
    if (!res) {
        char *s = json_dumps(j, 0);
        fail_msg("no result: %s", s ? s : "(null)");
    }
    return res;
}

static int error_code(const json_t *j)
{
    return (int)json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* ---- tests ---- */

static void test_prm(void **state)
{
    fx *f = *state;
    const char *paths[] = {"/.well-known/oauth-protected-resource/mcp",
                           "/.well-known/oauth-protected-resource"};
    size_t i;
    for (i = 0; i < 2; i++) {
        core_http_fetch_resp r;
        rq q = {0};
        json_t *j, *scopes;
        q.method = "GET";
        q.target = paths[i];
        send_rq(f, &q, &r);
        assert_int_equal(r.status, 200);
        j = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(j, "resource")), f->url);
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(j, "authorization_servers"), 0)),
            ISSUER);
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(j, "bearer_methods_supported"), 0)),
            "header");
        scopes = json_object_get(j, "scopes_supported");
        assert_true(json_array_size(scopes) >= 2);
        assert_string_equal(json_string_value(json_array_get(scopes, 0)), "workspace:read");
        json_decref(j);
        core_http_fetch_resp_free(&r);
    }
}

static void test_401_challenges(void **state)
{
    fx *f = *state;
    core_http_fetch_resp r;
    rq q = {0};
    char tok[KEY_TOKEN_MAX], want[256], target[KEY_TOKEN_MAX + 64];
    const char *wa;
    tok_opts o = {0};

    snprintf(want, sizeof want,
             "Bearer resource_metadata=\"http://%s/.well-known/oauth-protected-resource/mcp\", "
             "scope=\"workspace:read ",
             f->host);
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 401);
    wa = core_http_fetch_header(&r, "WWW-Authenticate");
    assert_non_null(wa);
    assert_memory_equal(wa, want, strlen(want));
    assert_null(strstr(wa, "error="));
    core_http_fetch_resp_free(&r);

    /* a presented but bad token: error="invalid_token" */
    q.token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 401);
    wa = core_http_fetch_header(&r, "WWW-Authenticate");
    assert_non_null(strstr(wa, "error=\"invalid_token\""));
    assert_non_null(strstr(wa, "resource_metadata="));
    core_http_fetch_resp_free(&r);

    /* wrong audience */
    o.scope = ALL_SCOPES;
    o.aud = "http://127.0.0.1:1/other";
    mint(f, &o, tok, sizeof tok);
    q.token = tok;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(core_http_fetch_header(&r, "WWW-Authenticate"), "invalid_token"));
    core_http_fetch_resp_free(&r);

    /* expired: minted for 60 s, the clock moves 10 minutes */
    o.aud = NULL;
    o.lifetime_s = 60;
    mint(f, &o, tok, sizeof tok);
    core_fake_clock_advance(&f->clock, (int64_t)600 * 1000);
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(core_http_fetch_header(&r, "WWW-Authenticate"), "invalid_token"));
    core_http_fetch_resp_free(&r);

    /* not Bearer */
    q.token = NULL;
    {
        core_http_fetch_req fq;
        const char *h[] = {"Host",
                           f->host,
                           "Content-Type",
                           "application/json",
                           "Authorization",
                           "Basic dXNlcjpwYXNz",
                           NULL};
        memset(&fq, 0, sizeof fq);
        fq.method = "POST";
        fq.host = "127.0.0.1";
        fq.port = f->port;
        fq.target = "/mcp";
        fq.headers = h;
        fq.body = q.body;
        fq.body_len = strlen(q.body);
        assert_int_equal(core_http_fetch(f->base, &fq, &r), PL_OK);
        assert_int_equal(r.status, 401);
        core_http_fetch_resp_free(&r);
    }

    /* a token in the query string is refused even with a valid header */
    o.lifetime_s = 0;
    mint(f, &o, tok, sizeof tok);
    snprintf(target, sizeof target, "/mcp?access_token=%s", tok);
    q.token = tok;
    q.target = target;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.p, "query string"));
    core_http_fetch_resp_free(&r);
}

static void test_host_origin(void **state)
{
    fx *f = *state;
    core_http_fetch_resp r;
    rq q = {0};
    char tok[KEY_TOKEN_MAX], origin[64];
    tok_opts o = {0};
    o.scope = ALL_SCOPES;
    mint(f, &o, tok, sizeof tok);
    q.token = tok;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    q.host = "evil.example.com";
    expect_status(f, &q, 403);
    q.host = NULL;
    q.origin = "http://evil.example.com";
    expect_status(f, &q, 403);
    /* the loopback aliases of the listener are allowed */
    snprintf(origin, sizeof origin, "http://localhost:%u", f->port);
    q.origin = origin;
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(core_http_fetch_header(&r, "Access-Control-Allow-Origin"), origin);
    core_http_fetch_resp_free(&r);
}

static void test_lifecycle_and_sessions(void **state)
{
    fx *f = *state;
    core_http_fetch_resp r;
    rq q = {0};
    char tok[KEY_TOKEN_MAX], tok2[KEY_TOKEN_MAX], sid[64];
    tok_opts o = {0};
    json_t *j;
    int st;

    o.scope = ALL_SCOPES;
    mint(f, &o, tok, sizeof tok);
    o.sub = "usr_mallory";
    mint(f, &o, tok2, sizeof tok2);

    /* version negotiation: a supported older version is echoed, an unknown one answered
     * with the latest */
    q.token = tok;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(result_of(j), "protocolVersion")),
                        "2025-06-18");
    assert_true(
        json_is_object(json_object_get(json_object_get(result_of(j), "capabilities"), "tools")));
    json_decref(j);
    core_http_fetch_resp_free(&r);
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"1999-01-01\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(result_of(j), "protocolVersion")),
                        "2025-11-25");
    json_decref(j);
    core_http_fetch_resp_free(&r);
    /* initialize without clientInfo: -32602 */
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\"}}";
    send_rq(f, &q, &r);
    j = body_json(&r);
    assert_int_equal(error_code(j), -32602);
    assert_null(core_http_fetch_header(&r, "MCP-Session-Id"));
    json_decref(j);
    core_http_fetch_resp_free(&r);

    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", &st, NULL);
    assert_int_equal(st, 200);
    assert_true(json_is_object(result_of(j)));
    assert_string_equal(json_string_value(json_object_get(j, "id")), "p");
    json_decref(j);

    /* no session header → 400; unknown → 404; another user's session → 404 */
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";
    expect_status(f, &q, 400);
    q.session = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    expect_status(f, &q, 404);
    q.session = sid;
    q.token = tok2;
    expect_status(f, &q, 404);
    q.token = tok;

    /* MCP-Protocol-Version: unsupported → 400; another supported one is accepted */
    q.version = "2024-01-01";
    expect_status(f, &q, 400);
    q.version = "2025-03-26";
    expect_status(f, &q, 200);
    /* absent: accepted (2025-03-26 behaviour) */
    q.version = NULL;
    expect_status(f, &q, 200);

    /* a response from the client → 202, no body */
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 202);
    assert_int_equal(r.body.len, 0);
    core_http_fetch_resp_free(&r);

    /* GET without text/event-stream in Accept → 406 (the listening stream itself:
     * test_stream.c); PUT → 405 with Allow */
    q.method = "GET";
    q.body = NULL;
    q.accept = "application/json";
    expect_status(f, &q, 406);
    q.accept = NULL;
    q.method = "PUT";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(core_http_fetch_header(&r, "Allow"));
    core_http_fetch_resp_free(&r);

    /* DELETE ends the session; the next request gets 404 */
    q.method = "DELETE";
    expect_status(f, &q, 204);
    q.method = "POST";
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}";
    expect_status(f, &q, 404);

    /* sessions expire when idle (fake clock) */
    open_session(f, tok, sid, sizeof sid);
    core_fake_clock_advance(&f->clock, f->cfg.limits.session_idle_ms);
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    q.token = tok;
    q.session = sid;
    expect_status(f, &q, 404);
}

static void test_jsonrpc_errors_and_limits(void **state)
{
    fx *f = *state;
    rq q = {0};
    char tok[KEY_TOKEN_MAX], sid[64], *big;
    json_t *j;
    int st;
    size_t i;

    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope/nope\"}", &st, NULL);
    assert_int_equal(st, 200);
    assert_int_equal(error_code(j), -32601);
    json_decref(j);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,", &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32700);
    assert_true(json_is_null(json_object_get(j, "id")));
    json_decref(j);
    j = call(f, tok, sid, "{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"ping\"}", &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32600);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 5);
    json_decref(j);
    j = call(f, tok, sid, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32600);
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{"
             "\"level\":\"warning\"}}",
             &st, NULL);
    assert_true(json_is_object(result_of(j)));
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{"
             "\"level\":\"loud\"}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32602);
    json_decref(j);

    /* JSON depth over the limit (16) → 400 -32600 naming the limit */
    big = calloc(1, 70000);
    append(big, 70000, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"a\":");
    for (i = 0; i < 20; i++)
        append(big, 70000, "[");
    for (i = 0; i < 20; i++)
        append(big, 70000, "]");
    append(big, 70000, "}}");
    j = call(f, tok, sid, big, &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32600);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "nesting"));
    json_decref(j);
    /* a string over max_string (4096) */
    memset(big, 0, 70000);
    append(big, 70000, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"a\":\"");
    memset(big + strlen(big), 'x', 5000);
    append(big, 70000, "\"}}");
    j = call(f, tok, sid, big, &st, NULL);
    assert_int_equal(st, 400);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "4096"));
    json_decref(j);
    /* a body over max_body (65536) → 413 */
    memset(big, 'x', 65600);
    big[0] = '{';
    j = call(f, tok, sid, big, &st, NULL);
    assert_int_equal(st, 413);
    json_decref(j);
    free(big);

    /* wrong Content-Type → 415; Accept without JSON → 406 */
    q.token = tok;
    q.session = sid;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    q.ctype = "text/plain";
    expect_status(f, &q, 415);
    q.ctype = NULL;
    q.accept = "text/html";
    expect_status(f, &q, 406);
}

static const json_t *find_tool(const json_t *tools, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    return NULL;
}

static void test_tools_list(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    json_t *j;
    const json_t *tools, *t, *ann;
    int st;
    size_t i;

    mint(f, &(tok_opts){.scope = "workspace:read"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st, NULL);
    tools = json_object_get(result_of(j), "tools");
    /* tools needing scopes the token lacks are listed (obtainable by step-up) */
    assert_non_null(find_tool(tools, "postly_list_social_accounts"));
    json_array_foreach(tools, i, t)
    {
        ann = json_object_get(t, "annotations");
        assert_true(json_is_boolean(json_object_get(ann, "readOnlyHint")));
        assert_true(json_is_boolean(json_object_get(ann, "destructiveHint")));
        assert_true(json_is_boolean(json_object_get(ann, "idempotentHint")));
        assert_true(json_is_boolean(json_object_get(ann, "openWorldHint")));
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(t, "inputSchema"), "type")),
            "object");
        assert_non_null(json_object_get(t, "outputSchema"));
        assert_true(strlen(json_string_value(json_object_get(t, "description"))) > 40);
    }
    json_decref(j);

    /* in workspace demo-readonly the ceiling is the Full Analytics bundle (which has no
     * social_accounts:list): the listing tool is hidden (DENY_POLICY) even from a token that
     * carries the scope, and calling it is refused without a step-up */
    mint(f, &(tok_opts){.scope = "workspace:read social_accounts:list", .ws = "demo-readonly"}, tok,
         sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st, NULL);
    assert_null(find_tool(json_object_get(result_of(j), "tools"), "postly_list_social_accounts"));
    assert_non_null(find_tool(json_object_get(result_of(j), "tools"), "postly_get_workspace"));
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_list_social_accounts\",\"arguments\":{}}}",
             &st, NULL);
    assert_int_equal(st, 200);
    assert_int_equal(error_code(j), -32602);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "policy"));
    json_decref(j);
}

static void test_tools_call(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], body[512];
    core_http_fetch_resp r;
    json_t *j, *other = NULL, *acct = NULL, *text;
    const json_t *res;
    const char *wa;
    int st;
    ex_err xe;

    mint(f, &(tok_opts){.scope = "workspace:read social_accounts:read"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);

    /* allowed: structuredContent and the same JSON as text */
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{}}}",
             &st, NULL);
    res = result_of(j);
    assert_true(json_is_false(json_object_get(res, "isError")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res, "structuredContent"), "id")), WS);
    text = json_loads(json_string_value(json_object_get(
                          json_array_get(json_object_get(res, "content"), 0), "text")),
                      0, NULL);
    assert_true(json_equal(text, json_object_get(res, "structuredContent")));
    json_decref(text);
    json_decref(j);

    /* an unknown argument is a tool error naming the field */
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{\"colour\":1}}}",
             &st, NULL);
    res = result_of(j);
    assert_true(json_is_true(json_object_get(res, "isError")));
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(res, "content"), 0), "text")),
                           "colour"));
    json_decref(j);

    /* unknown tool: -32602 */
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_fly\"}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32602);
    json_decref(j);

    /* lacking social_accounts:list → 403 with the step-up challenge */
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_list_social_accounts\",\"arguments\":{}}}",
             &st, &r);
    assert_int_equal(st, 403);
    wa = core_http_fetch_header(&r, "WWW-Authenticate");
    assert_non_null(wa);
    assert_non_null(strstr(wa, "error=\"insufficient_scope\""));
    assert_non_null(
        strstr(wa, "scope=\"workspace:read social_accounts:read social_accounts:list\""));
    assert_non_null(strstr(wa, "resource_metadata=\"http://"));
    core_http_fetch_resp_free(&r);
    json_decref(j);

    /* cross-workspace: an account of another workspace is "not found" */
    other = json_pack("{s:s, s:s}", "platform", "x", "display_name", "Other Co");
    assert_int_equal(ex_account_create(&f->ex, "ws_other", other, &acct, &xe), PL_OK);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_social_account\",\"arguments\":{\"account_id\":\"%s\"}}}",
             json_string_value(json_object_get(acct, "id")));
    j = call(f, tok, sid, body, &st, NULL);
    res = result_of(j);
    assert_true(json_is_true(json_object_get(res, "isError")));
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(res, "content"), 0), "text")),
                           "not_found"));
    json_decref(j);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\",\"params\":{\"uri\":"
             "\"postly://social-accounts/%s\"}}",
             json_string_value(json_object_get(acct, "id")));
    j = call(f, tok, sid, body, &st, NULL);
    assert_int_equal(error_code(j), -32002);
    json_decref(j);
    json_decref(other);
    json_decref(acct);

    /* the same account in our workspace is found */
    other = json_pack("{s:s, s:s}", "platform", "linkedin", "display_name", "Us");
    assert_int_equal(ex_account_create(&f->ex, WS, other, &acct, &xe), PL_OK);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_social_account\",\"arguments\":{\"account_id\":\"%s\"}}}",
             json_string_value(json_object_get(acct, "id")));
    j = call(f, tok, sid, body, &st, NULL);
    res = result_of(j);
    assert_true(json_is_false(json_object_get(res, "isError")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res, "structuredContent"), "platform")),
        "linkedin");
    json_decref(j);
    json_decref(other);
    json_decref(acct);
}

static void test_resources_and_prompts(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    json_t *j, *in, *acct;
    const json_t *arr;
    int st, i;
    ex_err xe;
    size_t total = 0;
    char body[2048];
    const char *cursor = NULL;
    char cbuf[1500];

    for (i = 0; i < 60; i++) {
        in = json_pack("{s:s, s:s}", "platform", "x", "display_name", "Acc");
        assert_int_equal(ex_account_create(&f->ex, WS, in, &acct, &xe), PL_OK);
        json_decref(in);
        json_decref(acct);
    }
    mint(f, &(tok_opts){.scope = "workspace:read social_accounts:read"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    /* resources/list pages through the workspace and all 60 accounts with opaque cursors */
    do {
        if (cursor)
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\",\"params\":{"
                     "\"cursor\":\"%s\"}}",
                     cursor);
        else
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
        j = call(f, tok, sid, body, &st, NULL);
        arr = json_object_get(result_of(j), "resources");
        total += json_array_size(arr);
        cursor = json_string_value(json_object_get(result_of(j), "nextCursor"));
        if (cursor) {
            snprintf(cbuf, sizeof cbuf, "%s", cursor);
            cursor = cbuf;
        }
        json_decref(j);
    } while (cursor);
    assert_int_equal(total, 61);
    /* a forged cursor is -32602 */
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\",\"params\":{\"cursor\":"
             "\"eyJyIjoxLCJjIjoieHh4In0\"}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32602);
    json_decref(j);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/templates/list\"}",
             &st, NULL);
    assert_true(json_array_size(json_object_get(result_of(j), "resourceTemplates")) >= 1);
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":"
             "\"postly://workspace\"}}",
             &st, NULL);
    arr = json_object_get(result_of(j), "contents");
    assert_string_equal(json_string_value(json_object_get(json_array_get(arr, 0), "mimeType")),
                        "application/json");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(arr, 0), "text")), WS));
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":"
             "\"postly://nothing\"}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32002);
    json_decref(j);

    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/list\"}", &st, NULL);
    assert_true(json_array_size(json_object_get(result_of(j), "prompts")) >= 3);
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"postly_plan_campaign_week\",\"arguments\":{\"goal\":\"spring menu\"}}}",
             &st, NULL);
    assert_non_null(
        strstr(json_string_value(json_object_get(
                   json_object_get(json_array_get(json_object_get(result_of(j), "messages"), 0),
                                   "content"),
                   "text")),
               "spring menu"));
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"postly_plan_campaign_week\"}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32602);
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{"
             "\"ref\":{\"type\":\"ref/prompt\",\"name\":\"postly_analytics_report\"},"
             "\"argument\":{\"name\":\"platform\",\"value\":\"li\"}}}",
             &st, NULL);
    arr = json_object_get(json_object_get(result_of(j), "completion"), "values");
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), "linkedin");
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{"
             "\"ref\":{\"type\":\"ref/nothing\"},\"argument\":{\"name\":\"a\",\"value\":\"\"}}}",
             &st, NULL);
    assert_int_equal(error_code(j), -32602);
    json_decref(j);
}

static void test_audit_never_holds_the_token(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], line[4096];
    json_t *j;
    int st, n = 0;
    char want[2 * CORE_SHA256_LEN + 1];
    mint(f, &(tok_opts){.scope = "workspace:read"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{}}}",
             &st, NULL);
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_list_social_accounts\",\"arguments\":{\"platform\":\"x\",\"limit\":5}}}",
             &st, NULL);
    json_decref(j);
    {
        /* args_sha256 = SHA-256 of the compact, key-sorted arguments (ex_json_hash's text) */
        static const char canon[] = "{\"limit\":5,\"platform\":\"x\"}";
        uint8_t h[CORE_SHA256_LEN];
        core_sha256(canon, sizeof canon - 1, h);
        assert_int_equal(core_hex_encode(h, sizeof h, want, sizeof want), PL_OK);
    }
    fflush(f->audit);
    rewind(f->audit);
    while (fgets(line, sizeof line, f->audit)) {
        json_t *rec = json_loads(line, 0, NULL);
        assert_non_null(rec);
        assert_null(strstr(line, tok));
        assert_null(strstr(line, "\"platform\""));
        assert_non_null(json_object_get(rec, "decision_id"));
        assert_string_equal(json_string_value(json_object_get(rec, "policy_revision")),
                            "sha256:test");
        if (n == 1) {
            assert_string_equal(json_string_value(json_object_get(rec, "outcome")), "deny_scope");
            assert_string_equal(json_string_value(json_object_get(rec, "args_sha256")), want);
        }
        n++;
        json_decref(rec);
    }
    assert_int_equal(n, 2);
}

/* Every tool whose policy row requires scopes: a token with every scope except the required
 * ones gets 403 insufficient_scope, and the challenge's scope names granted + needed. */
static void test_scope_matrix(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], all_sid[64], body[512], need[POL_SCOPE_FORMAT_MAX];
    char have[POL_SCOPE_FORMAT_MAX], alltok[KEY_TOKEN_MAX];
    json_t *list, *j;
    const json_t *t;
    size_t i, checked = 0;
    int st;
    uint64_t all_mask = POL_MASK_ALL, covered = 0;

    mint(f, &(tok_opts){.scope = ALL_SCOPES}, alltok, sizeof alltok);
    open_session(f, alltok, all_sid, sizeof all_sid);
    list = call(f, alltok, all_sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st,
                NULL);
    assert_true(json_array_size(json_object_get(result_of(list), "tools")) >= 25);
    json_array_foreach(json_object_get(result_of(list), "tools"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        uint32_t idx;
        pol_tool_info ti;
        uint64_t req, tokmask;
        core_http_fetch_resp r;
        const char *wa;
        assert_int_equal(pol_tool_index(f->policy, name, strlen(name), &idx), PL_OK);
        assert_int_equal(pol_tool_get(f->policy, idx, &ti), PL_OK);
        req = ti.all | ti.any;
        covered |= req;
        if (!req)
            continue; /* postly_get_channel_schema: any valid token */
        tokmask = all_mask & ~req;
        assert_int_equal(pol_scope_format(tokmask, have, sizeof have, NULL), PL_OK);
        assert_int_equal(
            pol_scope_format(ti.all ? ti.all : (ti.any & -ti.any), need, sizeof need, NULL), PL_OK);
        mint(f, &(tok_opts){.scope = have}, tok, sizeof tok);
        open_session(f, tok, sid, sizeof sid);
        /* the platform argument picks the policy row: ask for the first platform */
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"%s\",\"arguments\":{%s}}}",
                 name,
                 strcmp(name, "postly_get_platform_analytics") == 0 ? "\"platform\":\"facebook\""
                                                                    : "");
        j = call(f, tok, sid, body, &st, &r);
        if (st != 403)
            fail_msg("%s: expected 403, got %d", name, st);
        wa = core_http_fetch_header(&r, "WWW-Authenticate");
        assert_non_null(wa);
        assert_non_null(strstr(wa, "error=\"insufficient_scope\""));
        assert_non_null(strstr(wa, "resource_metadata=\""));
        /* every needed scope is named in the challenge's scope, with the granted ones */
        {
            const char *sc = strstr(wa, "scope=\"");
            const char *p = need;
            assert_non_null(sc);
            while (*p) {
                char one[64];
                size_t n = strcspn(p, " ");
                snprintf(one, sizeof one, "%.*s", (int)n, p);
                if (!strstr(sc, one))
                    fail_msg("%s: challenge %s lacks %s", name, wa, one);
                p += n;
                while (*p == ' ')
                    p++;
            }
            assert_non_null(strstr(sc, "workspace:list")); /* a granted scope kept */
        }
        core_http_fetch_resp_free(&r);
        json_decref(j);
        checked++;
    }
    assert_true(checked >= 25);
    /* every one of the 31 scopes is required by at least one listed tool */
    assert_int_equal(covered, POL_MASK_ALL);
    json_decref(list);
}

/* Dynamic clients may never delete (forbid f-dynamic-no-delete): delete tools are hidden and
 * refused; metadata-document clients need approval for deletes (approve a-cimd-delete). */
static void test_policy_classes(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    json_t *j;
    const json_t *tools, *res;
    int st;
    mint(f, &(tok_opts){.scope = ALL_SCOPES, .cls = "dynamic"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st, NULL);
    tools = json_object_get(result_of(j), "tools");
    assert_null(find_tool(tools, "postly_delete_post"));
    assert_null(find_tool(tools, "postly_delete_campaign"));
    assert_null(find_tool(tools, "postly_delete_media"));
    assert_non_null(find_tool(tools, "postly_create_post"));
    json_decref(j);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_delete_post\",\"arguments\":{\"post_id\":\"pst_x\"}}}",
             &st, NULL);
    assert_int_equal(st, 200);
    assert_int_equal(error_code(j), -32602);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "f-dynamic-no-delete"));
    json_decref(j);

    mint(f, &(tok_opts){.scope = ALL_SCOPES, .cls = "cimd"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_delete_campaign\",\"arguments\":{\"campaign_id\":\"cmp_x\"}}}",
             &st, NULL);
    res = result_of(j);
    assert_true(json_is_true(json_object_get(res, "isError")));
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(res, "content"), 0), "text")),
                           "a-cimd-delete"));
    json_decref(j);
}

/* Calls tool with args (JSON text) and returns the result object (asserts no JSON-RPC error
 * and HTTP 200). *is_error gets isError. */
static json_t *tool(fx *f, const char *tok, const char *sid, const char *name, const char *args,
                    int *is_error)
{
    char *body = malloc(strlen(args) + 256);
    json_t *j, *res;
    int st;
    snprintf(body, strlen(args) + 256,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
             "\"arguments\":%s}}",
             name, args);
    j = call(f, tok, sid, body, &st, NULL);
    free(body);
    if (st != 200)
        fail_msg("%s: HTTP %d", name, st);
    res = json_incref((json_t *)result_of(j));
    json_decref(j);
    *is_error = json_is_true(json_object_get(res, "isError"));
    return res;
}

static const char *sc_str(const json_t *res, const char *field)
{
    return json_string_value(json_object_get(json_object_get(res, "structuredContent"), field));
}

#define PNG_1X1                                                                                    \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Erk"   \
    "Jggg=="

/* A publishing assistant's day: every post, media and campaign tool on the execution layer,
 * and each object tool refusing the same ids from another workspace as not found. */
static void test_workflow_and_isolation(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], args[1024], acc[64], post[64], cmp[64], med[64];
    json_t *res, *in, *obj;
    int err;
    ex_err xe;
    size_t i;

    in = json_pack("{s:s, s:s}", "platform", "linkedin", "display_name", "Acme");
    assert_int_equal(ex_account_create(&f->ex, WS, in, &obj, &xe), PL_OK);
    snprintf(acc, sizeof acc, "%s", json_string_value(json_object_get(obj, "id")));
    json_decref(in);
    json_decref(obj);
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);

    res = tool(f, tok, sid, "postly_get_channel_schema", "{\"platform\":\"x\"}", &err);
    assert_false(err);
    json_decref(res);
    res = tool(f, tok, sid, "postly_get_channel_schema", "{\"platform\":\"myspace\"}", &err);
    assert_true(err);
    json_decref(res);

    res = tool(f, tok, sid, "postly_create_campaign",
               "{\"name\":\"Spring\",\"goal\":\"launch\",\"idempotency_key\":\"c1\"}", &err);
    assert_false(err);
    snprintf(cmp, sizeof cmp, "%s", sc_str(res, "id"));
    json_decref(res);
    res = tool(f, tok, sid, "postly_create_campaign",
               "{\"name\":\"Spring\",\"goal\":\"launch\",\"idempotency_key\":\"c1\"}", &err);
    assert_string_equal(sc_str(res, "id"), cmp); /* replayed, not duplicated */
    json_decref(res);

    res = tool(f, tok, sid, "postly_upload_media",
               "{\"data_base64\":\"" PNG_1X1 "\",\"filename\":\"a.png\"}", &err);
    if (err)
        fail_msg("upload: %s", json_dumps(res, 0));
    snprintf(med, sizeof med, "%s", sc_str(res, "id"));
    json_decref(res);

    snprintf(args, sizeof args,
             "{\"account_ids\":[\"%s\"],\"text\":\"Hello from the spring menu\",\"campaign_id\":"
             "\"%s\",\"idempotency_key\":\"p1\"}",
             acc, cmp);
    res = tool(f, tok, sid, "postly_validate_post", args, &err);
    assert_false(err);
    json_decref(res);
    res = tool(f, tok, sid, "postly_create_post", args, &err);
    if (err)
        fail_msg("create_post: %s", json_dumps(res, 0));
    assert_string_equal(sc_str(res, "status"), "draft");
    snprintf(post, sizeof post, "%s", sc_str(res, "id"));
    json_decref(res);

    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"text\":\"Hello again\"}", post);
    res = tool(f, tok, sid, "postly_update_post", args, &err);
    assert_false(err);
    json_decref(res);
    snprintf(args, sizeof args,
             "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-03-01T09:00:00+01:00\"}", post);
    res = tool(f, tok, sid, "postly_schedule_post", args, &err);
    if (err)
        fail_msg("schedule: %s", json_dumps(res, 0));
    assert_string_equal(sc_str(res, "status"), "scheduled");
    json_decref(res);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\"}", post);
    res = tool(f, tok, sid, "postly_unschedule_post", args, &err);
    assert_string_equal(sc_str(res, "status"), "draft");
    json_decref(res);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\",\"idempotency_key\":\"pub1\"}", post);
    res = tool(f, tok, sid, "postly_publish_post", args, &err);
    if (err)
        fail_msg("publish: %s", json_dumps(res, 0));
    assert_string_equal(sc_str(res, "status"), "published");
    json_decref(res);
    snprintf(args, sizeof args, "{\"post_id\":\"%s\"}", post);
    res = tool(f, tok, sid, "postly_get_post_status", args, &err);
    assert_string_equal(sc_str(res, "status"), "published");
    json_decref(res);
    res = tool(f, tok, sid, "postly_get_post", args, &err);
    assert_false(err);
    json_decref(res);
    res = tool(f, tok, sid, "postly_retry_post", args, &err);
    json_decref(res); /* nothing failed: the service decides; either answer is a result */
    res = tool(f, tok, sid, "postly_list_posts", "{\"status\":\"published\"}", &err);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(res, "structuredContent"), "items")), 1);
    json_decref(res);
    res = tool(f, tok, sid, "postly_list_campaigns", "{}", &err);
    assert_false(err);
    json_decref(res);
    res = tool(f, tok, sid, "postly_list_media", "{}", &err);
    assert_false(err);
    json_decref(res);

    /* an invalid value is a tool error naming the field */
    res = tool(f, tok, sid, "postly_list_posts", "{\"status\":\"lost\"}", &err);
    assert_true(err);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(res, "content"), 0), "text")),
                           "status"));
    json_decref(res);

    /* the same ids seen from another workspace: not found, never forbidden */
    {
        char otok[KEY_TOKEN_MAX], osid[64];
        const struct {
            const char *tool, *field, *id, *extra;
        } cases[] = {
            {"postly_get_post", "post_id", post, ""},
            {"postly_update_post", "post_id", post, ",\"text\":\"x\""},
            {"postly_delete_post", "post_id", post, ""},
            {"postly_schedule_post", "post_id", post, ",\"scheduled_at\":\"2027-03-01T09:00:00Z\""},
            {"postly_unschedule_post", "post_id", post, ""},
            {"postly_publish_post", "post_id", post, ""},
            {"postly_retry_post", "post_id", post, ""},
            {"postly_get_post_status", "post_id", post, ""},
            {"postly_get_campaign", "campaign_id", cmp, ""},
            {"postly_update_campaign", "campaign_id", cmp, ",\"name\":\"x\""},
            {"postly_delete_campaign", "campaign_id", cmp, ""},
            {"postly_get_media", "media_id", med, ""},
            {"postly_update_media", "media_id", med, ",\"alt_text\":\"x\""},
            {"postly_delete_media", "media_id", med, ""},
            {"postly_get_social_account", "account_id", acc, ""},
        };
        mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "ws_other"}, otok, sizeof otok);
        open_session(f, otok, osid, sizeof osid);
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const char *text;
            snprintf(args, sizeof args, "{\"%s\":\"%s\"%s}", cases[i].field, cases[i].id,
                     cases[i].extra);
            res = tool(f, otok, osid, cases[i].tool, args, &err);
            text = json_string_value(
                json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
            if (!err || !strstr(text, "not_found"))
                fail_msg("%s from another workspace: %s", cases[i].tool, text);
            json_decref(res);
        }
        /* and the resources of those objects */
        for (i = 0; i < 2; i++) {
            json_t *j;
            int st;
            snprintf(args, sizeof args,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                     "\"uri\":\"postly://%s/%s\"}}",
                     i ? "campaigns" : "posts", i ? cmp : post);
            j = call(f, otok, osid, args, &st, NULL);
            assert_int_equal(error_code(j), -32002);
            json_decref(j);
        }
    }

    /* analytics: the summary with analytics:read; a platform needs its own scope */
    res = tool(f, tok, sid, "postly_get_analytics_summary", "{}", &err);
    if (err)
        fail_msg("summary: %s", json_dumps(res, 0));
    json_decref(res);
    res = tool(f, tok, sid, "postly_get_platform_analytics", "{\"platform\":\"linkedin\"}", &err);
    assert_false(err);
    assert_string_equal(sc_str(res, "platform"), "linkedin");
    json_decref(res);
    res = tool(f, tok, sid, "postly_get_platform_analytics", "{\"platform\":\"myspace\"}", &err);
    assert_true(err);
    json_decref(res);
    {
        char xtok[KEY_TOKEN_MAX], xsid[64], body[512];
        core_http_fetch_resp r;
        json_t *j;
        const json_t *targets, *tg;
        int st;
        mint(f, &(tok_opts){.scope = "posts:read analytics:read analytics:x:read"}, xtok,
             sizeof xtok);
        open_session(f, xtok, xsid, sizeof xsid);
        j = call(f, xtok, xsid,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"postly_get_platform_analytics\",\"arguments\":{\"platform\":\"linkedin\"}}}",
                 &st, &r);
        assert_int_equal(st, 403);
        assert_non_null(
            strstr(core_http_fetch_header(&r, "WWW-Authenticate"), "analytics:linkedin:read"));
        core_http_fetch_resp_free(&r);
        json_decref(j);
        /* the same for the resource of that network */
        j = call(f, xtok, xsid,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                 "\"uri\":\"postly://analytics/linkedin\"}}",
                 &st, &r);
        assert_int_equal(st, 403);
        assert_non_null(
            strstr(core_http_fetch_header(&r, "WWW-Authenticate"), "analytics:linkedin:read"));
        core_http_fetch_resp_free(&r);
        json_decref(j);
        /* post analytics shows only the networks the token may read: not linkedin */
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"postly_get_post_analytics\",\"arguments\":{\"post_id\":\"%s\"}}}",
                 post);
        j = call(f, xtok, xsid, body, &st, NULL);
        targets = json_object_get(json_object_get(result_of(j), "structuredContent"), "targets");
        assert_true(json_is_array(targets));
        json_array_foreach(targets, i, tg)
        {
            assert_string_equal(json_string_value(json_object_get(tg, "platform")), "x");
        }
        json_decref(j);
    }
    res = tool(f, tok, sid, "postly_get_post_analytics", "{\"post_id\":\"pst_nothing\"}", &err);
    assert_true(err);
    json_decref(res);

    /* drafts */
    {
        char drf[64];
        res = tool(f, tok, sid, "postly_create_draft",
                   "{\"text\":\"idea\",\"notes\":\"for spring\",\"idempotency_key\":\"d1\"}", &err);
        if (err)
            fail_msg("create_draft: %s", json_dumps(res, 0));
        snprintf(drf, sizeof drf, "%s", sc_str(res, "id"));
        json_decref(res);
        snprintf(args, sizeof args, "{\"draft_id\":\"%s\",\"text\":\"better idea\"}", drf);
        res = tool(f, tok, sid, "postly_update_draft", args, &err);
        assert_false(err);
        json_decref(res);
        snprintf(args, sizeof args, "{\"draft_id\":\"%s\"}", drf);
        res = tool(f, tok, sid, "postly_get_draft", args, &err);
        assert_string_equal(sc_str(res, "text"), "better idea");
        json_decref(res);
        res = tool(f, tok, sid, "postly_list_drafts", "{}", &err);
        assert_int_equal(
            json_array_size(json_object_get(json_object_get(res, "structuredContent"), "items")),
            1);
        json_decref(res);
        {
            char otok[KEY_TOKEN_MAX], osid[64];
            const char *other_tools[] = {"postly_get_draft", "postly_update_draft",
                                         "postly_delete_draft"};
            mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "ws_other"}, otok, sizeof otok);
            open_session(f, otok, osid, sizeof osid);
            for (i = 0; i < 3; i++) {
                res = tool(f, otok, osid, other_tools[i], args, &err);
                assert_true(err);
                assert_non_null(
                    strstr(json_string_value(json_object_get(
                               json_array_get(json_object_get(res, "content"), 0), "text")),
                           "not_found"));
                json_decref(res);
            }
        }
        res = tool(f, tok, sid, "postly_delete_draft", args, &err);
        assert_false(err);
        json_decref(res);
    }
    /* without the authorization server's directory, listing workspaces is unavailable (the
     * binary test covers it with the directory) */
    res = tool(f, tok, sid, "postly_list_workspaces", "{}", &err);
    assert_true(err);
    json_decref(res);

    /* the other resources: a post, a campaign, the analytics summary, one network */
    {
        const char *uris[4];
        char u1[128], u2[128];
        json_t *j;
        int st;
        snprintf(u1, sizeof u1, "postly://posts/%s", post);
        snprintf(u2, sizeof u2, "postly://campaigns/%s", cmp);
        uris[0] = u1;
        uris[1] = u2;
        uris[2] = "postly://analytics/summary";
        uris[3] = "postly://analytics/linkedin";
        for (i = 0; i < 4; i++) {
            snprintf(args, sizeof args,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                     "\"uri\":\"%s\"}}",
                     uris[i]);
            j = call(f, tok, sid, args, &st, NULL);
            if (!json_object_get(j, "result"))
                fail_msg("%s: %s", uris[i], json_dumps(j, 0));
            json_decref(j);
        }
        j = call(f, tok, sid,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                 "\"uri\":\"postly://analytics/myspace\"}}",
                 &st, NULL);
        assert_int_equal(error_code(j), -32002);
        json_decref(j);
        /* resources/list names the post, the campaign and the seven networks */
        j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}", &st,
                 NULL);
        {
            char *dump = json_dumps(j, 0);
            assert_non_null(strstr(dump, u1));
            assert_non_null(strstr(dump, u2));
            assert_non_null(strstr(dump, "postly://analytics/google_business"));
            assert_non_null(strstr(dump, "postly://analytics/summary"));
            free(dump);
        }
        json_decref(j);
    }

    /* and from our workspace the deletes work */
    snprintf(args, sizeof args, "{\"campaign_id\":\"%s\"}", cmp);
    res = tool(f, tok, sid, "postly_delete_campaign", args, &err);
    assert_false(err);
    json_decref(res);
}

/* rate r-all: 600/min, burst 120, per client. The 121st call in the same instant gets 429
 * with Retry-After naming the rule; a second later 10 tokens have refilled. */
static void test_rate_limit(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"postly_get_workspace\",\"arguments\":{}}}";
    core_http_fetch_resp r;
    json_t *j;
    int st, i;
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    for (i = 0; i < 120; i++) {
        j = call(f, tok, sid, body, &st, NULL);
        assert_int_equal(st, 200);
        json_decref(j);
    }
    j = call(f, tok, sid, body, &st, &r);
    assert_int_equal(st, 429);
    assert_string_equal(core_http_fetch_header(&r, "Retry-After"), "1");
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(j, "error"), "message")), "r-all"));
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 9);
    core_http_fetch_resp_free(&r);
    json_decref(j);
    /* other methods are not tool calls: not limited */
    j = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    core_fake_clock_advance(&f->clock, 1000);
    for (i = 0; i < 10; i++) {
        j = call(f, tok, sid, body, &st, NULL);
        assert_int_equal(st, 200);
        json_decref(j);
    }
    j = call(f, tok, sid, body, &st, NULL);
    assert_int_equal(st, 429);
    json_decref(j);
}

/* Usage: counted per workspace and per client × tool, persisted by flush, reported; over the
 * plan's quota a call is a tool error naming the plan, the quota and the reset time. */
static void test_usage_and_quota(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], *text = NULL;
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{"
                       "\"name\":\"postly_get_workspace\",\"arguments\":{}}}";
    const mcp_plan *free_plan = mcp_plan_get("free");
    mcp_quota_denial qd;
    json_t *j;
    FILE *mem;
    size_t len = 0, i;
    int st;

    assert_string_equal(mcp_plan_get("nonsense")->name, "free");
    assert_true(mcp_plan_get("pro")->calls > free_plan->calls);
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    for (i = 0; i < 3; i++) {
        j = call(f, tok, sid, body, &st, NULL);
        assert_true(json_is_false(json_object_get(result_of(j), "isError")));
        json_decref(j);
    }
    assert_int_equal(mcp_usage_flush(f->usage), PL_OK);
    mem = open_memstream(&text, &len);
    assert_int_equal(mcp_usage_report(f->usage, NULL, WS, mem), PL_OK);
    fclose(mem);
    assert_non_null(strstr(text, "|" WS "|calls 3\n"));
    assert_non_null(strstr(text, "|" WS "|tool|client-test|postly_get_workspace 3\n"));
    free(text);

    /* fill the free plan's call quota up to the last call, then one more over HTTP */
    for (i = 3; i < free_plan->calls; i++)
        assert_int_equal(
            mcp_usage_count(f->usage, WS, free_plan, "other", "postly_get_post", 0, &qd), PL_OK);
    assert_int_equal(mcp_usage_count(f->usage, WS, free_plan, "other", "x", 0, &qd), PL_ERR_LIMIT);
    assert_string_equal(qd.resets_at, "2027-02-01T00:00:00Z"); /* clock: 2027-01-15 */
    j = call(f, tok, sid, body, &st, NULL);
    assert_true(json_is_true(json_object_get(result_of(j), "isError")));
    {
        const char *m = json_string_value(
            json_object_get(json_array_get(json_object_get(result_of(j), "content"), 0), "text"));
        assert_non_null(strstr(m, "free plan"));
        assert_non_null(strstr(m, "2027-02-01T00:00:00Z"));
        assert_non_null(strstr(m, "quota_exceeded"));
    }
    json_decref(j);
    /* scheduling counts as a publish: with the publish quota used up, postly_schedule_post
     * is refused naming publishes (after the call quota check, so use a fresh workspace) */
    {
        const mcp_plan *pl = mcp_plan_get("free");
        char tok2[KEY_TOKEN_MAX], sid2[64];
        for (i = 0; i < pl->publishes; i++)
            assert_int_equal(
                mcp_usage_count(f->usage, "ws_pub", pl, "c", "postly_publish_post", 1, &qd), PL_OK);
        mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "ws_pub"}, tok2, sizeof tok2);
        open_session(f, tok2, sid2, sizeof sid2);
        j = call(f, tok2, sid2,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"postly_schedule_post\",\"arguments\":{\"post_id\":\"pst_x\",\"scheduled_at\":"
                 "\"2027-03-01T09:00:00Z\"}}}",
                 &st, NULL);
        assert_non_null(
            strstr(json_string_value(json_object_get(
                       json_array_get(json_object_get(result_of(j), "content"), 0), "text")),
                   "publishes"));
        json_decref(j);
        /* a draft post (no scheduled_at) is not a publish: it gets past the quota (and fails
         * later only because the account does not exist) */
        j = call(
            f, tok2, sid2,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
            "\"postly_create_post\",\"arguments\":{\"account_ids\":[\"acc_x\"],\"text\":\"t\"}}}",
            &st, NULL);
        assert_null(
            strstr(json_string_value(json_object_get(
                       json_array_get(json_object_get(result_of(j), "content"), 0), "text")),
                   "quota"));
        json_decref(j);
    }
    /* another workspace is not affected */
    assert_int_equal(mcp_usage_count(f->usage, "ws_b", free_plan, "c", "t", 1, &qd), PL_OK);
}

/* The session table is bounded (64 here): a full table of live sessions answers 503 with
 * Retry-After; expired ones make room. */
static void test_session_limit(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    core_http_fetch_resp r;
    rq q = {0};
    size_t i;
    mint(f, &(tok_opts){.scope = "workspace:read"}, tok, sizeof tok);
    for (i = 0; i < f->cfg.limits.max_sessions; i++)
        open_session(f, tok, sid, sizeof sid);
    q.token = tok;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"t\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(core_http_fetch_header(&r, "Retry-After"));
    assert_null(core_http_fetch_header(&r, "MCP-Session-Id"));
    core_http_fetch_resp_free(&r);
    core_fake_clock_advance(&f->clock, f->cfg.limits.session_idle_ms);
    mint(f, &(tok_opts){.scope = "workspace:read"}, tok, sizeof tok);
    q.token = tok;
    expect_status(f, &q, 200);
}

/* DENY_POLICY for every tool: in workspace demo-readonly the ceiling is the Full Analytics
 * bundle. A token carrying every scope sees exactly the tools whose requirement fits the
 * ceiling; each other tool is hidden and its call refused with -32602, never a step-up. */
static void test_policy_matrix(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64], body[512];
    json_t *full, *mine, *j;
    const json_t *t;
    uint32_t wsi;
    uint64_t ceiling;
    const char *wsid;
    size_t i, hidden = 0, shown = 0;
    int st;
    assert_int_equal(pol_workspace_index(f->policy, "demo-readonly", 13, &wsi, NULL), PL_OK);
    assert_int_equal(pol_workspace_get(f->policy, wsi, &wsid, &ceiling, NULL), PL_OK);
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    full = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st, NULL);
    mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "demo-readonly"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    mine = call(f, tok, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", &st, NULL);
    json_array_foreach(json_object_get(result_of(full), "tools"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        uint32_t idx;
        pol_tool_info ti;
        int fits, listed;
        assert_int_equal(pol_tool_index(f->policy, name, strlen(name), &idx), PL_OK);
        assert_int_equal(pol_tool_get(f->policy, idx, &ti), PL_OK);
        fits = (ti.all & ~ceiling) == 0 && (!ti.any || (ti.any & ceiling));
        listed = find_tool(json_object_get(result_of(mine), "tools"), name) != NULL;
        if (fits != listed)
            fail_msg("%s: fits the ceiling %d but listed %d", name, fits, listed);
        if (fits) {
            shown++;
            continue;
        }
        hidden++;
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":"
                 "\"%s\",\"arguments\":{}}}",
                 name);
        j = call(f, tok, sid, body, &st, NULL);
        if (st != 200 || error_code(j) != -32602)
            fail_msg("%s in demo-readonly: HTTP %d code %d", name, st, error_code(j));
        json_decref(j);
    }
    assert_true(hidden >= 20);
    assert_true(shown >= 4);
    json_decref(full);
    json_decref(mine);
}

/* Every resource: a token without its scope gets the 403 step-up naming it; in the policy-
 * restricted workspace a resource whose scope is above the ceiling is -32002 (hidden). */
static void test_resource_scope_matrix(void **state)
{
    fx *f = *state;
    static const struct {
        const char *uri, *scope;
        int above_readonly_ceiling;
    } cases[] = {
        {"postly://workspace", "workspace:read", 0},
        {"postly://social-accounts/acc_0192f3a1b2c3aaaaaaaaaaaaaaaa", "social_accounts:read", 0},
        {"postly://campaigns/cmp_0192f3a1b2c3aaaaaaaaaaaaaaaa", "campaigns:read", 1},
        {"postly://posts/pst_0192f3a1b2c3aaaaaaaaaaaaaaaa", "posts:read", 1},
        {"postly://analytics/summary", "analytics:read", 0},
        {"postly://analytics/youtube", "analytics:youtube:read", 0},
    };
    char tok[KEY_TOKEN_MAX], sid[64], body[512], have[POL_SCOPE_FORMAT_MAX];
    unsigned bit;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        core_http_fetch_resp r;
        json_t *j;
        int st;
        assert_int_equal(pol_scope_lookup(cases[i].scope, strlen(cases[i].scope), &bit), PL_OK);
        assert_int_equal(pol_scope_format(POL_MASK_ALL & ~POL_MASK(bit), have, sizeof have, NULL),
                         PL_OK);
        mint(f, &(tok_opts){.scope = have}, tok, sizeof tok);
        open_session(f, tok, sid, sizeof sid);
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
                 "\"uri\":\"%s\"}}",
                 cases[i].uri);
        j = call(f, tok, sid, body, &st, &r);
        if (st != 403 || !strstr(core_http_fetch_header(&r, "WWW-Authenticate"), cases[i].scope))
            fail_msg("%s without %s: HTTP %d", cases[i].uri, cases[i].scope, st);
        core_http_fetch_resp_free(&r);
        json_decref(j);
        if (!cases[i].above_readonly_ceiling)
            continue;
        mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "demo-readonly"}, tok, sizeof tok);
        open_session(f, tok, sid, sizeof sid);
        j = call(f, tok, sid, body, &st, NULL);
        assert_int_equal(st, 200);
        assert_int_equal(error_code(j), -32002);
        json_decref(j);
    }
}

/* JSON-RPC batches: accepted in a session that negotiated 2025-03-26 (where servers MUST accept
 * them), refused with -32600 in later revisions. */
static void test_batches_2025_03_26(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[64];
    core_http_fetch_resp r;
    rq q = {0};
    json_t *j;
    const json_t *el;
    size_t i;
    int st;
    char big[4096];
    mint(f, &(tok_opts){.scope = "workspace:read"}, tok, sizeof tok);
    q.token = tok;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"old\",\"version\":\"1\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    snprintf(sid, sizeof sid, "%s", core_http_fetch_header(&r, "MCP-Session-Id"));
    core_http_fetch_resp_free(&r);
    j = call(f, tok, sid,
             "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
             "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\"},"
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{}}},"
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_publish_post\",\"arguments\":{\"post_id\":\"pst_x\"}}},"
             "{\"jsonrpc\":\"1.0\",\"id\":4,\"method\":\"ping\"},"
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"initialize\",\"params\":{}},"
             "42]",
             &st, NULL);
    assert_int_equal(st, 200);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 6); /* the notification has no answer */
    json_array_foreach(j, i, el)
    {
        const json_t *id = json_object_get(el, "id");
        const json_t *e = json_object_get(el, "error");
        switch (i) {
        case 0:
            assert_string_equal(json_string_value(id), "a");
            assert_non_null(json_object_get(el, "result"));
            break;
        case 1:
            assert_int_equal(json_integer_value(id), 2);
            assert_non_null(json_object_get(el, "result"));
            break;
        case 2: /* the step-up inside a batch: an error element with the challenge */
            assert_int_equal(json_integer_value(id), 3);
            assert_int_equal(
                json_integer_value(json_object_get(json_object_get(e, "data"), "http_status")),
                403);
            assert_non_null(strstr(
                json_string_value(json_object_get(json_object_get(e, "data"), "www_authenticate")),
                "posts:publish"));
            break;
        case 3:
            assert_int_equal(json_integer_value(json_object_get(e, "code")), -32600);
            break;
        case 4:
            assert_int_equal(json_integer_value(json_object_get(e, "code")), -32600);
            assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "initialize"));
            break;
        default:
            assert_int_equal(json_integer_value(json_object_get(e, "code")), -32600);
            assert_true(json_is_null(id));
        }
    }
    json_decref(j);
    /* only notifications: 202 */
    j = call(f, tok, sid, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]", &st,
             NULL);
    assert_int_equal(st, 202);
    json_decref(j);
    /* empty, too long, malformed */
    j = call(f, tok, sid, "[]", &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32600);
    json_decref(j);
    big[0] = '[';
    big[1] = '\0';
    for (i = 0; i < 33; i++) {
        size_t n = strlen(big);
        snprintf(big + n, sizeof big - n, "%s{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"ping\"}",
                 i ? "," : "", i);
    }
    {
        size_t n = strlen(big);
        snprintf(big + n, sizeof big - n, "]");
    }
    j = call(f, tok, sid, big, &st, NULL);
    assert_int_equal(st, 400);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "32"));
    json_decref(j);
    j = call(f, tok, sid, "[{\"jsonrpc\":", &st, NULL);
    assert_int_equal(st, 400);
    assert_int_equal(error_code(j), -32700);
    json_decref(j);
}

/* Reads never write: postly_get_workspace and postly://workspace answer the defaults while the
 * execution layer has no record, and the record appears with the first write tool call. Field
 * errors name their field once ("platform: unknown network", not "platform: platform: ..."). */
static void test_reads_side_effect_free(void **state)
{
    fx *f = *state;
    char tok[4096], sid[128];
    json_t *res, *w = NULL, *j;
    const char *text;
    int err, st;
    mint(f, &(tok_opts){.scope = ALL_SCOPES, .ws = "ws_fresh"}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    res = tool(f, tok, sid, "postly_get_workspace", "{}", &err);
    assert_false(err);
    assert_string_equal(sc_str(res, "id"), "ws_fresh");
    assert_string_equal(sc_str(res, "plan"), "free");
    assert_string_equal(sc_str(res, "timezone"), "UTC");
    json_decref(res);
    j = call(f, tok, sid,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"postly://workspace\"}}",
             &st, NULL);
    assert_int_equal(st, 200);
    assert_non_null(json_object_get(j, "result"));
    json_decref(j);
    assert_int_equal(ex_workspace_get(&f->ex, "ws_fresh", &w, NULL), PL_ERR_NOT_FOUND);
    res = tool(f, tok, sid, "postly_create_draft", "{\"text\":\"hello\"}", &err);
    assert_false(err);
    json_decref(res);
    assert_int_equal(ex_workspace_get(&f->ex, "ws_fresh", &w, NULL), PL_OK);
    assert_string_equal(json_string_value(json_object_get(w, "plan")), "free");
    json_decref(w);

    res = tool(f, tok, sid, "postly_get_channel_schema", "{\"platform\":\"myspace\"}", &err);
    assert_true(err);
    text = json_string_value(
        json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
    assert_non_null(strstr(text, "platform: "));
    assert_null(strstr(text, "platform: platform"));
    json_decref(res);
    res = tool(f, tok, sid, "postly_upload_media_chunk", "{\"action\":\"rewind\"}", &err);
    assert_true(err);
    text = json_string_value(
        json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
    assert_null(strstr(text, "action: action"));
    json_decref(res);
}

/* Parses a text/event-stream body (HTML §9.2): events separated by a blank line, each made of
 * "field: value" lines; returns the data of each event as parsed JSON in an array, and checks
 * every event is of type "message" and carries exactly one data line. */
static json_t *sse_parse(const char *body, size_t len)
{
    json_t *out = json_array();
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *stop = strstr(p, "\n\n");
        const char *line = p;
        int datas = 0;
        json_t *data = NULL;
        assert_non_null(stop); /* every event is terminated */
        while (line < stop) {
            const char *nl = memchr(line, '\n', (size_t)(stop - line));
            size_t n = nl ? (size_t)(nl - line) : (size_t)(stop - line);
            if (n >= 6 && strncmp(line, "data: ", 6) == 0) {
                json_error_t je;
                datas++;
                data = json_loadb(line + 6, n - 6, 0, &je);
                assert_non_null(data);
            } else {
                assert_true(n == 14 && strncmp(line, "event: message", 14) == 0);
            }
            line += n + 1;
        }
        assert_int_equal(datas, 1);
        json_array_append_new(out, data);
        p = stop + 2;
    }
    return out;
}

/* MCP 2025-11-25 basic/transports + basic/utilities/progress: a tools/call carrying
 * _meta.progressToken from a client that accepts text/event-stream is answered with an SSE
 * stream of notifications/progress (increasing, with the token) and then the response; without
 * the token, or without text/event-stream in Accept, or when the answer is an HTTP-level
 * refusal, the answer stays JSON. */
static void test_progress_over_sse(void **state)
{
    fx *f = *state;
    char tok[4096], sid[128], ro[4096];
    core_http_fetch_resp r;
    rq q = {0};
    json_t *evs, *ev, *j;
    size_t i;
    double last = 0;
    mint(f, &(tok_opts){.scope = ALL_SCOPES}, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    q.token = tok;
    q.session = sid;
    q.version = "2025-11-25";
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":\"p1\",\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_create_draft\",\"arguments\":{\"text\":\"hi\"},\"_meta\":{"
             "\"progressToken\":\"tok-7\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "text/event-stream");
    evs = sse_parse(r.body.p, r.body.len);
    core_http_fetch_resp_free(&r);
    assert_int_equal(json_array_size(evs), 4);
    json_array_foreach(evs, i, ev)
    {
        if (i < 3) {
            const json_t *pp = json_object_get(ev, "params");
            assert_string_equal(json_string_value(json_object_get(ev, "method")),
                                "notifications/progress");
            assert_null(json_object_get(ev, "id"));
            assert_string_equal(json_string_value(json_object_get(pp, "progressToken")), "tok-7");
            assert_true(json_number_value(json_object_get(pp, "progress")) > last);
            last = json_number_value(json_object_get(pp, "progress"));
            assert_true(json_number_value(json_object_get(pp, "total")) >= last);
        } else {
            assert_string_equal(json_string_value(json_object_get(ev, "id")), "p1");
            assert_false(json_is_true(json_object_get(json_object_get(ev, "result"), "isError")));
        }
    }
    json_decref(evs);

    /* an integer token is echoed as an integer */
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{},\"_meta\":{\"progressToken\":42}}}";
    send_rq(f, &q, &r);
    evs = sse_parse(r.body.p, r.body.len);
    core_http_fetch_resp_free(&r);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(evs, 0), "params"), "progressToken")),
                     42);
    json_decref(evs);

    /* JSON when the client does not accept SSE, or sends no token */
    q.accept = "application/json";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "application/json");
    j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 2);
    json_decref(j);
    core_http_fetch_resp_free(&r);
    q.accept = NULL;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_get_workspace\",\"arguments\":{}}}";
    send_rq(f, &q, &r);
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "application/json");
    core_http_fetch_resp_free(&r);

    /* a 403 step-up stays a plain HTTP answer with its challenge (no stream) */
    mint(f, &(tok_opts){.scope = "workspace:read"}, ro, sizeof ro);
    open_session(f, ro, sid, sizeof sid);
    q.token = ro;
    q.session = sid;
    q.body = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"postly_create_draft\",\"arguments\":{\"text\":\"hi\"},\"_meta\":{"
             "\"progressToken\":\"t\"}}}";
    send_rq(f, &q, &r);
    assert_int_equal(r.status, 403);
    assert_non_null(core_http_fetch_header(&r, "WWW-Authenticate"));
    assert_null(strstr(core_http_fetch_header(&r, "Content-Type"), "event-stream"));
    core_http_fetch_resp_free(&r);
}

/* ---- group commit (exec/batch.h; docs/mcp.md "Group commit") ---- */

/* The exec store's data file made read-only under LMDB: its next commit fails. */
static int break_data_file(const char *dir)
{
    char want[600];
    snprintf(want, sizeof want, "%s/exec/data.mdb", dir);
    return tf_break_data_file(want);
}

static void test_group_commit_holds_write_replies(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[80], args[200];
    tok_opts o = {.scope = ALL_SCOPES, .lifetime_s = 3600};
    ex_batch_stats s0, s1;
    int err = 0;
    mint(f, &o, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);

    /* A store-only write: held, one commit, answered after a sync by the syncer thread. */
    ex_batcher_stats(f->batcher, &s0);
    json_t *res = tool(f, tok, sid, "postly_create_draft", "{\"text\":\"durable\"}", &err);
    assert_false(err);
    ex_batcher_stats(f->batcher, &s1);
    assert_int_equal(s1.held, s0.held + 1);
    assert_int_equal(s1.commits, s0.commits + 1);
    assert_true(s1.syncs > s0.syncs);
    /* Read back at once: committed and visible. */
    snprintf(args, sizeof args, "{\"draft_id\":\"%s\"}", sc_str(res, "id"));
    json_decref(res);
    res = tool(f, tok, sid, "postly_get_draft", args, &err);
    assert_false(err);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res, "structuredContent"), "text")),
        "durable");
    json_decref(res);
    /* Reads are never held; media bytes are written outside the batch. */
    ex_batcher_stats(f->batcher, &s0);
    res = tool(f, tok, sid, "postly_get_workspace", "{}", &err);
    assert_false(err);
    json_decref(res);
    res = tool(f, tok, sid, "postly_upload_media",
               "{\"data_base64\":\"" PNG_1X1 "\",\"filename\":\"a.png\"}", &err);
    assert_false(err);
    json_decref(res);
    ex_batcher_stats(f->batcher, &s1);
    assert_int_equal(s1.held, s0.held);
    /* A tool refusing its input inside the batch: still an isError result, nothing stored. */
    res = tool(f, tok, sid, "postly_update_draft",
               "{\"draft_id\":\"drf_0000000000000000000000000000\",\"text\":\"x\"}", &err);
    assert_true(err);
    json_decref(res);
}

static void test_group_commit_failure_is_an_error(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[80];
    tok_opts o = {.scope = ALL_SCOPES, .lifetime_s = 3600};
    int status = 0, err = 0;
    mint(f, &o, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    json_t *res = tool(f, tok, sid, "postly_create_draft", "{\"text\":\"first\"}", &err);
    assert_false(err);
    json_decref(res);
    assert_true(break_data_file(f->dir) > 0);
    json_t *j = call(f, tok, sid,
                     "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{"
                     "\"name\":\"postly_create_draft\",\"arguments\":{\"text\":\"lost\"}}}",
                     &status, NULL);
    /* Never a success for a write that is not on disk: a JSON-RPC error naming the cause. */
    assert_int_equal(status, 500);
    assert_int_equal(error_code(j), -32603);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 42);
    assert_null(json_object_get(j, "result"));
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "not saved"));
    json_decref(j);
    ex_batch_stats st;
    ex_batcher_stats(f->batcher, &st);
    assert_int_equal(st.failed, 1);
}

/* The audit lines of tools/call target tool, in order: their outcomes joined by ',' into out. */
static void audit_outcomes(fx *f, const char *tool, char *out, size_t outsz)
{
    char line[8192];
    size_t n = 0;
    out[0] = '\0';
    fflush(f->audit);
    rewind(f->audit);
    while (fgets(line, sizeof line, f->audit)) {
        json_t *rec = json_loads(line, 0, NULL);
        assert_non_null(rec); /* every line whole JSON */
        if (strcmp(json_string_value(json_object_get(rec, "target")), tool) == 0) {
            assert_true(json_is_integer(json_object_get(rec, "latency_ms")));
            int k = snprintf(out + n, outsz - n, "%s%s", n ? "," : "",
                             json_string_value(json_object_get(rec, "outcome")));
            assert_true(k > 0 && (size_t)k < outsz - n);
            n += (size_t)k;
        }
        json_decref(rec);
    }
    fseek(f->audit, 0, SEEK_END);
}

/* A batched write's audit line carries the outcome the client got: written when the batch is
 * settled, "not_durable" when its commit failed (the reply was a 500). Usage meters it as
 * every executed call that failed: counted (mcp/usage.h: every executed call). */
static void test_group_commit_audit_and_usage(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], sid[80], outcomes[256], *text = NULL;
    tok_opts o = {.scope = ALL_SCOPES, .lifetime_s = 3600};
    int status = 0, err = 0;
    size_t len = 0;
    FILE *mem;
    mint(f, &o, tok, sizeof tok);
    open_session(f, tok, sid, sizeof sid);
    json_t *res = tool(f, tok, sid, "postly_create_draft", "{\"text\":\"kept\"}", &err);
    assert_false(err);
    json_decref(res);
    /* A write refused by its service inside the batch: its own outcome, the batch being fine. */
    res = tool(f, tok, sid, "postly_update_draft",
               "{\"draft_id\":\"drf_0000000000000000000000000000\",\"text\":\"x\"}", &err);
    assert_true(err);
    json_decref(res);
    audit_outcomes(f, "postly_create_draft", outcomes, sizeof outcomes);
    assert_string_equal(outcomes, "ok");
    audit_outcomes(f, "postly_update_draft", outcomes, sizeof outcomes);
    assert_string_not_equal(outcomes, "");
    assert_null(strstr(outcomes, "not_durable"));

    assert_true(break_data_file(f->dir) > 0);
    json_t *j = call(f, tok, sid,
                     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{"
                     "\"name\":\"postly_create_draft\",\"arguments\":{\"text\":\"lost\"}}}",
                     &status, NULL);
    assert_int_equal(status, 500);
    assert_int_equal(error_code(j), -32603);
    json_decref(j);
    /* One line for the lost call, and it says what the client got. */
    audit_outcomes(f, "postly_create_draft", outcomes, sizeof outcomes);
    assert_string_equal(outcomes, "ok,not_durable");

    /* Metered like any executed call that failed: both create calls count. */
    assert_int_equal(mcp_usage_flush(f->usage), PL_OK);
    mem = open_memstream(&text, &len);
    assert_int_equal(mcp_usage_report(f->usage, NULL, WS, mem), PL_OK);
    fclose(mem);
    assert_non_null(strstr(text, "|" WS "|tool|client-test|postly_create_draft 2\n"));
    assert_non_null(strstr(text, "|" WS "|tool|client-test|postly_update_draft 1\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prm, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_group_commit_holds_write_replies, setup,
                                                 teardown, (void *)&DURABLE),
        cmocka_unit_test_prestate_setup_teardown(test_group_commit_failure_is_an_error, setup,
                                                 teardown, (void *)&DURABLE),
        cmocka_unit_test_prestate_setup_teardown(test_group_commit_audit_and_usage, setup, teardown,
                                                 (void *)&DURABLE),
        cmocka_unit_test_setup_teardown(test_reads_side_effect_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_over_sse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_challenges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_origin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonrpc_errors_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tools_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources_and_prompts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_never_holds_the_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scope_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resource_scope_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_2025_03_26, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflow_and_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_and_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_limit, setup, teardown),
    };
    /* The server closes a connection whose body is over the limit while the client writes. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
