/* tests/exec/test_pagination.c — opaque HMAC cursors: no duplicates or gaps under concurrent
 * inserts, tampered/forged/foreign cursors refused, workspace isolation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "core/crypto.h"
#include "exec/account.h"
#include "exec/cursor.h"
#include "exec/post.h"
#include "tests/exec/helpers.h"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    assert_int_equal(th_account(&f->env, "wsA", "x", "X", f->x), PL_OK);
    *state = f;
    return 0;
}

static void add_post(fx *f, json_t *ids)
{
    json_t *a = json_pack("{s:s,s:[s]}", "text", "p", "account_ids", f->x), *p = NULL;
    assert_int_equal(ex_post_create(&f->env.ctx, "wsA", a, &p, NULL), PL_OK);
    json_array_append(ids, json_object_get(p, "id"));
    json_decref(p);
    json_decref(a);
    core_fake_clock_advance(&f->env.clock, 1);
}

static json_t *page(fx *f, const char *ws, const char *cursor, int limit, pl_rc want, ex_err *err)
{
    json_t *a = json_pack("{s:i}", "limit", limit), *out = NULL;
    if (cursor)
        json_object_set_new(a, "cursor", json_string(cursor));
    assert_int_equal(ex_post_list(&f->env.ctx, ws, a, &out, err), want);
    json_decref(a);
    return out;
}

static void test_no_duplicates_or_gaps_under_inserts(void **state)
{
    fx *f = *state;
    json_t *ids = json_array(), *seen = json_object();
    for (int i = 0; i < 100; i++)
        add_post(f, ids);
    char cursor[EX_CURSOR_MAX + 1] = "";
    int pages = 0;
    for (;;) {
        json_t *pg = page(f, "wsA", *cursor ? cursor : NULL, 7, PL_OK, NULL);
        json_t *items = json_object_get(pg, "items");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *id = json_string_value(json_object_get(it, "id"));
            assert_null(json_object_get(seen, id)); /* no duplicates */
            json_object_set_new(seen, id, json_true());
        }
        /* Concurrent writers add posts between pages. */
        add_post(f, ids);
        add_post(f, ids);
        pages++;
        const char *next = json_string_value(json_object_get(pg, "next_cursor"));
        if (!next || pages > 500) {
            json_decref(pg);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(pg);
    }
    /* No gaps: everything that existed when paging started was returned (and, since ids are
     * time ordered, everything inserted while paging too, except the last two). */
    for (size_t i = 0; i + 2 < json_array_size(ids); i++)
        assert_non_null(json_object_get(seen, json_string_value(json_array_get(ids, i))));
    assert_true(pages < 500);
    json_decref(ids);
    json_decref(seen);
}

static void test_bad_cursors(void **state)
{
    fx *f = *state;
    json_t *ids = json_array();
    ex_err err = {0};
    for (int i = 0; i < 5; i++)
        add_post(f, ids);
    json_t *pg = page(f, "wsA", NULL, 2, PL_OK, NULL);
    char good[EX_CURSOR_MAX + 1];
    snprintf(good, sizeof good, "%s", json_string_value(json_object_get(pg, "next_cursor")));
    json_decref(pg);

    page(f, "wsA", "garbage", 2, PL_ERR_INVALID, &err);
    assert_string_equal(err.msg, "cursor: malformed");
    char tampered[EX_CURSOR_MAX + 1];
    snprintf(tampered, sizeof tampered, "%s", good);
    tampered[3] = tampered[3] == 'A' ? 'B' : 'A';
    page(f, "wsA", tampered, 2, PL_ERR_INVALID, &err);
    assert_non_null(strstr(err.msg, "cursor:"));
    /* A forged cursor: a well-formed payload with a MAC under another key. */
    char payload[200], forged[EX_CURSOR_MAX + 1];
    snprintf(payload, sizeof payload, "1|posts|wsA|0000000000000000|%s",
             json_string_value(json_array_get(ids, 0)));
    uint8_t mac[32];
    core_hmac_sha256("not the secret", 14, payload, strlen(payload), mac);
    size_t n = 0;
    core_b64url_encode((const uint8_t *)payload, strlen(payload), forged, sizeof forged, &n);
    forged[n] = '.';
    core_b64url_encode(mac, 32, forged + n + 1, sizeof forged - n - 1, NULL);
    page(f, "wsA", forged, 2, PL_ERR_INVALID, &err);
    assert_non_null(strstr(err.msg, "signature does not verify"));
    /* A genuine cursor replayed in another workspace, listing, or with other filters. */
    page(f, "wsB", good, 2, PL_ERR_INVALID, &err);
    assert_non_null(strstr(err.msg, "another workspace"));
    json_t *a = json_pack("{s:s}", "cursor", good), *out = NULL;
    assert_int_equal(ex_account_list(&f->env.ctx, "wsA", a, &out, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "another listing"));
    json_object_set_new(a, "status", json_string("draft"));
    assert_int_equal(ex_post_list(&f->env.ctx, "wsA", a, &out, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "other filters"));
    char huge[EX_CURSOR_MAX + 50];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    page(f, "wsA", huge, 2, PL_ERR_INVALID, &err);
    json_decref(a);
    json_decref(ids);
}

