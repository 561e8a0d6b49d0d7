/*
 * exec/draft.h — drafts: free-form work in progress that is not yet a post (no validation
 * against platform rules, no schedule). Object: {id "drf_...", workspace_id, text, title, link,
 * media_ids, account_ids, notes, version, created_at, updated_at}. Referenced ids are checked
 * for syntax only (a draft may outlive the media or accounts it mentions).
 *
 * JSON in, JSON out as in exec/workspace.h. Any thread.
 */
#ifndef POSTLY_EXEC_DRAFT_H
#define POSTLY_EXEC_DRAFT_H

#include <jansson.h>

#include "exec/store.h"

/* args {text?, title?, link?, media_ids?, account_ids?, notes?, idempotency_key?}. */
pl_rc ex_draft_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {draft_id}. */
pl_rc ex_draft_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                   ex_err *err);
/* args {limit?, cursor?}. */
pl_rc ex_draft_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err);
/* args {draft_id, expected_version?, text?, title?, link?, media_ids?, account_ids?, notes?}. */
pl_rc ex_draft_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {draft_id, expected_version?} -> {id, deleted: true}. */
pl_rc ex_draft_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);

#endif
