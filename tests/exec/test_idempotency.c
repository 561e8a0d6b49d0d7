/* tests/exec/test_idempotency.c — idempotency keys on create and publish: replay, conflict,
 * in flight, expiry after >= 24 h, purge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/campaign.h"
#include "exec/idempotency.h"
#include "exec/post.h"
#include "exec/workspace.h"
#include "tests/exec/helpers.h"

#define WS "ws_idem"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    assert_int_equal(th_account(&f->env, WS, "x", "X", f->x), PL_OK);
    *state = f;
    return 0;
}

static pl_rc create(fx *f, const char *key, const char *text, json_t **out, ex_err *err)
{
    json_t *a =
        json_pack("{s:s,s:s,s:[s]}", "idempotency_key", key, "text", text, "account_ids", f->x);
    pl_rc rc = ex_post_create(&f->env.ctx, WS, a, out, err);
    json_decref(a);
    return rc;
}

static size_t posts(fx *f)
{
    ex_txn txn;
    MDB_stat ms;
    assert_int_equal(ex_txn_begin(f->env.st, 0, &txn), PL_OK);
    mdb_stat(txn.mdb, ex_store_dbi(f->env.st, EX_DB_POSTS), &ms);
    ex_txn_abort(&txn);
    return ms.ms_entries;
}

static void test_replay_and_conflict(void **state)
{
    fx *f = *state;
    json_t *a = NULL, *b = NULL;
    ex_err err = {0};
    assert_int_equal(create(f, "k-1", "hello", &a, &err), PL_OK);
    assert_int_equal(create(f, "k-1", "hello", &b, &err), PL_OK);
    assert_true(json_equal(a, b)); /* the first result, replayed */
    assert_int_equal(posts(f), 1);
    json_decref(b);
    assert_int_equal(create(f, "k-1", "other text", &b, &err), PL_ERR_CONFLICT);
    assert_null(b);
    assert_string_equal(err.field, "idempotency_key");
    assert_non_null(strstr(err.msg, "different arguments"));
    assert_int_equal(posts(f), 1);
    /* Another key is another post; keys are per operation and workspace. */
    assert_int_equal(create(f, "k-2", "hello", &b, &err), PL_OK);
    assert_string_not_equal(json_string_value(json_object_get(a, "id")),
                            json_string_value(json_object_get(b, "id")));
    json_decref(b);
    json_t *c = NULL, *args = json_pack("{s:s,s:s}", "name", "C", "idempotency_key", "k-1");
    assert_int_equal(ex_campaign_create(&f->env.ctx, WS, args, &c, &err), PL_OK);
    json_decref(c);
    json_decref(args);
    /* Bad keys are specific errors. */
    assert_int_equal(create(f, "has space", "hello", &b, &err), PL_ERR_INVALID);
    assert_string_equal(err.field, "idempotency_key");
    /* Failed calls are not recorded: fix the input, same key. */
    char big[400];
    memset(big, 'z', 300);
    big[300] = '\0';
    assert_int_equal(create(f, "k-3", big, &b, &err), PL_ERR_INVALID);
    assert_int_equal(create(f, "k-3", "fixed", &b, &err), PL_OK);
    json_decref(b);
    json_decref(a);
}

static void test_publish_replay(void **state)
{
    fx *f = *state;
    json_t *p = NULL, *r1 = NULL, *r2 = NULL;
    ex_err err = {0};
    assert_int_equal(create(f, "c", "pub", &p, &err), PL_OK);
    json_t *args =
        json_pack("{s:O,s:s}", "post_id", json_object_get(p, "id"), "idempotency_key", "pub-1");
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, args, &r1, &err), PL_OK);
    assert_string_equal(json_string_value(json_object_get(r1, "status")), "published");
    /* A client retrying after a lost response gets the same answer, no second publish. */
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, args, &r2, &err), PL_OK);
    assert_true(json_equal(r1, r2));
    json_t *t = json_array_get(json_object_get(r2, "targets"), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "attempts")), 1);
    json_decref(r1);
    json_decref(r2);
    json_decref(args);
    json_decref(p);
}

static void test_in_flight_is_busy(void **state)
{
    fx *f = *state;
    ex_txn txn;
    ex_idem idem;
    json_t *replay = NULL, *out = NULL;
    ex_err err = {0};
    json_t *args =
        json_pack("{s:s,s:s,s:[s]}", "idempotency_key", "slow", "text", "t", "account_ids", f->x);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(
        ex_idem_begin(&f->env.ctx, &txn, WS, "post.create", args, &idem, &replay, &err), PL_OK);
    assert_null(replay);
    assert_int_equal(ex_idem_mark_in_flight(&f->env.ctx, &txn, &idem), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    assert_int_equal(ex_post_create(&f->env.ctx, WS, args, &out, &err), PL_ERR_BUSY);
    assert_non_null(strstr(err.msg, "in flight"));
    /* An in-flight record whose worker died stops blocking after the lease. */
    core_fake_clock_advance(&f->env.clock, f->env.ctx.limits.lease_ms + 1);
    assert_int_equal(ex_post_create(&f->env.ctx, WS, args, &out, &err), PL_OK);
    json_decref(out);
    json_decref(args);
}

static void test_kept_24h_then_purged(void **state)
{
    fx *f = *state;
    json_t *a = NULL, *b = NULL;
    f->env.ctx.limits.idempotency_ttl_ms = 1000; /* configured too low: 24 h still applies */
    assert_int_equal(create(f, "day", "one", &a, NULL), PL_OK);
    core_fake_clock_advance(&f->env.clock, 23LL * 3600 * 1000);
    assert_int_equal(create(f, "day", "one", &b, NULL), PL_OK);
    assert_true(json_equal(a, b));
    json_decref(b);
    size_t purged = 99;
    assert_int_equal(ex_idem_purge(&f->env.ctx, 100, &purged), PL_OK);
    assert_int_equal(purged, 0);
    core_fake_clock_advance(&f->env.clock, 1LL * 3600 * 1000 + 1);
    assert_int_equal(ex_idem_purge(&f->env.ctx, 100, &purged), PL_OK);
    assert_int_equal(purged, 1);
    /* After expiry the key is free again: a new post. */
    assert_int_equal(create(f, "day", "one", &b, NULL), PL_OK);
    assert_string_not_equal(json_string_value(json_object_get(a, "id")),
                            json_string_value(json_object_get(b, "id")));
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_and_conflict, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_publish_replay, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_in_flight_is_busy, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_kept_24h_then_purged, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
