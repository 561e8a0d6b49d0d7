/* tests/exec/test_post.c — posts: create/get/list/update/delete/validate/schedule/unschedule,
 * publish now, retry, status, and every lifecycle transition, against the sandbox connectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/post.h"
#include "exec/obj.h"
#include "exec/publish.h"
#include "exec/scheduler.h"
#include "exec/workspace.h"
#include "tests/exec/helpers.h"

#define WS "ws_acme"

typedef struct fx {
    th_env env;
    char x[EX_ID_MAX], li[EX_ID_MAX], ig[EX_ID_MAX];
} fx;

static void make_account(fx *f, const char *platform, char *out)
{
    assert_int_equal(th_account(&f->env, WS, platform, platform, out), PL_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    json_t *o = NULL, *a = th_json("{\"name\":\"Acme\",\"timezone\":\"Europe/Paris\"}");
    assert_int_equal(ex_workspace_ensure(&f->env.ctx, WS, a, &o, NULL), PL_OK);
    json_decref(o);
    json_decref(a);
    make_account(f, "x", f->x);
    make_account(f, "linkedin", f->li);
    make_account(f, "instagram", f->ig);
    *state = f;
    return 0;
}

/* Calls fn with args built from a printf format; returns rc, *out and err. */
typedef pl_rc (*svc_fn)(const ex_ctx *, const char *, const json_t *, json_t **, ex_err *);
static pl_rc call(fx *f, svc_fn fn, json_t **out, ex_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static pl_rc call(fx *f, svc_fn fn, json_t **out, ex_err *err, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_t *args = th_json(buf);
    json_t *o = NULL;
    ex_err e = {0};
    pl_rc rc = fn(&f->env.ctx, WS, args, &o, &e);
    json_decref(args);
    if (err)
        *err = e;
    if (out)
        *out = o;
    else
        json_decref(o);
    return rc;
}

static const json_t *target(const json_t *p, size_t i)
{
    return json_array_get(json_object_get(p, "targets"), i);
}

static char *create_post(fx *f, const char *text, const char *acc, char *id)
{
    json_t *p = NULL;
    ex_err err = {0};
    pl_rc rc =
        call(f, ex_post_create, &p, &err, "{\"text\":\"%s\",\"account_ids\":[\"%s\"]}", text, acc);
    if (rc != PL_OK)
        fprintf(stderr, "create: %s\n", err.msg);
    assert_int_equal(rc, PL_OK);
    snprintf(id, EX_ID_MAX, "%s", th_str(p, "id"));
    json_decref(p);
    return id;
}

/* Counts records in a database (to prove "store unchanged"). */
static size_t count_db(fx *f, ex_db db)
{
    ex_txn txn;
    MDB_stat ms;
    assert_int_equal(ex_txn_begin(f->env.st, 0, &txn), PL_OK);
    mdb_stat(txn.mdb, ex_store_dbi(f->env.st, db), &ms);
    ex_txn_abort(&txn);
    return ms.ms_entries;
}

static void test_create_get_draft(void **state)
{
    fx *f = *state;
    json_t *p = NULL, *g = NULL;
    ex_err err = {0};
    assert_int_equal(call(f, ex_post_create, &p, &err,
                          "{\"text\":\"hello\",\"targets\":[{\"account_id\":\"%s\"},"
                          "{\"account_id\":\"%s\",\"text\":\"longer hello for LinkedIn\"}]}",
                          f->x, f->li),
                     PL_OK);
    assert_string_equal(th_str(p, "status"), "draft");
    assert_string_equal(th_str(p, "timezone"), "Europe/Paris"); /* the workspace default */
    assert_int_equal(json_integer_value(json_object_get(p, "version")), 1);
    assert_string_equal(th_str(target(p, 0), "platform"), "x");
    assert_string_equal(th_str(target(p, 1), "text"), "longer hello for LinkedIn");
    assert_string_equal(th_str(target(p, 1), "status"), "pending");
    assert_null(json_object_get(p, "queue_due_ms"));
    assert_int_equal(call(f, ex_post_get, &g, &err, "{\"post_id\":\"%s\"}", th_str(p, "id")),
                     PL_OK);
    assert_true(json_equal(p, g));
    json_decref(g);
    json_decref(p);
}

static void test_bad_input_specific_and_unchanged(void **state)
{
    fx *f = *state;
    ex_err err = {0};
    size_t before = count_db(f, EX_DB_POSTS);
    char text[400];
    memset(text, 'a', 312);
    text[312] = '\0';
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"%s\",\"account_ids\":[\"%s\"]}", text, f->x),
                     PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "312"));
    assert_non_null(strstr(err.msg, "280"));
    assert_string_equal(err.field, "targets[0].text");

    /* Instagram needs a medium. */
    assert_int_equal(
        call(f, ex_post_create, NULL, &err, "{\"text\":\"hi\",\"account_ids\":[\"%s\"]}", f->ig),
        PL_ERR_INVALID);
    assert_non_null(strstr(err.field, "targets[0]"));

    /* Unknown account, bad id, unknown argument, missing accounts. */
    assert_int_equal(
        call(f, ex_post_create, NULL, &err,
             "{\"text\":\"hi\",\"account_ids\":[\"acc_000000000000aaaaaaaaaaaaaaaa\"]}"),
        PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "account_ids[0]"));
    assert_int_equal(
        call(f, ex_post_create, NULL, &err, "{\"text\":\"hi\",\"account_ids\":[\"nope\"]}"),
        PL_ERR_INVALID);
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"colour\":1,"
                          "\"account_ids\":[\"%s\"]}",
                          f->x),
                     PL_ERR_INVALID);
    assert_string_equal(err.msg, "colour: unknown argument");
    assert_int_equal(call(f, ex_post_create, NULL, &err, "{\"text\":\"hi\"}"), PL_ERR_INVALID);
    assert_string_equal(err.field, "account_ids");

    /* Times and zones. */
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2020-01-01T00:00:00Z\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "scheduled_at: in the past"));
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2035-01-01T00:00:00Z\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "days ahead"));
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2027-02-01T10:00:00\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "with offset"));
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2027-02-30T10:00:00Z\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2027-02-01T10:00:00+01:00\","
                          "\"timezone\":\"Mars/Olympus\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_string_equal(err.msg, "timezone: unknown IANA zone \"Mars/Olympus\"");
    assert_int_equal(call(f, ex_post_create, NULL, &err,
                          "{\"text\":\"hi\",\"account_ids\":[\"%s\"],"
                          "\"scheduled_at\":\"2027-02-01T10:00:00+01:00\","
                          "\"timezone\":\"../../etc/passwd\"}",
                          f->x),
                     PL_ERR_INVALID);
    assert_int_equal(count_db(f, EX_DB_POSTS), before);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 0);

    /* Unknown post ids. */
    assert_int_equal(
        call(f, ex_post_get, NULL, &err, "{\"post_id\":\"pst_000000000000aaaaaaaaaaaaaaaa\"}"),
        PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "post_id: no post"));
    assert_int_equal(
        call(f, ex_post_get, NULL, &err, "{\"post_id\":\"drf_000000000000aaaaaaaaaaaaaaaa\"}"),
        PL_ERR_INVALID);
}

