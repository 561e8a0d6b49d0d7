/* tests/exec/test_account.c — removing a social account (ex_account_delete): a plain delete,
 * the refusal while scheduled or publishing posts target it (nothing changes), the forced
 * delete (pending targets fail with "account removed" in the same transaction, statuses
 * recomputed, events enqueued, published history kept, in-flight targets left to their
 * publisher), workspace isolation and bad or unknown ids. Real LMDB in a mkdtemp directory,
 * sandbox connectors, fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/obj.h"
#include "exec/post.h"
#include "exec/publish.h"
#include "exec/scheduler.h"
#include "exec/webhook.h"
#include "tests/exec/helpers.h"

#define WS    "ws_acc"
#define OTHER "ws_other"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX], li[EX_ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    assert_int_equal(th_account(&f->env, WS, "x", "X main", f->x), PL_OK);
    assert_int_equal(th_account(&f->env, WS, "linkedin", "LinkedIn page", f->li), PL_OK);
    ex_webhook_url_policy pol = {.allow_http_loopback = 1};
    json_t *a = th_json("{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"*\"]}"), *o = NULL;
    assert_int_equal(ex_webhook_create(&f->env.ctx, WS, a, &pol, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
    *state = f;
    return 0;
}

typedef pl_rc (*svc_fn)(const ex_ctx *, const char *, const json_t *, json_t **, ex_err *);

/* Calls fn in ws with args built from a printf format; returns rc, *out (or drops it), err. */
static pl_rc call(fx *f, const char *ws, svc_fn fn, json_t **out, ex_err *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static pl_rc call(fx *f, const char *ws, svc_fn fn, json_t **out, ex_err *err, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_t *args = th_json(buf), *o = NULL;
    ex_err e = {0};
    pl_rc rc = fn(&f->env.ctx, ws, args, &o, &e);
    json_decref(args);
    if (err)
        *err = e;
    if (out)
        *out = o;
    else
        json_decref(o);
    return rc;
}

/* Creates a post for the given targets (a JSON array of account ids), scheduled at sched when
 * not NULL; copies its id into id. */
static void post(fx *f, const char *accounts, const char *sched, char *id)
{
    json_t *p = NULL;
    ex_err err = {0};
    char extra[128] = "";
    if (sched)
        snprintf(extra, sizeof extra, ",\"scheduled_at\":\"%s\"", sched);
    pl_rc rc = call(f, WS, ex_post_create, &p, &err, "{\"text\":\"hello\",\"account_ids\":%s%s}",
                    accounts, extra);
    if (rc != PL_OK)
        fprintf(stderr, "create: %s\n", err.msg);
    assert_int_equal(rc, PL_OK);
    snprintf(id, EX_ID_MAX, "%s", th_str(p, "id"));
    json_decref(p);
}

static json_t *get_post(fx *f, const char *id)
{
    json_t *p = NULL;
    assert_int_equal(call(f, WS, ex_post_get, &p, NULL, "{\"post_id\":\"%s\"}", id), PL_OK);
    return p;
}

/* The target of p for account (borrowed), or NULL. */
static const json_t *target_of(const json_t *p, const char *account)
{
    const json_t *ts = json_object_get(p, "targets");
    for (size_t i = 0; i < json_array_size(ts); i++)
        if (strcmp(th_str(json_array_get(ts, i), "account_id"), account) == 0)
            return json_array_get(ts, i);
    return NULL;
}

static size_t count_db(fx *f, ex_db db)
{
    ex_txn txn;
    MDB_stat ms;
    assert_int_equal(ex_txn_begin(f->env.st, 0, &txn), PL_OK);
    mdb_stat(txn.mdb, ex_store_dbi(f->env.st, db), &ms);
    ex_txn_abort(&txn);
    return ms.ms_entries;
}

/* How many webhook deliveries of event type are recorded. */
static size_t deliveries_of(fx *f, const char *type)
{
    json_t *a = th_json("{\"limit\":100}"), *o = NULL;
    size_t n = 0;
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    const json_t *items = json_object_get(o, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        n += strcmp(th_str(json_array_get(items, i), "type"), type) == 0;
    json_decref(o);
    json_decref(a);
    return n;
}

static void test_delete_plain(void **state)
{
    fx *f = *state;
    json_t *o = NULL, *l = NULL;
    ex_err err = {0};
    char draft[EX_ID_MAX], ids[64];
    /* A draft that targets the account does not hold the delete back (it is neither scheduled
     * nor publishing); publishing it later is refused, naming the missing account. */
    snprintf(ids, sizeof ids, "[\"%s\"]", f->li);
    post(f, ids, NULL, draft);
    assert_int_equal(call(f, WS, ex_account_delete, &o, &err, "{\"account_id\":\"%s\"}", f->li),
                     PL_OK);
    assert_string_equal(th_str(o, "id"), f->li);
    assert_true(json_is_true(json_object_get(o, "deleted")));
    assert_int_equal(json_integer_value(json_object_get(o, "posts_affected")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "targets_failed")), 0);
    json_decref(o);
    assert_int_equal(call(f, WS, ex_account_get, NULL, &err, "{\"account_id\":\"%s\"}", f->li),
                     PL_ERR_NOT_FOUND);
    assert_int_equal(call(f, WS, ex_account_list, &l, NULL, "{}"), PL_OK);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    assert_string_equal(th_str(json_array_get(json_object_get(l, "items"), 0), "id"), f->x);
    json_decref(l);
    /* Deleting twice: the second call finds nothing. */
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\"}", f->li),
                     PL_ERR_NOT_FOUND);
    o = get_post(f, draft);
    assert_string_equal(th_str(o, "status"), "draft");
    json_decref(o);
    assert_int_equal(call(f, WS, ex_post_publish, NULL, &err, "{\"post_id\":\"%s\"}", draft),
                     PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "targets[0].account_id: no social account"));
}

