/*
 * core/form.h — parsing of URL query strings and application/x-www-form-urlencoded bodies
 * (WHATWG URL §5 / HTML forms: '&'-separated name=value pairs, '+' is a space, %XX escapes),
 * strict enough for OAuth:
 *
 *  - a parameter included more than once is an error (RFC 6749 §3.1 and §3.2: "Request and
 *    response parameters MUST NOT be included more than once"), unless its name is in the
 *    caller's `repeatable` list;
 *  - a malformed escape ("%4", "%zz"), a decoded NUL byte, or a name or value that is not
 *    valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF included) is an
 *    error;
 *  - every count and length is bounded (core_form_limits).
 *
 * Errors come back as a pl_rc plus a core_form_error whose `msg` names the problem and the
 * parameter, safe to show to a client: it never contains a parameter's value.
 * Pure functions, any thread.
 */
#ifndef POSTLY_CORE_FORM_H
#define POSTLY_CORE_FORM_H

#include <stddef.h>

#include "err.h"

typedef struct core_form_limits {
    size_t max_input;  /* bytes of raw input (default 64 KiB) */
    size_t max_params; /* number of pairs (default 64) */
    size_t max_name;   /* decoded bytes of a name (default 64) */
    size_t max_value;  /* decoded bytes of a value (default 8 KiB) */
    /* Names allowed to repeat (NULL-terminated array, or NULL for none). Borrowed. */
    const char *const *repeatable;
} core_form_limits;

/* The defaults above; pass NULL wherever a limits pointer is taken to get them. */
extern const core_form_limits core_form_default_limits;

typedef struct core_form_param {
    char *name;  /* decoded, NUL-terminated, valid UTF-8 */
    char *value; /* decoded, NUL-terminated, valid UTF-8, no NUL inside */
    size_t value_len;
} core_form_param;

typedef struct core_form {
    core_form_param *v; /* in input order */
    size_t n;
} core_form;

typedef struct core_form_error {
    char msg[160]; /* "parameter 'scope' is included more than once", ... */
} core_form_error;

/* Parses len bytes of s (NOT necessarily NUL-terminated) into out, which the caller frees
 * with core_form_free() on success and failure alike. Empty input gives zero pairs; empty
 * segments ("a=1&&b=2") are skipped; a pair without '=' has the empty value. An empty name
 * is an error. Returns PL_OK, PL_ERR_INVALID (bad escape, bad UTF-8, NUL, empty name,
 * duplicate), PL_ERR_TOO_LARGE (a limit) or PL_ERR_NOMEM; err (may be NULL) gets the text. */
pl_rc core_form_parse(const char *s, size_t len, const core_form_limits *lim, core_form *out,
                      core_form_error *err);

/* The value of the first parameter called name, or NULL. Borrowed from f: valid until
 * core_form_free(f). */
const char *core_form_get(const core_form *f, const char *name);

/* How many parameters are called name (for repeatable ones). */
size_t core_form_count(const core_form *f, const char *name);

/* Frees the pairs; f may be NULL or already freed. */
void core_form_free(core_form *f);

/* 1 when the len bytes at s are well-formed UTF-8 (RFC 3629), else 0. */
int core_utf8_valid(const char *s, size_t len);

#endif
