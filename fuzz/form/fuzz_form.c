/*
 * fuzz/form/fuzz_form.c — libFuzzer target for core/form.c: query strings and
 * application/x-www-form-urlencoded bodies (what /authorize, /token, /register's neighbours,
 * /login, /consent and /revoke parse first), and core_utf8_valid.
 *
 * The first input byte picks the limits (defaults, tiny ones, or "scope"/"resource"
 * repeatable); the rest is the raw input. Properties checked on every input:
 *  - core_utf8_valid agrees with an independent RFC 3629 decoder;
 *  - on PL_OK: n ≤ max_params; every name non-empty, ≤ max_name, valid UTF-8; every value
 *    ≤ max_value, valid UTF-8, without NUL (strlen == value_len); no name twice unless it is
 *    repeatable; core_form_get/core_form_count agree with the array;
 *  - on failure: rc is INVALID, TOO_LARGE or NOMEM and the message is non-empty and
 *    NUL-terminated; core_form_free is safe either way (and twice).
 */
#include <stdint.h>
#include <string.h>

#include "core/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629 §4 syntax, written independently of core/form.c. */
static int utf8_ref(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t len, k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return 0;
        if (i + len > n)
            return 0;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static const char *const repeat_scope[] = {"scope", "resource", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    core_form_limits lim = core_form_default_limits;
    core_form f = {0};
    core_form_error err;
    const char *s;
    size_t n;
    pl_rc rc;

    if (size == 0)
        return 0;
    switch (data[0] & 3) {
    case 1:
        lim.max_params = 4;
        lim.max_name = 8;
        lim.max_value = 16;
        lim.max_input = 128;
        break;
    case 2:
        lim.repeatable = repeat_scope;
        break;
    default:
        break;
    }
    s = (const char *)data + 1;
    n = size - 1;

    if (core_utf8_valid(s, n) != utf8_ref((const uint8_t *)s, n))
        __builtin_trap();

    memset(&err, 0x5a, sizeof err);
    rc = core_form_parse(s, n, &lim, &f, &err);
    if (rc == PL_OK) {
        if (f.n > lim.max_params || (f.n && !f.v))
            __builtin_trap();
        for (size_t i = 0; i < f.n; i++) {
            const core_form_param *p = &f.v[i];
            size_t nl = strlen(p->name);
            int rep = 0;
            if (nl == 0 || nl > lim.max_name || !core_utf8_valid(p->name, nl))
                __builtin_trap();
            if (strlen(p->value) != p->value_len || p->value_len > lim.max_value ||
                !core_utf8_valid(p->value, p->value_len))
                __builtin_trap();
            for (const char *const *r = lim.repeatable; r && *r; r++)
                rep |= strcmp(*r, p->name) == 0;
            if (!rep && core_form_count(&f, p->name) != 1)
                __builtin_trap();
            if (core_form_get(&f, p->name) == NULL)
                __builtin_trap();
        }
    } else {
        if (rc != PL_ERR_INVALID && rc != PL_ERR_TOO_LARGE && rc != PL_ERR_NOMEM)
            __builtin_trap();
        if (!memchr(err.msg, '\0', sizeof err.msg) || err.msg[0] == '\0')
            __builtin_trap();
    }
    core_form_free(&f);
    core_form_free(&f);
    return 0;
}
