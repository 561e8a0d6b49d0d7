#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/crypto.h"
#include "core/json_text.h"

struct ex_store {
    MDB_env *env;
    /* Group commit (EX_STORE_GROUP_COMMIT): commits completed / covered by a finished sync. */
    int group;
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    uint64_t gc_committed, gc_synced;
    int gc_syncing;
    uint64_t gc_syncs; /* syncs run, for benchmarks */
    int nosync;        /* EX_STORE_NOSYNC */
    /* Batches (store.h "batches"): the batch thread (set once, before other threads use the
     * store, then only read), and state touched by that thread only. */
    int batch_thread_set;
    pthread_t batch_thread;
    MDB_txn *batch;    /* the open batch, or NULL */
    int batch_entered; /* between ex_store_batch_enter and _leave */
    uint64_t batch_joins;
    int batch_dirty; /* a child with a successful write was merged into the batch */
    /* Commits since the last ex_store_batch_commit/_collect (store.h): their combined
     * outcome, batch thread only. */
    int acc_n;
    pl_rc acc_rc;
    int acc_synced; /* one of them fdatasynced the data file (a dirty batch, an early flush) */
    int acc_needs;  /* one of them leaves its meta page to ex_store_sync (group commit) */
    /* The committer (store.h "the committer"): a thread owning LMDB's writer for the batches.
     * It begins each batch transaction (an offer), the batch thread takes it, uses it and
     * hands it back (a submission), the committer commits it and reports (a result).
     * cm_* fields are guarded by cm_mu; cm_inflight and cm_changes are the batch thread's. */
    int cm_on;
    pthread_t cm_thread;
    pthread_mutex_t cm_mu;
    pthread_cond_t cm_cv;      /* the committer waits for work */
    pthread_cond_t cm_done_cv; /* the batch thread waits for an offer or a result */
    int cm_stop, cm_want, cm_busy;
    MDB_txn *cm_offer;
    int cm_offer_failed;
    MDB_txn *cm_submit;
    int cm_submit_early, cm_submit_dirty;
    int cm_done, cm_done_early, cm_done_dirty;
    pl_rc cm_done_rc;
    ex_store_notify_fn cm_notify;
    void *cm_notify_arg;
    ex_store_commit_hook_fn cm_hook;
    void *cm_hook_arg;
    int cm_inflight;               /* submitted, result not collected (batch thread) */
    int cm_rewant;                 /* an early flush withdrew an ask: ask again after it */
    struct ex_changes *cm_changes; /* the submitted batch's kept keys (batch thread) */
    MDB_dbi dbi[EX_DB__COUNT];
    char dir[1024];
    int schema_found;
    uint8_t cursor_secret[32];
    /* The change observer (store.h): installed while no other thread writes. */
    ex_change_fn observer;
    void *observer_arg;
    unsigned observer_mask;
    /* Kept reports (batch thread only): the open batch's keys (its merged children's, in
     * merge order), and the FIFO of committed change sets not reported yet (store.h "the
     * change observer"); changes_seq numbers the batch sets (ex_store_batch_mark). */
    struct ex_changes *batch_changes;
    struct ex_changes *kept, **kept_tail;
    uint64_t changes_seq;
};

/* The keys of one write transaction (or of one batch: its children's, one after another):
 * one malloc'd block of NUL-separated entries "<db byte><key>\0". As a kept report it is a
 * node of ex_store.kept: seq is the batch's number (0: a top-level transaction) and state
 * says whether it waits for its batch's verdict. */
enum { CHANGES_WAIT = 0, CHANGES_REPORT, CHANGES_DROP };

struct ex_changes {
    size_t n, len, cap;
    char *buf;
    struct ex_changes *next;
    uint64_t seq;
    int state;
};

static void changes_destroy(struct ex_changes *c)
{
    if (c) {
        free(c->buf);
        free(c);
    }
}

static int on_batch_thread(const ex_store *st);

static void changes_free(ex_txn *txn)
{
    changes_destroy(txn->changes);
    txn->changes = NULL;
}

/* Room for need more bytes in *cp (allocated on first use). 0: out of memory. */
static int changes_reserve(struct ex_changes **cp, size_t need)
{
    struct ex_changes *c = *cp;
    if (!c && !(c = *cp = calloc(1, sizeof *c)))
        return 0;
    if (c->len + need > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        char *nb;
        while (cap < c->len + need)
            cap *= 2;
        if (!(nb = realloc(c->buf, cap)))
            return 0;
        c->buf = nb;
        c->cap = cap;
    }
    return 1;
}

/* Remembers (db, key) once; silently drops what does not fit (EX_CHANGES_MAX, memory). */
static void changes_note(ex_txn *txn, ex_db db, const char *key)
{
    ex_store *st = txn->st;
    struct ex_changes *c = txn->changes;
    size_t klen = strlen(key), off;
    if (!st->observer || !(st->observer_mask & (1u << db)))
        return;
    if (c)
        for (off = 0; off < c->len; off += strlen(c->buf + off) + 1)
            if ((unsigned char)c->buf[off] == (unsigned char)(db + 1) &&
                strcmp(c->buf + off + 1, key) == 0)
                return;
    if ((c && c->n >= EX_CHANGES_MAX) || !changes_reserve(&txn->changes, klen + 2))
        return;
    c = txn->changes;
    c->buf[c->len] = (char)(db + 1);
    memcpy(c->buf + c->len + 1, key, klen + 1);
    c->len += klen + 2;
    c->n++;
}

/* A child merged into the batch: its keys go after the batch's earlier children's (each
 * child's keys stay once and in first-write order; a key two children wrote is reported
 * twice, as for two top-level transactions). */
