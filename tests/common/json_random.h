/* tests/common/json_random.h — pseudo-random JSON values for differential tests of
 * core/json_text.c against jansson (tests/core/test_json_parse.c, tests/exec/test_json_text.c):
 * integers over the whole range, strings built from pieces that exercise every escaping and
 * UTF-8 path (quotes, backslashes, control characters, 2-, 3- and 4-byte sequences, DEL),
 * true/false/null, reals (left to jansson), objects with keys that need escaping, arrays;
 * nested up to depth 6. Deterministic for a seed (xorshift64). Header-only. */
#ifndef POSTLY_TESTS_COMMON_JSON_RANDOM_H
#define POSTLY_TESTS_COMMON_JSON_RANDOM_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

static inline uint64_t tj_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static inline json_t *tj_random_value(uint64_t *s, int depth)
{
    static const char *const pieces[] = {"a",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\x01",
                                         "\x1f",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         " ",
                                         "\x7f",
                                         "{}",
                                         "true",
                                         "tools/call"};
    unsigned kind = (unsigned)(tj_rnd(s) % (depth > 5 ? 5 : 8));
    char str[128];
    size_t n = 0;
    switch (kind) {
    case 0:
        return json_integer((json_int_t)tj_rnd(s) >> (tj_rnd(s) % 64));
    case 1:
    case 2:
        for (unsigned k = (unsigned)(tj_rnd(s) % 12); k; k--) {
            const char *p = pieces[tj_rnd(s) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (n + pl >= sizeof str)
                break;
            memcpy(str + n, p, pl);
            n += pl;
        }
        str[n] = '\0';
        return json_string(str);
    case 3:
        return tj_rnd(s) & 1 ? json_true() : (tj_rnd(s) & 1 ? json_false() : json_null());
    case 4:
        return tj_rnd(s) & 3 ? json_integer(-(json_int_t)(tj_rnd(s) % 1000)) : json_real(0.5);
    case 5:
    case 6: {
        json_t *o = json_object();
        for (unsigned k = (unsigned)(tj_rnd(s) % 6); k; k--) {
            char key[16];
            snprintf(key, sizeof key, "k%u%s%s", (unsigned)(tj_rnd(s) % 50), k & 2 ? "\"" : "",
                     k & 1 ? "\t" : "");
            json_object_set_new(o, key, tj_random_value(s, depth + 1));
        }
        return o;
    }
    default: {
        json_t *a = json_array();
        for (unsigned k = (unsigned)(tj_rnd(s) % 6); k; k--)
            json_array_append_new(a, tj_random_value(s, depth + 1));
        return a;
    }
    }
}

#endif