static void test_refused_while_scheduled(void **state)
{
    fx *f = *state;
    char a[EX_ID_MAX], b[EX_ID_MAX], ids[256];
    json_t *before = NULL, *after = NULL;
    ex_err err = {0};
    snprintf(ids, sizeof ids, "[\"%s\",\"%s\"]", f->x, f->li);
    post(f, ids, "2027-01-15T10:00:00Z", a);
    snprintf(ids, sizeof ids, "[\"%s\"]", f->li);
    post(f, ids, "2027-01-16T10:00:00Z", b);
    before = get_post(f, a);
    size_t queue = count_db(f, EX_DB_QUEUE), events = count_db(f, EX_DB_OUTBOX);
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\"}", f->li),
                     PL_ERR_STATE);
    assert_string_equal(err.field, "account_id");
    assert_non_null(strstr(err.msg, "2 scheduled or publishing posts target social account"));
    assert_non_null(strstr(err.msg, "force: true"));
    /* force: false is the same refusal. */
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err,
                          "{\"account_id\":\"%s\",\"force\":false}", f->li),
                     PL_ERR_STATE);
    /* Nothing changed: the account, the posts, the queue, the outbox. */
    assert_int_equal(call(f, WS, ex_account_get, NULL, NULL, "{\"account_id\":\"%s\"}", f->li),
                     PL_OK);
    after = get_post(f, a);
    assert_true(json_equal(before, after));
    assert_int_equal(count_db(f, EX_DB_QUEUE), queue);
    assert_int_equal(count_db(f, EX_DB_OUTBOX), events);
    json_decref(before);
    json_decref(after);
    /* One post left: the message is in the singular. */
    assert_int_equal(call(f, WS, ex_post_unschedule, NULL, NULL, "{\"post_id\":\"%s\"}", b), PL_OK);
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\"}", f->li),
                     PL_ERR_STATE);
    assert_non_null(strstr(err.msg, "1 scheduled or publishing post targets social account"));
}

