/*
 * exec/sandbox.c — the seven deterministic sandbox connectors: one implementation driven by a
 * per-platform table (id and URL shapes, native metric names), see exec/sandbox.h for the
 * contract and docs/connectors.md for the test values.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"

#define DAY_MS (24LL * 3600 * 1000)

/* ---- per-platform shapes ---- */

typedef struct platform_shape {
    const char *id_prefix;  /* before the number or code: "urn:li:share:" */
    int id_b64;             /* the id is the 11-character base64url code (YouTube) */
    const char *url_prefix; /* URL = prefix + number or code + suffix */
    const char *url_suffix;
    int url_b64; /* the URL uses the base64url code (Instagram shortcodes) */
} platform_shape;

static const platform_shape shapes[EX_PLATFORM__COUNT] = {
    [EX_PLATFORM_FACEBOOK] = {"", 0, "https://www.facebook.com/", "", 0},
    [EX_PLATFORM_INSTAGRAM] = {"", 0, "https://www.instagram.com/p/", "/", 1},
    [EX_PLATFORM_PINTEREST] = {"", 0, "https://www.pinterest.com/pin/", "/", 0},
    [EX_PLATFORM_YOUTUBE] = {"", 1, "https://www.youtube.com/watch?v=", "", 1},
    [EX_PLATFORM_GOOGLE_BUSINESS] = {"localPosts/", 0, "https://business.google.com/posts/", "", 0},
    [EX_PLATFORM_LINKEDIN] = {"urn:li:share:", 0,
                              "https://www.linkedin.com/feed/update/urn:li:share:", "/", 0},
    [EX_PLATFORM_X] = {"", 0, "https://x.com/i/status/", "", 0},
};

static const char *const connector_names[EX_PLATFORM__COUNT] = {
    [EX_PLATFORM_FACEBOOK] = "sandbox-facebook",
    [EX_PLATFORM_INSTAGRAM] = "sandbox-instagram",
    [EX_PLATFORM_PINTEREST] = "sandbox-pinterest",
    [EX_PLATFORM_YOUTUBE] = "sandbox-youtube",
    [EX_PLATFORM_GOOGLE_BUSINESS] = "sandbox-google_business",
    [EX_PLATFORM_LINKEDIN] = "sandbox-linkedin",
    [EX_PLATFORM_X] = "sandbox-x",
};

/* Native metrics: the platform's own name, the normalized metric it feeds (-1 none), a daily
 * base value, whether it is a level (followers) rather than a flow, and where it applies. */
#define SC_POST 1
#define SC_ACCT 2
#define SC_BOTH 3
#define NONE    ((ex_metric)-1)

typedef struct native_row {
    const char *name;
    ex_metric metric;
    uint32_t base;
    uint8_t level;
    uint8_t scope;
} native_row;

#define NATIVE_ROWS_MAX 10