static void changes_merge(ex_store *st, ex_txn *txn)
{
    struct ex_changes *c = txn->changes;
    if (c && c->len && changes_reserve(&st->batch_changes, c->len)) {
        memcpy(st->batch_changes->buf + st->batch_changes->len, c->buf, c->len);
        st->batch_changes->len += c->len;
        st->batch_changes->n += c->n;
    }
    changes_free(txn);
}

/* Tells the observer of c's keys, in order, then frees c. */
static void changes_report(ex_store *st, struct ex_changes *c)
{
    size_t off;
    if (c)
        for (off = 0; st->observer && off < c->len; off += strlen(c->buf + off) + 1)
            st->observer(st->observer_arg, (ex_db)((unsigned char)c->buf[off] - 1),
                         c->buf + off + 1);
    changes_destroy(c);
}

static void kept_push(ex_store *st, struct ex_changes *c, uint64_t seq, int state)
{
    c->seq = seq;
    c->state = state;
    c->next = NULL;
    *st->kept_tail = c;
    st->kept_tail = &c->next;
}

/* Reports (or frees, when dropped) the kept sets from the head up to the first that still
 * waits. The observer may begin and commit transactions: a set it adds is handled here too. */
static void kept_drain(ex_store *st)
{
    while (st->kept && st->kept->state != CHANGES_WAIT) {
        struct ex_changes *c = st->kept;
        st->kept = c->next;
        if (!st->kept)
            st->kept_tail = &st->kept;
        if (c->state == CHANGES_REPORT)
            changes_report(st, c);
        else
            changes_destroy(c);
    }
}

/* The batch just committed (rc): its keys wait in the FIFO for ex_store_batch_settle, or are
 * dropped with it when the commit failed. */
static void changes_batch_done(ex_store *st, struct ex_changes *c, pl_rc rc)
{
    if (c && rc == PL_OK)
        kept_push(st, c, ++st->changes_seq, CHANGES_WAIT);
    else
        changes_destroy(c);
}

/* A top-level transaction committed (durable): reported now, or after the kept sets of
 * earlier batches on the batch thread, so that reports keep the commit order. */
static void changes_top_done(ex_txn *txn)
{
    ex_store *st = txn->st;
    struct ex_changes *c = txn->changes;
    txn->changes = NULL;
    if (c && on_batch_thread(st) && st->kept) /* kept: the batch thread's */
        kept_push(st, c, 0, CHANGES_REPORT);
    else
        changes_report(st, c);
}

uint64_t ex_store_batch_mark(const ex_store *st)
{
    return st->changes_seq;
}

void ex_store_batch_settle(ex_store *st, uint64_t upto, pl_rc rc)
{
    struct ex_changes *c;
    for (c = st->kept; c; c = c->next)
        if (c->state == CHANGES_WAIT && c->seq <= upto)
            c->state = rc == PL_OK ? CHANGES_REPORT : CHANGES_DROP;
    kept_drain(st);
}

void ex_store_set_observer(ex_store *st, unsigned mask, ex_change_fn fn, void *arg)
{
    st->observer = fn;
    st->observer_arg = fn ? arg : NULL;
    st->observer_mask = fn ? mask : 0;
}

/* Names of the named databases; a row per ex_db (tables over branches). */
static const char *const db_names[EX_DB__COUNT] = {
    [EX_DB_META] = "meta",           [EX_DB_WORKSPACES] = "workspaces",
    [EX_DB_ACCOUNTS] = "accounts",   [EX_DB_DRAFTS] = "drafts",
    [EX_DB_POSTS] = "posts",         [EX_DB_QUEUE] = "queue",
    [EX_DB_CLAIMS] = "claims",       [EX_DB_MEDIA] = "media",
    [EX_DB_UPLOADS] = "uploads",     [EX_DB_CAMPAIGNS] = "campaigns",
    [EX_DB_ANALYTICS] = "analytics", [EX_DB_IDEMPOTENCY] = "idempotency",
    [EX_DB_WEBHOOKS] = "webhooks",   [EX_DB_DELIVERIES] = "deliveries",
    [EX_DB_OUTBOX] = "outbox",
};

static const char *const platform_names[EX_PLATFORM__COUNT] = {
    [EX_PLATFORM_FACEBOOK] = "facebook",
    [EX_PLATFORM_INSTAGRAM] = "instagram",
    [EX_PLATFORM_PINTEREST] = "pinterest",
    [EX_PLATFORM_YOUTUBE] = "youtube",
    [EX_PLATFORM_GOOGLE_BUSINESS] = "google_business",
    [EX_PLATFORM_LINKEDIN] = "linkedin",
    [EX_PLATFORM_X] = "x",
};

const char *ex_platform_name(ex_platform p)
{
    if ((int)p < 0 || p >= EX_PLATFORM__COUNT)
        return "unknown";
    return platform_names[p];
}

pl_rc ex_platform_parse(const char *name, ex_platform *out)
{
    if (!name)
        return PL_ERR_INVALID;
    for (int i = 0; i < EX_PLATFORM__COUNT; i++) {
        if (strcmp(name, platform_names[i]) == 0) {
            *out = (ex_platform)i;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID;
}

void ex_limits_default(ex_limits *l)
{
    l->inline_media_max = (size_t)5 * 1024 * 1024;
    l->chunked_media_max = (size_t)512 * 1024 * 1024;
    l->chunk_max = (size_t)8 * 1024 * 1024;
    l->schedule_max_ahead_ms = 2LL * 366 * 24 * 3600 * 1000;
    l->grace_ms = 15LL * 60 * 1000;
    l->lease_ms = 5LL * 60 * 1000;
    l->max_attempts = 5;
    l->backoff_base_ms = 30LL * 1000;
    l->backoff_max_ms = 30LL * 60 * 1000;
    l->idempotency_ttl_ms = 24LL * 3600 * 1000;
    l->page_max = 100;
    l->list_scan_budget = 5000;
}

pl_rc ex_err_set(ex_err *err, pl_rc rc, const char *field, const char *fmt, ...)
{
    if (!err)
        return rc;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    size_t off = 0;
    if (field && *field) {
        int n = snprintf(err->msg, sizeof err->msg, "%s: ", field);
        off = n > 0 && (size_t)n < sizeof err->msg ? (size_t)n : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + off, sizeof err->msg - off, fmt, ap);
    va_end(ap);
    return rc;
}

static pl_rc mkdir_p(const char *dir)
{
    char buf[1024];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf)
        return PL_ERR_INVALID;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return PL_ERR_IO;
            buf[i] = c;
        }
    }
    return PL_OK;
}

