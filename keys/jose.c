/*
 * keys/jose.c — the small JOSE helpers shared by the key set, minting and verification:
 * RFC 7638 thumbprints, P-256 coordinates, and ECDSA signature encodings.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
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

pl_rc key_sig_der_to_jose(const uint8_t *der, size_t derlen, uint8_t rs[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    const BIGNUM *r, *s;
    pl_rc rc = PL_ERR_CRYPTO;

    if (!sig)
        return PL_ERR_CRYPTO;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32)
        rc = PL_OK;
    ECDSA_SIG_free(sig);
    return rc;
}

pl_rc key_sig_jose_to_der(const uint8_t rs[64], uint8_t *der, size_t dersz, size_t *derlen)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    unsigned char *p = der;
    int n;
    pl_rc rc = PL_ERR_CRYPTO;

    if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s))
        goto out;
    r = s = NULL; /* owned by sig now */
    n = i2d_ECDSA_SIG(sig, NULL);
    if (n <= 0 || (size_t)n > dersz)
        goto out;
    n = i2d_ECDSA_SIG(sig, &p);
    if (n <= 0)
        goto out;
    *derlen = (size_t)n;
    rc = PL_OK;
out:
    BN_free(s);
    BN_free(r);
    ECDSA_SIG_free(sig);
    return rc;
}
