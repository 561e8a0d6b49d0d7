/* tests/authz/admin_accounts_test.c — postly-admin accounts add|list|remove
 * (authz/admin_exec.c) run in-process through az_admin_run() on a real LMDB store in a
 * mkdtemp directory: the account is created through exec/account.h and read back with the
 * Pinterest board and Google Business location given; remove refuses while a scheduled post
 * targets the account and fails that target with --force; bad input names the problem with
 * the right exit code; workspaces are isolated. Registered apart from the test_*.c glob: it
 * links postly_admin_exec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/clock.h"
#include "exec/args.h"
#include "exec/connector.h"
#include "exec/post.h"
#include "exec/store.h"

#include "tests/authz/admin_fixture.h"

static void test_add_list(void **state)
{
    fx *f = *state;
    json_t *a, *l, *items;
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "pinterest",
                           "--name", "Demo Pins", "--board", "brd1=Launch", "--board", "brd2", END),
                     0);
    a = json_loads(f->out, 0, NULL);
    assert_non_null(a);
    assert_int_equal(strncmp(json_string_value(json_object_get(a, "id")), "acc_", 4), 0);
    assert_string_equal(json_string_value(json_object_get(a, "platform")), "pinterest");
    assert_string_equal(json_string_value(json_object_get(a, "state")), "connected");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "boards"), 0), "name")),
        "Launch");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "boards"), 1), "id")),
        "brd2");
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform",
                           "google_business", "--name", "Demo Cafe", "--location",
                           "loc1=Main Street", END),
                     0);
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "other", "--platform", "x",
                           "--name", "Elsewhere", END),
                     0);
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    l = json_loads(f->out, 0, NULL);
    items = json_object_get(l, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_null(strstr(f->out, "Elsewhere")); /* another workspace's account */
    assert_non_null(strstr(f->out, "Main Street"));
    assert_non_null(strstr(f->out, json_string_value(json_object_get(a, "id"))));
    json_decref(l);
    assert_int_equal(
        admin(f, "accounts", "list", "--workspace", "demo", "--platform", "pinterest", END), 0);
    l = json_loads(f->out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    json_decref(a);
}

static void test_errors(void **state)
{
    fx *f = *state;
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "myspace",
                           "--name", "N", END),
                     1);
    assert_non_null(strstr(f->err, "not one of facebook"));
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--name", "N", END), 2);
    assert_non_null(strstr(f->err, "--platform"));
    assert_int_equal(admin(f, "accounts", "add", "--platform", "x", "--name", "N", END), 2);
    assert_non_null(strstr(f->err, "--workspace"));
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "x", "--name",
                           "N", "--frob", "1", END),
                     2);
    assert_non_null(strstr(f->err, "--frob"));
    assert_int_equal(
        admin(f, "accounts", "add", "--workspace", "demo", "--platform", "x", "--name", END), 2);
    assert_int_equal(admin(f, "accounts", "purge", "--workspace", "demo", END), 2);
    assert_non_null(strstr(f->err, "accounts purge"));
    /* Nothing was created by the refused commands. */
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    assert_non_null(strstr(f->out, "\"items\": []"));
}

/* The id of the account printed by `accounts add` (f->out) into id. */
static void added_id(fx *f, char *id)
{
    json_t *a = json_loads(f->out, 0, NULL);
    assert_non_null(a);
    snprintf(id, EX_ID_MAX, "%s", json_string_value(json_object_get(a, "id")));
    json_decref(a);
}

/* Creates, through the execution layer on the same data directory (closed again before the
 * next command), a post in ws for account scheduled one day ahead; its id into post_id. */
