#include "mcp/usage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <lmdb.h>

/* Plans as data. Quotas per calendar month (docs/mcp.md "Plans and quotas"). */
static const mcp_plan plans[] = {
    {"free", 1000, 50},
    {"pro", 50000, 2000},
    {"business", 1000000, 50000},
    {"enterprise", UINT64_MAX, UINT64_MAX}, /* contract terms, no metered ceiling */
};

const mcp_plan *mcp_plan_get(const char *name)
{
    size_t i;
    for (i = 0; name && i < sizeof plans / sizeof plans[0]; i++)
        if (strcmp(plans[i].name, name) == 0)
            return &plans[i];
    return &plans[0];
}

typedef struct entry {
    struct entry *next;
    uint64_t base;    /* value on disk when loaded (totals only) */
    uint64_t pending; /* counted, not yet written */
    int loaded;
    char key[];
} entry;

#define NSLOTS 4096
#define KEEP   50000 /* entries kept in memory after a flush */

struct mcp_usage {
    MDB_env *env;
    MDB_dbi dbi;
    const core_clock *clock;
    entry *slots[NSLOTS];
    size_t count;
    /* period_of's answer for one UTC day (the month cannot change within it) */
    int period_valid;
    int64_t period_day;
    char period[16], resets[40];
};

static size_t slot_of(const char *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return (size_t)(h % NSLOTS);
}

