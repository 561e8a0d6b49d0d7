/* tests/mcp/test_config.c — mcp/config.c: environment then flags, errors naming the option,
 * derived canonical URL and allow-lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/config.h"

static int has(const char list[][MCP_CFG_ENTRY_MAX], size_t n, const char *v)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(list[i], v) == 0)
            return 1;
    return 0;
}

static void test_defaults_and_derivation(void **st)
{
    mcp_config c;
    char err[256];
    int help = 1;
    char *argv[] = {"postly-mcp", NULL};
    unsetenv("POSTLY_MCP_LISTEN");
    unsetenv("POSTLY_MCP_URL");
    mcp_config_defaults(&c);
    assert_int_equal(mcp_config_parse(&c, 1, argv, &help, err, sizeof err), PL_OK);
    assert_int_equal(help, 0);
    assert_int_equal(mcp_config_finish(&c, 18081, err, sizeof err), PL_OK);
    assert_string_equal(c.canonical_url, "http://127.0.0.1:18081/mcp");
    assert_true(has(c.hosts, c.n_hosts, "127.0.0.1:18081"));
    assert_true(has(c.hosts, c.n_hosts, "localhost:18081"));
    assert_true(has(c.hosts, c.n_hosts, "[::1]:18081"));
    assert_true(has(c.origins, c.n_origins, "http://localhost:18081"));
    assert_int_equal(c.limits.max_depth, 32);
}

static void test_env_then_flags(void **st)
{
    mcp_config c;
    char err[256];
    int help = 0;
    char *argv[] = {"postly-mcp", "--url",          "https://mcp.example.com/mcp",
                    "--max-body", "2048",           "--log-level",
                    "warn",       "--allow-origin", "https://a.example",
                    NULL};
    setenv("POSTLY_MCP_MAX_BODY", "4096", 1);
    setenv("POSTLY_MCP_ALLOWED_HOSTS", "mcp.example.com,mcp.internal:8443", 1);
    mcp_config_defaults(&c);
    assert_int_equal(mcp_config_parse(&c, 9, argv, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.limits.max_body, 2048); /* the flag wins over the environment */
    assert_int_equal(c.n_hosts, 2);
    assert_int_equal(mcp_config_finish(&c, 9999, err, sizeof err), PL_OK);
    assert_string_equal(c.canonical_url, "https://mcp.example.com/mcp");
    assert_int_equal(c.n_hosts, 2); /* given lists are not extended */
    assert_int_equal(c.n_origins, 1);
    assert_string_equal(c.origins[0], "https://a.example");
    unsetenv("POSTLY_MCP_MAX_BODY");
    unsetenv("POSTLY_MCP_ALLOWED_HOSTS");

    /* https canonical URL without explicit lists: the origin uses https */
    {
        char *argv2[] = {"postly-mcp", "--url", "https://mcp.example.com/mcp", NULL};
        mcp_config_defaults(&c);
        assert_int_equal(mcp_config_parse(&c, 3, argv2, &help, err, sizeof err), PL_OK);
        assert_int_equal(mcp_config_finish(&c, 8081, err, sizeof err), PL_OK);
        assert_true(has(c.hosts, c.n_hosts, "mcp.example.com"));
        assert_true(has(c.origins, c.n_origins, "https://mcp.example.com"));
    }
}

