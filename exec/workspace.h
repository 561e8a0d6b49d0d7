/*
 * exec/workspace.h — a workspace's content-side record: name, plan, default time zone and
 * settings. The authorization server owns membership (ARCHITECTURE.md §7); the execution layer
 * keeps this record under the same workspace id. ws always comes from the caller's verified
 * context, never from tool arguments.
 *
 * JSON in, JSON out: args are borrowed; *out is a new reference on PL_OK (json_decref);
 * err gets a message naming the field on failure. Any thread.
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

/* {id, name, plan, timezone, settings, version, created_at, updated_at}. */
pl_rc ex_workspace_get(const ex_ctx *ctx, const char *ws, json_t **out, ex_err *err);

/* args {name?, plan?, timezone?, settings?, expected_version?}. */
pl_rc ex_workspace_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                          ex_err *err);

/* Inside a transaction: the workspace's default time zone into buf ("UTC" when unknown). */
void ex_workspace_timezone(ex_txn *txn, const char *ws, char *buf, size_t bufsz);

#endif
