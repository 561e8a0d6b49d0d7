/*
 * policy/parse.c — the policy language reader (docs/policy.md "Grammar").
 *
 * Input is read through a fixed line buffer of POL_LINE_MAX bytes: a longer line is a fatal
 * error as soon as its POL_LINE_MAX+1st byte arrives, so a 100 MB line costs 4 KiB of memory.
 * Syntax errors are fatal (the first one stops the parse); unknown names and duplicates are
 * errors that let the parse continue so that `check` can report all of them.
 * compile.c turns the parsed rows into the decision tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define MAX_TOKS 64

typedef struct tok {
    const char *k, *v;
    size_t kl, vl;
    uint32_t col, vcol;
    int eq, used;
} tok;

typedef struct parser {
    pol_compiled *p;
    pol_diags *d;
    uint32_t line;
    pl_rc fatal; /* PL_OK until a fatal diagnostic */
    char buf[POL_LINE_MAX + 1];
    size_t len;
    size_t total;
    uint32_t scope_bit_line[64];
    uint8_t role_seen_line_set;
} parser;

/* compile.c */
pl_rc pol_compile_finish(pol_compiled *p, pol_diags *d);

static int fatal(parser *ps, pl_rc rc, pol_diag_code code, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* A fatal diagnostic; names from the input are clipped (CLIP) and control bytes replaced. */
static int fatal(parser *ps, pl_rc rc, pol_diag_code code, uint32_t col, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    pol_diag_add(ps->d, POL_SEV_FATAL, code, ps->line, col, "%s", msg);
    if (ps->fatal == PL_OK)
        ps->fatal = rc;
    return -1;
}

#define CLIP(n)                     ((int)((n) < 64 ? (n) : 64))
#define SYNTAX(ps, col, fmt, a, al) fatal(ps, PL_ERR_PARSE, POL_D_SYNTAX, col, fmt, CLIP(al), (a))

static int nomem(parser *ps)
{
    pol_diag_add(ps->d, POL_SEV_FATAL, POL_D_TOO_LARGE, ps->line, 0, "out of memory");
    if (ps->fatal == PL_OK)
        ps->fatal = PL_ERR_NOMEM;
    return -1;
}

static char *dupn(parser *ps, const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (!r) {
        nomem(ps);
        return NULL;
    }
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

static int grow(parser *ps, void **v, uint32_t *cap, uint32_t n, size_t size, uint32_t max,
                const char *what)
{
    if (n < *cap)
        return 0;
    if (n >= max)
        return fatal(ps, PL_ERR_TOO_LARGE, POL_D_TOO_LARGE, 1, "more than %u %s in one file", max,
                     what);
    uint32_t nc = *cap ? *cap * 2 : 64;
    if (nc > max)
        nc = max;
    void *nv = realloc(*v, (size_t)nc * size);
    if (!nv)
        return nomem(ps);
    memset((char *)nv + (size_t)*cap * size, 0, (size_t)(nc - *cap) * size);
    *v = nv;
    *cap = nc;
    return 0;
}

/* ---- character classes ---- */

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

static int ws_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '@';
}

static int tool_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':' || c == '/' || c == '{' || c == '}' || c == '#';
}

