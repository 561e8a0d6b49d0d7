#include "store.h"
#include "record.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#define PENDING_TTL_MS   ((int64_t)15 * 60 * 1000)
#define THROTTLE_WIN_MS  ((int64_t)15 * 60 * 1000)
#define THROTTLE_ACCOUNT 5  /* failures per account per window */
#define THROTTLE_ADDR    20 /* failures per address per window */
#define SCRYPT_N_DEFAULT 32768
#define SCRYPT_R         8
#define SCRYPT_P         1
#define SCRYPT_MAXMEM    ((uint64_t)256 * 1024 * 1024)
#define RAND_POOL        512
/* meta "schema": 2 = users and clients as binary records (1: JSON, upgraded at open). */
#define SCHEMA_VERSION "2"

/* The named databases; the first three are also read by directory.c. */
enum {
    DB_META,
    DB_WORKSPACES,
    DB_MEMBERS,
    DB_GRANT_STATE,
    DB_USERS,
    DB_USERNAMES,
    DB_CLIENTS,
    DB_DCR_FP,
    DB_DCR_COUNT,
    DB_PENDING,
    DB_SESSIONS,
    DB_CODES,
    DB_GRANTS,
    DB_USER_GRANTS,
    DB_REFRESH,
    DB_CONSENTS,
    DB_THROTTLE,
    DB_CLIENT_GRANTS, /* SHA-256(client_id) + gid -> "" : does a client still have grants */
    DB__COUNT
};
static const char *const db_names[DB__COUNT] = {
    "meta",    "workspaces",  "members",   "grant_state", "users",    "usernames",
    "clients", "dcr_fp",      "dcr_count", "pending",     "sessions", "codes",
    "grants",  "user_grants", "refresh",   "consents",    "throttle", "client_grants",
};

struct az_store {
    MDB_env *env;
    MDB_dbi db[DB__COUNT];
    /* Group commit (az_store_batch_*): the open top-level write transaction, whether the
     * current calls join it, and whether an early flush of it failed. */
    MDB_txn *batch;
    int in_batch;
    int batch_failed;
    int nometasync;
    EVP_MD *sha256;      /* fetched once */
    EVP_MD_CTX *sha_ctx; /* reused for every secret's hash (no context per call) */
    /* The SHA-256 of the client id hashed last (the client_grants key of a new grant). */
    char last_cid[AZ_CLIENT_ID_MAX + 1];
    uint8_t last_cid_hash[CORE_SHA256_LEN];
    /* Random bytes for ids and secrets: one RAND_bytes call fills RAND_POOL bytes, each use
     * takes (and wipes) the next ones. Same generator, fewer calls (a call costs as much as
     * ~200 bytes of output). */
    uint8_t rand_pool[RAND_POOL];
    size_t rand_used;
    const core_clock *clock;
    uint64_t scrypt_n;
    int64_t session_ttl_ms, refresh_grace_ms, refresh_ttl_ms;
};

/* ---- small helpers ------------------------------------------------------------------ */

int az_id_valid(const char *s)
{
    return az_rec_id_valid(s);
}

static int64_t now_ms(const az_store *st)
{
    return core_clock_now_ms(st->clock);
}

