/* bench/mcp/batch_txn_cost.c — what a group-commit batch costs per write, in isolation from
 * HTTP: N writes of a 300-byte value (a draft's size) into a durable store, as
 *   (a) plain    one top-level transaction per write, committed (one durable commit each);
 *   (b) flat     all N puts in one transaction (the floor: what batching could reach without
 *                per-write atomicity);
 *   (c) child    N child transactions of one batch transaction (exec/store.h "batches":
 *                begin, put, commit each), then one commit — what postly-mcp does.
 * (b) and (c) differ only by the nested transaction: LMDB allocates a child's dirty-page list
 * (2 MiB, mostly untouched) and merges it into the parent at its commit. Prints ns per write;
 * run it under `valgrind --tool=callgrind --toggle-collect='run_*'` for instructions. Not run by
 * `make bench` (not named bench_*).
 *   batch_txn_cost [N] [DIR]   (default 2000 writes, a mkdtemp directory under /tmp) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec/store.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* a benchmark, not product code */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char value[300];

static void key_of(char *k, size_t ksz, const char *run, int i)
{
    snprintf(k, ksz, "bench|%s|%08d", run, i);
}

__attribute__((noinline)) static int run_plain(ex_store *st, int n)
{
    char k[64];
    for (int i = 0; i < n; i++) {
        ex_txn t;
        key_of(k, sizeof k, "plain", i);
        if (ex_txn_begin(st, 1, &t) != PL_OK ||
            ex_txn_put_raw(&t, EX_DB_META, k, value, sizeof value) != PL_OK ||
            ex_txn_commit(&t) != PL_OK)
            return 1;
    }
    return 0;
}

__attribute__((noinline)) static int run_flat(ex_store *st, int n)
{
    char k[64];
    ex_txn t;
    if (ex_txn_begin(st, 1, &t) != PL_OK)
        return 1;
    for (int i = 0; i < n; i++) {
        key_of(k, sizeof k, "flat", i);
        if (ex_txn_put_raw(&t, EX_DB_META, k, value, sizeof value) != PL_OK)
            return 1;
    }
    return ex_txn_commit(&t) != PL_OK || ex_store_sync(st) != PL_OK;
}

__attribute__((noinline)) static int run_child(ex_store *st, int n)
{
    char k[64];
    int needs_sync = 0;
    for (int i = 0; i < n; i++) {
        ex_txn t;
        key_of(k, sizeof k, "child", i);
        ex_store_batch_enter(st);
        if (ex_txn_begin(st, 1, &t) != PL_OK || !t.child ||
            ex_txn_put_raw(&t, EX_DB_META, k, value, sizeof value) != PL_OK ||
            ex_txn_commit(&t) != PL_OK)
            return 1;
        ex_store_batch_leave(st);
    }
    if (ex_store_batch_commit(st, &needs_sync, NULL) != PL_OK)
        return 1;
    return needs_sync && ex_store_sync(st) != PL_OK;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2000;
    char tmpl[] = "/tmp/postly-batch-cost-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    ex_store *st = NULL;
    if (n <= 0 || !dir || ex_store_open(dir, 0, EX_STORE_GROUP_COMMIT, &st) != PL_OK ||
        ex_store_batch_thread(st) != PL_OK) {
        fprintf(stderr, "batch_txn_cost: cannot open a store\n");
        return 1;
    }
    memset(value, 'x', sizeof value);
    static const struct {
        const char *name;
        int (*fn)(ex_store *, int);
    } runs[] = {{"flat (one txn)", run_flat}, {"child txns", run_child}, {"plain", run_plain}};
    printf("batch_txn_cost: %d writes of %zu bytes, %s\n", n, sizeof value, dir);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int m = runs[r].fn == run_plain && n > 200 ? 200 : n; /* plain: fsyncs, keep it short */
        double t0 = now_ns();
        if (runs[r].fn(st, m) != 0) {
            fprintf(stderr, "batch_txn_cost: %s failed\n", runs[r].name);
            return 1;
        }
        printf("  %-16s %10.0f ns/write (%d writes)\n", runs[r].name, (now_ns() - t0) / m, m);
    }
    ex_store_free(st);
    return 0;
}
