/*
 * keys/ecdsa_int.h — ECDSA P-256 signatures through OpenSSL's EC_KEY functions, for minting
 * (keys/keyset.c); not part of the public contract.
 *
 * Why not EVP_PKEY_sign: these functions are deprecated in OpenSSL 3.0 (still present in
 * every 3.x release) but they are the only public way to split an ECDSA signature in two
 * (docs/keys.md, "Precomputed nonces"):
 *   setup  k uniformly random in [1, n-1] from OpenSSL's private DRBG, r = x(k·G) mod n and
 *          k⁻¹ mod n (ECDSA_sign_setup: the scalar multiplication and both inversions, about
 *          97 % of a signature), needing no message;
 *   sign   s = k⁻¹·(h + r·d) mod n for one message (ECDSA_do_sign_ex with that k⁻¹ and r).
 * Everything is OpenSSL's own code (its constant-time P-256 and Montgomery arithmetic, the
 * same that EVP_PKEY_sign runs); nothing here does arithmetic. They also skip the provider
 * dispatch and the DER encoding that EVP_PKEY_sign adds and the JWS form has to undo.
 *
 * A pair from setup must sign exactly one message and be freed (key_ecdsa_pair_free wipes
 * it): two signatures with one k give the private key away.
 *
 * Threads: any; an EC_KEY is only read by these calls.
 */
#ifndef POSTLY_KEYS_ECDSA_INT_H
#define POSTLY_KEYS_ECDSA_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/err.h"

/* One precomputed (k⁻¹, r); owned by whoever holds it. */
typedef struct key_ecdsa_pair {
    BIGNUM *kinv;
    BIGNUM *r;
} key_ecdsa_pair;

/* The EC_KEY view of a P-256 private EVP_PKEY (a new reference: key_ecdsa_key_free). NULL
 * when pkey is not an EC key or out of memory. */
EC_KEY *key_ecdsa_key(EVP_PKEY *pkey);
void key_ecdsa_key_free(EC_KEY *ec);

/* A fresh pair for ec's group (ECDSA_sign_setup). bn may be NULL (a BN_CTX is then made for
 * the call). PL_ERR_CRYPTO when OpenSSL fails (the random generator included). */
pl_rc key_ecdsa_setup(EC_KEY *ec, BN_CTX *bn, key_ecdsa_pair *out);
void key_ecdsa_pair_free(key_ecdsa_pair *p); /* wipes and frees both; NULL-safe, idempotent */

/* The ECDSA signature of the digest h (hlen bytes, SHA-256: 32) with ec's private key, as
 * the 64-byte R||S of RFC 7518 §3.4. With pair non-NULL its k is used (and pair is freed
 * whatever happens: it never signs twice); with pair NULL, OpenSSL draws the nonce itself
 * (ECDSA_do_sign: k from the DRBG hedged with the key and the digest). PL_ERR_CRYPTO. */
pl_rc key_ecdsa_sign(EC_KEY *ec, const uint8_t *h, size_t hlen, key_ecdsa_pair *pair,
                     uint8_t rs[64]);

#endif
