/*
 * exec/connector.c — names, the outcome->action table, problem lists, strict UTF-8 counting,
 * the platform rule table and its checker, the channel schema, the argument-checking wrappers
 * and the registry. The numbers in the rule table and their sources are listed in
 * docs/connectors.md; change both together.
 */
#include "connector.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"

#define KB  1000ULL
#define MB  (1000ULL * KB)
#define GB  (1000ULL * MB)
#define SEC 1000U
#define MIN (60U * SEC)

/* ---- names (tables over branches) ---- */

static const char *const platform_display[EX_PLATFORM__COUNT] = {
    [EX_PLATFORM_FACEBOOK] = "Facebook",
    [EX_PLATFORM_INSTAGRAM] = "Instagram",
    [EX_PLATFORM_PINTEREST] = "Pinterest",
    [EX_PLATFORM_YOUTUBE] = "YouTube",
    [EX_PLATFORM_GOOGLE_BUSINESS] = "Google Business Profile",
    [EX_PLATFORM_LINKEDIN] = "LinkedIn",
    [EX_PLATFORM_X] = "X",
};

const char *ex_platform_display(ex_platform p)
{
    if ((int)p < 0 || p >= EX_PLATFORM__COUNT)
        return "unknown";
    return platform_display[p];
}

static const char *const media_kind_names[EX_MEDIA__COUNT] = {"image", "gif", "video", "document"};

const char *ex_media_kind_name(ex_media_kind k)
{
    if ((int)k < 0 || k >= EX_MEDIA__COUNT)
        return "unknown";
    return media_kind_names[k];
}

/* Plural forms for messages ("2 videos"). */
static const char *const media_kind_plural[EX_MEDIA__COUNT] = {"images", "GIFs", "videos",
                                                               "documents"};

static const struct {
    const char *prefix; /* exact type, or a "type/" prefix */
    int is_prefix;
    ex_media_kind kind;
} mime_kinds[] = {
    {"image/gif", 0, EX_MEDIA_GIF},
    {"image/", 1, EX_MEDIA_IMAGE},
    {"video/", 1, EX_MEDIA_VIDEO},
    {"application/pdf", 0, EX_MEDIA_DOCUMENT},
};

pl_rc ex_media_kind_from_mime(const char *mime, ex_media_kind *out)
{
    if (!mime || !out)
        return PL_ERR_INVALID;
    for (size_t i = 0; i < sizeof mime_kinds / sizeof mime_kinds[0]; i++) {
        size_t n = strlen(mime_kinds[i].prefix);
        int match = mime_kinds[i].is_prefix
                        ? strncmp(mime, mime_kinds[i].prefix, n) == 0 && mime[n] != '\0'
                        : strcmp(mime, mime_kinds[i].prefix) == 0;
        if (match) {
            *out = mime_kinds[i].kind;
            return PL_OK;
        }
    }
    return PL_ERR_UNSUPPORTED;
}

static const char *const outcome_names[EX_OUTCOME__COUNT] = {
    [EX_OUTCOME_PUBLISHED] = "published", [EX_OUTCOME_RATE_LIMITED] = "rate_limited",
    [EX_OUTCOME_TRANSIENT] = "transient", [EX_OUTCOME_AUTH_EXPIRED] = "auth_expired",
    [EX_OUTCOME_REJECTED] = "rejected",   [EX_OUTCOME_DUPLICATE] = "duplicate",
    [EX_OUTCOME_UNKNOWN] = "unknown",
};

const char *ex_outcome_name(ex_outcome_kind k)
{
    if ((int)k < 0 || k >= EX_OUTCOME__COUNT)
        return "unknown";
    return outcome_names[k];
}

static const ex_action outcome_actions[EX_OUTCOME__COUNT] = {
    [EX_OUTCOME_PUBLISHED] = EX_ACTION_DONE,      [EX_OUTCOME_RATE_LIMITED] = EX_ACTION_RETRY,
    [EX_OUTCOME_TRANSIENT] = EX_ACTION_RETRY,     [EX_OUTCOME_AUTH_EXPIRED] = EX_ACTION_RECONNECT,
    [EX_OUTCOME_REJECTED] = EX_ACTION_FAIL,       [EX_OUTCOME_DUPLICATE] = EX_ACTION_FAIL,
    [EX_OUTCOME_UNKNOWN] = EX_ACTION_UNCONFIRMED,
};

ex_action ex_outcome_action(ex_outcome_kind k)
{
    /* An out-of-range kind is a connector bug: the safe reading is "we do not know". */
    if ((int)k < 0 || k >= EX_OUTCOME__COUNT)
        return EX_ACTION_UNCONFIRMED;
    return outcome_actions[k];
}

static const char *const remote_state_names[] = {"live", "processing", "deleted", "not_found"};

const char *ex_remote_state_name(ex_remote_state s)
{
    if ((int)s < 0 || (size_t)s >= sizeof remote_state_names / sizeof remote_state_names[0])
        return "unknown";
    return remote_state_names[s];
}

static const char *const metric_names[EX_METRIC__COUNT] = {
    "impressions", "reach",  "engagements", "clicks",      "likes",
    "comments",    "shares", "saves",       "video_views", "followers",
};

const char *ex_metric_name(ex_metric m)
{
    if ((int)m < 0 || m >= EX_METRIC__COUNT)
        return "unknown";
    return metric_names[m];
}

/* ---- problems ---- */

void ex_problems_reset(ex_problems *p)
{
    if (p)
        memset(p, 0, sizeof *p);
}

void ex_problems_add(ex_problems *p, const char *field, const char *code, const char *fmt, ...)
{
    if (!p)
        return;
    if (p->count >= EX_CONN_PROBLEMS_MAX) {
        p->dropped++;
        return;
    }
    ex_problem *it = &p->items[p->count++];
    snprintf(it->field, sizeof it->field, "%s", field ? field : "");
    snprintf(it->code, sizeof it->code, "%s", code ? code : "invalid");
    /* The message always starts with the field, so it reads on its own in a log or a UI. */
    size_t off = strlen(it->field);
    memcpy(it->message, it->field, off); /* field is shorter than message */
    memcpy(it->message + off, ": ", 3);
    off += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->message + off, sizeof it->message - off, fmt, ap);
    va_end(ap);
}

