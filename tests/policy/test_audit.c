/* tests/policy/test_audit.c — diff labels, explain, who-can, expectation files, summary. */
#include <unistd.h>

#include <jansson.h>

#include "pol_test.h"

#define BASE                                                                                       \
    "role owner grant=*\nrole admin grant=*\nrole editor grant=posts:read,posts:publish\n"         \
    "role viewer grant=posts:read\n"                                                               \
    "ceiling c0 workspace=* scopes=*\n"                                                            \
    "ceiling c1 workspace=acme scopes=posts:read,posts:publish,posts:delete\n"                     \
    "tool read all=posts:read\ntool pub all=posts:publish destructive\n"                           \
    "tool del all=posts:delete destructive\n"

typedef char *(*writer)(const pol_compiled *a, const pol_compiled *b);

static char *diff_of(const char *a_text, const char *b_text, size_t *changed)
{
    pol_diags da, db;
    pol_compiled *a = load_text(a_text, 0, PL_OK, &da), *b = load_text(b_text, 0, PL_OK, &db);
    FILE *f;
    char *buf;
    size_t len;
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_diff_write(a, b, f, changed), PL_OK);
    capture_end(f, &buf);
    pol_compiled_free(a);
    pol_compiled_free(b);
    pol_diags_free(&da);
    pol_diags_free(&db);
    return buf;
}

static void has_line(const char *out, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "%s\n", line);
    const char *s = out;
    while ((s = strstr(s, want))) {
        if (s == out || s[-1] == '\n')
            return;
        s++;
    }
    fail_msg("missing line '%s' in:\n%s", line, out);
}

static void test_diff_labels(void **state)
{
    (void)state;
    size_t changed = 99;
    char *out = diff_of(BASE, BASE, &changed);
    assert_int_equal(changed, 0);
    has_line(out, "workspace * class dynamic equivalent");
    has_line(out, "workspace acme class first_party equivalent");
    has_line(out, "role editor equivalent");
    has_line(out, "tool pub equivalent");
    has_line(out, "summary 0 changed");
    free(out);

    /* less permissive for one class, in every workspace */
    out = diff_of(BASE, BASE "forbid f1 class=dynamic scopes=posts:publish\n", &changed);
    has_line(out, "workspace * class dynamic less-permissive -posts:publish pub:open->blocked");
    has_line(out, "workspace acme class dynamic less-permissive -posts:publish pub:open->blocked");
    has_line(out, "workspace * class cimd equivalent");
    assert_int_equal(changed, 2);
    free(out);

    /* and the reverse */
    out = diff_of(BASE "forbid f1 class=dynamic scopes=posts:publish\n", BASE, &changed);
    has_line(out, "workspace * class dynamic more-permissive +posts:publish pub:blocked->open");
    free(out);

    /* incomparable: one scope gained, one lost */
    out = diff_of(BASE "forbid f1 class=cimd scopes=posts:publish\n",
                  BASE "forbid f1 class=cimd scopes=posts:delete\n", &changed);
    has_line(out, "workspace * class cimd incomparable -posts:delete +posts:publish "
                  "del:open->blocked pub:blocked->open");
    free(out);

    /* approval is less permissive than open; a workspace only in B is compared to A's default */
    out = diff_of(BASE,
                  BASE "approve a1 class=first_party tool=pub\n"
                       "ceiling c2 workspace=zeta scopes=posts:read\n",
                  &changed);
    has_line(out, "workspace * class first_party less-permissive pub:open->approval");
    assert_non_null(strstr(out, "\nworkspace zeta class cimd less-permissive -workspace:read "
                                "-workspace:list -posts:create"));
    assert_non_null(strstr(out, " -analytics:x:read del:open->blocked pub:open->blocked\n"));
    free(out);

    /* roles and tool requirements */
    out = diff_of(BASE, BASE "tool extra\n", &changed);
    has_line(out, "tool extra added more-permissive");
    free(out);
    const char *b2 = "role owner grant=*\nrole admin grant=*\nrole editor grant=posts:read\n"
                     "role viewer grant=posts:read,posts:delete\n"
                     "ceiling c0 workspace=* scopes=*\n"
                     "ceiling c1 workspace=acme scopes=posts:read,posts:publish,posts:delete\n"
                     "tool read\ntool pub all=posts:publish,posts:read destructive\n"
                     "tool del all=posts:delete destructive\n";
    out = diff_of(BASE, b2, &changed);
    has_line(out, "role editor less-permissive -posts:publish");
    has_line(out, "role viewer more-permissive +posts:delete");
    has_line(out, "tool read more-permissive all: -posts:read");
    has_line(out, "tool pub less-permissive all: +posts:read");
    free(out);
}

