/*
 * exec/batch.h — group commit of the execution layer on a libevent loop (the batch driver).
 *
 * Every write of one event-loop iteration goes into one LMDB transaction (exec/store.h
 * "batches"), committed once when the iteration's ready requests have been handled, and the
 * replies of the requests whose writes are in it are released only after that commit AND a
 * sync that started after it (core/syncer.h, on a second thread). So N requests of one
 * iteration pay one commit and about one fsync between them, and nothing is acknowledged
 * before it is on disk.
 *
 * Use, per request on the loop thread:
 *     if (!ex_batcher_ready(b))             // a commit is in flight: do not block the loop
 *         return ex_batcher_park(b, writes, finish, r); // both run later, in the next batch
 *     ex_batcher_enter(b);
 *     ... the handler's service calls (their write transactions join the batch) ...
 *     if (ex_batcher_leave(b))              // this request's work touched the batch
 *         ex_batcher_hold(b, send_later, r); // hold its reply: send_later(r, rc) runs later
 * send_later(arg, PL_OK): the batch is durable, send the reply as formed. send_later(arg, rc)
 * with rc != PL_OK: the batch commit or its sync failed; the changes may be lost (the commit
 * failed: they are), so the reply must become an error — never a success. Every held callback
 * is called exactly once: after its batch's sync, or from ex_batcher_free().
 *
 * A batch is durable once a sync that started after its commit has completed: the syncer's,
 * or the NEXT batch's commit, which fdatasyncs the data file after this batch's meta page was
 * written (under load a batch is released at the next commit, without waiting for its own
 * sync; when units are parked or a batch is held, the syncer is not even asked — if that next
 * commit then fails, the waiting replies fail with it; if it writes nothing, the syncer is
 * asked after all). After a failed sync the batcher fails stop: every later write reply is an error
 * (a later fsync may succeed after the kernel dropped the pages that failed), reads go on,
 * and the log says to check the disk and restart.
 *
 * The batch goes to the store's committer thread (store.h "the committer", started here for
 * every store that fsyncs) from an event activated at the lowest priority when the first
 * reply of the batch is held: the callbacks already due in this iteration (the other ready
 * connections) run first and join the same batch. The committer commits it — the data
 * fdatasync happens on its thread, not the loop's — and notifies the loop through a pipe; the
 * loop collects the result and hands the replies to the syncer. While a commit is in flight a
 * unit that would write should be parked (ex_batcher_ready / ex_batcher_park), not run: its
 * first write would wait for the commit on the loop thread. Parked units run, in order, as
 * soon as the next batch transaction is offered. Writes on the loop thread outside
 * enter/leave (the scheduler's and the webhook dispatcher's timers) commit the held batch
 * early, with a full sync, wait for the committer to be idle and then run on their own
 * (store.h); the held replies are released as usual.
 *
 * Durability modes follow the store's flags: EX_STORE_GROUP_COMMIT (MDB_NOMETASYNC): the
 * commit syncs the data pages on the loop thread, the syncer thread syncs the meta page;
 * flags 0: the commit syncs both on the committer thread; EX_STORE_NOSYNC (benchmarks only):
 * no sync at all and no committer (the loop commits), replies go out right after the commit.
 *
 * The store's change observer (exec/store.h) learns of a batch's keys when its replies are
 * released: a marker queued after the batch's held replies calls ex_store_batch_settle()
 * with the same outcome, so a change is reported only once it is durable, never for a batch
 * whose replies became errors, and in commit order.
 *
 * Threads: everything on the loop thread of base, which becomes the store's batch thread
 * (the committer and syncer threads are internal).
 */
#ifndef POSTLY_EXEC_BATCH_H
#define POSTLY_EXEC_BATCH_H

#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "exec/store.h"

struct event_base;

typedef struct ex_batcher ex_batcher;

typedef void (*ex_batch_done_fn)(void *arg, pl_rc rc);
typedef void (*ex_batch_run_fn)(void *arg);

/* base, st and log (may be NULL) are borrowed and must outlive the batcher. Makes the calling
 * thread st's batch thread (PL_ERR_STATE when another thread is). PL_ERR_NOMEM, PL_ERR_IO,
 * PL_ERR_INTERNAL (the syncer or committer thread). */
pl_rc ex_batcher_new(struct event_base *base, ex_store *st, const core_log *log, ex_batcher **out);

/* Runs the parked units (their writes wait for a batch), commits what is held or in flight
 * (with a full sync), stops the committer, calls every held callback with the outcome, and
 * frees b. NULL-safe. */
void ex_batcher_free(ex_batcher *b);

/* Brackets one unit of work (a request). Not nested. leave returns 1 when the unit began a
 * write transaction in the batch (committed or not: even a replay of an idempotency record
 * written earlier in the batch reveals unsynced data), so its reply must be held. */
void ex_batcher_enter(ex_batcher *b);
int ex_batcher_leave(ex_batcher *b);

/* Holds one reply until the current batch is durable (or failed): done(arg, rc) runs later
 * on the loop thread, exactly once. PL_ERR_NOMEM: nothing held (the caller answers an error
 * at once; the batch still commits). */
pl_rc ex_batcher_hold(ex_batcher *b, ex_batch_done_fn done, void *arg);

/* Whether a unit of work that writes may run now without blocking the loop: 1 when the loop
 * holds a batch transaction, or when no commit is in flight (its first write then waits only
 * for the committer to begin one, microseconds); 0 while a commit (its fsync) is in flight or
 * units are parked: the caller parks the unit (ex_batcher_park) instead of running it. */
int ex_batcher_ready(ex_batcher *b);

/* Parks a unit of work: run(arg) is called later on the loop thread, exactly once, while
 * the loop holds the next batch transaction (in the order parked), or from ex_batcher_free().
 * run must do the unit's writes as a ready one would (enter, the writes, leave, hold) and
 * must not park again; if no batch transaction is held by then, its first write waits for
 * one. finish(arg) (may be NULL) is called once after run, when the batch holding the run
 * parts of the units run together has been handed to the committer: the part of the unit
 * that needs no transaction (forming the reply it held), so that LMDB's writer lock is not
 * held for it. A reply held by run is released only after finish has returned.
 * PL_ERR_NOMEM: not parked (the caller may run the unit at once: its first write waits). */
pl_rc ex_batcher_park(ex_batcher *b, ex_batch_run_fn run, ex_batch_run_fn finish, void *arg);

typedef struct ex_batch_stats {
    uint64_t commits; /* batches committed (non-empty) */
    uint64_t parked;  /* units parked in total */
    uint64_t held;    /* replies held in total */
    uint64_t failed;  /* replies released with an error */
    uint64_t syncs;   /* syncs run by the syncer thread */
} ex_batch_stats;

void ex_batcher_stats(ex_batcher *b, ex_batch_stats *out);

#endif
