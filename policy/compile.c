/*
 * policy/compile.c — turns the parsed rows into the decision tables, and the table's
 * lookups and accessors.
 *
 * Determinism: everything the tables expose is ordered by name or id, never by position in
 * the file: tools by name, workspaces by id (the default first), rules by (kind, id), and
 * where several rules apply to one bit the one with the smallest id is named. So two files
 * that differ only in line order compile to byte-identical output (pol_compiled_write).
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

pl_rc pol_compile_finish(pol_compiled *p, pol_diags *d);

static int strn_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* qsort comparators over index arrays need the table; C11 qsort has no context argument,
 * so sort (key, index) pairs instead. */
typedef struct keyed {
    const char *key;
    uint32_t kind; /* major key */
    uint32_t line; /* tie-breaker: file order, for "first declared" diagnostics */
    uint32_t idx;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static pl_rc sort_tools(pol_compiled *p, pol_diags *d)
{
    uint32_t n = p->n_tmp, k = 0;
    keyed *ks = calloc(n ? n : 1, sizeof *ks);
    if (!ks)
        return PL_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++)
        ks[i] = (keyed){p->tsrc_tmp[i].name, 0, p->tsrc_tmp[i].line, i};
    qsort(ks, n, sizeof *ks, keyed_cmp);
    p->tools = calloc(n ? n : 1, sizeof *p->tools);
    p->tool_names = calloc(n ? n : 1, sizeof *p->tool_names);
    if (!p->tools || !p->tool_names) {
        free(ks);
        return PL_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        tool_src *s = &p->tsrc_tmp[ks[i].idx];
        if (k && strcmp(p->tool_names[k - 1].name, s->name) == 0) {
            pol_diag_add(d, POL_SEV_ERROR, POL_D_DUPLICATE, s->line, s->col,
                         "tool '%s' already defined at line %u", s->name,
                         p->tool_names[k - 1].line);
            continue;
        }
        p->tools[k] = p->trow_tmp[ks[i].idx];
        p->tool_names[k] = *s;
        s->name = NULL; /* moved */
        k++;
    }
    p->n_tools = k;
    free(ks);
    return PL_OK;
}

static int find_tool(const pol_compiled *p, const char *name, size_t len, uint32_t *index)
{
    uint32_t lo = 0, hi = p->n_tools;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const char *m = p->tool_names[mid].name;
        int c = strn_cmp(m, strlen(m), name, len);
        if (c == 0) {
            *index = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static pl_rc resolve_tools(pol_compiled *p, pol_diags *d)
{
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        src_rule *r = &p->rules_src[i];
        if (r->kind != POL_RULE_APPROVE && r->kind != POL_RULE_RATE)
            continue;
        r->tool_idx = calloc(r->n_tools ? r->n_tools : 1, sizeof *r->tool_idx);
        if (!r->tool_idx)
            return PL_ERR_NOMEM;
        uint32_t k = 0;
        for (uint32_t j = 0; j < r->n_tools; j++) {
            uint32_t t;
            if (find_tool(p, r->tools[j].name, strlen(r->tools[j].name), &t)) {
                r->tool_idx[k++] = t;
            } else {
                pol_diag_add(d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, r->tools[j].line,
                             r->tools[j].col, "unknown tool '%s' (no tool line defines it)",
                             r->tools[j].name);
                r->bad = 1;
            }
        }
        qsort(r->tool_idx, k, sizeof *r->tool_idx, u32_cmp);
        uint32_t u = 0;
        for (uint32_t j = 0; j < k; j++)
            if (u == 0 || r->tool_idx[u - 1] != r->tool_idx[j])
                r->tool_idx[u++] = r->tool_idx[j];
        r->n_tool_idx = u;
    }
    return PL_OK;
}

/* Rule ids are unique across kinds; a workspace has at most one ceiling. */
static pl_rc check_unique(pol_compiled *p, pol_diags *d)
{
    uint32_t n = p->n_rules_src;
    keyed *ks = calloc(n ? n : 1, sizeof *ks);
    if (!ks)
        return PL_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++)
        ks[i] = (keyed){p->rules_src[i].id, 0, p->rules_src[i].line, i};
    qsort(ks, n, sizeof *ks, keyed_cmp);
    for (uint32_t i = 1; i < n; i++) {
        if (strcmp(ks[i].key, ks[i - 1].key) == 0) {
            src_rule *r = &p->rules_src[ks[i].idx];
            pol_diag_add(d, POL_SEV_ERROR, POL_D_DUPLICATE, r->line, r->col,
                         "rule id '%s' already used at line %u", r->id, ks[i - 1].line);
            r->bad = 1;
            ks[i].line = ks[i - 1].line; /* report later duplicates against the first */
        }
    }
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (p->rules_src[i].kind == POL_RULE_CEILING && !p->rules_src[i].bad)
            ks[m++] = (keyed){p->rules_src[i].ws, 0, p->rules_src[i].line, i};
    qsort(ks, m, sizeof *ks, keyed_cmp);
    for (uint32_t i = 1; i < m; i++) {
        if (strcmp(ks[i].key, ks[i - 1].key) == 0) {
            src_rule *r = &p->rules_src[ks[i].idx];
            pol_diag_add(d, POL_SEV_ERROR, POL_D_DUPLICATE, r->line, r->col,
                         "workspace '%s' already has a ceiling at line %u", r->ws, ks[i - 1].line);
            r->bad = 1;
            ks[i].line = ks[i - 1].line;
        }
    }
    free(ks);
    return PL_OK;
}