/* ---- strict UTF-8 ---- */

pl_rc ex_utf8_count(const char *s, size_t len, size_t *cp, size_t *bad_at)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    if (bad_at)
        *bad_at = 0;
    if (!s && len)
        return PL_ERR_INVALID;
    while (i < len) {
        unsigned char c = p[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte (RFC 3629 §4) */
        if (c == 0x00)
            goto bad;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            if (c == 0xED)
                hi = 0x9F; /* UTF-16 surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            goto bad; /* 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF */
        }
        if (len - i <= need)
            goto bad; /* truncated */
        if (p[i + 1] < lo || p[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= need; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF)
                goto bad;
        i += need + 1;
        n++;
    }
    if (cp)
        *cp = n;
    return PL_OK;
bad:
    if (bad_at)
        *bad_at = i;
    if (cp)
        *cp = n;
    return PL_ERR_INVALID;
}

/* ---- the rule table (docs/connectors.md "Platform rules" lists every number's source) ---- */

static const char *const ig_media_types[] = {"FEED", "REELS", "STORIES", NULL};
static const char *const yt_privacy[] = {"public", "unlisted", "private", NULL};
static const char *const gbp_topics[] = {"STANDARD", "EVENT", "OFFER", NULL};
static const char *const gbp_actions[] = {"BOOK",    "ORDER", "SHOP", "LEARN_MORE",
                                          "SIGN_UP", "CALL",  NULL};
static const char *const li_visibility[] = {"PUBLIC", "CONNECTIONS", "LOGGED_IN", NULL};
static const char *const x_reply[] = {"following", "mentionedUsers", "subscribers", "verified",
                                      NULL};

