/*
 * exec/analytics.h — analytics from the connectors' metrics (exec/connector.h): normalized
 * metrics (impressions, reach, engagements, clicks, likes, comments, shares, saves, video_views,
 * followers) that mean the same on every platform, plus each platform's native metrics under
 * their own names. Each call fetches from the connectors and records a snapshot per account or
 * post target in EX_DB_ANALYTICS ("<ws>|<account or post id>|<platform>"), one write
 * transaction per call.
 *
 * Periods: "from"/"to" RFC 3339 (default: the 28 days ending now), at most 366 days.
 * A metric a platform does not report is absent (not 0) from that platform's object, and the
 * summary says which platforms contributed to each total.
 *
 * JSON in, JSON out as in exec/workspace.h. Any thread (connector calls happen outside any
 * transaction).
 */
#ifndef POSTLY_EXEC_ANALYTICS_H
#define POSTLY_EXEC_ANALYTICS_H

#include <jansson.h>

#include "exec/store.h"

/* args {from?, to?} -> {period: {from, to}, totals: {metric: n}, platforms: [{platform,
 * accounts, metrics: {...}}]}. Accounts needing a reconnect are skipped and listed in
 * "skipped_accounts". */
pl_rc ex_analytics_summary(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                           ex_err *err);

/* args {platform, from?, to?} -> {platform, period, metrics, accounts: [{account_id,
 * display_name, metrics, native: {name: n}}]}. */
pl_rc ex_analytics_platform(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err);

/* args {post_id, platforms?: [names]} (platforms: what the caller may see; default all) ->
 * {post_id, targets: [{account_id, platform, remote_id, metrics, native}]} for published
 * targets only. */
pl_rc ex_analytics_post(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                        ex_err *err);

#endif
