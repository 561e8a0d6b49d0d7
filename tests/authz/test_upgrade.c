/* tests/authz/test_upgrade.c — the store's schema versions (docs/authz.md "Store upgrades"):
 * a schema-1 store (user and client records as JSON, written here with LMDB directly, the
 * way the earlier version wrote them) is upgraded at open to schema 2 (binary records) with
 * every field kept and the password still accepted; a record that does not parse refuses the
 * open and leaves the store untouched; an unknown schema is refused, by the store and by the
 * directory; a grant record of the first binary layout still rotates by the earlier rules.
 * Real LMDB in a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lmdb.h>
#include <openssl/evp.h>

#include "authz/directory.h"
#include "authz/store.h"
#include "core/crypto.h"
#include "fixture.h"

#define PASSWORD "an old password"

typedef struct fx {
    char dir[256];
    char path[300];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    az_store_cfg cfg = {0};
    az_store *st = NULL;
    assert_int_equal(fx_tmpdir(f->dir), 0);
    snprintf(f->path, sizeof f->path, "%s/authz", f->dir);
    /* Creates the named databases (and schema 2, overwritten by the tests). */
    cfg.data_dir = f->dir;
    cfg.nosync = 1;
    cfg.scrypt_n = 1024;
    assert_int_equal(az_store_open(&cfg, &st), PL_OK);
    az_store_free(st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fx_rmrf(f->dir);
    free(f);
    return 0;
}

static pl_rc open_store(const fx *f, az_store **st)
{
    az_store_cfg cfg = {0};
    cfg.data_dir = f->dir;
    cfg.nosync = 1;
    cfg.scrypt_n = 1024;
    return az_store_open(&cfg, st);
}

/* Writes key=value into the named database db of the store, as LMDB itself. */
static void raw_put(const fx *f, const char *db, const char *key, const char *value)
{
    MDB_env *env = NULL;
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(value), (void *)value};
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, f->path, MDB_NOSYNC, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, db, 0, &dbi), 0);
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

