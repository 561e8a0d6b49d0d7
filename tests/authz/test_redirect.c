/* tests/authz/test_redirect.c — az_redirect_uri_check(): https, loopback http, and the
 * private-use URI scheme redirects of native apps (RFC 8252 §7.1), public clients only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authz/server_int.h"

static void test_accepted(void **state)
{
    static const char *const ok[] = {
        "https://app.example/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:9000/cb",
        "com.example.editor:/callback",
        "com.example.editor://callback/path?x=1",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "Com.Example.App:/cb",
    };
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *why = "unset";
        if (az_redirect_uri_check(ok[i], 1, &why) != PL_OK)
            fail_msg("%s refused: %s", ok[i], why);
        assert_null(why);
    }
    assert_true(az_uri_is_private_scheme("com.example.editor:/callback"));
    assert_true(az_uri_is_private_scheme("cursor://x/cb"));
    assert_false(az_uri_is_private_scheme("https://app.example/cb"));
    assert_false(az_uri_is_private_scheme("javascript:alert(1)"));
}

static void test_refused(void **state)
{
    static const struct {
        const char *uri;
        const char *why;
    } bad[] = {
        {"javascript:alert(1)", "https"},
        {"JavaScript:/alert(1)", "https"},
        {"data:/text/html,x", "https"},
        {"file:///etc/passwd", "https"},
        {"blob:/x", "https"},
        {"http://evil.example/cb", "loopback"},
        {"ftp://a.example/cb", "https"},
        {"myapp:/callback", "reverse domain"},
        {"com.example.:/cb", "reverse domain"},
        {".com.example:/cb", "absolute"},
        {"com..example:/cb", "reverse domain"},
        {"com.example+x.app:/cb", "reverse domain"},
        {"com.example.app:callback", "path"},
        {"com.example.app:", "path"},
        {"com.example.app://user@host/cb", "user"},
        {"com.example.app:/cb#frag", "fragment"},
        {"com.example.app:/c b", "spaces"},
        {"1com.example:/cb", "absolute"},
        {":/cb", "absolute"},
        {"/relative/cb", "absolute"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        if (az_redirect_uri_check(bad[i].uri, 1, &why) == PL_OK)
            fail_msg("%s accepted", bad[i].uri);
        if (!why || !strstr(why, bad[i].why))
            fail_msg("%s: reason \"%s\" does not mention \"%s\"", bad[i].uri, why ? why : "",
                     bad[i].why);
    }
}

/* RFC 8252 §8.4: a private-use scheme identifies no one; confidential clients keep https. */
static void test_confidential_refused(void **state)
{
    const char *why = NULL;
    (void)state;
    assert_int_equal(az_redirect_uri_check("com.example.editor:/callback", 0, &why),
                     PL_ERR_INVALID);
    assert_non_null(strstr(why, "public native clients"));
    assert_int_equal(az_redirect_uri_check("https://app.example/cb", 0, &why), PL_OK);
    assert_int_equal(az_redirect_uri_check("http://127.0.0.1/cb", 0, &why), PL_OK);
}

/* Exact matching still applies: no prefix, case or port leniency for scheme redirects. */
static void test_exact_match(void **state)
{
    az_client c;
    (void)state;
    memset(&c, 0, sizeof c);
    c.nredirect = 1;
    snprintf(c.redirect_uris[0], sizeof c.redirect_uris[0], "%s", "com.example.editor:/callback");
    assert_true(az_redirect_uri_match(&c, "com.example.editor:/callback"));
    assert_false(az_redirect_uri_match(&c, "com.example.editor:/callback2"));
    assert_false(az_redirect_uri_match(&c, "com.example.editor:/callback?x=1"));
    assert_false(az_redirect_uri_match(&c, "COM.example.editor:/callback"));
    assert_false(az_redirect_uri_match(&c, "com.example.editor://callback"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_confidential_refused),
        cmocka_unit_test(test_exact_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
