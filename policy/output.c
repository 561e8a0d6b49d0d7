/*
 * policy/output.c — stable text (and JSON) for the audit CLI: the canonical compiled table,
 * the summary, explain, diff and who-can. Output depends only on the table, never on the
 * order of lines in the file, so it can be diffed and scripted.
 */
#include <inttypes.h>
#include <string.h>

#include "policy/policy_int.h"

#define HEX "0x%016" PRIx64

/* Scope names of `mask` in bit order: "a,b" ("-" for none) in text, ["a","b"] in JSON. */
static void mask_list(FILE *out, uint64_t mask, int json)
{
    int first = 1;
    if (!json && !(mask & POL_MASK_ALL)) {
        fputs(mask ? "<unregistered>" : "-", out);
        return;
    }
    if (json)
        fputc('[', out);
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        if (!(mask & POL_MASK(i)))
            continue;
        pol_scope_get(i, &s);
        fprintf(out, json ? "%s\"%s\"" : "%s%s", first ? "" : ",", s->name);
        first = 0;
    }
    if (json)
        fputc(']', out);
}

void pol_mask_print(FILE *out, uint64_t mask)
{
    mask_list(out, mask, 0);
}

void pol_mask_print_json(FILE *out, uint64_t mask)
{
    mask_list(out, mask, 1);
}

void pol_json_string(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", out);
        else if (*c == '\t')
            fputs("\\t", out);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

pl_rc pol_scopes_write(int json, FILE *out)
{
    if (!out)
        return PL_ERR_INVALID;
    if (json)
        fputc('[', out);
    for (unsigned i = 0; i < pol_scope_count(); i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        if (!json) {
            fprintf(out, "%u %s\n", s->bit, s->name);
            continue;
        }
        fprintf(out, "%s{\"bit\":%u,\"name\":", i ? "," : "", s->bit);
        pol_json_string(out, s->name);
        fprintf(out, ",\"category\":\"%s\",\"destructive\":%s,\"description\":",
                pol_category_name(s->category), s->destructive ? "true" : "false");
        pol_json_string(out, s->description);
        fputc('}', out);
    }
    if (json)
        fputs("]\n", out);
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

static void set_print(FILE *out, uint8_t set, unsigned count, const char *(*name)(unsigned))
{
    int first = 1;
    if (set == (uint8_t)((1u << count) - 1)) {
        fputc('*', out);
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        if (!(set & (1u << i)))
            continue;
        fprintf(out, "%s%s", first ? "" : ",", name(i));
        first = 0;
    }
    if (first)
        fputc('-', out);
}

static const char *class_n(unsigned i)
{
    return pol_class_name((pol_class)i);
}

static const char *role_n(unsigned i)
{
    return pol_role_name((pol_role)i);
}

static void tools_print(const pol_compiled *p, FILE *out, const src_rule *r)
{
    if (r->all_tools) {
        fputc('*', out);
        return;
    }
    for (uint32_t j = 0; j < r->n_tool_idx; j++)
        fprintf(out, "%s%s", j ? "," : "", p->tool_names[r->tool_idx[j]].name);
    if (!r->n_tool_idx)
        fputc('-', out);
}

static const char *const per_names[] = {"client", "user", "workspace"};

pl_rc pol_compiled_write(const pol_compiled *p, FILE *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    fputs("# postly-policy compiled table; masks are uint64 scope bits (policy/scopes.lock)\n",
          out);
    fputs("format 1\n", out);
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        fprintf(out, "scope %u %s " HEX "%s\n", i, s->name, POL_MASK(i),
                s->destructive ? " destructive" : "");
    }
    for (uint32_t i = 0; i < pol_bundle_row_count(p); i++) {
        pol_bundle_row b;
        pol_bundle_row_get(p, i, &b);
        fprintf(out, "bundle %s " HEX " offer=", b.id, b.mask);
        set_print(out, b.offer_roles, POL_ROLE_COUNT, role_n);
        fputc('\n', out);
    }
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++)
        fprintf(out, "role %s " HEX "%s\n", pol_role_name((pol_role)r), p->role_grant[r],
                (p->role_declared & (1u << r)) ? "" : " undeclared");
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++)
        fprintf(out, "class %s forbidden " HEX "\n", pol_class_name((pol_class)c), p->forbid[c]);
    for (uint32_t w = 0; w < p->n_ws; w++) {
        fprintf(out, "workspace %s ceiling " HEX " rule=%s\n", p->ws[w].id, p->ws_ceiling[w],
                p->ws_rule[w] == POL_RULE_NONE ? "-" : p->rules[p->ws_rule[w]].id);
        for (unsigned c = 0; c < POL_CLASS_COUNT; c++)
            fprintf(out, "effective %s %s " HEX "\n", p->ws[w].id, pol_class_name((pol_class)c),
                    p->ws_ceiling[w] & ~p->forbid[c]);
    }
    for (uint32_t t = 0; t < p->n_tools; t++) {
        const tool_row *r = &p->tools[t];
        fprintf(out,
                "tool %s all=" HEX " any=" HEX " destructive=%s approve=", p->tool_names[t].name,
                r->all, r->any, r->destructive ? "yes" : "no");
        set_print(out, r->approve_classes, POL_CLASS_COUNT, class_n);
        fputc('\n', out);
    }
    for (uint32_t i = 0; i < p->n_rules; i++) {
        const rule_row *row = &p->rules[i];
        fprintf(out, "rule %u %s %s", i, pol_rule_kind_name(row->kind), row->id);
        if (row->kind == POL_RULE_FORBID || row->kind == POL_RULE_APPROVE ||
            row->kind == POL_RULE_RATE) {
            const src_rule *r = &p->rules_src[row->src];
            fputs(" class=", out);
            set_print(out, r->classes, POL_CLASS_COUNT, class_n);
            if (row->kind == POL_RULE_FORBID) {
                fprintf(out, " scopes=" HEX, r->mask);
            } else {
                fputs(" tool=", out);
                tools_print(p, out, r);
            }
            if (row->kind == POL_RULE_RATE)
                fprintf(out, " limit=%u period=%us burst=%u per=%s", r->limit, r->period_s,
                        r->burst, per_names[r->per]);
        } else if (row->kind == POL_RULE_CEILING) {
            const src_rule *r = &p->rules_src[row->src];
            fprintf(out, " workspace=%s scopes=" HEX, r->ws, r->mask);
        }
        fputc('\n', out);
    }
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

