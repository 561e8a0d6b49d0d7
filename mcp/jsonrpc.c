#include "mcp/jsonrpc.h"

#include "core/json_text.h"

#include <stdio.h>
#include <string.h>

static void err_set(mcp_rpc_error *err, int code, const char *msg)
{
    if (!err)
        return;
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
}

pl_rc mcp_rpc_prescan(const char *text, size_t len, const mcp_rpc_limits *lim, mcp_rpc_error *err)
{
    size_t depth = 0, slen = 0, i;
    int in_str = 0, esc = 0;
    char msg[160];

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (in_str) {
            if (!esc && c != '\\' && c != '"') {
                /* a run of plain string bytes at once: counted, checked at its end (nothing
                 * inside it can fail otherwise) */
                size_t j = i + 1;
                while (j < len && text[j] != '"' && text[j] != '\\')
                    j++;
                slen += j - i;
                i = j - 1;
                if (slen > lim->max_string) {
                    snprintf(msg, sizeof msg, "a JSON string is longer than the limit of %zu bytes",
                             lim->max_string);
                    err_set(err, MCP_RPC_INVALID_REQUEST, msg);
                    return PL_ERR_TOO_LARGE;
                }
                continue;
            }
            if (esc) {
                esc = 0;
            } else if (c == '\\') {
                esc = 1;
            } else if (c == '"') {
                in_str = 0;
                continue;
            }
            if (++slen > lim->max_string) {
                snprintf(msg, sizeof msg, "a JSON string is longer than the limit of %zu bytes",
                         lim->max_string);
                err_set(err, MCP_RPC_INVALID_REQUEST, msg);
                return PL_ERR_TOO_LARGE;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            slen = 0;
        } else if (c == '{' || c == '[') {
            if (++depth > lim->max_depth) {
                snprintf(msg, sizeof msg, "JSON nesting is deeper than the limit of %zu levels",
                         lim->max_depth);
                err_set(err, MCP_RPC_INVALID_REQUEST, msg);
                return PL_ERR_TOO_LARGE;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return PL_OK;
}

void mcp_rpc_msg_clear(mcp_rpc_msg *msg)
{
    if (!msg)
        return;
    json_decref(msg->root);
    memset(msg, 0, sizeof *msg);
}

/* JSON-RPC 2.0 §4: an id is a string, a number (without a fractional part) or null; MCP
 * 2025-11-25 basic forbids null. */
static int id_valid(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

pl_rc mcp_rpc_parse(const char *text, size_t len, const mcp_rpc_limits *lim, mcp_rpc_msg *out,
                    mcp_rpc_error *err)
{
    json_error_t jerr;
    json_t *root = NULL, *v, *id, *method;
    pl_rc rc;

    memset(out, 0, sizeof *out);
    if (err) {
        err->id = NULL;
        err->code = 0;
        err->msg[0] = '\0';
    }
    rc = mcp_rpc_prescan(text, len, lim, err);
    if (rc != PL_OK)
        goto out;
    /* json_loadb's tree and errors, without its per-character lexer (core/json_text.h) */
    root = core_json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        char msg[160];
        snprintf(msg, sizeof msg, "parse error at line %d column %d: %.80s", jerr.line, jerr.column,
                 jerr.text);
        err_set(err, MCP_RPC_PARSE_ERROR, msg);
        rc = PL_ERR_PARSE;
        goto out;
    }
    if (json_is_array(root)) {
        err_set(err, MCP_RPC_INVALID_REQUEST,
                "JSON-RPC batches are not supported: send one message per request");
        rc = PL_ERR_INVALID;
        goto out;
    }
    if (!json_is_object(root)) {
        err_set(err, MCP_RPC_INVALID_REQUEST, "a JSON-RPC message must be a JSON object");
        rc = PL_ERR_INVALID;
        goto out;
    }
    id = json_object_get(root, "id");
    v = json_object_get(root, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        err_set(err, MCP_RPC_INVALID_REQUEST, "\"jsonrpc\" must be the string \"2.0\"");
        rc = PL_ERR_INVALID;
        goto out;
    }
    if (id && !id_valid(id)) {
        err_set(err, MCP_RPC_INVALID_REQUEST,
                "\"id\" must be a string or an integer (null is not allowed)");
        rc = PL_ERR_INVALID;
        goto out;
    }
    method = json_object_get(root, "method");
    if (!method) {
        /* A response to a request the server sent. */
        int has_result = json_object_get(root, "result") != NULL;
        int has_error = json_object_get(root, "error") != NULL;
        if (!id || has_result == has_error) {
            err_set(err, MCP_RPC_INVALID_REQUEST,
                    "a message without \"method\" must be a response with \"id\" and exactly "
                    "one of \"result\" or \"error\"");
            rc = PL_ERR_INVALID;
            goto out;
        }
        out->kind = MCP_RPC_RESPONSE;
        out->id = id;
    } else {
        if (!json_is_string(method) || json_string_length(method) == 0) {
            err_set(err, MCP_RPC_INVALID_REQUEST, "\"method\" must be a non-empty string");
            rc = PL_ERR_INVALID;
            goto out;
        }
        v = json_object_get(root, "params");
        if (v && !json_is_object(v)) {
            if (json_is_array(v)) {
                err_set(err, MCP_RPC_INVALID_PARAMS,
                        "\"params\" must be an object (MCP uses named parameters)");
            } else {
                err_set(err, MCP_RPC_INVALID_REQUEST, "\"params\" must be an object");
            }
            rc = PL_ERR_INVALID;
            goto out;
        }
        out->kind = id ? MCP_RPC_REQUEST : MCP_RPC_NOTIFICATION;
        out->method = json_string_value(method);
        out->id = id;
        out->params = v;
    }
    out->root = root;
    root = NULL;
    rc = PL_OK;
out:
    if (rc != PL_OK && err && root && json_is_object(root) && id_valid(json_object_get(root, "id")))
        err->id = json_incref(json_object_get(root, "id"));
    json_decref(root);
    return rc;
}

json_t *mcp_rpc_result_new(json_t *id, json_t *result_take)
{
    json_t *o = json_object();
    if (!o || !result_take) {
        json_decref(o);
        json_decref(result_take);
        return NULL;
    }
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
    json_object_set_new(o, "result", result_take);
    return o;
}

json_t *mcp_rpc_error_new(json_t *id, int code, const char *message, json_t *data_take)
{
    json_t *o = json_object(), *e = json_object();
    if (!o || !e) {
        json_decref(o);
        json_decref(e);
        json_decref(data_take);
        return NULL;
    }
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message ? message : ""));
    if (data_take)
        json_object_set_new(e, "data", data_take);
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
    json_object_set_new(o, "error", e);
    return o;
}
