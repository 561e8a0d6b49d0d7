/* tests/keys/test_token.c — minting and verifying access tokens: the round trip, two
 * independent implementations (libjwt, liboauth2) accepting what we mint, and every forged or
 * broken token of issue 3 refused for the right reason — through both signature backends. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <oauth2/http.h>
#include <oauth2/log.h>
#include <oauth2/oauth2.h>

#include "core/clock.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"
#include "policy/scopes.h"

#include "helpers.h"

typedef struct fx {
    char root[256], data[300];
    core_fake_clock clock;
    key_keyset *ks;
    key_verifier *v;
    key_sig_backend backend;
} fx;

static key_verifier *new_verifier(fx *f, int64_t leeway, size_t cache)
{
    key_verifier_cfg cfg = {.issuer = T_ISS,
                            .audience = T_AUD,
                            .leeway_s = leeway,
                            .cache_entries = cache,
                            .clock = &f->clock.base,
                            .keyset = f->ks,
                            .backend = f->backend};
    key_verifier *v = NULL;
    assert_int_equal(key_verifier_new(&cfg, &v), PL_OK);
    return v;
}

static int setup_backend(void **state, key_sig_backend backend)
{
    fx *f = calloc(1, sizeof *f);
    key_keyset_cfg cfg = {0};
    key_error err;
    temp_data(f->root, f->data);
    core_fake_clock_init(&f->clock, T_START_MS);
    cfg.data_dir = f->data;
    cfg.clock = &f->clock.base;
    cfg.create = 1;
    if (key_keyset_open(&cfg, &f->ks, &err) != PL_OK)
        return -1;
    f->backend = backend;
    f->v = new_verifier(f, 30, 64);
    *state = f;
    return 0;
}

static int setup_openssl(void **state)
{
    return setup_backend(state, KEY_SIG_OPENSSL);
}

static int setup_liboauth2(void **state)
{
    return setup_backend(state, KEY_SIG_LIBOAUTH2);
}

static int teardown(void **state)
{
    fx *f = *state;
    key_verifier_free(f->v);
    key_keyset_free(f->ks);
    rm_tree(f->root);
    free(f);
    return 0;
}

static const key_claims std_claims = {.iss = T_ISS,
                                      .sub = "user-1",
                                      .aud = T_AUD,
                                      .client_id = "https://client.example/cimd",
                                      .scope = "posts:read drafts:create",
                                      .ws = "ws-1",
                                      .gid = "grant-1",
                                      .cls = "ai"};

static void mint(fx *f, const key_claims *c, char tok[KEY_TOKEN_MAX], key_minted *m)
{
    size_t len = 0;
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, c, tok, KEY_TOKEN_MAX, &len, m), PL_OK);
    assert_int_equal(len, strlen(tok));
}

static key_reason verify(fx *f, const char *tok, key_verified *out)
{
    key_verified tmp;
    key_reason r = KEY_REASON__COUNT;
    pl_rc rc = key_verifier_verify(f->v, tok, strlen(tok), out ? out : &tmp, &r);
    assert_int_equal(rc, r == KEY_REASON_NONE                                ? PL_OK
                         : key_reason_classify(r) == KEY_CLASS_INVALID_TOKEN ? PL_ERR_DENIED
                         : r == KEY_REASON_JWKS_UNAVAILABLE                  ? PL_ERR_IO
                                                                             : PL_ERR_INTERNAL);
    return r;
}

static long long now_s(fx *f)
{
    return (long long)(f->clock.now_ms / 1000);
}

/* A correctly signed token (active key) over the given payload and header fields. */
static char *signed_token(fx *f, const char *alg, const char *typ, json_t *payload)
{
    EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
    char *hdr = header_json(alg, typ, key_keyset_active_kid(f->ks));
    char *p = dump(payload);
    char *tok = forge_es256(hdr, p, k);
    free(p);
    free(hdr);
    EVP_PKEY_free(k);
    return tok;
}

static char *decode_part(const char *tok, int part)
{
    const char *s = tok, *e;
    uint8_t buf[4096];
    size_t n = 0;
    char *out;
    for (int i = 0; i < part; i++)
        s = strchr(s, '.') + 1;
    e = strchr(s, '.');
    if (!e)
        e = s + strlen(s);
    assert_int_equal(core_b64url_decode(s, (size_t)(e - s), buf, sizeof buf, &n), PL_OK);
    out = malloc(n + 1);
    memcpy(out, buf, n);
    out[n] = '\0';
    return out;
}

/* ---- the round trip ---- */

static void test_roundtrip(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], expect_hdr[128];
    key_minted m;
    key_verified out;
    char *hdr, *payload;
    json_t *p;

    mint(f, &std_claims, tok, &m);
    /* RFC 9068 §2.1: the header is exactly this. */
    hdr = decode_part(tok, 0);
    snprintf(expect_hdr, sizeof expect_hdr, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
             key_keyset_active_kid(f->ks));
    assert_string_equal(hdr, expect_hdr);
    payload = decode_part(tok, 1);
    p = json_loads(payload, 0, NULL);
    assert_non_null(p);
    assert_int_equal(json_integer_value(json_object_get(p, "exp")) -
                         json_integer_value(json_object_get(p, "iat")),
                     KEY_TOKEN_LIFETIME_DEFAULT_S);
    assert_int_equal(json_integer_value(json_object_get(p, "iat")), now_s(f));
    assert_int_equal(json_integer_value(json_object_get(p, "nbf")), now_s(f));
    assert_string_equal(json_string_value(json_object_get(p, "jti")), m.jti);
    assert_int_equal(strlen(m.jti), 22);
    assert_int_equal(json_object_size(p), 12);

    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_string_equal(out.sub, "user-1");
    assert_string_equal(out.client_id, "https://client.example/cimd");
    assert_string_equal(out.ws, "ws-1");
    assert_string_equal(out.gid, "grant-1");
    assert_string_equal(out.cls, "ai");
    assert_string_equal(out.jti, m.jti);
    assert_string_equal(out.scope, "posts:read drafts:create");
    assert_string_equal(out.kid, key_keyset_active_kid(f->ks));
    assert_true(out.scope_mask ==
                (POL_MASK(POL_SCOPE_POSTS_READ) | POL_MASK(POL_SCOPE_DRAFTS_CREATE)));
    assert_int_equal(out.exp, m.exp);
    assert_int_equal(out.from_cache, 0);

    /* the second time comes from the cache, with the same result */
    memset(&out, 0, sizeof out);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    assert_string_equal(out.gid, "grant-1");
    assert_int_equal(out.exp, m.exp);

    /* two tokens for the same claims differ (jti) */
    {
        char tok2[KEY_TOKEN_MAX];
        key_minted m2;
        mint(f, &std_claims, tok2, &m2);
        assert_string_not_equal(m.jti, m2.jti);
    }
    json_decref(p);
    free(payload);
    free(hdr);
}

