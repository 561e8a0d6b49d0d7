/* tests/authz/test_admin.c — postly-admin commands run in-process on a real store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/admin.h"
#include "authz/store.h"
#include "fixture.h"

typedef struct afx {
    char dir[256];
    char out[4096], err[4096];
} afx;

static int run(afx *f, const char *input, ...)
{
    char *argv[32];
    int argc = 0, ret;
    va_list ap;
    FILE *in = fmemopen((void *)(input ? input : ""), input ? strlen(input) : 0, "r");
    FILE *out = fmemopen(f->out, sizeof f->out, "w"), *err = fmemopen(f->err, sizeof f->err, "w");
    argv[argc++] = "postly-admin";
    argv[argc++] = "--data";
    argv[argc++] = f->dir;
    va_start(ap, input);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(f->out, 0, sizeof f->out);
    memset(f->err, 0, sizeof f->err);
    ret = az_admin_main(argc, argv, in, out, err, 1024);
    fclose(in);
    fclose(out);
    fclose(err);
    return ret;
}

static void test_admin_commands(void **state)
{
    afx f;
    az_store *st = NULL;
    az_store_cfg cfg = {0};
    az_user u;
    az_client c;
    char role[16], got[AZ_ID_MAX + 1];
    (void)state;
    assert_int_equal(fx_tmpdir(f.dir), 0);
    assert_int_equal(run(&f, NULL, "users", "add", "bob", (char *)NULL), 0);
    assert_non_null(strstr(f.out, "password for bob: "));
    assert_int_equal(
        run(&f, "bobs new password\n", "users", "passwd", "bob", "--password-stdin", (char *)NULL),
        0);
    assert_int_equal(run(&f, NULL, "users", "add", "bob", (char *)NULL), 1);
    assert_non_null(strstr(f.err, "exists"));
    assert_int_equal(
        run(&f, NULL, "workspaces", "add", "acme", "Acme Inc", "--plan", "pro", (char *)NULL), 0);
    assert_int_equal(run(&f, NULL, "workspaces", "plan", "acme", "team", (char *)NULL), 0);
    assert_int_equal(run(&f, NULL, "workspaces", "add", "bad id", "X", (char *)NULL), 1);
    assert_int_equal(run(&f, NULL, "members", "add", "bob", "acme", "editor", (char *)NULL), 0);
    assert_int_equal(run(&f, NULL, "members", "add", "bob", "acme", "god", (char *)NULL), 1);
    assert_non_null(strstr(f.err, "role must be"));
    assert_int_equal(run(&f, NULL, "clients", "add", "desk", "--name", "Desktop", "--redirect",
                         "http://127.0.0.1/cb", (char *)NULL),
                     0);
    assert_int_equal(run(&f, NULL, "clients", "add", "web", "--name", "Web", "--redirect",
                         "https://web.example/cb", "--auth", "basic", (char *)NULL),
                     0);
    assert_non_null(strstr(f.out, "client secret: "));
    assert_int_equal(run(&f, NULL, "clients", "add", "bad", "--redirect", "http://evil.example/cb",
                         (char *)NULL),
                     1);
    assert_non_null(strstr(f.err, "loopback"));
    /* RFC 8252 §7.1 private-use scheme redirects: public native clients only. */
    assert_int_equal(run(&f, NULL, "clients", "add", "editor", "--redirect",
                         "com.example.editor:/callback", "--auth", "none", (char *)NULL),
                     0);
    assert_int_equal(run(&f, NULL, "clients", "add", "cursor", "--redirect",
                         "cursor://anysphere.cursor-retrieval/oauth/callback", (char *)NULL),
                     0);
    assert_int_equal(run(&f, NULL, "clients", "add", "conf", "--redirect",
                         "com.example.editor:/callback", "--auth", "basic", (char *)NULL),
                     1);
    assert_non_null(strstr(f.err, "public native clients"));
    assert_int_equal(
        run(&f, NULL, "clients", "add", "js", "--redirect", "javascript:alert(1)", (char *)NULL),
        1);
    assert_int_equal(run(&f, NULL, "users", "disable", "bob", (char *)NULL), 0);
    assert_int_equal(run(&f, NULL, "frobnicate", "x", (char *)NULL), 2);
    assert_int_equal(run(&f, NULL, (char *)NULL), 2);

    cfg.data_dir = f.dir;
    cfg.scrypt_n = 1024;
    cfg.nosync = 1;
    assert_int_equal(az_store_open(&cfg, &st), PL_OK);
    assert_int_equal(az_user_find(st, "bob", &u), PL_OK);
    assert_true(u.disabled);
    assert_int_equal(az_user_disable(st, "bob", 0), PL_OK);
    assert_int_equal(az_user_login(st, "bob", "bobs new password", "1.2.3.4", got), PL_OK);
    assert_int_equal(az_member_role(st, u.id, "acme", role), PL_OK);
    assert_string_equal(role, "editor");
    assert_int_equal(az_client_get(st, "web", &c), PL_OK);
    assert_int_equal(c.auth, AZ_AUTH_BASIC);
    assert_string_equal(c.cls, "preregistered");
    az_store_free(st);
    fx_rmrf(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_admin_commands)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
