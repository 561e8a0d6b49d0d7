/* tests/authz/test_endpoints.c — postly-authz over loopback: every endpoint, the RFC 9700
 * negative cases of issue 5, and hostile input. The server runs in-process on port 0 with a
 * fake clock, real LMDB, real ES256 keys and the shipped policy. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "authz/directory.h"
#include "authz/store.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "keys/keyset.h"
#include "fixture.h"
#include "flow.h"

static int setup(void **state)
{
    tsrv *t = calloc(1, sizeof *t);
    tsrv_start(t, 1);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tsrv_stop(*state);
    free(*state);
    return 0;
}

static json_t *get_json(tsrv *t, const char *target, int *status)
{
    tresp r;
    json_t *j;
    t_req(t, "GET", target, NULL, NULL, NULL, &r);
    *status = r.r.status;
    j = json_loads(r.r.body.p ? r.r.body.p : "", 0, NULL);
    t_free(&r);
    return j;
}

static void test_metadata(void **state)
{
    tsrv *t = *state;
    const char *paths[] = {"/.well-known/oauth-authorization-server",
                           "/.well-known/openid-configuration"};
    for (size_t i = 0; i < 2; i++) {
        int st;
        json_t *m = get_json(t, paths[i], &st), *a;
        char url[256];
        assert_int_equal(st, 200);
        assert_string_equal(json_string_value(json_object_get(m, "issuer")),
                            az_server_issuer(t->srv));
        snprintf(url, sizeof url, "%s/token", az_server_issuer(t->srv));
        assert_string_equal(json_string_value(json_object_get(m, "token_endpoint")), url);
        a = json_object_get(m, "code_challenge_methods_supported");
        assert_int_equal(json_array_size(a), 1);
        assert_string_equal(json_string_value(json_array_get(a, 0)), "S256");
        assert_int_equal(json_array_size(json_object_get(m, "scopes_supported")), 31);
        assert_int_equal(
            json_array_size(json_object_get(m, "token_endpoint_auth_methods_supported")), 3);
        assert_true(
            json_is_true(json_object_get(m, "authorization_response_iss_parameter_supported")));
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(m, "response_types_supported"), 0)),
            "code");
        assert_non_null(json_object_get(m, "registration_endpoint"));
        assert_non_null(json_object_get(m, "revocation_endpoint"));
        assert_non_null(json_object_get(m, "introspection_endpoint"));
        assert_non_null(json_object_get(m, "jwks_uri"));
        json_decref(m);
    }
}

static void test_jwks(void **state)
{
    tsrv *t = *state;
    int st;
    json_t *j = get_json(t, "/jwks", &st), *k;
    assert_int_equal(st, 200);
    assert_true(json_array_size(json_object_get(j, "keys")) >= 1);
    k = json_array_get(json_object_get(j, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_null(json_object_get(k, "d")); /* never the private part */
    json_decref(j);
}

static void post_json(tsrv *t, const char *target, const char *body, tresp *r)
{
    static const char *const ct[] = {"Content-Type", "application/json", NULL};
    core_http_fetch_req rq = {0};
    memset(r, 0, sizeof *r);
    rq.method = "POST";
    rq.host = "127.0.0.1";
    rq.port = az_server_port(t->srv);
    rq.target = target;
    rq.headers = ct;
    rq.body = body;
    rq.body_len = strlen(body);
    assert_int_equal(core_http_fetch(t->base, &rq, &r->r), PL_OK);
}

static void test_dcr(void **state)
{
    tsrv *t = *state;
    tresp r;
    json_t *a, *b;
    const char *pub = "{\"redirect_uris\":[\"http://127.0.0.1:9999/cb\"],\"client_name\":\"Tool\","
                      "\"token_endpoint_auth_method\":\"none\",\"grant_types\":"
                      "[\"authorization_code\",\"refresh_token\"],\"scope\":\"posts:read\"}";
    const char *conf = "{\"redirect_uris\":[\"https://web.example/cb\"],\"client_name\":\"Web\"}";
    post_json(t, "/register", pub, &r);
    assert_int_equal(r.r.status, 201);
    assert_string_equal(core_http_fetch_header(&r.r, "Cache-Control"), "no-store");
    a = json_loads(r.r.body.p, 0, NULL);
    assert_null(json_object_get(a, "client_secret"));
    t_free(&r);
    /* An identical registration from the same source: the same client. */
    post_json(t, "/register", pub, &r);
    assert_int_equal(r.r.status, 201);
    b = json_loads(r.r.body.p, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "client_id")),
                        json_string_value(json_object_get(b, "client_id")));
    json_decref(a);
    json_decref(b);
    t_free(&r);
    /* Confidential: a secret shown once, stored hashed. */
    post_json(t, "/register", conf, &r);
    assert_int_equal(r.r.status, 201);
    a = json_loads(r.r.body.p, 0, NULL);
    assert_int_equal(strlen(json_string_value(json_object_get(a, "client_secret"))), 43);
    assert_string_equal(json_string_value(json_object_get(a, "token_endpoint_auth_method")),
                        "client_secret_basic");
    {
        az_client c;
        assert_int_equal(az_client_get(az_server_store(t->srv),
                                       json_string_value(json_object_get(a, "client_id")), &c),
                         PL_OK);
        assert_string_equal(c.cls, "dynamic");
        assert_int_equal(c.kind, AZ_CLIENT_DCR);
    }
    t_free(&r);
    /* The same confidential registration again from the same address (anyone behind the same
     * NAT who copied the metadata): a new client with its own secret; the first client and
     * its secret are untouched (no takeover). */
    post_json(t, "/register", conf, &r);
    assert_int_equal(r.r.status, 201);
    b = json_loads(r.r.body.p, 0, NULL);
    assert_string_not_equal(json_string_value(json_object_get(a, "client_id")),
                            json_string_value(json_object_get(b, "client_id")));
    assert_string_not_equal(json_string_value(json_object_get(a, "client_secret")),
                            json_string_value(json_object_get(b, "client_secret")));
    {
        az_client c;
        uint8_t h[CORE_SHA256_LEN];
        const char *sa = json_string_value(json_object_get(a, "client_secret"));
        assert_int_equal(az_client_get(az_server_store(t->srv),
                                       json_string_value(json_object_get(a, "client_id")), &c),
                         PL_OK);
        core_sha256(sa, strlen(sa), h);
        assert_memory_equal(c.secret_hash, h, sizeof h);
    }
    json_decref(a);
    json_decref(b);
    t_free(&r);
}

