/*
 * keys/verify.c — local verification of access tokens and the verified-token cache.
 * See keys/verify.h for the order of checks and the threading contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <oauth2/http.h>
#include <oauth2/mem.h>
#include <oauth2/log.h>
#include <oauth2/oauth2.h>
#include <oauth2/util.h>
#include <openssl/evp.h>

#include "core/crypto.h"
#include "keys/claims_int.h"
#include "keys/keyset_int.h"
#include "keys/verify.h"
#include "policy/scopes.h"

#define HEADER_MAX    512 /* decoded protected header bytes we accept */
#define SIG_B64_LEN   86  /* base64url of the 64-byte R||S */
#define JWKS_KEYS_MAX 64
#define KID_MAX       128
#define NIL           UINT32_MAX
/* The cache hashes the last HASH_TAIL bytes of a token (its whole length if shorter): for a
 * token we verified, 32 characters of the ECDSA signature, 192 bits the signer drew afresh
 * and nobody else can choose. Hashing the whole token cost ~2.8 k instructions for a 741-byte
 * token; this, ~0.2 k, whatever the token's length. docs/keys.md §4.4 says why a partial,
 * keyed hash is as safe as a whole one here: it only ever picks the bucket. */
#define HASH_TAIL 32

/* ---- reasons (a table, STYLE.md §7) ---- */

static const struct {
    const char *name, *text;
    key_reason_class cls;
} reasons[KEY_REASON__COUNT] = {
    [KEY_REASON_NONE] = {"none", "token verified", KEY_CLASS_OK},
    [KEY_REASON_TOO_LARGE] = {"too_large", "token is larger than allowed", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_MALFORMED] = {"malformed", "token is not a well-formed JWT",
                              KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_ALG] = {"alg", "token algorithm is not ES256", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_TYP] = {"typ", "token type is not at+jwt", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_KID] = {"kid", "token signing key is unknown", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_SIGNATURE] = {"signature", "token signature is invalid", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_EXPIRED] = {"expired", "token has expired", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_NOT_YET_VALID] = {"not_yet_valid", "token is not valid yet",
                                  KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_ISSUER] = {"issuer", "token issuer is not trusted", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_AUDIENCE] = {"audience", "token is not meant for this resource",
                             KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_CLAIMS] = {"claims", "token claims are missing or malformed",
                           KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_SCOPE] = {"scope", "token scope is malformed or unknown", KEY_CLASS_INVALID_TOKEN},
    [KEY_REASON_JWKS_UNAVAILABLE] = {"jwks_unavailable", "signing keys are unavailable",
                                     KEY_CLASS_SERVER_ERROR},
    [KEY_REASON_INTERNAL] = {"internal", "internal error verifying the token",
                             KEY_CLASS_SERVER_ERROR},
};

key_reason_class key_reason_classify(key_reason r)
{
    return (unsigned)r < KEY_REASON__COUNT ? reasons[r].cls : KEY_CLASS_SERVER_ERROR;
}

const char *key_reason_name(key_reason r)
{
    return (unsigned)r < KEY_REASON__COUNT ? reasons[r].name : "unknown";
}

const char *key_reason_text(key_reason r)
{
    return (unsigned)r < KEY_REASON__COUNT ? reasons[r].text : "unknown";
}

/* ---- state ---- */

typedef struct vkey {
    char kid[KID_MAX + 1];
    size_t kid_len;
    EVP_PKEY *pub;
    char *jwk;                     /* this key alone as a JWK (liboauth2's "jwk" verify type) */
    char hdr_b64[128];             /* base64url of the exact header we mint for this kid */
    size_t hdr_b64_len;            /* 0: no fast path for this kid */
    oauth2_cfg_token_verify_t *o2; /* created on first use */
} vkey;

/* A cached verification. The token's own bytes are kept and compared in full on lookup: the
 * keyed hash only picks the bucket, so a hit means "byte-for-byte the token verified before",
 * never "a token with the same hash" (docs/keys.md §4.4). */
typedef struct centry {
    uint64_t h;            /* SipHash-2-4 of the token's tail under the verifier's key */
    char *tok;             /* copy of the token (tok_len bytes), wiped when the entry goes */
    uint32_t tok_len;      /* 0: slot free */
    uint32_t tok_cap;      /* bytes allocated at tok; reused by the next token that fits */
    int64_t valid_until_s; /* exp + leeway: the entry dies with the token */
    uint32_t prev, next;   /* LRU list, most recent at head */
    uint32_t hnext;        /* bucket chain */
    key_verified val;
} centry;

