/* core/json_text.c — see json_text.h. */
#include "json_text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct out {
    char *p;
    size_t len, cap;
    int failed;
} out;

static int grow(out *o, size_t need)
{
    if (o->failed)
        return 0;
    if (o->len + need + 1 <= o->cap)
        return 1;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + need + 1) {
        if (cap > SIZE_MAX / 2) {
            o->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(o->p, cap);
    if (!p) {
        o->failed = 1;
        return 0;
    }
    o->p = p;
    o->cap = cap;
    return 1;
}

static void put(out *o, const char *s, size_t n)
{
    if (n && grow(o, n)) {
        memcpy(o->p + o->len, s, n);
        o->len += n;
    }
}

static void put1(out *o, char c)
{
    if (grow(o, 1))
        o->p[o->len++] = c;
}

/* jansson dump.c dump_string without flags: the escapes it writes. */
static void put_string(out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    put1(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t el = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        put(o, e, el);
    }
    put(o, s + run, n - run);
    put1(o, '"');
}

/* 1 when s (n bytes) is well-formed UTF-8 without surrogates or overlongs (what jansson's
 * utf8_iterate accepts); jansson refuses to dump anything else. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* 0 when v needs jansson itself (a real, too deep, a string it would refuse). */
static int put_value(out *o, const json_t *v, int depth)
{
    char num[32];
    int n;
    if (depth > MAX_DEPTH)
        return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        put1(o, '{');
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first)
                put1(o, ',');
            first = 0;
            size_t kl = strlen(k);
            if (!utf8_ok((const unsigned char *)k, kl))
                return 0;
            put_string(o, k, kl);
            put1(o, ':');
            if (!put_value(o, x, depth + 1))
                return 0;
        }
        put1(o, '}');
        return 1;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        put1(o, '[');
        json_array_foreach((json_t *)v, i, x)
        {
            if (i)
                put1(o, ',');
            if (!put_value(o, x, depth + 1))
                return 0;
        }
        put1(o, ']');
        return 1;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t sl = json_string_length(v);
        if (!utf8_ok((const unsigned char *)s, sl))
            return 0;
        put_string(o, s, sl);
        return 1;
    }
    case JSON_INTEGER:
        n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put(o, num, (size_t)n);
        return 1;
    case JSON_TRUE:
        put(o, "true", 4);
        return 1;
    case JSON_FALSE:
        put(o, "false", 5);
        return 1;
    case JSON_NULL:
        put(o, "null", 4);
        return 1;
    case JSON_REAL:
    default:
        return 0;
    }
}

char *core_json_compact(const json_t *v, size_t *len)
{
    out o = {0};
    if (len)
        *len = 0;
    if (!v)
        return NULL;
    if (!put_value(&o, v, 0) || o.failed) {
        free(o.p);
        /* Exactly jansson's answer for what the fast path leaves to it. */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s && len)
            *len = strlen(s);
        return s;
    }
    if (!grow(&o, 0)) {
        free(o.p);
        return NULL;
    }
    o.p[o.len] = '\0';
    if (len)
        *len = o.len;
    return o.p;
}
