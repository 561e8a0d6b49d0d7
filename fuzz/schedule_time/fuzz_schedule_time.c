/*
 * fuzz/schedule_time/fuzz_schedule_time.c — libFuzzer target for schedule times: RFC 3339
 * parsing (ex_time_parse), IANA zone names (ex_tz_check: syntax, then a look-up under
 * /usr/share/zoneinfo, so a traversal like "../../etc/passwd" must be refused by syntax), and
 * the whole schedule check. Input: "<date-time>\n<zone>". Properties: nothing crashes; a
 * parsed time formats (ex_time_format) to text that parses back to the same instant; no zone
 * name with ".." or a leading '/' is accepted; an accepted schedule is in the future.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "exec/args.h"
#include "exec/schedule.h"
#include "exec/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    size_t alen = nl ? (size_t)(nl - p) : size;
    char *at = strndup(p, alen);
    char *tz = nl ? strndup(nl + 1, size - alen - 1) : NULL;
    int64_t ms = 0, again = 0;
    char text[64];
    if (!at || (nl && !tz))
        goto out;
    /* Round trip within 1970..9999 UTC, what ex_time_format can print as RFC 3339 (an offset
     * can move a parsed local time just outside it). */
    if (ex_time_parse(at, &ms) == PL_OK && ms >= 0 && ms < 253402300800000LL) {
        ex_time_format(ms, text, sizeof text);
        if (ex_time_parse(text, &again) != PL_OK || again != ms)
            abort();
    }
    if (tz) {
        pl_rc rc = ex_tz_check(tz);
        if (rc == PL_OK && (strstr(tz, "..") || tz[0] == '/'))
            abort(); /* a path outside the zone directory was accepted */
    }
    core_fake_clock clock;
    core_fake_clock_init(&clock, 1795910400000LL);
    ex_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.clock = &clock.base;
    ex_limits_default(&ctx.limits);
    ex_err err;
    memset(&err, 0, sizeof err);
    if (ex_schedule_check(&ctx, at, tz, &ms, &err) == PL_OK && ms <= core_clock_now_ms(&clock.base))
        abort(); /* accepted a time that is not in the future */
out:
    free(at);
    free(tz);
    return 0;
}