static unsigned popcount(uint64_t m)
{
    return (unsigned)__builtin_popcountll(m);
}

pl_rc pol_summary_write(const pol_compiled *p, const char *name, FILE *out)
{
    if (!p || !out)
        return PL_ERR_INVALID;
    uint64_t required = 0;
    unsigned destructive = 0, approval = 0;
    uint32_t kinds[POL_RULE_KIND_COUNT] = {0};
    for (uint32_t t = 0; t < p->n_tools; t++) {
        required |= p->tools[t].all | p->tools[t].any;
        destructive += p->tools[t].destructive;
        approval += p->tools[t].approve_classes != 0;
    }
    for (uint32_t i = 0; i < p->n_rules; i++)
        kinds[p->rules[i].kind]++;
    fprintf(out, "policy %s\n", name ? name : "<policy>");
    fprintf(out, "  scopes      %u registered, %u destructive, %u required by a tool\n",
            (unsigned)POL_SCOPE_COUNT, popcount(POL_MASK_DESTRUCTIVE),
            popcount(required & POL_MASK_ALL));
    fprintf(out, "  bundles     %u (4 recommended)\n", pol_bundle_row_count(p));
    for (uint32_t i = 0; i < pol_bundle_row_count(p); i++) {
        pol_bundle_row b;
        pol_bundle_row_get(p, i, &b);
        fprintf(out, "    %-22s %2u scopes  offered to ", b.id, popcount(b.mask));
        set_print(out, b.offer_roles, POL_ROLE_COUNT, role_n);
        fputc('\n', out);
    }
    fputs("  roles       what a member may grant\n", out);
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++)
        fprintf(out, "    %-22s %2u scopes\n", pol_role_name((pol_role)r),
                popcount(p->role_grant[r]));
    fputs("  classes     what the authorization server's client classes may never hold\n", out);
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++) {
        fprintf(out, "    %-22s %2u forbidden: ", pol_class_name((pol_class)c),
                popcount(p->forbid[c]));
        pol_mask_print(out, p->forbid[c]);
        fputc('\n', out);
    }
    fprintf(out, "  workspaces  default ceiling %u scopes, %u named ceilings\n",
            popcount(p->ws_ceiling[0]), p->n_ws - 1);
    fprintf(out, "  tools       %u rows, %u destructive, %u need approval for some class\n",
            p->n_tools, destructive, approval);
    fprintf(out, "  rules       %u ceiling, %u forbid, %u approve, %u rate\n",
            kinds[POL_RULE_CEILING], kinds[POL_RULE_FORBID], kinds[POL_RULE_APPROVE],
            kinds[POL_RULE_RATE]);
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

