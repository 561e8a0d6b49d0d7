/*
 * keys/keyset.h — the ES256 signing keys of the authorization server (ARCHITECTURE.md §5).
 *
 * A key set lives in <data>/keys/:
 *   <data>/keys/              directory, mode 0700
 *   <data>/keys/keys.json     the state of every key (kid, state, times), mode 0600
 *   <data>/keys/<kid>.pem     one P-256 private key (PKCS#8 PEM), mode 0600
 *   <data>/keys/<kid>.pub     its public half (SubjectPublicKeyInfo PEM), mode 0600
 *   <data>/keys/.lock         flock(2) target: one writer at a time (CLI and server)
 * Private keys never leave that directory; nothing here ever prints one. A resource server
 * opens the key set with public_only = 1: it then reads the .pub files only, never a
 * private key, and can verify but not sign, rotate or prune.
 *
 * kid = the RFC 7638 JWK thumbprint of the public key: base64url(SHA-256 of
 * {"crv":"P-256","kty":"EC","x":"…","y":"…"}), 43 characters.
 *
 * Life of a key (states are stored, never inferred):
 *   next     published in the JWKS, not signing yet (so a verifier that cached the JWKS
 *            already knows the key before its first token appears)
 *   active   signs every new token; exactly one key is active
 *   retired  published for verification only, until every token it signed has expired:
 *            retired_s + max token lifetime + leeway = removable_s
 *   removed  private file deleted, no longer in the JWKS; the record stays for the audit trail
 * key_keyset_rotate(): active → retired, next → active, a new key → next.
 * key_keyset_prune():  retired keys with removable_s <= now → removed.
 * key_keyset_remove(): one next or retired key → removed at once (a compromised key).
 *
 * Threads: a key_keyset is not synchronised. Mutating calls (rotate, prune, reload) must not
 * run concurrently with anything else on the same key_keyset. Read-only calls (list, jwks,
 * key_token_mint) may run concurrently with each other. The servers of this project call it
 * from their single event-loop thread. Two processes (postly-authz and postly-keys) share
 * the directory safely: every change takes <data>/keys/.lock and rewrites keys.json
 * atomically (write temporary file, fsync, rename); a process sees another's changes after
 * key_keyset_reload().
 */
#ifndef POSTLY_KEYS_KEYSET_H
#define POSTLY_KEYS_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

/* 43 base64url characters of a SHA-256 thumbprint, plus NUL. */
#define KEY_KID_SIZE 44
/* Default longest token lifetime used to decide when a retired key may be removed. */
#define KEY_MAX_LIFETIME_DEFAULT_S 600
/* Default clock-skew allowance added to that (a verifier's nbf/exp leeway). */
#define KEY_LEEWAY_DEFAULT_S 60

/* A human-readable explanation of the last failure, naming the file concerned
 * ("/var/keys/abc.pem: mode 0644, must be 0600 (run: chmod 600 /var/keys/abc.pem)").
 * Filled by every function that takes one (may be NULL); never contains key material. */
typedef struct key_error {
    char text[512];
} key_error;

typedef enum key_state {
    KEY_STATE_NEXT = 0,
    KEY_STATE_ACTIVE,
    KEY_STATE_RETIRED,
    KEY_STATE_REMOVED,
    KEY_STATE__COUNT
} key_state;

/* "next", "active", "retired", "removed" (static); "unknown" when out of range. */
const char *key_state_name(key_state s);

/* What list() reports about one key. Times are Unix seconds, 0 when not reached yet. */
typedef struct key_info {
    char kid[KEY_KID_SIZE];
    key_state state;
    int64_t created_s;   /* generated */
    int64_t activated_s; /* became active */
    int64_t retired_s;   /* stopped signing */
    int64_t removable_s; /* retired: may be removed from this time on */
    int64_t removed_s;   /* removed */
} key_info;

typedef struct key_keyset_cfg {
    const char *data_dir;         /* the data directory; keys live in <data_dir>/keys (required) */
    const core_clock *clock;      /* NULL: the real clock */
    int64_t max_token_lifetime_s; /* <= 0: KEY_MAX_LIFETIME_DEFAULT_S */
    int64_t leeway_s;             /* <= 0: KEY_LEEWAY_DEFAULT_S (a zeroed cfg gets defaults) */
    int create;                   /* 1: create the directory, an active and a next key when
                                     keys.json does not exist yet ("first start");
                                     0: a missing key set is PL_ERR_NOT_FOUND */
    int public_only;              /* 1: load only the public halves (<kid>.pub), for verifiers:
                                     no private key is ever read; key_token_mint, rotate and
                                     prune then fail with PL_ERR_STATE; create must be 0 */
} key_keyset_cfg;

typedef struct key_keyset key_keyset;

