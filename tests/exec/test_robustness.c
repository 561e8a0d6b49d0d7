/* tests/exec/test_robustness.c — the parsers of the layer take garbage without crashing and
 * without accepting it: RFC 3339 times, zone names, cursors, base64, media sniffing, and
 * service arguments of the wrong JSON types. Deterministic pseudo-random inputs (seeded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/account.h"
#include "exec/args.h"
#include "exec/campaign.h"
#include "exec/cursor.h"
#include "exec/draft.h"
#include "exec/media.h"
#include "exec/post.h"
#include "exec/schedule.h"
#include "tests/exec/helpers.h"

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: reproducible inputs for a test, not cryptography */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void fill(uint64_t *s, char *buf, size_t n, const char *alphabet)
{
    size_t al = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        buf[i] = alphabet[rng_next(s) % al];
    buf[n] = '\0';
}

static void test_time_and_zone_garbage(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    char buf[64];
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = rng_next(&s) % 40;
        fill(&s, buf, n, "0123456789-:TZz+.t ");
        int64_t ms;
        if (ex_time_parse(buf, &ms) == PL_OK) {
            accepted++;
            /* Whatever is accepted round-trips to the same instant. */
            char again[40];
            int64_t ms2;
            ex_time_format(ms, again, sizeof again);
            assert_int_equal(ex_time_parse(again, &ms2), PL_OK);
            assert_int_equal(ms / 1000, ms2 / 1000);
        }
        fill(&s, buf, rng_next(&s) % 30, "abcXYZ/._-+09");
        (void)ex_tz_check(buf);
    }
    (void)accepted;
    /* Known answers. */
    int64_t ms;
    assert_int_equal(ex_time_parse("2027-01-15T09:00:00+01:00", &ms), PL_OK);
    assert_int_equal(ms, 1800000000000LL);
    assert_int_equal(ex_time_parse("2027-01-15T08:00:00.123456789Z", &ms), PL_OK);
    assert_int_equal(ms, 1800000000123LL);
    assert_int_equal(ex_time_parse("2024-02-29T00:00:00Z", &ms), PL_OK);
    assert_int_equal(ex_time_parse("2023-02-29T00:00:00Z", &ms), PL_ERR_INVALID);
    assert_int_equal(ex_time_parse("2027-01-15T08:00:00+24:00", &ms), PL_ERR_INVALID);
    assert_int_equal(ex_time_parse("2027-01-15 08:00:00Z", &ms), PL_ERR_INVALID);
    assert_int_equal(ex_tz_check("Europe/Paris"), PL_OK);
    assert_int_equal(ex_tz_check("UTC"), PL_OK);
    assert_int_equal(ex_tz_check("Europe/../../etc/passwd"), PL_ERR_INVALID);
    assert_int_equal(ex_tz_check("/etc/passwd"), PL_ERR_INVALID);
    assert_int_equal(ex_tz_check("Europe"), PL_ERR_NOT_FOUND); /* a directory, not a zone */
}

static void test_cursor_base64_sniff_garbage(void **state)
{
    (void)state;
    th_env e;
    th_env_open(&e);
    uint64_t s = 12345;
    char buf[700];
    uint8_t fh[8] = {0};
    for (int i = 0; i < 5000; i++) {
        size_t n = rng_next(&s) % 600;
        fill(&s, buf, n, "ABCabc012-_.=|+/");
        char last[EX_KEY_MAX];
        ex_err err = {0};
        assert_int_not_equal(
            ex_cursor_decode(e.st, "posts", "ws", fh, buf, last, sizeof last, &err), PL_OK);
        assert_true(strncmp(err.msg, "cursor: ", 8) == 0);
        uint8_t *out = NULL;
        size_t outlen = 0;
        if (ex_base64_decode(buf, n, 1000, &out, &outlen) == PL_OK) {
            const char *mime;
            ex_media_kind kind;
            uint32_t w, h;
            (void)ex_media_sniff(out, outlen, &mime, &kind, &w, &h);
        }
        free(out);
    }
    th_env_free(&e);
}

typedef pl_rc (*svc_fn)(const ex_ctx *, const char *, const json_t *, json_t **, ex_err *);

/* Every argument of the wrong JSON type is refused with a message naming it, nothing stored. */
static void test_wrong_types(void **state)
{
    (void)state;
    th_env e;
    th_env_open(&e);
    static const struct {
        svc_fn fn;
        const char *field;
    } rows[] = {
        {ex_post_create, "text"},         {ex_post_create, "account_ids"},
        {ex_post_create, "targets"},      {ex_post_create, "scheduled_at"},
        {ex_post_create, "timezone"},     {ex_post_create, "media_ids"},
        {ex_post_create, "campaign_id"},  {ex_post_create, "idempotency_key"},
        {ex_post_list, "limit"},          {ex_post_list, "cursor"},
        {ex_post_list, "status"},         {ex_post_list, "from"},
        {ex_post_get, "post_id"},         {ex_post_schedule, "post_id"},
        {ex_draft_create, "text"},        {ex_draft_create, "media_ids"},
        {ex_campaign_create, "name"},     {ex_campaign_create, "start_date"},
        {ex_media_upload, "data_base64"}, {ex_media_upload_begin, "total_bytes"},
        {ex_account_create, "platform"},  {ex_account_list, "state"},
    };
    json_t *bad[] = {json_integer(7), json_real(1.5), json_true(),
                     json_array(),    json_object(),  json_string("")};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            json_t *args = json_object(), *out = NULL;
            json_object_set(args, rows[r].field, bad[b]);
            ex_err err = {0};
            pl_rc rc = rows[r].fn(&e.ctx, "ws", args, &out, &err);
            if (rc == PL_OK) {
                /* Only an empty string, array or object may be a valid "nothing" here, and an
                 * integer where an integer is wanted. */
                int int_field =
                    !strcmp(rows[r].field, "limit") || !strcmp(rows[r].field, "total_bytes");
                assert_true(json_is_string(bad[b]) || json_is_array(bad[b]) ||
                            json_is_object(bad[b]) || (int_field && json_is_integer(bad[b])));
                json_decref(out);
            } else {
                assert_null(out);
                assert_true(err.msg[0] != '\0');
            }
            json_decref(args);
        }
    }
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
        json_decref(bad[b]);
    /* Arguments that are not an object at all. */
    json_t *arr = json_array(), *out = NULL;
    ex_err err = {0};
    assert_int_equal(ex_post_create(&e.ctx, "ws", arr, &out, &err), PL_ERR_INVALID);
    assert_string_equal(err.msg, "arguments: must be a JSON object");
    json_decref(arr);
    ex_txn txn;
    MDB_stat ms;
    assert_int_equal(ex_txn_begin(e.st, 0, &txn), PL_OK);
    mdb_stat(txn.mdb, ex_store_dbi(e.st, EX_DB_POSTS), &ms);
    ex_txn_abort(&txn);
    assert_int_equal(ms.ms_entries, 0);
    th_env_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_and_zone_garbage),
        cmocka_unit_test(test_cursor_base64_sniff_garbage),
        cmocka_unit_test(test_wrong_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
