/* tests/policy/test_check.c — every finding of pol_check (postly-policy check), each on a
 * minimal policy that has it, and the shipped policy that has none. */
#include <unistd.h>

#include "pol_test.h"

/* Roles and tools that keep the other findings quiet, so each case shows one finding. */
#define QUIET_ROLES                                                                                \
    "role owner grant=*\nrole admin grant=*\nrole editor grant=*\nrole viewer grant=*\n"

static pol_diags run_check(const char *text, const char *lock)
{
    pol_diags d;
    pol_compiled *p = load_text(text, POL_LOAD_KEEP_ERRORS, PL_OK, &d);
    assert_int_equal(pol_check(p, lock, &d), PL_OK);
    pol_compiled_free(p);
    return d;
}

/* Asserts that `text` has finding `code` at `line` (0: anywhere), with `needle` in it. */
static void expect(const char *text, pol_diag_code code, uint32_t line, const char *needle)
{
    pol_diags d = run_check(text, NULL);
    for (size_t i = 0; i < d.n; i++) {
        if (d.v[i].code == code && (!line || d.v[i].line == line) &&
            (!needle || strstr(d.v[i].msg, needle))) {
            pol_diags_free(&d);
            return;
        }
    }
    pol_diags_print(&d, stderr);
    fail_msg("expected finding %s at line %u containing '%s'", pol_diag_code_name(code), line,
             needle ? needle : "");
}

static void expect_none(const char *text, pol_diag_code code)
{
    pol_diags d = run_check(text, NULL);
    if (count_diag(&d, code)) {
        pol_diags_print(&d, stderr);
        fail_msg("unexpected finding %s", pol_diag_code_name(code));
    }
    pol_diags_free(&d);
}

/* Asserts how many shadowed and redundant findings `text` has. */
static void expect_counts(const char *text, size_t shadowed, size_t redundant)
{
    pol_diags d = run_check(text, NULL);
    if (count_diag(&d, POL_D_SHADOWED) != shadowed || count_diag(&d, POL_D_REDUNDANT) != redundant)
        pol_diags_print(&d, stderr);
    assert_int_equal(count_diag(&d, POL_D_SHADOWED), shadowed);
    assert_int_equal(count_diag(&d, POL_D_REDUNDANT), redundant);
    pol_diags_free(&d);
}

static void test_default_policy_clean(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    pol_diags d;
    pol_diags_init(&d);
    assert_int_equal(pol_check(p, POSTLY_SOURCE_DIR "/policy/scopes.lock", &d), PL_OK);
    if (d.n)
        pol_diags_print(&d, stderr);
    assert_int_equal(d.n, 0);
    pol_diags_free(&d);
    pol_compiled_free(p);
}

static void test_roles_and_scopes(void **state)
{
    (void)state;
    expect("tool t all=workspace:read\n", POL_D_ROLE_MISSING, 0, "'viewer'");
    expect_none(QUIET_ROLES, POL_D_ROLE_MISSING);
    expect(QUIET_ROLES "tool t all=workspace:read\n", POL_D_SCOPE_UNUSED, 0, "'posts:read'");
    expect_none(QUIET_ROLES "tool t all=*\n", POL_D_SCOPE_UNUSED);
}

static void test_destructive_unmarked(void **state)
{
    (void)state;
    expect(QUIET_ROLES "tool a all=posts:read\ntool del all=posts:delete\n",
           POL_D_DESTRUCTIVE_UNMARKED, 6, "posts:delete");
    expect(QUIET_ROLES "tool pub any=posts:publish,posts:schedule\n", POL_D_DESTRUCTIVE_UNMARKED, 5,
           "posts:publish");
    expect_none(QUIET_ROLES "tool del all=posts:delete destructive\n", POL_D_DESTRUCTIVE_UNMARKED);
}

static void test_unreachable_tool(void **state)
{
    (void)state;
    const char *t = QUIET_ROLES "ceiling c workspace=* scopes=workspace:read\n"
                                "tool w all=workspace:read\n"
                                "tool p all=posts:read\n";
    expect(t, POL_D_TOOL_UNREACHABLE, 7, "'p'");
    /* reachable through one named workspace is enough */
    expect_none(QUIET_ROLES "ceiling c workspace=* scopes=workspace:read\n"
                            "ceiling c2 workspace=big scopes=*\n"
                            "tool p all=posts:read\n",
                POL_D_TOOL_UNREACHABLE);
}

static void test_bundle_exceeds(void **state)
{
    (void)state;
    expect("role viewer grant=workspace:read\n"
           "bundle analytics-readonly offer=viewer\n",
           POL_D_BUNDLE_EXCEEDS, 2, "role 'viewer'");
    expect(QUIET_ROLES "ceiling c1 workspace=small scopes=workspace:read\n"
                       "bundle analytics-readonly offer=owner\n",
           POL_D_BUNDLE_EXCEEDS, 6, "workspace 'small'");
    /* not offered there: no finding */
    expect_none(QUIET_ROLES "ceiling c1 workspace=small scopes=workspace:read bundles=none\n"
                            "bundle analytics-readonly offer=owner\n",
                POL_D_BUNDLE_EXCEEDS);
    expect_none(QUIET_ROLES "bundle analytics-readonly offer=*\n", POL_D_BUNDLE_EXCEEDS);
}

