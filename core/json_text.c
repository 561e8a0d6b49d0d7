/* core/json_text.c — see json_text.h. */
#include "json_text.h"
#include "buf.h"

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

/* Byte classes for put_string: 0 written as it is, 1 escaped, 2 the first byte of a UTF-8
 * sequence (checked as jansson's utf8_iterate checks it). */
static const unsigned char cls[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

/* The length of the UTF-8 sequence at s (at most n bytes) when jansson's utf8_iterate accepts
 * it (no overlong form, no surrogate, at most U+10FFFF), else 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t k, j;
    uint32_t cp;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        k = 1;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        k = 2;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        k = 3;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (k >= n)
        return 0;
    for (j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k + 1;
}

/* 1 when none of the 8 bytes at s needs a look (class 0 in cls): no control character, no
 * '"', no '\\', no byte >= 0x80 (SWAR: a byte below 0x20 or equal to '"' or '\\' borrows
 * into its high bit; a false alarm only sends the bytes to the byte-wise path). */
static int plain8(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t x, q, b;
    memcpy(&x, s, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & high) == 0;
}

/* 1 when none of the 8 bytes at s is a control character, '"' or '\\' (bytes >= 0x80 pass). */
static int plain8_ascii_or_high(const unsigned char *s)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t x, q, b;
    memcpy(&x, s, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return ((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high) == 0;
}

size_t core_json_escape_quotes(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, w = 0;
    while (i < n) {
        size_t stop;
        if (n - i >= 8 && plain8_ascii_or_high(s + i)) {
            memcpy(dst + w, s + i, 8);
            i += 8;
            w += 8;
            continue;
        }
        for (stop = n - i > 8 ? i + 8 : n; i < stop; i++) { /* this word byte by byte */
            if (s[i] < 0x20)
                return SIZE_MAX;
            if (s[i] == '"' || s[i] == '\\')
                dst[w++] = '\\';
            dst[w++] = (char)s[i];
        }
    }
    return w;
}

/* jansson dump.c dump_string without flags: the escapes it writes. 0 when s is not UTF-8
 * that jansson would dump (the caller then leaves the whole value to jansson). Plain bytes
 * are copied in runs found through the class table. */
static int put_string(out *o, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run, q;
    char *w;
    if (!grow(o, n + 2))
        return 1; /* o->failed */
    /* Most strings need no escape: copied as they are scanned (eight bytes at a time where
     * none needs a look; UTF-8 checked on the way) into the n + 2 bytes just reserved. */
    w = o->p + o->len;
    *w++ = '"';
    while (i < n) {
        size_t stop;
        if (n - i >= 8 && plain8(s + i)) {
            memcpy(w, s + i, 8);
            w += 8;
            i += 8;
            continue;
        }
        for (stop = n - i > 8 ? i + 8 : n; i < stop && cls[s[i]] == 0; i++)
            *w++ = (char)s[i];
        if (i == stop)
            continue;
        if (cls[s[i]] == 1)
            break; /* an escape: the rest below, growing as it goes */
        if ((q = utf8_seq(s + i, n - i)) == 0)
            return 0;
        memcpy(w, s + i, q);
        w += q;
        i += q;
    }
    o->len = (size_t)(w - o->p);
    if (i == n) {
        o->p[o->len++] = '"';
        return 1;
    }
    run = i;
    while (i < n) {
        unsigned char c;
        if (n - i >= 8 && plain8(s + i)) {
            i += 8;
            continue;
        }
        c = s[i];
        if (cls[c] == 0) {
            i++;
            continue;
        }
        if (cls[c] == 2) {
            if ((q = utf8_seq(s + i, n - i)) == 0)
                return 0;
            i += q;
            continue;
        }
        put(o, str + run, i - run);
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
        i++;
    }
    put(o, str + run, n - run);
    put1(o, '"');
    return 1;
}

/* v in decimal (JSON_INTEGER_FORMAT, "%lld"). */
static void put_int(out *o, json_int_t v)
{
    char t[CORE_DEC_I64_MAX];
    put(o, t, core_dec_i64((int64_t)v, t));
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

typedef struct member {
    const char *key;
    size_t len;
    const json_t *value;
} member;

/* jansson dump.c compare_keys: bytes, then length. */
static int member_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int put_value(out *o, const json_t *v, int depth, int sorted, const char *skip);

/* An object's members: in insertion order, or (JSON_SORT_KEYS) sorted as jansson sorts them;
 * skip (top level only, may be NULL) names a member left out. */
static int put_object(out *o, const json_t *v, int depth, int sorted, const char *skip)
{
    member small[32], *m = small;
    size_t n = 0, i, cap = sizeof small / sizeof small[0];
    int ok = 1, first = 1;
    void *it;
    put1(o, '{');
    if (!sorted) {
        for (it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
            const char *k = json_object_iter_key(it);
            size_t kl = json_object_iter_key_len(it);
            if (skip && strlen(skip) == kl && memcmp(skip, k, kl) == 0)
                continue;
            if (!first)
                put1(o, ',');
            first = 0;
            if (!put_string(o, k, kl))
                return 0;
            put1(o, ':');
            if (!put_value(o, json_object_iter_value(it), depth + 1, 0, NULL))
                return 0;
        }
        put1(o, '}');
        return 1;
    }
    if (json_object_size(v) > cap) {
        cap = json_object_size(v);
        if (!(m = malloc(cap * sizeof *m))) {
            o->failed = 1;
            return 1;
        }
    }
    for (it = json_object_iter((json_t *)v); it && n < cap;
         it = json_object_iter_next((json_t *)v, it)) {
        m[n].key = json_object_iter_key(it);
        m[n].len = json_object_iter_key_len(it);
        m[n].value = json_object_iter_value(it);
        if (skip && strlen(skip) == m[n].len && memcmp(skip, m[n].key, m[n].len) == 0)
            continue;
        n++;
    }
    if (n > 1)
        qsort(m, n, sizeof *m, member_cmp);
    for (i = 0; i < n && ok; i++) {
        if (i)
            put1(o, ',');
        ok = put_string(o, m[i].key, m[i].len);
        put1(o, ':');
        ok = ok && put_value(o, m[i].value, depth + 1, 1, NULL);
    }
    put1(o, '}');
    if (m != small)
        free(m);
    return ok;
}

/* 0 when v needs jansson itself (a real, too deep, a string it would refuse). */
static int put_value(out *o, const json_t *v, int depth, int sorted, const char *skip)
{
    if (depth > MAX_DEPTH)
        return 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(o, v, depth, sorted, skip);
    case JSON_ARRAY: {
        size_t i, n = json_array_size(v);
        put1(o, '[');
        for (i = 0; i < n; i++) {
            if (i)
                put1(o, ',');
            if (!put_value(o, json_array_get(v, i), depth + 1, sorted, NULL))
                return 0;
        }
        put1(o, ']');
        return 1;
    }
    case JSON_STRING:
        return put_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        put_int(o, json_integer_value(v));
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

/* The fast path's text, or jansson's for what it leaves to jansson (skip: on a copy). */
static char *dump(const json_t *v, int sorted, const char *skip, size_t *len)
{
    out o = {0};
    char *s;
    if (len)
        *len = 0;
    if (!v)
        return NULL;
    if (put_value(&o, v, 0, sorted, skip) && !o.failed && grow(&o, 0)) {
        o.p[o.len] = '\0';
        if (len)
            *len = o.len;
        return o.p;
    }
    free(o.p);
    if (o.failed)
        return NULL; /* out of memory */
    /* Exactly jansson's answer for what the fast path leaves to it. */
    if (skip && json_is_object(v)) {
        json_t *copy = json_deep_copy(v);
        if (!copy)
            return NULL;
        json_object_del(copy, skip);
        s = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY | (sorted ? JSON_SORT_KEYS : 0));
        json_decref(copy);
    } else {
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | (sorted ? JSON_SORT_KEYS : 0));
    }
    if (s && len)
        *len = strlen(s);
    return s;
}

char *core_json_compact(const json_t *v, size_t *len)
{
    return dump(v, 0, NULL, len);
}

char *core_json_compact_sorted(const json_t *v, const char *skip, size_t *len)
{
    return dump(v, 1, skip, len);
}

/* ---- parsing: core_json_loadb ---- */

typedef struct rd {
    const unsigned char *p, *end;
    size_t flags;
} rd;

static void skip_ws(rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* A string token at r->p ('"'): its bytes in *s and *n — borrowed from the input when it has
 * no escapes, else decoded into buf (bufsz bytes) or, when longer, into *heap (malloc'd; the
 * caller frees it). 0 for anything jansson would refuse or that the fast path leaves to it
 * (\u escapes, a control character, invalid UTF-8). */
static int lex_string(rd *r, char *buf, size_t bufsz, const char **s, size_t *n, char **heap)
{
    const unsigned char *start = ++r->p, *q = start;
    int high = 0;
    size_t w = 0;
    char *d;
    *heap = NULL;
    while (r->end - q >= 8 && plain8_ascii_or_high(q)) { /* eight plain bytes at a time */
        uint64_t x;
        memcpy(&x, q, 8);
        high |= (x & 0x8080808080808080ULL) != 0;
        q += 8;
    }
    while (q < r->end && *q != '"' && *q != '\\' && *q >= 0x20) {
        high |= *q & 0x80;
        q++;
    }
    if (q >= r->end || *q < 0x20)
        return 0;
    if (*q == '"') { /* no escapes: the input's bytes */
        if (high && !utf8_ok(start, (size_t)(q - start)))
            return 0;
        *s = (const char *)start;
        *n = (size_t)(q - start);
        r->p = q + 1;
        return 1;
    }
    { /* the decoded text is never longer than the raw one */
        const unsigned char *e = q;
        while (e < r->end && *e != '"') {
            if (*e == '\\' && r->end - e < 2)
                return 0;
            e += *e == '\\' ? 2 : 1;
        }
        if (e >= r->end)
            return 0;
        if ((size_t)(e - start) > bufsz) {
            if (!(*heap = malloc((size_t)(e - start))))
                return 0;
            buf = *heap;
        }
    }
    d = buf;
    memcpy(d, start, (size_t)(q - start));
    w = (size_t)(q - start);
    while (q < r->end && *q != '"') {
        unsigned char c = *q++;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *k;
            if (q >= r->end || *q == '\0' || !(k = strchr(from, *q)))
                return 0; /* \u (and anything invalid): jansson */
            c = (unsigned char)to[k - from];
            q++;
        }
        high |= c & 0x80;
        d[w++] = (char)c;
    }
    if (q >= r->end || (high && !utf8_ok((const unsigned char *)d, w)))
        return 0;
    *s = d;
    *n = w;
    r->p = q + 1;
    return 1;
}

static json_t *parse_value(rd *r, int depth);

static json_t *parse_object(rd *r, int depth)
{
    json_t *o = json_object(), *v;
    char kbuf[256], *kheap = NULL;
    const char *k;
    size_t kn, n;
    if (!o)
        return NULL;
    r->p++; /* '{' */
    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        if (r->p >= r->end || *r->p != '"' || !lex_string(r, kbuf, sizeof kbuf, &k, &kn, &kheap))
            goto fail;
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':')
            goto fail;
        r->p++;
        /* A duplicate key is jansson's error (JSON_REJECT_DUPLICATES) or its replacement:
         * seen as a set that does not grow the object (which is then dropped). */
        n = json_object_size(o);
        if (!(v = parse_value(r, depth + 1)) || json_object_setn_new_nocheck(o, k, kn, v) != 0 ||
            json_object_size(o) == n)
            goto fail;
        free(kheap);
        kheap = NULL;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return o;
        }
        goto fail;
    }