struct key_verifier {
    char *issuer, *audience;
    int64_t leeway_s, refetch_ms, max_age_ms;
    size_t max_len;
    const core_clock *clock;
    key_sig_backend backend;

    const key_keyset *keyset;
    uint64_t keyset_gen;
    key_jwks_fetch_fn fetch;
    void *fetch_ctx;

    vkey *keys;
    size_t nkeys;
    int have_jwks;
    int64_t jwks_at_ms;
    int64_t last_fetch_ms;

    centry *ents;
    uint32_t cap, count, free_head, lru_head, lru_tail;
    uint32_t *buckets;
    uint32_t bucket_mask;
    uint8_t sip_key[CORE_SIPHASH_KEY_LEN]; /* random per verifier: buckets unpredictable */

    EVP_MD *sha256;
    EVP_MD_CTX *md;
    char *tokbuf;  /* NUL-terminated copy for liboauth2 */
    uint8_t *pbuf; /* decoded payload */
    char *scratch; /* the payload's decoded strings */

    oauth2_log_sink_t *o2sink;
    oauth2_log_t *o2log;
    oauth2_http_request_t *o2req;

    key_verifier_stats stats;
};

/* liboauth2 writes the whole token into some of its error messages ("could NOT store: <token>").
 * Tokens must never reach a log (ARCHITECTURE.md §10), so its messages are dropped here. */
static void o2_discard(oauth2_log_sink_t *sink, const char *filename, unsigned long line,
                       const char *function, oauth2_log_level_t level, const char *msg)
{
    (void)sink;
    (void)filename;
    (void)line;
    (void)function;
    (void)level;
    (void)msg;
}

/* ---- the cache: hash chains + LRU list over a fixed array, no allocation after new ---- */

static uint32_t bucket_of(const key_verifier *v, uint64_t h)
{
    return (uint32_t)h & v->bucket_mask;
}

static void lru_unlink(key_verifier *v, uint32_t i)
{
    centry *e = &v->ents[i];
    if (e->prev != NIL)
        v->ents[e->prev].next = e->next;
    else
        v->lru_head = e->next;
    if (e->next != NIL)
        v->ents[e->next].prev = e->prev;
    else
        v->lru_tail = e->prev;
    e->prev = e->next = NIL;
}

static void lru_push_front(key_verifier *v, uint32_t i)
{
    centry *e = &v->ents[i];
    e->prev = NIL;
    e->next = v->lru_head;
    if (v->lru_head != NIL)
        v->ents[v->lru_head].prev = i;
    v->lru_head = i;
    if (v->lru_tail == NIL)
        v->lru_tail = i;
}

/* The token is a bearer credential: its copy does not outlive the entry. */
static void entry_wipe(centry *e)
{
    core_wipe(e->tok, e->tok_len);
    e->tok_len = 0;
}

static void cache_remove(key_verifier *v, uint32_t i)
{
    uint32_t *pp = &v->buckets[bucket_of(v, v->ents[i].h)];
    while (*pp != NIL && *pp != i)
        pp = &v->ents[*pp].hnext;
    if (*pp == i)
        *pp = v->ents[i].hnext;
    lru_unlink(v, i);
    entry_wipe(&v->ents[i]);
    v->ents[i].hnext = v->free_head;
    v->free_head = i;
    v->count--;
}

/* A hit is an entry holding exactly these len bytes. The hash and the length only skip
 * entries cheaply; the bytes themselves are compared in constant time (no early exit that
 * would tell an attacker how much of a cached token's prefix they guessed). */
static uint32_t cache_find(const key_verifier *v, uint64_t h, const char *tok, size_t len)
{
    uint32_t i = v->buckets[bucket_of(v, h)];
    while (i != NIL && !(v->ents[i].h == h && v->ents[i].tok_len == len &&
                         core_ct_equal(v->ents[i].tok, tok, len)))
        i = v->ents[i].hnext;
    return i;
}