static pl_rc build_rules(pol_compiled *p)
{
    uint32_t n = 0, cap = p->n_rules_src + p->n_tools + POL_ROLE_COUNT;
    keyed *ks = calloc(cap, sizeof *ks);
    p->rules = calloc(cap, sizeof *p->rules);
    if (!ks || !p->rules) {
        free(ks);
        return PL_ERR_NOMEM;
    }
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++) {
        p->role_rule[r] = POL_RULE_NONE;
        if (p->role_declared & (1u << r))
            ks[n++] = (keyed){pol_role_name((pol_role)r), POL_RULE_ROLE, p->role_line[r], r};
    }
    for (uint32_t i = 0; i < p->n_rules_src; i++)
        if (!p->rules_src[i].bad)
            ks[n++] = (keyed){p->rules_src[i].id, p->rules_src[i].kind, p->rules_src[i].line, i};
    for (uint32_t i = 0; i < p->n_tools; i++)
        ks[n++] = (keyed){p->tool_names[i].name, POL_RULE_TOOL, p->tool_names[i].line, i};
    qsort(ks, n, sizeof *ks, keyed_cmp);
    for (uint32_t i = 0; i < n; i++) {
        rule_row *row = &p->rules[i];
        row->kind = (pol_rule_kind)ks[i].kind;
        row->id = ks[i].key;
        row->line = ks[i].line;
        row->src = ks[i].idx;
        if (row->kind == POL_RULE_ROLE)
            p->role_rule[row->src] = i;
        else if (row->kind == POL_RULE_TOOL)
            p->tools[row->src].rule = i;
        else
            p->rules_src[row->src].index = i;
    }
    p->n_rules = n;
    free(ks);
    return PL_OK;
}

/* Resolves each ceiling's bundles= against the bundle rows (4 recommended + custom). */
static void resolve_bundles(pol_compiled *p, pol_diags *d)
{
    uint32_t nb = pol_bundle_row_count(p);
    uint64_t all = nb >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nb) - 1);
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        src_rule *r = &p->rules_src[i];
        if (r->kind != POL_RULE_CEILING)
            continue;
        if (r->all_bundles) {
            r->bundle_set = all;
            continue;
        }
        for (uint32_t j = 0; j < r->n_bnames; j++) {
            uint32_t k;
            for (k = 0; k < nb; k++) {
                pol_bundle_row b;
                pol_bundle_row_get(p, k, &b);
                if (strcmp(b.id, r->bnames[j].name) == 0)
                    break;
            }
            if (k < nb) {
                r->bundle_set |= (uint64_t)1 << k;
            } else {
                pol_diag_add(d, POL_SEV_ERROR, POL_D_UNKNOWN_NAME, r->bnames[j].line,
                             r->bnames[j].col, "unknown bundle '%s'", r->bnames[j].name);
                r->bad = 1;
            }
        }
    }
}

