/* tests/exec/test_store.c — the LMDB environment, keys, ids, schema version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "exec/store.h"
#include "tests/exec/helpers.h"

static void test_open_reopen_schema(void **state)
{
    (void)state;
    char dir[256];
    th_tmpdir(dir, sizeof dir);
    ex_store *st = NULL;
    assert_int_equal(ex_store_open(dir, 0, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_store_schema_found(st), 0);
    uint8_t secret[32];
    memcpy(secret, ex_store_cursor_secret(st), 32);

    ex_txn txn;
    assert_int_equal(ex_txn_begin(st, 1, &txn), PL_OK);
    json_t *v = json_pack("{s:s,s:i}", "name", "acme", "version", 1);
    assert_int_equal(ex_txn_put_json(&txn, EX_DB_WORKSPACES, "ws1", v), PL_OK);
    json_decref(v);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    ex_store_free(st);

    assert_int_equal(ex_store_open(dir, 0, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_store_schema_found(st), EX_SCHEMA_VERSION);
    assert_memory_equal(secret, ex_store_cursor_secret(st), 32);
    assert_int_equal(ex_txn_begin(st, 0, &txn), PL_OK);
    json_t *got = NULL;
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_WORKSPACES, "ws1", &got), PL_OK);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "acme");
    json_decref(got);
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_WORKSPACES, "ws2", &got), PL_ERR_NOT_FOUND);
    ex_txn_abort(&txn);

    /* A newer schema on disk is refused, not silently used. */
    assert_int_equal(ex_txn_begin(st, 1, &txn), PL_OK);
    assert_int_equal(ex_txn_put_raw(&txn, EX_DB_META, "schema_version", "99", 2), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    ex_store_free(st);
    assert_int_equal(ex_store_open(dir, 0, EX_STORE_NOSYNC, &st), PL_ERR_UNSUPPORTED);
    assert_null(st);
    th_rmtree(dir);
}

/* An environment written before the version record (schema 0) is upgraded in place on open:
 * its data stays, the record is written, and a reopen finds the current version. */
