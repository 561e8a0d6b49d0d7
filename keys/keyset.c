/*
 * keys/keyset.c — the key store: P-256 keys in <data>/keys/, their states, rotation, pruning
 * and the JWKS. See keys/keyset.h for the contract and the on-disk layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "core/crypto.h"
#include "keys/keyset.h"
#include "keys/ecdsa_int.h"
#include "keys/keyset_int.h"

#define STATE_FILE     "keys.json"
#define LOCK_FILE      ".lock"
#define STATE_VERSION  1
#define STATE_MAX      ((size_t)1024 * 1024) /* bytes of keys.json we accept */
#define PEM_MAX        ((size_t)16 * 1024)   /* bytes of a private key file we accept */
#define KEYS_MAX       4096                  /* records in keys.json */
#define KID_LEN        43
#define HEADER_B64_MAX 128
#define SIGN_SLOTS     4   /* signing contexts kept per key set (threads minting at once) */
#define RANDOM_POOL    256 /* bytes of RAND_bytes output a slot keeps for jti values */

/* A signing context kept between tokens (docs/performance.md, "Authorization server"): a
 * fresh EVP_DigestSignInit per token cost about as much as the rest of minting together.
 * A thread reserves a slot with one atomic exchange for the duration of one token, so the
 * slot's contents are only ever used by one thread at a time; with every slot taken, a
 * token is signed with one-off contexts instead (never a wait). The contexts belong to the
 * active key at the time they were made: adopt() drops them whenever the key set's keys
 * change (reload, rotate, prune, remove), and those calls are exclusive with minting by the
 * key set's contract, so a slot never signs with a key that is no longer the active one. */
struct key_sign_slot {
    atomic_int busy;
    EC_KEY *ec;     /* the active key's EC_KEY view (keys/ecdsa_int.h); NULL until first use */
    BN_CTX *bn;     /* scratch numbers for key_keyset_presign */
    EVP_MD_CTX *md; /* SHA-256 of the signing input */
    uint8_t pool[RANDOM_POOL]; /* RAND_bytes output; the last `avail` bytes not yet used */
    size_t avail;              /* used bytes are wiped as they are handed out */
};

/* Precomputed ECDSA nonces (key_keyset_presign; docs/keys.md "Precomputed nonces"): a stack
 * under a mutex, each pair taken out (and so used) once. `count` mirrors n for lock-free
 * reads. Emptied with the slots whenever the keys change. */
typedef struct presign_pool {
    pthread_mutex_t mu;
    key_ecdsa_pair pairs[KEY_PRESIGN_MAX];
    size_t n;            /* guarded by mu */
    atomic_size_t count; /* == n, readable without mu */
} presign_pool;

typedef struct key_entry {
    key_info info;
    EVP_PKEY *pkey; /* private key; NULL for removed keys */
    char x[CORE_B64URL_SIZE(32)];
    char y[CORE_B64URL_SIZE(32)];
    char header_b64[HEADER_B64_MAX];
    size_t header_b64_len;
} key_entry;

struct key_keyset {
    char *data_dir;
    char *dir; /* <data>/keys */
    const core_clock *clock;
    int64_t max_life_s;
    int64_t leeway_s;
    key_entry *keys; /* oldest first */
    size_t n;
    size_t active; /* index of the active key; n when none */
    uint64_t generation;
    EVP_MD *sha256;                        /* fetched once for every signature */
    key_sign_slot *slots;                  /* SIGN_SLOTS of them; NULL for a public-only key set */
    presign_pool *pool;                    /* NULL for a public-only key set */
    uint8_t state_digest[CORE_SHA256_LEN]; /* of the keys.json last loaded or written */
    int public_only; /* opened with only the public halves: no signing, no changes */
};

static const char *const state_names[KEY_STATE__COUNT] = {
    [KEY_STATE_NEXT] = "next",
    [KEY_STATE_ACTIVE] = "active",
    [KEY_STATE_RETIRED] = "retired",
    [KEY_STATE_REMOVED] = "removed",
};

const char *key_state_name(key_state s)
{
    return (unsigned)s < KEY_STATE__COUNT ? state_names[s] : "unknown";
}

static int state_parse(const char *s, key_state *out)
{
    for (unsigned i = 0; i < KEY_STATE__COUNT; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (key_state)i;
            return 1;
        }
    }
    return 0;
}

