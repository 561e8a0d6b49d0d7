/*
 * keys/jose.c — the small JOSE helpers shared by the key set, minting and verification:
 * RFC 7638 thumbprints, P-256 coordinates, and ECDSA signature encodings.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "core/crypto.h"
#include "keys/keyset_int.h"

pl_rc key_thumbprint(const uint8_t x[32], const uint8_t y[32], char kid[KEY_KID_SIZE])
{
    char bx[CORE_B64URL_SIZE(32)], by[CORE_B64URL_SIZE(32)];
    char json[160];
    uint8_t digest[CORE_SHA256_LEN];
    pl_rc rc;
    int n;

    if ((rc = core_b64url_encode(x, 32, bx, sizeof bx, NULL)) != PL_OK ||
        (rc = core_b64url_encode(y, 32, by, sizeof by, NULL)) != PL_OK)
        return rc;
    /* RFC 7638 §3.2: required members only, lexicographic order, no whitespace. */
    n = snprintf(json, sizeof json, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                 bx, by);
    if (n < 0 || (size_t)n >= sizeof json)
        return PL_ERR_INTERNAL;
    core_sha256(json, (size_t)n, digest);
    return core_b64url_encode(digest, sizeof digest, kid, KEY_KID_SIZE, NULL);
}

pl_rc key_pkey_coords(const EVP_PKEY *pkey, uint8_t x[32], uint8_t y[32])
{
    BIGNUM *bx = NULL, *by = NULL;
    char group[32];
    size_t glen = 0;
    pl_rc rc = PL_ERR_CRYPTO;

    if (!pkey || !EVP_PKEY_is_a(pkey, "EC"))
        goto out;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen) ||
        strcmp(group, "prime256v1") != 0)
        goto out;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
        !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by))
        goto out;
    if (BN_bn2binpad(bx, x, 32) != 32 || BN_bn2binpad(by, y, 32) != 32)
        goto out;
    rc = PL_OK;
out:
    BN_free(by);
    BN_free(bx);
    return rc;
}

pl_rc key_pkey_from_coords(const uint8_t x[32], const uint8_t y[32], EVP_PKEY **out)
{
    uint8_t point[65];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    pl_rc rc = PL_ERR_CRYPTO;

    *out = NULL;
    point[0] = 0x04; /* SEC 1 §2.3.3 uncompressed point */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    /* fromdata decodes the point with EC_POINT_oct2point, which refuses points off the curve */
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto out;
    *out = pkey;
    pkey = NULL;
    rc = PL_OK;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* One DER INTEGER (X.690 §8.3) at *p (end at `end`) into a 32-byte big-endian field. */
static int der_int(const uint8_t **p, const uint8_t *end, uint8_t out[32])
{
    const uint8_t *q = *p;
    size_t len;
    if (end - q < 2 || q[0] != 0x02)
        return 0;
    len = q[1];
    q += 2;
    if (len == 0 || len > 33 || (size_t)(end - q) < len || (q[0] & 0x80))
        return 0; /* empty, too long, truncated or negative */
    if (len > 1 && q[0] == 0x00 && !(q[1] & 0x80))
        return 0; /* not minimal */
    if (q[0] == 0x00 && len > 1) {
        q++;
        len--;
    }
    if (len > 32)
        return 0;
    memset(out, 0, 32 - len);
    memcpy(out + 32 - len, q, len);
    *p = q + len;
    return 1;
}

pl_rc key_sig_der_to_jose(const uint8_t *der, size_t derlen, uint8_t rs[64])
{
    const uint8_t *p = der, *end = der + derlen;
    /* ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3); for P-256 the
     * whole thing is at most 72 bytes, so the length is always in the short form. */
    if (derlen < 8 || der[0] != 0x30 || der[1] != derlen - 2 || der[1] > 0x7f)
        return PL_ERR_CRYPTO;
    p += 2;
    if (!der_int(&p, end, rs) || !der_int(&p, end, rs + 32) || p != end)
        return PL_ERR_CRYPTO;
    return PL_OK;
}

/* Appends the minimal DER INTEGER of a 32-byte unsigned big-endian value. */
static size_t put_int(const uint8_t v[32], uint8_t *out)
{
    size_t i = 0, n;
    while (i < 31 && v[i] == 0)
        i++;
    n = 32 - i;
    out[0] = 0x02;
    if (v[i] & 0x80) {
        out[1] = (uint8_t)(n + 1);
        out[2] = 0x00;
        memcpy(out + 3, v + i, n);
        return n + 3;
    }
    out[1] = (uint8_t)n;
    memcpy(out + 2, v + i, n);
    return n + 2;
}

pl_rc key_sig_jose_to_der(const uint8_t rs[64], uint8_t *der, size_t dersz, size_t *derlen)
{
    uint8_t body[70];
    size_t n;
    n = put_int(rs, body);
    n += put_int(rs + 32, body + n);
    if (n + 2 > dersz)
        return PL_ERR_TOO_LARGE;
    der[0] = 0x30;
    der[1] = (uint8_t)n;
    memcpy(der + 2, body, n);
    *derlen = n + 2;
    return PL_OK;
}
