/*
 * postly-policy — compiles and audits policy files (docs/policy.md "The CLI").
 *
 * Exit codes (stable): 0 success / clean / equivalent / all cases pass;
 *                      1 findings / differences / failing cases;
 *                      2 unusable input (syntax, I/O, unknown names) or bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define EXIT_FINDINGS 1
#define EXIT_UNUSABLE 2

typedef struct cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *help;
} cmd;

static const cmd *find_cmd(const char *name);

static int has_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* Removes a flag (and its value when takes_value) from argv; returns its value, "" for a
 * present boolean flag, or NULL when absent. Sets *bad when a value is missing. */
static const char *take(int *argc, char **argv, const char *flag, int takes_value, int *bad)
{
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], flag) != 0)
            continue;
        const char *v = "";
        int drop = 1;
        if (takes_value) {
            if (i + 1 >= *argc) {
                *bad = 1;
                return NULL;
            }
            v = argv[i + 1];
            drop = 2;
        }
        for (int j = i; j + drop <= *argc; j++)
            argv[j] = argv[j + drop];
        *argc -= drop;
        return v;
    }
    return NULL;
}

/* Removes boolean flag `name` from argv; 1 when it was there. */
static int flag(int *argc, char **argv, const char *name)
{
    int unused = 0;
    return take(argc, argv, name, 0, &unused) != NULL;
}

static int usage_error(const char *cmdname, const char *msg)
{
    const cmd *c = find_cmd(cmdname);
    fprintf(stderr, "postly-policy %s: %s\nusage: postly-policy %s\n", cmdname, msg,
            c ? c->usage : "");
    return EXIT_UNUSABLE;
}

static int unknown_flags(const char *cmdname, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown option %.100s", argv[i]);
            return usage_error(cmdname, msg);
        }
    }
    return 0;
}

/* Prints why `path` is unusable (its diagnostics, then a summary line) to stderr. */
static int unusable(const pol_diags *d, const char *path, pl_rc rc)
{
    pol_diags_print(d, stderr);
    fprintf(stderr, "%s: unusable (%s)\n", path, pl_strerror(rc));
    return EXIT_UNUSABLE;
}

/* Loads strictly: any error or fatal diagnostic makes the input unusable. */
static pol_compiled *load(const char *path)
{
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    pl_rc rc = pol_load_file(path, 0, &d, &p);
    if (rc != PL_OK)
        unusable(&d, path, rc);
    pol_diags_free(&d);
    return p;
}

static int cmd_scopes(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    if (unknown_flags("scopes", argc, argv) || argc != 0)
        return usage_error("scopes", "takes no arguments");
    return pol_scopes_write(json, stdout) == PL_OK ? 0 : EXIT_UNUSABLE;
}

static int cmd_compile(int argc, char **argv)
{
    if (unknown_flags("compile", argc, argv) || argc != 1)
        return usage_error("compile", "needs exactly one FILE");
    pol_compiled *p = load(argv[0]);
    if (!p)
        return EXIT_UNUSABLE;
    pl_rc rc = pol_compiled_write(p, stdout);
    pol_compiled_free(p);
    return rc == PL_OK ? 0 : EXIT_UNUSABLE;
}

static int cmd_summary(int argc, char **argv)
{
    if (unknown_flags("summary", argc, argv) || argc != 1)
        return usage_error("summary", "needs exactly one FILE");
    pol_compiled *p = load(argv[0]);
    if (!p)
        return EXIT_UNUSABLE;
    pl_rc rc = pol_summary_write(p, argv[0], stdout);
    pol_compiled_free(p);
    return rc == PL_OK ? 0 : EXIT_UNUSABLE;
}

static int cmd_check(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    int nolock = flag(&argc, argv, "--no-lock"), bad = 0;
    const char *lock = take(&argc, argv, "--lock", 1, &bad);
    char deflock[4096];
    if (bad)
        return usage_error("check", "--lock needs a FILE");
    if (lock && nolock)
        return usage_error("check", "--lock and --no-lock exclude each other");
    if (unknown_flags("check", argc, argv) || argc != 1)
        return usage_error("check", "needs exactly one FILE");
    const char *path = argv[0];
    if (!lock && !nolock) {
        /* scopes.lock next to the policy file, when there is one */
        const char *slash = strrchr(path, '/');
        int dl = slash ? (int)(slash - path) : 1;
        snprintf(deflock, sizeof deflock, "%.*s/scopes.lock", dl, slash ? path : ".");
        FILE *f = fopen(deflock, "r");
        if (f) {
            fclose(f);
            lock = deflock;
        }
    }
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    pl_rc rc = pol_load_file(path, POL_LOAD_KEEP_ERRORS, &d, &p);
    int code = 0;
    if (rc == PL_OK)
        rc = pol_check(p, (lock && *lock) ? lock : NULL, &d);
    if (rc != PL_OK) {
        code = unusable(&d, path, rc);
        goto out;
    }
    size_t findings = d.count[POL_SEV_ERROR] + d.count[POL_SEV_WARNING];
    if (json) {
        fputs("{\"file\":", stdout);
        pol_json_string(stdout, path);
        fputs(",\"lock\":", stdout);
        pol_json_string(stdout, lock && *lock ? lock : NULL);
        printf(",\"errors\":%zu,\"warnings\":%zu,\"dropped\":%zu,\"findings\":",
               d.count[POL_SEV_ERROR], d.count[POL_SEV_WARNING], d.dropped);
        pol_diags_print_json(&d, stdout);
        puts("}");
    } else {
        pol_diags_print(&d, stdout);
        if (findings)
            printf("%s: %zu errors, %zu warnings\n", path, d.count[POL_SEV_ERROR],
                   d.count[POL_SEV_WARNING]);
        else
            printf("%s: clean (%s)\n", path,
                   lock && *lock ? "scope lock checked" : "no scope lock");
    }
    code = findings ? EXIT_FINDINGS : 0;
out:
    pol_compiled_free(p);
    pol_diags_free(&d);
    return code;
}

