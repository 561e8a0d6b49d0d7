/*
 * policy/policy.h — the policy language, its compiler, the decision function and the audit
 * (ARCHITECTURE.md §6; the language is documented in docs/policy.md).
 *
 * Life cycle: pol_load_file()/pol_load_buffer() parse and compile a policy file into one
 * immutable pol_compiled. After loading, every function taking `const pol_compiled *` is
 * pure and thread-safe (no locks, no allocation on the decision path: pol_decide(),
 * pol_grantable(), pol_workspace_index(), pol_tool_index()). The MCP server loads once and
 * shares the table between threads; to change policy, load a new table and swap pointers.
 *
 * Names: client classes and workspace roles are a small fixed set (below); workspaces and
 * tools are named in the file. Every rule has a stable id; ids are unique in a file.
 */
#ifndef POSTLY_POLICY_POLICY_H
#define POSTLY_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "policy/scopes.h"

/* ---- Bounds (docs/policy.md "Limits") ---- */
#define POL_LINE_MAX    4096        /* bytes per line, excluding the newline */
#define POL_FILE_MAX    (64u << 20) /* bytes per policy file */
#define POL_RULES_MAX   1000000u    /* rules (ceilings+forbid+approve+rate) per file */
#define POL_TOOLS_MAX   1024u       /* tool/resource rows per file */
#define POL_ID_MAX      64          /* rule and bundle id length */
#define POL_NAME_MAX    128         /* tool and workspace name length */
#define POL_BUNDLES_MAX 64u         /* bundle rows (4 recommended + custom) */
#define POL_DIAGS_MAX   1000u       /* diagnostics kept; more are counted, not kept */
#define POL_RULE_NONE   UINT32_MAX  /* "no rule" in pol_decision */

/* Client classes: assigned by the authorization server from how the client was registered,
 * never claimed by the client. */
typedef enum pol_class {
    POL_CLASS_FIRST_PARTY = 0, /* Postly's own clients, configured by operators */
    POL_CLASS_PREREGISTERED,   /* registered by an admin with postly-admin */
    POL_CLASS_CIMD,            /* identified by a Client ID Metadata Document URL */
    POL_CLASS_DYNAMIC,         /* RFC 7591 dynamic client registration */
    POL_CLASS_COUNT
} pol_class;

/* Workspace roles: what a member of the role may grant to a client. */
typedef enum pol_role {
    POL_ROLE_OWNER = 0,
    POL_ROLE_ADMIN,
    POL_ROLE_EDITOR,
    POL_ROLE_VIEWER,
    POL_ROLE_COUNT
} pol_role;

const char *pol_class_name(pol_class c); /* "dynamic"; "unknown" when out of range */
const char *pol_role_name(pol_role r);   /* "editor"; "unknown" when out of range */
pl_rc pol_class_lookup(const char *name, size_t len, pol_class *out); /* PL_ERR_NOT_FOUND */
pl_rc pol_role_lookup(const char *name, size_t len, pol_role *out);   /* PL_ERR_NOT_FOUND */

/* ---- Diagnostics ---- */

typedef enum pol_severity {
    POL_SEV_FATAL = 0, /* the file is unusable: syntax, bounds, I/O (exit 2) */
    POL_SEV_ERROR,     /* the file parses but is wrong: unknown names, duplicates, bits */
    POL_SEV_WARNING    /* an audit finding: the policy works but says something odd */
} pol_severity;

typedef enum pol_diag_code {
    POL_D_IO = 0,               /* cannot open or read the file */
    POL_D_TOO_LARGE,            /* file over POL_FILE_MAX, or too many rules/tools */
    POL_D_LINE_TOO_LONG,        /* a line over POL_LINE_MAX */
    POL_D_BAD_BYTE,             /* NUL or a control character */
    POL_D_SYNTAX,               /* unknown keyword or key, missing value, bad token */
    POL_D_UNKNOWN_NAME,         /* scope, role, class, tool or bundle not defined */
    POL_D_DUPLICATE,            /* an id, role, tool or workspace ceiling given twice */
    POL_D_MOVED_BIT,            /* a scope line gives a known scope another bit */
    POL_D_REUSED_BIT,           /* a bit given to two names */
    POL_D_LOCK,                 /* the registry disagrees with scopes.lock */
    POL_D_BUNDLE_MISMATCH,      /* a recommended bundle's scopes differ from the product page */
    POL_D_BUNDLE_EXCEEDS,       /* a bundle offered under a role or ceiling it exceeds */
    POL_D_NEVER_FIRES,          /* a rule that cannot affect any decision */
    POL_D_SHADOWED,             /* a rule entirely covered by one other rule */
    POL_D_REDUNDANT,            /* a rule covered by the union of others / equal to default */
    POL_D_DESTRUCTIVE_UNMARKED, /* a tool needs a destructive scope, no `destructive` flag */
    POL_D_SCOPE_UNUSED,         /* a registered scope that no tool or resource requires */
    POL_D_TOOL_UNREACHABLE,     /* a tool no class can use in any workspace */
    POL_D_ROLE_MISSING,         /* a role not declared (it grants nothing) */
    POL_D__COUNT
} pol_diag_code;