static void test_upgrade_from_unversioned(void **state)
{
    (void)state;
    char dir[256];
    th_tmpdir(dir, sizeof dir);
    ex_store *st = NULL;
    assert_int_equal(ex_store_open_data_dir(dir, EX_STORE_NOSYNC, &st), PL_OK);
    assert_non_null(strstr(ex_store_dir(st), "/exec"));
    ex_txn txn;
    assert_int_equal(ex_txn_begin(st, 1, &txn), PL_OK);
    assert_int_equal(ex_txn_put_raw(&txn, EX_DB_POSTS, "ws|pst|x", "{\"id\":\"x\"}", 10), PL_OK);
    assert_int_equal(ex_txn_del(&txn, EX_DB_META, "schema_version"), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    ex_store_free(st);

    assert_int_equal(ex_store_open_data_dir(dir, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_store_schema_found(st), 0);
    json_t *v = NULL;
    assert_int_equal(ex_txn_begin(st, 0, &txn), PL_OK);
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_POSTS, "ws|pst|x", &v), PL_OK);
    ex_txn_abort(&txn);
    json_decref(v);
    ex_store_free(st);
    assert_int_equal(ex_store_open_data_dir(dir, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_store_schema_found(st), EX_SCHEMA_VERSION);
    ex_store_free(st);
    th_rmtree(dir);
}

static void test_ids_and_keys(void **state)
{
    (void)state;
    core_fake_clock fc;
    core_fake_clock_init(&fc, 1700000000000LL);
    char a[EX_ID_MAX], b[EX_ID_MAX];
    assert_int_equal(ex_id_new(&fc.base, "pst", a, sizeof a), PL_OK);
    core_fake_clock_advance(&fc, 1);
    assert_int_equal(ex_id_new(&fc.base, "pst", b, sizeof b), PL_OK);
    assert_true(strcmp(a, b) < 0); /* time ordered */
    assert_true(ex_id_valid(a, "pst"));
    assert_false(ex_id_valid(a, "drf"));
    assert_false(ex_id_valid("pst_123", "pst"));
    assert_false(ex_id_valid("pst_0000000000000000000000000|", "pst"));

    char key[EX_KEY_MAX + 1];
    assert_int_equal(ex_key_build(key, sizeof key, "ws", "pst", a), PL_OK);
    assert_true(strncmp(key, "ws|pst|pst_", 11) == 0);
    assert_int_equal(ex_key_build(key, sizeof key, "w|s", "pst", a), PL_ERR_INVALID);
    assert_int_equal(ex_key_build(key, sizeof key, "", "pst", a), PL_ERR_INVALID);
    assert_true(ex_ws_valid("wsp_acme-1"));
    assert_false(ex_ws_valid("a|b"));
    assert_false(ex_ws_valid(""));

    ex_platform p;
    assert_int_equal(ex_platform_parse("google_business", &p), PL_OK);
    assert_int_equal(p, EX_PLATFORM_GOOGLE_BUSINESS);
    assert_string_equal(ex_platform_name(EX_PLATFORM_X), "x");
    assert_int_equal(ex_platform_parse("myspace", &p), PL_ERR_INVALID);

    ex_err err = {0};
    assert_int_equal(ex_err_set(&err, PL_ERR_INVALID, "text", "too long by %d", 3), PL_ERR_INVALID);
    assert_string_equal(err.msg, "text: too long by 3");
    assert_string_equal(err.field, "text");
}

typedef struct writer {
    ex_store *st;
    int id, n;
} writer;

static void *write_main(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        ex_txn txn;
        char key[64], val[32];
        snprintf(key, sizeof key, "w%d|%06d", w->id, i);
        int len = snprintf(val, sizeof val, "%d", i);
        if (ex_txn_begin(w->st, 1, &txn) != PL_OK ||
            ex_txn_put_raw(&txn, EX_DB_META, key, val, (size_t)len) != PL_OK ||
            ex_txn_commit(&txn) != PL_OK)
            abort();
    }
    return NULL;
}

/* Group commit: durable writes from several threads, each acknowledged only after a sync that
 * covers it; syncs are shared (never more syncs than commits), everything is there after a
 * reopen. */
static void test_group_commit(void **state)
{
    (void)state;
    char dir[256];
    th_tmpdir(dir, sizeof dir);
    ex_store *st = NULL;
    assert_int_equal(ex_store_open(dir, 0, EX_STORE_NOSYNC | EX_STORE_GROUP_COMMIT, &st),
                     PL_ERR_INVALID);
    assert_int_equal(ex_store_open(dir, 0, EX_STORE_GROUP_COMMIT, &st), PL_OK);
    uint64_t before = ex_store_syncs(st);
    enum { T = 4, N = 50 };
    writer w[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        w[i] = (writer){st, i, N};
        assert_int_equal(pthread_create(&th[i], NULL, write_main, &w[i]), 0);
    }
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    uint64_t syncs = ex_store_syncs(st) - before;
    assert_true(syncs >= 1 && syncs <= (uint64_t)T * N);
    print_message("group commit: %d commits, %llu syncs\n", T * N, (unsigned long long)syncs);
    ex_store_free(st);
    assert_int_equal(ex_store_open(dir, 0, 0, &st), PL_OK);
    ex_txn txn;
    assert_int_equal(ex_txn_begin(st, 0, &txn), PL_OK);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < N; i++) {
            char key[64];
            MDB_val v;
            snprintf(key, sizeof key, "w%d|%06d", t, i);
            assert_int_equal(ex_txn_get_raw(&txn, EX_DB_META, key, &v), PL_OK);
        }
    ex_txn_abort(&txn);
    ex_store_free(st);
    th_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_reopen_schema),
        cmocka_unit_test(test_upgrade_from_unversioned),
        cmocka_unit_test(test_ids_and_keys),
        cmocka_unit_test(test_group_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
