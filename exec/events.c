#include "events.h"

pl_rc ex_event_emit(const ex_ctx *ctx, ex_txn *txn, const char *ws, const char *type,
                    const json_t *data)
{
    /* Until exec/webhook.h lands the events go nowhere; see docs/exec.md. */
    (void)ctx;
    (void)txn;
    (void)ws;
    (void)type;
    (void)data;
    return PL_OK;
}