static const ex_setting_rule ig_settings[] = {
    {"media_type", EX_SETTING_ENUM, ig_media_types, 0, 0,
     "FEED (default; a carousel when several media), REELS (one video) or STORIES (one medium)"},
    {"share_to_feed", EX_SETTING_BOOL, NULL, 0, 0, "REELS only: also show the reel in the feed"},
};
static const ex_setting_rule pin_settings[] = {
    {"alt_text", EX_SETTING_STRING, NULL, 500, 0, "alternative text of the image"},
};
static const ex_setting_rule yt_settings[] = {
    {"privacy_status", EX_SETTING_ENUM, yt_privacy, 0, 0, "public, unlisted or private"},
    {"made_for_kids", EX_SETTING_BOOL, NULL, 0, 0, "self-declared made for kids"},
    {"tags", EX_SETTING_STRINGS, NULL, 500, 500, "keywords, 500 characters in all"},
    {"category_id", EX_SETTING_STRING, NULL, 4, 0, "numeric video category id"},
};
static const ex_setting_rule gbp_settings[] = {
    {"topic_type", EX_SETTING_ENUM, gbp_topics, 0, 0, "STANDARD (default), EVENT or OFFER"},
    {"cta_action", EX_SETTING_ENUM, gbp_actions, 0, 0,
     "call-to-action button; every action but CALL needs link"},
    {"event_title", EX_SETTING_STRING, NULL, 58, 0, "EVENT and OFFER: the title"},
};
static const ex_setting_rule li_settings[] = {
    {"visibility", EX_SETTING_ENUM, li_visibility, 0, 0,
     "PUBLIC (default), CONNECTIONS or "
     "LOGGED_IN"},
};
static const ex_setting_rule x_settings[] = {
    {"reply_settings", EX_SETTING_ENUM, x_reply, 0, 0, "who may reply"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *setting_str(const ex_target *t, const char *name)
{
    json_t *v = t->settings && json_is_object(t->settings)
                    ? json_object_get((json_t *)t->settings, name)
                    : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int count_kind(const ex_target *t, ex_media_kind k)
{
    int n = 0;
    for (size_t i = 0; i < t->media_count; i++)
        n += t->media[i].kind == k;
    return n;
}

static void ig_extra(const ex_target *t, ex_problems *pr)
{
    const char *type = setting_str(t, "media_type");
    json_t *share = t->settings && json_is_object(t->settings)
                        ? json_object_get((json_t *)t->settings, "share_to_feed")
                        : NULL;
    if (type && strcmp(type, "REELS") == 0 &&
        (t->media_count != 1 || count_kind(t, EX_MEDIA_VIDEO) != 1))
        ex_problems_add(pr, "media", "reel_needs_one_video",
                        "an Instagram reel (settings.media_type REELS) needs exactly one video, "
                        "got %zu media",
                        t->media_count);
    if (type && strcmp(type, "STORIES") == 0 && t->media_count != 1)
        ex_problems_add(pr, "media", "story_needs_one_medium",
                        "an Instagram story (settings.media_type STORIES) needs exactly one "
                        "medium, got %zu",
                        t->media_count);
    if (share && (!type || strcmp(type, "REELS") != 0))
        ex_problems_add(pr, "settings.share_to_feed", "setting_not_applicable",
                        "only applies when settings.media_type is REELS");
}

static void yt_extra(const ex_target *t, ex_problems *pr)
{
    const char *cat = setting_str(t, "category_id");
    if (cat && strspn(cat, "0123456789") != strlen(cat))
        ex_problems_add(pr, "settings.category_id", "invalid_setting",
                        "must be a numeric YouTube category id, got \"%.32s\"", cat);
}

static void gbp_extra(const ex_target *t, ex_problems *pr)
{
    const char *topic = setting_str(t, "topic_type");
    const char *cta = setting_str(t, "cta_action");
    const char *ev = setting_str(t, "event_title");
    int standard = !topic || strcmp(topic, "STANDARD") == 0;
    if (standard && (!t->text || t->text_len == 0))
        ex_problems_add(pr, "text", "text_required",
                        "required by Google Business Profile for a STANDARD post");
    if (!standard && !ev)
        ex_problems_add(pr, "settings.event_title", "setting_required",
                        "required by Google Business Profile for a %s post", topic);
    if (standard && ev)
        ex_problems_add(pr, "settings.event_title", "setting_not_applicable",
                        "only applies to EVENT and OFFER posts");
    if (cta && strcmp(cta, "CALL") != 0 && !t->link)
        ex_problems_add(pr, "link", "link_required",
                        "the call to action %s needs a link (CALL uses the location's phone)", cta);
    if (cta && strcmp(cta, "CALL") == 0 && t->link)
        ex_problems_add(pr, "link", "link_not_applicable",
                        "the call to action CALL takes no link (it uses the location's phone)");
    if (!cta && t->link)
        ex_problems_add(pr, "settings.cta_action", "setting_required",
                        "a Google Business Profile link is the target of a call-to-action "
                        "button: set settings.cta_action");
}

static const ex_rules rules_table[EX_PLATFORM__COUNT] =
    {
        [EX_PLATFORM_FACEBOOK] =
            {
                .platform = EX_PLATFORM_FACEBOOK,
                .text_max_cp = 63206,
                .text_or_media = 1,
                .media_max = 10,
                .media =
                    {
                        [EX_MEDIA_IMAGE] = {1,
                                            10,
                                            0,
                                            4 * MB,
                                            0,
                                            0,
                                            0,
                                            0,
                                            0,
                                            0,
                                            {"image/jpeg", "image/png", "image/bmp", "image/tiff",
                                             NULL}},
                        [EX_MEDIA_GIF] = {1, 1, 0, 4 * MB, 0, 0, 0, 0, 0, 0, {"image/gif", NULL}},
                        [EX_MEDIA_VIDEO] = {1,
                                            1,
                                            0,
                                            10 * GB,
                                            0,
                                            0,
                                            0,
                                            0,
                                            1 * SEC,
                                            240 * MIN,
                                            {"video/mp4", "video/quicktime", NULL}},
                    },
                .link_max = 2048,
                .sources = "Graph API Page photos/videos reference; Facebook post length limit",
            },
        [EX_PLATFORM_INSTAGRAM] =
            {
                .platform = EX_PLATFORM_INSTAGRAM,
                .text_max_cp = 2200,
                .media_min = 1,
                .media_max = 10,
                .mix_kinds = 1,
                .media =
                    {
                        [EX_MEDIA_IMAGE] =
                            {1, 10, 0, 8 * MB, 320, 0, 800, 1910, 0, 0, {"image/jpeg", NULL}},
                        [EX_MEDIA_VIDEO] = {1,
                                            10,
                                            0,
                                            1 * GB,
                                            0,
                                            0,
                                            0,
                                            0,
                                            3 * SEC,
                                            15 * MIN,
                                            {"video/mp4", "video/quicktime", NULL}},
                    },
                .hashtags_max = 30,
                .mentions_max = 20,
                .settings = ig_settings,
                .settings_count = N_OF(ig_settings),
                .extra = ig_extra,
                .sources = "Instagram Graph API content publishing (media specs, caption limits)",
            },
        [EX_PLATFORM_PINTEREST] =
            {
                .platform = EX_PLATFORM_PINTEREST,
                .text_max_cp = 500,
                .media_min = 1,
                .media_max = 1,
                .media =
                    {
                        [EX_MEDIA_IMAGE] =
                            {1, 1, 0, 20 * MB, 0, 0, 0, 0, 0, 0, {"image/jpeg", "image/png", NULL}},
                    },
                .title_allowed = 1,
                .title_min_cp = 1,
                .title_max_cp = 100,
                .board_required = 1,
                .link_max = 2048,
                .settings = pin_settings,
                .settings_count = N_OF(pin_settings),
                .sources = "Pinterest API v5 pins.create",
            },
        [EX_PLATFORM_YOUTUBE] =
            {
                .platform = EX_PLATFORM_YOUTUBE,
                .text_max_cp = 5000,
                .text_max_bytes = 5000,
                .text_no_angle = 1,
                .media_min = 1,
                .media_max = 1,
                .media =
                    {
                        [EX_MEDIA_VIDEO] =
                            {1, 1, 0, 256 * GB, 0, 0, 0, 0, 1 * SEC, 12 * 60 * MIN, {"video/mp4", "video/quicktime", "video/webm", "video/x-msvideo", "video/mpeg", NULL}},
                    },
                .title_allowed = 1,
                .title_required = 1,
                .title_min_cp = 2,
                .title_max_cp = 100,
                .settings = yt_settings,
                .settings_count = N_OF(yt_settings),
                .extra = yt_extra,
                .sources =
                    "YouTube Data API v3 videos resource (snippet.title, snippet.description, "
                    "snippet.tags, status)",
            },
        [EX_PLATFORM_GOOGLE_BUSINESS] =
            {
                .platform = EX_PLATFORM_GOOGLE_BUSINESS,
                .text_max_cp = 1500,
                .media_max = 1,
                .media =
                    {
                        [EX_MEDIA_IMAGE] = {1,
                                            1,
                                            10 * KB,
                                            5 * MB,
                                            250,
                                            250,
                                            0,
                                            0,
                                            0,
                                            0,
                                            {"image/jpeg", "image/png", NULL}},
                    },
                .location_required = 1,
                .link_max = 2048,
                .settings = gbp_settings,
                .settings_count = N_OF(gbp_settings),
                .extra = gbp_extra,
                .sources =
                    "Google Business Profile API localPosts; Business Profile photo guidelines",
            },
        [EX_PLATFORM_LINKEDIN] =
            {
                .platform = EX_PLATFORM_LINKEDIN,
                .text_max_cp = 3000,
                .text_or_media = 1,
                .media_max = 20,
                .media =
                    {
                        [EX_MEDIA_IMAGE] =
                            {1, 20, 0, 8 * MB, 0, 0, 0, 0, 0, 0, {"image/jpeg", "image/png", NULL}},
                        [EX_MEDIA_GIF] = {1, 1, 0, 8 * MB, 0, 0, 0, 0, 0, 0, {"image/gif", NULL}},
                        [EX_MEDIA_VIDEO] = {1,
                                            1,
                                            75 * KB,
                                            500 * MB,
                                            0,
                                            0,
                                            0,
                                            0,
                                            3 * SEC,
                                            30 * MIN,
                                            {"video/mp4", NULL}},
                        [EX_MEDIA_DOCUMENT] =
                            {1, 1, 0, 100 * MB, 0, 0, 0, 0, 0, 0, {"application/pdf", NULL}},
                    },
                .settings = li_settings,
                .settings_count = N_OF(li_settings),
                .sources = "LinkedIn Posts API, Images API, Videos API, Documents API",
            },
        [EX_PLATFORM_X] =
            {
                .platform = EX_PLATFORM_X,
                .text_max_cp = 280,
                .text_or_media = 1,
                .media_max = 4,
                .media =
                    {
                        [EX_MEDIA_IMAGE] =
                            {
                                1,
                                4,
                                0,
                                5 * MB,
                                0,
                                0,
                                0,
                                0,
                                0,
                                0,
                                {"image/jpeg", "image/png", "image/webp", NULL}},
                        [EX_MEDIA_GIF] = {1, 1, 0, 15 * MB, 0, 0, 0, 0, 0, 0, {"image/gif", NULL}},
                        [EX_MEDIA_VIDEO] = {1,
                                            1,
                                            0,
                                            512 * MB,
                                            0,
                                            0,
                                            0,
                                            0,
                                            500,
                                            140 * SEC,
                                            {"video/mp4", "video/quicktime", NULL}},
                    },
                .settings = x_settings,
                .settings_count = N_OF(x_settings),
                .sources = "X API v2 POST /2/tweets; media upload best practices",
            },
};

const ex_rules *ex_rules_get(ex_platform p)
{
    if ((int)p < 0 || p >= EX_PLATFORM__COUNT)
        return NULL;
    return &rules_table[p];
}

/* ---- the checker ---- */

/* Counts "#tag" / "@name" tokens: the sigil at the start or after whitespace, followed by a
 * letter, digit, '_' or any non-ASCII byte. */
static size_t count_sigils(const char *s, size_t len, char sigil)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        unsigned char next = (unsigned char)s[i + 1];
        int start =
            i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t' || s[i - 1] == '\r';
        int word = next >= 0x80 || next == '_' || (next >= '0' && next <= '9') ||
                   ((next | 0x20) >= 'a' && (next | 0x20) <= 'z');
        n += s[i] == sigil && start && word;
    }
    return n;
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* Checks a UTF-8 string field; returns 1 and sets *cp when it is valid. */
static int check_utf8_field(const char *field, const char *s, size_t len, ex_problems *pr,
                            size_t *cp)
{
    size_t bad = 0;
    if (ex_utf8_count(s, len, cp, &bad) == PL_OK)
        return 1;
    if (!s || bad >= len)
        ex_problems_add(pr, field, "invalid_utf8", "invalid UTF-8");
    else if (s[bad] == '\0')
        ex_problems_add(pr, field, "nul_character", "contains a NUL character at byte %zu", bad);
    else
        ex_problems_add(pr, field, "invalid_utf8", "invalid UTF-8 at byte %zu (byte 0x%02x)", bad,
                        (unsigned)(unsigned char)s[bad]);
    return 0;
}

static void check_text(const ex_rules *r, const ex_target *t, ex_problems *pr)
{
    const char *name = ex_platform_display(r->platform);
    size_t cp = 0;
    if (!t->text || t->text_len == 0) {
        if (r->text_required)
            ex_problems_add(pr, "text", "text_required", "required by %s", name);
        else if (r->text_or_media && t->media_count == 0)
            ex_problems_add(pr, "text", "content_required",
                            "a %s post needs text or at least one medium", name);
        return;
    }
    if (!check_utf8_field("text", t->text, t->text_len, pr, &cp))
        return;
    if (cp > r->text_max_cp)
        ex_problems_add(pr, "text", "text_too_long", "%zu code points exceeds %s's limit of %u", cp,
                        name, r->text_max_cp);
    if (r->text_max_bytes && t->text_len > r->text_max_bytes)
        ex_problems_add(pr, "text", "text_too_long", "%zu bytes exceeds %s's limit of %u bytes",
                        t->text_len, name, r->text_max_bytes);
    if (r->text_no_angle &&
        (memchr(t->text, '<', t->text_len) || memchr(t->text, '>', t->text_len)))
        ex_problems_add(pr, "text", "forbidden_character", "'<' and '>' are not allowed by %s",
                        name);
    if (r->hashtags_max) {
        size_t n = count_sigils(t->text, t->text_len, '#');
        if (n > r->hashtags_max)
            ex_problems_add(pr, "text", "too_many_hashtags",
                            "%zu hashtags exceeds %s's limit of %u", n, name, r->hashtags_max);
    }
    if (r->mentions_max) {
        size_t n = count_sigils(t->text, t->text_len, '@');
        if (n > r->mentions_max)
            ex_problems_add(pr, "text", "too_many_mentions",
                            "%zu mentions exceeds %s's limit of %u", n, name, r->mentions_max);
    }
}

static void check_title(const ex_rules *r, const ex_target *t, ex_problems *pr)
{
    const char *name = ex_platform_display(r->platform);
    size_t cp = 0, len = t->title ? strlen(t->title) : 0;
    if (!t->title) {
        if (r->title_required)
            ex_problems_add(pr, "title", "title_required", "required by %s (%u to %u characters)",
                            name, r->title_min_cp, r->title_max_cp);
        return;
    }
    if (!r->title_allowed) {
        ex_problems_add(pr, "title", "field_not_supported", "%s posts have no title", name);
        return;
    }
    if (!check_utf8_field("title", t->title, len, pr, &cp))
        return;
    if (cp < r->title_min_cp)
        ex_problems_add(pr, "title", "title_too_short", "%zu %s is shorter than %s's minimum of %u",
                        cp, plural(cp, "code point", "code points"), name, r->title_min_cp);
    if (cp > r->title_max_cp)
        ex_problems_add(pr, "title", "title_too_long", "%zu code points exceeds %s's limit of %u",
                        cp, name, r->title_max_cp);
    if (r->text_no_angle && (strchr(t->title, '<') || strchr(t->title, '>')))
        ex_problems_add(pr, "title", "forbidden_character", "'<' and '>' are not allowed by %s",
                        name);
}

/* An id of the platform's account side (board, location): 1..128 printable ASCII. */
static void check_remote_ref(const char *field, const char *v, int required, const char *what,
                             const char *name, ex_problems *pr)
{
    if (!v || !*v) {
        if (required)
            ex_problems_add(pr, field,
                            strcmp(field, "board_id") == 0 ? "board_required" : "location_required",
                            "required by %s (%s)", name, what);
        return;
    }
    size_t n = strlen(v);
    int ok = n <= 128;
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] > 0x20 && v[i] < 0x7f;
    if (!ok)
        ex_problems_add(pr, field, "invalid_id", "must be 1 to 128 printable ASCII characters");
}

static void check_link(const ex_rules *r, const ex_target *t, ex_problems *pr)
{
    const char *name = ex_platform_display(r->platform);
    if (!t->link)
        return;
    size_t n = strlen(t->link);
    if (!r->link_max) {
        ex_problems_add(pr, "link", "field_not_supported",
                        "%s posts take no separate link (put it in the text)", name);
        return;
    }
    if (n > r->link_max) {
        ex_problems_add(pr, "link", "link_too_long", "%zu bytes exceeds %s's limit of %u", n, name,
                        r->link_max);
        return;
    }
    int ok = (strncmp(t->link, "https://", 8) == 0 && n > 8) ||
             (strncmp(t->link, "http://", 7) == 0 && n > 7);
    for (size_t i = 0; ok && i < n; i++)
        ok = t->link[i] > 0x20 && t->link[i] < 0x7f;
    if (!ok)
        ex_problems_add(pr, "link", "invalid_url",
                        "must be an absolute http:// or https:// URL without spaces");
}

static int mime_listed(const ex_media_rule *mr, const char *mime)
{
    for (size_t i = 0; i < EX_RULES_MIMES_MAX && mr->mimes[i]; i++)
        if (strcmp(mr->mimes[i], mime) == 0)
            return 1;
    return 0;
}

static void mime_list(const ex_media_rule *mr, char *buf, size_t bufsz)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < EX_RULES_MIMES_MAX && mr->mimes[i]; i++) {
        int n = snprintf(buf + off, bufsz - off, "%s%s", i ? ", " : "", mr->mimes[i]);
        if (n < 0 || (size_t)n >= bufsz - off)
            break;
        off += (size_t)n;
    }
}

