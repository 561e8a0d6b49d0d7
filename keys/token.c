/*
 * keys/token.c — minting RFC 9068 access tokens with OpenSSL (see keys/token.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "core/crypto.h"
#include "keys/keyset_int.h"
#include "keys/token.h"

#define DER_SIG_MAX 80 /* a DER P-256 ECDSA signature is at most 72 bytes */

/* Claim strings: non-empty (unless allowed), bounded, no control characters (they would
 * survive JSON escaping but have no business in any of these claims). */
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
    return 1;
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
    EVP_PKEY *pkey = NULL;
    const EVP_MD *sha256 = NULL;
    const char *kid = NULL, *hdr = NULL;
    size_t hdrlen = 0, paylen, pos, b64len;
    char jti[KEY_JTI_SIZE];
    const char *jti_use;
    json_t *payload = NULL;
    char paytext[KEY_TOKEN_MAX];
    EVP_MD_CTX *md = NULL;
    uint8_t der[DER_SIG_MAX], rs[64];
    size_t derlen = sizeof der;
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
    if ((rc = key_keyset_signer(ks, &pkey, &sha256, &kid, &hdr, &hdrlen)) != PL_OK)
        goto out;
    if (claims->jti) {
        jti_use = claims->jti;
    } else {
        if ((rc = core_random_token(jti, sizeof jti, 16)) != PL_OK)
            goto out;
        jti_use = jti;
    }
    now = core_clock_now_s(clock);
    life = claims->lifetime_s > 0 ? claims->lifetime_s : KEY_TOKEN_LIFETIME_DEFAULT_S;
    exp = now + life;

    /* RFC 9068 §2.2 claims, plus ws, gid and cls (ARCHITECTURE.md §5), in this order. Built
     * member by member (json_pack's format parsing costs more than the building); the names
     * are constant ASCII, the values are checked (json_stringn refuses invalid UTF-8). */
    {
        static const char *const names[] = {"iss",   "sub", "aud", "client_id",
                                            "scope", "ws",  "gid", "cls"};
        const char *values[] = {claims->iss,   claims->sub, claims->aud, claims->client_id,
                                claims->scope, claims->ws,  claims->gid, claims->cls};
        int bad = !(payload = json_object());
        for (size_t i = 0; !bad && i < sizeof names / sizeof names[0]; i++)
            bad = json_object_set_new_nocheck(payload, names[i], json_string(values[i])) != 0;
        bad = bad || json_object_set_new_nocheck(payload, "iat", json_integer(now)) != 0 ||
              json_object_set_new_nocheck(payload, "nbf", json_integer(now)) != 0 ||
              json_object_set_new_nocheck(payload, "exp", json_integer(exp)) != 0 ||
              json_object_set_new_nocheck(payload, "jti", json_string(jti_use)) != 0;
        if (bad) {
            rc = PL_ERR_INVALID; /* json_string refuses invalid UTF-8 (or out of memory) */
            goto out;
        }
    }
    /* into a stack buffer: no allocation for the text (claims within bounds always fit) */
    paylen = json_dumpb(payload, paytext, sizeof paytext, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (paylen == 0 || paylen > sizeof paytext) {
        rc = PL_ERR_TOO_LARGE;
        goto out;
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

    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, sha256, NULL, pkey) != 1 ||
        EVP_DigestSign(md, der, &derlen, (const unsigned char *)out, pos) != 1) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    /* RFC 7518 §3.4: the JWS signature is R || S, 32 bytes each, not DER. */
    if ((rc = key_sig_der_to_jose(der, derlen, rs)) != PL_OK)
        goto out;
    out[pos++] = '.';
    if ((rc = core_b64url_encode(rs, sizeof rs, out + pos, outsz - pos, &b64len)) != PL_OK)
        goto out;
    pos += b64len;
    if (outlen)
        *outlen = pos;
    if (minted) {
        memcpy(minted->kid, kid, KEY_KID_SIZE);
        snprintf(minted->jti, sizeof minted->jti, "%s", jti_use);
        minted->iat = now;
        minted->exp = exp;
    }
    rc = PL_OK;
out:
    if (rc != PL_OK && out && outsz)
        out[0] = '\0';
    EVP_MD_CTX_free(md);
    json_decref(payload);
    return rc;
}
