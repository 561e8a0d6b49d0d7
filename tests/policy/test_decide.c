/* tests/policy/test_decide.c — pol_decide and pol_grantable over the shipped policy: every
 * one of the 31 scopes, the four bundles, platform analytics, approval, ceilings, classes. */
#include "pol_test.h"

static pol_compiled *P;

static int setup(void **state)
{
    (void)state;
    P = load_default();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pol_compiled_free(P);
    return 0;
}

static pol_decision decide(uint64_t token, const char *ws, pol_class cls, const char *tool)
{
    pol_decision d;
    uint32_t w = 0;
    memset(&d, 0xa5, sizeof d);
    assert_int_equal(pol_workspace_index(P, ws, strlen(ws), &w, NULL), PL_OK);
    assert_int_equal(pol_decide(P, token, w, cls, tool_ix(P, tool), &d), PL_OK);
    return d;
}

static const char *rule_name(uint32_t r)
{
    pol_rule_info ri;
    if (r == POL_RULE_NONE)
        return "-";
    assert_int_equal(pol_rule_get(P, r, &ri), PL_OK);
    return ri.id;
}

/* The tool that requires exactly `bit` (all=bit, no any=). */
static int tool_for_bit(unsigned bit, uint32_t *out)
{
    for (uint32_t t = 0; t < pol_tool_count(P); t++) {
        pol_tool_info ti;
        assert_int_equal(pol_tool_get(P, t, &ti), PL_OK);
        if (ti.all == POL_MASK(bit) && ti.any == 0) {
            *out = t;
            return 1;
        }
    }
    return 0;
}

static void test_every_scope(void **state)
{
    (void)state;
    for (unsigned bit = 0; bit < POL_SCOPE_COUNT; bit++) {
        uint32_t t = 0;
        pol_decision d;
        const pol_scope_info *s;
        pol_scope_get(bit, &s);
        if (!tool_for_bit(bit, &t))
            fail_msg("no tool requires exactly %s", s->name);
        /* first-party, default workspace: the scope alone allows, its absence denies */
        assert_int_equal(pol_decide(P, POL_MASK(bit), 0, POL_CLASS_FIRST_PARTY, t, &d), PL_OK);
        assert_int_equal(d.verdict, POL_ALLOW);
        assert_int_equal(d.effective, POL_MASK(bit));
        assert_int_equal(
            pol_decide(P, POL_MASK_ALL & ~POL_MASK(bit), 0, POL_CLASS_FIRST_PARTY, t, &d), PL_OK);
        assert_int_equal(d.verdict, POL_DENY_SCOPE);
        assert_int_equal(d.help, POL_MASK(bit));
        /* dynamic clients: every delete is forbidden by policy; the rest as first-party */
        int is_delete = s->destructive && bit != POL_SCOPE_POSTS_PUBLISH;
        assert_int_equal(pol_decide(P, POL_MASK(bit), 0, POL_CLASS_DYNAMIC, t, &d), PL_OK);
        if (is_delete) {
            assert_int_equal(d.verdict, POL_DENY_POLICY);
            assert_int_equal(d.blocked, POL_MASK(bit));
            assert_string_equal(rule_name(d.rule), "f-dynamic-no-delete");
            /* asking for the scope would not help: still a policy denial without it */
            assert_int_equal(pol_decide(P, 0, 0, POL_CLASS_DYNAMIC, t, &d), PL_OK);
            assert_int_equal(d.verdict, POL_DENY_POLICY);
        } else {
            assert_int_equal(d.verdict, POL_ALLOW);
        }
    }
}

/* The read-only demo workspace: only the analytics-full scopes survive its ceiling. */
static void test_ceiling(void **state)
{
    (void)state;
    const pol_bundle_info *full;
    pol_bundle_get(POL_BUNDLE_ANALYTICS_FULL, &full);
    for (unsigned bit = 0; bit < POL_SCOPE_COUNT; bit++) {
        uint32_t t = 0, w = 0;
        int named;
        pol_decision d;
        assert_true(tool_for_bit(bit, &t));
        assert_int_equal(pol_workspace_index(P, "demo-readonly", 13, &w, &named), PL_OK);
        assert_true(named);
        assert_int_equal(pol_decide(P, POL_MASK_ALL, w, POL_CLASS_FIRST_PARTY, t, &d), PL_OK);
        if (full->mask & POL_MASK(bit)) {
            assert_int_equal(d.verdict, POL_ALLOW);
        } else {
            assert_int_equal(d.verdict, POL_DENY_POLICY);
            assert_string_equal(rule_name(d.rule), "c-demo-readonly");
        }
        assert_int_equal(d.effective, full->mask);
    }
    /* an unknown workspace falls back to the default ceiling */
    pol_decision d = decide(POL_MASK_ALL, "acme-42", POL_CLASS_FIRST_PARTY, "postly_delete_post");
    assert_int_equal(d.verdict, POL_ALLOW);
    assert_string_equal(rule_name(d.rule), "c-default");
}