static void cache_put(key_verifier *v, uint64_t h, const char *tok, size_t len,
                      const key_verified *val, int64_t valid_until_s)
{
    uint32_t i, b;
    centry *e;
    if (v->cap == 0 || len == 0 || len > UINT32_MAX)
        return;
    if (v->free_head == NIL)
        cache_remove(v, v->lru_tail); /* full: evict the least recently used */
    i = v->free_head;
    e = &v->ents[i];
    if (e->tok_cap < len) {
        /* The slot's buffer grows to the longest token it has held (rounded up to 256
         * bytes; tokens are at most max_len): after warm-up, entries are reused without
         * allocating. Out of memory: the result is simply not cached. */
        size_t cap = (len + 255) & ~(size_t)255;
        char *p = malloc(cap);
        if (!p)
            return;
        free(e->tok); /* wiped when its last token left */
        e->tok = p;
        e->tok_cap = (uint32_t)cap;
    }
    v->free_head = e->hnext;
    memcpy(e->tok, tok, len);
    e->tok_len = (uint32_t)len;
    e->h = h;
    e->valid_until_s = valid_until_s;
    v->ents[i].val = *val;
    b = bucket_of(v, h);
    v->ents[i].hnext = v->buckets[b];
    v->buckets[b] = i;
    lru_push_front(v, i);
    v->count++;
}

void key_verifier_cache_clear(key_verifier *v)
{
    if (!v)
        return;
    for (uint32_t b = 0; b <= v->bucket_mask; b++)
        v->buckets[b] = NIL;
    v->free_head = NIL;
    for (uint32_t i = v->cap; i-- > 0;) {
        entry_wipe(&v->ents[i]);
        v->ents[i].prev = v->ents[i].next = NIL;
        v->ents[i].hnext = v->free_head;
        v->free_head = i;
    }
    v->lru_head = v->lru_tail = NIL;
    v->count = 0;
}

/* ---- the JWKS copy ---- */

static void keys_free(key_verifier *v, vkey *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY_free(keys[i].pub);
        free(keys[i].jwk);
        if (keys[i].o2)
            oauth2_cfg_token_verify_free(v->o2log, keys[i].o2);
    }
    free(keys);
}

static int b64_coord(json_t *o, const char *name, uint8_t out[32])
{
    json_t *s = json_object_get(o, name);
    size_t n = 0;
    if (!json_is_string(s) ||
        core_b64url_decode(json_string_value(s), json_string_length(s), out, 32, &n) != PL_OK)
        return 0;
    return n == 32;
}

static int str_is(json_t *o, const char *name, const char *want, int required)
{
    json_t *s = json_object_get(o, name);
    if (!s)
        return !required;
    return json_is_string(s) && strcmp(json_string_value(s), want) == 0;
}

/* The header keys/token.c writes, byte for byte; a token whose first part is exactly its
 * base64url needs no JSON parse (alg ES256, typ at+jwt, this kid: all checked by equality). */