/* ---- explain ---- */

static const char *rule_id(const pol_compiled *p, uint32_t r)
{
    return r == POL_RULE_NONE ? "-" : p->rules[r].id;
}

/* NULL for "no rule" (printed as "-" in text, null in JSON) */
static const char *rid(const pol_compiled *p, uint32_t r)
{
    return r == POL_RULE_NONE ? NULL : p->rules[r].id;
}

static void step(FILE *out, int json, int *first, const char *what, const char *rule, uint64_t mask)
{
    if (json) {
        fprintf(out, "%s{\"step\":", *first ? "" : ",");
        pol_json_string(out, what);
        fputs(",\"rule\":", out);
        pol_json_string(out, rule);
        fprintf(out, ",\"mask\":\"" HEX "\",\"scopes\":", mask);
        pol_mask_print_json(out, mask);
        fputc('}', out);
    } else {
        fprintf(out, "  %-28s %-20s " HEX " ", what, rule ? rule : "-", mask);
        pol_mask_print(out, mask);
        fputc('\n', out);
    }
    *first = 0;
}

pl_rc pol_explain_write(const pol_compiled *p, uint64_t token_mask, uint32_t ws, uint32_t cls,
                        uint32_t tool, int json, FILE *out)
{
    pol_decision d;
    pl_rc rc = pol_decide(p, token_mask, ws, cls, tool, &d);
    if (rc != PL_OK || !out)
        return rc ? rc : PL_ERR_INVALID;
    const tool_row *t = &p->tools[tool];
    uint64_t ceiling = p->ws_ceiling[ws], forb = p->forbid[cls];
    uint64_t after_ceiling = token_mask & ceiling;
    /* name the forbid rule of the first forbidden scope that matters here */
    uint32_t frule = POL_RULE_NONE;
    uint64_t fm = forb & (after_ceiling | t->all | t->any);
    if (!fm)
        fm = forb;
    if (fm)
        frule = p->forbid_rule[cls][__builtin_ctzll(fm)];
    int first = 1;
    char cname[160];
    snprintf(cname, sizeof cname, "ceiling %s", p->ws[ws].id);
    if (json) {
        fputs("{\"verdict\":", out);
        pol_json_string(out, pol_verdict_name(d.verdict));
        fputs(",\"tool\":", out);
        pol_json_string(out, p->tool_names[tool].name);
        fputs(",\"workspace\":", out);
        pol_json_string(out, p->ws[ws].id);
        fputs(",\"class\":", out);
        pol_json_string(out, pol_class_name((pol_class)cls));
        fputs(",\"steps\":[", out);
    } else {
        fprintf(out, "tool       %s (destructive: %s)\n", p->tool_names[tool].name,
                t->destructive ? "yes" : "no");
        fprintf(out, "workspace  %s%s\n", p->ws[ws].id,
                ws ? "" : " (default ceiling: workspace not named in the policy)");
        fprintf(out, "class      %s\n", pol_class_name((pol_class)cls));
        fputs("steps\n", out);
    }
    step(out, json, &first, "token", NULL, token_mask);
    step(out, json, &first, cname, rid(p, p->ws_rule[ws]), ceiling);
    step(out, json, &first, "token & ceiling", NULL, after_ceiling);
    step(out, json, &first, "forbidden for class", rid(p, frule), forb);
    step(out, json, &first, "effective", NULL, d.effective);
    step(out, json, &first, "tool requires all", rid(p, t->rule), t->all);
    step(out, json, &first, "tool requires any", rid(p, t->rule), t->any);
    if (t->approve_classes & (1u << cls))
        step(out, json, &first, "approval required", rid(p, t->approve_rule[cls]), 0);
    if (d.verdict == POL_DENY_SCOPE)
        step(out, json, &first, "missing (would help)", NULL, d.help);
    if (d.verdict == POL_DENY_POLICY)
        step(out, json, &first, "blocked by policy", rid(p, d.rule), d.blocked);
    if (json) {
        fputs("],\"rules\":[", out);
        pol_json_string(out, rule_id(p, d.tool_rule));
        if (d.rule != POL_RULE_NONE) {
            fputc(',', out);
            pol_json_string(out, rule_id(p, d.rule));
        }
        fputs("]}\n", out);
    } else {
        fprintf(out, "decision   %s\n", pol_verdict_name(d.verdict));
        fprintf(out, "rules      tool:%s", rule_id(p, d.tool_rule));
        if (d.rule != POL_RULE_NONE)
            fprintf(out, " %s:%s", pol_rule_kind_name(p->rules[d.rule].kind), rule_id(p, d.rule));
        fputc('\n', out);
    }
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

/* ---- grant explanation ---- */

pl_rc pol_grant_explain_write(const pol_compiled *p, pol_role role, uint32_t ws, uint32_t cls,
                              uint64_t requested, int json, FILE *out)
{
    pol_grant g;
    pl_rc rc = pol_grantable(p, role, ws, cls, requested, &g);
    if (rc != PL_OK || !out)
        return rc ? rc : PL_ERR_INVALID;
    if (json) {
        fputs("{\"role\":", out);
        pol_json_string(out, pol_role_name(role));
        fputs(",\"workspace\":", out);
        pol_json_string(out, p->ws[ws].id);
        fprintf(out, ",\"class\":\"%s\",\"grantable\":", pol_class_name((pol_class)cls));
        pol_mask_print_json(out, g.grantable);
        fputs(",\"scopes\":[", out);
    } else {
        fprintf(out, "role       %s\nworkspace  %s\nclass      %s\n", pol_role_name(role),
                p->ws[ws].id, pol_class_name((pol_class)cls));
    }
    int first = 1;
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        uint64_t m = POL_MASK(i);
        if (!(requested & m))
            continue;
        pol_scope_get(i, &s);
        const char *why[3];
        const char *rules[3];
        int n = 0;
        if (g.denied_role & m) {
            why[n] = "role";
            rules[n++] = rid(p, p->role_rule[role]);
        }
        if (g.denied_ceiling & m) {
            why[n] = "ceiling";
            rules[n++] = rid(p, g.ceiling_rule);
        }
        if (g.denied_class & m) {
            why[n] = "class";
            rules[n++] = rid(p, p->forbid_rule[cls][i]);
        }
        if (json) {
            fprintf(out, "%s{\"scope\":\"%s\",\"grantable\":%s,\"denied_by\":[", first ? "" : ",",
                    s->name, n ? "false" : "true");
            for (int k = 0; k < n; k++) {
                fprintf(out, "%s{\"reason\":\"%s\",\"rule\":", k ? "," : "", why[k]);
                pol_json_string(out, rules[k]);
                fputc('}', out);
            }
            fputs("]}", out);
        } else if (!n) {
            fprintf(out, "scope %s grantable\n", s->name);
        } else {
            fprintf(out, "scope %s denied", s->name);
            for (int k = 0; k < n; k++)
                fprintf(out, " %s:%s", why[k], rules[k] ? rules[k] : "-");
            fputc('\n', out);
        }
        first = 0;
    }
    if (json) {
        fputs("]}\n", out);
    } else {
        fputs("grantable  ", out);
        pol_mask_print(out, g.grantable);
        fputc('\n', out);
    }
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

/* ---- diff ---- */

static const char *label(int more, int less)
{
    if (more && less)
        return "incomparable";
    if (more)
        return "more-permissive";
    if (less)
        return "less-permissive";
    return "equivalent";
}

typedef struct diff_out {
    FILE *out;
    int json;
    int first; /* JSON: no item yet in the current array */
    size_t changed;
} diff_out;

/* JSON: closes the previous array (if any) and opens `"name":[`. */
static void section(diff_out *o, const char *name, int first_section)
{
    if (o->json)
        fprintf(o->out, "%s\"%s\":[", first_section ? "{" : "],", name);
    o->first = 1;
}

/* Starts one item: `kind name` in text, `{"kind":"name"` in JSON. */
static void item(diff_out *o, const char *kind, const char *name)
{
    if (!o->json) {
        fprintf(o->out, "%s %s", kind, name);
        return;
    }
    fprintf(o->out, "%s{\"%s\":", o->first ? "" : ",", kind);
    pol_json_string(o->out, name);
    o->first = 0;
}

/* A string field: ` value` in text, `,"key":"value"` in JSON. */
static void field_str(diff_out *o, const char *key, const char *value)
{
    if (o->json)
        fprintf(o->out, ",\"%s\":\"%s\"", key, value);
    else
        fprintf(o->out, " %s", value);
}

/* Scope changes from a to b: ` +x -y` in bit order (after ` key:` when key) in text,
 * `,"added":[…],"removed":[…]` (inside `"key":{…}` when key) in JSON. */
static void changes(diff_out *o, const char *key, uint64_t a, uint64_t b)
{
    if (o->json) {
        if (key)
            fprintf(o->out, ",\"%s\":{\"added\":", key);
        else
            fputs(",\"added\":", o->out);
        pol_mask_print_json(o->out, b & ~a);
        fputs(",\"removed\":", o->out);
        pol_mask_print_json(o->out, a & ~b);
        if (key)
            fputc('}', o->out);
        return;
    }
    if (key)
        fprintf(o->out, " %s:", key);
    for (unsigned i = 0; i < POL_SCOPE_COUNT; i++) {
        const pol_scope_info *s;
        pol_scope_get(i, &s);
        if ((b & ~a) & POL_MASK(i))
            fprintf(o->out, " +%s", s->name);
        if ((a & ~b) & POL_MASK(i))
            fprintf(o->out, " -%s", s->name);
    }
}

static void item_end(diff_out *o, int more, int less)
{
    fputs(o->json ? "}" : "\n", o->out);
    o->changed += more || less;
}

/* 0: the policy blocks the tool, 1: approval needed, 2: scopes decide. */
static int tool_level(const pol_compiled *p, uint32_t ws, unsigned c, uint32_t t)
{
    pol_decision d;
    pol_decide(p, POL_MASK_ALL, ws, c, t, &d);
    return d.verdict == POL_DENY_POLICY ? 0 : d.verdict == POL_NEEDS_APPROVAL ? 1 : 2;
}

/* The levels of a's tool t in a and in b (by name); 0 when b has no such tool. */
static int tool_levels(const pol_compiled *a, const pol_compiled *b, uint32_t wa, uint32_t wb,
                       unsigned c, uint32_t t, int *la, int *lb)
{
    uint32_t tb;
    const char *nm = a->tool_names[t].name;
    if (pol_tool_index(b, nm, strlen(nm), &tb) != PL_OK)
        return 0;
    *la = tool_level(a, wa, c, t);
    *lb = tool_level(b, wb, c, tb);
    return 1;
}

static int ws_cmp(const char *a, const char *b)
{
    int sa = strcmp(a, "*") == 0, sb = strcmp(b, "*") == 0;
    if (sa || sb)
        return sb - sa;
    return strcmp(a, b);
}

static void diff_ws(const pol_compiled *a, const pol_compiled *b, const char *id, diff_out *o)
{
    static const char *const lv[] = {"blocked", "approval", "open"};
    uint32_t wa = 0, wb = 0;
    if (strcmp(id, "*") != 0) {
        pol_workspace_index(a, id, strlen(id), &wa, NULL);
        pol_workspace_index(b, id, strlen(id), &wb, NULL);
    }
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++) {
        uint64_t ea = a->ws_ceiling[wa] & ~a->forbid[c], eb = b->ws_ceiling[wb] & ~b->forbid[c];
        int more = (eb & ~ea) != 0, less = (ea & ~eb) != 0, la, lb;
        for (uint32_t t = 0; t < a->n_tools; t++) {
            if (tool_levels(a, b, wa, wb, c, t, &la, &lb)) {
                more |= lb > la;
                less |= lb < la;
            }
        }
        item(o, "workspace", id);
        if (o->json)
            fprintf(o->out, ",\"class\":\"%s\"", pol_class_name((pol_class)c));
        else
            fprintf(o->out, " class %s", pol_class_name((pol_class)c));
        field_str(o, "label", label(more, less));
        changes(o, NULL, ea, eb);
        if (o->json)
            fputs(",\"tools\":[", o->out);
        int first = 1;
        for (uint32_t t = 0; t < a->n_tools; t++) {
            if (!tool_levels(a, b, wa, wb, c, t, &la, &lb) || la == lb)
                continue;
            if (o->json) {
                fprintf(o->out, "%s{\"tool\":", first ? "" : ",");
                pol_json_string(o->out, a->tool_names[t].name);
                fprintf(o->out, ",\"from\":\"%s\",\"to\":\"%s\"}", lv[la], lv[lb]);
            } else {
                fprintf(o->out, " %s:%s->%s", a->tool_names[t].name, lv[la], lv[lb]);
            }
            first = 0;
        }
        if (o->json)
            fputc(']', o->out);
        item_end(o, more, less);
    }
}

