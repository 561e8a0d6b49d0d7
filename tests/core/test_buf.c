/* tests/core/test_buf.c — core_dec_i64 against printf's "%lld" (the hot paths that use it —
 * the audit line, JSON integers, JWT NumericDates — promise printf's bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

static void check(int64_t v)
{
    char want[32], got[CORE_DEC_I64_MAX + 1];
    size_t n;
    snprintf(want, sizeof want, "%lld", (long long)v);
    memset(got, 'x', sizeof got);
    n = core_dec_i64(v, got);
    assert_true(n >= 1 && n <= CORE_DEC_I64_MAX);
    assert_int_equal(got[n], 'x'); /* nothing written past the length */
    got[n] = '\0';
    assert_string_equal(got, want);
}

static void test_edges(void **state)
{
    static const int64_t v[] = {
        0,   1,          -1,          9,         10,        -10,           99,
        100, 1764403200, -1764403200, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof v / sizeof v[0]; i++)
        check(v[i]);
}

/* Every power of ten and its neighbours, both signs, and a spread of pseudo-random values. */
static void test_spread(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int64_t p = 1;
    int i;
    (void)state;
    for (i = 0; i < 19; i++) { /* 10^0 .. 10^18 */
        check(p - 1);
        check(p);
        check(p + 1);
        check(-p);
        check(-p + 1);
        if (i < 18)
            p *= 10;
    }
    for (i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check((int64_t)x);
        check((int64_t)(x >> (x & 63)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