static entry *get_entry(mcp_usage *u, const char *key)
{
    size_t s = slot_of(key), n;
    entry *e;
    for (e = u->slots[s]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    n = strlen(key);
    e = calloc(1, sizeof *e + n + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, n + 1);
    e->next = u->slots[s];
    u->slots[s] = e;
    u->count++;
    return e;
}

static uint64_t get_u64(const MDB_val *v)
{
    uint64_t x = 0;
    size_t i;
    const unsigned char *p = v->mv_data;
    if (v->mv_size != 8)
        return 0;
    for (i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static void put_u64(unsigned char out[8], uint64_t x)
{
    size_t i;
    for (i = 0; i < 8; i++)
        out[i] = (unsigned char)(x >> (8 * i));
}

pl_rc mcp_usage_open(const char *data_dir, const core_clock *clock, int nosync, mcp_usage **out)
{
    mcp_usage *u;
    MDB_txn *txn = NULL;
    char dir[1024];
    int n;
    *out = NULL;
    n = snprintf(dir, sizeof dir, "%s/mcp-usage", data_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return PL_ERR_INVALID;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    u = calloc(1, sizeof *u);
    if (!u)
        return PL_ERR_NOMEM;
    u->clock = clock;
    if (mdb_env_create(&u->env) != 0 || mdb_env_set_mapsize(u->env, (size_t)1 << 30) != 0 ||
        mdb_env_open(u->env, dir, nosync ? MDB_NOSYNC : 0, 0600) != 0 ||
        mdb_txn_begin(u->env, NULL, 0, &txn) != 0 || mdb_dbi_open(txn, NULL, 0, &u->dbi) != 0 ||
        mdb_txn_commit(txn) != 0) {
        if (txn)
            mdb_txn_abort(txn);
        mcp_usage_free(u);
        return PL_ERR_STORE;
    }
    *out = u;
    return PL_OK;
}

void mcp_usage_free(mcp_usage *u)
{
    size_t i;
    if (!u)
        return;
    if (u->env) {
        mcp_usage_flush(u);
        mdb_env_close(u->env);
    }
    for (i = 0; i < NSLOTS; i++) {
        entry *e = u->slots[i];
        while (e) {
            entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(u);
}

/* "YYYY-MM" of now, and the RFC 3339 instant the period ends; formatted once per UTC day. */
static void period_of(mcp_usage *u, char period[16], char resets[40])
{
    int64_t now = core_clock_now_s(u->clock);
    time_t t = (time_t)now;
    struct tm tm;
    int y, m;
    if (u->period_valid && now >= 0 && now / 86400 == u->period_day) {
        memcpy(period, u->period, 16);
        memcpy(resets, u->resets, 40);
        return;
    }
    gmtime_r(&t, &tm);
    y = tm.tm_year + 1900;
    m = tm.tm_mon + 1;
    snprintf(period, 16, "%04d-%02d", y % 10000, m % 100);
    if (++m > 12) {
        m = 1;
        y++;
    }
    snprintf(resets, 40, "%04d-%02d-01T00:00:00Z", y % 10000, m % 100);
    if (now >= 0) {
        memcpy(u->period, period, 16);
        memcpy(u->resets, resets, 40);
        u->period_day = now / 86400;
        u->period_valid = 1;
    }
}

/* key = parts joined by '|', truncated to cap - 1 bytes like snprintf. */
static void key_join(char *key, size_t cap, const char *const *parts, size_t n)
{
    size_t len = 0, i, l;
    for (i = 0; i < n && len + 1 < cap; i++) {
        if (i)
            key[len++] = '|';
        l = strlen(parts[i]);
        if (l > cap - 1 - len)
            l = cap - 1 - len;
        memcpy(key + len, parts[i], l);
        len += l;
    }
    key[len] = '\0';
}

/* Loads the on-disk value of a totals entry once. */
static pl_rc load(mcp_usage *u, entry *e)
{
    MDB_txn *txn;
    MDB_val k, v;
    int rc;
    if (e->loaded)
        return PL_OK;
    if (mdb_txn_begin(u->env, NULL, MDB_RDONLY, &txn) != 0)
        return PL_ERR_STORE;
    k.mv_data = e->key;
    k.mv_size = strlen(e->key);
    rc = mdb_get(txn, u->dbi, &k, &v);
    if (rc == 0)
        e->base = get_u64(&v);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return PL_ERR_STORE;
    e->loaded = 1;
    return PL_OK;
}

pl_rc mcp_usage_count(mcp_usage *u, const char *ws, const mcp_plan *plan, const char *client,
                      const char *tool, int is_publish, mcp_quota_denial *d)
{
    char period[16], resets[40], key[1600];
    entry *calls, *pubs = NULL, *per;
    pl_rc rc;

    period_of(u, period, resets);
    {
        const char *parts[] = {period, ws, "calls"};
        key_join(key, sizeof key, parts, 3);
    }
    calls = get_entry(u, key);
    if (!calls)
        return PL_ERR_NOMEM;
    if ((rc = load(u, calls)) != PL_OK)
        return rc;
    if (calls->base + calls->pending >= plan->calls) {
        d->plan = plan;
        d->what = "tool calls";
        d->quota = plan->calls;
        d->used = calls->base + calls->pending;
        snprintf(d->resets_at, sizeof d->resets_at, "%s", resets);
        return PL_ERR_LIMIT;
    }
    if (is_publish) {
        const char *parts[] = {period, ws, "publishes"};
        key_join(key, sizeof key, parts, 3);
        pubs = get_entry(u, key);
        if (!pubs)
            return PL_ERR_NOMEM;
        if ((rc = load(u, pubs)) != PL_OK)
            return rc;
        if (pubs->base + pubs->pending >= plan->publishes) {
            d->plan = plan;
            d->what = "publishes";
            d->quota = plan->publishes;
            d->used = pubs->base + pubs->pending;
            snprintf(d->resets_at, sizeof d->resets_at, "%s", resets);
            return PL_ERR_LIMIT;
        }
    }
    {
        const char *parts[] = {period, ws, "tool", client, tool};
        key_join(key, sizeof key, parts, 5);
    }
    per = get_entry(u, key);
    if (!per)
        return PL_ERR_NOMEM;
    calls->pending++;
    if (pubs)
        pubs->pending++;
    per->pending++;
    return PL_OK;
}

pl_rc mcp_usage_flush(mcp_usage *u)
{
    MDB_txn *txn;
    size_t i;
    int rc = 0;
    if (!u || !u->env)
        return PL_ERR_INVALID;
    if (mdb_txn_begin(u->env, NULL, 0, &txn) != 0)
        return PL_ERR_STORE;
    for (i = 0; i < NSLOTS && rc == 0; i++) {
        entry *e;
        for (e = u->slots[i]; e && rc == 0; e = e->next) {
            MDB_val k, v;
            uint64_t cur = 0;
            unsigned char buf[8];
            if (!e->pending)
                continue;
            k.mv_data = e->key;
            k.mv_size = strlen(e->key);
            rc = mdb_get(txn, u->dbi, &k, &v);
            if (rc == 0)
                cur = get_u64(&v);
            else if (rc != MDB_NOTFOUND)
                break;
            put_u64(buf, cur + e->pending);
            v.mv_data = buf;
            v.mv_size = 8;
            rc = mdb_put(txn, u->dbi, &k, &v, 0);
        }
    }
    if (rc != 0 || mdb_txn_commit(txn) != 0) {
        if (rc != 0)
            mdb_txn_abort(txn);
        return PL_ERR_STORE;
    }
    /* Committed: fold pending into base; forget idle entries beyond the memory bound. */
    for (i = 0; i < NSLOTS; i++) {
        entry **pp = &u->slots[i];
        while (*pp) {
            entry *e = *pp;
            e->base += e->pending;
            e->pending = 0;
            if (u->count > KEEP) {
                *pp = e->next;
                free(e);
                u->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    return PL_OK;
}

pl_rc mcp_usage_report(mcp_usage *u, const char *period, const char *ws, FILE *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    char cur_period[16], resets[40], prefix[200];
    size_t plen;
    int rc;
    if (!period) {
        period_of(u, cur_period, resets);
        period = cur_period;
    }
    snprintf(prefix, sizeof prefix, "%s|%s%s", period, ws ? ws : "", ws ? "|" : "");
    plen = strlen(prefix);
    if (mdb_txn_begin(u->env, NULL, MDB_RDONLY, &txn) != 0)
        return PL_ERR_STORE;
    if (mdb_cursor_open(txn, u->dbi, &cur) != 0) {
        mdb_txn_abort(txn);
        return PL_ERR_STORE;
    }
    k.mv_data = prefix;
    k.mv_size = plen;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        fprintf(out, "%.*s %llu\n", (int)k.mv_size, (const char *)k.mv_data,
                (unsigned long long)get_u64(&v));
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return PL_OK;
}