static void test_workspace_isolation(void **state)
{
    fx *f = *state;
    json_t *ids = json_array(), *out = NULL;
    ex_err err = {0};
    add_post(f, ids);
    const char *id = json_string_value(json_array_get(ids, 0));
    json_t *pg = page(f, "wsB", NULL, 10, PL_OK, NULL);
    assert_int_equal(json_array_size(json_object_get(pg, "items")), 0);
    json_decref(pg);
    json_t *a = json_pack("{s:s}", "post_id", id);
    assert_int_equal(ex_post_get(&f->env.ctx, "wsB", a, &out, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_post_publish(&f->env.ctx, "wsB", a, &out, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_post_delete(&f->env.ctx, "wsB", a, &out, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    /* An account of A cannot be targeted from B. */
    a = json_pack("{s:s,s:[s]}", "text", "t", "account_ids", f->x);
    assert_int_equal(ex_post_create(&f->env.ctx, "wsB", a, &out, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    a = json_pack("{s:s}", "account_id", f->x);
    assert_int_equal(ex_account_get(&f->env.ctx, "wsB", a, &out, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_account_get(&f->env.ctx, "wsA", a, &out, &err), PL_OK);
    json_decref(out);
    json_decref(a);
    /* Workspace ids follow the authorization server's syntax (1..64 of [A-Za-z0-9_-]); anything
     * else is refused before it can shape a key range. */
    char ws64[65];
    memset(ws64, 'w', 64);
    ws64[64] = '\0';
    a = json_object();
    assert_int_equal(ex_post_list(&f->env.ctx, ws64, a, &out, &err), PL_OK);
    json_decref(out);
    static const char *const bad_ws[] = {"wsA|pst", "", "~blob", "ws A", NULL};
    for (int i = 0; bad_ws[i]; i++) {
        assert_int_equal(ex_post_list(&f->env.ctx, bad_ws[i], a, &out, &err), PL_ERR_INVALID);
        assert_int_equal(ex_account_list(&f->env.ctx, bad_ws[i], a, &out, &err), PL_ERR_INVALID);
    }
    json_decref(a);
    a = json_pack("{s:s}", "post_id", id);
    assert_int_equal(ex_post_get(&f->env.ctx, "wsA|pst", a, &out, &err), PL_ERR_NOT_FOUND);
    json_decref(a);

    /* A workspace whose id is a prefix of another's does not see its range. */
    json_t *o = NULL;
    a = json_pack("{s:s,s:s}", "platform", "x", "display_name", "X");
    assert_int_equal(ex_account_create(&f->env.ctx, "wsAA", a, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
    a = json_object();
    assert_int_equal(ex_account_list(&f->env.ctx, "wsA", a, &out, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    json_decref(a);
    json_decref(ids);
}

typedef struct inserter {
    fx *f;
    int n;
} inserter;

/* Another thread of the same process writes while the test pages (its own ctx and clock,
 * ahead of the posts being paged, as a real writer's would be). */
static void *insert_main(void *arg)
{
    inserter *in = arg;
    ex_ctx ctx = in->f->env.ctx;
    core_fake_clock clock;
    core_fake_clock_init(&clock, TH_T0 + 10000000);
    ctx.clock = &clock.base;
    json_t *a = json_pack("{s:s,s:[s]}", "text", "concurrent", "account_ids", in->f->x);
    for (int i = 0; i < in->n; i++) {
        json_t *p = NULL;
        if (ex_post_create(&ctx, "wsA", a, &p, NULL) != PL_OK)
            abort();
        json_decref(p);
        core_fake_clock_advance(&clock, 1);
    }
    json_decref(a);
    return NULL;
}

static void test_concurrent_writer_thread(void **state)
{
    fx *f = *state;
    json_t *ids = json_array(), *seen = json_object();
    for (int i = 0; i < 200; i++)
        add_post(f, ids);
    inserter in = {f, 300};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, insert_main, &in), 0);
    char cursor[EX_CURSOR_MAX + 1] = "";
    for (int pages = 0; pages < 1000; pages++) {
        json_t *pg = page(f, "wsA", *cursor ? cursor : NULL, 10, PL_OK, NULL);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(pg, "items"), i, it)
        {
            const char *id = json_string_value(json_object_get(it, "id"));
            assert_null(json_object_get(seen, id));
            json_object_set_new(seen, id, json_true());
        }
        const char *next = json_string_value(json_object_get(pg, "next_cursor"));
        if (!next) {
            json_decref(pg);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(pg);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    for (size_t i = 0; i < json_array_size(ids); i++)
        assert_non_null(json_object_get(seen, json_string_value(json_array_get(ids, i))));
    json_decref(ids);
    json_decref(seen);
}

/* A selective filter never scans the whole workspace in one call: pages stop at the scan
 * budget (possibly empty, with a cursor) and together return every match once. */
static void test_filtered_scan_budget(void **state)
{
    fx *f = *state;
    json_t *ids = json_array(), *want = json_object(), *seen = json_object();
    for (int i = 0; i < 60; i++) {
        add_post(f, ids);
        if (i % 10 == 0) {
            json_t *a = json_pack("{s:O,s:s}", "post_id", json_array_get(ids, (size_t)i),
                                  "scheduled_at", "2027-06-01T00:00:00Z"),
                   *o = NULL;
            assert_int_equal(ex_post_schedule(&f->env.ctx, "wsA", a, &o, NULL), PL_OK);
            json_object_set_new(want, json_string_value(json_array_get(ids, (size_t)i)),
                                json_true());
            json_decref(o);
            json_decref(a);
        }
    }
    f->env.ctx.limits.list_scan_budget = 7;
    char cursor[EX_CURSOR_MAX + 1] = "";
    int calls = 0, empty = 0;
    for (;;) {
        json_t *a = json_pack("{s:s,s:i}", "status", "scheduled", "limit", 5), *pg = NULL;
        if (*cursor)
            json_object_set_new(a, "cursor", json_string(cursor));
        assert_int_equal(ex_post_list(&f->env.ctx, "wsA", a, &pg, NULL), PL_OK);
        json_decref(a);
        calls++;
        json_t *items = json_object_get(pg, "items");
        assert_true(json_array_size(items) <= 5);
        empty += json_array_size(items) == 0;
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *id = json_string_value(json_object_get(it, "id"));
            assert_non_null(json_object_get(want, id));
            assert_null(json_object_get(seen, id));
            json_object_set_new(seen, id, json_true());
        }
        const char *next = json_string_value(json_object_get(pg, "next_cursor"));
        if (next)
            snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(pg);
        if (!next)
            break;
        assert_true(calls < 100);
    }
    assert_int_equal(json_object_size(seen), json_object_size(want));
    assert_true(calls >= 60 / 7);
    assert_true(empty > 0);
    json_decref(ids);
    json_decref(want);
    json_decref(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_duplicates_or_gaps_under_inserts, setup,
                                        th_teardown),
        cmocka_unit_test_setup_teardown(test_bad_cursors, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer_thread, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_filtered_scan_budget, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_workspace_isolation, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
