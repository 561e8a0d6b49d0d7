/* tests/keys/test_presign.c — precomputed ECDSA nonces (keys/keyset.h, key_keyset_presign):
 * tokens signed with a precomputed pair and in full verify with keys/verify (both backends:
 * OpenSSL and liboauth2) and with a plain EVP_DigestVerify written here, over many keys and
 * messages; a pair signs once (every r differs, also for identical messages; the pool shrinks
 * by one per token); the pool is emptied by every change of the keys; several threads filling
 * and minting at once. */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ecdsa.h>

#include "core/clock.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"

#include "helpers.h"

typedef struct fx {
    char root[256], data[300];
    core_fake_clock clock;
    key_keyset *ks;
    key_verifier *v[2]; /* KEY_SIG_OPENSSL, KEY_SIG_LIBOAUTH2 */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    key_keyset_cfg cfg = {0};
    key_error err;
    temp_data(f->root, f->data);
    core_fake_clock_init(&f->clock, T_START_MS);
    cfg.data_dir = f->data;
    cfg.clock = &f->clock.base;
    cfg.create = 1;
    if (key_keyset_open(&cfg, &f->ks, &err) != PL_OK)
        return -1;
    for (int b = 0; b < 2; b++) {
        key_verifier_cfg vc = {.issuer = T_ISS,
                               .audience = T_AUD,
                               .leeway_s = 30,
                               .cache_entries = 0,
                               .clock = &f->clock.base,
                               .keyset = f->ks,
                               .backend = b ? KEY_SIG_LIBOAUTH2 : KEY_SIG_OPENSSL};
        if (key_verifier_new(&vc, &f->v[b]) != PL_OK)
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    key_verifier_free(f->v[0]);
    key_verifier_free(f->v[1]);
    key_keyset_free(f->ks);
    rm_tree(f->root);
    free(f);
    return 0;
}

static void fill(fx *f, size_t target)
{
    size_t count = 0;
    do
        assert_int_equal(key_keyset_presign(f->ks, target, &count), PL_OK);
    while (count < target);
    assert_int_equal(key_keyset_presigned(f->ks), target);
}

/* The token's signature checked with OpenSSL alone: the public key from <kid>.pub, R||S
 * turned into an ECDSA_SIG here, EVP_DigestVerify over header.payload. Returns 1 if valid;
 * r (32 bytes) gets R. */
static int evp_verify(fx *f, const char *tok, const char *kid, uint8_t r[32])
{
    char path[512];
    const char *dot = strrchr(tok, '.');
    uint8_t rs[64], der[80], *p = der;
    size_t rslen = 0;
    int derlen, ok;
    FILE *fp;
    EVP_PKEY *pub;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *sig = ECDSA_SIG_new();
    assert_non_null(dot);
    assert_int_equal(core_b64url_decode(dot + 1, strlen(dot + 1), rs, sizeof rs, &rslen), PL_OK);
    assert_int_equal(rslen, 64);
    memcpy(r, rs, 32);
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL)), 1);
    derlen = i2d_ECDSA_SIG(sig, &p);
    assert_true(derlen > 0);
    snprintf(path, sizeof path, "%s/keys/%s.pub", f->data, kid);
    fp = fopen(path, "r");
    assert_non_null(fp);
    pub = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(pub);
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
         EVP_DigestVerify(md, der, (size_t)derlen, (const unsigned char *)tok,
                          (size_t)(dot - tok)) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    ECDSA_SIG_free(sig);
    return ok;
}

/* Verified by all three; R into r. */
static void check(fx *f, const char *tok, const char *kid, const char *sub, uint8_t r[32])
{
    char bad[KEY_TOKEN_MAX];
    uint8_t r2[32];
    for (int b = 0; b < 2; b++) {
        key_verified out;
        key_reason why = KEY_REASON__COUNT;
        assert_int_equal(key_verifier_verify(f->v[b], tok, strlen(tok), &out, &why), PL_OK);
        assert_int_equal(why, KEY_REASON_NONE);
        assert_string_equal(out.kid, kid);
        assert_string_equal(out.sub, sub);
    }
    assert_true(evp_verify(f, tok, kid, r));
    /* and a changed signature is refused (the check above could fail) */
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    assert_false(evp_verify(f, bad, kid, r2));
}