static void test_validate(void **state)
{
    fx *f = *state;
    json_t *v = NULL;
    char text[400];
    memset(text, 'b', 300);
    text[300] = '\0';
    assert_int_equal(call(f, ex_post_validate, &v, NULL,
                          "{\"text\":\"%s\",\"account_ids\":[\"%s\",\"%s\"]}", text, f->x, f->li),
                     PL_OK);
    assert_false(json_is_true(json_object_get(v, "valid")));
    json_t *problems = json_object_get(v, "problems");
    assert_int_equal(json_array_size(problems), 1); /* X only; LinkedIn allows 3000 */
    assert_string_equal(th_str(json_array_get(problems, 0), "platform"), "x");
    assert_string_equal(th_str(json_array_get(problems, 0), "field"), "text");
    json_decref(v);
    assert_int_equal(
        call(f, ex_post_validate, &v, NULL, "{\"text\":\"fine\",\"account_ids\":[\"%s\"]}", f->x),
        PL_OK);
    assert_true(json_is_true(json_object_get(v, "valid")));
    json_decref(v);
    assert_int_equal(count_db(f, EX_DB_POSTS), 0); /* validate stores nothing */
}

static void test_update_versions_and_delete(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL;
    ex_err err = {0};
    create_post(f, "v1", f->x, id);
    assert_int_equal(call(f, ex_post_update, &p, &err,
                          "{\"post_id\":\"%s\",\"expected_version\":1,\"text\":\"v2\"}", id),
                     PL_OK);
    assert_int_equal(json_integer_value(json_object_get(p, "version")), 2);
    assert_string_equal(th_str(p, "text"), "v2");
    json_decref(p);
    assert_int_equal(call(f, ex_post_update, NULL, &err,
                          "{\"post_id\":\"%s\",\"expected_version\":1,\"text\":\"v3\"}", id),
                     PL_ERR_CONFLICT);
    assert_string_equal(err.msg, "expected_version: 1 but the post is at version 2 (re-read it "
                                 "and retry)");
    /* An invalid update changes nothing. */
    char text[400];
    memset(text, 'c', 290);
    text[290] = '\0';
    assert_int_equal(
        call(f, ex_post_update, NULL, &err, "{\"post_id\":\"%s\",\"text\":\"%s\"}", id, text),
        PL_ERR_INVALID);
    assert_int_equal(call(f, ex_post_get, &p, NULL, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "text"), "v2");
    assert_int_equal(json_integer_value(json_object_get(p, "version")), 2);
    json_decref(p);
    assert_int_equal(
        call(f, ex_post_delete, NULL, &err, "{\"post_id\":\"%s\",\"expected_version\":9}", id),
        PL_ERR_CONFLICT);
    assert_int_equal(call(f, ex_post_delete, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_true(json_is_true(json_object_get(p, "deleted")));
    json_decref(p);
    assert_int_equal(call(f, ex_post_get, NULL, &err, "{\"post_id\":\"%s\"}", id),
                     PL_ERR_NOT_FOUND);
}

static void test_schedule_unschedule(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL;
    ex_err err = {0};
    create_post(f, "later", f->x, id);
    assert_int_equal(call(f, ex_post_schedule, &p, &err,
                          "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-01-15T10:30:00+01:00\","
                          "\"timezone\":\"America/New_York\"}",
                          id),
                     PL_OK);
    assert_string_equal(th_str(p, "status"), "scheduled");
    assert_string_equal(th_str(p, "scheduled_at"), "2027-01-15T09:30:00.000Z"); /* UTC */
    assert_string_equal(th_str(p, "timezone"), "America/New_York");
    json_decref(p);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 1);
    /* Rescheduling moves the queue entry, never duplicates it. */
    assert_int_equal(call(f, ex_post_schedule, NULL, &err,
                          "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-01-16T10:30:00Z\"}", id),
                     PL_OK);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 1);
    assert_int_equal(call(f, ex_post_schedule, NULL, &err,
                          "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-01-15T07:59:59Z\"}", id),
                     PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "in the past"));
    assert_int_equal(call(f, ex_post_unschedule, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "draft");
    assert_true(json_is_null(json_object_get(p, "scheduled_at")));
    json_decref(p);
    assert_int_equal(count_db(f, EX_DB_QUEUE), 0);
    assert_int_equal(call(f, ex_post_unschedule, NULL, &err, "{\"post_id\":\"%s\"}", id),
                     PL_ERR_STATE);
}

