/*
 * bench/policy/bench_policy.c — the policy decision against a baseline in the same run.
 *
 * Both loops walk the same array of 4096 pseudo-random queries (token mask, workspace,
 * class, tool) over the shipped policy and read the same table rows (tool requirement,
 * workspace ceiling, class mask); the baseline only XORs them, the other calls pol_decide().
 * The difference is the cost of the decision itself. Best of 7 rounds each, interleaved, so
 * that a noisy neighbour hurts both sides alike. Budget (ARCHITECTURE.md §11): <= 20 ns.
 * Also: pol_workspace_index() over the shipped policy and over 100 000 named workspaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy_int.h"

#define QUERIES 4096
#define ITERS   20000000u
#define ROUNDS  7

typedef struct query {
    uint64_t token;
    uint32_t ws, cls, tool;
} query;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double run_baseline(const pol_compiled *p, const query *q, uint64_t *sink)
{
    uint64_t acc = 0;
    double t0 = now_ns();
    for (uint32_t i = 0; i < ITERS; i++) {
        const query *x = &q[i & (QUERIES - 1)];
        acc ^= x->token ^ p->tools[x->tool].all ^ p->tools[x->tool].any ^ p->ws_ceiling[x->ws] ^
               p->forbid[x->cls];
        __asm__ volatile("" : "+r"(acc));
    }
    double t1 = now_ns();
    *sink ^= acc;
    return (t1 - t0) / ITERS;
}

static double run_decide(const pol_compiled *p, const query *q, uint64_t *sink)
{
    uint64_t acc = 0;
    pol_decision d;
    double t0 = now_ns();
    for (uint32_t i = 0; i < ITERS; i++) {
        const query *x = &q[i & (QUERIES - 1)];
        pol_decide(p, x->token, x->ws, x->cls, x->tool, &d);
        acc ^= (uint64_t)d.verdict ^ d.help ^ d.rule;
        __asm__ volatile("" : "+r"(acc));
    }
    double t1 = now_ns();
    *sink ^= acc;
    return (t1 - t0) / ITERS;
}

static double run_lookup(const pol_compiled *p, char (*ids)[32], uint32_t n, uint64_t *sink)
{
    uint64_t acc = 0;
    const uint32_t iters = 2000000;
    double t0 = now_ns();
    for (uint32_t i = 0; i < iters; i++) {
        uint32_t w;
        const char *id = ids[i % n];
        pol_workspace_index(p, id, strlen(id), &w, NULL);
        acc += w;
        __asm__ volatile("" : "+r"(acc));
    }
    double t1 = now_ns();
    *sink ^= acc;
    return (t1 - t0) / iters;
}

static pol_compiled *load_or_die(const char *name, const char *buf, size_t len, const char *path)
{
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    pl_rc rc = path ? pol_load_file(path, 0, &d, &p) : pol_load_buffer(name, buf, len, 0, &d, &p);
    if (rc != PL_OK) {
        pol_diags_print(&d, stderr);
        exit(2);
    }
    pol_diags_free(&d);
    return p;
}

int main(void)
{
    uint64_t seed = 0x2545f4914f6cdd1dull, sink = 0;
    pol_compiled *p = load_or_die(NULL, NULL, 0, POSTLY_SOURCE_DIR "/policy/default.policy");
    static query q[QUERIES];
    uint32_t verdicts[4] = {0};
    for (int i = 0; i < QUERIES; i++) {
        const pol_bundle_info *b;
        pol_bundle_get((unsigned)(rng(&seed) % POL_BUNDLE_COUNT), &b);
        q[i].token = (rng(&seed) & 3) ? b->mask : (rng(&seed) & POL_MASK_ALL);
        q[i].ws = (uint32_t)(rng(&seed) % pol_workspace_count(p));
        q[i].cls = (uint32_t)(rng(&seed) % POL_CLASS_COUNT);
        q[i].tool = (uint32_t)(rng(&seed) % pol_tool_count(p));
        pol_decision d;
        pol_decide(p, q[i].token, q[i].ws, q[i].cls, q[i].tool, &d);
        verdicts[d.verdict]++;
    }
    double base = 1e18, dec = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        double b = run_baseline(p, q, &sink), d = run_decide(p, q, &sink);
        base = b < base ? b : base;
        dec = d < dec ? d : dec;
    }
    double cost = dec - base;
    printf("policy decision (%u decisions x %d rounds, best round; query mix: %u allow, "
           "%u deny_scope, %u deny_policy, %u needs_approval of %d)\n",
           ITERS, ROUNDS, verdicts[0], verdicts[1], verdicts[2], verdicts[3], QUERIES);
    printf("  baseline loop (same loads)  %7.2f ns/iter\n", base);
    printf("  pol_decide loop             %7.2f ns/decision  %.1f M decisions/s\n", dec, 1e3 / dec);
    printf("  decision cost               %7.2f ns  (loop ratio %.2f x baseline)\n", cost,
           dec / base);
    printf("  budget <= 20 ns/decision    %s\n", dec <= 20.0 ? "within" : "OVER");

    /* workspace lookup: the shipped policy, and 100 000 named ceilings */
    static char ids[1024][32];
    for (int i = 0; i < 1024; i++)
        snprintf(ids[i], sizeof ids[i], "ws-%llu", (unsigned long long)(rng(&seed) % 200000));
    size_t cap = 100000 * 64 + 64, len = 0;
    char *text = malloc(cap);
    if (!text)
        return 2;
    for (int i = 0; i < 100000; i++)
        len += (size_t)snprintf(text + len, cap - len, "ceiling c%d workspace=ws-%d scopes=*\n", i,
                                i * 2);
    pol_compiled *big = load_or_die("big", text, len, NULL);
    double small_ns = 1e18, big_ns = 1e18;
    for (int r = 0; r < 3; r++) {
        double a = run_lookup(p, ids, 1024, &sink), b = run_lookup(big, ids, 1024, &sink);
        small_ns = a < small_ns ? a : small_ns;
        big_ns = b < big_ns ? b : big_ns;
    }
    printf("workspace lookup (binary search, no allocation)\n");
    printf("  shipped policy (%u workspaces)      %7.2f ns\n", pol_workspace_count(p), small_ns);
    printf("  100000 named ceilings (%u)       %7.2f ns  (%.2f x)\n", pol_workspace_count(big),
           big_ns, big_ns / small_ns);
    free(text);
    pol_compiled_free(big);
    pol_compiled_free(p);
    return sink == 42 ? 1 : 0; /* keep the sink alive */
}