static const native_row natives[EX_PLATFORM__COUNT][NATIVE_ROWS_MAX] =
    {
        [EX_PLATFORM_FACEBOOK] =
            {
                {"post_impressions", EX_METRIC_IMPRESSIONS, 900, 0, SC_POST},
                {"post_impressions_unique", EX_METRIC_REACH, 600, 0, SC_POST},
                {"post_clicks", EX_METRIC_CLICKS, 45, 0, SC_POST},
                {"post_reactions_like_total", EX_METRIC_LIKES, 35, 0, SC_POST},
                {"comments", EX_METRIC_COMMENTS, 6, 0, SC_POST},
                {"shares", EX_METRIC_SHARES, 4, 0, SC_POST},
                {"page_impressions", EX_METRIC_IMPRESSIONS, 3000, 0, SC_ACCT},
                {"page_impressions_unique", EX_METRIC_REACH, 1800, 0, SC_ACCT},
                {"page_post_engagements", EX_METRIC_ENGAGEMENTS, 150, 0, SC_ACCT},
                {"page_fans", EX_METRIC_FOLLOWERS, 5000, 1, SC_ACCT},
            },
        [EX_PLATFORM_INSTAGRAM] =
            {
                {"views", EX_METRIC_IMPRESSIONS, 1200, 0, SC_BOTH},
                {"reach", EX_METRIC_REACH, 800, 0, SC_BOTH},
                {"likes", EX_METRIC_LIKES, 60, 0, SC_POST},
                {"comments", EX_METRIC_COMMENTS, 8, 0, SC_POST},
                {"shares", EX_METRIC_SHARES, 5, 0, SC_POST},
                {"saved", EX_METRIC_SAVES, 10, 0, SC_POST},
                {"total_interactions", EX_METRIC_ENGAGEMENTS, 200, 0, SC_ACCT},
                {"website_clicks", EX_METRIC_CLICKS, 20, 0, SC_ACCT},
                {"follower_count", EX_METRIC_FOLLOWERS, 8000, 1, SC_ACCT},
            },
        [EX_PLATFORM_PINTEREST] =
            {
                {"IMPRESSION", EX_METRIC_IMPRESSIONS, 700, 0, SC_BOTH},
                {"SAVE", EX_METRIC_SAVES, 15, 0, SC_BOTH},
                {"PIN_CLICK", EX_METRIC_CLICKS, 30, 0, SC_BOTH},
                {"OUTBOUND_CLICK", EX_METRIC_CLICKS, 12, 0, SC_BOTH},
                {"ENGAGEMENT", EX_METRIC_ENGAGEMENTS, 60, 0, SC_BOTH},
                {"follower_count", EX_METRIC_FOLLOWERS, 1200, 1, SC_ACCT},
            },
        [EX_PLATFORM_YOUTUBE] =
            {
                {"videoThumbnailImpressions", EX_METRIC_IMPRESSIONS, 3000, 0, SC_BOTH},
                {"views", EX_METRIC_VIDEO_VIEWS, 400, 0, SC_BOTH},
                {"likes", EX_METRIC_LIKES, 20, 0, SC_BOTH},
                {"comments", EX_METRIC_COMMENTS, 3, 0, SC_BOTH},
                {"shares", EX_METRIC_SHARES, 2, 0, SC_BOTH},
                {"estimatedMinutesWatched", NONE, 900, 0, SC_BOTH},
                {"subscribersGained", NONE, 2, 0, SC_BOTH},
                {"subscriberCount", EX_METRIC_FOLLOWERS, 20000, 1, SC_ACCT},
            },
        [EX_PLATFORM_GOOGLE_BUSINESS] =
            {
                {"LOCAL_POST_VIEWS_SEARCH", EX_METRIC_IMPRESSIONS, 300, 0, SC_POST},
                {"LOCAL_POST_ACTIONS_CALL_TO_ACTION", EX_METRIC_CLICKS, 8, 0, SC_POST},
                {"BUSINESS_IMPRESSIONS_DESKTOP_MAPS", EX_METRIC_IMPRESSIONS, 200, 0, SC_ACCT},
                {"BUSINESS_IMPRESSIONS_DESKTOP_SEARCH", EX_METRIC_IMPRESSIONS, 300, 0, SC_ACCT},
                {"BUSINESS_IMPRESSIONS_MOBILE_MAPS", EX_METRIC_IMPRESSIONS, 400, 0, SC_ACCT},
                {"BUSINESS_IMPRESSIONS_MOBILE_SEARCH", EX_METRIC_IMPRESSIONS, 600, 0, SC_ACCT},
                {"CALL_CLICKS", EX_METRIC_CLICKS, 10, 0, SC_ACCT},
                {"WEBSITE_CLICKS", EX_METRIC_CLICKS, 25, 0, SC_ACCT},
                {"BUSINESS_DIRECTION_REQUESTS", NONE, 12, 0, SC_ACCT},
            },
        [EX_PLATFORM_LINKEDIN] =
            {
                {"impressionCount", EX_METRIC_IMPRESSIONS, 1000, 0, SC_BOTH},
                {"uniqueImpressionsCount", EX_METRIC_REACH, 650, 0, SC_BOTH},
                {"clickCount", EX_METRIC_CLICKS, 35, 0, SC_BOTH},
                {"likeCount", EX_METRIC_LIKES, 25, 0, SC_BOTH},
                {"commentCount", EX_METRIC_COMMENTS, 5, 0, SC_BOTH},
                {"shareCount", EX_METRIC_SHARES, 3, 0, SC_BOTH},
                {"followerCount", EX_METRIC_FOLLOWERS, 3000, 1, SC_ACCT},
            },
        [EX_PLATFORM_X] =
            {
                {"impression_count", EX_METRIC_IMPRESSIONS, 1500, 0, SC_BOTH},
                {"like_count", EX_METRIC_LIKES, 40, 0, SC_BOTH},
                {"reply_count", EX_METRIC_COMMENTS, 6, 0, SC_BOTH},
                {"retweet_count", EX_METRIC_SHARES, 8, 0, SC_BOTH},
                {"quote_count", EX_METRIC_SHARES, 2, 0, SC_BOTH},
                {"bookmark_count", EX_METRIC_SAVES, 4, 0, SC_BOTH},
                {"url_link_clicks", EX_METRIC_CLICKS, 20, 0, SC_BOTH},
                {"user_profile_clicks", NONE, 5, 0, SC_BOTH},
                {"followers_count", EX_METRIC_FOLLOWERS, 4000, 1, SC_ACCT},
            },
};

