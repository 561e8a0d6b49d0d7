/*
 * authz/syncer.h — completes the durability of group commits on a second thread.
 *
 * The store runs with MDB_NOMETASYNC: each batch commit fsyncs its data pages on the event
 * loop thread (LMDB's order, so a crash never corrupts) but not the meta page. The syncer
 * thread then calls az_store_sync() (one fdatasync) while the loop goes on handling the next
 * requests, and reports back through a pipe; the replies of a batch are sent only when a sync
 * that started after its commit has completed. One fsync per batch leaves the loop thread.
 *
 * Threads: az_syncer_new/request/free on the loop thread; the callback runs on the loop thread.
 */
#ifndef POSTLY_AUTHZ_SYNCER_H
#define POSTLY_AUTHZ_SYNCER_H

#include <stdint.h>

#include <event2/event.h>

#include "authz/store.h"

typedef struct az_syncer az_syncer;

/* done(arg, seq, rc): every commit numbered <= seq is durable (rc PL_OK), or the sync failed
 * (rc != PL_OK: those replies must be errors). */
typedef void (*az_synced_fn)(void *arg, uint64_t seq, pl_rc rc);

pl_rc az_syncer_new(struct event_base *base, az_store *st, az_synced_fn done, void *arg,
                    az_syncer **out);

/* Commit number seq (increasing) needs a sync. */
void az_syncer_request(az_syncer *sy, uint64_t seq);

/* Stops and joins the thread. NULL-safe. Pending callbacks are not called. */
void az_syncer_free(az_syncer *sy);

#endif