__attribute__((format(printf, 3, 4))) static pl_rc fail(key_error *err, pl_rc rc, const char *fmt,
                                                        ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + 1 + lb + 1);
    if (p)
        snprintf(p, la + 1 + lb + 1, "%s/%s", a, b);
    return p;
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static int kid_valid(const char *kid, size_t len)
{
    if (len != KID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = kid[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* ---- files ---- */

/* Private material must be readable by its owner only (ARCHITECTURE.md §5: 0600). */
static pl_rc check_private(const char *path, const struct stat *st, int is_dir, key_error *err)
{
    if (is_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        return fail(err, PL_ERR_PARSE, "%s: not a %s", path, is_dir ? "directory" : "regular file");
    if (st->st_uid != geteuid())
        return fail(err, PL_ERR_DENIED, "%s: owned by uid %u, not by this user (uid %u)", path,
                    (unsigned)st->st_uid, (unsigned)geteuid());
    if (st->st_mode & 077)
        return fail(err, PL_ERR_DENIED, "%s: mode %04o, must be %s (run: chmod %s %s)", path,
                    (unsigned)(st->st_mode & 07777), is_dir ? "0700" : "0600",
                    is_dir ? "700" : "600", path);
    return PL_OK;
}

static pl_rc read_private(const char *path, size_t max, char **buf, size_t *len, key_error *err)
{
    struct stat st;
    char *data = NULL;
    size_t got = 0;
    pl_rc rc;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    *buf = NULL;
    if (fd < 0) {
        if (errno == ENOENT)
            return fail(err, PL_ERR_NOT_FOUND, "%s: missing", path);
        return fail(err, PL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = fail(err, PL_ERR_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = check_private(path, &st, 0, err)) != PL_OK)
        goto out;
    if ((size_t)st.st_size > max) {
        rc = fail(err, PL_ERR_PARSE, "%s: %lld bytes, larger than any valid file (%zu)", path,
                  (long long)st.st_size, max);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = fail(err, PL_ERR_IO, "%s: read failed: %s", path,
                      r < 0 ? strerror(errno) : "short file");
            goto out;
        }
        got += (size_t)r;
    }
    data[got] = '\0';
    *buf = data;
    *len = got;
    data = NULL;
    rc = PL_OK;
out:
    if (data) {
        core_wipe(data, (size_t)st.st_size);
        free(data);
    }
    close(fd);
    return rc;
}

static pl_rc fsync_dir(const char *dir, key_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pl_rc rc = PL_OK;
    if (fd < 0)
        return fail(err, PL_ERR_IO, "%s: %s", dir, strerror(errno));
    if (fsync(fd) != 0)
        rc = fail(err, PL_ERR_IO, "%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* Writes dir/name atomically with mode 0600: temporary file, fsync, rename, fsync dir. */
static pl_rc write_private(const char *dir, const char *name, const void *data, size_t len,
                           key_error *err)
{
    char tmpname[128];
    char *tmp = NULL, *dst = NULL;
    size_t off = 0;
    int fd = -1;
    pl_rc rc;

    snprintf(tmpname, sizeof tmpname, ".%s.tmp.%ld", name, (long)getpid());
    tmp = path_join(dir, tmpname);
    dst = path_join(dir, name);
    if (!tmp || !dst) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = fail(err, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = fail(err, PL_ERR_IO, "%s: write: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = fail(err, PL_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, dst) != 0) {
        rc = fail(err, PL_ERR_IO, "%s: rename: %s", dst, strerror(errno));
        goto out;
    }
    rc = fsync_dir(dir, err);
out:
    if (fd >= 0)
        close(fd);
    if (rc != PL_OK && tmp)
        unlink(tmp);
    free(dst);
    free(tmp);
    return rc;
}

/* flock(2) on <dir>/.lock; *fd >= 0 on success. Released by close(). */
static pl_rc lock_take(const char *dir, int op, int *fd, key_error *err)
{
    char *path = path_join(dir, LOCK_FILE);
    pl_rc rc = PL_OK;

    *fd = -1;
    if (!path)
        return PL_ERR_NOMEM;
    *fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (*fd < 0) {
        rc = fail(err, PL_ERR_IO, "%s: %s", path, strerror(errno));
    } else {
        while (flock(*fd, op) != 0) {
            if (errno == EINTR)
                continue;
            rc = fail(err, PL_ERR_IO, "%s: lock: %s", path, strerror(errno));
            close(*fd);
            *fd = -1;
            break;
        }
    }
    free(path);
    return rc;
}

static void lock_release(int fd)
{
    if (fd >= 0)
        close(fd); /* drops the flock */
}

/* ---- key entries ---- */

static void entries_free(key_entry *keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        EVP_PKEY_free(keys[i].pkey); /* OpenSSL clears private scalars when freeing */
    free(keys);
}

/* Fills x, y and the protected header from pkey and info.kid. */
static pl_rc entry_finish(key_entry *e, const uint8_t x[32], const uint8_t y[32])
{
    char header[128];
    pl_rc rc;
    int n;

    if ((rc = core_b64url_encode(x, 32, e->x, sizeof e->x, NULL)) != PL_OK ||
        (rc = core_b64url_encode(y, 32, e->y, sizeof e->y, NULL)) != PL_OK)
        return rc;
    /* RFC 9068 §2.1: typ "at+jwt"; the kid is base64url, so no escaping is needed. */
    n = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
                 e->info.kid);
    if (n < 0 || (size_t)n >= sizeof header)
        return PL_ERR_INTERNAL;
    return core_b64url_encode((const uint8_t *)header, (size_t)n, e->header_b64,
                              sizeof e->header_b64, &e->header_b64_len);
}

/* Writes <kid>.pub, the public half (SubjectPublicKeyInfo PEM), mode 0600 like the rest. */
static pl_rc write_public(const char *dir, const char *kid, EVP_PKEY *pkey, key_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char name[KEY_KID_SIZE + 8];
    char *mem = NULL;
    long memlen;
    pl_rc rc;

    if (!bio || !PEM_write_bio_PUBKEY(bio, pkey)) {
        BIO_free(bio);
        return fail(err, PL_ERR_CRYPTO, "cannot encode the public key of %s", kid);
    }
    memlen = BIO_get_mem_data(bio, &mem);
    snprintf(name, sizeof name, "%s.pub", kid);
    rc = write_private(dir, name, mem, (size_t)memlen, err);
    BIO_free(bio);
    return rc;
}

/* Loads <kid>.pem (the private key) or, for a public-only key set, <kid>.pub, and checks that
 * the key is P-256 and that its thumbprint is the kid. A full load also writes a missing
 * <kid>.pub (key sets made before public files existed). */
static pl_rc load_pem(const char *dir, key_entry *e, int public_only, key_error *err)
{
    char name[KEY_KID_SIZE + 8];
    char *path = NULL, *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t x[32], y[32];
    char kid[KEY_KID_SIZE];
    pl_rc rc;

    snprintf(name, sizeof name, "%s.%s", e->info.kid, public_only ? "pub" : "pem");
    if (!(path = path_join(dir, name))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = read_private(path, PEM_MAX, &pem, &len, err)) != PL_OK) {
        if (rc == PL_ERR_NOT_FOUND)
            rc = fail(err, PL_ERR_PARSE, "%s: missing, but %s/" STATE_FILE " lists key %s as %s",
                      path, dir, e->info.kid, key_state_name(e->info.state));
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    pkey = public_only ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)
                       : PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!pkey) {
        rc = fail(err, PL_ERR_PARSE, "%s: corrupt: not a PEM %s key", path,
                  public_only ? "public" : "private");
        goto out;
    }
    if (key_pkey_coords(pkey, x, y) != PL_OK) {
        rc = fail(err, PL_ERR_PARSE, "%s: corrupt: not an EC P-256 key", path);
        goto out;
    }
    if ((rc = key_thumbprint(x, y, kid)) != PL_OK)
        goto out;
    if (strcmp(kid, e->info.kid) != 0) {
        rc = fail(err, PL_ERR_PARSE,
                  "%s: corrupt: the key's thumbprint is %s, not the kid in its name", path, kid);
        goto out;
    }
    if ((rc = entry_finish(e, x, y)) != PL_OK)
        goto out;
    if (!public_only) {
        char *pub = NULL;
        struct stat st;
        snprintf(name, sizeof name, "%s.pub", e->info.kid);
        if ((pub = path_join(dir, name)) && lstat(pub, &st) != 0 && errno == ENOENT)
            (void)write_public(dir, e->info.kid, pkey, NULL); /* best effort */
        free(pub);
    }
    e->pkey = pkey;
    pkey = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    if (pem) {
        core_wipe(pem, len);
        free(pem);
    }
    free(path);
    return rc;
}

/* A new P-256 key in state `state`, its private and public files written (0600). */
static pl_rc generate(const char *dir, key_state state, int64_t now, key_entry *e, key_error *err)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char name[KEY_KID_SIZE + 8];
    uint8_t x[32], y[32];
    char *mem = NULL;
    long memlen;
    pl_rc rc;

    memset(e, 0, sizeof *e);
    pkey = EVP_EC_gen("P-256");
    if (!pkey) {
        rc = fail(err, PL_ERR_CRYPTO, "P-256 key generation failed");
        goto out;
    }
    if ((rc = key_pkey_coords(pkey, x, y)) != PL_OK ||
        (rc = key_thumbprint(x, y, e->info.kid)) != PL_OK)
        goto out;
    e->info.state = state;
    e->info.created_s = now;
    if (state == KEY_STATE_ACTIVE)
        e->info.activated_s = now;
    if ((rc = entry_finish(e, x, y)) != PL_OK)
        goto out;
    bio = BIO_new(BIO_s_secmem());
    if (!bio || !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
        rc = fail(err, PL_ERR_CRYPTO, "cannot encode the new private key");
        goto out;
    }
    memlen = BIO_get_mem_data(bio, &mem);
    snprintf(name, sizeof name, "%s.pem", e->info.kid);
    if ((rc = write_private(dir, name, mem, (size_t)memlen, err)) != PL_OK)
        goto out;
    if ((rc = write_public(dir, e->info.kid, pkey, err)) != PL_OK) {
        char *path = path_join(dir, name);
        if (path)
            unlink(path);
        free(path);
        goto out;
    }
    e->pkey = pkey;
    pkey = NULL;
out:
    BIO_free(bio); /* secure-memory BIO: cleared on free */
    EVP_PKEY_free(pkey);
    return rc;
}

static void unlink_pem(const char *dir, const char *kid)
{
    static const char *const ext[] = {"pem", "pub"};
    char name[KEY_KID_SIZE + 8];
    char *path;
    for (size_t i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.%s", kid, ext[i]);
        if ((path = path_join(dir, name))) {
            unlink(path);
            free(path);
        }
    }
}

/* ---- keys.json ---- */

static json_t *state_to_json(const key_entry *keys, size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr)
        goto fail;
    json_object_set_new(root, "version", json_integer(STATE_VERSION));
    for (size_t i = 0; i < n; i++) {
        const key_info *k = &keys[i].info;
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "kid", k->kid, "state",
                      key_state_name(k->state), "created", (json_int_t)k->created_s, "activated",
                      (json_int_t)k->activated_s, "retired", (json_int_t)k->retired_s, "removable",
                      (json_int_t)k->removable_s, "removed", (json_int_t)k->removed_s);
        if (!o || json_array_append_new(arr, o) != 0)
            goto fail;
    }
    if (json_object_set_new(root, "keys", arr) != 0) {
        arr = NULL;
        goto fail;
    }
    return root;
fail:
    json_decref(arr);
    json_decref(root);
    return NULL;
}

static pl_rc write_state(const char *dir, const key_entry *keys, size_t n, key_error *err)
{
    json_t *root = state_to_json(keys, n);
    char *text = NULL;
    pl_rc rc;

    if (!root)
        return PL_ERR_NOMEM;
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return PL_ERR_NOMEM;
    rc = write_private(dir, STATE_FILE, text, strlen(text), err);
    free(text);
    return rc;
}

static pl_rc int_field(json_t *o, const char *name, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return PL_ERR_PARSE;
    *out = (int64_t)json_integer_value(v);
    return PL_OK;
}

/* Reads keys.json and every private key it lists as not removed. */
static pl_rc load_state(const char *dir, int public_only, key_entry **out, size_t *out_n,
                        size_t *active, key_error *err)
{
    char *path = path_join(dir, STATE_FILE);
    char *text = NULL;
    size_t len = 0, n = 0, nactive = 0, nnext = 0;
    json_t *root = NULL, *arr, *o;
    json_error_t jerr;
    key_entry *keys = NULL;
    pl_rc rc;

    *out = NULL;
    *out_n = 0;
    if (!path)
        return PL_ERR_NOMEM;
    if ((rc = read_private(path, STATE_MAX, &text, &len, err)) != PL_OK)
        goto out;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = fail(err, PL_ERR_PARSE, "%s:%d:%d: corrupt: %s", path, jerr.line, jerr.column,
                  jerr.text);
        goto out;
    }
    arr = json_object_get(root, "keys");
    if (!json_is_object(root) || !json_is_integer(json_object_get(root, "version")) ||
        json_integer_value(json_object_get(root, "version")) != STATE_VERSION ||
        !json_is_array(arr)) {
        rc = fail(err, PL_ERR_PARSE, "%s: corrupt: expected {\"version\":%d,\"keys\":[...]}", path,
                  STATE_VERSION);
        goto out;
    }
    n = json_array_size(arr);
    if (n > KEYS_MAX) {
        rc = fail(err, PL_ERR_PARSE, "%s: corrupt: %zu keys, more than %d", path, n, KEYS_MAX);
        goto out;
    }
    keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        key_entry *e = &keys[i];
        json_t *kid, *st;
        o = json_array_get(arr, i);
        kid = json_object_get(o, "kid");
        st = json_object_get(o, "state");
        if (!json_is_string(kid) || !kid_valid(json_string_value(kid), json_string_length(kid)) ||
            !json_is_string(st) || !state_parse(json_string_value(st), &e->info.state) ||
            int_field(o, "created", &e->info.created_s) != PL_OK ||
            int_field(o, "activated", &e->info.activated_s) != PL_OK ||
            int_field(o, "retired", &e->info.retired_s) != PL_OK ||
            int_field(o, "removable", &e->info.removable_s) != PL_OK ||
            int_field(o, "removed", &e->info.removed_s) != PL_OK) {
            rc = fail(err, PL_ERR_PARSE,
                      "%s: corrupt: key #%zu needs kid (43 base64url chars), state "
                      "(next|active|retired|removed) and non-negative integer times",
                      path, i + 1);
            goto out;
        }
        memcpy(e->info.kid, json_string_value(kid), KID_LEN + 1);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys[j].info.kid, e->info.kid) == 0) {
                rc = fail(err, PL_ERR_PARSE, "%s: corrupt: key %s listed twice", path, e->info.kid);
                goto out;
            }
        }
        if (e->info.state == KEY_STATE_ACTIVE) {
            nactive++;
            *active = i;
        }
        if (e->info.state == KEY_STATE_NEXT)
            nnext++;
    }
    if (nactive != 1 || nnext > 1) {
        rc = fail(err, PL_ERR_PARSE,
                  "%s: corrupt: %zu active and %zu next keys (need exactly 1 "
                  "active and at most 1 next)",
                  path, nactive, nnext);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (keys[i].info.state == KEY_STATE_REMOVED)
            continue;
        if ((rc = load_pem(dir, &keys[i], public_only, err)) != PL_OK)
            goto out;
    }
    *out = keys;
    *out_n = n;
    keys = NULL;
    rc = PL_OK;
