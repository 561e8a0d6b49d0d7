/*
 * exec/webhook.h — webhook subscriptions, the transactional outbox of events, and the
 * asynchronous, signed, retried delivery of those events (docs/webhooks.md).
 *
 * SUBSCRIPTIONS: a workspace registers an https URL (plain http only to a loopback host, and
 * only when the caller's ex_webhook_url_policy allows it: tests and development) and the event
 * types it wants. The signing secret "whsec_<43 base64url chars>" (256 random bits) is returned
 * ONCE, by create and rotate_secret; it is stored in the clear in EX_DB_WEBHOOKS because the
 * dispatcher must sign with it (a hash would not do). docs/webhooks.md discusses the trade-off.
 *
 * EVENTS: ex_webhook_enqueue() runs inside the caller's write transaction: for every active
 * subscription of the workspace that wants the type it writes a delivery record
 * (EX_DB_DELIVERIES "<ws>|dlv|<id>") and a queue entry (EX_DB_OUTBOX "<due 16 hex>|<ws>|<id>").
 * So an event exists exactly when the state change that caused it committed; the network is
 * never touched there, and a slow or dead receiver cannot block publishing.
 *
 * DELIVERY: an ex_webhook_dispatcher on a libevent base claims due queue entries in a write
 * transaction (a lease, so two dispatchers on one data directory never send one attempt
 * twice), POSTs the event JSON with
 *   Content-Type: application/json
 *   Postly-Webhook-Id: <event id, the same on every attempt: receivers deduplicate on it>
 *   Postly-Webhook-Timestamp: <unix seconds of this attempt>
 *   Postly-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 * with a timeout and bounded concurrency, records every attempt (time, status code, latency,
 * error) in the delivery record, and retries any non-2xx answer or network error with
 * exponential backoff and jitter up to max_attempts. Delivery is at least once.
 * https receivers are reached over TLS 1.2+ with the certificate chain verified against the
 * system CA store (plus options.ca_file) and the name checked against the URL's host (SNI
 * sent); a failed check is recorded as "tls: certificate verification failed: <reason>" and
 * retried like any other error. The SSRF guard applies to the address actually connected to.
 * Redirects are never followed (a 3xx is a failure). A 410 Gone fails the delivery at once and
 * disables the subscription (the receiver asked to be removed; re-enable it with update {active:
 * true}).
 *
 * THREADS: the services (create/get/list/update/delete/rotate/deliveries) and
 * ex_webhook_enqueue() may run on any thread. A dispatcher belongs to its event base's thread:
 * call every ex_webhook_dispatcher_* function from that thread only. It runs LMDB write
 * transactions (claims, attempt records; an fsync each when durable) on that thread, so give
 * it a thread and event base of its own rather than the loop that serves requests.
 */
#ifndef POSTLY_EXEC_WEBHOOK_H
#define POSTLY_EXEC_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "exec/store.h"

struct event_base;

#define EX_WEBHOOKS_PER_WS_MAX   20                   /* subscriptions per workspace */
#define EX_WEBHOOK_URL_MAX       2048                 /* bytes */
#define EX_WEBHOOK_EVENTS_MAX    16                   /* event types per subscription */
#define EX_WEBHOOK_SECRET_SIZE   56                   /* "whsec_" + 43 chars + NUL, rounded up */
#define EX_WEBHOOK_BODY_MAX      ((size_t)256 * 1024) /* serialized event, bytes */
#define EX_WEBHOOK_ATTEMPTS_KEPT 20  /* attempts kept per delivery record (the latest) */
#define EX_WEBHOOK_TOLERANCE_S   300 /* default verification tolerance */

/* The event types, in a table (docs/webhooks.md describes each payload):
 * "post.scheduled", "post.published", "post.partially_published", "post.failed",
 * "post.unconfirmed", "media.ready", "webhook.test". A subscription may also ask for "*". */
int ex_webhook_event_known(const char *type);