static void raw_schema(const fx *f, char got[8])
{
    MDB_env *env = NULL;
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->path, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    assert_int_equal(mdb_dbi_open(t, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_get(t, dbi, &k, &v), 0);
    assert_true(v.mv_size < 8);
    memcpy(got, v.mv_data, v.mv_size);
    got[v.mv_size] = '\0';
    mdb_txn_abort(t);
    mdb_env_close(env);
}

/* "scrypt$1024$8$1$<salt>$<hash>" of PASSWORD: the schema-1 password encoding. */
static void old_hash(char *out, size_t outsz)
{
    uint8_t salt[32], h[32];
    char s64[CORE_B64URL_SIZE(32)], h64[CORE_B64URL_SIZE(32)];
    memset(salt, 7, sizeof salt);
    assert_int_equal(EVP_PBE_scrypt(PASSWORD, strlen(PASSWORD), salt, sizeof salt, 1024, 8, 1,
                                    (uint64_t)64 * 1024 * 1024, h, sizeof h),
                     1);
    assert_int_equal(core_b64url_encode(salt, 32, s64, sizeof s64, NULL), PL_OK);
    assert_int_equal(core_b64url_encode(h, 32, h64, sizeof h64, NULL), PL_OK);
    snprintf(out, outsz, "scrypt$1024$8$1$%s$%s", s64, h64);
}

/* A schema-1 store: one user (JSON), one confidential DCR client with its registration
 * fingerprint, one public pre-registered client (JSON). */
static void make_schema1(const fx *f, const uint8_t secret_hash[CORE_SHA256_LEN])
{
    char pw[256], user[600], client[1500], hex[65], fphex[65];
    uint8_t fp[CORE_SHA256_LEN];
    memset(fp, 0xab, sizeof fp);
    old_hash(pw, sizeof pw);
    snprintf(user, sizeof user,
             "{\"id\":\"u_old\",\"username\":\"olduser\",\"pw\":\"%s\",\"disabled\":false,"
             "\"created_ms\":1700000000000}",
             pw);
    raw_put(f, "users", "u_old", user);
    raw_put(f, "usernames", "olduser", "u_old");
    core_hex_encode(secret_hash, CORE_SHA256_LEN, hex, sizeof hex);
    core_hex_encode(fp, CORE_SHA256_LEN, fphex, sizeof fphex);
    snprintf(client, sizeof client,
             "{\"id\":\"c_dcr\",\"name\":\"Old \\\"DCR\\\" client\",\"redirect_uris\":"
             "[\"https://app.example/cb\",\"http://127.0.0.1/cb\"],\"kind\":1,\"auth\":1,"
             "\"secret_sha256\":\"%s\",\"cls\":\"dcr\",\"scope_hint\":\"posts:read\","
             "\"source\":\"203.0.113.9\",\"introspect\":false,\"created_ms\":1700000000001,"
             "\"expires_ms\":0,\"etag\":\"W/\\\"1\\\"\",\"fp\":\"%s\"}",
             hex, fphex);
    raw_put(f, "clients", "c_dcr", client);
    raw_put(f, "clients", "pre",
            "{\"id\":\"pre\",\"name\":\"Pre\",\"redirect_uris\":[\"https://pre.example/cb\"],"
            "\"kind\":0,\"auth\":0,\"secret_sha256\":\"\",\"cls\":\"preregistered\","
            "\"scope_hint\":\"\",\"source\":\"\",\"introspect\":true,\"created_ms\":5,"
            "\"expires_ms\":0}");
    raw_put(f, "meta", "schema", "1");
}

static void test_upgrade_from_1(void **state)
{
    fx *f = *state;
    az_store *st = NULL;
    az_directory *d = NULL;
    az_client c;
    az_user u;
    uint8_t secret_hash[CORE_SHA256_LEN];
    char schema[8], uid[AZ_ID_MAX + 1];

    memset(secret_hash, 0x5c, sizeof secret_hash);
    make_schema1(f, secret_hash);
    assert_int_equal(open_store(f, &st), PL_OK);

    assert_int_equal(az_user_find(st, "olduser", &u), PL_OK);
    assert_string_equal(u.id, "u_old");
    assert_string_equal(u.username, "olduser");
    assert_int_equal(u.disabled, 0);
    assert_int_equal(u.created_ms, 1700000000000LL);
    /* The scrypt hash came through: the old password still logs in, a wrong one does not. */
    assert_int_equal(az_user_login(st, "olduser", PASSWORD, "192.0.2.1", uid), PL_OK);
    assert_string_equal(uid, "u_old");
    assert_int_equal(az_user_login(st, "olduser", "not the password", "192.0.2.1", uid),
                     PL_ERR_DENIED);

    assert_int_equal(az_client_get(st, "c_dcr", &c), PL_OK);
    assert_string_equal(c.name, "Old \"DCR\" client");
    assert_int_equal(c.nredirect, 2);
    assert_string_equal(c.redirect_uris[0], "https://app.example/cb");
    assert_string_equal(c.redirect_uris[1], "http://127.0.0.1/cb");
    assert_int_equal(c.kind, AZ_CLIENT_DCR);
    assert_int_equal(c.auth, AZ_AUTH_BASIC);
    assert_memory_equal(c.secret_hash, secret_hash, CORE_SHA256_LEN);
    assert_string_equal(c.cls, "dcr");
    assert_string_equal(c.scope_hint, "posts:read");
    assert_string_equal(c.source, "203.0.113.9");
    assert_string_equal(c.etag, "W/\"1\"");
    assert_int_equal(c.introspect, 0);
    assert_int_equal(c.created_ms, 1700000000001LL);
    assert_int_equal(az_client_get(st, "pre", &c), PL_OK);
    assert_int_equal(c.kind, AZ_CLIENT_PRE);
    assert_int_equal(c.auth, AZ_AUTH_NONE);
    assert_int_equal(c.introspect, 1);
    assert_int_equal(c.nredirect, 1);

    /* Changes after the upgrade are kept in the new format. */
    assert_int_equal(az_user_disable(st, "olduser", 1), PL_OK);
    az_store_free(st);
    raw_schema(f, schema);
    assert_string_equal(schema, "2");
    assert_int_equal(open_store(f, &st), PL_OK); /* a second open upgrades nothing */
    assert_int_equal(az_user_find(st, "olduser", &u), PL_OK);
    assert_int_equal(u.disabled, 1);
    az_store_free(st);
    assert_int_equal(az_directory_open(f->dir, &d), PL_OK);
    az_directory_free(d);
}

/* More records than one upgrade chunk (64): every one is rewritten. */
static void test_upgrade_many(void **state)
{
    fx *f = *state;
    az_store *st = NULL;
    az_client c;
    char id[16], json[300];
    raw_put(f, "meta", "schema", "1");
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "c%03d", i);
        snprintf(json, sizeof json,
                 "{\"id\":\"%s\",\"name\":\"n%d\",\"redirect_uris\":[\"https://x.example/%d\"],"
                 "\"kind\":0,\"auth\":0,\"cls\":\"preregistered\",\"created_ms\":%d}",
                 id, i, i, i);
        raw_put(f, "clients", id, json);
    }
    assert_int_equal(open_store(f, &st), PL_OK);
    for (int i = 0; i < 150; i++) {
        char want[32];
        snprintf(id, sizeof id, "c%03d", i);
        assert_int_equal(az_client_get(st, id, &c), PL_OK);
        snprintf(want, sizeof want, "https://x.example/%d", i);
        assert_string_equal(c.redirect_uris[0], want);
        assert_int_equal(c.created_ms, i);
    }
    az_store_free(st);
}

