#include "events.h"

#include <string.h>

#include "exec/webhook.h"

pl_rc ex_event_emit(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                    const json_t *data)
{
    /* The outbox write joins the caller's transaction: the event exists iff the change does. */
    return ex_webhook_enqueue(ctx, txn, ws, type, data);
}

const char *ex_event_for_final_status(const char *status)
{
    static const struct {
        const char *status, *event;
    } map[] = {
        {"published", "post.published"},
        {"failed", "post.failed"},
        {"partially_published", "post.partially_published"},
    };
    for (size_t i = 0; status && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i].status) == 0)
            return map[i].event;
    return NULL;
}