static char *explain(const pol_compiled *p, uint64_t token, const char *ws, pol_class c,
                     const char *tool, int json)
{
    FILE *f;
    char *buf;
    size_t len;
    uint32_t w;
    pol_workspace_index(p, ws, strlen(ws), &w, NULL);
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_explain_write(p, token, w, c, tool_ix(p, tool), json, f), PL_OK);
    capture_end(f, &buf);
    return buf;
}

static void test_explain(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    const pol_bundle_info *pub;
    pol_bundle_get(POL_BUNDLE_PUBLISHING_ASSISTANT, &pub);
    char *out = explain(p, pub->mask | POL_MASK(POL_SCOPE_POSTS_DELETE), "*", POL_CLASS_DYNAMIC,
                        "postly_delete_post", 0);
    has_line(out, "decision   DENY_POLICY");
    has_line(out, "rules      tool:postly_delete_post forbid:f-dynamic-no-delete");
    assert_non_null(strstr(out, "  forbidden for class          f-dynamic-no-delete  "
                                "0x0000000000111020 posts:delete,drafts:delete,media:delete,"
                                "campaigns:delete\n"));
    assert_non_null(strstr(out, "  blocked by policy            f-dynamic-no-delete  "
                                "0x0000000000000020 posts:delete\n"));
    free(out);

    out = explain(p, 0, "demo-readonly", POL_CLASS_FIRST_PARTY, "postly_get_analytics_summary", 0);
    has_line(out, "decision   DENY_SCOPE");
    assert_non_null(strstr(out, "missing (would help)         -                    "
                                "0x0000000000800000 analytics:read\n"));
    assert_non_null(strstr(out, "ceiling demo-readonly        c-demo-readonly"));
    free(out);

    /* JSON: valid, with the verdict, every step and the rule ids */
    out =
        explain(p, POL_MASK(POL_SCOPE_MEDIA_DELETE), "*", POL_CLASS_CIMD, "postly_delete_media", 1);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    if (!j)
        fail_msg("explain --json is not JSON: %s: %s", err.text, out);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "NEEDS_APPROVAL");
    json_t *rules = json_object_get(j, "rules");
    assert_int_equal(json_array_size(rules), 2);
    assert_string_equal(json_string_value(json_array_get(rules, 1)), "a-cimd-delete");
    json_t *steps = json_object_get(j, "steps");
    assert_true(json_array_size(steps) >= 7);
    json_t *first = json_array_get(steps, 0);
    assert_string_equal(json_string_value(json_object_get(first, "mask")), "0x0000000000010000");
    assert_true(json_is_null(json_object_get(first, "rule")));
    json_decref(j);
    free(out);
    pol_compiled_free(p);
}

static void test_whocan(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    FILE *f;
    char *buf;
    size_t len;
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_whocan_write(p, POL_SCOPE_CAMPAIGNS_DELETE, 0, f), PL_OK);
    capture_end(f, &buf);
    has_line(buf, "scope campaigns:delete bit=20 destructive=yes");
    has_line(buf, "role owner can-grant");
    has_line(buf, "role editor cannot-grant");
    has_line(buf, "role viewer cannot-grant");
    has_line(buf, "class cimd can-hold");
    has_line(buf, "class dynamic forbidden rule=f-dynamic-no-delete");
    has_line(buf, "workspace * within-ceiling rule=c-default");
    has_line(buf, "workspace demo-readonly above-ceiling rule=c-demo-readonly");
    has_line(buf, "tool postly_delete_campaign requires");
    assert_null(strstr(buf, "bundle ")); /* no bundle offers it */
    free(buf);

    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_whocan_write(p, POL_SCOPE_ANALYTICS_GMB_READ, 1, f), PL_OK);
    capture_end(f, &buf);
    json_error_t err;
    json_t *j = json_loads(buf, 0, &err);
    assert_non_null(j);
    json_t *bundles = json_object_get(j, "bundles");
    assert_int_equal(json_array_size(bundles), 1);
    assert_string_equal(json_string_value(json_array_get(bundles, 0)), "analytics-full");
    assert_int_equal(json_array_size(json_object_get(j, "roles")), 4);
    assert_int_equal(json_array_size(json_object_get(j, "classes")), 4);
    assert_true(json_array_size(json_object_get(j, "tools")) >= 3);
    json_decref(j);
    free(buf);
    assert_int_equal(pol_whocan_write(p, 31, 0, stderr), PL_ERR_INVALID);
    pol_compiled_free(p);
}