static void schedule_post(fx *f, const char *ws, const char *account, char *post_id)
{
    ex_store *st = NULL;
    ex_connectors reg;
    core_log log = {NULL, CORE_LOG_OFF, "test"};
    ex_ctx ctx;
    char when[40];
    json_t *args, *p = NULL;
    ex_err err = {0};
    memset(&ctx, 0, sizeof ctx);
    assert_int_equal(ex_store_open_data_dir(f->dir, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_connectors_init_sandbox(&reg), PL_OK);
    ctx.store = st;
    ctx.clock = core_clock_real();
    ctx.log = &log;
    ex_limits_default(&ctx.limits);
    ex_connectors_install(&reg, &ctx);
    ex_time_format(core_clock_now_ms(ctx.clock) + 86400000LL, when, sizeof when);
    args = json_pack("{s:s, s:[s], s:s}", "text", "tomorrow", "account_ids", account,
                     "scheduled_at", when);
    assert_int_equal(ex_post_create(&ctx, ws, args, &p, &err), PL_OK);
    assert_string_equal(json_string_value(json_object_get(p, "status")), "scheduled");
    snprintf(post_id, EX_ID_MAX, "%s", json_string_value(json_object_get(p, "id")));
    json_decref(p);
    json_decref(args);
    ex_store_free(st);
    ex_connectors_free(&reg);
}

/* The status of post_id's first target and the post's status, read from the store. */
static void post_status(fx *f, const char *ws, const char *post_id, char *post_st, char *target_st,
                        char *error)
{
    ex_store *st = NULL;
    ex_txn txn = {0};
    char key[EX_KEY_MAX + 1];
    json_t *p = NULL, *t;
    assert_int_equal(ex_store_open_data_dir(f->dir, EX_STORE_NOSYNC, &st), PL_OK);
    assert_int_equal(ex_key_build(key, sizeof key, ws, "pst", post_id), PL_OK);
    assert_int_equal(ex_txn_begin(st, 0, &txn), PL_OK);
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_POSTS, key, &p), PL_OK);
    ex_txn_abort(&txn);
    t = json_array_get(json_object_get(p, "targets"), 0);
    snprintf(post_st, 32, "%s", json_string_value(json_object_get(p, "status")));
    snprintf(target_st, 32, "%s", json_string_value(json_object_get(t, "status")));
    snprintf(error, 64, "%s",
             json_string_value(json_object_get(json_object_get(t, "error"), "message"))
                 ? json_string_value(json_object_get(json_object_get(t, "error"), "message"))
                 : "");
    json_decref(p);
    ex_store_free(st);
}

static void test_remove(void **state)
{
    fx *f = *state;
    char plain[EX_ID_MAX], busy[EX_ID_MAX], post[EX_ID_MAX], pst[32], tst[32], error[64];
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "linkedin",
                           "--name", "Spare", END),
                     0);
    added_id(f, plain);
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "x", "--name",
                           "Busy", END),
                     0);
    added_id(f, busy);
    /* Nothing targets the first: removed; the list no longer shows it. */
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", plain, END), 0);
    assert_non_null(strstr(f->out, "\"deleted\": true"));
    assert_non_null(strstr(f->out, plain));
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    assert_null(strstr(f->out, plain));
    assert_non_null(strstr(f->out, busy));
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", plain, END), 1);
    assert_non_null(strstr(f->err, "account_id: no social account"));

    /* A scheduled post targets the second: refused, nothing changes. */
    schedule_post(f, "demo", busy, post);
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", busy, END), 1);
    assert_non_null(strstr(f->err, "1 scheduled or publishing post targets social account"));
    assert_non_null(strstr(f->err, busy));
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    assert_non_null(strstr(f->out, busy));
    post_status(f, "demo", post, pst, tst, error);
    assert_string_equal(pst, "scheduled");
    assert_string_equal(tst, "pending");
    /* Another workspace cannot remove it, even with --force. */
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "other", busy, "--force", END),
                     1);
    assert_non_null(strstr(f->err, "no social account"));
    /* --force (before the id, too): removed, and the post's target failed. */
    assert_int_equal(admin(f, "accounts", "remove", "--force", "--workspace", "demo", busy, END),
                     0);
    assert_non_null(strstr(f->out, "\"targets_failed\": 1"));
    post_status(f, "demo", post, pst, tst, error);
    assert_string_equal(pst, "failed");
    assert_string_equal(tst, "failed");
    assert_string_equal(error, "account removed");
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    assert_non_null(strstr(f->out, "\"items\": []"));
}

static void test_remove_usage(void **state)
{
    fx *f = *state;
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", END), 2);
    assert_non_null(strstr(f->err, "missing the account id (acc_...)"));
    assert_int_equal(admin(f, "accounts", "remove", "acc_x", END), 2);
    assert_non_null(strstr(f->err, "--workspace"));
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", "a", "b", END), 2);
    assert_non_null(strstr(f->err, "unexpected argument \"b\""));
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", "acc_x", "--frob", END),
                     2);
    assert_non_null(strstr(f->err, "--frob"));
    assert_int_equal(admin(f, "accounts", "remove", "--workspace", "demo", "pst_x", END), 1);
    assert_non_null(strstr(f->err, "account_id: \"pst_x\" is not a valid acc id"));
    /* --force is not a webhooks flag. */
    assert_int_equal(admin(f, "webhooks", "remove", "whk_x", "--workspace", "demo", "--force", END),
                     2);
    assert_non_null(strstr(f->err, "--force"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_usage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