static void canonical_header(vkey *e)
{
    char hdr[KID_MAX + 64];
    int n;
    e->hdr_b64_len = 0;
    for (size_t i = 0; i < e->kid_len; i++)
        if (e->kid[i] == '"' || e->kid[i] == '\\' || (unsigned char)e->kid[i] < 0x20)
            return; /* would need escaping: no fast path */
    n = snprintf(hdr, sizeof hdr, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", e->kid);
    if (n < 0 || (size_t)n >= sizeof hdr || CORE_B64URL_SIZE((size_t)n) > sizeof e->hdr_b64)
        return;
    if (core_b64url_encode((const uint8_t *)hdr, (size_t)n, e->hdr_b64, sizeof e->hdr_b64,
                           &e->hdr_b64_len) != PL_OK)
        e->hdr_b64_len = 0;
}

/* Parses a JWKS (RFC 7517 §5) into a key table. Keys that are not EC P-256 signature keys
 * for ES256 are skipped (RFC 7517 §5: ignore what is not understood). */
static pl_rc jwks_parse(key_verifier *v, const char *json, size_t len, vkey **out, size_t *out_n)
{
    json_t *root = NULL, *arr, *k;
    json_error_t jerr;
    vkey *keys = NULL;
    size_t n = 0, idx;
    pl_rc rc = PL_ERR_PARSE;

    *out = NULL;
    *out_n = 0;
    if (len > KEY_JWKS_MAX)
        return PL_ERR_TOO_LARGE;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    arr = json_object_get(root, "keys");
    if (!json_is_array(arr))
        goto out;
    if (!(keys = calloc(JWKS_KEYS_MAX, sizeof *keys))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    json_array_foreach(arr, idx, k)
    {
        uint8_t x[32], y[32];
        json_t *kid = json_object_get(k, "kid"), *one;
        vkey *e = &keys[n];
        if (n == JWKS_KEYS_MAX)
            break;
        if (!str_is(k, "kty", "EC", 1) || !str_is(k, "crv", "P-256", 1) ||
            !str_is(k, "alg", "ES256", 0) || !str_is(k, "use", "sig", 0) || !json_is_string(kid) ||
            json_string_length(kid) == 0 || json_string_length(kid) > KID_MAX ||
            !b64_coord(k, "x", x) || !b64_coord(k, "y", y))
            continue;
        if (key_pkey_from_coords(x, y, &e->pub) != PL_OK)
            continue; /* not a point on P-256 */
        e->kid_len = json_string_length(kid);
        memcpy(e->kid, json_string_value(kid), e->kid_len + 1);
        canonical_header(e);
        one = json_pack("{s:s, s:s, s:O, s:O, s:O}", "kty", "EC", "crv", "P-256", "x",
                        json_object_get(k, "x"), "y", json_object_get(k, "y"), "kid", kid);
        e->jwk = one ? json_dumps(one, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(one);
        if (!e->jwk) {
            EVP_PKEY_free(e->pub);
            e->pub = NULL;
            rc = PL_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    *out = keys;
    *out_n = n;
    keys = NULL;
    rc = PL_OK;
out:
    if (keys)
        keys_free(v, keys, n);
    json_decref(root);
    return rc;
}

static const vkey *key_by_header(const key_verifier *v, const char *seg, size_t len)
{
    for (size_t i = 0; i < v->nkeys; i++)
        if (v->keys[i].hdr_b64_len == len && memcmp(v->keys[i].hdr_b64, seg, len) == 0)
            return &v->keys[i];
    return NULL;
}

static int same_kids(const vkey *a, size_t na, const vkey *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].kid, b[i].kid) != 0)
            return 0;
    return 1;
}

/* Replaces the JWKS copy from the configured source. A failure keeps the previous copy. */
static pl_rc jwks_refresh(key_verifier *v, int64_t now_ms)
{
    char *json = NULL;
    size_t len = 0, n = 0;
    vkey *keys = NULL;
    uint64_t gen = 0;
    pl_rc rc;

    v->last_fetch_ms = now_ms;
    v->stats.jwks_fetches++;
    if (v->keyset) {
        gen = key_keyset_generation(v->keyset);
        rc = key_keyset_jwks(v->keyset, &json, &len);
    } else {
        rc = v->fetch(v->fetch_ctx, &json, &len);
        if (rc == PL_OK && json && len == 0)
            len = strlen(json);
    }
    if (rc != PL_OK || !json)
        goto out;
    if ((rc = jwks_parse(v, json, len, &keys, &n)) != PL_OK)
        goto out;
    /* A key that disappeared (pruned) must stop verifying at once, cached results too. */
    if (!same_kids(v->keys, v->nkeys, keys, n))
        key_verifier_cache_clear(v);
    keys_free(v, v->keys, v->nkeys);
    v->keys = keys;
    v->nkeys = n;
    v->have_jwks = 1;
    v->jwks_at_ms = now_ms;
    if (v->keyset)
        v->keyset_gen = gen; /* only once the copy is current */
out:
    free(json);
    return rc;
}

static const vkey *key_find(const key_verifier *v, const char *kid, size_t len)
{
    for (size_t i = 0; i < v->nkeys; i++)
        if (v->keys[i].kid_len == len && memcmp(v->keys[i].kid, kid, len) == 0)
            return &v->keys[i];
    return NULL;
}

/* ---- construction ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

pl_rc key_verifier_new(const key_verifier_cfg *cfg, key_verifier **out)
{
    key_verifier *v = NULL;
    size_t nb = 1;
    pl_rc rc = PL_ERR_NOMEM;

    if (!out || !cfg || !cfg->issuer || !cfg->issuer[0] || !cfg->audience || !cfg->audience[0] ||
        (!cfg->keyset == !cfg->fetch) ||
        (cfg->backend != KEY_SIG_OPENSSL && cfg->backend != KEY_SIG_LIBOAUTH2) ||
        cfg->cache_entries > (1u << 24) || cfg->max_token_len > (1u << 20) ||
        cfg->leeway_s > 3600 || cfg->refetch_interval_s > 86400 ||
        cfg->jwks_max_age_s > (int64_t)7 * 86400)
        return PL_ERR_INVALID;
    *out = NULL;
    if (!(v = calloc(1, sizeof *v)))
        return PL_ERR_NOMEM;
    v->leeway_s = cfg->leeway_s >= 0 ? cfg->leeway_s : KEY_VERIFY_LEEWAY_DEFAULT_S;
    v->max_len = cfg->max_token_len ? cfg->max_token_len : KEY_TOKEN_MAX;
    v->refetch_ms = 1000 * (cfg->refetch_interval_s > 0 ? cfg->refetch_interval_s
                                                        : KEY_VERIFY_REFETCH_DEFAULT_S);
    v->max_age_ms =
        1000 * (cfg->jwks_max_age_s > 0 ? cfg->jwks_max_age_s : KEY_VERIFY_JWKS_MAX_AGE_DEFAULT_S);
    v->clock = cfg->clock;
    v->backend = cfg->backend;
    v->keyset = cfg->keyset;
    v->fetch = cfg->fetch;
    v->fetch_ctx = cfg->fetch_ctx;
    v->cap = (uint32_t)(cfg->cache_entries ? cfg->cache_entries : KEY_VERIFY_CACHE_DEFAULT);
    while (nb < 2 * (size_t)v->cap)
        nb <<= 1;
    v->bucket_mask = (uint32_t)(nb - 1);
    v->issuer = dup_str(cfg->issuer);
    v->audience = dup_str(cfg->audience);
    v->ents = calloc(v->cap, sizeof *v->ents);
    v->buckets = malloc(nb * sizeof *v->buckets);
    v->tokbuf = malloc(v->max_len + 1);
    v->pbuf = malloc(v->max_len);
    v->scratch = malloc(v->max_len + 1);
    if (!v->issuer || !v->audience || !v->ents || !v->buckets || !v->tokbuf || !v->pbuf ||
        !v->scratch)
        goto out;
    key_verifier_cache_clear(v);
    if ((rc = core_random(v->sip_key, sizeof v->sip_key)) != PL_OK)
        goto out;
    rc = PL_ERR_CRYPTO;
    v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    v->md = EVP_MD_CTX_new();
    if (!v->sha256 || !v->md)
        goto out;
    v->o2sink = oauth2_log_sink_create(OAUTH2_LOG_ERROR, o2_discard, NULL);
    v->o2log = v->o2sink ? oauth2_log_init(OAUTH2_LOG_ERROR, v->o2sink) : NULL;
    v->o2req = v->o2log ? oauth2_http_request_init(v->o2log) : NULL;
    if (!v->o2req)
        goto out;
    /* A failure here is not fatal: the first verify tries again. */
    (void)jwks_refresh(v, core_clock_now_ms(v->clock));
    v->last_fetch_ms = INT64_MIN / 2; /* an unknown kid may refetch at once */
    rc = PL_OK;
out:
    if (rc == PL_OK)
        *out = v;
    else
        key_verifier_free(v);
    return rc;
}

void key_verifier_free(key_verifier *v)
{
    if (!v)
        return;
    keys_free(v, v->keys, v->nkeys);
    if (v->o2req)
        oauth2_http_request_free(v->o2log, v->o2req);
    if (v->o2log)
        oauth2_log_free(v->o2log); /* frees the sinks added to it */
    EVP_MD_CTX_free(v->md);
    EVP_MD_free(v->sha256);
    for (uint32_t i = 0; v->ents && i < v->cap; i++) {
        entry_wipe(&v->ents[i]);
        free(v->ents[i].tok);
    }
    core_wipe(v->sip_key, sizeof v->sip_key);
    free(v->scratch);
    free(v->pbuf);
    free(v->tokbuf);
    free(v->buckets);
    free(v->ents);
    free(v->audience);
    free(v->issuer);
    free(v);
}

void key_verifier_stats_get(const key_verifier *v, key_verifier_stats *out)
{
    if (!v || !out)
        return;
    *out = v->stats;
    out->cache_size = v->count;
}

/* ---- checks ---- */

static int b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* RFC 7515 §7.1: three non-empty base64url parts. Finds the two dots. */
static int split(const char *t, size_t len, size_t *d1, size_t *d2)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '.') {
            if (dots == 2)
                return 0;
            *(dots++ ? d2 : d1) = i;
        } else if (!b64url_char(c)) {
            return 0;
        }
    }
    return dots == 2 && *d1 > 0 && *d2 > *d1 + 1 && *d2 + 1 < len;
}