static void test_never_fires(void **state)
{
    (void)state;
    expect(QUIET_ROLES "ceiling c workspace=* scopes=workspace:read\n"
                       "forbid f1 class=* scopes=posts:read\n",
           POL_D_NEVER_FIRES, 6, "'f1'");
    expect("role owner grant=workspace:read\n"
           "forbid f1 class=* scopes=posts:read\n",
           POL_D_NEVER_FIRES, 2, "'f1'");
    const char *blocked = QUIET_ROLES "forbid f1 class=dynamic scopes=posts:delete\n"
                                      "tool d all=posts:delete destructive\n"
                                      "approve a1 class=dynamic tool=d\n"
                                      "rate r1 class=dynamic tool=d limit=1/min\n";
    expect(blocked, POL_D_NEVER_FIRES, 7, "'a1'");
    expect(blocked, POL_D_NEVER_FIRES, 8, "'r1'");
    expect_none(QUIET_ROLES "tool d all=posts:delete destructive\n"
                            "approve a1 class=dynamic tool=d\n",
                POL_D_NEVER_FIRES);
    expect(QUIET_ROLES "ceiling c workspace=* scopes=workspace:read\n", POL_D_NEVER_FIRES, 1,
           "role 'owner'");
}

static void test_shadowed(void **state)
{
    (void)state;
    expect(QUIET_ROLES "forbid f1 class=* scopes=posts:read,posts:create\n"
                       "forbid f2 class=dynamic scopes=posts:read\n",
           POL_D_SHADOWED, 6, "by 'f1'");
    /* identical rules: only the later one */
    const char *same = QUIET_ROLES "forbid f1 class=cimd scopes=posts:read\n"
                                   "forbid f2 class=cimd scopes=posts:read\n";
    expect(same, POL_D_SHADOWED, 6, "by 'f1'");
    expect_counts(same, 1, 0);
    expect(QUIET_ROLES "tool t all=posts:read\ntool u all=posts:read\n"
                       "approve a1 class=* tool=*\n"
                       "approve a2 class=dynamic tool=t\n",
           POL_D_SHADOWED, 8, "by 'a1'");
    expect(QUIET_ROLES "tool t all=posts:read\n"
                       "rate r1 class=* tool=* limit=10/min\n"
                       "rate r2 class=dynamic tool=t limit=20/min\n",
           POL_D_SHADOWED, 7, "by 'r1'");
    /* a different period or a looser limit does not shadow */
    expect_none(QUIET_ROLES "tool t all=posts:read\n"
                            "rate r1 class=* tool=* limit=10/min\n"
                            "rate r2 class=dynamic tool=t limit=100/hour\n",
                POL_D_SHADOWED);
}

static void test_redundant(void **state)
{
    (void)state;
    /* f1 is inside no single rule but inside f2 + f3 together */
    const char *t = QUIET_ROLES "forbid f1 class=dynamic,cimd scopes=posts:read\n"
                                "forbid f2 class=dynamic scopes=posts:read,posts:create\n"
                                "forbid f3 class=cimd scopes=posts:read,posts:update\n";
    expect(t, POL_D_REDUNDANT, 5, "'f1'");
    pol_diags d = run_check(t, NULL);
    assert_int_equal(count_diag(&d, POL_D_REDUNDANT), 1);
    assert_int_equal(count_diag(&d, POL_D_SHADOWED), 0);
    pol_diags_free(&d);
    expect(QUIET_ROLES "tool t all=posts:read\ntool u all=posts:read\n"
                       "approve a1 class=dynamic,cimd tool=t\n"
                       "approve a2 class=dynamic tool=t,u\n"
                       "approve a3 class=cimd tool=t,u\n",
           POL_D_REDUNDANT, 7, "'a1'");
    expect(QUIET_ROLES "ceiling c0 workspace=* scopes=posts:read\n"
                       "ceiling c1 workspace=w scopes=posts:read\n",
           POL_D_REDUNDANT, 6, "'c1'");
}

/* Rules that cover each other in a ring: each alone is redundant, but not all together.
 * Removing every rule `check` reports must leave the decisions as they were. */
