/*
 * core/syncer.h — runs a store's sync (one fdatasync) on a second thread and reports back to
 * an event loop, so that a group commit's last fsync leaves the loop thread.
 *
 * Independent of any store: it calls sync(sync_arg) — az_store_sync for the authorization
 * server's /token batches (authz/token.c), ex_store_sync for postly-mcp's write batches
 * (exec/batch.c). A failed sync is reported for every commit it covered and is not hidden by
 * a later successful one.
 *
 * Protocol: after commit number seq (increasing) the loop thread calls core_syncer_request(seq).
 * The thread then runs sync once for every request made before that sync started, and calls
 * done(arg, synced, rc) on the loop thread: every commit numbered <= synced is durable
 * (rc PL_OK), or the sync failed (rc != PL_OK: their replies must be errors). A sync that
 * covers commit seq always started after core_syncer_request(seq) returned, so after the commit.
 *
 * Threads: core_syncer_new/request/free on the loop thread; done runs on the loop thread.
 */
#ifndef POSTLY_CORE_SYNCER_H
#define POSTLY_CORE_SYNCER_H

#include <stdint.h>

#include "core/err.h"

struct event_base;

typedef struct core_syncer core_syncer;

typedef pl_rc (*core_sync_fn)(void *sync_arg);
typedef void (*core_synced_fn)(void *arg, uint64_t seq, pl_rc rc);

/* base, sync_arg and arg are borrowed and must outlive the syncer. PL_ERR_IO (pipe),
 * PL_ERR_NOMEM, PL_ERR_INTERNAL (thread). */
pl_rc core_syncer_new(struct event_base *base, core_sync_fn sync, void *sync_arg,
                      core_synced_fn done, void *arg, core_syncer **out);

/* Commit number seq needs a sync. */
void core_syncer_request(core_syncer *sy, uint64_t seq);

/* Reports a failed sync now, if one is recorded and not yet reported: calls done(arg, synced,
 * rc) at once (on the calling thread, which must be the loop thread) instead of waiting for
 * the wake-up. A caller about to treat some other event as proof of durability (a later
 * commit's successful fdatasync of the same file: after a failure the kernel reports the error
 * once, so that success proves nothing) calls it first. Nothing happens when there is no
 * failure to report. The failure is consumed: the wake-up that follows reports the same
 * position with PL_OK, so a caller that polls must treat a reported failure as final (the
 * batcher's fail-stop does). */
void core_syncer_poll_failure(core_syncer *sy);

/* Syncs run so far (benchmarks). */
uint64_t core_syncer_count(core_syncer *sy);

/* Stops and joins the thread (a sync in progress completes first). Pending done callbacks
 * are not called. NULL-safe. */
void core_syncer_free(core_syncer *sy);

#endif