/* Upgrade steps: upgrades[v] moves an environment from schema v to v+1 inside one write
 * transaction. Version 0 is "empty / created before the version record" (nothing to do). */
typedef pl_rc (*upgrade_fn)(ex_txn *txn);
static pl_rc upgrade_0_to_1(ex_txn *txn)
{
    (void)txn;
    return PL_OK;
}
static const upgrade_fn upgrades[EX_SCHEMA_VERSION] = {upgrade_0_to_1};

static pl_rc init_meta(ex_store *st)
{
    ex_txn txn = {0};
    pl_rc rc = ex_txn_begin(st, 1, &txn);
    if (rc != PL_OK)
        return rc;
    MDB_val v;
    int found = 0;
    rc = ex_txn_get_raw(&txn, EX_DB_META, "schema_version", &v);
    if (rc == PL_OK) {
        char num[16] = {0};
        if (v.mv_size == 0 || v.mv_size >= sizeof num) {
            rc = PL_ERR_STORE;
            goto out;
        }
        memcpy(num, v.mv_data, v.mv_size);
        char *end = NULL;
        long n = strtol(num, &end, 10);
        if (*end != '\0' || n < 0 || n > 1000000) {
            rc = PL_ERR_STORE;
            goto out;
        }
        found = (int)n;
    } else if (rc != PL_ERR_NOT_FOUND) {
        goto out;
    }
    st->schema_found = found;
    if (found > EX_SCHEMA_VERSION) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    for (int s = found; s < EX_SCHEMA_VERSION; s++) {
        rc = upgrades[s](&txn);
        if (rc != PL_OK)
            goto out;
    }
    if (found != EX_SCHEMA_VERSION) {
        char num[16];
        int len = snprintf(num, sizeof num, "%d", EX_SCHEMA_VERSION);
        rc = ex_txn_put_raw(&txn, EX_DB_META, "schema_version", num, (size_t)len);
        if (rc != PL_OK)
            goto out;
    }
    rc = ex_txn_get_raw(&txn, EX_DB_META, "cursor_secret", &v);
    if (rc == PL_OK && v.mv_size == sizeof st->cursor_secret) {
        memcpy(st->cursor_secret, v.mv_data, v.mv_size);
    } else {
        rc = core_random(st->cursor_secret, sizeof st->cursor_secret);
        if (rc != PL_OK)
            goto out;
        rc = ex_txn_put_raw(&txn, EX_DB_META, "cursor_secret", st->cursor_secret,
                            sizeof st->cursor_secret);
        if (rc != PL_OK)
            goto out;
    }
    return ex_txn_commit(&txn);
out:
    ex_txn_abort(&txn);
    return rc;
}