static void test_forced_with_scheduled_post(void **state)
{
    fx *f = *state;
    char both[EX_ID_MAX], only[EX_ID_MAX], done[EX_ID_MAX], ids[256];
    json_t *o = NULL, *p = NULL, *hist = NULL;
    ex_err err = {0};
    /* Published history: a post published on the account before it is removed. */
    snprintf(ids, sizeof ids, "[\"%s\"]", f->li);
    post(f, ids, NULL, done);
    assert_int_equal(call(f, WS, ex_post_publish, NULL, NULL, "{\"post_id\":\"%s\"}", done), PL_OK);
    hist = get_post(f, done);
    assert_string_equal(th_str(hist, "status"), "published");
    /* A scheduled post on both accounts and one on the removed account only. */
    snprintf(ids, sizeof ids, "[\"%s\",\"%s\"]", f->x, f->li);
    post(f, ids, "2027-01-15T10:00:00Z", both);
    snprintf(ids, sizeof ids, "[\"%s\"]", f->li);
    post(f, ids, "2027-01-16T10:00:00Z", only);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 2);
    size_t failed_events = deliveries_of(f, "post.failed");

    assert_int_equal(
        call(f, WS, ex_account_delete, &o, &err, "{\"account_id\":\"%s\",\"force\":true}", f->li),
        PL_OK);
    assert_true(json_is_true(json_object_get(o, "deleted")));
    assert_int_equal(json_integer_value(json_object_get(o, "posts_affected")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "targets_failed")), 2);
    json_decref(o);
    assert_int_equal(call(f, WS, ex_account_get, NULL, NULL, "{\"account_id\":\"%s\"}", f->li),
                     PL_ERR_NOT_FOUND);

    /* The post on both accounts stays scheduled for the other one. */
    p = get_post(f, both);
    assert_string_equal(th_str(p, "status"), "scheduled");
    assert_int_equal(json_integer_value(json_object_get(p, "version")), 2);
    assert_string_equal(th_str(target_of(p, f->li), "status"), "failed");
    assert_string_equal(th_str(json_object_get(target_of(p, f->li), "error"), "code"),
                        "account_removed");
    assert_string_equal(th_str(json_object_get(target_of(p, f->li), "error"), "message"),
                        "account removed");
    assert_string_equal(th_str(target_of(p, f->x), "status"), "pending");
    json_decref(p);
    /* The post on the removed account only has failed, left the queue, and said so. */
    p = get_post(f, only);
    assert_string_equal(th_str(p, "status"), "failed");
    assert_string_equal(th_str(target_of(p, f->li), "status"), "failed");
    json_decref(p);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 1);
    assert_int_equal(deliveries_of(f, "post.failed"), failed_events + 1);
    /* Published history stays exactly as it was. */
    p = get_post(f, done);
    assert_true(json_equal(p, hist));
    json_decref(p);
    json_decref(hist);

    /* At its time, the scheduler publishes the remaining target: partially published. */
    ex_scheduler *s = NULL;
    ex_sched_stats st = {0};
    assert_int_equal(ex_scheduler_new(&f->env.ctx, "t", &s), PL_OK);
    core_fake_clock_advance(&f->env.clock, 2LL * 3600 * 1000 + 60000);
    assert_int_equal(ex_scheduler_run_once(s, 10, &st), PL_OK);
    ex_scheduler_free(s);
    p = get_post(f, both);
    assert_string_equal(th_str(p, "status"), "partially_published");
    assert_string_equal(th_str(target_of(p, f->x), "status"), "published");
    assert_string_equal(th_str(target_of(p, f->li), "status"), "failed");
    json_decref(p);
    assert_int_equal(deliveries_of(f, "post.partially_published"), 1);
}

/* A target already handed to the platform is left to its publisher, which records the real
 * answer; the post's other pending target fails. */
