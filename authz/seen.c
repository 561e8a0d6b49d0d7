/* authz/seen.c — the last-call times of grants (seen.h): an in-memory table on the owner's
 * thread, a writer thread with its own LMDB write transactions, and the read-only reader. */
#include "seen.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ID_MAX    64 /* AZ_ID_MAX (directory.h) */
#define PROBE     16 /* slots looked at per grant (linear probing window) */
#define PATH_MAX_ 4096

/* 1 for the bytes of an id: [A-Za-z0-9_-] (a table, not branches: this runs per request). */
static const unsigned char id_char[256] = {
    ['-'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,
    ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1,
    ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* One grant in memory. len 0 = empty slot (slots are never emptied again: an evicted grant
 * is replaced in place, so a probe may stop at the first empty slot). */
typedef struct seen_ent {
    int64_t seen_ms;   /* its last call */
    int64_t stored_ms; /* the time last handed to the writer (seen_ms > stored_ms: dirty) */
    int64_t next_ms;   /* no hand-off before this (the interval) */
    uint8_t len;
    uint8_t listed; /* its index is in az_seen.dirty (exactly when it is dirty) */
    char gid[ID_MAX + 1];
} seen_ent;

/* One record handed to the writer. */
typedef struct seen_rec {
    int64_t ms;
    uint8_t len;
    char gid[ID_MAX + 1];
} seen_rec;

struct az_seen {
    az_seen_cfg cfg;
    MDB_env *env;
    MDB_dbi dbi;
    /* owner thread */
    seen_ent *tab;
    size_t mask;
    uint32_t *dirty; /* indexes of the dirty entries, so a flush never scans the table */
    size_t ndirty;
    int64_t purge_next_ms;
    az_seen_stats st; /* the owner's counters; the writer's are in w_st */
    /* shared with the writer thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    pthread_t thread;
    int started, stop, busy, purge;
    seen_rec *inbox; /* filled by the owner only while busy == 0 and n == 0 */
    size_t n;
    az_seen_stats w_st;
    uint64_t failed_reported;
    /* writer thread only; the resume key may be any key LMDB holds (an outside writer of the
     * environment may have stored a malformed one: it is purged when reached) */
    char purge_key[511]; /* LMDB's largest key (MDB_MAXKEYSIZE, mdb_env_get_maxkeysize) */
    size_t purge_key_len;
};

static int id_ok(const char *s, size_t len)
{
    if (len == 0 || len > ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!id_char[(unsigned char)s[i]])
            return 0;
    return 1;
}

/* ---- the writer thread ------------------------------------------------------------- */

/* Checks the next purge_batch records with cfg.alive; deletes the gone and the malformed. */
static int purge_pass(az_seen *s, MDB_txn *txn, az_seen_stats *st)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t i;
    int rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc != 0)
        return rc;
    if (s->purge_key_len) {
        k.mv_size = s->purge_key_len;
        k.mv_data = s->purge_key;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (i = 0; rc == 0 && i < s->cfg.purge_batch; i++) {
        char gid[ID_MAX + 1];
        int gone = !id_ok(k.mv_data, k.mv_size) || v.mv_size != sizeof(int64_t);
        if (!gone) {
            memcpy(gid, k.mv_data, k.mv_size);
            gid[k.mv_size] = '\0';
            gone = s->cfg.alive(s->cfg.alive_arg, gid) == PL_ERR_DENIED;
        }
        if (gone) {
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0)
                break;
            st->purged++;
        }
        /* After a delete LMDB's cursor stands on the next record and MDB_NEXT yields it. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && k.mv_size <= sizeof s->purge_key) { /* resume here next time */
        memcpy(s->purge_key, k.mv_data, k.mv_size);
        s->purge_key_len = k.mv_size;
    } else if (rc == 0 || rc == MDB_NOTFOUND) { /* the end: start over */
        s->purge_key_len = 0;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* One write transaction: the records (a stored time only moves forward), then a purge pass. */
static pl_rc write_batch(az_seen *s, const seen_rec *r, size_t n, int purge, az_seen_stats *st)
{
    MDB_txn *txn = NULL;
    MDB_stat ms;
    size_t entries;
    int rc, dead = 0;
    /* A reader (postly-authz's /apps, postly-admin) killed inside its short read transaction
     * leaves its slot behind, which would pin an old snapshot until the map is full: cleared
     * before every purge pass. */
    if (purge)
        (void)mdb_reader_check(s->env, &dead);
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_stat(txn, s->dbi, &ms);
    if (rc != 0)
        goto out;
    entries = ms.ms_entries;
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {r[i].len, (void *)r[i].gid}, v;
        int64_t old;
        rc = mdb_get(txn, s->dbi, &k, &v);
        if (rc == 0 && v.mv_size == sizeof old) {
            memcpy(&old, v.mv_data, sizeof old);
            if (old >= r[i].ms)
                continue; /* another postly-mcp stored a later call */
        } else if (rc == MDB_NOTFOUND) {
            if (entries >= s->cfg.max_records) {
                st->dropped_full++;
                continue;
            }
            entries++;
        } else if (rc != 0) {
            goto out;
        }
        v.mv_size = sizeof r[i].ms;
        v.mv_data = (void *)&r[i].ms;
        rc = mdb_put(txn, s->dbi, &k, &v, 0);
        if (rc != 0)
            goto out; /* MDB_MAP_FULL included: the transaction is unusable now */
        st->written++;
    }
    if (purge && s->cfg.alive && (rc = purge_pass(s, txn, st)) != 0)
        goto out;
    rc = mdb_txn_commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        st->failed++;
        return PL_ERR_STORE;
    }
    st->batches++;
    return PL_OK;
}

