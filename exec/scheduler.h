/*
 * exec/scheduler.h — the scheduler: reads the LMDB schedule queue (exec/schedule.h), claims due
 * posts atomically (exec/publish.h), publishes through the connectors and records outcomes;
 * transient failures come back with exponential backoff and jitter up to
 * ctx->limits.max_attempts; a first attempt later than scheduled_at + ctx->limits.grace_ms
 * fails with "missed_window"; leases of dead workers become "unconfirmed" targets (never
 * retried without force).
 *
 * Several schedulers (threads or processes) may run on one data directory: each claim is one
 * LMDB write transaction, so a target is claimed once. The clock is ctx->clock: tests drive
 * ex_scheduler_run_once() with a fake clock and never sleep. In a daemon,
 * ex_scheduler_attach() runs it on a libevent timer.
 *
 * Thread: a scheduler belongs to one thread (its event base's when attached).
 */
#ifndef POSTLY_EXEC_SCHEDULER_H
#define POSTLY_EXEC_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "exec/store.h"

struct event_base;

typedef struct ex_scheduler ex_scheduler;

typedef struct ex_sched_stats {
    size_t posts;     /* posts claimed */
    size_t targets;   /* targets published or attempted */
    size_t recovered; /* posts whose dead lease was turned into unconfirmed targets */
    size_t stale;     /* queue entries dropped (post gone, not due, claimed elsewhere) */
} ex_sched_stats;

/* name identifies this instance in leases ("sched-<random>" when NULL). ctx is borrowed and
 * must outlive the scheduler. */
pl_rc ex_scheduler_new(const ex_ctx *ctx, const char *name, ex_scheduler **out);
/* Detaches and frees s (accepts NULL). */
void ex_scheduler_free(ex_scheduler *s);

/* One pass: recovers expired leases, claims up to max_posts due posts in one transaction,
 * publishes them, records each. stats may be NULL (it is added to, not reset). */
pl_rc ex_scheduler_run_once(ex_scheduler *s, size_t max_posts, ex_sched_stats *stats);

/* *due_ms = the due time of the earliest queue entry, or -1 when the queue is empty.
 * PL_OK or PL_ERR_STORE. Any thread (its own read transaction). */
pl_rc ex_scheduler_next_due(const ex_ctx *ctx, int64_t *due_ms);

/* Runs the scheduler on base: at the next due queue entry, at least every interval_ms (other
 * processes may add work), and immediately again while a pass was full. Also purges expired
 * idempotency records and abandoned uploads. Detach before freeing the base. */
pl_rc ex_scheduler_attach(ex_scheduler *s, struct event_base *base, int64_t interval_ms);
void ex_scheduler_detach(ex_scheduler *s);

/* Totals of all passes so far. */
void ex_scheduler_stats(const ex_scheduler *s, ex_sched_stats *out);

#endif
