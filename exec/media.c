#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/crypto.h"
#include "exec/args.h"
#include "exec/cursor.h"
#include "exec/events.h"
#include "exec/idempotency.h"
#include "exec/obj.h"
#include "exec/schedule.h"

static const ex_obj_type media = {EX_DB_MEDIA, "med", "media_id", "medium"};
static const ex_obj_type uploads = {EX_DB_UPLOADS, "upl", "upload_id", "upload"};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static pl_rc ref_key(char *buf, size_t n, const char *ws, const char *mid, const char *pid);
static pl_rc refs_of(ex_txn *txn, const char *ws, const char *mid, json_t **out);

/* ---- base64 (RFC 4648 §4 and §5) ---- */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

pl_rc ex_base64_decode(const char *in, size_t len, size_t max, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return PL_ERR_INVALID;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > max)
        return PL_ERR_TOO_LARGE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return PL_ERR_NOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            free(buf);
            return PL_ERR_INVALID;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    *out = buf;
    *outlen = o;
    return PL_OK;
}

/* ---- sniffing: magic numbers, never the client's claim ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* JPEG: walk the segments to the first SOFn (ITU T.81 §B.2.2) for the dimensions. */
static void jpeg_dims(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h)
{
    size_t i = 2;
    while (i + 9 < n) {
        if (p[i] != 0xFF) {
            i++;
            continue;
        }
        uint8_t m = p[i + 1];
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF) {
            i += m == 0xFF ? 1 : 2;
            continue;
        }
        size_t seg = (size_t)p[i + 2] << 8 | p[i + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *h = (uint32_t)p[i + 5] << 8 | p[i + 6];
            *w = (uint32_t)p[i + 7] << 8 | p[i + 8];
            return;
        }
        i += 2 + seg;
    }
}

pl_rc ex_media_sniff(const uint8_t *p, size_t n, const char **mime, ex_media_kind *kind,
                     uint32_t *width, uint32_t *height)
{
    *width = *height = 0;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
        *mime = "image/jpeg", *kind = EX_MEDIA_IMAGE;
        jpeg_dims(p, n, width, height);
        return PL_OK;
    }
    if (n >= 24 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
        *mime = "image/png", *kind = EX_MEDIA_IMAGE;
        if (memcmp(p + 12, "IHDR", 4) == 0) /* PNG spec §11.2.2 */
            *width = be32(p + 16), *height = be32(p + 20);
        return PL_OK;
    }
    if (n >= 10 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
        *mime = "image/gif", *kind = EX_MEDIA_GIF;
        *width = (uint32_t)p[6] | (uint32_t)p[7] << 8;
        *height = (uint32_t)p[8] | (uint32_t)p[9] << 8;
        return PL_OK;
    }
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
        *mime = "image/webp", *kind = EX_MEDIA_IMAGE;
        return PL_OK;
    }
    if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0) { /* ISO/IEC 14496-12 §4.3 */
        *kind = EX_MEDIA_VIDEO;
        *mime = memcmp(p + 8, "qt  ", 4) == 0 ? "video/quicktime" : "video/mp4";
        return PL_OK;
    }
    if (n >= 5 && memcmp(p, "%PDF-", 5) == 0) {
        *mime = "application/pdf", *kind = EX_MEDIA_DOCUMENT;
        return PL_OK;
    }
    return PL_ERR_UNSUPPORTED;
}

/* ---- MP4 / QuickTime: duration and size from the movie and track headers ---- */

/* Bytes of a medium in memory (mem) or in a file (fd), for the video probe. */
typedef struct src {
    const uint8_t *mem;
    int fd;
    uint64_t size;
} src;

