/*
 * core/crypto.h — random bytes, hashing, constant-time comparison and the text encodings
 * (base64url without padding, lower-case hex) that tokens, codes and ids are made of.
 *
 * All functions are thread-safe (OpenSSL 3). Output buffers are caller-owned; every function
 * that writes text NUL-terminates it and fails with PL_ERR_TOO_LARGE when the buffer is short.
 */
#ifndef POSTLY_CORE_CRYPTO_H
#define POSTLY_CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CORE_SHA256_LEN 32
/* Buffer size for the base64url text of n bytes, NUL included. */
#define CORE_B64URL_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* n cryptographically secure random bytes (RAND_bytes). PL_ERR_CRYPTO on failure. */
pl_rc core_random(uint8_t *buf, size_t n);

/* A random token: nbytes random bytes as base64url text in out (size outsz). Use nbytes >= 32
 * for secrets (ARCHITECTURE.md §5: >= 256 bits). */
pl_rc core_random_token(char *out, size_t outsz, size_t nbytes);

/* SHA-256 of data. The digest implementation is fetched from OpenSSL once per process. */
void core_sha256(const void *data, size_t len, uint8_t out[CORE_SHA256_LEN]);

/* HMAC-SHA256 (RFC 2104) of data under key (any length; longer than 64 bytes is hashed
 * first). PL_ERR_INVALID for NULL with a non-zero length; PL_ERR_CRYPTO if OpenSSL fails. */
pl_rc core_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CORE_SHA256_LEN]);

/* 1 when a and b (both len bytes) are equal, in time independent of their contents (it
 * depends on len only). */
int core_ct_equal(const void *a, const void *b, size_t len);

#define CORE_SIPHASH_KEY_LEN 16
/* SipHash-2-4 of data under a 128-bit secret key: a keyed hash for hash tables whose keys an
 * attacker chooses (bucket flooding needs the key). NOT a MAC for long-lived data and not a
 * substitute for comparing the bytes: equal hashes do not mean equal inputs. */
uint64_t core_siphash24(const uint8_t key[CORE_SIPHASH_KEY_LEN], const void *data, size_t len);

/* base64url (RFC 4648 §5) without padding. *outlen (may be NULL) gets the text length. */
pl_rc core_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outsz, size_t *outlen);

/* Decodes unpadded base64url text of length len. Rejects padding, whitespace and any character
 * outside the alphabet with PL_ERR_INVALID. *outlen gets the number of bytes written. */
pl_rc core_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz, size_t *outlen);

/* Lower-case hex of in; out needs 2*len+1 bytes. */
pl_rc core_hex_encode(const uint8_t *in, size_t len, char *out, size_t outsz);

/* Wipes a secret from memory (OPENSSL_cleanse). */
void core_wipe(void *p, size_t len);

#endif