static void test_lifetime_and_jti(void **state)
{
    fx *f = *state;
    key_claims c = std_claims;
    char tok[KEY_TOKEN_MAX];
    key_minted m;
    key_verified out;
    c.lifetime_s = 60;
    c.jti = "caller-jti";
    mint(f, &c, tok, &m);
    assert_int_equal(m.exp, m.iat + 60);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_string_equal(out.jti, "caller-jti");
}

static void test_mint_rejects_bad_claims(void **state)
{
    fx *f = *state;
    key_claims c = std_claims;
    char tok[KEY_TOKEN_MAX], big[KEY_URL_CLAIM_MAX + 2];
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, 64, NULL, NULL),
                     PL_ERR_TOO_LARGE);
    c.sub = "";
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                     PL_ERR_INVALID);
    c = std_claims;
    c.ws = NULL;
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                     PL_ERR_INVALID);
    c = std_claims;
    c.sub = "line\nbreak";
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                     PL_ERR_INVALID);
    c = std_claims;
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    c.client_id = big;
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                     PL_ERR_INVALID);
    /* every claim within its bound, but together too long for a token: refused, not cut */
    {
        static char quotes[KEY_URL_CLAIM_MAX + 1], scope[KEY_SCOPE_CLAIM_MAX + 1];
        memset(quotes, '"', KEY_URL_CLAIM_MAX); /* each one doubles when escaped */
        memset(scope, 'a', KEY_SCOPE_CLAIM_MAX);
        c = std_claims;
        c.client_id = quotes;
        c.aud = quotes;
        c.scope = scope;
        assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                         PL_ERR_TOO_LARGE);
        /* a large but fitting one verifies with the default limit */
        memset(quotes, 'q', KEY_URL_CLAIM_MAX);
        c = std_claims;
        c.client_id = quotes;
        assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                         PL_OK);
        assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    }
    c = std_claims;
    c.cls = "\xff\xfe";
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                     PL_ERR_INVALID);
}

/* The payload writer's output is byte-for-byte jansson's compact dump of the same object,
 * on claims full of characters that need escaping, and the verifier reads them back. */
static void test_payload_matches_jansson(void **state)
{
    fx *f = *state;
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "9",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         ":",
                                         "{",
                                         "}",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "%",
                                         "'",
                                         "\\u0041",
                                         "<",
                                         "&"};
    char vals[8][128], tok[KEY_TOKEN_MAX];
    unsigned seed = 7;
    for (int it = 0; it < 200; it++) {
        key_claims c = std_claims;
        const char **slots[] = {&c.iss, &c.sub, &c.aud, &c.client_id, &c.ws, &c.gid, &c.cls};
        key_minted m;
        key_verified out;
        char *payload, *want;
        json_t *j;
        for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++) {
            size_t n = 0;
            int len;
            seed = seed * 1103515245u + 12345u;
            len = 1 + (int)((seed >> 16) % 12);
            vals[k][0] = '\0';
            for (int i = 0; i < len; i++) {
                const char *p;
                seed = seed * 1103515245u + 12345u;
                p = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
                memcpy(vals[k] + n, p, strlen(p) + 1);
                n += strlen(p);
            }
            *slots[k] = vals[k];
        }
        c.iss = T_ISS; /* the verifier needs these two exact */
        c.aud = T_AUD;
        mint(f, &c, tok, &m);
        payload = decode_part(tok, 1);
        j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", c.iss,
                      "sub", c.sub, "aud", c.aud, "client_id", c.client_id, "scope", c.scope, "ws",
                      c.ws, "gid", c.gid, "cls", c.cls, "iat", (json_int_t)m.iat, "nbf",
                      (json_int_t)m.iat, "exp", (json_int_t)m.exp, "jti", m.jti);
        want = dump(j);
        assert_string_equal(payload, want);
        assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
        assert_string_equal(out.sub, c.sub);
        assert_string_equal(out.client_id, c.client_id);
        assert_string_equal(out.cls, c.cls);
        free(want);
        json_decref(j);
        free(payload);
    }
}

static void test_mint_refuses_bad_utf8(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {
        "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xe2\x82", "a\x80",        "\xff"};
    char tok[KEY_TOKEN_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        key_claims c = std_claims;
        c.sub = bad[i];
        assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                         PL_ERR_INVALID);
    }
}

/* ---- two independent implementations accept what we mint ---- */

/* libjwt 1.10.2 (Debian 12) refuses to decode any token whose typ is not "JWT" (jwt_decode
 * returns EINVAL), so it cannot read an RFC 9068 token at all; see docs/keys.md. What it can
 * cross-check is everything else: our key (as the PEM of its public part), our ES256
 * encoding (R||S) and our claims, on the same payload with typ "JWT". */
static void test_libjwt_decodes(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], hdr_jwt[160];
    key_minted m;
    EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
    char *pem = public_pem(k), *payload, *same;
    jwt_t *jwt = NULL;

    mint(f, &std_claims, tok, &m);
    assert_int_equal(jwt_decode(&jwt, tok, (const unsigned char *)pem, (int)strlen(pem)), EINVAL);
    assert_null(jwt);

    payload = decode_part(tok, 1);
    snprintf(hdr_jwt, sizeof hdr_jwt, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", m.kid);
    same = forge_es256(hdr_jwt, payload, k);
    assert_int_equal(jwt_decode(&jwt, same, (const unsigned char *)pem, (int)strlen(pem)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
    assert_string_equal(jwt_get_header(jwt, "kid"), m.kid);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "user-1");
    assert_string_equal(jwt_get_grant(jwt, "gid"), "grant-1");
    assert_string_equal(jwt_get_grant(jwt, "scope"), "posts:read drafts:create");
    assert_int_equal(jwt_get_grant_int(jwt, "exp"), m.exp);
    jwt_free(jwt);
    jwt = NULL;
    /* and our verifier refuses exactly that token, for its typ */
    assert_int_equal(verify(f, same, NULL), KEY_REASON_TYP);

    /* libjwt also refuses it once a payload byte changes */
    {
        char *dot = strchr(same, '.') + 1;
        dot[3] = dot[3] == 'A' ? 'B' : 'A';
        assert_int_not_equal(jwt_decode(&jwt, same, (const unsigned char *)pem, (int)strlen(pem)),
                             0);
    }
    jwt_free(jwt);
    free(same);
    free(payload);
    free(pem);
    EVP_PKEY_free(k);
}

static void o2_quiet(oauth2_log_sink_t *s, const char *fl, unsigned long l, const char *fn,
                     oauth2_log_level_t lv, const char *msg)
{
    (void)s, (void)fl, (void)l, (void)fn, (void)lv, (void)msg;
}

static void test_liboauth2_verifies(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX];
    key_minted m;
    char *jwks = NULL, *jwk;
    json_t *doc, *payload = NULL;
    oauth2_log_sink_t *sink = oauth2_log_sink_create(OAUTH2_LOG_ERROR, o2_quiet, NULL);
    oauth2_log_t *log = oauth2_log_init(OAUTH2_LOG_ERROR, sink);
    oauth2_cfg_token_verify_t *cfg = NULL;
    oauth2_http_request_t *req = oauth2_http_request_init(log);
    char *err;

    mint(f, &std_claims, tok, &m);
    /* the active key's JWK, straight from the published JWKS */
    assert_int_equal(key_keyset_jwks(f->ks, &jwks, NULL), PL_OK);
    doc = json_loads(jwks, 0, NULL);
    jwk = dump(json_array_get(json_object_get(doc, "keys"), 0));
    err = oauth2_cfg_token_verify_add_options(log, &cfg, "jwk", jwk,
                                              "verify.exp=skip&verify.iat=skip&verify.iss=skip");
    assert_null(err);
    assert_true(oauth2_token_verify(log, req, cfg, tok, &payload));
    assert_string_equal(json_string_value(json_object_get(payload, "sub")), "user-1");
    assert_string_equal(json_string_value(json_object_get(payload, "jti")), m.jti);
    json_decref(payload);
    payload = NULL;
    tok[strlen(tok) - 5] ^= 1; /* tampered signature */
    assert_false(oauth2_token_verify(log, req, cfg, tok, &payload));
    json_decref(payload);
    oauth2_cfg_token_verify_free(log, cfg);
    oauth2_http_request_free(log, req);
    oauth2_log_free(log);
    free(jwk);
    json_decref(doc);
    free(jwks);
}