/* Fewer requirements = more permissive. */
static void any_order(uint64_t a, uint64_t b, int *more, int *less)
{
    if (a == b)
        return;
    if (!b || (a && (a & ~b) == 0))
        *more = 1;
    if (!a || (b && (b & ~a) == 0))
        *less = 1;
    if (a && b && (a & ~b) && (b & ~a))
        *more = *less = 1;
}

static void diff_tool(diff_out *o, const char *name, const tool_row *ta, const tool_row *tb)
{
    if (!ta || !tb) {
        int added = !ta;
        item(o, "tool", name);
        if (o->json)
            fprintf(o->out, ",\"change\":\"%s\"", added ? "added" : "removed");
        else
            fputs(added ? " added" : " removed", o->out);
        field_str(o, "label", added ? "more-permissive" : "less-permissive");
        item_end(o, 1, 0);
        return;
    }
    int more = (ta->all & ~tb->all) != 0, less = (tb->all & ~ta->all) != 0;
    any_order(ta->any, tb->any, &more, &less);
    item(o, "tool", name);
    if (o->json)
        fputs(",\"change\":\"kept\"", o->out);
    field_str(o, "label", label(more, less));
    if (o->json || ta->all != tb->all)
        changes(o, "all", ta->all, tb->all);
    if (o->json || ta->any != tb->any)
        changes(o, "any", ta->any, tb->any);
    if (o->json)
        fprintf(o->out, ",\"destructive\":{\"a\":%s,\"b\":%s}", ta->destructive ? "true" : "false",
                tb->destructive ? "true" : "false");
    else if (ta->destructive != tb->destructive)
        fprintf(o->out, " destructive:%s", tb->destructive ? "yes" : "no");
    item_end(o, more, less);
}