static pl_rc build_workspaces(pol_compiled *p)
{
    uint32_t n = 1;
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        const src_rule *r = &p->rules_src[i];
        if (r->kind == POL_RULE_CEILING && !r->bad && strcmp(r->ws, "*") != 0)
            n++;
    }
    p->ws = calloc(n, sizeof *p->ws);
    p->ws_ceiling = calloc(n, sizeof *p->ws_ceiling);
    p->ws_rule = calloc(n, sizeof *p->ws_rule);
    p->ws_bundles = calloc(n, sizeof *p->ws_bundles);
    keyed *ks = calloc(n, sizeof *ks);
    if (!p->ws || !p->ws_ceiling || !p->ws_rule || !p->ws_bundles || !ks) {
        free(ks);
        return PL_ERR_NOMEM;
    }
    p->ws[0] = (ws_row){"*", 1, POL_RULE_NONE, UINT32_MAX};
    p->ws_ceiling[0] = POL_MASK_ALL; /* no default ceiling: only roles and classes limit */
    p->ws_rule[0] = POL_RULE_NONE;
    uint32_t nb = pol_bundle_row_count(p);
    p->ws_bundles[0] = nb >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nb) - 1);
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        const src_rule *r = &p->rules_src[i];
        if (r->kind != POL_RULE_CEILING || r->bad)
            continue;
        if (strcmp(r->ws, "*") == 0) {
            p->ws[0].rule = r->index;
            p->ws[0].src = i;
            p->ws_ceiling[0] = r->mask;
            p->ws_rule[0] = r->index;
            p->ws_bundles[0] = r->bundle_set;
            p->has_default_ceiling = 1;
        } else {
            ks[k++] = (keyed){r->ws, 0, r->line, i};
        }
    }
    qsort(ks, k, sizeof *ks, keyed_cmp);
    for (uint32_t i = 0; i < k; i++) {
        const src_rule *r = &p->rules_src[ks[i].idx];
        p->ws[i + 1] = (ws_row){r->ws, strlen(r->ws), r->index, ks[i].idx};
        p->ws_ceiling[i + 1] = r->mask;
        p->ws_rule[i + 1] = r->index;
        p->ws_bundles[i + 1] = r->bundle_set;
    }
    p->n_ws = n;
    free(ks);
    return PL_OK;
}

/* Rules are visited in (kind, id) order, so the smallest id names each bit. */
static void build_forbid_approve(pol_compiled *p)
{
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++)
        for (unsigned b = 0; b < 64; b++)
            p->forbid_rule[c][b] = POL_RULE_NONE;
    for (uint32_t t = 0; t < p->n_tools; t++)
        for (unsigned c = 0; c < POL_CLASS_COUNT; c++)
            p->tools[t].approve_rule[c] = POL_RULE_NONE;
    uint32_t nrates = 0;
    for (uint32_t i = 0; i < p->n_rules; i++) {
        const rule_row *row = &p->rules[i];
        if (row->kind == POL_RULE_RATE)
            nrates++;
        if (row->kind != POL_RULE_FORBID && row->kind != POL_RULE_APPROVE)
            continue;
        const src_rule *r = &p->rules_src[row->src];
        for (unsigned c = 0; c < POL_CLASS_COUNT; c++) {
            if (!(r->classes & (1u << c)))
                continue;
            if (row->kind == POL_RULE_FORBID) {
                p->forbid[c] |= r->mask;
                for (unsigned b = 0; b < 64; b++)
                    if ((r->mask & POL_MASK(b)) && p->forbid_rule[c][b] == POL_RULE_NONE)
                        p->forbid_rule[c][b] = i;
                continue;
            }
            uint32_t n = r->all_tools ? p->n_tools : r->n_tool_idx;
            for (uint32_t j = 0; j < n; j++) {
                tool_row *t = &p->tools[r->all_tools ? j : r->tool_idx[j]];
                t->approve_classes |= (uint8_t)(1u << c);
                if (t->approve_rule[c] == POL_RULE_NONE)
                    t->approve_rule[c] = i;
            }
        }
    }
    p->rates = calloc(nrates ? nrates : 1, sizeof *p->rates);
    p->n_rates = 0;
    if (!p->rates)
        return;
    for (uint32_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].kind == POL_RULE_RATE)
            p->rates[p->n_rates++] = p->rules[i].src;
}

