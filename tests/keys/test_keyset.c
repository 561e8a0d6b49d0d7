/* tests/keys/test_keyset.c — the key store on disk: first start, modes, the JWKS, reloads, and
 * clear errors naming the file for wrong permissions or corrupt contents. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "core/clock.h"
#include "keys/keyset.h"

#include "helpers.h"

typedef struct fx {
    char root[256], data[300], dir[320];
    core_fake_clock clock;
    key_keyset_cfg cfg;
    key_keyset *ks;
    char active[KEY_KID_SIZE], next[KEY_KID_SIZE];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    key_error err;
    key_info k;
    temp_data(f->root, f->data);
    snprintf(f->dir, sizeof f->dir, "%s/keys", f->data);
    core_fake_clock_init(&f->clock, T_START_MS);
    f->cfg.data_dir = f->data;
    f->cfg.clock = &f->clock.base;
    f->cfg.create = 1;
    if (key_keyset_open(&f->cfg, &f->ks, &err) != PL_OK)
        return -1;
    for (size_t i = 0; i < key_keyset_count(f->ks); i++) {
        key_keyset_get(f->ks, i, &k);
        memcpy(k.state == KEY_STATE_ACTIVE ? f->active : f->next, k.kid, KEY_KID_SIZE);
    }
    f->cfg.create = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    key_keyset_free(f->ks);
    rm_tree(f->root);
    free(f);
    return 0;
}

static void key_path(const fx *f, const char *kid, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.pem", f->dir, kid);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

/* Opening again must fail with rc, and the message must name `file`. */
static void expect_open_error(fx *f, pl_rc rc, const char *file, const char *words)
{
    key_keyset *ks = NULL;
    key_error err = {{0}};
    assert_int_equal(key_keyset_open(&f->cfg, &ks, &err), rc);
    assert_null(ks);
    if (!strstr(err.text, file))
        fail_msg("error does not name %s: %s", file, err.text);
    if (words && !strstr(err.text, words))
        fail_msg("error does not say '%s': %s", words, err.text);
}

static void test_first_start(void **state)
{
    fx *f = *state;
    struct stat st;
    char path[512];
    key_info k;

    assert_int_equal(key_keyset_count(f->ks), 2);
    assert_string_equal(key_keyset_active_kid(f->ks), f->active);
    assert_int_equal(strlen(f->active), 43);
    assert_int_equal(strlen(f->next), 43);
    assert_string_not_equal(f->active, f->next);
    assert_int_equal(key_keyset_get(f->ks, 0, &k), PL_OK);
    assert_int_equal(k.created_s, T_START_MS / 1000);
    assert_int_equal(key_keyset_get(f->ks, 2, &k), PL_ERR_NOT_FOUND);
    /* modes: 0700 directory, 0600 files */
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    key_path(f, f->active, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/keys.json", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a second start loads the same keys; opening without create works now */
    {
        key_keyset *again = NULL;
        key_error err;
        assert_int_equal(key_keyset_open(&f->cfg, &again, &err), PL_OK);
        assert_string_equal(key_keyset_active_kid(again), f->active);
        key_keyset_free(again);
    }
}

static void test_missing_key_set(void **state)
{
    fx *f = *state;
    key_keyset_cfg cfg = f->cfg;
    key_keyset *ks = NULL;
    key_error err;
    char other[400];
    snprintf(other, sizeof other, "%s/elsewhere", f->root);
    cfg.data_dir = other;
    cfg.create = 0;
    assert_int_equal(key_keyset_open(&cfg, &ks, &err), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.text, other));
    assert_non_null(strstr(err.text, "postly-keys init"));
    cfg.data_dir = NULL;
    assert_int_equal(key_keyset_open(&cfg, &ks, &err), PL_ERR_INVALID);
}