fail:
    free(kheap);
    json_decref(o);
    return NULL;
}

static json_t *parse_array(rd *r, int depth)
{
    json_t *a = json_array(), *v;
    if (!a)
        return NULL;
    r->p++; /* '[' */
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        if (!(v = parse_value(r, depth + 1)) || json_array_append_new(a, v) != 0)
            goto fail;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        goto fail;
    }
fail:
    json_decref(a);
    return NULL;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* An integer as jansson's lexer takes it: -?(0|[1-9][0-9]*) not followed by '.', 'e' or 'E'
 * (reals, and integers of more than 18 digits, are left to jansson). */
static json_t *parse_number(rd *r)
{
    const unsigned char *q = r->p;
    int neg = 0;
    uint64_t x = 0;
    size_t digits = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    if (q >= r->end || *q < '0' || *q > '9')
        return NULL;
    if (*q == '0' && q + 1 < r->end && q[1] >= '0' && q[1] <= '9')
        return NULL;
    while (q < r->end && *q >= '0' && *q <= '9') {
        x = x * 10 + (uint64_t)(*q - '0');
        q++;
        if (++digits > 18)
            return NULL;
    }
    if (q < r->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return NULL;
    r->p = q;
    return json_integer(neg ? -(json_int_t)x : (json_int_t)x);
}

static json_t *parse_literal(rd *r, const char *word, size_t n, json_t *v)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0 ||
        (r->p + n < r->end && is_alpha(r->p[n])))
        return NULL;
    r->p += n;
    return v;
}

