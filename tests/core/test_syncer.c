/* tests/core/test_syncer.c — core/syncer.h on a real event loop and a real second thread.
 *
 * The sync function here is a test double for a store's fdatasync: it records how many times it
 * ran and returns the result the test scripted, so the protocol (coverage of every requested
 * commit, failures reported and never hidden, callbacks on the loop thread) is checked without a
 * disk. No sleeps: the loop runs until the callback says the awaited commit is covered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <sched.h>

#include "core/syncer.h"

typedef struct fixture {
    struct event_base *base;
    pthread_t loop_thread;
    pthread_mutex_t mu;
    int syncs;          /* guarded by mu */
    pl_rc script[8];    /* result of the n-th sync (PL_OK beyond) */
    uint64_t covered;   /* highest seq reported durable (loop thread) */
    uint64_t failed_to; /* highest seq reported failed (loop thread) */
    int calls;          /* done callbacks */
    int wrong_thread;   /* a callback ran off the loop thread */
    uint64_t want;      /* stop the loop once covered or failed reaches this */
} fixture;

static pl_rc fake_sync(void *arg)
{
    fixture *f = arg;
    pl_rc rc;
    pthread_mutex_lock(&f->mu);
    rc = f->syncs < 8 ? f->script[f->syncs] : PL_OK;
    f->syncs++;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void on_synced(void *arg, uint64_t seq, pl_rc rc)
{
    fixture *f = arg;
    f->calls++;
    if (!pthread_equal(pthread_self(), f->loop_thread))
        f->wrong_thread = 1;
    if (rc == PL_OK)
        f->covered = seq > f->covered ? seq : f->covered;
    else
        f->failed_to = seq > f->failed_to ? seq : f->failed_to;
    if (f->covered >= f->want || f->failed_to >= f->want)
        event_base_loopbreak(f->base);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->loop_thread = pthread_self();
    pthread_mutex_init(&f->mu, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    event_base_free(f->base);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static void run_until(fixture *f, uint64_t seq)
{
    f->want = seq;
    event_base_dispatch(f->base);
}

/* Every requested commit is reported durable, on the loop thread, and a sync covers all the
 * requests made before it started (three requests need at most three syncs). */
static void test_covers_every_request(void **state)
{
    fixture *f = *state;
    core_syncer *sy = NULL;
    assert_int_equal(core_syncer_new(f->base, fake_sync, f, on_synced, f, &sy), PL_OK);
    core_syncer_request(sy, 1);
    core_syncer_request(sy, 2);
    core_syncer_request(sy, 3);
    run_until(f, 3);
    assert_int_equal(f->covered, 3);
    assert_int_equal(f->failed_to, 0);
    assert_false(f->wrong_thread);
    assert_true(core_syncer_count(sy) >= 1 && core_syncer_count(sy) <= 3);
    core_syncer_free(sy);
}

/* Waits (without sleeping: the count is the syncer's own record, read under its lock) until
 * n syncs have completed and been recorded; the loop is not running, so no callback yet. */
static void await_syncs(core_syncer *sy, uint64_t n)
{
    while (core_syncer_count(sy) < n)
        sched_yield();
}

/* A failed sync is reported for the commits it covered, and a later successful sync that
 * completes before the loop hears of the failure does not turn it into success. */
static void test_failure_reported_not_hidden(void **state)
{
    fixture *f = *state;
    core_syncer *sy = NULL;
    f->script[0] = PL_ERR_IO; /* the second sync succeeds */
    assert_int_equal(core_syncer_new(f->base, fake_sync, f, on_synced, f, &sy), PL_OK);
    core_syncer_request(sy, 1);
    await_syncs(sy, 1);
    core_syncer_request(sy, 2);
    await_syncs(sy, 2);
    run_until(f, 2);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->failed_to, 2);
    assert_int_equal(f->covered, 0);
    /* The failure was consumed: the next commit's successful sync is reported durable. */
    core_syncer_request(sy, 3);
    run_until(f, 3);
    assert_int_equal(f->covered, 3);
    core_syncer_free(sy);
}

/* A recorded failure is reported by core_syncer_poll_failure at once, before the loop has
 * run (the batcher calls it before trusting a later commit's fsync); a success is not, and a
 * failure is reported once. */
static void test_poll_reports_failure_first(void **state)
{
    fixture *f = *state;
    core_syncer *sy = NULL;
    f->script[1] = PL_ERR_IO; /* the first sync succeeds, the second fails */
    assert_int_equal(core_syncer_new(f->base, fake_sync, f, on_synced, f, &sy), PL_OK);
    core_syncer_request(sy, 1);
    await_syncs(sy, 1);
    core_syncer_poll_failure(sy);
    assert_int_equal(f->calls, 0); /* a success waits for the loop */
    core_syncer_request(sy, 2);
    await_syncs(sy, 2);
    core_syncer_poll_failure(sy);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->failed_to, 2);
    assert_false(f->wrong_thread);
    core_syncer_poll_failure(sy);
    assert_int_equal(f->calls, 1); /* reported once */
    /* the loop's later wake-up reports the position without the consumed failure */
    run_until(f, 2);
    assert_int_equal(f->covered, 2);
    assert_int_equal(f->failed_to, 2);
    core_syncer_free(sy);
}

/* Freeing with a request outstanding joins the thread without calling back. */
static void test_free_joins(void **state)
{
    fixture *f = *state;
    core_syncer *sy = NULL;
    assert_int_equal(core_syncer_new(f->base, fake_sync, f, on_synced, f, &sy), PL_OK);
    core_syncer_request(sy, 1);
    core_syncer_free(sy);
    assert_int_equal(f->calls, 0);
    core_syncer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_covers_every_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_reported_not_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_reports_failure_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_joins, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