static void *writer_main(void *arg)
{
    az_seen *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        size_t n;
        int purge;
        az_seen_stats st;
        while (!s->n && !s->purge && !s->stop)
            pthread_cond_wait(&s->work, &s->mu);
        if (!s->n && !s->purge)
            break; /* stop, and nothing left */
        n = s->n;
        purge = s->purge;
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);
        memset(&st, 0, sizeof st);
        /* The inbox is not touched by the owner while busy: read without the lock. */
        write_batch(s, s->inbox, n, purge, &st);
        pthread_mutex_lock(&s->mu);
        s->w_st.written += st.written;
        s->w_st.dropped_full += st.dropped_full;
        s->w_st.purged += st.purged;
        s->w_st.batches += st.batches;
        s->w_st.failed += st.failed;
        s->n = 0;
        s->purge = 0;
        s->busy = 0;
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- open, free ------------------------------------------------------------------------ */

static size_t pow2_at_least(size_t n)
{
    size_t p = 64;
    while (p < n && p < ((size_t)1 << 24))
        p <<= 1;
    return p;
}

static pl_rc env_init(az_seen *s, const char *path)
{
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    MDB_val k = {6, "schema"}, v;
    pl_rc rc = PL_ERR_STORE;
    unsigned flags = MDB_NOTLS | (s->cfg.nosync ? MDB_NOSYNC : 0);
    if (mdb_env_create(&s->env) != 0 || mdb_env_set_maxdbs(s->env, 2) != 0 ||
        mdb_env_set_mapsize(s->env, s->cfg.map_size) != 0 ||
        mdb_env_open(s->env, path, flags, 0600) != 0)
        goto out;
    if (mdb_txn_begin(s->env, NULL, 0, &txn) != 0 ||
        mdb_dbi_open(txn, "meta", MDB_CREATE, &meta) != 0)
        goto out;
    switch (mdb_get(txn, meta, &k, &v)) {
    case 0:
        if (v.mv_size != strlen(AZ_SEEN_SCHEMA) ||
            memcmp(v.mv_data, AZ_SEEN_SCHEMA, v.mv_size) != 0) {
            rc = PL_ERR_UNSUPPORTED;
            goto out;
        }
        break;
    case MDB_NOTFOUND:
        v.mv_size = strlen(AZ_SEEN_SCHEMA);
        v.mv_data = (void *)AZ_SEEN_SCHEMA;
        if (mdb_put(txn, meta, &k, &v, 0) != 0)
            goto out;
        break;
    default:
        goto out;
    }
    if (mdb_dbi_open(txn, "seen", MDB_CREATE, &s->dbi) != 0)
        goto out;
    rc = mdb_txn_commit(txn) == 0 ? PL_OK : PL_ERR_STORE;
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

pl_rc az_seen_open(const az_seen_cfg *cfg, az_seen **out)
{
    az_seen *s = NULL;
    char path[PATH_MAX_];
    pl_rc rc = PL_OK;
    int n;

    if (out)
        *out = NULL;
    if (!cfg || !cfg->data_dir || !out || cfg->interval_ms < 0 || cfg->purge_every_ms < 0)
        return PL_ERR_INVALID;
    n = snprintf(path, sizeof path, "%s/seen", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return PL_ERR_INVALID;
    s = calloc(1, sizeof *s);
    if (!s)
        return PL_ERR_NOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return PL_ERR_INTERNAL;
    }
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->cfg = *cfg;
    s->cfg.data_dir = NULL; /* not kept: borrowed for this call only */
    if (!s->cfg.interval_ms)
        s->cfg.interval_ms = 60000;
    if (!s->cfg.slots)
        s->cfg.slots = 8192;
    if (!s->cfg.max_records)
        s->cfg.max_records = 262144;
    if (!s->cfg.map_size)
        s->cfg.map_size = (size_t)128 << 20;
    if (!s->cfg.batch_max)
        s->cfg.batch_max = 1024;
    if (!s->cfg.purge_every_ms)
        s->cfg.purge_every_ms = 10000;
    if (!s->cfg.purge_batch)
        s->cfg.purge_batch = 256;
    s->cfg.slots = pow2_at_least(s->cfg.slots);
    s->mask = s->cfg.slots - 1;
    s->tab = calloc(s->cfg.slots, sizeof *s->tab);
    s->dirty = calloc(s->cfg.slots, sizeof *s->dirty);
    s->inbox = calloc(s->cfg.batch_max, sizeof *s->inbox);
    if (!s->tab || !s->dirty || !s->inbox) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        rc = PL_ERR_IO;
        goto out;
    }
    rc = env_init(s, path);
    if (rc != PL_OK)
        goto out;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }
    s->started = 1;
    *out = s;
    return PL_OK;