/* Each bundle allows exactly the tools whose requirements it meets. */
static void test_bundles(void **state)
{
    (void)state;
    for (unsigned b = 0; b < POL_BUNDLE_COUNT; b++) {
        const pol_bundle_info *bi;
        pol_bundle_get(b, &bi);
        for (uint32_t t = 0; t < pol_tool_count(P); t++) {
            pol_tool_info ti;
            pol_decision d;
            pol_tool_get(P, t, &ti);
            assert_int_equal(pol_decide(P, bi->mask, 0, POL_CLASS_FIRST_PARTY, t, &d), PL_OK);
            int ok = !(ti.all & ~bi->mask) && (!ti.any || (ti.any & bi->mask));
            if (ok) {
                assert_int_equal(d.verdict, POL_ALLOW);
            } else {
                assert_int_equal(d.verdict, POL_DENY_SCOPE);
                assert_true(d.help != 0);
                assert_int_equal(d.help & bi->mask, 0); /* only what the token lacks */
                /* adding the help mask is enough */
                assert_int_equal(pol_decide(P, bi->mask | d.help, 0, POL_CLASS_FIRST_PARTY, t, &d),
                                 PL_OK);
                assert_int_equal(d.verdict, POL_ALLOW);
            }
        }
    }
    const pol_bundle_info *ro, *pub, *camp;
    pol_bundle_get(POL_BUNDLE_ANALYTICS_READONLY, &ro);
    pol_bundle_get(POL_BUNDLE_PUBLISHING_ASSISTANT, &pub);
    pol_bundle_get(POL_BUNDLE_CAMPAIGN_OPERATOR, &camp);
    assert_int_equal(
        decide(ro->mask, "*", POL_CLASS_FIRST_PARTY, "postly_get_analytics_summary").verdict,
        POL_ALLOW);
    /* analytics:read does not imply a platform */
    pol_decision d =
        decide(ro->mask, "*", POL_CLASS_FIRST_PARTY, "postly_get_platform_analytics#facebook");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.help, mask_of("analytics:facebook:read"));
    assert_int_equal(decide(pub->mask, "*", POL_CLASS_FIRST_PARTY, "postly_publish_post").verdict,
                     POL_ALLOW);
    d = decide(pub->mask, "*", POL_CLASS_FIRST_PARTY, "postly_delete_post");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.help, mask_of("posts:delete"));
    assert_int_equal(decide(camp->mask, "*", POL_CLASS_FIRST_PARTY, "postly_publish_post").verdict,
                     POL_DENY_SCOPE);
}

static void test_platform_analytics(void **state)
{
    (void)state;
    uint64_t x = mask_of("analytics:x:read");
    assert_int_equal(decide(x, "*", POL_CLASS_DYNAMIC, "postly_get_platform_analytics#x").verdict,
                     POL_ALLOW);
    assert_int_equal(decide(x, "*", POL_CLASS_DYNAMIC, "postly_get_platform_analytics").verdict,
                     POL_ALLOW);
    pol_decision d =
        decide(x, "*", POL_CLASS_DYNAMIC, "postly_get_platform_analytics#google_business");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.help, mask_of("analytics:gmb:read"));
    /* any-of with nothing held: every allowed platform would help */
    d = decide(mask_of("analytics:read"), "*", POL_CLASS_DYNAMIC, "postly_get_platform_analytics");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.help, POL_MASK_PLATFORMS);
    /* post analytics: posts:read and at least one platform */
    d = decide(mask_of("posts:read"), "*", POL_CLASS_CIMD, "postly_get_post_analytics");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.help, POL_MASK_PLATFORMS);
    d = decide(mask_of("posts:read analytics:linkedin:read"), "*", POL_CLASS_CIMD,
               "postly_get_post_analytics");
    assert_int_equal(d.verdict, POL_ALLOW);
    /* the channel schema needs no scope */
    assert_int_equal(decide(0, "*", POL_CLASS_DYNAMIC, "postly_get_channel_schema").verdict,
                     POL_ALLOW);
}

/* An any-of scope the token holds but the policy removes does not satisfy the tool. */
static void test_any_of_removed_by_policy(void **state)
{
    (void)state;
    pol_diags dg;
    pol_compiled *p = load_text("forbid f-x class=dynamic scopes=analytics:x:read\n"
                                "tool pa any=analytics:x:read,analytics:facebook:read\n",
                                0, PL_OK, &dg);
    pol_decision d;
    uint64_t x = mask_of("analytics:x:read");
    assert_int_equal(pol_decide(p, x, 0, POL_CLASS_DYNAMIC, 0, &d), PL_OK);
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    assert_int_equal(d.effective, 0);
    assert_int_equal(d.help, mask_of("analytics:facebook:read"));
    assert_int_equal(pol_decide(p, x, 0, POL_CLASS_CIMD, 0, &d), PL_OK);
    assert_int_equal(d.verdict, POL_ALLOW);
    pol_compiled_free(p);
    pol_diags_free(&dg);
}