static json_t *parse_value(rd *r, int depth)
{
    char sbuf[256];
    const char *s;
    size_t n;
    skip_ws(r);
    if (r->p >= r->end || depth > MAX_DEPTH)
        return NULL;
    switch (*r->p) {
    case '{':
        return parse_object(r, depth);
    case '[':
        return parse_array(r, depth);
    case '"': {
        char *heap = NULL;
        json_t *v = NULL;
        if (lex_string(r, sbuf, sizeof sbuf, &s, &n, &heap))
            v = json_stringn_nocheck(s, n);
        free(heap);
        return v;
    }
    case 't':
        return parse_literal(r, "true", 4, json_true());
    case 'f':
        return parse_literal(r, "false", 5, json_false());
    case 'n':
        return parse_literal(r, "null", 4, json_null());
    default:
        return parse_number(r);
    }
}

json_t *core_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    rd r = {(const unsigned char *)buf, NULL, flags};
    json_t *v = NULL;
    if (buf && !(flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY))) {
        r.end = r.p + len;
        skip_ws(&r);
        if (r.p < r.end && ((flags & JSON_DECODE_ANY) || *r.p == '{' || *r.p == '['))
            v = parse_value(&r, 1);
        skip_ws(&r);
        if (v && r.p != r.end) {
            json_decref(v);
            v = NULL;
        }
    }
    if (!v) /* an error, or what the fast path leaves to jansson: jansson's own answer */
        return json_loadb(buf, len, flags, error);
    if (error) {
        memset(error, 0, sizeof *error);
        error->line = -1;
        error->column = -1;
        snprintf(error->source, sizeof error->source, "%s", "<buffer>");
        error->position = (int)len; /* jansson: the bytes read, the whole input on success */
    }
    return v;
}
