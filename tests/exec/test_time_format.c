/* tests/exec/test_time_format.c — ex_time_format (exec/args.h) formats dates by hand since
 * it runs on every write; it must write exactly what gmtime_r + snprintf("%04d-%02d-%02dT
 * %02d:%02d:%02d.%03dZ") write: differential over edge instants (epoch, leap days, century
 * and 400-year rules, year 9999/10000, negative times) and random instants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "exec/args.h"

static void reference(int64_t ms, char *buf, size_t bufsz)
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static void same(int64_t ms)
{
    char a[64], b[64];
    memset(a, 'x', sizeof a);
    ex_time_format(ms, a, sizeof a);
    reference(ms, b, sizeof b);
    if (strcmp(a, b) != 0)
        fail_msg("ms %lld: ex_time_format %s, gmtime_r %s", (long long)ms, a, b);
}

static void test_edges(void **state)
{
    (void)state;
    static const int64_t s[] = {
        0,          1,          -1,          86399,        86400,        951782400,    951868800,
        4107542400, 4107456000, -2208988800, -62135596800, -62167219200, 253402300799, 253402300800,
        1795910036, -86401,     68256000,    1709164800,   1709251200};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        for (int64_t d = -1001; d <= 1001; d += 143)
            same(s[i] * 1000 + d);
    /* a buffer too short for the text: truncated as snprintf truncates */
    char small[10], ref[64];
    ex_time_format(1795910036123, small, sizeof small);
    reference(1795910036123, ref, sizeof ref);
    ref[sizeof small - 1] = '\0';
    assert_string_equal(small, ref);
}

static void test_random(void **state)
{
    (void)state;
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* years -300 .. 10300, every millisecond value possible */
        int64_t ms = (int64_t)(x % 388000000000000ULL) - 72000000000000LL;
        same(ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
