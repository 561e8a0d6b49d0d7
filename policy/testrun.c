/*
 * policy/testrun.c — expectation files for `postly-policy test` (docs/policy.md
 * "Expectation files"). One case per line:
 *
 *   expect VERDICT tool=NAME [workspace=ID|*] [class=CLASS] [scopes=LIST] [help=LIST] [rule=ID]
 *   grant ROLE [workspace=ID|*] [class=CLASS] request=LIST expect=LIST
 *
 * LIST is comma-separated scope names, bundle:ID, `*` or `none`.
 */
#include <string.h>

#include "policy/policy_int.h"

#define CASE_LINE_MAX 4096
#define CASE_FIELDS   16

typedef struct field {
    char *k, *v; /* v NULL for a bare word */
} field;

static int split(char *line, field *f, size_t *n)
{
    size_t k = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            break;
        if (k == CASE_FIELDS)
            return -1;
        f[k].k = s;
        f[k].v = NULL;
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '=' && !f[k].v) {
                *s = '\0';
                f[k].v = s + 1;
            }
            s++;
        }
        if (*s)
            *s++ = '\0';
        k++;
    }
    *n = k;
    return 0;
}

static const char *get(field *f, size_t n, const char *key)
{
    for (size_t i = 1; i < n; i++)
        if (f[i].v && strcmp(f[i].k, key) == 0)
            return f[i].v;
    return NULL;
}

static int list_mask(const char *s, uint64_t *mask)
{
    uint64_t m = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        unsigned bit;
        const pol_bundle_info *b;
        if (n == 1 && *s == '*')
            m |= POL_MASK_ALL;
        else if (n == 4 && memcmp(s, "none", 4) == 0)
            ;
        else if (n > 7 && memcmp(s, "bundle:", 7) == 0 &&
                 pol_bundle_lookup(s + 7, n - 7, &b) == PL_OK)
            m |= b->mask;
        else if (pol_scope_lookup(s, n, &bit) == PL_OK)
            m |= POL_MASK(bit);
        else
            return -1;
        s += n;
        if (*s == ',')
            s++;
    }
    *mask = m;
    return 0;
}

static const char *rname(const pol_compiled *p, uint32_t r)
{
    return r == POL_RULE_NONE ? "-" : p->rules[r].id;
}

static int ctx(const pol_compiled *p, field *f, size_t n, uint32_t *ws, pol_class *cls)
{
    const char *w = get(f, n, "workspace"), *c = get(f, n, "class");
    *ws = 0;
    *cls = POL_CLASS_FIRST_PARTY;
    if (w && strcmp(w, "*") != 0)
        pol_workspace_index(p, w, strlen(w), ws, NULL);
    if (c && pol_class_lookup(c, strlen(c), cls) != PL_OK)
        return -1;
    return 0;
}

static void fail(FILE *out, const char *path, uint32_t ln, size_t *failed)
{
    fprintf(out, "FAIL %s:%u:", path, ln);
    (*failed)++;
}

