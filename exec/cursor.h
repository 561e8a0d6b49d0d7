/*
 * exec/cursor.h — opaque, tamper-evident pagination cursors and the one range-scan listing
 * that every service's list call uses.
 *
 * A cursor is base64url(payload) "." base64url(HMAC-SHA256(store secret, payload)) where
 * payload = "1|<listing>|<ws>|<filter hash>|<last id>". It is bound to one listing ("posts"),
 * one workspace and one set of filters: replaying it elsewhere, editing it or forging it gives
 * PL_ERR_INVALID "cursor: ...". The secret lives in the store (EX_DB_META "cursor_secret"),
 * so cursors survive restarts and are shared by processes on one data directory.
 *
 * Listing walks the key range "<ws>|<kind>|" after the cursor's last id, so the cost of a page
 * is O(page) whatever the store size. Ids are time ordered: objects created while a client pages
 * appear after the pages already returned (no duplicates, no gaps). With filters a page stops
 * after scanning ctx->limits.list_scan_budget records (default EX_LIST_SCAN_BUDGET) and returns
 * fewer items, possibly none, plus a next_cursor.
 *
 * Ownership: every pointer argument is borrowed for the call. Thread: any (ex_list_run opens
 * its own read transaction; the encoders touch only the store's immutable secret).
 */
#ifndef POSTLY_EXEC_CURSOR_H
#define POSTLY_EXEC_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/store.h"

#define EX_CURSOR_MAX        512 /* longest accepted cursor text */
#define EX_LIST_SCAN_BUDGET  5000
#define EX_LIST_DEFAULT_PAGE 25

/* Encodes a cursor; out needs EX_CURSOR_MAX + 1 bytes. fhash is 8 bytes. PL_ERR_TOO_LARGE when
 * it does not fit, else PL_OK. */
pl_rc ex_cursor_encode(const ex_store *st, const char *listing, const char *ws,
                       const uint8_t fhash[8], const char *last_id, char *out, size_t outsz);

/* Checks and decodes cursor text into last_id (size lastsz). PL_ERR_INVALID with a specific
 * message: malformed, bad signature, another listing, another workspace, other filters. */
pl_rc ex_cursor_decode(const ex_store *st, const char *listing, const char *ws,
                       const uint8_t fhash[8], const char *cursor, char *last_id, size_t lastsz,
                       ex_err *err);

/* Returns 1 to keep item, 0 to skip it. */
typedef int (*ex_list_filter_fn)(const json_t *item, void *arg);

typedef struct ex_listing {
    const char *name;      /* "posts": the cursor's listing */
    ex_db scan_db;         /* the database scanned */
    const char *scan_kind; /* middle key part: range is "<ws>|<scan_kind>|" */
    /* When resolve_kind is set, the scanned key's suffix after the prefix is an id looked up as
     * "<ws>|<resolve_kind>|<id>" in resolve_db (index scans); otherwise the value is the item. */
    ex_db resolve_db;
    const char *resolve_kind;
    ex_list_filter_fn filter; /* may be NULL */
    void *filter_arg;
    /* Applied to each kept item (e.g. to drop internal fields); may be NULL. */
    void (*present)(json_t *item);
} ex_listing;

/* Runs one page: reads "limit" (1..ctx->limits.page_max, default EX_LIST_DEFAULT_PAGE) and
 * "cursor" from args; every other member of args is part of the filter hash. *out gets
 * {"items": [...], "next_cursor": "..." | null}. Opens its own read transaction. */
pl_rc ex_list_run(const ex_ctx *ctx, const char *ws, const ex_listing *l, const json_t *args,
                  json_t **out, ex_err *err);

#endif
