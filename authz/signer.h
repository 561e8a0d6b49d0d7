/*
 * authz/signer.h — the second thread: precomputes ECDSA nonces for the access tokens.
 *
 * An ES256 signature is most of a /token request's CPU, and about 97 % of a signature does
 * not depend on the message: drawing k and computing r = x(k·G) mod n and k⁻¹ mod n
 * (keys/keyset.h, "precomputed ECDSA nonces"). This thread keeps the key set's pool of such
 * pairs filled; the token endpoint mints each access token on the loop thread, inline, and
 * key_token_mint takes one pair per token, so its signature costs a small part of a full one.
 * When the pool is empty (the thread got no CPU, or a burst emptied it) a token is signed in
 * full on the loop: the loop never waits for this thread, and nothing about a token depends
 * on which way it was signed. (Before 2026-11-29 session 3 this thread signed whole tokens
 * handed over in batches; docs/performance.md compares the two.)
 *
 * The thread fills the pool up to AZ_PRESIGN_TARGET pairs and sleeps; the loop wakes it
 * (az_signer_poke, once per loop iteration with token work) when the pool has fallen below
 * AZ_PRESIGN_LOW. It reads the key set only between az_signer_keys_lock/unlock, which the
 * loop takes around the key set's mutating calls (the 5-second reload): those wait for a
 * precomputation in progress (tens of microseconds) and empty the pool.
 *
 * Threads: every function on the loop thread.
 */
#ifndef POSTLY_AUTHZ_SIGNER_H
#define POSTLY_AUTHZ_SIGNER_H

#include "core/err.h"
#include "keys/keyset.h"

#define AZ_PRESIGN_TARGET 256 /* pairs kept ready: ~10 ms of tokens at 25 k/s */
#define AZ_PRESIGN_LOW    192 /* below this, a poke wakes the thread */

typedef struct az_signer az_signer;

/* Starts the thread over ks (borrowed: it must outlive the signer); it fills the pool at
 * once. PL_ERR_NOMEM, PL_ERR_INTERNAL (no thread). */
pl_rc az_signer_new(const key_keyset *ks, az_signer **out);
/* Wakes the thread if the pool is below AZ_PRESIGN_LOW and it sleeps (cheap otherwise: two
 * atomic reads). */
void az_signer_poke(az_signer *sg);
/* Excludes the thread from the key set while it changes. NULL-safe. */
void az_signer_keys_lock(az_signer *sg);
void az_signer_keys_unlock(az_signer *sg);
/* Stops and joins the thread. NULL-safe. */
void az_signer_free(az_signer *sg);

#endif
