#include "flow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/store.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/form.h"
#include "fixture.h"

void tsrv_start(tsrv *t, int policy)
{
    tsrv_start_durable(t, policy, 0);
}

void tsrv_start_durable(tsrv *t, int policy, int durable)
{
    tsrv_start_opts(t, policy, durable, 0);
}

void tsrv_start_opts(tsrv *t, int policy, int durable, int cimd_loopback)
{
    tsrv_start_full(t, policy, durable, cimd_loopback, NULL);
}

void tsrv_start_full(tsrv *t, int policy, int durable, int cimd_loopback, const char *issuer)
{
    az_config cfg = {0};
    az_store *st;
    az_client c;
    memset(t, 0, sizeof *t);
    assert_int_equal(fx_tmpdir(t->dir), 0);
    core_fake_clock_init(&t->clock, 1800000000000LL);
    t->log.level = getenv("POSTLY_TEST_LOG") ? CORE_LOG_DEBUG : CORE_LOG_OFF;
    t->base = event_base_new();
    cfg.data_dir = t->dir;
    cfg.host = "127.0.0.1";
    cfg.resources[0] = T_RESOURCE;
    cfg.resources[1] = T_RESOURCE2;
    cfg.nresources = 2;
    cfg.web_dir = POSTLY_SOURCE_DIR "/web";
    cfg.policy_path = policy ? POSTLY_SOURCE_DIR "/policy/default.policy" : NULL;
    cfg.nosync = !durable;
    /* The same tests run a second time with the access tokens signed on the loop thread
     * (CTest authz_test_endpoints_sign_on_loop); by default they go to the signer thread. */
    cfg.sign_on_loop = getenv("POSTLY_TEST_SIGN_ON_LOOP") != NULL;
    cfg.cimd_allow_loopback = cimd_loopback;
    cfg.issuer = issuer;
    cfg.scrypt_n = 1024;
    cfg.clock = &t->clock.base;
    cfg.log = &t->log;
    cfg.dcr.per_source = 5;
    assert_int_equal(az_server_new(t->base, &cfg, &t->srv), PL_OK);
    st = az_server_store(t->srv);
    assert_int_equal(az_user_add(st, "alice", "alice password", t->uid_alice), PL_OK);
    assert_int_equal(az_ws_add(st, "acme", "Acme <Inc>", "pro"), PL_OK);
    assert_int_equal(az_ws_add(st, "beta", "Beta", "free"), PL_OK);
    assert_int_equal(az_member_set(st, t->uid_alice, "acme", "owner"), PL_OK);
    assert_int_equal(az_member_set(st, t->uid_alice, "beta", "viewer"), PL_OK);

    memset(&c, 0, sizeof c);
    snprintf(c.id, sizeof c.id, "%s", "cli-public");
    snprintf(c.name, sizeof c.name, "%s", "Public CLI");
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "%s", T_REDIRECT);
    snprintf(c.redirect_uris[1], sizeof c.redirect_uris[1], "%s", "http://127.0.0.1/callback");
    c.nredirect = 2;
    c.kind = AZ_CLIENT_PRE;
    c.auth = AZ_AUTH_NONE;
    snprintf(c.cls, sizeof c.cls, "%s", "preregistered");
    assert_int_equal(az_client_put(st, &c), PL_OK);

    snprintf(c.id, sizeof c.id, "%s", "cli-conf");
    snprintf(c.name, sizeof c.name, "%s", "Confidential App");
    c.auth = AZ_AUTH_BASIC;
    core_sha256(T_CONF_SECRET, strlen(T_CONF_SECRET), c.secret_hash);
    assert_int_equal(az_client_put(st, &c), PL_OK);

    snprintf(c.id, sizeof c.id, "%s", "rs");
    snprintf(c.name, sizeof c.name, "%s", "Resource server");
    c.auth = AZ_AUTH_POST;
    c.introspect = 1;
    assert_int_equal(az_client_put(st, &c), PL_OK);
}

void tsrv_stop(tsrv *t)
{
    az_server_free(t->srv);
    event_base_free(t->base);
    fx_rmrf(t->dir);
}

void t_req(tsrv *t, const char *method, const char *target, const char *body, const char *cookie,
           const char *const *extra, tresp *out)
{
    const char *h[24];
    size_t n = 0;
    core_http_fetch_req rq = {0};
    const char *sc;
    memset(out, 0, sizeof *out);
    if (body) {
        h[n++] = "Content-Type";
        h[n++] = "application/x-www-form-urlencoded";
    }
    if (cookie && *cookie) {
        h[n++] = "Cookie";
        h[n++] = cookie;
    }
    for (; extra && extra[0] && n < 20; extra += 2) {
        h[n++] = extra[0];
        h[n++] = extra[1];
    }
    h[n] = NULL;
    rq.method = method;
    rq.host = "127.0.0.1";
    rq.port = az_server_port(t->srv);
    rq.target = target;
    rq.headers = h;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    assert_int_equal(core_http_fetch(t->base, &rq, &out->r), PL_OK);
    sc = core_http_fetch_header(&out->r, "Set-Cookie");
    if (sc && strncmp(sc, "postly_session=", 15) == 0) {
        const char *semi = strchr(sc, ';');
        snprintf(out->cookie, sizeof out->cookie, "%.*s",
                 (int)(semi ? semi - sc : (long)strlen(sc)), sc);
    }
}