/* ---- test values ---- */

typedef struct test_value {
    const char *name;
    ex_outcome_kind kind;
    int lost;
} test_value;

static const test_value test_values[] = {
    {"rate_limit", EX_OUTCOME_RATE_LIMITED, 0},   {"transient", EX_OUTCOME_TRANSIENT, 0},
    {"auth_expired", EX_OUTCOME_AUTH_EXPIRED, 0}, {"reject", EX_OUTCOME_REJECTED, 0},
    {"duplicate", EX_OUTCOME_DUPLICATE, 0},       {"unknown", EX_OUTCOME_UNKNOWN, 0},
    {"unknown_lost", EX_OUTCOME_UNKNOWN, 1},
};

#define MARKER      "[sandbox:"
#define MARKER_LEN  (sizeof MARKER - 1)
#define MARKER_BODY 32

typedef struct parsed_value {
    int found;
    size_t index; /* into test_values */
    uint32_t repeat;
} parsed_value;

/* Scans s for markers; merges into *pv. Returns 0 and adds a problem on a bad marker. */
static int scan_markers(const char *field, const char *s, size_t len, parsed_value *pv,
                        ex_problems *pr)
{
    size_t i = 0;
    while (s && i + MARKER_LEN <= len) {
        const char *m = memchr(s + i, '[', len - i);
        if (!m)
            break;
        i = (size_t)(m - s);
        if (len - i < MARKER_LEN || memcmp(s + i, MARKER, MARKER_LEN) != 0) {
            i++;
            continue;
        }
        size_t b = i + MARKER_LEN, e = b;
        while (e < len && e - b <= MARKER_BODY && s[e] != ']')
            e++;
        if (e >= len || s[e] != ']') {
            ex_problems_add(pr, field, "sandbox_test_value",
                            "unterminated sandbox test value at byte %zu (expected \"]\")", i);
            return 0;
        }
        char body[MARKER_BODY + 2];
        memcpy(body, s + b, e - b);
        body[e - b] = '\0';
        uint32_t repeat = 0;
        char *star = strchr(body, '*');
        if (star) {
            char *end = NULL;
            errno = 0;
            long n = strtol(star + 1, &end, 10);
            if (star[1] < '1' || star[1] > '9' || errno || !end || *end || n < 1 || n > 99) {
                ex_problems_add(pr, field, "sandbox_test_value",
                                "bad repeat count in [sandbox:%s] (use *1 to *99)", body);
                return 0;
            }
            repeat = (uint32_t)n;
            *star = '\0';
        }
        size_t k;
        for (k = 0; k < sizeof test_values / sizeof test_values[0]; k++)
            if (strcmp(test_values[k].name, body) == 0)
                break;
        if (k == sizeof test_values / sizeof test_values[0]) {
            ex_problems_add(pr, field, "sandbox_test_value",
                            "unknown sandbox test value [sandbox:%s] (see docs/connectors.md)",
                            body);
            return 0;
        }
        if (pv->found && (pv->index != k || pv->repeat != repeat)) {
            ex_problems_add(pr, field, "sandbox_test_value",
                            "conflicting sandbox test values: [sandbox:%s] and another", body);
            return 0;
        }
        pv->found = 1;
        pv->index = k;
        pv->repeat = repeat;
        i = e + 1;
    }
    return 1;
}