static void check_medium(const ex_rules *r, size_t i, const ex_media_ref *m, ex_problems *pr)
{
    const char *name = ex_platform_display(r->platform);
    char field[EX_CONN_FIELD_MAX];
    ex_media_kind sniffed;
    if ((int)m->kind < 0 || m->kind >= EX_MEDIA__COUNT) {
        snprintf(field, sizeof field, "media[%zu].kind", i);
        ex_problems_add(pr, field, "invalid_kind", "unknown media kind %d", (int)m->kind);
        return;
    }
    const ex_media_rule *mr = &r->media[m->kind];
    const char *kind = ex_media_kind_name(m->kind);
    if (!mr->allowed) {
        snprintf(field, sizeof field, "media[%zu]", i);
        ex_problems_add(pr, field, "media_kind_not_supported", "%s posts cannot carry a %s", name,
                        kind);
        return;
    }
    snprintf(field, sizeof field, "media[%zu].mime_type", i);
    if (!m->mime_type || !*m->mime_type) {
        ex_problems_add(pr, field, "mime_required", "the medium has no mime type");
    } else if (ex_media_kind_from_mime(m->mime_type, &sniffed) != PL_OK || sniffed != m->kind) {
        ex_problems_add(pr, field, "kind_mismatch", "%.64s is not a %s", m->mime_type, kind);
    } else if (!mime_listed(mr, m->mime_type)) {
        char list[160];
        mime_list(mr, list, sizeof list);
        ex_problems_add(pr, field, "mime_not_supported",
                        "%.64s is not accepted by %s (accepted: %s)", m->mime_type, name, list);
    }
    snprintf(field, sizeof field, "media[%zu].size_bytes", i);
    if (m->size_bytes == 0)
        ex_problems_add(pr, field, "media_empty", "the medium is empty");
    else if (m->size_bytes > mr->max_bytes)
        ex_problems_add(
            pr, field, "media_too_large", "%llu bytes exceeds %s's limit of %llu bytes for a %s",
            (unsigned long long)m->size_bytes, name, (unsigned long long)mr->max_bytes, kind);
    else if (m->size_bytes < mr->min_bytes)
        ex_problems_add(
            pr, field, "media_too_small", "%llu bytes is below %s's minimum of %llu bytes for a %s",
            (unsigned long long)m->size_bytes, name, (unsigned long long)mr->min_bytes, kind);
    if (m->width && m->height) {
        snprintf(field, sizeof field, "media[%zu].width", i);
        if (m->width < mr->min_width || m->height < mr->min_height)
            ex_problems_add(pr, field, "dimensions_too_small",
                            "%ux%u pixels is below %s's minimum of %ux%u", m->width, m->height,
                            name, mr->min_width, mr->min_height);
        uint64_t aspect = (uint64_t)m->width * 1000 / m->height;
        if ((mr->aspect_min_milli && aspect < mr->aspect_min_milli) ||
            (mr->aspect_max_milli && aspect > mr->aspect_max_milli))
            ex_problems_add(pr, field, "aspect_ratio",
                            "aspect ratio %ux%u (%.3f) is outside %s's range %.2f to %.2f",
                            m->width, m->height, (double)m->width / m->height, name,
                            mr->aspect_min_milli / 1000.0, mr->aspect_max_milli / 1000.0);
    }
    if (m->kind == EX_MEDIA_VIDEO && m->duration_ms) {
        snprintf(field, sizeof field, "media[%zu].duration_ms", i);
        if (mr->max_duration_ms && m->duration_ms > mr->max_duration_ms)
            ex_problems_add(pr, field, "video_too_long", "%u ms exceeds %s's limit of %u ms",
                            m->duration_ms, name, mr->max_duration_ms);
        if (m->duration_ms < mr->min_duration_ms)
            ex_problems_add(pr, field, "video_too_short", "%u ms is below %s's minimum of %u ms",
                            m->duration_ms, name, mr->min_duration_ms);
    }
}

