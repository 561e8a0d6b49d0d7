/*
 * exec/schedule.h — scheduling times and the schedule queue.
 *
 * Times: RFC 3339 date-times with an explicit offset ("2026-12-01T09:30:00+01:00", "...Z";
 * RFC 3339 §5.6), stored as UTC milliseconds plus the IANA zone name the user thinks in
 * ("Europe/Paris"), which must exist under /usr/share/zoneinfo (a TZif file).
 *
 * The queue: EX_DB_QUEUE keys "<due ms, 16 hex>|<ws>|<post id>" with an empty value, so the
 * scheduler reads due work with one range scan from the start. A post has at most one entry
 * (its "queue_due_ms" field says which); every change to it happens in the same write
 * transaction as the post's own change.
 *
 * Thread: the caller's transaction's.
 */
#ifndef POSTLY_EXEC_SCHEDULE_H
#define POSTLY_EXEC_SCHEDULE_H

#include <stdint.h>

#include <jansson.h>

#include "exec/store.h"

/* Parses an RFC 3339 date-time with offset into UTC ms. PL_ERR_INVALID when malformed, without
 * an offset, or out of range. */
pl_rc ex_time_parse(const char *s, int64_t *ms);

/* PL_OK when name is an IANA zone present in /usr/share/zoneinfo ("UTC", "America/New_York");
 * PL_ERR_INVALID for bad syntax ("..", leading '/', odd characters) or an unknown zone. */
pl_rc ex_tz_check(const char *name);

/* Checks a schedule request: at must parse, be later than now and at most
 * ctx->limits.schedule_max_ahead_ms ahead; tz (may be NULL: "UTC") must exist. On success *ms
 * is the UTC time. Errors name the field: "scheduled_at: in the past (...)",
 * "timezone: unknown IANA zone \"Mars/Olympus\"". */
pl_rc ex_schedule_check(const ex_ctx *ctx, const char *at, const char *tz, int64_t *ms,
                        ex_err *err);

/* Adds / removes the queue entry of a post (removing a missing entry is PL_OK).
 * PL_ERR_INVALID / PL_ERR_TOO_LARGE for a bad key (see ex_queue_key), else the store's code. */
pl_rc ex_queue_put(ex_txn *txn, int64_t due_ms, const char *ws, const char *post_id);
pl_rc ex_queue_del(ex_txn *txn, int64_t due_ms, const char *ws, const char *post_id);

/* Moves post's queue entry to due_ms (removing the old one named by its "queue_due_ms"), or
 * removes it when due_ms < 0; updates post["queue_due_ms"]. The post is not written. */
pl_rc ex_queue_set(ex_txn *txn, json_t *post, const char *ws, int64_t due_ms);

/* Builds the queue key into buf (EX_KEY_MAX + 1 bytes). PL_ERR_INVALID for a bad ws,
 * PL_ERR_TOO_LARGE when it does not fit. */
pl_rc ex_queue_key(char *buf, size_t bufsz, int64_t due_ms, const char *ws, const char *post_id);

#endif