typedef struct pol_diag {
    pol_severity sev;
    pol_diag_code code;
    uint32_t line; /* 1-based; 0 when the finding is about the whole file */
    uint32_t col;  /* 1-based byte column; 0 when not about one place */
    char msg[320];
} pol_diag;

/* A bounded list of diagnostics. Zero-initialise, or pol_diags_init(); free with
 * pol_diags_free() (accepts NULL). Not thread-safe: one per load. */
typedef struct pol_diags {
    pol_diag *v;
    size_t n, cap;
    size_t dropped;  /* diagnostics beyond POL_DIAGS_MAX, counted only */
    size_t count[3]; /* per severity, including dropped ones */
    char file[256];  /* the name diagnostics print (the path given to load) */
} pol_diags;

void pol_diags_init(pol_diags *d);
void pol_diags_free(pol_diags *d);
const char *pol_diag_code_name(pol_diag_code c); /* "shadowed" */
/* Prints every diagnostic as "FILE:LINE:COL: error: message [code]" (LINE/COL omitted
 * when 0), sorted by line then column, one per line. */
void pol_diags_print(const pol_diags *d, FILE *out);

/* ---- Loading ---- */

typedef struct pol_compiled pol_compiled;

/* Flags for pol_load_*: */
#define POL_LOAD_KEEP_ERRORS 1u /* return a table even with POL_SEV_ERROR diagnostics */

/* Parses and compiles the policy at `path` (read with a bounded reader: no line or file
 * over the limits is ever held in memory). `diags` (required) receives every diagnostic,
 * and its `file` is set to `path`.
 *  PL_OK           *out owns a new table; free with pol_compiled_free()
 *  PL_ERR_IO       the file cannot be read (diagnostic POL_D_IO)
 *  PL_ERR_PARSE    a fatal diagnostic (syntax, line or byte); *out NULL
 *  PL_ERR_TOO_LARGE file, rule or tool bounds exceeded; *out NULL
 *  PL_ERR_INVALID  error diagnostics (unknown names, duplicates, bits) and no
 *                  POL_LOAD_KEEP_ERRORS; *out NULL. With the flag: PL_OK and a table in
 *                  which the offending items are ignored.
 *  PL_ERR_NOMEM */
pl_rc pol_load_file(const char *path, unsigned flags, pol_diags *diags, pol_compiled **out);

/* The same for `len` bytes at `buf` (need not be NUL-terminated); `name` is used in
 * diagnostics. */
pl_rc pol_load_buffer(const char *name, const char *buf, size_t len, unsigned flags,
                      pol_diags *diags, pol_compiled **out);

void pol_compiled_free(pol_compiled *p);

/* ---- Lookups (allocation-free; binary search) ---- */

/* The workspace index for the workspace id given by `len` bytes at `id`: the index of its
 * own ceiling when the policy names it, else the index of the default ceiling `*` (0).
 * *named (may be NULL) is 1 when the id has its own ceiling. Always PL_OK for valid args. */
pl_rc pol_workspace_index(const pol_compiled *p, const char *id, size_t len, uint32_t *index,
                          int *named);
uint32_t pol_workspace_count(const pol_compiled *p); /* including the default (index 0) */
/* The id ("*" for index 0) and ceiling of workspace `index`. Borrowed; valid until free. */
pl_rc pol_workspace_get(const pol_compiled *p, uint32_t index, const char **id, uint64_t *ceiling,
                        uint32_t *rule);

/* The bundles the consent page offers in workspace `index`: bit i = bundle row i
 * (pol_bundle_row_get), from the ceiling's `bundles=` (default: every bundle). */
pl_rc pol_workspace_bundles(const pol_compiled *p, uint32_t index, uint64_t *rows);

/* The row of tool or resource `name` ("postly_publish_post", "resource:postly://workspace",
 * "postly_get_platform_analytics#facebook"). PL_ERR_NOT_FOUND when the policy has no row:
 * callers must then deny. */
pl_rc pol_tool_index(const pol_compiled *p, const char *name, size_t len, uint32_t *index);
uint32_t pol_tool_count(const pol_compiled *p);

typedef struct pol_tool_info {
    const char *name; /* borrowed; valid until pol_compiled_free */
    uint64_t all;     /* every one of these scopes is required */
    uint64_t any;     /* at least one of these is required (0 = no any-of requirement) */
    int destructive;
    uint8_t approve_classes; /* bit c set: class c needs approval for this tool */
    uint32_t rule;           /* the tool row's rule index */
} pol_tool_info;
pl_rc pol_tool_get(const pol_compiled *p, uint32_t index, pol_tool_info *out);

