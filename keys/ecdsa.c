/*
 * keys/ecdsa.c — see keys/ecdsa_int.h. The only file of the project that uses OpenSSL's
 * deprecated EC_KEY/ECDSA functions; the suppression below is limited to it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "keys/ecdsa_int.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

EC_KEY *key_ecdsa_key(EVP_PKEY *pkey)
{
    return pkey ? EVP_PKEY_get1_EC_KEY(pkey) : NULL;
}

void key_ecdsa_key_free(EC_KEY *ec)
{
    EC_KEY_free(ec); /* clears the private scalar */
}

pl_rc key_ecdsa_setup(EC_KEY *ec, BN_CTX *bn, key_ecdsa_pair *out)
{
    out->kinv = out->r = NULL;
    if (!ec || ECDSA_sign_setup(ec, bn, &out->kinv, &out->r) != 1) {
        key_ecdsa_pair_free(out);
        return PL_ERR_CRYPTO;
    }
    return PL_OK;
}

void key_ecdsa_pair_free(key_ecdsa_pair *p)
{
    if (!p)
        return;
    BN_clear_free(p->kinv);
    BN_clear_free(p->r);
    p->kinv = p->r = NULL;
}

pl_rc key_ecdsa_sign(EC_KEY *ec, const uint8_t *h, size_t hlen, key_ecdsa_pair *pair,
                     uint8_t rs[64])
{
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r = NULL, *s = NULL;
    pl_rc rc = PL_ERR_CRYPTO;
    if (!ec || !h || hlen == 0 || hlen > 64)
        goto out;
    /* With a precomputed pair, OpenSSL computes s only; should s be 0 (probability ~2^-256)
     * it refuses (EC_R_NEED_NEW_SETUP_VALUES) rather than draw another k itself. */
    sig = pair && pair->kinv && pair->r ? ECDSA_do_sign_ex(h, (int)hlen, pair->kinv, pair->r, ec)
                                        : ECDSA_do_sign(h, (int)hlen, ec);
    if (!sig && pair && pair->kinv)
        sig = ECDSA_do_sign(h, (int)hlen, ec);
    if (!sig)
        goto out;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32)
        goto out;
    rc = PL_OK;
out:
    key_ecdsa_pair_free(pair);
    ECDSA_SIG_free(sig); /* BN_clear_free of r and s */
    return rc;
}
