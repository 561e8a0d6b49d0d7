/*
 * fuzz/webhook_sig/fuzz_webhook_sig.c — libFuzzer target for webhook signature checking
 * (ex_webhook_verify_signature: the timestamp header, the signature header with its list of
 * "v1=<hex>" items, the replay window). Input: "<timestamp>\n<signature header>\n<body>".
 * Properties: nothing crashes; a header that passes must contain the signature ex_webhook_sign
 * makes; the signature ex_webhook_sign makes for the same timestamp and body always passes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exec/webhook.h"

#define SECRET "whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FHAbCdEfGhIjK"
#define NOW_S  1795910400LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl1 = memchr(p, '\n', size);
    if (!nl1)
        return 0;
    const char *nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1));
    if (!nl2)
        return 0;
    char *ts = strndup(p, (size_t)(nl1 - p));
    char *sig = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
    const char *body = nl2 + 1;
    size_t blen = (size_t)(end - body);
    if (!ts || !sig)
        goto out;
    pl_rc rc = ex_webhook_verify_signature(SECRET, ts, sig, body, blen, NOW_S, 300);
    char want[80];
    char *endp = NULL;
    long long t = strtoll(ts, &endp, 10);
    if (rc == PL_OK) {
        /* it passed: the header holds the real signature for that timestamp */
        if (ex_webhook_sign(SECRET, t, body, blen, want, sizeof want) != PL_OK ||
            !strstr(sig, want + 3))
            abort();
    }
    /* the real signature, alone and after the fuzzed header, passes when in the window */
    size_t tl = strlen(ts);
    /* the header is unix seconds in decimal digits (no sign, no spaces), at most 15 */
    if (tl > 0 && tl <= 15 && strspn(ts, "0123456789") == tl && endp && *endp == '\0' &&
        llabs(t - NOW_S) <= 300 &&
        ex_webhook_sign(SECRET, t, body, blen, want, sizeof want) == PL_OK) {
        if (ex_webhook_verify_signature(SECRET, ts, want, body, blen, NOW_S, 300) != PL_OK)
            abort();
    }
out:
    free(ts);
    free(sig);
    return 0;
}
