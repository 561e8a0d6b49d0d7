/*
 * mcp/jsonrpc.h — parsing and validating one JSON-RPC 2.0 message as MCP uses it, and
 * building responses.
 *
 * MCP 2025-11-25 basic: every message is a JSON-RPC 2.0 request, notification or response;
 * request ids are strings or integers and never null; params, when present, are an object.
 * Batches (JSON arrays) were removed in 2025-06-18: mcp_rpc_parse refuses them with -32600;
 * mcp/server.c accepts them for 2025-03-26 sessions by parsing each element on its own.
 *
 * Input is bounded before jansson sees it (mcp_rpc_prescan): nesting depth and the raw byte
 * length of every string, so that a hostile body cannot exhaust the stack or memory. Thread:
 * pure functions, any thread.
 */
#ifndef POSTLY_MCP_JSONRPC_H
#define POSTLY_MCP_JSONRPC_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

/* JSON-RPC 2.0 §5.1 and MCP 2025-11-25 server/resources (-32002 resource not found). */
enum {
    MCP_RPC_PARSE_ERROR = -32700,
    MCP_RPC_INVALID_REQUEST = -32600,
    MCP_RPC_METHOD_NOT_FOUND = -32601,
    MCP_RPC_INVALID_PARAMS = -32602,
    MCP_RPC_INTERNAL_ERROR = -32603,
    MCP_RPC_RESOURCE_NOT_FOUND = -32002
};

typedef enum mcp_rpc_kind {
    MCP_RPC_REQUEST,      /* method + id: needs a response */
    MCP_RPC_NOTIFICATION, /* method, no id */
    MCP_RPC_RESPONSE      /* result or error + id (a reply to a server-initiated request) */
} mcp_rpc_kind;

typedef struct mcp_rpc_limits {
    size_t max_depth;  /* deepest nesting of arrays/objects; the top-level object is depth 1 */
    size_t max_string; /* longest string (key or value) in raw bytes, escapes included */
} mcp_rpc_limits;

/* A parsed message. Owns one reference to root; the other pointers are borrowed from root
 * and stay valid until mcp_rpc_msg_clear(). */
typedef struct mcp_rpc_msg {
    json_t *root;
    mcp_rpc_kind kind;
    const char *method; /* NULL for responses */
    json_t *id;         /* string or integer; NULL for notifications */
    json_t *params;     /* object or NULL when absent */
} mcp_rpc_msg;

/* Why a message was refused: the JSON-RPC code, a message naming the problem (static or
 * copied into msg), and the id when it could be read (a borrowed reference into the
 * half-parsed message; json_null() otherwise — copy it before clearing). */
typedef struct mcp_rpc_error {
    int code;
    char msg[160];
    json_t *id; /* new reference or NULL (caller json_decref()s) */
} mcp_rpc_error;

/* Checks nesting depth and string lengths of the raw text without building anything.
 * PL_OK, or PL_ERR_TOO_LARGE with err filled (code -32600, message naming the limit).
 * Malformed text is left to the parser (PL_OK). */
pl_rc mcp_rpc_prescan(const char *text, size_t len, const mcp_rpc_limits *lim, mcp_rpc_error *err);

/* Parses and validates one message. PL_OK and *out filled, or:
 *   PL_ERR_PARSE     err->code -32700 (not JSON, invalid UTF-8, duplicate keys);
 *   PL_ERR_TOO_LARGE err->code -32600 (a limit of lim);
 *   PL_ERR_INVALID   err->code -32600 (valid JSON but not a valid JSON-RPC message)
 *                    or -32602 (params present but not an object).
 * On failure *out is cleared and err->id holds the request id when one was readable. */
pl_rc mcp_rpc_parse(const char *text, size_t len, const mcp_rpc_limits *lim, mcp_rpc_msg *out,
                    mcp_rpc_error *err);

/* Releases root and zeroes msg. Accepts NULL and an already-cleared msg. */
void mcp_rpc_msg_clear(mcp_rpc_msg *msg);

/* {"jsonrpc":"2.0","id":id,"result":result_take}. id is borrowed (copied, json_null() when
 * NULL); result_take is consumed. NULL when out of memory. */
json_t *mcp_rpc_result_new(json_t *id, json_t *result_take);

/* {"jsonrpc":"2.0","id":id,"error":{"code":code,"message":message[,"data":data_take]}}. */
json_t *mcp_rpc_error_new(json_t *id, int code, const char *message, json_t *data_take);

#endif