pl_rc ex_sandbox_test_value(const ex_target *t, ex_outcome_kind *kind, uint32_t *repeat, int *lost,
                            ex_problems *problems)
{
    parsed_value pv = {0};
    ex_problems scratch;
    if (!t)
        return PL_ERR_INVALID;
    ex_problems_reset(&scratch);
    ex_problems *pr = problems ? problems : &scratch;
    if (!scan_markers("text", t->text, t->text ? t->text_len : 0, &pv, pr) ||
        !scan_markers("title", t->title, t->title ? strlen(t->title) : 0, &pv, pr))
        return PL_ERR_INVALID;
    if (kind)
        *kind = pv.found ? test_values[pv.index].kind : EX_OUTCOME_PUBLISHED;
    if (repeat)
        *repeat = pv.found ? pv.repeat : 0;
    if (lost)
        *lost = pv.found ? test_values[pv.index].lost : 0;
    return PL_OK;
}

/* ---- remembered keys (open addressing over 16-byte digests) ---- */

typedef struct slot {
    uint8_t digest[16];
    uint32_t count; /* 0 = empty */
} slot;

typedef struct digest_set {
    slot *slots;
    size_t cap; /* power of two */
    size_t used;
} digest_set;

static slot *set_find(digest_set *s, const uint8_t d[16], int insert)
{
    if (insert && (s->used + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        if (s->used + 1 > EX_SANDBOX_KEYS_MAX)
            return NULL;
        slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return NULL;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].count)
                continue;
            uint64_t h;
            memcpy(&h, s->slots[i].digest, sizeof h);
            size_t j = (size_t)h & (ncap - 1);
            while (ns[j].count)
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    if (!s->cap)
        return NULL;
    uint64_t h;
    memcpy(&h, d, sizeof h);
    size_t j = (size_t)h & (s->cap - 1);
    while (s->slots[j].count) {
        if (memcmp(s->slots[j].digest, d, 16) == 0)
            return &s->slots[j];
        j = (j + 1) & (s->cap - 1);
    }
    if (!insert)
        return NULL;
    memcpy(s->slots[j].digest, d, 16);
    s->used++;
    return &s->slots[j];
}

/* ---- the connector ---- */

typedef struct sandbox {
    ex_connector base;
    pthread_mutex_t mu;
    digest_set landed;  /* digest of the idempotency key -> landings */
    digest_set deleted; /* digest of the remote id -> 1 */
    int journal_fd;     /* -1 when none */
    int64_t retry_after_ms;
} sandbox;

static const ex_connector_ops sandbox_ops;

/* First 16 bytes of SHA-256("postly-sandbox|<platform>|<label>|<v>"). The wrappers bound the
 * inputs (keys <= 256 bytes, remote ids < EX_REMOTE_ID_MAX). */
static pl_rc digest_of(ex_platform p, const char *label, const char *v, uint8_t out[16])
{
    char buf[512];
    uint8_t h[CORE_SHA256_LEN];
    int n = snprintf(buf, sizeof buf, "postly-sandbox|%s|%s|%s", ex_platform_name(p), label, v);
    if (n < 0 || (size_t)n >= sizeof buf)
        return PL_ERR_TOO_LARGE;
    core_sha256(buf, (size_t)n, h);
    memcpy(out, h, 16);
    return PL_OK;
}

/* ---- remote ids: 8 bytes = 6 derived from the inputs + 2 check bytes ---- */

static void code_check(ex_platform p, const uint8_t b[6], uint8_t out[2])
{
    char buf[64];
    uint8_t h[CORE_SHA256_LEN];
    int n = snprintf(buf, sizeof buf, "postly-sandbox-check|%s|", ex_platform_name(p));
    memcpy(buf + n, b, 6);
    core_sha256(buf, (size_t)n + 6, h);
    out[0] = h[0];
    out[1] = h[1];
}

static pl_rc remote_code(ex_platform p, const ex_target *t, const char *key, uint8_t b[8])
{
    char buf[640];
    uint8_t h[CORE_SHA256_LEN];
    int n =
        snprintf(buf, sizeof buf, "postly-sandbox-id|%s|%s|%s|%s", ex_platform_name(p),
                 t->workspace_id ? t->workspace_id : "", t->account_id ? t->account_id : "", key);
    if (n < 0 || (size_t)n >= sizeof buf)
        return PL_ERR_TOO_LARGE;
    core_sha256(buf, (size_t)n, h);
    memcpy(b, h, 6);
    b[0] = (uint8_t)((b[0] & 0x3f) | 0x10); /* 2^60 <= value < 2^62: always 19 digits */
    code_check(p, b, b + 6);
    return PL_OK;
}