static int src_read(const src *s, uint64_t off, uint8_t *buf, size_t n)
{
    if (off > s->size || n > s->size - off)
        return -1;
    if (s->mem) {
        memcpy(buf, s->mem + off, n);
        return 0;
    }
    while (n > 0) {
        ssize_t r = pread(s->fd, buf, n, (off_t)off);
        if (r <= 0)
            return -1;
        buf += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Finds the first box of type within [from, to); *body and *end get its payload range. */
static int find_box(const src *s, uint64_t from, uint64_t to, const char *type, uint64_t *body,
                    uint64_t *end)
{
    uint8_t h[16];
    for (int guard = 0; from + 8 <= to && guard < 4096; guard++) {
        if (src_read(s, from, h, 8) != 0)
            return -1;
        uint64_t size = be32(h), hdr = 8;
        if (size == 1) { /* ISO/IEC 14496-12 §4.2: 64-bit largesize */
            if (src_read(s, from + 8, h + 8, 8) != 0)
                return -1;
            size = be64(h + 8), hdr = 16;
        } else if (size == 0) {
            size = to - from;
        }
        if (size < hdr || size > to - from)
            return -1;
        if (memcmp(h + 4, type, 4) == 0) {
            *body = from + hdr;
            *end = from + size;
            return 0;
        }
        from += size;
    }
    return -1;
}

/* moov/mvhd gives the duration; the first moov/trak/tkhd with a size gives width and height
 * (16.16 fixed point). ISO/IEC 14496-12 §8.2.2 and §8.3.2. */
static pl_rc mp4_probe(const src *s, uint32_t *duration_ms, uint32_t *w, uint32_t *h)
{
    uint64_t mb, me, b, e;
    uint8_t buf[96];
    if (find_box(s, 0, s->size, "moov", &mb, &me) != 0 ||
        find_box(s, mb, me, "mvhd", &b, &e) != 0 || src_read(s, b, buf, 1) != 0)
        return PL_ERR_INVALID;
    uint64_t scale, dur;
    if (buf[0] == 1) {
        if (e - b < 32 || src_read(s, b, buf, 32) != 0)
            return PL_ERR_INVALID;
        scale = be32(buf + 20), dur = be64(buf + 24);
    } else {
        if (e - b < 20 || src_read(s, b, buf, 20) != 0)
            return PL_ERR_INVALID;
        scale = be32(buf + 12), dur = be32(buf + 16);
    }
    if (scale == 0 || dur == UINT64_MAX || dur / scale > 24ULL * 3600 * 100)
        return PL_ERR_INVALID;
    *duration_ms = (uint32_t)(dur * 1000 / scale);
    uint64_t from = mb;
    for (int guard = 0; guard < 64; guard++) {
        uint64_t tb, te, kb, ke;
        if (find_box(s, from, me, "trak", &tb, &te) != 0)
            break;
        from = te;
        if (find_box(s, tb, te, "tkhd", &kb, &ke) != 0 || src_read(s, kb, buf, 1) != 0)
            continue;
        uint64_t off = buf[0] == 1 ? 88 : 76; /* width, height: the last 8 bytes */
        if (ke - kb < off + 8 || src_read(s, kb + off, buf, 8) != 0)
            continue;
        uint32_t tw = be32(buf) >> 16, th = be32(buf + 4) >> 16;
        if (tw && th) {
            *w = tw, *h = th;
            break;
        }
    }
    return PL_OK;
}

pl_rc ex_media_mp4_probe(const uint8_t *p, size_t n, uint32_t *duration_ms, uint32_t *w,
                         uint32_t *h)
{
    src s = {.mem = p, .fd = -1, .size = n};
    *duration_ms = *w = *h = 0;
    return mp4_probe(&s, duration_ms, w, h);
}

static const char *const kind_names[EX_MEDIA__COUNT] = {
    [EX_MEDIA_IMAGE] = "image",
    [EX_MEDIA_GIF] = "gif",
    [EX_MEDIA_VIDEO] = "video",
    [EX_MEDIA_DOCUMENT] = "document",
};

/* ---- content-addressed files ---- */

static pl_rc blob_path(const ex_ctx *ctx, const char *hex, char *buf, size_t n, int mkdirs)
{
    char dir[1200];
    int r = snprintf(dir, sizeof dir, "%s/media/%.2s", ex_store_dir(ctx->store), hex);
    if (r < 0 || (size_t)r >= sizeof dir)
        return PL_ERR_TOO_LARGE;
    if (mkdirs && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    r = snprintf(buf, n, "%s/%s", dir, hex);
    return r < 0 || (size_t)r >= n ? PL_ERR_TOO_LARGE : PL_OK;
}

static pl_rc write_all(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return PL_ERR_IO;
        }
        p += w, n -= (size_t)w, off += w;
    }
    return PL_OK;
}

static void fsync_dir(const char *path)
{
    char dir[1300];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Refcount key of a blob: '~' never appears in a workspace id, so it never meets a range. */
static void blob_key(char *buf, size_t n, const char *hex)
{
    snprintf(buf, n, "~blob|%s", hex);
}

static pl_rc blob_ref(ex_txn *txn, const char *hex, int delta, int64_t *now_refs)
{
    char key[100];
    blob_key(key, sizeof key, hex);
    MDB_val v;
    int64_t refs = 0;
    if (ex_txn_get_raw(txn, EX_DB_MEDIA, key, &v) == PL_OK && v.mv_size < 24) {
        char num[24];
        memcpy(num, v.mv_data, v.mv_size);
        num[v.mv_size] = '\0';
        refs = strtoll(num, NULL, 10);
    }
    refs += delta;
    if (now_refs)
        *now_refs = refs;
    if (refs <= 0) {
        pl_rc rc = ex_txn_del(txn, EX_DB_MEDIA, key);
        return rc == PL_ERR_NOT_FOUND ? PL_OK : rc;
    }
    char num[24];
    int len = snprintf(num, sizeof num, "%lld", (long long)refs);
    return ex_txn_put_raw(txn, EX_DB_MEDIA, key, num, (size_t)len);
}

/* Inside the write transaction (so it is serialised with deletions): puts the bytes of tmp
 * (a file we wrote and fsynced) at the blob path by rename. */
static pl_rc blob_install(const ex_ctx *ctx, const char *tmp, const char *hex)
{
    char path[1300];
    pl_rc rc = blob_path(ctx, hex, path, sizeof path, 1);
    if (rc != PL_OK)
        return rc;
    if (rename(tmp, path) != 0)
        return PL_ERR_IO;
    fsync_dir(path);
    return PL_OK;
}

static pl_rc tmp_path(const ex_ctx *ctx, const char *name, char *buf, size_t n)
{
    char dir[1200];
    int r = snprintf(dir, sizeof dir, "%s/media/tmp", ex_store_dir(ctx->store));
    if (r < 0 || (size_t)r >= sizeof dir)
        return PL_ERR_TOO_LARGE;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    r = snprintf(buf, n, "%s/%s", dir, name);
    return r < 0 || (size_t)r >= n ? PL_ERR_TOO_LARGE : PL_OK;
}

/* ---- creating the medium record ---- */

/* Builds the record from sniffed bytes; checks the claimed mime type. */
static pl_rc make_record(const ex_ctx *ctx, const char *ws, const json_t *meta, const uint8_t *head,
                         size_t headlen, const src *whole, const char *hex, json_t **out,
                         ex_err *err)
{
    uint64_t size = whole->size;
    uint32_t duration = 0;
    const char *mime = NULL, *claimed = NULL, *filename = NULL, *alt = NULL;
    ex_media_kind kind;
    uint32_t w, h;
    *out = NULL;
    if (size == 0)
        return ex_err_set(err, PL_ERR_INVALID, "data_base64", "empty content");
    if (ex_media_sniff(head, headlen, &mime, &kind, &w, &h) != PL_OK)
        return ex_err_set(err, PL_ERR_UNSUPPORTED, "data_base64",
                          "unrecognised content; accepted: JPEG, PNG, GIF, WebP, MP4, "
                          "QuickTime, PDF");
    if (kind == EX_MEDIA_VIDEO) {
        uint32_t vw = 0, vh = 0;
        if (mp4_probe(whole, &duration, &vw, &vh) == PL_OK && vw && vh)
            w = vw, h = vh; /* unreadable headers leave 0: "unknown", rules skipped */
    }
    pl_rc rc = ex_arg_str(meta, "mime_type", EX_ARG_OPTIONAL, 100, &claimed, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    if (claimed && strcmp(claimed, mime) != 0 &&
        !(strcmp(claimed, "image/jpg") == 0 && strcmp(mime, "image/jpeg") == 0))
        return ex_err_set(err, PL_ERR_INVALID, "mime_type", "claimed %.64s but the content is %s",
                          claimed, mime);
    rc = ex_arg_str(meta, "filename", EX_ARG_OPTIONAL, 255, &filename, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    rc = ex_arg_str(meta, "alt_text", EX_ARG_OPTIONAL, 1500, &alt, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    char id[EX_ID_MAX];
    rc = ex_id_new(ctx->clock, "med", id, sizeof id);
    if (rc != PL_OK)
        return rc;
    json_t *m = json_object();
    ex_obj_init(m, id, ws, core_clock_now_ms(ctx->clock));
    json_object_set_new(m, "sha256", json_string(hex));
    json_object_set_new(m, "mime_type", json_string(mime));
    json_object_set_new(m, "kind", json_string(kind_names[kind]));
    json_object_set_new(m, "size_bytes", json_integer((json_int_t)size));
    json_object_set_new(m, "width", json_integer(w));
    json_object_set_new(m, "height", json_integer(h));
    json_object_set_new(m, "duration_ms", json_integer(duration));
    json_object_set_new(m, "filename", filename ? json_string(filename) : json_null());
    json_object_set_new(m, "alt_text", alt ? json_string(alt) : json_null());
    json_object_set_new(m, "status", json_string("ready"));
    *out = m;
    return PL_OK;
}

/* Commits a new medium whose bytes are in tmp: installs the blob, counts the reference,
 * stores the record and the "media.ready" event, all in one write transaction. */
static pl_rc commit_medium(const ex_ctx *ctx, ex_txn *txn, const char *ws, json_t *m,
                           const char *tmp)
{
    const char *hex = str(m, "sha256");
    pl_rc rc = blob_install(ctx, tmp, hex);
    if (rc == PL_OK)
        rc = blob_ref(txn, hex, +1, NULL);
    if (rc == PL_OK)
        rc = ex_obj_store(txn, media.db, ws, media.kind, m);
    if (rc == PL_OK)
        rc = ex_event_emit(ctx, txn, ws, "media.ready", m);
    return rc;
}

pl_rc ex_media_upload(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"data_base64", "filename",        "mime_type",
                                          "alt_text",    "idempotency_key", NULL};
    ex_txn txn = {0};
    uint8_t *data = NULL;
    size_t n = 0;
    json_t *m = NULL, *replay = NULL;
    ex_idem idem;
    char tmp[1300] = "";
    int fd = -1;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    const json_t *dv = json_object_get(args, "data_base64");
    if (!json_is_string(dv))
        return ex_err_set(err, PL_ERR_INVALID, "data_base64", "required: a base64 string");
    size_t max = ctx->limits.inline_media_max;
    rc = ex_base64_decode(json_string_value(dv), json_string_length(dv), max, &data, &n);
    if (rc == PL_ERR_TOO_LARGE)
        return ex_err_set(err, rc, "data_base64",
                          "about %zu bytes exceeds the inline upload limit of %zu bytes; use "
                          "the chunked upload",
                          json_string_length(dv) / 4 * 3, max);
    if (rc != PL_OK)
        return ex_err_set(err, rc, "data_base64", "not valid base64");
    uint8_t h[CORE_SHA256_LEN];
    char hex[65];
    core_sha256(data, n, h);
    core_hex_encode(h, sizeof h, hex, sizeof hex);
    src whole = {.mem = data, .fd = -1, .size = n};
    rc = make_record(ctx, ws, args, data, n, &whole, hex, &m, err);
    if (rc != PL_OK)
        goto out;
    rc = tmp_path(ctx, str(m, "id"), tmp, sizeof tmp);
    if (rc != PL_OK)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, data, n, 0) != PL_OK || fsync(fd) != 0) {
        rc = ex_err_set(err, PL_ERR_IO, "data_base64", "cannot store the bytes");
        goto out;
    }
    close(fd);
    fd = -1;
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_idem_begin(ctx, &txn, ws, "media.upload", args, &idem, &replay, err);
    if (rc != PL_OK)
        goto out;
    if (replay) {
        *out = replay;
        goto out;
    }
    rc = commit_medium(ctx, &txn, ws, m, tmp);
    if (rc == PL_OK)
        rc = ex_idem_finish(ctx, &txn, &idem, m);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    *tmp = '\0';
    *out = m;
    m = NULL;
out:
    ex_txn_abort(&txn);
    if (fd >= 0)
        close(fd);
    if (*tmp)
        unlink(tmp);
    free(data);
    json_decref(m);
    return rc;
}

/* ---- chunked ---- */

pl_rc ex_media_upload_begin(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                            ex_err *err)
{
    static const char *const allowed[] = {"filename", "mime_type", "alt_text", "total_bytes", NULL};
    ex_txn txn = {0};
    int64_t total = 0;
    const char *s = NULL;
    char id[EX_ID_MAX], tmp[1300];
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_int(args, "total_bytes", EX_ARG_REQUIRED, 1, INT64_MAX, &total, err);
    if (rc != PL_OK)
        return rc;
    if ((uint64_t)total > ctx->limits.chunked_media_max)
        return ex_err_set(err, PL_ERR_TOO_LARGE, "total_bytes",
                          "%lld bytes exceeds the upload limit of %zu bytes", (long long)total,
                          ctx->limits.chunked_media_max);
    static const struct {
        const char *name;
        size_t max;
    } metas[] = {{"filename", 255}, {"mime_type", 100}, {"alt_text", 1500}};
    for (size_t i = 0; i < 3; i++) {
        rc = ex_arg_str(args, metas[i].name, EX_ARG_OPTIONAL, metas[i].max, &s, err);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            return rc;
    }
    rc = ex_id_new(ctx->clock, "upl", id, sizeof id);
    if (rc == PL_OK)
        rc = tmp_path(ctx, id, tmp, sizeof tmp);
    if (rc != PL_OK)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ex_err_set(err, PL_ERR_IO, "upload", "cannot create the upload file");
    close(fd);
    json_t *u = json_object();
    ex_obj_init(u, id, ws, core_clock_now_ms(ctx->clock));
    json_object_set_new(u, "total_bytes", json_integer(total));
    json_object_set_new(u, "received_bytes", json_integer(0));
    json_object_set_new(u, "meta", json_deep_copy(args));
    json_object_del(json_object_get(u, "meta"), "total_bytes");
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_obj_store(&txn, uploads.db, ws, uploads.kind, u);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    ex_txn_abort(&txn);
    if (rc != PL_OK) {
        unlink(tmp);
        json_decref(u);
        return rc;
    }
    *out = json_pack("{s:s,s:I,s:I,s:I}", "upload_id", id, "total_bytes", (json_int_t)total,
                     "received_bytes", (json_int_t)0, "chunk_max_bytes",
                     (json_int_t)ctx->limits.chunk_max);
    json_decref(u);
    return PL_OK;
}

pl_rc ex_media_upload_append(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                             ex_err *err)
{
    static const char *const allowed[] = {"upload_id", "offset", "data_base64", NULL};
    ex_txn txn = {0};
    const char *id = NULL;
    int64_t off = 0;
    uint8_t *data = NULL;
    size_t n = 0;
    json_t *u = NULL;
    int fd = -1;
    char tmp[1300];
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_id(args, "upload_id", "upl", &id, err);
    if (rc == PL_OK)
        rc = ex_arg_int(args, "offset", EX_ARG_REQUIRED, 0, INT64_MAX, &off, err);
    if (rc != PL_OK)
        return rc;
    const json_t *dv = json_object_get(args, "data_base64");
    if (!json_is_string(dv))
        return ex_err_set(err, PL_ERR_INVALID, "data_base64", "required: a base64 string");
    rc = ex_base64_decode(json_string_value(dv), json_string_length(dv), ctx->limits.chunk_max,
                          &data, &n);
    if (rc == PL_ERR_TOO_LARGE)
        return ex_err_set(err, rc, "data_base64", "a chunk may hold at most %zu bytes",
                          ctx->limits.chunk_max);
    if (rc != PL_OK)
        return ex_err_set(err, rc, "data_base64", "not valid base64");
    if (n == 0) {
        rc = ex_err_set(err, PL_ERR_INVALID, "data_base64", "empty chunk");
        goto out;
    }
    /* The write transaction serialises appends to one upload (and every other writer). */
    rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_obj_load(&txn, uploads.db, ws, uploads.kind, id, uploads.field, uploads.what, &u,
                         err);
    if (rc != PL_OK)
        goto out;
    int64_t have = json_integer_value(json_object_get(u, "received_bytes"));
    int64_t total = json_integer_value(json_object_get(u, "total_bytes"));
    if (off != have) {
        rc = ex_err_set(err, PL_ERR_CONFLICT, "offset",
                        "%lld but the upload has %lld bytes; send the chunk at offset %lld",
                        (long long)off, (long long)have, (long long)have);
        goto out;
    }
    int64_t after = have + (int64_t)n;
    if (after > total) {
        rc = ex_err_set(err, PL_ERR_TOO_LARGE, "data_base64",
                        "%lld bytes would exceed the declared total_bytes of %lld",
                        (long long)after, (long long)total);
        goto out;
    }
    rc = tmp_path(ctx, id, tmp, sizeof tmp);
    if (rc != PL_OK)
        goto out;
    fd = open(tmp, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write_all(fd, data, n, (off_t)off) != PL_OK || fsync(fd) != 0) {
        rc = ex_err_set(err, PL_ERR_IO, "data_base64", "cannot store the chunk");
        goto out;
    }
    json_object_set_new(u, "received_bytes", json_integer(after));
    rc = ex_obj_save(ctx, &uploads, &txn, ws, u);
    if (rc != PL_OK)
        goto out;
    *out = json_pack("{s:s,s:I,s:I}", "upload_id", id, "received_bytes", (json_int_t)after,
                     "total_bytes", (json_int_t)total);
out:
    ex_txn_abort(&txn);
    if (fd >= 0)
        close(fd);
    free(data);
    json_decref(u);
    return rc;
}

static pl_rc hash_file(int fd, uint64_t total, uint8_t *head, size_t headsz, size_t *headlen,
                       uint8_t out[CORE_SHA256_LEN])
{
    uint8_t buf[65536];
    uint64_t got = 0;
    pl_rc rc = PL_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = PL_ERR_CRYPTO;
        goto out;
    }
    *headlen = 0;
    while (got < total) {
        size_t want = total - got < sizeof buf ? (size_t)(total - got) : sizeof buf;
        ssize_t r = pread(fd, buf, want, (off_t)got);
        if (r <= 0) {
            rc = PL_ERR_IO;
            goto out;
        }
        if (*headlen < headsz) {
            size_t take = headsz - *headlen < (size_t)r ? headsz - *headlen : (size_t)r;
            memcpy(head + *headlen, buf, take);
            *headlen += take;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)r) != 1) {
            rc = PL_ERR_CRYPTO;
            goto out;
        }
        got += (uint64_t)r;
    }
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(md, out, &mdlen) != 1 || mdlen != CORE_SHA256_LEN)
        rc = PL_ERR_CRYPTO;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