/* ---- subscriptions (services: JSON in, JSON out, like exec/post.h) ---- */

/* Who may be a receiver. NULL means the strict default: https only, no loopback, private or
 * link-local IP literals. */
typedef struct ex_webhook_url_policy {
    int allow_http_loopback; /* http://127.0.0.1:<port>/..., http://[::1]/..., localhost */
} ex_webhook_url_policy;

/* args {url, events: [type...], description?} -> the subscription
 * {id "whk_...", url, events, description, active, created_at, updated_at, version, secret}.
 * The secret appears in this answer only. PL_ERR_INVALID (err names url/events/description),
 * PL_ERR_LIMIT past EX_WEBHOOKS_PER_WS_MAX. */
pl_rc ex_webhook_create(const ex_ctx *ctx, const char *ws, const json_t *args,
                        const ex_webhook_url_policy *policy, json_t **out, ex_err *err);
/* args {webhook_id} -> the subscription without its secret. */
pl_rc ex_webhook_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);
/* args {} -> {items: [...]} (at most EX_WEBHOOKS_PER_WS_MAX, oldest first, no secrets). */
pl_rc ex_webhook_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {webhook_id, expected_version?, url?, events?, description?, active?}. */
pl_rc ex_webhook_update(const ex_ctx *ctx, const char *ws, const json_t *args,
                        const ex_webhook_url_policy *policy, json_t **out, ex_err *err);
/* args {webhook_id, expected_version?} -> {id, deleted: true}. Its pending deliveries are
 * dropped by the dispatcher (recorded as failed: "webhook deleted"). */
pl_rc ex_webhook_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err);
/* args {webhook_id} -> the subscription with its NEW secret (shown once); the old one stops
 * signing immediately. */
pl_rc ex_webhook_rotate_secret(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                               ex_err *err);
/* args {webhook_id?, limit? (1..100, default 20), before? (a delivery id)} -> {items: [
 * {id, webhook_id, event_id, type, status (pending|delivering|delivered|failed), attempts
 * (count), next_attempt_at, created_at, delivered_at, last: [{at, status_code, latency_ms,
 * error}]}], next_before}. Newest first. */
pl_rc ex_webhook_deliveries(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err);

/* args {webhook_id} -> {delivery_id, event_id, webhook_id}: queues a "webhook.test" event for
 * that subscription alone, whatever its event list (a "send test event" button).
 * PL_ERR_STATE when the webhook is disabled. */
pl_rc ex_webhook_send_test(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err);

/* ---- the outbox ---- */

/* Records the event `type` with payload `data` (an object, borrowed) for every subscription of
 * ws that wants it, inside txn (a write transaction the caller commits or aborts: the event
 * then exists, or not, with the change). The event body is
 *   {"id":"evt_...","type":type,"created_at":"<RFC 3339 UTC>","workspace_id":ws,"data":data}
 * Nothing is written when no subscription wants it. PL_ERR_INVALID for an unknown type or a
 * non-object data, PL_ERR_TOO_LARGE past EX_WEBHOOK_BODY_MAX, PL_ERR_STORE. On failure the
 * caller must abort txn. Any thread (the transaction's). */
pl_rc ex_webhook_enqueue(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                         const json_t *data);

/* Deletes finished deliveries (delivered or failed) created before older_than_ms, walking
 * EX_DB_DELIVERIES from *resume (a caller-kept buffer of EX_KEY_MAX + 1 bytes; "" starts at
 * the beginning) and looking at most max_scan records; *resume is left where the walk stopped
 * ("" once it reached the end, so the next call starts over). Pending and delivering records
 * are never touched. Reads in a read transaction; writes only when there is something to
 * delete. *purged (may be NULL) gets the count. The dispatcher calls it on its timer with
 * options.retention_ms; it is public for operators and tests. */
pl_rc ex_webhook_purge(ex_store *st, int64_t older_than_ms, size_t max_scan, char *resume,
                       size_t *purged);