out:
    az_seen_free(s);
    return rc;
}

/* Hands dirty entries over when the writer is idle; force ignores the interval.
 * PL_ERR_BUSY when the writer is busy. */
static pl_rc hand_off(az_seen *s, int64_t now_ms, int force, int purge)
{
    size_t n = 0, keep = 0;
    pthread_mutex_lock(&s->mu);
    if (s->busy || s->n || s->purge) {
        pthread_mutex_unlock(&s->mu);
        return PL_ERR_BUSY;
    }
    for (size_t i = 0; i < s->ndirty; i++) {
        seen_ent *e = &s->tab[s->dirty[i]];
        if (n == s->cfg.batch_max || (!force && now_ms < e->next_ms)) {
            s->dirty[keep++] = s->dirty[i]; /* stays dirty: a later flush */
            continue;
        }
        s->inbox[n].ms = e->seen_ms;
        s->inbox[n].len = e->len;
        memcpy(s->inbox[n].gid, e->gid, (size_t)e->len + 1);
        n++;
        e->stored_ms = e->seen_ms;
        e->next_ms = now_ms + s->cfg.interval_ms;
        e->listed = 0;
    }
    s->ndirty = keep;
    s->st.handed += n;
    s->n = n;
    s->purge = purge;
    if (n || purge)
        pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return PL_OK;
}

