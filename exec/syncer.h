/*
 * exec/syncer.h — runs a store's sync (one fdatasync) on a second thread and reports back to
 * an event loop, so that a group commit's last fsync leaves the loop thread.
 *
 * Modelled on authz/syncer.c (which does the same for the authorization server's store) but
 * independent of any store: it calls sync(sync_arg), e.g. ex_store_sync. The lead may fold
 * authz onto it (docs/exec.md "Batches").
 *
 * Protocol: after commit number seq (increasing) the loop thread calls ex_syncer_request(seq).
 * The thread then runs sync once for every request made before that sync started, and calls
 * done(arg, synced, rc) on the loop thread: every commit numbered <= synced is durable
 * (rc PL_OK), or the sync failed (rc != PL_OK: their replies must be errors). A sync that
 * covers commit seq always started after ex_syncer_request(seq) returned, so after the commit.
 *
 * Threads: ex_syncer_new/request/free on the loop thread; done runs on the loop thread.
 */
#ifndef POSTLY_EXEC_SYNCER_H
#define POSTLY_EXEC_SYNCER_H

#include <stdint.h>

#include "core/err.h"

struct event_base;

typedef struct ex_syncer ex_syncer;

typedef pl_rc (*ex_sync_fn)(void *sync_arg);
typedef void (*ex_synced_fn)(void *arg, uint64_t seq, pl_rc rc);

/* base, sync_arg and arg are borrowed and must outlive the syncer. PL_ERR_IO (pipe),
 * PL_ERR_NOMEM, PL_ERR_INTERNAL (thread). */
pl_rc ex_syncer_new(struct event_base *base, ex_sync_fn sync, void *sync_arg, ex_synced_fn done,
                    void *arg, ex_syncer **out);

/* Commit number seq needs a sync. */
void ex_syncer_request(ex_syncer *sy, uint64_t seq);

/* Syncs run so far (benchmarks). */
uint64_t ex_syncer_count(ex_syncer *sy);

/* Stops and joins the thread (a sync in progress completes first). Pending done callbacks
 * are not called. NULL-safe. */
void ex_syncer_free(ex_syncer *sy);

#endif
