/*
 * policy/check.c — the audit behind `postly-policy check` (docs/policy.md "Findings").
 *
 * Every finding names a line of the policy file. The pairwise searches (shadowing) run over
 * distinct rules only and stop after a fixed budget of comparisons, so 10^5 rules are
 * checked in well under a second; past the budget, "redundant" is still reported (it is
 * computed with per-(class, scope) counters, linear in the number of rules).
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define PAIR_BUDGET 20000000ull

static void names(const uint64_t m, char *buf, size_t size)
{
    if (pol_scope_format(m & POL_MASK_ALL, buf, size, NULL) != PL_OK)
        snprintf(buf, size, "?");
}

/* 1 when a client of some class in `classes` may use tool row `t` in some workspace: the
 * policy (ceiling and forbid rules) leaves what the tool needs. */
static int usable_somewhere(const pol_compiled *p, const tool_row *t, uint8_t classes)
{
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++) {
        if (!(classes & (1u << c)))
            continue;
        for (uint32_t w = 0; w < p->n_ws; w++) {
            uint64_t allowed = p->ws_ceiling[w] & ~p->forbid[c];
            if (!(t->all & ~allowed) && (!t->any || (t->any & allowed)))
                return 1;
        }
    }
    return 0;
}

static void check_roles(const pol_compiled *p, uint64_t reach_ceiling, pol_diags *d)
{
    char buf[POL_SCOPE_FORMAT_MAX];
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++) {
        if (!(p->role_declared & (1u << r))) {
            pol_diag_add(d, POL_SEV_WARNING, POL_D_ROLE_MISSING, 0, 0,
                         "role '%s' is not declared: its members can grant nothing",
                         pol_role_name((pol_role)r));
            continue;
        }
        uint64_t dead = p->role_grant[r] & ~reach_ceiling;
        if (dead) {
            names(dead, buf, sizeof buf);
            pol_diag_add(d, POL_SEV_WARNING, POL_D_NEVER_FIRES, p->role_line[r], 1,
                         "role '%s' grants scopes no workspace ceiling allows: %.200s",
                         pol_role_name((pol_role)r), buf);
        }
    }
}

static void check_tools(const pol_compiled *p, pol_diags *d)
{
    char buf[POL_SCOPE_FORMAT_MAX];
    uint64_t required = 0;
    for (uint32_t t = 0; t < p->n_tools; t++) {
        const tool_row *row = &p->tools[t];
        const tool_src *s = &p->tool_names[t];
        required |= row->all | row->any;
        uint64_t destr = (row->all | row->any) & POL_MASK_DESTRUCTIVE;
        if (destr && !row->destructive) {
            names(destr, buf, sizeof buf);
            pol_diag_add(d, POL_SEV_WARNING, POL_D_DESTRUCTIVE_UNMARKED, s->line, s->col,
                         "tool '%s' needs destructive scope(s) %.200s but is not marked "
                         "destructive",
                         s->name, buf);
        }
        if (row->all != ~(uint64_t)0 && !usable_somewhere(p, row, ALL_CLASSES))
            pol_diag_add(d, POL_SEV_WARNING, POL_D_TOOL_UNREACHABLE, s->line, s->col,
                         "tool '%s' is blocked for every client class in every workspace", s->name);
    }
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        if (!(required & POL_MASK(i)))
            pol_diag_add(d, POL_SEV_WARNING, POL_D_SCOPE_UNUSED, 0, 0,
                         "scope '%s' (bit %u) is required by no tool or resource", s->name, i);
    }
}

