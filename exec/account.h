/*
 * exec/account.h — social accounts of a workspace: platform, display name, state
 * ("connected" | "needs_reconnect"), the platform's own account id and platform-specific
 * fields (Pinterest boards, Google Business Profile locations).
 *
 * Object: {id "acc_...", workspace_id, platform, display_name, state, remote_account,
 *          boards: [{id, name}], locations: [{id, name}], version, created_at, updated_at}.
 * Connecting an account (OAuth with the platform) is outside this layer; ex_account_create is
 * what that flow (and tests) call once it has a connection.
 *
 * JSON in, JSON out as in exec/workspace.h. Any thread.
 */
#ifndef POSTLY_EXEC_ACCOUNT_H
#define POSTLY_EXEC_ACCOUNT_H

#include <jansson.h>

#include "exec/store.h"

/* args {platform, display_name, remote_account?, boards?, locations?}. */
pl_rc ex_account_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err);
/* args {account_id} (other arguments are ignored). */
pl_rc ex_account_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                     ex_err *err);
/* args {platform?, state?, limit?, cursor?} -> {items, next_cursor}. */
pl_rc ex_account_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {account_id, expected_version?, force?} -> {id, deleted: true, posts_affected,
 * targets_failed}. When posts that are "scheduled" or "publishing" still target the account
 * (pending or in flight), PL_ERR_STATE "account_id: 2 scheduled or publishing posts target
 * social account acc_...; ..." and nothing changes, unless force: then, in the same write
 * transaction, their pending targets for it fail with "account removed" (code
 * "account_removed"), each post's status is recomputed and its events enqueued as for any
 * failure (exec/post.h, ex_post_account_removed_txn). Published history (published targets,
 * analytics snapshots) stays. PL_ERR_INVALID (bad id, expected_version or force),
 * PL_ERR_NOT_FOUND (no such account in ws), PL_ERR_CONFLICT (expected_version), the store's. */
pl_rc ex_account_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err);
/* Inside the caller's write transaction (the connectors' answers, exec/publish.c): sets state
 * ("connected" | "needs_reconnect", not checked here) and bumps the version when it changes;
 * stores nothing when it is already that state. PL_ERR_NOT_FOUND when the account does not
 * exist in ws, else the store's code; no err (the caller's own error stands). */
pl_rc ex_account_set_state_txn(const ex_ctx *ctx, ex_txn *txn, const char *ws,
                               const char *account_id, const char *state);
/* args {account_id, state, expected_version?} -> the account (version + 1). */
pl_rc ex_account_set_state(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err);

#endif
