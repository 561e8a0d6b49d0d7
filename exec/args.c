#include "args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crypto.h"
#include "core/json_text.h"

static pl_rc absent(int required, const char *name, ex_err *err)
{
    if (required)
        return ex_err_set(err, PL_ERR_INVALID, name, "required");
    return PL_ERR_NOT_FOUND;
}

pl_rc ex_arg_str(const json_t *args, const char *name, int required, size_t maxlen,
                 const char **out, ex_err *err)
{
    const json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v))
        return absent(required, name, err);
    if (!json_is_string(v))
        return ex_err_set(err, PL_ERR_INVALID, name, "must be a string");
    size_t n = json_string_length(v);
    if (n == 0 && required)
        return ex_err_set(err, PL_ERR_INVALID, name, "must not be empty");
    if (n > maxlen)
        return ex_err_set(err, PL_ERR_TOO_LARGE, name, "%zu bytes exceeds the limit of %zu", n,
                          maxlen);
    if (strlen(json_string_value(v)) != n)
        return ex_err_set(err, PL_ERR_INVALID, name, "must not contain NUL characters");
    *out = json_string_value(v);
    return PL_OK;
}

pl_rc ex_arg_int(const json_t *args, const char *name, int required, int64_t min, int64_t max,
                 int64_t *out, ex_err *err)
{
    const json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v))
        return absent(required, name, err);
    if (!json_is_integer(v))
        return ex_err_set(err, PL_ERR_INVALID, name, "must be an integer");
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return ex_err_set(err, PL_ERR_INVALID, name, "%lld is outside [%lld, %lld]", (long long)i,
                          (long long)min, (long long)max);
    *out = i;
    return PL_OK;
}

pl_rc ex_arg_bool(const json_t *args, const char *name, int required, int *out, ex_err *err)
{
    const json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v))
        return absent(required, name, err);
    if (!json_is_boolean(v))
        return ex_err_set(err, PL_ERR_INVALID, name, "must be true or false");
    *out = json_is_true(v);
    return PL_OK;
}

pl_rc ex_arg_object(const json_t *args, const char *name, int required, size_t maxbytes,
                    const json_t **out, ex_err *err)
{
    const json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v))
        return absent(required, name, err);
    if (!json_is_object(v))
        return ex_err_set(err, PL_ERR_INVALID, name, "must be an object");
    char *s = json_dumps(v, JSON_COMPACT);
    if (!s)
        return ex_err_set(err, PL_ERR_INVALID, name, "cannot be serialised");
    size_t n = strlen(s);
    free(s);
    if (n > maxbytes)
        return ex_err_set(err, PL_ERR_TOO_LARGE, name, "%zu bytes exceeds the limit of %zu", n,
                          maxbytes);
    *out = v;
    return PL_OK;
}

pl_rc ex_arg_id_array(const json_t *args, const char *name, int required, size_t maxn,
                      const char *kind, const json_t **out, ex_err *err)
{
    const json_t *v = json_object_get(args, name);
    if (!v || json_is_null(v))
        return absent(required, name, err);
    if (!json_is_array(v))
        return ex_err_set(err, PL_ERR_INVALID, name, "must be an array of %s ids", kind);
    size_t n = json_array_size(v);
    if (n > maxn)
        return ex_err_set(err, PL_ERR_TOO_LARGE, name, "%zu items exceeds the limit of %zu", n,
                          maxn);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s || !ex_id_valid(s, kind))
            return ex_err_set(err, PL_ERR_INVALID, name, "item %zu is not a valid %s id", i, kind);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s, json_string_value(json_array_get(v, j))) == 0)
                return ex_err_set(err, PL_ERR_INVALID, name, "item %zu repeats %s", i, s);
    }
    *out = v;
    return PL_OK;
}

pl_rc ex_arg_enum(const json_t *args, const char *name, int required, const char *const *values,
                  const char **out, ex_err *err)
{
    const char *s = NULL;
    pl_rc rc = ex_arg_str(args, name, required, 64, &s, err);
    if (rc != PL_OK)
        return rc;
    for (size_t i = 0; values[i]; i++) {
        if (strcmp(s, values[i]) == 0) {
            *out = values[i];
            return PL_OK;
        }
    }
    char list[256] = "";
    size_t off = 0;
    for (size_t i = 0; values[i] && off < sizeof list; i++) {
        int n = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", values[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return ex_err_set(err, PL_ERR_INVALID, name, "must be one of: %s", list);
}

pl_rc ex_args_only(const json_t *args, const char *const *allowed, ex_err *err)
{
    if (!json_is_object(args))
        return ex_err_set(err, PL_ERR_INVALID, "arguments", "must be a JSON object");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)args, key, val)
    {
        (void)val;
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char shown[64];
            snprintf(shown, sizeof shown, "%.60s", key);
            return ex_err_set(err, PL_ERR_INVALID, shown, "unknown argument");
        }
    }
    return PL_OK;
}

pl_rc ex_json_hash(const json_t *args, const char *skip, uint8_t out[32])
{
    /* the bytes of json_dumps(a copy without skip, COMPACT | SORT_KEYS | ENCODE_ANY) */
    size_t n = 0;
    char *s = core_json_compact_sorted(args, skip, &n);
    if (!s)
        return PL_ERR_NOMEM;
    core_sha256(s, n, out);
    free(s);
    return PL_OK;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant, "chrono-compatible
 * low-level date algorithms", civil_from_days): what gmtime_r computes, without its locking
 * and time-zone set-up. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

void ex_time_format(int64_t ms, char *buf, size_t bufsz)
{
    int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - s * 1000);
    int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400, y;
    unsigned sod = (unsigned)(s - days * 86400), m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || bufsz < 25 || (time_t)s != s) {
        /* years printf would write with other than four digits: the reference path */
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        return;
    }
    /* "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" */
    memcpy(buf, "0000-00-00T00:00:00.000Z", 25);
    put_digits(buf, (unsigned)y, 4);
    put_digits(buf + 5, m, 2);
    put_digits(buf + 8, d, 2);
    put_digits(buf + 11, sod / 3600, 2);
    put_digits(buf + 14, sod / 60 % 60, 2);
    put_digits(buf + 17, sod % 60, 2);
    put_digits(buf + 20, (unsigned)frac, 3);
}
