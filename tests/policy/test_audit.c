/* tests/policy/test_audit.c — diff labels, explain, who-can, expectation files, summary. */
#include <sys/stat.h>
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

static char *diff_as(const char *a_text, const char *b_text, int json, size_t *changed)
{
    pol_diags da, db;
    pol_compiled *a = load_text(a_text, 0, PL_OK, &da), *b = load_text(b_text, 0, PL_OK, &db);
    capture c;
    char *buf;
    FILE *f = capture_open(&c);
    if (json)
        assert_int_equal(pol_diff_write_json(a, b, f, changed), PL_OK);
    else
        assert_int_equal(pol_diff_write(a, b, f, changed), PL_OK);
    buf = capture_close(&c);
    pol_compiled_free(a);
    pol_compiled_free(b);
    pol_diags_free(&da);
    pol_diags_free(&db);
    return buf;
}

static char *diff_of(const char *a_text, const char *b_text, size_t *changed)
{
    return diff_as(a_text, b_text, 0, changed);
}

/* Parses `text` as JSON (fails the test when it is not); json_decref the result. */
static json_t *json_of(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("not JSON (%s at %d): %s", err.text, err.position, text);
    return j;
}

/* The names in a JSON array of strings, comma-separated, into buf. */
static const char *names_of(json_t *arr, char *buf, size_t size)
{
    size_t i, off = 0;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(buf + off, size - off, "%s%s", i ? "," : "", json_string_value(v));
        assert_true(n >= 0 && (size_t)n < size - off);
        off += (size_t)n;
    }
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