static void check_media(const ex_rules *r, const ex_target *t, ex_problems *pr)
{
    const char *name = ex_platform_display(r->platform);
    size_t per_kind[EX_MEDIA__COUNT] = {0};
    size_t kinds = 0;
    if (t->media_count && !t->media) {
        ex_problems_add(pr, "media", "invalid", "media_count is %zu but no media were given",
                        t->media_count);
        return;
    }
    if (t->media_count < r->media_min)
        ex_problems_add(pr, "media", "media_required", "%zu %s attached; %s requires at least %u",
                        t->media_count, plural(t->media_count, "medium", "media"), name,
                        r->media_min);
    if (t->media_count > r->media_max)
        ex_problems_add(pr, "media", "too_many_media", "%zu media exceeds %s's limit of %u",
                        t->media_count, name, r->media_max);
    for (size_t i = 0; i < t->media_count; i++) {
        check_medium(r, i, &t->media[i], pr);
        if ((int)t->media[i].kind >= 0 && t->media[i].kind < EX_MEDIA__COUNT)
            per_kind[t->media[i].kind]++;
    }
    for (int k = 0; k < EX_MEDIA__COUNT; k++) {
        const ex_media_rule *mr = &r->media[k];
        kinds += per_kind[k] > 0;
        if (mr->allowed && per_kind[k] > mr->max_count)
            ex_problems_add(pr, "media", "too_many_media", "%zu %s exceeds %s's limit of %u",
                            per_kind[k], media_kind_plural[k], name, mr->max_count);
    }
    if (kinds > 1 && !r->mix_kinds) {
        char list[96] = "";
        size_t off = 0;
        for (int k = 0; k < EX_MEDIA__COUNT; k++) {
            if (!per_kind[k])
                continue;
            int n = snprintf(list + off, sizeof list - off, "%s%s", off ? " and " : "",
                             media_kind_plural[k]);
            if (n > 0 && (size_t)n < sizeof list - off)
                off += (size_t)n;
        }
        ex_problems_add(pr, "media", "media_mix_not_supported", "%s does not mix %s in one post",
                        name, list);
    }
}

