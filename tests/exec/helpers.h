/* tests/exec/helpers.h — small header-only helpers for the exec tests (mkdtemp dirs). */
#ifndef POSTLY_TESTS_EXEC_HELPERS_H
#define POSTLY_TESTS_EXEC_HELPERS_H

#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void th_tmpdir(char *buf, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/postly-exec-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf))
        abort();
}

/* Removes dir and everything below it (no symlink following: lstat). */
static inline void th_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[2048];
            int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (n < 0 || (size_t)n >= sizeof p)
                continue;
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                th_rmtree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* A test environment: a store in a fresh mkdtemp directory (MDB_NOSYNC: tests only), a fake
 * clock, the seven sandbox connectors and a ctx. */
#include "core/clock.h"
#include "exec/account.h"
#include "exec/connector.h"
#include "exec/store.h"

#define TH_T0 1800000000000LL /* 2027-01-15T08:00:00Z */

typedef struct th_env {
    char dir[256];
    ex_store *st;
    core_fake_clock clock;
    ex_connectors reg;
    core_log log;
    ex_ctx ctx;
} th_env;

static inline void th_env_open_at(th_env *e, const char *dir)
{
    memset(&e->ctx, 0, sizeof e->ctx);
    if (ex_store_open(dir, (size_t)1 << 30, EX_STORE_NOSYNC, &e->st) != PL_OK)
        abort();
    if (ex_connectors_init_sandbox(&e->reg) != PL_OK)
        abort();
    e->log.fp = NULL;
    e->log.level = CORE_LOG_OFF;
    e->log.component = "test";
    e->ctx.store = e->st;
    e->ctx.clock = &e->clock.base;
    e->ctx.log = &e->log;
    ex_limits_default(&e->ctx.limits);
    ex_connectors_install(&e->reg, &e->ctx);
}

static inline void th_env_open(th_env *e)
{
    memset(e, 0, sizeof *e);
    th_tmpdir(e->dir, sizeof e->dir);
    core_fake_clock_init(&e->clock, TH_T0);
    th_env_open_at(e, e->dir);
}

static inline void th_env_close(th_env *e)
{
    ex_store_free(e->st);
    e->st = NULL;
    ex_connectors_free(&e->reg);
}

static inline void th_env_free(th_env *e)
{
    th_env_close(e);
    th_rmtree(e->dir);
}

/* cmocka teardown for a calloc'ed fixture whose first member is its th_env. */
static inline int th_teardown(void **state)
{
    th_env *e = *state;
    th_env_free(e);
    free(e);
    return 0;
}

/* Creates the social account {platform, display_name} in ws and copies its id into out
 * (EX_ID_MAX bytes). Returns ex_account_create()'s rc (tests assert it). */
static inline pl_rc th_account(th_env *e, const char *ws, const char *platform,
                               const char *display_name, char *out)
{
    json_t *o = NULL,
           *a = json_pack("{s:s,s:s}", "platform", platform, "display_name", display_name);
    pl_rc rc = ex_account_create(&e->ctx, ws, a, &o, NULL);
    if (rc == PL_OK)
        snprintf(out, EX_ID_MAX, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    json_decref(a);
    return rc;
}

/* o[k] as a string, or NULL. */
static inline const char *th_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Parses JSON text for arguments (aborts on a typo in a test). */
static inline json_t *th_json(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s: %s\n", je.text, text);
        abort();
    }
    return j;
}

#endif
