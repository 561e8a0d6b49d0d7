/* tests/core/test_crypto.c — encodings, random tokens, digests, constant-time comparison,
 * SipHash and the error table. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

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

static void hex_is(const uint8_t d[CORE_SHA256_LEN], const char *want)
{
    char hex[65];
    assert_int_equal(core_hex_encode(d, CORE_SHA256_LEN, hex, sizeof hex), PL_OK);
    assert_string_equal(hex, want);
}

/* RFC 4231 §4: the HMAC-SHA256 test cases with full-length output (5 truncates). */
static void test_hmac_rfc4231(void **state)
{
    uint8_t key[131], data[152], d[CORE_SHA256_LEN];
    static const char big[] = "This is a test using a larger than block-size key and a larger "
                              "than block-size data. The key needs to be hashed before being "
                              "used by the HMAC algorithm.";
    (void)state;
    memset(key, 0x0b, 20); /* case 1 */
    assert_int_equal(core_hmac_sha256(key, 20, "Hi There", 8, d), PL_OK);
    hex_is(d, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    memset(key, 0xaa, 20); /* case 3 */
    memset(data, 0xdd, 50);
    assert_int_equal(core_hmac_sha256(key, 20, data, 50, d), PL_OK);
    hex_is(d, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (int i = 0; i < 25; i++) /* case 4 */
        key[i] = (uint8_t)(i + 1);
    memset(data, 0xcd, 50);
    assert_int_equal(core_hmac_sha256(key, 25, data, 50, d), PL_OK);
    hex_is(d, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    memset(key, 0xaa, 131); /* case 6: a key longer than the block is hashed first */
    assert_int_equal(
        core_hmac_sha256(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54, d),
        PL_OK);
    hex_is(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    assert_int_equal(core_hmac_sha256(key, 131, big, strlen(big), d), PL_OK); /* case 7 */
    hex_is(d, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    assert_int_equal(core_hmac_sha256(NULL, 5, "x", 1, d), PL_ERR_INVALID);
    assert_int_equal(core_hmac_sha256(key, 5, NULL, 1, d), PL_ERR_INVALID);
}

/* The same bytes as OpenSSL's own HMAC() and SHA-256, on random keys of every length around
 * the block size (63, 64, 65 ...) and random messages. */
static void test_hmac_sha256_match_openssl(void **state)
{
    uint8_t key[200], msg[300], a[CORE_SHA256_LEN], b[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    (void)state;
    srand(7);
    for (int t = 0; t < 600; t++) {
        size_t kl = (size_t)t % sizeof key, ml = (size_t)rand() % sizeof msg;
        for (size_t i = 0; i < kl; i++)
            key[i] = (uint8_t)rand();
        for (size_t i = 0; i < ml; i++)
            msg[i] = (uint8_t)rand();
        assert_int_equal(core_hmac_sha256(key, kl, msg, ml, a), PL_OK);
        assert_non_null(HMAC(EVP_sha256(), key, (int)kl, msg, ml, b, &n));
        assert_int_equal(n, CORE_SHA256_LEN);
        assert_memory_equal(a, b, CORE_SHA256_LEN);
        core_sha256(msg, ml, a);
        assert_int_equal(EVP_Digest(msg, ml, b, &n, EVP_sha256(), NULL), 1);
        assert_memory_equal(a, b, CORE_SHA256_LEN);
    }
}

/* The digest is fetched once, on first use, by whichever thread gets there first. */
static void *hash_many(void *arg)
{
    uint8_t d[CORE_SHA256_LEN], m[CORE_SHA256_LEN];
    int *ok = arg;
    static const uint8_t abc[CORE_SHA256_LEN] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                                 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                                 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                                 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    *ok = 1;
    for (int i = 0; i < 2000; i++) {
        core_sha256("abc", 3, d);
        *ok &= memcmp(d, abc, sizeof d) == 0;
        *ok &= core_hmac_sha256("k", 1, "abc", 3, m) == PL_OK;
    }
    return NULL;
}

static void test_sha256_threads(void **state)
{
    pthread_t th[4];
    int ok[4] = {0};
    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hash_many, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(ok[i]);
    }
}

/* Equal exactly when memcmp says so, for every length around the 8-byte word and a
 * difference in each single byte (first, middle, last, in the word loop and the tail). */
static void test_ct_equal(void **state)
{
    uint8_t a[100], b[100];
    (void)state;
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof a; len++) {
        memcpy(b, a, sizeof b);
        assert_true(core_ct_equal(a, b, len));
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned bit = 0; bit < 8; bit++) {
                b[pos] ^= (uint8_t)(1u << bit);
                assert_false(core_ct_equal(a, b, len));
                assert_false(core_ct_equal(b, a, len));
                b[pos] ^= (uint8_t)(1u << bit);
            }
        }
        if (len < sizeof a) {
            b[len] ^= 1; /* beyond len: not compared */
            assert_true(core_ct_equal(a, b, len));
        }
    }
    assert_true(core_ct_equal(NULL, NULL, 0));
}

/* The reference vectors of the SipHash paper (key 00..0f, message 00..len-1), lengths 0-16:
 * the empty message, every tail length and two whole words. */
static void test_siphash24_vectors(void **state)
{
    static const uint64_t want[17] = {
        0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
        0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
        0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
        0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
        0x3f2acc7f57c29bdbULL};
    uint8_t key[CORE_SIPHASH_KEY_LEN], msg[17], key2[CORE_SIPHASH_KEY_LEN];
    (void)state;
    for (int i = 0; i < 17; i++)
        msg[i] = (uint8_t)i;
    for (int i = 0; i < CORE_SIPHASH_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    for (size_t len = 0; len <= 16; len++)
        assert_true(core_siphash24(key, msg, len) == want[len]);
    /* another key, another hash */
    memcpy(key2, key, sizeof key2);
    key2[15] ^= 1;
    assert_true(core_siphash24(key2, msg, 16) != want[16]);
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
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_random_tokens_differ),
        cmocka_unit_test(test_sha256_hmac_hex),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_sha256_match_openssl),
        cmocka_unit_test(test_sha256_threads),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_siphash24_vectors),
        cmocka_unit_test(test_errors_and_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
