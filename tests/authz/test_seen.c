/* tests/authz/test_seen.c — the last-call record of grants (authz/seen.h): real LMDB in a
 * mkdtemp directory, times given by the test (no clock read, no sleep), the writer thread
 * synchronised with az_seen_wait() and, to hold it mid-write, a pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "authz/seen.h"
#include "fixture.h"

#define T0 ((int64_t)1800000000000LL)

typedef struct fx {
    char dir[256];
    az_seen *s;
    /* the alive callback: ids containing "dead" are gone; with block set, the first call
     * waits for a byte on the pipe (the writer thread is then held inside a transaction) */
    int block;
    int pipefd[2];
    int alive_calls;
} fx;

static pl_rc alive(void *arg, const char *gid)
{
    fx *f = arg;
    f->alive_calls++;
    if (f->block) {
        char c;
        f->block = 0;
        if (read(f->pipefd[0], &c, 1) != 1)
            return PL_ERR_IO;
    }
    return strstr(gid, "dead") ? PL_ERR_DENIED : PL_OK;
}

static az_seen_cfg cfg_of(fx *f)
{
    az_seen_cfg c;
    memset(&c, 0, sizeof c);
    c.data_dir = f->dir;
    c.interval_ms = 60000;
    c.nosync = 1;
    return c;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(fx_tmpdir(f->dir), 0);
    assert_int_equal(pipe(f->pipefd), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    az_seen_free(f->s);
    close(f->pipefd[0]);
    close(f->pipefd[1]);
    fx_rmrf(f->dir);
    free(f);
    return 0;
}

static int64_t read_one(const char *dir, const char *gid)
{
    const char *g[1] = {gid};
    int64_t ms = -1;
    assert_int_equal(az_seen_read(dir, g, 1, &ms), PL_OK);
    return ms;
}

/* Writes n records into database db of <dir>/seen with LMDB directly, as an outside writer
 * of the environment would (records this module never writes). */
static void plant(const char *dir, const char *db, const MDB_val *keys, const MDB_val *vals,
                  size_t n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    char path[300];
    snprintf(path, sizeof path, "%s/seen", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 2), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mdb_put(txn, dbi, (MDB_val *)&keys[i], (MDB_val *)&vals[i], 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A touch is written at the next flush; the reader (after the writer closed) sees it, and
 * "never" (0) for a grant without a call. */
static void test_record_and_read_back(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    int64_t ms = 0;
    az_seen_stats st;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "g_abc", T0), PL_OK);
    assert_int_equal(az_seen_get(f->s, "g_abc", &ms), PL_ERR_NOT_FOUND); /* memory only */
    assert_int_equal(az_seen_flush(f->s, T0 + 500), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_abc", &ms), PL_OK);
    assert_int_equal(ms, T0);
    assert_int_equal(az_seen_get(f->s, "g_other", &ms), PL_ERR_NOT_FOUND);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.touches, 1);
    assert_int_equal(st.handed, 1);
    assert_int_equal(st.written, 1);
    assert_int_equal(st.batches, 1);
    assert_int_equal(st.failed, 0);
    az_seen_free(f->s);
    f->s = NULL;
    {
        const char *g[3] = {"g_abc", "g_other", "g_abc"};
        int64_t out[3] = {-1, -1, -1};
        assert_int_equal(az_seen_read(f->dir, g, 3, out), PL_OK);
        assert_int_equal(out[0], T0);
        assert_int_equal(out[1], 0);
        assert_int_equal(out[2], T0);
    }
    /* The record's layout is the documented contract: 8 bytes, host order, under the id. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi, meta;
        MDB_val k = {5, "g_abc"}, v, sk = {6, "schema"};
        char path[300];
        int64_t raw;
        snprintf(path, sizeof path, "%s/seen", f->dir);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 2), 0);
        assert_int_equal(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
        assert_int_equal(mdb_get(txn, meta, &sk, &v), 0);
        assert_int_equal(v.mv_size, 1);
        assert_memory_equal(v.mv_data, "1", 1);
        assert_int_equal(mdb_dbi_open(txn, "seen", 0, &dbi), 0);
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        assert_int_equal(v.mv_size, 8);
        memcpy(&raw, v.mv_data, 8);
        assert_int_equal(raw, T0);
        mdb_txn_abort(txn);
        mdb_env_close(env);
    }
}

/* At most one write per grant per interval; the stored time is then the latest call; the
 * free at shutdown writes what is pending whatever the interval. */
static void test_throttle(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    int64_t ms = 0;
    az_seen_stats st;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "g_t", T0), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    /* Many calls within the interval: nothing more is written... */
    for (int i = 1; i <= 50; i++)
        assert_int_equal(az_seen_touch(f->s, "g_t", T0 + (int64_t)i * 1000), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 50000), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_t", &ms), PL_OK);
    assert_int_equal(ms, T0);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.handed, 1);
    assert_int_equal(st.touches, 51);
    /* ... until the interval has passed: then the last call's time, in one write. */
    assert_int_equal(az_seen_flush(f->s, T0 + 59999), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_t", &ms), PL_OK);
    assert_int_equal(ms, T0);
    assert_int_equal(az_seen_flush(f->s, T0 + 60000), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_t", &ms), PL_OK);
    assert_int_equal(ms, T0 + 50000);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.handed, 2);
    /* No new call: later flushes write nothing. */
    assert_int_equal(az_seen_flush(f->s, T0 + 200000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.handed, 2);
    /* An older time (clock step back) never replaces a newer one. */
    assert_int_equal(az_seen_touch(f->s, "g_t", T0 + 1), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 400000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.handed, 2);
    /* Pending at shutdown (inside the interval): written by az_seen_free. */
    assert_int_equal(az_seen_touch(f->s, "g_t", T0 + 401000), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 401000), PL_OK); /* due: written */
    az_seen_wait(f->s);
    assert_int_equal(az_seen_touch(f->s, "g_t", T0 + 402000), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "g_new", T0 + 402500), PL_OK);
    az_seen_free(f->s);
    f->s = NULL;
    assert_int_equal(read_one(f->dir, "g_t"), T0 + 402000);
    assert_int_equal(read_one(f->dir, "g_new"), T0 + 402500);
}