pl_rc ex_store_open(const char *dir, size_t map_size, unsigned flags, ex_store **out)
{
    pl_rc rc = PL_OK;
    ex_store *st = NULL;
    MDB_txn *t = NULL;
    *out = NULL;
    if (!dir || strlen(dir) >= sizeof st->dir - 16)
        return PL_ERR_INVALID;
    rc = mkdir_p(dir);
    if (rc != PL_OK)
        return rc;
    st = calloc(1, sizeof *st);
    if (!st)
        return PL_ERR_NOMEM;
    st->kept_tail = &st->kept;
    pthread_mutex_init(&st->gc_mu, NULL);
    pthread_cond_init(&st->gc_cv, NULL);
    pthread_mutex_init(&st->cm_mu, NULL);
    {
        pthread_condattr_t ca; /* the committer's idle-offer bound runs on the monotonic clock */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&st->cm_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_cond_init(&st->cm_done_cv, NULL);
    snprintf(st->dir, sizeof st->dir, "%s", dir);
    if (mdb_env_create(&st->env) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    mdb_env_set_maxdbs(st->env, 32);
    mdb_env_set_maxreaders(st->env, 254);
    if (mdb_env_set_mapsize(st->env, map_size ? map_size : (size_t)8 << 30) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if ((flags & EX_STORE_NOSYNC) && (flags & EX_STORE_GROUP_COMMIT)) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    unsigned mflags = (flags & EX_STORE_NOSYNC)         ? MDB_NOSYNC
                      : (flags & EX_STORE_GROUP_COMMIT) ? MDB_NOMETASYNC
                                                        : 0;
    st->group = (flags & EX_STORE_GROUP_COMMIT) != 0;
    st->nosync = (flags & EX_STORE_NOSYNC) != 0;
    if (mdb_env_open(st->env, dir, mflags, 0600) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    /* Reader slots of processes that died (SIGKILL, crash) would pin old pages forever. */
    int dead = 0;
    (void)mdb_reader_check(st->env, &dead);
    if (mdb_txn_begin(st->env, NULL, 0, &t) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    for (int i = 0; i < EX_DB__COUNT; i++) {
        if (mdb_dbi_open(t, db_names[i], MDB_CREATE, &st->dbi[i]) != 0) {
            rc = PL_ERR_STORE;
            goto out;
        }
    }
    if (mdb_txn_commit(t) != 0) {
        t = NULL;
        rc = PL_ERR_STORE;
        goto out;
    }
    t = NULL;
    rc = init_meta(st);
    if (rc != PL_OK)
        goto out;
    char media[1100];
    snprintf(media, sizeof media, "%s/media", dir);
    rc = mkdir_p(media);
    if (rc != PL_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    if (t)
        mdb_txn_abort(t);
    ex_store_free(st);
    return rc;
}

pl_rc ex_store_open_data_dir(const char *data_dir, unsigned flags, ex_store **out)
{
    char dir[1024];
    int n = snprintf(dir, sizeof dir, "%s/exec", data_dir ? data_dir : ".");
    if (n < 0 || (size_t)n >= sizeof dir)
        return PL_ERR_TOO_LARGE;
    return ex_store_open(dir, 0, flags, out);
}

void ex_store_free(ex_store *st)
{
    if (!st)
        return;
    ex_store_committer_stop(st); /* the committer's transactions end on its own thread */
    if (st->batch)
        mdb_txn_abort(st->batch); /* never acknowledged: replies wait for its commit */
    changes_destroy(st->batch_changes);
    changes_destroy(st->cm_changes);
    while (st->kept) { /* never settled: not reported */
        struct ex_changes *c = st->kept;
        st->kept = c->next;
        changes_destroy(c);
    }
    if (st->env)
        mdb_env_close(st->env);
    core_wipe(st->cursor_secret, sizeof st->cursor_secret);
    pthread_cond_destroy(&st->gc_cv);
    pthread_mutex_destroy(&st->gc_mu);
    pthread_cond_destroy(&st->cm_done_cv);
    pthread_cond_destroy(&st->cm_cv);
    pthread_mutex_destroy(&st->cm_mu);
    free(st);
}

const char *ex_store_dir(const ex_store *st)
{
    return st->dir;
}

int ex_store_schema_found(const ex_store *st)
{
    return st->schema_found;
}

const uint8_t *ex_store_cursor_secret(const ex_store *st)
{
    return st->cursor_secret;
}

MDB_dbi ex_store_dbi(const ex_store *st, ex_db db)
{
    return st->dbi[db];
}

static pl_rc mdb_rc(int r)
{
    if (r == MDB_MAP_FULL || r == MDB_TXN_FULL)
        return PL_ERR_LIMIT;
    return r == 0 ? PL_OK : PL_ERR_STORE;
}

static int on_batch_thread(const ex_store *st)
{
    return st->batch_thread_set && pthread_equal(st->batch_thread, pthread_self());
}

/* One batch commit finished with rc (batch thread): its keys wait for their verdict, and its
 * outcome joins what the next ex_store_batch_commit/_collect reports. had: a transaction was
 * committed; dirty: a child merged a successful write into it (LMDB then really committed,
 * fdatasyncing the data file); early: a full sync followed (an early flush). */
static void note_commit(ex_store *st, struct ex_changes *c, pl_rc rc, int had, int dirty, int early)
{
    changes_batch_done(st, c, rc);
    st->acc_n++;
    if (st->acc_rc == PL_OK)
        st->acc_rc = rc;
    if (rc == PL_OK && !st->nosync && ((had && dirty) || early))
        st->acc_synced = 1;
    if (rc == PL_OK && had && !early && st->group)
        st->acc_needs = 1;
}

/* Hands what the commits since the last call came to, and starts over. 0: none happened. */
static int take_result(ex_store *st, pl_rc *rc, int *needs_sync, int *data_synced)
{
    int n = st->acc_n;
    pl_rc r = st->acc_rc;
    if (rc)
        *rc = r;
    if (needs_sync)
        *needs_sync = r == PL_OK && st->acc_needs;
    if (data_synced)
        *data_synced = r == PL_OK && st->acc_synced;
    st->acc_n = st->acc_needs = st->acc_synced = 0;
    st->acc_rc = PL_OK;
    return n > 0;
}

/* Without a committer: commits the open batch on this thread. The regular commit (early = 0)
 * leaves the meta sync to the caller (needs_sync); an early flush completes durability. */
static pl_rc batch_flush(ex_store *st, int early)
{
    if (!st->batch)
        return PL_OK;
    int dirty = st->batch_dirty;
    struct ex_changes *c = st->batch_changes;
    pl_rc rc = st->cm_hook ? st->cm_hook(st->cm_hook_arg) : PL_OK;
    if (rc == PL_OK)
        rc = mdb_rc(mdb_txn_commit(st->batch));
    else
        mdb_txn_abort(st->batch);
    st->batch = NULL;
    st->batch_dirty = 0;
    st->batch_changes = NULL;
    if (rc == PL_OK && early && st->group)
        rc = ex_store_sync(st);
    note_commit(st, c, rc, 1, dirty, early);
    return rc;
}

/* ---- the committer (store.h) ---- */

/* The committer thread: commits what the batch thread submits (first), and begins a batch
 * transaction when asked for one and none is offered. Every begin and commit of a batch
 * happens here, so LMDB's writer lock is taken and released by this thread only. */
/* How long an offered batch transaction may wait to be taken before the committer gives
 * LMDB's writer lock back (other threads and processes wait on it meanwhile). */
#define CM_OFFER_IDLE_MS 10

static void *committer_main(void *arg)
{
    ex_store *st = arg;
    int notify = 0;
    pthread_mutex_lock(&st->cm_mu);
    for (;;) {
        if (st->cm_submit) {
            MDB_txn *t = st->cm_submit;
            int early = st->cm_submit_early, dirty = st->cm_submit_dirty;
            ex_store_commit_hook_fn hook = st->cm_hook;
            void *hook_arg = st->cm_hook_arg;
            st->cm_submit = NULL;
            st->cm_busy = 1;
            pthread_mutex_unlock(&st->cm_mu);
            pl_rc rc = hook ? hook(hook_arg) : PL_OK;
            if (rc == PL_OK)
                rc = mdb_rc(mdb_txn_commit(t)); /* the data pages' fdatasync happens here */
            else
                mdb_txn_abort(t);
            if (rc == PL_OK && early && st->group)
                rc = ex_store_sync(st);
            pthread_mutex_lock(&st->cm_mu);
            st->cm_busy = 0;
            st->cm_done = 1;
            st->cm_done_rc = rc;
            st->cm_done_early = early;
            st->cm_done_dirty = dirty;
            /* Writes are coming in: begin the next batch now rather than when the next write
             * asks (a hand-over saved per batch at low concurrency). Not after an early flush
             * (the batch thread wants the writer lock then). An offer nobody takes is given
             * back after CM_OFFER_IDLE_MS, so other writers wait at most that long. */
            if (rc == PL_OK && dirty && !early && !st->cm_offer && !st->cm_stop)
                st->cm_want = 1;
        } else if (st->cm_want && !st->cm_offer && !st->cm_offer_failed && !st->cm_stop) {
            MDB_txn *t = NULL;
            st->cm_want = 0;
            st->cm_busy = 1;
            pthread_mutex_unlock(&st->cm_mu);
            int r = mdb_txn_begin(st->env, NULL, 0, &t);
            pthread_mutex_lock(&st->cm_mu);
            st->cm_busy = 0;
            if (r == 0)
                st->cm_offer = t;
            else
                st->cm_offer_failed = 1;
        } else if (st->cm_stop) {
            break;
        } else {
            /* Idle: tell the batch thread now, once, of everything done since it was last
             * told — a commit's result and the next batch begun right after it arrive with
             * one wake-up. */
            if (notify && st->cm_notify)
                st->cm_notify(st->cm_notify_arg);
            notify = 0;
            if (!st->cm_offer) {
                pthread_cond_wait(&st->cm_cv, &st->cm_mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts); /* a bound on an idle lock, not a time */
            ts.tv_nsec += (long)CM_OFFER_IDLE_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            if (pthread_cond_timedwait(&st->cm_cv, &st->cm_mu, &ts) == ETIMEDOUT && st->cm_offer &&
                !st->cm_submit) {
                mdb_txn_abort(st->cm_offer); /* empty: releases LMDB's writer lock */
                st->cm_offer = NULL;
            }
            continue;
        }
        pthread_cond_broadcast(&st->cm_done_cv);
        notify = 1;
    }
    if (notify && st->cm_notify)
        st->cm_notify(st->cm_notify_arg);
    if (st->cm_offer) { /* never taken: nothing in it */
        mdb_txn_abort(st->cm_offer);
        st->cm_offer = NULL;
    }
    pthread_mutex_unlock(&st->cm_mu);
    return NULL;
}

/* Batch thread: asks again for what an early flush withdrew, once this thread no longer
 * takes LMDB's writer lock itself (its own write transaction ended). */
static void cm_reask(ex_store *st)
{
    if (!st->cm_on || !st->cm_rewant)
        return;
    st->cm_rewant = 0;
    pthread_mutex_lock(&st->cm_mu);
    st->cm_want = 1;
    pthread_cond_signal(&st->cm_cv);
    pthread_mutex_unlock(&st->cm_mu);
}

/* Batch thread, cm_mu held: takes the finished commit's result, in commit order. */
static void cm_collect(ex_store *st)
{
    if (!st->cm_done)
        return;
    struct ex_changes *c = st->cm_changes;
    st->cm_changes = NULL;
    st->cm_done = 0;
    st->cm_inflight = 0;
    note_commit(st, c, st->cm_done_rc, 1, st->cm_done_dirty, st->cm_done_early);
}

/* Batch thread, cm_mu held: hands the held batch to the committer. */
static void cm_submit(ex_store *st, int early)
{
    st->cm_submit = st->batch;
    st->cm_submit_early = early;
    st->cm_submit_dirty = st->batch_dirty;
    st->cm_changes = st->batch_changes;
    st->batch_changes = NULL;
    st->batch = NULL;
    st->batch_dirty = 0;
    st->cm_inflight = 1;
    pthread_cond_signal(&st->cm_cv);
}

/* Batch thread, cm_mu held: takes an offered batch (or a failed begin: PL_ERR_STORE).
 * PL_ERR_BUSY: none yet (asked for one when ask). A result still uncollected is collected
 * first, so that batches are accounted in commit order. */
static pl_rc cm_take(ex_store *st, int ask)
{
    cm_collect(st);
    if (st->cm_offer) {
        st->batch = st->cm_offer;
        st->cm_offer = NULL;
        return PL_OK;
    }
    if (st->cm_offer_failed) {
        st->cm_offer_failed = 0;
        return PL_ERR_STORE;
    }
    if (ask && !st->cm_want) {
        st->cm_want = 1;
        pthread_cond_signal(&st->cm_cv);
    }
    return PL_ERR_BUSY;
}

/* Batch thread: until it holds a batch transaction (waits for the committer to begin one,
 * and so for a commit in flight). PL_OK or PL_ERR_STORE. */
static pl_rc cm_take_wait(ex_store *st)
{
    pl_rc rc;
    pthread_mutex_lock(&st->cm_mu);
    while ((rc = cm_take(st, 1)) == PL_ERR_BUSY)
        pthread_cond_wait(&st->cm_done_cv, &st->cm_mu);
    pthread_mutex_unlock(&st->cm_mu);
    return rc;
}

/* Batch thread: commits the held batch (early: with a full sync) and waits until the
 * committer is idle, holding no transaction and no uncollected result; results are
 * collected. Nothing is begun afterwards until asked again. */
static void cm_drain(ex_store *st, int early)
{
    pthread_mutex_lock(&st->cm_mu);
    st->cm_rewant |= st->cm_want;
    st->cm_want = 0;
    for (;;) {
        cm_collect(st);
        if (st->cm_offer) { /* begun for an earlier ask: committed empty, asked again later */
            st->batch = st->cm_offer;
            st->cm_offer = NULL;
            st->cm_rewant = 1;
        }
        st->cm_offer_failed = 0;
        if (st->batch && !st->cm_inflight)
            cm_submit(st, early);
        if (!st->batch && !st->cm_inflight && !st->cm_busy && !st->cm_want)
            break;
        pthread_cond_wait(&st->cm_done_cv, &st->cm_mu);
    }
    pthread_mutex_unlock(&st->cm_mu);
}

pl_rc ex_store_committer_start(ex_store *st, ex_store_notify_fn notify, void *arg)
{
    if (!on_batch_thread(st))
        return PL_ERR_STATE;
    if (st->cm_on)
        return PL_ERR_STATE;
    if (st->nosync)
        return PL_OK;   /* commits do not fsync: nothing to take off this thread */
    batch_flush(st, 1); /* a batch begun on this thread is committed here */
    st->cm_notify = notify;
    st->cm_notify_arg = arg;
    st->cm_stop = 0;
    if (pthread_create(&st->cm_thread, NULL, committer_main, st) != 0)
        return PL_ERR_INTERNAL;
    st->cm_on = 1;
    return PL_OK;
}

void ex_store_committer_stop(ex_store *st)
{
    if (!st || !st->cm_on)
        return;
    cm_drain(st, 1);
    st->cm_rewant = 0;
    pthread_mutex_lock(&st->cm_mu);
    st->cm_stop = 1;
    pthread_cond_signal(&st->cm_cv);
    pthread_mutex_unlock(&st->cm_mu);
    pthread_join(st->cm_thread, NULL);
    st->cm_on = 0;
    st->cm_notify = NULL;
    st->cm_notify_arg = NULL;
}

void ex_store_set_commit_hook(ex_store *st, ex_store_commit_hook_fn fn, void *arg)
{
    pthread_mutex_lock(&st->cm_mu);
    st->cm_hook = fn;
    st->cm_hook_arg = fn ? arg : NULL;
    pthread_mutex_unlock(&st->cm_mu);
}

int ex_store_batch_held(const ex_store *st)
{
    return st->batch != NULL;
}

int ex_store_batch_inflight(const ex_store *st)
{
    return st->cm_inflight;
}

int ex_store_batch_ready(ex_store *st)
{
    if (st->batch)
        return 1;
    if (!st->cm_on)
        return 0;
    pthread_mutex_lock(&st->cm_mu);
    pl_rc rc = cm_take(st, 1);
    pthread_mutex_unlock(&st->cm_mu);
    return rc != PL_ERR_BUSY; /* a failed begin counts as taken: the writes then ask again */
}

int ex_store_batch_want(ex_store *st)
{
    int offered = 0;
    if (!st->cm_on)
        return 0;
    pthread_mutex_lock(&st->cm_mu);
    if (st->cm_offer || st->cm_offer_failed || st->cm_done) {
        offered = 1;
    } else if (!st->cm_want) {
        st->cm_want = 1;
        pthread_cond_signal(&st->cm_cv);
    }
    pthread_mutex_unlock(&st->cm_mu);
    return offered;
}

int ex_store_batch_submit(ex_store *st)
{
    if (!st->batch)
        return 0;
    if (!st->cm_on) {
        batch_flush(st, 0);
        return 1;
    }
    pthread_mutex_lock(&st->cm_mu);
    cm_submit(st, 0);
    pthread_mutex_unlock(&st->cm_mu);
    return 1;
}

int ex_store_batch_collect(ex_store *st, pl_rc *rc, int *needs_sync, int *data_synced)
{
    if (st->cm_on) {
        pthread_mutex_lock(&st->cm_mu);
        cm_collect(st);
        pthread_mutex_unlock(&st->cm_mu);
    }
    return take_result(st, rc, needs_sync, data_synced);
}

pl_rc ex_txn_begin(ex_store *st, int write, ex_txn *txn)
{
    memset(txn, 0, sizeof *txn);
    MDB_txn *t = NULL, *parent = NULL;
    if (write && on_batch_thread(st)) {
        if (st->batch_entered) {
            if (!st->batch) {
                if (st->cm_on) {
                    pl_rc rc = cm_take_wait(st);
                    if (rc != PL_OK)
                        return rc;
                } else {
                    int r = mdb_txn_begin(st->env, NULL, 0, &st->batch);
                    if (r != 0) {
                        st->batch = NULL;
                        return PL_ERR_STORE;
                    }
                }
            }
            parent = st->batch;
        } else if (st->cm_on) {
            /* An early flush: the batch held or in flight is committed and synced in full,
             * and the committer left idle, before this thread takes LMDB's writer lock. */
            cm_drain(st, 1);
            if (st->acc_rc != PL_OK)
                return st->acc_rc;
        } else if (st->batch) {
            pl_rc rc = batch_flush(st, 1);
            if (rc != PL_OK)
                return rc;
        }
    }
    int r = mdb_txn_begin(st->env, parent, write ? 0 : MDB_RDONLY, &t);
    if (r != 0)
        return r == MDB_READERS_FULL ? PL_ERR_BUSY : PL_ERR_STORE;
    txn->st = st;
    txn->mdb = t;
    txn->write = write;
    txn->child = parent != NULL;
    if (parent)
        st->batch_joins++;
    return PL_OK;
}

pl_rc ex_store_batch_thread(ex_store *st)
{
    if (st->batch_thread_set)
        return pthread_equal(st->batch_thread, pthread_self()) ? PL_OK : PL_ERR_STATE;
    st->batch_thread = pthread_self();
    st->batch_thread_set = 1;
    return PL_OK;
}

void ex_store_batch_enter(ex_store *st)
{
    if (on_batch_thread(st))
        st->batch_entered = 1;
}

void ex_store_batch_leave(ex_store *st)
{
    st->batch_entered = 0;
}

uint64_t ex_store_batch_joins(const ex_store *st)
{
    return st->batch_joins;
}

int ex_store_batch_pending(const ex_store *st)
{
    return st->batch != NULL || st->cm_inflight || st->acc_n > 0;
}

pl_rc ex_store_batch_commit(ex_store *st, int *needs_sync, int *data_synced)
{
    pl_rc rc = PL_OK;
    if (st->cm_on) {
        cm_drain(st, 0);
        cm_reask(st);
    } else {
        batch_flush(st, 0);
    }
    take_result(st, &rc, needs_sync, data_synced);
    return rc;
}

pl_rc ex_store_sync(ex_store *st)
{
    if (st->nosync)
        return PL_OK;
    return mdb_env_sync(st->env, 1) == 0 ? PL_OK : PL_ERR_IO;
}

/* Waits until a sync that started after this thread's commit has finished, running it when no
 * other thread is. Any commit numbered <= the count read when a sync starts had completed
 * before that sync, so the sync covers it. */
static pl_rc group_sync(ex_store *st)
{
    pl_rc rc = PL_OK;
    pthread_mutex_lock(&st->gc_mu);
    uint64_t mine = ++st->gc_committed;
    while (st->gc_synced < mine) {
        if (st->gc_syncing) {
            pthread_cond_wait(&st->gc_cv, &st->gc_mu);
            continue;
        }
        st->gc_syncing = 1;
        uint64_t upto = st->gc_committed;
        pthread_mutex_unlock(&st->gc_mu);
        int r = mdb_env_sync(st->env, 1);
        pthread_mutex_lock(&st->gc_mu);
        st->gc_syncing = 0;
        st->gc_syncs++;
        if (r == 0 && upto > st->gc_synced)
            st->gc_synced = upto;
        pthread_cond_broadcast(&st->gc_cv);
        if (r != 0) {
            rc = PL_ERR_STORE;
            break;
        }
    }
    pthread_mutex_unlock(&st->gc_mu);
    return rc;
}

pl_rc ex_txn_commit(ex_txn *txn)
{
    pl_rc rc = PL_OK;
    if (!txn->mdb) {
        changes_free(txn);
        return PL_ERR_INTERNAL;
    }
    int r = mdb_txn_commit(txn->mdb);
    txn->mdb = NULL;
    if (!txn->child && txn->write && on_batch_thread(txn->st))
        cm_reask(txn->st); /* the writer lock is free again: the committer may begin */
    if (r == MDB_MAP_FULL)
        rc = PL_ERR_LIMIT;
    else if (r != 0)
        rc = PL_ERR_STORE;
    else if (!txn->child && txn->write && txn->st->group)
        rc = group_sync(txn->st);
    else if (txn->child && txn->dirty)
        txn->st->batch_dirty = 1; /* the batch has changes: its commit will sync them */
    /* A child is in the batch now: durable with it (ex_store_batch_commit), so its keys are
     * kept with the batch until ex_store_batch_settle; a top-level commit is durable now. */
    if (rc != PL_OK)
        changes_free(txn);
    else if (txn->child)
        changes_merge(txn->st, txn);
    else
        changes_top_done(txn);
    return rc;
}

uint64_t ex_store_syncs(ex_store *st)
{
    pthread_mutex_lock(&st->gc_mu);
    uint64_t n = st->gc_syncs;
    pthread_mutex_unlock(&st->gc_mu);
    return n;
}

void ex_txn_abort(ex_txn *txn)
{
    if (txn && txn->mdb) {
        mdb_txn_abort(txn->mdb);
        txn->mdb = NULL;
        if (!txn->child && txn->write && on_batch_thread(txn->st))
            cm_reask(txn->st);
    }
    if (txn)
        changes_free(txn);
}

static MDB_val kv(const char *key)
{
    MDB_val k = {strlen(key), (void *)key};
    return k;
}

pl_rc ex_txn_get_raw(ex_txn *txn, ex_db db, const char *key, MDB_val *val)
{
    MDB_val k = kv(key);
    int r = mdb_get(txn->mdb, txn->st->dbi[db], &k, val);
    if (r == MDB_NOTFOUND)
        return PL_ERR_NOT_FOUND;
    return r == 0 ? PL_OK : PL_ERR_STORE;
}

pl_rc ex_txn_put_raw(ex_txn *txn, ex_db db, const char *key, const void *v, size_t len)
{
    if (!txn->write)
        return PL_ERR_INTERNAL;
    MDB_val k = kv(key), d = {len, (void *)v};
    int r = mdb_put(txn->mdb, txn->st->dbi[db], &k, &d, 0);
    if (r == MDB_MAP_FULL || r == MDB_TXN_FULL)
        return PL_ERR_LIMIT;
    txn->dirty |= r == 0;
    if (r == 0 && txn->st->observer)
        changes_note(txn, db, key);
    return r == 0 ? PL_OK : PL_ERR_STORE;
}

pl_rc ex_txn_get_json(ex_txn *txn, ex_db db, const char *key, json_t **out)
{
    MDB_val v;
    *out = NULL;
    pl_rc rc = ex_txn_get_raw(txn, db, key, &v);
    if (rc != PL_OK)
        return rc;
    json_error_t je;
    json_t *j = core_json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return PL_ERR_STORE;
    *out = j;
    return PL_OK;
}

pl_rc ex_txn_put_json(ex_txn *txn, ex_db db, const char *key, const json_t *v)
{
    size_t len = 0;
    char *s = core_json_compact(v, &len); /* json_dumps(JSON_COMPACT)'s bytes, faster */
    if (!s)
        return PL_ERR_NOMEM;
    pl_rc rc = ex_txn_put_raw(txn, db, key, s, len);
    free(s);
    return rc;
}

pl_rc ex_txn_del(ex_txn *txn, ex_db db, const char *key)
{
    if (!txn->write)
        return PL_ERR_INTERNAL;
    MDB_val k = kv(key);
    int r = mdb_del(txn->mdb, txn->st->dbi[db], &k, NULL);
    if (r == MDB_NOTFOUND)
        return PL_ERR_NOT_FOUND;
    txn->dirty |= r == 0;
    if (r == 0 && txn->st->observer)
        changes_note(txn, db, key);
    return r == 0 ? PL_OK : PL_ERR_STORE;
}

pl_rc ex_txn_suffixes(ex_txn *txn, ex_db db, const char *prefix, json_t **out)
{
    MDB_cursor *cur = NULL;
    size_t plen = strlen(prefix);
    *out = NULL;
    if (mdb_cursor_open(txn->mdb, txn->st->dbi[db], &cur) != 0)
        return PL_ERR_STORE;
    json_t *list = json_array();
    MDB_val k = {plen, (void *)prefix}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
        json_array_append_new(list, json_stringn((const char *)k.mv_data + plen, k.mv_size - plen));
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    *out = list;
    return PL_OK;
}

pl_rc ex_txn_sweep(ex_txn *txn, ex_db db, const char *pos_key, size_t max_scan, ex_sweep_fn visit,
                   void *arg, size_t *deleted)
{
    MDB_cursor *cur = NULL;
    MDB_val pos;
    char start[EX_KEY_MAX + 1] = "", last[EX_KEY_MAX + 1] = "";
    size_t n = 0;
    pl_rc rc = PL_OK;
    *deleted = 0;
    if (!txn->write)
        return PL_ERR_INTERNAL;
    if (ex_txn_get_raw(txn, EX_DB_META, pos_key, &pos) == PL_OK && pos.mv_size < sizeof start) {
        memcpy(start, pos.mv_data, pos.mv_size);
        start[pos.mv_size] = '\0';
    }
    if (mdb_cursor_open(txn->mdb, txn->st->dbi[db], &cur) != 0)
        return PL_ERR_STORE;
    MDB_val k = {strlen(start), start}, v;
    int r = mdb_cursor_get(cur, &k, &v, *start ? MDB_SET_RANGE : MDB_FIRST);
    for (size_t scanned = 0; r == 0 && scanned < max_scan; scanned++) {
        if (k.mv_size < sizeof last) {
            memcpy(last, k.mv_data, k.mv_size);
            last[k.mv_size] = '\0';
        }
        if (visit(&k, &v, arg)) {
            if (mdb_cursor_del(cur, 0) != 0) {
                rc = PL_ERR_STORE;
                break;
            }
            txn->dirty = 1;
            n++; /* LMDB: after a delete, MDB_NEXT returns the item that took its place */
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != PL_OK)
        return rc;
    if (r == MDB_NOTFOUND) {
        rc = ex_txn_del(txn, EX_DB_META, pos_key);
        rc = rc == PL_ERR_NOT_FOUND ? PL_OK : rc;
    } else {
        rc = ex_txn_put_raw(txn, EX_DB_META, pos_key, last, strlen(last));
    }
    if (rc == PL_OK)
        *deleted = n;
    return rc;
}

pl_rc ex_key_build(char *buf, size_t bufsz, const char *ws, const char *kind, const char *id)
{
    if (!ex_ws_valid(ws) || !kind || !id || !*kind || !*id)
        return PL_ERR_INVALID;
    if (strchr(ws, '|') || strchr(kind, '|') || strchr(id, '|'))
        return PL_ERR_INVALID;
    int n = snprintf(buf, bufsz, "%s|%s|%s", ws, kind, id);
    if (n < 0 || (size_t)n >= bufsz || n > EX_KEY_MAX)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
}

/* Crockford base32, lower case: sorts like its values and never spells '|'. */
static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";

pl_rc ex_id_new(const core_clock *clock, const char *kind, char *buf, size_t bufsz)
{
    if (!kind || strlen(kind) != 3 || bufsz < EX_ID_MAX)
        return PL_ERR_INVALID;
    uint8_t rnd[16];
    pl_rc rc = core_random(rnd, sizeof rnd);
    if (rc != PL_OK)
        return rc;
    uint64_t ms = (uint64_t)core_clock_now_ms(clock) & 0xffffffffffffULL;
    int n = snprintf(buf, bufsz, "%s_%012llx", kind, (unsigned long long)ms);
    for (int i = 0; i < 16; i++)
        buf[n + i] = b32[rnd[i] & 31];
    buf[n + 16] = '\0';
    return PL_OK;
}

int ex_id_valid(const char *s, const char *kind)
{
    if (!s || !kind)
        return 0;
    size_t kl = strlen(kind);
    if (strncmp(s, kind, kl) != 0 || s[kl] != '_')
        return 0;
    const char *p = s + kl + 1;
    size_t n = strlen(p);
    if (n != 28)
        return 0;
    for (size_t i = 0; i < 12; i++)
        if (!strchr("0123456789abcdef", p[i]) || p[i] == '\0')
            return 0;
    for (size_t i = 12; i < 28; i++)
        if (!strchr(b32, p[i]) || p[i] == '\0')
            return 0;
    return 1;
}

int ex_ws_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n == 0 || n >= EX_WS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}