out:
    entries_free(keys, n);
    json_decref(root);
    free(text);
    free(path);
    return rc;
}

/* SHA-256 of keys.json as it is on disk now (reload skips the work when it is unchanged). */
static pl_rc state_digest(const char *dir, uint8_t out[CORE_SHA256_LEN], key_error *err)
{
    char *path = path_join(dir, STATE_FILE), *text = NULL;
    size_t len = 0;
    pl_rc rc;
    if (!path)
        return PL_ERR_NOMEM;
    rc = read_private(path, STATE_MAX, &text, &len, err);
    if (rc == PL_OK)
        core_sha256(text, len, out);
    free(text);
    free(path);
    return rc;
}

/* ---- the key set ---- */

static int64_t now_s(const key_keyset *ks)
{
    return core_clock_now_s(ks->clock);
}

static int same_published(const key_entry *a, size_t na, const key_entry *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].info.kid, b[i].info.kid) != 0 || a[i].info.state != b[i].info.state)
            return 0;
    return 1;
}

/* Drops every slot's signing context (they hold the key they were made for). Only while no
 * thread mints (the key set's contract for every mutating call). */
static void slots_reset(key_keyset *ks)
{
    if (ks->slots)
        for (size_t i = 0; i < SIGN_SLOTS; i++) {
            key_ecdsa_key_free(ks->slots[i].ec);
            ks->slots[i].ec = NULL;
        }
    if (ks->pool) {
        /* Pairs are not tied to a key, but nothing made for the old keys outlives them. */
        for (size_t i = 0; i < ks->pool->n; i++)
            key_ecdsa_pair_free(&ks->pool->pairs[i]);
        ks->pool->n = 0;
        atomic_store(&ks->pool->count, 0);
    }
}