static void test_dcr_rejects(void **state)
{
    tsrv *t = *state;
    static const struct {
        const char *body, *error, *needle;
    } bad[] = {
        {"{\"redirect_uris\":[\"http://evil.example/cb\"]}", "invalid_redirect_uri", "https"},
        {"{\"redirect_uris\":[\"https://a.example/cb#frag\"]}", "invalid_redirect_uri", "fragment"},
        {"{\"redirect_uris\":[\"javascript:alert(1)\"]}", "invalid_redirect_uri", ""},
        {"{\"redirect_uris\":[\"https://u:p@a.example/cb\"]}", "invalid_redirect_uri", "user"},
        {"{\"redirect_uris\":[]}", "invalid_redirect_uri", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\",\"https://a.example/cb\"]}",
         "invalid_redirect_uri", "duplicate"},
        {"{\"redirect_uris\":[\"https://a.example/"
         "cb\"],\"token_endpoint_auth_method\":\"private_key_jwt\"}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"implicit\"]}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"refresh_token\"]}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"response_types\":[\"token\"]}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"scope\":\"posts:read root\"}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"a\\u0007b\"}",
         "invalid_client_metadata", ""},
        {"{\"redirect_uris\":[\"https://a.example/"
         "cb\"],\"client_name\":\"x\",\"client_name\":\"y\"}",
         "invalid_client_metadata", "duplicate"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"\xff\xfe\"}",
         "invalid_client_metadata", "UTF-8"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"logo_uri\":\"http://a.example/l.png\"}",
         "invalid_client_metadata", "logo_uri"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"client_uri\":\"javascript:alert(1)\"}",
         "invalid_client_metadata", "client_uri"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"contacts\":\"me\"}",
         "invalid_client_metadata", "contacts"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"jwks_uri\":\"https://a.example/jwks\"}",
         "invalid_client_metadata", "jwks_uri"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"software_statement\":\"e30.e30.\"}",
         "invalid_software_statement", "software_statement"},
        {"{\"redirect_uris\":[\"https://a.example/cb\"],\"software_id\":7}",
         "invalid_client_metadata", "software_id"},
        {"[1,2]", "invalid_client_metadata", "object"},
        {"{", "invalid_client_metadata", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tresp r;
        json_t *j;
        post_json(t, "/register", bad[i].body, &r);
        assert_int_equal(r.r.status, 400);
        j = json_loads(r.r.body.p, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "error")), bad[i].error);
        assert_non_null(
            strstr(json_string_value(json_object_get(j, "error_description")), bad[i].needle));
        json_decref(j);
        t_free(&r);
    }
    {
        /* An oversized client_name and an oversized body. */
        core_buf b;
        tresp r;
        core_buf_init(&b, 100000);
        core_buf_adds(&b, "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"");
        for (int i = 0; i < 200; i++)
            core_buf_adds(&b, "x");
        core_buf_adds(&b, "\"}");
        post_json(t, "/register", b.p, &r);
        assert_int_equal(r.r.status, 400);
        t_free(&r);
        core_buf_reset(&b);
        core_buf_adds(&b, "{\"redirect_uris\":[\"https://a.example/cb\"],\"x\":\"");
        for (int i = 0; i < 20000; i++)
            core_buf_adds(&b, "x");
        core_buf_adds(&b, "\"}");
        post_json(t, "/register", b.p, &r);
        assert_int_equal(r.r.status, 400);
        assert_non_null(strstr(r.r.body.p, "too large"));
        t_free(&r);
        core_buf_free(&b);
    }
}

static void test_dcr_limit(void **state)
{
    tsrv *t = *state;
    int created = 0, limited = 0;
    for (int i = 0; i < 7; i++) {
        char body[256];
        tresp r;
        snprintf(body, sizeof body,
                 "{\"redirect_uris\":[\"https://a.example/cb%d\"],"
                 "\"token_endpoint_auth_method\":\"none\"}",
                 i);
        post_json(t, "/register", body, &r);
        created += r.r.status == 201;
        limited += r.r.status == 429;
        t_free(&r);
    }
    assert_int_equal(created, 5); /* per_source = 5 in the fixture */
    assert_int_equal(limited, 2);
}

/* ---- /authorize ---------------------------------------------------------------------- */

static void authorize(tsrv *t, const char *query, tresp *r)
{
    char target[4096];
    snprintf(target, sizeof target, "/authorize?%s", query);
    t_req(t, "GET", target, NULL, NULL, NULL, r);
}

#define GOOD_TAIL "&response_type=code&state=s1&code_challenge_method=S256&code_challenge="

static void expect_error_page(tsrv *t, const char *query, const char *needle)
{
    tresp r;
    authorize(t, query, &r);
    assert_int_equal(r.r.status, 400);
    assert_null(core_http_fetch_header(&r.r, "Location"));
    assert_string_equal(core_http_fetch_header(&r.r, "X-Frame-Options"), "DENY");
    assert_non_null(strstr(r.r.body.p, needle));
    t_free(&r);
}

static void expect_redirect_error(tsrv *t, const char *query, const char *error)
{
    tresp r;
    char v[256];
    authorize(t, query, &r);
    assert_int_equal(r.r.status, 302);
    assert_int_equal(
        strncmp(core_http_fetch_header(&r.r, "Location"), T_REDIRECT "?", strlen(T_REDIRECT) + 1),
        0);
    t_loc_param(&r, "error", v, sizeof v);
    assert_string_equal(v, error);
    t_loc_param(&r, "iss", v, sizeof v);
    assert_string_equal(v, az_server_issuer(t->srv)); /* RFC 9207 */
    t_loc_param(&r, "state", v, sizeof v);
    assert_string_equal(v, "s1");
    t_free(&r);
}

static void test_authorize_error_pages(void **state)
{
    tsrv *t = *state;
    char q[1024];
    const char *ch = t_challenge();
    snprintf(q, sizeof q,
             "client_id=nobody&redirect_uri=https%%3A%%2F%%2Fapp.example%%2Fcb" GOOD_TAIL "%s", ch);
    expect_error_page(t, q, "Unknown application");
    /* Mismatched redirect and open-redirect attempts: a page, never a redirect. */
    static const char *const evil[] = {
        "https%3A%2F%2Fevil.example%2Fcb",
        "https%3A%2F%2Fapp.example%2Fcb%2F",
        "https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1",
        "https%3A%2F%2Fapp.example.evil.example%2Fcb",
        "https%3A%2F%2Fapp.example%2Fcb%2F..%2F..%2Fevil",
        "https%3A%2F%2Fapp.example%3A444%2Fcb",
        "http%3A%2F%2Fapp.example%2Fcb",
        "http%3A%2F%2F127.0.0.1%3A5000%2Fother",
        "http%3A%2F%2Flocalhost%3A5000%2Fcallback",
    };
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        snprintf(q, sizeof q, "client_id=cli-public&redirect_uri=%s" GOOD_TAIL "%s", evil[i], ch);
        expect_error_page(t, q, "Invalid redirect address");
    }
    snprintf(q, sizeof q, "client_id=cli-public" GOOD_TAIL "%s", ch); /* two registered */
    expect_error_page(t, q, "Invalid redirect address");
    snprintf(q, sizeof q,
             "client_id=cli-public&client_id=cli-conf&redirect_uri=https%%3A%%2F%%2Fapp.example%%"
             "2Fcb" GOOD_TAIL "%s",
             ch);
    expect_error_page(t, q, "included more than once");
    expect_error_page(t, "client_id=%ff", "not valid UTF-8");
    expect_error_page(t, "client_id=a%zz", "percent-escape");
    expect_error_page(t, "response_type=code", "no client_id");
}

static void test_authorize_redirect_errors(void **state)
{
    tsrv *t = *state;
    char q[2048];
    const char *ch = t_challenge();
    const char *base = "client_id=cli-public&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1";
    snprintf(q, sizeof q, "%s&response_type=code", base); /* missing PKCE */
    expect_redirect_error(t, q, "invalid_request");
    snprintf(q, sizeof q, "%s&response_type=code&code_challenge=%s", base, ch); /* implied plain */
    expect_redirect_error(t, q, "invalid_request");
    snprintf(q, sizeof q, "%s&response_type=code&code_challenge_method=plain&code_challenge=%s",
             base, ch);
    expect_redirect_error(t, q, "invalid_request");
    snprintf(q, sizeof q, "%s&response_type=code&code_challenge_method=S256&code_challenge=short",
             base);
    expect_redirect_error(t, q, "invalid_request");
    snprintf(q, sizeof q, "%s&response_type=token&code_challenge_method=S256&code_challenge=%s",
             base, ch);
    expect_redirect_error(t, q, "unsupported_response_type");
    snprintf(q, sizeof q,
             "%s&response_type=code&code_challenge_method=S256&code_challenge=%s&resource=https%%"
             "3A%%2F%%2Fevil.example%%2Fmcp",
             base, ch);
    expect_redirect_error(t, q, "invalid_target");
    /* Two resources configured: the resource is required. */
    snprintf(q, sizeof q, "%s&response_type=code&code_challenge_method=S256&code_challenge=%s",
             base, ch);
    expect_redirect_error(t, q, "invalid_target");
    snprintf(q, sizeof q,
             "%s&response_type=code&code_challenge_method=S256&code_challenge=%s&resource=https%%"
             "3A%%2F%%2Fmcp.example%%2Fmcp&scope=posts%%3Aread+root",
             base, ch);
    expect_redirect_error(t, q, "invalid_scope");
    snprintf(q, sizeof q,
             "%s&response_type=code&code_challenge_method=S256&code_challenge=%s&resource=https%%"
             "3A%%2F%%2Fmcp.example%%2Fmcp&prompt=none",
             base, ch);
    expect_redirect_error(t, q, "login_required");
}