void az_seen_wait(az_seen *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->mu);
    while (s->busy || s->n || s->purge)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void az_seen_free(az_seen *s)
{
    if (!s)
        return;
    if (s->started) {
        /* Everything pending, in as many hand-offs as it takes (bounded: each one empties
         * up to batch_max dirty entries and nothing adds new ones now). */
        az_seen_wait(s);
        while (s->ndirty) {
            size_t before = s->ndirty;
            hand_off(s, 0, 1, 0);
            az_seen_wait(s);
            if (s->ndirty >= before)
                break;
        }
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->env) {
        if (s->cfg.nosync)
            mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s->inbox);
    free(s->dirty);
    free(s->tab);
    free(s);
}

/* ---- the owner's side -------------------------------------------------------------------- */

/* FNV-1a over 8-byte words (a third of the byte-wise loop's instructions per request), then
 * the high half folded into the low bits, which pick the slot: a word's high bytes only
 * reach the product's high bits. */
static size_t hash_id(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL, w;
    size_t i;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 1099511628211ULL;
    }
    if (i < len) {
        w = 0;
        memcpy(&w, s + i, len - i);
        h = (h ^ w) * 1099511628211ULL;
    }
    h ^= h >> 32;
    h *= 0x9e3779b97f4a7c15ULL;
    return (size_t)(h ^ (h >> 29));
}

pl_rc az_seen_touch(az_seen *s, const char *gid, int64_t now_ms)
{
    size_t len, i, idx;
    seen_ent *e, *victim = NULL;
    if (!s)
        return PL_OK;
    if (!gid)
        goto invalid;
    len = strnlen(gid, ID_MAX + 1);
    if (len == 0 || len > ID_MAX)
        goto invalid;
    idx = hash_id(gid, len);
    for (i = 0; i < PROBE; i++) {
        e = &s->tab[(idx + i) & s->mask];
        if (e->len == len && memcmp(e->gid, gid, len) == 0) {
            if (now_ms > e->seen_ms) {
                e->seen_ms = now_ms;
                if (!e->listed) { /* clean -> dirty */
                    e->listed = 1;
                    s->dirty[s->ndirty++] = (uint32_t)(e - s->tab);
                }
            }
            s->st.touches++;
            return PL_OK;
        }
        if (!e->len)
            break;
        /* The victim if the window is full: a clean entry before a dirty one, then the
         * least recently used. */
        if (!victim || (victim->listed && !e->listed) ||
            (victim->listed == e->listed && e->seen_ms < victim->seen_ms))
            victim = e;
    }
    /* A new grant: its bytes are checked once, here (a hit above matched checked bytes). */
    if (!id_ok(gid, len))
        goto invalid;
    if (i == PROBE) {
        e = victim; /* a dirty victim's slot stays listed: the newcomer is dirty too */
        if (e->listed)
            s->st.evicted_dirty++;
    }
    memcpy(e->gid, gid, len + 1);
    e->len = (uint8_t)len;
    e->seen_ms = now_ms;
    e->stored_ms = INT64_MIN; /* dirty, and due at the next flush */
    e->next_ms = INT64_MIN;
    if (!e->listed) {
        e->listed = 1;
        s->dirty[s->ndirty++] = (uint32_t)(e - s->tab);
    }
    s->st.touches++;
    return PL_OK;
invalid:
    s->st.invalid++;
    return PL_ERR_INVALID;
}

pl_rc az_seen_flush(az_seen *s, int64_t now_ms)
{
    int purge = 0;
    pl_rc rc;
    uint64_t failed;
    if (!s)
        return PL_OK;
    if (s->cfg.alive && now_ms >= s->purge_next_ms)
        purge = 1;
    /* Failures before this hand-off only: one of this hand-off is reported by a later call. */
    pthread_mutex_lock(&s->mu);
    failed = s->w_st.failed;
    pthread_mutex_unlock(&s->mu);
    rc = hand_off(s, now_ms, 0, purge);
    if (rc == PL_OK && purge)
        s->purge_next_ms = now_ms + s->cfg.purge_every_ms;
    if (failed != s->failed_reported) {
        s->failed_reported = failed;
        return PL_ERR_STORE;
    }
    return rc;
}