static void check_bundles(const pol_compiled *p, pol_diags *d)
{
    char buf[POL_SCOPE_FORMAT_MAX];
    for (uint32_t i = 0; i < p->n_bundles; i++) {
        const bundle_src *b = &p->bundles[i];
        if (b->builtin < -1)
            continue;
        uint64_t mask = b->mask;
        if (b->builtin >= 0) {
            const pol_bundle_info *bi;
            pol_bundle_get((unsigned)b->builtin, &bi);
            mask = bi->mask;
        }
        for (unsigned r = 0; r < POL_ROLE_COUNT; r++) {
            uint64_t over = mask & ~p->role_grant[r];
            if (!(b->offer & (1u << r)) || !over)
                continue;
            names(over, buf, sizeof buf);
            pol_diag_add(d, POL_SEV_WARNING, POL_D_BUNDLE_EXCEEDS, b->line, b->col,
                         "bundle '%s' is offered to role '%s', which may not grant %.200s", b->id,
                         pol_role_name((pol_role)r), buf);
        }
        if (!b->offer)
            continue;
        /* the row index of this bundle, for the workspaces' bundles= sets */
        uint32_t row = 0;
        for (uint32_t k = 0; k < pol_bundle_row_count(p); k++) {
            pol_bundle_row br;
            pol_bundle_row_get(p, k, &br);
            if (strcmp(br.id, b->id) == 0)
                row = k;
        }
        for (uint32_t w = 0; w < p->n_ws; w++) {
            uint64_t over = mask & ~p->ws_ceiling[w];
            if (!over || !(p->ws_bundles[w] & ((uint64_t)1 << row)))
                continue;
            names(over, buf, sizeof buf);
            pol_diag_add(d, POL_SEV_WARNING, POL_D_BUNDLE_EXCEEDS, b->line, b->col,
                         "bundle '%s' is offered in workspace '%s' but exceeds its ceiling '%s' "
                         "by %.160s (limit the ceiling's bundles=)",
                         b->id, p->ws[w].id,
                         p->ws_rule[w] == POL_RULE_NONE ? "-" : p->rules[p->ws_rule[w]].id, buf);
        }
    }
}

/* A coverage item: a set of classes × a set (scopes for forbid, tools for approve). */
typedef struct cover {
    uint32_t src;
    uint8_t classes;
    uint32_t words;
    uint64_t *set; /* `words` words */
} cover;

static int subset(const uint64_t *a, const uint64_t *b, uint32_t words)
{
    for (uint32_t i = 0; i < words; i++)
        if (a[i] & ~b[i])
            return 0;
    return 1;
}

static int cover_cmp(const void *x, const void *y)
{
    const cover *a = x, *b = y;
    if (a->classes != b->classes)
        return a->classes < b->classes ? -1 : 1;
    for (uint32_t i = 0; i < a->words; i++)
        if (a->set[i] != b->set[i])
            return a->set[i] < b->set[i] ? -1 : 1;
    return 0;
}

/* Adds `delta` to the per-(class, item) counters of every pair rule c covers. */
static void count_cover(const cover *c, uint32_t bits, uint32_t *cnt, int delta)
{
    for (unsigned k = 0; k < POL_CLASS_COUNT; k++)
        if (c->classes & (1u << k))
            for (uint32_t b = 0; b < bits; b++)
                if (c->set[b / 64] & ((uint64_t)1 << (b % 64)))
                    cnt[(size_t)k * bits + b] += (uint32_t)delta;
}

/* Shadowed (covered by one other rule) and redundant (covered by the union of the others)
 * for forbid (kind FORBID: set = scopes) or approve (kind APPROVE: set = tools). */