/* 1 when rate rules x (of p) and y (of q) count the same calls: classes, key, tools by name. */
static int rate_same_calls(const pol_compiled *p, const src_rule *x, const pol_compiled *q,
                           const src_rule *y)
{
    if (x->classes != y->classes || x->per != y->per || x->all_tools != y->all_tools)
        return 0;
    if (x->all_tools)
        return 1;
    if (x->n_tool_idx != y->n_tool_idx)
        return 0;
    /* tool indices are sorted and rows are sorted by name: the names come in order */
    for (uint32_t k = 0; k < x->n_tool_idx; k++)
        if (strcmp(p->tool_names[x->tool_idx[k]].name, q->tool_names[y->tool_idx[k]].name) != 0)
            return 0;
    return 1;
}

static void rate_json(FILE *out, const char *key, const src_rule *r)
{
    fprintf(out, ",\"%s\":", key);
    if (!r) {
        pol_json_string(out, NULL);
        return;
    }
    fprintf(out, "{\"limit\":%u,\"period_s\":%u,\"burst\":%u,\"per\":\"%s\"}", r->limit,
            r->period_s, r->burst, per_names[r->per]);
}

/* A rate rule of a (ra) against the one with the same id in b (rb); either may be NULL.
 * A limit added is less permissive, one removed more; with the same calls counted, a higher
 * rate or burst is more permissive; counting other calls is incomparable. */