static void test_authorize_loopback_any_port(void **state)
{
    tsrv *t = *state;
    char cookie[128], rid[64];
    tresp page;
    t_login_to_consent(t, "cli-public", "http://127.0.0.1:53124/callback",
                       "&resource=https%3A%2F%2Fmcp.example%2Fmcp", cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    /* Loopback redirect flagged on the consent page. */
    assert_non_null(strstr(page.r.body.p, "Runs on this computer"));
    assert_non_null(strstr(page.r.body.p, "127.0.0.1"));
    t_free(&page);
}

/* ---- consent and the full flow ---------------------------------------------------------- */

static void test_consent_page(void **state)
{
    tsrv *t = *state;
    char cookie[128], rid[64];
    tresp page;
    t_login_to_consent(
        t, "cli-public", T_REDIRECT,
        "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread+posts%3Apublish+"
        "analytics%3Ax%3Aread+campaigns%3Adelete+analytics%3Aread",
        cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    /* The security header set and the page CSP. */
    assert_string_equal(core_http_fetch_header(&page.r, "X-Frame-Options"), "DENY");
    assert_string_equal(core_http_fetch_header(&page.r, "Referrer-Policy"), "no-referrer");
    assert_string_equal(core_http_fetch_header(&page.r, "Cache-Control"), "no-store");
    assert_int_equal(core_http_fetch_header_count(&page.r, "Content-Security-Policy"), 2);
    assert_non_null(strstr(page.r.body.p, "Public CLI"));
    assert_non_null(strstr(page.r.body.p, "app.example"));
    /* Workspace names are escaped. */
    assert_non_null(strstr(page.r.body.p, "Acme &lt;Inc&gt;"));
    assert_null(strstr(page.r.body.p, "Acme <Inc>"));
    /* Categories, seed descriptions, destructive marks, the four bundles. */
    assert_non_null(strstr(page.r.body.p, "<legend>Publishing Scopes</legend>"));
    assert_non_null(strstr(page.r.body.p, "<legend>Analytics Scopes</legend>"));
    assert_non_null(strstr(page.r.body.p, "scope destructive"));
    assert_non_null(strstr(page.r.body.p, "Destructive"));
    assert_non_null(strstr(page.r.body.p, "Read-Only Analytics Assistant"));
    assert_non_null(strstr(page.r.body.p, "Campaign Operator"));
    assert_non_null(strstr(page.r.body.p, "value=\"posts:publish\" checked"));
    t_free(&page);
    /* In beta alice is a viewer: publish is unavailable, with the reason. */
    {
        char target[256];
        snprintf(target, sizeof target, "/consent?rid=%s&ws=beta", rid);
        t_req(t, "GET", target, NULL, cookie, NULL, &page);
        assert_int_equal(page.r.status, 200);
        assert_non_null(strstr(page.r.body.p, "value=\"posts:publish\" disabled"));
        assert_non_null(strstr(page.r.body.p, "Your role in this workspace (viewer) cannot grant"));
        assert_non_null(strstr(page.r.body.p, "value=\"posts:read\" checked"));
        /* default.policy offers the publishing bundles to owner, admin and editor only. */
        assert_non_null(
            strstr(page.r.body.p, "bundle disabled\" id=\"bundle-publishing-assistant\""));
        assert_non_null(strstr(page.r.body.p, "Not offered to your role in this workspace."));
        assert_non_null(
            strstr(page.r.body.p, "<a class=\"bundle\" data-scopes=\"analytics:read\""));
        t_free(&page);
        snprintf(target, sizeof target, "/consent?rid=%s&ws=nope", rid);
        t_req(t, "GET", target, NULL, cookie, NULL, &page);
        assert_int_equal(page.r.status, 400);
        t_free(&page);
        snprintf(target, sizeof target, "/consent?rid=%s&bundle=analytics-readonly", rid);
        t_req(t, "GET", target, NULL, cookie, NULL, &page);
        assert_non_null(strstr(page.r.body.p, "value=\"analytics:read\" checked"));
        assert_non_null(strstr(page.r.body.p, "value=\"analytics:x:read\">"));
        assert_non_null(strstr(page.r.body.p, "value=\"posts:publish\">"));
        t_free(&page);
    }
}

static void test_full_flow(void **state)
{
    tsrv *t = *state;
    char code[64], body[1024];
    int st;
    json_t *tok, *p;
    t_get_code(t,
               "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread+posts%3Acreate+"
               "analytics%3Aread",
               "acme", "posts:read analytics:read", code);
    snprintf(body, sizeof body,
             "grant_type=authorization_code&client_id=cli-public&code=%s&redirect_uri=%s"
             "&code_verifier=%s&resource=https%%3A%%2F%%2Fmcp.example%%2Fmcp",
             code, "https%3A%2F%2Fapp.example%2Fcb", T_VERIFIER);
    tok = t_token(t, body, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(tok, "token_type")), "Bearer");
    assert_string_equal(json_string_value(json_object_get(tok, "scope")),
                        "posts:read analytics:read");
    assert_int_equal(json_integer_value(json_object_get(tok, "expires_in")), 600);
    p = t_jwt_payload(json_string_value(json_object_get(tok, "access_token")));
    assert_string_equal(json_string_value(json_object_get(p, "aud")), T_RESOURCE);
    assert_string_equal(json_string_value(json_object_get(p, "iss")), az_server_issuer(t->srv));
    assert_string_equal(json_string_value(json_object_get(p, "sub")), t->uid_alice);
    assert_string_equal(json_string_value(json_object_get(p, "ws")), "acme");
    assert_string_equal(json_string_value(json_object_get(p, "client_id")), "cli-public");
    assert_string_equal(json_string_value(json_object_get(p, "scope")),
                        "posts:read analytics:read");
    assert_string_equal(json_string_value(json_object_get(p, "cls")), "preregistered");
    assert_non_null(json_object_get(p, "gid"));
    json_decref(p);
    json_decref(tok);
}

static void exchange(tsrv *t, const char *code, const char *client, const char *redirect,
                     const char *verifier, const char *resource, int *st, json_t **out)
{
    core_buf b;
    core_buf_init(&b, 4096);
    core_buf_addf(&b, "grant_type=authorization_code&client_id=%s&code=%s", client, code);
    if (redirect) {
        core_buf_adds(&b, "&redirect_uri=");
        core_buf_add_urlenc(&b, redirect, strlen(redirect));
    }
    if (verifier)
        core_buf_addf(&b, "&code_verifier=%s", verifier);
    if (resource) {
        core_buf_adds(&b, "&resource=");
        core_buf_add_urlenc(&b, resource, strlen(resource));
    }
    *out = t_token(t, b.p, NULL, st);
    core_buf_free(&b);
}

static const char *err_of(json_t *j)
{
    return json_string_value(json_object_get(j, "error"));
}

static void test_code_negatives(void **state)
{
    tsrv *t = *state;
    char code[64];
    int st;
    json_t *j, *ok;
    const char *q = "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread";
    t_get_code(t, q, "acme", "posts:read", code);
    /* Wrong verifier, no verifier, wrong redirect, wrong resource, another client. */
    exchange(t, code, "cli-public", T_REDIRECT, "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", NULL,
             &st, &j);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    exchange(t, code, "cli-public", T_REDIRECT, NULL, NULL, &st, &j);
    assert_string_equal(err_of(j), "invalid_grant");
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "error_description")), "code_verifier"));
    json_decref(j);
    exchange(t, code, "cli-public", "https://app.example/other", T_VERIFIER, NULL, &st, &j);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, T_RESOURCE2, &st, &j);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    {
        char body[512];
        const char *const basic[] = {
            "Authorization",
            "Basic Y2xpLWNvbmY6czNjcmV0LW9mLXRoZS1jb25maWRlbnRpYWwtY2xpZW50LTAxMjM0NTY3ODk=", NULL};
        snprintf(body, sizeof body,
                 "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Fapp.example%%"
                 "2Fcb&code_verifier=%s",
                 code, T_VERIFIER);
        j = t_token(t, body, basic, &st);
        assert_int_equal(st, 400);
        assert_string_equal(err_of(j), "invalid_grant");
        assert_non_null(
            strstr(json_string_value(json_object_get(j, "error_description")), "another client"));
        json_decref(j);
    }
    /* The right exchange still works (failed attempts do not burn the code)... */
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, T_RESOURCE, &st, &ok);
    assert_int_equal(st, 200);
    /* ...and a replay revokes what it issued: the refresh token dies. */
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    {
        char body[512];
        snprintf(body, sizeof body,
                 "grant_type=refresh_token&client_id=cli-public&refresh_token=%s",
                 json_string_value(json_object_get(ok, "refresh_token")));
        j = t_token(t, body, NULL, &st);
        assert_int_equal(st, 400);
        assert_string_equal(err_of(j), "invalid_grant");
        json_decref(j);
    }
    json_decref(ok);
    /* Expired code. */
    t_get_code(t, q, "acme", "posts:read", code);
    core_fake_clock_advance(&t->clock, 61000);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_string_equal(err_of(j), "invalid_grant");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error_description")), "expired"));
    json_decref(j);
}