/* Bundles in the table: the four recommended bundles (indices 0..3, enum pol_bundle_index)
 * then custom bundles sorted by id. `offer_roles` bit r: offered to members of role r. */
typedef struct pol_bundle_row {
    const char *id, *title;
    uint64_t mask;
    uint8_t offer_roles;
} pol_bundle_row;
uint32_t pol_bundle_row_count(const pol_compiled *p);
pl_rc pol_bundle_row_get(const pol_compiled *p, uint32_t index, pol_bundle_row *out);

/* The scopes a member of `role` may grant, and the scopes `class` is forbidden. */
pl_rc pol_role_grant(const pol_compiled *p, pol_role role, uint64_t *mask);
pl_rc pol_class_forbidden(const pol_compiled *p, pol_class cls, uint64_t *mask);

/* ---- Rules ---- */

typedef enum pol_rule_kind {
    POL_RULE_ROLE = 0,
    POL_RULE_CEILING,
    POL_RULE_FORBID,
    POL_RULE_APPROVE,
    POL_RULE_RATE,
    POL_RULE_TOOL,
    POL_RULE_KIND_COUNT
} pol_rule_kind;

typedef struct pol_rule_info {
    pol_rule_kind kind;
    const char *id; /* rule id; the role or tool name for those kinds. Borrowed. */
    uint32_t line;  /* where it was written */
} pol_rule_info;
uint32_t pol_rule_count(const pol_compiled *p);
pl_rc pol_rule_get(const pol_compiled *p, uint32_t index, pol_rule_info *out);
const char *pol_rule_kind_name(pol_rule_kind k); /* "forbid" */

/* Rate rules, for the MCP server's token buckets: `limit` calls per `period_s` seconds, a
 * bucket of `burst` (default = limit), one bucket per `per` key, for calls of the classes in
 * `classes` (bit per pol_class) to the tools in the rule (all tools when all_tools). */
typedef enum pol_rate_per { POL_PER_CLIENT = 0, POL_PER_USER, POL_PER_WORKSPACE } pol_rate_per;
typedef struct pol_rate_info {
    const char *id;
    uint8_t classes;
    int all_tools;
    uint32_t limit, period_s, burst;
    pol_rate_per per;
    uint32_t rule;
} pol_rate_info;
uint32_t pol_rate_count(const pol_compiled *p);
pl_rc pol_rate_get(const pol_compiled *p, uint32_t index, pol_rate_info *out);
/* *applies = 1 when rate rule `index` covers a call of `cls` to tool `tool`. */
pl_rc pol_rate_applies(const pol_compiled *p, uint32_t index, pol_class cls, uint32_t tool,
                       int *applies);

/* ---- Decisions (no allocation, no parsing, no locks) ---- */

typedef enum pol_verdict {
    POL_ALLOW = 0,
    POL_DENY_SCOPE,     /* the token lacks scopes; `help` lists the ones that would help */
    POL_DENY_POLICY,    /* a ceiling or a forbid rule removes what the tool needs */
    POL_NEEDS_APPROVAL, /* an approve rule: a person must approve the call first */
} pol_verdict;
const char *pol_verdict_name(pol_verdict v); /* "ALLOW", "DENY_SCOPE", … */

typedef struct pol_decision {
    pol_verdict verdict;
    uint64_t effective; /* token & ceiling & ~forbidden: what the token may use here */
    uint64_t help;      /* DENY_SCOPE: scopes that would help and the policy allows */
    uint64_t blocked;   /* DENY_POLICY: needed scopes the policy removes */
    uint32_t tool_rule; /* the tool row's rule */
    uint32_t rule;      /* the deciding rule (ceiling, forbid, approve) or POL_RULE_NONE */
} pol_decision;

/* Decides whether a token carrying `token_mask` may call tool `tool` (pol_tool_index) in
 * workspace `ws` (pol_workspace_index) for a client of class `cls`. Order: policy first
 * (DENY_POLICY if the ceiling or a forbid rule removes a needed scope), then scopes
 * (DENY_SCOPE), then approval (NEEDS_APPROVAL), else ALLOW.
 * postly_get_platform_analytics: look up "postly_get_platform_analytics#<platform>", whose
 * row requires exactly that platform's scope.
 * PL_ERR_INVALID for a NULL argument or an out-of-range index; *out untouched then. */
pl_rc pol_decide(const pol_compiled *p, uint64_t token_mask, uint32_t ws, uint32_t cls,
                 uint32_t tool, pol_decision *out);

