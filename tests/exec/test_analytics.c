/* tests/exec/test_analytics.c — analytics summary, per platform, per post (normalized plus
 * native metrics from the sandbox connectors), snapshots, and drafts CRUD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/analytics.h"
#include "exec/draft.h"
#include "exec/post.h"
#include "tests/exec/helpers.h"

#define WS "ws_an"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX], li[EX_ID_MAX], x2[EX_ID_MAX];
} fx;

static void mkacct(fx *f, const char *platform, char *out)
{
    assert_int_equal(th_account(&f->env, WS, platform, platform, out), PL_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    mkacct(f, "x", f->x);
    mkacct(f, "x", f->x2);
    mkacct(f, "linkedin", f->li);
    *state = f;
    return 0;
}

static void test_summary_and_platform(void **state)
{
    fx *f = *state;
    json_t *s = NULL, *px = NULL, *a = json_object();
    ex_err err = {0};
    assert_int_equal(ex_analytics_summary(&f->env.ctx, WS, a, &s, &err), PL_OK);
    json_t *plats = json_object_get(s, "platforms");
    assert_int_equal(json_array_size(plats), 2);
    json_decref(a);
    a = json_pack("{s:s}", "platform", "x");
    assert_int_equal(ex_analytics_platform(&f->env.ctx, WS, a, &px, &err), PL_OK);
    json_t *accs = json_object_get(px, "accounts");
    assert_int_equal(json_array_size(accs), 2);
    /* The platform total is the sum of its accounts, metric by metric; the summary's X row is
     * the same total; the grand total adds LinkedIn's. */
    const char *metric;
    json_t *v;
    json_t *xrow = NULL, *lirow = NULL;
    for (size_t i = 0; i < json_array_size(plats); i++) {
        json_t *r = json_array_get(plats, i);
        if (!strcmp(json_string_value(json_object_get(r, "platform")), "x"))
            xrow = json_object_get(r, "metrics");
        else
            lirow = json_object_get(r, "metrics");
    }
    assert_non_null(xrow);
    assert_non_null(lirow);
    assert_true(json_object_size(json_object_get(px, "metrics")) > 0);
    json_object_foreach(json_object_get(px, "metrics"), metric, v)
    {
        json_int_t sum = 0;
        for (size_t i = 0; i < 2; i++)
            sum += json_integer_value(
                json_object_get(json_object_get(json_array_get(accs, i), "metrics"), metric));
        assert_int_equal(json_integer_value(v), sum);
        assert_int_equal(json_integer_value(json_object_get(xrow, metric)), sum);
        json_int_t total =
            json_integer_value(json_object_get(json_object_get(s, "totals"), metric));
        assert_int_equal(total, sum + json_integer_value(json_object_get(lirow, metric)));
    }
    assert_true(json_object_size(json_object_get(json_array_get(accs, 0), "native")) > 0);
    json_decref(px);
    json_decref(a);
    json_decref(s);
    /* Bad input. */
    a = th_json("{\"platform\":\"friendster\"}");
    assert_int_equal(ex_analytics_platform(&f->env.ctx, WS, a, &px, &err), PL_ERR_INVALID);
    json_decref(a);
    a = th_json("{\"from\":\"2020-01-01T00:00:00Z\",\"to\":\"2026-01-01T00:00:00Z\"}");
    assert_int_equal(ex_analytics_summary(&f->env.ctx, WS, a, &s, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "366 days"));
    json_decref(a);
    /* Another workspace has no accounts, hence no metrics. */
    a = json_object();
    assert_int_equal(ex_analytics_summary(&f->env.ctx, "ws_other", a, &s, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(s, "platforms")), 0);
    json_decref(s);
    json_decref(a);
}

static void test_post_analytics_filtered(void **state)
{
    fx *f = *state;
    json_t *p = NULL, *r = NULL, *an = NULL;
    ex_err err = {0};
    json_t *a = json_pack("{s:s,s:[s,s]}", "text", "measure me", "account_ids", f->x, f->li);
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &p, &err), PL_OK);
    json_decref(a);
    a = json_pack("{s:O}", "post_id", json_object_get(p, "id"));
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, a, &r, &err), PL_OK);
    json_decref(r);
    assert_int_equal(ex_analytics_post(&f->env.ctx, WS, a, &an, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(an, "targets")), 2);
    json_decref(an);
    /* Only the platforms the caller may see. */
    json_object_set_new(a, "platforms", json_pack("[s]", "linkedin"));
    assert_int_equal(ex_analytics_post(&f->env.ctx, WS, a, &an, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(an, "targets")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(an, "targets"), 0), "platform")),
                        "linkedin");
    json_decref(an);
    assert_int_equal(ex_analytics_post(&f->env.ctx, "ws_other", a, &an, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    json_decref(p);
}

static void test_drafts(void **state)
{
    fx *f = *state;
    json_t *d = NULL, *o = NULL, *a;
    ex_err err = {0};
    a = json_pack("{s:s,s:[s],s:s}", "text", "idea", "account_ids", f->x, "notes", "for Monday");
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, a, &d, &err), PL_OK);
    json_decref(a);
    a = json_pack("{s:O,s:s,s:i}", "draft_id", json_object_get(d, "id"), "text", "better idea",
                  "expected_version", 1);
    assert_int_equal(ex_draft_update(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_string_equal(json_string_value(json_object_get(o, "text")), "better idea");
    json_decref(o);
    assert_int_equal(ex_draft_update(&f->env.ctx, WS, a, &o, &err), PL_ERR_CONFLICT);
    json_decref(a);
    a = json_object();
    assert_int_equal(ex_draft_list(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
    json_decref(o);
    json_decref(a);
    a = json_pack("{s:O}", "draft_id", json_object_get(d, "id"));
    assert_int_equal(ex_draft_get(&f->env.ctx, "ws_other", a, &o, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_draft_delete(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    assert_int_equal(ex_draft_get(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    a = th_json("{\"media_ids\":[\"med_bad\"]}");
    assert_int_equal(ex_draft_create(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    assert_string_equal(err.msg, "media_ids: item 0 is not a valid med id");
    json_decref(a);
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_summary_and_platform, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_post_analytics_filtered, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_drafts, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