static json_t *refresh(tsrv *t, const char *client, const char *rt, const char *extra, int *st)
{
    char body[1024];
    snprintf(body, sizeof body, "grant_type=refresh_token&client_id=%s&refresh_token=%s%s", client,
             rt, extra ? extra : "");
    return t_token(t, body, NULL, st);
}

static void test_refresh(void **state)
{
    tsrv *t = *state;
    char code[64], rt0[64], rt1[64];
    int st;
    json_t *j, *p;
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread+posts%3Acreate",
               "acme", "posts:read posts:create", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, T_RESOURCE, &st, &j);
    assert_int_equal(st, 200);
    snprintf(rt0, sizeof rt0, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    /* Widening refused, and it does not rotate. */
    j = refresh(t, "cli-public", rt0, "&scope=posts%3Aread+posts%3Adelete", &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_scope");
    json_decref(j);
    /* Another client, another resource. */
    {
        char body[512];
        const char *const basic[] = {
            "Authorization",
            "Basic Y2xpLWNvbmY6czNjcmV0LW9mLXRoZS1jb25maWRlbnRpYWwtY2xpZW50LTAxMjM0NTY3ODk=", NULL};
        snprintf(body, sizeof body, "grant_type=refresh_token&refresh_token=%s", rt0);
        j = t_token(t, body, basic, &st);
        assert_string_equal(err_of(j), "invalid_grant");
        json_decref(j);
    }
    j = refresh(t, "cli-public", rt0, "&resource=https%3A%2F%2Fother.example%2Fmcp", &st);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    /* Narrowing works; the token carries the narrowed scope, a new refresh token comes. */
    j = refresh(t, "cli-public", rt0, "&scope=posts%3Aread", &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "posts:read");
    p = t_jwt_payload(json_string_value(json_object_get(j, "access_token")));
    assert_string_equal(json_string_value(json_object_get(p, "scope")), "posts:read");
    json_decref(p);
    snprintf(rt1, sizeof rt1, "%s", json_string_value(json_object_get(j, "refresh_token")));
    assert_string_not_equal(rt0, rt1);
    json_decref(j);
    /* The refresh token keeps the original scope. */
    j = refresh(t, "cli-public", rt1, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "posts:read posts:create");
    json_decref(j);
    /* rt0 is two generations old: reuse revokes the family (rt1's successor dies too). */
    core_fake_clock_advance(&t->clock, 60000);
    j = refresh(t, "cli-public", rt0, NULL, &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_grant");
    assert_non_null(strstr(json_string_value(json_object_get(j, "error_description")), "reuse"));
    json_decref(j);
    j = refresh(t, "cli-public", rt1, NULL, &st);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
}

/* RFC 6749 §5.2 error bodies are written by hand: valid JSON, and error_description limited
 * to %x20-21 / %x23-5B / %x5D-7E even when it quotes a hostile parameter name. */
static void test_token_error_bodies(void **state)
{
    tsrv *t = *state;
    static const char *const bodies[] = {
        "grant_type=refresh_token&client_id=cli-public&%22q%5Cb%C3%A9=1&%22q%5Cb%C3%A9=2",
        "grant_type=refresh_token&client_id=cli-public&a%22%5C%7F=1&a%22%5C%7F=2",
        "grant_type=authorization_code&client_id=cli-public&refresh_token=x&refresh_token=y",
    };
    char code[64];
    int st;
    json_t *j;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        tresp r;
        json_error_t je;
        const char *desc;
        t_req(t, "POST", "/token", bodies[i], NULL, NULL, &r);
        assert_int_equal(r.r.status, 400);
        assert_string_equal(core_http_fetch_header(&r.r, "Cache-Control"), "no-store");
        j = json_loadb(r.r.body.p, r.r.body.len, 0, &je);
        assert_non_null(j);
        assert_string_equal(err_of(j), "invalid_request");
        desc = json_string_value(json_object_get(j, "error_description"));
        assert_non_null(desc);
        assert_non_null(strstr(desc, "more than once"));
        for (const char *c = desc; *c; c++)
            assert_true(*c >= 0x20 && *c <= 0x7e && *c != '"' && *c != '\\');
        json_decref(j);
        t_free(&r);
    }
    /* A malformed scope with an unknown refresh token: the token is reported first. */
    j = refresh(t, "cli-public", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "&scope=%20", &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    /* With a known one, the scope. */
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, T_RESOURCE, &st, &j);
    assert_int_equal(st, 200);
    {
        char rt[64];
        json_t *e;
        snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
        e = refresh(t, "cli-public", rt, "&scope=posts%3Anope", &st);
        assert_int_equal(st, 400);
        assert_string_equal(err_of(e), "invalid_scope");
        json_decref(e);
        /* Neither refusal rotated the token. */
        e = refresh(t, "cli-public", rt, NULL, &st);
        assert_int_equal(st, 200);
        json_decref(e);
    }
    json_decref(j);
}

static void test_csrf(void **state)
{
    tsrv *t = *state;
    char cookie[128], rid[64], csrf[64], body[512], cookie2[128], rid2[64];
    tresp page, r;
    const char *q = "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread";
    t_login_to_consent(t, "cli-public", T_REDIRECT, q, cookie, rid, &page);
    t_html_input(&page, "csrf", csrf, sizeof csrf);
    t_free(&page);
    /* Missing. */
    snprintf(body, sizeof body, "rid=%s&ws=acme&action=approve&scope=posts%%3Aread", rid);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 403);
    assert_null(core_http_fetch_header(&r.r, "Location"));
    t_free(&r);
    /* From another session (another login of the same user). */
    t_login_to_consent(t, "cli-public", T_REDIRECT, q, cookie2, rid2, &page);
    t_free(&page);
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=approve&scope=posts%%3Aread", csrf,
             rid);
    t_req(t, "POST", "/consent", body, cookie2, NULL, &r);
    assert_int_equal(r.r.status, 403);
    t_free(&r);
    /* Bound to the request too: this session's token for another request. */
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=approve&scope=posts%%3Aread", csrf,
             rid2);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 403);
    t_free(&r);
    /* Login form without its token. */
    t_req(t, "POST", "/login", "username=alice&password=alice+password", cookie, NULL, &r);
    assert_int_equal(r.r.status, 403);
    t_free(&r);
    /* The right one works; a scope that cannot be granted here is refused. */
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=beta&action=approve&scope=posts%%3Apublish",
             csrf, rid);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 400);
    t_free(&r);
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=deny", csrf, rid);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 303);
    {
        char v[128];
        t_loc_param(&r, "error", v, sizeof v);
        assert_string_equal(v, "access_denied");
        t_loc_param(&r, "state", v, sizeof v);
        assert_string_equal(v, "xyz<1>");
        t_loc_param(&r, "iss", v, sizeof v);
        assert_string_equal(v, az_server_issuer(t->srv));
    }
    t_free(&r);
    /* The request is answered: it cannot be approved afterwards. */
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=approve&scope=posts%%3Aread", csrf,
             rid);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 400);
    t_free(&r);
}