/* No environment (postly-mcp never ran): every grant "never", not an error. */
static void test_absent_env(void **state)
{
    fx *f = *state;
    const char *g[2] = {"g_a", "g_b"};
    int64_t out[2] = {-1, -1};
    char missing[300];
    assert_int_equal(az_seen_read(f->dir, g, 2, out), PL_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
    snprintf(missing, sizeof missing, "%s/no/such/dir", f->dir);
    out[0] = out[1] = -1;
    assert_int_equal(az_seen_read(missing, g, 2, out), PL_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
    /* The reader created nothing. */
    {
        struct stat stt;
        char p[300];
        snprintf(p, sizeof p, "%s/seen", f->dir);
        assert_int_not_equal(stat(p, &stt), 0);
    }
    assert_int_equal(az_seen_read(NULL, g, 2, out), PL_ERR_INVALID);
    assert_int_equal(az_seen_read(f->dir, NULL, 2, out), PL_ERR_INVALID);
    assert_int_equal(az_seen_read(f->dir, NULL, 0, NULL), PL_OK);
    /* NULL recorder: touches and flushes are no-ops (a server without one). */
    assert_int_equal(az_seen_touch(NULL, "g_a", T0), PL_OK);
    assert_int_equal(az_seen_flush(NULL, T0), PL_OK);
    az_seen_wait(NULL);
    az_seen_free(NULL);
}

/* Both bounds: records in the environment (max_records) and grants in memory (slots). */
static void test_bounded(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    az_seen_stats st;
    char gid[32];
    const char *g[5];
    char ids[5][16];
    int64_t out[5];
    int written = 0;
    c.max_records = 3;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof ids[i], "g_%d", i);
        g[i] = ids[i];
        assert_int_equal(az_seen_touch(f->s, ids[i], T0 + i), PL_OK);
    }
    assert_int_equal(az_seen_flush(f->s, T0 + 10), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.handed, 5);
    assert_int_equal(st.written, 3);
    assert_int_equal(st.dropped_full, 2);
    /* A grant already recorded is still updated when the environment is full. */
    assert_int_equal(az_seen_touch(f->s, ids[0], T0 + 70000), PL_OK);
    assert_int_equal(az_seen_touch(f->s, ids[1], T0 + 70000), PL_OK);
    assert_int_equal(az_seen_touch(f->s, ids[2], T0 + 70000), PL_OK);
    assert_int_equal(az_seen_touch(f->s, ids[3], T0 + 70000), PL_OK);
    assert_int_equal(az_seen_touch(f->s, ids[4], T0 + 70000), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 70000), PL_OK);
    az_seen_wait(f->s);
    az_seen_free(f->s);
    f->s = NULL;
    assert_int_equal(az_seen_read(f->dir, g, 5, out), PL_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(out[i] == 0 || out[i] == T0 + 70000);
        written += out[i] != 0;
    }
    assert_int_equal(written, 3);

    /* Memory: 64 slots (the minimum) and 1000 distinct grants. The table never grows; the
     * grants pushed out before a flush lose their change (counted), the rest are written. */
    fx_rmrf(f->dir);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    c = cfg_of(f);
    c.slots = 1;
    c.batch_max = 4096;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    for (int i = 0; i < 1000; i++) {
        snprintf(gid, sizeof gid, "g_many_%d", i);
        assert_int_equal(az_seen_touch(f->s, gid, T0 + i), PL_OK);
    }
    assert_int_equal(az_seen_flush(f->s, T0 + 2000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.touches, 1000);
    assert_true(st.handed <= 64);
    assert_true(st.handed >= 32);
    assert_int_equal(st.handed + st.evicted_dirty, 1000);
    assert_int_equal(st.written, st.handed);
    /* The last grant touched is always kept (it is never its own victim). */
    {
        int64_t ms;
        assert_int_equal(az_seen_get(f->s, "g_many_999", &ms), PL_OK);
        assert_int_equal(ms, T0 + 999);
    }
}

