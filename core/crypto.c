#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

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
    EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL);
}

pl_rc core_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CORE_SHA256_LEN])
{
    unsigned int outlen = 0;
    if (keylen > (size_t)INT32_MAX)
        return PL_ERR_INVALID;
    if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) || outlen != CORE_SHA256_LEN)
        return PL_ERR_CRYPTO;
    return PL_OK;
}

int core_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
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