/* Reads key (len bytes) of the named database into out (cap bytes); returns its length. */
static size_t raw_get(const fx *f, const char *db, const void *key, size_t klen, uint8_t *out,
                      size_t cap)
{
    MDB_env *env = NULL;
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key}, v;
    size_t n;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->path, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    assert_int_equal(mdb_dbi_open(t, db, 0, &dbi), 0);
    assert_int_equal(mdb_get(t, dbi, &k, &v), 0);
    assert_true(v.mv_size <= cap);
    memcpy(out, v.mv_data, v.mv_size);
    n = v.mv_size;
    mdb_txn_abort(t);
    mdb_env_close(env);
    return n;
}

static void raw_put_bin(const fx *f, const char *db, const void *key, size_t klen,
                        const uint8_t *val, size_t vlen)
{
    MDB_env *env = NULL;
    MDB_txn *t = NULL;
    MDB_dbi dbi;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, f->path, MDB_NOSYNC, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &t), 0);
    assert_int_equal(mdb_dbi_open(t, db, 0, &dbi), 0);
    assert_int_equal(mdb_put(t, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(t), 0);
    mdb_env_close(env);
}

/* A grant record of the first binary layout (version 1: no rot_gen) whose refresh records
 * carry the rotation state, as the earlier version kept it: one retry of the token rotated
 * last is still allowed, a second one revokes; after that rotation the grant is rewritten in
 * the current layout. */
