/*
 * keys/token.h — minting access tokens (RFC 9068 JWT, signed ES256 with the active key).
 *
 * Header, exactly (RFC 9068 §2.1):  {"alg":"ES256","typ":"at+jwt","kid":"<thumbprint>"}
 * Payload (RFC 9068 §2.2, RFC 7519 §4.1), in this order:
 *   iss        the authorization server's issuer identifier
 *   sub        the user id
 *   aud        the resource server's canonical URL (one string)
 *   client_id  the OAuth client
 *   scope      space-separated granted scopes (RFC 8693 §4.2 form)
 *   ws         the workspace id the user picked
 *   gid        grant id: revoking the grant lets a resource server refuse its tokens
 *   cls        client class the policy engine applies forbid rules by
 *   iat, nbf   now (from the injected clock), NumericDate
 *   exp        iat + lifetime
 *   jti        random 128-bit id (base64url), unless the caller supplies one
 *
 * Signing uses OpenSSL directly with the EVP_PKEY loaded once by the key set, through signing
 * contexts the key set keeps between tokens (a few slots, any thread may take one; dropped
 * whenever the keys change; docs/keys.md); the DER ECDSA signature is converted to the 64-byte
 * R||S form of RFC 7518 §3.4. (libjwt 1.10.2 cannot be used to sign: it overwrites typ with
 * "JWT" and re-parses the PEM key for every token; see docs/keys.md.)
 *
 * Threads: key_token_mint only reads the key set; several threads may mint at once, but not
 * while the key set is being rotated, pruned or reloaded.
 */
#ifndef POSTLY_KEYS_TOKEN_H
#define POSTLY_KEYS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "keys/keyset.h"

#define KEY_TOKEN_LIFETIME_DEFAULT_S 600
/* Upper bound of a minted token (and the verifier's default size limit). */
#define KEY_TOKEN_MAX 4096
/* Bounds on claim strings, enforced when minting and again when verifying. */
#define KEY_CLAIM_MAX       256  /* iss, sub, ws, gid, cls, jti (bytes, without NUL) */
#define KEY_URL_CLAIM_MAX   1024 /* aud, client_id (client ids may be metadata-document URLs) */
#define KEY_SCOPE_CLAIM_MAX 1024 /* scope */
#define KEY_JTI_SIZE        23   /* base64url of 16 random bytes (22 chars) + NUL */

/* What goes into a token. Every string is borrowed for the duration of the call, must be
 * valid UTF-8 without control characters, non-empty (scope may be empty) and within the
 * bounds above. */
typedef struct key_claims {
    const char *iss;
    const char *sub;
    const char *aud;
    const char *client_id;
    const char *scope;
    const char *ws;
    const char *gid;
    const char *cls;
    const char *jti;    /* NULL: a random one is generated */
    int64_t lifetime_s; /* <= 0: KEY_TOKEN_LIFETIME_DEFAULT_S */
} key_claims;

/* What the caller may want to record about a minted token. */
typedef struct key_minted {
    char kid[KEY_KID_SIZE];
    char jti[KEY_CLAIM_MAX + 1];
    int64_t iat;
    int64_t exp;
} key_minted;

/* Mints a token with the active key of ks, reading the time from clock (NULL: real clock).
 * Writes the compact serialisation (NUL-terminated) into out (outsz bytes; KEY_TOKEN_MAX is
 * always enough); *outlen (may be NULL) gets strlen(out); *minted (may be NULL) gets kid,
 * jti, iat and exp. Each claim is bounded, and so is the whole token: one that would be
 * longer than KEY_TOKEN_MAX (the verifier's default limit) is not minted. Real tokens are far
 * smaller (about 750 bytes; 3 KB with a 1 KB client_id and every scope).
 *  PL_OK
 *  PL_ERR_INVALID    a claim missing, empty, too long, not UTF-8 or with control characters
 *  PL_ERR_TOO_LARGE  out too small, or the token would exceed KEY_TOKEN_MAX
 *  PL_ERR_STATE      the key set has no active key
 *  PL_ERR_CRYPTO     the signature failed
 *  PL_ERR_NOMEM */
pl_rc key_token_mint(const key_keyset *ks, const core_clock *clock, const key_claims *claims,
                     char *out, size_t outsz, size_t *outlen, key_minted *minted);

#endif
