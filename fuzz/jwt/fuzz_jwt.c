/*
 * fuzz/jwt/fuzz_jwt.c — libFuzzer target for the token verifier's pre-checks and parsing
 * (size bound, compact-JWS split, header JSON, DER conversion, payload JSON, claims) and for
 * the JWKS parser.
 *
 * Input: the first byte picks the mode, the rest is the data.
 *   bit 2 set: the data is a payload: the strict claims reader and jansson must agree
 *         (whenever jansson reads an object without repeated members, so must the reader,
 *         with the same claims); otherwise
 *   bit 0 clear: the data is a token, verified against FUZZ_JWKS (a fixed public key whose
 *         private half signed the seeds in corpus/, so mutations reach the claim checks);
 *   bit 0 set: the data is a JWKS document, then a seed token is verified against it;
 *   bit 1 picks the signature backend (OpenSSL / liboauth2).
 * The clock is fixed at the seeds' issue time. Nothing here may crash, leak or read out of
 * bounds whatever the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "keys/claims_int.h"
#include "keys/verify.h"

/* The public half of the key that signed the seeds (generated once, private half discarded). */
#define FUZZ_JWKS                                                                                  \
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" FUZZ_X "\",\"y\":\"" FUZZ_Y            \
    "\",\"kid\":\"" FUZZ_KID "\",\"use\":\"sig\",\"alg\":\"ES256\"}]}"
#include "fuzz_key.h"

typedef struct src {
    const uint8_t *data;
    size_t len;
} src;

static pl_rc fetch(void *ctx, char **json, size_t *len)
{
    const src *s = ctx;
    *json = malloc(s->len + 1);
    if (!*json)
        return PL_ERR_NOMEM;
    memcpy(*json, s->data, s->len);
    (*json)[s->len] = '\0';
    *len = s->len;
    return PL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void differential(const char *json, size_t len)
{
    static const char *const names[KEY_C__COUNT] = {
        "iss", "sub", "aud", "client_id", "scope", "ws", "gid", "cls", "iat", "nbf", "exp", "jti"};
    char *scratch = malloc(len + 1);
    key_payload p;
    json_error_t e;
    json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    pl_rc rc = key_payload_parse(json, len, scratch, len + 1, "https://mcp.postly.test/mcp", &p);
    /* jansson reads a NUL byte outside strings as the end of the text and then accepts the
     * object before it; RFC 8259 has no such rule and the reader refuses it. */
    if (json_is_object(j) && !memchr(json, '\0', len)) {
        /* nesting deeper than KEY_JSON_DEPTH (which needs more opening brackets than that) is
         * the reader's only other refusal */
        size_t open = 0;
        for (size_t i = 0; i < len; i++)
            open += json[i] == '[' || json[i] == '{';
        if (rc != PL_OK && open <= KEY_JSON_DEPTH)
            abort();
        for (int c = 0; rc == PL_OK && c < KEY_C__COUNT; c++) {
            json_t *v = json_object_get(j, names[c]);
            if (!v ? p.c[c].type != KEY_CT_ABSENT
                : json_is_string(v)
                    ? p.c[c].type != KEY_CT_STRING || p.c[c].len != json_string_length(v) ||
                          memcmp(p.c[c].s, json_string_value(v), p.c[c].len) != 0
                : json_is_integer(v)
                    ? p.c[c].type != KEY_CT_INT || p.c[c].i != (int64_t)json_integer_value(v)
                    : p.c[c].type == KEY_CT_STRING || p.c[c].type == KEY_CT_INT)
                abort();
        }
    }
    json_decref(j);
    free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    core_fake_clock clock;
    src jwks = {(const uint8_t *)FUZZ_JWKS, sizeof FUZZ_JWKS - 1};
    key_verifier_cfg cfg = {.issuer = "https://auth.postly.test",
                            .audience = "https://mcp.postly.test/mcp",
                            .leeway_s = 30,
                            .cache_entries = 4,
                            .clock = &clock.base,
                            .fetch = fetch,
                            .fetch_ctx = &jwks};
    key_verifier *v = NULL;
    key_verified out;
    key_reason r;
    const char *tok;
    size_t toklen;

    if (size < 1)
        return 0;
    if (data[0] & 4) {
        differential((const char *)data + 1, size - 1);
        return 0;
    }
    core_fake_clock_init(&clock, FUZZ_NOW_S * 1000LL);
    cfg.backend = (data[0] & 2) ? KEY_SIG_LIBOAUTH2 : KEY_SIG_OPENSSL;
    if (data[0] & 1) {
        jwks.data = data + 1;
        jwks.len = size - 1;
        tok = FUZZ_SEED_TOKEN;
        toklen = strlen(FUZZ_SEED_TOKEN);
    } else {
        tok = (const char *)data + 1;
        toklen = size - 1;
    }
    if (key_verifier_new(&cfg, &v) != PL_OK)
        return 0;
    /* twice: the second call goes through the cache when the first succeeded */
    (void)key_verifier_verify(v, tok, toklen, &out, &r);
    (void)key_verifier_verify(v, tok, toklen, &out, &r);
    key_verifier_free(v);
    return 0;
}