/* ---- signatures ---- */

/* Writes "v1=<64 hex>" (HMAC-SHA256 under secret of "<timestamp>.<body>") into out (at least
 * 68 bytes). */
pl_rc ex_webhook_sign(const char *secret, int64_t timestamp, const void *body, size_t len,
                      char *out, size_t outsz);

/* For receivers and tests. timestamp and signature are the header values; signature may hold
 * several space- or comma-separated "v1=<hex>" items (any match passes, so a receiver can hold
 * two secrets during rotation). Compared in constant time. Returns PL_OK, PL_ERR_INVALID for a
 * malformed header, PL_ERR_EXPIRED when |now_s - timestamp| > tolerance_s (replay window),
 * PL_ERR_CRYPTO when no signature matches. */
pl_rc ex_webhook_verify_signature(const char *secret, const char *timestamp, const char *signature,
                                  const void *body, size_t len, int64_t now_s, int64_t tolerance_s);

/* ---- the dispatcher ---- */

typedef struct ex_webhook_options {
    int max_in_flight;       /* concurrent requests, default 8 */
    int64_t timeout_ms;      /* connect + request + response, default 10 s */
    int max_attempts;        /* default 12 (the last about 14.5 hours after the first) */
    int64_t backoff_base_ms; /* wait after the first failure, default 30 s; doubles */
    int64_t backoff_max_ms;  /* default 6 h */
    int64_t poll_ms;         /* how often the queue is scanned, default 1 s (real time) */
    int64_t lease_ms;        /* a claim outlives the timeout by this, default 60 s */
    int64_t retention_ms;    /* finished deliveries are purged after this, default 30 days;
                                0 keeps them forever */
    /* An extra trusted CA bundle (PEM path, read once by dispatcher_new; borrowed) on top of
     * the system store, for private deployments and tests. NULL: the system store only. */
    const char *ca_file;
} ex_webhook_options;

void ex_webhook_options_default(ex_webhook_options *o);

typedef struct ex_webhook_dispatcher ex_webhook_dispatcher;

/* A dispatcher on base (borrowed, must outlive it) over st (borrowed). clock and log are
 * borrowed; opt NULL means the defaults. It polls every opt.poll_ms of real time; due times
 * and backoff follow `clock`, so tests move a fake clock and call ex_webhook_dispatcher_kick.
 * Free with ex_webhook_dispatcher_free (cancels requests in flight; their deliveries come
 * back when their lease ends). PL_ERR_INVALID for options out of range or a ca_file that
 * cannot be read as PEM certificates; PL_ERR_NOMEM. */
pl_rc ex_webhook_dispatcher_new(struct event_base *base, ex_store *st, const core_clock *clock,
                                const core_log *log, const ex_webhook_options *opt,
                                ex_webhook_dispatcher **out);
void ex_webhook_dispatcher_free(ex_webhook_dispatcher *d);

/* Claims what is due now (up to the free request slots) and starts those requests; returns at
 * once (the requests complete on the event loop). *started (may be NULL) gets how many. */
pl_rc ex_webhook_dispatcher_kick(ex_webhook_dispatcher *d, int *started);

/* Requests currently in flight. */
int ex_webhook_dispatcher_in_flight(const ex_webhook_dispatcher *d);

/* Counters since creation, for tests, metrics and benchmarks. */
typedef struct ex_webhook_stats {
    uint64_t attempts;    /* requests finished (any result) */
    uint64_t delivered;   /* 2xx answers */
    uint64_t failed;      /* deliveries given up (max attempts, webhook deleted) */
    uint64_t retried;     /* attempts that scheduled another */
    uint64_t record_txns; /* write transactions that recorded attempts (answers are batched) */
} ex_webhook_stats;

void ex_webhook_dispatcher_stats(const ex_webhook_dispatcher *d, ex_webhook_stats *out);

#endif