static void test_login_throttle_and_hostile(void **state)
{
    tsrv *t = *state;
    tresp r;
    char csrf[64], cookie[128], body[2048], big[600];
    t_req(t, "GET", "/login?next=apps", NULL, NULL, NULL, &r);
    snprintf(cookie, sizeof cookie, "%s", r.cookie);
    t_html_input(&r, "csrf", csrf, sizeof csrf);
    t_free(&r);
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "csrf=%s&username=alice&password=wrong+one", csrf);
        t_req(t, "POST", "/login", body, cookie, NULL, &r);
        assert_int_equal(r.r.status, 401);
        assert_non_null(strstr(r.r.body.p, "Incorrect username or password."));
        t_free(&r);
    }
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=alice+password", csrf);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 429);
    t_free(&r);
    /* Unknown users get the same text as wrong passwords. */
    snprintf(body, sizeof body, "csrf=%s&username=mallory&password=whatever1", csrf);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 401);
    assert_non_null(strstr(r.r.body.p, "Incorrect username or password."));
    t_free(&r);
    /* HTML injection in the username is escaped when echoed. */
    snprintf(body, sizeof body,
             "csrf=%s&username=%%3Cscript%%3Ex%%3C%%2Fscript%%3E&password=12345678", csrf);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_null(strstr(r.r.body.p, "<script>x"));
    assert_non_null(strstr(r.r.body.p, "&lt;script&gt;x"));
    t_free(&r);
    /* Oversized fields, bad UTF-8, duplicated parameters. */
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(body, sizeof body, "csrf=%s&username=%s&password=12345678", csrf, big);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 400);
    t_free(&r);
    snprintf(body, sizeof body, "csrf=%s&username=%%ff&password=12345678", csrf);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 400);
    assert_non_null(strstr(r.r.body.p, "not valid UTF-8"));
    t_free(&r);
    snprintf(body, sizeof body, "csrf=%s&username=alice&username=bob&password=12345678", csrf);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 400);
    assert_non_null(strstr(r.r.body.p, "more than once"));
    t_free(&r);
    {
        int st;
        json_t *j = t_token(
            t, "grant_type=authorization_code&grant_type=refresh_token&client_id=cli-public", NULL,
            &st);
        assert_int_equal(st, 400);
        assert_string_equal(err_of(j), "invalid_request");
        json_decref(j);
        j = t_token(t, "grant_type=password&client_id=cli-public", NULL, &st);
        assert_string_equal(err_of(j), "unsupported_grant_type");
        json_decref(j);
        j = t_token(t, "grant_type=authorization_code&client_id=nobody&code=x", NULL, &st);
        assert_int_equal(st, 401);
        assert_string_equal(err_of(j), "invalid_client");
        json_decref(j);
    }
}