static char *explain(const pol_compiled *p, uint64_t token, const char *ws, pol_class cls,
                     const char *tool, int json)
{
    capture c;
    uint32_t w;
    pol_workspace_index(p, ws, strlen(ws), &w, NULL);
    assert_int_equal(pol_explain_write(p, token, w, cls, tool_ix(p, tool), json, capture_open(&c)),
                     PL_OK);
    return capture_close(&c);
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
    json_t *j = json_of(out);
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
    capture c;
    char *buf;
    assert_int_equal(pol_whocan_write(p, POL_SCOPE_CAMPAIGNS_DELETE, 0, capture_open(&c)), PL_OK);
    buf = capture_close(&c);
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

    assert_int_equal(pol_whocan_write(p, POL_SCOPE_ANALYTICS_GMB_READ, 1, capture_open(&c)), PL_OK);
    buf = capture_close(&c);
    json_t *j = json_of(buf);
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

/* A folder of test files (mkdtemp), removed by tmp_end. */
typedef struct tmpdir {
    char dir[32];
    char paths[8][96];
    int n;
} tmpdir;

static void tmp_begin(tmpdir *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/pol-cases-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    t->n = 0;
}

/* Writes `text` to DIR/name (name may contain one folder, created); returns the path. */
static const char *tmp_file(tmpdir *t, const char *name, const char *text)
{
    assert_true(t->n < 8);
    char *path = t->paths[t->n++], built[sizeof t->paths[0]];
    const char *slash = strchr(name, '/');
    if (slash) {
        snprintf(built, sizeof built, "%s/%.*s", t->dir, (int)(slash - name), name);
        mkdir(built, 0700);
    }
    snprintf(built, sizeof built, "%s/%s", t->dir, name);
    memcpy(path, built, sizeof built);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void tmp_end(tmpdir *t)
{
    for (int i = t->n - 1; i >= 0; i--) {
        unlink(t->paths[i]);
        char *slash = strrchr(t->paths[i], '/');
        *slash = '\0';
        if (strcmp(t->paths[i], t->dir) != 0)
            rmdir(t->paths[i]);
    }
    rmdir(t->dir);
}

/* Runs the cases file at `path` against p (NULL: its own policy line); returns the output
 * (caller frees) and asserts the return code. d is left for the caller to inspect and free. */
static char *run_cases(const pol_compiled *p, const char *path, int json, pl_rc want, pol_diags *d,
                       size_t *passed, size_t *failed)
{
    capture c;
    char *buf;
    pol_diags_init(d);
    pl_rc rc = pol_test_run(p, path, json, capture_open(&c), d, passed, failed);
    buf = capture_close(&c);
    if (rc != want)
        pol_diags_print(d, stderr);
    assert_int_equal(rc, want);
    return buf;
}

static void test_expectation_file(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    tmpdir t = {0};
    tmp_begin(&t);
    const char *path = tmp_file(
        &t, "c.cases",
        "# comment\n"
        "expect ALLOW tool=postly_get_workspace scopes=workspace:read\n"
        "expect DENY_SCOPE tool=postly_publish_post scopes=bundle:campaign-operator "
        "help=posts:publish\n"
        "expect DENY_POLICY tool=postly_delete_post class=dynamic scopes=* "
        "rule=f-dynamic-no-delete\n"
        "expect NEEDS_APPROVAL tool=postly_delete_post class=cimd scopes=posts:delete\n"
        "expect ALLOW tool=postly_delete_post class=cimd scopes=posts:delete\n" /* fails */
        "grant viewer request=posts:read,posts:publish expect=posts:read\n"
        "grant owner workspace=demo-readonly request=* expect=bundle:analytics-full\n"
        "grant editor class=dynamic request=posts:delete expect=posts:delete\n"); /* fails */
    pol_diags d;
    size_t passed, failed;
    char *buf = run_cases(p, path, 0, PL_OK, &d, &passed, &failed);
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

    /* the same failures as JSON */
    buf = run_cases(p, path, 1, PL_OK, &d, &passed, &failed);
    json_t *j = json_of(buf), *fl = json_object_get(j, "failures");
    char names[256];
    assert_int_equal(json_integer_value(json_object_get(j, "passed")), 6);
    assert_int_equal(json_integer_value(json_object_get(j, "failed")), 2);
    assert_true(json_is_null(json_object_get(j, "policy"))); /* the caller's policy */
    assert_int_equal(json_array_size(fl), 2);
    json_t *f0 = json_array_get(fl, 0), *f1 = json_array_get(fl, 1);
    assert_int_equal(json_integer_value(json_object_get(f0, "line")), 6);
    assert_string_equal(json_string_value(json_object_get(f0, "kind")), "expect");
    assert_string_equal(json_string_value(json_object_get(f0, "tool")), "postly_delete_post");
    json_t *got = json_object_get(f0, "got");
    assert_string_equal(json_string_value(json_object_get(got, "verdict")), "NEEDS_APPROVAL");
    assert_string_equal(json_string_value(json_object_get(got, "rule")), "a-cimd-delete");
    assert_true(json_is_null(json_object_get(json_object_get(f0, "expected"), "rule")));
    assert_string_equal(json_string_value(json_object_get(f1, "kind")), "grant");
    assert_string_equal(names_of(json_object_get(json_object_get(f1, "expected"), "grantable"),
                                 names, sizeof names),
                        "posts:delete");
    assert_int_equal(json_array_size(json_object_get(json_object_get(f1, "got"), "grantable")), 0);
    json_decref(j);
    free(buf);
    pol_diags_free(&d);
    tmp_end(&t);
    pol_compiled_free(p);
}

/* A cases file names its policy (relative to its own folder), so `test FILE` needs nothing
 * else; a policy given by the caller takes precedence. */
static void test_expectation_policy_line(void **state)
{
    (void)state;
    tmpdir t = {0};
    tmp_begin(&t);
    tmp_file(&t, "p.policy",
             BASE "forbid f1 class=dynamic scopes=posts:publish\n"
                  "approve a1 class=cimd tool=pub\n");
    const char *path = tmp_file(&t, "sub/c.cases",
                                "policy ../p.policy  # relative to this file\n"
                                "expect DENY_POLICY tool=pub class=dynamic scopes=* rule=f1\n"
                                "expect NEEDS_APPROVAL tool=pub class=cimd scopes=posts:publish\n"
                                "expect ALLOW tool=pub workspace=acme scopes=posts:publish\n"
                                "grant editor request=* expect=posts:read,posts:publish\n");
    pol_diags d;
    size_t passed, failed;
    char *buf = run_cases(NULL, path, 0, PL_OK, &d, &passed, &failed);
    assert_int_equal(passed, 4);
    assert_int_equal(failed, 0);
    has_line(buf, "4 passed, 0 failed");
    free(buf);
    pol_diags_free(&d);

    buf = run_cases(NULL, path, 1, PL_OK, &d, &passed, &failed);
    json_t *j = json_of(buf);
    char want[128];
    snprintf(want, sizeof want, "%s/sub/../p.policy", t.dir);
    assert_string_equal(json_string_value(json_object_get(j, "policy")), want);
    json_decref(j);
    free(buf);
    pol_diags_free(&d);

    /* the caller's policy wins: the shipped policy has no tool 'pub' */
    pol_compiled *p = load_default();
    buf = run_cases(p, path, 0, PL_ERR_PARSE, &d, &passed, &failed);
    assert_int_equal(d.v[0].line, 2);
    assert_int_equal(d.v[0].col, 25); /* the value of tool= */
    assert_non_null(strstr(d.v[0].msg, "no tool 'pub'"));
    free(buf);
    pol_diags_free(&d);
    pol_compiled_free(p);
    tmp_end(&t);
}

/* Each malformed line is an error naming its line and column; a typo never passes silently. */
static void test_expectation_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t line, col;
        const char *msg;
    } cases[] = {
        /* a misspelt key used to be ignored, so this DENY_SCOPE passed without its scopes */
        {"expect DENY_SCOPE tool=postly_get_post scope=posts:read\n", 1, 40, "unknown key 'scope'"},
        {"expect ALLOW tool=postly_get_post tool=postly_get_post\n", 1, 35, "given twice"},
        {"expect ALLOW scopes=*\n", 1, 1, "needs tool="},
        {"expect\n", 1, 1, "needs a VERDICT"},
        {"expect MAYBE tool=x\n", 1, 8, "verdict must be"},
        {"expect ALLOW DENY_SCOPE tool=x\n", 1, 14, "unexpected word 'DENY_SCOPE'"},
        {"expect ALLOW tool=postly_get_post scopes=posts:read,posts:frob\n", 1, 53,
         "'posts:frob' in scopes="},
        {"expect ALLOW tool=postly_get_post class=robot\n", 1, 41, "unknown class 'robot'"},
        {"grant boss request=* expect=*\n", 1, 7, "unknown role 'boss'"},
        {"grant owner request=*\n", 1, 1, "needs expect="},
        {"grant owner request=* expect=* help=posts:read\n", 1, 32, "unknown key 'help'"},
        {"\n  allow ALLOW\n", 2, 3, "a line starts with"},
        {"expect ALLOW tool=postly_get_post\npolicy p.policy\n", 2, 1, "before the first case"},
        {"policy a.policy\npolicy b.policy\n", 2, 1, "a second 'policy' line"},
        {"expect ALLOW tool=postly_get_post\x01\n", 1, 34, "invalid byte 0x01"},
    };
    pol_compiled *p = load_default();
    tmpdir t = {0};
    tmp_begin(&t);
    const char *path = tmp_file(&t, "e.cases", "");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(cases[i].text, f);
        fclose(f);
        pol_diags d;
        size_t passed, failed;
        free(run_cases(p, path, 0, PL_ERR_PARSE, &d, &passed, &failed));
        assert_int_equal(d.n, 1);
        if (d.v[0].line != cases[i].line || d.v[0].col != cases[i].col ||
            !strstr(d.v[0].msg, cases[i].msg))
            fail_msg("case %zu: got %u:%u '%s', want %u:%u '%s'", i, d.v[0].line, d.v[0].col,
                     d.v[0].msg, cases[i].line, cases[i].col, cases[i].msg);
        pol_diags_free(&d);
    }

    /* binary input: a NUL is an invalid byte at its column, not a short line */
    FILE *nf = fopen(path, "wb");
    assert_non_null(nf);
    fwrite("policy x\nexpect ALLOW\0tool=y\n", 1, 30, nf);
    fclose(nf);
    pol_diags nd;
    size_t np, nfail;
    free(run_cases(p, path, 0, PL_ERR_PARSE, &nd, &np, &nfail));
    assert_int_equal(nd.v[0].line, 2);
    assert_int_equal(nd.v[0].col, 13);
    assert_non_null(strstr(nd.v[0].msg, "invalid byte 0x00"));
    pol_diags_free(&nd);
    /* a line of 4096 bytes is fine, one of 4097 is not (and only 4 KiB is ever read) */
    char *big = malloc(5000);
    assert_non_null(big);
    for (size_t extra = 0; extra < 2; extra++) {
        int n = snprintf(big, 5000, "expect ALLOW tool=postly_get_workspace scopes=*");
        memset(big + n, ' ', 4096 + extra - (size_t)n);
        big[4096 + extra] = '\0';
        nf = fopen(path, "w");
        fprintf(nf, "%s\n", big);
        fclose(nf);
        free(run_cases(p, path, 0, extra ? PL_ERR_PARSE : PL_OK, &nd, &np, &nfail));
        if (extra) {
            assert_int_equal(nd.v[0].code, POL_D_LINE_TOO_LONG);
            assert_int_equal(nd.v[0].col, 4097);
        } else {
            assert_int_equal(np, 1);
        }
        pol_diags_free(&nd);
    }
    free(big);
    pol_compiled_free(p);

    /* no policy at all; a named policy that is unusable reports the policy's own error */
    pol_diags d;
    size_t passed, failed;
    path = tmp_file(&t, "n.cases", "expect ALLOW tool=x\n");
    free(run_cases(NULL, path, 0, PL_ERR_PARSE, &d, &passed, &failed));
    assert_non_null(strstr(d.v[0].msg, "no policy"));
    pol_diags_free(&d);
    /* after a good policy line, errors still name the cases file */
    path = tmp_file(&t, "g.cases", "policy " DEFAULT_POLICY "\nexpect ALLOW\n");
    free(run_cases(NULL, path, 0, PL_ERR_PARSE, &d, &passed, &failed));
    assert_string_equal(d.file, path);
    assert_int_equal(d.v[0].line, 2);
    pol_diags_free(&d);
    tmp_file(&t, "bad.policy", "version 1\nfrobnicate\n");
    path = tmp_file(&t, "b.cases", "policy bad.policy\nexpect ALLOW tool=x\n");
    free(run_cases(NULL, path, 1, PL_ERR_PARSE, &d, &passed, &failed));
    assert_non_null(strstr(d.file, "bad.policy"));
    assert_int_equal(d.v[0].line, 2);
    pol_diags_free(&d);
    tmp_end(&t);
}

