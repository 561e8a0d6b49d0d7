/* exec/batch.c — see batch.h. */
#include "batch.h"

#include <stdlib.h>

#include <event2/event.h>

#include "core/syncer.h"

/* A held reply, or (done NULL) the marker of a committed batch whose keys the store keeps for
 * its change observer: released with the batch's replies, it settles them
 * (ex_store_batch_settle: reported when durable, dropped when the batch failed). */
typedef struct held {
    ex_batch_done_fn done;
    void *arg;
    uint64_t seq;  /* the commit it waits for (syncing list) */
    uint64_t mark; /* marker: ex_store_batch_mark() after the commit */
    struct held *next;
} held;

struct ex_batcher {
    ex_store *st;
    const core_log *log;
    struct event *commit;
    int scheduled;
    uint64_t joins_at_enter;
    held *pending, **pending_tail; /* replies of the open batch */
    held *syncing, **syncing_tail; /* replies of committed batches, waiting for their sync */
    uint64_t seq;                  /* commits handed to the syncer */
    uint64_t marked;               /* the store's batch mark last given a marker */
    int sync_failed;               /* a sync failed: fail-stop (on_synced) */
    core_syncer *syncer;           /* NULL unless the store needs a second sync */
    ex_batch_stats stats;
};

static void release(ex_batcher *b, held *h, pl_rc rc)
{
    if (rc == PL_OK && b->sync_failed)
        rc = PL_ERR_IO; /* fail-stop: see on_synced */
    if (h->done) {
        b->stats.failed += rc != PL_OK;
        h->done(h->arg, rc);
    } else {
        ex_store_batch_settle(b->st, h->mark, rc);
    }
    free(h);
}

/* After a commit: when it kept keys for the observer (a new batch mark), a marker goes after
 * the batch's held replies, so that the keys are reported exactly when the replies are
 * released, with the same outcome. Out of memory: the next marker settles them (the store
 * settles every mark up to the one given). */
static void mark_batch(ex_batcher *b)
{
    uint64_t mark = ex_store_batch_mark(b->st);
    held *h;
    if (mark == b->marked || !(h = calloc(1, sizeof *h)))
        return;
    h->mark = b->marked = mark;
    *b->pending_tail = h;
    b->pending_tail = &h->next;
}

/* Releases the held replies of every commit numbered <= seq. */
static void release_upto(ex_batcher *b, uint64_t seq, pl_rc rc)
{
    while (b->syncing && b->syncing->seq <= seq) {
        held *h = b->syncing;
        b->syncing = h->next;
        if (!b->syncing)
            b->syncing_tail = &b->syncing;
        release(b, h, rc);
    }
}

static void on_synced(void *arg, uint64_t seq, pl_rc rc)
{
    ex_batcher *b = arg;
    if (rc != PL_OK && !b->sync_failed) {
        /* After a failed fsync the kernel may have dropped the pages it could not write, and
         * a later fsync may still succeed: no later success proves anything. Fail-stop:
         * every write reply from now on is an error; reads go on. */
        b->sync_failed = 1;
        core_log_error(b->log,
                       "exec: batch sync failed (%s): write replies are errors from now on; "
                       "check the disk and restart",
                       pl_strerror(rc));
    }
    release_upto(b, seq, rc);
}

static pl_rc store_sync(void *st)
{
    return ex_store_sync(st);
}

/* The end of the iteration: commit once, then hand the replies held for this batch to the
 * syncer (or release them at once when the store needs no second sync). */
