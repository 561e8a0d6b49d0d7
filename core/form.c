#include "form.h"

#include "crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const core_form_limits core_form_default_limits = {
    .max_input = (size_t)64 * 1024,
    .max_params = 64,
    .max_name = 64,
    .max_value = (size_t)8 * 1024,
    .repeatable = NULL,
};

int core_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0; /* continuation byte, 0xc0/0xc1 overlong lead, or > U+10FFFF lead */
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* err->msg = "<what> <problem>" */
static void seterr(core_form_error *err, const char *what, const char *problem)
{
    if (err)
        snprintf(err->msg, sizeof err->msg, "%s%s%s", what, *problem ? " " : "", problem);
}

/* err->msg = "parameter '<name>' <problem>" when param is given (the name is valid UTF-8 and
 * bounded, so it may appear in the message; cut at 60 bytes), else "<what> <problem>". Built
 * only on an error: formatting a label for every parameter cost more than decoding it. */
static void seterr_field(core_form_error *err, const char *what, const char *param,
                         const char *problem)
{
    if (!param)
        seterr(err, what, problem);
    else if (err)
        snprintf(err->msg, sizeof err->msg, "parameter '%.60s' %s", param, problem);
}

/* Decodes s[0..len) into a new NUL-terminated string. `what` (param NULL) or the parameter
 * named param names the field for errors. */
static pl_rc decode(const char *s, size_t len, size_t max, const char *what, const char *param,
                    char **out, size_t *outlen, core_form_error *err)
{
    char *d;
    size_t j = 0;
    *out = NULL;
    d = malloc(len + 1);
    if (!d)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                free(d);
                seterr_field(err, what, param, "has an incomplete percent-escape");
                return PL_ERR_INVALID;
            }
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(d);
                seterr_field(err, what, param, "has an invalid percent-escape");
                return PL_ERR_INVALID;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') { /* decoded (%00) or raw: the result is a C string (form.h) */
            free(d);
            seterr_field(err, what, param, "contains a NUL byte");
            return PL_ERR_INVALID;
        }
        d[j++] = c;
    }
    d[j] = '\0';
    if (j > max) {
        free(d);
        seterr_field(err, what, param, "is too long");
        return PL_ERR_TOO_LARGE;
    }
    if (!core_utf8_valid(d, j)) {
        free(d);
        seterr_field(err, what, param, "is not valid UTF-8");
        return PL_ERR_INVALID;
    }
    *out = d;
    *outlen = j;
    return PL_OK;
}

static int is_repeatable(const core_form_limits *lim, const char *name)
{
    for (const char *const *r = lim->repeatable; r && *r; r++)
        if (strcmp(*r, name) == 0)
            return 1;
    return 0;
}

pl_rc core_form_parse(const char *s, size_t len, const core_form_limits *lim, core_form *out,
                      core_form_error *err)
{
    pl_rc rc = PL_OK;
    size_t pos = 0, cap = 0;
    out->v = NULL;
    out->n = 0;
    if (err)
        err->msg[0] = '\0';
    if (!lim)
        lim = &core_form_default_limits;
    if (len > lim->max_input) {
        seterr(err, "the parameter string", "is too large");
        return PL_ERR_TOO_LARGE;
    }
    while (pos < len) {
        const char *seg = s + pos, *amp = memchr(seg, '&', len - pos), *eq;
        size_t seglen = amp ? (size_t)(amp - seg) : len - pos, nlen, vlen, dummy;
        char *name = NULL, *value = NULL;
        pos += seglen + 1;
        if (seglen == 0)
            continue;
        eq = memchr(seg, '=', seglen);
        nlen = eq ? (size_t)(eq - seg) : seglen;
        if (nlen == 0) {
            seterr(err, "a parameter has an empty name", "");
            rc = PL_ERR_INVALID;
            goto out;
        }
        if (out->n >= lim->max_params) {
            seterr(err, "too many parameters", "");
            rc = PL_ERR_TOO_LARGE;
            goto out;
        }
        rc = decode(seg, nlen, lim->max_name, "a parameter name", NULL, &name, &dummy, err);
        if (rc != PL_OK)
            goto out;
        vlen = eq ? seglen - nlen - 1 : 0;
        rc = decode(eq ? eq + 1 : seg + seglen, vlen, lim->max_value, NULL, name, &value, &vlen,
                    err);
        if (rc != PL_OK) {
            free(name);
            goto out;
        }
        if (!is_repeatable(lim, name) && core_form_get(out, name)) {
            if (err)
                snprintf(err->msg, sizeof err->msg, "parameter '%.60s' is included more than once",
                         name);
            free(name);
            free(value);
            rc = PL_ERR_INVALID;
            goto out;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            core_form_param *nv = realloc(out->v, ncap * sizeof *nv);
            if (!nv) {
                free(name);
                free(value);
                rc = PL_ERR_NOMEM;
                goto out;
            }
            out->v = nv;
            cap = ncap;
        }
        out->v[out->n].name = name;
        out->v[out->n].value = value;
        out->v[out->n].value_len = vlen;
        out->n++;
    }
out:
    return rc;
}

const char *core_form_get(const core_form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0)
            return f->v[i].value;
    return NULL;
}

size_t core_form_count(const core_form *f, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < f->n; i++)
        c += strcmp(f->v[i].name, name) == 0;
    return c;
}

void core_form_free(core_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].name);
        if (f->v[i].value) {
            core_wipe(f->v[i].value, f->v[i].value_len); /* may hold a password */
            free(f->v[i].value);
        }
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}