static void diff_rate(diff_out *o, const pol_compiled *a, const src_rule *ra, const pol_compiled *b,
                      const src_rule *rb)
{
    const int both = ra && rb;
    const src_rule *r = ra ? ra : rb;
    const char *change = !ra ? "added" : !rb ? "removed" : "kept";
    int more = !rb, less = !ra, same = 1;
    if (both) {
        /* calls per second as fractions: limit_b/period_b against limit_a/period_a */
        uint64_t xa = (uint64_t)ra->limit * rb->period_s, xb = (uint64_t)rb->limit * ra->period_s;
        same = rate_same_calls(a, ra, b, rb);
        more = !same || xb > xa || rb->burst > ra->burst;
        less = !same || xb < xa || rb->burst < ra->burst;
    }
    item(o, "rate", r->id);
    if (o->json) {
        fprintf(o->out, ",\"change\":\"%s\"", change);
        field_str(o, "label", label(more, less));
        rate_json(o->out, "a", ra);
        rate_json(o->out, "b", rb);
        fprintf(o->out, ",\"same_calls\":%s", both && same ? "true" : "false");
    } else if (!both) {
        fprintf(o->out, " %s", change);
        field_str(o, "label", label(more, less));
    } else {
        field_str(o, "label", label(more, less));
        if (ra->limit != rb->limit || ra->period_s != rb->period_s)
            fprintf(o->out, " limit:%u/%us->%u/%us", ra->limit, ra->period_s, rb->limit,
                    rb->period_s);
        if (ra->burst != rb->burst)
            fprintf(o->out, " burst:%u->%u", ra->burst, rb->burst);
        if (!same)
            fputs(" counts-other-calls", o->out);
    }
    item_end(o, more, less);
}

