/* tests/keys/test_cli.c — postly-keys as a user runs it: output format, exit codes, errors. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "keys/keyset.h"

#include "helpers.h"

typedef struct run {
    int status;
    char out[16384];
    char err[4096];
} run;

static void drain(int fd, char *buf, size_t size)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
}

/* Runs postly-keys with argv (NULL-terminated after the program name). */
static void keys(run *r, const char *const *args)
{
    int out[2], err[2];
    pid_t pid;
    char *argv[16];
    size_t i = 0;
    argv[i++] = (char *)POSTLY_KEYS_BIN;
    for (; args[i - 1] && i < 15; i++)
        argv[i] = (char *)args[i - 1];
    argv[i] = NULL;
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        execv(POSTLY_KEYS_BIN, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    drain(out[0], r->out, sizeof r->out); /* outputs are small: no deadlock on stderr */
    drain(err[0], r->err, sizeof r->err);
    close(out[0]);
    close(err[0]);
    assert_int_equal(waitpid(pid, &r->status, 0), pid);
    assert_true(WIFEXITED(r->status));
    r->status = WEXITSTATUS(r->status);
}

typedef struct fx {
    char root[256], data[300];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    temp_data(f->root, f->data);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    rm_tree(f->root);
    free(f);
    return 0;
}

/* The kid after "label " on its own line of text. */
static void kid_after(const char *text, const char *label, char kid[KEY_KID_SIZE])
{
    char pat[32];
    const char *p;
    snprintf(pat, sizeof pat, "%s ", label);
    p = strstr(text, pat);
    assert_non_null(p);
    p += strlen(pat);
    assert_true(strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                43);
    memcpy(kid, p, 43);
    kid[43] = '\0';
}

static void test_usage(void **state)
{
    run r;
    (void)state;
    keys(&r, (const char *[]){NULL});
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage: postly-keys"));
    keys(&r, (const char *[]){"--help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "rotate"));
    keys(&r, (const char *[]){"frobnicate", NULL});
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    static const char *const cmds[] = {"init", "list", "rotate", "jwks", "prune"};
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        keys(&r, (const char *[]){cmds[i], "--help", NULL});
        assert_int_equal(r.status, 0);
        snprintf(want, sizeof want, "usage: postly-keys [--data DIR] %s", cmds[i]);
        assert_non_null(strstr(r.out, want));
    }
    keys(&r, (const char *[]){"rotate", "--max-lifetime", "soon", NULL});
    assert_int_equal(r.status, 2);
}

static void test_lifecycle(void **state)
{
    fx *f = *state;
    run r;
    char active[KEY_KID_SIZE], next[KEY_KID_SIZE], kid[KEY_KID_SIZE], want[400];
    json_t *doc;

    /* nothing there yet */
    keys(&r, (const char *[]){"--data", f->data, "list", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, f->data));
    assert_non_null(strstr(r.err, "postly-keys init"));

    keys(&r, (const char *[]){"--data", f->data, "init", NULL});
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "initialised: %s/keys\n", f->data);
    assert_non_null(strstr(r.out, want));
    kid_after(r.out, "active", active);
    kid_after(r.out, "next", next);

    keys(&r, (const char *[]){"init", "--data", f->data, NULL}); /* options anywhere */
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "already initialised:"));
    kid_after(r.out, "active", kid);
    assert_string_equal(kid, active);

    keys(&r, (const char *[]){"--data", f->data, "list", NULL});
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s active created=", active);
    assert_non_null(strstr(r.out, want));
    snprintf(want, sizeof want, "%s next created=", next);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "retired=- removable=- removed=-\n"));

    keys(&r, (const char *[]){"--data", f->data, "jwks", NULL});
    assert_int_equal(r.status, 0);
    doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 2);
    json_decref(doc);
    assert_null(strstr(r.out, "\"d\""));
    assert_null(strstr(r.out, "PRIVATE"));

    keys(&r, (const char *[]){"--data", f->data, "rotate", NULL});
    assert_int_equal(r.status, 0);
    kid_after(r.out, "active", kid);
    assert_string_equal(kid, next);
    kid_after(r.out, "retired", kid);
    assert_string_equal(kid, active);
    assert_non_null(strstr(r.out, "removable=20"));

    keys(&r, (const char *[]){"--data", f->data, "prune", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "pruned 0\n");

    keys(&r, (const char *[]){"--data", f->data, "jwks", NULL});
    doc = json_loads(r.out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 3);
    json_decref(doc);

    /* a compromised key: the retired one goes now; the active one cannot */
    keys(&r, (const char *[]){"--data", f->data, "prune", "--kid", next, NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "rotate first"));
    keys(&r, (const char *[]){"--data", f->data, "prune", "--kid", active, NULL});
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "pruned 1\nremoved %s\n", active);
    assert_non_null(strstr(r.out, want));
    keys(&r, (const char *[]){"--data", f->data, "jwks", NULL});
    assert_null(strstr(r.out, active));
    keys(&r, (const char *[]){"--data", f->data, "list", "--kid", active, NULL});
    assert_int_equal(r.status, 2);
}

static void test_bad_permissions_named(void **state)
{
    fx *f = *state;
    run r;
    char active[KEY_KID_SIZE], path[512];
    keys(&r, (const char *[]){"--data", f->data, "init", NULL});
    assert_int_equal(r.status, 0);
    kid_after(r.out, "active", active);
    snprintf(path, sizeof path, "%s/keys/%s.pem", f->data, active);
    chmod(path, 0644);
    keys(&r, (const char *[]){"--data", f->data, "jwks", NULL});
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, path));
    assert_non_null(strstr(r.err, "chmod 600"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_permissions_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
