/* tests/mcp/test_admin_exec.c — postly-admin's webhooks and usage commands (authz/admin_exec.h)
 * run in-process through az_admin_run() on a real LMDB store in a mkdtemp directory: the secret
 * shown once (add, rotate-secret) and never by list, development-only loopback receivers,
 * workspace isolation, errors naming the problem with the right exit code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/authz/admin_fixture.h"

/* The value after "<label>: " on its own line of f->out. */
static void line_value(const fx *f, const char *label, char *buf, size_t bufsz)
{
    const char *p = strstr(f->out, label);
    assert_non_null(p);
    p += strlen(label);
    snprintf(buf, bufsz, "%.*s", (int)strcspn(p, "\n"), p);
}

static void test_webhooks_lifecycle(void **state)
{
    fx *f = *state;
    char id[64], secret[80], secret2[80];
    assert_int_equal(admin(f, "webhooks", "add", "--workspace", "ws_a", "--url",
                           "https://hooks.example.com/postly", "--event", "post.published",
                           "--event", "post.failed", "--description", "ops", END),
                     0);
    line_value(f, "signing secret: ", secret, sizeof secret);
    assert_int_equal(strncmp(secret, "whsec_", 6), 0);
    assert_int_equal(strlen(secret), 6 + 43);
    line_value(f, "\"id\": \"", id, sizeof id);
    id[strcspn(id, "\"")] = '\0';
    assert_int_equal(strncmp(id, "whk_", 4), 0);
    assert_non_null(strstr(f->out, "shown once"));

    /* list: the subscription, never its secret */
    assert_int_equal(admin(f, "webhooks", "list", "--workspace", "ws_a", END), 0);
    assert_non_null(strstr(f->out, id));
    assert_non_null(strstr(f->out, "post.failed"));
    assert_null(strstr(f->out, "whsec_"));
    /* another workspace sees nothing and cannot touch it */
    assert_int_equal(admin(f, "webhooks", "list", "--workspace", "ws_b", END), 0);
    assert_null(strstr(f->out, id));
    assert_int_equal(admin(f, "webhooks", "remove", id, "--workspace", "ws_b", END), 1);
    assert_non_null(strstr(f->err, "webhooks remove"));

    /* rotate: a new secret, shown once */
    assert_int_equal(admin(f, "webhooks", "rotate-secret", id, "--workspace", "ws_a", END), 0);
    line_value(f, "new signing secret: ", secret2, sizeof secret2);
    assert_int_equal(strncmp(secret2, "whsec_", 6), 0);
    assert_string_not_equal(secret, secret2);

    assert_int_equal(admin(f, "webhooks", "deliveries", "--workspace", "ws_a", "--webhook", id,
                           "--limit", "5", END),
                     0);
    assert_non_null(strstr(f->out, "\"items\""));

    assert_int_equal(admin(f, "webhooks", "remove", id, "--workspace", "ws_a", END), 0);
    assert_int_equal(admin(f, "webhooks", "list", "--workspace", "ws_a", END), 0);
    assert_null(strstr(f->out, id));
    assert_int_equal(admin(f, "webhooks", "remove", id, "--workspace", "ws_a", END), 1);
}

static void test_webhooks_errors(void **state)
{
    fx *f = *state;
    /* loopback receivers need the development switch */
    assert_int_equal(admin(f, "webhooks", "add", "--workspace", "ws_a", "--url",
                           "http://127.0.0.1:9/h", "--event", "post.published", END),
                     1);
    assert_non_null(strstr(f->err, "url"));
    assert_int_equal(admin(f, "webhooks", "add", "--workspace", "ws_a", "--url",
                           "http://127.0.0.1:9/h", "--event", "post.published",
                           "--allow-http-loopback", END),
                     0);
    /* an unknown event type is named */
    assert_int_equal(admin(f, "webhooks", "add", "--workspace", "ws_a", "--url",
                           "https://hooks.example.com/x", "--event", "post.exploded", END),
                     1);
    assert_non_null(strstr(f->err, "events"));
    /* usage errors: exit 2 with the reason */
    assert_int_equal(admin(f, "webhooks", "list", END), 2);
    assert_non_null(strstr(f->err, "--workspace"));
    assert_int_equal(admin(f, "webhooks", "add", "--workspace", "ws_a", "--url",
                           "https://hooks.example.com/x", END),
                     2);
    assert_non_null(strstr(f->err, "--event"));
    assert_int_equal(admin(f, "webhooks", "remove", "--workspace", "ws_a", END), 2);
    assert_non_null(strstr(f->err, "webhook id"));
    assert_int_equal(admin(f, "webhooks", "list", "--workspace", "ws_a", "--colour", "red", END),
                     2);
    assert_non_null(strstr(f->err, "--colour"));
    assert_int_equal(admin(f, "webhooks", "deliveries", "--workspace", "ws_a", "--limit", "0", END),
                     2);
    assert_non_null(strstr(f->err, "--limit"));
    assert_int_equal(admin(f, "webhooks", "explode", "--workspace", "ws_a", END), 2);
    assert_non_null(strstr(f->err, "webhooks explode"));
    assert_non_null(strstr(f->err, "webhooks rotate-secret")); /* the usage text lists them */
}

static void test_usage(void **state)
{
    fx *f = *state;
    assert_int_equal(admin(f, "usage", END), 0);
    assert_string_equal(f->out, ""); /* nothing counted yet */
    assert_int_equal(admin(f, "usage", "--workspace", "ws_a", "--period", "2026-11", END), 0);
    assert_int_equal(admin(f, "usage", "--period", "November", END), 2);
    assert_non_null(strstr(f->err, "YYYY-MM"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webhooks_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
