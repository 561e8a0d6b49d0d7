#include "events.h"

#include "exec/webhook.h"

pl_rc ex_event_emit(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                    const json_t *data)
{
    /* The outbox write joins the caller's transaction: the event exists iff the change does. */
    return ex_webhook_enqueue(ctx, txn, ws, type, data);
}