static void test_approval(void **state)
{
    (void)state;
    pol_decision d = decide(mask_of("media:delete"), "*", POL_CLASS_CIMD, "postly_delete_media");
    assert_int_equal(d.verdict, POL_NEEDS_APPROVAL);
    assert_string_equal(rule_name(d.rule), "a-cimd-delete");
    assert_string_equal(rule_name(d.tool_rule), "postly_delete_media");
    /* scopes are checked before approval */
    d = decide(0, "*", POL_CLASS_CIMD, "postly_delete_media");
    assert_int_equal(d.verdict, POL_DENY_SCOPE);
    /* other classes do not need approval */
    d = decide(mask_of("media:delete"), "*", POL_CLASS_PREREGISTERED, "postly_delete_media");
    assert_int_equal(d.verdict, POL_ALLOW);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pol_decision d;
    memset(&d, 0x5a, sizeof d);
    pol_decision before = d;
    assert_int_equal(pol_decide(P, 0, pol_workspace_count(P), 0, 0, &d), PL_ERR_INVALID);
    assert_int_equal(pol_decide(P, 0, 0, POL_CLASS_COUNT, 0, &d), PL_ERR_INVALID);
    assert_int_equal(pol_decide(P, 0, 0, 0, pol_tool_count(P), &d), PL_ERR_INVALID);
    assert_int_equal(pol_decide(NULL, 0, 0, 0, 0, &d), PL_ERR_INVALID);
    assert_int_equal(pol_decide(P, 0, 0, 0, 0, NULL), PL_ERR_INVALID);
    assert_memory_equal(&d, &before, sizeof d);
    uint32_t t;
    assert_int_equal(pol_tool_index(P, "postly_frobnicate", 17, &t), PL_ERR_NOT_FOUND);
    pol_grant g;
    assert_int_equal(pol_grantable(P, POL_ROLE_COUNT, 0, 0, 0, &g), PL_ERR_INVALID);
}

static void test_grantable(void **state)
{
    (void)state;
    const pol_bundle_info *pub;
    pol_bundle_get(POL_BUNDLE_PUBLISHING_ASSISTANT, &pub);
    pol_grant g;
    uint64_t viewer;
    assert_int_equal(pol_role_grant(P, POL_ROLE_VIEWER, &viewer), PL_OK);
    assert_int_equal(pol_grantable(P, POL_ROLE_VIEWER, 0, POL_CLASS_FIRST_PARTY, pub->mask, &g),
                     PL_OK);
    assert_int_equal(g.grantable, pub->mask & viewer);
    assert_int_equal(g.denied_role, pub->mask & ~viewer);
    assert_true(g.denied_role & mask_of("posts:publish"));
    assert_int_equal(g.denied_ceiling | g.denied_class, 0);

    uint64_t req = mask_of("posts:read posts:delete campaigns:delete");
    assert_int_equal(pol_grantable(P, POL_ROLE_EDITOR, 0, POL_CLASS_DYNAMIC, req, &g), PL_OK);
    assert_int_equal(g.grantable, mask_of("posts:read"));
    assert_int_equal(g.denied_class, mask_of("posts:delete campaigns:delete"));
    assert_int_equal(g.denied_role, mask_of("campaigns:delete")); /* editors may not */
    uint32_t rule;
    assert_int_equal(pol_forbid_rule(P, POL_CLASS_DYNAMIC, POL_SCOPE_POSTS_DELETE, &rule), PL_OK);
    assert_string_equal(rule_name(rule), "f-dynamic-no-delete");
    assert_int_equal(pol_forbid_rule(P, POL_CLASS_CIMD, POL_SCOPE_POSTS_DELETE, &rule), PL_OK);
    assert_int_equal(rule, POL_RULE_NONE);

    uint32_t w;
    pol_workspace_index(P, "demo-readonly", 13, &w, NULL);
    assert_int_equal(pol_grantable(P, POL_ROLE_OWNER, w, POL_CLASS_FIRST_PARTY, POL_MASK_ALL, &g),
                     PL_OK);
    const pol_bundle_info *full;
    pol_bundle_get(POL_BUNDLE_ANALYTICS_FULL, &full);
    assert_int_equal(g.grantable, full->mask);
    assert_int_equal(g.denied_ceiling, POL_MASK_ALL & ~full->mask);
    assert_string_equal(rule_name(g.ceiling_rule), "c-demo-readonly");
    uint64_t offered;
    assert_int_equal(pol_workspace_bundles(P, w, &offered), PL_OK);
    assert_int_equal(offered,
                     (1u << POL_BUNDLE_ANALYTICS_READONLY) | (1u << POL_BUNDLE_ANALYTICS_FULL));
    assert_int_equal(pol_workspace_bundles(P, 0, &offered), PL_OK);
    assert_int_equal(offered, 0xf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_scope),   cmocka_unit_test(test_ceiling),
        cmocka_unit_test(test_bundles),       cmocka_unit_test(test_platform_analytics),
        cmocka_unit_test(test_approval),      cmocka_unit_test(test_any_of_removed_by_policy),
        cmocka_unit_test(test_bad_arguments), cmocka_unit_test(test_grantable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
