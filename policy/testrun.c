/*
 * policy/testrun.c — expectation files for `postly-policy test` (docs/policy.md
 * "Expectation files"). One statement per line:
 *
 *   policy PATH        the policy the cases are about (relative to this file's folder)
 *   expect VERDICT tool=NAME [workspace=ID|*] [class=CLASS] [scopes=LIST] [help=LIST] [rule=ID]
 *   grant ROLE [workspace=ID|*] [class=CLASS] request=LIST expect=LIST
 *
 * LIST is comma-separated scope names, bundle:ID, `*` or `none`. A malformed line is a fatal
 * diagnostic with its line and column; a case that does not hold is a failure, not an error.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define CASE_LINE_MAX 4096
#define CASE_FIELDS   16
#define CASE_PATH_MAX 4096

typedef struct field {
    char *k, *v;   /* v NULL for a bare word */
    uint32_t col;  /* 1-based column of k */
    uint32_t vcol; /* 1-based column of v */
} field;

/* What each statement accepts: its keys (NULL-terminated) and which are required. */
typedef struct stmt_keys {
    const char *kw;
    const char *keys[8];
    const char *required[3];
} stmt_keys;

static const stmt_keys stmt_table[] = {
    {"policy", {NULL}, {NULL}},
    {"expect", {"tool", "workspace", "class", "scopes", "help", "rule", NULL}, {"tool", NULL}},
    {"grant", {"workspace", "class", "request", "expect", NULL}, {"request", "expect", NULL}},
};

static const char *const verdicts[] = {"ALLOW", "DENY_SCOPE", "DENY_POLICY", "NEEDS_APPROVAL"};

/* The state of one run. */
typedef struct run {
    const pol_compiled *p; /* the policy the cases run against */
    pol_compiled *owned;   /* loaded from a `policy` line; freed at the end */
    const char *path;      /* the cases file */
    char policy_path[CASE_PATH_MAX];
    pol_diags *d;
    FILE *out; /* text: FAIL lines; JSON: the failures array */
    int json;
    uint32_t ln;
    pl_rc rc; /* why the run stopped: PL_ERR_PARSE for the cases file, else the load's */
    size_t passed, failed;
    int seen_case, seen_policy;
} run;

