#include "mcp/rate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    struct bucket *next;
    uint64_t hash;
    uint32_t rule; /* index in the rate table */
    double tokens;
    int64_t last_ms;
    char key[]; /* "<per>|<value>" */
} bucket;

struct mcp_rate {
    const pol_compiled *policy;
    const core_clock *clock;
    pol_rate_info *rules; /* the policy's, then the per-token rule when enabled */
    uint32_t nrules;      /* policy rules */
    uint32_t nall;        /* nrules + (token rule ? 1 : 0) */
    bucket **tab;
    size_t nbuckets, count, max;
};

static uint64_t fnv(uint32_t rule, const char *s)
{
    uint64_t h = 1469598103934665603ULL ^ rule;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

pl_rc mcp_rate_new(const pol_compiled *policy, const core_clock *clock, size_t max_buckets,
                   uint32_t token_limit, mcp_rate **out)
{
    mcp_rate *r;
    uint32_t i;
    size_t n = 64;
    *out = NULL;
    if (!policy || max_buckets == 0)
        return PL_ERR_INVALID;
    r = calloc(1, sizeof *r);
    if (!r)
        return PL_ERR_NOMEM;
    r->policy = policy;
    r->clock = clock;
    r->max = max_buckets;
    r->nrules = pol_rate_count(policy);
    r->rules = calloc(r->nrules + 1, sizeof(pol_rate_info));
    while (n < max_buckets && n < ((size_t)1 << 22))
        n <<= 1;
    r->nbuckets = n;
    r->tab = calloc(n, sizeof(bucket *));
    if (!r->rules || !r->tab) {
        mcp_rate_free(r);
        return PL_ERR_NOMEM;
    }
    for (i = 0; i < r->nrules; i++) {
        if (pol_rate_get(policy, i, &r->rules[i]) != PL_OK || r->rules[i].period_s == 0 ||
            r->rules[i].limit == 0) {
            mcp_rate_free(r);
            return PL_ERR_INVALID;
        }
        if (r->rules[i].burst == 0)
            r->rules[i].burst = r->rules[i].limit;
    }
    r->nall = r->nrules;
    if (token_limit > 0) {
        pol_rate_info *t = &r->rules[r->nrules];
        t->id = "token";
        t->limit = token_limit;
        t->period_s = 60;
        t->burst = token_limit / 4 ? token_limit / 4 : 1;
        t->all_tools = 1;
        r->nall++;
    }
    *out = r;
    return PL_OK;
}

void mcp_rate_free(mcp_rate *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; r->tab && i < r->nbuckets; i++) {
        bucket *b = r->tab[i];
        while (b) {
            bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    free(r->tab);
    free(r->rules);
    free(r);
}

size_t mcp_rate_buckets(const mcp_rate *r)
{
    return r ? r->count : 0;
}

/* Tokens per millisecond of rule ri. */
static double rate_ms(const pol_rate_info *ri)
{
    return (double)ri->limit / ((double)ri->period_s * 1000.0);
}

static void refill(const pol_rate_info *ri, bucket *b, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * rate_ms(ri);
        if (b->tokens > (double)ri->burst)
            b->tokens = (double)ri->burst;
        b->last_ms = now;
    }
}

/* Drops buckets that are full again (they behave exactly like absent ones). */
static void evict_full(mcp_rate *r, int64_t now)
{
    size_t i;
    for (i = 0; i < r->nbuckets; i++) {
        bucket **pp = &r->tab[i];
        while (*pp) {
            bucket *b = *pp;
            refill(&r->rules[b->rule], b, now);
            if (b->tokens >= (double)r->rules[b->rule].burst) {
                *pp = b->next;
                free(b);
                r->count--;
            } else {
                pp = &b->next;
            }
        }
    }
}

static bucket *lookup(mcp_rate *r, uint32_t rule, const char *key, int64_t now, int create)
{
    uint64_t h = fnv(rule, key);
    size_t slot = (size_t)(h & (r->nbuckets - 1)), klen;
    bucket *b;
    for (b = r->tab[slot]; b; b = b->next)
        if (b->hash == h && b->rule == rule && strcmp(b->key, key) == 0)
            return b;
    if (!create)
        return NULL;
    if (r->count >= r->max)
        evict_full(r, now);
    if (r->count >= r->max)
        return NULL;
    klen = strlen(key);
    b = malloc(sizeof *b + klen + 1);
    if (!b)
        return NULL;
    b->hash = h;
    b->rule = rule;
    b->tokens = (double)r->rules[rule].burst;
    b->last_ms = now;
    memcpy(b->key, key, klen + 1);
    b->next = r->tab[slot];
    r->tab[slot] = b;
    r->count++;
    return b;
}

#define MAX_APPLY 32

/* snprintf(key, cap, "%s|%s", per, v), truncated the same way (without printf: every call). */
static void key_join(char *key, size_t cap, const char *per, const char *v)
{
    size_t len = strlen(per), lv = strlen(v);
    if (len > cap - 1)
        len = cap - 1;
    memcpy(key, per, len);
    if (len < cap - 1)
        key[len++] = '|';
    if (lv > cap - 1 - len)
        lv = cap - 1 - len;
    memcpy(key + len, v, lv);
    key[len + lv] = '\0';
}

pl_rc mcp_rate_take(mcp_rate *r, const mcp_rate_who *who, uint32_t tool, mcp_rate_denial *denied)
{
    bucket *hit[MAX_APPLY];
    size_t nhit = 0, k;
    uint32_t i;
    int64_t now = core_clock_now_ms(r->clock);
    char key[1400];

    for (i = 0; i < r->nall; i++) {
        const pol_rate_info *ri = &r->rules[i];
        static const char *const per_names[] = {"client", "user", "workspace"};
        const char *v, *per;
        int applies = 0;
        bucket *b;
        if (i == r->nrules) { /* the per-token rule */
            applies = 1;
            per = "token";
            v = who->token;
        } else {
            if (pol_rate_applies(r->policy, i, who->cls, tool, &applies) != PL_OK)
                applies = 0;
            per = per_names[ri->per <= POL_PER_WORKSPACE ? ri->per : 0];
            v = ri->per == POL_PER_CLIENT ? who->client_id
                : ri->per == POL_PER_USER ? who->user
                                          : who->workspace;
        }
        if (!applies)
            continue;
        key_join(key, sizeof key, per, v ? v : "");
        b = lookup(r, i, key, now, 1);
        if (!b || nhit >= MAX_APPLY) {
            denied->rule_id = "table-full";
            denied->limit = ri->limit;
            denied->period_s = ri->period_s;
            denied->per = per;
            denied->retry_after_s = 1;
            return PL_ERR_LIMIT;
        }
        refill(ri, b, now);
        if (b->tokens < 1.0) {
            double wait_ms = (1.0 - b->tokens) / rate_ms(ri);
            denied->rule_id = ri->id;
            denied->limit = ri->limit;
            denied->period_s = ri->period_s;
            denied->per = per;
            denied->retry_after_s = (int)(wait_ms / 1000.0);
            if ((double)denied->retry_after_s * 1000.0 < wait_ms)
                denied->retry_after_s++; /* round up: never invite a retry that fails */
            if (denied->retry_after_s < 1)
                denied->retry_after_s = 1;
            return PL_ERR_LIMIT;
        }
        hit[nhit++] = b;
    }
    for (k = 0; k < nhit; k++)
        hit[k]->tokens -= 1.0;
    return PL_OK;
}