static int check_name(parser *ps, const char *s, size_t n, uint32_t col, size_t max,
                      int (*ok)(char), const char *what)
{
    if (n == 0 || n > max)
        return fatal(ps, PL_ERR_PARSE, POL_D_SYNTAX, col, "%s must be 1 to %zu bytes long", what,
                     max);
    for (size_t i = 0; i < n; i++)
        if (!ok(s[i]))
            return SYNTAX(ps, col + (uint32_t)i, "invalid character in name '%.*s'", s, n);
    if (ok == id_char && !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return SYNTAX(ps, col, "id '%.*s' must start with a lower-case letter or digit", s, n);
    return 0;
}

static int teq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* ---- tokens ---- */

static int tokenize(parser *ps, const char *l, size_t len, tok *t, size_t *nt)
{
    size_t i = 0, n = 0;
    for (;;) {
        while (i < len && (l[i] == ' ' || l[i] == '\t'))
            i++;
        if (i == len || l[i] == '#')
            break;
        if (n == MAX_TOKS)
            return SYNTAX(ps, (uint32_t)i + 1, "too many fields on one line (limit 64)%.*s", "", 0);
        tok *k = &t[n];
        memset(k, 0, sizeof *k);
        k->col = (uint32_t)i + 1;
        k->k = l + i;
        while (i < len && l[i] != ' ' && l[i] != '\t' && l[i] != '=' && l[i] != '"') {
            if ((unsigned char)l[i] >= 0x7f)
                return SYNTAX(ps, (uint32_t)i + 1, "non-ASCII byte outside a quoted string%.*s", "",
                              0);
            i++;
        }
        k->kl = (size_t)(l + i - k->k);
        if (i < len && l[i] == '"')
            return SYNTAX(ps, (uint32_t)i + 1,
                          "unexpected '\"' (quoted strings are values: key=\"...\")%.*s", "", 0);
        if (i < len && l[i] == '=') {
            if (k->kl == 0)
                return SYNTAX(ps, k->col, "'=' without a key%.*s", "", 0);
            k->eq = 1;
            i++;
            k->vcol = (uint32_t)i + 1;
            if (i < len && l[i] == '"') {
                i++;
                k->v = l + i;
                while (i < len && l[i] != '"')
                    i++;
                if (i == len)
                    return SYNTAX(ps, k->vcol, "unterminated quoted string%.*s", "", 0);
                k->vl = (size_t)(l + i - k->v);
                i++;
                if (i < len && l[i] != ' ' && l[i] != '\t')
                    return SYNTAX(ps, (uint32_t)i + 1,
                                  "expected a space after the closing quote%.*s", "", 0);
            } else {
                k->v = l + i;
                while (i < len && l[i] != ' ' && l[i] != '\t') {
                    if (l[i] == '"' || l[i] == '=' || (unsigned char)l[i] >= 0x7f)
                        return SYNTAX(ps, (uint32_t)i + 1,
                                      "unexpected character in value of '%.*s'", k->k, k->kl);
                    i++;
                }
                k->vl = (size_t)(l + i - k->v);
                if (k->vl == 0)
                    return SYNTAX(ps, k->vcol, "missing value after '%.*s='", k->k, k->kl);
            }
            for (size_t j = 0; j < n; j++)
                if (t[j].eq && t[j].kl == k->kl && memcmp(t[j].k, k->k, k->kl) == 0)
                    return SYNTAX(ps, k->col, "key '%.*s' given twice", k->k, k->kl);
        }
        n++;
    }
    *nt = n;
    return 0;
}

static tok *key(tok *t, size_t n, const char *name)
{
    for (size_t i = 1; i < n; i++) {
        if (t[i].eq && teq(t[i].k, t[i].kl, name)) {
            t[i].used = 1;
            return &t[i];
        }
    }
    return NULL;
}

static tok *need(parser *ps, tok *t, size_t n, const char *name)
{
    tok *k = key(t, n, name);
    if (!k) {
        char msg[64];
        int l = snprintf(msg, sizeof msg, "%.*s: missing %s=", (int)t[0].kl, t[0].k, name);
        SYNTAX(ps, t[0].col, "%.*s", msg, (size_t)l);
    }
    return k;
}

/* Positional (bare) tokens after the keyword: exactly `want` of them, plus an optional set of
 * flag words the caller handles (flags). Returns -1 (fatal) on a mismatch. */
static int positionals(parser *ps, tok *t, size_t n, size_t want, const char *what)
{
    size_t got = 0;
    for (size_t i = 1; i < n; i++) {
        if (t[i].eq)
            continue;
        if (got == want)
            return SYNTAX(ps, t[i].col, "unexpected word '%.*s'", t[i].k, t[i].kl);
        got++;
        t[i].used = 1;
    }
    if (got < want)
        return SYNTAX(ps, t[0].col, "missing %.*s", what, strlen(what));
    return 0;
}

static tok *pos(tok *t, size_t n, size_t which)
{
    for (size_t i = 1; i < n; i++)
        if (!t[i].eq && which-- == 0)
            return &t[i];
    return NULL;
}

static int unused_keys(parser *ps, tok *t, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (!t[i].used)
            return SYNTAX(ps, t[i].col, "unknown key '%.*s' for this statement", t[i].k, t[i].kl);
    return 0;
}

/* ---- value lists ---- */

/* Calls fn for each comma-separated item of k's value; empty items are syntax errors. */
static int each_item(parser *ps, const tok *k,
                     int (*fn)(parser *, const char *, size_t, uint32_t, void *), void *arg)
{
    size_t i = 0;
    while (i <= k->vl) {
        size_t s = i;
        while (i < k->vl && k->v[i] != ',')
            i++;
        if (i == s)
            return SYNTAX(ps, k->vcol + (uint32_t)s, "empty item in list '%.*s'", k->k, k->kl);
        if (fn(ps, k->v + s, i - s, k->vcol + (uint32_t)s, arg) < 0)
            return -1;
        i++;
    }
    return 0;
}

typedef struct scope_acc {
    uint64_t mask;
    int bad;
} scope_acc;

static int scope_item(parser *ps, const char *s, size_t n, uint32_t col, void *arg)
{
    scope_acc *a = arg;
    unsigned bit;
    const pol_bundle_info *b;
    if (teq(s, n, "*")) {
        a->mask |= POL_MASK_ALL;
    } else if (teq(s, n, "none")) {
        /* explicitly nothing */
    } else if (n > 7 && memcmp(s, "bundle:", 7) == 0) {
        if (pol_bundle_lookup(s + 7, n - 7, &b) == PL_OK) {
            a->mask |= b->mask;
        } else {
            pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, col,
                         "unknown bundle '%.*s' (bundle: names a recommended bundle)",
                         (int)(n - 7 < 64 ? n - 7 : 64), s + 7);
            a->bad = 1;
        }
    } else if (pol_scope_lookup(s, n, &bit) == PL_OK) {
        a->mask |= POL_MASK(bit);
    } else {
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                return SYNTAX(ps, col + (uint32_t)i, "invalid character in scope list%.*s", "", 0);
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, col,
                     "unknown scope '%.*s'", (int)(n < 64 ? n : 64), s);
        a->bad = 1;
    }
    return 0;
}