static key_reason check_header(const char *seg, size_t len, const char **kid, size_t *kid_len,
                               json_t **hdr_out)
{
    uint8_t buf[HEADER_MAX];
    size_t n = 0;
    json_t *hdr, *alg, *typ, *k;
    json_error_t jerr;
    static const char *const refused[] = {"crit", "jku", "jwk", "x5u", "x5c", "b64"};
    const char *t;

    *hdr_out = NULL;
    if (len > CORE_B64URL_SIZE(HEADER_MAX) ||
        core_b64url_decode(seg, len, buf, sizeof buf, &n) != PL_OK)
        return KEY_REASON_MALFORMED;
    hdr = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        return KEY_REASON_MALFORMED;
    }
    *hdr_out = hdr;
    /* The algorithm is pinned: "none", HS256 (a public key used as an HMAC secret), RS256
     * and everything else stop here, before any library looks at the signature. */
    alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "ES256") != 0)
        return KEY_REASON_ALG;
    /* RFC 9068 §4: typ "at+jwt" (or "application/at+jwt"), compared case-insensitively as
     * media types are (RFC 7515 §4.1.9). */
    typ = json_object_get(hdr, "typ");
    if (!json_is_string(typ))
        return KEY_REASON_TYP;
    t = json_string_value(typ);
    if (strcasecmp(t, "at+jwt") != 0 && strcasecmp(t, "application/at+jwt") != 0)
        return KEY_REASON_TYP;
    /* Keys come from our JWKS only; no extensions are understood (RFC 7515 §4.1.11). */
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (json_object_get(hdr, refused[i]))
            return KEY_REASON_MALFORMED;
    k = json_object_get(hdr, "kid");
    if (!json_is_string(k) || json_string_length(k) == 0 || json_string_length(k) > KID_MAX)
        return KEY_REASON_KID;
    *kid = json_string_value(k);
    *kid_len = json_string_length(k);
    return KEY_REASON_NONE;
}

