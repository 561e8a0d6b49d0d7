/* tests/mcp/test_session.c — mcp/session.c: ids, owner binding, idle expiry on the fake clock,
 * the bound on live sessions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mcp/session.h"

static void test_ids_and_lookup(void **st)
{
    core_fake_clock fc;
    mcp_session_table *t;
    mcp_session *a, *b, *f;
    uint8_t owner[32], other[32];
    size_t i;
    char id[MCP_SESSION_ID_LEN + 1];
    core_fake_clock_init(&fc, 1000000);
    memset(owner, 1, sizeof owner);
    memset(other, 2, sizeof other);
    assert_int_equal(mcp_session_table_new(&fc.base, 4, 0, 60000, &t), PL_OK);
    assert_int_equal(mcp_session_create(t, owner, "2025-11-25", &a), PL_OK);
    assert_int_equal(mcp_session_create(t, owner, "2025-06-18", &b), PL_OK);
    assert_int_equal(strlen(a->id), MCP_SESSION_ID_LEN);
    assert_string_not_equal(a->id, b->id);
    /* MCP basic/transports: visible ASCII only */
    for (i = 0; i < MCP_SESSION_ID_LEN; i++)
        assert_true(a->id[i] >= 0x21 && a->id[i] <= 0x7e);
    assert_string_equal(b->protocol_version, "2025-06-18");
    memcpy(id, a->id, sizeof id);
    assert_int_equal(mcp_session_find(t, id, owner, &f), PL_OK);
    assert_ptr_equal(f, a);
    assert_int_equal(mcp_session_find(t, id, other, &f), PL_ERR_DENIED);
    assert_null(f);
    assert_int_equal(mcp_session_find(t, "nope", owner, &f), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_find(t, NULL, owner, &f), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_end(t, id, other), PL_ERR_DENIED);
    assert_int_equal(mcp_session_end(t, id, owner), PL_OK);
    assert_int_equal(mcp_session_find(t, id, owner, &f), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_end(t, id, owner), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_count(t), 1);
    mcp_session_table_free(t);
    mcp_session_table_free(NULL);
}

static void test_idle_expiry_and_bound(void **st)
{
    core_fake_clock fc;
    mcp_session_table *t;
    mcp_session *s[4], *f;
    uint8_t owner[32];
    char id0[MCP_SESSION_ID_LEN + 1];
    size_t i, removed = 0;
    core_fake_clock_init(&fc, 0);
    memset(owner, 7, sizeof owner);
    assert_int_equal(mcp_session_table_new(&fc.base, 3, 0, 1000, &t), PL_OK);
    for (i = 0; i < 3; i++)
        assert_int_equal(mcp_session_create(t, owner, "2025-11-25", &s[i]), PL_OK);
    assert_int_equal(mcp_session_create(t, owner, "2025-11-25", &s[3]), PL_ERR_LIMIT);
    memcpy(id0, s[0]->id, sizeof id0);
    core_fake_clock_advance(&fc, 999);
    /* use refreshes the idle timer */
    assert_int_equal(mcp_session_find(t, id0, owner, &f), PL_OK);
    core_fake_clock_advance(&fc, 1);
    mcp_session_sweep(t, &removed);
    assert_int_equal(removed, 2);
    assert_int_equal(mcp_session_count(t), 1);
    assert_int_equal(mcp_session_find(t, id0, owner, &f), PL_OK);
    core_fake_clock_advance(&fc, 1000);
    assert_int_equal(mcp_session_find(t, id0, owner, &f), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_count(t), 0);
    /* a full table makes room by evicting expired sessions */
    for (i = 0; i < 3; i++)
        assert_int_equal(mcp_session_create(t, owner, "2025-11-25", &s[i]), PL_OK);
    core_fake_clock_advance(&fc, 5000);
    assert_int_equal(mcp_session_create(t, owner, "2025-11-25", &s[3]), PL_OK);
    assert_int_equal(mcp_session_count(t), 1);
    mcp_session_table_free(t);
    assert_int_equal(mcp_session_table_new(&fc.base, 0, 0, 1000, &t), PL_ERR_INVALID);
}

/* One principal cannot hold more than per_owner sessions: its least recently used one ends;
 * other principals' sessions are untouched. */
static void test_per_owner_bound(void **st)
{
    core_fake_clock fc;
    mcp_session_table *t;
    mcp_session *s, *f;
    uint8_t a[32], b[32];
    char first[MCP_SESSION_ID_LEN + 1], second[MCP_SESSION_ID_LEN + 1],
        other[MCP_SESSION_ID_LEN + 1];
    core_fake_clock_init(&fc, 0);
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    assert_int_equal(mcp_session_table_new(&fc.base, 100, 2, 60000, &t), PL_OK);
    assert_int_equal(mcp_session_create(t, b, "2025-11-25", &s), PL_OK);
    memcpy(other, s->id, sizeof other);
    assert_int_equal(mcp_session_create(t, a, "2025-11-25", &s), PL_OK);
    memcpy(first, s->id, sizeof first);
    core_fake_clock_advance(&fc, 10);
    assert_int_equal(mcp_session_create(t, a, "2025-11-25", &s), PL_OK);
    memcpy(second, s->id, sizeof second);
    core_fake_clock_advance(&fc, 10);
    /* touching the first makes the second the least recently used */
    assert_int_equal(mcp_session_find(t, first, a, &f), PL_OK);
    assert_int_equal(mcp_session_create(t, a, "2025-11-25", &s), PL_OK);
    assert_int_equal(mcp_session_find(t, second, a, &f), PL_ERR_NOT_FOUND);
    assert_int_equal(mcp_session_find(t, first, a, &f), PL_OK);
    assert_int_equal(mcp_session_find(t, other, b, &f), PL_OK);
    assert_int_equal(mcp_session_count(t), 3);
    mcp_session_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_and_lookup),
        cmocka_unit_test(test_idle_expiry_and_bound),
        cmocka_unit_test(test_per_owner_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