static void test_redundant_ring(void **state)
{
    (void)state;
    static const char *const rings[] = {
        QUIET_ROLES "forbid f1 class=dynamic scopes=posts:delete,drafts:delete\n"
                    "forbid f2 class=dynamic scopes=drafts:delete,media:delete\n"
                    "forbid f3 class=dynamic scopes=media:delete,posts:delete\n",
        QUIET_ROLES "tool t all=posts:read\ntool u all=posts:read\ntool v all=posts:read\n"
                    "approve a1 class=cimd tool=t,u\n"
                    "approve a2 class=cimd tool=u,v\n"
                    "approve a3 class=cimd tool=v,t\n",
    };
    for (size_t i = 0; i < sizeof rings / sizeof rings[0]; i++) {
        pol_diags d = run_check(rings[i], NULL);
        assert_int_equal(count_diag(&d, POL_D_SHADOWED), 0);
        assert_int_equal(count_diag(&d, POL_D_REDUNDANT), 1); /* was 3: all of them */

        /* drop the reported rule: the same compiled table */
        const pol_diag *r = find_diag(&d, POL_D_REDUNDANT);
        char *pruned = strdup(rings[i]), *line = pruned;
        for (uint32_t ln = 1; ln < r->line; ln++)
            line = strchr(line, '\n') + 1;
        memset(line, ' ', (size_t)(strchr(line, '\n') - line));
        pol_diags da, db;
        pol_compiled *a = load_text(rings[i], 0, PL_OK, &da), *b = load_text(pruned, 0, PL_OK, &db);
        for (uint32_t t = 0; t < pol_tool_count(a); t++)
            for (uint32_t c = 0; c < POL_CLASS_COUNT; c++) {
                pol_decision x, y;
                pol_decide(a, POL_MASK_ALL, 0, c, t, &x);
                pol_decide(b, POL_MASK_ALL, 0, c, t, &y);
                assert_int_equal(x.verdict, y.verdict);
            }
        for (uint32_t c = 0; c < POL_CLASS_COUNT; c++) {
            uint64_t fa, fb;
            pol_class_forbidden(a, (pol_class)c, &fa);
            pol_class_forbidden(b, (pol_class)c, &fb);
            assert_int_equal(fa, fb);
        }
        pol_compiled_free(a);
        pol_compiled_free(b);
        pol_diags_free(&da);
        pol_diags_free(&db);
        free(pruned);
        pol_diags_free(&d);
    }
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_lock(void **state)
{
    (void)state;
    char dir[] = "/tmp/pol-lock-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/scopes.lock", dir);
    /* a moved bit, a missing scope, a bit the registry does not have */
    write_file(path, "# lock\n0 workspace:read\n1 workspace:list\n2 posts:publish\n"
                     "40 posts:archive\n41 posts:old retired\n");
    pol_diags d = run_check(QUIET_ROLES, path);
    size_t locks = count_diag(&d, POL_D_LOCK);
    int moved = 0, missing = 0, extra = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (d.v[i].code != POL_D_LOCK)
            continue;
        assert_int_equal(d.v[i].sev, POL_SEV_ERROR);
        moved += strstr(d.v[i].msg, "bit 2 to 'posts:read' but the lock to 'posts:publish'") != 0;
        missing += strstr(d.v[i].msg, "'posts:create' (bit 3) is missing") != 0;
        extra += strstr(d.v[i].msg, "bit 40 'posts:archive'") != 0;
        assert_null(strstr(d.v[i].msg, "posts:old"));
    }
    assert_int_equal(moved, 1);
    assert_int_equal(missing, 1);
    assert_int_equal(extra, 1);
    assert_int_equal(locks, 1 + 1 + (31 - 3)); /* moved, extra, 28 missing (bits 3..30) + 2 */
    pol_diags_free(&d);

    /* a retired name that comes back at another bit, a scope retired but still registered,
     * a line with an unknown word */
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "# lock\n");
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        len += (size_t)snprintf(text + len, sizeof text - len, "%u %s%s\n", i, s->name,
                                i == 5   ? " retired"
                                : i == 6 ? " frozen"
                                         : "");
    }
    snprintf(text + len, sizeof text - len, "40 posts:read retired\n");
    write_file(path, text);
    d = run_check(QUIET_ROLES, path);
    int back = 0, retired = 0, word = 0;
    for (size_t i = 0; i < d.n; i++) {
        back += strstr(d.v[i].msg, "'posts:read' is listed at bit 2 and again at bit 40") != 0;
        retired += strstr(d.v[i].msg, "(bit 5) is retired in the lock but still") != 0;
        word += strstr(d.v[i].msg, ":8: expected 'BIT NAME [retired]'") != 0;
    }
    if (back != 1 || retired != 1 || word != 1)
        pol_diags_print(&d, stderr);
    assert_int_equal(back + retired + word, 3);
    pol_diags_free(&d);
    unlink(path);

    /* a lock that is not there is unusable input, not a finding */
    pol_compiled *p = load_text(QUIET_ROLES, 0, PL_OK, &d);
    assert_int_equal(pol_check(p, path, &d), PL_ERR_IO);
    assert_int_equal(d.v[d.n - 1].sev, POL_SEV_FATAL);
    assert_int_equal(d.v[d.n - 1].code, POL_D_IO);
    pol_compiled_free(p);
    pol_diags_free(&d);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy_clean),
        cmocka_unit_test(test_roles_and_scopes),
        cmocka_unit_test(test_destructive_unmarked),
        cmocka_unit_test(test_unreachable_tool),
        cmocka_unit_test(test_bundle_exceeds),
        cmocka_unit_test(test_never_fires),
        cmocka_unit_test(test_shadowed),
        cmocka_unit_test(test_redundant),
        cmocka_unit_test(test_redundant_ring),
        cmocka_unit_test(test_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