void t_free(tresp *r)
{
    core_http_fetch_resp_free(&r->r);
}

void t_loc_param(const tresp *r, const char *name, char *out, size_t outsz)
{
    const char *loc = core_http_fetch_header(&r->r, "Location"), *q;
    core_form f;
    out[0] = '\0';
    if (!loc || !(q = strchr(loc, '?')))
        return;
    q++;
    if (core_form_parse(q, strlen(q), NULL, &f, NULL) == PL_OK && core_form_get(&f, name))
        snprintf(out, outsz, "%s", core_form_get(&f, name));
    core_form_free(&f);
}

void t_html_input(const tresp *r, const char *name, char *out, size_t outsz)
{
    char pat[96];
    const char *p, *e;
    out[0] = '\0';
    snprintf(pat, sizeof pat, "name=\"%s\" value=\"", name);
    p = r->r.body.p ? strstr(r->r.body.p, pat) : NULL;
    if (!p)
        return;
    p += strlen(pat);
    e = strchr(p, '"');
    if (e)
        snprintf(out, outsz, "%.*s", (int)(e - p), p);
}

const char *t_challenge(void)
{
    static char c[64];
    uint8_t h[32];
    core_sha256(T_VERIFIER, strlen(T_VERIFIER), h);
    core_b64url_encode(h, sizeof h, c, sizeof c, NULL);
    return c;
}

void t_login_to_consent(tsrv *t, const char *client_id, const char *redirect,
                        const char *extra_query, char cookie[128], char rid[64], tresp *page)
{
    char target[2048], body[512], csrf[64], loc[512];
    core_buf enc;
    tresp r;
    core_buf_init(&enc, 1024);
    core_buf_add_urlenc(&enc, redirect, strlen(redirect));
    snprintf(target, sizeof target,
             "/authorize?response_type=code&client_id=%s&redirect_uri=%s&state=xyz%%3C1%%3E"
             "&code_challenge=%s&code_challenge_method=S256%s",
             client_id, enc.p, t_challenge(), extra_query ? extra_query : "");
    core_buf_free(&enc);
    t_req(t, "GET", target, NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 302);
    snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
    assert_int_equal(strncmp(loc, "/login?rid=", 11), 0);
    assert_int_equal(strlen(loc + 11), 43);
    memcpy(rid, loc + 11, 44);
    t_free(&r);
    t_req(t, "GET", loc, NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    assert_true(r.cookie[0]);
    snprintf(cookie, 128, "%s", r.cookie);
    t_html_input(&r, "csrf", csrf, sizeof csrf);
    assert_int_equal(strlen(csrf), 43);
    t_free(&r);
    snprintf(body, sizeof body, "csrf=%s&rid=%s&next=&username=alice&password=alice+password", csrf,
             rid);
    t_req(t, "POST", "/login", body, cookie, NULL, &r);
    assert_int_equal(r.r.status, 303);
    assert_true(r.cookie[0]);
    assert_string_not_equal(r.cookie, cookie); /* a new session id at login */
    snprintf(cookie, 128, "%s", r.cookie);
    snprintf(loc, sizeof loc, "%s", core_http_fetch_header(&r.r, "Location"));
    t_free(&r);
    t_req(t, "GET", loc, NULL, cookie, NULL, page);
}

void t_get_code(tsrv *t, const char *scope_query, const char *ws, const char *scopes, char code[64])
{
    char cookie[128];
    t_approve(t, scope_query, ws, scopes, code, cookie);
}

void t_approve(tsrv *t, const char *scope_query, const char *ws, const char *scopes, char code[64],
               char cookie[128])
{
    char rid[64], csrf[64];
    core_buf body;
    tresp page, r;
    t_login_to_consent(t, "cli-public", T_REDIRECT, scope_query, cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    t_html_input(&page, "csrf", csrf, sizeof csrf);
    t_free(&page);
    core_buf_init(&body, 8192);
    core_buf_addf(&body, "csrf=%s&rid=%s&ws=%s&action=approve", csrf, rid, ws);
    for (const char *p = scopes; *p;) {
        size_t n = strcspn(p, " ");
        if (n) {
            core_buf_adds(&body, "&scope=");
            core_buf_add_urlenc(&body, p, n);
        }
        p += n;
        p += *p == ' ';
    }
    t_req(t, "POST", "/consent", body.p, cookie, NULL, &r);
    core_buf_free(&body);
    assert_int_equal(r.r.status, 303);
    t_loc_param(&r, "code", code, 64);
    assert_int_equal(strlen(code), 43);
    t_free(&r);
}

json_t *t_token(tsrv *t, const char *body, const char *const *auth, int *status)
{
    tresp r;
    json_t *j;
    t_req(t, "POST", "/token", body, NULL, auth, &r);
    *status = r.r.status;
    assert_string_equal(core_http_fetch_header(&r.r, "Cache-Control"), "no-store");
    j = json_loads(r.r.body.p ? r.r.body.p : "", 0, NULL);
    assert_non_null(j);
    t_free(&r);
    return j;
}

json_t *t_jwt_payload(const char *jwt)
{
    const char *a = strchr(jwt, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    uint8_t buf[4096];
    size_t n;
    assert_non_null(b);
    assert_int_equal(core_b64url_decode(a + 1, (size_t)(b - a - 1), buf, sizeof buf, &n), PL_OK);
    return json_loadb((const char *)buf, n, 0, NULL);
}
