/*
 * exec/events.h — state-change events of the execution layer, written to the webhook outbox
 * inside the write transaction that makes the change (so an event exists exactly when its
 * change committed). Types: "post.scheduled", "post.published", "post.failed",
 * "post.partially_published", "media.ready".
 *
 * ex_event_emit() hands the event to exec/webhook.h's ex_webhook_enqueue(); data is borrowed.
 * Thread: the transaction's.
 */
#ifndef POSTLY_EXEC_EVENTS_H
#define POSTLY_EXEC_EVENTS_H

#include <jansson.h>

#include "exec/store.h"

/* Returns ex_webhook_enqueue()'s code (PL_ERR_INVALID for an unknown type or non-object data,
 * PL_ERR_TOO_LARGE, PL_ERR_STORE); on failure the caller aborts txn. */
pl_rc ex_event_emit(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                    const json_t *data);

/* The event a post emits when its status becomes final ("published" → "post.published",
 * "failed" → "post.failed", "partially_published" → "post.partially_published"), or NULL for
 * any other status (or NULL). The string is static. */
const char *ex_event_for_final_status(const char *status);

#endif