static void test_publish_now_and_status(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL;
    ex_err err = {0};
    create_post(f, "ship it", f->x, id);
    assert_int_equal(call(f, ex_post_publish, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    assert_string_equal(th_str(target(p, 0), "status"), "published");
    assert_non_null(th_str(target(p, 0), "remote_id"));
    assert_non_null(th_str(target(p, 0), "url"));
    assert_int_equal(json_integer_value(json_object_get(target(p, 0), "attempts")), 1);
    json_decref(p);
    assert_int_equal(call(f, ex_post_status, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    assert_null(json_object_get(p, "text"));
    json_decref(p);
    /* Published posts are neither edited, republished nor retried. */
    assert_int_equal(call(f, ex_post_update, NULL, &err, "{\"post_id\":\"%s\",\"text\":\"x\"}", id),
                     PL_ERR_STATE);
    assert_int_equal(call(f, ex_post_publish, NULL, &err, "{\"post_id\":\"%s\"}", id),
                     PL_ERR_STATE);
    assert_int_equal(call(f, ex_post_retry, NULL, &err, "{\"post_id\":\"%s\"}", id), PL_ERR_STATE);
    assert_int_equal(count_db(f, EX_DB_CLAIMS), 0);
}

static void test_partial_failure_and_retry(void **state)
{
    fx *f = *state;
    json_t *p = NULL;
    ex_err err = {0};
    assert_int_equal(call(f, ex_post_create, &p, &err,
                          "{\"targets\":[{\"account_id\":\"%s\",\"text\":\"ok\"},"
                          "{\"account_id\":\"%s\",\"text\":\"[sandbox:reject*1] nope\"}]}",
                          f->x, f->li),
                     PL_OK);
    char id[EX_ID_MAX];
    snprintf(id, sizeof id, "%s", th_str(p, "id"));
    json_decref(p);
    assert_int_equal(call(f, ex_post_publish, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "partially_published");
    assert_string_equal(th_str(target(p, 1), "status"), "failed");
    assert_non_null(json_object_get(target(p, 1), "error"));
    json_decref(p);
    /* Retry only touches the failed target; the reject was for attempt 1 only. */
    assert_int_equal(call(f, ex_post_retry, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    assert_int_equal(json_integer_value(json_object_get(target(p, 0), "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(target(p, 1), "attempts")), 2);
    json_decref(p);
}

static void test_all_failed(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL;
    create_post(f, "[sandbox:duplicate] again", f->x, id);
    assert_int_equal(call(f, ex_post_publish, &p, NULL, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "failed");
    assert_string_equal(th_str(target(p, 0), "status"), "failed");
    json_decref(p);
}

static void test_unknown_outcome_needs_force(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL;
    ex_err err = {0};
    create_post(f, "[sandbox:unknown_lost*1] maybe", f->x, id);
    assert_int_equal(call(f, ex_post_publish, &p, &err, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(target(p, 0), "status"), "unconfirmed");
    assert_string_equal(th_str(p, "status"), "failed");
    json_decref(p);
    /* Nothing retries an unconfirmed target on its own: not the scheduler ... */
    core_fake_clock_advance(&f->env.clock, 3600LL * 1000);
    ex_scheduler *s = NULL;
    assert_int_equal(ex_scheduler_new(&f->env.ctx, "t", &s), PL_OK);
    ex_sched_stats st = {0};
    assert_int_equal(ex_scheduler_run_once(s, 8, &st), PL_OK);
    assert_int_equal(st.targets, 0);
    ex_scheduler_free(s);
    /* ... nor retry without force. */
    assert_int_equal(call(f, ex_post_retry, NULL, &err, "{\"post_id\":\"%s\"}", id), PL_ERR_STATE);
    assert_non_null(strstr(err.msg, "force"));
    assert_int_equal(call(f, ex_post_retry, &p, &err, "{\"post_id\":\"%s\",\"force\":true}", id),
                     PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
}

static void test_reconcile_unconfirmed(void **state)
{
    fx *f = *state;
    char landed[EX_ID_MAX], lost[EX_ID_MAX];
    json_t *p = NULL;
    ex_err err = {0};
    create_post(f, "[sandbox:unknown] it went out", f->x, landed);
    create_post(f, "[sandbox:unknown_lost] it did not", f->li, lost);
    assert_int_equal(call(f, ex_post_publish, &p, NULL, "{\"post_id\":\"%s\"}", landed), PL_OK);
    json_decref(p);
    assert_int_equal(call(f, ex_post_publish, &p, NULL, "{\"post_id\":\"%s\"}", lost), PL_OK);
    json_decref(p);
    /* The platform has the first: reconcile records it as published, without publishing. */
    assert_int_equal(call(f, ex_post_reconcile, &p, &err, "{\"post_id\":\"%s\"}", landed), PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    assert_string_equal(th_str(target(p, 0), "status"), "published");
    assert_non_null(th_str(target(p, 0), "remote_id"));
    assert_int_equal(json_integer_value(json_object_get(target(p, 0), "attempts")), 1);
    json_decref(p);
    /* The second never landed: still unconfirmed, with a note; force publishes it. */
    assert_int_equal(call(f, ex_post_reconcile, &p, &err, "{\"post_id\":\"%s\"}", lost), PL_OK);
    assert_string_equal(th_str(target(p, 0), "status"), "unconfirmed");
    assert_string_equal(th_str(json_object_get(target(p, 0), "error"), "code"),
                        "not_found_remotely");
    json_decref(p);
    assert_int_equal(call(f, ex_post_reconcile, NULL, &err,
                          "{\"post_id\":\"pst_000000000000aaaaaaaaaaaaaaaa\"}"),
                     PL_ERR_NOT_FOUND);
}

static void test_auth_expired_marks_account(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    json_t *p = NULL, *a = NULL;
    create_post(f, "[sandbox:auth_expired] x", f->li, id);
    assert_int_equal(call(f, ex_post_publish, &p, NULL, "{\"post_id\":\"%s\"}", id), PL_OK);
    assert_string_equal(th_str(p, "status"), "failed");
    json_decref(p);
    assert_int_equal(call(f, ex_account_get, &a, NULL, "{\"account_id\":\"%s\"}", f->li), PL_OK);
    assert_string_equal(th_str(a, "state"), "needs_reconnect");
    json_decref(a);
    /* A later publish to that account fails fast without calling the platform. */
    char id2[EX_ID_MAX];
    create_post(f, "second", f->li, id2);
    assert_int_equal(call(f, ex_post_publish, &p, NULL, "{\"post_id\":\"%s\"}", id2), PL_OK);
    assert_string_equal(th_str(json_object_get(target(p, 0), "error"), "code"),
                        "account_needs_reconnect");
    json_decref(p);
}

static void test_locked_while_publishing(void **state)
{
    fx *f = *state;
    char id[EX_ID_MAX];
    ex_err err = {0};
    create_post(f, "locked", f->x, id);
    /* Claim it as a worker would, then try to edit it. */
    ex_txn txn;
    json_t *p = NULL;
    ex_pub_job *job = calloc(1, sizeof *job);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_obj_load(&txn, EX_DB_POSTS, WS, "pst", id, "post_id", "post", &p, NULL),
                     PL_OK);
    assert_int_equal(ex_pub_claim_txn(&f->env.ctx, &txn, p, "w1", EX_CLAIM_NOW, job, NULL), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(p);
    assert_int_equal(job->n, 1);
    assert_int_equal(call(f, ex_post_update, NULL, &err, "{\"post_id\":\"%s\",\"text\":\"x\"}", id),
                     PL_ERR_STATE);
    assert_non_null(strstr(err.msg, "locked"));
    assert_int_equal(call(f, ex_post_delete, NULL, &err, "{\"post_id\":\"%s\"}", id), PL_ERR_STATE);
    assert_int_equal(call(f, ex_post_schedule, NULL, &err,
                          "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-02-01T00:00:00Z\"}", id),
                     PL_ERR_STATE);
    assert_int_equal(call(f, ex_post_publish, NULL, &err, "{\"post_id\":\"%s\"}", id),
                     PL_ERR_STATE);
    ex_pub_call(&f->env.ctx, job);
    assert_int_equal(ex_pub_record(&f->env.ctx, job, &p, NULL), PL_OK);
    assert_string_equal(th_str(p, "status"), "published");
    json_decref(p);
    ex_pub_job_clear(job);
    free(job);
}

static void test_list_filters(void **state)
{
    fx *f = *state;
    char a[EX_ID_MAX], b[EX_ID_MAX], c[EX_ID_MAX];
    json_t *l = NULL;
    ex_err err = {0};
    create_post(f, "one", f->x, a);
    create_post(f, "two", f->li, b);
    create_post(f, "three", f->x, c);
    assert_int_equal(call(f, ex_post_schedule, NULL, &err,
                          "{\"post_id\":\"%s\",\"scheduled_at\":\"2027-03-01T00:00:00Z\"}", b),
                     PL_OK);
    assert_int_equal(call(f, ex_post_list, &l, &err, "{\"platform\":\"x\"}"), PL_OK);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 2);
    json_decref(l);
    assert_int_equal(call(f, ex_post_list, &l, &err, "{\"status\":\"scheduled\"}"), PL_OK);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    assert_string_equal(th_str(json_array_get(json_object_get(l, "items"), 0), "id"), b);
    json_decref(l);
    assert_int_equal(call(f, ex_post_list, &l, &err,
                          "{\"from\":\"2027-02-01T00:00:00Z\",\"to\":\"2027-04-01T00:00:00Z\"}"),
                     PL_OK);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    assert_int_equal(call(f, ex_post_list, &l, &err, "{\"status\":\"lost\"}"), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "status: must be one of"));
    assert_int_equal(call(f, ex_post_list, &l, &err, "{\"limit\":0}"), PL_ERR_INVALID);
    assert_int_equal(call(f, ex_post_list, &l, &err, "{\"limit\":1000}"), PL_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_get_draft, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_specific_and_unchanged, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_validate, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_update_versions_and_delete, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_schedule_unschedule, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_publish_now_and_status, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_partial_failure_and_retry, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_all_failed, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_outcome_needs_force, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_unconfirmed, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_auth_expired_marks_account, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_locked_while_publishing, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, th_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
