/*
 * exec/campaign.h — campaigns: {id "cmp_...", workspace_id, name, goal, start_date, end_date
 * (YYYY-MM-DD), status "planned" | "active" | "completed" | "archived", post_count, version,
 * created_at, updated_at}.
 *
 * Assignment: a post's "campaign_id" plus an index "<ws>|cpl|<campaign id>|<post id>" in
 * EX_DB_CAMPAIGNS, so a campaign's posts are one range scan. Deleting a campaign unlinks its
 * posts (their campaign_id becomes null, version + 1) and never deletes them.
 *
 * JSON in, JSON out as in exec/workspace.h. Any thread.
 */
#ifndef POSTLY_EXEC_CAMPAIGN_H
#define POSTLY_EXEC_CAMPAIGN_H

#include <jansson.h>

#include "exec/store.h"

/* args {name, goal?, start_date?, end_date?, status?, idempotency_key?}. */
pl_rc ex_campaign_create(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err);
/* args {campaign_id}. */
pl_rc ex_campaign_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err);
/* args {status?, limit?, cursor?}. */
pl_rc ex_campaign_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                       ex_err *err);
/* args {campaign_id, name?, goal?, start_date?, end_date?, status?, expected_version?}. */
pl_rc ex_campaign_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err);
/* args {campaign_id, expected_version?} -> {id, deleted: true, unlinked_posts: n}. */
pl_rc ex_campaign_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err);
/* args {campaign_id, post_ids: [...]} (campaign_id null unassigns) -> {campaign_id, assigned: n};
 * one transaction: an unknown post or campaign changes nothing. */
pl_rc ex_campaign_assign(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                         ex_err *err);

/* Inside the caller's write transaction: moves post (a JSON post object, modified) to campaign
 * campaign_id (NULL: none), maintaining the index and counts. PL_ERR_NOT_FOUND with err
 * "campaign_id: no campaign ..." when the campaign does not exist. The post is not stored. */
pl_rc ex_campaign_link_txn(ex_txn *txn, const char *ws, json_t *post, const char *campaign_id,
                           ex_err *err);

#endif
