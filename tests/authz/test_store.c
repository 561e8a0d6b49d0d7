/* tests/authz/test_store.c — the authz LMDB store (real LMDB in a mkdtemp directory, fake
 * clock) and the read-only directory seen from another process. */
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

#include "authz/directory.h"
#include "authz/store.h"
#include "core/crypto.h"
#include "fixture.h"

typedef struct fx {
    char dir[256];
    core_fake_clock clock;
    az_store *st;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    az_store_cfg cfg = {0};
    assert_int_equal(fx_tmpdir(f->dir), 0);
    core_fake_clock_init(&f->clock, 1800000000000LL);
    cfg.data_dir = f->dir;
    cfg.clock = &f->clock.base;
    cfg.nosync = 1;
    cfg.scrypt_n = 1024;
    assert_int_equal(az_store_open(&cfg, &f->st), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    az_store_free(f->st);
    fx_rmrf(f->dir);
    free(f);
    return 0;
}

static void test_users_and_login(void **state)
{
    fx *f = *state;
    char uid[AZ_ID_MAX + 1], got[AZ_ID_MAX + 1];
    az_user u;
    assert_int_equal(az_user_add(f->st, "alice", "correct horse", uid), PL_OK);
    assert_true(az_id_valid(uid));
    assert_int_equal(az_user_add(f->st, "alice", "another one", NULL), PL_ERR_EXISTS);
    assert_int_equal(az_user_add(f->st, "bad name", "correct horse", NULL), PL_ERR_INVALID);
    assert_int_equal(az_user_add(f->st, "bob", "short", NULL), PL_ERR_INVALID);
    assert_int_equal(az_user_find(f->st, "alice", &u), PL_OK);
    assert_string_equal(u.id, uid);
    assert_int_equal(az_user_login(f->st, "alice", "correct horse", "10.0.0.1", got), PL_OK);
    assert_string_equal(got, uid);
    assert_int_equal(az_user_login(f->st, "alice", "wrong", "10.0.0.1", got), PL_ERR_DENIED);
    assert_int_equal(az_user_login(f->st, "nobody", "whatever1", "10.0.0.1", got), PL_ERR_DENIED);
    assert_int_equal(az_user_passwd(f->st, "alice", "new password"), PL_OK);
    assert_int_equal(az_user_login(f->st, "alice", "correct horse", "10.0.0.2", got),
                     PL_ERR_DENIED);
    assert_int_equal(az_user_login(f->st, "alice", "new password", "10.0.0.2", got), PL_OK);
    assert_int_equal(az_user_disable(f->st, "alice", 1), PL_OK);
    assert_int_equal(az_user_login(f->st, "alice", "new password", "10.0.0.3", got), PL_ERR_DENIED);
    assert_int_equal(az_user_disable(f->st, "alice", 0), PL_OK);
    assert_int_equal(az_user_login(f->st, "alice", "new password", "10.0.0.3", got), PL_OK);
}

static void test_login_throttle(void **state)
{
    fx *f = *state;
    char got[AZ_ID_MAX + 1];
    assert_int_equal(az_user_add(f->st, "carol", "carols password", NULL), PL_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(az_user_login(f->st, "carol", "nope nope", "10.1.0.1", got),
                         PL_ERR_DENIED);
    /* Locked: even the right password is refused, from any address. */
    assert_int_equal(az_user_login(f->st, "carol", "carols password", "10.1.0.9", got),
                     PL_ERR_LIMIT);
    core_fake_clock_advance(&f->clock, 15 * 60 * 1000 + 1);
    assert_int_equal(az_user_login(f->st, "carol", "carols password", "10.1.0.9", got), PL_OK);
    /* Per address: 20 failures over many accounts lock the address. */
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "ghost%d", i);
        assert_int_equal(az_user_login(f->st, name, "nope nope", "10.2.0.1", got), PL_ERR_DENIED);
    }
    assert_int_equal(az_user_login(f->st, "carol", "carols password", "10.2.0.1", got),
                     PL_ERR_LIMIT);
    assert_int_equal(az_user_login(f->st, "carol", "carols password", "10.2.0.2", got), PL_OK);
}

