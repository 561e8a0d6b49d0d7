/* exec/batch.c — see batch.h. */
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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

/* A parked unit of work: run when the loop holds a batch transaction. */
typedef struct parked {
    ex_batch_run_fn run, finish;
    void *arg;
    struct parked *next;
} parked;

typedef struct hlist {
    held *head, **tail;
} hlist;

struct ex_batcher {
    ex_store *st;
    const core_log *log;
    struct event *commit; /* the end of the iteration: submit the held batch */
    struct event *wake;   /* the committer's notifications (pipe) */
    int pipefd[2];
    int scheduled;
    uint64_t joins_at_enter;
    hlist pending;    /* replies of the batch the loop holds */
    hlist committing; /* replies of the submitted batch */
    hlist syncing;    /* replies of committed batches, waiting for their sync */
    parked *parked, **parked_tail;
    uint64_t seq;      /* commits handed to the syncer */
    uint64_t marked;   /* the store's batch mark last given a marker */
    int sync_failed;   /* a sync failed: fail-stop (on_synced) */
    uint64_t deferred; /* commits up to it wait for the next commit's data sync, not the syncer */
    int freeing;
    core_syncer *syncer; /* NULL unless the store needs a second sync */
    ex_batch_stats stats;
};

static void hl_init(hlist *l)
{
    l->head = NULL;
    l->tail = &l->head;
}

static void hl_push(hlist *l, held *h)
{
    h->next = NULL;
    *l->tail = h;
    l->tail = &h->next;
}

/* Appends src to dst and empties src. */
static void hl_splice(hlist *dst, hlist *src)
{
    if (!src->head)
        return;
    *dst->tail = src->head;
    dst->tail = src->tail;
    hl_init(src);
}

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

/* After commits were collected: when they kept keys for the observer (a new batch mark), a
 * marker goes after their held replies, so that the keys are reported exactly when the
 * replies are released, with the same outcome. Out of memory: the next marker settles them
 * (the store settles every mark up to the one given). */
static void mark_batch(ex_batcher *b, hlist *l)
{
    uint64_t mark = ex_store_batch_mark(b->st);
    held *h;
    if (mark == b->marked || !(h = calloc(1, sizeof *h)))
        return;
    h->mark = b->marked = mark;
    hl_push(l, h);
}