static int parse_token(const char *list, const char *bundle, const char *cmdname, uint64_t *mask)
{
    *mask = 0;
    if (bundle) {
        const pol_bundle_info *b;
        if (pol_bundle_lookup(bundle, strlen(bundle), &b) != PL_OK)
            return usage_error(cmdname, "unknown --bundle (see `postly-policy compile`)");
        *mask |= b->mask;
    }
    if (list) {
        /* accept both "a b" (RFC 6749) and "a,b" */
        char buf[POL_SCOPE_LIST_MAX + 1];
        size_t n = strlen(list), off = 0;
        uint64_t m;
        if (n > POL_SCOPE_LIST_MAX)
            return usage_error(cmdname, "--scopes too long");
        memcpy(buf, list, n + 1);
        for (size_t i = 0; i < n; i++)
            if (buf[i] == ',')
                buf[i] = ' ';
        if (pol_scope_parse_list(buf, n, &m, &off) != PL_OK) {
            char msg[200];
            snprintf(msg, sizeof msg, "bad --scopes at offset %zu: %.60s", off, list + off);
            return usage_error(cmdname, msg);
        }
        *mask |= m;
    }
    return 0;
}

static int cmd_explain(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    int bad = 0;
    const char *tool = take(&argc, argv, "--tool", 1, &bad);
    const char *ws = take(&argc, argv, "--workspace", 1, &bad);
    const char *cls = take(&argc, argv, "--class", 1, &bad);
    const char *scopes = take(&argc, argv, "--scopes", 1, &bad);
    const char *bundle = take(&argc, argv, "--bundle", 1, &bad);
    const char *role = take(&argc, argv, "--role", 1, &bad);
    pol_role r = POL_ROLE_OWNER;
    if (bad)
        return usage_error("explain", "an option is missing its value");
    if (unknown_flags("explain", argc, argv) || argc != 1 || (!tool == !role))
        return usage_error("explain", "needs FILE and either --tool or --role");
    if (role && pol_role_lookup(role, strlen(role), &r) != PL_OK)
        return usage_error("explain", "--role must be owner, admin, editor or viewer");
    uint64_t token;
    pol_class c = POL_CLASS_FIRST_PARTY;
    int rc = parse_token(scopes, bundle, "explain", &token);
    if (rc)
        return rc;
    if (cls && pol_class_lookup(cls, strlen(cls), &c) != PL_OK)
        return usage_error("explain",
                           "--class must be first_party, preregistered, cimd or dynamic");
    pol_compiled *p = load(argv[0]);
    if (!p)
        return EXIT_UNUSABLE;
    uint32_t wi = 0, ti;
    int code = 0;
    if (ws && strcmp(ws, "*") != 0)
        pol_workspace_index(p, ws, strlen(ws), &wi, NULL);
    if (role) {
        if (pol_grant_explain_write(p, r, wi, (uint32_t)c, token, json, stdout) != PL_OK)
            code = EXIT_UNUSABLE;
    } else if (pol_tool_index(p, tool, strlen(tool), &ti) != PL_OK) {
        fprintf(stderr, "postly-policy explain: no tool '%s' in %s\n", tool, argv[0]);
        code = EXIT_UNUSABLE;
    } else if (pol_explain_write(p, token, wi, (uint32_t)c, ti, json, stdout) != PL_OK) {
        code = EXIT_UNUSABLE;
    }
    pol_compiled_free(p);
    return code;
}

static int cmd_diff(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    if (unknown_flags("diff", argc, argv) || argc != 2)
        return usage_error("diff", "needs two FILEs");
    pol_compiled *a = load(argv[0]), *b = a ? load(argv[1]) : NULL;
    int code = EXIT_UNUSABLE;
    size_t changed = 0;
    if (a && b &&
        (json ? pol_diff_write_json(a, b, stdout, &changed)
              : pol_diff_write(a, b, stdout, &changed)) == PL_OK)
        code = changed ? EXIT_FINDINGS : 0;
    pol_compiled_free(b);
    pol_compiled_free(a);
    return code;
}