static void test_workspaces(void **state)
{
    fx *f = *state;
    char uid[AZ_ID_MAX + 1], role[16];
    az_dir_membership m[4];
    size_t n;
    assert_int_equal(az_user_add(f->st, "dave", "daves password", uid), PL_OK);
    assert_int_equal(az_ws_add(f->st, "acme", "Acme Inc.", "pro"), PL_OK);
    assert_int_equal(az_ws_add(f->st, "acme", "Again", "pro"), PL_ERR_EXISTS);
    assert_int_equal(az_ws_add(f->st, "bad id!", "x", "pro"), PL_ERR_INVALID);
    assert_int_equal(az_ws_add(f->st, "beta", "Beta", "free"), PL_OK);
    assert_int_equal(az_member_set(f->st, uid, "acme", "editor"), PL_OK);
    assert_int_equal(az_member_set(f->st, uid, "beta", "viewer"), PL_OK);
    assert_int_equal(az_member_set(f->st, uid, "beta", "root"), PL_ERR_INVALID);
    assert_int_equal(az_member_set(f->st, uid, "nope", "viewer"), PL_ERR_NOT_FOUND);
    assert_int_equal(az_member_role(f->st, uid, "acme", role), PL_OK);
    assert_string_equal(role, "editor");
    assert_int_equal(az_user_workspaces(f->st, uid, m, 4, &n), PL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].ws.id, "acme");
    assert_string_equal(m[0].ws.name, "Acme Inc.");
    assert_string_equal(m[1].role, "viewer");
    assert_int_equal(az_user_workspaces(f->st, uid, m, 1, &n), PL_ERR_TOO_LARGE);
    assert_int_equal(az_ws_set_plan(f->st, "beta", "team"), PL_OK);
}

static void make_code(fx *f, az_code *c, char code[AZ_SECRET_SIZE], const char *verifier)
{
    uint8_t h[CORE_SHA256_LEN];
    memset(c, 0, sizeof *c);
    snprintf(c->client_id, sizeof c->client_id, "%s", "client-1");
    snprintf(c->redirect_uri, sizeof c->redirect_uri, "%s", "https://app.example/cb");
    core_sha256(verifier, strlen(verifier), h);
    core_b64url_encode(h, sizeof h, c->challenge, sizeof c->challenge, NULL);
    snprintf(c->resource, sizeof c->resource, "%s", "https://mcp.example/mcp");
    snprintf(c->ws, sizeof c->ws, "%s", "acme");
    snprintf(c->uid, sizeof c->uid, "%s", "u_test");
    snprintf(c->cls, sizeof c->cls, "%s", "preregistered");
    c->scope = 3;
    assert_int_equal(az_code_issue(f->st, c, code), PL_OK);
}

#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

static void test_code_rules(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g;
    char code[AZ_SECRET_SIZE], rt[AZ_SECRET_SIZE];
    const char *why;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, "https://mcp.example/mcp"};
    az_redeem bad;

    make_code(f, &c, code, VERIFIER);
    bad = in;
    bad.client_id = "client-2";
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    assert_string_equal(why, "authorization code was issued to another client");
    bad = in;
    bad.redirect_uri = "https://app.example/cb2";
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    bad = in;
    bad.redirect_uri = NULL;
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    bad = in;
    bad.verifier = NULL;
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    assert_string_equal(why, "code_verifier is required (PKCE)");
    bad = in;
    bad.verifier = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    assert_string_equal(why, "code_verifier does not match the code_challenge");
    bad = in;
    bad.resource = "https://evil.example/mcp";
    assert_int_equal(az_code_redeem(f->st, code, &bad, &g, rt, &why), PL_ERR_DENIED);
    /* The failed attempts did not burn the code. */
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, &why), PL_OK);
    assert_null(why);
    assert_true(az_id_valid(g.gid));
    assert_string_equal(g.ws, "acme");
    assert_int_equal(g.scope, 3);
    assert_int_equal(strlen(rt), 43);
    /* Replay revokes the grant. */
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, &why), PL_ERR_CONFLICT);
    {
        az_grant g2;
        assert_int_equal(az_grant_get(f->st, g.gid, &g2), PL_OK);
        assert_int_not_equal(g2.revoked_ms, 0);
    }
    assert_int_equal(az_code_redeem(f->st, "nonsense", &in, &g, rt, &why), PL_ERR_NOT_FOUND);
    /* Expiry. */
    make_code(f, &c, code, VERIFIER);
    core_fake_clock_advance(&f->clock, AZ_CODE_TTL_MS + 1);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, &why), PL_ERR_EXPIRED);
}

