/*
 * keys/verify.h — local verification of access tokens at the resource server
 * (ARCHITECTURE.md §4 step 2, §5), with a cache of verified tokens in front.
 *
 * Order of checks for key_verifier_verify() (cheapest and most hostile-input-safe first):
 *   1. size: longer than cfg.max_token_len → TOO_LARGE, before any parsing
 *   2. cache: an entry holding byte-for-byte the same token (found through a bucket picked
 *      by SipHash-2-4 of the token's last 32 bytes under a random per-verifier key, then
 *      compared in full in constant time); a
 *      hit that has not expired returns the stored result (entries live until exp + leeway;
 *      the cache is emptied whenever the set of published kids changes, so a removed key's
 *      tokens stop verifying at once; about 3.4 KB/entry plus a copy of the token, wiped
 *      when the entry goes)
 *   3. shape: exactly three non-empty base64url segments (RFC 7515 §7.1) → MALFORMED
 *   4. header: a JSON object; "alg" must be "ES256" (pinned: "none", "HS256", "RS256", …
 *      are refused here, before any library sees the token, so no algorithm confusion);
 *      "typ" must be "at+jwt" or "application/at+jwt" (RFC 9068 §4); "kid" a string; no
 *      "crit", "jku", "jwk", "x5u", "x5c", "b64" → ALG / TYP / KID / MALFORMED
 *   5. key: kid looked up in the JWKS copy; an unknown kid refetches the JWKS at most once
 *      per cfg.refetch_interval_s, then → KID
 *   6. signature (ES256, RFC 7518 §3.4): the part must be exactly 86 base64url characters
 *      with zero unused bits (one spelling per signature, both backends), then checked with
 *      the configured backend: OpenSSL, or liboauth2 (verify type "jwk" with that key's
 *      public JWK) → SIGNATURE
 *   7. claims (liboauth2 checks none of these), read from the payload by a strict JSON
 *      reader (a known claim twice → MALFORMED): iss == cfg.issuer → ISSUER; aud ==
 *      cfg.audience, or an array containing it (RFC 9068 §4) → AUDIENCE; exp, nbf, iat
 *      integers → CLAIMS; exp + leeway > now → EXPIRED; nbf, iat <= now + leeway →
 *      NOT_YET_VALID; sub, client_id, ws, gid, cls, jti non-empty strings within the bounds
 *      of keys/token.h → CLAIMS; scope a string parsed with the policy registry into a mask
 *      (an unknown scope name → SCOPE).
 *
 * The reason never carries any part of the token; log key_reason_name() and, if anything,
 * a hash prefix of the token.
 *
 * Threads: a key_verifier is NOT synchronised. postly-mcp calls it from its one libevent
 * thread only; the cache and the JWKS copy are plain data with no locks for that reason.
 * A server with several threads needs one verifier per thread (each with its own cache).
 * The JWKS fetch callback runs synchronously inside key_verifier_verify (at most once per
 * refetch interval, and when the copy is older than cfg.jwks_max_age_s).
 */
#ifndef POSTLY_KEYS_VERIFY_H
#define POSTLY_KEYS_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "keys/keyset.h"
#include "keys/token.h"

#define KEY_VERIFY_LEEWAY_DEFAULT_S       30
#define KEY_VERIFY_CACHE_DEFAULT          1024
#define KEY_VERIFY_REFETCH_DEFAULT_S      30
#define KEY_VERIFY_JWKS_MAX_AGE_DEFAULT_S 300
/* Largest JWKS document accepted from a fetch callback. */
#define KEY_JWKS_MAX 65536

/* Why a token was refused. Stable: names appear in logs and metrics. */
typedef enum key_reason {
    KEY_REASON_NONE = 0, /* verified */
    /* → 401 invalid_token (RFC 6750 §3.1) */
    KEY_REASON_TOO_LARGE,     /* longer than max_token_len */
    KEY_REASON_MALFORMED,     /* not a compact JWS of three base64url parts / not JSON */
    KEY_REASON_ALG,           /* alg is not ES256 */
    KEY_REASON_TYP,           /* typ is not at+jwt */
    KEY_REASON_KID,           /* no kid, or a kid not in the JWKS (unknown or removed key) */
    KEY_REASON_SIGNATURE,     /* signature does not verify */
    KEY_REASON_EXPIRED,       /* exp <= now - leeway */
    KEY_REASON_NOT_YET_VALID, /* nbf > now + leeway */
    KEY_REASON_ISSUER,        /* iss != configured issuer */
    KEY_REASON_AUDIENCE,      /* aud does not contain the configured audience */
    KEY_REASON_CLAIMS,        /* a required claim missing, mistyped or over its bound */
    KEY_REASON_SCOPE,         /* scope claim malformed or naming an unknown scope */
    /* → 500 server_error: the token may be fine, we could not check it */
    KEY_REASON_JWKS_UNAVAILABLE, /* no usable JWKS (fetch failed / document invalid) */
    KEY_REASON_INTERNAL,         /* out of memory, library failure */
    KEY_REASON__COUNT
} key_reason;

typedef enum key_reason_class {
    KEY_CLASS_OK = 0,
    KEY_CLASS_INVALID_TOKEN, /* answer 401 with error="invalid_token" */
    KEY_CLASS_SERVER_ERROR,  /* answer 500 (or 503); not the client's fault */
} key_reason_class;

key_reason_class key_reason_classify(key_reason r);
/* Stable snake_case name ("expired") and a short sentence ("token has expired"); both static,
 * never containing token material. "unknown" for out-of-range values. */
const char *key_reason_name(key_reason r);
const char *key_reason_text(key_reason r);

