/*
 * exec/workspace.h — a workspace's content-side record: name, plan, default time zone and
 * settings. The authorization server owns membership (ARCHITECTURE.md §7); the execution layer
 * keeps this record under the same workspace id. ws always comes from the caller's verified
 * context, never from tool arguments.
 *
 * JSON IN, JSON OUT — the contract every service of exec/ states by pointing here:
 *   ctx, ws and args are borrowed for the call; *out is set to NULL on entry and to a new
 *   reference on PL_OK (json_decref); err (may be NULL) gets err->field and a message that
 *   names the field on failure. A failed call changes nothing (one write transaction,
 *   aborted). Return codes: PL_OK; PL_ERR_INVALID (a bad or unknown argument, or a bad ws);
 *   PL_ERR_TOO_LARGE (an argument past its bound); PL_ERR_NOT_FOUND (an unknown id, or one of
 *   another workspace); PL_ERR_CONFLICT (expected_version mismatch, or an idempotency key reused
 *   with other arguments); PL_ERR_BUSY (the same idempotency key in flight; retry);
 *   PL_ERR_STATE (not allowed in the object's state); PL_ERR_LIMIT, PL_ERR_STORE, PL_ERR_IO,
 *   PL_ERR_NOMEM. Any thread: each call opens and ends its own transactions.
 */
#ifndef POSTLY_EXEC_WORKSPACE_H
#define POSTLY_EXEC_WORKSPACE_H

#include <jansson.h>

#include "exec/store.h"

/* Creates the record when missing from args {name, plan?, timezone?, settings?} (plan
 * defaults to "free", timezone to "UTC") and returns it; an existing record is returned
 * unchanged. PL_ERR_INVALID for a bad ws id or argument. */
pl_rc ex_workspace_ensure(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                          ex_err *err);

/* -> {id, name, plan, timezone, settings, version, created_at, updated_at}. PL_ERR_NOT_FOUND
 * "workspace: no such workspace" when ws has no record (or is not a valid id). */
pl_rc ex_workspace_get(const ex_ctx *ctx, const char *ws, json_t **out, ex_err *err);

/* args {name?, plan?, timezone?, settings?, expected_version?} -> the record (version + 1).
 * PL_ERR_NOT_FOUND when ws has no record. */
pl_rc ex_workspace_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                          ex_err *err);

/* Inside a transaction (read or write): the workspace's default time zone into buf
 * (truncated to bufsz; "UTC" when the record or its zone is missing). Cannot fail. */
void ex_workspace_timezone(ex_txn *txn, const char *ws, char *buf, size_t bufsz);

#endif