static void test_client_auth(void **state)
{
    tsrv *t = *state;
    int st;
    json_t *j;
    const char *const wrong[] = {"Authorization", "Basic Y2xpLWNvbmY6d3Jvbmc=", NULL};
    const char *const basic[] = {
        "Authorization",
        "Basic Y2xpLWNvbmY6czNjcmV0LW9mLXRoZS1jb25maWRlbnRpYWwtY2xpZW50LTAxMjM0NTY3ODk=", NULL};
    tresp r;
    t_req(t, "POST", "/token", "grant_type=authorization_code&code=x", NULL, wrong, &r);
    assert_int_equal(r.r.status, 401);
    assert_non_null(core_http_fetch_header(&r.r, "WWW-Authenticate"));
    t_free(&r);
    /* Two methods at once. */
    j = t_token(
        t, "grant_type=authorization_code&code=x&client_id=cli-conf&client_secret=" T_CONF_SECRET,
        basic, &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_request");
    json_decref(j);
    /* A confidential client without its secret. */
    j = t_token(t, "grant_type=authorization_code&code=x&client_id=cli-conf", NULL, &st);
    assert_int_equal(st, 401);
    json_decref(j);
    /* Right secret, bad code: the client is authenticated, the grant is not. */
    j = t_token(t, "grant_type=authorization_code&code=x", basic, &st);
    assert_int_equal(st, 400);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
}

static void test_revoke_introspect_apps(void **state)
{
    tsrv *t = *state;
    char code[64], body[4096], at[2048], rt[64], cookie[128], rid[64], csrf[64];
    int st;
    json_t *j;
    tresp r, page;
    az_grant g;
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 200);
    snprintf(at, sizeof at, "%s", json_string_value(json_object_get(j, "access_token")));
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    /* Introspection needs a resource-server client. */
    snprintf(body, sizeof body, "client_id=cli-public&token=%s", at);
    t_req(t, "POST", "/introspect", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 403);
    t_free(&r);
    snprintf(body, sizeof body, "client_id=rs&client_secret=" T_CONF_SECRET "&token=%s", at);
    t_req(t, "POST", "/introspect", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    j = json_loads(r.r.body.p, 0, NULL);
    assert_true(json_is_true(json_object_get(j, "active")));
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "posts:read");
    assert_string_equal(json_string_value(json_object_get(j, "ws")), "acme");
    json_decref(j);
    t_free(&r);
    /* Connected apps lists it; disconnect ends it. */
    t_login_to_consent(t, "cli-public", T_REDIRECT, "&resource=https%3A%2F%2Fmcp.example%2Fmcp",
                       cookie, rid, &page);
    t_free(&page);
    t_req(t, "GET", "/apps", NULL, cookie, NULL, &page);
    assert_int_equal(page.r.status, 200);
    assert_non_null(strstr(page.r.body.p, "Public CLI"));
    assert_non_null(strstr(page.r.body.p, "posts:read"));
    t_html_input(&page, "csrf", csrf, sizeof csrf);
    {
        char gid[80];
        t_html_input(&page, "gid", gid, sizeof gid);
        assert_true(az_id_valid(gid));
        t_free(&page);
        snprintf(body, sizeof body, "csrf=%s&gid=g_notmine", csrf);
        t_req(t, "POST", "/apps/disconnect", body, cookie, NULL, &r);
        assert_int_equal(r.r.status, 404);
        t_free(&r);
        snprintf(body, sizeof body, "gid=%s", gid);
        t_req(t, "POST", "/apps/disconnect", body, cookie, NULL, &r);
        assert_int_equal(r.r.status, 403);
        t_free(&r);
        snprintf(body, sizeof body, "csrf=%s&gid=%s", csrf, gid);
        t_req(t, "POST", "/apps/disconnect", body, cookie, NULL, &r);
        assert_int_equal(r.r.status, 303);
        t_free(&r);
        assert_int_equal(az_grant_get(az_server_store(t->srv), gid, &g), PL_OK);
        assert_int_not_equal(g.revoked_ms, 0);
    }
    j = refresh(t, "cli-public", rt, NULL, &st);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    snprintf(body, sizeof body, "client_id=rs&client_secret=" T_CONF_SECRET "&token=%s", at);
    t_req(t, "POST", "/introspect", body, NULL, NULL, &r);
    assert_string_equal(r.r.body.p, "{\"active\":false}");
    t_free(&r);

    /* /revoke with a refresh token of another client does nothing; of its own ends it. */
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    snprintf(body, sizeof body, "client_id=rs&client_secret=" T_CONF_SECRET "&token=%s", rt);
    t_req(t, "POST", "/revoke", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
    j = refresh(t, "cli-public", rt, NULL, &st);
    assert_int_equal(st, 200);
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    snprintf(body, sizeof body, "client_id=cli-public&token=%s&token_type_hint=refresh_token", rt);
    t_req(t, "POST", "/revoke", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
    j = refresh(t, "cli-public", rt, NULL, &st);
    assert_string_equal(err_of(j), "invalid_grant");
    json_decref(j);
    /* Unknown tokens: 200 (RFC 7009 §2.2). */
    t_req(t, "POST", "/revoke", "client_id=cli-public&token=nonsense", NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
}

/* An /authorize target for cli-public and T_REDIRECT with `state` and extra query q. */
static void authorize_target(char *out, size_t outsz, const char *state, const char *q)
{
    snprintf(out, outsz,
             "/authorize?response_type=code&client_id=cli-public&redirect_uri=https%%3A%%2F%%2Fapp."
             "example%%2Fcb&state=%s&code_challenge=%s&code_challenge_method=S256%s",
             state, t_challenge(), q);
}

/* Remembered consent: preselected next time, skipped silently only for same-site
 * navigations. */
static void test_remembered_consent(void **state)
{
    tsrv *t = *state;
    char cookie[128], code0[64], target[1024], loc[512];
    const char *q = "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread+analytics%3Aread";
    tresp page, r;
    t_approve(t, q, "beta", "posts:read analytics:read", code0, cookie);
    authorize_target(target, sizeof target, "again", q);
    for (int same_site = 0; same_site < 2; same_site++) {
        const char *const hdr[] = {"Sec-Fetch-Site", same_site ? "same-origin" : "cross-site",
                                   NULL};
        t_req(t, "GET", target, NULL, cookie, hdr, &r);
        assert_int_equal(r.r.status, 302);
        snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
        assert_int_equal(strncmp(loc, "/consent?rid=", 13), 0);
        t_free(&r);
        t_req(t, "GET", loc, NULL, cookie, hdr, &page);
        if (same_site) {
            char code[64];
            assert_int_equal(page.r.status, 302);
            t_loc_param(&page, "code", code, sizeof code);
            assert_int_equal(strlen(code), 43);
        } else {
            /* Cross-site: the page is shown, with the remembered workspace preselected. */
            assert_int_equal(page.r.status, 200);
            assert_non_null(strstr(page.r.body.p, "<option value=\"beta\" selected>"));
            assert_non_null(strstr(page.r.body.p, "value=\"posts:read\" checked"));
        }
        t_free(&page);
    }
}

/* Remembered consent is skipped silently only when the consent navigation itself is
 * same-site: a request planted by someone else (their /authorize, with any Sec-Fetch-Site
 * they like, and no session) and then opened cross-site in the user's browser shows the
 * page instead of handing out a code. */
static void test_remembered_consent_planted(void **state)
{
    tsrv *t = *state;
    char cookie[128], code0[64], target[1024], loc[512];
    const char *q = "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread";
    const char *const same[] = {"Sec-Fetch-Site", "same-origin", NULL};
    const char *const cross[] = {"Sec-Fetch-Site", "cross-site", NULL};
    tresp page, r;
    t_approve(t, q, "acme", "posts:read", code0, cookie);
    /* The other party starts the request without the user's session. */
    authorize_target(target, sizeof target, "planted", q);
    t_req(t, "GET", target, NULL, NULL, same, &r);
    assert_int_equal(r.r.status, 302);
    snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
    t_free(&r);
    assert_int_equal(strncmp(loc, "/login?rid=", 11), 0);
    /* ... and sends the user to its consent step from another site. */
    snprintf(target, sizeof target, "/consent?rid=%s", loc + 11);
    t_req(t, "GET", target, NULL, cookie, cross, &page);
    assert_int_equal(page.r.status, 200);
    assert_null(core_http_fetch_header(&page.r, "Location"));
    assert_non_null(strstr(page.r.body.p, "value=\"posts:read\" checked"));
    t_free(&page);
}

/* The status of a same-site flow for cli-public with query q: 302 when the remembered
 * consent skipped the page (a code), 200 when the page was shown. */
static int same_site_flow(tsrv *t, const char *cookie, const char *q, char code[64])
{
    const char *const same[] = {"Sec-Fetch-Site", "same-origin", NULL};
    char target[1024], loc[512];
    tresp r;
    int st;
    authorize_target(target, sizeof target, "again", q);
    t_req(t, "GET", target, NULL, cookie, same, &r);
    assert_int_equal(r.r.status, 302);
    snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
    assert_int_equal(strncmp(loc, "/consent?rid=", 13), 0);
    t_free(&r);
    t_req(t, "GET", loc, NULL, cookie, same, &r);
    st = r.r.status;
    if (st == 302)
        t_loc_param(&r, "code", code, 64);
    t_free(&r);
    return st;
}

/* A disconnect from the connected-apps page forgets the remembered consent for that client
 * and workspace: the next same-site flow shows the consent page. /revoke (RFC 7009: the
 * client gives up a token) does not: the user's decision stands. */
static void test_disconnect_forgets_consent(void **state)
{
    tsrv *t = *state;
    char cookie[128], code[64], csrf[64], gid[80], body[512], rt[64];
    const char *q = "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread";
    int st;
    json_t *j;
    tresp page, r;
    t_approve(t, q, "acme", "posts:read", code, cookie);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 200);
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    assert_int_equal(same_site_flow(t, cookie, q, code), 302); /* remembered: skipped */
    /* /revoke of the refresh token ends the grant but keeps the consent. */
    snprintf(body, sizeof body, "client_id=cli-public&token=%s&token_type_hint=refresh_token", rt);
    t_req(t, "POST", "/revoke", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
    assert_int_equal(same_site_flow(t, cookie, q, code), 302);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 200); /* the live grant the user disconnects below */
    json_decref(j);
    /* The user disconnects the app. */
    t_req(t, "GET", "/apps", NULL, cookie, NULL, &page);
    assert_int_equal(page.r.status, 200);
    t_html_input(&page, "csrf", csrf, sizeof csrf);
    t_html_input(&page, "gid", gid, sizeof gid);
    t_free(&page);
    snprintf(body, sizeof body, "csrf=%s&gid=%s", csrf, gid);
    t_req(t, "POST", "/apps/disconnect", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 303);
    t_free(&r);
    /* The same same-site flow now shows the page, the workspace still preselected. */
    {
        const char *const same[] = {"Sec-Fetch-Site", "same-origin", NULL};
        char target[1024], loc[512];
        authorize_target(target, sizeof target, "after", q);
        t_req(t, "GET", target, NULL, cookie, same, &r);
        assert_int_equal(r.r.status, 302);
        snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
        t_free(&r);
        t_req(t, "GET", loc, NULL, cookie, same, &page);
        assert_int_equal(page.r.status, 200);
        assert_non_null(strstr(page.r.body.p, "<option value=\"acme\" selected>"));
        t_free(&page);
    }
    /* Approving again remembers it again. */
    t_approve(t, q, "acme", "posts:read", code, cookie);
    assert_int_equal(same_site_flow(t, cookie, q, code), 302);
}

/* Revoking an access token ends its grant: introspection and refresh both fail after. */
static void test_revoke_access_token(void **state)
{
    tsrv *t = *state;
    char code[64], body[4096], at[2048], rt[64];
    int st;
    json_t *j;
    tresp r;
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    snprintf(at, sizeof at, "%s", json_string_value(json_object_get(j, "access_token")));
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    /* Another client cannot revoke it. */
    snprintf(body, sizeof body, "client_id=rs&client_secret=" T_CONF_SECRET "&token=%s", at);
    t_req(t, "POST", "/revoke", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
    t_req(t, "POST", "/introspect", body, NULL, NULL, &r);
    assert_non_null(strstr(r.r.body.p, "\"active\":true"));
    t_free(&r);
    snprintf(body, sizeof body, "client_id=cli-public&token=%s&token_type_hint=access_token", at);
    t_req(t, "POST", "/revoke", body, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    t_free(&r);
    snprintf(body, sizeof body, "client_id=rs&client_secret=" T_CONF_SECRET "&token=%s", at);
    t_req(t, "POST", "/introspect", body, NULL, NULL, &r);
    assert_string_equal(r.r.body.p, "{\"active\":false}");
    t_free(&r);
    j = refresh(t, "cli-public", rt, NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
}

/* A user disabled after consenting: the code no longer yields tokens, and the open session
 * cannot consent any more. */
static void test_disabled_user(void **state)
{
    tsrv *t = *state;
    char code[64], cookie[128], rid[64];
    int st;
    json_t *j;
    tresp page;
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    t_login_to_consent(t, "cli-public", T_REDIRECT, "&resource=https%3A%2F%2Fmcp.example%2Fmcp",
                       cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    t_free(&page);
    assert_int_equal(az_user_disable(az_server_store(t->srv), "alice", 1), PL_OK);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 400);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "invalid_grant");
    json_decref(j);
    {
        char target[128];
        snprintf(target, sizeof target, "/consent?rid=%s", rid);
        t_req(t, "GET", target, NULL, cookie, NULL, &page);
        assert_int_equal(page.r.status, 403);
        t_free(&page);
    }
}

typedef struct conc_reply {
    int status;
    char rt[64];
} conc_reply;

static void conc_done(struct evhttp_request *req, void *arg)
{
    conc_reply *r = arg;
    r->status = req ? evhttp_request_get_response_code(req) : -1;
    if (req && r->status == 200) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        json_t *j =
            json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, NULL);
        snprintf(r->rt, sizeof r->rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
        json_decref(j);
    }
}

/* Requests sent together land in one group commit: distinct codes all succeed; the same code
 * twice in one batch is a replay (one succeeds, the other fails and revokes the grant). */
static void test_group_commit_concurrency(void **state)
{
    tsrv *t;
    enum { N = 12 };
    char codes[N][64], body[N + 2][1024];
    conc_reply rep[N + 2];
    struct evhttp_connection *con[N + 2];
    int pending, ok = 0;
    uint64_t c0, r0, c1, r1;
    (void)state;
    t = calloc(1, sizeof *t);
    tsrv_start_durable(t, 1, 1);
    for (int i = 0; i < N; i++)
        t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
                   "posts:read", codes[i]);
    az_server_commit_stats(t->srv, &c0, &r0);
    for (int i = 0; i < N + 2; i++) {
        const char *code = codes[i < N ? i : 0]; /* the last two replay codes[0] */
        struct evhttp_request *req = evhttp_request_new(conc_done, &rep[i]);
        memset(&rep[i], 0, sizeof rep[i]);
        snprintf(body[i], sizeof body[i],
                 "grant_type=authorization_code&client_id=cli-public&code=%s&redirect_uri=https%%"
                 "3A%%2F%%2Fapp.example%%2Fcb&code_verifier=%s",
                 code, T_VERIFIER);
        con[i] = evhttp_connection_base_new(t->base, NULL, "127.0.0.1", az_server_port(t->srv));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/x-www-form-urlencoded");
        evbuffer_add(evhttp_request_get_output_buffer(req), body[i], strlen(body[i]));
        assert_int_equal(evhttp_make_request(con[i], req, EVHTTP_REQ_POST, "/token"), 0);
    }
    do {
        event_base_loop(t->base, EVLOOP_ONCE);
        pending = 0;
        for (int i = 0; i < N + 2; i++)
            pending += rep[i].status == 0;
    } while (pending);
    az_server_commit_stats(t->srv, &c1, &r1);
    assert_int_equal(r1 - r0, N + 2);
    assert_true(c1 - c0 < r1 - r0); /* several replies shared a commit */
    for (int i = 1; i < N; i++)
        assert_int_equal(rep[i].status, 200);
    /* codes[0] was sent three times: exactly one exchange succeeded. */
    ok = (rep[0].status == 200) + (rep[N].status == 200) + (rep[N + 1].status == 200);
    assert_int_equal(ok, 1);
    {
        const char *rt = rep[0].status == 200   ? rep[0].rt
                         : rep[N].status == 200 ? rep[N].rt
                                                : rep[N + 1].rt;
        int st;
        json_t *j = refresh(t, "cli-public", rt, NULL, &st);
        assert_int_equal(st, 400); /* the replay revoked that grant */
        json_decref(j);
        j = refresh(t, "cli-public", rep[1].rt, NULL, &st);
        assert_int_equal(st, 200); /* the others are fine */
        json_decref(j);
    }
    for (int i = 0; i < N + 2; i++)
        evhttp_connection_free(con[i]);
    tsrv_stop(t);
    free(t);
}

/* The session cookie: HttpOnly and SameSite=Lax always, Secure when served over https. */
/* Stopping the server while access tokens are being signed on the signer thread (replies
 * committed and waiting for their signature, or not yet committed) frees everything once:
 * ASan's leak check and use-after-free detection are the assertions. */
static void test_stop_with_signatures_in_flight(void **state)
{
    tsrv *t;
    enum { N = 8 };
    char codes[N][64], body[N][1024];
    conc_reply rep[N];
    struct evhttp_connection *con[N];
    uint64_t c0, r0, c1, r1;
    int spins = 0;
    (void)state;
    t = calloc(1, sizeof *t);
    tsrv_start(t, 1);
    for (int i = 0; i < N; i++)
        t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
                   "posts:read", codes[i]);
    az_server_commit_stats(t->srv, &c0, &r0);
    for (int i = 0; i < N; i++) {
        struct evhttp_request *req = evhttp_request_new(conc_done, &rep[i]);
        memset(&rep[i], 0, sizeof rep[i]);
        snprintf(body[i], sizeof body[i],
                 "grant_type=authorization_code&client_id=cli-public&code=%s&redirect_uri=https%%"
                 "3A%%2F%%2Fapp.example%%2Fcb&code_verifier=%s",
                 codes[i], T_VERIFIER);
        con[i] = evhttp_connection_base_new(t->base, NULL, "127.0.0.1", az_server_port(t->srv));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/x-www-form-urlencoded");
        evbuffer_add(evhttp_request_get_output_buffer(req), body[i], strlen(body[i]));
        assert_int_equal(evhttp_make_request(con[i], req, EVHTTP_REQ_POST, "/token"), 0);
    }
    /* Until the first group commit: its replies wait for their signatures. */
    do {
        event_base_loop(t->base, EVLOOP_ONCE);
        az_server_commit_stats(t->srv, &c1, &r1);
    } while (c1 == c0 && ++spins < 10000);
    assert_true(r1 > r0);
    az_server_free(t->srv);
    for (int i = 0; i < N; i++)
        evhttp_connection_free(con[i]);
    event_base_free(t->base);
    fx_rmrf(t->dir);
    free(t);
}

static void test_cookie_attributes(void **state)
{
    tsrv t;
    tresp r;
    const char *sc;
    (void)state;
    for (int https = 0; https < 2; https++) {
        tsrv_start_full(&t, 1, 0, 0, https ? "https://auth.example" : NULL);
        t_req(&t, "GET", "/login?next=apps", NULL, NULL, NULL, &r);
        sc = core_http_fetch_header(&r.r, "Set-Cookie");
        assert_non_null(sc);
        assert_non_null(strstr(sc, "; HttpOnly"));
        assert_non_null(strstr(sc, "; SameSite=Lax"));
        assert_non_null(strstr(sc, "; Path=/"));
        if (https)
            assert_non_null(strstr(sc, "; Secure"));
        else
            assert_null(strstr(sc, "Secure"));
        t_free(&r);
        if (https) {
            /* The issuer in metadata and in every redirect is the configured one. */
            t_req(&t, "GET", "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &r);
            assert_non_null(strstr(r.r.body.p, "\"issuer\":\"https://auth.example\""));
            assert_non_null(
                strstr(r.r.body.p, "\"token_endpoint\":\"https://auth.example/token\""));
            t_free(&r);
        }
        tsrv_stop(&t);
    }
}

/* A rotation by postly-keys (another key set handle) is picked up: the JWKS publishes the
 * new next key and new tokens are signed by the new active key. */
static void test_key_rotation_pickup(void **state)
{
    tsrv *t = *state;
    key_keyset *ks = NULL;
    key_keyset_cfg kc = {0};
    key_error ke;
    char active[KEY_KID_SIZE], code[64], hdr[256];
    int st;
    json_t *j;
    kc.data_dir = t->dir;
    kc.clock = &t->clock.base;
    assert_int_equal(key_keyset_open(&kc, &ks, &ke), PL_OK);
    assert_int_equal(key_keyset_rotate(ks, active, &ke), PL_OK);
    assert_int_equal(az_server_keys_reload(t->srv), PL_OK);
    t_get_code(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 200);
    {
        const char *at = json_string_value(json_object_get(j, "access_token"));
        const char *dot = strchr(at, '.');
        uint8_t raw[256];
        size_t n;
        json_t *h;
        assert_int_equal(core_b64url_decode(at, (size_t)(dot - at), raw, sizeof raw, &n), PL_OK);
        snprintf(hdr, sizeof hdr, "%.*s", (int)n, (const char *)raw);
        h = json_loads(hdr, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(h, "kid")), active);
        assert_string_equal(json_string_value(json_object_get(h, "typ")), "at+jwt");
        json_decref(h);
    }
    json_decref(j);
    key_keyset_free(ks);
}

/* Hostile bodies on every form endpoint: a clear 4xx, never a crash or a 5xx. */
static void test_hostile_forms(void **state)
{
    tsrv *t = *state;
    static const char *const paths[] = {"/token",   "/revoke",          "/introspect", "/login",
                                        "/consent", "/apps/disconnect", "/register"};
    char *big = malloc((size_t)70 * 1024);
    const char *bodies[5];
    memset(big, 'a', (size_t)70 * 1024 - 1);
    memcpy(big, "x=", 2);
    big[(size_t)70 * 1024 - 1] = '\0';
    bodies[0] = "client_id=%ff&token=x";
    bodies[1] = "client_id=cli-public&client_id=cli-public&token=x";
    bodies[2] = "client_id=a%zzb";
    bodies[3] = big;
    bodies[4] = "=&&&=&token";
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        for (size_t k = 0; k < 5; k++) {
            tresp r;
            if (k == 3) {
                /* Over the 64 KiB body limit: libevent answers 413 and closes; the client
                 * may see the close before the answer. Either way nothing was processed. */
                static const char *const ct[] = {"Content-Type",
                                                 "application/x-www-form-urlencoded", NULL};
                core_http_fetch_req rq = {.method = "POST",
                                          .host = "127.0.0.1",
                                          .port = az_server_port(t->srv),
                                          .target = paths[i],
                                          .headers = ct,
                                          .body = big,
                                          .body_len = strlen(big)};
                pl_rc rc = core_http_fetch(t->base, &rq, &r.r);
                assert_true(rc == PL_ERR_IO || r.r.status == 413);
                core_http_fetch_resp_free(&r.r);
                continue;
            }
            t_req(t, "POST", paths[i], bodies[k], NULL, NULL, &r);
            assert_true(r.r.status >= 400 && r.r.status < 500);
            t_free(&r);
        }
    /* Still serving. */
    {
        tresp r;
        t_req(t, "GET", "/jwks", NULL, NULL, NULL, &r);
        assert_int_equal(r.r.status, 200);
        t_free(&r);
    }
    free(big);
    /* Query strings too. */
    {
        static const char *const q[] = {"/consent?rid=%ff", "/login?rid=a&rid=b", "/apps?x=%zz"};
        for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
            tresp r;
            t_req(t, "GET", q[i], NULL, NULL, NULL, &r);
            assert_true(r.r.status == 400 || r.r.status == 302);
            t_free(&r);
        }
    }
}