static void test_grant_record_v1(void **state)
{
    fx *f = *state;
    az_store *st = NULL;
    az_store_cfg cfg = {0};
    core_fake_clock clock;
    az_code c;
    az_grant g;
    az_redeem in = {"client-1", "https://app.example/cb",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", NULL};
    char code[AZ_SECRET_SIZE], rt1[AZ_SECRET_SIZE], rt2[AZ_SECRET_SIZE], rt3[AZ_SECRET_SIZE];
    uint8_t h[CORE_SHA256_LEN], rec[4096];
    const char *why;
    size_t n;
    int64_t now;

    core_fake_clock_init(&clock, 1800000000000LL);
    cfg.data_dir = f->dir;
    cfg.nosync = 1;
    cfg.scrypt_n = 1024;
    cfg.clock = &clock.base;
    memset(&c, 0, sizeof c);
    snprintf(c.client_id, sizeof c.client_id, "client-1");
    snprintf(c.redirect_uri, sizeof c.redirect_uri, "https://app.example/cb");
    core_sha256(in.verifier, strlen(in.verifier), h);
    core_b64url_encode(h, sizeof h, c.challenge, sizeof c.challenge, NULL);
    snprintf(c.resource, sizeof c.resource, "https://mcp.example/mcp");
    snprintf(c.ws, sizeof c.ws, "acme");
    snprintf(c.uid, sizeof c.uid, "u_test");
    snprintf(c.cls, sizeof c.cls, "preregistered");
    c.scope = 3;
    assert_int_equal(az_store_open(&cfg, &st), PL_OK);
    assert_int_equal(az_code_issue(st, &c, code), PL_OK);
    assert_int_equal(az_code_redeem(st, code, &in, &g, rt1, &why), PL_OK);
    assert_int_equal(az_refresh_rotate(st, rt1, "client-1", NULL, &g, rt2, &why), PL_OK);
    az_store_free(st);
    st = NULL;

    /* Rewrite as the earlier version left it: the grant without its last field (rot_gen),
     * version byte 1; rt1's refresh record marked rotated now (rotated_ms after gid, gen and
     * created_ms: 1 + 2 + len(gid) + 16 bytes in). */
    n = raw_get(f, "grants", g.gid, strlen(g.gid), rec, sizeof rec);
    assert_int_equal(rec[0], 2);
    rec[0] = 1;
    raw_put_bin(f, "grants", g.gid, strlen(g.gid), rec, n - 8);
    core_sha256(rt1, strlen(rt1), h);
    n = raw_get(f, "refresh", h, sizeof h, rec, sizeof rec);
    now = core_clock_now_ms(&clock.base);
    memcpy(rec + 1 + 2 + strlen(g.gid) + 16, &now, sizeof now);
    raw_put_bin(f, "refresh", h, sizeof h, rec, n);

    assert_int_equal(az_store_open(&cfg, &st), PL_OK);
    assert_int_equal(az_grant_get(st, g.gid, &g), PL_OK);
    assert_int_equal(g.rot_gen, -1);
    core_fake_clock_advance(&clock, 1000);
    assert_int_equal(az_refresh_rotate(st, rt1, "client-1", NULL, &g, rt3, &why), PL_OK);
    assert_int_equal(az_grant_get(st, g.gid, &g), PL_OK);
    assert_int_equal(g.rot_gen, 1); /* rewritten in the current layout */
    assert_int_equal(az_refresh_rotate(st, rt1, "client-1", NULL, &g, rt2, &why), PL_ERR_CONFLICT);
    az_store_free(st);
}

static void test_upgrade_refuses_bad_record(void **state)
{
    fx *f = *state;
    az_store *st = NULL;
    uint8_t secret_hash[CORE_SHA256_LEN] = {0};
    char schema[8];
    make_schema1(f, secret_hash);
    raw_put(f, "clients", "broken", "{\"id\":\"broken\",");
    assert_int_equal(open_store(f, &st), PL_ERR_STORE);
    assert_null(st);
    raw_schema(f, schema);
    assert_string_equal(schema, "1"); /* nothing changed: the upgrade is one transaction */
}

static void test_unknown_schema_refused(void **state)
{
    fx *f = *state;
    az_store *st = NULL;
    az_directory *d = NULL;
    raw_put(f, "meta", "schema", "3");
    assert_int_equal(open_store(f, &st), PL_ERR_UNSUPPORTED);
    assert_null(st);
    assert_int_equal(az_directory_open(f->dir, &d), PL_ERR_UNSUPPORTED);
    assert_null(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upgrade_from_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grant_record_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_refuses_bad_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_schema_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