/* ---- algorithm attacks ---- */

static void test_alg_none(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *hdr = header_json("none", "at+jwt", key_keyset_active_kid(f->ks));
    char *pl = dump(p);
    char *in = signing_input(hdr, pl);
    char *with_sig;
    size_t n = strlen(in) + 2;
    char *unsigned_tok = malloc(n);
    snprintf(unsigned_tok, n, "%s.", in);
    /* an unsecured JWS has an empty signature part: not even a well-formed token here */
    assert_int_equal(verify(f, unsigned_tok, NULL), KEY_REASON_MALFORMED);
    /* with something in the signature part it is refused for its algorithm */
    with_sig = append_sig(in, (const uint8_t *)"x", 1);
    assert_int_equal(verify(f, with_sig, NULL), KEY_REASON_ALG);
    /* "None", "ES256 " and a missing alg are no better */
    free(hdr);
    hdr = header_json(NULL, "at+jwt", key_keyset_active_kid(f->ks));
    free(with_sig);
    with_sig = forge_hs256(hdr, pl, "k", 1);
    assert_int_equal(verify(f, with_sig, NULL), KEY_REASON_ALG);
    free(with_sig);
    free(unsigned_tok);
    free(hdr);
    free(pl);
    json_decref(p);
}

static void test_hs256_with_public_key(void **state)
{
    fx *f = *state;
    EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
    char *pem = public_pem(k), *jwks = NULL;
    json_t *p = std_payload(now_s(f));
    char *pl = dump(p);
    char *hdr = header_json("HS256", "at+jwt", key_keyset_active_kid(f->ks));
    char *tok;

    /* the public key as PEM text, and the JWKS text, used as the HMAC secret */
    tok = forge_hs256(hdr, pl, pem, strlen(pem));
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_ALG);
    free(tok);
    assert_int_equal(key_keyset_jwks(f->ks, &jwks, NULL), PL_OK);
    tok = forge_hs256(hdr, pl, jwks, strlen(jwks));
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_ALG);
    free(tok);
    /* the same with libjwt doing the HMAC (it writes typ JWT; alg is still what stops it) */
    {
        jwt_t *jwt = NULL;
        char *enc;
        assert_int_equal(jwt_new(&jwt), 0);
        assert_int_equal(jwt_add_grants_json(jwt, pl), 0);
        assert_int_equal(jwt_add_header(jwt, "kid", key_keyset_active_kid(f->ks)), 0);
        assert_int_equal(
            jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)pem, (int)strlen(pem)), 0);
        enc = jwt_encode_str(jwt);
        assert_non_null(enc);
        assert_int_equal(verify(f, enc, NULL), KEY_REASON_ALG);
        free(enc);
        jwt_free(jwt);
    }
    free(jwks);
    free(hdr);
    free(pl);
    json_decref(p);
    free(pem);
    EVP_PKEY_free(k);
}

static void test_rs256(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *pl = dump(p);
    char *hdr = header_json("RS256", "at+jwt", key_keyset_active_kid(f->ks));
    char *tok = forge_rs256(hdr, pl);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_ALG);
    free(tok);
    free(hdr);
    free(pl);
    json_decref(p);
}

/* ---- keys ---- */

static void test_wrong_and_unknown_kid(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *pl = dump(p);
    EVP_PKEY *attacker = EVP_EC_gen("P-256");
    char *hdr = header_json("ES256", "at+jwt", key_keyset_active_kid(f->ks));
    char *tok = forge_es256(hdr, pl, attacker);
    /* our kid, someone else's key */
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_SIGNATURE);
    free(tok);
    free(hdr);
    /* a kid nobody published */
    hdr = header_json("ES256", "at+jwt", "no-such-key");
    tok = forge_es256(hdr, pl, attacker);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_KID);
    free(tok);
    free(hdr);
    /* no kid at all */
    hdr = header_json("ES256", "at+jwt", NULL);
    tok = forge_es256(hdr, pl, attacker);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_KID);
    free(tok);
    free(hdr);
    /* the next key is published but signs nothing yet: a token it signed still verifies
     * (that is the point of publishing it early), so only the kid/key pairing matters */
    EVP_PKEY_free(attacker);
    free(pl);
    json_decref(p);
}

/* ---- time ---- */

static void test_expired(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX];
    key_minted m;
    key_verified out;
    mint(f, &std_claims, tok, &m);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE); /* cached now */
    /* within the 30 s leeway after exp: still valid */
    core_fake_clock_advance(&f->clock, (600 + 29) * 1000LL);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    /* past it: refused, although the cache had it */
    core_fake_clock_advance(&f->clock, 1000);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_EXPIRED);
    assert_string_equal(out.sub, ""); /* out is cleared on failure */
}

static void test_not_yet_valid(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *tok;
    json_object_set_new(p, "nbf", json_integer(now_s(f) + 31));
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NOT_YET_VALID);
    free(tok);
    json_object_set_new(p, "nbf", json_integer(now_s(f) + 29)); /* within leeway */
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    free(tok);
    json_object_set_new(p, "nbf", json_integer(now_s(f)));
    json_object_set_new(p, "iat", json_integer(now_s(f) + 3600)); /* issued in the future */
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NOT_YET_VALID);
    free(tok);
    json_decref(p);
}

/* ---- audience and issuer ---- */

static void test_aud_and_iss(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *tok;

    json_object_set_new(p, "aud", json_string("https://other.example/mcp"));
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_AUDIENCE);
    free(tok);
    json_object_set_new(p, "aud", json_string(T_AUD "/")); /* exact match only */
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_AUDIENCE);
    free(tok);
    /* RFC 9068 §4: an array that contains our audience is fine */
    json_object_set_new(p, "aud", json_pack("[s, s]", "https://x.example", T_AUD));
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    free(tok);
    json_object_del(p, "aud");
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_AUDIENCE);
    free(tok);

    json_object_set_new(p, "aud", json_string(T_AUD));
    json_object_set_new(p, "iss", json_string("https://evil.example"));
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_ISSUER);
    free(tok);
    json_object_del(p, "iss");
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_ISSUER);
    free(tok);
    json_decref(p);
}