/* A fatal diagnostic at column `col` of the current line; returns -1. */
static int bad_line(run *r, uint32_t col, pol_diag_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad_line(run *r, uint32_t col, pol_diag_code code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pol_diag_add(r->d, POL_SEV_FATAL, code, r->ln, col, "%s", msg);
    r->rc = PL_ERR_PARSE;
    return -1;
}

static int split(run *r, char *line, field *f, size_t *n)
{
    size_t k = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            break;
        if (k == CASE_FIELDS)
            return bad_line(r, (uint32_t)(s - line) + 1, POL_D_SYNTAX, "too many fields (limit %d)",
                            CASE_FIELDS);
        f[k].k = s;
        f[k].v = NULL;
        f[k].col = (uint32_t)(s - line) + 1;
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '=' && !f[k].v) {
                *s = '\0';
                f[k].v = s + 1;
                f[k].vcol = (uint32_t)(s - line) + 2;
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

static const field *get(const field *f, size_t n, const char *key)
{
    for (size_t i = 1; i < n; i++)
        if (f[i].v && strcmp(f[i].k, key) == 0)
            return &f[i];
    return NULL;
}

static const char *val(const field *f, size_t n, const char *key)
{
    const field *x = get(f, n, key);
    return x ? x->v : NULL;
}

/* Every key known to the statement, none twice, the required ones present; exactly
 * `words` bare words after the keyword. */
static int check_fields(run *r, const stmt_keys *st, const field *f, size_t n, size_t words,
                        const char *what)
{
    size_t got = 0;
    for (size_t i = 1; i < n; i++) {
        if (!f[i].v) {
            if (got++ == words)
                return bad_line(r, f[i].col, POL_D_SYNTAX, "unexpected word '%.64s'", f[i].k);
            continue;
        }
        size_t k = 0;
        while (st->keys[k] && strcmp(st->keys[k], f[i].k) != 0)
            k++;
        if (!st->keys[k])
            return bad_line(r, f[i].col, POL_D_SYNTAX, "unknown key '%.64s' for '%s'", f[i].k,
                            st->kw);
        if (get(f, n, f[i].k) != &f[i])
            return bad_line(r, f[i].col, POL_D_SYNTAX, "key '%.64s' given twice", f[i].k);
    }
    if (got < words)
        return bad_line(r, f[0].col, POL_D_SYNTAX, "'%s' needs %s", st->kw, what);
    for (size_t k = 0; st->required[k]; k++)
        if (!get(f, n, st->required[k]))
            return bad_line(r, f[0].col, POL_D_SYNTAX, "'%s' needs %s=", st->kw, st->required[k]);
    return 0;
}

/* A comma-separated LIST; on an unknown item, a diagnostic at its column. */
static int list_mask(run *r, const field *fl, uint64_t *mask)
{
    uint64_t m = 0;
    const char *s = fl->v;
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
            return bad_line(r, fl->vcol + (uint32_t)(s - fl->v), POL_D_UNKNOWN_NAME,
                            "unknown scope or bundle '%.*s' in %s=", (int)(n < 64 ? n : 64), s,
                            fl->k);
        s += n;
        if (*s == ',')
            s++;
    }
    *mask = m;
    return 0;
}

static const char *rname(const pol_compiled *p, uint32_t rule)
{
    return rule == POL_RULE_NONE ? "-" : p->rules[rule].id;
}

static int context(run *r, const field *f, size_t n, uint32_t *ws, pol_class *cls)
{
    const char *w = val(f, n, "workspace");
    const field *c = get(f, n, "class");
    *ws = 0;
    *cls = POL_CLASS_FIRST_PARTY;
    if (w && strcmp(w, "*") != 0)
        pol_workspace_index(r->p, w, strlen(w), ws, NULL);
    if (c && pol_class_lookup(c->v, strlen(c->v), cls) != PL_OK)
        return bad_line(r, c->vcol, POL_D_UNKNOWN_NAME,
                        "unknown class '%.64s' (first_party, preregistered, cimd, dynamic)", c->v);
    return 0;
}

/* Opens a failure: "FAIL FILE:LINE:" in text, the start of one object in JSON. */
static void fail_begin(run *r, const char *kind)
{
    if (r->json) {
        fprintf(r->out, "%s{\"line\":%u,\"kind\":\"%s\",", r->failed ? "," : "", r->ln, kind);
    } else {
        fprintf(r->out, "FAIL %s:%u:", r->path, r->ln);
    }
    r->failed++;
}

/* {"verdict":V,"help":[…]|null,"rule":ID|null} */
static void verdict_json(FILE *out, const char *verdict, const uint64_t *help, const char *rule)
{
    fprintf(out, "{\"verdict\":\"%s\",\"help\":", verdict);
    if (help)
        pol_mask_print_json(out, *help);
    else
        pol_json_string(out, NULL);
    fputs(",\"rule\":", out);
    pol_json_string(out, rule);
    fputc('}', out);
}

static int run_grant(run *r, const field *f, size_t n, uint32_t ws, pol_class cls)
{
    pol_role role;
    uint64_t req, want;
    pol_grant g;
    if (pol_role_lookup(f[1].k, strlen(f[1].k), &role) != PL_OK)
        return bad_line(r, f[1].col, POL_D_UNKNOWN_NAME,
                        "unknown role '%.64s' (owner, admin, editor, viewer)", f[1].k);
    if (list_mask(r, get(f, n, "request"), &req) < 0 ||
        list_mask(r, get(f, n, "expect"), &want) < 0)
        return -1;
    pol_grantable(r->p, role, ws, (uint32_t)cls, req, &g);
    if (g.grantable == want) {
        r->passed++;
        return 0;
    }
    fail_begin(r, "grant");
    if (r->json) {
        fputs("\"expected\":{\"grantable\":", r->out);
        pol_mask_print_json(r->out, want);
        fputs("},\"got\":{\"grantable\":", r->out);
        pol_mask_print_json(r->out, g.grantable);
        fputs("}}", r->out);
        return 0;
    }
    fputs(" grantable expected ", r->out);
    pol_mask_print(r->out, want);
    fputs(" got ", r->out);
    pol_mask_print(r->out, g.grantable);
    fputc('\n', r->out);
    return 0;
}

static int run_expect(run *r, const field *f, size_t n, uint32_t ws, pol_class cls)
{
    size_t vi = 0;
    while (vi < 4 && strcmp(f[1].k, verdicts[vi]) != 0)
        vi++;
    if (vi == 4)
        return bad_line(r, f[1].col, POL_D_SYNTAX,
                        "verdict must be ALLOW, DENY_SCOPE, DENY_POLICY or NEEDS_APPROVAL, not "
                        "'%.64s'",
                        f[1].k);
    const field *tool = get(f, n, "tool"), *sc = get(f, n, "scopes"), *help = get(f, n, "help");
    const char *rule = val(f, n, "rule");
    uint32_t ti;
    uint64_t token = 0, want_help = 0;
    if (pol_tool_index(r->p, tool->v, strlen(tool->v), &ti) != PL_OK)
        return bad_line(r, tool->vcol, POL_D_UNKNOWN_NAME, "no tool '%.64s' in the policy",
                        tool->v);
    if ((sc && list_mask(r, sc, &token) < 0) || (help && list_mask(r, help, &want_help) < 0))
        return -1;
    pol_decision d;
    pol_decide(r->p, token, ws, (uint32_t)cls, ti, &d);
    if (d.verdict == (pol_verdict)vi && (!help || d.help == want_help) &&
        (!rule || strcmp(rule, rname(r->p, d.rule)) == 0)) {
        r->passed++;
        return 0;
    }
    fail_begin(r, "expect");
    if (r->json) {
        fprintf(r->out, "\"tool\":");
        pol_json_string(r->out, tool->v);
        fputs(",\"expected\":", r->out);
        verdict_json(r->out, verdicts[vi], help ? &want_help : NULL, rule);
        fputs(",\"got\":", r->out);
        verdict_json(r->out, pol_verdict_name(d.verdict), &d.help,
                     d.rule == POL_RULE_NONE ? NULL : r->p->rules[d.rule].id);
        fputc('}', r->out);
        return 0;
    }
    fprintf(r->out, " expected %s", verdicts[vi]);
    if (help) {
        fputs(" help=", r->out);
        pol_mask_print(r->out, want_help);
    }
    if (rule)
        fprintf(r->out, " rule=%s", rule);
    fprintf(r->out, " got %s help=", pol_verdict_name(d.verdict));
    pol_mask_print(r->out, d.help);
    fprintf(r->out, " rule=%s\n", rname(r->p, d.rule));
    return 0;
}

/* `policy PATH`: resolved against the cases file's folder; loaded strictly unless the caller
 * gave a policy (which then takes precedence). */
static int run_policy(run *r, const field *f)
{
    const char *slash = strrchr(r->path, '/');
    int dl = slash ? (int)(slash - r->path) : 0;
    int len;
    if (r->seen_policy)
        return bad_line(r, f[0].col, POL_D_DUPLICATE, "a second 'policy' line");
    if (r->seen_case)
        return bad_line(r, f[0].col, POL_D_SYNTAX, "'policy' must come before the first case");
    r->seen_policy = 1;
    if (f[1].k[0] == '/' || !slash)
        len = snprintf(r->policy_path, sizeof r->policy_path, "%s", f[1].k);
    else
        len = snprintf(r->policy_path, sizeof r->policy_path, "%.*s/%s", dl, r->path, f[1].k);
    if (len < 0 || (size_t)len >= sizeof r->policy_path)
        return bad_line(r, f[1].col, POL_D_TOO_LARGE, "policy path longer than %d bytes",
                        CASE_PATH_MAX - 1);
    if (r->p)
        return 0;
    r->rc = pol_load_file(r->policy_path, 0, r->d, &r->owned);
    if (r->rc != PL_OK)
        return -1; /* r->d holds the policy's own diagnostics (file = the policy) */
    snprintf(r->d->file, sizeof r->d->file, "%s", r->path); /* later lines: the cases file */
    r->p = r->owned;
    return 0;
}

static int run_line(run *r, field *f, size_t n)
{
    size_t st = 0, count = sizeof stmt_table / sizeof stmt_table[0];
    while (st < count && (f[0].v || strcmp(f[0].k, stmt_table[st].kw) != 0))
        st++;
    if (st == count)
        return bad_line(r, f[0].col, POL_D_SYNTAX,
                        "a line starts with 'policy PATH', 'expect VERDICT' or 'grant ROLE'");
    static const char *const words[] = {"a PATH", "a VERDICT", "a ROLE"};
    if (check_fields(r, &stmt_table[st], f, n, 1, words[st]) < 0)
        return -1;
    if (st == 0)
        return run_policy(r, f);
    r->seen_case = 1;
    if (!r->p)
        return bad_line(r, f[0].col, POL_D_SYNTAX,
                        "no policy: put 'policy PATH' before the first case (or pass POLICY)");
    uint32_t ws;
    pol_class cls;
    if (context(r, f, n, &ws, &cls) < 0)
        return -1;
    return st == 1 ? run_expect(r, f, n, ws, cls) : run_grant(r, f, n, ws, cls);
}

/* Reads one line into buf (NUL-terminated, without its newline or CR); at most
 * CASE_LINE_MAX bytes are ever held. 1: a line, 0: end of file, -1: a fatal diagnostic (too
 * long, a control byte or NUL). */
static int read_line(run *r, FILE *f, char *buf)
{
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (len == CASE_LINE_MAX) {
            r->ln++;
            return bad_line(r, CASE_LINE_MAX + 1, POL_D_LINE_TOO_LONG, "line longer than %d bytes",
                            CASE_LINE_MAX);
        }
        buf[len++] = (char)c;
    }
    if (c == EOF && len == 0)
        return 0;
    r->ln++;
    if (len && buf[len - 1] == '\r')
        len--;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') || buf[i] == 0x7f)
            return bad_line(r, (uint32_t)i + 1, POL_D_BAD_BYTE,
                            "invalid byte 0x%02x (a cases file is text)", (unsigned char)buf[i]);
    buf[len] = '\0';
    return 1;
}