static void slots_free(key_keyset *ks)
{
    if (!ks->slots)
        return;
    slots_reset(ks);
    for (size_t i = 0; i < SIGN_SLOTS; i++) {
        EVP_MD_CTX_free(ks->slots[i].md);
        BN_CTX_free(ks->slots[i].bn);
    }
    core_wipe(ks->slots, SIGN_SLOTS * sizeof *ks->slots);
    free(ks->slots);
    ks->slots = NULL;
}

/* Replaces the key set's contents with keys (taken). */
static void adopt(key_keyset *ks, key_entry *keys, size_t n, size_t active)
{
    int changed = !same_published(ks->keys, ks->n, keys, n);
    slots_reset(ks); /* before the keys they were made for go */
    entries_free(ks->keys, ks->n);
    ks->keys = keys;
    ks->n = n;
    ks->active = active;
    if (changed)
        ks->generation++;
}

static pl_rc ensure_dir(const char *path, int create, key_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return fail(err, PL_ERR_IO, "%s: %s", path, strerror(errno));
        if (!create)
            return fail(err, PL_ERR_NOT_FOUND, "%s: no key set here (run: postly-keys init)", path);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return fail(err, PL_ERR_IO, "%s: mkdir: %s", path, strerror(errno));
        if (lstat(path, &st) != 0)
            return fail(err, PL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return check_private(path, &st, 1, err);
}

/* First start: an active key and a next key. Caller holds the lock. */
static pl_rc initialise(key_keyset *ks, key_error *err)
{
    key_entry *keys = calloc(2, sizeof *keys);
    int64_t now = now_s(ks);
    pl_rc rc;

    if (!keys)
        return PL_ERR_NOMEM;
    if ((rc = generate(ks->dir, KEY_STATE_ACTIVE, now, &keys[0], err)) != PL_OK)
        goto fail;
    if ((rc = generate(ks->dir, KEY_STATE_NEXT, now, &keys[1], err)) != PL_OK)
        goto fail;
    if ((rc = write_state(ks->dir, keys, 2, err)) != PL_OK)
        goto fail;
    adopt(ks, keys, 2, 0);
    return PL_OK;
fail:
    for (size_t i = 0; i < 2; i++)
        if (keys[i].pkey)
            unlink_pem(ks->dir, keys[i].info.kid);
    entries_free(keys, 2);
    return rc;
}

pl_rc key_keyset_open(const key_keyset_cfg *cfg, key_keyset **out, key_error *err)
{
    key_keyset *ks = NULL;
    key_entry *keys = NULL;
    size_t n = 0, active = 0;
    char *state_path = NULL;
    struct stat st;
    int lock = -1;
    pl_rc rc;

    if (err)
        err->text[0] = '\0';
    if (!out || !cfg || !cfg->data_dir || !cfg->data_dir[0])
        return fail(err, PL_ERR_INVALID, "no data directory given");
    *out = NULL;
    if (!(ks = calloc(1, sizeof *ks)))
        return PL_ERR_NOMEM;
    if (cfg->create && cfg->public_only) {
        free(ks);
        return fail(err, PL_ERR_INVALID, "a public-only key set cannot create keys");
    }
    ks->clock = cfg->clock;
    ks->public_only = cfg->public_only;
    ks->max_life_s =
        cfg->max_token_lifetime_s > 0 ? cfg->max_token_lifetime_s : KEY_MAX_LIFETIME_DEFAULT_S;
    ks->leeway_s = cfg->leeway_s > 0 ? cfg->leeway_s : KEY_LEEWAY_DEFAULT_S;
    ks->generation = 1;
    ks->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ks->data_dir = str_dup(cfg->data_dir);
    ks->dir = path_join(cfg->data_dir, "keys");
    if (!ks->public_only && (!(ks->slots = calloc(SIGN_SLOTS, sizeof *ks->slots)) ||
                             !(ks->pool = calloc(1, sizeof *ks->pool)))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (ks->pool)
        pthread_mutex_init(&ks->pool->mu, NULL);
    if (!ks->data_dir || !ks->dir || !ks->sha256) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (cfg->create && mkdir(ks->data_dir, 0700) != 0 && errno != EEXIST) {
        rc = fail(err, PL_ERR_IO, "%s: mkdir: %s", ks->data_dir, strerror(errno));
        goto out;
    }
    if ((rc = ensure_dir(ks->dir, cfg->create, err)) != PL_OK)
        goto out;
    /* exclusive only when this open may create the key set; readers share */
    if ((rc = lock_take(ks->dir, cfg->create ? LOCK_EX : LOCK_SH, &lock, err)) != PL_OK)
        goto out;
    if (!(state_path = path_join(ks->dir, STATE_FILE))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (lstat(state_path, &st) != 0 && errno == ENOENT) {
        if (!cfg->create) {
            rc = fail(err, PL_ERR_NOT_FOUND, "%s: missing (run: postly-keys init)", state_path);
            goto out;
        }
        if ((rc = initialise(ks, err)) == PL_OK)
            rc = state_digest(ks->dir, ks->state_digest, err);
        goto out;
    }
    if ((rc = load_state(ks->dir, ks->public_only, &keys, &n, &active, err)) != PL_OK)
        goto out;
    adopt(ks, keys, n, active);
    ks->generation = 1;
    rc = state_digest(ks->dir, ks->state_digest, err);
out:
    lock_release(lock);
    free(state_path);
    if (rc == PL_OK)
        *out = ks;
    else
        key_keyset_free(ks);
    return rc;
}

void key_keyset_free(key_keyset *ks)
{
    if (!ks)
        return;
    slots_free(ks);
    if (ks->pool) {
        pthread_mutex_destroy(&ks->pool->mu);
        free(ks->pool);
    }
    entries_free(ks->keys, ks->n);
    EVP_MD_free(ks->sha256);
    free(ks->dir);
    free(ks->data_dir);
    free(ks);
}

pl_rc key_keyset_reload(key_keyset *ks, key_error *err)
{
    key_entry *keys = NULL;
    size_t n = 0, active = 0;
    int lock = -1;
    pl_rc rc;

    if (!ks)
        return PL_ERR_INVALID;
    uint8_t digest[CORE_SHA256_LEN];

    if ((rc = lock_take(ks->dir, LOCK_SH, &lock, err)) != PL_OK)
        return rc;
    /* Servers call this every few seconds: when keys.json has not changed, neither has the
     * key set (private files are named by their thumbprint and never rewritten). */
    if ((rc = state_digest(ks->dir, digest, err)) != PL_OK)
        goto out;
    if (memcmp(digest, ks->state_digest, sizeof digest) == 0)
        goto out;
    if ((rc = load_state(ks->dir, ks->public_only, &keys, &n, &active, err)) != PL_OK)
        goto out;
    adopt(ks, keys, n, active);
    memcpy(ks->state_digest, digest, sizeof digest);
out:
    lock_release(lock);
    return rc;
}

pl_rc key_keyset_rotate(key_keyset *ks, char new_active[KEY_KID_SIZE], key_error *err)
{
    key_entry *keys = NULL, *grown;
    size_t n = 0, active = 0, next;
    int64_t now;
    int lock = -1, generated = 0;
    pl_rc rc;

    if (!ks)
        return PL_ERR_INVALID;
    if (ks->public_only)
        return fail(err, PL_ERR_STATE, "%s: opened public-only, cannot rotate", ks->dir);
    if ((rc = lock_take(ks->dir, LOCK_EX, &lock, err)) != PL_OK)
        return rc;
    /* Work on the state on disk (another process may have changed it), in a copy. */
    if ((rc = load_state(ks->dir, ks->public_only, &keys, &n, &active, err)) != PL_OK)
        goto out;
    now = now_s(ks);
    if (!(grown = realloc(keys, (n + 2) * sizeof *keys))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    keys = grown;
    for (next = 0; next < n && keys[next].info.state != KEY_STATE_NEXT; next++)
        ;
    if (next == n) { /* no next key (hand-edited state): make one to promote */
        if ((rc = generate(ks->dir, KEY_STATE_NEXT, now, &keys[n], err)) != PL_OK)
            goto out;
        n++;
        generated++;
    }
    /* Verifiers keep the retired key until every token it signed has expired (§5). */
    keys[active].info.state = KEY_STATE_RETIRED;
    keys[active].info.retired_s = now;
    keys[active].info.removable_s = now + ks->max_life_s + ks->leeway_s;
    keys[next].info.state = KEY_STATE_ACTIVE;
    keys[next].info.activated_s = now;
    if ((rc = generate(ks->dir, KEY_STATE_NEXT, now, &keys[n], err)) != PL_OK)
        goto out;
    n++;
    generated++;
    if ((rc = write_state(ks->dir, keys, n, err)) != PL_OK)
        goto out;
    if (new_active)
        memcpy(new_active, keys[next].info.kid, KEY_KID_SIZE);
    adopt(ks, keys, n, next);
    (void)state_digest(ks->dir, ks->state_digest, NULL);
    keys = NULL;
    n = 0;
out:
    if (rc != PL_OK && keys) {
        for (size_t i = n - (size_t)generated; i < n; i++)
            unlink_pem(ks->dir, keys[i].info.kid);
    }
    entries_free(keys, n);
    lock_release(lock);
    return rc;
}

pl_rc key_keyset_prune(key_keyset *ks, size_t *removed, key_error *err)
{
    key_entry *keys = NULL;
    size_t n = 0, active = 0, count = 0;
    int64_t now;
    int lock = -1;
    pl_rc rc;

    if (removed)
        *removed = 0;
    if (!ks)
        return PL_ERR_INVALID;
    if (ks->public_only)
        return fail(err, PL_ERR_STATE, "%s: opened public-only, cannot prune", ks->dir);
    if ((rc = lock_take(ks->dir, LOCK_EX, &lock, err)) != PL_OK)
        return rc;
    if ((rc = load_state(ks->dir, ks->public_only, &keys, &n, &active, err)) != PL_OK)
        goto out;
    now = now_s(ks);
    for (size_t i = 0; i < n; i++) {
        key_entry *e = &keys[i];
        if (e->info.state != KEY_STATE_RETIRED || e->info.removable_s > now)
            continue;
        e->info.state = KEY_STATE_REMOVED;
        e->info.removed_s = now;
        EVP_PKEY_free(e->pkey);
        e->pkey = NULL;
        count++;
    }
    if (count == 0)
        goto adopt;
    /* State first: a crash between the two steps leaves a stray file, never a listed key
     * whose file is gone. */
    if ((rc = write_state(ks->dir, keys, n, err)) != PL_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (keys[i].info.state == KEY_STATE_REMOVED && keys[i].info.removed_s == now)
            unlink_pem(ks->dir, keys[i].info.kid);
adopt:
    adopt(ks, keys, n, active);
    (void)state_digest(ks->dir, ks->state_digest, NULL);
    keys = NULL;
    n = 0;
    if (removed)
        *removed = count;
out:
    entries_free(keys, n);
    lock_release(lock);
    return rc;
}

pl_rc key_keyset_remove(key_keyset *ks, const char *kid, key_error *err)
{
    key_entry *keys = NULL, *grown;
    size_t n = 0, active = 0, i;
    int64_t now;
    int lock = -1, generated = 0;
    pl_rc rc;

    if (!ks || !kid)
        return PL_ERR_INVALID;
    if (ks->public_only)
        return fail(err, PL_ERR_STATE, "%s: opened public-only, cannot remove keys", ks->dir);
    if ((rc = lock_take(ks->dir, LOCK_EX, &lock, err)) != PL_OK)
        return rc;
    if ((rc = load_state(ks->dir, ks->public_only, &keys, &n, &active, err)) != PL_OK)
        goto out;
    for (i = 0; i < n && strcmp(keys[i].info.kid, kid) != 0; i++)
        ;
    if (i == n) {
        rc = fail(err, PL_ERR_NOT_FOUND, "%s/" STATE_FILE ": no key %s", ks->dir, kid);
        goto out;
    }
    if (keys[i].info.state == KEY_STATE_ACTIVE) {
        rc = fail(err, PL_ERR_STATE, "key %s is active: rotate first, then remove it", kid);
        goto out;
    }
    if (keys[i].info.state == KEY_STATE_REMOVED) {
        rc = fail(err, PL_ERR_STATE, "key %s is already removed", kid);
        goto out;
    }
    now = now_s(ks);
    if (keys[i].info.state == KEY_STATE_NEXT) {
        /* keep a key published ahead of the next rotation */
        if (!(grown = realloc(keys, (n + 1) * sizeof *keys))) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        keys = grown;
        if ((rc = generate(ks->dir, KEY_STATE_NEXT, now, &keys[n], err)) != PL_OK)
            goto out;
        n++;
        generated = 1;
    }
    keys[i].info.state = KEY_STATE_REMOVED;
    keys[i].info.removed_s = now;
    EVP_PKEY_free(keys[i].pkey);
    keys[i].pkey = NULL;
    if ((rc = write_state(ks->dir, keys, n, err)) != PL_OK)
        goto out;
    unlink_pem(ks->dir, kid);
    adopt(ks, keys, n, active);
    (void)state_digest(ks->dir, ks->state_digest, NULL);
    keys = NULL;
    n = 0;
out:
    if (rc != PL_OK && generated)
        unlink_pem(ks->dir, keys[n - 1].info.kid);
    entries_free(keys, n);
    lock_release(lock);
    return rc;
}

size_t key_keyset_count(const key_keyset *ks)
{
    return ks ? ks->n : 0;
}

pl_rc key_keyset_get(const key_keyset *ks, size_t i, key_info *out)
{
    if (!ks || !out)
        return PL_ERR_INVALID;
    if (i >= ks->n)
        return PL_ERR_NOT_FOUND;
    *out = ks->keys[i].info;
    return PL_OK;
}

const char *key_keyset_active_kid(const key_keyset *ks)
{
    return ks && ks->active < ks->n ? ks->keys[ks->active].info.kid : NULL;
}

uint64_t key_keyset_generation(const key_keyset *ks)
{
    return ks ? ks->generation : 0;
}

static json_t *jwk_json(const key_entry *e)
{
    /* RFC 7517 §4, RFC 7518 §6.2.1: public members only. */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", e->x,
                     "y", e->y, "kid", e->info.kid, "use", "sig", "alg", "ES256");
}

pl_rc key_keyset_jwks(const key_keyset *ks, char **json, size_t *len)
{
    static const key_state order[] = {KEY_STATE_ACTIVE, KEY_STATE_NEXT, KEY_STATE_RETIRED};
    json_t *root = NULL, *arr = NULL;
    pl_rc rc = PL_ERR_NOMEM;

    if (!ks || !json)
        return PL_ERR_INVALID;
    *json = NULL;
    if (!(root = json_object()) || !(arr = json_array()))
        goto out;
    for (size_t s = 0; s < sizeof order / sizeof order[0]; s++) {
        for (size_t i = 0; i < ks->n; i++) {
            if (ks->keys[i].info.state != order[s])
                continue;
            if (json_array_append_new(arr, jwk_json(&ks->keys[i])) != 0)
                goto out;
        }
    }
    if (json_object_set(root, "keys", arr) != 0)
        goto out;
    *json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!*json)
        goto out;
    if (len)
        *len = strlen(*json);
    rc = PL_OK;
out:
    json_decref(arr);
    json_decref(root);
    return rc;
}

pl_rc key_signing_begin(const key_keyset *ks, key_signing *sg)
{
    const key_entry *e;
    if (!ks || !sg || ks->public_only || ks->active >= ks->n || !ks->keys[ks->active].pkey)
        return PL_ERR_STATE;
    e = &ks->keys[ks->active];
    memset(sg, 0, sizeof *sg);
    sg->kid = e->info.kid;
    sg->header_b64 = e->header_b64;
    sg->header_b64_len = e->header_b64_len;
    sg->pkey = e->pkey;
    sg->sha256 = ks->sha256;
    sg->pool = ks->pool;
    for (size_t i = 0; ks->slots && i < SIGN_SLOTS; i++) {
        if (atomic_exchange_explicit(&ks->slots[i].busy, 1, memory_order_acquire) == 0) {
            sg->slot = &ks->slots[i];
            break;
        }
    }
    return PL_OK;
}

pl_rc key_signing_random(key_signing *sg, uint8_t *buf, size_t n)
{
    key_sign_slot *sl;
    uint8_t *p;
    if (!sg || !buf || n > RANDOM_POOL)
        return PL_ERR_INVALID;
    if (!(sl = sg->slot))
        return core_random(buf, n);
    if (sl->avail < n) {
        if (RAND_bytes(sl->pool, RANDOM_POOL) != 1) {
            sl->avail = 0;
            return PL_ERR_CRYPTO;
        }
        sl->avail = RANDOM_POOL;
    }
    p = sl->pool + (RANDOM_POOL - sl->avail);
    memcpy(buf, p, n);
    core_wipe(p, n); /* handed out once, then gone from the pool */
    sl->avail -= n;
    return PL_OK;
}

/* A precomputed pair from the pool, if it has one (0 otherwise). */
static int pool_take(presign_pool *pool, key_ecdsa_pair *out)
{
    int got = 0;
    if (!pool || atomic_load_explicit(&pool->count, memory_order_relaxed) == 0)
        return 0;
    pthread_mutex_lock(&pool->mu);
    if (pool->n > 0) {
        pool->n--;
        *out = pool->pairs[pool->n];
        pool->pairs[pool->n].kinv = pool->pairs[pool->n].r = NULL; /* no copy stays behind */
        atomic_store_explicit(&pool->count, pool->n, memory_order_relaxed);
        got = 1;
    }
    pthread_mutex_unlock(&pool->mu);
    return got;
}

/* SHA-256 of msg (FIPS 180-4), then ECDSA over the digest (RFC 7518 §3.4: ES256 is ECDSA
 * P-256 with SHA-256), with a precomputed nonce when the pool has one. */
static pl_rc slot_sign(key_sign_slot *sl, presign_pool *pool, EVP_PKEY *pkey, const EVP_MD *sha256,
                       const uint8_t *msg, size_t len, uint8_t rs[64])
{
    uint8_t h[CORE_SHA256_LEN];
    unsigned int hlen = 0;
    key_ecdsa_pair pair = {0};
    pl_rc rc;

    if (!sl->ec && !(sl->ec = key_ecdsa_key(pkey)))
        return PL_ERR_CRYPTO;
    if (!sl->md && !(sl->md = EVP_MD_CTX_new()))
        return PL_ERR_NOMEM;
    if (EVP_DigestInit_ex(sl->md, sha256, NULL) != 1 || EVP_DigestUpdate(sl->md, msg, len) != 1 ||
        EVP_DigestFinal_ex(sl->md, h, &hlen) != 1 || hlen != sizeof h)
        return PL_ERR_CRYPTO;
    rc = key_ecdsa_sign(sl->ec, h, sizeof h, pool_take(pool, &pair) ? &pair : NULL, rs);
    core_wipe(h, sizeof h);
    return rc;
}

pl_rc key_signing_sign(key_signing *sg, const uint8_t *msg, size_t len, uint8_t rs[64])
{
    key_sign_slot one = {0};
    pl_rc rc;
    if (!sg || !sg->pkey || !msg || !rs)
        return PL_ERR_INVALID;
    if (sg->slot)
        return slot_sign(sg->slot, sg->pool, sg->pkey, sg->sha256, msg, len, rs);
    /* every slot taken: one-off contexts */
    rc = slot_sign(&one, sg->pool, sg->pkey, sg->sha256, msg, len, rs);
    key_ecdsa_key_free(one.ec);
    EVP_MD_CTX_free(one.md);
    return rc;
}

pl_rc key_keyset_presign(const key_keyset *ks, size_t target, size_t *count)
{
    key_signing sg;
    key_ecdsa_pair pair = {0};
    presign_pool *pool = ks ? ks->pool : NULL;
    key_sign_slot *sl;
    pl_rc rc;
    if (count)
        *count = pool ? atomic_load(&pool->count) : 0;
    if (!ks || target > KEY_PRESIGN_MAX)
        return PL_ERR_INVALID;
    if (!pool)
        return PL_ERR_STATE; /* public-only: no private key */
    if (atomic_load(&pool->count) >= target)
        return PL_OK;
    if ((rc = key_signing_begin(ks, &sg)) != PL_OK)
        return rc;
    if (!(sl = sg.slot)) {
        rc = PL_ERR_BUSY; /* every slot is signing: nothing to spare */
        goto out;
    }
    if ((!sl->ec && !(sl->ec = key_ecdsa_key(sg.pkey))) || (!sl->bn && !(sl->bn = BN_CTX_new()))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = key_ecdsa_setup(sl->ec, sl->bn, &pair)) != PL_OK)
        goto out;
    pthread_mutex_lock(&pool->mu);
    if (pool->n < target) {
        pool->pairs[pool->n++] = pair;
        pair.kinv = pair.r = NULL;
        atomic_store(&pool->count, pool->n);
    }
    pthread_mutex_unlock(&pool->mu);
    key_ecdsa_pair_free(&pair); /* filled meanwhile by another thread: not needed */
out:
    key_signing_end(&sg);
    if (count)
        *count = atomic_load(&pool->count);
    return rc;
}

size_t key_keyset_presigned(const key_keyset *ks)
{
    return ks && ks->pool ? atomic_load(&ks->pool->count) : 0;
}

void key_signing_end(key_signing *sg)
{
    if (!sg)
        return;
    if (sg->slot)
        atomic_store_explicit(&sg->slot->busy, 0, memory_order_release);
    sg->slot = NULL;
    sg->pkey = NULL;
}