static int scopes_of(parser *ps, const tok *k, uint64_t *mask, int *bad)
{
    scope_acc a = {0, 0};
    if (each_item(ps, k, scope_item, &a) < 0)
        return -1;
    *mask = a.mask;
    if (a.bad && bad)
        *bad = 1;
    return 0;
}

static int class_item(parser *ps, const char *s, size_t n, uint32_t col, void *arg)
{
    scope_acc *a = arg;
    pol_class c;
    if (teq(s, n, "*"))
        a->mask |= ALL_CLASSES;
    else if (pol_class_lookup(s, n, &c) == PL_OK)
        a->mask |= 1u << c;
    else {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, col,
                     "unknown client class '%.*s' (first_party, preregistered, cimd, dynamic)",
                     (int)(n < 64 ? n : 64), s);
        a->bad = 1;
    }
    return 0;
}

static int role_item(parser *ps, const char *s, size_t n, uint32_t col, void *arg)
{
    scope_acc *a = arg;
    pol_role r;
    if (teq(s, n, "*"))
        a->mask |= ALL_ROLES;
    else if (pol_role_lookup(s, n, &r) == PL_OK)
        a->mask |= 1u << r;
    else {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, col,
                     "unknown role '%.*s' (owner, admin, editor, viewer)", (int)(n < 64 ? n : 64),
                     s);
        a->bad = 1;
    }
    return 0;
}

static int small_set(parser *ps, const tok *k,
                     int (*fn)(parser *, const char *, size_t, uint32_t, void *), uint8_t *out,
                     int *bad)
{
    scope_acc a = {0, 0};
    if (each_item(ps, k, fn, &a) < 0)
        return -1;
    *out = (uint8_t)a.mask;
    if (a.bad)
        *bad = 1;
    return 0;
}

/* A list of names a rule refers to (tools of approve/rate, bundles of a ceiling). */
typedef struct ref_kind {
    const char *what, *plural;
    size_t max_len;
    int (*ok)(char);
    uint32_t max; /* entries per rule */
} ref_kind;