static void test_diff_json(void **state)
{
    (void)state;
    size_t changed = 0;
    char *out = diff_as(BASE "forbid f1 class=cimd scopes=posts:publish\ntool gone\n",
                        BASE "forbid f1 class=cimd scopes=posts:delete\ntool new\n", 1, &changed);
    json_t *j = json_of(out);
    char names[256];
    assert_int_equal(json_integer_value(json_object_get(j, "changed")), (json_int_t)changed);
    /* 2 workspaces x cimd incomparable, tool gone removed, tool new added */
    assert_int_equal(changed, 4);
    json_t *ws = json_object_get(j, "workspaces"), *w;
    size_t i;
    int seen = 0;
    assert_int_equal(json_array_size(ws), 2 * POL_CLASS_COUNT);
    json_array_foreach(ws, i, w)
    {
        if (strcmp(json_string_value(json_object_get(w, "class")), "cimd") != 0) {
            assert_string_equal(json_string_value(json_object_get(w, "label")), "equivalent");
            continue;
        }
        seen++;
        assert_string_equal(json_string_value(json_object_get(w, "label")), "incomparable");
        assert_string_equal(names_of(json_object_get(w, "added"), names, sizeof names),
                            "posts:publish");
        assert_string_equal(names_of(json_object_get(w, "removed"), names, sizeof names),
                            "posts:delete");
        json_t *t0 = json_array_get(json_object_get(w, "tools"), 0);
        assert_string_equal(json_string_value(json_object_get(t0, "tool")), "del");
        assert_string_equal(json_string_value(json_object_get(t0, "from")), "open");
        assert_string_equal(json_string_value(json_object_get(t0, "to")), "blocked");
    }
    assert_int_equal(seen, 2);
    assert_int_equal(json_array_size(json_object_get(j, "roles")), POL_ROLE_COUNT);
    json_t *tools = json_object_get(j, "tools"), *t;
    int added = 0, removed = 0;
    json_array_foreach(tools, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "tool"));
        const char *change = json_string_value(json_object_get(t, "change"));
        if (strcmp(name, "new") == 0) {
            added = strcmp(change, "added") == 0;
            assert_string_equal(json_string_value(json_object_get(t, "label")), "more-permissive");
        } else if (strcmp(name, "gone") == 0) {
            removed = strcmp(change, "removed") == 0;
        } else {
            assert_string_equal(change, "kept");
            assert_true(json_is_object(json_object_get(t, "all")));
            assert_true(json_is_true(json_object_get(json_object_get(t, "destructive"), "a")) ==
                        (strcmp(name, "read") != 0));
        }
    }
    assert_true(added && removed);
    json_decref(j);
    free(out);

    /* rate limits: a raised limit was reported as "0 changed" (exit 0) before */
    const char *r10 = BASE "rate r1 class=dynamic tool=pub limit=10/min\n"
                           "rate r2 class=* tool=* limit=600/min burst=100\n";
    out = diff_of(r10,
                  BASE "rate r1 class=dynamic tool=pub limit=1/s burst=10\n"
                       "rate r2 class=* tool=read limit=600/min burst=100\n"
                       "rate r3 class=* tool=del limit=1/hour\n",
                  &changed);
    has_line(out, "rate r1 more-permissive limit:10/60s->1/1s");
    has_line(out, "rate r2 incomparable counts-other-calls");
    has_line(out, "rate r3 added less-permissive");
    has_line(out, "summary 3 changed");
    free(out);
    out = diff_of(r10, BASE "rate r1 class=dynamic tool=pub limit=600/hour burst=5\n", &changed);
    has_line(out, "rate r1 less-permissive limit:10/60s->600/3600s burst:10->5"); /* same rate */
    has_line(out, "rate r2 removed more-permissive");
    assert_int_equal(changed, 2);
    free(out);
    out = diff_of(r10, r10, &changed);
    has_line(out, "rate r1 equivalent");
    assert_int_equal(changed, 0);
    free(out);
    out = diff_as(r10, BASE "rate r1 class=dynamic tool=pub limit=20/min\n", 1, &changed);
    j = json_of(out);
    json_t *r1 = json_array_get(json_object_get(j, "rates"), 0);
    assert_string_equal(json_string_value(json_object_get(r1, "rate")), "r1");
    assert_string_equal(json_string_value(json_object_get(r1, "change")), "kept");
    assert_string_equal(json_string_value(json_object_get(r1, "label")), "more-permissive");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "b"), "limit")), 20);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "a"), "period_s")), 60);
    assert_true(json_is_true(json_object_get(r1, "same_calls")));
    json_t *r2 = json_array_get(json_object_get(j, "rates"), 1);
    assert_true(json_is_null(json_object_get(r2, "b")));
    json_decref(j);
    free(out);

    /* a requirement change, in JSON as in text */
    out = diff_as(BASE, BASE "tool pub2 all=posts:read\n", 1, &changed);
    j = json_of(out);
    assert_int_equal(changed, 1);
    json_decref(j);
    free(out);
}