static int cmp_r(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Every R distinct (each pair used once; a full signature draws its own k). */
static void assert_distinct(uint8_t (*rs)[32], size_t n)
{
    qsort(rs, n, 32, cmp_r);
    for (size_t i = 1; i < n; i++)
        assert_true(memcmp(rs[i - 1], rs[i], 32) != 0);
}

#define NKEYS   6
#define PER_KEY 60 /* tokens per key: 40 with precomputed nonces, 20 in full */

static void test_differential_many_keys(void **state)
{
    fx *f = *state;
    uint8_t(*rs)[32] = calloc((size_t)NKEYS * PER_KEY, 32);
    size_t nr = 0;
    assert_non_null(rs);
    for (int k = 0; k < NKEYS; k++) {
        char kid[KEY_KID_SIZE], newkid[KEY_KID_SIZE];
        key_error err;
        snprintf(kid, sizeof kid, "%s", key_keyset_active_kid(f->ks));
        fill(f, 40);
        for (int i = 0; i < PER_KEY; i++) {
            char tok[KEY_TOKEN_MAX], sub[64], scope[64];
            key_claims c = {.iss = T_ISS,
                            .aud = T_AUD,
                            .client_id = "https://client.example/cimd",
                            .ws = "ws-1",
                            .gid = "grant-1",
                            .cls = "ai"};
            key_minted m;
            size_t before = key_keyset_presigned(f->ks);
            snprintf(sub, sizeof sub, "user-%d-%d", k, i);
            snprintf(scope, sizeof scope, "%s", i % 3 ? "posts:read" : "posts:read drafts:create");
            c.sub = sub;
            c.scope = scope;
            assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, &m),
                             PL_OK);
            /* one pair per token while there are any, none taken once empty */
            assert_int_equal(key_keyset_presigned(f->ks), before ? before - 1 : 0);
            assert_string_equal(m.kid, kid);
            check(f, tok, kid, sub, rs[nr++]);
        }
        core_fake_clock_advance(&f->clock, 1000);
        assert_int_equal(key_keyset_rotate(f->ks, newkid, &err), PL_OK);
        assert_string_not_equal(newkid, kid);
    }
    assert_distinct(rs, nr);
    free(rs);
}

/* The same message twice (jti given, clock fixed): two different signatures, both valid. */
static void test_same_message_new_nonce(void **state)
{
    fx *f = *state;
    enum { N = 200 };
    uint8_t(*rs)[32] = calloc(N, 32);
    char first[KEY_TOKEN_MAX] = "", tok[KEY_TOKEN_MAX];
    key_claims c = {.iss = T_ISS,
                    .sub = "user-1",
                    .aud = T_AUD,
                    .client_id = "c",
                    .scope = "posts:read",
                    .ws = "ws-1",
                    .gid = "grant-1",
                    .cls = "ai",
                    .jti = "fixed-jti"};
    const char *kid = key_keyset_active_kid(f->ks);
    assert_non_null(rs);
    fill(f, N / 2); /* half with precomputed nonces, half in full */
    for (int i = 0; i < N; i++) {
        assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, NULL),
                         PL_OK);
        if (!first[0])
            snprintf(first, sizeof first, "%s", tok);
        else /* same header and payload, another signature */
            assert_int_equal(strncmp(first, tok, (size_t)(strrchr(tok, '.') - tok)), 0);
        check(f, tok, kid, "user-1", rs[i]);
    }
    assert_distinct(rs, N);
    free(rs);
}

/* Every change of the keys empties the pool; tokens after it are signed by the new active key. */
static void test_pool_emptied_on_key_change(void **state)
{
    fx *f = *state;
    char tok[KEY_TOKEN_MAX], kid[KEY_KID_SIZE], kid2[KEY_KID_SIZE];
    uint8_t r[32];
    key_error err;
    key_minted m;
    key_info ki;
    size_t removed = 0;
    key_claims c = {.iss = T_ISS,
                    .sub = "user-1",
                    .aud = T_AUD,
                    .client_id = "c",
                    .scope = "",
                    .ws = "ws-1",
                    .gid = "grant-1",
                    .cls = "ai"};

    fill(f, 16);
    assert_int_equal(key_keyset_rotate(f->ks, kid, &err), PL_OK);
    assert_int_equal(key_keyset_presigned(f->ks), 0);
    fill(f, 16);
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, &m), PL_OK);
    assert_string_equal(m.kid, kid);
    assert_int_equal(key_keyset_presigned(f->ks), 15);
    check(f, tok, kid, "user-1", r);

    /* a rotation by another process (postly-keys), seen at reload */
    fill(f, 16);
    {
        key_keyset *other = NULL;
        key_keyset_cfg cfg = {.data_dir = f->data, .clock = &f->clock.base};
        assert_int_equal(key_keyset_open(&cfg, &other, &err), PL_OK);
        assert_int_equal(key_keyset_rotate(other, kid2, &err), PL_OK);
        key_keyset_free(other);
    }
    assert_int_equal(key_keyset_reload(f->ks, &err), PL_OK);
    assert_int_equal(key_keyset_presigned(f->ks), 0);

    /* remove the next key (a compromised key) */
    fill(f, 16);
    for (size_t i = 0; i < key_keyset_count(f->ks); i++)
        if (key_keyset_get(f->ks, i, &ki) == PL_OK && ki.state == KEY_STATE_NEXT)
            break;
    assert_int_equal(ki.state, KEY_STATE_NEXT);
    assert_int_equal(key_keyset_remove(f->ks, ki.kid, &err), PL_OK);
    assert_int_equal(key_keyset_presigned(f->ks), 0);

    /* prune once the retired keys may go */
    fill(f, 16);
    core_fake_clock_advance(&f->clock, 700 * 1000LL);
    assert_int_equal(key_keyset_prune(f->ks, &removed, &err), PL_OK);
    assert_true(removed >= 1);
    assert_int_equal(key_keyset_presigned(f->ks), 0);
    fill(f, 4);
    assert_int_equal(key_token_mint(f->ks, &f->clock.base, &c, tok, sizeof tok, NULL, &m), PL_OK);
    assert_string_equal(m.kid, kid2);
    check(f, tok, kid2, "user-1", r);
}

