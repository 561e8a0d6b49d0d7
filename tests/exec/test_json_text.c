/* tests/exec/test_json_text.c — core_json_compact (core/json_text.h), which the execution
 * layer stores records with (ex_txn_put_json) and postly-mcp sends tool results with, must
 * write exactly json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)'s bytes: differential over edge
 * cases and random trees, and a put/get round trip through a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json_text.h"
#include "tests/exec/helpers.h"
#include "tests/common/json_random.h"

static void same(const json_t *v)
{
    size_t len = 0;
    char *mine = core_json_compact(v, &len);
    char *ref = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!ref) {
        assert_null(mine);
        return;
    }
    assert_non_null(mine);
    if (strcmp(mine, ref) != 0)
        fail_msg("core_json_compact: %s\n          json_dumps: %s", mine, ref);
    assert_int_equal(len, strlen(ref));
    free(mine);
    free(ref);
}

/* core_json_compact_sorted against json_dumps(SORT_KEYS) of a copy without skip. */
static void same_sorted(const json_t *v, const char *skip)
{
    size_t len = 0;
    char *mine = core_json_compact_sorted(v, skip, &len);
    /* a copy only to delete skip (json_deep_copy keeps a key only up to a NUL in it) */
    json_t *copy = skip ? json_deep_copy(v) : json_incref((json_t *)v);
    if (skip && json_is_object(copy))
        json_object_del(copy, skip);
    char *ref = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(copy);
    if (!ref) {
        assert_null(mine);
        return;
    }
    assert_non_null(mine);
    if (strcmp(mine, ref) != 0)
        fail_msg("core_json_compact_sorted(skip %s): %s\n          json_dumps: %s",
                 skip ? skip : "-", mine, ref);
    assert_int_equal(len, strlen(ref));
    free(mine);
    free(ref);
}

static void test_edge_cases(void **state)
{
    (void)state;
    char ctl[64];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++)
        ctl[n++] = (char)c;
    ctl[n] = '\0';
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:{}, s:I, s:I, s:b, s:b, s:n}", "ctl", ctl,
                  "quote", "a\"b\\c/d", "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                  "empty", "", "k\"ey\n", "v", "arr", "obj", "min", (json_int_t)INT64_MIN, "max",
                  (json_int_t)INT64_MAX, "t", 1, "f", 0, "null");
    assert_non_null(o);
    same(o);
    same_sorted(o, NULL);
    same_sorted(o, "quote");
    /* keys that sort by bytes and length: a prefix first, a NUL inside, UTF-8 after ASCII */
    json_t *keys = json_object();
    static const char *const names[] = {"b", "a", "ab", "a\x7f", "\xc3\xa9", "A", "", "aa", "a b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_set_new(keys, names[i], json_integer((json_int_t)i));
    json_object_set_new(keys, "nested",
                        json_pack("{s:i, s:[{s:n, s:n}], s:i}", "z", 1, "y", "q", "p", "a", 2));
    same(keys);
    same_sorted(keys, NULL);
    same_sorted(keys, "a");
    same_sorted(keys, "nested");
    json_t *nul = json_object(); /* a NUL inside keys (only json_object_setn makes them) */
    json_object_setn_new(nul, "a\0c", 3, json_true());
    json_object_set_new(nul, "a", json_integer(1));
    json_object_setn_new(nul, "a\0", 2, json_false());
    same(nul);
    same_sorted(nul, NULL);
    json_decref(nul);
    json_t *many = json_object(); /* more members than the sort's stack array */
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "m%d", (i * 37) % 100);
        json_object_set_new(many, k, json_integer(i));
    }
    same_sorted(many, NULL);
    same_sorted(many, "m5");
    json_decref(many);
    json_decref(keys);
    json_object_set_new(o, "nul", json_stringn("a\0b", 3)); /* embedded NUL: \u0000 */
    json_object_set_new(o, "real", json_real(0.1));         /* reals: jansson's own text */
    json_object_set_new(o, "real2", json_real(1e300));
    json_object_set_new(o, "real3", json_real(-2.0));
    same(o);
    same_sorted(o, NULL); /* reals: jansson's own text, on a copy without the skipped key */
    same_sorted(o, "real");
    same_sorted(o, "ctl");
    /* Scalars at the top, as JSON_ENCODE_ANY. */
    json_t *scalars[] = {json_integer(-7), json_string("x\ty"), json_true(), json_null(),
                         json_real(3.25)};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        same(scalars[i]);
        same_sorted(scalars[i], "x");
        json_decref(scalars[i]);
    }
    /* Deeper than the fast path's limit: jansson's answer, the same bytes. */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 100; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    same(deep);
    same_sorted(deep, NULL);
    json_decref(deep);
    /* Invalid UTF-8 (only json_stringn_nocheck makes it): both refuse. */
    json_t *bad = json_pack("{s:o}", "s", json_stringn_nocheck("\xff\xfe", 2));
    assert_null(core_json_compact(bad, NULL));
    json_decref(bad);
    json_decref(o);
}

