/*
 * exec/idempotency.h — idempotency records for create and publish calls
 * (ARCHITECTURE.md §8).
 *
 * A record "<ws>|<operation>|<key>" in EX_DB_IDEMPOTENCY holds the SHA-256 of the canonical
 * arguments (without idempotency_key), a state ("in_flight" or "done"), the first result and
 * its expiry (>= ctx->limits.idempotency_ttl_ms, default 24 h, after it was written).
 *   same key + same arguments, done        -> the first result is replayed (*replay)
 *   same key + different arguments          -> PL_ERR_CONFLICT
 *   same key + same arguments, in flight    -> PL_ERR_BUSY (retryable), until the in-flight
 *                                              record's lease (ctx->limits.lease_ms) passes
 *   expired record                          -> as if absent
 * Only successful results are recorded: a call refused for bad input may be corrected and
 * retried with the same key.
 *
 * All functions run inside the caller's write transaction (so the record commits atomically
 * with the operation's own writes). Thread: the transaction's.
 */
#ifndef POSTLY_EXEC_IDEMPOTENCY_H
#define POSTLY_EXEC_IDEMPOTENCY_H

#include <stdint.h>

#include <jansson.h>

#include "exec/store.h"

typedef struct ex_idem {
    int active; /* 0 when args carried no idempotency_key: the other calls do nothing */
    char key[EX_KEY_MAX + 1];
    uint8_t hash[32];
} ex_idem;

/* Reads "idempotency_key" (1..128 chars of [A-Za-z0-9_.:-]) from args. PL_OK with *replay NULL:
 * run the operation. PL_OK with *replay set (a new reference): return it instead. */
pl_rc ex_idem_begin(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *op,
                    const json_t *args, ex_idem *idem, json_t **replay, ex_err *err);

/* Records the operation as in flight (for operations spanning several transactions). */
pl_rc ex_idem_mark_in_flight(const ex_ctx *ctx, ex_txn *txn, const ex_idem *idem);

/* Records the result (copied) as done. */
pl_rc ex_idem_finish(const ex_ctx *ctx, ex_txn *txn, const ex_idem *idem, const json_t *result);

/* Deletes expired records, scanning at most max_scan records from where the previous call
 * stopped (position kept in EX_DB_META). Opens its own write transaction. */
pl_rc ex_idem_purge(const ex_ctx *ctx, size_t max_scan, size_t *purged);

#endif