/* Production durability: batch commits completed by the syncer thread before replying. */
static void test_durable_group_commit(void **state)
{
    tsrv t;
    char code[64], rt[64];
    int st;
    json_t *j;
    (void)state;
    tsrv_start_durable(&t, 1, 1);
    t_get_code(&t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=posts%3Aread", "acme",
               "posts:read", code);
    exchange(&t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 200);
    snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
    json_decref(j);
    for (int i = 0; i < 3; i++) {
        j = refresh(&t, "cli-public", rt, NULL, &st);
        assert_int_equal(st, 200);
        snprintf(rt, sizeof rt, "%s", json_string_value(json_object_get(j, "refresh_token")));
        json_decref(j);
    }
    /* Replay still revokes, through the same path. */
    exchange(&t, code, "cli-public", T_REDIRECT, T_VERIFIER, NULL, &st, &j);
    assert_int_equal(st, 400);
    json_decref(j);
    j = refresh(&t, "cli-public", rt, NULL, &st);
    assert_int_equal(st, 400);
    json_decref(j);
    tsrv_stop(&t);
}

static void test_static_and_404(void **state)
{
    tsrv *t = *state;
    tresp r;
    t_req(t, "GET", "/static/authz.css", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    assert_string_equal(core_http_fetch_header(&r.r, "Content-Type"), "text/css; charset=utf-8");
    t_free(&r);
    t_req(t, "GET", "/static/../authz/store.c", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 404);
    t_free(&r);
    t_req(t, "GET", "/token", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 405);
    t_free(&r);
    t_req(t, "GET", "/", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 302);
    assert_string_equal(core_http_fetch_header(&r.r, "Location"), "/apps");
    t_free(&r);
    t_req(t, "GET", "/apps", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 302);
    assert_string_equal(core_http_fetch_header(&r.r, "Location"), "/login?next=apps");
    t_free(&r);
}

int main(void)
{
    /* A server may close a connection while a test still writes an oversized body. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorize_error_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorize_redirect_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorize_loopback_any_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consent_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_negatives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_error_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csrf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_throttle_and_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_introspect_apps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_and_404, setup, teardown),
        cmocka_unit_test(test_durable_group_commit),
        cmocka_unit_test_setup_teardown(test_hostile_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation_pickup, setup, teardown),
        cmocka_unit_test(test_cookie_attributes),
        cmocka_unit_test(test_group_commit_concurrency),
        cmocka_unit_test(test_stop_with_signatures_in_flight),
        cmocka_unit_test_setup_teardown(test_disabled_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remembered_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remembered_consent_planted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_forgets_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_access_token, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