/* core_json_escape_quotes: the inside of json_dumps's string for texts without control
 * characters, SIZE_MAX for the others. */
static void test_escape_quotes(void **state)
{
    (void)state;
    static const char *const pieces[] = {"a",    "\"", "\\", "/",        " ",    "\xc3\xa9",
                                         "\x7f", "{}", "\n", "abcdefgh", "\x01", "\xf0\x9f\x98\x80",
                                         "\x1f"};
    uint64_t seed = 0x853c49e6748fea9bULL;
    size_t clean = 0;
    for (int i = 0; i < 20000; i++) {
        char str[256], out[512 + 1];
        size_t n = 0;
        for (unsigned k = (unsigned)(tj_rnd(&seed) % 40); k; k--) {
            const char *p = pieces[tj_rnd(&seed) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (n + pl >= sizeof str)
                break;
            memcpy(str + n, p, pl);
            n += pl;
        }
        str[n] = '\0';
        size_t k = core_json_escape_quotes(out, str, n);
        int has_ctl = 0;
        for (size_t j = 0; j < n; j++)
            has_ctl |= (unsigned char)str[j] < 0x20;
        if (has_ctl) {
            assert_true(k == SIZE_MAX);
            continue;
        }
        clean++;
        json_t *js = json_string(str);
        char *ref = json_dumps(js, JSON_ENCODE_ANY);
        assert_non_null(ref);
        assert_int_equal(k + 2, strlen(ref));
        assert_memory_equal(out, ref + 1, k);
        free(ref);
        json_decref(js);
    }
    assert_true(clean > 1000);
}

static void test_random_trees(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 3000; i++) {
        json_t *v = tj_random_value(&seed, 0);
        same(v);
        same_sorted(v, NULL);
        same_sorted(v, "k7\"");
        /* a member of the top level left out, when there is one */
        if (json_is_object(v) && json_object_size(v))
            same_sorted(v, json_object_iter_key(json_object_iter(v)));
        json_decref(v);
    }
}

static void test_store_round_trip(void **state)
{
    (void)state;
    th_env e;
    th_env_open(&e);
    json_t *v = json_pack("{s:s, s:[i,s], s:{s:n}}", "text", "line\none \"q\" \xe2\x82\xac", "a", 1,
                          "b", "c", "d", "e");
    ex_txn t = {0};
    MDB_val raw;
    assert_int_equal(ex_txn_begin(e.st, 1, &t), PL_OK);
    assert_int_equal(ex_txn_put_json(&t, EX_DB_META, "json_text_test", v), PL_OK);
    assert_int_equal(ex_txn_commit(&t), PL_OK);
    assert_int_equal(ex_txn_begin(e.st, 0, &t), PL_OK);
    assert_int_equal(ex_txn_get_raw(&t, EX_DB_META, "json_text_test", &raw), PL_OK);
    char *ref = json_dumps(v, JSON_COMPACT);
    assert_int_equal(raw.mv_size, strlen(ref));
    assert_memory_equal(raw.mv_data, ref, raw.mv_size);
    json_t *back = NULL;
    assert_int_equal(ex_txn_get_json(&t, EX_DB_META, "json_text_test", &back), PL_OK);
    assert_true(json_equal(back, v));
    ex_txn_abort(&t);
    free(ref);
    json_decref(back);
    json_decref(v);
    th_env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_random_trees),
        cmocka_unit_test(test_escape_quotes),
        cmocka_unit_test(test_store_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