/* The signature part, for both backends: exactly 86 base64url characters whose unused low
 * bits are zero (RFC 4648 §3.5), so that one signature has one spelling. liboauth2 1.4.5.4
 * (cjose) accepts a token with characters appended to the signature, or with non-zero
 * unused bits, as the same signature: without this check one token could be sent as
 * endless distinct strings (tests/keys/test_token.c, test_signature_spelling). */
static key_reason sig_decode(const char *sig, size_t sig_len, uint8_t rs[64])
{
    size_t n = 0;
    if (sig_len != SIG_B64_LEN || core_b64url_decode(sig, sig_len, rs, 64, &n) != PL_OK || n != 64)
        return KEY_REASON_SIGNATURE;
    return KEY_REASON_NONE;
}

static key_reason sig_openssl(key_verifier *v, const vkey *k, const char *tok, size_t signed_len,
                              const uint8_t rs[64])
{
    uint8_t der[80];
    size_t derlen = 0;
    int ok;

    if (key_sig_jose_to_der(rs, der, sizeof der, &derlen) != PL_OK)
        return KEY_REASON_SIGNATURE;
    if (EVP_DigestVerifyInit(v->md, NULL, v->sha256, NULL, k->pub) != 1)
        return KEY_REASON_INTERNAL;
    ok = EVP_DigestVerify(v->md, der, derlen, (const unsigned char *)tok, signed_len);
    EVP_MD_CTX_reset(v->md);
    return ok == 1 ? KEY_REASON_NONE : KEY_REASON_SIGNATURE;
}

/* liboauth2's "jwk" verify type. Its own result cache is disabled (a cache name that does
 * not exist): ours sits in front, and its cache would answer for a key we removed. Its exp/iat
 * checks use the wall clock, so they are off and done below against the injected clock. */
static key_reason sig_liboauth2(key_verifier *v, vkey *k, const char *tok, size_t len,
                                json_t **payload)
{
    if (!k->o2) {
        char *err = oauth2_cfg_token_verify_add_options(
            v->o2log, &k->o2, "jwk", k->jwk,
            "verify.cache=postly-none&verify.exp=skip&verify.iat=skip&verify.iss=skip");
        if (err) {
            oauth2_mem_free(err);
            if (k->o2)
                oauth2_cfg_token_verify_free(v->o2log, k->o2);
            k->o2 = NULL;
            return KEY_REASON_INTERNAL;
        }
    }
    memcpy(v->tokbuf, tok, len);
    v->tokbuf[len] = '\0';
    if (!oauth2_token_verify(v->o2log, v->o2req, k->o2, v->tokbuf, payload))
        return KEY_REASON_SIGNATURE;
    return json_is_object(*payload) ? KEY_REASON_NONE : KEY_REASON_MALFORMED;
}

static int copy_claim(const key_claim *c, char *dst, size_t max)
{
    if (c->type != KEY_CT_STRING || c->len == 0 || c->len > max)
        return 0;
    memcpy(dst, c->s, c->len + 1); /* the reader refuses NUL inside strings */
    return 1;
}