static pl_rc check_cover(const pol_compiled *p, pol_rule_kind kind, pol_diags *d)
{
    pl_rc rc = PL_OK;
    uint32_t words = kind == POL_RULE_FORBID ? 1 : (p->n_tools + 63) / 64;
    uint32_t bits = kind == POL_RULE_FORBID ? 64 : p->n_tools;
    uint32_t n = 0;
    cover *v = NULL;
    uint64_t *sets = NULL;
    uint32_t *cnt = NULL;
    uint8_t *shadowed = NULL;
    if (words == 0)
        words = 1;
    for (uint32_t i = 0; i < p->n_rules_src; i++)
        n += p->rules_src[i].kind == kind && !p->rules_src[i].bad;
    v = calloc(n ? n : 1, sizeof *v);
    sets = calloc((size_t)(n ? n : 1) * words, sizeof *sets);
    cnt = calloc((size_t)POL_CLASS_COUNT * (bits ? bits : 1), sizeof *cnt);
    shadowed = calloc(n ? n : 1, 1);
    if (!v || !sets || !cnt || !shadowed) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        const src_rule *r = &p->rules_src[i];
        if (r->kind != kind || r->bad)
            continue;
        cover *c = &v[k];
        c->src = i;
        c->classes = r->classes;
        c->words = words;
        c->set = sets + (size_t)k * words;
        if (kind == POL_RULE_FORBID) {
            c->set[0] = r->mask;
        } else {
            for (uint32_t t = 0; t < p->n_tools; t++)
                if (r->all_tools)
                    c->set[t / 64] |= (uint64_t)1 << (t % 64);
            for (uint32_t j = 0; j < r->n_tool_idx; j++)
                c->set[r->tool_idx[j] / 64] |= (uint64_t)1 << (r->tool_idx[j] % 64);
        }
        k++;
    }
    /* identical rules: sort by content, keep the earliest line of each group */
    qsort(v, n, sizeof *v, cover_cmp);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i, first = i;
        while (j < n && cover_cmp(&v[i], &v[j]) == 0) {
            if (p->rules_src[v[j].src].line < p->rules_src[v[first].src].line)
                first = j;
            j++;
        }
        for (uint32_t x = i; x < j; x++) {
            if (x == first)
                continue;
            const src_rule *r = &p->rules_src[v[x].src], *f = &p->rules_src[v[first].src];
            pol_diag_add(d, POL_SEV_WARNING, POL_D_SHADOWED, r->line, r->col,
                         "%s rule '%s' is shadowed by '%s' (line %u): it adds nothing",
                         pol_rule_kind_name(kind), r->id, f->id, f->line);
            shadowed[x] = 1;
        }
        i = j;
    }
    /* a rule inside one other (distinct) rule; bounded number of comparisons */
    uint64_t budget = PAIR_BUDGET;
    for (uint32_t i = 0; i < n && budget; i++) {
        if (shadowed[i])
            continue;
        for (uint32_t j = 0; j < n && budget; j++, budget--) {
            if (i == j || shadowed[j])
                continue;
            if ((v[i].classes & ~v[j].classes) || !subset(v[i].set, v[j].set, words))
                continue;
            const src_rule *r = &p->rules_src[v[i].src], *s = &p->rules_src[v[j].src];
            pol_diag_add(d, POL_SEV_WARNING, POL_D_SHADOWED, r->line, r->col,
                         "%s rule '%s' is shadowed by '%s' (line %u), which covers every class "
                         "and %s it names",
                         pol_rule_kind_name(kind), r->id, s->id, s->line,
                         kind == POL_RULE_FORBID ? "scope" : "tool");
            shadowed[i] = 1;
            break;
        }
    }
    /* redundant: every (class, item) pair is also covered by another distinct rule */
    for (uint32_t i = 0; i < n; i++)
        if (!shadowed[i])
            count_cover(&v[i], bits, cnt, +1);
    /* Greedy, in content order (independent of line order): a rule reported redundant no
     * longer counts as cover for the rules after it, so removing every rule reported
     * (shadowed or redundant) leaves the decisions unchanged. Without this, three rules that
     * each cover what the other two leave out would all be reported. */
    for (uint32_t i = 0; i < n; i++) {
        if (shadowed[i])
            continue;
        int covered = 1, any = 0;
        for (unsigned c = 0; c < POL_CLASS_COUNT && covered; c++)
            if (v[i].classes & (1u << c))
                for (uint32_t b = 0; b < bits && covered; b++)
                    if (v[i].set[b / 64] & ((uint64_t)1 << (b % 64))) {
                        any = 1;
                        covered = cnt[(size_t)c * bits + b] >= 2;
                    }
        if (!covered || !any)
            continue;
        count_cover(&v[i], bits, cnt, -1);
        const src_rule *r = &p->rules_src[v[i].src];
        pol_diag_add(d, POL_SEV_WARNING, POL_D_REDUNDANT, r->line, r->col,
                     "%s rule '%s' is redundant: other rules together cover all it says",
                     pol_rule_kind_name(kind), r->id);
    }