static void test_presign_arguments(void **state)
{
    fx *f = *state;
    size_t count = 99;
    key_keyset *pub = NULL;
    key_keyset_cfg cfg = {.data_dir = f->data, .clock = &f->clock.base, .public_only = 1};
    key_error err;

    assert_int_equal(key_keyset_presign(NULL, 1, &count), PL_ERR_INVALID);
    assert_int_equal(key_keyset_presign(f->ks, KEY_PRESIGN_MAX + 1, &count), PL_ERR_INVALID);
    assert_int_equal(key_keyset_presigned(NULL), 0);
    /* target reached: nothing more is computed */
    fill(f, 3);
    assert_int_equal(key_keyset_presign(f->ks, 3, &count), PL_OK);
    assert_int_equal(count, 3);
    assert_int_equal(key_keyset_presign(f->ks, 2, &count), PL_OK);
    assert_int_equal(count, 3);
    assert_int_equal(key_keyset_presign(f->ks, 0, NULL), PL_OK);
    assert_int_equal(key_keyset_presigned(f->ks), 3);
    /* no private key, no pool */
    assert_int_equal(key_keyset_open(&cfg, &pub, &err), PL_OK);
    assert_int_equal(key_keyset_presign(pub, 4, &count), PL_ERR_STATE);
    assert_int_equal(count, 0);
    assert_int_equal(key_keyset_presigned(pub), 0);
    key_keyset_free(pub);
    /* freeing a key set with pairs in the pool (ASan: nothing leaks) is the teardown's */
}

/* One thread fills while three mint: every token valid, every R distinct. */
#define MT_MINTERS 3
#define MT_TOKENS  150

typedef struct mt {
    fx *f;
    char (*toks)[KEY_TOKEN_MAX];
    int failed;
    atomic_int *stop;
} mt;

static void *minter(void *p)
{
    mt *a = p;
    key_claims c = {.iss = T_ISS,
                    .sub = "user-1",
                    .aud = T_AUD,
                    .client_id = "c",
                    .scope = "posts:read",
                    .ws = "ws-1",
                    .gid = "grant-1",
                    .cls = "ai"};
    for (int i = 0; i < MT_TOKENS; i++)
        if (key_token_mint(a->f->ks, &a->f->clock.base, &c, a->toks[i], KEY_TOKEN_MAX, NULL,
                           NULL) != PL_OK)
            a->failed = 1;
    return NULL;
}

static void *filler(void *p)
{
    mt *a = p;
    while (!atomic_load(a->stop)) {
        pl_rc rc = key_keyset_presign(a->f->ks, 32, NULL);
        if (rc != PL_OK && rc != PL_ERR_BUSY)
            a->failed = 1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    fx *f = *state;
    pthread_t th[MT_MINTERS + 1];
    mt args[MT_MINTERS + 1];
    atomic_int stop = 0;
    char(*toks)[KEY_TOKEN_MAX] = calloc((size_t)MT_MINTERS * MT_TOKENS, KEY_TOKEN_MAX);
    uint8_t(*rs)[32] = calloc((size_t)MT_MINTERS * MT_TOKENS, 32);
    const char *kid = key_keyset_active_kid(f->ks);
    assert_non_null(toks);
    assert_non_null(rs);
    args[MT_MINTERS] = (mt){f, NULL, 0, &stop};
    assert_int_equal(pthread_create(&th[MT_MINTERS], NULL, filler, &args[MT_MINTERS]), 0);
    for (int t = 0; t < MT_MINTERS; t++) {
        args[t] = (mt){f, toks + (size_t)t * MT_TOKENS, 0, &stop};
        assert_int_equal(pthread_create(&th[t], NULL, minter, &args[t]), 0);
    }
    for (int t = 0; t < MT_MINTERS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
        assert_int_equal(args[t].failed, 0);
    }
    atomic_store(&stop, 1);
    assert_int_equal(pthread_join(th[MT_MINTERS], NULL), 0);
    assert_int_equal(args[MT_MINTERS].failed, 0);
    for (int i = 0; i < MT_MINTERS * MT_TOKENS; i++)
        check(f, toks[i], kid, "user-1", rs[i]);
    assert_distinct(rs, (size_t)MT_MINTERS * MT_TOKENS);
    free(rs);
    free(toks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_differential_many_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_message_new_nonce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_emptied_on_key_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presign_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