static void test_refresh_rotation(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g, g2;
    char code[AZ_SECRET_SIZE], rt1[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE], rt3[AZ_SECRET_SIZE],
        rt4[AZ_SECRET_SIZE];
    const char *why;
    int cur;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};

    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt1, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-2", NULL, &g2, rt2, &why),
                     PL_ERR_DENIED);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", "https://other/", &g2, rt2, &why),
                     PL_ERR_DENIED);
    assert_int_equal(
        az_refresh_rotate(f->st, rt1, "client-1", "https://mcp.example/mcp", &g2, rt2, &why),
        PL_OK);
    assert_string_equal(g2.gid, g.gid);
    assert_string_not_equal(rt1, rt2);
    assert_int_equal(az_refresh_grant(f->st, rt1, &g2, &cur), PL_OK);
    assert_false(cur);
    /* One retry of the just-rotated token within the grace period is a lost response. */
    core_fake_clock_advance(&f->clock, 1000);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g2, rt3, &why), PL_OK);
    /* rt2 was superseded by the retry: using it now is reuse. A second retry of rt1 too. */
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g2, rt4, &why),
                     PL_ERR_CONFLICT);
    assert_string_equal(why, "refresh token reuse detected; the grant is revoked");
    /* The family is dead: even the newest token is refused. */
    assert_int_equal(az_refresh_rotate(f->st, rt3, "client-1", NULL, &g2, rt4, &why),
                     PL_ERR_DENIED);
    assert_int_equal(az_grant_get(f->st, g.gid, &g2), PL_OK);
    assert_int_not_equal(g2.revoked_ms, 0);
}

/* After a grace retry, the token the first rotation issued (never delivered) is reuse. */
static void test_refresh_superseded_is_reuse(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g;
    char code[AZ_SECRET_SIZE], rt1[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE], rt3[AZ_SECRET_SIZE],
        rt4[AZ_SECRET_SIZE], rt5[AZ_SECRET_SIZE];
    const char *why;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt1, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt2, &why), PL_OK);
    core_fake_clock_advance(&f->clock, 2000);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt3, &why), PL_OK);
    /* rt3 works and its own retry is allowed once, within the grace period. */
    assert_int_equal(az_refresh_rotate(f->st, rt3, "client-1", NULL, &g, rt4, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt3, "client-1", NULL, &g, rt5, &why), PL_OK);
    /* rt2 and rt4 were superseded by retries: presenting either is reuse. */
    assert_int_equal(az_refresh_rotate(f->st, rt4, "client-1", NULL, &g, rt2, &why),
                     PL_ERR_CONFLICT);
    assert_int_equal(az_refresh_rotate(f->st, rt5, "client-1", NULL, &g, rt2, &why), PL_ERR_DENIED);
}

static void test_refresh_superseded_first(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g;
    char code[AZ_SECRET_SIZE], rt1[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE], rt3[AZ_SECRET_SIZE],
        rt4[AZ_SECRET_SIZE];
    const char *why;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt1, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt2, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt3, &why), PL_OK);
    /* rt2 is one generation behind the current one but was never presented: reuse. */
    assert_int_equal(az_refresh_rotate(f->st, rt2, "client-1", NULL, &g, rt4, &why),
                     PL_ERR_CONFLICT);
    assert_int_equal(az_refresh_rotate(f->st, rt3, "client-1", NULL, &g, rt4, &why), PL_ERR_DENIED);
}

static void test_refresh_grace_expires(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g;
    char code[AZ_SECRET_SIZE], rt1[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE], rt3[AZ_SECRET_SIZE];
    const char *why;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt1, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt2, &why), PL_OK);
    core_fake_clock_advance(&f->clock, 11000);
    assert_int_equal(az_refresh_rotate(f->st, rt1, "client-1", NULL, &g, rt3, &why),
                     PL_ERR_CONFLICT);
    assert_int_equal(az_refresh_rotate(f->st, rt2, "client-1", NULL, &g, rt3, &why), PL_ERR_DENIED);
}

