/* tests/exec/test_events.c — state changes enqueue webhook events in the same write
 * transaction: scheduled, published, failed, partially published, unconfirmed, media ready;
 * a refused call enqueues nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/media.h"
#include "exec/post.h"
#include "exec/webhook.h"
#include "tests/exec/helpers.h"

#define WS "ws_ev"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX], li[EX_ID_MAX];
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
    mkacct(f, "linkedin", f->li);
    ex_webhook_url_policy pol = {.allow_http_loopback = 1};
    json_t *a = th_json("{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"*\"]}"), *o = NULL;
    ex_err err = {0};
    assert_int_equal(ex_webhook_create(&f->env.ctx, WS, a, &pol, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    *state = f;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The event types delivered so far, sorted, joined by ",". */
static void types(fx *f, char *buf, size_t n)
{
    json_t *a = th_json("{\"limit\":100}"), *o = NULL;
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    json_t *items = json_object_get(o, "items");
    const char *names[128] = {0};
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(items) && k < 128; i++)
        names[k++] = json_string_value(json_object_get(json_array_get(items, i), "type"));
    qsort(names, k, sizeof names[0], cmp_str);
    buf[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", len ? "," : "", names[i]);
    }
    json_decref(o);
    json_decref(a);
}

static json_t *create(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *create(fx *f, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_t *a = th_json(text), *p = NULL;
    ex_err err = {0};
    pl_rc rc = ex_post_create(&f->env.ctx, WS, a, &p, &err);
    json_decref(a);
    return rc == PL_OK ? p : NULL;
}

static void publish(fx *f, const json_t *p)
{
    json_t *a = json_pack("{s:O}", "post_id", json_object_get(p, "id")), *o = NULL;
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
}

static void test_events_follow_changes(void **state)
{
    fx *f = *state;
    char t[1024];
    json_t *p = create(f,
                       "{\"text\":\"s\",\"account_ids\":[\"%s\"],"
                       "\"scheduled_at\":\"2027-02-01T00:00:00Z\"}",
                       f->x);
    assert_non_null(p);
    types(f, t, sizeof t);
    assert_string_equal(t, "post.scheduled");
    json_decref(p);
    core_fake_clock_advance(&f->env.clock, 1);
    /* A refused create writes nothing, not even an event. */
    assert_null(create(f,
                       "{\"text\":\"s\",\"account_ids\":[\"%s\"],"
                       "\"scheduled_at\":\"2020-02-01T00:00:00Z\"}",
                       f->x));
    types(f, t, sizeof t);
    assert_string_equal(t, "post.scheduled");

    p = create(f, "{\"text\":\"ok\",\"account_ids\":[\"%s\"]}", f->x);
    publish(f, p);
    json_decref(p);
    p = create(f, "{\"text\":\"[sandbox:reject] no\",\"account_ids\":[\"%s\"]}", f->x);
    publish(f, p);
    json_decref(p);
    p = create(f,
               "{\"targets\":[{\"account_id\":\"%s\",\"text\":\"a\"},"
               "{\"account_id\":\"%s\",\"text\":\"[sandbox:duplicate] b\"}]}",
               f->x, f->li);
    publish(f, p);
    json_decref(p);
    p = create(f, "{\"text\":\"[sandbox:unknown] ?\",\"account_ids\":[\"%s\"]}", f->x);
    publish(f, p);
    json_decref(p);
    types(f, t, sizeof t);
    /* Events of one millisecond have no order among themselves: compare as sorted lists. */
    assert_string_equal(t, "post.failed,post.failed,post.partially_published,post.published,"
                           "post.scheduled,post.unconfirmed");

    /* A publish decided without calling the platform (account needs a reconnect) emits one
     * event, not two. */
    json_t *a = json_pack("{s:s,s:s}", "account_id", f->li, "state", "needs_reconnect"), *m = NULL;
    assert_int_equal(ex_account_set_state(&f->env.ctx, WS, a, &m, NULL), PL_OK);
    json_decref(m);
    json_decref(a);
    p = create(f, "{\"text\":\"b\",\"account_ids\":[\"%s\"]}", f->li);
    publish(f, p);
    json_decref(p);
    types(f, t, sizeof t);
    assert_string_equal(t, "post.failed,post.failed,post.failed,post.partially_published,"
                           "post.published,post.scheduled,post.unconfirmed");

    a = json_pack("{s:s}", "data_base64", "R0lGODlhAQABAAAAADs=");
    assert_int_equal(ex_media_upload(&f->env.ctx, WS, a, &m, NULL), PL_OK);
    json_decref(m);
    json_decref(a);
    types(f, t, sizeof t);
    assert_non_null(strstr(t, "media.ready,post.failed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_follow_changes, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