static void enum_list(const char *const *values, char *buf, size_t bufsz)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; values && values[i]; i++) {
        int n = snprintf(buf + off, bufsz - off, "%s%s", i ? ", " : "", values[i]);
        if (n < 0 || (size_t)n >= bufsz - off)
            break;
        off += (size_t)n;
    }
}

static void check_setting_value(const ex_rules *r, const ex_setting_rule *sr, json_t *v,
                                ex_problems *pr)
{
    char field[EX_CONN_FIELD_MAX], list[200];
    size_t cp = 0, total = 0;
    snprintf(field, sizeof field, "settings.%s", sr->name);
    switch (sr->type) {
    case EX_SETTING_ENUM:
        if (json_is_string(v)) {
            for (size_t i = 0; sr->values[i]; i++)
                if (strcmp(sr->values[i], json_string_value(v)) == 0)
                    return;
        }
        enum_list(sr->values, list, sizeof list);
        ex_problems_add(pr, field, "invalid_setting", "must be one of %s", list);
        return;
    case EX_SETTING_BOOL:
        if (!json_is_boolean(v))
            ex_problems_add(pr, field, "invalid_setting", "must be true or false");
        return;
    case EX_SETTING_STRING:
        if (!json_is_string(v)) {
            ex_problems_add(pr, field, "invalid_setting", "must be a string");
            return;
        }
        if (!check_utf8_field(field, json_string_value(v), json_string_length(v), pr, &cp))
            return;
        if (cp == 0 || cp > sr->max_len)
            ex_problems_add(pr, field, "invalid_setting", "%zu code points; %s accepts 1 to %u", cp,
                            ex_platform_display(r->platform), sr->max_len);
        return;
    case EX_SETTING_STRINGS: {
        size_t i;
        json_t *it;
        if (!json_is_array(v)) {
            ex_problems_add(pr, field, "invalid_setting", "must be an array of strings");
            return;
        }
        if (json_array_size(v) > sr->max_items) {
            ex_problems_add(pr, field, "invalid_setting", "%zu items exceeds %s's limit of %u",
                            json_array_size(v), ex_platform_display(r->platform), sr->max_items);
            return;
        }
        json_array_foreach(v, i, it)
        {
            char item[EX_CONN_FIELD_MAX];
            snprintf(item, sizeof item, "settings.%s[%zu]", sr->name, i);
            if (!json_is_string(it) || json_string_length(it) == 0) {
                ex_problems_add(pr, item, "invalid_setting", "must be a non-empty string");
                return;
            }
            if (!check_utf8_field(item, json_string_value(it), json_string_length(it), pr, &cp))
                return;
            total += cp;
        }
        if (total > sr->max_len)
            ex_problems_add(pr, field, "invalid_setting",
                            "%zu code points in all exceeds %s's limit of %u", total,
                            ex_platform_display(r->platform), sr->max_len);
        return;
    }
    }
}