static const ref_kind tool_ref = {"tool name", "tools", POL_NAME_MAX, tool_char, POL_TOOLS_MAX};
static const ref_kind bundle_ref = {"bundle id", "bundles", POL_ID_MAX, id_char, POL_BUNDLES_MAX};

/* Appends the name at s (n bytes, column col) to *v (*count entries). */
static int append_ref(parser *ps, const ref_kind *k, name_ref **v, uint32_t *count, const char *s,
                      size_t n, uint32_t col)
{
    if (check_name(ps, s, n, col, k->max_len, k->ok, k->what) < 0)
        return -1;
    if (*count >= k->max)
        return SYNTAX(ps, col, "too many %.*s in one rule", k->plural, strlen(k->plural));
    name_ref *nv = realloc(*v, (*count + 1) * sizeof *nv);
    if (!nv)
        return nomem(ps);
    *v = nv;
    nv[*count].line = ps->line;
    nv[*count].col = col;
    if (!(nv[*count].name = dupn(ps, s, n)))
        return -1;
    (*count)++;
    return 0;
}

static int tool_item(parser *ps, const char *s, size_t n, uint32_t col, void *arg)
{
    src_rule *r = arg;
    if (teq(s, n, "*")) {
        r->all_tools = 1;
        return 0;
    }
    return append_ref(ps, &tool_ref, &r->tools, &r->n_tools, s, n, col);
}

static int bundle_item(parser *ps, const char *s, size_t n, uint32_t col, void *arg)
{
    src_rule *r = arg;
    return append_ref(ps, &bundle_ref, &r->bnames, &r->n_bnames, s, n, col);
}

static int number(parser *ps, const char *s, size_t n, uint32_t col, uint32_t lo, uint32_t hi,
                  uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return SYNTAX(ps, col, "expected a number, got '%.*s'", s, n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SYNTAX(ps, col, "expected a number, got '%.*s'", s, n);
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return SYNTAX(ps, col, "number '%.*s' out of range", s, n);
    *out = (uint32_t)v;
    return 0;
}

/* ---- statements ---- */

static src_rule *new_rule(parser *ps, pol_rule_kind kind, const tok *idt)
{
    pol_compiled *p = ps->p;
    if (check_name(ps, idt->k, idt->kl, idt->col, POL_ID_MAX, id_char, "rule id") < 0)
        return NULL;
    if (grow(ps, (void **)&p->rules_src, &p->cap_rules_src, p->n_rules_src, sizeof(src_rule),
             POL_RULES_MAX, "rules") < 0)
        return NULL;
    src_rule *r = &p->rules_src[p->n_rules_src];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->line = ps->line;
    r->col = idt->col;
    r->index = POL_RULE_NONE;
    r->id = dupn(ps, idt->k, idt->kl);
    if (!r->id)
        return NULL;
    p->n_rules_src++;
    return r;
}

static int st_version(parser *ps, tok *t, size_t n)
{
    if (positionals(ps, t, n, 1, "version number") < 0 || unused_keys(ps, t, n) < 0)
        return -1;
    tok *v = pos(t, n, 0);
    if (!teq(v->k, v->kl, "1"))
        return SYNTAX(ps, v->col, "unsupported policy version '%.*s' (this reader knows 1)", v->k,
                      v->kl);
    if (ps->p->version_line)
        return SYNTAX(ps, t[0].col, "version given twice%.*s", "", 0);
    ps->p->version_line = ps->line;
    return 0;
}

static int st_scope(parser *ps, tok *t, size_t n)
{
    uint32_t bit;
    unsigned known;
    if (positionals(ps, t, n, 2, "bit and scope name") < 0 || unused_keys(ps, t, n) < 0)
        return -1;
    tok *b = pos(t, n, 0), *nm = pos(t, n, 1);
    if (number(ps, b->k, b->kl, b->col, 0, 63, &bit) < 0)
        return -1;
    if (ps->scope_bit_line[bit]) {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_REUSED_BIT, ps->line, b->col,
                     "bit %u already given to a scope at line %u", bit, ps->scope_bit_line[bit]);
        return 0;
    }
    ps->scope_bit_line[bit] = ps->line;
    if (pol_scope_lookup(nm->k, nm->kl, &known) == PL_OK) {
        if (known != bit)
            pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_MOVED_BIT, ps->line, b->col,
                         "scope '%.*s' is bit %u in the registry, not %u (a bit never moves)",
                         (int)nm->kl, nm->k, known, bit);
    } else if (bit < POL_SCOPE_COUNT) {
        const pol_scope_info *s;
        pol_scope_get(bit, &s);
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_REUSED_BIT, ps->line, b->col,
                     "bit %u belongs to '%s'; '%.*s' may not reuse it", bit, s->name,
                     (int)(nm->kl < 64 ? nm->kl : 64), nm->k);
    } else {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, nm->col,
                     "unknown scope '%.*s' (not in the registry)", (int)(nm->kl < 64 ? nm->kl : 64),
                     nm->k);
    }
    return 0;
}