/* Releases the held replies of every commit numbered <= seq. */
static void release_upto(ex_batcher *b, uint64_t seq, pl_rc rc)
{
    while (b->syncing.head && b->syncing.head->seq <= seq) {
        held *h = b->syncing.head;
        b->syncing.head = h->next;
        if (!b->syncing.head)
            b->syncing.tail = &b->syncing.head;
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

static void schedule(ex_batcher *b)
{
    if (!b->scheduled && !b->freeing) {
        b->scheduled = 1;
        event_active(b->commit, 0, 0);
    }
}

/* Commits finished (the committer's, or an early flush's): their replies go to the syncer, or
 * are released at once when the store needs no second sync. */
static void collect(ex_batcher *b)
{
    int needs_sync = 0, data_synced = 0;
    pl_rc rc = PL_OK;
    hlist l;
    held *h, *next;
    if (!ex_store_batch_collect(b->st, &rc, &needs_sync, &data_synced))
        return;
    /* A failed sync the loop has not heard of yet comes first: after it, a data_synced below
     * proves nothing (the kernel reported the error once, to the syncer), and fail-stop must
     * be in force before anything is released. */
    if (b->syncer)
        core_syncer_poll_failure(b->syncer);
    hl_init(&l);
    hl_splice(&l, &b->committing);
    if (!ex_store_batch_held(b->st)) /* an early flush committed the held batch too */
        hl_splice(&l, &b->pending);
    mark_batch(b, &l);
    if (rc != PL_OK) {
        core_log_error(b->log, "exec: batch commit failed (%s); held replies become errors",
                       pl_strerror(rc));
        /* The failed commit may have been a failed fdatasync of the data file, which the
         * kernel reports once: the syncer's next fsync of the same file may then succeed
         * although earlier batches' meta pages were dropped. The batches still waiting for
         * their sync are not known durable: their replies become errors too (the safe side:
         * an error for a write that may have landed, never a success for one that may not). */
        release_upto(b, b->seq, rc);
    }
    if (data_synced) {
        /* These commits synced the data file (their data pages) after every earlier commit
         * had written its meta page: every earlier batch is durable now, whether or not its
         * own sync has finished. Under load, batches are released one commit later instead
         * of waiting for their sync. */
        release_upto(b, b->seq, PL_OK);
        b->deferred = 0;
    } else if (b->deferred) {
        /* The commit counted on to sync the deferred batches did not: it failed (then what
         * it may have dropped is unknown, so they fail too, the conservative side) or it had
         * nothing to write (then the syncer does it). */
        if (rc != PL_OK)
            release_upto(b, b->deferred, rc);
        else
            core_syncer_request(b->syncer, b->deferred);
        b->deferred = 0;
    }
    h = l.head;
    if (needs_sync && b->syncer) {
        b->seq++;
        for (; h; h = next) {
            next = h->next;
            h->seq = b->seq;
            hl_push(&b->syncing, h);
        }
        /* Another commit is coming (units parked for the next batch, or a batch held): its
         * data sync will make this batch durable, so the syncer's fsync — a second one on the
         * same file, competing with that commit's — is not asked for. */
        if (b->parked || ex_store_batch_held(b->st))
            b->deferred = b->seq;
        else
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

/* Hands the held batch to the committer (without a committer: commits it). The results the
 * loop already took (cm_take: taking this batch's transaction takes the previous commit's
 * result with it) are collected first, for the replies already committing: appended behind
 * them, this batch's replies would be released with the previous commit's result before their
 * own commit had even run. */
static void submit(ex_batcher *b)
{
    collect(b);
    if (ex_store_batch_submit(b->st)) {
        b->stats.commits++;
        hl_splice(&b->committing, &b->pending);
    }
}

/* Deferred batches whose covering commit will not come (nothing in flight, nothing held,
 * nothing parked): the syncer syncs them. */
static void undefer(ex_batcher *b)
{
    if (b->deferred && !ex_store_batch_inflight(b->st) && !ex_store_batch_held(b->st) &&
        !b->parked) {
        core_syncer_request(b->syncer, b->deferred);
        b->deferred = 0;
    }
}

/* Runs a list of parked units: every write part, then (after submit when asked) every
 * finish part. */
static void run_list(ex_batcher *b, parked *list, int hand_over)
{
    parked *p, *next;
    for (p = list; p; p = p->next)
        p->run(p->arg);
    if (hand_over)
        submit(b);
    for (p = list; p; p = next) {
        next = p->next;
        if (p->finish)
            p->finish(p->arg);
        free(p);
    }
}

/* Runs the parked units while the loop holds a batch transaction (each joins it), hands the
 * batch to the committer at once, and only then runs the units' finish parts (their replies'
 * text): LMDB's writer lock is held for the write parts only, and what arrives later in this
 * iteration parks for the next batch. The replies were held in this batch by the write parts;
 * they are released by a later callback (collect), after the finish parts filled them. When
 * no batch is held, asks for one (the committer's notification brings us back). */
static void run_parked(ex_batcher *b)
{
    if (!b->parked || !ex_store_batch_ready(b->st))
        return;
    parked *p = b->parked;
    b->parked = NULL;
    b->parked_tail = &b->parked;
    run_list(b, p, 1);
    undefer(b);
}

/* The end of the iteration (lowest priority): the held batch goes to the committer. */
static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    ex_batcher *b = arg;
    (void)fd;
    (void)what;
    b->scheduled = 0;
    submit(b);
    /* Without a committer the commit is done; with one, an early flush may have committed
     * the batch already. */
    collect(b);
    undefer(b);
}

/* The committer offered a batch transaction or finished a commit. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    ex_batcher *b = arg;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    collect(b);
    run_parked(b);
}

static void notify(void *arg)
{
    ex_batcher *b = arg;
    char c = 1;
    ssize_t w;
    do
        w = write(b->pipefd[1], &c, 1);
    while (w < 0 && errno == EINTR);
    /* EAGAIN: a wake-up is already pending, which is enough. */
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
    b->pipefd[0] = b->pipefd[1] = -1;
    hl_init(&b->pending);
    hl_init(&b->committing);
    hl_init(&b->syncing);
    b->parked_tail = &b->parked;
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
    if (pipe(b->pipefd) != 0 || fcntl(b->pipefd[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(b->pipefd[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(b->pipefd[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(b->pipefd[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    b->wake = event_new(base, b->pipefd[0], EV_READ | EV_PERSIST, on_wake, b);
    if (!b->wake || event_add(b->wake, NULL) != 0) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    rc = core_syncer_new(base, store_sync, st, on_synced, b, &b->syncer);
    if (rc != PL_OK)
        goto out;
    rc = ex_store_committer_start(st, notify, b);
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
    /* Parked units run now, each in a batch transaction (their first write waits for one),
     * and are answered below with everything else. */
    while (b->parked) {
        parked *p = b->parked;
        b->parked = NULL;
        b->parked_tail = &b->parked;
        run_list(b, p, 0);
    }
    b->freeing = 1;
    core_syncer_free(b->syncer); /* joins: a sync in progress completes */
    b->syncer = NULL;
    /* Whatever is left is made durable here, inline, and answered: the held batch is
     * committed with a full sync, the one in flight waited for. */
    ex_store_committer_stop(b->st);
    int needs_sync = 0;
    pl_rc rc = ex_store_batch_commit(b->st, &needs_sync, NULL);
    pl_rc src = ex_store_sync(b->st);
    hlist l;
    hl_init(&l);
    hl_splice(&l, &b->committing);
    hl_splice(&l, &b->pending);
    mark_batch(b, &l);
    hlist *lists[2] = {&b->syncing, &l};
    for (int i = 0; i < 2; i++) {
        held *h = lists[i]->head, *next;
        for (; h; h = next) {
            next = h->next;
            release(b, h, i == 1 && rc != PL_OK ? rc : src);
        }
    }
    if (b->commit)
        event_free(b->commit);
    if (b->wake)
        event_free(b->wake);
    if (b->pipefd[0] >= 0)
        close(b->pipefd[0]);
    if (b->pipefd[1] >= 0)
        close(b->pipefd[1]);
    free(b);
}

void ex_batcher_enter(ex_batcher *b)
{
    b->joins_at_enter = ex_store_batch_joins(b->st);
    ex_store_batch_enter(b->st);
}

int ex_batcher_leave(ex_batcher *b)
{
    ex_store_batch_leave(b->st);
    if (ex_store_batch_held(b->st))
        schedule(b); /* a held batch always goes to the committer this iteration */
    return ex_store_batch_joins(b->st) != b->joins_at_enter;
}

int ex_batcher_ready(ex_batcher *b)
{
    if (ex_store_batch_held(b->st)) {
        schedule(b);
        return 1;
    }
    if (b->parked)
        return 0; /* the parked go first */
    if (!ex_store_batch_inflight(b->st))
        return 1; /* the committer is idle: the first write waits only for its begin */
    if (ex_store_batch_ready(b->st)) {
        schedule(b);
        return 1;
    }
    return 0;
}

pl_rc ex_batcher_park(ex_batcher *b, ex_batch_run_fn run, ex_batch_run_fn finish, void *arg)
{
    parked *p = calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    p->run = run;
    p->finish = finish;
    p->arg = arg;
    *b->parked_tail = p;
    b->parked_tail = &p->next;
    b->stats.parked++;
    if (ex_store_batch_want(b->st) || ex_store_batch_held(b->st))
        event_active(b->wake, EV_READ, 0); /* already offered: its wake-up may be consumed */
    return PL_OK;
}

pl_rc ex_batcher_hold(ex_batcher *b, ex_batch_done_fn done, void *arg)
{
    held *h = calloc(1, sizeof *h);
    if (!h)
        return PL_ERR_NOMEM;
    h->done = done;
    h->arg = arg;
    hl_push(&b->pending, h);
    b->stats.held++;
    schedule(b);
    return PL_OK;
}

void ex_batcher_stats(ex_batcher *b, ex_batch_stats *out)
{
    *out = b->stats;
    out->syncs = b->syncer ? core_syncer_count(b->syncer) : 0;
}
