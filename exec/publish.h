/*
 * exec/publish.h — the publishing engine shared by "publish now", "retry" and the scheduler:
 * claim (write transaction) -> call the connectors (no transaction) -> record (write
 * transaction).
 *
 * The claim marks the chosen targets "publishing", counts the attempt and writes a lease
 * record "<ws>|<post id>" in EX_DB_CLAIMS {owner, lease_until_ms}. LMDB serialises write
 * transactions across threads and processes, so two schedulers on one data directory can
 * never claim the same target. A process that dies after its claim leaves the targets
 * "publishing"; once the lease expires, ex_pub_recover_txn() marks them "unconfirmed" (the
 * platform may have published them): they are never published again without force. So a
 * crash can lose a publication's result, never publish it twice.
 *
 * Thread: a job belongs to one thread.
 */
#ifndef POSTLY_EXEC_PUBLISH_H
#define POSTLY_EXEC_PUBLISH_H

#include <stdint.h>

#include <jansson.h>

#include "exec/args.h"
#include "exec/connector.h"
#include "exec/idempotency.h"
#include "exec/store.h"

/* What the connector sees of one target, with the JSON it borrows from kept alive. */
typedef struct ex_target_buf {
    ex_target t;
    ex_media_ref media[EX_MEDIA_PER_POST];
    json_t *hold;                     /* array of the JSON objects the pointers above borrow from */
    char idem_key[EX_ID_MAX * 2 + 2]; /* "<post id>:<account id>" */
} ex_target_buf;

/* Builds the connector view of post target i (account, overrides, media). PL_ERR_NOT_FOUND
 * with err for a missing account or medium. */
pl_rc ex_target_build(ex_txn *txn, const char *ws, const json_t *post, size_t i, ex_target_buf *b,
                      ex_err *err);
/* Frees what b holds (accepts NULL); b may be built again. */
void ex_target_buf_clear(ex_target_buf *b);

typedef enum ex_claim_mode {
    EX_CLAIM_DUE = 0, /* scheduler: due targets only; the first attempt may miss its window */
    EX_CLAIM_NOW,     /* publish now / retry: every pending target, no window */
} ex_claim_mode;

typedef struct ex_pub_job {
    char ws[EX_WS_MAX];
    char post_id[EX_ID_MAX];
    char owner[64];
    size_t n;                   /* claimed targets */
    size_t idx[EX_TARGETS_MAX]; /* their index in post.targets */
    uint32_t attempt[EX_TARGETS_MAX];
    ex_target_buf tb[EX_TARGETS_MAX];
    ex_outcome out[EX_TARGETS_MAX];
    pl_rc call_rc[EX_TARGETS_MAX];
    ex_idem idem;         /* finished with the final post when active */
    int64_t leased_at_ms; /* when the lease was taken or last extended */
} ex_pub_job;

/* Inside the caller's write transaction, with post loaded (modified and stored here): claims
 * the targets to publish. PL_ERR_BUSY when another owner holds an unexpired lease. job->n may
 * be 0 (nothing due; missed windows and reconnects were recorded). */
pl_rc ex_pub_claim_txn(const ex_ctx *ctx, ex_txn *txn, json_t *post, const char *owner,
                       ex_claim_mode mode, ex_pub_job *job, ex_err *err);

/* Calls the connectors for the claimed targets (no transaction held), extending the lease in a
 * small write transaction whenever half of it has passed between two calls. */
void ex_pub_call(const ex_ctx *ctx, ex_pub_job *job);

/* Records the outcomes in one write transaction; *post_out (may be NULL) gets the presented
 * post (new reference). PL_ERR_NOT_FOUND when the post was deleted meanwhile, else the store's
 * code; the job stays the caller's (ex_pub_job_clear). */
pl_rc ex_pub_record(const ex_ctx *ctx, ex_pub_job *job, json_t **post_out, ex_err *err);

/* Frees what the job holds (not the job; accepts NULL). */
void ex_pub_job_clear(ex_pub_job *job);

/* Marks targets of expired leases "unconfirmed" (at most max leases). *n gets the count. */
pl_rc ex_pub_recover_txn(const ex_ctx *ctx, ex_txn *txn, size_t max, size_t *n);

/* Asks the connectors about the post's unconfirmed targets (by their idempotency key, outside
 * any transaction) and records what they say in one write transaction: live or processing ->
 * published; deleted -> failed ("deleted_remotely"); not found -> stays unconfirmed with a note.
 * Never publishes anything. *post_out (may be NULL) gets the presented post. */
pl_rc ex_pub_reconcile(const ex_ctx *ctx, const char *ws, const char *post_id, json_t **post_out,
                       ex_err *err);

/* Sets post.status from its targets once publishing started. */
void ex_post_status_recompute(json_t *post);

/* The wait before attempt number failures+1 of a target: base * 2^(failures-1), capped, with
 * +-25% jitter derived from the target key and failure count (deterministic), at least
 * retry_after_ms. */
int64_t ex_backoff_ms(const ex_limits *l, const char *target_key, int failures,
                      int64_t retry_after_ms);

#endif
