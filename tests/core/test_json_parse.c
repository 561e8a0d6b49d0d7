/* tests/core/test_json_parse.c — core_json_loadb (core/json_text.h), which postly-mcp parses
 * every JSON-RPC message with, must give exactly json_loadb's answer: the same tree (values
 * and key order, compared through the compact dump) for every input jansson accepts, and
 * NULL with the same error (text, line, column, position) for every input it refuses.
 * Differential over edge cases, every prefix of valid messages, texts dumped from random
 * trees, and random byte mutations of them, under each flag combination. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json_text.h"
#include "tests/common/json_random.h"

static const size_t flag_sets[] = {0, JSON_REJECT_DUPLICATES, JSON_DECODE_ANY,
                                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                   JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY};

static size_t accepted; /* how many inputs jansson accepted: the test covers both sides */

static void same_n(const char *text, size_t len)
{
    for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
        json_error_t e1, e2;
        json_t *mine = core_json_loadb(text, len, flag_sets[f], &e1);
        json_t *ref = json_loadb(text, len, flag_sets[f], &e2);
        if (!ref) {
            if (mine)
                fail_msg("flags %zu: jansson refuses \"%.*s\" (%s), core_json_loadb accepts",
                         flag_sets[f], (int)len, text, e2.text);
            assert_string_equal(e1.text, e2.text);
            assert_int_equal(e1.line, e2.line);
            assert_int_equal(e1.column, e2.column);
            assert_int_equal(e1.position, e2.position);
            assert_string_equal(e1.source, e2.source);
            continue;
        }
        accepted++;
        if (!mine)
            fail_msg("flags %zu: jansson accepts \"%.*s\", core_json_loadb refuses (%s)",
                     flag_sets[f], (int)len, text, e1.text);
        char *a = json_dumps(mine, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(a);
        assert_non_null(b);
        if (strcmp(a, b) != 0 || !json_equal(mine, ref))
            fail_msg("flags %zu: \"%.*s\"\n  core_json_loadb: %s\n  json_loadb:      %s",
                     flag_sets[f], (int)len, text, a, b);
        assert_string_equal(e1.text, e2.text);
        assert_string_equal(e1.source, e2.source);
        assert_int_equal(e1.line, e2.line);
        assert_int_equal(e1.column, e2.column);
        assert_int_equal(e1.position, e2.position); /* the bytes read: all of them */
        free(a);
        free(b);
        json_decref(mine);
        json_decref(ref);
    }
}

static void same(const char *text)
{
    same_n(text, strlen(text));
}