static void summary(const run *r, const char *failures, size_t flen)
{
    if (!r->json) {
        fprintf(r->out, "%zu passed, %zu failed\n", r->passed, r->failed);
        return;
    }
    fputs("{\"cases\":", r->out);
    pol_json_string(r->out, r->path);
    fputs(",\"policy\":", r->out);
    pol_json_string(r->out, r->owned ? r->policy_path : NULL); /* null: the caller's */
    fprintf(r->out, ",\"passed\":%zu,\"failed\":%zu,\"failures\":[", r->passed, r->failed);
    fwrite(failures, 1, flen, r->out);
    fputs("]}\n", r->out);
}

pl_rc pol_test_run(const pol_compiled *p, const char *cases_path, int json, FILE *out, pol_diags *d,
                   size_t *passed, size_t *failed)
{
    pl_rc rc = PL_OK;
    char line[CASE_LINE_MAX + 1];
    FILE *f = NULL;
    char *jbuf = NULL;
    size_t jlen = 0;
    run r = {.p = p, .path = cases_path, .d = d, .out = out, .json = json};
    if (!cases_path || !out || !d || !passed || !failed)
        return PL_ERR_INVALID;
    *passed = *failed = 0;
    snprintf(d->file, sizeof d->file, "%s", cases_path);
    if (!(f = fopen(cases_path, "r"))) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_IO, 0, 0, "cannot open the cases file");
        return PL_ERR_IO;
    }
    /* JSON: failures are collected first so that stdout is one complete object or nothing */
    if (json && !(r.out = open_memstream(&jbuf, &jlen))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        field fl[CASE_FIELDS];
        size_t n = 0;
        int got = read_line(&r, f, line);
        if (got == 0)
            break;
        if (got < 0 || split(&r, line, fl, &n) < 0 || (n && run_line(&r, fl, n) < 0)) {
            rc = r.rc;
            goto out;
        }
    }
    if (ferror(f)) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_IO, 0, 0, "read error");
        rc = PL_ERR_IO;
        goto out;
    }
    if (!r.p) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_SYNTAX, 0, 0,
                     "no 'policy PATH' line and no policy given");
        rc = PL_ERR_PARSE;
        goto out;
    }
    *passed = r.passed;
    *failed = r.failed;
    if (json) {
        fclose(r.out);
        r.out = out;
        summary(&r, jbuf, jlen);
    } else {
        summary(&r, NULL, 0);
    }
out:
    if (r.out && r.out != out)
        fclose(r.out);
    free(jbuf);
    pol_compiled_free(r.owned);
    fclose(f);
    return rc;
}
