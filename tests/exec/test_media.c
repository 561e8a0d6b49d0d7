/* tests/exec/test_media.c — media: sniffed types, limits, chunked uploads, content-addressed
 * files, deletion guarded by scheduled posts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/crypto.h"
#include "exec/account.h"
#include "exec/media.h"
#include "exec/post.h"
#include "tests/exec/helpers.h"

#define WS "ws_media"

typedef struct fx {
    th_env env;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    *state = f;
    return 0;
}

/* A minimal PNG header (signature + IHDR) of w x h, padded with n extra bytes. */
static uint8_t *png(uint32_t w, uint32_t h, size_t extra, size_t *len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *len = 33 + extra;
    uint8_t *p = calloc(1, *len);
    for (size_t i = 0; i < sizeof sig; i++)
        p[i] = sig[i];
    p[11] = 13;
    p[12] = 'I', p[13] = 'H', p[14] = 'D', p[15] = 'R';
    p[16] = (uint8_t)(w >> 24), p[17] = (uint8_t)(w >> 16), p[18] = (uint8_t)(w >> 8),
    p[19] = (uint8_t)w;
    p[20] = (uint8_t)(h >> 24), p[21] = (uint8_t)(h >> 16), p[22] = (uint8_t)(h >> 8),
    p[23] = (uint8_t)h;
    for (size_t i = 33; i < *len; i++)
        p[i] = (uint8_t)(i * 31);
    return p;
}

/* Standard base64 (with padding), as clients send it. */
static char *b64(const uint8_t *p, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = al[v >> 18 & 63];
        *q++ = al[v >> 12 & 63];
        *q++ = i + 1 < n ? al[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? al[v & 63] : '=';
    }
    *q = '\0';
    return o;
}

static pl_rc upload(fx *f, const uint8_t *data, size_t n, const char *mime, json_t **out,
                    ex_err *err)
{
    char *s = b64(data, n);
    json_t *a = json_pack("{s:s,s:s}", "data_base64", s, "filename", "a.png");
    if (mime)
        json_object_set_new(a, "mime_type", json_string(mime));
    pl_rc rc = ex_media_upload(&f->env.ctx, WS, a, out, err);
    json_decref(a);
    free(s);
    return rc;
}

static int blob_exists(fx *f, const char *hex)
{
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/media/%.2s/%s", f->env.dir, hex, hex);
    return stat(path, &sb) == 0;
}

static size_t media_count(fx *f)
{
    ex_txn txn;
    MDB_stat ms;
    assert_int_equal(ex_txn_begin(f->env.st, 0, &txn), PL_OK);
    mdb_stat(txn.mdb, ex_store_dbi(f->env.st, EX_DB_MEDIA), &ms);
    ex_txn_abort(&txn);
    return ms.ms_entries;
}

