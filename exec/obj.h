/*
 * exec/obj.h — helpers shared by the services for workspace-scoped JSON objects: load by id
 * (another workspace's object is "not found"), optimistic concurrency, stamping, and the
 * open → edit → save/remove pattern every get/update/delete service shares.
 * Keys are "<ws>|<kind>|<id>" (docs/exec.md, "Stores and key layout").
 * Ownership: objects handed out through json_t ** are new references the caller decrefs;
 * ws, args, kind, field and what are borrowed for the call.
 * Thread: any thread, each call inside the caller's transaction (an ex_txn belongs to the
 * thread that began it).
 */
#ifndef POSTLY_EXEC_OBJ_H
#define POSTLY_EXEC_OBJ_H

#include <jansson.h>

#include "exec/store.h"

/* One kind of workspace-scoped object: where it lives and how errors name it. */
typedef struct ex_obj_type {
    ex_db db;
    const char *kind;  /* key and id kind: "drf" */
    const char *field; /* its id argument: "draft_id" */
    const char *what;  /* the noun in messages: "draft" */
} ex_obj_type;

/* ex_txn_get_json(txn, db, key, out) — the same tree, PL_ERR_NOT_FOUND, PL_ERR_STORE for a
 * record that is not JSON — parsed by core_json_loadb (core/json_text.h) instead of
 * json_loadb: records are read on most tool calls. */
pl_rc ex_obj_get_json(ex_txn *txn, ex_db db, const char *key, json_t **out);

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

/* Fills a new object from the create call's args. PL_OK, or an error with err set. */
typedef pl_rc (*ex_obj_fill_fn)(json_t *obj, const json_t *args, ex_err *err);

/* The create service of a simple kind, in one write transaction under idempotency operation
 * op ("draft.create", exec/idempotency.h): a replayed key hands back the first result;
 * otherwise a new id of kind t->kind, ex_obj_init(), fill(), store, record, commit. The caller
 * has checked the allowed arguments. *out is a new reference on PL_OK. Returns fill()'s
 * error, ex_idem_begin()'s (PL_ERR_CONFLICT, PL_ERR_BUSY, PL_ERR_INVALID) or the store's. */
pl_rc ex_obj_create(const ex_ctx *ctx, const ex_obj_type *t, const char *ws, const json_t *args,
                    const char *op, ex_obj_fill_fn fill, json_t **out, ex_err *err);

/* Reads t->field from args (ex_arg_id), begins a transaction in *txn (write when write != 0)
 * and loads the object into *obj (new reference); a write open also checks expected_version.
 * Returns PL_OK, PL_ERR_INVALID (bad id or expected_version), PL_ERR_NOT_FOUND, PL_ERR_CONFLICT,
 * PL_ERR_STORE; whatever it returns, the caller ends *txn with ex_txn_abort() (which is a
 * no-op after a commit) and decrefs *obj. *txn must be zero-initialised. */
pl_rc ex_obj_open(const ex_ctx *ctx, const ex_obj_type *t, const char *ws, const json_t *args,
                  int write, ex_txn *txn, json_t **obj, ex_err *err);

/* ex_obj_touch(obj), stores it under t's key and commits txn. PL_OK or the store's error
 * (the caller still aborts txn). obj stays the caller's. */
pl_rc ex_obj_save(const ex_ctx *ctx, const ex_obj_type *t, ex_txn *txn, const char *ws,
                  json_t *obj);

/* Deletes obj from t's database, commits txn and sets *out to {"id": ..., "deleted": true}
 * (new reference). PL_OK, PL_ERR_NOT_FOUND or the store's error (*out stays NULL), or
 * PL_ERR_NOMEM after the commit when the answer cannot be built. */
pl_rc ex_obj_remove(const ex_obj_type *t, ex_txn *txn, const char *ws, const json_t *obj,
                    json_t **out);

#endif
