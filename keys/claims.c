/*
 * keys/claims.c — the strict payload reader (see keys/claims_int.h).
 */
#include <string.h>

#include "keys/claims_int.h"

static const char *const claim_names[KEY_C__COUNT] = {
    [KEY_C_ISS] = "iss",     [KEY_C_SUB] = "sub",
    [KEY_C_AUD] = "aud",     [KEY_C_CLIENT_ID] = "client_id",
    [KEY_C_SCOPE] = "scope", [KEY_C_WS] = "ws",
    [KEY_C_GID] = "gid",     [KEY_C_CLS] = "cls",
    [KEY_C_IAT] = "iat",     [KEY_C_NBF] = "nbf",
    [KEY_C_EXP] = "exp",     [KEY_C_JTI] = "jti",
};

typedef struct rd {
    const unsigned char *p, *end;
    char *scratch;
    size_t pos, size;
} rd;

static void ws(rd *r)
{
    /* RFC 8259 §2: space, tab, line feed, carriage return */
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int put(rd *r, unsigned char c)
{
    if (r->pos + 1 >= r->size)
        return 0;
    r->scratch[r->pos++] = (char)c;
    return 1;
}

static int put_cp(rd *r, uint32_t cp)
{
    if (cp < 0x80)
        return put(r, (unsigned char)cp);
    if (cp < 0x800)
        return put(r, (unsigned char)(0xc0 | (cp >> 6))) &&
               put(r, (unsigned char)(0x80 | (cp & 0x3f)));
    if (cp < 0x10000)
        return put(r, (unsigned char)(0xe0 | (cp >> 12))) &&
               put(r, (unsigned char)(0x80 | ((cp >> 6) & 0x3f))) &&
               put(r, (unsigned char)(0x80 | (cp & 0x3f)));
    return put(r, (unsigned char)(0xf0 | (cp >> 18))) &&
           put(r, (unsigned char)(0x80 | ((cp >> 12) & 0x3f))) &&
           put(r, (unsigned char)(0x80 | ((cp >> 6) & 0x3f))) &&
           put(r, (unsigned char)(0x80 | (cp & 0x3f)));
}

static int hex4(rd *r, uint32_t *out)
{
    uint32_t v = 0;
    if (r->end - r->p < 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = r->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return 0;
    }
    r->p += 4;
    *out = v;
    return 1;
}

/* One UTF-8 sequence starting at r->p (RFC 3629 §4: no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_seq(rd *r)
{
    const unsigned char *p = r->p;
    size_t left = (size_t)(r->end - p), n;
    uint32_t cp;
    unsigned char c = p[0];
    if (c < 0xc2 || c > 0xf4)
        return 0;
    n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (left < n)
        return 0;
    cp = c & (0xff >> (n + 1));
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!put(r, p[i]))
            return 0;
    r->p += n;
    return 1;
}

/* A string (r->p at the opening quote), decoded into scratch and NUL-terminated.
 * *s, *len describe it. */
static int string(rd *r, const char **s, size_t *len)
{
    size_t start = r->pos;
    r->p++; /* the quote */
    for (;;) {
        unsigned char c;
        if (r->p >= r->end)
            return 0;
        c = *r->p;
        if (c == '"') {
            r->p++;
            break;
        }
        if (c < 0x20)
            return 0; /* RFC 8259 §7: control characters must be escaped */
        if (c == '\\') {
            uint32_t cp, lo;
            if (r->end - r->p < 2)
                return 0;
            c = r->p[1];
            r->p += 2;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                if (!put(r, c))
                    return 0;
                break;
            case 'b':
                if (!put(r, '\b'))
                    return 0;
                break;
            case 'f':
                if (!put(r, '\f'))
                    return 0;
                break;
            case 'n':
                if (!put(r, '\n'))
                    return 0;
                break;
            case 'r':
                if (!put(r, '\r'))
                    return 0;
                break;
            case 't':
                if (!put(r, '\t'))
                    return 0;
                break;
            case 'u':
                if (!hex4(r, &cp))
                    return 0;
                if (cp >= 0xd800 && cp <= 0xdbff) { /* a high surrogate needs its low half */
                    if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
                        return 0;
                    r->p += 2;
                    if (!hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return 0;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return 0;
                }
                if (cp == 0 || !put_cp(r, cp))
                    return 0; /* no NUL inside a claim */
                break;
            default:
                return 0;
            }
        } else if (c < 0x80) {
            if (!put(r, c))
                return 0;
            r->p++;
        } else if (!utf8_seq(r)) {
            return 0;
        }
    }
    if (r->pos >= r->size)
        return 0;
    r->scratch[r->pos++] = '\0';
    *s = r->scratch + start;
    *len = r->pos - start - 1;
    return 1;
}

/* A number (RFC 8259 §6). *is_int and *v when it is an integer that fits int64. */
static int number(rd *r, int *is_int, int64_t *v)
{
    const unsigned char *p = r->p;
    int neg = 0, integral = 1;
    uint64_t acc = 0, limit;
    int overflow = 0;
    if (p < r->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= r->end || *p < '0' || *p > '9')
        return 0;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (*p == '0') {
        p++;
    } else {
        while (p < r->end && *p >= '0' && *p <= '9') {
            unsigned d = (unsigned)(*p - '0');
            if (acc > (limit - d) / 10)
                overflow = 1;
            else
                acc = acc * 10 + d;
            p++;
        }
    }
    if (p < r->end && *p == '.') {
        integral = 0;
        p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return 0;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        integral = 0;
        p++;
        if (p < r->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= r->end || *p < '0' || *p > '9')
            return 0;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (integral && overflow)
        return 0; /* an integer that int64 cannot hold: refused, as jansson does */
    r->p = p;
    *is_int = integral;
    if (integral)
        *v = neg ? (acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
    return 1;
}

static int literal(rd *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return 0;
    r->p += n;
    return 1;
}

typedef struct val {
    key_claim_type type;
    const char *s;
    size_t len;
    int64_t i;
} val;

static int value(rd *r, int depth, val *out, const char *want_aud, int *aud_match);

/* An array or object (r->p at the bracket). Strings inside are validated, not kept. When
 * want_aud is given (the aud array), string elements are compared with it. */
static int container(rd *r, int depth, const char *want_aud, int *aud_match)
{
    int is_obj = *r->p == '{';
    unsigned char close = is_obj ? '}' : ']';
    if (depth >= KEY_JSON_DEPTH)
        return 0;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 1;
    }
    for (;;) {
        size_t mark = r->pos;
        val v;
        if (is_obj) {
            const char *k;
            size_t kl;
            if (r->p >= r->end || *r->p != '"' || !string(r, &k, &kl))
                return 0;
            ws(r);
            if (r->p >= r->end || *r->p != ':')
                return 0;
            r->p++;
            ws(r);
        }
        if (!value(r, depth + 1, &v, NULL, NULL))
            return 0;
        if (want_aud && v.type == KEY_CT_STRING && strcmp(v.s, want_aud) == 0)
            *aud_match = 1;
        r->pos = mark; /* nothing inside a container is kept */
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 1;
        }
        return 0;
    }
}

static int value(rd *r, int depth, val *out, const char *want_aud, int *aud_match)
{
    int is_int = 0;
    memset(out, 0, sizeof *out);
    if (r->p >= r->end)
        return 0;
    switch (*r->p) {
    case '"':
        out->type = KEY_CT_STRING;
        return string(r, &out->s, &out->len);
    case '{':
        out->type = KEY_CT_OTHER;
        return container(r, depth, NULL, NULL);
    case '[':
        out->type = want_aud ? KEY_CT_ARRAY : KEY_CT_OTHER;
        return container(r, depth, want_aud, aud_match);
    case 't':
        out->type = KEY_CT_OTHER;
        return literal(r, "true");
    case 'f':
        out->type = KEY_CT_OTHER;
        return literal(r, "false");
    case 'n':
        out->type = KEY_CT_OTHER;
        return literal(r, "null");
    default:
        if (!number(r, &is_int, &out->i))
            return 0;
        out->type = is_int ? KEY_CT_INT : KEY_CT_OTHER;
        return 1;
    }
}

static int known(const char *k, size_t len)
{
    for (int i = 0; i < KEY_C__COUNT; i++)
        if (strlen(claim_names[i]) == len && memcmp(claim_names[i], k, len) == 0)
            return i;
    return -1;
}

pl_rc key_payload_parse(const char *json, size_t len, char *scratch, size_t scratch_sz,
                        const char *want_aud, key_payload *out)
{
    rd r = {(const unsigned char *)json, (const unsigned char *)json + len, scratch, 0, scratch_sz};
    memset(out, 0, sizeof *out);
    if (scratch_sz < len + 1)
        return PL_ERR_TOO_LARGE;
    ws(&r);
    if (r.p >= r.end || *r.p != '{')
        return PL_ERR_PARSE;
    r.p++;
    ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
        goto end;
    }
    for (;;) {
        const char *k;
        size_t kl, mark = r.pos;
        int id;
        val v;
        if (r.p >= r.end || *r.p != '"' || !string(&r, &k, &kl))
            return PL_ERR_PARSE;
        id = known(k, kl);
        r.pos = mark; /* the key itself is not kept */
        ws(&r);
        if (r.p >= r.end || *r.p != ':')
            return PL_ERR_PARSE;
        r.p++;
        ws(&r);
        if (id == KEY_C_AUD) {
            int match = 0;
            if (!value(&r, 1, &v, want_aud, &match))
                return PL_ERR_PARSE;
            if (v.type == KEY_CT_STRING)
                match = want_aud && strcmp(v.s, want_aud) == 0;
            if (out->c[id].type != KEY_CT_ABSENT)
                return PL_ERR_PARSE; /* aud twice */
            out->aud_match = match;
        } else if (!value(&r, 1, &v, NULL, NULL)) {
            return PL_ERR_PARSE;
        }
        if (id >= 0) {
            if (out->c[id].type != KEY_CT_ABSENT)
                return PL_ERR_PARSE; /* a known claim twice */
            out->c[id].type = v.type;
            out->c[id].s = v.s;
            out->c[id].len = v.len;
            out->c[id].i = v.i;
        } else {
            r.pos = mark; /* an unknown claim's text is not kept */
        }
        ws(&r);
        if (r.p < r.end && *r.p == ',') {
            r.p++;
            ws(&r);
            continue;
        }
        if (r.p < r.end && *r.p == '}') {
            r.p++;
            break;
        }
        return PL_ERR_PARSE;
    }
end:
    ws(&r);
    return r.p == r.end ? PL_OK : PL_ERR_PARSE;
}
