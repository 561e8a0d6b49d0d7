/* tests/mcp/test_rate.c — mcp/rate.c: the per-token bucket, refill on the fake clock,
 * independence of keys, all-or-nothing charging, the bounded table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/rate.h"

/* The shipped policy: rate r-all class=* tool=* limit=600/min burst=120 per=client. */
static pol_compiled *load(void)
{
    pol_diags d;
    pol_compiled *p = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/policy/default.policy", POSTLY_SOURCE_DIR);
    pol_diags_init(&d);
    if (pol_load_file(path, 0, &d, &p) != PL_OK) {
        pol_diags_print(&d, stderr);
        fail_msg("policy did not load");
    }
    pol_diags_free(&d);
    return p;
}

static void test_token_and_rules(void **st)
{
    pol_compiled *p = load();
    core_fake_clock fc;
    mcp_rate *r;
    mcp_rate_denial d;
    mcp_rate_who a = {"client-a", "u1", "ws1", "jti-a", POL_CLASS_PREREGISTERED};
    mcp_rate_who b = {"client-b", "u2", "ws2", "jti-b", POL_CLASS_PREREGISTERED};
    uint32_t tool;
    int i;
    core_fake_clock_init(&fc, 0);
    assert_int_equal(pol_tool_index(p, "postly_get_workspace", 20, &tool), PL_OK);
    /* 8 per minute per token: burst 2 */
    assert_int_equal(mcp_rate_new(p, &fc.base, 100, 8, &r), PL_OK);
    for (i = 0; i < 2; i++)
        assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_OK);
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_ERR_LIMIT);
    assert_string_equal(d.rule_id, "token");
    assert_string_equal(d.per, "token");
    assert_int_equal(d.retry_after_s, 8); /* one token every 7.5 s, rounded up */
    /* another token (and workspace) is independent */
    assert_int_equal(mcp_rate_take(r, &b, tool, &d), PL_OK);
    /* refill: 7.5 s later one more call */
    core_fake_clock_advance(&fc, 7500);
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_OK);
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_ERR_LIMIT);
    /* the policy's per-client rule (burst 120) fires for client-a whatever the token; a
     * denied call charges no bucket */
    mcp_rate_free(r);
    assert_int_equal(mcp_rate_new(p, &fc.base, 100, 0, &r), PL_OK);
    for (i = 0; i < 120; i++) {
        char jti[16];
        snprintf(jti, sizeof jti, "jti-%d", i);
        a.token = jti;
        assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_OK);
    }
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_ERR_LIMIT);
    assert_string_equal(d.rule_id, "r-all");
    assert_string_equal(d.per, "client");
    assert_int_equal(mcp_rate_take(r, &b, tool, &d), PL_OK);
    mcp_rate_free(r);

    /* a bounded table: 2 buckets, both in use and not refilled -> fail closed */
    assert_int_equal(mcp_rate_new(p, &fc.base, 2, 0, &r), PL_OK);
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_OK);
    assert_int_equal(mcp_rate_take(r, &b, tool, &d), PL_OK);
    a.client_id = "client-c";
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_ERR_LIMIT);
    assert_string_equal(d.rule_id, "table-full");
    /* once the buckets have refilled completely they are dropped and room is made */
    core_fake_clock_advance(&fc, 60000);
    assert_int_equal(mcp_rate_take(r, &a, tool, &d), PL_OK);
    assert_int_equal(mcp_rate_buckets(r), 1);
    mcp_rate_free(r);
    mcp_rate_free(NULL);
    pol_compiled_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_and_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
