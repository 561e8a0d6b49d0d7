/* tests/authz/test_cimd_addr.c — the address rule of Client ID Metadata Document fetches
 * (SSRF): addr_allowed() of authz/cimd.c (static there, so the file is included) on IPv4
 * addresses and on the IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64
 * 64:ff9b::/96, 6to4 2002::/16), which must be judged as that IPv4 address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>

/* Compiled in whole to reach its static validators without widening authz/cimd.h. */
#include "authz/cimd.c" // NOLINT(bugprone-suspicious-include)

static int allowed(const char *text, int allow_loopback)
{
    struct sockaddr_in v4 = {0};
    struct sockaddr_in6 v6 = {0};
    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        return addr_allowed((const struct sockaddr *)&v4, allow_loopback);
    }
    assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
    v6.sin6_family = AF_INET6;
    return addr_allowed((const struct sockaddr *)&v6, allow_loopback);
}

static void test_public_allowed(void **state)
{
    static const char *const ok[] = {
        "8.8.8.8",        "93.184.216.34",    "2606:4700::1111",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
    };
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!allowed(ok[i], 0))
            fail_msg("%s refused", ok[i]);
}

static void test_internal_refused(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "192.0.0.170",
        "198.18.0.1",
        "::",
        "::1",
        "fc00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::10.0.0.1",
        /* NAT64 (RFC 6052) and 6to4 (RFC 3056) carry an IPv4 address a gateway reaches. */
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::",
        "2002:c0a8:101::1",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (allowed(bad[i], 0))
            fail_msg("%s allowed", bad[i]);
}

static void test_loopback_option(void **state)
{
    (void)state;
    /* The test option opens exactly 127.0.0.1 (and its mapped forms), nothing else. */
    assert_true(allowed("127.0.0.1", 1));
    assert_true(allowed("::ffff:127.0.0.1", 1));
    assert_false(allowed("127.0.0.2", 1));
    assert_false(allowed("10.0.0.1", 1));
    assert_false(allowed("::1", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_allowed),
        cmocka_unit_test(test_internal_refused),
        cmocka_unit_test(test_loopback_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
