#include "mcp/session.h"

#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"

typedef struct node {
    struct node *next;
    mcp_session s;
} node;

struct mcp_session_table {
    const core_clock *clock;
    size_t max, per_owner, count, nbuckets;
    int64_t idle_ms;
    node **buckets;
    mcp_session_end_fn on_end;
    void *on_end_arg;
};

/* Frees a node that has been unlinked, telling the end hook first. */
static void node_free(mcp_session_table *t, node *n)
{
    if (t->on_end)
        t->on_end(t->on_end_arg, &n->s);
    free(n);
}

void mcp_session_table_on_end(mcp_session_table *t, mcp_session_end_fn fn, void *arg)
{
    t->on_end = fn;
    t->on_end_arg = arg;
}

void mcp_session_touch(mcp_session_table *t, mcp_session *s)
{
    s->last_ms = core_clock_now_ms(t->clock);
}

/* FNV-1a: the ids are random, so any mixing function spreads them evenly. */
static size_t bucket_of(const mcp_session_table *t, const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)(h & (t->nbuckets - 1));
}

pl_rc mcp_session_table_new(const core_clock *clock, size_t max, size_t per_owner, int64_t idle_ms,
                            mcp_session_table **out)
{
    mcp_session_table *t;
    size_t n = 16;
    *out = NULL;
    if (max == 0 || idle_ms <= 0)
        return PL_ERR_INVALID;
    while (n < max && n < ((size_t)1 << 20))
        n <<= 1;
    t = calloc(1, sizeof *t);
    if (!t)
        return PL_ERR_NOMEM;
    t->buckets = calloc(n, sizeof(node *));
    if (!t->buckets) {
        free(t);
        return PL_ERR_NOMEM;
    }
    t->clock = clock;
    t->max = max;
    t->per_owner = per_owner;
    t->nbuckets = n;
    t->idle_ms = idle_ms;
    *out = t;
    return PL_OK;
}

void mcp_session_table_free(mcp_session_table *t)
{
    size_t i;
    if (!t)
        return;
    for (i = 0; i < t->nbuckets; i++) {
        node *n = t->buckets[i];
        while (n) {
            node *next = n->next;
            node_free(t, n);
            n = next;
        }
    }
    free(t->buckets);
    free(t);
}

static int expired(const mcp_session_table *t, const mcp_session *s, int64_t now)
{
    return now - s->last_ms >= t->idle_ms;
}

void mcp_session_sweep(mcp_session_table *t, size_t *removed)
{
    int64_t now = core_clock_now_ms(t->clock);
    size_t i, n = 0;
    for (i = 0; i < t->nbuckets; i++) {
        node **pp = &t->buckets[i];
        while (*pp) {
            node *cur = *pp;
            if (expired(t, &cur->s, now)) {
                *pp = cur->next;
                node_free(t, cur);
                t->count--;
                n++;
            } else {
                pp = &cur->next;
            }
        }
    }
    if (removed)
        *removed = n;
}

size_t mcp_session_count(const mcp_session_table *t)
{
    return t ? t->count : 0;
}

/* Keeps owner below per_owner live sessions by ending its least recently used one. O(table)
 * per initialize, which is rare next to the requests inside sessions. */
static void bound_owner(mcp_session_table *t, const uint8_t owner[32])
{
    node **lru = NULL, **pp;
    size_t i, n = 0;
    for (i = 0; i < t->nbuckets; i++) {
        for (pp = &t->buckets[i]; *pp; pp = &(*pp)->next) {
            if (memcmp((*pp)->s.owner, owner, 32) != 0)
                continue;
            n++;
            if (!lru || (*pp)->s.last_ms < (*lru)->s.last_ms)
                lru = pp;
        }
    }
    if (n >= t->per_owner && lru) {
        node *cur = *lru;
        *lru = cur->next;
        node_free(t, cur);
        t->count--;
    }
}

pl_rc mcp_session_create(mcp_session_table *t, const uint8_t owner[32], const char *version,
                         mcp_session **out)
{
    node *n;
    size_t b;
    pl_rc rc;
    *out = NULL;
    if (t->per_owner)
        bound_owner(t, owner);
    if (t->count >= t->max)
        mcp_session_sweep(t, NULL);
    if (t->count >= t->max)
        return PL_ERR_LIMIT;
    n = calloc(1, sizeof *n);
    if (!n)
        return PL_ERR_NOMEM;
    rc = core_random_token(n->s.id, sizeof n->s.id, 32);
    if (rc != PL_OK) {
        free(n);
        return PL_ERR_CRYPTO;
    }
    memcpy(n->s.owner, owner, sizeof n->s.owner);
    if (version)
        memcpy(n->s.protocol_version, version, strnlen(version, sizeof n->s.protocol_version - 1));
    n->s.created_ms = n->s.last_ms = core_clock_now_ms(t->clock);
    b = bucket_of(t, n->s.id);
    n->next = t->buckets[b];
    t->buckets[b] = n;
    t->count++;
    *out = &n->s;
    return PL_OK;
}

/* Finds the link that points at id's node, expiring it on the way when idle too long. */
static node **find_link(mcp_session_table *t, const char *id)
{
    node **pp;
    int64_t now = core_clock_now_ms(t->clock);
    if (!id || strlen(id) != MCP_SESSION_ID_LEN)
        return NULL;
    pp = &t->buckets[bucket_of(t, id)];
    for (; *pp; pp = &(*pp)->next) {
        if (core_ct_equal((*pp)->s.id, id, MCP_SESSION_ID_LEN)) {
            if (expired(t, &(*pp)->s, now)) {
                node *cur = *pp;
                *pp = cur->next;
                node_free(t, cur);
                t->count--;
                return NULL;
            }
            return pp;
        }
    }
    return NULL;
}

pl_rc mcp_session_find(mcp_session_table *t, const char *id, const uint8_t owner[32],
                       mcp_session **out)
{
    node **pp = find_link(t, id);
    *out = NULL;
    if (!pp)
        return PL_ERR_NOT_FOUND;
    if (!core_ct_equal((*pp)->s.owner, owner, 32))
        return PL_ERR_DENIED;
    (*pp)->s.last_ms = core_clock_now_ms(t->clock);
    *out = &(*pp)->s;
    return PL_OK;
}

pl_rc mcp_session_end(mcp_session_table *t, const char *id, const uint8_t owner[32])
{
    node **pp = find_link(t, id), *cur;
    if (!pp)
        return PL_ERR_NOT_FOUND;
    if (!core_ct_equal((*pp)->s.owner, owner, 32))
        return PL_ERR_DENIED;
    cur = *pp;
    *pp = cur->next;
    node_free(t, cur);
    t->count--;
    return PL_OK;
}