static void test_inline_upload_sniffed(void **state)
{
    fx *f = *state;
    size_t n;
    uint8_t *p = png(1080, 1350, 500, &n);
    json_t *m = NULL, *m2 = NULL;
    ex_err err = {0};
    assert_int_equal(upload(f, p, n, NULL, &m, &err), PL_OK);
    assert_string_equal(json_string_value(json_object_get(m, "mime_type")), "image/png");
    assert_string_equal(json_string_value(json_object_get(m, "kind")), "image");
    assert_int_equal(json_integer_value(json_object_get(m, "width")), 1080);
    assert_int_equal(json_integer_value(json_object_get(m, "height")), 1350);
    assert_int_equal(json_integer_value(json_object_get(m, "size_bytes")), (json_int_t)n);
    uint8_t h[32];
    char hex[65];
    core_sha256(p, n, h);
    core_hex_encode(h, 32, hex, sizeof hex);
    assert_string_equal(json_string_value(json_object_get(m, "sha256")), hex);
    assert_true(blob_exists(f, hex));
    /* Same bytes again: a second medium, one shared file. */
    assert_int_equal(upload(f, p, n, "image/png", &m2, &err), PL_OK);
    json_t *a = json_pack("{s:O}", "media_id", json_object_get(m, "id")), *o = NULL;
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    assert_true(blob_exists(f, hex)); /* still referenced */
    a = json_pack("{s:O}", "media_id", json_object_get(m2, "id"));
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    assert_int_equal(ex_media_get(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    assert_false(blob_exists(f, hex));
    assert_int_equal(media_count(f), 0);
    json_decref(m);
    json_decref(m2);
    free(p);
}

static void test_bad_media(void **state)
{
    fx *f = *state;
    size_t n;
    ex_err err = {0};
    json_t *m = NULL;
    uint8_t *p = png(10, 10, 0, &n);
    assert_int_equal(upload(f, p, n, "image/jpeg", &m, &err), PL_ERR_INVALID);
    assert_string_equal(err.msg, "mime_type: claimed image/jpeg but the content is image/png");
    const uint8_t exe[] = "MZ\x90\x00 this is not an image";
    assert_int_equal(upload(f, exe, sizeof exe, NULL, &m, &err), PL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "unrecognised content"));
    f->env.ctx.limits.inline_media_max = 1000;
    free(p);
    p = png(10, 10, 2000, &n);
    assert_int_equal(upload(f, p, n, NULL, &m, &err), PL_ERR_TOO_LARGE);
    assert_non_null(strstr(err.msg, "inline upload limit of 1000 bytes"));
    json_t *a = json_pack("{s:s}", "data_base64", "not*base64!");
    assert_int_equal(ex_media_upload(&f->env.ctx, WS, a, &m, &err), PL_ERR_INVALID);
    assert_string_equal(err.msg, "data_base64: not valid base64");
    json_decref(a);
    assert_int_equal(media_count(f), 0);
    free(p);
}

static void test_chunked_upload(void **state)
{
    fx *f = *state;
    size_t n;
    uint8_t *p = png(640, 480, 5000, &n);
    ex_err err = {0};
    json_t *a = json_pack("{s:I,s:s}", "total_bytes", (json_int_t)n, "mime_type", "image/png");
    json_t *u = NULL, *o = NULL;
    f->env.ctx.limits.chunk_max = 2048;
    assert_int_equal(ex_media_upload_begin(&f->env.ctx, WS, a, &u, &err), PL_OK);
    json_decref(a);
    const char *uid = json_string_value(json_object_get(u, "upload_id"));
    size_t off = 0;
    while (off < n) {
        size_t len = n - off < 2000 ? n - off : 2000;
        char *s = b64(p + off, len);
        a = json_pack("{s:s,s:I,s:s}", "upload_id", uid, "offset", (json_int_t)off, "data_base64",
                      s);
        assert_int_equal(ex_media_upload_append(&f->env.ctx, WS, a, &o, &err), PL_OK);
        json_decref(o);
        /* The same chunk retried is refused with the offset to use. */
        assert_int_equal(ex_media_upload_append(&f->env.ctx, WS, a, &o, &err), PL_ERR_CONFLICT);
        assert_string_equal(err.field, "offset");
        json_decref(a);
        free(s);
        off += len;
    }
    a = json_pack("{s:s}", "upload_id", uid);
    assert_int_equal(ex_media_upload_finish(&f->env.ctx, WS, a, &o, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(o, "width")), 640);
    assert_int_equal(json_integer_value(json_object_get(o, "size_bytes")), (json_int_t)n);
    json_decref(o);
    assert_int_equal(ex_media_upload_finish(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    json_decref(u);

    /* Limits: total, chunk size, unfinished. */
    f->env.ctx.limits.chunked_media_max = 10000;
    a = json_pack("{s:I}", "total_bytes", (json_int_t)10001);
    assert_int_equal(ex_media_upload_begin(&f->env.ctx, WS, a, &u, &err), PL_ERR_TOO_LARGE);
    json_decref(a);
    a = json_pack("{s:I}", "total_bytes", (json_int_t)100);
    assert_int_equal(ex_media_upload_begin(&f->env.ctx, WS, a, &u, &err), PL_OK);
    json_decref(a);
    uid = json_string_value(json_object_get(u, "upload_id"));
    char *s = b64(p, 3000);
    a = json_pack("{s:s,s:i,s:s}", "upload_id", uid, "offset", 0, "data_base64", s);
    assert_int_equal(ex_media_upload_append(&f->env.ctx, WS, a, &o, &err), PL_ERR_TOO_LARGE);
    json_decref(a);
    free(s);
    a = json_pack("{s:s}", "upload_id", uid);
    assert_int_equal(ex_media_upload_finish(&f->env.ctx, WS, a, &o, &err), PL_ERR_STATE);
    assert_non_null(strstr(err.msg, "received 0 of 100"));
    json_decref(a);
    json_decref(u);
    free(p);
}

static void test_delete_guarded_by_scheduled_post(void **state)
{
    fx *f = *state;
    size_t n;
    uint8_t *p = png(1080, 1080, 100, &n);
    ex_err err = {0};
    json_t *m = NULL, *acc = NULL, *post = NULL, *o = NULL;
    assert_int_equal(upload(f, p, n, NULL, &m, &err), PL_OK);
    json_t *a = json_pack("{s:s,s:s}", "platform", "facebook", "display_name", "FB");
    assert_int_equal(ex_account_create(&f->env.ctx, WS, a, &acc, NULL), PL_OK);
    json_decref(a);
    a = json_pack("{s:s,s:[O],s:[O],s:s}", "text", "look", "account_ids",
                  json_object_get(acc, "id"), "media_ids", json_object_get(m, "id"), "scheduled_at",
                  "2027-02-01T00:00:00Z");
    pl_rc rc = ex_post_create(&f->env.ctx, WS, a, &post, &err);
    if (rc != PL_OK)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, PL_OK);
    json_decref(a);
    a = json_pack("{s:O}", "media_id", json_object_get(m, "id"));
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, a, &o, &err), PL_ERR_STATE);
    assert_non_null(strstr(err.msg, "scheduled post"));
    assert_non_null(strstr(err.msg, "force"));
    assert_int_equal(ex_media_get(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    json_object_set_new(a, "force", json_true());
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    /* Publishing the post now fails its target with a specific reason, not a crash. */
    a = json_pack("{s:O}", "post_id", json_object_get(post, "id"));
    assert_int_equal(ex_post_publish(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "media_ids[0]"));
    json_decref(a);
    json_decref(post);
    json_decref(acc);
    json_decref(m);
    free(p);
}

static void test_unschedule_frees_medium(void **state)
{
    fx *f = *state;
    size_t n;
    uint8_t *p = png(800, 800, 10, &n);
    ex_err err = {0};
    json_t *m = NULL, *acc = NULL, *post = NULL, *o = NULL;
    assert_int_equal(upload(f, p, n, NULL, &m, &err), PL_OK);
    json_t *a = json_pack("{s:s,s:s}", "platform", "linkedin", "display_name", "LI");
    assert_int_equal(ex_account_create(&f->env.ctx, WS, a, &acc, NULL), PL_OK);
    json_decref(a);
    a = json_pack("{s:s,s:[O],s:[O],s:s}", "text", "img", "account_ids", json_object_get(acc, "id"),
                  "media_ids", json_object_get(m, "id"), "scheduled_at", "2027-03-01T00:00:00Z");
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &post, &err), PL_OK);
    json_decref(a);
    json_t *del = json_pack("{s:O}", "media_id", json_object_get(m, "id"));
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, del, &o, &err), PL_ERR_STATE);
    a = json_pack("{s:O}", "post_id", json_object_get(post, "id"));
    assert_int_equal(ex_post_unschedule(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    /* A draft may lose its medium. */
    assert_int_equal(ex_media_delete(&f->env.ctx, WS, del, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    json_decref(del);
    json_decref(post);
    json_decref(acc);
    json_decref(m);
    free(p);
}

static void test_abandoned_uploads_collected(void **state)
{
    fx *f = *state;
    json_t *a = json_pack("{s:i}", "total_bytes", 100), *u = NULL, *o = NULL;
    ex_err err = {0};
    assert_int_equal(ex_media_upload_begin(&f->env.ctx, WS, a, &u, &err), PL_OK);
    json_decref(a);
    char tmp[600];
    struct stat sb;
    snprintf(tmp, sizeof tmp, "%s/media/tmp/%s", f->env.dir,
             json_string_value(json_object_get(u, "upload_id")));
    assert_int_equal(stat(tmp, &sb), 0);
    size_t removed = 9;
    assert_int_equal(ex_media_gc(&f->env.ctx, 3600000, 100, &removed), PL_OK);
    assert_int_equal(removed, 0);
    core_fake_clock_advance(&f->env.clock, 3600001);
    assert_int_equal(ex_media_gc(&f->env.ctx, 3600000, 100, &removed), PL_OK);
    assert_int_equal(removed, 1);
    assert_int_not_equal(stat(tmp, &sb), 0);
    a = json_pack("{s:O}", "upload_id", json_object_get(u, "upload_id"));
    assert_int_equal(ex_media_upload_finish(&f->env.ctx, WS, a, &o, &err), PL_ERR_NOT_FOUND);
    json_decref(a);
    json_decref(u);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static void put4cc(uint8_t *p, const char *t)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)t[i];
}

/* A minimal MP4: ftyp, moov { mvhd (version 0), trak { tkhd (version 0) } }, then mdat. */
static uint8_t *mp4(uint32_t timescale, uint32_t duration, uint32_t w, uint32_t h, size_t *len)
{
    const size_t ftyp = 16, mvhd = 8 + 100, tkhd = 8 + 84, trak = 8 + tkhd, moov = 8 + mvhd + trak;
    *len = ftyp + moov + 16;
    uint8_t *p = calloc(1, *len), *q = p;
    put32(q, (uint32_t)ftyp), put4cc(q + 4, "ftyp"), put4cc(q + 8, "isom"), q += ftyp;
    put32(q, (uint32_t)moov), put4cc(q + 4, "moov"), q += 8;
    put32(q, (uint32_t)mvhd), put4cc(q + 4, "mvhd");
    put32(q + 8 + 12, timescale), put32(q + 8 + 16, duration), q += mvhd;
    put32(q, (uint32_t)trak), put4cc(q + 4, "trak"), q += 8;
    put32(q, (uint32_t)tkhd), put4cc(q + 4, "tkhd");
    put32(q + 8 + 76, w << 16), put32(q + 8 + 80, h << 16), q += tkhd;
    put32(q, 16), put4cc(q + 4, "mdat");
    return p;
}

static void test_video_duration_rules(void **state)
{
    fx *f = *state;
    size_t n;
    uint32_t d, w, h;
    uint8_t *p = mp4(600, 600 * 30, 1280, 720, &n);
    assert_int_equal(ex_media_mp4_probe(p, n, &d, &w, &h), PL_OK);
    assert_int_equal(d, 30000);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    assert_int_equal(ex_media_mp4_probe(p, 30, &d, &w, &h), PL_ERR_INVALID); /* truncated */
    json_t *ok = NULL, *long_ = NULL, *acc = NULL, *o = NULL;
    ex_err err = {0};
    assert_int_equal(upload(f, p, n, "video/mp4", &ok, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(ok, "duration_ms")), 30000);
    assert_int_equal(json_integer_value(json_object_get(ok, "width")), 1280);
    free(p);
    p = mp4(1000, 200000, 1280, 720, &n);
    assert_int_equal(upload(f, p, n, NULL, &long_, &err), PL_OK);
    json_t *a = json_pack("{s:s,s:s}", "platform", "x", "display_name", "X");
    assert_int_equal(ex_account_create(&f->env.ctx, WS, a, &acc, NULL), PL_OK);
    json_decref(a);
    /* X takes a 30 s video, refuses a 200 s one, naming the medium and the limit. */
    a = json_pack("{s:s,s:[O],s:[O]}", "text", "clip", "account_ids", json_object_get(acc, "id"),
                  "media_ids", json_object_get(ok, "id"));
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &o, &err), PL_OK);
    json_decref(o);
    json_decref(a);
    a = json_pack("{s:s,s:[O],s:[O]}", "text", "clip", "account_ids", json_object_get(acc, "id"),
                  "media_ids", json_object_get(long_, "id"));
    assert_int_equal(ex_post_create(&f->env.ctx, WS, a, &o, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.field, "duration"));
    json_decref(a);
    json_decref(acc);
    json_decref(ok);
    json_decref(long_);
    free(p);
}