static pl_rc diff_write(const pol_compiled *a, const pol_compiled *b, int json, FILE *out,
                        size_t *changed)
{
    if (!a || !b || !out || !changed)
        return PL_ERR_INVALID;
    diff_out o = {out, json, 1, 0};
    /* workspaces: merge the two sorted lists (both have "*" first) */
    section(&o, "workspaces", 1);
    uint32_t i = 0, j = 0;
    while (i < a->n_ws || j < b->n_ws) {
        int c = i >= a->n_ws ? 1 : j >= b->n_ws ? -1 : ws_cmp(a->ws[i].id, b->ws[j].id);
        const char *id = c <= 0 ? a->ws[i].id : b->ws[j].id;
        i += c <= 0;
        j += c >= 0;
        diff_ws(a, b, id, &o);
    }
    section(&o, "roles", 0);
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++) {
        uint64_t ga = a->role_grant[r], gb = b->role_grant[r];
        int more = (gb & ~ga) != 0, less = (ga & ~gb) != 0;
        item(&o, "role", pol_role_name((pol_role)r));
        field_str(&o, "label", label(more, less));
        changes(&o, NULL, ga, gb);
        item_end(&o, more, less);
    }
    /* tools: merge by name */
    section(&o, "tools", 0);
    i = j = 0;
    while (i < a->n_tools || j < b->n_tools) {
        int c = i >= a->n_tools   ? 1
                : j >= b->n_tools ? -1
                                  : strcmp(a->tool_names[i].name, b->tool_names[j].name);
        const char *name = c <= 0 ? a->tool_names[i].name : b->tool_names[j].name;
        diff_tool(&o, name, c <= 0 ? &a->tools[i] : NULL, c >= 0 ? &b->tools[j] : NULL);
        i += c <= 0;
        j += c >= 0;
    }
    /* rate rules: merge by id */
    section(&o, "rates", 0);
    i = j = 0;
    while (i < a->n_rates || j < b->n_rates) {
        const src_rule *ra = i < a->n_rates ? &a->rules_src[a->rates[i]] : NULL;
        const src_rule *rb = j < b->n_rates ? &b->rules_src[b->rates[j]] : NULL;
        int c = !ra ? 1 : !rb ? -1 : strcmp(ra->id, rb->id);
        diff_rate(&o, a, c <= 0 ? ra : NULL, b, c >= 0 ? rb : NULL);
        i += c <= 0;
        j += c >= 0;
    }
    *changed = o.changed;
    if (json)
        fprintf(out, "],\"changed\":%zu}\n", o.changed);
    else
        fprintf(out, "summary %zu changed\n", o.changed);
    return ferror(out) ? PL_ERR_IO : PL_OK;
}