pl_rc ex_media_upload_finish(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                             ex_err *err)
{
    static const char *const allowed[] = {"upload_id", NULL};
    ex_txn txn = {0};
    const char *id = NULL;
    json_t *u = NULL, *m = NULL;
    char tmp[1300];
    int fd = -1;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &uploads, ws, args, 1, &txn, &u, err);
    if (rc != PL_OK)
        goto out;
    id = str(u, "id");
    int64_t have = json_integer_value(json_object_get(u, "received_bytes"));
    int64_t total = json_integer_value(json_object_get(u, "total_bytes"));
    if (have != total) {
        rc = ex_err_set(err, PL_ERR_STATE, "upload_id",
                        "received %lld of %lld bytes; append the rest first", (long long)have,
                        (long long)total);
        goto out;
    }
    rc = tmp_path(ctx, id, tmp, sizeof tmp);
    if (rc != PL_OK)
        goto out;
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ex_err_set(err, PL_ERR_IO, "upload_id", "the upload's bytes are missing");
        goto out;
    }
    /* Hash the file in 64 KiB steps (SHA-256, streaming); keep the head for sniffing. */
    uint8_t head[4096];
    size_t headlen = 0;
    uint8_t h[CORE_SHA256_LEN];
    rc = hash_file(fd, (uint64_t)total, head, sizeof head, &headlen, h);
    if (rc != PL_OK) {
        rc = ex_err_set(err, rc, "upload_id", "cannot read the upload's bytes");
        goto out;
    }
    char hex[65];
    core_hex_encode(h, sizeof h, hex, sizeof hex);
    src whole = {.mem = NULL, .fd = fd, .size = (uint64_t)total};
    rc = make_record(ctx, ws, json_object_get(u, "meta"), head, headlen, &whole, hex, &m, err);
    if (rc != PL_OK)
        goto out;
    rc = commit_medium(ctx, &txn, ws, m, tmp);
    if (rc == PL_OK)
        rc = ex_obj_delete(&txn, uploads.db, ws, uploads.kind, id);
    if (rc == PL_OK)
        rc = ex_txn_commit(&txn);
    if (rc != PL_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    ex_txn_abort(&txn);
    if (fd >= 0)
        close(fd);
    json_decref(u);
    json_decref(m);
    return rc;
}

