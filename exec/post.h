/*
 * exec/post.h — posts: one post, one target per social account, published through the
 * connectors (exec/connector.h).
 *
 * LIFECYCLE (docs/exec.md has the diagram)
 *   post:   draft <-> scheduled -> publishing -> published | partially_published | failed
 *           (publish now: draft|scheduled -> publishing; retry: failed|partially_published ->
 *           publishing). A post in "publishing" is locked: update, delete, schedule and
 *           unschedule answer PL_ERR_STATE.
 *   target: pending -> publishing -> published | failed | unconfirmed, and publishing ->
 *           pending again after a transient failure or rate limit (next_attempt_at, backoff).
 *           unconfirmed = the platform's answer is unknown; retried only with force.
 *
 * Object: {id "pst_...", workspace_id, status, text, title, link, media_ids, campaign_id,
 *   scheduled_at (UTC RFC 3339) | null, scheduled_at_ms, timezone (IANA),
 *   targets: [{account_id, platform, text?, title?, link?, media_ids?, settings, board_id?,
 *              location_id?, status, attempts, failures, next_attempt_at, remote_id, url,
 *              published_at, error: {code, message} | null}],
 *   version, created_at, updated_at}
 * Target fields override the post's text/title/link/media_ids for that account.
 *
 * Every call: JSON arguments (borrowed), *out a new reference on PL_OK, err names the field on
 * failure, and a failed call changes nothing. ws comes from the caller's verified context; a
 * post of another workspace is PL_ERR_NOT_FOUND. Any thread. Publishing calls the connectors
 * outside any transaction (claim, call, record: exec/publish.h).
 */
#ifndef POSTLY_EXEC_POST_H
#define POSTLY_EXEC_POST_H

#include <jansson.h>

#include "exec/store.h"

/* args {account_ids | targets, text?, title?, link?, media_ids?, campaign_id?, scheduled_at?,
 *       timezone?, idempotency_key?}. Validated through the connectors; with scheduled_at the
 * post is "scheduled", else "draft". */
pl_rc ex_post_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);
/* args {post_id}. */
pl_rc ex_post_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out, ex_err *err);
/* args {status?, campaign_id?, platform?, from?, to? (RFC 3339; on scheduled_at, else
 * created_at), limit?, cursor?} -> {items, next_cursor}. */
pl_rc ex_post_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                   ex_err *err);
/* args {post_id, expected_version?, text?, title?, link?, media_ids?, targets?, account_ids?,
 *       campaign_id?}. Draft or scheduled posts only; re-validated. */
pl_rc ex_post_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);
/* args {post_id, expected_version?} -> {id, deleted: true}. Not while publishing. */
pl_rc ex_post_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);
/* args as create (nothing is stored) or {post_id} -> {valid, problems: [{target, account_id,
 * platform, field, code, message}]}. PL_OK even when invalid. */
pl_rc ex_post_validate(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err);
/* args {post_id, scheduled_at, timezone?, expected_version?}: draft|scheduled -> scheduled. */
pl_rc ex_post_schedule(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err);
/* args {post_id, expected_version?}: scheduled -> draft. */
pl_rc ex_post_unschedule(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err);
/* args {post_id, idempotency_key?}: publishes now (synchronously) and returns the post. */
pl_rc ex_post_publish(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {post_id, force?, idempotency_key?}: failed targets (and unconfirmed ones with force)
 * go back to pending and are published now. */
pl_rc ex_post_retry(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err);
/* args {post_id} -> {id, status, version, scheduled_at, targets: [{account_id, platform,
 * status, attempts, next_attempt_at, remote_id, url, published_at, error}]}. */
pl_rc ex_post_status(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);

/* args {post_id}: asks the platforms about unconfirmed targets (never publishes): found ->
 * published, deleted -> failed, not found -> still unconfirmed (retry with force). Returns the
 * post. */
pl_rc ex_post_reconcile(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err);

/* For ex_account_delete, inside its write transaction: *n_posts = the posts of ws that are
 * "scheduled" or "publishing" and still have a target for account_id to publish (pending, or
 * publishing under a claim). With apply != 0, each such pending target becomes "failed" with
 * error {code "account_removed", message "account removed"}; the post's status is recomputed
 * as after any failure (a scheduled post with other targets left stays scheduled at its time),
 * its queue entry follows, and post.failed / post.partially_published / post.published is
 * enqueued when the status became final; *n_failed counts those targets. A target already
 * handed to the platform (publishing) is left to its publisher, which records the platform's
 * real answer. Published targets are never touched. One pass over the workspace's posts.
 * PL_OK, PL_ERR_NOMEM or the store's code (the caller aborts). */
pl_rc ex_post_account_removed_txn(const ex_ctx *ctx, ex_txn *txn, const char *ws,
                                  const char *account_id, int apply, size_t *n_posts,
                                  size_t *n_failed);

/* Removes internal fields before a post leaves the layer (modifies p). */
void ex_post_present(json_t *p);

#endif