/* Grant ids come from verified tokens, but the module trusts nothing: a hostile id is
 * refused without a write, and a reader asked for one answers "never". */
static void test_hostile_ids(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    az_seen_stats st;
    char longid[80];
    int64_t ms;
    static const char *const bad[] = {"",    "g a",    "g<script>", "../etc", "g_\xc3\xa9",
                                      "g\n", "g;drop", "g|x",       "g\"",    "\xff\xfe"};
    memset(longid, 'a', 65);
    longid[65] = '\0';
    c.alive = alive;
    c.alive_arg = f;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(az_seen_touch(f->s, bad[i], T0), PL_ERR_INVALID);
    assert_int_equal(az_seen_touch(f->s, NULL, T0), PL_ERR_INVALID);
    assert_int_equal(az_seen_touch(f->s, longid, T0), PL_ERR_INVALID);
    longid[64] = '\0'; /* 64 bytes: the longest id */
    assert_int_equal(az_seen_touch(f->s, longid, T0), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.invalid, sizeof bad / sizeof bad[0] + 2);
    assert_int_equal(st.handed, 1);
    assert_int_equal(az_seen_get(f->s, longid, &ms), PL_OK);
    assert_int_equal(az_seen_get(f->s, "g a", &ms), PL_ERR_INVALID);
    az_seen_free(f->s);
    f->s = NULL;

    /* Malformed records planted with LMDB directly (a value of the wrong size, a key that
     * is not an id): the reader answers "never" for them, the next purge pass deletes them. */
    {
        int64_t t = T0;
        MDB_val k[2] = {{6, "g_bad1"}, {5, "g bad"}}, v[2] = {{3, "abc"}, {sizeof t, &t}};
        plant(f->dir, "seen", k, v, 2);
    }
    {
        const char *g[3] = {"g_bad1", "g bad", longid};
        int64_t out[3];
        assert_int_equal(az_seen_read(f->dir, g, 3, out), PL_OK);
        assert_int_equal(out[0], 0);
        assert_int_equal(out[1], 0);
        assert_int_equal(out[2], T0);
    }
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK); /* the first flush runs a purge pass */
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 2);
    assert_int_equal(az_seen_get(f->s, "g_bad1", &ms), PL_ERR_NOT_FOUND);
    assert_int_equal(az_seen_get(f->s, longid, &ms), PL_OK);
}