/* Copies src into dst, truncated to dstsz - 1 bytes like snprintf (dstsz > 0). */
static void cpy(char *dst, size_t dstsz, const char *src)
{
    size_t n = src ? strnlen(src, dstsz - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static MDB_val sval(const char *s)
{
    MDB_val v = {strlen(s), (void *)s};
    return v;
}

/* Commits the open batch (one fsync for every operation in it). An early flush (a call from
 * outside the batch needs the write lock) also completes durability at once; the regular
 * commit leaves the meta sync to the caller (az_store_batch_commit). */
static pl_rc batch_flush(az_store *st, int early)
{
    pl_rc rc;
    if (!st->batch)
        return PL_OK;
    rc = az_rec_mdb(mdb_txn_commit(st->batch));
    st->batch = NULL;
    if (rc == PL_OK && early && st->nometasync)
        rc = mdb_env_sync(st->env, 1) == 0 ? PL_OK : PL_ERR_IO;
    if (rc != PL_OK)
        st->batch_failed = 1;
    return rc;
}

/* A write transaction: inside a batch, the batch itself (no child transactions: they cost a
 * 2 MB dirty list each; the batched operations validate before they write, and a failed
 * write fails the whole batch); outside, a top-level one (after committing a batch left
 * open: LMDB allows one write transaction per thread). */
static pl_rc wtxn(az_store *st, MDB_txn **t)
{
    pl_rc rc;
    if (st->in_batch) {
        if (!st->batch) {
            rc = az_rec_mdb(mdb_txn_begin(st->env, NULL, 0, &st->batch));
            if (rc != PL_OK)
                return rc;
        }
        *t = st->batch;
        return PL_OK;
    }
    rc = batch_flush(st, 1);
    if (rc != PL_OK)
        return rc;
    return az_rec_mdb(mdb_txn_begin(st->env, NULL, 0, t));
}

/* A read transaction: inside a batch, the batch itself (reads see its uncommitted writes);
 * end it with rdone(), never mdb_txn_abort(). */
static pl_rc rtxn(az_store *st, MDB_txn **t)
{
    pl_rc rc;
    if (st->in_batch && st->batch) {
        *t = st->batch;
        return PL_OK;
    }
    rc = batch_flush(st, 1);
    if (rc != PL_OK)
        return rc;
    return az_rec_mdb(mdb_txn_begin(st->env, NULL, MDB_RDONLY, t));
}

static void rdone(az_store *st, MDB_txn *t)
{
    if (t != st->batch)
        mdb_txn_abort(t);
}

/* Abandons a write transaction after a failure without writes (keeps a batch open). */
static void wabort(az_store *st, MDB_txn *t)
{
    if (t && t != st->batch)
        mdb_txn_abort(t);
}

/* ---- binary records --------------------------------------------------------------------
 * Codes, grants and refresh tokens are on the hot path of /token: they are stored as a
 * version byte and fields in a fixed order (strings: u16 length + bytes; integers: 8 bytes,
 * host order — the store never leaves the machine). */
#define REC_VERSION 1

typedef struct rec_w {
    uint8_t b[8192];
    size_t n;
    int err;
} rec_w;

typedef struct rec_r {
    const uint8_t *p;
    size_t n, off;
    int err;
} rec_r;

static void w_bytes(rec_w *w, const void *p, size_t n)
{
    if (w->err || n > sizeof w->b - w->n) {
        w->err = 1;
        return;
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_str(rec_w *w, const char *s)
{
    size_t n = strlen(s);
    uint16_t l = (uint16_t)n;
    if (n > 0xffff)
        w->err = 1;
    w_bytes(w, &l, sizeof l);
    w_bytes(w, s, n);
}

static void w_i64(rec_w *w, int64_t v)
{
    w_bytes(w, &v, sizeof v);
}

static void r_bytes(rec_r *r, void *out, size_t n)
{
    if (r->err || n > r->n - r->off) {
        r->err = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p + r->off, n);
    r->off += n;
}

static void r_str(rec_r *r, char *out, size_t outsz)
{
    uint16_t l = 0;
    r_bytes(r, &l, sizeof l);
    if (r->err || l >= outsz || l > r->n - r->off) {
        r->err = 1;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->p + r->off, l);
    out[l] = '\0';
    r->off += l;
}

static int64_t r_i64(rec_r *r)
{
    int64_t v = 0;
    r_bytes(r, &v, sizeof v);
    return v;
}

static rec_r rec_open(const MDB_val *v)
{
    rec_r r = {v->mv_data, v->mv_size, 1, 0};
    if (v->mv_size < 1 || ((const uint8_t *)v->mv_data)[0] != REC_VERSION)
        r.err = 1;
    return r;
}

/* A record whose layout has versions 1..max: *ver gets the one read. */
static rec_r rec_open_upto(const MDB_val *v, uint8_t max, uint8_t *ver)
{
    rec_r r = {v->mv_data, v->mv_size, 1, 0};
    *ver = v->mv_size >= 1 ? ((const uint8_t *)v->mv_data)[0] : 0;
    if (*ver < 1 || *ver > max)
        r.err = 1;
    return r;
}

static void rec_start_v(rec_w *w, uint8_t ver)
{
    w->n = 0;
    w->err = 0;
    w_bytes(w, &ver, 1);
}

static void rec_start(rec_w *w)
{
    rec_start_v(w, REC_VERSION);
}

static pl_rc rec_put(MDB_txn *t, MDB_dbi db, MDB_val k, const rec_w *w)
{
    MDB_val v = {w->n, (void *)w->b};
    if (w->err)
        return PL_ERR_TOO_LARGE;
    return az_rec_mdb(mdb_put(t, db, &k, &v, 0));
}

pl_rc az_store_sync(az_store *st)
{
    return mdb_env_sync(st->env, 1) == 0 ? PL_OK : PL_ERR_IO;
}

void az_store_batch_enter(az_store *st)
{
    st->in_batch = 1;
}

void az_store_batch_leave(az_store *st)
{
    st->in_batch = 0;
}

int az_store_batch_pending(const az_store *st)
{
    return st->batch != NULL || st->batch_failed;
}

pl_rc az_store_batch_commit(az_store *st, int *needs_sync)
{
    int had = st->batch != NULL;
    pl_rc rc = batch_flush(st, 0);
    if (st->batch_failed)
        rc = PL_ERR_STORE;
    st->batch_failed = 0;
    if (needs_sync)
        *needs_sync = rc == PL_OK && had && st->nometasync;
    return rc;
}

/* Commits when rc is PL_OK, aborts otherwise; returns the final rc. The batch itself is left
 * open: az_store_batch_commit() commits it (a failed operation in a batch has made no write:
 * the batched operations validate before they write). */
static pl_rc finish(az_store *st, MDB_txn *t, pl_rc rc)
{
    if (!t || t == st->batch)
        return rc;
    if (rc != PL_OK) {
        mdb_txn_abort(t);
        return rc;
    }
    rc = az_rec_mdb(mdb_txn_commit(t));
    /* Outside a batch a commit is acknowledged right away: complete its durability. */
    if (rc == PL_OK && st->nometasync && mdb_env_sync(st->env, 1) != 0)
        rc = PL_ERR_IO;
    return rc;
}

static pl_rc put_json(MDB_txn *t, MDB_dbi db, MDB_val k, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    MDB_val v;
    pl_rc rc;
    if (!s)
        return PL_ERR_NOMEM;
    v.mv_data = s;
    v.mv_size = strlen(s);
    rc = az_rec_mdb(mdb_put(t, db, &k, &v, 0));
    free(s);
    return rc;
}

static pl_rc get_json(MDB_txn *t, MDB_dbi db, MDB_val k, json_t **o)
{
    MDB_val v;
    pl_rc rc = az_rec_mdb(mdb_get(t, db, &k, &v));
    *o = NULL;
    if (rc != PL_OK)
        return rc;
    *o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    return *o ? PL_OK : PL_ERR_STORE;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t jint(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

/* The lookup key of a secret: its SHA-256. */
static void secret_key(az_store *st, const char *secret, uint8_t out[CORE_SHA256_LEN])
{
    /* The SHA-256 implementation is fetched once and one digest context reused (an implicit
     * fetch per call costs a lock and a property lookup in OpenSSL 3, a new context two
     * allocations); core_sha256 when either failed. */
    size_t n = strlen(secret);
    if (!st->sha_ctx || EVP_DigestInit_ex2(st->sha_ctx, st->sha256, NULL) != 1 ||
        EVP_DigestUpdate(st->sha_ctx, secret, n) != 1 ||
        EVP_DigestFinal_ex(st->sha_ctx, out, NULL) != 1)
        core_sha256(secret, n, out);
}

/* SHA-256 of a client id, remembered for the next call (a client's requests come in runs). */
static void client_key(az_store *st, const char *client_id, uint8_t out[CORE_SHA256_LEN])
{
    if (!st->last_cid[0] || strcmp(st->last_cid, client_id) != 0) {
        secret_key(st, client_id, st->last_cid_hash);
        cpy(st->last_cid, sizeof st->last_cid, client_id);
    }
    memcpy(out, st->last_cid_hash, CORE_SHA256_LEN);
}

/* n random bytes from the pool (n <= RAND_POOL), refilled from core_random when short. */
static pl_rc pool_random(az_store *st, uint8_t *out, size_t n)
{
    if (n > RAND_POOL)
        return core_random(out, n);
    if (RAND_POOL - st->rand_used < n) {
        pl_rc rc = core_random(st->rand_pool, RAND_POOL);
        if (rc != PL_OK)
            return rc;
        st->rand_used = 0;
    }
    memcpy(out, st->rand_pool + st->rand_used, n);
    core_wipe(st->rand_pool + st->rand_used, n);
    st->rand_used += n;
    return PL_OK;
}

/* core_random_token from the pool: nbytes random bytes, base64url, into out. */
static pl_rc pool_token(az_store *st, char *out, size_t outsz, size_t nbytes)
{
    uint8_t raw[64];
    pl_rc rc = nbytes <= sizeof raw ? pool_random(st, raw, nbytes) : PL_ERR_INVALID;
    if (rc == PL_OK)
        rc = core_b64url_encode(raw, nbytes, out, outsz, NULL);
    core_wipe(raw, sizeof raw);
    return rc;
}

/* prefix (2 bytes: "g_", "u_", "c_") and 16 random bytes in base64url. */
static pl_rc new_id(az_store *st, const char *prefix, char out[AZ_ID_MAX + 1])
{
    memcpy(out, prefix, 2);
    return pool_token(st, out + 2, AZ_ID_MAX - 1, 16);
}

/* The lookup key of a presented secret (session id, code, refresh token): PL_ERR_NOT_FOUND
 * when it cannot be one (not AZ_SECRET_LEN characters). */
static pl_rc presented_key(az_store *st, const char *secret, uint8_t h[CORE_SHA256_LEN])
{
    if (!secret || strlen(secret) != AZ_SECRET_LEN)
        return PL_ERR_NOT_FOUND;
    secret_key(st, secret, h);
    return PL_OK;
}

static MDB_val hkey(uint8_t h[CORE_SHA256_LEN])
{
    MDB_val v = {CORE_SHA256_LEN, h};
    return v;
}

/* ---- open --------------------------------------------------------------------------- */

static pl_rc upgrade_from_1(az_store *st, MDB_txn *t);

pl_rc az_store_open(const az_store_cfg *cfg, az_store **out)
{
    pl_rc rc = PL_OK;
    az_store *st = NULL;
    MDB_txn *t = NULL;
    char path[4096];
    MDB_val k = sval("schema"), v;

    *out = NULL;
    if (!cfg->data_dir ||
        snprintf(path, sizeof path, "%s/authz", cfg->data_dir) >= (int)sizeof path)
        return PL_ERR_INVALID;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    st = calloc(1, sizeof *st);
    if (!st)
        return PL_ERR_NOMEM;
    st->clock = cfg->clock;
    st->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    st->sha_ctx = st->sha256 ? EVP_MD_CTX_new() : NULL;
    st->rand_used = RAND_POOL; /* filled at the first use */
    st->nometasync = !cfg->nosync && cfg->nometasync;
    st->scrypt_n = cfg->scrypt_n ? cfg->scrypt_n : SCRYPT_N_DEFAULT;
    st->session_ttl_ms = cfg->session_ttl_ms ? cfg->session_ttl_ms : (int64_t)12 * 3600 * 1000;
    st->refresh_grace_ms = cfg->refresh_grace_ms ? cfg->refresh_grace_ms : (int64_t)10 * 1000;
    st->refresh_ttl_ms = cfg->refresh_ttl_ms ? cfg->refresh_ttl_ms : (int64_t)30 * 24 * 3600 * 1000;
    if (mdb_env_create(&st->env) != 0 || mdb_env_set_maxdbs(st->env, 32) != 0 ||
        mdb_env_set_mapsize(st->env, cfg->map_size ? cfg->map_size : (size_t)1 << 30) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    if (mdb_env_open(st->env, path,
                     cfg->nosync       ? MDB_NOSYNC
                     : cfg->nometasync ? MDB_NOMETASYNC
                                       : 0,
                     0600) != 0) {
        rc = PL_ERR_STORE;
        goto out;
    }
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        goto out;
    for (int i = 0; i < DB__COUNT; i++) {
        if (mdb_dbi_open(t, db_names[i], MDB_CREATE, &st->db[i]) != 0) {
            rc = PL_ERR_STORE;
            goto out;
        }
    }
    if (mdb_get(t, st->db[DB_META], &k, &v) == MDB_NOTFOUND) {
        v = sval(SCHEMA_VERSION);
        rc = az_rec_mdb(mdb_put(t, st->db[DB_META], &k, &v, 0));
    } else if (v.mv_size == 1 && memcmp(v.mv_data, "1", 1) == 0) {
        /* Written by an earlier version: upgraded in this transaction, all or nothing. */
        rc = upgrade_from_1(st, t);
        v = sval(SCHEMA_VERSION);
        if (rc == PL_OK)
            rc = az_rec_mdb(mdb_put(t, st->db[DB_META], &k, &v, 0));
    } else if (v.mv_size != 1 || memcmp(v.mv_data, SCHEMA_VERSION, 1) != 0) {
        rc = PL_ERR_UNSUPPORTED; /* a newer (or unknown) layout: never guess */
    }
    rc = finish(st, t, rc);
    t = NULL;
    if (rc != PL_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    if (t)
        mdb_txn_abort(t);
    az_store_free(st);
    return rc;
}

void az_store_free(az_store *st)
{
    if (!st)
        return;
    if (st->batch)
        mdb_txn_abort(st->batch); /* never acknowledged: replies wait for the commit */
    if (st->env)
        mdb_env_close(st->env);
    EVP_MD_CTX_free(st->sha_ctx);
    EVP_MD_free(st->sha256);
    core_wipe(st->rand_pool, sizeof st->rand_pool);
    free(st);
}

/* ---- passwords (scrypt) ---------------------------------------------------------------
 * Stored as "scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>", 32-byte salt and hash. */

static pl_rc scrypt_raw(const char *pw, const uint8_t *salt, size_t saltlen, uint64_t n, uint64_t r,
                        uint64_t p, uint8_t out[32])
{
    return EVP_PBE_scrypt(pw, strlen(pw), salt, saltlen, n, r, p, SCRYPT_MAXMEM, out, 32) == 1
               ? PL_OK
               : PL_ERR_CRYPTO;
}

static pl_rc pw_hash(const az_store *st, const char *pw, char *out, size_t outsz)
{
    uint8_t salt[32], h[32];
    char s64[CORE_B64URL_SIZE(32)] = "", h64[CORE_B64URL_SIZE(32)] = "";
    pl_rc rc = core_random(salt, sizeof salt);
    if (rc == PL_OK)
        rc = scrypt_raw(pw, salt, sizeof salt, st->scrypt_n, SCRYPT_R, SCRYPT_P, h);
    if (rc == PL_OK)
        rc = core_b64url_encode(salt, 32, s64, sizeof s64, NULL);
    if (rc == PL_OK)
        rc = core_b64url_encode(h, 32, h64, sizeof h64, NULL);
    if (rc == PL_OK &&
        snprintf(out, outsz, "scrypt$%llu$%d$%d$%s$%s", (unsigned long long)st->scrypt_n, SCRYPT_R,
                 SCRYPT_P, s64, h64) >= (int)outsz)
        rc = PL_ERR_TOO_LARGE;
    core_wipe(h, sizeof h);
    return rc;
}

/* Parses one "$"-terminated unsigned decimal field at *p (advancing past the '$'). */
static int field_u64(const char **p, unsigned long long *out)
{
    char *end;
    errno = 0;
    *out = strtoull(*p, &end, 10);
    if (errno || end == *p || *end != '$')
        return 0;
    *p = end + 1;
    return 1;
}

/* Copies one base64url field ending at '$' or the end into out. */
static int field_b64(const char **p, char *out, size_t outsz)
{
    size_t n = strspn(*p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    if (n == 0 || n >= outsz || ((*p)[n] != '$' && (*p)[n] != '\0'))
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n + ((*p)[n] == '$');
    return 1;
}

/* PL_OK when pw matches the encoded hash; PL_ERR_DENIED otherwise. */
static pl_rc pw_verify(const char *enc, const char *pw)
{
    unsigned long long n, r, p;
    char s64[64], h64[64];
    uint8_t salt[48], want[48], got[32];
    size_t sl, hl;
    const char *q = enc;
    pl_rc rc = PL_ERR_DENIED;
    if (strncmp(q, "scrypt$", 7) != 0)
        return PL_ERR_DENIED;
    q += 7;
    if (!field_u64(&q, &n) || !field_u64(&q, &r) || !field_u64(&q, &p) ||
        !field_b64(&q, s64, sizeof s64) || !field_b64(&q, h64, sizeof h64) || *q)
        return PL_ERR_DENIED;
    if (n < 2 || n > (1u << 20) || r == 0 || r > 32 || p == 0 || p > 4)
        return PL_ERR_DENIED;
    if (core_b64url_decode(s64, strlen(s64), salt, sizeof salt, &sl) != PL_OK ||
        core_b64url_decode(h64, strlen(h64), want, sizeof want, &hl) != PL_OK || hl != 32)
        return PL_ERR_DENIED;
    if (scrypt_raw(pw, salt, sl, n, r, p, got) == PL_OK && core_ct_equal(got, want, 32))
        rc = PL_OK;
    core_wipe(got, sizeof got);
    return rc;
}

/* ---- users ----------------------------------------------------------------------------- */

static int username_valid(const char *u)
{
    size_t n = 0;
    if (!u)
        return 0;
    for (; u[n]; n++) {
        char c = u[n];
        if (n >= AZ_USERNAME_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return n > 0;
}

static int password_valid(const char *pw)
{
    size_t n = pw ? strlen(pw) : 0;
    return n >= 8 && n <= AZ_PASSWORD_MAX;
}

/* A user record: id, username, pw (the encoded scrypt hash), disabled, created_ms. */
typedef struct user_rec {
    az_user u;
    char pw[256];
} user_rec;

static void user_write(rec_w *w, const user_rec *r)
{
    rec_start(w);
    w_str(w, r->u.id);
    w_str(w, r->u.username);
    w_str(w, r->pw);
    w_i64(w, r->u.disabled);
    w_i64(w, r->u.created_ms);
}

static pl_rc user_decode(const MDB_val *v, user_rec *r)
{
    rec_r rr = rec_open(v);
    r_str(&rr, r->u.id, sizeof r->u.id);
    r_str(&rr, r->u.username, sizeof r->u.username);
    r_str(&rr, r->pw, sizeof r->pw);
    r->u.disabled = r_i64(&rr) != 0;
    r->u.created_ms = r_i64(&rr);
    return rr.err ? PL_ERR_STORE : PL_OK;
}

static pl_rc user_read(az_store *st, MDB_txn *t, const char *uid, user_rec *r)
{
    MDB_val k = sval(uid), v;
    pl_rc rc = az_rec_mdb(mdb_get(t, st->db[DB_USERS], &k, &v));
    return rc == PL_OK ? user_decode(&v, r) : rc;
}

pl_rc az_user_add(az_store *st, const char *username, const char *password,
                  char uid_out[AZ_ID_MAX + 1])
{
    MDB_txn *t = NULL;
    char uid[AZ_ID_MAX + 1];
    user_rec r;
    rec_w w;
    MDB_val k, v;
    pl_rc rc;
    if (!username_valid(username) || !password_valid(password))
        return PL_ERR_INVALID;
    memset(&r, 0, sizeof r);
    rc = new_id(st, "u_", uid);
    if (rc == PL_OK)
        rc = pw_hash(st, password, r.pw, sizeof r.pw); /* outside the write transaction */
    if (rc == PL_OK)
        rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    k = sval(username);
    v = sval(uid);
    rc = az_rec_mdb(mdb_put(t, st->db[DB_USERNAMES], &k, &v, MDB_NOOVERWRITE));
    if (rc == PL_OK) {
        cpy(r.u.id, sizeof r.u.id, uid);
        cpy(r.u.username, sizeof r.u.username, username);
        r.u.created_ms = now_ms(st);
        user_write(&w, &r);
        rc = rec_put(t, st->db[DB_USERS], sval(uid), &w);
    }
    rc = finish(st, t, rc);
    if (rc == PL_OK && uid_out)
        cpy(uid_out, AZ_ID_MAX + 1, uid);
    return rc;
}

static pl_rc uid_of(az_store *st, MDB_txn *t, const char *username, char uid[AZ_ID_MAX + 1])
{
    MDB_val k, v;
    pl_rc rc;
    if (!username_valid(username))
        return PL_ERR_NOT_FOUND;
    k = sval(username);
    rc = az_rec_mdb(mdb_get(t, st->db[DB_USERNAMES], &k, &v));
    if (rc == PL_OK) {
        if (v.mv_size > AZ_ID_MAX)
            return PL_ERR_STORE;
        memcpy(uid, v.mv_data, v.mv_size);
        uid[v.mv_size] = '\0';
    }
    return rc;
}

/* Sets the password hash (pw != NULL) and/or the disabled flag (disabled >= 0) of username's
 * record in one write transaction; revoke_grants also revokes every grant of the user. */
static pl_rc user_update(az_store *st, const char *username, const char *pw, int disabled,
                         int revoke_grants);

pl_rc az_user_passwd(az_store *st, const char *username, const char *password)
{
    char hash[256];
    pl_rc rc;
    if (!password_valid(password))
        return PL_ERR_INVALID;
    rc = pw_hash(st, password, hash, sizeof hash);
    if (rc != PL_OK)
        return rc;
    rc = user_update(st, username, hash, -1, 0);
    core_wipe(hash, sizeof hash);
    return rc;
}

pl_rc az_user_disable(az_store *st, const char *username, int disabled)
{
    return user_update(st, username, NULL, disabled != 0, disabled);
}

pl_rc az_user_get(az_store *st, const char *uid, az_user *out)
{
    MDB_txn *t = NULL;
    user_rec r;
    pl_rc rc;
    if (!az_id_valid(uid))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = user_read(st, t, uid, &r);
    if (rc == PL_OK)
        *out = r.u;
    core_wipe(r.pw, sizeof r.pw);
    rdone(st, t);
    return rc;
}

pl_rc az_user_find(az_store *st, const char *username, az_user *out)
{
    MDB_txn *t = NULL;
    char uid[AZ_ID_MAX + 1];
    pl_rc rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = uid_of(st, t, username, uid);
    rdone(st, t);
    return rc == PL_OK ? az_user_get(st, uid, out) : rc;
}

/* Throttle rows: key "u:<username>" or "a:<addr>", value {"n":failures,"t0":window start}. */
static int throttled(az_store *st, MDB_txn *t, const char *key, unsigned limit, int64_t now)
{
    json_t *o = NULL;
    int hit = 0;
    if (get_json(t, st->db[DB_THROTTLE], sval(key), &o) == PL_OK)
        hit = now - jint(o, "t0") < THROTTLE_WIN_MS && jint(o, "n") >= (int64_t)limit;
    json_decref(o);
    return hit;
}

/* Counts one event against key in db ({"n":count,"t0":window start}); a window older than
 * win starts again. PL_ERR_LIMIT (nothing written) when limit events are already counted. */
static pl_rc window_bump(az_store *st, MDB_txn *t, int db, const char *key, unsigned limit,
                         int64_t win, int64_t now)
{
    json_t *o = NULL;
    int64_t n = 0, t0 = now;
    pl_rc rc;
    if (get_json(t, st->db[db], sval(key), &o) == PL_OK && now - jint(o, "t0") < win) {
        n = jint(o, "n");
        t0 = jint(o, "t0");
    }
    json_decref(o);
    if (n >= (int64_t)limit)
        return PL_ERR_LIMIT;
    o = json_pack("{s:I,s:I}", "n", (json_int_t)n + 1, "t0", (json_int_t)t0);
    rc = o ? put_json(t, st->db[db], sval(key), o) : PL_ERR_NOMEM;
    json_decref(o);
    return rc;
}

static pl_rc throttle_bump(az_store *st, MDB_txn *t, const char *key, int64_t now)
{
    return window_bump(st, t, DB_THROTTLE, key, UINT_MAX, THROTTLE_WIN_MS, now);
}

pl_rc az_user_login_begin(az_store *st, const char *username, const char *addr, az_login *l)
{
    MDB_txn *t = NULL;
    user_rec r;
    int64_t now = now_ms(st);
    pl_rc rc;

    memset(l, 0, sizeof *l);
    l->disabled = 1;
    snprintf(l->ukey, sizeof l->ukey, "u:%.64s", username_valid(username) ? username : "?");
    snprintf(l->akey, sizeof l->akey, "a:%.64s", addr ? addr : "");
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    if (throttled(st, t, l->ukey, THROTTLE_ACCOUNT, now) ||
        throttled(st, t, l->akey, THROTTLE_ADDR, now)) {
        rdone(st, t);
        return PL_ERR_LIMIT;
    }
    if (uid_of(st, t, username, l->uid) == PL_OK && user_read(st, t, l->uid, &r) == PL_OK) {
        cpy(l->enc, sizeof l->enc, r.pw);
        l->disabled = r.u.disabled;
        core_wipe(r.pw, sizeof r.pw);
    }
    rdone(st, t);
    if (!l->enc[0]) {
        /* Unknown user: a hash with the store's parameters and a random salt that matches no
         * password, so checking it costs exactly one scrypt, like a real user (no user
         * enumeration by timing). */
        uint8_t salt[32], zero[32] = {0};
        char s64[CORE_B64URL_SIZE(32)] = "", z64[CORE_B64URL_SIZE(32)] = "";
        l->uid[0] = '\0';
        if (core_random(salt, sizeof salt) != PL_OK ||
            core_b64url_encode(salt, 32, s64, sizeof s64, NULL) != PL_OK ||
            core_b64url_encode(zero, 32, z64, sizeof z64, NULL) != PL_OK)
            return PL_ERR_CRYPTO;
        snprintf(l->enc, sizeof l->enc, "scrypt$%llu$%d$%d$%s$%s", (unsigned long long)st->scrypt_n,
                 SCRYPT_R, SCRYPT_P, s64, z64);
        l->unknown = 1;
    }
    return PL_OK;
}

int az_password_check(const char *enc, const char *password)
{
    return password && strlen(password) <= AZ_PASSWORD_MAX && pw_verify(enc, password) == PL_OK;
}

pl_rc az_user_login_finish(az_store *st, const az_login *l, int password_ok,
                           char uid_out[AZ_ID_MAX + 1])
{
    MDB_txn *t = NULL;
    int64_t now = now_ms(st);
    pl_rc rc = password_ok && !l->unknown && !l->disabled ? PL_OK : PL_ERR_DENIED;
    if (wtxn(st, &t) == PL_OK) {
        pl_rc wrc;
        if (rc == PL_OK) {
            MDB_val k = sval(l->ukey);
            int e = mdb_del(t, st->db[DB_THROTTLE], &k, NULL);
            wrc = e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE;
        } else {
            wrc = throttle_bump(st, t, l->ukey, now);
            if (wrc == PL_OK)
                wrc = throttle_bump(st, t, l->akey, now);
        }
        if (finish(st, t, wrc) != PL_OK && rc == PL_OK)
            rc = PL_ERR_STORE;
    }
    if (rc == PL_OK && uid_out)
        cpy(uid_out, AZ_ID_MAX + 1, l->uid);
    return rc;
}

pl_rc az_user_login(az_store *st, const char *username, const char *password, const char *addr,
                    char uid_out[AZ_ID_MAX + 1])
{
    az_login l;
    int ok;
    pl_rc rc = az_user_login_begin(st, username, addr, &l);
    if (rc != PL_OK)
        return rc;
    ok = az_password_check(l.enc, password);
    rc = az_user_login_finish(st, &l, ok, uid_out);
    core_wipe(&l, sizeof l);
    return rc;
}

/* ---- workspaces and members ------------------------------------------------------------- */

static int plan_valid(const char *p)
{
    return p && *p && strlen(p) < 32 &&
           strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(p);
}

static int name_valid(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len > AZ_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f)
            return 0;
    return 1;
}

pl_rc az_ws_add(az_store *st, const char *id, const char *name, const char *plan)
{
    MDB_txn *t = NULL;
    MDB_val k, v;
    json_t *o;
    pl_rc rc;
    if (!az_id_valid(id) || !name_valid(name) || !plan_valid(plan))
        return PL_ERR_INVALID;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    k = sval(id);
    if (mdb_get(t, st->db[DB_WORKSPACES], &k, &v) == 0)
        return finish(st, t, PL_ERR_EXISTS);
    o = json_pack("{s:s,s:s,s:s,s:I}", "id", id, "name", name, "plan", plan, "created_ms",
                  (json_int_t)now_ms(st));
    rc = o ? put_json(t, st->db[DB_WORKSPACES], k, o) : PL_ERR_NOMEM;
    json_decref(o);
    return finish(st, t, rc);
}

pl_rc az_ws_set_plan(az_store *st, const char *id, const char *plan)
{
    MDB_txn *t = NULL;
    json_t *o = NULL;
    pl_rc rc;
    if (!az_id_valid(id) || !plan_valid(plan))
        return PL_ERR_INVALID;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = get_json(t, st->db[DB_WORKSPACES], sval(id), &o);
    if (rc == PL_OK)
        rc = json_object_set_new(o, "plan", json_string(plan)) == 0
                 ? put_json(t, st->db[DB_WORKSPACES], sval(id), o)
                 : PL_ERR_NOMEM;
    json_decref(o);
    return finish(st, t, rc);
}

pl_rc az_ws_get(az_store *st, const char *id, az_dir_workspace *out)
{
    MDB_txn *t = NULL;
    pl_rc rc;
    if (!az_id_valid(id))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_workspace_get(t, st->db[DB_WORKSPACES], id, out);
    rdone(st, t);
    return rc;
}

static int role_valid(const char *r)
{
    static const char *const roles[] = {"owner", "admin", "editor", "viewer"};
    for (size_t i = 0; r && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(r, roles[i]) == 0)
            return 1;
    return 0;
}

pl_rc az_member_set(az_store *st, const char *uid, const char *ws, const char *role)
{
    MDB_txn *t = NULL;
    MDB_val k, v;
    char key[2 * AZ_ID_MAX + 2];
    pl_rc rc;
    if (!az_id_valid(uid) || !az_id_valid(ws) || !role_valid(role))
        return PL_ERR_INVALID;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    k = sval(uid);
    if (mdb_get(t, st->db[DB_USERS], &k, &v) != 0)
        return finish(st, t, PL_ERR_NOT_FOUND);
    k = sval(ws);
    if (mdb_get(t, st->db[DB_WORKSPACES], &k, &v) != 0)
        return finish(st, t, PL_ERR_NOT_FOUND);
    snprintf(key, sizeof key, "%s|%s", uid, ws);
    k = sval(key);
    v = sval(role);
    rc = az_rec_mdb(mdb_put(t, st->db[DB_MEMBERS], &k, &v, 0));
    return finish(st, t, rc);
}

pl_rc az_member_role(az_store *st, const char *uid, const char *ws, char role[16])
{
    MDB_txn *t = NULL;
    pl_rc rc;
    if (!az_id_valid(uid) || !az_id_valid(ws))
        return PL_ERR_NOT_FOUND;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_member_role(t, st->db[DB_MEMBERS], uid, ws, role);
    rdone(st, t);
    return rc;
}

pl_rc az_user_workspaces(az_store *st, const char *uid, az_dir_membership *out, size_t max,
                         size_t *n)
{
    MDB_txn *t = NULL;
    pl_rc rc;
    *n = 0;
    if (!az_id_valid(uid))
        return PL_OK;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = az_rec_user_workspaces(t, st->db[DB_MEMBERS], st->db[DB_WORKSPACES], uid, out, max, n);
    rdone(st, t);
    return rc;
}

/* ---- clients ----------------------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Decodes a SHA-256 stored as 64 lowercase hex digits; 0 (out untouched) when malformed. */
static int hex_sha256(const char *hex, uint8_t out[CORE_SHA256_LEN])
{
    uint8_t h[CORE_SHA256_LEN];
    if (strlen(hex) != (size_t)2 * CORE_SHA256_LEN)
        return 0;
    for (size_t i = 0; i < CORE_SHA256_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        h[i] = (uint8_t)(hi * 16 + lo);
    }
    memcpy(out, h, sizeof h);
    return 1;
}

/* A client record of schema 1 (JSON; the upgrade reads it): c and the registration
 * fingerprint ("fp", DCR only; *has_fp 0 when absent). */
static void client_fill_json(const json_t *o, az_client *c, uint8_t fp[CORE_SHA256_LEN],
                             int *has_fp)
{
    const json_t *ru = json_object_get(o, "redirect_uris");
    const char *hex = jstr(o, "secret_sha256");
    memset(c, 0, sizeof *c);
    cpy(c->id, sizeof c->id, jstr(o, "id"));
    cpy(c->name, sizeof c->name, jstr(o, "name"));
    for (size_t i = 0; i < json_array_size(ru) && i < AZ_MAX_REDIRECTS; i++)
        cpy(c->redirect_uris[c->nredirect++], AZ_URI_MAX + 1,
            json_string_value(json_array_get(ru, i)));
    c->kind = (az_client_kind)jint(o, "kind");
    c->auth = (az_auth_method)jint(o, "auth");
    hex_sha256(hex, c->secret_hash);
    cpy(c->cls, sizeof c->cls, jstr(o, "cls"));
    cpy(c->scope_hint, sizeof c->scope_hint, jstr(o, "scope_hint"));
    cpy(c->source, sizeof c->source, jstr(o, "source"));
    c->introspect = json_is_true(json_object_get(o, "introspect"));
    c->created_ms = jint(o, "created_ms");
    c->expires_ms = jint(o, "expires_ms");
    cpy(c->etag, sizeof c->etag, jstr(o, "etag"));
    *has_fp = hex_sha256(jstr(o, "fp"), fp);
}

/* A client record: id, name, the redirect URIs (count, then each), kind, auth, secret_sha256
 * (32 bytes), cls, scope_hint, etag, source, introspect, created_ms, expires_ms, and the DCR
 * registration fingerprint (flag, 32 bytes; lets the sweep drop the dcr_fp row). */
static void client_write(rec_w *w, const az_client *c, const uint8_t *fp)
{
    static const uint8_t zero[CORE_SHA256_LEN];
    rec_start(w);
    w_str(w, c->id);
    w_str(w, c->name);
    w_i64(w, (int64_t)c->nredirect);
    for (size_t i = 0; i < c->nredirect && i < AZ_MAX_REDIRECTS; i++)
        w_str(w, c->redirect_uris[i]);
    w_i64(w, c->kind);
    w_i64(w, c->auth);
    w_bytes(w, c->auth != AZ_AUTH_NONE ? c->secret_hash : zero, CORE_SHA256_LEN);
    w_str(w, c->cls);
    w_str(w, c->scope_hint);
    w_str(w, c->etag);
    w_str(w, c->source);
    w_i64(w, c->introspect);
    w_i64(w, c->created_ms);
    w_i64(w, c->expires_ms);
    w_i64(w, fp != NULL);
    w_bytes(w, fp ? fp : zero, CORE_SHA256_LEN);
    if (c->nredirect > AZ_MAX_REDIRECTS)
        w->err = 1;
}

/* Decodes a client record into c (and fp/has_fp, both may be NULL). PL_ERR_STORE when it is
 * not a well-formed record of this version. */
static pl_rc client_decode(const MDB_val *v, az_client *c, uint8_t fp[CORE_SHA256_LEN], int *has_fp)
{
    rec_r r = rec_open(v);
    uint8_t f[CORE_SHA256_LEN];
    int64_t n;
    c->id[0] = '\0';
    r_str(&r, c->id, sizeof c->id);
    r_str(&r, c->name, sizeof c->name);
    n = r_i64(&r);
    if (n < 0 || n > AZ_MAX_REDIRECTS)
        r.err = 1;
    c->nredirect = 0;
    for (int64_t i = 0; !r.err && i < n; i++)
        r_str(&r, c->redirect_uris[c->nredirect++], AZ_URI_MAX + 1);
    c->kind = (az_client_kind)r_i64(&r);
    c->auth = (az_auth_method)r_i64(&r);
    r_bytes(&r, c->secret_hash, CORE_SHA256_LEN);
    r_str(&r, c->cls, sizeof c->cls);
    r_str(&r, c->scope_hint, sizeof c->scope_hint);
    r_str(&r, c->etag, sizeof c->etag);
    r_str(&r, c->source, sizeof c->source);
    c->introspect = r_i64(&r) != 0;
    c->created_ms = r_i64(&r);
    c->expires_ms = r_i64(&r);
    n = r_i64(&r);
    r_bytes(&r, f, sizeof f);
    if (has_fp)
        *has_fp = n != 0;
    if (fp)
        memcpy(fp, f, sizeof f);
    return r.err || r.off != r.n ? PL_ERR_STORE : PL_OK;
}

static pl_rc client_put_txn(MDB_txn *t, MDB_dbi db, const az_client *c, const uint8_t *fp)
{
    rec_w w;
    client_write(&w, c, fp);
    return rec_put(t, db, sval(c->id), &w);
}

/* One schema-1 (JSON) user or client record as a binary record into w. */
static pl_rc upgrade_record(int db, const MDB_val *v, rec_w *w)
{
    json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return PL_ERR_STORE;
    }
    if (db == DB_USERS) {
        user_rec r;
        memset(&r, 0, sizeof r);
        cpy(r.u.id, sizeof r.u.id, jstr(o, "id"));
        cpy(r.u.username, sizeof r.u.username, jstr(o, "username"));
        cpy(r.pw, sizeof r.pw, jstr(o, "pw"));
        r.u.disabled = json_is_true(json_object_get(o, "disabled"));
        r.u.created_ms = jint(o, "created_ms");
        user_write(w, &r);
    } else {
        az_client c;
        uint8_t fp[CORE_SHA256_LEN];
        int has_fp = 0;
        client_fill_json(o, &c, fp, &has_fp);
        client_write(w, &c, has_fp ? fp : NULL);
    }
    json_decref(o);
    return w->err ? PL_ERR_STORE : PL_OK;
}

/* Schema 1 -> 2: user and client records from JSON to binary records (docs/authz.md
 * "Store upgrades"). Runs in the caller's transaction: a record that does not parse fails
 * the whole upgrade and the store stays at schema 1. Keys are collected a chunk at a time
 * and the records rewritten with mdb_put, never through the iterating cursor. */
#define UPGRADE_CHUNK 64
static pl_rc upgrade_from_1(az_store *st, MDB_txn *t)
{
    static const int dbs[] = {DB_USERS, DB_CLIENTS};
    char keys[UPGRADE_CHUNK][AZ_CLIENT_ID_MAX + 1];
    pl_rc rc = PL_OK;
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && rc == PL_OK; i++) {
        size_t n = UPGRADE_CHUNK, nk;
        int first = 1;
        while (rc == PL_OK && n == UPGRADE_CHUNK) {
            MDB_cursor *c = NULL;
            MDB_val k, v;
            int e;
            if (mdb_cursor_open(t, st->db[dbs[i]], &c) != 0)
                return PL_ERR_STORE;
            if (first) {
                e = mdb_cursor_get(c, &k, &v, MDB_FIRST);
            } else {
                /* After the last key of the previous chunk. */
                k = sval(keys[UPGRADE_CHUNK - 1]);
                e = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
                if (e == 0 && k.mv_size == strlen(keys[UPGRADE_CHUNK - 1]) &&
                    memcmp(k.mv_data, keys[UPGRADE_CHUNK - 1], k.mv_size) == 0)
                    e = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            }
            first = 0;
            for (nk = 0; e == 0 && nk < UPGRADE_CHUNK; nk++) {
                if (k.mv_size > AZ_CLIENT_ID_MAX) {
                    e = -1;
                    break;
                }
                memcpy(keys[nk], k.mv_data, k.mv_size);
                keys[nk][k.mv_size] = '\0';
                if (nk + 1 < UPGRADE_CHUNK)
                    e = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            }
            mdb_cursor_close(c);
            if (e != 0 && e != MDB_NOTFOUND)
                return PL_ERR_STORE;
            n = nk;
            for (size_t j = 0; j < nk && rc == PL_OK; j++) {
                rec_w w;
                MDB_val nv;
                k = sval(keys[j]);
                rc = az_rec_mdb(mdb_get(t, st->db[dbs[i]], &k, &v));
                if (rc == PL_OK)
                    rc = upgrade_record(dbs[i], &v, &w);
                if (rc == PL_OK) {
                    nv.mv_size = w.n;
                    nv.mv_data = w.b;
                    rc = az_rec_mdb(mdb_put(t, st->db[dbs[i]], &k, &nv, 0));
                }
            }
        }
    }
    return rc;
}

pl_rc az_client_put(az_store *st, const az_client *c)
{
    MDB_txn *t = NULL;
    pl_rc rc;
    if (!c->id[0] || strlen(c->id) > AZ_CLIENT_ID_MAX || c->nredirect > AZ_MAX_REDIRECTS)
        return PL_ERR_INVALID;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = client_put_txn(t, st->db[DB_CLIENTS], c, NULL);
    return finish(st, t, rc);
}

pl_rc az_client_get(az_store *st, const char *id, az_client *out)
{
    MDB_txn *t = NULL;
    MDB_val k, v;
    pl_rc rc;
    if (!id || !*id || strlen(id) > AZ_CLIENT_ID_MAX)
        return PL_ERR_NOT_FOUND;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    k = sval(id);
    rc = az_rec_mdb(mdb_get(t, st->db[DB_CLIENTS], &k, &v));
    if (rc == PL_OK)
        rc = client_decode(&v, out, NULL, NULL);
    rdone(st, t);
    return rc;
}

/* Counts one registration against key ("s:<addr>", "total") within the window. */
static pl_rc dcr_count(az_store *st, MDB_txn *t, const char *key, unsigned limit, int64_t win,
                       int64_t now)
{
    return window_bump(st, t, DB_DCR_COUNT, key, limit, win, now);
}

pl_rc az_client_register(az_store *st, az_client *c, const uint8_t fp[CORE_SHA256_LEN],
                         const az_dcr_limits *lim, int *reused)
{
    MDB_txn *t = NULL;
    uint8_t key_fp[CORE_SHA256_LEN];
    MDB_val k = {CORE_SHA256_LEN, key_fp}, v;
    char key[80], id[AZ_ID_MAX + 1];
    int64_t now = now_ms(st);
    MDB_stat ms;
    pl_rc rc;

    *reused = 0;
    /* Only a public client (no secret) is reused by an identical registration from the same
     * source: there is nothing to take over. A confidential registration always makes a new
     * client, keyed by SHA-256(fp || its new secret's hash): handing the existing client_id
     * a new secret would give anyone behind the same address who copies the metadata working
     * credentials and lock the real client out. Each one still counts against the limits
     * and the cap, and the sweep removes it with its own key. */
    if (c->auth == AZ_AUTH_NONE) {
        memcpy(key_fp, fp, sizeof key_fp);
    } else {
        uint8_t both[2 * CORE_SHA256_LEN];
        memcpy(both, fp, CORE_SHA256_LEN);
        memcpy(both + CORE_SHA256_LEN, c->secret_hash, CORE_SHA256_LEN);
        core_sha256(both, sizeof both, key_fp);
    }
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    if (c->auth == AZ_AUTH_NONE && mdb_get(t, st->db[DB_DCR_FP], &k, &v) == 0 &&
        v.mv_size <= AZ_ID_MAX) {
        /* Identical public registration from the same source: the same client. */
        memcpy(id, v.mv_data, v.mv_size);
        id[v.mv_size] = '\0';
        MDB_val ck = sval(id), cv;
        az_client old;
        if (mdb_get(t, st->db[DB_CLIENTS], &ck, &cv) == 0 &&
            client_decode(&cv, &old, NULL, NULL) == PL_OK) {
            if (old.auth == AZ_AUTH_NONE) {
                *c = old;
                *reused = 1;
                return finish(st, t, PL_OK);
            }
        }
    }
    snprintf(key, sizeof key, "s:%.64s", c->source);
    rc = dcr_count(st, t, key, lim->per_source, lim->window_ms, now);
    if (rc == PL_OK)
        rc = dcr_count(st, t, "total", lim->total, lim->window_ms, now);
    if (rc == PL_OK && mdb_stat(t, st->db[DB_DCR_FP], &ms) == 0 &&
        ms.ms_entries >= lim->max_clients)
        rc = PL_ERR_LIMIT;
    if (rc == PL_OK)
        rc = new_id(st, "c_", id);
    if (rc != PL_OK)
        return finish(st, t, rc);
    cpy(c->id, sizeof c->id, id);
    c->created_ms = now;
    v = sval(c->id);
    rc = az_rec_mdb(mdb_put(t, st->db[DB_DCR_FP], &k, &v, 0));
    if (rc == PL_OK)
        rc = client_put_txn(t, st->db[DB_CLIENTS], c, key_fp);
    return finish(st, t, rc);
}

/* ---- pending requests --------------------------------------------------------------------- */

pl_rc az_pending_put(az_store *st, az_pending *p)
{
    MDB_txn *t = NULL;
    json_t *o;
    pl_rc rc = pool_token(st, p->rid, sizeof p->rid, 32);
    if (rc != PL_OK)
        return rc;
    p->created_ms = now_ms(st);
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:I}", "client_id", p->client_id, "redirect_uri",
                  p->redirect_uri, "state", p->state, "challenge", p->challenge, "resource",
                  p->resource, "scope", (json_int_t)p->scope, "same_site", p->same_site,
                  "created_ms", (json_int_t)p->created_ms);
    rc = o ? put_json(t, st->db[DB_PENDING], sval(p->rid), o) : PL_ERR_NOMEM;
    json_decref(o);
    return finish(st, t, rc);
}

pl_rc az_pending_get(az_store *st, const char *rid, az_pending *out)
{
    MDB_txn *t = NULL;
    json_t *o = NULL;
    pl_rc rc;
    if (!rid || strlen(rid) != AZ_SECRET_LEN)
        return PL_ERR_NOT_FOUND;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = get_json(t, st->db[DB_PENDING], sval(rid), &o);
    if (rc == PL_OK) {
        memset(out, 0, sizeof *out);
        cpy(out->rid, sizeof out->rid, rid);
        cpy(out->client_id, sizeof out->client_id, jstr(o, "client_id"));
        cpy(out->redirect_uri, sizeof out->redirect_uri, jstr(o, "redirect_uri"));
        cpy(out->state, sizeof out->state, jstr(o, "state"));
        cpy(out->challenge, sizeof out->challenge, jstr(o, "challenge"));
        cpy(out->resource, sizeof out->resource, jstr(o, "resource"));
        out->scope = (uint64_t)jint(o, "scope");
        out->same_site = json_is_true(json_object_get(o, "same_site"));
        out->created_ms = jint(o, "created_ms");
        if (now_ms(st) - out->created_ms > PENDING_TTL_MS)
            rc = PL_ERR_EXPIRED;
    }
    json_decref(o);
    rdone(st, t);
    return rc;
}

static pl_rc del_key(az_store *st, int db, MDB_val k)
{
    MDB_txn *t = NULL;
    int e;
    pl_rc rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    e = mdb_del(t, st->db[db], &k, NULL);
    return finish(st, t, e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE);
}

pl_rc az_pending_del(az_store *st, const char *rid)
{
    return rid ? del_key(st, DB_PENDING, sval(rid)) : PL_OK;
}

/* ---- sessions ------------------------------------------------------------------------------ */

pl_rc az_session_new(az_store *st, const char *uid, char sid_out[AZ_SECRET_SIZE], az_session *out)
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    char csrf[CORE_B64URL_SIZE(32)];
    json_t *o;
    pl_rc rc;
    memset(out, 0, sizeof *out);
    rc = pool_token(st, sid_out, AZ_SECRET_SIZE, 32);
    if (rc == PL_OK)
        rc = pool_random(st, out->csrf_key, sizeof out->csrf_key);
    if (rc == PL_OK)
        rc = core_b64url_encode(out->csrf_key, 32, csrf, sizeof csrf, NULL);
    if (rc == PL_OK)
        rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    cpy(out->uid, sizeof out->uid, uid);
    out->created_ms = now_ms(st);
    out->expires_ms = out->created_ms + st->session_ttl_ms;
    secret_key(st, sid_out, h);
    o = json_pack("{s:s,s:s,s:I,s:I}", "uid", out->uid, "csrf", csrf, "created_ms",
                  (json_int_t)out->created_ms, "expires_ms", (json_int_t)out->expires_ms);
    rc = o ? put_json(t, st->db[DB_SESSIONS], hkey(h), o) : PL_ERR_NOMEM;
    json_decref(o);
    core_wipe(csrf, sizeof csrf);
    return finish(st, t, rc);
}

pl_rc az_session_get(az_store *st, const char *sid, az_session *out)
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    json_t *o = NULL;
    size_t n = 0;
    pl_rc rc;
    rc = presented_key(st, sid, h);
    if (rc != PL_OK)
        return rc;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = get_json(t, st->db[DB_SESSIONS], hkey(h), &o);
    if (rc == PL_OK) {
        const char *csrf = jstr(o, "csrf");
        memset(out, 0, sizeof *out);
        cpy(out->uid, sizeof out->uid, jstr(o, "uid"));
        out->created_ms = jint(o, "created_ms");
        out->expires_ms = jint(o, "expires_ms");
        if (core_b64url_decode(csrf, strlen(csrf), out->csrf_key, sizeof out->csrf_key, &n) !=
                PL_OK ||
            n != 32)
            rc = PL_ERR_STORE;
        else if (now_ms(st) >= out->expires_ms)
            rc = PL_ERR_NOT_FOUND;
    }
    json_decref(o);
    rdone(st, t);
    return rc;
}

pl_rc az_session_del(az_store *st, const char *sid)
{
    uint8_t h[CORE_SHA256_LEN];
    if (!sid)
        return PL_OK;
    secret_key(st, sid, h);
    return del_key(st, DB_SESSIONS, hkey(h));
}

/* ---- grants ------------------------------------------------------------------------------- */

/* A grant record: gid, uid, client_id, ws, resource, cls, scope, created_ms, last_used_ms,
 * revoked_ms, rgen and (version 2) rot_gen. Version 1 records (no rot_gen) are read. */
#define GRANT_REC_VERSION 2
static void grant_write(rec_w *w, const az_grant *g)
{
    rec_start_v(w, GRANT_REC_VERSION);
    w_str(w, g->gid);
    w_str(w, g->uid);
    w_str(w, g->client_id);
    w_str(w, g->ws);
    w_str(w, g->resource);
    w_str(w, g->cls);
    w_i64(w, (int64_t)g->scope);
    w_i64(w, g->created_ms);
    w_i64(w, g->last_used_ms);
    w_i64(w, g->revoked_ms);
    w_i64(w, g->rgen);
    w_i64(w, g->rot_gen); /* version 2 */
}

static pl_rc grant_load(az_store *st, MDB_txn *t, const char *gid, az_grant *g)
{
    MDB_val k, v;
    uint8_t ver;
    rec_r r;
    pl_rc rc;
    if (!az_id_valid(gid))
        return PL_ERR_NOT_FOUND;
    k = sval(gid);
    rc = az_rec_mdb(mdb_get(t, st->db[DB_GRANTS], &k, &v));
    if (rc != PL_OK)
        return rc;
    r = rec_open_upto(&v, GRANT_REC_VERSION, &ver);
    r_str(&r, g->gid, sizeof g->gid);
    r_str(&r, g->uid, sizeof g->uid);
    r_str(&r, g->client_id, sizeof g->client_id);
    r_str(&r, g->ws, sizeof g->ws);
    r_str(&r, g->resource, sizeof g->resource);
    r_str(&r, g->cls, sizeof g->cls);
    g->scope = (uint64_t)r_i64(&r);
    g->created_ms = r_i64(&r);
    g->last_used_ms = r_i64(&r);
    g->revoked_ms = r_i64(&r);
    g->rgen = r_i64(&r);
    g->rot_gen = ver >= 2 ? r_i64(&r) : -1; /* version 1: unknown (rotate_grace()) */
    return r.err || r.off != r.n ? PL_ERR_STORE : PL_OK;
}

/* The client_grants key of gid: SHA-256(client_id) + gid (client ids may be 512-byte URLs,
 * over LMDB's key limit). buf holds CORE_SHA256_LEN + AZ_ID_MAX bytes. */
static MDB_val client_grant_key(const uint8_t chash[CORE_SHA256_LEN], const char *gid, uint8_t *buf)
{
    size_t gl = strnlen(gid, AZ_ID_MAX);
    MDB_val k = {CORE_SHA256_LEN + gl, buf};
    memcpy(buf, chash, CORE_SHA256_LEN);
    memcpy(buf + CORE_SHA256_LEN, gid, gl);
    return k;
}

/* Writes the grant record and, when `index` (creation, revocation), its grant_state row and
 * the user index. */
static pl_rc grant_save(az_store *st, MDB_txn *t, const az_grant *g, int index)
{
    az_grant_state gs = {g->created_ms, g->revoked_ms};
    MDB_val k = sval(g->gid), v = {sizeof gs, &gs};
    char ukey[2 * AZ_ID_MAX + 2];
    rec_w w;
    pl_rc rc;
    grant_write(&w, g);
    rc = rec_put(t, st->db[DB_GRANTS], k, &w);
    if (!index)
        return rc;
    if (rc == PL_OK)
        rc = az_rec_mdb(mdb_put(t, st->db[DB_GRANT_STATE], &k, &v, 0));
    if (rc == PL_OK) {
        MDB_val uk, uv = sval(g->gid);
        az_rec_join(ukey, sizeof ukey, g->uid, g->gid);
        uk = sval(ukey);
        if (g->revoked_ms) {
            int e = mdb_del(t, st->db[DB_USER_GRANTS], &uk, NULL);
            rc = e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE;
        } else {
            rc = az_rec_mdb(mdb_put(t, st->db[DB_USER_GRANTS], &uk, &uv, 0));
        }
    }
    if (rc == PL_OK && !g->revoked_ms) {
        uint8_t ch[CORE_SHA256_LEN], ck[CORE_SHA256_LEN + AZ_ID_MAX];
        MDB_val k2, v2 = {0, ""};
        client_key(st, g->client_id, ch);
        k2 = client_grant_key(ch, g->gid, ck);
        rc = az_rec_mdb(mdb_put(t, st->db[DB_CLIENT_GRANTS], &k2, &v2, 0));
    }
    return rc;
}

static pl_rc grant_revoke_txn(az_store *st, MDB_txn *t, const char *gid)
{
    az_grant g;
    pl_rc rc = grant_load(st, t, gid, &g);
    if (rc != PL_OK || g.revoked_ms)
        return rc;
    g.revoked_ms = now_ms(st);
    return grant_save(st, t, &g, 1);
}

pl_rc az_grant_revoke(az_store *st, const char *gid)
{
    MDB_txn *t = NULL;
    pl_rc rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    return finish(st, t, grant_revoke_txn(st, t, gid));
}

pl_rc az_grant_get(az_store *st, const char *gid, az_grant *g)
{
    MDB_txn *t = NULL;
    pl_rc rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = grant_load(st, t, gid, g);
    rdone(st, t);
    return rc;
}

/* The grant id of a user_grants row (uid "|" gid -> gid); 0 when malformed. */
static int row_gid(const MDB_val *v, char gid[AZ_ID_MAX + 1])
{
    if (v->mv_size > AZ_ID_MAX)
        return 0;
    memcpy(gid, v->mv_data, v->mv_size);
    gid[v->mv_size] = '\0';
    return 1;
}

typedef struct grant_scan {
    az_store *st;
    MDB_txn *t;
    az_grant *out;
    char (*gids)[AZ_ID_MAX + 1]; /* instead of out: collect ids only */
    size_t max, n;
} grant_scan;

/* az_rec_scan_user callback over user_grants: live grants into out, or ids into gids. */
static int grant_row(void *arg, const MDB_val *k, const MDB_val *v)
{
    grant_scan *x = arg;
    char gid[AZ_ID_MAX + 1];
    (void)k;
    if (x->n >= x->max || !row_gid(v, gid))
        return 0;
    if (x->gids)
        memcpy(x->gids[x->n++], gid, sizeof gid);
    else if (grant_load(x->st, x->t, gid, &x->out[x->n]) == PL_OK && !x->out[x->n].revoked_ms)
        x->n++;
    return x->n < x->max;
}

pl_rc az_grant_list(az_store *st, const char *uid, az_grant *out, size_t max, size_t *n)
{
    MDB_txn *t = NULL;
    grant_scan x = {st, NULL, out, NULL, max, 0};
    pl_rc rc;
    *n = 0;
    if (!az_id_valid(uid))
        return PL_OK;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    x.t = t;
    rc = max ? az_rec_scan_user(t, st->db[DB_USER_GRANTS], uid, grant_row, &x) : PL_OK;
    rdone(st, t);
    if (rc != PL_OK)
        return rc;
    *n = x.n;
    /* Newest first. */
    for (size_t i = 1; i < *n; i++)
        for (size_t j = i; j > 0 && out[j].created_ms > out[j - 1].created_ms; j--) {
            az_grant tmp = out[j];
            out[j] = out[j - 1];
            out[j - 1] = tmp;
        }
    return PL_OK;
}

static pl_rc revoke_user_grants(az_store *st, MDB_txn *t, const char *uid)
{
    char gids[256][AZ_ID_MAX + 1];
    grant_scan x = {st, t, NULL, gids, 256, 0};
    pl_rc rc;
    /* Revoking removes the grant from the user index, so repeat until the index is empty. */
    do {
        x.n = 0;
        rc = az_rec_scan_user(t, st->db[DB_USER_GRANTS], uid, grant_row, &x);
        for (size_t i = 0; i < x.n && rc == PL_OK; i++)
            rc = grant_revoke_txn(st, t, gids[i]);
    } while (rc == PL_OK && x.n == 256);
    return rc;
}

static pl_rc user_update(az_store *st, const char *username, const char *pw, int disabled,
                         int revoke_grants)
{
    MDB_txn *t = NULL;
    char uid[AZ_ID_MAX + 1];
    user_rec r;
    rec_w w;
    pl_rc rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = uid_of(st, t, username, uid);
    if (rc == PL_OK)
        rc = user_read(st, t, uid, &r);
    if (rc == PL_OK) {
        if (pw)
            cpy(r.pw, sizeof r.pw, pw);
        if (disabled >= 0)
            r.u.disabled = disabled;
        user_write(&w, &r);
        rc = rec_put(t, st->db[DB_USERS], sval(uid), &w);
        core_wipe(r.pw, sizeof r.pw);
    }
    if (rc == PL_OK && revoke_grants)
        rc = revoke_user_grants(st, t, uid);
    return finish(st, t, rc);
}

/* ---- codes ----------------------------------------------------------------------------- */

/* A code record: client_id, redirect_uri, challenge, resource, ws, uid, cls, gid ("" until
 * redeemed), scope, created_ms. */
static void code_write(rec_w *w, const az_code *c, const char *gid, int64_t created_ms)
{
    rec_start(w);
    w_str(w, c->client_id);
    w_str(w, c->redirect_uri);
    w_str(w, c->challenge);
    w_str(w, c->resource);
    w_str(w, c->ws);
    w_str(w, c->uid);
    w_str(w, c->cls);
    w_str(w, gid);
    w_i64(w, (int64_t)c->scope);
    w_i64(w, created_ms);
}

static pl_rc code_read(const MDB_val *v, az_code *c, char gid[AZ_ID_MAX + 1], int64_t *created)
{
    rec_r r = rec_open(v);
    r_str(&r, c->client_id, sizeof c->client_id);
    r_str(&r, c->redirect_uri, sizeof c->redirect_uri);
    r_str(&r, c->challenge, sizeof c->challenge);
    r_str(&r, c->resource, sizeof c->resource);
    r_str(&r, c->ws, sizeof c->ws);
    r_str(&r, c->uid, sizeof c->uid);
    r_str(&r, c->cls, sizeof c->cls);
    r_str(&r, gid, AZ_ID_MAX + 1);
    c->scope = (uint64_t)r_i64(&r);
    *created = r_i64(&r);
    return r.err ? PL_ERR_STORE : PL_OK;
}

pl_rc az_code_issue(az_store *st, const az_code *c, char code_out[AZ_SECRET_SIZE])
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    rec_w w;
    pl_rc rc = pool_token(st, code_out, AZ_SECRET_SIZE, 32);
    if (rc == PL_OK)
        rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    secret_key(st, code_out, h);
    code_write(&w, c, "", now_ms(st));
    rc = rec_put(t, st->db[DB_CODES], hkey(h), &w);
    return finish(st, t, rc);
}

/* RFC 7636 §4.1: code_verifier = 43*128unreserved. */
static int verifier_valid(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    return n >= 43 && n <= 128 &&
           strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge. */
static int pkce_ok(az_store *st, const char *verifier, const char *challenge)
{
    uint8_t h[CORE_SHA256_LEN];
    char enc[CORE_B64URL_SIZE(CORE_SHA256_LEN)];
    size_t n;
    if (!verifier_valid(verifier) || strlen(challenge) != 43)
        return 0;
    secret_key(st, verifier, h);
    if (core_b64url_encode(h, sizeof h, enc, sizeof enc, &n) != PL_OK || n != 43)
        return 0;
    return core_ct_equal(enc, challenge, 43);
}

/* A refresh record: gid, gen, created_ms, rotated_ms, retried. */
typedef struct refresh_rec {
    char gid[AZ_ID_MAX + 1];
    int64_t gen, created_ms, rotated_ms, retried;
} refresh_rec;

static pl_rc refresh_write(MDB_txn *t, MDB_dbi db, uint8_t h[CORE_SHA256_LEN],
                           const refresh_rec *rr)
{
    rec_w w;
    rec_start(&w);
    w_str(&w, rr->gid);
    w_i64(&w, rr->gen);
    w_i64(&w, rr->created_ms);
    w_i64(&w, rr->rotated_ms);
    w_i64(&w, rr->retried);
    return rec_put(t, db, hkey(h), &w);
}

static pl_rc refresh_decode(const MDB_val *v, refresh_rec *rr)
{
    rec_r r = rec_open(v);
    r_str(&r, rr->gid, sizeof rr->gid);
    rr->gen = r_i64(&r);
    rr->created_ms = r_i64(&r);
    rr->rotated_ms = r_i64(&r);
    rr->retried = r_i64(&r);
    return r.err ? PL_ERR_STORE : PL_OK;
}

static pl_rc refresh_read(az_store *st, MDB_txn *t, uint8_t h[CORE_SHA256_LEN], refresh_rec *rr)
{
    MDB_val k = hkey(h), v;
    pl_rc rc = az_rec_mdb(mdb_get(t, st->db[DB_REFRESH], &k, &v));
    return rc == PL_OK ? refresh_decode(&v, rr) : rc;
}

static pl_rc refresh_put(az_store *st, MDB_txn *t, const az_grant *g, char rt[AZ_SECRET_SIZE])
{
    uint8_t h[CORE_SHA256_LEN];
    refresh_rec rr;
    pl_rc rc = pool_token(st, rt, AZ_SECRET_SIZE, 32);
    if (rc != PL_OK)
        return rc;
    secret_key(st, rt, h);
    memset(&rr, 0, sizeof rr);
    cpy(rr.gid, sizeof rr.gid, g->gid);
    rr.gen = g->rgen;
    rr.created_ms = now_ms(st);
    return refresh_write(t, st->db[DB_REFRESH], h, &rr);
}

/* RFC 9700 §4.14.2: one retry of the token rotated last, within the grace period, is a lost
 * response, not an attack. rr is not the current generation. The token rotated last is the
 * one of generation g->rgen - 1 when that generation was the one presented last (g->rot_gen):
 * after a grace retry the current generation has moved on by two, so neither the retried
 * token nor the one its first rotation issued (never delivered) qualifies again. A grant
 * record of the first layout (rot_gen -1) decides from the refresh record as that version
 * did: rotated_ms set when it was rotated, retried after its one retry. */
static int rotate_grace(const az_store *st, const az_grant *g, const refresh_rec *rr, int64_t now)
{
    if (rr->gen != g->rgen - 1)
        return 0;
    if (g->rot_gen < 0)
        return !rr->retried && rr->rotated_ms && now - rr->rotated_ms <= st->refresh_grace_ms;
    return rr->gen == g->rot_gen && now - g->last_used_ms <= st->refresh_grace_ms;
}

/* RFC 9700 §4.5, §4.14.2: a replayed code or a reused refresh token revokes its grant. Ends
 * t (the revocation stands whatever the caller answers); PL_ERR_CONFLICT when it worked. */
static pl_rc revoke_on_reuse(az_store *st, MDB_txn *t, const char *gid)
{
    pl_rc rc = grant_revoke_txn(st, t, gid);
    rc = finish(st, t, rc == PL_OK || rc == PL_ERR_NOT_FOUND ? PL_OK : rc);
    return rc == PL_OK ? PL_ERR_CONFLICT : rc;
}

pl_rc az_code_redeem(az_store *st, const char *code, const az_redeem *in, az_grant *g,
                     char refresh_out[AZ_SECRET_SIZE], const char **why)
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    MDB_val v;
    az_code c;
    char used_gid[AZ_ID_MAX + 1];
    int64_t now = now_ms(st), created;
    const char *dummy;
    rec_w w;
    pl_rc rc;

    if (!why)
        why = &dummy;
    *why = "invalid authorization code";
    rc = presented_key(st, code, h);
    if (rc != PL_OK)
        return rc;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    {
        MDB_val k = hkey(h);
        rc = az_rec_mdb(mdb_get(t, st->db[DB_CODES], &k, &v));
    }
    if (rc == PL_OK)
        rc = code_read(&v, &c, used_gid, &created);
    if (rc != PL_OK)
        goto out;
    if (used_gid[0]) {
        /* RFC 6749 §4.1.2, RFC 9700 §4.5: a replayed code revokes what it issued. */
        *why = "authorization code already used; the grant issued from it is revoked";
        rc = revoke_on_reuse(st, t, used_gid);
        t = NULL;
        goto out;
    }
    if (now - created > AZ_CODE_TTL_MS) {
        *why = "authorization code expired";
        rc = PL_ERR_EXPIRED;
        goto out;
    }
    if (strcmp(c.client_id, in->client_id ? in->client_id : "") != 0) {
        *why = "authorization code was issued to another client";
        rc = PL_ERR_DENIED;
        goto out;
    }
    /* RFC 6749 §4.1.3: redirect_uri required and identical when it was in the request
     * (always, here). */
    if (!in->redirect_uri || strcmp(c.redirect_uri, in->redirect_uri) != 0) {
        *why = "redirect_uri does not match the authorization request";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (!in->verifier) {
        *why = "code_verifier is required (PKCE)";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (!pkce_ok(st, in->verifier, c.challenge)) {
        *why = "code_verifier does not match the code_challenge";
        rc = PL_ERR_DENIED;
        goto out;
    }
    /* RFC 8707 §2.2: the resource, when given, must be the one authorized. */
    if (in->resource && strcmp(in->resource, c.resource) != 0) {
        *why = "resource does not match the authorization request";
        rc = PL_ERR_DENIED;
        goto out;
    }
    memset(g, 0, sizeof *g);
    rc = new_id(st, "g_", g->gid);
    if (rc != PL_OK)
        goto out;
    cpy(g->uid, sizeof g->uid, c.uid);
    cpy(g->client_id, sizeof g->client_id, c.client_id);
    cpy(g->ws, sizeof g->ws, c.ws);
    cpy(g->resource, sizeof g->resource, c.resource);
    cpy(g->cls, sizeof g->cls, c.cls);
    g->scope = c.scope;
    g->created_ms = g->last_used_ms = now;
    g->rgen = 1;
    rc = grant_save(st, t, g, 1);
    if (rc == PL_OK)
        rc = refresh_put(st, t, g, refresh_out);
    if (rc == PL_OK) {
        code_write(&w, &c, g->gid, created);
        rc = rec_put(t, st->db[DB_CODES], hkey(h), &w);
    }
    if (rc == PL_OK)
        *why = NULL;
    rc = finish(st, t, rc);
    t = NULL;
out:
    wabort(st, t);
    return rc;
}

pl_rc az_refresh_rotate(az_store *st, const char *rt, const char *client_id, const char *resource,
                        az_grant *g, char refresh_out[AZ_SECRET_SIZE], const char **why)
{
    return az_refresh_rotate_scope(st, rt, client_id, resource, 0, g, refresh_out, why);
}

pl_rc az_refresh_rotate_scope(az_store *st, const char *rt, const char *client_id,
                              const char *resource, uint64_t want, az_grant *g,
                              char refresh_out[AZ_SECRET_SIZE], const char **why)
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    refresh_rec rr;
    int64_t now = now_ms(st);
    const char *dummy;
    pl_rc rc;

    if (!why)
        why = &dummy;
    *why = "invalid refresh token";
    rc = presented_key(st, rt, h);
    if (rc != PL_OK)
        return rc;
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = refresh_read(st, t, h, &rr);
    if (rc == PL_OK)
        rc = grant_load(st, t, rr.gid, g);
    if (rc != PL_OK) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    /* RFC 6749 §6: the scope may be narrowed, never widened. Checked first, so a refused
     * request changes nothing. */
    if (want & ~g->scope) {
        *why = "scope exceeds the scope originally granted";
        rc = PL_ERR_INVALID;
        goto out;
    }
    if (g->revoked_ms) {
        *why = "the grant has been revoked";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (now - rr.created_ms > st->refresh_ttl_ms) {
        *why = "refresh token expired";
        rc = PL_ERR_EXPIRED;
        goto out;
    }
    if (strcmp(g->client_id, client_id) != 0) {
        *why = "refresh token was issued to another client";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (resource && strcmp(resource, g->resource) != 0) {
        *why = "resource does not match the grant";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (rr.gen != g->rgen && !rotate_grace(st, g, &rr, now)) {
        /* RFC 9700 §4.14.2: reuse of a rotated token revokes the family. */
        *why = "refresh token reuse detected; the grant is revoked";
        rc = revoke_on_reuse(st, t, g->gid);
        t = NULL;
        goto out;
    }
    /* The token of the current generation (if this was a grace retry) becomes stale too:
     * it was never delivered. Generations only go up. The presented token's record is not
     * rewritten: the grant remembers which generation was presented last (rot_gen) and when
     * (last_used_ms). */
    g->rot_gen = rr.gen;
    g->rgen++;
    g->last_used_ms = now;
    rc = grant_save(st, t, g, 0);
    if (rc == PL_OK)
        rc = refresh_put(st, t, g, refresh_out);
    if (rc == PL_OK)
        *why = NULL;
    rc = finish(st, t, rc);
    t = NULL;
out:
    wabort(st, t);
    return rc;
}

pl_rc az_refresh_grant(az_store *st, const char *rt, az_grant *g, int *current)
{
    MDB_txn *t = NULL;
    uint8_t h[CORE_SHA256_LEN];
    refresh_rec rr;
    pl_rc rc;
    rc = presented_key(st, rt, h);
    if (rc != PL_OK)
        return rc;
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = refresh_read(st, t, h, &rr);
    if (rc == PL_OK)
        rc = grant_load(st, t, rr.gid, g);
    if (rc == PL_OK && current)
        *current = rr.gen == g->rgen && !g->revoked_ms;
    rdone(st, t);
    return rc == PL_OK ? PL_OK : PL_ERR_NOT_FOUND;
}

/* ---- consents -------------------------------------------------------------------------------- */

pl_rc az_consent_put(az_store *st, const char *uid, const char *client_id, const char *ws,
                     uint64_t scope)
{
    MDB_txn *t = NULL;
    char key[AZ_ID_MAX + AZ_CLIENT_ID_MAX + 2];
    json_t *o;
    pl_rc rc;
    snprintf(key, sizeof key, "%s|%s", uid, client_id);
    rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    o = json_pack("{s:s,s:I,s:I}", "ws", ws, "scope", (json_int_t)scope, "at",
                  (json_int_t)now_ms(st));
    rc = o ? put_json(t, st->db[DB_CONSENTS], sval(key), o) : PL_ERR_NOMEM;
    json_decref(o);
    return finish(st, t, rc);
}

pl_rc az_consent_get(az_store *st, const char *uid, const char *client_id, char ws[AZ_ID_MAX + 1],
                     uint64_t *scope)
{
    MDB_txn *t = NULL;
    char key[AZ_ID_MAX + AZ_CLIENT_ID_MAX + 2];
    json_t *o = NULL;
    pl_rc rc;
    snprintf(key, sizeof key, "%s|%s", uid, client_id);
    rc = rtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = get_json(t, st->db[DB_CONSENTS], sval(key), &o);
    if (rc == PL_OK) {
        cpy(ws, AZ_ID_MAX + 1, jstr(o, "ws"));
        *scope = (uint64_t)jint(o, "scope");
    }
    json_decref(o);
    rdone(st, t);
    return rc;
}

/* ---- sweep ----------------------------------------------------------------------------------- */

/* What a sweep deletes: expired(arg, value) != 0. */
typedef struct sweep_rule {
    int (*expired)(const struct sweep_rule *r, const MDB_val *v);
    const char *field; /* JSON rows: the time field; the row goes when field + ttl < now */
    int64_t ttl, now;
} sweep_rule;

/* Deletes the rows of db that rule says are expired (bounded work per call). */
static pl_rc sweep_rows(az_store *st, MDB_txn *t, int db, const sweep_rule *rule)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int e, budget = 10000;
    if (mdb_cursor_open(t, st->db[db], &c) != 0)
        return PL_ERR_STORE;
    for (e = mdb_cursor_get(c, &k, &v, MDB_FIRST); e == 0 && budget-- > 0;
         e = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (rule->expired(rule, &v))
            mdb_cursor_del(c, 0);
    mdb_cursor_close(c);
    return PL_OK;
}

static int json_expired(const sweep_rule *r, const MDB_val *v)
{
    json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
    int64_t at = o ? jint(o, r->field) : 0;
    json_decref(o);
    return at + r->ttl < r->now;
}

/* Codes created before now - ttl (or unreadable). */
static int code_expired(const sweep_rule *r, const MDB_val *v)
{
    az_code code;
    char gid[AZ_ID_MAX + 1];
    int64_t created = 0;
    return code_read(v, &code, gid, &created) != PL_OK || created < r->now - r->ttl;
}

/* Refresh records past their life (a reuse of one is then just an unknown token). */
static int refresh_expired(const sweep_rule *r, const MDB_val *v)
{
    refresh_rec rr;
    return refresh_decode(v, &rr) != PL_OK || r->now - rr.created_ms > r->ttl;
}

static pl_rc sweep_db(az_store *st, MDB_txn *t, int db, const char *field, int64_t ttl, int64_t now)
{
    sweep_rule r = {json_expired, field, ttl, now};
    return sweep_rows(st, t, db, &r);
}

/* Grants revoked over a day ago (their access tokens expired long before) or unused for the
 * refresh-token life: record, state row and user index go. */
static pl_rc sweep_grants(az_store *st, MDB_txn *t, int64_t now)
{
    MDB_cursor *c = NULL;
    MDB_val k, v;
    char gids[256][AZ_ID_MAX + 1], uids[256][AZ_ID_MAX + 1];
    uint8_t chash[256][CORE_SHA256_LEN];
    size_t n = 0;
    pl_rc rc = PL_OK;
    int e, budget = 10000;
    if (mdb_cursor_open(t, st->db[DB_GRANTS], &c) != 0)
        return PL_ERR_STORE;
    for (e = mdb_cursor_get(c, &k, &v, MDB_FIRST); e == 0 && budget-- > 0 && n < 256;
         e = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        az_grant g;
        char key[AZ_ID_MAX + 1];
        if (k.mv_size > AZ_ID_MAX)
            continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        if (grant_load(st, t, key, &g) != PL_OK)
            continue;
        if ((g.revoked_ms && now - g.revoked_ms > (int64_t)24 * 3600 * 1000) ||
            (!g.revoked_ms && now - g.last_used_ms > st->refresh_ttl_ms)) {
            cpy(gids[n], sizeof gids[n], g.gid);
            cpy(uids[n], sizeof uids[n], g.uid);
            secret_key(st, g.client_id, chash[n]);
            n++;
        }
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < n && rc == PL_OK; i++) {
        char ukey[2 * AZ_ID_MAX + 2];
        MDB_val gk = sval(gids[i]), uk;
        snprintf(ukey, sizeof ukey, "%.64s|%.64s", uids[i], gids[i]);
        uk = sval(ukey);
        uint8_t ck[CORE_SHA256_LEN + AZ_ID_MAX];
        MDB_val ckv = client_grant_key(chash[i], gids[i], ck);
        for (int d = 0; d < 4 && rc == PL_OK; d++) {
            static const int dbs[4] = {DB_GRANTS, DB_GRANT_STATE, DB_USER_GRANTS, DB_CLIENT_GRANTS};
            MDB_val *key = dbs[d] == DB_USER_GRANTS ? &uk : dbs[d] == DB_CLIENT_GRANTS ? &ckv : &gk;
            e = mdb_del(t, st->db[dbs[d]], key, NULL);
            rc = e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE;
        }
    }
    return rc;
}

/* Dynamically registered clients older than a week with no grant left: the client, its
 * registration fingerprint and consents go, freeing their place under the DCR cap. */
#define DCR_IDLE_MS ((int64_t)7 * 24 * 3600 * 1000)
static pl_rc sweep_dcr_clients(az_store *st, MDB_txn *t, int64_t now)
{
    MDB_cursor *c = NULL, *cg = NULL;
    MDB_val k, v;
    char ids[128][AZ_CLIENT_ID_MAX + 1];
    uint8_t fps[128][CORE_SHA256_LEN];
    int has_fp[128];
    az_client sc;
    size_t n = 0;
    pl_rc rc = PL_OK;
    int e, budget = 10000;
    if (mdb_cursor_open(t, st->db[DB_CLIENTS], &c) != 0)
        return PL_ERR_STORE;
    if (mdb_cursor_open(t, st->db[DB_CLIENT_GRANTS], &cg) != 0) {
        mdb_cursor_close(c);
        return PL_ERR_STORE;
    }
    for (e = mdb_cursor_get(c, &k, &v, MDB_FIRST); e == 0 && budget-- > 0 && n < 128;
         e = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        uint8_t h[CORE_SHA256_LEN];
        MDB_val pk = {CORE_SHA256_LEN, h}, pv;
        if (client_decode(&v, &sc, fps[n], &has_fp[n]) != PL_OK)
            continue;
        if (sc.kind != AZ_CLIENT_DCR || now - sc.created_ms < DCR_IDLE_MS)
            continue;
        secret_key(st, sc.id, h);
        if (mdb_cursor_get(cg, &pk, &pv, MDB_SET_RANGE) == 0 && pk.mv_size >= CORE_SHA256_LEN &&
            memcmp(pk.mv_data, h, CORE_SHA256_LEN) == 0)
            continue; /* still has grants */
        cpy(ids[n], sizeof ids[n], sc.id);
        n++;
    }
    mdb_cursor_close(cg);
    mdb_cursor_close(c);
    for (size_t i = 0; i < n && rc == PL_OK; i++) {
        MDB_val ck = sval(ids[i]), fk = {CORE_SHA256_LEN, fps[i]};
        e = mdb_del(t, st->db[DB_CLIENTS], &ck, NULL);
        if (e == 0 && has_fp[i])
            e = mdb_del(t, st->db[DB_DCR_FP], &fk, NULL);
        rc = e == 0 || e == MDB_NOTFOUND ? PL_OK : PL_ERR_STORE;
    }
    return rc;
}

pl_rc az_store_sweep(az_store *st)
{
    MDB_txn *t = NULL;
    int64_t now = now_ms(st);
    pl_rc rc = wtxn(st, &t);
    if (rc != PL_OK)
        return rc;
    rc = sweep_db(st, t, DB_PENDING, "created_ms", PENDING_TTL_MS, now);
    if (rc == PL_OK)
        rc = sweep_db(st, t, DB_SESSIONS, "expires_ms", 0, now);
    /* Used codes are kept a while so a late replay still revokes their grant. */
    if (rc == PL_OK) {
        sweep_rule r = {code_expired, NULL, (int64_t)24 * 3600 * 1000, now};
        rc = sweep_rows(st, t, DB_CODES, &r);
    }
    if (rc == PL_OK)
        rc = sweep_db(st, t, DB_THROTTLE, "t0", THROTTLE_WIN_MS, now);
    if (rc == PL_OK) {
        sweep_rule r = {refresh_expired, NULL, st->refresh_ttl_ms, now};
        rc = sweep_rows(st, t, DB_REFRESH, &r);
    }
    if (rc == PL_OK)
        rc = sweep_grants(st, t, now);
    if (rc == PL_OK)
        rc = sweep_dcr_clients(st, t, now);
    if (rc == PL_OK) /* registration counters: windows are at most a day */
        rc = sweep_db(st, t, DB_DCR_COUNT, "t0", (int64_t)24 * 3600 * 1000, now);
    return finish(st, t, rc);
}