static uint64_t be64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

/* Writes the remote id and URL of code b. */
static pl_rc format_remote(ex_platform p, const uint8_t b[8], char *id, size_t idsz, char *url,
                           size_t urlsz)
{
    const platform_shape *sh = &shapes[p];
    char num[24], b64[16];
    pl_rc rc = core_b64url_encode(b, 8, b64, sizeof b64, NULL);
    if (rc != PL_OK)
        return rc;
    snprintf(num, sizeof num, "%" PRIu64, be64(b));
    int n = snprintf(id, idsz, "%s%s", sh->id_prefix, sh->id_b64 ? b64 : num);
    if (n < 0 || (size_t)n >= idsz)
        return PL_ERR_TOO_LARGE;
    if (url) {
        n = snprintf(url, urlsz, "%s%s%s", sh->url_prefix, sh->url_b64 ? b64 : num, sh->url_suffix);
        if (n < 0 || (size_t)n >= urlsz)
            return PL_ERR_TOO_LARGE;
    }
    return PL_OK;
}

/* PL_ERR_INVALID when id does not have this platform's shape, PL_ERR_NOT_FOUND when it has the
 * shape but was not issued by a sandbox (check bytes differ), PL_OK otherwise. */
static pl_rc parse_remote(ex_platform p, const char *id, uint8_t b[8])
{
    const platform_shape *sh = &shapes[p];
    size_t pl = strlen(sh->id_prefix), n;
    uint8_t check[2];
    if (strncmp(id, sh->id_prefix, pl) != 0)
        return PL_ERR_INVALID;
    id += pl;
    n = strlen(id);
    if (sh->id_b64) {
        size_t got = 0;
        if (n != 11 || core_b64url_decode(id, n, b, 8, &got) != PL_OK || got != 8)
            return PL_ERR_INVALID;
    } else {
        if (n != 19 || strspn(id, "0123456789") != n)
            return PL_ERR_INVALID;
        errno = 0;
        unsigned long long v = strtoull(id, NULL, 10);
        if (errno)
            return PL_ERR_INVALID;
        for (int i = 7; i >= 0; i--) {
            b[i] = (uint8_t)(v & 0xff);
            v >>= 8;
        }
    }
    if ((b[0] & 0xf0) != 0x10 && (b[0] & 0xf0) != 0x20 && (b[0] & 0xf0) != 0x30)
        return PL_ERR_NOT_FOUND;
    code_check(p, b, check);
    return check[0] == b[6] && check[1] == b[7] ? PL_OK : PL_ERR_NOT_FOUND;
}

/* ---- the journal: lines "L <32 hex>\n" (a landing) and "D <32 hex>\n" (a deletion) ---- */