static void test_edge_cases(void **state)
{
    (void)state;
    /* a benchmark request (bench/mcp), one literal split over lines */
    static const char rpc_request[] =
        "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"x\","
        "\"arguments\":{\"text\":\"benchmark draft\",\"notes\":\"n\"}}}";
    static const char *const cases[] = {
        /* accepted */
        "{}", "[]", " \t\r\n{ } \n", "{\"a\":1}", "{\"a\":-0}", "[0,-1,123456789012345678]",
        "[-123456789012345678]", "[1234567890123456789]", "[9223372036854775807]",
        "[9223372036854775808]", "[-9223372036854775808]", "[true,false,null]", "\"x\"", "1", "-7",
        "true", "null", "{\"a\":{\"b\":{\"c\":[[],{}]}}}", "{\"\":\"\"}",
        "{\"k\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}", "{\"k\\n\\\"\":1}",
        "[\"caf\xc3\xa9 \xe2\x82\xac\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\x7f\"]",
        "{\"a\":1,\"b\":2,\"c\":3,\"a2\":[1,2,3]}", rpc_request,
        /* left to jansson: reals, \u escapes, duplicates, odd tokens, errors */
        "[1.5]", "[1e3]", "[1E3]", "[-0.0]", "[\"\\u00e9\"]", "[\"\\u0000\"]", "{\"\\u0000\":1}",
        "[\"\\ud83d\\ude00\"]", "[\"\\ud83d\"]", "{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":{},\"a\":[]}",
        "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
        "{'a':1}", "[01]", "[-]", "[-01]", "[+1]", "[.5]", "[1.]", "[truex]", "[tru]", "[nul]",
        "[True]", "[true1]", "[1x]", "{}x", "{} {}", "[\"a\x01\"]", "[\"a\n\"]", "[\"\\x\"]",
        "[\"\\", "[\"abc", "[\"\xff\"]", "[\"\xc0\x80\"]", "[\"\xed\xa0\x80\"]",
        "[\"\xf4\x90\x80\x80\"]", "[\"\xe2\x82\"]", "\xef\xbb\xbf{}", "[1]\x00", "/*c*/{}",
        "[\"a\\\xc3\xa9\"]", "[\"\xc3\\n\xa9\"]", "[NaN]", "[Infinity]", "[-Infinity]"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        same(cases[i]);
    same_n("[1]\0", 4);       /* a NUL after the value */
    same_n("[\"a\0b\"]", 7);  /* a NUL inside a string */
    same_n("{\"a\0\":1}", 8); /* and inside a key */
    same_n(NULL, 0);
    /* long strings, with and without escapes (the fast path decodes at most 256 bytes) */
    char big[2100];
    static const size_t lens[] = {0, 1, 7, 8, 9, 250, 254, 255, 256, 257, 258, 300, 1000, 2000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (int esc = 0; esc < 2; esc++) {
            size_t w = 0;
            big[w++] = '[';
            big[w++] = '"';
            if (esc) {
                big[w++] = '\\';
                big[w++] = 'n';
            }
            for (size_t k = 0; k < n; k++)
                big[w++] = (char)('a' + k % 26);
            big[w++] = '"';
            big[w++] = ']';
            big[w] = '\0';
            same(big);
        }
    }
    /* long keys with an escape, in an object of several keys */
    for (size_t n = 250; n < 262; n += 3) {
        size_t w = 0;
        memcpy(big + w, "{\"a\":1,\"\\t", 10);
        w += 10;
        for (size_t k = 0; k < n; k++)
            big[w++] = (char)('a' + k % 26);
        memcpy(big + w, "\":[\"x\\\"\"]}", 10);
        w += 10;
        big[w] = '\0';
        same(big);
    }
    /* nesting around the fast path's limit (64) and jansson's (2048) */
    for (size_t d = 60; d < 70; d++) {
        size_t w = 0;
        for (size_t k = 0; k < d; k++)
            big[w++] = '[';
        for (size_t k = 0; k < d; k++)
            big[w++] = ']';
        big[w] = '\0';
        same(big);
    }
}

/* Every prefix of a valid message is refused by both, with the same error. */
static void test_prefixes(void **state)
{
    (void)state;
    const char *msg =
        "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"method\":\"tools/call\",\"params\":"
        "{\"name\":\"postly_create_draft\",\"arguments\":{\"text\":\"caf\xc3\xa9\\n\","
        "\"media_ids\":[],\"n\":-12,\"t\":true,\"f\":false,\"z\":null}}}";
    for (size_t n = 0; n <= strlen(msg); n++)
        same_n(msg, n);
}

/* Random trees (tests/common/json_random.h) dumped in several styles, and mutations of them. */
static void test_random_texts(void **state)
{
    (void)state;
    static const size_t dump_flags[] = {JSON_COMPACT, JSON_INDENT(2), JSON_ENSURE_ASCII,
                                        JSON_COMPACT | JSON_ESCAPE_SLASH, 0};
    static const char mut[] = "{}[],:\"\\ 0-1eE.tfnu\x01\xc3\xa9\xff";
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 2000; i++) {
        json_t *v = tj_random_value(&seed, 0);
        char *text = json_dumps(v, dump_flags[i % 5] | JSON_ENCODE_ANY);
        assert_non_null(text);
        size_t len = strlen(text);
        same_n(text, len);
        /* mutations: a byte replaced, removed or duplicated */
        for (int m = 0; m < 4 && len > 0; m++) {
            char *t = malloc(len + 2);
            size_t at = (size_t)(tj_rnd(&seed) % len), tl = len;
            memcpy(t, text, len + 1);
            switch (tj_rnd(&seed) % 3) {
            case 0:
                t[at] = mut[tj_rnd(&seed) % (sizeof mut - 1)];
                break;
            case 1:
                memmove(t + at, t + at + 1, len - at);
                tl--;
                break;
            default:
                memmove(t + at + 1, t + at, len - at + 1);
                tl++;
            }
            same_n(t, tl);
            free(t);
        }
        free(text);
        json_decref(v);
    }
    assert_true(accepted > 5000); /* both sides were exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_random_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