static void test_errors_name_the_option(void **st)
{
    static const struct {
        const char *flag, *value, *needle;
    } bad[] = {
        {"--max-body", "12", "--max-body"},
        {"--max-conns", "x", "--max-conns"},
        {"--listen", "nohostport", "--listen"},
        {"--listen", "h:70000", "--listen"},
        {"--url", "ftp://x/mcp", "--url"},
        {"--log-level", "loud", "--log-level"},
        {"--jwks-uri", "file:///etc", "--jwks-uri"},
        {"--token-rate", "-1", "--token-rate"},
        {"--keepalive", "30", "--keepalive"},
        {"--keepalive", "0", "--keepalive"},
        {"--leeway", "301", "--leeway"},
        {"--leeway", "-1", "--leeway"},
        {"--max-streams", "70000", "--max-streams"},
        {"--max-subscriptions", "0", "--max-subscriptions"},
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mcp_config c;
        char err[256] = "";
        int help = 0;
        char *argv[] = {"postly-mcp", (char *)bad[i].flag, (char *)bad[i].value, NULL};
        mcp_config_defaults(&c);
        assert_int_equal(mcp_config_parse(&c, 3, argv, &help, err, sizeof err), PL_ERR_INVALID);
        if (!strstr(err, bad[i].needle))
            fail_msg("%s %s: \"%s\"", bad[i].flag, bad[i].value, err);
    }
    {
        mcp_config c;
        char err[256] = "";
        int help = 0;
        char *missing[] = {"postly-mcp", "--data", NULL};
        char *unknown[] = {"postly-mcp", "--colour", "red", NULL};
        char *helpv[] = {"postly-mcp", "--help", NULL};
        mcp_config_defaults(&c);
        assert_int_equal(mcp_config_parse(&c, 2, missing, &help, err, sizeof err), PL_ERR_INVALID);
        assert_non_null(strstr(err, "missing value"));
        assert_int_equal(mcp_config_parse(&c, 3, unknown, &help, err, sizeof err), PL_ERR_INVALID);
        assert_non_null(strstr(err, "--colour"));
        assert_int_equal(mcp_config_parse(&c, 2, helpv, &help, err, sizeof err), PL_OK);
        assert_int_equal(help, 1);
    }
    /* an environment variable with a bad value is named too */
    {
        mcp_config c;
        char err[256] = "";
        int help = 0;
        char *argv[] = {"postly-mcp", NULL};
        setenv("POSTLY_MCP_IDLE_TIMEOUT", "0", 1);
        mcp_config_defaults(&c);
        assert_int_equal(mcp_config_parse(&c, 1, argv, &help, err, sizeof err), PL_ERR_INVALID);
        assert_non_null(strstr(err, "POSTLY_MCP_IDLE_TIMEOUT"));
        unsetenv("POSTLY_MCP_IDLE_TIMEOUT");
    }
}

/* The background switches: on by default, off by flag or environment, bad values named. */
static void test_scheduler_webhook_switches(void **st)
{
    mcp_config c;
    char err[256] = "";
    int help = 0;
    char *none[] = {"postly-mcp", NULL};
    char *both[] = {"postly-mcp", "--no-scheduler", "--no-webhooks", NULL};
    mcp_config_defaults(&c);
    assert_int_equal(mcp_config_parse(&c, 1, none, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.run_scheduler, 1);
    assert_int_equal(c.run_webhooks, 1);
    assert_int_equal(mcp_config_parse(&c, 3, both, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.run_scheduler, 0);
    assert_int_equal(c.run_webhooks, 0);
    mcp_config_defaults(&c);
    setenv("POSTLY_MCP_WEBHOOKS", "off", 1);
    assert_int_equal(mcp_config_parse(&c, 1, none, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.run_scheduler, 1);
    assert_int_equal(c.run_webhooks, 0);
    setenv("POSTLY_MCP_WEBHOOKS", "maybe", 1);
    assert_int_equal(mcp_config_parse(&c, 1, none, &help, err, sizeof err), PL_ERR_INVALID);
    assert_non_null(strstr(err, "POSTLY_MCP_WEBHOOKS"));
    unsetenv("POSTLY_MCP_WEBHOOKS");
}

/* The listening stream's options and --leeway: defaults, flags, environment. */
static void test_stream_options_and_leeway(void **st)
{
    mcp_config c;
    char err[256] = "";
    int help = 0;
    char *none[] = {"postly-mcp", NULL};
    char *flags[] = {"postly-mcp", "--max-streams", "0", "--keepalive", "29", "--max-subscriptions",
                     "5",          "--leeway",      "1", NULL};
    (void)st;
    mcp_config_defaults(&c);
    assert_int_equal(mcp_config_parse(&c, 1, none, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.limits.max_streams, 256);
    assert_int_equal(c.limits.keepalive_s, 15);
    assert_int_equal(c.limits.max_subscriptions, 64);
    assert_int_equal(c.leeway_s, 30);
    assert_int_equal(mcp_config_parse(&c, 9, flags, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.limits.max_streams, 0);
    assert_int_equal(c.limits.keepalive_s, 29);
    assert_int_equal(c.limits.max_subscriptions, 5);
    assert_int_equal(c.leeway_s, 1);
    setenv("POSTLY_MCP_LEEWAY", "0", 1);
    mcp_config_defaults(&c);
    assert_int_equal(mcp_config_parse(&c, 1, none, &help, err, sizeof err), PL_OK);
    assert_int_equal(c.leeway_s, 0);
    unsetenv("POSTLY_MCP_LEEWAY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_derivation),
        cmocka_unit_test(test_env_then_flags),
        cmocka_unit_test(test_errors_name_the_option),
        cmocka_unit_test(test_scheduler_webhook_switches),
        cmocka_unit_test(test_stream_options_and_leeway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