static key_reason check_claims(const key_verifier *v, const key_payload *p, int64_t now,
                               key_verified *out)
{
    const key_claim *iss = &p->c[KEY_C_ISS], *scope = &p->c[KEY_C_SCOPE];
    size_t bad = 0;

    if (iss->type != KEY_CT_STRING || strcmp(iss->s, v->issuer) != 0)
        return KEY_REASON_ISSUER;
    if (!p->aud_match) /* aud is our audience, or an array holding it (RFC 9068 §4) */
        return KEY_REASON_AUDIENCE;
    if (p->c[KEY_C_EXP].type != KEY_CT_INT || p->c[KEY_C_NBF].type != KEY_CT_INT ||
        p->c[KEY_C_IAT].type != KEY_CT_INT)
        return KEY_REASON_CLAIMS;
    out->exp = p->c[KEY_C_EXP].i;
    out->nbf = p->c[KEY_C_NBF].i;
    out->iat = p->c[KEY_C_IAT].i;
    if (out->exp > INT64_MAX - v->leeway_s || out->exp + v->leeway_s <= now)
        return KEY_REASON_EXPIRED;
    if (out->nbf > now + v->leeway_s || out->iat > now + v->leeway_s)
        return KEY_REASON_NOT_YET_VALID;
    if (!copy_claim(&p->c[KEY_C_SUB], out->sub, KEY_CLAIM_MAX) ||
        !copy_claim(&p->c[KEY_C_CLIENT_ID], out->client_id, KEY_URL_CLAIM_MAX) ||
        !copy_claim(&p->c[KEY_C_WS], out->ws, KEY_CLAIM_MAX) ||
        !copy_claim(&p->c[KEY_C_GID], out->gid, KEY_CLAIM_MAX) ||
        !copy_claim(&p->c[KEY_C_CLS], out->cls, KEY_CLAIM_MAX) ||
        !copy_claim(&p->c[KEY_C_JTI], out->jti, KEY_CLAIM_MAX))
        return KEY_REASON_CLAIMS;
    if (scope->type != KEY_CT_STRING)
        return KEY_REASON_CLAIMS;
    if (scope->len > KEY_SCOPE_CLAIM_MAX)
        return KEY_REASON_SCOPE;
    memcpy(out->scope, scope->s, scope->len + 1);
    if (pol_scope_parse_list(out->scope, scope->len, &out->scope_mask, &bad) != PL_OK)
        return KEY_REASON_SCOPE;
    return KEY_REASON_NONE;
}

static pl_rc rc_of(key_reason r)
{
    switch (key_reason_classify(r)) {
    case KEY_CLASS_OK:
        return PL_OK;
    case KEY_CLASS_INVALID_TOKEN:
        return PL_ERR_DENIED;
    default:
        return r == KEY_REASON_JWKS_UNAVAILABLE ? PL_ERR_IO : PL_ERR_INTERNAL;
    }
}