/* For the consent page: which of `requested` a member of `role` may grant to a client of
 * `cls` in workspace `ws`, and why each other scope is unavailable. A scope may be denied
 * for several reasons; each mask is a subset of `requested`. */
typedef struct pol_grant {
    uint64_t grantable;
    uint64_t denied_role;    /* the role may not grant it */
    uint64_t denied_ceiling; /* above the workspace ceiling (rule: ceiling_rule) */
    uint64_t denied_class;   /* forbidden for this client class (pol_forbid_rule) */
    uint32_t ceiling_rule;
} pol_grant;
pl_rc pol_grantable(const pol_compiled *p, pol_role role, uint32_t ws, uint32_t cls,
                    uint64_t requested, pol_grant *out);

/* The forbid rule (smallest id) that forbids scope `bit` to `cls`, or POL_RULE_NONE. */
pl_rc pol_forbid_rule(const pol_compiled *p, pol_class cls, unsigned bit, uint32_t *rule);

/* ---- Audit and output (text meant for diffs and scripts; see docs/policy.md) ---- */

/* Adds every audit finding (POL_SEV_WARNING, plus POL_D_LOCK errors) to `d`. `lock_path`
 * (may be NULL: skip) is a scopes.lock file to compare the registry against.
 *  PL_OK         the audit ran (findings, if any, are in d)
 *  PL_ERR_IO     lock_path cannot be opened (a fatal POL_D_IO diagnostic; nothing checked)
 *  PL_ERR_NOMEM  PL_ERR_INVALID (NULL p or d) */
pl_rc pol_check(const pol_compiled *p, const char *lock_path, pol_diags *d);

/* Writes the canonical compiled table: the same policy semantics give byte-identical
 * output, whatever the order of lines in the file. */
pl_rc pol_compiled_write(const pol_compiled *p, FILE *out);

/* A short human overview (counts, roles, classes, workspaces). */
pl_rc pol_summary_write(const pol_compiled *p, const char *name, FILE *out);

/* Every mask step and rule id of one decision (`json`: one JSON object). */
pl_rc pol_explain_write(const pol_compiled *p, uint64_t token_mask, uint32_t ws, uint32_t cls,
                        uint32_t tool, int json, FILE *out);

/* For the consent page and audits: each requested scope, grantable or not and why (role,
 * ceiling, class with the deciding rule ids). */
pl_rc pol_grant_explain_write(const pol_compiled *p, pol_role role, uint32_t ws, uint32_t cls,
                              uint64_t requested, int json, FILE *out);

/* Labels each workspace × class of b against a: "equivalent", "more-permissive",
 * "less-permissive" or "incomparable", with +scope/-scope lists; also roles, tools and rate
 * rules (by id).
 * *changed = number of non-equivalent items. pol_diff_write writes text lines,
 * pol_diff_write_json one JSON object (docs/policy.md "JSON output"). */
pl_rc pol_diff_write(const pol_compiled *a, const pol_compiled *b, FILE *out, size_t *changed);
pl_rc pol_diff_write_json(const pol_compiled *a, const pol_compiled *b, FILE *out, size_t *changed);

/* Who can obtain scope `bit`: roles, classes, bundles, workspaces, tools. */
pl_rc pol_whocan_write(const pol_compiled *p, unsigned bit, int json, FILE *out);

/* Runs the expectation file at `cases_path` (docs/policy.md "Expectation files").
 * The policy: `p` when not NULL (a `policy PATH` line in the file is then only checked for
 * syntax), else the one the file names with `policy PATH` (relative to the file's folder),
 * loaded strictly and freed before returning. Prints each failing case and a summary to
 * `out` (`json`: one JSON object, written only when the run completes).
 *  PL_OK          every line understood; *passed / *failed count the cases
 *  PL_ERR_PARSE   a malformed line, or no policy: diagnostic (FILE:LINE:COL) in d
 *  PL_ERR_IO      the cases file cannot be read
 *  other          the named policy's load failed (pol_load_file); d then holds that
 *                 policy's diagnostics and d->file is the policy's path
 * Not thread-safe with respect to `d` and `out`. */
pl_rc pol_test_run(const pol_compiled *p, const char *cases_path, int json, FILE *out, pol_diags *d,
                   size_t *passed, size_t *failed);

/* Diagnostics as one JSON array, sorted as pol_diags_print sorts them:
 * [{"line":N,"col":N,"severity":"error"|"warning","code":"shadowed","message":"…"}]. */
void pol_diags_print_json(const pol_diags *d, FILE *out);

/* `s` as a JSON string (quotes, escapes for '"', '\\' and control bytes); `null` when s
 * is NULL. */
void pol_json_string(FILE *out, const char *s);

/* The scope registry: one "BIT NAME" line per scope, or (json) one JSON array of
 * {"bit","name","category","destructive","description"}. */
pl_rc pol_scopes_write(int json, FILE *out);

#endif
