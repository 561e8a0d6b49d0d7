/* authz/admin_exec.c — postly-admin accounts …, webhooks … and usage (see admin_exec.h). */
#include "authz/admin_exec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/log.h"
#include "exec/account.h"
#include "exec/store.h"
#include "exec/webhook.h"
#include "mcp/usage.h"

/* The words after the verb: positional arguments and --flag value pairs. */
typedef struct words {
    int argc;
    char **argv;
} words;

static const char *opt(const words *w, const char *flag)
{
    for (int i = 0; i + 1 < w->argc; i++)
        if (strcmp(w->argv[i], flag) == 0)
            return w->argv[i + 1];
    return NULL;
}

static int has_flag(const words *w, const char *flag)
{
    for (int i = 0; i < w->argc; i++)
        if (strcmp(w->argv[i], flag) == 0)
            return 1;
    return 0;
}

/* Flags that take no value; every other flag takes one. */
static int valueless(const char *flag)
{
    return strcmp(flag, "--allow-http-loopback") == 0 || strcmp(flag, "--force") == 0;
}

/* The first word that is neither a flag nor a flag's value. */
static const char *positional(const words *w)
{
    for (int i = 0; i < w->argc; i++) {
        if (valueless(w->argv[i]))
            continue;
        if (strncmp(w->argv[i], "--", 2) == 0) {
            i++;
            continue;
        }
        return w->argv[i];
    }
    return NULL;
}

/* Every word must be a known flag (with its value when it takes one) or the one positional
 * argument the verb expects (named by id_what, "webhook id (whk_...)"; NULL when it takes
 * none); anything else is a usage error naming it. */
static int check_words(const words *w, const char *const *flags, const char *id_what, FILE *err)
{
    int seen = 0;
    for (int i = 0; i < w->argc; i++) {
        const char *a = w->argv[i];
        size_t k;
        if (valueless(a)) {
            for (k = 0; flags[k] && strcmp(flags[k], a) != 0; k++) {
            }
            if (!flags[k])
                goto bad;
            continue;
        }
        if (strncmp(a, "--", 2) == 0) {
            for (k = 0; flags[k] && strcmp(flags[k], a) != 0; k++) {
            }
            if (!flags[k])
                goto bad;
            if (i + 1 >= w->argc) {
                fprintf(err, "postly-admin: %s: missing value\n", a);
                return 2;
            }
            i++;
            continue;
        }
        if (id_what && !seen) {
            seen = 1;
            continue;
        }
    bad:
        fprintf(err, "postly-admin: unexpected argument \"%.60s\"\n", a);
        return 2;
    }
    if (id_what && !seen) {
        fprintf(err, "postly-admin: missing the %s\n", id_what);
        return 2;
    }
    return 0;
}

static void print_json(FILE *out, const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        fprintf(out, "%s\n", s);
    free(s);
}

/* Prints an answer holding a fresh secret: the secret on a line of its own, once, and the
 * rest without it; then wipes the copy jansson kept. */
static void print_with_secret(FILE *out, json_t *j, const char *what)
{
    json_t *secret = json_object_get(j, "secret");
    char buf[EX_WEBHOOK_SECRET_SIZE];
    snprintf(buf, sizeof buf, "%s", json_string_value(secret) ? json_string_value(secret) : "");
    json_object_del(j, "secret");
    print_json(out, j);
    fprintf(out, "%s: %s\n(shown once: store it in the receiver now; it cannot be shown again)\n",
            what, buf);
    core_wipe(buf, sizeof buf);
}