static void test_sniff_table(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *mime;
    } rows[] = {
        {"\xFF\xD8\xFF\xE0\x00\x10JFIF", 10, "image/jpeg"},
        {"GIF89a\x02\x00\x03\x00", 10, "image/gif"},
        {"RIFF\x00\x00\x00\x00WEBPVP8 ", 16, "image/webp"},
        {"\x00\x00\x00\x18\x66typmp42", 12, "video/mp4"},
        {"\x00\x00\x00\x14\x66typqt  ", 12, "video/quicktime"},
        {"%PDF-1.7\n", 9, "application/pdf"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *mime = NULL;
        ex_media_kind kind;
        uint32_t w, h;
        assert_int_equal(
            ex_media_sniff((const uint8_t *)rows[i].bytes, rows[i].n, &mime, &kind, &w, &h), PL_OK);
        assert_string_equal(mime, rows[i].mime);
    }
    const char *mime;
    ex_media_kind kind;
    uint32_t w, h;
    assert_int_equal(ex_media_sniff((const uint8_t *)"<svg>", 5, &mime, &kind, &w, &h),
                     PL_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inline_upload_sniffed, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_bad_media, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_upload, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_delete_guarded_by_scheduled_post, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_unschedule_frees_medium, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_uploads_collected, setup, th_teardown),
        cmocka_unit_test_setup_teardown(test_video_duration_rules, setup, th_teardown),
        cmocka_unit_test(test_sniff_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