/* ---- tampering ---- */

static void test_tampered(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], *t, *d1, *d2;
    key_minted m;
    json_t *p;
    char *pl, *hdr, *in, *mixed;
    size_t n;

    mint(f, &std_claims, tok, &m);
    d1 = strchr(tok, '.');
    d2 = strchr(d1 + 1, '.');

    /* payload: another subject, original signature */
    p = std_payload(now_s(f));
    json_object_set_new(p, "sub", json_string("admin"));
    json_object_set_new(p, "jti", json_string(m.jti));
    pl = dump(p);
    hdr = decode_part(tok, 0);
    in = signing_input(hdr, pl);
    n = strlen(in) + strlen(d2) + 1;
    mixed = malloc(n);
    snprintf(mixed, n, "%s%s", in, d2);
    assert_int_equal(verify(f, mixed, NULL), KEY_REASON_SIGNATURE);
    free(mixed);
    free(in);
    free(hdr);

    /* header: a different but acceptable header, original payload and signature */
    {
        char h2[160], *h2b, *pb;
        snprintf(h2, sizeof h2, "{\"typ\":\"at+jwt\",\"alg\":\"ES256\",\"kid\":\"%s\"}", m.kid);
        h2b = b64u(h2, strlen(h2));
        n = strlen(h2b) + strlen(d1) + 1;
        pb = malloc(n);
        snprintf(pb, n, "%s%s", h2b, d1);
        assert_int_equal(verify(f, pb, NULL), KEY_REASON_SIGNATURE);
        free(pb);
        free(h2b);
    }

    /* signature: one bit of S, and a signature of the wrong length */
    t = strdup(tok);
    t[strlen(t) - 10] = t[strlen(t) - 10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, t, NULL), KEY_REASON_SIGNATURE);
    t[strlen(t) - 4] = '\0';
    assert_int_equal(verify(f, t, NULL), KEY_REASON_SIGNATURE);
    free(t);

    /* structure: a fourth part, a bad character, JWE-like five parts */
    n = strlen(tok) + 8;
    t = malloc(n);
    snprintf(t, n, "%s.AAAA", tok);
    assert_int_equal(verify(f, t, NULL), KEY_REASON_MALFORMED);
    snprintf(t, n, "%s", tok);
    t[5] = '+';
    assert_int_equal(verify(f, t, NULL), KEY_REASON_MALFORMED);
    free(t);
    assert_int_equal(verify(f, "", NULL), KEY_REASON_MALFORMED);
    assert_int_equal(verify(f, "..", NULL), KEY_REASON_MALFORMED);
    assert_int_equal(verify(f, "a.b.c", NULL), KEY_REASON_MALFORMED);

    /* the untampered token still verifies */
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    free(pl);
    json_decref(p);
}

/* Another spelling of a valid token is not the token: an extra base64url character after the
 * signature, or non-zero unused bits in its last character (RFC 4648 §3.5; both decode to the
 * same R || S in a lenient decoder), are refused by both backends. Otherwise a holder could
 * mint endless distinct strings for one token (defeating anything keyed on the token's bytes,
 * such as the verified-token cache or a per-token rate limit). */
static void test_signature_spelling(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], t[KEY_TOKEN_MAX + 8];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len;
    int alt = 0;
    mint(f, &std_claims, tok, NULL);
    len = strlen(tok);
    for (const char *x = "AQgw"; *x; x++) {
        memcpy(t, tok, len);
        t[len] = *x;
        t[len + 1] = '\0';
        assert_int_equal(verify(f, t, NULL), KEY_REASON_SIGNATURE);
    }
    memcpy(t, tok, len);
    memcpy(t + len, "AAAA", 5);
    assert_int_equal(verify(f, t, NULL), KEY_REASON_SIGNATURE);
    /* the 86th character carries 2 bits of S and 4 unused bits that must be zero: every
     * other character with the same 2 high bits is the same signature, spelled otherwise */
    for (int c = 0; c < 64; c++) {
        int v = (int)(strchr(b64, tok[len - 1]) - b64);
        if (c == v || (c >> 4) != (v >> 4))
            continue;
        memcpy(t, tok, len + 1);
        t[len - 1] = b64[c];
        assert_int_equal(verify(f, t, NULL), KEY_REASON_SIGNATURE);
        alt++;
    }
    assert_int_equal(alt, 15);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
}

/* ---- claims ---- */

static void test_missing_or_mistyped_claims(void **state)
{
    fx *f = *state;
    static const struct {
        const char *claim;
        int remove;        /* 1: delete it; 0: set it to `value` */
        const char *value; /* JSON text */
        key_reason expect;
    } cases[] = {
        {"sub", 1, NULL, KEY_REASON_CLAIMS},
        {"client_id", 1, NULL, KEY_REASON_CLAIMS},
        {"ws", 1, NULL, KEY_REASON_CLAIMS},
        {"gid", 1, NULL, KEY_REASON_CLAIMS},
        {"cls", 1, NULL, KEY_REASON_CLAIMS},
        {"jti", 1, NULL, KEY_REASON_CLAIMS},
        {"scope", 1, NULL, KEY_REASON_CLAIMS},
        {"exp", 1, NULL, KEY_REASON_CLAIMS},
        {"nbf", 1, NULL, KEY_REASON_CLAIMS},
        {"iat", 1, NULL, KEY_REASON_CLAIMS},
        {"sub", 0, "42", KEY_REASON_CLAIMS},
        {"sub", 0, "\"\"", KEY_REASON_CLAIMS},
        {"ws", 0, "[\"ws-1\"]", KEY_REASON_CLAIMS},
        {"gid", 0, "null", KEY_REASON_CLAIMS},
        {"exp", 0, "\"1900000000\"", KEY_REASON_CLAIMS},
        {"exp", 0, "1900000000.5", KEY_REASON_CLAIMS},
        {"iat", 0, "true", KEY_REASON_CLAIMS},
        {"scope", 0, "7", KEY_REASON_CLAIMS},
        {"scope", 0, "\"posts:read posts:nuke\"", KEY_REASON_SCOPE},
        {"scope", 0, "\"posts:read  drafts:read\"", KEY_REASON_SCOPE},
        {"scope", 0, "\"\"", KEY_REASON_NONE}, /* no scopes: valid, mask 0 */
        {"iss", 0, "1", KEY_REASON_ISSUER},
        {"aud", 0, "{}", KEY_REASON_AUDIENCE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *p = std_payload(now_s(f));
        char *tok;
        key_verified out;
        if (cases[i].remove)
            json_object_del(p, cases[i].claim);
        else
            json_object_set_new(p, cases[i].claim,
                                json_loads(cases[i].value, JSON_DECODE_ANY, NULL));
        tok = signed_token(f, "ES256", "at+jwt", p);
        if (verify(f, tok, &out) != cases[i].expect)
            fail_msg("case %zu (%s %s): got %s", i, cases[i].claim,
                     cases[i].remove ? "removed" : cases[i].value,
                     key_reason_name(verify(f, tok, &out)));
        free(tok);
        json_decref(p);
    }
}

static void test_duplicate_claims_refused(void **state)
{
    fx *f = *state;
    EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
    char *hdr = header_json("ES256", "at+jwt", key_keyset_active_kid(f->ks));
    char pl[1024];
    char *tok;
    long long now = now_s(f);
    /* a JSON object with "sub" twice: parsers disagree on which wins, so it is refused */
    snprintf(pl, sizeof pl,
             "{\"iss\":\"%s\",\"sub\":\"user-1\",\"aud\":\"%s\",\"client_id\":\"c\",\"scope\":\"\","
             "\"ws\":\"w\",\"gid\":\"g\",\"cls\":\"ai\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,"
             "\"jti\":\"j\",\"sub\":\"admin\"}",
             T_ISS, T_AUD, now, now, now + 600);
    tok = forge_es256(hdr, pl, k);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_MALFORMED);
    free(tok);
    free(hdr);
    EVP_PKEY_free(k);
}