static void test_sessions_pending_consent(void **state)
{
    fx *f = *state;
    char sid[AZ_SECRET_SIZE], ws[AZ_ID_MAX + 1];
    az_session s, s2;
    az_pending p = {0}, p2;
    uint64_t scope;
    assert_int_equal(az_session_new(f->st, "u_x", sid, &s), PL_OK);
    assert_int_equal(az_session_get(f->st, sid, &s2), PL_OK);
    assert_string_equal(s2.uid, "u_x");
    assert_memory_equal(s.csrf_key, s2.csrf_key, 32);
    assert_int_equal(az_session_get(f->st, "x", &s2), PL_ERR_NOT_FOUND);
    core_fake_clock_advance(&f->clock, 13LL * 3600 * 1000);
    assert_int_equal(az_session_get(f->st, sid, &s2), PL_ERR_NOT_FOUND);
    snprintf(p.client_id, sizeof p.client_id, "%s", "c");
    snprintf(p.state, sizeof p.state, "%s", "st<>");
    p.scope = 5;
    assert_int_equal(az_pending_put(f->st, &p), PL_OK);
    assert_int_equal(az_pending_get(f->st, p.rid, &p2), PL_OK);
    assert_string_equal(p2.state, "st<>");
    assert_int_equal(p2.scope, 5);
    core_fake_clock_advance(&f->clock, (int64_t)16 * 60 * 1000);
    assert_int_equal(az_pending_get(f->st, p.rid, &p2), PL_ERR_EXPIRED);
    assert_int_equal(az_store_sweep(f->st), PL_OK);
    assert_int_equal(az_pending_get(f->st, p.rid, &p2), PL_ERR_NOT_FOUND);
    assert_int_equal(az_consent_put(f->st, "u_x", "c", "acme", 7), PL_OK);
    assert_int_equal(az_consent_get(f->st, "u_x", "c", ws, &scope), PL_OK);
    assert_string_equal(ws, "acme");
    assert_int_equal(scope, 7);
    assert_int_equal(az_consent_get(f->st, "u_x", "d", ws, &scope), PL_ERR_NOT_FOUND);
}

static void test_dcr_limits(void **state)
{
    fx *f = *state;
    az_dcr_limits lim = {.per_source = 2, .total = 3, .window_ms = 3600000, .max_clients = 100};
    az_client c, c2;
    uint8_t fp[32];
    int reused;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", "App");
    snprintf(c.source, sizeof c.source, "%s", "10.0.0.1");
    c.nredirect = 1;
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "%s", "https://app.example/cb");
    memset(fp, 1, sizeof fp);
    assert_int_equal(az_client_register(f->st, &c, fp, &lim, &reused), PL_OK);
    assert_false(reused);
    c2 = c;
    c2.id[0] = '\0';
    /* Identical registration: same client back, no new row, no count. */
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_OK);
    assert_true(reused);
    assert_string_equal(c2.id, c.id);
    fp[0] = 2;
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_OK);
    fp[0] = 3;
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_ERR_LIMIT);
    snprintf(c2.source, sizeof c2.source, "%s", "10.0.0.2");
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_OK);
    fp[0] = 4;
    snprintf(c2.source, sizeof c2.source, "%s", "10.0.0.3");
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_ERR_LIMIT);
    assert_int_equal(az_client_get(f->st, c.id, &c2), PL_OK);
    assert_string_equal(c2.redirect_uris[0], "https://app.example/cb");
    assert_int_equal(c2.nredirect, 1);
}

/* A confidential registration is never reused: an identical one from the same source makes
 * a new client (the first keeps its secret) and counts against the per-source limit. */
static void test_dcr_confidential_not_reused(void **state)
{
    fx *f = *state;
    az_dcr_limits lim = {.per_source = 2, .total = 10, .window_ms = 3600000, .max_clients = 100};
    az_client c, c2, got;
    uint8_t fp[32];
    int reused = 1;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", "Web");
    snprintf(c.source, sizeof c.source, "%s", "10.0.0.9");
    c.nredirect = 1;
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "%s", "https://web.example/cb");
    c.auth = AZ_AUTH_BASIC;
    memset(c.secret_hash, 0xa1, sizeof c.secret_hash);
    memset(fp, 5, sizeof fp);
    assert_int_equal(az_client_register(f->st, &c, fp, &lim, &reused), PL_OK);
    assert_false(reused);
    c2 = c;
    c2.id[0] = '\0';
    memset(c2.secret_hash, 0xb2, sizeof c2.secret_hash);
    reused = 1;
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_OK);
    assert_false(reused);
    assert_string_not_equal(c2.id, c.id);
    assert_int_equal(az_client_get(f->st, c.id, &got), PL_OK);
    assert_memory_equal(got.secret_hash, c.secret_hash, sizeof got.secret_hash);
    assert_int_equal(az_client_get(f->st, c2.id, &got), PL_OK);
    assert_memory_equal(got.secret_hash, c2.secret_hash, sizeof got.secret_hash);
    /* A third identical one is over the per-source limit of 2. */
    c2.id[0] = '\0';
    memset(c2.secret_hash, 0xc3, sizeof c2.secret_hash);
    assert_int_equal(az_client_register(f->st, &c2, fp, &lim, &reused), PL_ERR_LIMIT);
}

