/*
 * tests/authz/admin_fixture.h — runs `postly-admin` in-process (with the exec-backed commands:
 * accounts, webhooks, usage) against a fresh data directory, capturing its output.
 * Shared by tests/authz/admin_accounts_test.c and tests/mcp/test_admin_exec.c. Include after
 * <cmocka.h>. Functions are static inline so a test that uses only some of them still builds
 * without warnings.
 */
#ifndef POSTLY_TESTS_AUTHZ_ADMIN_FIXTURE_H
#define POSTLY_TESTS_AUTHZ_ADMIN_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "authz/admin.h"
#include "authz/admin_exec.h"

/* The list terminator, typed (a bare NULL in a variadic list may be an int 0). */
#define END ((const char *)0)

typedef struct fx {
    char dir[64];
    char out[16384];
    char err[4096];
} fx;

/* Runs `postly-admin --data DIR <words...> END`; stdout and stderr into f->out / f->err.
 * Returns its exit code. */
static inline int admin(fx *f, ...)
{
    char *argv[32];
    int argc = 0, ret;
    va_list ap;
    const char *w;
    FILE *out = tmpfile(), *err = tmpfile();
    size_t n;
    argv[argc++] = "postly-admin";
    argv[argc++] = "--data";
    argv[argc++] = f->dir;
    va_start(ap, f);
    while ((w = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)w;
    va_end(ap);
    argv[argc] = NULL;
    ret = az_admin_run(argc, argv, NULL, out, err, 1024, az_admin_exec_cmds,
                       az_admin_exec_cmds_count);
    rewind(out);
    n = fread(f->out, 1, sizeof f->out - 1, out);
    f->out[n] = '\0';
    rewind(err);
    n = fread(f->err, 1, sizeof f->err - 1, err);
    f->err[n] = '\0';
    fclose(out);
    fclose(err);
    return ret;
}

/* cmocka setup/teardown: a fresh mkdtemp data directory per test, removed afterwards. */
static inline int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/postly-admin-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

#endif