static void test_expectation_file(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    char dir[] = "/tmp/pol-cases-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/c.cases", dir);
    FILE *c = fopen(path, "w");
    assert_non_null(c);
    fputs("# comment\n"
          "expect ALLOW tool=postly_get_workspace scopes=workspace:read\n"
          "expect DENY_SCOPE tool=postly_publish_post scopes=bundle:campaign-operator "
          "help=posts:publish\n"
          "expect DENY_POLICY tool=postly_delete_post class=dynamic scopes=* "
          "rule=f-dynamic-no-delete\n"
          "expect NEEDS_APPROVAL tool=postly_delete_post class=cimd scopes=posts:delete\n"
          "expect ALLOW tool=postly_delete_post class=cimd scopes=posts:delete\n" /* fails */
          "grant viewer request=posts:read,posts:publish expect=posts:read\n"
          "grant owner workspace=demo-readonly request=* expect=bundle:analytics-full\n"
          "grant editor class=dynamic request=posts:delete expect=posts:delete\n", /* fails */
          c);
    fclose(c);
    pol_diags d;
    FILE *f;
    char *buf;
    size_t len, passed, failed;
    pol_diags_init(&d);
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_test_run(p, path, f, &d, &passed, &failed), PL_OK);
    capture_end(f, &buf);
    assert_int_equal(passed, 6);
    assert_int_equal(failed, 2);
    char want[256];
    snprintf(want, sizeof want,
             "FAIL %s:6: expected ALLOW got NEEDS_APPROVAL help=- rule=a-cimd-delete", path);
    has_line(buf, want);
    snprintf(want, sizeof want, "FAIL %s:9: grantable expected posts:delete got -", path);
    has_line(buf, want);
    has_line(buf, "6 passed, 2 failed");
    free(buf);
    pol_diags_free(&d);

    /* a malformed case is a clear error with its line */
    c = fopen(path, "w");
    fputs("expect ALLOW tool=postly_get_workspace\nexpect MAYBE tool=x\n", c);
    fclose(c);
    pol_diags_init(&d);
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_test_run(p, path, f, &d, &passed, &failed), PL_ERR_PARSE);
    capture_end(f, &buf);
    assert_int_equal(d.v[0].line, 2);
    assert_non_null(strstr(d.v[0].msg, "verdict"));
    free(buf);
    pol_diags_free(&d);
    unlink(path);
    rmdir(dir);
    pol_compiled_free(p);
}

static void test_grant_explain(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    FILE *f;
    char *buf;
    size_t len;
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_grant_explain_write(p, POL_ROLE_EDITOR, 0, POL_CLASS_DYNAMIC,
                                             mask_of("posts:read posts:delete campaigns:delete"), 0,
                                             f),
                     PL_OK);
    capture_end(f, &buf);
    has_line(buf, "scope posts:read grantable");
    has_line(buf, "scope posts:delete denied class:f-dynamic-no-delete");
    has_line(buf, "scope campaigns:delete denied role:editor class:f-dynamic-no-delete");
    has_line(buf, "grantable  posts:read");
    free(buf);

    uint32_t w;
    pol_workspace_index(p, "demo-readonly", 13, &w, NULL);
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_grant_explain_write(p, POL_ROLE_OWNER, w, POL_CLASS_CIMD,
                                             mask_of("posts:create analytics:x:read"), 1, f),
                     PL_OK);
    capture_end(f, &buf);
    json_error_t err;
    json_t *j = json_loads(buf, 0, &err);
    if (!j)
        fail_msg("not JSON: %s", buf);
    json_t *sc = json_object_get(j, "scopes");
    assert_int_equal(json_array_size(sc), 2);
    json_t *create = json_array_get(sc, 0);
    assert_true(json_is_false(json_object_get(create, "grantable")));
    json_t *why = json_array_get(json_object_get(create, "denied_by"), 0);
    assert_string_equal(json_string_value(json_object_get(why, "reason")), "ceiling");
    assert_string_equal(json_string_value(json_object_get(why, "rule")), "c-demo-readonly");
    assert_true(json_is_true(json_object_get(json_array_get(sc, 1), "grantable")));
    json_decref(j);
    free(buf);
    pol_compiled_free(p);
}

static void test_summary(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    FILE *f;
    char *buf;
    size_t len;
    capture_begin(&f, &buf, &len);
    assert_int_equal(pol_summary_write(p, "default.policy", f), PL_OK);
    capture_end(f, &buf);
    has_line(buf, "policy default.policy");
    assert_non_null(strstr(buf, "31 registered, 5 destructive, 31 required by a tool"));
    free(buf);
    pol_compiled_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_labels), cmocka_unit_test(test_explain),
        cmocka_unit_test(test_whocan),      cmocka_unit_test(test_expectation_file),
        cmocka_unit_test(test_summary),     cmocka_unit_test(test_grant_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