pl_rc pol_diff_write(const pol_compiled *a, const pol_compiled *b, FILE *out, size_t *changed)
{
    return diff_write(a, b, 0, out, changed);
}

pl_rc pol_diff_write_json(const pol_compiled *a, const pol_compiled *b, FILE *out, size_t *changed)
{
    return diff_write(a, b, 1, out, changed);
}

/* ---- who-can ---- */

pl_rc pol_whocan_write(const pol_compiled *p, unsigned bit, int json, FILE *out)
{
    const pol_scope_info *s;
    if (!p || !out || pol_scope_get(bit, &s) != PL_OK)
        return PL_ERR_INVALID;
    uint64_t m = POL_MASK(bit);
    if (json) {
        fputs("{\"scope\":", out);
        pol_json_string(out, s->name);
        fprintf(out, ",\"bit\":%u,\"destructive\":%s,\"roles\":[", bit,
                s->destructive ? "true" : "false");
        int first = 1;
        for (unsigned r = 0; r < POL_ROLE_COUNT; r++)
            if (p->role_grant[r] & m) {
                fprintf(out, "%s\"%s\"", first ? "" : ",", pol_role_name((pol_role)r));
                first = 0;
            }
        fputs("],\"classes\":[", out);
        first = 1;
        for (unsigned c = 0; c < POL_CLASS_COUNT; c++)
            if (!(p->forbid[c] & m)) {
                fprintf(out, "%s\"%s\"", first ? "" : ",", pol_class_name((pol_class)c));
                first = 0;
            }
        fputs("],\"bundles\":[", out);
        first = 1;
        for (uint32_t i = 0; i < pol_bundle_row_count(p); i++) {
            pol_bundle_row b;
            pol_bundle_row_get(p, i, &b);
            if (b.mask & m) {
                fputs(first ? "" : ",", out);
                pol_json_string(out, b.id);
                first = 0;
            }
        }
        fputs("],\"workspaces\":[", out);
        first = 1;
        for (uint32_t w = 0; w < p->n_ws; w++)
            if (p->ws_ceiling[w] & m) {
                fputs(first ? "" : ",", out);
                pol_json_string(out, p->ws[w].id);
                first = 0;
            }
        fputs("],\"tools\":[", out);
        first = 1;
        for (uint32_t t = 0; t < p->n_tools; t++)
            if ((p->tools[t].all | p->tools[t].any) & m) {
                fputs(first ? "" : ",", out);
                pol_json_string(out, p->tool_names[t].name);
                first = 0;
            }
        fputs("]}\n", out);
        return ferror(out) ? PL_ERR_IO : PL_OK;
    }
    fprintf(out, "scope %s bit=%u destructive=%s\n", s->name, bit, s->destructive ? "yes" : "no");
    for (unsigned r = 0; r < POL_ROLE_COUNT; r++)
        fprintf(out, "role %s %s\n", pol_role_name((pol_role)r),
                (p->role_grant[r] & m) ? "can-grant" : "cannot-grant");
    for (unsigned c = 0; c < POL_CLASS_COUNT; c++) {
        if (p->forbid[c] & m)
            fprintf(out, "class %s forbidden rule=%s\n", pol_class_name((pol_class)c),
                    rule_id(p, p->forbid_rule[c][bit]));
        else
            fprintf(out, "class %s can-hold\n", pol_class_name((pol_class)c));
    }
    for (uint32_t i = 0; i < pol_bundle_row_count(p); i++) {
        pol_bundle_row b;
        pol_bundle_row_get(p, i, &b);
        if (b.mask & m)
            fprintf(out, "bundle %s\n", b.id);
    }
    for (uint32_t w = 0; w < p->n_ws; w++)
        fprintf(out, "workspace %s %s rule=%s\n", p->ws[w].id,
                (p->ws_ceiling[w] & m) ? "within-ceiling" : "above-ceiling",
                rule_id(p, p->ws_rule[w]));
    for (uint32_t t = 0; t < p->n_tools; t++)
        if ((p->tools[t].all | p->tools[t].any) & m)
            fprintf(out, "tool %s %s\n", p->tool_names[t].name,
                    (p->tools[t].all & m) ? "requires" : "accepts-any-of");
    return ferror(out) ? PL_ERR_IO : PL_OK;
}
