/* The tool table (ARCHITECTURE.md §8) and tools/list, tools/call (MCP 2025-11-25
 * server/tools). Every tool is a thin adapter over the execution layer: the input schema
 * bounds and names every argument, the service does the work in one transaction, the result
 * is the service's JSON as structuredContent plus the same JSON as text. Required scopes are
 * not here: they come from the policy file's tool rows (policy/default.policy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/account.h"
#include "exec/workspace.h"
#include "mcp/mcp_int.h"

/* ---- adapters ---- */

static pl_rc t_get_workspace(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                             ex_err *err)
{
    pl_rc rc = ex_workspace_get(ex, ws, out, err);
    if (rc == PL_ERR_NOT_FOUND) {
        /* The directory knows the workspace (the token names it); the execution layer keeps
         * its content record from the first use on. */
        json_t *a = json_pack("{s:s}", "name", ws);
        rc = a ? ex_workspace_ensure(ex, ws, a, out, err) : PL_ERR_NOMEM;
        json_decref(a);
    }
    return rc;
}

/* ---- schemas (JSON text; checked at start-up by mcp_schema_check) ---- */

#define S_EMPTY_IN "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"
#define S_CURSOR                                                                                   \
    "\"cursor\":{\"type\":\"string\",\"maxLength\":512,\"description\":\"Opaque next_cursor "      \
    "from the previous page; omit for the first page.\"},"                                         \
    "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"Page size "   \
    "(default 20).\"}"
#define S_PLATFORM_ENUM                                                                            \
    "[\"facebook\",\"instagram\",\"pinterest\",\"youtube\",\"google_business\",\"linkedin\","      \
    "\"x\"]"
#define S_PAGE_OUT                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":"      \
    "\"object\"}},\"next_cursor\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"items\"]}"
#define S_OBJ_OUT(req)                                                                             \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"version\":{\"type\":"     \
    "\"integer\"}},\"required\":[" req "]}"

const mcp_tool mcp_tools[] = {
    {"postly_get_workspace", "Get workspace",
     "Returns the workspace this connection acts in: id, name, plan, default time zone and "
     "settings. Use it first to learn the time zone before scheduling. Read-only.",
     S_EMPTY_IN,
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":"
     "\"string\"},\"plan\":{\"type\":\"string\"},\"timezone\":{\"type\":\"string\"}},"
     "\"required\":[\"id\",\"name\",\"plan\",\"timezone\"]}",
     1, 0, 1, 0, NULL, t_get_workspace},
    {"postly_list_social_accounts", "List social accounts",
     "Lists the social accounts connected to this workspace (Facebook, Instagram, Pinterest, "
     "YouTube, Google Business Profile, LinkedIn, X) with their state; an account in "
     "needs_reconnect cannot publish until the user reconnects it. Use the ids as account_ids "
     "when creating posts. Paginated: pass next_cursor back as cursor. Read-only.",
     "{\"type\":\"object\",\"properties\":{\"platform\":{\"type\":\"string\","
     "\"enum\":" S_PLATFORM_ENUM
     ",\"description\":\"Only accounts of this network.\"},\"state\":{\"type\":"
     "\"string\",\"enum\":[\"connected\",\"needs_reconnect\"]}," S_CURSOR
     "},\"additionalProperties\":false}",
     S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_account_list},
    {"postly_get_social_account", "Get social account",
     "Returns one social account of this workspace by id, with its platform-specific choices "
     "(Pinterest boards, Google Business locations) needed when targeting it. Read-only.",
     "{\"type\":\"object\",\"properties\":{\"account_id\":{\"type\":\"string\",\"maxLength\":48,"
     "\"description\":\"An id from postly_list_social_accounts (acc_...).\"}},\"required\":["
     "\"account_id\"],\"additionalProperties\":false}",
     S_OBJ_OUT("\"id\""), 1, 0, 1, 0, NULL, ex_account_get},
};
const size_t mcp_tools_count = sizeof mcp_tools / sizeof mcp_tools[0];

static const mcp_tool *tool_find(const char *name, size_t *index)
{
    size_t i;
    for (i = 0; i < mcp_tools_count; i++) {
        if (strcmp(mcp_tools[i].name, name) == 0) {
            *index = i;
            return &mcp_tools[i];
        }
    }
    return NULL;
}

static const char *const platform_names[] = {"facebook",        "instagram", "pinterest", "youtube",
                                             "google_business", "linkedin",  "x"};

/* The policy row of t for these args ("postly_get_platform_analytics#facebook"). */
static void policy_name(const mcp_tool *t, const json_t *args, char *buf, size_t bufsz)
{
    const char *v = t->policy_suffix_arg
                        ? json_string_value(json_object_get(args, t->policy_suffix_arg))
                        : NULL;
    if (v)
        snprintf(buf, bufsz, "%s#%s", t->name, v);
    else
        snprintf(buf, bufsz, "%s", t->name);
}

/* Visible in tools/list: the policy lets this client obtain it here (maybe after step-up). */
static int tool_visible(const mcp_call *c, const mcp_tool *t)
{
    char name[POL_NAME_MAX + 32];
    size_t i;
    mcp_gate_result g;
    if (!t->policy_suffix_arg) {
        g = mcp_gate_peek(c, t->name);
        return g != MCP_GATE_POLICY && g != MCP_GATE_NO_ROW;
    }
    for (i = 0; i < sizeof platform_names / sizeof platform_names[0]; i++) {
        snprintf(name, sizeof name, "%s#%s", t->name, platform_names[i]);
        g = mcp_gate_peek(c, name);
        if (g != MCP_GATE_POLICY && g != MCP_GATE_NO_ROW)
            return 1;
    }
    return 0;
}