/* Opens (and with cfg->create, initialises) the key set of cfg->data_dir, loading every
 * non-removed private key (public key with cfg->public_only) once. *out is owned by the
 * caller (key_keyset_free).
 *  PL_OK
 *  PL_ERR_NOT_FOUND  no key set there and cfg->create == 0
 *  PL_ERR_DENIED     a key file or keys.json readable by group/others (mode not 0600) or a
 *                    keys directory with mode not 0700; err names the file and the fix
 *  PL_ERR_PARSE      keys.json or a key file corrupt, a key not P-256, a kid that does not
 *                    match the key's thumbprint, not exactly one active key; err names the file
 *  PL_ERR_IO         a file could not be read/written (err names it, with strerror)
 *  PL_ERR_INVALID    bad cfg
 *  PL_ERR_CRYPTO     key generation failed */
pl_rc key_keyset_open(const key_keyset_cfg *cfg, key_keyset **out, key_error *err);

/* NULL-safe. Wipes and frees every private key. */
void key_keyset_free(key_keyset *ks);

/* Re-reads keys.json and the private keys (after another process rotated or pruned).
 * On failure the key set keeps its previous contents. Codes as key_keyset_open. */
pl_rc key_keyset_reload(key_keyset *ks, key_error *err);

/* active → retired, next → active, new key → next; persisted before returning.
 * *new_active (may be NULL) gets the kid now signing. PL_ERR_IO/PL_ERR_CRYPTO on failure,
 * in which case nothing changed on disk or in memory. */
pl_rc key_keyset_rotate(key_keyset *ks, char new_active[KEY_KID_SIZE], key_error *err);

/* Removes every retired key whose removable_s <= now: deletes its private file, marks it
 * removed. *removed (may be NULL) gets how many. */
pl_rc key_keyset_prune(key_keyset *ks, size_t *removed, key_error *err);

/* Removes the key kid now, whatever its removable time: for a key that must stop verifying at
 * once (compromised). Its files are deleted and tokens it signed are refused from then on.
 * Removing the next key creates a new next key. Persisted before returning.
 *  PL_ERR_NOT_FOUND  no such kid
 *  PL_ERR_STATE      kid is the active key (rotate first, then remove it) or already removed
 *  PL_ERR_IO, PL_ERR_CRYPTO as key_keyset_rotate */
pl_rc key_keyset_remove(key_keyset *ks, const char *kid, key_error *err);

/* Number of keys, removed ones included, and the i-th (oldest first). PL_ERR_NOT_FOUND when
 * i >= count. */
size_t key_keyset_count(const key_keyset *ks);
pl_rc key_keyset_get(const key_keyset *ks, size_t i, key_info *out);

/* The kid of the active key (borrowed; valid until the next mutating call). */
const char *key_keyset_active_kid(const key_keyset *ks);

/* A counter that changes whenever the set of published keys changes (rotate, prune, reload
 * that saw a change). Verifiers use it to notice that their copy is stale. */
uint64_t key_keyset_generation(const key_keyset *ks);

/* The JWKS document (RFC 7517 §5) of the next, active and retired keys: public parts only,
 * each {"kty":"EC","crv":"P-256","x","y","kid","use":"sig","alg":"ES256"}, active key first.
 * Compact JSON, NUL-terminated, *json owned by the caller (free()). *len (may be NULL) gets
 * strlen. This is what postly-authz serves at its jwks_uri. */
pl_rc key_keyset_jwks(const key_keyset *ks, char **json, size_t *len);

/* ---- precomputed ECDSA nonces (docs/keys.md "Precomputed nonces") ----
 * An ECDSA signature is two parts: k random, r = x(k·G) mod n and k⁻¹ mod n — about 97 % of
 * the work, and independent of the message — then s = k⁻¹·(h + r·d) mod n. A server with a
 * spare core computes the first part ahead (key_keyset_presign, on its own thread) and
 * key_token_mint then takes one precomputed pair per token, so the signature on the request's
 * path costs a few per cent of a full one. With the pool empty (or never filled: postly-keys,
 * the tests, a server on one thread) a token is signed in full, as before.
 *   - each pair is taken out of the pool under a lock and signs exactly one token, then is
 *     wiped and freed (one k for two signatures would give the private key away);
 *   - k comes from OpenSSL's private DRBG, uniform in [1, n-1] (ECDSA_sign_setup; a full
 *     signature also mixes the key and digest into k, which a precomputed k cannot);
 *   - the pool is emptied whenever the keys change (reload, rotate, prune, remove) and freed
 *     with the key set; pairs live only in this process's memory, like the private keys.
 *
 * key_keyset_presign adds one pair unless the pool already holds `target` (<= KEY_PRESIGN_MAX)
 * or more; *count (may be NULL) gets the pool's size afterwards. Threads: like key_token_mint
 * (any thread, concurrently with minting and with other presign calls, never with a mutating
 * call).
 *  PL_OK
 *  PL_ERR_INVALID  ks NULL or target > KEY_PRESIGN_MAX
 *  PL_ERR_STATE    no active key, or a public-only key set
 *  PL_ERR_BUSY     every signing slot is in use (try again later)
 *  PL_ERR_CRYPTO, PL_ERR_NOMEM
 * key_keyset_presigned: the pool's size (a snapshot; any thread). */
#define KEY_PRESIGN_MAX 1024
pl_rc key_keyset_presign(const key_keyset *ks, size_t target, size_t *count);
size_t key_keyset_presigned(const key_keyset *ks);

#endif