/* Disabling a user ends every grant, however many (the index is walked in pages). */
static void test_disable_revokes_all(void **state)
{
    fx *f = *state;
    char uid[AZ_ID_MAX + 1], code[AZ_SECRET_SIZE], rt[AZ_SECRET_SIZE];
    az_grant g, first;
    az_code c;
    size_t n;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    az_grant *list = calloc(400, sizeof *list);
    assert_int_equal(az_user_add(f->st, "many", "many password", uid), PL_OK);
    for (int i = 0; i < 300; i++) {
        make_code(f, &c, code, VERIFIER);
        /* make_code binds to u_test; rebind to this user. */
        snprintf(c.uid, sizeof c.uid, "%s", uid);
        assert_int_equal(az_code_issue(f->st, &c, code), PL_OK);
        assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, NULL), PL_OK);
        if (i == 0)
            first = g;
    }
    assert_int_equal(az_grant_list(f->st, uid, list, 400, &n), PL_OK);
    assert_int_equal(n, 300);
    assert_int_equal(az_user_disable(f->st, "many", 1), PL_OK);
    assert_int_equal(az_grant_list(f->st, uid, list, 400, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(az_grant_get(f->st, first.gid, &g), PL_OK);
    assert_int_not_equal(g.revoked_ms, 0);
    free(list);
}

/* Refresh tokens have a life; the sweep removes what can no longer be used, so the store
 * does not grow without bound. */
static void test_refresh_ttl_and_sweep(void **state)
{
    fx *f = *state;
    az_code c;
    az_grant g, g2;
    char code[AZ_SECRET_SIZE], rt[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE];
    const char *why;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, &why), PL_OK);
    core_fake_clock_advance(&f->clock, (int64_t)31 * 24 * 3600 * 1000);
    assert_int_equal(az_refresh_rotate(f->st, rt, "client-1", NULL, &g2, rt2, &why),
                     PL_ERR_EXPIRED);
    assert_string_equal(why, "refresh token expired");
    assert_int_equal(az_store_sweep(f->st), PL_OK);
    assert_int_equal(az_refresh_grant(f->st, rt, &g2, NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(az_grant_get(f->st, g.gid, &g2), PL_ERR_NOT_FOUND);
    /* A revoked grant goes a day after its revocation. */
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, &why), PL_OK);
    assert_int_equal(az_grant_revoke(f->st, g.gid), PL_OK);
    assert_int_equal(az_store_sweep(f->st), PL_OK);
    assert_int_equal(az_grant_get(f->st, g.gid, &g2), PL_OK);
    core_fake_clock_advance(&f->clock, (int64_t)25 * 3600 * 1000);
    assert_int_equal(az_store_sweep(f->st), PL_OK);
    assert_int_equal(az_grant_get(f->st, g.gid, &g2), PL_ERR_NOT_FOUND);
}

/* An unused dynamic client leaves after a week (freeing its place under the DCR cap); one
 * with a grant stays. */