/* Records of grants the directory reports gone are deleted, purge_batch at a time, the
 * pass resuming where the previous one stopped. */
static void test_purge(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    az_seen_stats st;
    int64_t ms;
    static const char *const ids[] = {"a_live", "dead_1", "dead_2", "m_live", "z_dead"};
    c.alive = alive;
    c.alive_arg = f;
    c.purge_batch = 2;
    c.purge_every_ms = 10000;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(az_seen_touch(f->s, ids[i], T0), PL_OK);
    /* Pass 1 (same transaction as the writes): a_live, dead_1 -> one purged. */
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.written, 5);
    assert_int_equal(st.purged, 1);
    assert_int_equal(az_seen_get(f->s, "dead_1", &ms), PL_ERR_NOT_FOUND);
    assert_int_equal(az_seen_get(f->s, "dead_2", &ms), PL_OK);
    /* Not due yet: no pass. */
    assert_int_equal(az_seen_flush(f->s, T0 + 9999), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 1);
    /* Pass 2: dead_2, m_live. Pass 3: z_dead, then the end (wraps). */
    assert_int_equal(az_seen_flush(f->s, T0 + 10000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 2);
    assert_int_equal(az_seen_flush(f->s, T0 + 20000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 3);
    assert_int_equal(az_seen_get(f->s, "z_dead", &ms), PL_ERR_NOT_FOUND);
    assert_int_equal(az_seen_get(f->s, "a_live", &ms), PL_OK);
    assert_int_equal(az_seen_get(f->s, "m_live", &ms), PL_OK);
    /* Pass 4 starts over at the first record. */
    f->alive_calls = 0;
    assert_int_equal(az_seen_flush(f->s, T0 + 30000), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(f->alive_calls, 2);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 3);
    assert_int_equal(st.batches, 4); /* the flush with nothing due wrote nothing */
}

/* A key longer than any grant id (planted by an outside writer of the environment) where a
 * pass stops: the next pass resumes there and deletes it, instead of starting over at the first
 * record forever (which would leave it and everything after it unpurged). */
static void test_purge_resumes_at_a_long_key(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    az_seen_stats st;
    int64_t ms;
    char longkey[100];
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK); /* no alive callback: no purge */
    assert_int_equal(az_seen_touch(f->s, "a_live", T0), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "z_dead", T0), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    az_seen_free(f->s);
    f->s = NULL;
    memset(longkey, 'b', sizeof longkey); /* sorts between a_live and z_dead */
    {
        int64_t t = T0;
        MDB_val k = {sizeof longkey, longkey}, v = {sizeof t, &t};
        plant(f->dir, "seen", &k, &v, 1);
    }
    c.alive = alive;
    c.alive_arg = f;
    c.purge_batch = 1;
    c.purge_every_ms = 10000;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    /* Pass 1: a_live (alive); it stops on the long key. */
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 0);
    /* Pass 2: the long key, deleted. Pass 3: z_dead. */
    assert_int_equal(az_seen_flush(f->s, T0 + 10000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 1);
    assert_int_equal(az_seen_flush(f->s, T0 + 20000), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.purged, 2);
    assert_int_equal(az_seen_get(f->s, "z_dead", &ms), PL_ERR_NOT_FOUND);
    assert_int_equal(az_seen_get(f->s, "a_live", &ms), PL_OK);
}

/* The owner never waits for the writer: with the writer held inside its transaction, touches
 * still work and a flush answers PL_ERR_BUSY at once, losing nothing. */
