/* tests/policy/test_parse.c — the policy reader: every error class with its line and column,
 * the accepted syntax, and hostile input (garbage, a 100 MB line, huge files, 10^5 rules). */
#include <fcntl.h>
#include <unistd.h>

#include "pol_test.h"

typedef struct bad_case {
    const char *text;
    pl_rc rc;
    pol_diag_code code;
    uint32_t line, col;
} bad_case;

static const bad_case bad[] = {
    /* fatal syntax errors (the first stops the parse) */
    {"version 1\nfrobnicate x\n", PL_ERR_PARSE, POL_D_SYNTAX, 2, 1},
    {"include other.policy\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 1}, /* no includes exist */
    {"tool a all=posts:read all=posts:read\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 23},
    {"ceiling c1 scopes=*\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 1},
    {"rate r1 class=* tool=* limit=10/fortnight\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 33},
    {"rate r1 class=* tool=* limit=0/min\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 30},
    {"rate r1 class=* tool=* limit=10/min per=planet\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 41},
    {"bundle x title=\"abc\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 16},
    {"tool a foo=bar\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 8},
    {"tool a all=posts:read,,posts:create\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 23},
    {"tool a all=\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 12},
    {"scope x posts:read\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 7},
    {"scope 64 posts:read\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 7},
    {"version 2\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 9},
    {"forbid F1 class=* scopes=*\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 8},
    {"all=posts:read\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 1},
    {"tool \"a\"\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 6},
    {"tool a\xc3\xa9\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 7},
    {"tool a destructive destructive\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 20},
    {"role editor\n", PL_ERR_PARSE, POL_D_SYNTAX, 1, 1},
    {"# ok\n\ttool a\x01\n", PL_ERR_PARSE, POL_D_BAD_BYTE, 2, 8},
    {"tool a\0b\n", PL_ERR_PARSE, POL_D_BAD_BYTE, 1, 7}, /* strlen stops: see test below */
    /* errors: the file parses, names are wrong (PL_ERR_INVALID unless KEEP_ERRORS) */
    {"tool a all=posts:frob\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 12},
    {"forbid f1 class=robots scopes=*\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 17},
    {"role god grant=*\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 6},
    {"approve a1 class=* tool=nope\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 25},
    {"tool a all=bundle:nope\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 12},
    {"ceiling c1 workspace=* scopes=* bundles=nope\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 41},
    {"bundle custom offer=*\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 8},
    {"forbid f1 class=* scopes=posts:read\nforbid f1 class=* scopes=posts:read\n", PL_ERR_INVALID,
     POL_D_DUPLICATE, 2, 8},
    {"tool a\ntool b\ntool a\n", PL_ERR_INVALID, POL_D_DUPLICATE, 3, 6},
    {"ceiling c1 workspace=w scopes=*\nceiling c2 workspace=w scopes=none\n", PL_ERR_INVALID,
     POL_D_DUPLICATE, 2, 9},
    {"role owner grant=*\nrole owner grant=none\n", PL_ERR_INVALID, POL_D_DUPLICATE, 2, 6},
    {"bundle campaign-operator\nbundle campaign-operator\n", PL_ERR_INVALID, POL_D_DUPLICATE, 2, 8},
    {"scope 5 posts:publish\n", PL_ERR_INVALID, POL_D_MOVED_BIT, 1, 7},
    {"scope 5 posts:archive\n", PL_ERR_INVALID, POL_D_REUSED_BIT, 1, 7},
    {"scope 3 posts:create\nscope 3 posts:create\n", PL_ERR_INVALID, POL_D_REUSED_BIT, 2, 7},
    {"scope 40 posts:archive\n", PL_ERR_INVALID, POL_D_UNKNOWN_NAME, 1, 10},
    {"bundle analytics-readonly scopes=workspace:read\n", PL_ERR_INVALID, POL_D_BUNDLE_MISMATCH, 1,
     8},
    {"bundle analytics-full title=\"Everything\"\n", PL_ERR_INVALID, POL_D_BUNDLE_MISMATCH, 1, 8},
};

static void test_error_classes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bad_case *c = &bad[i];
        pol_diags d;
        pol_compiled *p = NULL;
        size_t len = strlen(c->text);
        if (c->code == POL_D_BAD_BYTE && strstr(c->text, "tool a") == c->text)
            len = 9; /* includes the embedded NUL */
        pol_diags_init(&d);
        pl_rc rc = pol_load_buffer("t.policy", c->text, len, 0, &d, &p);
        const pol_diag *g = find_diag(&d, c->code);
        if (rc != c->rc || !g || g->line != c->line || g->col != c->col) {
            pol_diags_print(&d, stderr);
            fail_msg("case %zu (%s): rc %d want %d, diag %s at %u:%u want %u:%u", i, c->text, rc,
                     c->rc, g ? pol_diag_code_name(g->code) : "none", g ? g->line : 0,
                     g ? g->col : 0, c->line, c->col);
        }
        assert_null(p);
        /* an error (not fatal) keeps a usable table with the flag */
        if (c->rc == PL_ERR_INVALID) {
            pol_diags d2;
            pol_compiled *q = load_text(c->text, POL_LOAD_KEEP_ERRORS, PL_OK, &d2);
            assert_true(d2.count[POL_SEV_ERROR] > 0);
            pol_compiled_free(q);
            pol_diags_free(&d2);
        }
        pol_diags_free(&d);
    }
}

static void test_diag_format(void **state)
{
    (void)state;
    pol_diags d;
    capture c;
    char *buf;
    load_text("# comment\nforbid f1 class=* scopes=posts:frob\n", 0, PL_ERR_INVALID, &d);
    pol_diags_print(&d, capture_open(&c));
    buf = capture_close(&c);
    assert_string_equal(buf, "t.policy:2:26: error: unknown scope 'posts:frob' [unknown-name]\n");
    free(buf);
    pol_diags_free(&d);
}

static void test_accepted_syntax(void **state)
{
    (void)state;
    pol_diags d;
    const char *text = "# a comment\r\n"
                       "version 1   # trailing comment\r\n"
                       "\t tool   x#y   all=posts:read,bundle:analytics-readonly   destructive\n"
                       "tool resource:postly://posts/{id} any=posts:read\n"
                       "bundle mine title=\"My bundle \xc3\xa9\" scopes=posts:read offer=viewer\n"
                       "rate r1 class=dynamic,cimd tool=x#y limit=5/hour burst=2 per=workspace\n"
                       "\n"
                       "role viewer grant=none";
    pol_compiled *p = load_text(text, 0, PL_OK, &d);
    assert_int_equal(d.n, 0);
    pol_tool_info ti;
    assert_int_equal(pol_tool_get(p, tool_ix(p, "x#y"), &ti), PL_OK);
    assert_int_equal(ti.all, mask_of("workspace:read workspace:list posts:read "
                                     "social_accounts:read analytics:read"));
    assert_true(ti.destructive);
    assert_int_equal(pol_rate_count(p), 1);
    pol_rate_info r;
    assert_int_equal(pol_rate_get(p, 0, &r), PL_OK);
    assert_string_equal(r.id, "r1");
    assert_int_equal(r.limit, 5);
    assert_int_equal(r.period_s, 3600);
    assert_int_equal(r.burst, 2);
    assert_int_equal(r.per, POL_PER_WORKSPACE);
    assert_int_equal(r.classes, (1u << POL_CLASS_DYNAMIC) | (1u << POL_CLASS_CIMD));
    int applies = 0;
    assert_int_equal(pol_rate_applies(p, 0, POL_CLASS_CIMD, tool_ix(p, "x#y"), &applies), PL_OK);
    assert_true(applies);
    assert_int_equal(pol_rate_applies(p, 0, POL_CLASS_FIRST_PARTY, tool_ix(p, "x#y"), &applies),
                     PL_OK);
    assert_false(applies);
    assert_int_equal(pol_bundle_row_count(p), 5);
    pol_bundle_row b;
    assert_int_equal(pol_bundle_row_get(p, 4, &b), PL_OK);
    assert_string_equal(b.id, "mine");
    assert_string_equal(b.title, "My bundle \xc3\xa9");
    assert_int_equal(b.offer_roles, 1u << POL_ROLE_VIEWER);
    pol_compiled_free(p);
    pol_diags_free(&d);

    /* an empty file is a valid (empty) policy */
    p = load_text("", 0, PL_OK, &d);
    assert_int_equal(pol_tool_count(p), 0);
    assert_int_equal(pol_workspace_count(p), 1);
    pol_compiled_free(p);
    pol_diags_free(&d);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Binary garbage and mutated policies: a clear error or a table, never a crash. */
static void test_garbage(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[4096];
    FILE *f = fopen(DEFAULT_POLICY, "rb");
    assert_non_null(f);
    static char base[65536];
    size_t blen = fread(base, 1, sizeof base, f);
    fclose(f);
    for (int round = 0; round < 300; round++) {
        pol_diags d;
        pol_compiled *p = NULL;
        pol_diags_init(&d);
        pl_rc rc;
        if (round < 100) {
            for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (char)rng(&seed);
            rc = pol_load_buffer("g", buf, sizeof buf, POL_LOAD_KEEP_ERRORS, &d, &p);
            assert_true(rc == PL_ERR_PARSE || rc == PL_ERR_TOO_LARGE);
            assert_true(d.count[POL_SEV_FATAL] >= 1);
        } else {
            /* flip a few bytes of the real policy */
            static char m[65536];
            memcpy(m, base, blen);
            for (int k = 0; k < 4; k++)
                m[rng(&seed) % blen] = (char)(rng(&seed) % 128);
            rc = pol_load_buffer("m", m, blen, POL_LOAD_KEEP_ERRORS, &d, &p);
            if (rc == PL_OK) {
                pol_diags c;
                pol_diags_init(&c);
                assert_int_equal(pol_check(p, NULL, &c), PL_OK);
                pol_diags_free(&c);
            } else {
                assert_true(d.count[POL_SEV_FATAL] >= 1);
            }
        }
        pol_compiled_free(p);
        pol_diags_free(&d);
    }
}

static void tmpfile_path(char *dir, size_t dsz, char *path, size_t psz)
{
    snprintf(dir, dsz, "/tmp/pol-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, psz, "%s/p.policy", dir);
}

/* A 100 MB line: rejected at byte 4097 of line 1, reading no more than that line needs. */
static void test_huge_line(void **state)
{
    (void)state;
    char dir[64], path[128];
    tmpfile_path(dir, sizeof dir, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof chunk);
    static const char head[5] = {'t', 'o', 'o', 'l', ' '};
    memcpy(chunk, head, sizeof head);
    for (int i = 0; i < 100; i++)
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    close(fd);
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    assert_int_equal(pol_load_file(path, 0, &d, &p), PL_ERR_TOO_LARGE);
    assert_null(p);
    const pol_diag *g = find_diag(&d, POL_D_LINE_TOO_LONG);
    assert_non_null(g);
    assert_int_equal(g->line, 1);
    assert_int_equal(g->col, POL_LINE_MAX + 1);
    pol_diags_free(&d);
    unlink(path);
    rmdir(dir);

    /* missing file: an I/O error naming the file */
    pol_diags_init(&d);
    assert_int_equal(pol_load_file("/nonexistent/x.policy", 0, &d, &p), PL_ERR_IO);
    assert_non_null(find_diag(&d, POL_D_IO));
    assert_string_equal(d.file, "/nonexistent/x.policy");
    pol_diags_free(&d);
}

static void test_file_too_large(void **state)
{
    (void)state;
    size_t n = (size_t)POL_FILE_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '\n', n);
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    assert_int_equal(pol_load_buffer("big", big, n, 0, &d, &p), PL_ERR_TOO_LARGE);
    assert_non_null(find_diag(&d, POL_D_TOO_LARGE));
    assert_null(p);
    pol_diags_free(&d);
    free(big);
}

/* 10^5 rules: 50 000 workspace ceilings and 50 000 forbid rules load, decide and check. */
static void test_many_rules(void **state)
{
    (void)state;
    const size_t n = 50000;
    size_t cap = n * 160 + 4096, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    len += (size_t)snprintf(t + len, cap - len,
                            "tool postly_get_workspace all=workspace:read\n"
                            "tool postly_publish_post all=posts:publish destructive\n"
                            "ceiling c-default workspace=* scopes=*\n");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(t + len, cap - len,
                                "ceiling c-%zu workspace=ws-%zu scopes=%s\n"
                                "forbid f-%06zu class=dynamic scopes=posts:publish\n",
                                i, i, i % 2 ? "workspace:read" : "*", i);
    }
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    assert_int_equal(pol_load_buffer("many", t, len, 0, &d, &p), PL_OK);
    assert_int_equal(pol_workspace_count(p), n + 1);
    uint32_t ws = 0;
    int named = 0;
    assert_int_equal(pol_workspace_index(p, "ws-4243", 7, &ws, &named), PL_OK);
    assert_true(named);
    uint64_t ceil;
    const char *id;
    assert_int_equal(pol_workspace_get(p, ws, &id, &ceil, NULL), PL_OK);
    assert_string_equal(id, "ws-4243");
    assert_int_equal(ceil, mask_of("workspace:read"));
    assert_int_equal(pol_workspace_index(p, "ws-unknown", 10, &ws, &named), PL_OK);
    assert_int_equal(ws, 0);
    assert_false(named);
    pol_decision dec;
    assert_int_equal(
        pol_decide(p, POL_MASK_ALL, 0, POL_CLASS_DYNAMIC, tool_ix(p, "postly_publish_post"), &dec),
        PL_OK);
    assert_int_equal(dec.verdict, POL_DENY_POLICY);
    pol_rule_info ri;
    assert_int_equal(pol_rule_get(p, dec.rule, &ri), PL_OK);
    assert_string_equal(ri.id, "f-000000"); /* the smallest id names the bit */
    /* check finishes and finds the 49 999 duplicates of the forbid rule */
    pol_diags c;
    pol_diags_init(&c);
    assert_int_equal(pol_check(p, NULL, &c), PL_OK);
    assert_int_equal(c.count[POL_SEV_WARNING] >= n - 1, 1);
    pol_diags_free(&c);
    pol_compiled_free(p);
    pol_diags_free(&d);
    free(t);
}

/* Table bounds: the 1025th tool row and the 61st bundle line are clear errors. */
static void test_table_bounds(void **state)
{
    (void)state;
    size_t cap = (size_t)64 * 1100, len = 0;
    char *t = malloc(cap);
    assert_non_null(t);
    for (unsigned i = 0; i <= POL_TOOLS_MAX; i++)
        len += (size_t)snprintf(t + len, cap - len, "tool t%u\n", i);
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    assert_int_equal(pol_load_buffer("tools", t, len, 0, &d, &p), PL_ERR_TOO_LARGE);
    const pol_diag *g = find_diag(&d, POL_D_TOO_LARGE);
    assert_non_null(g);
    assert_int_equal(g->line, POL_TOOLS_MAX + 1);
    assert_non_null(strstr(g->msg, "more than 1024 tool rows"));
    pol_diags_free(&d);
    len = 0;
    for (unsigned i = 0; i <= POL_BUNDLES_MAX - POL_BUNDLE_COUNT; i++)
        len += (size_t)snprintf(t + len, cap - len, "bundle b%u scopes=posts:read\n", i);
    pol_diags_init(&d);
    assert_int_equal(pol_load_buffer("bundles", t, len, 0, &d, &p), PL_ERR_TOO_LARGE);
    assert_non_null(find_diag(&d, POL_D_TOO_LARGE));
    pol_diags_free(&d);

    /* the names one rule lists are bounded too: tools of an approve, bundles of a ceiling */
    static const struct {
        const char *head, *item;
        unsigned count;
        const char *msg;
    } lists[] = {
        {"tool t\napprove a1 class=* tool=t", ",t", POL_TOOLS_MAX, "too many tools in one rule"},
        {"ceiling c1 workspace=w scopes=* bundles=b", ",b", POL_BUNDLES_MAX,
         "too many bundles in one rule"},
    };
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        len = (size_t)snprintf(t, cap, "%s", lists[k].head);
        for (unsigned i = 0; i < lists[k].count; i++)
            len += (size_t)snprintf(t + len, cap - len, "%s", lists[k].item);
        len += (size_t)snprintf(t + len, cap - len, "\n");
        pol_diags_init(&d);
        assert_int_equal(pol_load_buffer("list", t, len, 0, &d, &p), PL_ERR_PARSE);
        g = find_diag(&d, POL_D_SYNTAX);
        assert_non_null(g);
        assert_non_null(strstr(g->msg, lists[k].msg));
        /* at the first item past the bound */
        const char *last = strrchr(lists[k].head, '\n');
        last = last ? last + 1 : lists[k].head;
        assert_int_equal(g->col, strlen(last) + 2 * (size_t)lists[k].count);
        pol_diags_free(&d);
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_classes),   cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_accepted_syntax), cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_huge_line),       cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_many_rules),      cmocka_unit_test(test_table_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
