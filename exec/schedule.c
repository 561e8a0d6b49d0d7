#include "schedule.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec/args.h"

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* RFC 3339 §5.6: date-time = full-date "T" partial-time time-offset */
pl_rc ex_time_parse(const char *s, int64_t *ms)
{
    int Y, M, D, h, mi, sec, frac_ms = 0;
    size_t n = strlen(s);
    if (n < 20 || n > 40)
        return PL_ERR_INVALID;
    if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return PL_ERR_INVALID;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        int nd = 0, scale = 100;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac_ms += (*p - '0') * scale, scale /= 10;
            nd++, p++;
        }
        if (nd == 0 || nd > 9)
            return PL_ERR_INVALID;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return PL_ERR_INVALID;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return PL_ERR_INVALID; /* an offset is required */
    }
    if (*p != '\0')
        return PL_ERR_INVALID;
    if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 ||
        mi > 59 || sec > 60)
        return PL_ERR_INVALID;
    if (sec == 60)
        sec = 59; /* a leap second: POSIX time has none */
    int64_t days = days_from_civil(Y, M, D);
    int64_t t = ((days * 24 + h) * 60 + mi) * 60 + sec - (int64_t)off_min * 60;
    *ms = t * 1000 + frac_ms;
    return PL_OK;
}

pl_rc ex_tz_check(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64 || name[0] == '/' || strstr(name, ".."))
        return PL_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '+' || c == '/';
        if (!ok)
            return PL_ERR_INVALID;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        /* Some zones (e.g. "UTC") are symlinks in Debian's tzdata: follow once. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return PL_ERR_NOT_FOUND;
    }
    char magic[4] = {0};
    ssize_t r = read(fd, magic, sizeof magic);
    close(fd);
    if (r != 4 || memcmp(magic, "TZif", 4) != 0) /* RFC 8536 §3.1 */
        return PL_ERR_NOT_FOUND;
    return PL_OK;
}

pl_rc ex_schedule_check(const ex_ctx *ctx, const char *at, const char *tz, int64_t *ms, ex_err *err)
{
    if (!at)
        return ex_err_set(err, PL_ERR_INVALID, "scheduled_at", "required");
    int64_t t;
    if (ex_time_parse(at, &t) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "scheduled_at",
                          "\"%.40s\" is not an RFC 3339 date-time with offset "
                          "(e.g. 2026-12-01T09:30:00+01:00)",
                          at);
    if (tz) {
        pl_rc rc = ex_tz_check(tz);
        if (rc == PL_ERR_NOT_FOUND)
            return ex_err_set(err, PL_ERR_INVALID, "timezone", "unknown IANA zone \"%.64s\"", tz);
        if (rc != PL_OK)
            return ex_err_set(err, PL_ERR_INVALID, "timezone",
                              "not an IANA zone name (e.g. Europe/Paris)");
    }
    int64_t now = core_clock_now_ms(ctx->clock);
    char nowtxt[40];
    ex_time_format(now, nowtxt, sizeof nowtxt);
    if (t <= now)
        return ex_err_set(err, PL_ERR_INVALID, "scheduled_at", "in the past (now is %s)", nowtxt);
    if (t - now > ctx->limits.schedule_max_ahead_ms)
        return ex_err_set(err, PL_ERR_INVALID, "scheduled_at", "more than %lld days ahead",
                          (long long)(ctx->limits.schedule_max_ahead_ms / 86400000));
    *ms = t;
    return PL_OK;
}

pl_rc ex_queue_key(char *buf, size_t bufsz, int64_t due_ms, const char *ws, const char *post_id)
{
    if (!ex_ws_valid(ws))
        return PL_ERR_INVALID;
    int n = snprintf(buf, bufsz, "%016llx|%s|%s", (unsigned long long)(due_ms < 0 ? 0 : due_ms), ws,
                     post_id);
    if (n < 0 || (size_t)n >= bufsz)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
}

pl_rc ex_queue_put(ex_txn *txn, int64_t due_ms, const char *ws, const char *post_id)
{
    char key[EX_KEY_MAX + 1];
    pl_rc rc = ex_queue_key(key, sizeof key, due_ms, ws, post_id);
    if (rc != PL_OK)
        return rc;
    return ex_txn_put_raw(txn, EX_DB_QUEUE, key, "", 0);
}

pl_rc ex_queue_del(ex_txn *txn, int64_t due_ms, const char *ws, const char *post_id)
{
    char key[EX_KEY_MAX + 1];
    pl_rc rc = ex_queue_key(key, sizeof key, due_ms, ws, post_id);
    if (rc != PL_OK)
        return rc;
    rc = ex_txn_del(txn, EX_DB_QUEUE, key);
    return rc == PL_ERR_NOT_FOUND ? PL_OK : rc;
}

pl_rc ex_queue_set(ex_txn *txn, json_t *post, const char *ws, int64_t due_ms)
{
    const char *id = json_string_value(json_object_get(post, "id"));
    if (!id)
        return PL_ERR_INTERNAL;
    json_t *old = json_object_get(post, "queue_due_ms");
    pl_rc rc;
    if (json_is_integer(old)) {
        rc = ex_queue_del(txn, json_integer_value(old), ws, id);
        if (rc != PL_OK)
            return rc;
    }
    if (due_ms < 0) {
        json_object_set_new(post, "queue_due_ms", json_null());
        return PL_OK;
    }
    rc = ex_queue_put(txn, due_ms, ws, id);
    if (rc != PL_OK)
        return rc;
    json_object_set_new(post, "queue_due_ms", json_integer(due_ms));
    return PL_OK;
}
