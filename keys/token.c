/*
 * keys/token.c — minting RFC 9068 access tokens with OpenSSL (see keys/token.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "keys/keyset_int.h"
#include "keys/token.h"

/* RFC 3629 §4: well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2 || c > 0xf4)
            return 0;
        len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (n - i < len)
            return 0;
        cp = c & (0xff >> (len + 1));
        for (size_t j = 1; j < len; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* Claim strings: non-empty (unless allowed), bounded, UTF-8, no control characters (they
 * have no business in any of these claims). */
static int claim_ok(const char *s, size_t max, int may_be_empty)
{
    size_t n;
    if (!s)
        return 0;
    n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !may_be_empty))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return utf8_ok((const unsigned char *)s, n);
}

/* ---- the payload, written directly ----
 * A small JSON writer for this one fixed shape: string and integer members, no nesting. Its
 * output is byte-for-byte what jansson's JSON_COMPACT dump of the same object gives (the
 * tests compare the two on random claims); it exists because building and dumping a jansson
 * tree was the largest cost of minting after the signature (docs/performance.md). */
typedef struct jw {
    char *p;
    size_t len, cap;
    int full;
} jw;

static void jw_raw(jw *w, const char *s, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

/* RFC 8259 §7: '"' and '\\' escaped; control characters never reach here (claim_ok). */
static void jw_str(jw *w, const char *s)
{
    const char *run = s;
    jw_raw(w, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            jw_raw(w, run, (size_t)(s - run));
            jw_raw(w, "\\", 1);
            run = s; /* the character itself follows the backslash */
        }
    }
    jw_raw(w, run, (size_t)(s - run));
    jw_raw(w, "\"", 1);
}

static void jw_member(jw *w, const char *name, int first)
{
    if (!first)
        jw_raw(w, ",", 1);
    jw_str(w, name);
    jw_raw(w, ":", 1);
}

/* A NumericDate (RFC 7519 §2): decimal digits, '-' first when negative (never in practice). */
static void jw_int(jw *w, int64_t v)
{
    char buf[CORE_DEC_I64_MAX];
    jw_raw(w, buf, core_dec_i64(v, buf));
}

static int claims_valid(const key_claims *c)
{
    return claim_ok(c->iss, KEY_CLAIM_MAX, 0) && claim_ok(c->sub, KEY_CLAIM_MAX, 0) &&
           claim_ok(c->aud, KEY_URL_CLAIM_MAX, 0) && claim_ok(c->client_id, KEY_URL_CLAIM_MAX, 0) &&
           claim_ok(c->scope, KEY_SCOPE_CLAIM_MAX, 1) && claim_ok(c->ws, KEY_CLAIM_MAX, 0) &&
           claim_ok(c->gid, KEY_CLAIM_MAX, 0) && claim_ok(c->cls, KEY_CLAIM_MAX, 0) &&
           (!c->jti || claim_ok(c->jti, KEY_CLAIM_MAX, 0));
}

pl_rc key_token_mint(const key_keyset *ks, const core_clock *clock, const key_claims *claims,
                     char *out, size_t outsz, size_t *outlen, key_minted *minted)
{
    key_signing sg = {0};
    int signing = 0;
    const char *hdr = NULL;
    size_t hdrlen = 0, paylen, pos, b64len;
    char jti[KEY_JTI_SIZE];
    uint8_t jti_raw[16];
    const char *jti_use;
    char paytext[KEY_TOKEN_MAX];
    uint8_t rs[64];
    int64_t now, exp, life;
    pl_rc rc;

    if (!ks || !claims || !out) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    if (!claims_valid(claims)) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    if ((rc = key_signing_begin(ks, &sg)) != PL_OK)
        goto out;
    signing = 1;
    hdr = sg.header_b64;
    hdrlen = sg.header_b64_len;
    if (claims->jti) {
        jti_use = claims->jti;
    } else {
        /* 128 random bits, base64url (RFC 7519 §4.1.7: unique with negligible collision) */
        if ((rc = key_signing_random(&sg, jti_raw, sizeof jti_raw)) != PL_OK ||
            (rc = core_b64url_encode(jti_raw, sizeof jti_raw, jti, sizeof jti, NULL)) != PL_OK)
            goto out;
        jti_use = jti;
    }
    now = core_clock_now_s(clock);
    life = claims->lifetime_s > 0 ? claims->lifetime_s : KEY_TOKEN_LIFETIME_DEFAULT_S;
    exp = now + life;

    /* RFC 9068 §2.2 claims, plus ws, gid and cls (ARCHITECTURE.md §5), in this order. */
    {
        static const char *const names[] = {"iss",   "sub", "aud", "client_id",
                                            "scope", "ws",  "gid", "cls"};
        const char *values[] = {claims->iss,   claims->sub, claims->aud, claims->client_id,
                                claims->scope, claims->ws,  claims->gid, claims->cls};
        jw w = {paytext, 0, sizeof paytext, 0};
        jw_raw(&w, "{", 1);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            jw_member(&w, names[i], i == 0);
            jw_str(&w, values[i]);
        }
        jw_member(&w, "iat", 0);
        jw_int(&w, now);
        jw_member(&w, "nbf", 0);
        jw_int(&w, now);
        jw_member(&w, "exp", 0);
        jw_int(&w, exp);
        jw_member(&w, "jti", 0);
        jw_str(&w, jti_use);
        jw_raw(&w, "}", 1);
        if (w.full) {
            rc = PL_ERR_TOO_LARGE;
            goto out;
        }
        paylen = w.len;
    }

    /* header_b64 "." payload_b64 "." sig_b64 (RFC 7515 §7.1). A token longer than
     * KEY_TOKEN_MAX is never minted: verifiers refuse it unread by default. */
    if (hdrlen + 1 + CORE_B64URL_SIZE(paylen) + 1 + CORE_B64URL_SIZE(64) > KEY_TOKEN_MAX ||
        hdrlen + 1 + CORE_B64URL_SIZE(paylen) + 1 + CORE_B64URL_SIZE(64) > outsz) {
        rc = PL_ERR_TOO_LARGE;
        goto out;
    }
    memcpy(out, hdr, hdrlen);
    pos = hdrlen;
    out[pos++] = '.';
    if ((rc = core_b64url_encode((const uint8_t *)paytext, paylen, out + pos, outsz - pos,
                                 &b64len)) != PL_OK)
        goto out;
    pos += b64len;

    /* RFC 7518 §3.4: the JWS signature is R || S, 32 bytes each (not DER). */
    if ((rc = key_signing_sign(&sg, (const uint8_t *)out, pos, rs)) != PL_OK)
        goto out;
    out[pos++] = '.';
    if ((rc = core_b64url_encode(rs, sizeof rs, out + pos, outsz - pos, &b64len)) != PL_OK)
        goto out;
    pos += b64len;
    if (outlen)
        *outlen = pos;
    if (minted) {
        memcpy(minted->kid, sg.kid, KEY_KID_SIZE);
        snprintf(minted->jti, sizeof minted->jti, "%s", jti_use);
        minted->iat = now;
        minted->exp = exp;
    }
    rc = PL_OK;
out:
    if (rc != PL_OK && out && outsz)
        out[0] = '\0';
    if (signing)
        key_signing_end(&sg);
    core_wipe(jti_raw, sizeof jti_raw);
    return rc;
}
