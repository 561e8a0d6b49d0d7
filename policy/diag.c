/*
 * policy/diag.c — bounded diagnostic lists and the names of classes, roles, codes.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

static const char *const class_names[POL_CLASS_COUNT] = {
    [POL_CLASS_FIRST_PARTY] = "first_party",
    [POL_CLASS_PREREGISTERED] = "preregistered",
    [POL_CLASS_CIMD] = "cimd",
    [POL_CLASS_DYNAMIC] = "dynamic",
};

static const char *const role_names[POL_ROLE_COUNT] = {
    [POL_ROLE_OWNER] = "owner",
    [POL_ROLE_ADMIN] = "admin",
    [POL_ROLE_EDITOR] = "editor",
    [POL_ROLE_VIEWER] = "viewer",
};

static const char *const code_names[POL_D__COUNT] = {
    [POL_D_IO] = "io",
    [POL_D_TOO_LARGE] = "too-large",
    [POL_D_LINE_TOO_LONG] = "line-too-long",
    [POL_D_BAD_BYTE] = "bad-byte",
    [POL_D_SYNTAX] = "syntax",
    [POL_D_UNKNOWN_NAME] = "unknown-name",
    [POL_D_DUPLICATE] = "duplicate",
    [POL_D_MOVED_BIT] = "moved-bit",
    [POL_D_REUSED_BIT] = "reused-bit",
    [POL_D_LOCK] = "lock",
    [POL_D_BUNDLE_MISMATCH] = "bundle-mismatch",
    [POL_D_BUNDLE_EXCEEDS] = "bundle-exceeds",
    [POL_D_NEVER_FIRES] = "never-fires",
    [POL_D_SHADOWED] = "shadowed",
    [POL_D_REDUNDANT] = "redundant",
    [POL_D_DESTRUCTIVE_UNMARKED] = "destructive-unmarked",
    [POL_D_SCOPE_UNUSED] = "scope-unused",
    [POL_D_TOOL_UNREACHABLE] = "tool-unreachable",
    [POL_D_ROLE_MISSING] = "role-missing",
};

static const char *const sev_names[] = {"error", "error", "warning"};

const char *pol_class_name(pol_class c)
{
    return (unsigned)c < POL_CLASS_COUNT ? class_names[c] : "unknown";
}

const char *pol_role_name(pol_role r)
{
    return (unsigned)r < POL_ROLE_COUNT ? role_names[r] : "unknown";
}

/* The index of the name (len bytes) in table[0..count), or -1. */
static int lookup(const char *const *table, unsigned count, const char *name, size_t len)
{
    for (unsigned i = 0; i < count; i++)
        if (strlen(table[i]) == len && memcmp(table[i], name, len) == 0)
            return (int)i;
    return -1;
}

pl_rc pol_class_lookup(const char *name, size_t len, pol_class *out)
{
    if (!name || !out)
        return PL_ERR_INVALID;
    int i = lookup(class_names, POL_CLASS_COUNT, name, len);
    if (i < 0)
        return PL_ERR_NOT_FOUND;
    *out = (pol_class)i;
    return PL_OK;
}

pl_rc pol_role_lookup(const char *name, size_t len, pol_role *out)
{
    if (!name || !out)
        return PL_ERR_INVALID;
    int i = lookup(role_names, POL_ROLE_COUNT, name, len);
    if (i < 0)
        return PL_ERR_NOT_FOUND;
    *out = (pol_role)i;
    return PL_OK;
}

const char *pol_diag_code_name(pol_diag_code c)
{
    return (unsigned)c < POL_D__COUNT ? code_names[c] : "unknown";
}

void pol_diags_init(pol_diags *d)
{
    if (d)
        memset(d, 0, sizeof *d);
}

void pol_diags_free(pol_diags *d)
{
    if (!d)
        return;
    free(d->v);
    d->v = NULL;
    d->n = d->cap = 0;
}

void pol_diag_add(pol_diags *d, pol_severity sev, pol_diag_code code, uint32_t line, uint32_t col,
                  const char *fmt, ...)
{
    va_list ap;
    if (!d)
        return;
    if ((unsigned)sev <= POL_SEV_WARNING)
        d->count[sev]++;
    if (d->n >= POL_DIAGS_MAX) {
        d->dropped++;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        pol_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            d->dropped++;
            return;
        }
        d->v = v;
        d->cap = cap;
    }
    pol_diag *g = &d->v[d->n++];
    g->sev = sev;
    g->code = code;
    g->line = line;
    g->col = col;
    va_start(ap, fmt);
    vsnprintf(g->msg, sizeof g->msg, fmt, ap);
    va_end(ap);
}

static int diag_cmp(const void *a, const void *b)
{
    const pol_diag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    if (x->code != y->code)
        return x->code < y->code ? -1 : 1;
    return strcmp(x->msg, y->msg);
}

/* The diagnostics in print order: a sorted copy (caller frees *copy), or d->v unsorted when
 * the copy cannot be allocated. Printing leaves d untouched. */
static const pol_diag *sorted(const pol_diags *d, pol_diag **copy)
{
    *copy = d->n ? malloc(d->n * sizeof **copy) : NULL;
    if (!*copy)
        return d->v;
    memcpy(*copy, d->v, d->n * sizeof **copy);
    qsort(*copy, d->n, sizeof **copy, diag_cmp);
    return *copy;
}

void pol_diags_print(const pol_diags *d, FILE *out)
{
    pol_diag *copy;
    if (!d || !out)
        return;
    const pol_diag *src = sorted(d, &copy);
    const char *file = d->file[0] ? d->file : "<policy>";
    for (size_t i = 0; i < d->n; i++) {
        const pol_diag *g = &src[i];
        if (g->line && g->col)
            fprintf(out, "%s:%u:%u: ", file, g->line, g->col);
        else if (g->line)
            fprintf(out, "%s:%u: ", file, g->line);
        else
            fprintf(out, "%s: ", file);
        fprintf(out, "%s: %s [%s]\n", sev_names[g->sev], g->msg, pol_diag_code_name(g->code));
    }
    if (d->dropped)
        fprintf(out, "%s: note: %zu more diagnostics not shown\n", file, d->dropped);
    free(copy);
}

void pol_diags_print_json(const pol_diags *d, FILE *out)
{
    pol_diag *copy;
    if (!d || !out)
        return;
    const pol_diag *src = sorted(d, &copy);
    fputc('[', out);
    for (size_t i = 0; i < d->n; i++) {
        const pol_diag *g = &src[i];
        fprintf(out, "%s{\"line\":%u,\"col\":%u,\"severity\":\"%s\",\"code\":\"%s\",\"message\":",
                i ? "," : "", g->line, g->col, sev_names[g->sev], pol_diag_code_name(g->code));
        pol_json_string(out, g->msg);
        fputc('}', out);
    }
    fputc(']', out);
    free(copy);
}