static void test_thumbprint_is_rfc7638(void **state)
{
    fx *f = *state;
    char *jwks = NULL, canon[256];
    json_t *doc, *k;
    uint8_t digest[32];
    char *b64;
    assert_int_equal(key_keyset_jwks(f->ks, &jwks, NULL), PL_OK);
    doc = json_loads(jwks, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 2);
    k = json_array_get(json_object_get(doc, "keys"), 0);
    /* active first, public members only */
    assert_string_equal(json_string_value(json_object_get(k, "kid")), f->active);
    assert_string_equal(json_string_value(json_object_get(k, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
    assert_null(json_object_get(k, "d"));
    assert_int_equal(json_object_size(k), 7);
    /* RFC 7638 §3.2, computed here independently */
    snprintf(canon, sizeof canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             json_string_value(json_object_get(k, "x")),
             json_string_value(json_object_get(k, "y")));
    SHA256((const unsigned char *)canon, strlen(canon), digest);
    b64 = b64u(digest, sizeof digest);
    assert_string_equal(b64, f->active);
    free(b64);
    json_decref(doc);
    free(jwks);
}

static void test_key_file_wrong_mode(void **state)
{
    fx *f = *state;
    char path[512];
    key_path(f, f->next, path, sizeof path);
    chmod(path, 0644);
    expect_open_error(f, PL_ERR_DENIED, path, "must be 0600");
    chmod(path, 0640);
    expect_open_error(f, PL_ERR_DENIED, path, "chmod 600");
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/keys.json", f->dir);
    chmod(path, 0604);
    expect_open_error(f, PL_ERR_DENIED, path, "must be 0600");
    chmod(path, 0600);
    chmod(f->dir, 0755);
    expect_open_error(f, PL_ERR_DENIED, f->dir, "must be 0700");
    chmod(f->dir, 0700);
    /* and a key set whose modes are right opens again */
    {
        key_keyset *ks = NULL;
        key_error err;
        assert_int_equal(key_keyset_open(&f->cfg, &ks, &err), PL_OK);
        key_keyset_free(ks);
    }
}

static void test_key_file_corrupt(void **state)
{
    fx *f = *state;
    char path[512], other_path[512];
    FILE *fp;
    EVP_PKEY *other;

    key_path(f, f->active, path, sizeof path);
    write_file(path, "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
               0600);
    expect_open_error(f, PL_ERR_PARSE, path, "corrupt");

    /* an RSA key where a P-256 key belongs */
    {
        EVP_PKEY *rsa = EVP_RSA_gen(2048);
        fp = fopen(path, "w");
        PEM_write_PrivateKey(fp, rsa, NULL, NULL, 0, NULL, NULL);
        fclose(fp);
        EVP_PKEY_free(rsa);
        expect_open_error(f, PL_ERR_PARSE, path, "P-256");
    }

    /* a valid P-256 key, but not the one the file name (its kid) promises */
    other = EVP_EC_gen("P-256");
    fp = fopen(path, "w");
    PEM_write_PrivateKey(fp, other, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    EVP_PKEY_free(other);
    expect_open_error(f, PL_ERR_PARSE, path, "thumbprint");

    /* missing */
    remove(path);
    expect_open_error(f, PL_ERR_PARSE, path, "missing");

    /* keys.json corrupt, or listing two active keys */
    snprintf(other_path, sizeof other_path, "%s/keys.json", f->dir);
    write_file(other_path, "{\"version\":1,\"keys\":[", 0600);
    expect_open_error(f, PL_ERR_PARSE, other_path, "corrupt");
    write_file(other_path, "{\"version\":1,\"keys\":[{\"kid\":\"short\",\"state\":\"active\"}]}",
               0600);
    expect_open_error(f, PL_ERR_PARSE, other_path, "key #1");
    write_file(other_path, "{\"version\":2,\"keys\":[]}", 0600);
    expect_open_error(f, PL_ERR_PARSE, other_path, "version");
    write_file(other_path, "{\"version\":1,\"keys\":[]}", 0600);
    expect_open_error(f, PL_ERR_PARSE, other_path, "0 active");
}

static void test_rotate_persists_and_reload(void **state)
{
    fx *f = *state;
    key_keyset *other = NULL;
    key_error err;
    char now_active[KEY_KID_SIZE];
    uint64_t gen;
    key_info k;
    size_t removed;

    /* a second process (here: a second handle) sees the rotation after reload */
    assert_int_equal(key_keyset_open(&f->cfg, &other, &err), PL_OK);
    gen = key_keyset_generation(other);
    core_fake_clock_advance(&f->clock, 5000);
    assert_int_equal(key_keyset_rotate(f->ks, now_active, &err), PL_OK);
    assert_string_equal(now_active, f->next);
    assert_string_equal(key_keyset_active_kid(other), f->active);
    assert_int_equal(key_keyset_reload(other, &err), PL_OK);
    assert_string_equal(key_keyset_active_kid(other), f->next);
    assert_true(key_keyset_generation(other) != gen);
    gen = key_keyset_generation(other);
    assert_int_equal(key_keyset_reload(other, &err), PL_OK); /* nothing changed */
    assert_int_equal(key_keyset_generation(other), gen);

    assert_int_equal(key_keyset_count(other), 3);
    assert_int_equal(key_keyset_get(other, 0, &k), PL_OK);
    assert_string_equal(k.kid, f->active);
    assert_int_equal(k.state, KEY_STATE_RETIRED);
    assert_int_equal(k.retired_s, T_START_MS / 1000 + 5);
    assert_int_equal(k.removable_s,
                     T_START_MS / 1000 + 5 + KEY_MAX_LIFETIME_DEFAULT_S + KEY_LEEWAY_DEFAULT_S);

    /* rotate on the stale handle: it works from the state on disk, not its old copy */
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    assert_int_equal(key_keyset_rotate(other, NULL, &err), PL_OK);
    assert_int_equal(key_keyset_count(other), 5);
    assert_int_equal(key_keyset_reload(f->ks, &err), PL_OK);
    assert_string_equal(key_keyset_active_kid(f->ks), key_keyset_active_kid(other));

    /* prune removes the private files of the keys it removes */
    core_fake_clock_advance(&f->clock, 3600 * 1000LL);
    assert_int_equal(key_keyset_prune(other, &removed, &err), PL_OK);
    assert_int_equal(removed, 3);
    {
        char path[512];
        struct stat st;
        key_path(f, f->active, path, sizeof path);
        assert_int_not_equal(stat(path, &st), 0);
    }
    key_keyset_free(other);
    /* and the pruned set still opens */
    assert_int_equal(key_keyset_reload(f->ks, &err), PL_OK);
    assert_int_equal(key_keyset_count(f->ks), 5);

    /* a reload that meets a corrupt state file fails, names it, and keeps what it had */
    {
        char path[512], kid[KEY_KID_SIZE];
        snprintf(kid, sizeof kid, "%s", key_keyset_active_kid(f->ks));
        snprintf(path, sizeof path, "%s/keys.json", f->dir);
        write_file(path, "{\"version\":1,\"keys\":", 0600);
        assert_int_equal(key_keyset_reload(f->ks, &err), PL_ERR_PARSE);
        assert_non_null(strstr(err.text, path));
        assert_string_equal(key_keyset_active_kid(f->ks), kid);
        assert_int_equal(key_keyset_count(f->ks), 5);
    }
}

/* A resource server opens the key set public-only: it never reads a private key. */
static void test_public_only(void **state)
{
    fx *f = *state;
    key_keyset_cfg cfg = f->cfg;
    key_keyset *pub = NULL;
    key_error err;
    char path[512], *jwks_full = NULL, *jwks_pub = NULL;
    struct stat st;

    /* first start wrote the public halves, 0600 like everything else */
    snprintf(path, sizeof path, "%s/%s.pub", f->dir, f->active);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* with every private file unreadable garbage, a public-only open still works */
    key_path(f, f->active, path, sizeof path);
    write_file(path, "garbage", 0600);
    key_path(f, f->next, path, sizeof path);
    write_file(path, "garbage", 0600);
    cfg.public_only = 1;
    assert_int_equal(key_keyset_open(&cfg, &pub, &err), PL_OK);
    assert_string_equal(key_keyset_active_kid(pub), f->active);
    assert_int_equal(key_keyset_jwks(pub, &jwks_pub, NULL), PL_OK);
    assert_int_equal(key_keyset_jwks(f->ks, &jwks_full, NULL), PL_OK);
    assert_string_equal(jwks_pub, jwks_full);
    /* and it can do nothing else */
    assert_int_equal(key_keyset_rotate(pub, NULL, &err), PL_ERR_STATE);
    assert_non_null(strstr(err.text, "public-only"));
    assert_int_equal(key_keyset_prune(pub, NULL, &err), PL_ERR_STATE);
    key_keyset_free(pub);
    pub = NULL;
    /* a missing public file is named */
    snprintf(path, sizeof path, "%s/%s.pub", f->dir, f->next);
    remove(path);
    assert_int_equal(key_keyset_open(&cfg, &pub, &err), PL_ERR_PARSE);
    assert_null(pub);
    assert_non_null(strstr(err.text, path));
    assert_non_null(strstr(err.text, "missing"));
    cfg.create = 1;
    assert_int_equal(key_keyset_open(&cfg, &pub, &err), PL_ERR_INVALID);
    free(jwks_pub);
    free(jwks_full);
}

/* Key sets written before public files existed get them on the next full open. */
static void test_public_files_recreated(void **state)
{
    fx *f = *state;
    key_keyset *ks = NULL;
    key_error err;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s.pub", f->dir, f->next);
    assert_int_equal(remove(path), 0);
    assert_int_equal(key_keyset_open(&f->cfg, &ks, &err), PL_OK);
    assert_int_equal(stat(path, &st), 0);
    key_keyset_free(ks);
}

static void test_remove_compromised(void **state)
{
    fx *f = *state;
    key_error err;
    key_info k;
    char path[512], retired[KEY_KID_SIZE], new_next[KEY_KID_SIZE] = "";
    struct stat st;
    size_t removed;

    /* the active key cannot go: rotate first */
    assert_int_equal(key_keyset_remove(f->ks, f->active, &err), PL_ERR_STATE);
    assert_non_null(strstr(err.text, "rotate first"));
    assert_int_equal(key_keyset_remove(f->ks, "no-such-kid", &err), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.text, "no-such-kid"));

    /* the next key goes, and a new next key takes its place */
    assert_int_equal(key_keyset_remove(f->ks, f->next, &err), PL_OK);
    key_path(f, f->next, path, sizeof path);
    assert_int_not_equal(stat(path, &st), 0);
    for (size_t i = 0; i < key_keyset_count(f->ks); i++) {
        assert_int_equal(key_keyset_get(f->ks, i, &k), PL_OK);
        if (strcmp(k.kid, f->next) == 0)
            assert_int_equal(k.state, KEY_STATE_REMOVED);
        if (k.state == KEY_STATE_NEXT)
            memcpy(new_next, k.kid, KEY_KID_SIZE);
    }
    assert_int_equal(strlen(new_next), 43);
    assert_string_not_equal(new_next, f->next);
    assert_int_equal(key_keyset_remove(f->ks, f->next, &err), PL_ERR_STATE);

    /* a retired key goes at once, long before its removable time */
    memcpy(retired, f->active, KEY_KID_SIZE);
    assert_int_equal(key_keyset_rotate(f->ks, NULL, &err), PL_OK);
    assert_string_equal(key_keyset_active_kid(f->ks), new_next);
    assert_int_equal(key_keyset_remove(f->ks, retired, &err), PL_OK);
    key_path(f, retired, path, sizeof path);
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_int_equal(removed, 0);
    {
        char *jwks = NULL;
        assert_int_equal(key_keyset_jwks(f->ks, &jwks, NULL), PL_OK);
        assert_null(strstr(jwks, retired));
        assert_null(strstr(jwks, f->next));
        assert_non_null(strstr(jwks, new_next));
        free(jwks);
    }
}

/* Two processes rotating at the same time (postly-keys while postly-authz runs): the lock and
 * the read-modify-write from disk keep every rotation, and the state consistent. */
static void test_concurrent_rotations(void **state)
{
    fx *f = *state;
    pid_t kids[2];
    key_keyset *ks = NULL;
    key_error err;
    key_info k;
    size_t active = 0, next = 0, retired = 0;
    for (int c = 0; c < 2; c++) {
        kids[c] = fork();
        assert_true(kids[c] >= 0);
        if (kids[c] == 0) {
            key_keyset *mine = NULL;
            int ok = key_keyset_open(&f->cfg, &mine, &err) == PL_OK;
            for (int i = 0; ok && i < 10; i++)
                ok = key_keyset_rotate(mine, NULL, &err) == PL_OK;
            key_keyset_free(mine);
            _exit(ok ? 0 : 1);
        }
    }
    for (int c = 0; c < 2; c++) {
        int st = 0;
        assert_int_equal(waitpid(kids[c], &st, 0), kids[c]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(key_keyset_open(&f->cfg, &ks, &err), PL_OK);
    assert_int_equal(key_keyset_count(ks), 22); /* 2 + one new key per rotation */
    for (size_t i = 0; i < key_keyset_count(ks); i++) {
        assert_int_equal(key_keyset_get(ks, i, &k), PL_OK);
        active += k.state == KEY_STATE_ACTIVE;
        next += k.state == KEY_STATE_NEXT;
        retired += k.state == KEY_STATE_RETIRED;
    }
    assert_int_equal(active, 1);
    assert_int_equal(next, 1);
    assert_int_equal(retired, 20);
    key_keyset_free(ks);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(key_state_name(KEY_STATE_NEXT), "next");
    assert_string_equal(key_state_name(KEY_STATE_ACTIVE), "active");
    assert_string_equal(key_state_name(KEY_STATE_RETIRED), "retired");
    assert_string_equal(key_state_name(KEY_STATE_REMOVED), "removed");
    assert_string_equal(key_state_name(KEY_STATE__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thumbprint_is_rfc7638, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_wrong_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_persists_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_files_recreated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_compromised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_rotations, setup, teardown),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