static void test_forced_in_flight(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX], ids[256];
    json_t *p = NULL, *o = NULL;
    ex_pub_job *job = calloc(1, sizeof *job);
    ex_txn txn = {0};
    snprintf(ids, sizeof ids, "[\"%s\",\"%s\"]", f->x, f->li);
    post(f, ids, NULL, id);
    /* Claim the post, then put the removed account's target back to pending, as a rate-limited
     * target waiting for its next attempt would be. */
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_obj_load(&txn, EX_DB_POSTS, WS, "pst", id, "post_id", "post", &p, NULL),
                     PL_OK);
    assert_int_equal(ex_pub_claim_txn(&f->env.ctx, &txn, p, "w1", EX_CLAIM_NOW, job, NULL), PL_OK);
    assert_int_equal(job->n, 2);
    json_decref(p);
    assert_int_equal(ex_obj_load(&txn, EX_DB_POSTS, WS, "pst", id, "post_id", "post", &p, NULL),
                     PL_OK);
    json_t *t = (json_t *)target_of(p, f->li);
    json_object_set_new(t, "status", json_string("pending"));
    assert_int_equal(ex_obj_store(&txn, EX_DB_POSTS, WS, "pst", p), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(p);
    /* The job keeps only the x target (index 0), the one still in flight. */
    assert_int_equal(job->idx[0], 0);
    job->n = 1;

    assert_int_equal(call(f, WS, ex_account_delete, NULL, NULL, "{\"account_id\":\"%s\"}", f->x),
                     PL_ERR_STATE);
    assert_int_equal(
        call(f, WS, ex_account_delete, &o, NULL, "{\"account_id\":\"%s\",\"force\":true}", f->li),
        PL_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "targets_failed")), 1);
    json_decref(o);
    p = get_post(f, id);
    assert_string_equal(th_str(p, "status"), "publishing");
    assert_string_equal(th_str(target_of(p, f->li), "status"), "failed");
    assert_string_equal(th_str(target_of(p, f->x), "status"), "publishing");
    json_decref(p);
    /* The publisher records the platform's answer for the in-flight target. */
    ex_pub_call(&f->env.ctx, job);
    assert_int_equal(ex_pub_record(&f->env.ctx, job, &p, NULL), PL_OK);
    assert_string_equal(th_str(target_of(p, f->x), "status"), "published");
    assert_string_equal(th_str(p, "status"), "partially_published");
    json_decref(p);
    ex_pub_job_clear(job);
    free(job);
}

static void test_workspace_isolation(void **state)
{
    fx *f = *state;
    char mine[EX_ID_MAX];
    ex_err err = {0};
    assert_int_equal(th_account(&f->env, OTHER, "x", "Other X", mine), PL_OK);
    /* Another workspace's account is "not found", and stays. */
    assert_int_equal(call(f, OTHER, ex_account_delete, NULL, &err,
                          "{\"account_id\":\"%s\",\"force\":true}", f->x),
                     PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no social account"));
    assert_int_equal(call(f, WS, ex_account_get, NULL, NULL, "{\"account_id\":\"%s\"}", f->x),
                     PL_OK);
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\"}", mine),
                     PL_ERR_NOT_FOUND);
    assert_int_equal(call(f, OTHER, ex_account_get, NULL, NULL, "{\"account_id\":\"%s\"}", mine),
                     PL_OK);
    /* Posts of one workspace never count against the other's deletion. */
    char id[EX_ID_MAX], ids[64];
    snprintf(ids, sizeof ids, "[\"%s\"]", f->x);
    post(f, ids, "2027-01-15T10:00:00Z", id);
    assert_int_equal(call(f, OTHER, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\"}", mine),
                     PL_OK);
}

static void test_unknown_and_bad_ids(void **state)
{
    fx *f = *state;
    ex_err err = {0};
    json_t *o = NULL;
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err,
                          "{\"account_id\":\"acc_0192f3a1b2c30000000000000000\"}"),
                     PL_ERR_NOT_FOUND);
    assert_string_equal(err.field, "account_id");
    assert_non_null(strstr(err.msg, "account_id: no social account acc_0192f3a1b2c3"));
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"pst_x\"}"),
                     PL_ERR_INVALID);
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err, "{}"), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "account_id"));
    assert_int_equal(
        call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\",\"force\":1}", f->x),
        PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "force: must be true or false"));
    assert_int_equal(
        call(f, WS, ex_account_delete, NULL, &err, "{\"account_id\":\"%s\",\"colour\":1}", f->x),
        PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "colour"));
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err,
                          "{\"account_id\":\"%s\",\"expected_version\":7}", f->x),
                     PL_ERR_CONFLICT);
    /* None of that removed anything; the right version does. */
    assert_int_equal(call(f, WS, ex_account_get, &o, NULL, "{\"account_id\":\"%s\"}", f->x), PL_OK);
    json_decref(o);
    assert_int_equal(call(f, WS, ex_account_delete, NULL, &err,
                          "{\"account_id\":\"%s\",\"expected_version\":1}", f->x),
                     PL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delete_plain, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_refused_while_scheduled, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_forced_with_scheduled_post, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_forced_in_flight, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_workspace_isolation, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_bad_ids, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