/* Returns 0 when the line was understood (pass or fail), -1 when it is malformed. */
static int run_line(const pol_compiled *p, const char *path, uint32_t ln, field *f, size_t n,
                    FILE *out, size_t *passed, size_t *failed, const char **why)
{
    uint32_t ws;
    pol_class cls;
    if (ctx(p, f, n, &ws, &cls) < 0) {
        *why = "unknown class";
        return -1;
    }
    if (strcmp(f[0].k, "grant") == 0) {
        pol_role role;
        const char *rq = get(f, n, "request"), *ex = get(f, n, "expect");
        uint64_t req, want;
        pol_grant g;
        if (n < 2 || f[1].v || pol_role_lookup(f[1].k, strlen(f[1].k), &role) != PL_OK) {
            *why = "grant needs a role (owner, admin, editor, viewer)";
            return -1;
        }
        if (!rq || !ex || list_mask(rq, &req) < 0 || list_mask(ex, &want) < 0) {
            *why = "grant needs request=LIST and expect=LIST of known scopes";
            return -1;
        }
        pol_grantable(p, role, ws, cls, req, &g);
        if (g.grantable == want) {
            (*passed)++;
            return 0;
        }
        fail(out, path, ln, failed);
        fputs(" grantable expected ", out);
        pol_mask_print(out, want);
        fputs(" got ", out);
        pol_mask_print(out, g.grantable);
        fputc('\n', out);
        return 0;
    }
    if (strcmp(f[0].k, "expect") != 0 || n < 2 || f[1].v) {
        *why = "a case starts with 'expect VERDICT' or 'grant ROLE'";
        return -1;
    }
    pol_verdict want_v;
    static const char *const verdicts[] = {"ALLOW", "DENY_SCOPE", "DENY_POLICY", "NEEDS_APPROVAL"};
    size_t vi;
    for (vi = 0; vi < 4; vi++)
        if (strcmp(f[1].k, verdicts[vi]) == 0)
            break;
    if (vi == 4) {
        *why = "verdict must be ALLOW, DENY_SCOPE, DENY_POLICY or NEEDS_APPROVAL";
        return -1;
    }
    want_v = (pol_verdict)vi;
    const char *tool = get(f, n, "tool"), *sc = get(f, n, "scopes"), *help = get(f, n, "help"),
               *rule = get(f, n, "rule");
    uint32_t ti;
    uint64_t token = 0, want_help = 0;
    if (!tool || pol_tool_index(p, tool, strlen(tool), &ti) != PL_OK) {
        *why = "tool= missing or not in the policy";
        return -1;
    }
    if ((sc && list_mask(sc, &token) < 0) || (help && list_mask(help, &want_help) < 0)) {
        *why = "unknown scope in a list";
        return -1;
    }
    pol_decision d;
    pol_decide(p, token, ws, (uint32_t)cls, ti, &d);
    int ok = d.verdict == want_v && (!help || d.help == want_help) &&
             (!rule || strcmp(rule, rname(p, d.rule)) == 0);
    if (ok) {
        (*passed)++;
        return 0;
    }
    fail(out, path, ln, failed);
    fprintf(out, " expected %s", verdicts[want_v]);
    if (help) {
        fputs(" help=", out);
        pol_mask_print(out, want_help);
    }
    if (rule)
        fprintf(out, " rule=%s", rule);
    fprintf(out, " got %s help=", pol_verdict_name(d.verdict));
    pol_mask_print(out, d.help);
    fprintf(out, " rule=%s\n", rname(p, d.rule));
    return 0;
}

pl_rc pol_test_run(const pol_compiled *p, const char *cases_path, FILE *out, pol_diags *d,
                   size_t *passed, size_t *failed)
{
    pl_rc rc = PL_OK;
    char line[CASE_LINE_MAX + 2];
    uint32_t ln = 0;
    FILE *f = NULL;
    if (!p || !cases_path || !out || !d || !passed || !failed)
        return PL_ERR_INVALID;
    *passed = *failed = 0;
    snprintf(d->file, sizeof d->file, "%s", cases_path);
    if (!(f = fopen(cases_path, "r"))) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_IO, 0, 0, "cannot open the cases file");
        return PL_ERR_IO;
    }
    while (fgets(line, sizeof line, f)) {
        field fl[CASE_FIELDS];
        size_t n = 0;
        const char *why = NULL;
        size_t len = strlen(line);
        ln++;
        if (len > CASE_LINE_MAX) {
            pol_diag_add(d, POL_SEV_FATAL, POL_D_LINE_TOO_LONG, ln, CASE_LINE_MAX + 1,
                         "line longer than %d bytes", CASE_LINE_MAX);
            rc = PL_ERR_PARSE;
            goto out;
        }
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (split(line, fl, &n) < 0) {
            pol_diag_add(d, POL_SEV_FATAL, POL_D_SYNTAX, ln, 1, "malformed case line");
            rc = PL_ERR_PARSE;
            goto out;
        }
        if (n == 0)
            continue;
        if (run_line(p, cases_path, ln, fl, n, out, passed, failed, &why) < 0) {
            pol_diag_add(d, POL_SEV_FATAL, POL_D_SYNTAX, ln, 1, "%s", why);
            rc = PL_ERR_PARSE;
            goto out;
        }
    }
    if (ferror(f)) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_IO, 0, 0, "read error");
        rc = PL_ERR_IO;
        goto out;
    }
    fprintf(out, "%zu passed, %zu failed\n", *passed, *failed);
out:
    fclose(f);
    return rc;
}
