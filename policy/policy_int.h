/*
 * policy/policy_int.h — private layout of pol_compiled, shared by the policy/ sources only.
 * Never include this outside policy/ (and its tests/bench); use policy.h.
 */
#ifndef POSTLY_POLICY_INT_H
#define POSTLY_POLICY_INT_H

#include <stdarg.h>

#include "policy/policy.h"

#define ALL_CLASSES ((uint8_t)((1u << POL_CLASS_COUNT) - 1))
#define ALL_ROLES   ((uint8_t)((1u << POL_ROLE_COUNT) - 1))

typedef struct name_ref {
    char *name;
    uint32_t line, col;
} name_ref;

/* A ceiling, forbid, approve or rate rule as written, plus its compiled index. */
typedef struct src_rule {
    pol_rule_kind kind;
    char *id;
    uint32_t line, col;
    uint8_t classes; /* forbid, approve, rate */
    uint64_t mask;   /* ceiling, forbid */
    char *ws;        /* ceiling: workspace id or "*" */
    name_ref *tools; /* approve, rate */
    uint32_t n_tools;
    uint32_t *tool_idx; /* resolved, sorted, unique */
    uint32_t n_tool_idx;
    int all_tools;
    uint32_t limit, period_s, burst; /* rate */
    pol_rate_per per;
    name_ref *bnames; /* ceiling: bundles= (offered bundles), unless all_bundles */
    uint32_t n_bnames;
    int all_bundles;
    uint64_t bundle_set; /* resolved: bit i = bundle row i */
    int bad;             /* named something unknown or duplicate: ignored by the compiler */
    uint32_t index;      /* compiled rule index (POL_RULE_NONE when bad) */
} src_rule;

/* One tool row, hot fields first (the decision reads only these). */
typedef struct tool_row {
    uint64_t all, any;
    uint8_t approve_classes;
    uint8_t destructive;
    uint32_t rule;
    uint32_t approve_rule[POL_CLASS_COUNT];
} tool_row;

typedef struct tool_src {
    char *name;
    uint32_t line, col;
} tool_src;

typedef struct ws_row {
    const char *id; /* borrowed from the ceiling rule ("*" for the default) */
    size_t id_len;
    uint32_t rule; /* POL_RULE_NONE for an implicit default */
    uint32_t src;  /* index into rules_src, or UINT32_MAX */
} ws_row;

typedef struct bundle_src {
    char *id, *title;
    uint64_t mask;
    uint8_t offer;
    uint32_t line, col;
    int has_mask;
    int builtin; /* index of the recommended bundle, or -1 */
} bundle_src;

typedef struct rule_row {
    pol_rule_kind kind;
    const char *id;
    uint32_t line;
    uint32_t src; /* index into rules_src (ceiling..rate), tools (tool), role (role) */
} rule_row;

struct pol_compiled {
    /* ---- hot: read by pol_decide ---- */
    uint64_t *ws_ceiling; /* [n_ws]; index 0 = default "*" */
    tool_row *tools;      /* [n_tools], sorted by name */
    uint32_t n_ws, n_tools;
    uint64_t forbid[POL_CLASS_COUNT];
    uint32_t forbid_rule[POL_CLASS_COUNT][64];
    uint32_t *ws_rule;    /* [n_ws] ceiling rule index */
    uint64_t *ws_bundles; /* [n_ws] bundle rows offered there (bit i = row i) */
    uint64_t role_grant[POL_ROLE_COUNT];

    /* ---- cold: names, sources, audit ---- */
    ws_row *ws;           /* [n_ws]; 1.. sorted by id */
    tool_src *tool_names; /* [n_tools] */
    uint32_t role_rule[POL_ROLE_COUNT];
    uint32_t role_line[POL_ROLE_COUNT];
    uint8_t role_declared;
    src_rule *rules_src;
    uint32_t n_rules_src, cap_rules_src;
    rule_row *rules; /* sorted by (kind, id) */
    uint32_t n_rules;
    uint32_t *rates; /* indices into rules_src of rate rules, sorted by id */
    uint32_t n_rates;
    bundle_src *bundles;
    uint32_t n_bundles, cap_bundles;
    tool_src *tsrc_tmp; /* parse-time tool rows in file order */
    tool_row *trow_tmp;
    uint32_t n_tmp, cap_tmp;
    int has_default_ceiling;
    uint32_t version_line;
};

/* diag.c */
void pol_diag_add(pol_diags *d, pol_severity sev, pol_diag_code code, uint32_t line, uint32_t col,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* output helpers (output.c) */
void pol_mask_print(FILE *out, uint64_t mask);      /* scope names, comma separated, or "-" */
void pol_mask_print_json(FILE *out, uint64_t mask); /* ["a","b"] */

#endif
