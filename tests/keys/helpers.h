/*
 * tests/keys/helpers.h — temp data directories, a standard set of claims, and token forging
 * with OpenSSL and libjwt directly (never with the code under test), for the keys/ tests.
 */
#ifndef POSTLY_TESTS_KEYS_HELPERS_H
#define POSTLY_TESTS_KEYS_HELPERS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "core/crypto.h"

#define T_ISS      "https://auth.postly.test"
#define T_AUD      "https://mcp.postly.test/mcp"
#define T_START_MS 1800000000000LL /* 2027-01-15, an arbitrary fixed start */

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdtemp under TMPDIR (or /tmp); *data gets "<tmp>/var" (not created). */
static inline void temp_data(char root[256], char data[300])
{
    const char *base = getenv("TMPDIR");
    snprintf(root, 256, "%s/postly-keys-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(root))
        abort();
    snprintf(data, 300, "%s/var", root);
}

static inline char *b64u(const void *data, size_t len)
{
    size_t sz = CORE_B64URL_SIZE(len);
    char *out = malloc(sz);
    if (!out || core_b64url_encode(data, len, out, sz, NULL) != PL_OK)
        abort();
    return out;
}

/* The claims key_token_mint would produce, as a JSON object the tests can alter. */
static inline json_t *std_payload(long long now)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", T_ISS,
                     "sub", "user-1", "aud", T_AUD, "client_id", "https://client.example/cimd",
                     "scope", "posts:read drafts:create", "ws", "ws-1", "gid", "grant-1", "cls",
                     "ai", "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
                     (json_int_t)(now + 600), "jti", "jti-1");
}

static inline char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        abort();
    return s;
}

/* header.payload with the raw JSON texts given. */
static inline char *signing_input(const char *hdr, const char *payload)
{
    char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload));
    size_t n = strlen(h) + 1 + strlen(p) + 1;
    char *out = malloc(n + 128);
    snprintf(out, n, "%s.%s", h, p);
    free(h);
    free(p);
    return out;
}

static inline char *append_sig(char *input, const uint8_t *sig, size_t len)
{
    char *s = b64u(sig, len);
    size_t n = strlen(input) + 1 + strlen(s) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s", input, s);
    free(s);
    free(input);
    return out;
}

/* ES256 with OpenSSL: DER signature converted to R||S here, independently of keys/. */
static inline char *forge_es256(const char *hdr, const char *payload, EVP_PKEY *key)
{
    char *in = signing_input(hdr, payload);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80], rs[64];
    size_t dl = sizeof der;
    const unsigned char *p = der;
    ECDSA_SIG *sig;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &dl, (const unsigned char *)in, strlen(in)) != 1)
        abort();
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
    ECDSA_SIG_free(sig);
    return append_sig(in, rs, sizeof rs);
}

/* HS256 with an arbitrary secret (for the algorithm-confusion attack). */
static inline char *forge_hs256(const char *hdr, const char *payload, const void *secret,
                                size_t len)
{
    char *in = signing_input(hdr, payload);
    uint8_t mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)in, strlen(in), mac, &ml);
    return append_sig(in, mac, ml);
}

/* RS256 with a fresh RSA key. */
static inline char *forge_rs256(const char *hdr, const char *payload)
{
    char *in = signing_input(hdr, payload);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t sig[256];
    size_t sl = sizeof sig;
    if (!rsa || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rsa) != 1 ||
        EVP_DigestSign(md, sig, &sl, (const unsigned char *)in, strlen(in)) != 1)
        abort();
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(rsa);
    return append_sig(in, sig, sl);
}

/* The private key stored for kid in <data>/keys. */
static inline EVP_PKEY *load_private(const char *data, const char *kid)
{
    char path[512];
    FILE *f;
    EVP_PKEY *k;
    snprintf(path, sizeof path, "%s/keys/%s.pem", data, kid);
    f = fopen(path, "r");
    if (!f)
        abort();
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!k)
        abort();
    return k;
}

/* PEM of the public part of k (what an attacker can know). */
static inline char *public_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *mem = NULL, *out;
    long n;
    PEM_write_bio_PUBKEY(b, k);
    n = BIO_get_mem_data(b, &mem);
    out = malloc((size_t)n + 1);
    memcpy(out, mem, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static inline char *header_json(const char *alg, const char *typ, const char *kid)
{
    json_t *h = json_object();
    char *s;
    if (alg)
        json_object_set_new(h, "alg", json_string(alg));
    if (typ)
        json_object_set_new(h, "typ", json_string(typ));
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    s = dump(h);
    json_decref(h);
    return s;
}

#endif