out:
    free(shadowed);
    free(cnt);
    free(sets);
    free(v);
    return rc;
}

/* Forbid rules that remove nothing any token could carry; approve and rate rules for calls
 * that the policy always blocks; named ceilings equal to the default. */
static void check_never(const pol_compiled *p, uint64_t reach, pol_diags *d)
{
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        const src_rule *r = &p->rules_src[i];
        if (r->bad)
            continue;
        if (r->kind == POL_RULE_FORBID && !(r->mask & reach)) {
            pol_diag_add(d, POL_SEV_WARNING, POL_D_NEVER_FIRES, r->line, r->col,
                         "forbid rule '%s' can never fire: no role and ceiling lets a token "
                         "carry %s",
                         r->id, r->mask ? "those scopes" : "an empty scope list");
        } else if (r->kind == POL_RULE_APPROVE || r->kind == POL_RULE_RATE) {
            int fires = 0;
            uint32_t n = r->all_tools ? p->n_tools : r->n_tool_idx;
            for (uint32_t j = 0; j < n && !fires; j++)
                fires =
                    usable_somewhere(p, &p->tools[r->all_tools ? j : r->tool_idx[j]], r->classes);
            if (!fires)
                pol_diag_add(d, POL_SEV_WARNING, POL_D_NEVER_FIRES, r->line, r->col,
                             "%s rule '%s' can never fire: the policy blocks every call it names",
                             pol_rule_kind_name(r->kind), r->id);
        } else if (r->kind == POL_RULE_CEILING && strcmp(r->ws, "*") != 0 &&
                   p->has_default_ceiling && r->mask == p->ws_ceiling[0] &&
                   r->bundle_set == p->ws_bundles[0]) {
            pol_diag_add(d, POL_SEV_WARNING, POL_D_REDUNDANT, r->line, r->col,
                         "ceiling '%s' for workspace '%s' equals the default ceiling", r->id,
                         r->ws);
        }
    }
}

/* Rate rule r is shadowed by s when s counts every call r counts (classes and tools),
 * per the same key and period, with a limit and burst no larger. */
static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void check_rates(const pol_compiled *p, pol_diags *d)
{
    uint64_t budget = PAIR_BUDGET;
    for (uint32_t i = 0; i < p->n_rates && budget; i++) {
        const src_rule *r = &p->rules_src[p->rates[i]];
        for (uint32_t j = 0; j < p->n_rates && budget; j++, budget--) {
            const src_rule *s = &p->rules_src[p->rates[j]];
            if (i == j || (r->classes & ~s->classes) || r->per != s->per ||
                r->period_s != s->period_s || s->limit > r->limit || s->burst > r->burst)
                continue;
            int tools_in = s->all_tools;
            if (!tools_in && !r->all_tools) {
                tools_in = 1;
                for (uint32_t k = 0; k < r->n_tool_idx && tools_in; k++)
                    tools_in = bsearch(&r->tool_idx[k], s->tool_idx, s->n_tool_idx,
                                       sizeof(uint32_t), u32_cmp) != NULL;
            }
            if (!tools_in)
                continue;
            /* identical rules: report only the later one */
            if (s->limit == r->limit && s->burst == r->burst && s->classes == r->classes &&
                s->all_tools == r->all_tools && s->n_tool_idx == r->n_tool_idx && s->line > r->line)
                continue;
            pol_diag_add(d, POL_SEV_WARNING, POL_D_SHADOWED, r->line, r->col,
                         "rate rule '%s' is shadowed by '%s' (line %u): that limit is reached "
                         "first on every call this one counts",
                         r->id, s->id, s->line);
            break;
        }
    }
}

