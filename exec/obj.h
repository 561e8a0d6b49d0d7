/*
 * exec/obj.h — helpers shared by the services for workspace-scoped JSON objects: load by id
 * (another workspace's object is "not found"), optimistic concurrency, stamping.
 * Thread: the caller's transaction's.
 */
#ifndef POSTLY_EXEC_OBJ_H
#define POSTLY_EXEC_OBJ_H

#include <jansson.h>

#include "exec/store.h"

/* Loads "<ws>|<kind>|<id>" from db into *out (new reference). field names the argument for
 * the error ("post_id: no post pst_... in this workspace"); what is "post", "draft", ... */
pl_rc ex_obj_load(ex_txn *txn, ex_db db, const char *ws, const char *kind, const char *id,
                  const char *field, const char *what, json_t **out, ex_err *err);

/* Stores obj under "<ws>|<kind>|<obj.id>". */
pl_rc ex_obj_store(ex_txn *txn, ex_db db, const char *ws, const char *kind, const json_t *obj);

/* Deletes "<ws>|<kind>|<id>". */
pl_rc ex_obj_delete(ex_txn *txn, ex_db db, const char *ws, const char *kind, const char *id);

/* When args has "expected_version", it must equal obj's "version": else PL_ERR_CONFLICT
 * "expected_version: 3 but the post is at version 4". */
pl_rc ex_obj_check_version(const json_t *obj, const json_t *args, const char *what, ex_err *err);

/* version += 1, updated_at = now. */
void ex_obj_touch(json_t *obj, int64_t now_ms);

/* Sets created_at/updated_at (RFC 3339 text) and version 1 on a new object. */
void ex_obj_init(json_t *obj, const char *id, const char *ws, int64_t now_ms);

/* Reads a required id argument of kind: PL_ERR_INVALID "post_id: required" / "not a valid
 * post id", PL_ERR_NOT_FOUND never (syntax only). */
pl_rc ex_arg_id(const json_t *args, const char *field, const char *kind, const char **out,
                ex_err *err);

#endif
