/*
 * fuzz/cursor/fuzz_cursor.c — libFuzzer target for pagination cursors (ex_cursor_decode).
 * Cursors come from clients, so every byte is hostile. One store (in a mkdtemp directory,
 * removed at exit) provides the secret. Input byte 0 picks the mode:
 *   even: the rest is cursor text, decoded for a fixed listing/workspace/filter hash; it must
 *         be refused (nobody can forge the HMAC) unless it is byte-for-byte a cursor that
 *         ex_cursor_encode made;
 *   odd:  the rest is "<listing>\0<ws>\0<last id>\0<8 filter bytes>"; a cursor is encoded from
 *         it and decoded again: with the same binding it must give the same last id back,
 *         with another listing, workspace or filter hash it must be refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/cursor.h"
#include "exec/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static ex_store *store;
static char dir[64];

static void cleanup(void)
{
    char cmd[128];
    ex_store_free(store);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_cursor: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/fuzz_cursor.XXXXXX");
    if (!mkdtemp(dir) || ex_store_open(dir, (size_t)64 << 20, EX_STORE_NOSYNC, &store) != PL_OK)
        abort();
    atexit(cleanup);
    return 0;
}

static const uint8_t FH[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void decode_text(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    char last[EX_ID_MAX + 64];
    ex_err err;
    if (!text)
        return;
    memset(&err, 0, sizeof err);
    pl_rc rc = ex_cursor_decode(store, "posts", "wsp_fuzz", FH, text, last, sizeof last, &err);
    if (rc == PL_OK) {
        /* only a genuine cursor decodes: re-encoding what it said must give the same text */
        char again[EX_CURSOR_MAX + 1];
        if (ex_cursor_encode(store, "posts", "wsp_fuzz", FH, last, again, sizeof again) != PL_OK ||
            strcmp(again, text) != 0)
            abort();
    } else if (rc != PL_ERR_INVALID || strncmp(err.msg, "cursor", 6) != 0) {
        abort(); /* a refusal is PL_ERR_INVALID naming the cursor */
    }
    free(text);
}

static void round_trip(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size, *parts[3];
    for (int i = 0; i < 3; i++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        if (!z)
            return;
        parts[i] = p;
        p = z + 1;
    }
    if (end - p < 8)
        return;
    /* '|' separates the payload's fields: callers pass fixed listing names and workspace ids
     * that cannot hold it (ex_ws_valid); the last id, the final field, may. */
    if (strchr(parts[0], '|') || strchr(parts[1], '|'))
        return;
    uint8_t fh[8], other[8];
    memcpy(fh, p, 8);
    memcpy(other, fh, 8);
    other[0] ^= 0x80;
    char cur[EX_CURSOR_MAX + 1], last[EX_CURSOR_MAX + 1];
    ex_err err;
    memset(&err, 0, sizeof err);
    if (ex_cursor_encode(store, parts[0], parts[1], fh, parts[2], cur, sizeof cur) != PL_OK)
        return;
    if (ex_cursor_decode(store, parts[0], parts[1], fh, cur, last, sizeof last, &err) != PL_OK ||
        strcmp(last, parts[2]) != 0)
        abort(); /* what was encoded must decode, unchanged */
    if (ex_cursor_decode(store, parts[0], parts[1], other, cur, last, sizeof last, &err) == PL_OK)
        abort(); /* other filters */
    if (strcmp(parts[1], "wsp_other") != 0 &&
        ex_cursor_decode(store, parts[0], "wsp_other", fh, cur, last, sizeof last, &err) == PL_OK)
        abort(); /* another workspace */
    if (strcmp(parts[0], "campaigns") != 0 &&
        ex_cursor_decode(store, "campaigns", parts[1], fh, cur, last, sizeof last, &err) == PL_OK)
        abort(); /* another listing */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        round_trip(data + 1, size - 1);
    else
        decode_text(data + 1, size - 1);
    return 0;
}