/* A verified token: the claims the resource server needs, copied (no pointers into the token).
 * Strings are NUL-terminated and within the bounds of keys/token.h. */
typedef struct key_verified {
    char sub[KEY_CLAIM_MAX + 1];
    char client_id[KEY_URL_CLAIM_MAX + 1];
    char ws[KEY_CLAIM_MAX + 1];
    char gid[KEY_CLAIM_MAX + 1];
    char cls[KEY_CLAIM_MAX + 1];
    char jti[KEY_CLAIM_MAX + 1];
    char scope[KEY_SCOPE_CLAIM_MAX + 1]; /* the claim as sent */
    char kid[KEY_KID_SIZE];
    uint64_t scope_mask; /* pol_scope_parse_list() of scope (policy/scopes.h bits) */
    int64_t iat, nbf, exp;
    int from_cache; /* 1 when served from the verified-token cache */
} key_verified;

/* Fetches the current JWKS document (RFC 7517 §5) into *json (malloc'd, NUL-terminated,
 * freed by the verifier with free()). Return PL_OK, or any error (the verifier then keeps
 * its previous copy and reports JWKS_UNAVAILABLE if it has none that fits). */
typedef pl_rc (*key_jwks_fetch_fn)(void *ctx, char **json, size_t *len);

/* Which implementation checks the ES256 signature. Every other check (steps 1-5 and 7) is
 * the same code for both. See docs/keys.md and docs/performance.md for why the default is
 * OpenSSL: liboauth2 1.4.5.4 costs about 1.4x a raw OpenSSL verify per uncached token, over
 * the 1.2x budget; it stays selectable and the tests run every case through both. */
typedef enum key_sig_backend {
    KEY_SIG_OPENSSL = 0, /* EVP_DigestVerify with the EVP_PKEY built once per JWKS key */
    KEY_SIG_LIBOAUTH2,   /* oauth2_token_verify, verify type "jwk" with that key's JWK */
} key_sig_backend;

typedef struct key_verifier_cfg {
    const char *issuer;         /* required: the exact iss expected (copied) */
    const char *audience;       /* required: this resource server's canonical URL (copied) */
    int64_t leeway_s;           /* < 0: KEY_VERIFY_LEEWAY_DEFAULT_S; applied to exp and nbf */
    size_t max_token_len;       /* 0: KEY_TOKEN_MAX */
    size_t cache_entries;       /* 0: KEY_VERIFY_CACHE_DEFAULT; the cache never holds more */
    int64_t refetch_interval_s; /* <= 0: KEY_VERIFY_REFETCH_DEFAULT_S (unknown-kid refetch) */
    int64_t jwks_max_age_s;     /* <= 0: KEY_VERIFY_JWKS_MAX_AGE_DEFAULT_S */
    const core_clock *clock;    /* NULL: real clock */
    /* The JWKS source: exactly one of the two. */
    const key_keyset *keyset; /* in-process (borrowed; must outlive the verifier); its
                                 generation counter is checked on every call, so a
                                 rotate/prune/reload is seen at once */
    key_jwks_fetch_fn fetch;  /* e.g. key_jwks_fetch_http with a jwks_uri */
    void *fetch_ctx;
    key_sig_backend backend; /* KEY_SIG_OPENSSL (0) unless set */
} key_verifier_cfg;

typedef struct key_verifier key_verifier;

/* Creates a verifier and loads the JWKS once (a failure to load is not fatal: the first
 * verify retries). PL_ERR_INVALID for a bad cfg (missing issuer/audience, not exactly one
 * JWKS source, leeway > 3600 s, refetch interval > 1 day, max age > 7 days, more than 2^24
 * cache entries, max_token_len > 1 MiB); PL_ERR_NOMEM; PL_ERR_CRYPTO when liboauth2
 * cannot be initialised. *out owned by the caller (key_verifier_free). */
pl_rc key_verifier_new(const key_verifier_cfg *cfg, key_verifier **out);

/* NULL-safe. */
void key_verifier_free(key_verifier *v);

/* Verifies the `len` bytes at token (no NUL needed).
 *  PL_OK            *out filled, *reason = KEY_REASON_NONE
 *  PL_ERR_DENIED    the token is refused: *reason says why (class INVALID_TOKEN)
 *  PL_ERR_IO        no usable JWKS (*reason JWKS_UNAVAILABLE, class SERVER_ERROR)
 *  PL_ERR_INTERNAL / PL_ERR_NOMEM   (*reason INTERNAL, class SERVER_ERROR)
 *  PL_ERR_INVALID   NULL arguments
 * out is zeroed on failure. */
pl_rc key_verifier_verify(key_verifier *v, const char *token, size_t len, key_verified *out,
                          key_reason *reason);

/* Drops every cached result (for example when a grant was revoked and the caller cannot
 * check gids itself). */
void key_verifier_cache_clear(key_verifier *v);

/* Counters for tests, metrics and the benchmark. */
typedef struct key_verifier_stats {
    uint64_t verified; /* full verifications that succeeded */
    uint64_t cache_hits;
    uint64_t refused;
    uint64_t jwks_fetches; /* fetch callback calls (or key set copies) */
    size_t cache_size;     /* entries now held */
} key_verifier_stats;
void key_verifier_stats_get(const key_verifier *v, key_verifier_stats *out);

/* A ready-made key_jwks_fetch_fn: GET ctx (a const char * jwks_uri, borrowed) with liboauth2's
 * HTTP client, 5 s timeout, TLS verified. Blocking: fine at start-up and for the rare refetch.
 * PL_ERR_IO on a transport error or non-200 answer; PL_ERR_TOO_LARGE over KEY_JWKS_MAX. */
pl_rc key_jwks_fetch_http(void *ctx, char **json, size_t *len);

#endif