static void test_dcr_sweep(void **state)
{
    fx *f = *state;
    az_dcr_limits lim = {.per_source = 100, .total = 100, .window_ms = 3600000, .max_clients = 2};
    az_client a, b, x;
    uint8_t fpa[32], fpb[32];
    int reused;
    az_code c;
    az_grant g;
    char code[AZ_SECRET_SIZE], rt[AZ_SECRET_SIZE];
    az_redeem in = {NULL, "https://app.example/cb", VERIFIER, NULL};
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "Idle");
    snprintf(a.source, sizeof a.source, "10.9.0.1");
    a.kind = AZ_CLIENT_DCR;
    a.nredirect = 1;
    snprintf(a.redirect_uris[0], sizeof a.redirect_uris[0], "https://app.example/cb");
    b = a;
    snprintf(b.name, sizeof b.name, "Busy");
    memset(fpa, 7, sizeof fpa);
    memset(fpb, 8, sizeof fpb);
    assert_int_equal(az_client_register(f->st, &a, fpa, &lim, &reused), PL_OK);
    assert_int_equal(az_client_register(f->st, &b, fpb, &lim, &reused), PL_OK);
    fpa[0] = 9;
    x = a;
    assert_int_equal(az_client_register(f->st, &x, fpa, &lim, &reused), PL_ERR_LIMIT);
    /* b gets a grant. */
    make_code(f, &c, code, VERIFIER);
    snprintf(c.client_id, sizeof c.client_id, "%s", b.id);
    assert_int_equal(az_code_issue(f->st, &c, code), PL_OK);
    in.client_id = b.id;
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, NULL), PL_OK);
    core_fake_clock_advance(&f->clock, (int64_t)8 * 24 * 3600 * 1000);
    assert_int_equal(az_store_sweep(f->st), PL_OK);
    assert_int_equal(az_client_get(f->st, a.id, &x), PL_ERR_NOT_FOUND);
    assert_int_equal(az_client_get(f->st, b.id, &x), PL_OK);
    /* The freed place can be used; the old fingerprint no longer maps to the removed id. */
    fpa[0] = 7;
    x = a;
    x.id[0] = '\0';
    assert_int_equal(az_client_register(f->st, &x, fpa, &lim, &reused), PL_OK);
    assert_false(reused);
    assert_string_not_equal(x.id, a.id);
}

/* The directory opened by this process sees what another process commits, at once. */
static void test_directory_cross_process(void **state)
{
    fx *f = *state;
    char uid[AZ_ID_MAX + 1], code[AZ_SECRET_SIZE], rt[AZ_SECRET_SIZE], role[16];
    az_code c;
    az_grant g;
    az_redeem in = {"client-1", "https://app.example/cb", VERIFIER, NULL};
    az_directory *d = NULL;
    az_dir_membership m[4];
    az_dir_workspace w;
    az_store_cfg cfg = {.data_dir = f->dir, .nosync = 1, .scrypt_n = 1024};
    size_t n;
    pid_t pid;
    int status;

    assert_int_equal(az_user_add(f->st, "erin", "erins password", uid), PL_OK);
    assert_int_equal(az_ws_add(f->st, "acme", "Acme", "pro"), PL_OK);
    assert_int_equal(az_member_set(f->st, uid, "acme", "owner"), PL_OK);
    make_code(f, &c, code, VERIFIER);
    assert_int_equal(az_code_redeem(f->st, code, &in, &g, rt, NULL), PL_OK);
    az_store_free(f->st); /* LMDB: one open per process */
    f->st = NULL;

    assert_int_equal(az_directory_open(f->dir, &d), PL_OK);
    assert_int_equal(az_directory_workspace_get(d, "acme", &w), PL_OK);
    assert_string_equal(w.name, "Acme");
    assert_int_equal(az_directory_workspace_get(d, "nope", NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(az_directory_user_workspaces(d, uid, m, 4, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].role, "owner");
    assert_int_equal(az_directory_member_role(d, uid, "acme", role), PL_OK);
    assert_int_equal(az_directory_grant_check(d, g.gid), PL_OK);
    assert_int_equal(az_directory_grant_check(d, "g_unknown"), PL_ERR_DENIED);
    assert_int_equal(az_directory_grant_check(d, "../../etc"), PL_ERR_DENIED);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        az_store *st = NULL;
        int ok = az_store_open(&cfg, &st) == PL_OK && az_grant_revoke(st, g.gid) == PL_OK &&
                 az_ws_add(st, "beta", "Beta", "free") == PL_OK;
        az_store_free(st);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* No reopen, no wait: the next read transaction sees the commit. */
    assert_int_equal(az_directory_grant_check(d, g.gid), PL_ERR_DENIED);
    assert_int_equal(az_directory_workspace_get(d, "beta", NULL), PL_OK);
    az_directory_free(d);
    assert_int_equal(az_directory_open("/nonexistent-postly", &d), PL_ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_and_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_grace_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_superseded_is_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_superseded_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_pending_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr_confidential_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_cross_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_revokes_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_ttl_and_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dcr_sweep, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