static int st_bundle(parser *ps, tok *t, size_t n)
{
    pol_compiled *p = ps->p;
    int bad = 0;
    if (positionals(ps, t, n, 1, "bundle id") < 0)
        return -1;
    tok *idt = pos(t, n, 0), *sc = key(t, n, "scopes"), *ti = key(t, n, "title"),
        *of = key(t, n, "offer");
    if (unused_keys(ps, t, n) < 0 ||
        check_name(ps, idt->k, idt->kl, idt->col, POL_ID_MAX, id_char, "bundle id") < 0)
        return -1;
    if (grow(ps, (void **)&p->bundles, &p->cap_bundles, p->n_bundles, sizeof(bundle_src),
             POL_BUNDLES_MAX - POL_BUNDLE_COUNT, "bundle lines") < 0)
        return -1;
    bundle_src *b = &p->bundles[p->n_bundles];
    memset(b, 0, sizeof *b);
    b->line = ps->line;
    b->col = idt->col;
    b->builtin = -1;
    const pol_bundle_info *bi;
    for (unsigned i = 0; i < pol_bundle_count(); i++) {
        pol_bundle_get(i, &bi);
        if (teq(idt->k, idt->kl, bi->id))
            b->builtin = (int)i;
    }
    if (sc) {
        if (scopes_of(ps, sc, &b->mask, &bad) < 0)
            return -1;
        b->has_mask = 1;
    }
    if (of && small_set(ps, of, role_item, &b->offer, &bad) < 0)
        return -1;
    if (ti) {
        for (size_t i = 0; i < ti->vl; i++)
            if ((unsigned char)ti->v[i] < 0x20)
                return SYNTAX(ps, ti->vcol, "control character in title%.*s", "", 0);
        if (!(b->title = dupn(ps, ti->v, ti->vl)))
            return -1;
    }
    if (!(b->id = dupn(ps, idt->k, idt->kl)))
        return -1;
    p->n_bundles++;
    if (b->builtin < 0 && !sc) {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, idt->col,
                     "bundle '%s' is not a recommended bundle and has no scopes=", b->id);
        bad = 1;
    }
    if (bad)
        b->builtin = -2; /* ignored by the compiler */
    return 0;
}

static int st_role(parser *ps, tok *t, size_t n)
{
    pol_role r;
    int bad = 0;
    uint64_t m;
    if (positionals(ps, t, n, 1, "role name") < 0)
        return -1;
    tok *rt = pos(t, n, 0), *g = need(ps, t, n, "grant");
    if (!g || unused_keys(ps, t, n) < 0)
        return -1;
    if (scopes_of(ps, g, &m, &bad) < 0)
        return -1;
    if (pol_role_lookup(rt->k, rt->kl, &r) != PL_OK) {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, ps->line, rt->col,
                     "unknown role '%.*s' (owner, admin, editor, viewer)",
                     (int)(rt->kl < 64 ? rt->kl : 64), rt->k);
        return 0;
    }
    if (ps->p->role_declared & (1u << r)) {
        pol_diag_add(ps->d, POL_SEV_ERROR, POL_D_DUPLICATE, ps->line, rt->col,
                     "role '%s' already declared at line %u", pol_role_name(r),
                     ps->p->role_line[r]);
        return 0;
    }
    ps->p->role_declared |= (uint8_t)(1u << r);
    ps->p->role_line[r] = ps->line;
    ps->p->role_grant[r] = m;
    return 0;
}