/* ---- get / list / update / delete ---- */

pl_rc ex_media_get(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out, ex_err *err)
{
    ex_txn txn = {0};
    *out = NULL;
    pl_rc rc = ex_obj_open(ctx, &media, ws, args, 0, &txn, out, err);
    ex_txn_abort(&txn);
    return rc;
}

static int kind_keep(const json_t *m, void *arg)
{
    const char *want = arg;
    return !want || (str(m, "kind") && strcmp(str(m, "kind"), want) == 0);
}

pl_rc ex_media_list(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                    ex_err *err)
{
    static const char *const allowed[] = {"kind", "limit", "cursor", NULL};
    static const char *const kinds[] = {"image", "gif", "video", "document", NULL};
    const char *kind = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc != PL_OK)
        return rc;
    rc = ex_arg_enum(args, "kind", EX_ARG_OPTIONAL, kinds, &kind, err);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        return rc;
    ex_listing l = {.name = "media",
                    .scan_db = EX_DB_MEDIA,
                    .scan_kind = "med",
                    .filter = kind_keep,
                    .filter_arg = (void *)kind};
    return ex_list_run(ctx, ws, &l, args, out, err);
}

pl_rc ex_media_update(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"media_id", "alt_text", "filename", "expected_version",
                                          NULL};
    static const struct {
        const char *name;
        size_t max;
    } fields[] = {{"alt_text", 1500}, {"filename", 255}};
    const char *s = NULL;
    ex_txn txn = {0};
    json_t *m = NULL;
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_obj_open(ctx, &media, ws, args, 1, &txn, &m, err);
    for (size_t i = 0; rc == PL_OK && i < sizeof fields / sizeof fields[0]; i++) {
        rc = ex_arg_str(args, fields[i].name, EX_ARG_OPTIONAL, fields[i].max, &s, err);
        if (rc == PL_OK)
            json_object_set_new(m, fields[i].name, json_string(s));
        else if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    if (rc == PL_OK)
        rc = ex_obj_save(ctx, &media, &txn, ws, m);
    if (rc == PL_OK) {
        *out = m;
        m = NULL;
    }
    ex_txn_abort(&txn);
    json_decref(m);
    return rc;
}

