/* tests/mcp/test_jsonrpc.c — mcp/jsonrpc.c: classification, every error code path, bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/jsonrpc.h"

static const mcp_rpc_limits lim = {8, 64};

static pl_rc parse(const char *s, mcp_rpc_msg *m, mcp_rpc_error *e)
{
    return mcp_rpc_parse(s, strlen(s), &lim, m, e);
}

static void test_request_notification_response(void **st)
{
    mcp_rpc_msg m;
    mcp_rpc_error e;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", &m, &e), PL_OK);
    assert_int_equal(m.kind, MCP_RPC_REQUEST);
    assert_string_equal(m.method, "ping");
    assert_int_equal(json_integer_value(m.id), 7);
    assert_null(m.params);
    mcp_rpc_msg_clear(&m);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"x\"}}",
                           &m, &e),
                     PL_OK);
    assert_string_equal(json_string_value(m.id), "a");
    assert_true(json_is_object(m.params));
    mcp_rpc_msg_clear(&m);

    assert_int_equal(
        parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, &e), PL_OK);
    assert_int_equal(m.kind, MCP_RPC_NOTIFICATION);
    assert_null(m.id);
    mcp_rpc_msg_clear(&m);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", &m, &e), PL_OK);
    assert_int_equal(m.kind, MCP_RPC_RESPONSE);
    assert_null(m.method);
    mcp_rpc_msg_clear(&m);
    mcp_rpc_msg_clear(&m); /* twice is fine */
    mcp_rpc_msg_clear(NULL);
}

static void expect_error(const char *s, pl_rc rc, int code, const char *needle, int id_kept)
{
    mcp_rpc_msg m;
    mcp_rpc_error e;
    assert_int_equal(parse(s, &m, &e), rc);
    assert_int_equal(e.code, code);
    assert_null(m.root);
    if (needle && !strstr(e.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    if (id_kept)
        assert_non_null(e.id);
    else
        assert_null(e.id);
    json_decref(e.id);
}

static void test_errors(void **st)
{
    expect_error("{not json", PL_ERR_PARSE, MCP_RPC_PARSE_ERROR, "parse error", 0);
    expect_error("", PL_ERR_PARSE, MCP_RPC_PARSE_ERROR, NULL, 0);
    /* invalid UTF-8 */
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", PL_ERR_PARSE,
                 MCP_RPC_PARSE_ERROR, NULL, 0);
    /* duplicate keys are ambiguous: refused */
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", PL_ERR_PARSE,
                 MCP_RPC_PARSE_ERROR, NULL, 0);
    expect_error("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "batches", 0);
    expect_error("42", PL_ERR_INVALID, MCP_RPC_INVALID_REQUEST, "object", 0);
    expect_error("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "jsonrpc", 1);
    expect_error("{\"id\":1,\"method\":\"ping\"}", PL_ERR_INVALID, MCP_RPC_INVALID_REQUEST,
                 "jsonrpc", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "null", 0);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "integer", 0);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "method", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "method", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":[1]}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_PARAMS, "object", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":\"s\"}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "object", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1}", PL_ERR_INVALID, MCP_RPC_INVALID_REQUEST,
                 "response", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{}}", PL_ERR_INVALID,
                 MCP_RPC_INVALID_REQUEST, "exactly one", 1);
    expect_error("{\"jsonrpc\":\"2.0\",\"result\":1}", PL_ERR_INVALID, MCP_RPC_INVALID_REQUEST,
                 NULL, 0);
}