/* Opens <data>/exec and fills ctx for one command (real clock, errors-only log). */
static int open_exec(const char *data, ex_store **st, ex_ctx *ctx, core_log *log, FILE *err)
{
    pl_rc rc = ex_store_open_data_dir(data, 0, st);
    if (rc != PL_OK) {
        fprintf(err, "postly-admin: cannot open the execution store in %s/exec: %s\n", data,
                pl_strerror(rc));
        return 1;
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->store = *st;
    ctx->clock = core_clock_real();
    ctx->log = log;
    ex_limits_default(&ctx->limits);
    return 0;
}

static int cmd_webhooks(const char *data, int argc, char **argv, FILE *out, FILE *err)
{
    static const char *const f_add[] = {
        "--workspace", "--url", "--event", "--description", "--allow-http-loopback", NULL};
    static const char *const f_ws[] = {"--workspace", NULL};
    static const char *const f_dlv[] = {"--workspace", "--webhook", "--limit", NULL};
    const char *verb = argc > 0 ? argv[0] : NULL, *ws, *id;
    words w = {argc > 0 ? argc - 1 : 0, argv + 1};
    core_log log = {NULL, CORE_LOG_ERROR, "admin"};
    ex_store *st = NULL;
    ex_ctx ctx;
    ex_err xe;
    json_t *args = NULL, *res = NULL;
    ex_webhook_url_policy policy = {0};
    int ret = 2;
    pl_rc rc;

    if (!verb)
        return 2;
    if (strcmp(verb, "add") == 0)
        ret = check_words(&w, f_add, NULL, err);
    else if (strcmp(verb, "list") == 0)
        ret = check_words(&w, f_ws, NULL, err);
    else if (strcmp(verb, "remove") == 0 || strcmp(verb, "rotate-secret") == 0)
        ret = check_words(&w, f_ws, "webhook id (whk_...)", err);
    else if (strcmp(verb, "deliveries") == 0)
        ret = check_words(&w, f_dlv, NULL, err);
    else
        fprintf(err, "postly-admin: unknown command \"webhooks %.40s\"\n", verb);
    if (ret != 0)
        return 2;
    ws = opt(&w, "--workspace");
    if (!ws) {
        fprintf(err, "postly-admin: webhooks %s: --workspace WS is required\n", verb);
        return 2;
    }
    memset(&xe, 0, sizeof xe);
    if (strcmp(verb, "add") == 0) {
        json_t *events = json_array();
        const char *url = opt(&w, "--url"), *desc = opt(&w, "--description");
        for (int i = 0; events && i + 1 < w.argc; i++)
            if (strcmp(w.argv[i], "--event") == 0)
                json_array_append_new(events, json_string(w.argv[++i]));
        if (!url || json_array_size(events) == 0) {
            fprintf(err, "postly-admin: webhooks add: --url URL and at least one --event TYPE "
                         "are required\n");
            json_decref(events);
            return 2;
        }
        args = json_pack("{s:s, s:o}", "url", url, "events", events);
        if (args && desc)
            json_object_set_new(args, "description", json_string(desc));
        policy.allow_http_loopback = has_flag(&w, "--allow-http-loopback");
    } else if (strcmp(verb, "list") == 0) {
        args = json_object();
    } else if (strcmp(verb, "deliveries") == 0) {
        const char *hook = opt(&w, "--webhook"), *limit = opt(&w, "--limit");
        args = json_object();
        if (args && hook)
            json_object_set_new(args, "webhook_id", json_string(hook));
        if (args && limit) {
            char *end = NULL;
            long n;
            errno = 0;
            n = strtol(limit, &end, 10);
            if (errno || !end || end == limit || *end || n < 1 || n > 100) {
                fprintf(err,
                        "postly-admin: --limit: expected an integer in 1..100, got \"%.20s\"\n",
                        limit);
                json_decref(args);
                return 2;
            }
            json_object_set_new(args, "limit", json_integer(n));
        }
    } else {
        id = positional(&w);
        args = json_pack("{s:s}", "webhook_id", id);
    }
    if (!args) {
        fprintf(err, "postly-admin: out of memory\n");
        return 1;
    }

    if (open_exec(data, &st, &ctx, &log, err) != 0) {
        json_decref(args);
        return 1;
    }
    if (strcmp(verb, "add") == 0)
        rc = ex_webhook_create(&ctx, ws, args, &policy, &res, &xe);
    else if (strcmp(verb, "list") == 0)
        rc = ex_webhook_list(&ctx, ws, args, &res, &xe);
    else if (strcmp(verb, "remove") == 0)
        rc = ex_webhook_delete(&ctx, ws, args, &res, &xe);
    else if (strcmp(verb, "rotate-secret") == 0)
        rc = ex_webhook_rotate_secret(&ctx, ws, args, &res, &xe);
    else
        rc = ex_webhook_deliveries(&ctx, ws, args, &res, &xe);
    if (rc != PL_OK) {
        fprintf(err, "postly-admin: webhooks %s: %s\n", verb, xe.msg[0] ? xe.msg : pl_strerror(rc));
        ret = 1;
    } else {
        if (strcmp(verb, "add") == 0 || strcmp(verb, "rotate-secret") == 0)
            print_with_secret(out, res,
                              strcmp(verb, "add") == 0 ? "signing secret" : "new signing secret");
        else
            print_json(out, res);
        ret = 0;
    }
    json_decref(res);
    json_decref(args);
    ex_store_free(st);
    return ret;
}

/* --board / --location values: "ID" or "ID=NAME", repeatable, into [{id, name}] (the
 * execution layer validates lengths and counts). */
static json_t *named_items(const words *w, const char *flag)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i + 1 < w->argc; i++) {
        const char *v, *eq;
        if (strcmp(w->argv[i], flag) != 0)
            continue;
        v = w->argv[++i];
        eq = strchr(v, '=');
        if (json_array_append_new(
                arr, eq ? json_pack("{s:s%, s:s}", "id", v, (size_t)(eq - v), "name", eq + 1)
                        : json_pack("{s:s}", "id", v)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* `accounts add|list|remove`: sandbox connector accounts of a workspace through
 * exec/account.h (the code the platform OAuth flow will call once it has a connection).
 * remove refuses while scheduled or publishing posts target the account, unless --force
 * (ex_account_delete). */
static int cmd_accounts(const char *data, int argc, char **argv, FILE *out, FILE *err)
{
    static const char *const f_add[] = {"--workspace", "--platform", "--name", "--remote-account",
                                        "--board",     "--location", NULL};
    static const char *const f_list[] = {"--workspace", "--platform", "--state", NULL};
    static const char *const f_rm[] = {"--workspace", "--force", NULL};
    const char *verb = argc > 0 ? argv[0] : NULL, *ws;
    words w = {argc > 0 ? argc - 1 : 0, argv + 1};
    core_log log = {NULL, CORE_LOG_ERROR, "admin"};
    ex_store *st = NULL;
    ex_ctx ctx;
    ex_err xe;
    json_t *args = NULL, *res = NULL;
    int ret = 2;
    pl_rc rc;

    if (!verb)
        return 2;
    if (strcmp(verb, "add") == 0)
        ret = check_words(&w, f_add, NULL, err);
    else if (strcmp(verb, "list") == 0)
        ret = check_words(&w, f_list, NULL, err);
    else if (strcmp(verb, "remove") == 0)
        ret = check_words(&w, f_rm, "account id (acc_...)", err);
    else
        fprintf(err, "postly-admin: unknown command \"accounts %.40s\"\n", verb);
    if (ret != 0)
        return 2;
    ws = opt(&w, "--workspace");
    if (!ws) {
        fprintf(err, "postly-admin: accounts %s: --workspace WS is required\n", verb);
        return 2;
    }
    memset(&xe, 0, sizeof xe);
    if (strcmp(verb, "add") == 0) {
        const char *platform = opt(&w, "--platform"), *name = opt(&w, "--name");
        const char *remote = opt(&w, "--remote-account");
        if (!platform || !name) {
            fprintf(err, "postly-admin: accounts add: --platform P and --name NAME are required\n");
            return 2;
        }
        args = json_pack("{s:s, s:s, s:o*, s:o*}", "platform", platform, "display_name", name,
                         "boards", named_items(&w, "--board"), "locations",
                         named_items(&w, "--location"));
        if (args && remote)
            json_object_set_new(args, "remote_account", json_string(remote));
    } else if (strcmp(verb, "remove") == 0) {
        args =
            json_pack("{s:s, s:b}", "account_id", positional(&w), "force", has_flag(&w, "--force"));
    } else {
        const char *platform = opt(&w, "--platform"), *state = opt(&w, "--state");
        args = json_pack("{s:i}", "limit", 100);
        if (args && platform)
            json_object_set_new(args, "platform", json_string(platform));
        if (args && state)
            json_object_set_new(args, "state", json_string(state));
    }
    if (!args) {
        fprintf(err, "postly-admin: out of memory\n");
        return 1;
    }
    if (open_exec(data, &st, &ctx, &log, err) != 0) {
        json_decref(args);
        return 1;
    }
    if (strcmp(verb, "add") == 0)
        rc = ex_account_create(&ctx, ws, args, &res, &xe);
    else if (strcmp(verb, "remove") == 0)
        rc = ex_account_delete(&ctx, ws, args, &res, &xe);
    else
        rc = ex_account_list(&ctx, ws, args, &res, &xe);
    if (rc != PL_OK) {
        fprintf(err, "postly-admin: accounts %s: %s\n", verb, xe.msg[0] ? xe.msg : pl_strerror(rc));
        ret = 1;
    } else {
        print_json(out, res);
        ret = 0;
    }
    json_decref(res);
    json_decref(args);
    ex_store_free(st);
    return ret;
}

/* `usage [--workspace WS] [--period YYYY-MM]`: mcp_usage_report, the code postly-mcp's own
 * `usage` subcommand runs. */
static int cmd_usage(const char *data, int argc, char **argv, FILE *out, FILE *err)
{
    static const char *const flags[] = {"--workspace", "--period", NULL};
    words w = {argc, argv};
    const char *period;
    mcp_usage *u = NULL;
    pl_rc rc;
    if (check_words(&w, flags, NULL, err) != 0)
        return 2;
    period = opt(&w, "--period");
    if (period && (strlen(period) != 7 || period[4] != '-' || strspn(period, "0123456789-") != 7)) {
        fprintf(err, "postly-admin: --period: expected YYYY-MM, got \"%.20s\"\n", period);
        return 2;
    }
    rc = mcp_usage_open(data, core_clock_real(), 0, &u);
    if (rc != PL_OK) {
        fprintf(err, "postly-admin: cannot open the usage counters in %s/mcp-usage: %s\n", data,
                pl_strerror(rc));
        return 1;
    }
    rc = mcp_usage_report(u, period, opt(&w, "--workspace"), out);
    mcp_usage_free(u);
    if (rc != PL_OK) {
        fprintf(err, "postly-admin: usage: %s\n", pl_strerror(rc));
        return 1;
    }
    return 0;
}

const az_admin_ext az_admin_exec_cmds[] = {
    {"accounts", cmd_accounts,
     "  accounts add --workspace WS --platform P --name NAME [--remote-account ID]\n"
     "              [--board ID[=NAME]]... [--location ID[=NAME]]...   (sandbox connector)\n"
     "  accounts list --workspace WS [--platform P] [--state connected|needs_reconnect]\n"
     "  accounts remove --workspace WS ID [--force]   (--force: fails the account's pending\n"
     "              targets in scheduled/publishing posts with \"account removed\")\n"},
    {"webhooks", cmd_webhooks,
     "  webhooks add --workspace WS --url URL --event TYPE [--event TYPE]...\n"
     "              [--description TEXT] [--allow-http-loopback]   (secret printed once)\n"
     "  webhooks list --workspace WS\n"
     "  webhooks remove ID --workspace WS\n"
     "  webhooks rotate-secret ID --workspace WS               (new secret printed once)\n"
     "  webhooks deliveries --workspace WS [--webhook ID] [--limit N]\n"},
    {"usage", cmd_usage, "  usage [--workspace WS] [--period YYYY-MM]   postly-mcp's counters\n"},
};
const size_t az_admin_exec_cmds_count = sizeof az_admin_exec_cmds / sizeof az_admin_exec_cmds[0];