static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    ex_batcher *b = arg;
    int needs_sync = 0, data_synced = 0, had = ex_store_batch_pending(b->st);
    pl_rc rc = ex_store_batch_commit(b->st, &needs_sync, &data_synced);
    held *h, *next;
    mark_batch(b);
    h = b->pending;
    (void)fd;
    (void)what;
    b->scheduled = 0;
    b->pending = NULL;
    b->pending_tail = &b->pending;
    b->stats.commits += had;
    if (rc != PL_OK)
        core_log_error(b->log, "exec: batch commit failed (%s); held replies become errors",
                       pl_strerror(rc));
    if (data_synced) {
        /* This commit synced the data file (its data pages) after every earlier commit had
         * written its meta page: every earlier batch is durable now, whether or not its own
         * sync has finished. Under load, batches are released one commit later instead of
         * waiting for their sync. */
        release_upto(b, b->seq, PL_OK);
    }
    if (needs_sync && b->syncer) {
        b->seq++;
        for (; h; h = next) {
            next = h->next;
            h->next = NULL;
            h->seq = b->seq;
            *b->syncing_tail = h;
            b->syncing_tail = &h->next;
        }
        core_syncer_request(b->syncer, b->seq);
        return;
    }
    if (needs_sync) /* no syncer (cannot happen after a successful new): sync inline */
        rc = ex_store_sync(b->st);
    for (; h; h = next) {
        next = h->next;
        release(b, h, rc);
    }
}

pl_rc ex_batcher_new(struct event_base *base, ex_store *st, const core_log *log, ex_batcher **out)
{
    ex_batcher *b = calloc(1, sizeof *b);
    pl_rc rc;
    *out = NULL;
    if (!b)
        return PL_ERR_NOMEM;
    b->st = st;
    b->log = log;
    b->pending_tail = &b->pending;
    b->syncing_tail = &b->syncing;
    rc = ex_store_batch_thread(st);
    if (rc != PL_OK)
        goto out;
    b->commit = event_new(base, -1, 0, on_commit, b);
    if (!b->commit) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* Lowest priority: after every other callback due in this iteration. */
    int npri = event_base_get_npriorities(base);
    if (npri > 1)
        event_priority_set(b->commit, npri - 1);
    rc = core_syncer_new(base, store_sync, st, on_synced, b, &b->syncer);
    if (rc != PL_OK)
        goto out;
    *out = b;
    b = NULL;
out:
    ex_batcher_free(b);
    return rc;
}

void ex_batcher_free(ex_batcher *b)
{
    if (!b)
        return;
    core_syncer_free(b->syncer); /* joins: a sync in progress completes */
    b->syncer = NULL;
    /* Whatever is left is made durable here, inline, and answered. */
    int needs_sync = 0;
    pl_rc rc = ex_store_batch_commit(b->st, &needs_sync, NULL);
    pl_rc src = ex_store_sync(b->st);
    mark_batch(b);
    held *lists[2] = {b->syncing, b->pending};
    for (int i = 0; i < 2; i++) {
        held *h = lists[i], *next;
        for (; h; h = next) {
            next = h->next;
            release(b, h, i == 1 && rc != PL_OK ? rc : src);
        }
    }
    if (b->commit)
        event_free(b->commit);
    free(b);
}

void ex_batcher_enter(ex_batcher *b)
{
    b->joins_at_enter = ex_store_batch_joins(b->st);
    ex_store_batch_enter(b->st);
}

static void schedule(ex_batcher *b)
{
    if (!b->scheduled) {
        b->scheduled = 1;
        event_active(b->commit, 0, 0);
    }
}

int ex_batcher_leave(ex_batcher *b)
{
    ex_store_batch_leave(b->st);
    if (ex_store_batch_joins(b->st) == b->joins_at_enter)
        return 0;
    schedule(b); /* an open batch always has its commit coming, held replies or not */
    return 1;
}

pl_rc ex_batcher_hold(ex_batcher *b, ex_batch_done_fn done, void *arg)
{
    held *h = calloc(1, sizeof *h);
    if (!h)
        return PL_ERR_NOMEM;
    h->done = done;
    h->arg = arg;
    *b->pending_tail = h;
    b->pending_tail = &h->next;
    b->stats.held++;
    schedule(b);
    return PL_OK;
}

void ex_batcher_stats(ex_batcher *b, ex_batch_stats *out)
{
    *out = b->stats;
    out->syncs = b->syncer ? core_syncer_count(b->syncer) : 0;
}