static void test_bounds(void **st)
{
    char deep[64], longs[128];
    size_t i;
    mcp_rpc_error e;
    /* depth 8 is fine, 9 is not */
    memset(deep, 0, sizeof deep);
    for (i = 0; i < 8; i++)
        deep[i] = '[';
    for (i = 0; i < 8; i++)
        deep[8 + i] = ']';
    assert_int_equal(mcp_rpc_prescan(deep, strlen(deep), &lim, &e), PL_OK);
    memset(deep, 0, sizeof deep);
    for (i = 0; i < 9; i++)
        deep[i] = '{';
    expect_error(deep, PL_ERR_TOO_LARGE, MCP_RPC_INVALID_REQUEST, "nesting", 0);
    /* brackets inside strings do not count */
    assert_int_equal(mcp_rpc_prescan("{\"a\":\"[[[[[[[[[[[[\"}", 19, &lim, &e), PL_OK);
    /* a 65-byte string is over the 64-byte limit; escapes count as raw bytes */
    memset(longs, 0, sizeof longs);
    longs[0] = '"';
    memset(longs + 1, 'a', 65);
    longs[66] = '"';
    expect_error(longs, PL_ERR_TOO_LARGE, MCP_RPC_INVALID_REQUEST, "64 bytes", 0);
    longs[65] = '"';
    longs[66] = '\0';
    assert_int_equal(mcp_rpc_prescan(longs, strlen(longs), &lim, &e), PL_OK);
    /* an escaped quote does not end the string */
    assert_int_equal(mcp_rpc_prescan("\"\\\"{{{{{{{{{{\"", 14, &lim, &e), PL_OK);
}

static void test_builders(void **st)
{
    json_t *id = json_integer(9);
    json_t *r = mcp_rpc_result_new(id, json_object());
    json_t *e = mcp_rpc_error_new(NULL, MCP_RPC_METHOD_NOT_FOUND, "nope", json_string("d"));
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 9);
    assert_true(json_is_object(json_object_get(r, "result")));
    assert_true(json_is_null(json_object_get(e, "id")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "error"), "code")),
                     -32601);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "error"), "data")),
                        "d");
    assert_null(mcp_rpc_result_new(id, NULL));
    json_decref(r);
    json_decref(e);
    json_decref(id);
}

/* mcp_rpc_prescan before it counted plain string bytes in runs: the reference its answers
 * (return code, message) must match. */
static pl_rc ref_prescan(const char *text, size_t len, const mcp_rpc_limits *l, char *msg,
                         size_t msgsz)
{
    size_t depth = 0, slen = 0, i;
    int in_str = 0, esc = 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (in_str) {
            if (esc) {
                esc = 0;
            } else if (c == '\\') {
                esc = 1;
            } else if (c == '"') {
                in_str = 0;
                continue;
            }
            if (++slen > l->max_string) {
                snprintf(msg, msgsz, "a JSON string is longer than the limit of %zu bytes",
                         l->max_string);
                return PL_ERR_TOO_LARGE;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            slen = 0;
        } else if (c == '{' || c == '[') {
            if (++depth > l->max_depth) {
                snprintf(msg, msgsz, "JSON nesting is deeper than the limit of %zu levels",
                         l->max_depth);
                return PL_ERR_TOO_LARGE;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return PL_OK;
}

static void test_prescan_differential(void **st)
{
    static const char alphabet[] = "\"\\{}[]ab ,:";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    size_t refused = 0;
    (void)st;
    for (int i = 0; i < 100000; i++) {
        char text[64], msg[160];
        mcp_rpc_error err;
        size_t len;
        mcp_rpc_limits lm;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = (size_t)(x % sizeof text);
        lm.max_depth = 1 + (size_t)(x >> 8) % 5;
        lm.max_string = (size_t)(x >> 16) % 12;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text[k] = alphabet[x % (sizeof alphabet - 1)];
        }
        memset(&err, 0, sizeof err);
        pl_rc a = mcp_rpc_prescan(text, len, &lm, &err);
        pl_rc b = ref_prescan(text, len, &lm, msg, sizeof msg);
        assert_int_equal(a, b);
        if (a != PL_OK) {
            assert_int_equal(err.code, MCP_RPC_INVALID_REQUEST);
            assert_string_equal(err.msg, msg);
            refused++;
        }
    }
    assert_true(refused > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_notification_response),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_prescan_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
