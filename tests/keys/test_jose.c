/* tests/keys/test_jose.c — the ECDSA signature encodings (DER <-> R||S, RFC 7518 §3.4) and the
 * P-256 coordinate helpers, checked against OpenSSL's own DER codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "keys/keyset_int.h"

/* What OpenSSL makes of R||S: the reference encoding. */
static size_t openssl_der(const uint8_t rs[64], uint8_t *der)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char *p = der;
    int n;
    ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    n = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    assert_true(n > 0);
    return (size_t)n;
}

static void check_rs(const uint8_t rs[64])
{
    uint8_t der[80], ref[80], back[64];
    size_t n = 0, nref = openssl_der(rs, ref);
    assert_int_equal(key_sig_jose_to_der(rs, der, sizeof der, &n), PL_OK);
    assert_int_equal(n, nref);
    assert_memory_equal(der, ref, n);
    assert_int_equal(key_sig_der_to_jose(ref, nref, back), PL_OK);
    assert_memory_equal(back, rs, 64);
}

static void test_der_edges(void **state)
{
    uint8_t rs[64];
    (void)state;
    memset(rs, 0xff, sizeof rs); /* high bit set: a 0x00 pad byte */
    check_rs(rs);
    memset(rs, 0, sizeof rs);
    rs[31] = 1;
    rs[63] = 0x7f; /* tiny values: minimal encodings */
    check_rs(rs);
    memset(rs, 0, 32);
    memset(rs + 32, 0x80, 32);
    rs[1] = 0x80; /* a leading zero byte followed by a high bit */
    check_rs(rs);
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(RAND_bytes(rs, sizeof rs), 1);
        if (i % 3 == 0)
            rs[0] = rs[32] = 0; /* leading zeros happen 1 in 256 in real signatures */
        check_rs(rs);
    }
}

static void test_der_rejects(void **state)
{
    uint8_t rs[64], der[80];
    size_t n = 0;
    static const uint8_t bad[][10] = {
        {0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},       /* not a SEQUENCE */
        {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},       /* length mismatch */
        {0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01},       /* negative r */
        {0x30, 0x06, 0x02, 0x00, 0x02, 0x02, 0x01, 0x01},       /* empty r */
        {0x30, 0x06, 0x03, 0x01, 0x01, 0x02, 0x01, 0x01},       /* BIT STRING, not INTEGER */
        {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, /* non-minimal r */
    };
    static const size_t len[] = {8, 8, 8, 8, 8, 9};
    (void)state;
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++)
        assert_int_equal(key_sig_der_to_jose(bad[i], len[i], rs), PL_ERR_CRYPTO);
    memset(rs, 0xff, sizeof rs);
    assert_int_equal(key_sig_jose_to_der(rs, der, 10, &n), PL_ERR_TOO_LARGE);
}

static void test_coords_roundtrip(void **state)
{
    EVP_PKEY *k = EVP_EC_gen("P-256"), *pub = NULL, *rsa = EVP_RSA_gen(1024);
    uint8_t x[32], y[32], x2[32], y2[32];
    char kid1[KEY_KID_SIZE], kid2[KEY_KID_SIZE];
    (void)state;
    assert_int_equal(key_pkey_coords(k, x, y), PL_OK);
    assert_int_equal(key_pkey_from_coords(x, y, &pub), PL_OK);
    assert_int_equal(key_pkey_coords(pub, x2, y2), PL_OK);
    assert_memory_equal(x, x2, 32);
    assert_memory_equal(y, y2, 32);
    assert_int_equal(key_thumbprint(x, y, kid1), PL_OK);
    assert_int_equal(key_thumbprint(x2, y2, kid2), PL_OK);
    assert_string_equal(kid1, kid2);
    assert_int_equal(strlen(kid1), 43);
    /* a point that is not on the curve is refused */
    y[31] ^= 1;
    EVP_PKEY_free(pub);
    pub = NULL;
    assert_int_not_equal(key_pkey_from_coords(x, y, &pub), PL_OK);
    assert_null(pub);
    assert_int_equal(key_pkey_coords(rsa, x, y), PL_ERR_CRYPTO);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_der_edges),
        cmocka_unit_test(test_der_rejects),
        cmocka_unit_test(test_coords_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