static void check_settings(const ex_rules *r, const ex_target *t, ex_problems *pr)
{
    const char *key;
    json_t *v;
    if (!t->settings)
        return;
    if (!json_is_object(t->settings)) {
        ex_problems_add(pr, "settings", "invalid_settings", "must be a JSON object");
        return;
    }
    json_object_foreach((json_t *)t->settings, key, v)
    {
        const ex_setting_rule *sr = NULL;
        for (size_t i = 0; i < r->settings_count; i++)
            if (strcmp(r->settings[i].name, key) == 0)
                sr = &r->settings[i];
        if (!sr) {
            char field[EX_CONN_FIELD_MAX], list[200] = "";
            size_t off = 0;
            for (size_t i = 0; i < r->settings_count; i++) {
                int n = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "",
                                 r->settings[i].name);
                if (n > 0 && (size_t)n < sizeof list - off)
                    off += (size_t)n;
            }
            snprintf(field, sizeof field, "settings.%.40s", key);
            ex_problems_add(pr, field, "unknown_setting", "not a %s setting (accepted: %s)",
                            ex_platform_display(r->platform), r->settings_count ? list : "none");
            continue;
        }
        check_setting_value(r, sr, v, pr);
    }
}

pl_rc ex_rules_check(const ex_target *t, ex_problems *problems)
{
    const ex_rules *r;
    size_t before;
    if (!t || !problems)
        return PL_ERR_INVALID;
    before = problems->count + problems->dropped;
    r = ex_rules_get(t->platform);
    if (!r) {
        ex_problems_add(problems, "platform", "unknown_platform", "unknown platform %d",
                        (int)t->platform);
        return PL_ERR_INVALID;
    }
    const char *name = ex_platform_display(r->platform);
    check_text(r, t, problems);
    check_title(r, t, problems);
    check_media(r, t, problems);
    /* Board and location are only read on their platforms: the services may pass an
     * account's fields without knowing which apply. */
    if (r->board_required)
        check_remote_ref("board_id", t->board_id, 1, "the board to pin to", name, problems);
    if (r->location_required)
        check_remote_ref("location_id", t->location_id, 1, "the business location", name, problems);
    check_link(r, t, problems);
    check_settings(r, t, problems);
    if (r->extra)
        r->extra(t, problems);
    return problems->count + problems->dropped > before ? PL_ERR_INVALID : PL_OK;
}

/* ---- the channel schema ---- */

static const char *const setting_type_names[] = {"enum", "boolean", "string", "string_array"};

static json_t *mimes_json(const ex_media_rule *mr)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < EX_RULES_MIMES_MAX && mr->mimes[i]; i++)
        json_array_append_new(a, json_string(mr->mimes[i]));
    return a;
}

pl_rc ex_rules_to_json(ex_platform p, json_t **out)
{
    const ex_rules *r = ex_rules_get(p);
    json_t *o = NULL, *media = NULL, *settings = NULL;
    pl_rc rc = PL_ERR_NOMEM;
    if (!r || !out)
        return PL_ERR_INVALID;
    *out = NULL;
    media = json_object();
    settings = json_array();
    if (!media || !settings)
        goto out;
    for (int k = 0; k < EX_MEDIA__COUNT; k++) {
        const ex_media_rule *mr = &r->media[k];
        if (!mr->allowed)
            continue;
        json_t *m = json_pack("{s:i, s:I, s:I, s:o}", "max_count", (json_int_t)mr->max_count,
                              "min_bytes", (json_int_t)mr->min_bytes, "max_bytes",
                              (json_int_t)mr->max_bytes, "mime_types", mimes_json(mr));
        if (!m)
            goto out;
        if (mr->min_width)
            json_object_set_new(m, "min_width", json_integer(mr->min_width));
        if (mr->min_height)
            json_object_set_new(m, "min_height", json_integer(mr->min_height));
        if (mr->aspect_min_milli)
            json_object_set_new(m, "min_aspect_ratio", json_real(mr->aspect_min_milli / 1000.0));
        if (mr->aspect_max_milli)
            json_object_set_new(m, "max_aspect_ratio", json_real(mr->aspect_max_milli / 1000.0));
        if (mr->min_duration_ms)
            json_object_set_new(m, "min_duration_ms", json_integer(mr->min_duration_ms));
        if (mr->max_duration_ms)
            json_object_set_new(m, "max_duration_ms", json_integer(mr->max_duration_ms));
        json_object_set_new(media, ex_media_kind_name((ex_media_kind)k), m);
    }
    for (size_t i = 0; i < r->settings_count; i++) {
        const ex_setting_rule *sr = &r->settings[i];
        json_t *s = json_pack("{s:s, s:s, s:s}", "name", sr->name, "type",
                              setting_type_names[sr->type], "description", sr->doc);
        if (!s)
            goto out;
        if (sr->values) {
            json_t *vals = json_array();
            for (size_t k = 0; vals && sr->values[k]; k++)
                json_array_append_new(vals, json_string(sr->values[k]));
            json_object_set_new(s, "values", vals);
        }
        if (sr->max_len)
            json_object_set_new(s, "max_length", json_integer(sr->max_len));
        if (sr->max_items)
            json_object_set_new(s, "max_items", json_integer(sr->max_items));
        json_array_append_new(settings, s);
    }
    o = json_pack("{s:s, s:s, s:{s:i, s:b, s:b}, s:{s:i, s:i, s:b, s:O}, s:O}", "platform",
                  ex_platform_name(p), "display_name", ex_platform_display(p), "text",
                  "max_code_points", (json_int_t)r->text_max_cp, "required", (int)r->text_required,
                  "text_or_media", (int)r->text_or_media, "media", "min_count",
                  (json_int_t)r->media_min, "max_count", (json_int_t)r->media_max, "mix_kinds",
                  (int)r->mix_kinds, "kinds", media, "settings", settings);
    if (!o)
        goto out;
    json_t *text = json_object_get(o, "text");
    if (r->text_max_bytes)
        json_object_set_new(text, "max_bytes", json_integer(r->text_max_bytes));
    if (r->hashtags_max)
        json_object_set_new(text, "max_hashtags", json_integer(r->hashtags_max));
    if (r->mentions_max)
        json_object_set_new(text, "max_mentions", json_integer(r->mentions_max));
    if (r->text_no_angle)
        json_object_set_new(text, "forbidden_characters", json_string("<>"));
    if (r->title_allowed)
        json_object_set_new(o, "title",
                            json_pack("{s:b, s:i, s:i}", "required", (int)r->title_required,
                                      "min_code_points", (json_int_t)r->title_min_cp,
                                      "max_code_points", (json_int_t)r->title_max_cp));
    if (r->board_required)
        json_object_set_new(o, "board_id", json_pack("{s:b}", "required", 1));
    if (r->location_required)
        json_object_set_new(o, "location_id", json_pack("{s:b}", "required", 1));
    if (r->link_max)
        json_object_set_new(o, "link", json_pack("{s:i}", "max_bytes", (json_int_t)r->link_max));
    json_object_set_new(o, "sources", json_string(r->sources));
    *out = o;
    o = NULL;
    rc = PL_OK;
out:
    json_decref(o);
    json_decref(settings);
    json_decref(media);
    return rc;
}

