/*
 * tests/hostile/test_cimd_doc.c — hostile Client ID Metadata Documents through the validator of
 * authz/cimd.c (static there, so the file is included), without a network: what a metadata host
 * under an attacker's control can send. The first case crashed postly-authz (found by
 * fuzz_cimd): a control character in client_name followed by more characters dereferenced NULL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* Compiled in whole to reach its static validators without widening authz/cimd.h. */
#include "authz/cimd.c" // NOLINT(bugprone-suspicious-include)

static const char *const url = "https://client.example/meta.json";

static int check_doc(const char *body, az_client *c, const char **why)
{
    *why = NULL;
    return doc_ok(url, body, strlen(body), c, why);
}

static void control_in_name(void **state)
{
    az_client c;
    const char *why;
    (void)state;
    /* a control character then more text: the name is dropped, the host shown instead */
    assert_int_equal(
        check_doc("{\"client_id\":\"https://client.example/meta.json\",\"client_name\":"
                  "\"Good\\u0001 Client\",\"redirect_uris\":[\"https://client.example/cb\"]}",
                  &c, &why),
        1);
    assert_string_equal(c.name, "client.example");
    assert_string_equal(c.redirect_uris[0], "https://client.example/cb");
    assert_int_equal(
        check_doc("{\"client_id\":\"https://client.example/meta.json\",\"client_name\":"
                  "\"\\u007fxyz\\n\",\"redirect_uris\":[\"https://client.example/cb\"]}",
                  &c, &why),
        1);
    assert_string_equal(c.name, "client.example");
    assert_int_equal(
        check_doc("{\"client_id\":\"https://client.example/meta.json\",\"client_name\":"
                  "\"Fine name\",\"redirect_uris\":[\"https://client.example/cb\"]}",
                  &c, &why),
        1);
    assert_string_equal(c.name, "Fine name");
}

static void refusals_name_reason(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"client_id\":\"https://other.example/meta.json\",\"redirect_uris\":[\"https://a.example/"
        "cb\"]}",
        "{\"client_id\":\"https://client.example/meta.json\",\"redirect_uris\":[]}",
        "{\"client_id\":\"https://client.example/"
        "meta.json\",\"redirect_uris\":[\"javascript:alert(1)\"]}",
        "{\"client_id\":\"https://client.example/meta.json\",\"redirect_uris\":[\"https://"
        "a.example/cb\"],"
        "\"token_endpoint_auth_method\":\"client_secret_basic\"}",
        "{\"client_id\":\"https://client.example/"
        "meta.json\",\"client_id\":\"x\",\"redirect_uris\":[\"https://a.example/cb\"]}",
    };
    az_client c;
    const char *why;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(check_doc(bad[i], &c, &why), 0);
        assert_non_null(why);
    }
}

static void url_without_scheme(void **state)
{
    const char *why = NULL;
    (void)state;
    /* found by fuzz_cimd: a relative reference parses with a NULL scheme */
    assert_int_equal(url_ok("/relative/path", 0, &why), 0);
    assert_non_null(why);
    assert_int_equal(url_ok("//host.example/x", 1, &why), 0);
    assert_int_equal(url_ok("https://client.example/meta.json", 0, &why), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_in_name),
        cmocka_unit_test(refusals_name_reason),
        cmocka_unit_test(url_without_scheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