static void test_typ(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char *tok;
    static const struct {
        const char *typ;
        key_reason expect;
    } cases[] = {{"JWT", KEY_REASON_TYP},     {NULL, KEY_REASON_TYP},
                 {"jwt", KEY_REASON_TYP},     {"at+jwt ", KEY_REASON_TYP},
                 {"at+JWT", KEY_REASON_NONE}, {"application/at+jwt", KEY_REASON_NONE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok = signed_token(f, "ES256", cases[i].typ, p);
        assert_int_equal(verify(f, tok, NULL), cases[i].expect);
        free(tok);
    }
    /* libjwt's own tokens say typ JWT: refused, even with our key (RFC 9068 §4) */
    {
        EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
        BIO *b = BIO_new(BIO_s_mem());
        char *mem = NULL, *pl = dump(p), *enc;
        long n;
        jwt_t *jwt = NULL;
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
        n = BIO_get_mem_data(b, &mem);
        assert_int_equal(jwt_new(&jwt), 0);
        assert_int_equal(jwt_add_grants_json(jwt, pl), 0);
        assert_int_equal(jwt_add_header(jwt, "kid", key_keyset_active_kid(f->ks)), 0);
        assert_int_equal(jwt_add_header(jwt, "typ", "at+jwt"), 0);
        assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)mem, (int)n), 0);
        enc = jwt_encode_str(jwt);
        assert_non_null(enc);
        assert_int_equal(verify(f, enc, NULL), KEY_REASON_TYP);
        free(enc);
        jwt_free(jwt);
        free(pl);
        BIO_free(b);
        EVP_PKEY_free(k);
    }
    /* header members we refuse: crit (unknown extensions), jku/jwk (keys from the token) */
    {
        EVP_PKEY *k = load_private(f->data, key_keyset_active_kid(f->ks));
        char h[256], *pl = dump(p);
        snprintf(h, sizeof h,
                 "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"crit\":[\"x\"]}",
                 key_keyset_active_kid(f->ks));
        tok = forge_es256(h, pl, k);
        assert_int_equal(verify(f, tok, NULL), KEY_REASON_MALFORMED);
        free(tok);
        snprintf(h, sizeof h,
                 "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\",\"jku\":\"https://e.x/\"}",
                 key_keyset_active_kid(f->ks));
        tok = forge_es256(h, pl, k);
        assert_int_equal(verify(f, tok, NULL), KEY_REASON_MALFORMED);
        free(tok);
        free(pl);
        EVP_PKEY_free(k);
    }
    json_decref(p);
}

static void test_oversized(void **state)
{
    fx *f = *state;
    json_t *p = std_payload(now_s(f));
    char pad[KEY_TOKEN_MAX];
    char *tok, *huge;
    key_verified out;
    key_reason r;
    /* a correctly signed token that is simply too long */
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    json_object_set_new(p, "pad", json_string(pad));
    tok = signed_token(f, "ES256", "at+jwt", p);
    assert_true(strlen(tok) > KEY_TOKEN_MAX);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_TOO_LARGE);
    /* refused before any parsing: 1 MiB of garbage costs nothing and says TOO_LARGE */
    huge = malloc(1 << 20);
    memset(huge, '.', 1 << 20);
    assert_int_equal(key_verifier_verify(f->v, huge, 1 << 20, &out, &r), PL_ERR_DENIED);
    assert_int_equal(r, KEY_REASON_TOO_LARGE);
    free(huge);
    free(tok);
    json_decref(p);
}

/* ---- rotation and pruning ---- */

static int jwks_has(fx *f, const char *kid)
{
    char *jwks = NULL;
    int has;
    assert_int_equal(key_keyset_jwks(f->ks, &jwks, NULL), PL_OK);
    has = strstr(jwks, kid) != NULL;
    assert_null(strstr(jwks, "\"d\""));
    free(jwks);
    return has;
}

static void test_rotation(void **state)
{
    fx *f = *state;
    char t1[KEY_TOKEN_MAX], t2[KEY_TOKEN_MAX], next_kid[KEY_KID_SIZE], now_active[KEY_KID_SIZE];
    key_minted m1, m2;
    key_info ki;
    key_error err;
    size_t removed = 9;
    key_verified out;

    mint(f, &std_claims, t1, &m1);
    assert_int_equal(verify(f, t1, NULL), KEY_REASON_NONE);
    /* the next key is published before it signs */
    for (size_t i = 0; i < key_keyset_count(f->ks); i++)
        if (key_keyset_get(f->ks, i, &ki) == PL_OK && ki.state == KEY_STATE_NEXT)
            memcpy(next_kid, ki.kid, KEY_KID_SIZE);
    assert_true(jwks_has(f, next_kid));

    core_fake_clock_advance(&f->clock, 100 * 1000LL);
    assert_int_equal(key_keyset_rotate(f->ks, now_active, &err), PL_OK);
    assert_string_equal(now_active, next_kid);
    mint(f, &std_claims, t2, &m2);
    assert_string_equal(m2.kid, next_kid);
    assert_string_not_equal(m2.kid, m1.kid);
    /* both verify: the retired key is still published */
    assert_true(jwks_has(f, m1.kid));
    assert_int_equal(verify(f, t1, &out), KEY_REASON_NONE);
    assert_string_equal(out.kid, m1.kid);
    assert_int_equal(verify(f, t2, &out), KEY_REASON_NONE);
    assert_string_equal(out.kid, m2.kid);

    /* too early to prune: t1 may still be in use */
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_int_equal(removed, 0);
    assert_true(jwks_has(f, m1.kid));
    /* t1 runs out (exp + verifier leeway) */
    core_fake_clock_advance(&f->clock, 531 * 1000LL);
    assert_int_equal(verify(f, t1, NULL), KEY_REASON_EXPIRED);
    assert_int_equal(verify(f, t2, NULL), KEY_REASON_NONE);
    /* removable = rotation + 600 s lifetime + 60 s leeway */
    core_fake_clock_advance(&f->clock, 128 * 1000LL); /* rotation + 659 s */
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_int_equal(removed, 0);
    core_fake_clock_advance(&f->clock, 1000); /* rotation + 660 s */
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_int_equal(removed, 1);
    assert_false(jwks_has(f, m1.kid));
    assert_true(jwks_has(f, m2.kid));
    for (size_t i = 0; i < key_keyset_count(f->ks); i++) {
        assert_int_equal(key_keyset_get(f->ks, i, &ki), PL_OK);
        if (strcmp(ki.kid, m1.kid) == 0)
            assert_int_equal(ki.state, KEY_STATE_REMOVED);
    }
    /* t2 (rotation + 600 s) has run out by now too; a fresh token of the active key verifies */
    assert_int_equal(verify(f, t2, NULL), KEY_REASON_EXPIRED);
    mint(f, &std_claims, t2, &m2);
    assert_string_equal(m2.kid, now_active);
    assert_int_equal(verify(f, t2, NULL), KEY_REASON_NONE);
}