static pl_rc check_bundles(pol_compiled *p, pol_diags *d)
{
    keyed *ks = calloc(p->n_bundles ? p->n_bundles : 1, sizeof *ks);
    if (!ks)
        return PL_ERR_NOMEM;
    for (uint32_t i = 0; i < p->n_bundles; i++)
        ks[i] = (keyed){p->bundles[i].id, 0, p->bundles[i].line, i};
    qsort(ks, p->n_bundles, sizeof *ks, keyed_cmp);
    for (uint32_t i = 0; i < p->n_bundles; i++) {
        bundle_src *b = &p->bundles[ks[i].idx];
        if (i && strcmp(ks[i].key, ks[i - 1].key) == 0) {
            pol_diag_add(d, POL_SEV_ERROR, POL_D_DUPLICATE, b->line, b->col,
                         "bundle '%s' already declared at line %u", b->id, ks[i - 1].line);
            b->builtin = -2;
            ks[i].line = ks[i - 1].line;
            continue;
        }
        if (b->builtin < 0)
            continue;
        const pol_bundle_info *bi;
        pol_bundle_get((unsigned)b->builtin, &bi);
        if (b->has_mask && b->mask != bi->mask) {
            char extra[POL_SCOPE_FORMAT_MAX], missing[POL_SCOPE_FORMAT_MAX];
            pol_scope_format(b->mask & ~bi->mask, extra, sizeof extra, NULL);
            pol_scope_format(bi->mask & ~b->mask, missing, sizeof missing, NULL);
            pol_diag_add(d, POL_SEV_ERROR, POL_D_BUNDLE_MISMATCH, b->line, b->col,
                         "bundle '%s' differs from the product page's \"%s\": extra [%.120s] "
                         "missing [%.120s]",
                         b->id, bi->display_name, extra, missing);
        }
        b->mask = bi->mask;
        if (b->title && strcmp(b->title, bi->display_name) != 0)
            pol_diag_add(d, POL_SEV_ERROR, POL_D_BUNDLE_MISMATCH, b->line, b->col,
                         "bundle '%s' title must be \"%s\"", b->id, bi->display_name);
    }
    free(ks);
    return PL_OK;
}

pl_rc pol_compile_finish(pol_compiled *p, pol_diags *d)
{
    pl_rc rc;
    if ((rc = sort_tools(p, d)) != PL_OK || (rc = resolve_tools(p, d)) != PL_OK ||
        (rc = check_unique(p, d)) != PL_OK || (rc = check_bundles(p, d)) != PL_OK)
        return rc;
    resolve_bundles(p, d);
    if ((rc = build_rules(p)) != PL_OK || (rc = build_workspaces(p)) != PL_OK)
        return rc;
    build_forbid_approve(p);
    if (!p->rates)
        return PL_ERR_NOMEM;
    /* the parse-time arrays are no longer needed */
    for (uint32_t i = 0; i < p->n_tmp; i++)
        free(p->tsrc_tmp[i].name);
    free(p->tsrc_tmp);
    free(p->trow_tmp);
    p->tsrc_tmp = NULL;
    p->trow_tmp = NULL;
    p->n_tmp = p->cap_tmp = 0;
    return PL_OK;
}