/* ---- wrappers ---- */

static int connector_ok(const ex_connector *c)
{
    return c && c->ops && (int)c->platform >= 0 && c->platform < EX_PLATFORM__COUNT;
}

pl_rc ex_connector_validate(const ex_connector *c, const ex_target *t, ex_problems *problems)
{
    if (!connector_ok(c) || !t || !problems || !c->ops->validate)
        return PL_ERR_INVALID;
    ex_problems_reset(problems);
    if (t->platform != c->platform) {
        ex_problems_add(problems, "platform", "platform_mismatch",
                        "a %s target was given to the %s connector",
                        ex_platform_display(t->platform), ex_platform_display(c->platform));
        return PL_ERR_INVALID;
    }
    return c->ops->validate(c, t, problems);
}

pl_rc ex_connector_publish(const ex_connector *c, const ex_target *t, const ex_publish_req *req,
                           ex_outcome *out)
{
    if (!connector_ok(c) || !t || !req || !out || !c->ops->publish)
        return PL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (t->platform != c->platform || !req->idempotency_key || !*req->idempotency_key ||
        strlen(req->idempotency_key) > 256 || req->attempt == 0)
        return PL_ERR_INVALID;
    return c->ops->publish(c, t, req, out);
}

pl_rc ex_connector_status(const ex_connector *c, const ex_status_req *req, ex_remote_status *out)
{
    if (!connector_ok(c) || !req || !out || !c->ops->status)
        return PL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!req->remote_id && (!req->target || !req->idempotency_key))
        return PL_ERR_INVALID;
    if (req->remote_id && strlen(req->remote_id) >= EX_REMOTE_ID_MAX)
        return PL_ERR_INVALID;
    return c->ops->status(c, req, out);
}

pl_rc ex_connector_delete_remote(const ex_connector *c, const char *remote_id, int64_t now_ms)
{
    if (!connector_ok(c) || !remote_id || !c->ops->delete_remote ||
        strlen(remote_id) >= EX_REMOTE_ID_MAX)
        return PL_ERR_INVALID;
    return c->ops->delete_remote(c, remote_id, now_ms);
}

pl_rc ex_connector_metrics(const ex_connector *c, const ex_metrics_req *req, ex_metrics *out)
{
    if (!connector_ok(c) || !req || !out || !c->ops->metrics)
        return PL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (req->to_ms <= req->from_ms || req->to_ms - req->from_ms > EX_METRICS_PERIOD_MAX_MS ||
        req->from_ms < 0)
        return PL_ERR_INVALID;
    if (req->scope == EX_METRICS_POST ? !req->remote_id : !req->account_id)
        return PL_ERR_INVALID;
    return c->ops->metrics(c, req, out);
}

void ex_connector_free(ex_connector *c)
{
    if (c && c->ops && c->ops->free)
        c->ops->free(c);
}

/* ---- registry ---- */

pl_rc ex_connectors_init_sandbox(ex_connectors *reg)
{
    pl_rc rc = PL_OK;
    if (!reg)
        return PL_ERR_INVALID;
    memset(reg, 0, sizeof *reg);
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        rc = ex_sandbox_new((ex_platform)p, NULL, &reg->by_platform[p]);
        if (rc != PL_OK)
            break;
    }
    if (rc != PL_OK)
        ex_connectors_free(reg);
    return rc;
}

void ex_connectors_set_take(ex_connectors *reg, ex_connector *c)
{
    if (!reg || !connector_ok(c)) {
        ex_connector_free(c);
        return;
    }
    ex_connector_free(reg->by_platform[c->platform]);
    reg->by_platform[c->platform] = c;
}

const ex_connector *ex_connectors_get(const ex_connectors *reg, ex_platform p)
{
    if (!reg || (int)p < 0 || p >= EX_PLATFORM__COUNT)
        return NULL;
    return reg->by_platform[p];
}

void ex_connectors_install(const ex_connectors *reg, ex_ctx *ctx)
{
    if (!reg || !ctx)
        return;
    for (int p = 0; p < EX_PLATFORM__COUNT; p++)
        ctx->connectors[p] = reg->by_platform[p];
}

void ex_connectors_free(ex_connectors *reg)
{
    if (!reg)
        return;
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        ex_connector_free(reg->by_platform[p]);
        reg->by_platform[p] = NULL;
    }
}