static void test_pruned_key_refused(void **state)
{
    fx *f = *state;
    key_claims c = std_claims;
    char tok[KEY_TOKEN_MAX];
    key_minted m;
    key_error err;
    size_t removed = 0;
    key_verified out;

    /* a token that outlives the key's removal (lifetime longer than the key set assumes) */
    c.lifetime_s = 7200;
    mint(f, &c, tok, &m);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    core_fake_clock_advance(&f->clock, 661 * 1000LL);
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_int_equal(removed, 1);
    /* unexpired and cached, but its key is gone: refused, not served from the cache */
    assert_int_equal(verify(f, tok, &out), KEY_REASON_KID);
    assert_int_equal(out.from_cache, 0);
}

static void test_removed_key_refused_at_once(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX];
    key_minted m;
    key_error err;
    key_verified out;
    mint(f, &std_claims, tok, &m);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    /* a change of the published kids empties the cache; the token is verified again */
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    /* compromised: removed now, minutes before the token expires */
    assert_int_equal(key_keyset_remove(f->ks, m.kid, &err), PL_OK);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_KID);
}

/* Signing contexts are kept between tokens (keys/keyset.c): a reload that finds another
 * process's rotation must drop them, so the next token is signed by, and named after, the new
 * active key (a stale context would sign with the old key under the new kid: refused). */
static void test_reload_after_rotation_elsewhere(void **state)
{
    fx *f = *state;
    key_keyset_cfg cfg = {0};
    key_keyset *other = NULL;
    char tok[KEY_TOKEN_MAX], new_kid[KEY_KID_SIZE];
    key_minted m1, m2;
    key_verified out;
    key_error err;

    for (int i = 0; i < 3; i++) /* the slot's contexts are made and reused */
        mint(f, &std_claims, tok, &m1);
    assert_int_equal(verify(f, tok, NULL), KEY_REASON_NONE);
    cfg.data_dir = f->data;
    cfg.clock = &f->clock.base;
    assert_int_equal(key_keyset_open(&cfg, &other, &err), PL_OK);
    assert_int_equal(key_keyset_rotate(other, new_kid, &err), PL_OK);
    key_keyset_free(other);
    assert_int_equal(key_keyset_reload(f->ks, &err), PL_OK);
    mint(f, &std_claims, tok, &m2);
    assert_string_equal(m2.kid, new_kid);
    assert_string_not_equal(m2.kid, m1.kid);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_string_equal(out.kid, new_kid);
}

/* More threads minting at once than the key set keeps signing slots: each token verifies and
 * every jti (from the slots' random pools or, with every slot taken, RAND_bytes) is new. */
#define MT_THREADS 8
#define MT_TOKENS  40

typedef struct mt_arg {
    fx *f;
    char (*toks)[KEY_TOKEN_MAX];
    int failed;
} mt_arg;

