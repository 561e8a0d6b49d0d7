/* tests/authz/admin_accounts_test.c — postly-admin accounts add|list (authz/admin_exec.c) run
 * in-process through az_admin_run() on a real LMDB store in a mkdtemp directory: the account
 * is created through exec/account.h and read back with the Pinterest board and Google
 * Business location given; bad input names the problem with the right exit code; workspaces
 * are isolated. Registered apart from the test_*.c glob: it links postly_admin_exec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "authz/admin.h"
#include "authz/admin_exec.h"

#define END ((const char *)0)

typedef struct fx {
    char dir[64];
    char out[16384];
    char err[4096];
} fx;

static int admin(fx *f, ...)
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

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/admin-acc-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_add_list(void **state)
{
    fx *f = *state;
    json_t *a, *l, *items;
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "pinterest",
                           "--name", "Demo Pins", "--board", "brd1=Launch", "--board", "brd2", END),
                     0);
    a = json_loads(f->out, 0, NULL);
    assert_non_null(a);
    assert_int_equal(strncmp(json_string_value(json_object_get(a, "id")), "acc_", 4), 0);
    assert_string_equal(json_string_value(json_object_get(a, "platform")), "pinterest");
    assert_string_equal(json_string_value(json_object_get(a, "state")), "connected");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "boards"), 0), "name")),
        "Launch");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(a, "boards"), 1), "id")),
        "brd2");
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform",
                           "google_business", "--name", "Demo Cafe", "--location",
                           "loc1=Main Street", END),
                     0);
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "other", "--platform", "x",
                           "--name", "Elsewhere", END),
                     0);
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    l = json_loads(f->out, 0, NULL);
    items = json_object_get(l, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_null(strstr(f->out, "Elsewhere")); /* another workspace's account */
    assert_non_null(strstr(f->out, "Main Street"));
    assert_non_null(strstr(f->out, json_string_value(json_object_get(a, "id"))));
    json_decref(l);
    assert_int_equal(
        admin(f, "accounts", "list", "--workspace", "demo", "--platform", "pinterest", END), 0);
    l = json_loads(f->out, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    json_decref(a);
}

static void test_errors(void **state)
{
    fx *f = *state;
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "myspace",
                           "--name", "N", END),
                     1);
    assert_non_null(strstr(f->err, "not one of facebook"));
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--name", "N", END), 2);
    assert_non_null(strstr(f->err, "--platform"));
    assert_int_equal(admin(f, "accounts", "add", "--platform", "x", "--name", "N", END), 2);
    assert_non_null(strstr(f->err, "--workspace"));
    assert_int_equal(admin(f, "accounts", "add", "--workspace", "demo", "--platform", "x", "--name",
                           "N", "--frob", "1", END),
                     2);
    assert_non_null(strstr(f->err, "--frob"));
    assert_int_equal(
        admin(f, "accounts", "add", "--workspace", "demo", "--platform", "x", "--name", END), 2);
    assert_int_equal(admin(f, "accounts", "purge", "--workspace", "demo", END), 2);
    assert_non_null(strstr(f->err, "accounts purge"));
    /* Nothing was created by the refused commands. */
    assert_int_equal(admin(f, "accounts", "list", "--workspace", "demo", END), 0);
    assert_non_null(strstr(f->out, "\"items\": []"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