static int cmd_whocan(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    unsigned bit;
    if (unknown_flags("who-can", argc, argv) || argc != 2)
        return usage_error("who-can", "needs FILE and SCOPE");
    if (pol_scope_lookup(argv[1], strlen(argv[1]), &bit) != PL_OK)
        return usage_error("who-can", "unknown SCOPE (see `postly-policy scopes`)");
    pol_compiled *p = load(argv[0]);
    if (!p)
        return EXIT_UNUSABLE;
    int code = pol_whocan_write(p, bit, json, stdout) == PL_OK ? 0 : EXIT_UNUSABLE;
    pol_compiled_free(p);
    return code;
}

/* test [--json] CASES (the file names its policy) or test [--json] POLICY CASES */
static int cmd_test(int argc, char **argv)
{
    int json = flag(&argc, argv, "--json");
    if (unknown_flags("test", argc, argv) || argc < 1 || argc > 2)
        return usage_error("test", "needs CASES, or POLICY and CASES");
    pol_compiled *p = NULL;
    const char *cases = argv[argc - 1];
    if (argc == 2 && !(p = load(argv[0])))
        return EXIT_UNUSABLE;
    pol_diags d;
    size_t passed = 0, failed = 0;
    pol_diags_init(&d);
    pl_rc rc = pol_test_run(p, cases, json, stdout, &d, &passed, &failed);
    int code = failed ? EXIT_FINDINGS : 0;
    if (rc != PL_OK)
        code = unusable(&d, d.file, rc); /* d.file: CASES, or the policy it names */
    pol_diags_free(&d);
    pol_compiled_free(p);
    return code;
}

static const cmd cmds[] = {
    {"scopes", cmd_scopes, "scopes [--json]",
     "Prints the scope registry, one 'BIT NAME' line per scope, in bit order."},
    {"compile", cmd_compile, "compile FILE",
     "Prints the canonical compiled table of FILE (byte-identical for the same semantics;\n"
     "independent of line order). Includes one 'bundle <id> 0x<16 hex>' line per bundle."},
    {"check", cmd_check, "check [--lock LOCK | --no-lock] [--json] FILE",
     "Audits FILE: unknown names, moved or reused bits (against LOCK, default scopes.lock\n"
     "next to FILE when present), bundles exceeding a role or ceiling they are offered under,\n"
     "rules that never fire, shadowed and redundant rules, destructive tools not marked,\n"
     "scopes no tool requires. Prints FILE:LINE:COL: severity: message [code]."},
    {"explain", cmd_explain,
     "explain FILE (--tool NAME | --role ROLE) [--workspace ID] [--class CLASS] "
     "[--scopes LIST] [--bundle ID] [--json]",
     "With --tool: every mask step and rule id of one decision for a token holding the\n"
     "scopes. With --role: for each requested scope, whether a member of ROLE may grant it\n"
     "to a client of CLASS in the workspace, and if not why (role, ceiling, class) with the\n"
     "rule ids. LIST is space- or comma-separated; --bundle adds a recommended bundle's\n"
     "scopes. Defaults: workspace *, class first_party."},
    {"diff", cmd_diff, "diff [--json] A B",
     "Labels each workspace x client class, role, tool and rate rule of B against A: equivalent,\n"
     "more-permissive, less-permissive or incomparable, with +scope/-scope changes.\n"
     "Exit 1 when anything changed. --json: one object (docs/policy.md \"JSON output\")."},
    {"who-can", cmd_whocan, "who-can [--json] FILE SCOPE",
     "Lists which roles, client classes, bundles, workspaces and tools can obtain SCOPE."},
    {"test", cmd_test, "test [--json] [POLICY] CASES",
     "Runs a file of expected decisions (docs/policy.md \"Expectation files\"): the policy\n"
     "named by its 'policy PATH' line (relative to CASES), or POLICY when given (to hold a\n"
     "candidate policy to the same expectations). Prints each failure and 'N passed, M\n"
     "failed'; exit 1 when a case fails. --json: one object with the failures."},
    {"summary", cmd_summary, "summary FILE", "A short human overview of FILE."},
};

static const cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static void main_usage(FILE *out)
{
    fputs("usage: postly-policy COMMAND [ARGS]   (COMMAND --help for details)\n", out);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(out, "  %s\n", cmds[i].usage);
    fputs("exit: 0 success/clean, 1 findings/differences/failures, 2 unusable input or usage\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        main_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_UNUSABLE : 0;
    }
    const cmd *c = find_cmd(argv[1]);
    if (!c) {
        fprintf(stderr, "postly-policy: unknown command '%s'\n", argv[1]);
        main_usage(stderr);
        return EXIT_UNUSABLE;
    }
    if (has_help(argc - 2, argv + 2)) {
        printf("usage: postly-policy %s\n\n%s\n", c->usage, c->help);
        return 0;
    }
    return c->run(argc - 2, argv + 2);
}
