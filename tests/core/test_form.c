/* tests/core/test_form.c — query/form parsing (duplicates, escapes, UTF-8, limits) and the
 * bounded buffer with HTML escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/form.h"

static pl_rc parse(const char *s, core_form *f, core_form_error *e)
{
    return core_form_parse(s, strlen(s), NULL, f, e);
}

static void test_form_basic(void **state)
{
    core_form f;
    core_form_error e;
    assert_int_equal(parse("a=1&b=hello+world&c=%41%62%e2%82%ac&&d&e=", &f, &e), PL_OK);
    assert_int_equal(f.n, 5);
    assert_string_equal(core_form_get(&f, "a"), "1");
    assert_string_equal(core_form_get(&f, "b"), "hello world");
    assert_string_equal(core_form_get(&f, "c"), "Ab\xe2\x82\xac");
    assert_string_equal(core_form_get(&f, "d"), "");
    assert_string_equal(core_form_get(&f, "e"), "");
    assert_null(core_form_get(&f, "z"));
    assert_int_equal(f.v[2].value_len, 5);
    core_form_free(&f);
    assert_int_equal(parse("", &f, &e), PL_OK);
    assert_int_equal(f.n, 0);
    core_form_free(&f);
    core_form_free(&f); /* idempotent */
}

static void test_form_duplicates(void **state)
{
    core_form f;
    core_form_error e;
    static const char *const rep[] = {"resource", NULL};
    core_form_limits lim = core_form_default_limits;
    const char *s = "resource=a&scope=x&resource=b";
    assert_int_equal(parse("scope=a&state=1&scope=b", &f, &e), PL_ERR_INVALID);
    assert_string_equal(e.msg, "parameter 'scope' is included more than once");
    core_form_free(&f);
    /* Same name spelled with an escape is still the same parameter. */
    assert_int_equal(parse("scope=a&sc%6Fpe=b", &f, &e), PL_ERR_INVALID);
    assert_non_null(strstr(e.msg, "more than once"));
    core_form_free(&f);
    lim.repeatable = rep;
    assert_int_equal(core_form_parse(s, strlen(s), &lim, &f, &e), PL_OK);
    assert_int_equal(core_form_count(&f, "resource"), 2);
    core_form_free(&f);
}

static void test_form_bad_encoding(void **state)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"a=%4", "parameter 'a' has an incomplete percent-escape"},
        {"a=%zz", "parameter 'a' has an invalid percent-escape"},
        {"a=%", "parameter 'a' has an incomplete percent-escape"},
        {"a=%00", "parameter 'a' contains a NUL byte"},
        {"a=%ff", "parameter 'a' is not valid UTF-8"},
        {"a=%c0%af", "parameter 'a' is not valid UTF-8"},       /* overlong '/' */
        {"a=%ed%a0%80", "parameter 'a' is not valid UTF-8"},    /* surrogate */
        {"a=%f4%90%80%80", "parameter 'a' is not valid UTF-8"}, /* > U+10FFFF */
        {"a=%e2%82", "parameter 'a' is not valid UTF-8"},       /* truncated */
        {"%ff=1", "a parameter name is not valid UTF-8"},
        {"=1", "a parameter has an empty name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_form f;
        core_form_error e;
        assert_int_equal(parse(bad[i].in, &f, &e), PL_ERR_INVALID);
        assert_string_equal(e.msg, bad[i].msg);
        assert_int_equal(f.n, 0);
        core_form_free(&f);
    }
}

static void test_form_limits(void **state)
{
    core_form f;
    core_form_error e;
    core_form_limits lim = core_form_default_limits;
    char big[9000];
    memset(big, 'x', sizeof big);
    memcpy(big, "a=", 2);
    big[sizeof big - 1] = '\0';
    assert_int_equal(parse(big, &f, &e), PL_ERR_TOO_LARGE);
    assert_string_equal(e.msg, "parameter 'a' is too long");
    core_form_free(&f);
    lim.max_params = 2;
    assert_int_equal(core_form_parse("a=1&b=2&c=3", 11, &lim, &f, &e), PL_ERR_TOO_LARGE);
    assert_string_equal(e.msg, "too many parameters");
    core_form_free(&f);
    lim.max_input = 4;
    assert_int_equal(core_form_parse("a=1&b=2", 7, &lim, &f, &e), PL_ERR_TOO_LARGE);
    core_form_free(&f);
    /* Not NUL-terminated input: only len bytes are read. */
    assert_int_equal(core_form_parse("a=1&b=2", 3, NULL, &f, &e), PL_OK);
    assert_int_equal(f.n, 1);
    core_form_free(&f);
}

static void test_utf8(void **state)
{
    assert_true(core_utf8_valid("plain", 5));
    assert_true(core_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(core_utf8_valid("\x80", 1));
    assert_false(core_utf8_valid("\xe0\x80\xaf", 3)); /* overlong */
    assert_false(core_utf8_valid("\xf5\x80\x80\x80", 4));
}

static void test_buf_html(void **state)
{
    core_buf b;
    const char *evil = "<script>alert(\"x\")</script>&'";
    char *taken;
    size_t n;
    core_buf_init(&b, 1000);
    assert_int_equal(core_buf_add_html(&b, evil, strlen(evil)), PL_OK);
    assert_string_equal(b.p, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;");
    core_buf_reset(&b);
    assert_int_equal(core_buf_add_urlenc(&b, "a b&c=d/é", strlen("a b&c=d/é")), PL_OK);
    assert_string_equal(b.p, "a%20b%26c%3Dd%2F%C3%A9");
    core_buf_reset(&b);
    assert_int_equal(core_buf_addf(&b, "%s-%d", "x", 42), PL_OK);
    assert_int_equal(core_buf_take(&b, &taken, &n), PL_OK);
    assert_string_equal(taken, "x-42");
    assert_int_equal(n, 4);
    free(taken);
    core_buf_init(&b, 8);
    assert_int_equal(core_buf_adds(&b, "12345678"), PL_OK);
    assert_int_equal(core_buf_adds(&b, "9"), PL_ERR_TOO_LARGE);
    assert_string_equal(b.p, "12345678");
    core_buf_free(&b);
    core_buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_basic),
        cmocka_unit_test(test_form_duplicates),
        cmocka_unit_test(test_form_bad_encoding),
        cmocka_unit_test(test_form_limits),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_buf_html),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