/* Compares the registry with the lock file at `path`: every line "BIT NAME" or
 * "BIT NAME retired". PL_ERR_IO (a fatal diagnostic) when the lock cannot be read: a check
 * against a lock that is not there is no check. */
static pl_rc check_lock(const char *path, pol_diags *d)
{
    FILE *f = fopen(path, "r");
    char line[512];
    char names[64][128]; /* the name at each bit the lock lists */
    uint32_t ln = 0;
    uint64_t seen = 0;
    if (!f) {
        pol_diag_add(d, POL_SEV_FATAL, POL_D_IO, 0, 0, "cannot open scope lock file %s", path);
        return PL_ERR_IO;
    }
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        if (l && line[l - 1] != '\n' && !feof(f)) {
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0, "%s:%u: line too long", path, ln);
            break;
        }
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\0')
            continue;
        char *end;
        long bit = strtol(line, &end, 10);
        char name[128], extra[32] = "", more[8] = "";
        int words = end == line ? 0 : sscanf(end, " %127s %31s %7s", name, extra, more);
        if (end == line || bit < 0 || bit > 63 || words < 1 || words > 2 ||
            (words == 2 && strcmp(extra, "retired") != 0)) {
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0, "%s:%u: expected 'BIT NAME [retired]'",
                         path, ln);
            continue;
        }
        if (seen & POL_MASK(bit)) {
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                         "%s:%u: bit %ld appears twice in the lock (a bit is never reused)", path,
                         ln, bit);
            continue;
        }
        for (unsigned b = 0; b < 64; b++)
            if ((seen & POL_MASK(b)) && strcmp(names[b], name) == 0)
                pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                             "%s:%u: '%s' is listed at bit %u and again at bit %ld (a scope never "
                             "moves, and a retired name never returns)",
                             path, ln, name, b, bit);
        seen |= POL_MASK(bit);
        memcpy(names[bit], name, sizeof name);
        const pol_scope_info *s;
        if (pol_scope_get((unsigned)bit, &s) != PL_OK) {
            if (words != 2)
                pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                             "%s:%u: the lock has bit %ld '%s' but the registry does not", path, ln,
                             bit, name);
            continue;
        }
        if (strcmp(s->name, name) != 0)
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                         "%s:%u: the registry gives bit %ld to '%s' but the lock to '%s' (a bit "
                         "is never moved or reused)",
                         path, ln, bit, s->name, name);
        else if (words == 2)
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                         "%s:%u: '%s' (bit %ld) is retired in the lock but still in the registry",
                         path, ln, name, bit);
    }
    fclose(f);
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        if (!(seen & POL_MASK(i)))
            pol_diag_add(d, POL_SEV_ERROR, POL_D_LOCK, 0, 0,
                         "scope '%s' (bit %u) is missing from %s: append it", s->name, i, path);
    }
    return PL_OK;
}

pl_rc pol_check(const pol_compiled *p, const char *lock_path, pol_diags *d)
{
    pl_rc rc;
    if (!p || !d)
        return PL_ERR_INVALID;
    uint64_t reach_ceiling = 0, reach_roles = 0;
    for (uint32_t w = 0; w < p->n_ws; w++)
        reach_ceiling |= p->ws_ceiling[w];
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++)
        reach_roles |= p->role_grant[r];
    if (lock_path && (rc = check_lock(lock_path, d)) != PL_OK)
        return rc;
    check_roles(p, reach_ceiling, d);
    check_tools(p, d);
    check_bundles(p, d);
    check_never(p, reach_ceiling & reach_roles, d);
    check_rates(p, d);
    if ((rc = check_cover(p, POL_RULE_FORBID, d)) != PL_OK)
        return rc;
    return check_cover(p, POL_RULE_APPROVE, d);
}
