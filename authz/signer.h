/*
 * authz/signer.h — signs access tokens on a second thread.
 *
 * An ES256 signature is most of a /token request's CPU (docs/performance.md). The token
 * endpoint hands each access token to this thread and goes on with the next request; the
 * reply waits for both its group commit and its signature, whichever comes last (token.c).
 * The loop thread keeps everything else (HTTP, the store, the policy). The thread takes every
 * queued job at once, signs them, and wakes the loop once through a pipe for the lot.
 *
 * Jobs only read: the grant fields copied into the job, the server's issuer and lifetime, the
 * key set (key_token_mint may run concurrently with readers, keys/token.h), and a clock fixed
 * at submission (a test's fake clock is never read from the thread). The key set's mutating
 * calls (the 5-second reload) run on the loop between az_signer_keys_lock/unlock, which wait
 * for a signature in progress.
 *
 * Threads: everything here on the loop thread; done() runs on the loop thread.
 */
#ifndef POSTLY_AUTHZ_SIGNER_H
#define POSTLY_AUTHZ_SIGNER_H

#include <event2/event.h>

#include "core/err.h"

struct az_server;
struct az_sign_job;
typedef struct az_signer az_signer;

/* sign(arg, job) on the signer thread; done(arg, job) on the loop thread once signed. */
typedef void (*az_sign_fn)(void *arg, struct az_sign_job *job);

pl_rc az_signer_new(struct event_base *base, az_sign_fn sign, az_sign_fn done, void *arg,
                    az_signer **out);
/* Queues the jobs of the list first..last (linked by next) at once: one lock and at most one
 * wake-up for the lot. The signer owns them until done() hands each back. */
void az_signer_submit(az_signer *sg, struct az_sign_job *first, struct az_sign_job *last);
/* 1 when the thread has nothing queued and is not signing (the caller may then hand it the
 * next batch; otherwise signing that batch on the loop keeps both threads busy). */
int az_signer_idle(az_signer *sg);
/* Excludes signing while the key set changes (loop thread). */
void az_signer_keys_lock(az_signer *sg);
void az_signer_keys_unlock(az_signer *sg);
/* Stops and joins the thread, then gives every job not yet handed back to drop(arg, job)
 * (signed or not). NULL-safe. */
void az_signer_free(az_signer *sg, az_sign_fn drop);

#endif
