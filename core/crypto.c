#include "crypto.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* SHA-256 fetched once per process. In OpenSSL 3 the legacy EVP_sha256() handle makes every
 * EVP_DigestInit fetch the implementation again from the provider store (a lock and a name
 * lookup: about 2.3 k of the 5.7 k instructions a 32-byte EVP_Digest costs, by callgrind);
 * an explicitly fetched EVP_MD is immutable and may be shared by every thread (OpenSSL 3
 * "Multi-threading" in openssl-threads(7)). Written once under pthread_once, never freed: the
 * one write-once process-wide value in core/ (STYLE.md: no *mutable* globals). If the fetch
 * fails (no default provider), the legacy handle is used, as before. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_fetched;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    (void)pthread_once(&sha256_once, sha256_fetch);
    return sha256_fetched ? sha256_fetched : EVP_sha256();
}

pl_rc core_random(uint8_t *buf, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return PL_ERR_INVALID;
    return RAND_bytes(buf, (int)n) == 1 ? PL_OK : PL_ERR_CRYPTO;
}

pl_rc core_random_token(char *out, size_t outsz, size_t nbytes)
{
    uint8_t raw[128];
    pl_rc rc;
    if (nbytes == 0 || nbytes > sizeof raw)
        return PL_ERR_INVALID;
    rc = core_random(raw, nbytes);
    if (rc == PL_OK)
        rc = core_b64url_encode(raw, nbytes, out, outsz, NULL);
    core_wipe(raw, sizeof raw);
    return rc;
}

void core_sha256(const void *data, size_t len, uint8_t out[CORE_SHA256_LEN])
{
    EVP_Digest(data, len, out, NULL, sha256_md(), NULL);
}

/* HMAC (RFC 2104 §2) over the shared SHA-256: H(K ^ opad || H(K ^ ipad || data)), a key longer
 * than the 64-byte block hashed first. OpenSSL 3's one-shot HMAC() goes through EVP_Q_mac,
 * which fetches the HMAC implementation and the digest by name on every call (≈ 22 k
 * instructions for 64 bytes of data against ≈ 12.7 k here; EVP_MAC with a pre-fetched MAC
 * still ≈ 19.9 k). Checked against RFC 4231 and against OpenSSL's HMAC() on random keys and
 * messages (tests/core/test_crypto.c). */
#define SHA256_BLOCK 64

pl_rc core_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CORE_SHA256_LEN])
{
    const EVP_MD *md = sha256_md();
    uint8_t k[SHA256_BLOCK] = {0}, pad[SHA256_BLOCK], inner[CORE_SHA256_LEN];
    EVP_MD_CTX *c = NULL;
    unsigned int n = 0;
    pl_rc rc = PL_ERR_INVALID;

    if (keylen > (size_t)INT32_MAX || (!key && keylen) || (!data && len) || !out)
        return PL_ERR_INVALID;
    rc = PL_ERR_CRYPTO;
    if (keylen > SHA256_BLOCK) {
        if (EVP_Digest(key, keylen, k, NULL, md, NULL) != 1)
            goto out;
    } else if (keylen) {
        memcpy(k, key, keylen);
    }
    if (!(c = EVP_MD_CTX_new()))
        goto out;
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    if (EVP_DigestInit_ex(c, md, NULL) != 1 || EVP_DigestUpdate(c, pad, SHA256_BLOCK) != 1 ||
        EVP_DigestUpdate(c, data, len) != 1 || EVP_DigestFinal_ex(c, inner, &n) != 1 ||
        n != CORE_SHA256_LEN)
        goto out;
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    if (EVP_DigestInit_ex(c, md, NULL) != 1 || EVP_DigestUpdate(c, pad, SHA256_BLOCK) != 1 ||
        EVP_DigestUpdate(c, inner, sizeof inner) != 1 || EVP_DigestFinal_ex(c, out, &n) != 1 ||
        n != CORE_SHA256_LEN)
        goto out;
    rc = PL_OK;
out:
    EVP_MD_CTX_free(c);
    core_wipe(k, sizeof k);
    core_wipe(pad, sizeof pad);
    core_wipe(inner, sizeof inner);
    return rc;
}

/* Keeps the compiler from reasoning about acc (and so from ending the loop early once it is
 * non-zero); emits no instruction. */
#if defined(__GNUC__) || defined(__clang__)
#define OPAQUE(x) __asm__ __volatile__("" : "+r"(x))
#else
#define OPAQUE(x) ((void)0)
#endif

/* Eight bytes at a time: CRYPTO_memcmp compares one byte per iteration in OpenSSL 3.0's
 * x86-64 assembly (≈ 7 instructions a byte: 5.2 k for a 741-byte token, against 0.6 k here).
 * Every byte of both inputs is read whatever their contents; the only branch is on len. */
int core_ct_equal(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    uint64_t acc = 0, u, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&u, x + i, 8);
        memcpy(&w, y + i, 8);
        acc |= u ^ w;
        OPAQUE(acc);
    }
    for (; i < len; i++) {
        acc |= (uint64_t)(x[i] ^ y[i]);
        OPAQUE(acc);
    }
    return (int)(((acc | (0 - acc)) >> 63) ^ 1); /* acc == 0, without a branch */
}

/* SipHash-2-4 (Aumasson, Bernstein 2012), the reference algorithm: 64-bit words read
 * little-endian, the length in the top byte of the last word. */
#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = ROTL64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = ROTL64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = ROTL64(v2, 32);                                                                       \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

uint64_t core_siphash24(const uint8_t key[CORE_SIPHASH_KEY_LEN], const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + (len & ~(size_t)7);
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t m, b = (uint64_t)len << 56;

    for (; p != end; p += 8) {
        m = load_le64(p);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pl_rc core_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outsz, size_t *outlen)
{
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    size_t i, o = 0;
    if (need + 1 > outsz)
        return PL_ERR_TOO_LARGE;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return PL_OK;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

pl_rc core_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz, size_t *outlen)
{
    size_t o = 0, i;
    uint32_t acc = 0;
    int bits = 0;
    if (len % 4 == 1)
        return PL_ERR_INVALID;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outsz)
        return PL_ERR_TOO_LARGE;
    for (i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return PL_ERR_INVALID;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* RFC 4648 §3.5: the unused low bits of the last character must be zero. */
    if (bits && (acc & ((1u << bits) - 1)))
        return PL_ERR_INVALID;
    if (outlen)
        *outlen = o;
    return PL_OK;
}

pl_rc core_hex_encode(const uint8_t *in, size_t len, char *out, size_t outsz)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    if (2 * len + 1 > outsz)
        return PL_ERR_TOO_LARGE;
    for (i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
    return PL_OK;
}

void core_wipe(void *p, size_t len)
{
    if (p)
        OPENSSL_cleanse(p, len);
}