static void *mt_run(void *p)
{
    mt_arg *a = p;
    for (int i = 0; i < MT_TOKENS; i++)
        if (key_token_mint(a->f->ks, &a->f->clock.base, &std_claims, a->toks[i], KEY_TOKEN_MAX,
                           NULL, NULL) != PL_OK)
            a->failed = 1;
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_mint_threads(void **state)
{
    fx *f = *state;
    pthread_t th[MT_THREADS];
    mt_arg args[MT_THREADS];
    char(*toks)[KEY_TOKEN_MAX] = calloc((size_t)MT_THREADS * MT_TOKENS, KEY_TOKEN_MAX);
    char **jtis = calloc((size_t)MT_THREADS * MT_TOKENS, sizeof *jtis);
    key_verified out;

    assert_non_null(toks);
    assert_non_null(jtis);
    for (int t = 0; t < MT_THREADS; t++) {
        args[t] = (mt_arg){f, toks + (size_t)t * MT_TOKENS, 0};
        assert_int_equal(pthread_create(&th[t], NULL, mt_run, &args[t]), 0);
    }
    for (int t = 0; t < MT_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(args[t].failed, 0);
    }
    for (int i = 0; i < MT_THREADS * MT_TOKENS; i++) {
        assert_int_equal(verify(f, toks[i], &out), KEY_REASON_NONE);
        assert_int_equal(strlen(out.jti), 22);
        jtis[i] = strdup(out.jti);
        assert_non_null(jtis[i]);
    }
    qsort(jtis, (size_t)MT_THREADS * MT_TOKENS, sizeof *jtis, cmp_str);
    for (int i = 1; i < MT_THREADS * MT_TOKENS; i++)
        assert_string_not_equal(jtis[i - 1], jtis[i]);
    for (int i = 0; i < MT_THREADS * MT_TOKENS; i++)
        free(jtis[i]);
    free(jtis);
    free(toks);
}

/* ---- the cache ---- */

static void test_cache_bounded_lru(void **state)
{
    fx *f = *state;
    char toks[6][KEY_TOKEN_MAX];
    key_verifier_stats st;
    key_verified out;
    key_verifier_free(f->v);
    f->v = new_verifier(f, 30, 4);
    for (int i = 0; i < 6; i++) {
        mint(f, &std_claims, toks[i], NULL);
        assert_int_equal(verify(f, toks[i], &out), KEY_REASON_NONE);
        assert_int_equal(out.from_cache, 0);
    }
    key_verifier_stats_get(f->v, &st);
    assert_int_equal(st.cache_size, 4);
    assert_int_equal(st.verified, 6);
    /* 0 and 1 were evicted; 2..5 are held. Touch 2, then add 0 back: 3 is evicted, not 2. */
    assert_int_equal(verify(f, toks[2], &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    assert_int_equal(verify(f, toks[0], &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
    assert_int_equal(verify(f, toks[2], &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    assert_int_equal(verify(f, toks[3], &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
    key_verifier_stats_get(f->v, &st);
    assert_int_equal(st.cache_size, 4);
    key_verifier_cache_clear(f->v);
    key_verifier_stats_get(f->v, &st);
    assert_int_equal(st.cache_size, 0);
    assert_int_equal(verify(f, toks[2], &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
}

/* A hit is only ever the byte-identical token: the cache's keyed hash picks a bucket, the
 * bytes decide. A token one byte away from a cached one (signature, payload, header), one
 * byte shorter or longer, is verified in full again and refused; the cached one still hits.
 * The changes in the header and payload keep the signature's last 32 bytes, which is all the
 * cache hashes: those tokens land on the cached entry's hash and are told apart only by the
 * full comparison. */
static void test_cache_hit_only_identical(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], t[KEY_TOKEN_MAX + 2];
    key_verified out, first;
    key_verifier_stats st0, st;
    size_t len, d1, d2;
    mint(f, &std_claims, tok, NULL);
    len = strlen(tok);
    d1 = (size_t)(strchr(tok, '.') - tok);
    d2 = (size_t)(strrchr(tok, '.') - tok);
    assert_int_equal(verify(f, tok, &first), KEY_REASON_NONE);
    assert_int_equal(first.from_cache, 0);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    key_verifier_stats_get(f->v, &st0);
    assert_int_equal(st0.cache_hits, 1);
    /* one byte changed, in each part: the signature (R and S), the payload, the header */
    {
        const size_t at[] = {d2 + 1, d2 + 30, len - 10, d1 + 5, d2 - 3, 3};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            key_reason r;
            memcpy(t, tok, len + 1);
            t[at[i]] = t[at[i]] == 'A' ? 'B' : 'A';
            r = verify(f, t, &out);
            /* the header no longer decodes to ours (alg/typ/kid/JSON): refused before the
             * signature; elsewhere the signature no longer matches */
            if (at[i] < d1)
                assert_int_not_equal(r, KEY_REASON_NONE);
            else
                assert_int_equal(r, KEY_REASON_SIGNATURE);
            assert_int_equal(out.from_cache, 0);
            assert_string_equal(out.sub, "");
        }
    }
    /* a prefix (last character dropped) and an extension (one character appended) */
    memcpy(t, tok, len + 1);
    t[len - 1] = '\0';
    assert_int_not_equal(verify(f, t, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
    memcpy(t, tok, len);
    t[len] = 'A';
    t[len + 1] = '\0';
    assert_int_not_equal(verify(f, t, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 0);
    key_verifier_stats_get(f->v, &st);
    assert_int_equal(st.cache_hits, st0.cache_hits); /* none of them hit */
    assert_int_equal(st.refused, st0.refused + 8);
    assert_int_equal(st.cache_size, 1); /* and none was cached */
    /* the original still hits, with the claims it verified with */
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
    assert_string_equal(out.sub, first.sub);
    assert_string_equal(out.jti, first.jti);
    assert_true(out.scope_mask == first.scope_mask);
    assert_int_equal(out.exp, first.exp);
    /* the same bytes from another buffer (not the same pointer) hit too */
    memcpy(t, tok, len + 1);
    assert_int_equal(verify(f, t, &out), KEY_REASON_NONE);
    assert_int_equal(out.from_cache, 1);
}

/* Two verifiers draw different hash keys, and each holds exactly the tokens it verified:
 * many tokens through a small cache, every one later found again or verified afresh. */
static void test_cache_many_tokens(void **state)
{
    fx *f = *state;
    enum { N = 40 };
    static char toks[N][KEY_TOKEN_MAX];
    key_verified out;
    key_verifier_stats st;
    key_verifier_free(f->v);
    f->v = new_verifier(f, 30, 16);
    for (int i = 0; i < N; i++) {
        mint(f, &std_claims, toks[i], NULL);
        assert_int_equal(verify(f, toks[i], &out), KEY_REASON_NONE);
        assert_int_equal(out.from_cache, 0);
    }
    /* the 16 most recent hit, in any order; the older ones were evicted */
    for (int i = N - 1; i >= N - 16; i--) {
        assert_int_equal(verify(f, toks[i], &out), KEY_REASON_NONE);
        assert_int_equal(out.from_cache, 1);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(verify(f, toks[i], &out), KEY_REASON_NONE);
        assert_int_equal(out.from_cache, 0);
    }
    key_verifier_stats_get(f->v, &st);
    assert_int_equal(st.cache_size, 16);
    assert_int_equal(st.verified, N + 8);
    assert_int_equal(st.cache_hits, 16);
}

/* ---- a JWKS fetched through a callback ---- */

typedef struct fetch_ctx {
    fx *f;
    int calls;
    int fail;
} fetch_ctx;

static pl_rc fetch_jwks(void *ctx, char **json, size_t *len)
{
    fetch_ctx *c = ctx;
    c->calls++;
    if (c->fail)
        return PL_ERR_IO;
    return key_keyset_jwks(c->f->ks, json, len);
}

static void test_fetch_refetch_once_per_interval(void **state)
{
    fx *f = *state;
    fetch_ctx fc = {.f = f};
    key_verifier_cfg cfg = {.issuer = T_ISS,
                            .audience = T_AUD,
                            .leeway_s = 30,
                            .refetch_interval_s = 60,
                            .clock = &f->clock.base,
                            .fetch = fetch_jwks,
                            .fetch_ctx = &fc,
                            .backend = f->backend};
    key_verifier *v = NULL;
    char t1[KEY_TOKEN_MAX], t2[KEY_TOKEN_MAX], unknown_tok[KEY_TOKEN_MAX];
    key_verified out;
    key_reason r;
    key_error err;
    json_t *p = std_payload(now_s(f));
    EVP_PKEY *attacker = EVP_EC_gen("P-256");
    char *hdr = header_json("ES256", "at+jwt", "unknown-kid"), *pl = dump(p);
    char *forged = forge_es256(hdr, pl, attacker);
    snprintf(unknown_tok, sizeof unknown_tok, "%s", forged);

    assert_int_equal(key_verifier_new(&cfg, &v), PL_OK);
    assert_int_equal(fc.calls, 1);
    mint(f, &std_claims, t1, NULL);
    assert_int_equal(key_verifier_verify(v, t1, strlen(t1), &out, &r), PL_OK);
    assert_int_equal(fc.calls, 1);
    /* the first unknown kid refetches (the interval since start-up has passed) */
    assert_int_equal(key_verifier_verify(v, unknown_tok, strlen(unknown_tok), &out, &r),
                     PL_ERR_DENIED);
    assert_int_equal(r, KEY_REASON_KID);
    assert_int_equal(fc.calls, 2);
    /* more unknown kids within the interval do not */
    for (int i = 0; i < 5; i++)
        assert_int_equal(key_verifier_verify(v, unknown_tok, strlen(unknown_tok), &out, &r),
                         PL_ERR_DENIED);
    assert_int_equal(fc.calls, 2);
    /* after a rotation the new key is already known: it was published as "next" */
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    mint(f, &std_claims, t2, NULL);
    assert_int_equal(key_verifier_verify(v, t2, strlen(t2), &out, &r), PL_OK);
    assert_int_equal(fc.calls, 2);
    /* later, an unknown kid may refetch again */
    core_fake_clock_advance(&f->clock, 61 * 1000LL);
    assert_int_equal(key_verifier_verify(v, unknown_tok, strlen(unknown_tok), &out, &r),
                     PL_ERR_DENIED);
    assert_int_equal(fc.calls, 3);
    /* a copy older than jwks_max_age_s (default 300 s) is refreshed by the next call, whatever
     * the token: that is how a pruned key disappears from a fetching verifier */
    core_fake_clock_advance(&f->clock, 299 * 1000LL);
    assert_int_equal(key_verifier_verify(v, t2, strlen(t2), &out, &r), PL_OK);
    assert_int_equal(fc.calls, 3);
    core_fake_clock_advance(&f->clock, 2 * 1000LL);
    (void)key_verifier_verify(v, t2, strlen(t2), &out, &r);
    assert_int_equal(fc.calls, 4);
    key_verifier_free(v);

    /* no JWKS at all: a server error, not the client's fault */
    fc.fail = 1;
    fc.calls = 0;
    assert_int_equal(key_verifier_new(&cfg, &v), PL_OK);
    assert_int_equal(key_verifier_verify(v, t1, strlen(t1), &out, &r), PL_ERR_IO);
    assert_int_equal(r, KEY_REASON_JWKS_UNAVAILABLE);
    assert_int_equal(key_reason_classify(r), KEY_CLASS_SERVER_ERROR);
    /* it comes back: the next allowed refetch succeeds */
    fc.fail = 0;
    core_fake_clock_advance(&f->clock, 61 * 1000LL);
    assert_int_equal(key_verifier_verify(v, t1, strlen(t1), &out, &r), PL_OK);
    assert_int_equal(fc.calls, 3); /* new, first verify, this one */
    key_verifier_free(v);
    free(forged);
    free(pl);
    free(hdr);
    EVP_PKEY_free(attacker);
    json_decref(p);
}

static void test_public_only_key_set(void **state)
{
    fx *f = *state;
    key_keyset_cfg cfg = {.data_dir = f->data, .clock = &f->clock.base, .public_only = 1};
    key_keyset *pub = NULL;
    key_error err;
    char tok[KEY_TOKEN_MAX];
    key_verified out;
    assert_int_equal(key_keyset_open(&cfg, &pub, &err), PL_OK);
    /* it cannot sign */
    assert_int_equal(key_token_mint(pub, &f->clock.base, &std_claims, tok, sizeof tok, NULL, NULL),
                     PL_ERR_STATE);
    /* a verifier on it accepts what the full key set mints, and follows a rotation once the
     * public-only set is reloaded (as postly-mcp does on its timer) */
    key_verifier_free(f->v);
    {
        key_keyset *full = f->ks;
        f->ks = pub;
        f->v = new_verifier(f, 30, 64);
        f->ks = full;
    }
    mint(f, &std_claims, tok, NULL);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    mint(f, &std_claims, tok, NULL); /* signed by a key pub has not seen yet */
    assert_int_equal(verify(f, tok, &out), KEY_REASON_KID);
    assert_int_equal(key_keyset_reload(pub, &err), PL_OK);
    assert_int_equal(verify(f, tok, &out), KEY_REASON_NONE);
    key_verifier_free(f->v);
    f->v = NULL;
    key_keyset_free(pub);
}

static void test_verifier_cfg_checked(void **state)
{
    fx *f = *state;
    key_verifier *v = NULL;
    key_verifier_cfg ok = {.issuer = T_ISS, .audience = T_AUD, .keyset = f->ks};
    key_verifier_cfg c;
    c = ok;
    c.issuer = NULL;
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    c = ok;
    c.audience = "";
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    c = ok;
    c.fetch = fetch_jwks; /* two sources */
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    c = ok;
    c.keyset = NULL; /* none */
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    c = ok;
    c.leeway_s = INT64_MAX;
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    c = ok;
    c.backend = (key_sig_backend)7;
    assert_int_equal(key_verifier_new(&c, &v), PL_ERR_INVALID);
    assert_null(v);
    assert_int_equal(key_verifier_new(&ok, &v), PL_OK);
    key_verifier_free(v);
    key_verifier_free(NULL);
}

static void test_reasons_table(void **state)
{
    (void)state;
    for (int r = 0; r < KEY_REASON__COUNT; r++) {
        assert_non_null(key_reason_name((key_reason)r));
        assert_non_null(key_reason_text((key_reason)r));
        assert_string_not_equal(key_reason_name((key_reason)r), "unknown");
    }
    assert_int_equal(key_reason_classify(KEY_REASON_NONE), KEY_CLASS_OK);
    assert_int_equal(key_reason_classify(KEY_REASON_EXPIRED), KEY_CLASS_INVALID_TOKEN);
    assert_int_equal(key_reason_classify(KEY_REASON_SIGNATURE), KEY_CLASS_INVALID_TOKEN);
    assert_int_equal(key_reason_classify(KEY_REASON_JWKS_UNAVAILABLE), KEY_CLASS_SERVER_ERROR);
    assert_int_equal(key_reason_classify(KEY_REASON_INTERNAL), KEY_CLASS_SERVER_ERROR);
    assert_string_equal(key_reason_name(KEY_REASON__COUNT), "unknown");
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_setup_teardown(fn, setup_openssl, teardown),                                  \
        cmocka_unit_test_setup_teardown(fn, setup_liboauth2, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_roundtrip),
        BOTH(test_lifetime_and_jti),
        cmocka_unit_test_setup_teardown(test_mint_rejects_bad_claims, setup_openssl, teardown),
        cmocka_unit_test_setup_teardown(test_payload_matches_jansson, setup_openssl, teardown),
        cmocka_unit_test_setup_teardown(test_mint_refuses_bad_utf8, setup_openssl, teardown),
        cmocka_unit_test_setup_teardown(test_libjwt_decodes, setup_openssl, teardown),
        cmocka_unit_test_setup_teardown(test_liboauth2_verifies, setup_openssl, teardown),
        BOTH(test_alg_none),
        BOTH(test_hs256_with_public_key),
        BOTH(test_rs256),
        BOTH(test_wrong_and_unknown_kid),
        BOTH(test_expired),
        BOTH(test_not_yet_valid),
        BOTH(test_aud_and_iss),
        BOTH(test_tampered),
        BOTH(test_signature_spelling),
        BOTH(test_missing_or_mistyped_claims),
        BOTH(test_duplicate_claims_refused),
        BOTH(test_typ),
        BOTH(test_oversized),
        BOTH(test_rotation),
        BOTH(test_pruned_key_refused),
        BOTH(test_removed_key_refused_at_once),
        BOTH(test_reload_after_rotation_elsewhere),
        cmocka_unit_test_setup_teardown(test_mint_threads, setup_openssl, teardown),
        BOTH(test_cache_bounded_lru),
        BOTH(test_cache_hit_only_identical),
        BOTH(test_cache_many_tokens),
        BOTH(test_fetch_refetch_once_per_interval),
        BOTH(test_public_only_key_set),
        cmocka_unit_test_setup_teardown(test_verifier_cfg_checked, setup_openssl, teardown),
        cmocka_unit_test(test_reasons_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