static void test_flush_never_waits(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    int64_t ms;
    c.alive = alive;
    c.alive_arg = f;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    f->block = 1;
    assert_int_equal(az_seen_touch(f->s, "g_one", T0), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK); /* the writer blocks in alive() */
    assert_int_equal(az_seen_touch(f->s, "g_two", T0 + 1), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 1000), PL_ERR_BUSY);
    assert_int_equal(az_seen_flush(f->s, T0 + 2000), PL_ERR_BUSY);
    assert_int_equal(write(f->pipefd[1], "x", 1), 1);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_one", &ms), PL_OK);
    assert_int_equal(az_seen_get(f->s, "g_two", &ms), PL_ERR_NOT_FOUND);
    assert_int_equal(az_seen_flush(f->s, T0 + 3000), PL_OK);
    az_seen_wait(f->s);
    assert_int_equal(az_seen_get(f->s, "g_two", &ms), PL_OK);
    assert_int_equal(ms, T0 + 1);
}

/* A failed write transaction (the map is full) is reported once by the next flush. */
static void test_store_failure_reported(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    az_seen_stats st;
    char gid[64];
    c.map_size = (size_t)64 * 1024;
    c.batch_max = 4000;
    c.slots = 4096;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    for (int i = 0; i < 3000; i++) {
        snprintf(gid, sizeof gid, "g_fill_%05d_0123456789012345678901234567890", i);
        assert_int_equal(az_seen_touch(f->s, gid, T0), PL_OK);
    }
    assert_int_equal(az_seen_flush(f->s, T0), PL_OK);
    az_seen_wait(f->s);
    az_seen_stats_get(f->s, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.batches, 0);
    assert_int_equal(az_seen_flush(f->s, T0 + 1), PL_ERR_STORE);
    assert_int_equal(az_seen_flush(f->s, T0 + 2), PL_OK); /* reported once */
}

/* An environment of another schema is refused by the writer and the reader alike. */
static void test_schema(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    const char *g[1] = {"g_a"};
    int64_t out[1];
    MDB_val k = {6, "schema"}, v = {1, "9"};
    char path[300];
    snprintf(path, sizeof path, "%s/seen", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    plant(f->dir, "meta", &k, &v, 1);
    assert_int_equal(az_seen_open(&c, &f->s), PL_ERR_UNSUPPORTED);
    assert_null(f->s);
    assert_int_equal(az_seen_read(f->dir, g, 1, out), PL_ERR_UNSUPPORTED);
    assert_int_equal(out[0], 0);
    c.data_dir = NULL;
    assert_int_equal(az_seen_open(&c, &f->s), PL_ERR_INVALID);
}

/* The reader in another process sees the writer's commits while the writer stays open (the
 * postly-mcp / postly-authz arrangement), and never goes back in time: a second writer with
 * an older time leaves the newer record. */
static void test_other_process_reads(void **state)
{
    fx *f = *state;
    az_seen_cfg c = cfg_of(f);
    pid_t pid;
    int st;
    c.nosync = 0; /* durable commits, as in production */
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "g_x", T0 + 5000), PL_OK);
    assert_int_equal(az_seen_flush(f->s, T0 + 5000), PL_OK);
    az_seen_wait(f->s);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *g[2] = {"g_x", "g_y"};
        int64_t out[2] = {-1, -1};
        _exit(az_seen_read(f->dir, g, 2, out) == PL_OK && out[0] == T0 + 5000 && out[1] == 0 ? 0
                                                                                             : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    az_seen_free(f->s);
    f->s = NULL;
    assert_int_equal(az_seen_open(&c, &f->s), PL_OK);
    assert_int_equal(az_seen_touch(f->s, "g_x", T0 + 1000), PL_OK); /* older */
    az_seen_free(f->s);
    f->s = NULL;
    assert_int_equal(read_one(f->dir, "g_x"), T0 + 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_resumes_at_a_long_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_never_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_process_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