static int st_ceiling(parser *ps, tok *t, size_t n)
{
    if (positionals(ps, t, n, 1, "rule id") < 0)
        return -1;
    tok *w = need(ps, t, n, "workspace");
    tok *sc = w ? need(ps, t, n, "scopes") : NULL;
    tok *bl = key(t, n, "bundles");
    if (!sc || unused_keys(ps, t, n) < 0)
        return -1;
    if (!teq(w->v, w->vl, "*") &&
        check_name(ps, w->v, w->vl, w->vcol, POL_NAME_MAX, ws_char, "workspace id") < 0)
        return -1;
    src_rule *r = new_rule(ps, POL_RULE_CEILING, pos(t, n, 0));
    if (!r)
        return -1;
    if (!(r->ws = dupn(ps, w->v, w->vl)))
        return -1;
    r->all_bundles = 1;
    if (bl && !teq(bl->v, bl->vl, "*")) {
        r->all_bundles = 0;
        if (!teq(bl->v, bl->vl, "none") && each_item(ps, bl, bundle_item, r) < 0)
            return -1;
    }
    return scopes_of(ps, sc, &r->mask, &r->bad);
}

static int st_forbid(parser *ps, tok *t, size_t n)
{
    if (positionals(ps, t, n, 1, "rule id") < 0)
        return -1;
    tok *c = need(ps, t, n, "class");
    tok *sc = c ? need(ps, t, n, "scopes") : NULL;
    if (!sc || unused_keys(ps, t, n) < 0)
        return -1;
    src_rule *r = new_rule(ps, POL_RULE_FORBID, pos(t, n, 0));
    if (!r || small_set(ps, c, class_item, &r->classes, &r->bad) < 0)
        return -1;
    return scopes_of(ps, sc, &r->mask, &r->bad);
}

static int tools_of(parser *ps, const tok *k, src_rule *r)
{
    return each_item(ps, k, tool_item, r);
}

static int st_approve(parser *ps, tok *t, size_t n)
{
    if (positionals(ps, t, n, 1, "rule id") < 0)
        return -1;
    tok *c = need(ps, t, n, "class");
    tok *tl = c ? need(ps, t, n, "tool") : NULL;
    if (!tl || unused_keys(ps, t, n) < 0)
        return -1;
    src_rule *r = new_rule(ps, POL_RULE_APPROVE, pos(t, n, 0));
    if (!r || small_set(ps, c, class_item, &r->classes, &r->bad) < 0)
        return -1;
    return tools_of(ps, tl, r);
}

static const struct {
    const char *unit;
    uint32_t seconds;
} units[] = {
    {"s", 1},       {"sec", 1},     {"second", 1},  {"min", 60},
    {"minute", 60}, {"hour", 3600}, {"day", 86400},
};

static int st_rate(parser *ps, tok *t, size_t n)
{
    if (positionals(ps, t, n, 1, "rule id") < 0)
        return -1;
    tok *c = need(ps, t, n, "class");
    tok *tl = c ? need(ps, t, n, "tool") : NULL;
    tok *lim = tl ? need(ps, t, n, "limit") : NULL;
    tok *bu = key(t, n, "burst"), *per = key(t, n, "per");
    if (!lim || unused_keys(ps, t, n) < 0)
        return -1;
    src_rule *r = new_rule(ps, POL_RULE_RATE, pos(t, n, 0));
    if (!r || small_set(ps, c, class_item, &r->classes, &r->bad) < 0 || tools_of(ps, tl, r) < 0)
        return -1;
    const char *slash = memchr(lim->v, '/', lim->vl);
    if (!slash)
        return SYNTAX(ps, lim->vcol, "limit '%.*s' must be N/unit (s, min, hour, day)", lim->v,
                      lim->vl);
    size_t nl = (size_t)(slash - lim->v);
    if (number(ps, lim->v, nl, lim->vcol, 1, 1000000000u, &r->limit) < 0)
        return -1;
    const char *u = slash + 1;
    size_t ul = lim->vl - nl - 1;
    r->period_s = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (teq(u, ul, units[i].unit))
            r->period_s = units[i].seconds;
    if (!r->period_s)
        return SYNTAX(ps, lim->vcol + (uint32_t)nl + 1,
                      "unknown time unit '%.*s' (s, min, hour, day)", u, ul);
    r->burst = r->limit;
    if (bu && number(ps, bu->v, bu->vl, bu->vcol, 1, 1000000000u, &r->burst) < 0)
        return -1;
    r->per = POL_PER_CLIENT;
    if (per) {
        if (teq(per->v, per->vl, "client"))
            r->per = POL_PER_CLIENT;
        else if (teq(per->v, per->vl, "user"))
            r->per = POL_PER_USER;
        else if (teq(per->v, per->vl, "workspace"))
            r->per = POL_PER_WORKSPACE;
        else
            return SYNTAX(ps, per->vcol, "per='%.*s': expected client, user or workspace", per->v,
                          per->vl);
    }
    return 0;
}

