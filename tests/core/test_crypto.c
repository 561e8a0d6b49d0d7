/* tests/core/test_crypto.c — encodings, random tokens and the error table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/err.h"

static void test_b64url_vectors(void **state)
{
    /* RFC 4648 §10 vectors, unpadded. */
    static const struct {
        const char *raw, *enc;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char out[32];
    uint8_t back[32];
    size_t n;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(
            core_b64url_encode((const uint8_t *)v[i].raw, strlen(v[i].raw), out, sizeof out, &n),
            PL_OK);
        assert_string_equal(out, v[i].enc);
        assert_int_equal(core_b64url_decode(out, n, back, sizeof back, &n), PL_OK);
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(back, v[i].raw, n);
    }
}

static void test_b64url_rejects(void **state)
{
    uint8_t out[16];
    size_t n;
    const uint8_t ff[2] = {0xfb, 0xff};
    char enc[8];
    assert_int_equal(core_b64url_decode("Zm9v=", 5, out, sizeof out, &n), PL_ERR_INVALID);
    assert_int_equal(core_b64url_decode("Zm+v", 4, out, sizeof out, &n), PL_ERR_INVALID);
    assert_int_equal(core_b64url_decode("Z", 1, out, sizeof out, &n), PL_ERR_INVALID);
    assert_int_equal(core_b64url_decode("Zh", 2, out, sizeof out, &n), PL_ERR_INVALID);
    assert_int_equal(core_b64url_decode("Zm9vYmFyYmF6cXV4eHl6enk", 23, out, 4, &n),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(core_b64url_encode(ff, 2, enc, sizeof enc, &n), PL_OK);
    assert_string_equal(enc, "-_8");
    assert_int_equal(core_b64url_encode(ff, 2, enc, 3, &n), PL_ERR_TOO_LARGE);
}

static void test_random_tokens_differ(void **state)
{
    char a[CORE_B64URL_SIZE(32)], b[CORE_B64URL_SIZE(32)];
    assert_int_equal(core_random_token(a, sizeof a, 32), PL_OK);
    assert_int_equal(core_random_token(b, sizeof b, 32), PL_OK);
    assert_int_equal(strlen(a), 43);
    assert_string_not_equal(a, b);
    assert_int_equal(core_random_token(a, 10, 32), PL_ERR_TOO_LARGE);
}

static void test_sha256_hmac_hex(void **state)
{
    uint8_t d[CORE_SHA256_LEN];
    char hex[65];
    core_sha256("abc", 3, d);
    assert_int_equal(core_hex_encode(d, sizeof d, hex, sizeof hex), PL_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2 */
    assert_int_equal(core_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d), PL_OK);
    core_hex_encode(d, sizeof d, hex, sizeof hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_true(core_ct_equal("abc", "abc", 3));
    assert_false(core_ct_equal("abc", "abd", 3));
}

static void test_errors_and_clock(void **state)
{
    core_fake_clock fc;
    for (int rc = 0; rc < PL_ERR__COUNT; rc++) {
        assert_non_null(pl_strerror((pl_rc)rc));
        assert_string_not_equal(pl_errname((pl_rc)rc), "unknown");
    }
    assert_string_equal(pl_strerror((pl_rc)999), "unknown error");
    assert_string_equal(pl_errname(PL_ERR_NOT_FOUND), "not_found");
    core_fake_clock_init(&fc, 1000);
    assert_int_equal(core_clock_now_ms(&fc.base), 1000);
    core_fake_clock_advance(&fc, 2500);
    assert_int_equal(core_clock_now_s(&fc.base), 3);
    assert_true(core_clock_now_s(NULL) > 1700000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),       cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_random_tokens_differ), cmocka_unit_test(test_sha256_hmac_hex),
        cmocka_unit_test(test_errors_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
