/* tests/authz/test_consent.c — the consent page over loopback: step-up preselection
 * (what is requested ∩ grantable, never a remembered earlier choice), remembered consent
 * skipping the page only when it covers the whole request and granting only what was asked,
 * and private-use scheme redirects (RFC 8252 §7.1): public clients only, flagged as a
 * native app on the page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/http_client.h"
#include "flow.h"

#define Q_RES "&resource=https%3A%2F%2Fmcp.example%2Fmcp"

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

static int is_checked(const tresp *page, const char *scope)
{
    char needle[128];
    snprintf(needle, sizeof needle, "value=\"%s\" checked", scope);
    return page->r.body.p && strstr(page->r.body.p, needle) != NULL;
}

/* Approves `scopes` (already form-encoded "&scope=a&scope=b") in acme on the page of rid. */
static void approve(tsrv *t, const char *cookie, const char *rid, const tresp *page,
                    const char *scopes)
{
    char csrf[64], body[1024];
    tresp r;
    t_html_input(page, "csrf", csrf, sizeof csrf);
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=approve%s", csrf, rid, scopes);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 303);
    t_free(&r);
}

/* A new /authorize for cli-public in the same browser session (same-site), then its consent
 * step; the consent answer is left in page. */
static void reauthorize(tsrv *t, const char *cookie, const char *scope_q, tresp *page)
{
    static const char *const same[] = {"Sec-Fetch-Site", "same-origin", NULL};
    char target[1024], loc[512];
    tresp r;
    snprintf(target, sizeof target,
             "/authorize?response_type=code&client_id=cli-public&redirect_uri=https%%3A%%2F%%2Fapp."
             "example%%2Fcb&state=s2&code_challenge=%s&code_challenge_method=S256%s%s",
             t_challenge(), Q_RES, scope_q);
    t_req(t, "GET", target, NULL, cookie, same, &r);
    assert_int_equal(r.r.status, 302);
    snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
    assert_int_equal(strncmp(loc, "/consent?rid=", 13), 0);
    t_free(&r);
    t_req(t, "GET", loc, NULL, cookie, same, page);
}

static void rid_of(const tresp *page, char rid[64])
{
    t_html_input(page, "rid", rid, 64);
    assert_int_equal(strlen(rid), 43);
}

static char *token_scope(tsrv *t, const char *code)
{
    char body[1024];
    int st;
    json_t *tok;
    char *scope;
    snprintf(body, sizeof body,
             "grant_type=authorization_code&client_id=cli-public&code=%s&redirect_uri=%s"
             "&code_verifier=%s&resource=https%%3A%%2F%%2Fmcp.example%%2Fmcp",
             code, "https%3A%2F%2Fapp.example%2Fcb", T_VERIFIER);
    tok = t_token(t, body, NULL, &st);
    assert_int_equal(st, 200);
    scope = strdup(json_string_value(json_object_get(tok, "scope")));
    json_decref(tok);
    return scope;
}

static void test_stepup_preselects_requested(void **state)
{
    tsrv *t = *state;
    char cookie[128], rid[64], code[64];
    char *scope;
    tresp page;
    /* First authorization: the client asks for two scopes, the user keeps one. */
    t_login_to_consent(t, "cli-public", T_REDIRECT, Q_RES "&scope=analytics%3Aread+posts%3Aread",
                       cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    approve(t, cookie, rid, &page, "&scope=analytics%3Aread");
    t_free(&page);

    /* Step-up: the client asks for the remembered scope plus a new one. The remembered choice
     * does not cover it, so the page is shown, with everything requested ticked. */
    reauthorize(t, cookie, "&scope=analytics%3Aread+posts%3Acreate", &page);
    assert_int_equal(page.r.status, 200);
    assert_true(is_checked(&page, "analytics:read"));
    assert_true(is_checked(&page, "posts:create"));
    assert_false(is_checked(&page, "posts:read")); /* not requested this time */
    rid_of(&page, rid);
    approve(t, cookie, rid, &page, "&scope=analytics%3Aread&scope=posts%3Acreate");
    t_free(&page);

    /* A narrower request covered by the remembered choice skips the page (same-site) and
     * grants what was asked, not everything remembered. */
    reauthorize(t, cookie, "&scope=analytics%3Aread", &page);
    assert_int_equal(page.r.status, 302);
    t_loc_param(&page, "code", code, sizeof code);
    assert_int_equal(strlen(code), 43);
    t_free(&page);
    scope = token_scope(t, code);
    assert_string_equal(scope, "analytics:read");
    free(scope);

    /* A request wider than the remembered choice shows the page again. */
    reauthorize(t, cookie, "&scope=analytics%3Aread+posts%3Acreate+posts%3Aread", &page);
    assert_int_equal(page.r.status, 200);
    assert_true(is_checked(&page, "posts:read"));
    assert_true(is_checked(&page, "posts:create"));
    t_free(&page);
}

static void post_json(tsrv *t, const char *body, tresp *r)
{
    static const char *const ct[] = {"Content-Type", "application/json", NULL};
    core_http_fetch_req rq = {0};
    memset(r, 0, sizeof *r);
    rq.method = "POST";
    rq.host = "127.0.0.1";
    rq.port = az_server_port(t->srv);
    rq.target = "/register";
    rq.headers = ct;
    rq.body = body;
    rq.body_len = strlen(body);
    assert_int_equal(core_http_fetch(t->base, &rq, &r->r), PL_OK);
}

static void test_private_scheme_redirect(void **state)
{
    tsrv *t = *state;
    char cookie[128], rid[64], id[128], code[64], csrf[64], body[512];
    tresp r, page;
    json_t *j;
    /* A confidential client may not use a private-use scheme (RFC 8252 §8.4). */
    post_json(t, "{\"redirect_uris\":[\"com.example.editor:/callback\"]}", &r);
    assert_int_equal(r.r.status, 400);
    assert_non_null(strstr(r.r.body.p, "public native clients"));
    t_free(&r);
    post_json(t,
              "{\"redirect_uris\":[\"javascript:alert(1)\"],\"token_endpoint_auth_method\":"
              "\"none\"}",
              &r);
    assert_int_equal(r.r.status, 400);
    assert_non_null(strstr(r.r.body.p, "invalid_redirect_uri"));
    t_free(&r);
    post_json(t,
              "{\"redirect_uris\":[\"com.example.editor:/callback\"],\"client_name\":\"Editor\","
              "\"token_endpoint_auth_method\":\"none\"}",
              &r);
    assert_int_equal(r.r.status, 201);
    j = json_loads(r.r.body.p, 0, NULL);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "client_id")));
    json_decref(j);
    t_free(&r);
    t_login_to_consent(t, id, "com.example.editor:/callback", Q_RES "&scope=analytics%3Aread",
                       cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    assert_non_null(strstr(page.r.body.p, "native app on this computer"));
    assert_non_null(strstr(page.r.body.p, "com.example.editor:"));
    t_html_input(&page, "csrf", csrf, sizeof csrf);
    t_free(&page);
    snprintf(body, sizeof body, "csrf=%s&rid=%s&ws=acme&action=approve&scope=analytics%%3Aread",
             csrf, rid);
    t_req(t, "POST", "/consent", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 303);
    assert_int_equal(
        strncmp(core_http_fetch_header(&r.r, "Location"), "com.example.editor:/callback?", 29), 0);
    t_loc_param(&r, "code", code, sizeof code);
    assert_int_equal(strlen(code), 43);
    t_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stepup_preselects_requested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_scheme_redirect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