static int st_tool(parser *ps, tok *t, size_t n)
{
    pol_compiled *p = ps->p;
    int bad = 0;
    tok *nm = NULL, *flag = NULL;
    for (size_t i = 1; i < n; i++) {
        if (t[i].eq)
            continue;
        t[i].used = 1;
        if (!nm)
            nm = &t[i];
        else if (!flag && teq(t[i].k, t[i].kl, "destructive"))
            flag = &t[i];
        else
            return SYNTAX(ps, t[i].col, "unexpected word '%.*s' (only 'destructive' may follow)",
                          t[i].k, t[i].kl);
    }
    if (!nm)
        return SYNTAX(ps, t[0].col, "missing tool name%.*s", "", 0);
    tok *all = key(t, n, "all"), *any = key(t, n, "any");
    if (unused_keys(ps, t, n) < 0 ||
        check_name(ps, nm->k, nm->kl, nm->col, POL_NAME_MAX, tool_char, "tool name") < 0)
        return -1;
    if (grow(ps, (void **)&p->tsrc_tmp, &p->cap_tmp, p->n_tmp, sizeof(tool_src), POL_TOOLS_MAX,
             "tool rows") < 0)
        return -1;
    tool_row *rows = realloc(p->trow_tmp, (size_t)p->cap_tmp * sizeof *rows);
    if (!rows)
        return nomem(ps);
    p->trow_tmp = rows;
    tool_row *row = &rows[p->n_tmp];
    tool_src *src = &p->tsrc_tmp[p->n_tmp];
    memset(row, 0, sizeof *row);
    if (all && scopes_of(ps, all, &row->all, &bad) < 0)
        return -1;
    if (any && scopes_of(ps, any, &row->any, &bad) < 0)
        return -1;
    row->destructive = flag != NULL;
    src->line = ps->line;
    src->col = nm->col;
    if (!(src->name = dupn(ps, nm->k, nm->kl)))
        return -1;
    p->n_tmp++;
    if (bad) {
        /* a tool naming an unknown scope must never be callable: require everything */
        row->all = ~(uint64_t)0;
    }
    return 0;
}

static const struct stmt {
    const char *kw;
    int (*fn)(parser *, tok *, size_t);
} stmts[] = {
    {"version", st_version}, {"scope", st_scope},     {"bundle", st_bundle},
    {"role", st_role},       {"ceiling", st_ceiling}, {"forbid", st_forbid},
    {"approve", st_approve}, {"rate", st_rate},       {"tool", st_tool},
};

static int parse_line(parser *ps, const char *l, size_t len)
{
    tok t[MAX_TOKS];
    size_t n = 0;
    if (len && l[len - 1] == '\r')
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)l[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            char hex[8];
            int hl = snprintf(hex, sizeof hex, "0x%02x", c);
            return fatal(ps, PL_ERR_PARSE, POL_D_BAD_BYTE, (uint32_t)i + 1,
                         "invalid byte %.*s (a policy file is text)", hl, hex);
        }
    }
    if (tokenize(ps, l, len, t, &n) < 0)
        return -1;
    if (n == 0)
        return 0;
    if (t[0].eq)
        return SYNTAX(ps, t[0].col, "a line must start with a statement keyword, not '%.*s='",
                      t[0].k, t[0].kl);
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        if (teq(t[0].k, t[0].kl, stmts[i].kw))
            return stmts[i].fn(ps, t, n);
    return SYNTAX(ps, t[0].col,
                  "unknown statement '%.*s' (version, scope, bundle, role, ceiling, forbid, "
                  "approve, rate, tool)",
                  t[0].k, t[0].kl);
}

