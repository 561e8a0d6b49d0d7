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

/* The signing key: the active key's private EVP_PKEY, SHA-256 (fetched once) and the
 * base64url of its protected header {"alg":"ES256","typ":"at+jwt","kid":"…"} (precomputed
 * once). Borrowed; valid until the next mutating call on ks. PL_ERR_STATE when there is no
 * active key. */
pl_rc key_keyset_signer(const key_keyset *ks, EVP_PKEY **pkey, const EVP_MD **md, const char **kid,
                        const char **header_b64, size_t *header_b64_len);

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
