/*
 * keys/keyset_int.h — what token.c and verify.c need from the key set and each other;
 * not part of the public contract.
 */
#ifndef POSTLY_KEYS_KEYSET_INT_H
#define POSTLY_KEYS_KEYSET_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "core/err.h"
#include "keys/keyset.h"

/* Signing with the active key (keys/token.c). key_signing_begin fills sg with the active
 * key's kid and the base64url of its protected header {"alg":"ES256","typ":"at+jwt","kid":"…"}
 * (borrowed; valid until the next mutating call on ks) and reserves one of the key set's
 * signing slots for the caller if one is free (contexts made once per key, a pool of random
 * bytes); key_signing_end gives it back and must follow every successful begin. Any thread;
 * several at once; never while a mutating call runs (keys/keyset.h).
 *  key_signing_begin: PL_OK; PL_ERR_STATE when there is no active key (or sg is NULL).
 *  key_signing_random: n <= 256 random bytes (RAND_bytes output, pooled in the slot, each byte
 *    handed out once and wiped from the pool); PL_ERR_CRYPTO when the generator fails.
 *  key_signing_sign: the ECDSA signature of SHA-256(msg), as the 64-byte R||S of RFC 7518
 *    §3.4, with one of the key set's precomputed nonces when it has one (key_keyset_presign),
 *    else with a nonce OpenSSL draws for this signature; PL_ERR_CRYPTO, PL_ERR_NOMEM. */
typedef struct key_sign_slot key_sign_slot;
typedef struct key_signing {
    const char *kid;
    const char *header_b64;
    size_t header_b64_len;
    EVP_PKEY *pkey;            /* private to keyset.c */
    const EVP_MD *sha256;      /* private to keyset.c */
    key_sign_slot *slot;       /* private to keyset.c; NULL: every slot was taken */
    struct presign_pool *pool; /* private to keyset.c */
} key_signing;

pl_rc key_signing_begin(const key_keyset *ks, key_signing *sg);
pl_rc key_signing_random(key_signing *sg, uint8_t *buf, size_t n);
pl_rc key_signing_sign(key_signing *sg, const uint8_t *msg, size_t len, uint8_t rs[64]);
void key_signing_end(key_signing *sg);

/* RFC 7638 thumbprint of a P-256 public key given as 32-byte big-endian coordinates. */
pl_rc key_thumbprint(const uint8_t x[32], const uint8_t y[32], char kid[KEY_KID_SIZE]);

/* The 32-byte affine coordinates of an EC P-256 key (public or private). */
pl_rc key_pkey_coords(const EVP_PKEY *pkey, uint8_t x[32], uint8_t y[32]);

/* A public EVP_PKEY from P-256 coordinates (the point is checked to be on the curve). */
pl_rc key_pkey_from_coords(const uint8_t x[32], const uint8_t y[32], EVP_PKEY **out);

/* ECDSA signature encodings: DER (OpenSSL) <-> 64-byte R||S (RFC 7518 §3.4). */
pl_rc key_sig_der_to_jose(const uint8_t *der, size_t derlen, uint8_t rs[64]);
pl_rc key_sig_jose_to_der(const uint8_t rs[64], uint8_t *der, size_t dersz, size_t *derlen);

#endif