/* Feeds bytes; complete lines are parsed from the fixed buffer. */
static int feed(parser *ps, const char *data, size_t n)
{
    if (ps->total + n > POL_FILE_MAX || ps->total + n < ps->total) {
        ps->line++;
        return fatal(ps, PL_ERR_TOO_LARGE, POL_D_TOO_LARGE, 0,
                     "file larger than %u bytes (the limit)", (unsigned)POL_FILE_MAX);
    }
    ps->total += n;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n') {
            ps->line++;
            if (parse_line(ps, ps->buf, ps->len) < 0)
                return -1;
            ps->len = 0;
            continue;
        }
        if (ps->len == POL_LINE_MAX) {
            ps->line++;
            return fatal(ps, PL_ERR_TOO_LARGE, POL_D_LINE_TOO_LONG, POL_LINE_MAX + 1,
                         "line longer than %d bytes", POL_LINE_MAX);
        }
        ps->buf[ps->len++] = data[i];
    }
    return 0;
}

static int feed_end(parser *ps)
{
    if (ps->len == 0)
        return 0;
    ps->line++;
    int rc = parse_line(ps, ps->buf, ps->len);
    ps->len = 0;
    return rc;
}

static void set_name(pol_diags *d, const char *name)
{
    snprintf(d->file, sizeof d->file, "%s", name ? name : "<policy>");
}

static pl_rc finish(parser *ps, unsigned flags, pol_compiled **out)
{
    pl_rc rc = ps->fatal;
    if (rc == PL_OK)
        rc = pol_compile_finish(ps->p, ps->d);
    if (rc == PL_OK && ps->d->count[POL_SEV_ERROR] && !(flags & POL_LOAD_KEEP_ERRORS))
        rc = PL_ERR_INVALID;
    if (rc != PL_OK) {
        pol_compiled_free(ps->p);
        ps->p = NULL;
    }
    *out = ps->p;
    return rc;
}

static parser *parser_new(pol_diags *d, const char *name)
{
    parser *ps = calloc(1, sizeof *ps);
    if (!ps)
        return NULL;
    ps->d = d;
    ps->p = calloc(1, sizeof *ps->p);
    if (!ps->p) {
        free(ps);
        return NULL;
    }
    set_name(d, name);
    return ps;
}

pl_rc pol_load_buffer(const char *name, const char *buf, size_t len, unsigned flags,
                      pol_diags *diags, pol_compiled **out)
{
    pl_rc rc;
    parser *ps = NULL;
    if (!diags || !out || (!buf && len))
        return PL_ERR_INVALID;
    *out = NULL;
    if (!(ps = parser_new(diags, name))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (feed(ps, buf, len) == 0)
        feed_end(ps);
    rc = finish(ps, flags, out);
out:
    free(ps);
    return rc;
}

pl_rc pol_load_file(const char *path, unsigned flags, pol_diags *diags, pol_compiled **out)
{
    pl_rc rc;
    parser *ps = NULL;
    FILE *f = NULL;
    char chunk[65536];
    if (!path || !diags || !out)
        return PL_ERR_INVALID;
    *out = NULL;
    if (!(ps = parser_new(diags, path))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (!(f = fopen(path, "rb"))) {
        pol_diag_add(diags, POL_SEV_FATAL, POL_D_IO, 0, 0, "cannot open: %s", strerror(errno));
        pol_compiled_free(ps->p);
        rc = PL_ERR_IO;
        goto out;
    }
    for (;;) {
        size_t got = fread(chunk, 1, sizeof chunk, f);
        if (got && feed(ps, chunk, got) < 0)
            break;
        if (got < sizeof chunk) {
            if (ferror(f)) {
                pol_diag_add(diags, POL_SEV_FATAL, POL_D_IO, 0, 0, "read error");
                if (ps->fatal == PL_OK)
                    ps->fatal = PL_ERR_IO;
            } else {
                feed_end(ps);
            }
            break;
        }
    }
    rc = finish(ps, flags, out);
out:
    if (f)
        fclose(f);
    free(ps);
    return rc;
}
