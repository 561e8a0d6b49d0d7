/* tests/policy/test_compile.c — the canonical compiled table: byte-identical for the same
 * input, independent of line order, different when the semantics differ. */
#include "pol_test.h"

static char *compile_text(const char *text, size_t len)
{
    pol_diags d;
    pol_compiled *p = NULL;
    capture c;
    char *buf;
    pol_diags_init(&d);
    pl_rc rc = pol_load_buffer("t", text, len, 0, &d, &p);
    if (rc != PL_OK)
        pol_diags_print(&d, stderr);
    assert_int_equal(rc, PL_OK);
    assert_int_equal(pol_compiled_write(p, capture_open(&c)), PL_OK);
    buf = capture_close(&c);
    pol_compiled_free(p);
    pol_diags_free(&d);
    return buf;
}

static char *read_default(size_t *len)
{
    FILE *f = fopen(DEFAULT_POLICY, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* Splits text into lines (in place) and returns them. */
static size_t lines_of(char *text, char **v, size_t max)
{
    size_t n = 0;
    for (char *s = text; *s && n < max;) {
        char *e = strchr(s, '\n');
        v[n++] = s;
        if (!e)
            break;
        *e = '\0';
        s = e + 1;
    }
    return n;
}

static char *join(char **v, size_t n, size_t *len)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(v[i]) + 1;
    char *out = malloc(total);
    assert_non_null(out);
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(out + *len, v[i], l);
        *len += l;
        out[(*len)++] = '\n';
    }
    out[*len] = '\0';
    return out;
}

static void test_deterministic(void **state)
{
    (void)state;
    size_t len;
    char *text = read_default(&len);
    char *a = compile_text(text, len), *b = compile_text(text, len);
    assert_string_equal(a, b);

    /* reversed and shuffled line order: the same bytes */
    char *copy = strdup(text);
    char *v[1024];
    size_t n = lines_of(copy, v, 1024);
    for (size_t i = 0; i < n / 2; i++) {
        char *t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
    size_t rlen;
    char *rev = join(v, n, &rlen);
    char *c = compile_text(rev, rlen);
    assert_string_equal(a, c);
    uint64_t s = 12345;
    for (size_t i = n - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(s >> 33) % (i + 1);
        char *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    char *shuf = join(v, n, &rlen);
    char *e = compile_text(shuf, rlen);
    assert_string_equal(a, e);

    /* a semantic change shows */
    char *changed = malloc(len + 64);
    memcpy(changed, text, len);
    memcpy(changed + len, "\nforbid f-x class=cimd scopes=posts:publish\n", 45);
    char *g = compile_text(changed, len + 44);
    assert_string_not_equal(a, g);
    free(g);
    free(changed);
    free(e);
    free(shuf);
    free(c);
    free(rev);
    free(copy);
    free(b);
    free(a);
    free(text);
}

static void test_bundle_lines(void **state)
{
    (void)state;
    size_t len;
    char *text = read_default(&len);
    char *out = compile_text(text, len);
    for (unsigned i = 0; i < POL_BUNDLE_COUNT; i++) {
        const pol_bundle_info *b;
        char want[128];
        pol_bundle_get(i, &b);
        snprintf(want, sizeof want, "\nbundle %s 0x%016llx ", b->id, (unsigned long long)b->mask);
        assert_non_null(strstr(out, want));
    }
    assert_non_null(strstr(out, "\nbundle analytics-readonly 0x0000000000a00003 offer=*\n"));
    assert_non_null(strstr(out, "\nclass dynamic forbidden 0x0000000000111020\n"));
    assert_non_null(strstr(out, "\nworkspace demo-readonly ceiling 0x000000007fa00003 "
                                "rule=c-demo-readonly\n"));
    assert_non_null(strstr(out, "\nscope 30 analytics:x:read 0x0000000040000000\n"));
    /* no line numbers or file names leak into the table */
    assert_null(strstr(out, "line"));
    free(out);
    free(text);
}

/* Rule indices are ordered by (kind, id), not by position. */
static void test_rule_order(void **state)
{
    (void)state;
    pol_diags d;
    pol_compiled *p = load_text("forbid zz class=dynamic scopes=posts:read\n"
                                "tool t all=posts:read\n"
                                "forbid aa class=dynamic scopes=posts:read\n",
                                0, PL_OK, &d);
    pol_rule_info r0, r1, r2;
    assert_int_equal(pol_rule_count(p), 3);
    assert_int_equal(pol_rule_get(p, 0, &r0), PL_OK);
    assert_int_equal(pol_rule_get(p, 1, &r1), PL_OK);
    assert_int_equal(pol_rule_get(p, 2, &r2), PL_OK);
    assert_string_equal(r0.id, "aa");
    assert_int_equal(r0.line, 3);
    assert_string_equal(r1.id, "zz");
    assert_int_equal(r2.kind, POL_RULE_TOOL);
    pol_decision dec;
    assert_int_equal(pol_decide(p, POL_MASK_ALL, 0, POL_CLASS_DYNAMIC, 0, &dec), PL_OK);
    assert_int_equal(dec.verdict, POL_DENY_POLICY);
    assert_int_equal(dec.rule, 0); /* "aa", the smallest id */
    assert_int_equal(pol_rule_get(p, 3, &r0), PL_ERR_NOT_FOUND);
    pol_compiled_free(p);
    pol_diags_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bundle_lines),
        cmocka_unit_test(test_rule_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
