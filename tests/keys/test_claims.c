/* tests/keys/test_claims.c — the strict payload reader: fixed cases, and a differential test
 * against jansson on thousands of mutated payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "keys/claims_int.h"

#define AUD "https://mcp.postly.test/mcp"

static pl_rc parse(const char *json, key_payload *p, char *scratch, size_t size)
{
    return key_payload_parse(json, strlen(json), scratch, size, AUD, p);
}

static void test_valid(void **state)
{
    char scratch[1024];
    key_payload p;
    (void)state;
    assert_int_equal(
        parse(" {\"iss\" : \"a\\\"b\\\\c\\/\\u00e9\\ud83d\\ude00\", \"exp\":-9223372036854775808,"
              "\"iat\":9223372036854775807,\"nbf\":0,\"aud\":[1,\"x\",\"" AUD "\"],"
              "\"x\":{\"y\":[true,false,null,1.5e3,-0.0]},\"sub\":"
              "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}\n",
              &p, scratch, sizeof scratch),
        PL_OK);
    assert_int_equal(p.c[KEY_C_ISS].type, KEY_CT_STRING);
    assert_string_equal(p.c[KEY_C_ISS].s, "a\"b\\c/\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(p.c[KEY_C_ISS].len, strlen("a\"b\\c/\xc3\xa9\xf0\x9f\x98\x80"));
    assert_int_equal(p.c[KEY_C_EXP].type, KEY_CT_INT);
    assert_true(p.c[KEY_C_EXP].i == INT64_MIN);
    assert_true(p.c[KEY_C_IAT].i == INT64_MAX);
    assert_int_equal(p.c[KEY_C_AUD].type, KEY_CT_ARRAY);
    assert_int_equal(p.aud_match, 1);
    assert_string_equal(p.c[KEY_C_SUB].s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(p.c[KEY_C_JTI].type, KEY_CT_ABSENT);

    assert_int_equal(parse("{\"aud\":\"" AUD "\",\"exp\":1.0,\"nbf\":1e3,\"scope\":\"\"}", &p,
                           scratch, sizeof scratch),
                     PL_OK);
    assert_int_equal(p.aud_match, 1);
    assert_int_equal(p.c[KEY_C_EXP].type, KEY_CT_OTHER); /* not an integer */
    assert_int_equal(p.c[KEY_C_NBF].type, KEY_CT_OTHER);
    assert_int_equal(p.c[KEY_C_SCOPE].len, 0);
    assert_int_equal(parse("{\"aud\":\"" AUD "/\"}", &p, scratch, sizeof scratch), PL_OK);
    assert_int_equal(p.aud_match, 0);
    assert_int_equal(parse("{\"aud\":[[\"" AUD "\"]]}", &p, scratch, sizeof scratch), PL_OK);
    assert_int_equal(p.aud_match, 0); /* only direct elements count */
    assert_int_equal(parse("{}", &p, scratch, sizeof scratch), PL_OK);
    /* an escaped key is the same key */
    assert_int_equal(parse("{\"s\\u0075b\":\"u\"}", &p, scratch, sizeof scratch), PL_OK);
    assert_string_equal(p.c[KEY_C_SUB].s, "u");
}

static void test_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "[]",
        "\"x\"",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xe0\x80\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\x80\"}",
        "{\"a\":\"\xc3\"}",
        "{\"a\":\"open}",
        "{\"sub\":\"a\",\"sub\":\"b\"}",
        "{\"aud\":\"x\",\"aud\":\"https://mcp.postly.test/mcp\"}",
        "{\"exp\":1,\"e\\u0078p\":2}",
        "{\"a\":[1 2]}",
        "{\"a\":{\"b\" 1}}",
        "\xef\xbb\xbf{}", /* a byte-order mark is not JSON text here */
    };
    char scratch[256];
    key_payload p;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(bad[i], &p, scratch, sizeof scratch) != PL_ERR_PARSE)
            fail_msg("case %zu accepted: %s", i, bad[i]);
    /* nesting is bounded */
    {
        char deep[200];
        size_t n = 0;
        deep[n++] = '{';
        memcpy(deep + n, "\"a\":", 4);
        n += 4;
        for (int i = 0; i < 40; i++)
            deep[n++] = '[';
        for (int i = 0; i < 40; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        assert_int_equal(parse(deep, &p, scratch, sizeof scratch), PL_ERR_PARSE);
    }
    assert_int_equal(key_payload_parse("{}", 2, scratch, 2, AUD, &p), PL_ERR_TOO_LARGE);
}

/* Differential: whenever jansson reads a mutated payload as an object without a repeated
 * known claim, the reader must read it too, with the same claims. */
static const char *const names[] = {"iss", "sub", "aud", "client_id", "scope", "ws",
                                    "gid", "cls", "iat", "nbf",       "exp",   "jti"};

static void compare(json_t *j, const key_payload *p)
{
    for (int c = 0; c < KEY_C__COUNT; c++) {
        json_t *v = json_object_get(j, names[c]);
        if (!v) {
            assert_int_equal(p->c[c].type, KEY_CT_ABSENT);
        } else if (json_is_string(v)) {
            assert_int_equal(p->c[c].type, KEY_CT_STRING);
            assert_int_equal(p->c[c].len, json_string_length(v));
            assert_memory_equal(p->c[c].s, json_string_value(v), p->c[c].len);
        } else if (json_is_integer(v)) {
            assert_int_equal(p->c[c].type, KEY_CT_INT);
            assert_true(p->c[c].i == json_integer_value(v));
        } else {
            assert_true(p->c[c].type == KEY_CT_OTHER || p->c[c].type == KEY_CT_ARRAY);
        }
    }
}

static void test_differential(void **state)
{
    static const char seed[] =
        "{\"iss\":\"https://auth.postly.test\",\"sub\":\"user-1\",\"aud\":[\"" AUD "\",\"x\"],"
        "\"client_id\":\"c\\u00e9\",\"scope\":\"posts:read\",\"ws\":\"w\",\"gid\":\"g\",\"cls\":"
        "\"ai\",\"iat\":1800000000,\"nbf\":-1,\"exp\":1800000600,\"jti\":\"j\\n\",\"x\":{\"y\":[1,"
        "2.5,true,null]}}";
    static const char alphabet[] = "{}[]\":,\\u0123456789eE.-+ tfn\xc3\xa9\x80\xff";
    char buf[512], scratch[600];
    unsigned seedv = 12345;
    size_t agree = 0;
    (void)state;
    for (int it = 0; it < 30000; it++) {
        size_t n = sizeof seed - 1;
        json_t *j;
        json_error_t e;
        key_payload p;
        pl_rc rc;
        memcpy(buf, seed, n);
        for (int m = 0; m < 1 + (it % 3); m++) {
            size_t at;
            char c;
            seedv = seedv * 1103515245u + 12345u;
            at = (seedv >> 8) % n;
            c = alphabet[(seedv >> 20) % (sizeof alphabet - 1)];
            switch ((seedv >> 4) % 3) {
            case 0:
                buf[at] = c;
                break;
            case 1:
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            default:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
        }
        j = json_loadb(buf, n, 0, &e);
        rc = key_payload_parse(buf, n, scratch, sizeof scratch, AUD, &p);
        if (json_is_object(j)) {
            /* a known claim twice is the one thing the reader refuses on purpose */
            if (rc != PL_OK) {
                json_t *k = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &e);
                assert_null(k);
            } else {
                compare(j, &p);
                agree++;
            }
        }
        json_decref(j);
    }
    assert_true(agree > 1000); /* the mutations do leave many valid documents */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