static void journal_append(sandbox *sb, char tag, const uint8_t d[16])
{
    char line[40];
    if (sb->journal_fd < 0)
        return;
    line[0] = tag;
    line[1] = ' ';
    core_hex_encode(d, 16, line + 2, sizeof line - 2);
    line[34] = '\n';
    /* One write of 35 bytes with O_APPEND: lines from several processes never interleave. A
     * process killed by SIGKILL loses nothing written (the page cache survives it); a power
     * failure may (no fsync: this is a test double, not a store). */
    ssize_t w = write(sb->journal_fd, line, 35);
    (void)w;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static pl_rc journal_replay(sandbox *sb)
{
    char buf[35 * 256];
    size_t have = 0;
    ssize_t r;
    while ((r = read(sb->journal_fd, buf + have, sizeof buf - have)) > 0) {
        have += (size_t)r;
        size_t off = 0;
        for (; have - off >= 35; off += 35) {
            const char *l = buf + off;
            uint8_t d[16];
            int ok = (l[0] == 'L' || l[0] == 'D') && l[1] == ' ' && l[34] == '\n';
            for (int i = 0; ok && i < 16; i++) {
                int hi = hexval(l[2 + 2 * i]), lo = hexval(l[3 + 2 * i]);
                ok = hi >= 0 && lo >= 0;
                d[i] = (uint8_t)(hi << 4 | lo);
            }
            if (!ok)
                return PL_ERR_PARSE;
            slot *s = set_find(l[0] == 'L' ? &sb->landed : &sb->deleted, d, 1);
            if (!s)
                return PL_ERR_NOMEM;
            s->count++;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    /* A torn last line (fewer than 35 bytes) is a write that never finished: ignored. */
    return r < 0 ? PL_ERR_IO : PL_OK;
}

/* ---- operations ---- */

static pl_rc sb_validate(const ex_connector *c, const ex_target *t, ex_problems *pr)
{
    (void)c;
    ex_rules_check(t, pr);
    ex_sandbox_test_value(t, NULL, NULL, NULL, pr);
    return pr->count || pr->dropped ? PL_ERR_INVALID : PL_OK;
}

/* What each simulated failure looks like: a code and a message that follows the platform's
 * display name. */
static const struct {
    const char *code;
    const char *message;
} failures[EX_OUTCOME__COUNT] = {
    [EX_OUTCOME_RATE_LIMITED] = {"rate_limited",
                                 "answered 429 Too Many Requests (sandbox test value)"},
    [EX_OUTCOME_TRANSIENT] = {"transient", "answered 503 Service Unavailable (sandbox test value)"},
    [EX_OUTCOME_AUTH_EXPIRED] = {"auth_expired", "says the account's authorization expired or was "
                                                 "revoked; reconnect the account (sandbox test "
                                                 "value)"},
    [EX_OUTCOME_REJECTED] = {"rejected",
                             "rejected the post under its content policy (sandbox test value)"},
    [EX_OUTCOME_DUPLICATE] = {"duplicate", "refused the post as a duplicate of a recent one "
                                           "(sandbox test value)"},
    [EX_OUTCOME_UNKNOWN] = {"unknown", "did not answer before the timeout: the post may or may "
                                       "not be live (sandbox test value)"},
};

static pl_rc record_landing(sandbox *sb, const char *key)
{
    uint8_t d[16];
    pl_rc rc = digest_of(sb->base.platform, "key", key, d);
    if (rc != PL_OK)
        return rc;
    pthread_mutex_lock(&sb->mu);
    slot *s = set_find(&sb->landed, d, 1);
    if (s) {
        s->count++;
        journal_append(sb, 'L', d);
    }
    pthread_mutex_unlock(&sb->mu);
    /* Past EX_SANDBOX_KEYS_MAX keys the sandbox stops remembering (documented). */
    return PL_OK;
}

static pl_rc sb_publish(const ex_connector *c, const ex_target *t, const ex_publish_req *req,
                        ex_outcome *out)
{
    sandbox *sb = c->impl;
    ex_problems pr;
    ex_outcome_kind kind = EX_OUTCOME_PUBLISHED;
    uint32_t repeat = 0;
    int lost = 0;
    uint8_t code[8];
    pl_rc rc;

    ex_problems_reset(&pr);
    if (sb_validate(c, t, &pr) != PL_OK)
        return PL_ERR_INVALID; /* nothing is sent */
    rc = ex_sandbox_test_value(t, &kind, &repeat, &lost, NULL);
    if (rc != PL_OK)
        return rc;
    if (repeat && req->attempt > repeat)
        kind = EX_OUTCOME_PUBLISHED;
    out->kind = kind;
    if (kind == EX_OUTCOME_PUBLISHED) {
        rc = remote_code(c->platform, t, req->idempotency_key, code);
        if (rc == PL_OK)
            rc = format_remote(c->platform, code, out->remote_id, sizeof out->remote_id, out->url,
                               sizeof out->url);
        if (rc == PL_OK)
            rc = record_landing(sb, req->idempotency_key);
        out->published_at_ms = req->now_ms;
        return rc;
    }
    snprintf(out->code, sizeof out->code, "%s", failures[kind].code);
    snprintf(out->message, sizeof out->message, "%s %s", ex_platform_display(c->platform),
             failures[kind].message);
    if (kind == EX_OUTCOME_RATE_LIMITED)
        out->retry_after_ms = sb->retry_after_ms;
    if (kind == EX_OUTCOME_UNKNOWN && !lost)
        return record_landing(sb, req->idempotency_key); /* it did go live */
    return PL_OK;
}

static int is_deleted(sandbox *sb, const char *remote_id)
{
    uint8_t d[16];
    int r = 0;
    if (digest_of(sb->base.platform, "remote", remote_id, d) != PL_OK)
        return 0;
    pthread_mutex_lock(&sb->mu);
    r = set_find(&sb->deleted, d, 0) != NULL;
    pthread_mutex_unlock(&sb->mu);
    return r;
}

static pl_rc sb_status(const ex_connector *c, const ex_status_req *req, ex_remote_status *out)
{
    sandbox *sb = c->impl;
    uint8_t code[8], d[16];
    pl_rc rc;
    if (req->remote_id) {
        rc = parse_remote(c->platform, req->remote_id, code);
        if (rc == PL_ERR_NOT_FOUND) {
            out->state = EX_REMOTE_NOT_FOUND;
            return PL_OK;
        }
        if (rc != PL_OK)
            return rc;
    } else {
        if (req->target->platform != c->platform)
            return PL_ERR_INVALID;
        rc = digest_of(c->platform, "key", req->idempotency_key, d);
        if (rc != PL_OK)
            return PL_ERR_INVALID;
        pthread_mutex_lock(&sb->mu);
        int landed = set_find(&sb->landed, d, 0) != NULL;
        pthread_mutex_unlock(&sb->mu);
        if (!landed) {
            out->state = EX_REMOTE_NOT_FOUND;
            return PL_OK;
        }
        rc = remote_code(c->platform, req->target, req->idempotency_key, code);
        if (rc != PL_OK)
            return PL_ERR_INVALID;
    }
    rc = format_remote(c->platform, code, out->remote_id, sizeof out->remote_id, out->url,
                       sizeof out->url);
    if (rc != PL_OK)
        return rc;
    out->state = is_deleted(sb, out->remote_id) ? EX_REMOTE_DELETED : EX_REMOTE_LIVE;
    return PL_OK;
}

static pl_rc sb_delete_remote(const ex_connector *c, const char *remote_id, int64_t now_ms)
{
    sandbox *sb = c->impl;
    uint8_t code[8], d[16];
    (void)now_ms;
    pl_rc rc = parse_remote(c->platform, remote_id, code);
    if (rc != PL_OK)
        return rc;
    rc = digest_of(c->platform, "remote", remote_id, d);
    if (rc != PL_OK)
        return rc;
    pthread_mutex_lock(&sb->mu);
    if (!set_find(&sb->deleted, d, 0)) {
        slot *s = set_find(&sb->deleted, d, 1);
        if (!s)
            rc = PL_ERR_NOMEM;
        else {
            s->count = 1;
            journal_append(sb, 'D', d);
        }
    }
    pthread_mutex_unlock(&sb->mu);
    return rc;
}

/* splitmix64: a cheap, well-mixed function of a seed and a day number. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t row_seed(ex_platform p, const char *subject, const char *name)
{
    char buf[256];
    uint8_t h[CORE_SHA256_LEN];
    int n = snprintf(buf, sizeof buf, "postly-sandbox-metric|%s|%s|%s", ex_platform_name(p),
                     subject, name);
    core_sha256(buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, h);
    return be64(h);
}

/* Days since the epoch from which follower counts grow (2022-01-08). */
#define LEVEL_EPOCH_DAY 19000

static pl_rc sb_metrics(const ex_connector *c, const ex_metrics_req *req, ex_metrics *out)
{
    sandbox *sb = c->impl;
    ex_platform p = c->platform;
    const char *subject;
    uint8_t code[8];
    uint8_t scope = req->scope == EX_METRICS_POST ? SC_POST : SC_ACCT;
    if (req->scope == EX_METRICS_POST) {
        pl_rc rc = parse_remote(p, req->remote_id, code);
        if (rc != PL_OK)
            return rc;
        if (is_deleted(sb, req->remote_id))
            return PL_ERR_NOT_FOUND;
        subject = req->remote_id;
    } else {
        if (strlen(req->account_id) > 128)
            return PL_ERR_INVALID;
        subject = req->account_id;
    }
    int64_t d0 = req->from_ms / DAY_MS, d1 = (req->to_ms + DAY_MS - 1) / DAY_MS;
    out->platform = p;
    out->from_ms = d0 * DAY_MS;
    out->to_ms = d1 * DAY_MS;
    for (size_t i = 0; i < NATIVE_ROWS_MAX && natives[p][i].name; i++) {
        const native_row *row = &natives[p][i];
        int64_t v = 0;
        if (!(row->scope & scope) || out->native_count >= EX_NATIVE_METRICS_MAX)
            continue;
        uint64_t seed = row_seed(p, subject, row->name);
        if (row->level) {
            int64_t days = d1 - 1 - LEVEL_EPOCH_DAY;
            v = row->base + (int64_t)(seed % row->base) +
                (days > 0 ? days : 0) * (int64_t)(1 + (seed >> 32) % 5);
        } else {
            for (int64_t d = d0; d < d1; d++)
                v += (int64_t)row->base * (int64_t)(50 + mix64(seed ^ (uint64_t)d) % 101) / 100;
        }
        snprintf(out->native[out->native_count].name, EX_NATIVE_NAME_MAX, "%s", row->name);
        out->native[out->native_count++].value = v;
        if (row->metric != NONE) {
            out->value[row->metric] += v;
            out->present[row->metric] = 1;
        }
    }
    if (!out->present[EX_METRIC_ENGAGEMENTS]) {
        static const ex_metric parts[] = {EX_METRIC_LIKES, EX_METRIC_COMMENTS, EX_METRIC_SHARES,
                                          EX_METRIC_SAVES, EX_METRIC_CLICKS};
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++)
            out->value[EX_METRIC_ENGAGEMENTS] += out->present[parts[k]] ? out->value[parts[k]] : 0;
        out->present[EX_METRIC_ENGAGEMENTS] = 1;
    }
    /* Unique reach cannot exceed impressions. */
    if (out->present[EX_METRIC_REACH] && out->present[EX_METRIC_IMPRESSIONS] &&
        out->value[EX_METRIC_REACH] > out->value[EX_METRIC_IMPRESSIONS])
        out->value[EX_METRIC_REACH] = out->value[EX_METRIC_IMPRESSIONS];
    return PL_OK;
}

static void sb_free(ex_connector *c)
{
    sandbox *sb = c ? c->impl : NULL;
    if (!sb)
        return;
    if (sb->journal_fd >= 0)
        close(sb->journal_fd);
    free(sb->landed.slots);
    free(sb->deleted.slots);
    pthread_mutex_destroy(&sb->mu);
    free(sb);
}

static const ex_connector_ops sandbox_ops = {
    sb_validate, sb_publish, sb_status, sb_delete_remote, sb_metrics, sb_free,
};

pl_rc ex_sandbox_new(ex_platform p, const ex_sandbox_options *opt, ex_connector **out)
{
    sandbox *sb = NULL;
    pl_rc rc;
    if (!out || (int)p < 0 || p >= EX_PLATFORM__COUNT)
        return PL_ERR_INVALID;
    *out = NULL;
    sb = calloc(1, sizeof *sb);
    if (!sb)
        return PL_ERR_NOMEM;
    sb->journal_fd = -1;
    pthread_mutex_init(&sb->mu, NULL);
    sb->base.ops = &sandbox_ops;
    sb->base.platform = p;
    sb->base.name = connector_names[p];
    sb->base.impl = sb;
    sb->retry_after_ms =
        opt && opt->retry_after_ms > 0 ? opt->retry_after_ms : EX_SANDBOX_RETRY_AFTER_DEFAULT_MS;
    if (opt && opt->journal_dir) {
        char path[1024];
        int n = snprintf(path, sizeof path, "%s/sandbox-%s.journal", opt->journal_dir,
                         ex_platform_name(p));
        if (n < 0 || (size_t)n >= sizeof path) {
            rc = PL_ERR_INVALID;
            goto fail;
        }
        sb->journal_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (sb->journal_fd < 0) {
            rc = PL_ERR_IO;
            goto fail;
        }
        rc = journal_replay(sb);
        if (rc != PL_OK)
            goto fail;
    }
    *out = &sb->base;
    return PL_OK;
fail:
    sb_free(&sb->base);
    return rc;
}

pl_rc ex_sandbox_landings(const ex_connector *c, const char *idempotency_key, uint32_t *out)
{
    sandbox *sb;
    uint8_t d[16];
    pl_rc rc;
    if (!c || c->ops != &sandbox_ops || !idempotency_key || !out)
        return PL_ERR_INVALID;
    sb = c->impl;
    rc = digest_of(c->platform, "key", idempotency_key, d);
    if (rc != PL_OK)
        return rc;
    pthread_mutex_lock(&sb->mu);
    slot *s = set_find(&sb->landed, d, 0);
    *out = s ? s->count : 0;
    pthread_mutex_unlock(&sb->mu);
    return PL_OK;
}