pl_rc ex_media_delete(const ex_ctx *ctx, const char *ws, const json_t *args, json_t **out,
                      ex_err *err)
{
    static const char *const allowed[] = {"media_id", "force", "expected_version", NULL};
    const char *id = NULL;
    int force = 0;
    ex_txn txn = {0};
    json_t *m = NULL;
    char trash[1300] = "", path[1300];
    *out = NULL;
    pl_rc rc = ex_args_only(args, allowed, err);
    if (rc == PL_OK)
        rc = ex_arg_id(args, "media_id", "med", &id, err);
    if (rc == PL_OK) {
        rc = ex_arg_bool(args, "force", EX_ARG_OPTIONAL, &force, err);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    if (rc == PL_OK)
        rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_obj_load(&txn, media.db, ws, media.kind, id, media.field, media.what, &m, err);
    if (rc == PL_OK)
        rc = ex_obj_check_version(m, args, media.what, err);
    if (rc != PL_OK)
        goto out;
    json_t *used = NULL;
    rc = refs_of(&txn, ws, id, &used);
    if (rc != PL_OK)
        goto out;
    for (size_t i = 0; i < json_array_size(used) && !force; i++) {
        json_t *p = NULL;
        const char *pid = json_string_value(json_array_get(used, i));
        if (ex_obj_load(&txn, EX_DB_POSTS, ws, "pst", pid, "post_id", "post", &p, NULL) != PL_OK)
            continue;
        const char *st = str(p, "status");
        int busy = st && (strcmp(st, "scheduled") == 0 || strcmp(st, "publishing") == 0);
        if (busy)
            rc = ex_err_set(err, PL_ERR_STATE, "media_id",
                            "medium %s is used by %s post %s; unschedule it or pass force: "
                            "true",
                            id, st, pid);
        json_decref(p);
        if (rc != PL_OK) {
            json_decref(used);
            goto out;
        }
    }
    /* The medium goes: so do its reference keys (the posts keep their media_ids and will fail
     * with "no medium" if published). */
    for (size_t i = 0; i < json_array_size(used) && rc == PL_OK; i++) {
        char key[EX_KEY_MAX + 1];
        rc = ref_key(key, sizeof key, ws, id, json_string_value(json_array_get(used, i)));
        if (rc == PL_OK)
            rc = ex_txn_del(&txn, EX_DB_MEDIA, key);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    json_decref(used);
    if (rc != PL_OK)
        goto out;
    int64_t refs = 0;
    rc = blob_ref(&txn, str(m, "sha256"), -1, &refs);
    if (rc == PL_OK)
        rc = ex_obj_delete(&txn, media.db, ws, media.kind, id);
    if (rc != PL_OK)
        goto out;
    if (refs <= 0) {
        /* Move the blob aside inside the transaction (serialised with uploads that would
         * re-install it), unlink after commit, put it back if the commit fails. */
        rc = blob_path(ctx, str(m, "sha256"), path, sizeof path, 0);
        if (rc == PL_OK)
            rc = tmp_path(ctx, id, trash, sizeof trash);
        if (rc != PL_OK)
            goto out;
        if (rename(path, trash) != 0)
            *trash = '\0';
    }
    rc = ex_txn_commit(&txn);
    if (rc != PL_OK) {
        if (*trash)
            rename(trash, path);
        *trash = '\0';
        goto out;
    }
    *out = json_pack("{s:s,s:b}", "id", id, "deleted", 1);
out:
    ex_txn_abort(&txn);
    if (*trash)
        unlink(trash);
    json_decref(m);
    return rc;
}

/* ---- references from posts: "<ws>|mref|<medium>|<post>" index keys ---- */

static pl_rc ref_key(char *buf, size_t n, const char *ws, const char *mid, const char *pid)
{
    if (!ex_ws_valid(ws))
        return PL_ERR_INVALID;
    int r = snprintf(buf, n, "%s|mref|%s|%s", ws, mid, pid);
    return r < 0 || (size_t)r >= n ? PL_ERR_TOO_LARGE : PL_OK;
}

static pl_rc refs_change(ex_txn *txn, const char *ws, const json_t *ids, const char *post_id,
                         int add, ex_err *err)
{
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *mid = json_string_value(json_array_get(ids, i));
        char key[EX_KEY_MAX + 1];
        pl_rc rc;
        if (add) {
            json_t *m = NULL;
            char field[32];
            snprintf(field, sizeof field, "media_ids[%zu]", i);
            rc = ex_obj_load(txn, EX_DB_MEDIA, ws, "med", mid, field, "medium", &m, err);
            json_decref(m);
            if (rc != PL_OK)
                return rc;
        }
        rc = ref_key(key, sizeof key, ws, mid ? mid : "", post_id);
        if (rc != PL_OK)
            return rc;
        rc = add ? ex_txn_put_raw(txn, EX_DB_MEDIA, key, "", 0) : ex_txn_del(txn, EX_DB_MEDIA, key);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            return rc;
    }
    return PL_OK;
}

pl_rc ex_media_refs_add(ex_txn *txn, const char *ws, const json_t *ids, const char *post_id,
                        ex_err *err)
{
    return refs_change(txn, ws, ids, post_id, 1, err);
}

pl_rc ex_media_refs_del(ex_txn *txn, const char *ws, const json_t *ids, const char *post_id)
{
    return refs_change(txn, ws, ids, post_id, 0, NULL);
}

/* The posts referring to medium mid (one range scan), as a JSON array of ids. */
static pl_rc refs_of(ex_txn *txn, const char *ws, const char *mid, json_t **out)
{
    char prefix[EX_KEY_MAX + 1];
    *out = NULL;
    if (!ex_ws_valid(ws))
        return PL_ERR_INVALID;
    int plen = snprintf(prefix, sizeof prefix, "%s|mref|%s|", ws, mid);
    if (plen < 0 || (size_t)plen >= sizeof prefix)
        return PL_ERR_TOO_LARGE;
    return ex_txn_suffixes(txn, EX_DB_MEDIA, prefix, out);
}

typedef struct gc_scan {
    int64_t now;
    int64_t max_idle_ms;
    json_t *stale; /* ids of the uploads condemned */
} gc_scan;

/* Condemns an upload untouched for longer than max_idle_ms. */
static int stale_upload(const MDB_val *key, const MDB_val *val, void *arg)
{
    gc_scan *g = arg;
    json_error_t je;
    json_t *u = json_loadb(val->mv_data, val->mv_size, 0, &je);
    int64_t touched = 0;
    const char *upd = u ? str(u, "updated_at") : NULL;
    if (!upd || ex_time_parse(upd, &touched) != PL_OK)
        touched = 0;
    int stale = g->now - touched > g->max_idle_ms;
    if (stale)
        json_array_append_new(g->stale, json_string(u && str(u, "id") ? str(u, "id") : ""));
    json_decref(u);
    (void)key;
    return stale;
}

pl_rc ex_media_gc(const ex_ctx *ctx, int64_t max_idle_ms, size_t max_scan, size_t *removed)
{
    ex_txn txn = {0};
    gc_scan g = {core_clock_now_ms(ctx->clock), max_idle_ms, json_array()};
    size_t n = 0, i;
    json_t *e;
    *removed = 0;
    pl_rc rc = ex_txn_begin(ctx->store, 1, &txn);
    if (rc == PL_OK)
        rc = ex_txn_sweep(&txn, EX_DB_UPLOADS, "upl_gc_pos", max_scan, stale_upload, &g, &n);
    if (rc != PL_OK)
        goto out;
    json_array_foreach(g.stale, i, e)
    {
        char tmp[1300];
        const char *id = json_string_value(e);
        if (id && ex_id_valid(id, "upl") && tmp_path(ctx, id, tmp, sizeof tmp) == PL_OK)
            unlink(tmp); /* inside the transaction: appends to it are serialised with us */
    }
    rc = ex_txn_commit(&txn);
    if (rc == PL_OK)
        *removed = n;
out:
    ex_txn_abort(&txn);
    json_decref(g.stale);
    return rc;
}
