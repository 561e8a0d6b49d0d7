/* fuzz/json_text/fuzz_json_text.c — core/json_text.c must give jansson's answers: for every
 * input and flag set, core_json_loadb returns what json_loadb returns (the same tree — compared
 * through its compact dump and json_equal — or NULL with the same error); and for every tree
 * jansson accepts, core_json_compact / core_json_compact_sorted write json_dumps's bytes (with
 * and without a skipped top-level member), and core_json_escape_quotes writes the inside of
 * json_dumps's string. Any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"

static const size_t flag_sets[] = {0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, JSON_DECODE_ANY};

static void check_dumps(const json_t *v)
{
    char *a = core_json_compact(v, NULL), *b = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        abort();
    free(a);
    free(b);
    a = core_json_compact_sorted(v, NULL, NULL);
    b = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        abort();
    free(a);
    free(b);
    if (json_is_object(v) && json_object_size(v)) {
        const char *skip = json_object_iter_key(json_object_iter((json_t *)v));
        json_t *copy = json_deep_copy(v);
        json_object_del(copy, skip);
        a = core_json_compact_sorted(v, skip, NULL);
        b = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
            abort();
        free(a);
        free(b);
        json_decref(copy);
    }
}

static void check_escape(const uint8_t *data, size_t size)
{
    char *out = malloc(2 * size + 1), *ref;
    size_t k = core_json_escape_quotes(out, (const char *)data, size), i;
    int ctl = 0;
    json_t *s;
    for (i = 0; i < size; i++)
        ctl |= data[i] < 0x20;
    if (ctl != (k == SIZE_MAX))
        abort();
    s = json_stringn_nocheck((const char *)data, size);
    ref = ctl ? NULL : json_dumps(s, JSON_ENCODE_ANY);
    /* jansson refuses invalid UTF-8 (NULL); the escaper copies bytes as they are */
    if (ref && (strlen(ref) != k + 2 || memcmp(ref + 1, out, k) != 0))
        abort();
    free(ref);
    json_decref(s);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
        json_error_t e1, e2;
        json_t *mine = core_json_loadb((const char *)data, size, flag_sets[f], &e1);
        json_t *ref = json_loadb((const char *)data, size, flag_sets[f], &e2);
        if ((mine == NULL) != (ref == NULL))
            abort();
        if (!ref) {
            if (strcmp(e1.text, e2.text) != 0 || e1.line != e2.line || e1.column != e2.column ||
                e1.position != e2.position)
                abort();
            continue;
        }
        char *a = json_dumps(mine, JSON_COMPACT | JSON_ENCODE_ANY);
        char *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!a || !b || strcmp(a, b) != 0 || !json_equal(mine, ref))
            abort();
        free(a);
        free(b);
        check_dumps(ref);
        json_decref(mine);
        json_decref(ref);
    }
    check_escape(data, size);
    return 0;
}
