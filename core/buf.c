#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void core_buf_init(core_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static pl_rc ensure(core_buf *b, size_t extra)
{
    size_t need, ncap;
    char *np;
    if (extra > b->max || b->len > b->max - extra)
        return PL_ERR_TOO_LARGE;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return PL_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    np = realloc(b->p, ncap);
    if (!np)
        return PL_ERR_NOMEM;
    b->p = np;
    b->cap = ncap;
    return PL_OK;
}

pl_rc core_buf_add(core_buf *b, const void *data, size_t len)
{
    pl_rc rc = ensure(b, len);
    if (rc != PL_OK)
        return rc;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return PL_OK;
}

pl_rc core_buf_adds(core_buf *b, const char *s)
{
    return core_buf_add(b, s, strlen(s));
}

size_t core_dec_i64(int64_t v, char out[CORE_DEC_I64_MAX])
{
    char t[CORE_DEC_I64_MAX];
    size_t n = sizeof t;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        t[--n] = '-';
    memcpy(out, t + n, sizeof t - n);
    return sizeof t - n;
}

pl_rc core_buf_addf(core_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    pl_rc rc;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PL_ERR_INVALID;
    if ((size_t)n < sizeof small)
        return core_buf_add(b, small, (size_t)n);
    rc = ensure(b, (size_t)n);
    if (rc != PL_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PL_OK;
}

pl_rc core_buf_add_html(core_buf *b, const char *s, size_t len)
{
    /* Table of replacements; everything else is copied in runs. */
    static const char *const ent[256] = {
        ['&'] = "&amp;",  ['<'] = "&lt;",   ['>'] = "&gt;",
        ['"'] = "&quot;", ['\''] = "&#39;", ['\0'] = "",
    };
    size_t i, start = 0;
    pl_rc rc = PL_OK;
    for (i = 0; i < len && rc == PL_OK; i++) {
        const char *e = ent[(unsigned char)s[i]];
        if (!e)
            continue;
        rc = core_buf_add(b, s + start, i - start);
        if (rc == PL_OK)
            rc = core_buf_adds(b, e);
        start = i + 1;
    }
    if (rc == PL_OK)
        rc = core_buf_add(b, s + start, len - start);
    return rc;
}

pl_rc core_buf_add_urlenc(core_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    pl_rc rc = PL_OK;
    for (size_t i = 0; i < len && rc == PL_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = core_buf_add(b, &s[i], 1);
        } else {
            char t[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = core_buf_add(b, t, 3);
        }
    }
    return rc;
}

void core_buf_reset(core_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

pl_rc core_buf_take(core_buf *b, char **out, size_t *len)
{
    if (!b->p) {
        b->p = calloc(1, 1);
        if (!b->p)
            return PL_ERR_NOMEM;
    }
    *out = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return PL_OK;
}

void core_buf_free(core_buf *b)
{
    if (!b)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