pl_rc az_seen_get(az_seen *s, const char *gid, int64_t *ms)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    pl_rc rc;
    int r;
    if (!s || !gid || !ms || !id_ok(gid, strlen(gid)))
        return PL_ERR_INVALID;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return PL_ERR_STORE;
    k.mv_size = strlen(gid);
    k.mv_data = (void *)gid;
    r = mdb_get(txn, s->dbi, &k, &v);
    if (r == 0 && v.mv_size == sizeof *ms) {
        memcpy(ms, v.mv_data, sizeof *ms);
        rc = PL_OK;
    } else {
        rc = r == 0 || r == MDB_NOTFOUND ? PL_ERR_NOT_FOUND : PL_ERR_STORE;
    }
    mdb_txn_abort(txn);
    return rc;
}

void az_seen_stats_get(const az_seen *s, az_seen_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    *out = s->st;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    out->written = s->w_st.written;
    out->dropped_full = s->w_st.dropped_full;
    out->purged = s->w_st.purged;
    out->batches = s->w_st.batches;
    out->failed = s->w_st.failed;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}

/* ---- readers ------------------------------------------------------------------------------ */

pl_rc az_seen_read(const char *data_dir, const char *const *gids, size_t n, int64_t *out_ms)
{
    char path[PATH_MAX_];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, dbi;
    MDB_val k = {6, "schema"}, v;
    struct stat stt;
    pl_rc rc = PL_OK;
    int r;

    if (!data_dir || (n && (!gids || !out_ms)))
        return PL_ERR_INVALID;
    r = snprintf(path, sizeof path, "%s/seen", data_dir);
    if (r < 0 || (size_t)r >= sizeof path - 16)
        return PL_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        out_ms[i] = 0;
    /* Absent (postly-mcp never ran here, or an older one): "never" for every grant. A
     * read-only open would not create it either, but would fail with a less specific error. */
    snprintf(path + r, sizeof path - (size_t)r, "/data.mdb");
    if (stat(path, &stt) != 0)
        return errno == ENOENT || errno == ENOTDIR ? PL_OK : PL_ERR_STORE;
    path[r] = '\0';
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 2) != 0 ||
        mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    r = mdb_dbi_open(txn, "meta", 0, &meta);
    if (r == MDB_NOTFOUND)
        goto out; /* created but never initialised: nothing recorded */
    if (r != 0 || mdb_get(txn, meta, &k, &v) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (v.mv_size != strlen(AZ_SEEN_SCHEMA) || memcmp(v.mv_data, AZ_SEEN_SCHEMA, v.mv_size) != 0) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    r = mdb_dbi_open(txn, "seen", 0, &dbi);
    if (r == MDB_NOTFOUND)
        goto out;
    if (r != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t ms;
        if (!gids[i] || !id_ok(gids[i], strlen(gids[i])))
            continue;
        k.mv_size = strlen(gids[i]);
        k.mv_data = (void *)gids[i];
        r = mdb_get(txn, dbi, &k, &v);
        if (r == MDB_NOTFOUND)
            continue;
        if (r != 0) {
            rc = PL_ERR_STORE;
            goto out;
        }
        if (v.mv_size != sizeof ms)
            continue; /* malformed: shown as never; the writer's purge deletes it */
        memcpy(&ms, v.mv_data, sizeof ms);
        out_ms[i] = ms > 0 ? ms : 0;
    }
out:
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    if (rc != PL_OK)
        for (size_t i = 0; i < n; i++)
            out_ms[i] = 0;
    return rc;
}