pl_rc key_verifier_verify(key_verifier *v, const char *token, size_t len, key_verified *out,
                          key_reason *reason)
{
    uint64_t h;
    uint8_t rs[64];
    size_t d1 = 0, d2 = 0, kid_len = 0, plen = 0;
    const char *kid = NULL;
    const vkey *k;
    json_t *hdr = NULL;
    key_payload claims;
    int64_t now_ms, now;
    uint32_t hit;
    key_reason r = KEY_REASON_INTERNAL;

    if (!v || !token || !out || !reason)
        return PL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    /* 1. size, before anything else looks at the bytes */
    if (len > v->max_len) {
        r = KEY_REASON_TOO_LARGE;
        goto out;
    }
    now_ms = core_clock_now_ms(v->clock);
    now = now_ms / 1000;
    /* The key set changed in-process, or the fetched copy is old: refresh first, so that a
     * removed key's cached results go too. */
    if (v->keyset ? key_keyset_generation(v->keyset) != v->keyset_gen
                  : (!v->have_jwks || now_ms - v->jwks_at_ms >= v->max_age_ms) &&
                        now_ms - v->last_fetch_ms >= v->refetch_ms)
        (void)jwks_refresh(v, now_ms);
    /* 2. cache: the same bytes verified before (keyed hash for the bucket, then the bytes) */
    h = core_siphash24(v->sip_key, token + (len > HASH_TAIL ? len - HASH_TAIL : 0),
                       len > HASH_TAIL ? HASH_TAIL : len);
    hit = cache_find(v, h, token, len);
    if (hit != NIL) {
        if (now < v->ents[hit].valid_until_s) {
            *out = v->ents[hit].val;
            out->from_cache = 1;
            lru_unlink(v, hit);
            lru_push_front(v, hit);
            v->stats.cache_hits++;
            *reason = KEY_REASON_NONE;
            return PL_OK;
        }
        cache_remove(v, hit); /* expired with its token */
    }
    /* 3. shape (a cached token had it: same bytes) */
    if (!split(token, len, &d1, &d2)) {
        r = KEY_REASON_MALFORMED;
        goto out;
    }
    /* 4. header: the exact header we mint, or a full parse */
    k = key_by_header(v, token, d1);
    if (k) {
        kid = k->kid;
        kid_len = k->kid_len;
    } else {
        if ((r = check_header(token, d1, &kid, &kid_len, &hdr)) != KEY_REASON_NONE)
            goto out;
        /* 5. key */
        k = key_find(v, kid, kid_len);
    }
    if (!k && !v->keyset && now_ms - v->last_fetch_ms >= v->refetch_ms) {
        (void)jwks_refresh(v, now_ms); /* an unknown kid: at most one refetch per interval */
        k = key_find(v, kid, kid_len);
    }
    if (!k) {
        r = v->have_jwks ? KEY_REASON_KID : KEY_REASON_JWKS_UNAVAILABLE;
        goto out;
    }
    /* 6. signature */
    if ((r = sig_decode(token + d2 + 1, len - d2 - 1, rs)) != KEY_REASON_NONE)
        goto out;
    if (v->backend == KEY_SIG_LIBOAUTH2) {
        json_t *o2payload = NULL;
        r = sig_liboauth2(v, (vkey *)k, token, len, &o2payload);
        /* liboauth2 decodes the payload without refusing duplicate members ("sub" twice:
         * last one wins there, maybe not elsewhere); the claims are read from our own strict
         * parse below, for both backends alike. */
        json_decref(o2payload);
    } else {
        r = sig_openssl(v, k, token, d2, rs);
    }
    if (r != KEY_REASON_NONE)
        goto out;
    if (core_b64url_decode(token + d1 + 1, d2 - d1 - 1, v->pbuf, v->max_len, &plen) != PL_OK) {
        r = KEY_REASON_MALFORMED;
        goto out;
    }
    if (key_payload_parse((const char *)v->pbuf, plen, v->scratch, v->max_len + 1, v->audience,
                          &claims) != PL_OK) {
        r = KEY_REASON_MALFORMED;
        goto out;
    }
    /* 7. claims */
    if ((r = check_claims(v, &claims, now, out)) != KEY_REASON_NONE)
        goto out;
    memcpy(out->kid, kid, kid_len < KEY_KID_SIZE ? kid_len + 1 : KEY_KID_SIZE - 1);
    out->kid[KEY_KID_SIZE - 1] = '\0';
    cache_put(v, h, token, len, out, out->exp + v->leeway_s);
    v->stats.verified++;
out:
    json_decref(hdr);
    if (r != KEY_REASON_NONE) {
        memset(out, 0, sizeof *out);
        v->stats.refused++;
    }
    *reason = r;
    return rc_of(r);
}

/* ---- fetching a JWKS over HTTP with liboauth2's client ---- */

pl_rc key_jwks_fetch_http(void *ctx, char **json, size_t *len)
{
    const char *url = ctx;
    oauth2_log_sink_t *sink = NULL;
    oauth2_log_t *log = NULL;
    oauth2_http_call_ctx_t *call = NULL;
    oauth2_http_status_code_t status = 0;
    char *resp = NULL;
    size_t n;
    pl_rc rc = PL_ERR_IO;

    if (!url || !json)
        return PL_ERR_INVALID;
    *json = NULL;
    sink = oauth2_log_sink_create(OAUTH2_LOG_ERROR, o2_discard, NULL);
    log = sink ? oauth2_log_init(OAUTH2_LOG_ERROR, sink) : NULL;
    call = log ? oauth2_http_call_ctx_init(log) : NULL;
    if (!call) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    oauth2_http_call_ctx_timeout_set(log, call, 5);
    if (!oauth2_http_get(log, url, NULL, call, &resp, &status) || status != 200 || !resp)
        goto out;
    n = strlen(resp);
    if (n > KEY_JWKS_MAX) {
        rc = PL_ERR_TOO_LARGE;
        goto out;
    }
    if (!(*json = malloc(n + 1))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    memcpy(*json, resp, n + 1);
    if (len)
        *len = n;
    rc = PL_OK;
out:
    if (resp)
        oauth2_mem_free(resp);
    if (call)
        oauth2_http_call_ctx_free(log, call);
    if (log)
        oauth2_log_free(log);
    else if (sink)
        oauth2_mem_free(sink);
    return rc;
}