pl_rc mcp_tools_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    json_t *arr = json_array(), *res;
    size_t i;
    const json_t *cursor = json_object_get(params, "cursor");
    if (cursor) {
        /* The whole catalogue fits one page; no cursor of ours exists. */
        json_decref(arr);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.cursor: invalid cursor");
        return PL_ERR_INVALID;
    }
    for (i = 0; arr && i < mcp_tools_count; i++) {
        const mcp_tool *t = &mcp_tools[i];
        json_t *row;
        if (!tool_visible(c, t))
            continue;
        row = json_pack("{s:s, s:s, s:s, s:O, s:O, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name,
                        "title", t->title, "description", t->description, "inputSchema",
                        c->srv->tool_in[i], "outputSchema", c->srv->tool_out[i], "annotations",
                        "title", t->title, "readOnlyHint", t->read_only, "destructiveHint",
                        t->destructive, "idempotentHint", t->idempotent, "openWorldHint",
                        t->open_world);
        if (row)
            json_array_append_new(arr, row);
    }
    res = json_pack("{s:o}", "tools", arr);
    if (!res)
        return PL_ERR_NOMEM;
    *result = res;
    return PL_OK;
}

/* A tool execution error (isError: true) the model can read and act on. */
static json_t *tool_error(const char *code, const char *field, const char *message)
{
    json_t *detail = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "field",
                               field ? field : "", "message", message);
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_t *res = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text",
                            text ? text : message, "isError", 1);
    free(text);
    json_decref(detail);
    return res;
}

static const char *rule_name(const mcp_call *c, uint32_t rule)
{
    pol_rule_info ri;
    if (rule == POL_RULE_NONE || pol_rule_get(c->srv->deps.policy, rule, &ri) != PL_OK)
        return "-";
    return ri.id;
}

pl_rc mcp_tools_call(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const json_t *args = json_object_get(params, "arguments");
    json_t *empty = NULL, *out = NULL, *res = NULL;
    const mcp_tool *t;
    char pname[POL_NAME_MAX + 32], msg[400];
    pol_decision d;
    mcp_gate_result g;
    ex_err xe;
    size_t idx = 0;
    pl_rc rc;

    memset(&d, 0, sizeof d);
    memset(&xe, 0, sizeof xe);
    if (!name) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.name: required string");
        return PL_ERR_INVALID;
    }
    t = tool_find(name, &idx);
    if (!t) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "unknown tool: %.100s", name);
        return PL_ERR_INVALID;
    }
    if (args && !json_is_object(args)) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.arguments: must be an object");
        return PL_ERR_INVALID;
    }
    if (!args)
        args = empty = json_object();
    /* Arguments first when the policy row depends on one (the platform of analytics). */
    if (t->policy_suffix_arg && mcp_schema_validate(c->srv->tool_in[idx], args, &xe) != PL_OK) {
        res = tool_error("invalid", xe.field, xe.msg);
        mcp_audit(c, "tool", t->name, "invalid_arguments", NULL, args);
        goto out;
    }
    policy_name(t, args, pname, sizeof pname);
    g = mcp_gate(c, pname, &d);
    switch (g) {
    case MCP_GATE_ALLOW:
        break;
    case MCP_GATE_STEP_UP:
        mcp_audit(c, "tool", pname, "deny_scope", &d, args);
        goto out; /* 403 insufficient_scope already formed */
    case MCP_GATE_APPROVAL:
        snprintf(msg, sizeof msg,
                 "%s needs a person's approval before an AI client may run it here (policy rule "
                 "%s); ask a workspace admin",
                 t->name, rule_name(c, d.rule));
        res = tool_error("needs_approval", "", msg);
        mcp_audit(c, "tool", pname, "needs_approval", &d, args);
        goto out;
    case MCP_GATE_POLICY:
    case MCP_GATE_NO_ROW:
        /* Hidden from tools/list and refused: a plain protocol error, no step-up. */
        mcp_audit(c, "tool", pname, "deny_policy", &d, args);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg,
                 "tool %.48s is not available to this client in this workspace (policy rule "
                 "%.32s)",
                 t->name, g == MCP_GATE_POLICY ? rule_name(c, d.rule) : "none");
        json_decref(empty);
        return PL_ERR_DENIED;
    }
    if (mcp_schema_validate(c->srv->tool_in[idx], args, &xe) != PL_OK) {
        res = tool_error("invalid", xe.field, xe.msg);
        mcp_audit(c, "tool", pname, "invalid_arguments", &d, args);
        goto out;
    }
    rc = t->fn(c->srv->deps.ex, c->who->ws, args, &out, &xe);
    if (rc != PL_OK) {
        res = tool_error(pl_errname(rc), xe.field, xe.msg[0] ? xe.msg : pl_strerror(rc));
        mcp_audit(c, "tool", pname, pl_errname(rc), &d, args);
        goto out;
    }
    {
        char *text = json_dumps(out, JSON_COMPACT);
        res = json_pack("{s:[{s:s}], s:O, s:b}", "content", "type", "text", "structuredContent",
                        out, "isError", 0);
        if (res && text)
            json_object_set_new(json_array_get(json_object_get(res, "content"), 0), "text",
                                json_string(text));
        free(text);
    }
    mcp_audit(c, "tool", pname, "ok", &d, args);
out:
    json_decref(out);
    json_decref(empty);
    if (c->http_done) {
        json_decref(res);
        return PL_ERR_DENIED;
    }
    if (!res)
        return PL_ERR_NOMEM;
    *result = res;
    return PL_OK;
}
