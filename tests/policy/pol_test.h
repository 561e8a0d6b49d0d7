/* tests/policy/pol_test.h — helpers shared by the policy tests (header-only, static). */
#ifndef POSTLY_TESTS_POL_TEST_H
#define POSTLY_TESTS_POL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

#define DEFAULT_POLICY POSTLY_SOURCE_DIR "/policy/default.policy"

/* Loads `text`; asserts the return code. Returns the table (NULL unless PL_OK). */
static inline pol_compiled *load_text(const char *text, unsigned flags, pl_rc want, pol_diags *d)
{
    pol_compiled *p = NULL;
    pol_diags_init(d);
    pl_rc rc = pol_load_buffer("t.policy", text, strlen(text), flags, d, &p);
    if (rc != want)
        pol_diags_print(d, stderr);
    assert_int_equal(rc, want);
    if (want == PL_OK)
        assert_non_null(p);
    else
        assert_null(p);
    return p;
}

static inline pol_compiled *load_default(void)
{
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    pl_rc rc = pol_load_file(DEFAULT_POLICY, 0, &d, &p);
    if (rc != PL_OK)
        pol_diags_print(&d, stderr);
    assert_int_equal(rc, PL_OK);
    pol_diags_free(&d);
    return p;
}

/* The first diagnostic with `code`, or NULL. */
static inline const pol_diag *find_diag(const pol_diags *d, pol_diag_code code)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].code == code)
            return &d->v[i];
    return NULL;
}

static inline size_t count_diag(const pol_diags *d, pol_diag_code code)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->v[i].code == code;
    return n;
}

/* Collects what is written to a FILE into a malloc'd string:
 *   capture c;
 *   write_something(capture_open(&c));
 *   char *text = capture_close(&c);   (caller frees) */
typedef struct capture {
    FILE *f;
    char *buf;
    size_t len;
} capture;

static inline FILE *capture_open(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    return c->f;
}

static inline char *capture_close(capture *c)
{
    fclose(c->f);
    return c->buf;
}

static inline uint64_t mask_of(const char *list)
{
    uint64_t m = 0;
    size_t off = 0;
    if (pol_scope_parse_list(list, strlen(list), &m, &off) != PL_OK)
        fail_msg("bad scope list in test at offset %zu: %s", off, list);
    return m;
}

static inline uint32_t tool_ix(const pol_compiled *p, const char *name)
{
    uint32_t i = 0;
    assert_int_equal(pol_tool_index(p, name, strlen(name), &i), PL_OK);
    return i;
}

#endif