void pol_compiled_free(pol_compiled *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n_rules_src; i++) {
        src_rule *r = &p->rules_src[i];
        for (uint32_t j = 0; j < r->n_tools; j++)
            free(r->tools[j].name);
        free(r->tools);
        free(r->tool_idx);
        for (uint32_t j = 0; j < r->n_bnames; j++)
            free(r->bnames[j].name);
        free(r->bnames);
        free(r->ws);
        free(r->id);
    }
    free(p->rules_src);
    for (uint32_t i = 0; i < p->n_bundles; i++) {
        free(p->bundles[i].id);
        free(p->bundles[i].title);
    }
    free(p->bundles);
    for (uint32_t i = 0; i < p->n_tmp; i++)
        free(p->tsrc_tmp[i].name);
    free(p->tsrc_tmp);
    free(p->trow_tmp);
    if (p->tool_names)
        for (uint32_t i = 0; i < p->n_tools; i++)
            free(p->tool_names[i].name);
    free(p->tool_names);
    free(p->tools);
    free(p->rules);
    free(p->rates);
    free(p->ws);
    free(p->ws_ceiling);
    free(p->ws_rule);
    free(p->ws_bundles);
    free(p);
}

/* ---- lookups and accessors ---- */

pl_rc pol_workspace_index(const pol_compiled *p, const char *id, size_t len, uint32_t *index,
                          int *named)
{
    if (!p || !id || !index)
        return PL_ERR_INVALID;
    uint32_t lo = 1, hi = p->n_ws;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strn_cmp(p->ws[mid].id, p->ws[mid].id_len, id, len);
        if (c == 0) {
            *index = mid;
            if (named)
                *named = 1;
            return PL_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *index = 0;
    if (named)
        *named = 0;
    return PL_OK;
}

uint32_t pol_workspace_count(const pol_compiled *p)
{
    return p ? p->n_ws : 0;
}

pl_rc pol_workspace_get(const pol_compiled *p, uint32_t index, const char **id, uint64_t *ceiling,
                        uint32_t *rule)
{
    if (!p)
        return PL_ERR_INVALID;
    if (index >= p->n_ws)
        return PL_ERR_NOT_FOUND;
    if (id)
        *id = p->ws[index].id;
    if (ceiling)
        *ceiling = p->ws_ceiling[index];
    if (rule)
        *rule = p->ws_rule[index];
    return PL_OK;
}

pl_rc pol_workspace_bundles(const pol_compiled *p, uint32_t index, uint64_t *rows)
{
    if (!p || !rows)
        return PL_ERR_INVALID;
    if (index >= p->n_ws)
        return PL_ERR_NOT_FOUND;
    *rows = p->ws_bundles[index];
    return PL_OK;
}

pl_rc pol_tool_index(const pol_compiled *p, const char *name, size_t len, uint32_t *index)
{
    if (!p || !name || !index)
        return PL_ERR_INVALID;
    return find_tool(p, name, len, index) ? PL_OK : PL_ERR_NOT_FOUND;
}

uint32_t pol_tool_count(const pol_compiled *p)
{
    return p ? p->n_tools : 0;
}

pl_rc pol_tool_get(const pol_compiled *p, uint32_t index, pol_tool_info *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    if (index >= p->n_tools)
        return PL_ERR_NOT_FOUND;
    const tool_row *t = &p->tools[index];
    out->name = p->tool_names[index].name;
    out->all = t->all;
    out->any = t->any;
    out->destructive = t->destructive;
    out->approve_classes = t->approve_classes;
    out->rule = t->rule;
    return PL_OK;
}

/* Bundle rows: the four recommended bundles, then valid custom bundles sorted by id. */
static uint32_t custom_bundles(const pol_compiled *p, const bundle_src **out, uint32_t want)
{
    /* custom bundles are few; a linear selection keeps this allocation-free */
    uint32_t count = 0;
    const char *prev = NULL;
    for (;;) {
        const bundle_src *best = NULL;
        for (uint32_t i = 0; i < p->n_bundles; i++) {
            const bundle_src *b = &p->bundles[i];
            if (b->builtin != -1)
                continue;
            if (prev && strcmp(b->id, prev) <= 0)
                continue;
            if (!best || strcmp(b->id, best->id) < 0)
                best = b;
        }
        if (!best)
            return count;
        if (count == want && out) {
            *out = best;
            return count;
        }
        prev = best->id;
        count++;
    }
}

uint32_t pol_bundle_row_count(const pol_compiled *p)
{
    return p ? POL_BUNDLE_COUNT + custom_bundles(p, NULL, UINT32_MAX) : 0;
}

pl_rc pol_bundle_row_get(const pol_compiled *p, uint32_t index, pol_bundle_row *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    if (index < POL_BUNDLE_COUNT) {
        const pol_bundle_info *bi;
        pol_bundle_get(index, &bi);
        out->id = bi->id;
        out->title = bi->display_name;
        out->mask = bi->mask;
        out->offer_roles = 0;
        for (uint32_t i = 0; i < p->n_bundles; i++)
            if (p->bundles[i].builtin == (int)index)
                out->offer_roles |= p->bundles[i].offer;
        return PL_OK;
    }
    const bundle_src *b = NULL;
    custom_bundles(p, &b, index - POL_BUNDLE_COUNT);
    if (!b)
        return PL_ERR_NOT_FOUND;
    out->id = b->id;
    out->title = b->title ? b->title : b->id;
    out->mask = b->mask;
    out->offer_roles = b->offer;
    return PL_OK;
}

pl_rc pol_role_grant(const pol_compiled *p, pol_role role, uint64_t *mask)
{
    if (!p || !mask || (unsigned)role >= POL_ROLE_COUNT)
        return PL_ERR_INVALID;
    *mask = p->role_grant[role];
    return PL_OK;
}

pl_rc pol_class_forbidden(const pol_compiled *p, pol_class cls, uint64_t *mask)
{
    if (!p || !mask || (unsigned)cls >= POL_CLASS_COUNT)
        return PL_ERR_INVALID;
    *mask = p->forbid[cls];
    return PL_OK;
}

uint32_t pol_rule_count(const pol_compiled *p)
{
    return p ? p->n_rules : 0;
}

static const char *const kind_names[POL_RULE_KIND_COUNT] = {
    [POL_RULE_ROLE] = "role",       [POL_RULE_CEILING] = "ceiling", [POL_RULE_FORBID] = "forbid",
    [POL_RULE_APPROVE] = "approve", [POL_RULE_RATE] = "rate",       [POL_RULE_TOOL] = "tool",
};

const char *pol_rule_kind_name(pol_rule_kind k)
{
    return (unsigned)k < POL_RULE_KIND_COUNT ? kind_names[k] : "unknown";
}

pl_rc pol_rule_get(const pol_compiled *p, uint32_t index, pol_rule_info *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    if (index >= p->n_rules)
        return PL_ERR_NOT_FOUND;
    out->kind = p->rules[index].kind;
    out->id = p->rules[index].id;
    out->line = p->rules[index].line;
    return PL_OK;
}

uint32_t pol_rate_count(const pol_compiled *p)
{
    return p ? p->n_rates : 0;
}

pl_rc pol_rate_get(const pol_compiled *p, uint32_t index, pol_rate_info *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    if (index >= p->n_rates)
        return PL_ERR_NOT_FOUND;
    const src_rule *r = &p->rules_src[p->rates[index]];
    out->id = r->id;
    out->classes = r->classes;
    out->all_tools = r->all_tools;
    out->limit = r->limit;
    out->period_s = r->period_s;
    out->burst = r->burst;
    out->per = r->per;
    out->rule = r->index;
    return PL_OK;
}

pl_rc pol_rate_applies(const pol_compiled *p, uint32_t index, pol_class cls, uint32_t tool,
                       int *applies)
{
    if (!p || !applies || (unsigned)cls >= POL_CLASS_COUNT || tool >= p->n_tools)
        return PL_ERR_INVALID;
    if (index >= p->n_rates)
        return PL_ERR_NOT_FOUND;
    const src_rule *r = &p->rules_src[p->rates[index]];
    int hit = 0;
    if (r->classes & (1u << cls)) {
        if (r->all_tools) {
            hit = 1;
        } else {
            const uint32_t *v = bsearch(&tool, r->tool_idx, r->n_tool_idx, sizeof tool, u32_cmp);
            hit = v != NULL;
        }
    }
    *applies = hit;
    return PL_OK;
}
