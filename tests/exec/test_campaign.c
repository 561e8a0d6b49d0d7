/* tests/exec/test_campaign.c — campaigns CRUD, assignment, listing posts by campaign, deletion
 * unlinks (never deletes) posts; also workspace and social account records. */
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
#include "exec/post.h"
#include "exec/workspace.h"
#include "tests/exec/helpers.h"

#define WS "ws_cmp"

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

static json_t *post(fx *f, const char *cmp)
{
    json_t *a = json_pack("{s:s,s:[s]}", "text", "t", "account_ids", f->x), *p = NULL;
    if (cmp)
        json_object_set_new(a, "campaign_id", json_string(cmp));
    ex_err err = {0};
    pl_rc rc = ex_post_create(&f->env.ctx, WS, a, &p, &err);
    json_decref(a);
    if (rc != PL_OK)
        return NULL;
    return p;
}

static void test_campaign_crud_assign_delete(void **state)
{
    fx *f = *state;
    json_t *c = NULL, *o = NULL, *a;
    ex_err err = {0};
    a = th_json("{\"name\":\"Launch\",\"goal\":\"awareness\",\"start_date\":\"2027-02-01\","
                "\"end_date\":\"2027-03-01\"}");
    assert_int_equal(ex_campaign_create(&f->env.ctx, WS, a, &c, &err), PL_OK);
    json_decref(a);
    assert_string_equal(th_str(c, "status"), "planned");
    const char *cid = th_str(c, "id");
    json_t *p1 = post(f, cid), *p2 = post(f, NULL), *p3 = post(f, NULL);
    assert_non_null(p1);
    assert_string_equal(th_str(p1, "campaign_id"), cid);
    a = json_pack("{s:s,s:[O,O]}", "campaign_id", cid, "post_ids", json_object_get(p2, "id"),
                  json_object_get(p3, "id"));
    assert_int_equal(ex_campaign_assign(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    a = json_pack("{s:s}", "campaign_id", cid);
    assert_int_equal(ex_campaign_get(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "post_count")), 3);
    json_decref(o);
    assert_int_equal(ex_post_list(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 3);
    json_decref(o);
    /* Unassign one. */
    json_t *un = json_pack("{s:n,s:[O]}", "campaign_id", "post_ids", json_object_get(p3, "id"));
    assert_int_equal(ex_campaign_assign(&f->env.ctx, WS, un, &o, &err), PL_OK);
    json_decref(o);
    json_decref(un);
    assert_int_equal(ex_post_list(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 2);
    json_decref(o);
    /* Update with versions and validation. */
    json_t *u =
        json_pack("{s:s,s:s,s:i}", "campaign_id", cid, "status", "active", "expected_version", 1);
    assert_int_equal(ex_campaign_update(&f->env.ctx, WS, u, &o, &err), PL_OK);
    json_decref(o);
    assert_int_equal(ex_campaign_update(&f->env.ctx, WS, u, &o, &err), PL_ERR_CONFLICT);
    json_decref(u);
    u = json_pack("{s:s,s:s}", "campaign_id", cid, "end_date", "2027-01-01");
    assert_int_equal(ex_campaign_update(&f->env.ctx, WS, u, &o, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "end_date: 2027-01-01 is before start_date"));
    json_decref(u);
    u = json_pack("{s:s,s:s}", "campaign_id", cid, "start_date", "2027-02-30");
    assert_int_equal(ex_campaign_update(&f->env.ctx, WS, u, &o, &err), PL_ERR_INVALID);
    json_decref(u);
    /* Delete: posts stay, unlinked. */
    assert_int_equal(ex_campaign_delete(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "unlinked_posts")), 2);
    json_decref(o);
    assert_int_equal(ex_campaign_get(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    a = json_pack("{s:O}", "post_id", json_object_get(p1, "id"));
    assert_int_equal(ex_post_get(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_true(json_is_null(json_object_get(o, "campaign_id")));
    assert_int_equal(json_integer_value(json_object_get(o, "version")), 2);
    json_decref(o);
    json_decref(a);
    /* Unknown campaign on a post. */
    assert_null(post(f, "cmp_000000000000aaaaaaaaaaaaaaaa"));
    json_decref(p1);
    json_decref(p2);
    json_decref(p3);
    json_decref(c);
}

static void test_campaign_list_and_bad_input(void **state)
{
    fx *f = *state;
    json_t *o = NULL, *a;
    ex_err err = {0};
    for (int i = 0; i < 5; i++) {
        a = json_pack("{s:s,s:s}", "name", "c", "status", i % 2 ? "active" : "planned");
        assert_int_equal(ex_campaign_create(&f->env.ctx, WS, a, &o, &err), PL_OK);
        json_decref(o);
        json_decref(a);
    }
    a = th_json("{\"status\":\"active\"}");
    assert_int_equal(ex_campaign_list(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 2);
    json_decref(o);
    json_decref(a);
    a = th_json("{\"name\":\"\"}");
    assert_int_equal(ex_campaign_create(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    assert_string_equal(err.msg, "name: must not be empty");
    json_decref(a);
    a = th_json("{\"name\":\"x\",\"status\":\"paused\"}");
    assert_int_equal(ex_campaign_create(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    json_decref(a);
}

static void test_workspace_and_accounts(void **state)
{
    fx *f = *state;
    json_t *o = NULL, *a;
    ex_err err = {0};
    a = th_json("{\"name\":\"Acme\",\"plan\":\"pro\",\"timezone\":\"Asia/Tokyo\"}");
    assert_int_equal(ex_workspace_ensure(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_string_equal(th_str(o, "timezone"), "Asia/Tokyo");
    json_decref(o);
    json_decref(a);
    a = th_json("{\"timezone\":\"Asia/Atlantis\"}");
    assert_int_equal(ex_workspace_update(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    json_decref(a);
    a = th_json("{\"plan\":\"enterprise\",\"expected_version\":1}");
    assert_int_equal(ex_workspace_update(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "version")), 2);
    json_decref(o);
    assert_int_equal(ex_workspace_update(&f->env.ctx, WS, a, &o, &err), PL_ERR_CONFLICT);
    json_decref(a);
    assert_int_equal(ex_workspace_get(&f->env.ctx, "ws_other", &o, &err), PL_ERR_NOT_FOUND);

    a = th_json("{\"platform\":\"pinterest\",\"display_name\":\"Pins\","
                "\"boards\":[{\"id\":\"b1\",\"name\":\"Recipes\"}]}");
    assert_int_equal(ex_account_create(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_string_equal(th_str(json_array_get(json_object_get(o, "boards"), 0), "name"), "Recipes");
    json_decref(o);
    json_decref(a);
    a = th_json("{\"platform\":\"myspace\",\"display_name\":\"old\"}");
    assert_int_equal(ex_account_create(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "platform: \"myspace\" is not one of"));
    json_decref(a);
    a = th_json("{\"platform\":\"pinterest\"}");
    assert_int_equal(ex_account_list(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
    json_decref(o);
    json_decref(a);
    a = json_pack("{s:s,s:s}", "account_id", f->x, "state", "needs_reconnect");
    assert_int_equal(ex_account_set_state(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_string_equal(th_str(o, "state"), "needs_reconnect");
    json_decref(o);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_campaign_crud_assign_delete, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_campaign_list_and_bad_input, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_workspace_and_accounts, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