static void test_grant_explain(void **state)
{
    (void)state;
    pol_compiled *p = load_default();
    capture c;
    char *buf;
    assert_int_equal(pol_grant_explain_write(p, POL_ROLE_EDITOR, 0, POL_CLASS_DYNAMIC,
                                             mask_of("posts:read posts:delete campaigns:delete"), 0,
                                             capture_open(&c)),
                     PL_OK);
    buf = capture_close(&c);
    has_line(buf, "scope posts:read grantable");
    has_line(buf, "scope posts:delete denied class:f-dynamic-no-delete");
    has_line(buf, "scope campaigns:delete denied role:editor class:f-dynamic-no-delete");
    has_line(buf, "grantable  posts:read");
    free(buf);

    uint32_t w;
    pol_workspace_index(p, "demo-readonly", 13, &w, NULL);
    assert_int_equal(pol_grant_explain_write(p, POL_ROLE_OWNER, w, POL_CLASS_CIMD,
                                             mask_of("posts:create analytics:x:read"), 1,
                                             capture_open(&c)),
                     PL_OK);
    buf = capture_close(&c);
    json_t *j = json_of(buf);
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
    capture c;
    char *buf;
    assert_int_equal(pol_summary_write(p, "default.policy", capture_open(&c)), PL_OK);
    buf = capture_close(&c);
    has_line(buf, "policy default.policy");
    assert_non_null(strstr(buf, "31 registered, 5 destructive, 31 required by a tool"));
    free(buf);
    pol_compiled_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_labels),
        cmocka_unit_test(test_explain),
        cmocka_unit_test(test_whocan),
        cmocka_unit_test(test_expectation_file),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_grant_explain),
        cmocka_unit_test(test_expectation_policy_line),
        cmocka_unit_test(test_expectation_errors),
        cmocka_unit_test(test_diff_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
