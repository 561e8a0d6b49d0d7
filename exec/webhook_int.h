/*
 * exec/webhook_int.h — what exec/webhook.c and exec/webhook_dispatch.c share; not a public
 * header.
 *
 * RECORDS
 *   EX_DB_WEBHOOKS   "<ws>|whk|<id>" -> {id, workspace_id, url, events, description, active,
 *                                        allow_loopback, secret, version, created_at,
 *                                        updated_at, disabled_reason?}
 *   EX_DB_DELIVERIES "<ws>|dlv|<id>" -> {id, workspace_id, webhook_id, event_id, type, body
 *                                        (the exact bytes sent), status, attempts,
 *                                        next_attempt_ms, next_attempt_at, created_at,
 *                                        delivered_at, last_error, last: [{at, status_code,
 *                                        latency_ms, error}] (the latest EX_WEBHOOK_ATTEMPTS_KEPT)}
 *   EX_DB_OUTBOX     "<due ms, 16 hex>|<ws>|<dlv id>" -> "" : the delivery queue, in due order.
 *                    Invariant: a delivery that is pending or delivering has exactly one queue
 *                    entry and its key's due equals the record's next_attempt_ms (for a
 *                    delivering one: the end of the claim's lease).
 *
 * Thread: the transaction's for the ex_txn functions; the rest are pure and any thread's.
 */
#ifndef POSTLY_EXEC_WEBHOOK_INT_H
#define POSTLY_EXEC_WEBHOOK_INT_H

#include <jansson.h>
#include <lmdb.h>

#include "exec/store.h"
#include "exec/webhook.h"

#define EX_WH_KIND_WEBHOOK     "whk"
#define EX_WH_KIND_DELIVERY    "dlv"
#define EX_WH_KIND_EVENT       "evt"
#define EX_WH_DESCRIPTION_MAX  200
#define EX_WH_LIST_SCAN_BUDGET 5000

/* Called per record; return <0 on error, >0 to stop, 0 to go on. */
typedef int (*ex_wh_scan_fn)(const MDB_val *k, const MDB_val *v, void *arg);

/* Walks the keys of db that start with prefix, forwards, or backwards when reverse (from the
 * last key below `upper` when upper is non-NULL, else from the end of the range). PL_OK (also
 * when fn stopped the walk), PL_ERR_INVALID for a prefix past EX_KEY_MAX, PL_ERR_STORE for a
 * store error or when fn returned < 0. */
pl_rc ex_wh_scan(ex_txn *txn, ex_db db, const char *prefix, int reverse, const char *upper,
                 ex_wh_scan_fn fn, void *arg);

/* "<due 16 hex>|<ws>|<dlv id>" into buf. PL_ERR_TOO_LARGE when it does not fit (ws is not
 * checked: the caller's key building already did). */
pl_rc ex_wh_queue_key(int64_t due_ms, const char *ws, const char *dlv_id, char *buf, size_t bufsz);

/* A delivery record as the API shows it (no body, no internal fields); new reference. */
json_t *ex_wh_delivery_present(const json_t *d);

/* Where an address or host leads (the receiver policy, docs/webhooks.md). */
typedef enum ex_wh_addr_class {
    EX_WH_ADDR_PUBLIC = 0,
    EX_WH_ADDR_LOOPBACK,
    EX_WH_ADDR_PRIVATE, /* private, link-local, reserved, multicast, unspecified */
} ex_wh_addr_class;

struct sockaddr;

/* The class of a resolved address (AF_INET / AF_INET6; anything else is PRIVATE). */
ex_wh_addr_class ex_wh_sockaddr_class(const struct sockaddr *sa);

/* The class of a URL host: an IP literal in any form getaddrinfo() reads (*is_literal = 1),
 * "localhost" and names under it (loopback), or another name (public until resolved). */
ex_wh_addr_class ex_wh_host_class(const char *host, int *is_literal);

/* Checks a receiver URL against the policy (NULL = strict); err names field. */
pl_rc ex_wh_url_check(const char *url, const ex_webhook_url_policy *policy, const char *field,
                      ex_err *err);

#endif
