/* tests/exec/test_connector.c — every platform rule (exec/connector.c's table), strict UTF-8,
 * problem lists, outcome actions, the channel schema and the registry. Each rule has a case
 * just inside and just outside its limit where a limit exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec/connector.h"
#include "exec/sandbox.h"

/* ---- building targets ---- */

#define MEDIA_MAX 24

typedef struct tgt {
    ex_target t;
    ex_media_ref media[MEDIA_MAX];
    char ids[MEDIA_MAX][16];
    char *text; /* owned */
    json_t *settings;
} tgt;

/* media spec: "mime,size,WxH,duration_ms;..." (WxH and duration optional: "0x0", 0). */
static void set_media(tgt *g, const char *spec)
{
    g->t.media = g->media;
    g->t.media_count = 0;
    if (!spec || !*spec)
        return;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *item = buf, *next; item; item = next) {
        next = strchr(item, ';');
        if (next)
            *next++ = '\0';
        static char mimes[MEDIA_MAX][40];
        size_t i = g->t.media_count++;
        assert_true(i < MEDIA_MAX);
        unsigned long long size = 0, w = 0, h = 0, dur = 0;
        char mime[40];
        char *comma = strchr(item, ',');
        assert_non_null(comma);
        assert_true((size_t)(comma - item) < sizeof mime);
        memcpy(mime, item, (size_t)(comma - item));
        mime[comma - item] = '\0';
        char *end = NULL;
        size = strtoull(comma + 1, &end, 10);
        if (*end == ',') {
            w = strtoull(end + 1, &end, 10);
            assert_true(*end == 'x');
            h = strtoull(end + 1, &end, 10);
        }
        if (*end == ',')
            dur = strtoull(end + 1, &end, 10);
        assert_true(*end == '\0');
        snprintf(mimes[i], sizeof mimes[i], "%s", mime);
        ex_media_ref *m = &g->media[i];
        memset(m, 0, sizeof *m);
        snprintf(g->ids[i], sizeof g->ids[i], "med_%zu", i);
        m->id = g->ids[i];
        m->mime_type = mimes[i];
        if (ex_media_kind_from_mime(mime, &m->kind) != PL_OK)
            m->kind = EX_MEDIA_IMAGE;
        m->size_bytes = size;
        m->width = (uint32_t)w;
        m->height = (uint32_t)h;
        m->duration_ms = (uint32_t)dur;
    }
}

static void set_text(tgt *g, const char *s, size_t len)
{
    free(g->text);
    g->text = NULL;
    g->t.text = NULL;
    g->t.text_len = 0;
    if (!s)
        return;
    g->text = malloc(len + 1);
    memcpy(g->text, s, len);
    g->text[len] = '\0';
    g->t.text = g->text;
    g->t.text_len = len;
}

/* A string of n copies of unit (a UTF-8 sequence). */
static char *repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

/* A valid target for each platform; the cases change one thing. */
static void base_target(tgt *g, ex_platform p)
{
    memset(g, 0, sizeof *g);
    g->t.platform = p;
    g->t.workspace_id = "wsp_test";
    g->t.account_id = "acc_1";
    switch (p) {
    case EX_PLATFORM_INSTAGRAM:
        set_text(g, "hi", 2);
        set_media(g, "image/jpeg,200000,1080x1080");
        break;
    case EX_PLATFORM_PINTEREST:
        g->t.board_id = "board_1";
        set_media(g, "image/jpeg,200000,1000x1500");
        break;
    case EX_PLATFORM_YOUTUBE:
        g->t.title = "My video";
        set_media(g, "video/mp4,5000000,1920x1080,10000");
        break;
    case EX_PLATFORM_GOOGLE_BUSINESS:
        set_text(g, "Open today", 10);
        g->t.location_id = "locations/1";
        break;
    default:
        set_text(g, "hello", 5);
        break;
    }
}

static void free_target(tgt *g)
{
    free(g->text);
    json_decref(g->settings);
}

/* ---- the case table ---- */

#define KEEP ((const char *)1) /* keep the base value */

typedef struct rule_case {
    const char *name;
    ex_platform p;
    const char *text; /* KEEP, NULL (none) or a string; "@rep:<n>:<unit>" repeats unit n times */
    const char *title;
    const char *media; /* KEEP or a spec ("" = none) */
    const char *board;
    const char *location;
    const char *link;
    const char *settings; /* JSON or NULL */
    const char *code;     /* expected problem code, NULL = valid */
    const char *field;
    const char *msg; /* substring of the message */
} rule_case;

#define X   EX_PLATFORM_X
#define LI  EX_PLATFORM_LINKEDIN
#define IG  EX_PLATFORM_INSTAGRAM
#define FB  EX_PLATFORM_FACEBOOK
#define PIN EX_PLATFORM_PINTEREST
#define YT  EX_PLATFORM_YOUTUBE
#define GBP EX_PLATFORM_GOOGLE_BUSINESS

static const rule_case cases[] = {
    /* X: 280 code points, 4 images | 1 GIF | 1 video, no mixing */
    {"x 280 ascii", X, "@rep:280:a", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"x 281 ascii", X, "@rep:281:a", KEEP, KEEP, NULL, NULL, NULL, NULL, "text_too_long", "text",
     "text: 281 code points exceeds X's limit of 280"},
    {"x 280 two-byte", X, "@rep:280:\xc3\xa9", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL},
    {"x 280 emoji", X, "@rep:280:\xf0\x9f\x98\x80", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL},
    {"x 281 emoji", X, "@rep:281:\xf0\x9f\x98\x80", KEEP, KEEP, NULL, NULL, NULL, NULL,
     "text_too_long", "text", "281 code points"},
    {"x empty", X, NULL, KEEP, "", NULL, NULL, NULL, NULL, "content_required", "text",
     "needs text or at least one medium"},
    {"x media only", X, NULL, KEEP, "image/png,1000,10x10", NULL, NULL, NULL, NULL, NULL, NULL,
     NULL},
    {"x 4 images", X, KEEP, KEEP, "image/jpeg,1000;image/png,1000;image/webp,1000;image/jpeg,1000",
     NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"x 5 images", X, KEEP, KEEP,
     "image/jpeg,1000;image/png,1000;image/webp,1000;image/jpeg,1000;image/jpeg,1000", NULL, NULL,
     NULL, NULL, "too_many_media", "media", "5 media exceeds X's limit of 4"},
    {"x 2 gifs", X, KEEP, KEEP, "image/gif,1000;image/gif,1000", NULL, NULL, NULL, NULL,
     "too_many_media", "media", "2 GIFs exceeds X's limit of 1"},
    {"x gif+image", X, KEEP, KEEP, "image/gif,1000;image/jpeg,1000", NULL, NULL, NULL, NULL,
     "media_mix_not_supported", "media", "X does not mix images and GIFs"},
    {"x video 140s", X, KEEP, KEEP, "video/mp4,1000000,0x0,140000", NULL, NULL, NULL, NULL, NULL,
     NULL, NULL},
    {"x video 141s", X, KEEP, KEEP, "video/mp4,1000000,0x0,141000", NULL, NULL, NULL, NULL,
     "video_too_long", "media[0].duration_ms", "141000 ms exceeds X's limit of 140000 ms"},
    {"x image 5MB+1", X, KEEP, KEEP, "image/jpeg,5000001", NULL, NULL, NULL, NULL,
     "media_too_large", "media[0].size_bytes", "5000001 bytes exceeds X's limit of 5000000"},
    {"x gif 15MB", X, KEEP, KEEP, "image/gif,15000000", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"x pdf", X, KEEP, KEEP, "application/pdf,1000", NULL, NULL, NULL, NULL,
     "media_kind_not_supported", "media[0]", "X posts cannot carry a document"},
    {"x bmp", X, KEEP, KEEP, "image/bmp,1000", NULL, NULL, NULL, NULL, "mime_not_supported",
     "media[0].mime_type",
     "image/bmp is not accepted by X (accepted: image/jpeg, image/png, "
     "image/webp)"},
    {"x title", X, KEEP, "A title", KEEP, NULL, NULL, NULL, NULL, "field_not_supported", "title",
     "X posts have no title"},
    {"x link", X, KEEP, KEEP, KEEP, NULL, NULL, "https://example.com", NULL, "field_not_supported",
     "link", "put it in the text"},
    {"x reply settings", X, KEEP, KEEP, KEEP, NULL, NULL, NULL,
     "{\"reply_settings\":\"following\"}", NULL, NULL, NULL},
    {"x bad reply settings", X, KEEP, KEEP, KEEP, NULL, NULL, NULL,
     "{\"reply_settings\":\"nobody\"}", "invalid_setting", "settings.reply_settings",
     "must be one of following, mentionedUsers, subscribers, verified"},
    {"x unknown setting", X, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"poll\":1}", "unknown_setting",
     "settings.poll", "not a X setting (accepted: reply_settings)"},
    {"x settings not object", X, KEEP, KEEP, KEEP, NULL, NULL, NULL, "[1]", "invalid_settings",
     "settings", "must be a JSON object"},
    /* UTF-8 (RFC 3629) */
    {"utf8 bad continuation", X, "\xc3\x28", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8",
     "text", "invalid UTF-8 at byte 0"},
    {"utf8 overlong", X, "ab\xc0\xaf", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8", "text",
     "at byte 2"},
    {"utf8 overlong 3", X, "\xe0\x80\xaf", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8",
     "text", "at byte 0"},
    {"utf8 surrogate", X, "x\xed\xa0\x80", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8",
     "text", "at byte 1"},
    {"utf8 above max", X, "\xf4\x90\x80\x80", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8",
     "text", "byte 0xf4"},
    {"utf8 truncated", X, "abc\xe2\x82", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8", "text",
     "at byte 3"},
    {"utf8 lone continuation", X, "\x80", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8",
     "text", "at byte 0"},
    {"utf8 f5", X, "\xf5\x80\x80\x80", KEEP, KEEP, NULL, NULL, NULL, NULL, "invalid_utf8", "text",
     "at byte 0"},
    {"utf8 max ok", X, "\xf4\x8f\xbf\xbf", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"utf8 bad title", YT, KEEP, "ab\xff", KEEP, NULL, NULL, NULL, NULL, "invalid_utf8", "title",
     "at byte 2"},
    /* LinkedIn: 3000, 20 images | 1 GIF | 1 video | 1 document */
    {"li 3000", LI, "@rep:3000:a", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"li 3001", LI, "@rep:3001:a", KEEP, KEEP, NULL, NULL, NULL, NULL, "text_too_long", "text",
     "3001 code points exceeds LinkedIn's limit of 3000"},
    {"li pdf", LI, KEEP, KEEP, "application/pdf,5000000", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"li pdf+image", LI, KEEP, KEEP, "application/pdf,5000;image/png,1000", NULL, NULL, NULL, NULL,
     "media_mix_not_supported", "media", "does not mix"},
    {"li video small", LI, KEEP, KEEP, "video/mp4,60000,0x0,10000", NULL, NULL, NULL, NULL,
     "media_too_small", "media[0].size_bytes", "below LinkedIn's minimum of 75000 bytes"},
    {"li quicktime", LI, KEEP, KEEP, "video/quicktime,600000,0x0,10000", NULL, NULL, NULL, NULL,
     "mime_not_supported", "media[0].mime_type", "accepted: video/mp4"},
    {"li visibility", LI, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"visibility\":\"CONNECTIONS\"}",
     NULL, NULL, NULL},
    /* Instagram: 2200, at least one medium, 10, JPEG, aspect 4:5..1.91:1, 30 hashtags */
    {"ig 2200", IG, "@rep:2200:a", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"ig 2201", IG, "@rep:2201:a", KEEP, KEEP, NULL, NULL, NULL, NULL, "text_too_long", "text",
     "2201 code points exceeds Instagram's limit of 2200"},
    {"ig no media", IG, KEEP, KEEP, "", NULL, NULL, NULL, NULL, "media_required", "media",
     "0 media attached; Instagram requires at least 1"},
    {"ig png", IG, KEEP, KEEP, "image/png,1000,1080x1080", NULL, NULL, NULL, NULL,
     "mime_not_supported", "media[0].mime_type", "image/png is not accepted by Instagram"},
    {"ig gif", IG, KEEP, KEEP, "image/gif,1000", NULL, NULL, NULL, NULL, "media_kind_not_supported",
     "media[0]", "Instagram posts cannot carry a gif"},
    {"ig 30 hashtags", IG, "@rep:30:#tag ", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"ig 31 hashtags", IG, "@rep:31:#tag ", KEEP, KEEP, NULL, NULL, NULL, NULL, "too_many_hashtags",
     "text", "31 hashtags exceeds Instagram's limit of 30"},
    {"ig 21 mentions", IG, "@rep:21:@who ", KEEP, KEEP, NULL, NULL, NULL, NULL, "too_many_mentions",
     "text", "21 mentions exceeds Instagram's limit of 20"},
    {"ig aspect tall", IG, KEEP, KEEP, "image/jpeg,1000,1000x2000", NULL, NULL, NULL, NULL,
     "aspect_ratio", "media[0].width", "outside Instagram's range 0.80 to 1.91"},
    {"ig aspect 4:5", IG, KEEP, KEEP, "image/jpeg,1000,1080x1350", NULL, NULL, NULL, NULL, NULL,
     NULL, NULL},
    {"ig narrow", IG, KEEP, KEEP, "image/jpeg,1000,300x300", NULL, NULL, NULL, NULL,
     "dimensions_too_small", "media[0].width", "300x300 pixels is below Instagram's minimum"},
    {"ig carousel mixed", IG, KEEP, KEEP, "image/jpeg,1000,1080x1080;video/mp4,100000,0x0,5000",
     NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"ig 11 media", IG, KEEP, KEEP,
     "image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;"
     "image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1",
     NULL, NULL, NULL, NULL, "too_many_media", "media", "11 media exceeds Instagram's limit of 10"},
    {"ig video short", IG, KEEP, KEEP, "video/mp4,100000,0x0,2000", NULL, NULL, NULL, NULL,
     "video_too_short", "media[0].duration_ms", "2000 ms is below Instagram's minimum of 3000"},
    {"ig reel image", IG, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"media_type\":\"REELS\"}",
     "reel_needs_one_video", "media", "needs exactly one video"},
    {"ig reel ok", IG, KEEP, KEEP, "video/mp4,100000,0x0,5000", NULL, NULL, NULL,
     "{\"media_type\":\"REELS\",\"share_to_feed\":true}", NULL, NULL, NULL},
    {"ig share without reel", IG, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"share_to_feed\":true}",
     "setting_not_applicable", "settings.share_to_feed", "only applies when"},
    {"ig story 2", IG, KEEP, KEEP, "image/jpeg,1;image/jpeg,1", NULL, NULL, NULL,
     "{\"media_type\":\"STORIES\"}", "story_needs_one_medium", "media", "got 2"},
    {"ig link", IG, KEEP, KEEP, KEEP, NULL, NULL, "https://example.com", NULL,
     "field_not_supported", "link", "Instagram posts take no separate link"},
    {"ig bool setting", IG, KEEP, KEEP, "video/mp4,100000,0x0,5000", NULL, NULL, NULL,
     "{\"media_type\":\"REELS\",\"share_to_feed\":\"yes\"}", "invalid_setting",
     "settings.share_to_feed", "must be true or false"},
    /* Facebook: 63206, 10 images | 1 GIF | 1 video */
    {"fb 63206", FB, "@rep:63206:a", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"fb 63207", FB, "@rep:63207:a", KEEP, KEEP, NULL, NULL, NULL, NULL, "text_too_long", "text",
     "63207 code points exceeds Facebook's limit of 63206"},
    {"fb empty", FB, NULL, KEEP, "", NULL, NULL, NULL, NULL, "content_required", "text",
     "a Facebook post needs text"},
    {"fb image+video", FB, KEEP, KEEP, "image/jpeg,1000;video/mp4,1000,0x0,5000", NULL, NULL, NULL,
     NULL, "media_mix_not_supported", "media", "Facebook does not mix images and videos"},
    {"fb 11 images", FB, KEEP, KEEP,
     "image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;"
     "image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1",
     NULL, NULL, NULL, NULL, "too_many_media", "media", "11 media exceeds Facebook's limit of 10"},
    {"fb link", FB, KEEP, KEEP, KEEP, NULL, NULL, "https://example.com/a?b=c", NULL, NULL, NULL,
     NULL},
    {"fb bad link", FB, KEEP, KEEP, KEEP, NULL, NULL, "javascript:alert(1)", NULL, "invalid_url",
     "link", "must be an absolute http:// or https:// URL"},
    {"fb setting", FB, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"x\":1}", "unknown_setting",
     "settings.x", "(accepted: none)"},
    {"fb video 0 bytes", FB, KEEP, KEEP, "video/mp4,0,0x0,5000", NULL, NULL, NULL, NULL,
     "media_empty", "media[0].size_bytes", "the medium is empty"},
    {"fb video no duration", FB, KEEP, KEEP, "video/mp4,10", NULL, NULL, NULL, NULL, NULL, NULL,
     NULL},
    /* Pinterest: 500, exactly one image, a board */
    {"pin 500", PIN, "@rep:500:a", KEEP, KEEP, "b", NULL, NULL, NULL, NULL, NULL, NULL},
    {"pin 501", PIN, "@rep:501:a", KEEP, KEEP, "b", NULL, NULL, NULL, "text_too_long", "text",
     "501 code points exceeds Pinterest's limit of 500"},
    {"pin no board", PIN, KEEP, KEEP, KEEP, "", NULL, NULL, NULL, "board_required", "board_id",
     "board_id: required by Pinterest (the board to pin to)"},
    {"pin no image", PIN, KEEP, KEEP, "", "b", NULL, NULL, NULL, "media_required", "media",
     "Pinterest requires at least 1"},
    {"pin 2 images", PIN, KEEP, KEEP, "image/jpeg,1;image/png,1", "b", NULL, NULL, NULL,
     "too_many_media", "media", "2 media exceeds Pinterest's limit of 1"},
    {"pin video", PIN, KEEP, KEEP, "video/mp4,100,0x0,5000", "b", NULL, NULL, NULL,
     "media_kind_not_supported", "media[0]", "Pinterest posts cannot carry a video"},
    {"pin title 100", PIN, KEEP, "@rep:100:x", KEEP, "b", NULL, NULL, NULL, NULL, NULL, NULL},
    {"pin title 101", PIN, KEEP, "@rep:101:x", KEEP, "b", NULL, NULL, NULL, "title_too_long",
     "title", "101 code points exceeds Pinterest's limit of 100"},
    {"pin link ftp", PIN, KEEP, KEEP, KEEP, "b", NULL, "ftp://example.com/x", NULL, "invalid_url",
     "link", "http://"},
    {"pin board spaces", PIN, KEEP, KEEP, KEEP, "my board", NULL, NULL, NULL, "invalid_id",
     "board_id", "printable ASCII"},
    {"pin alt 501", PIN, KEEP, KEEP, KEEP, "b", NULL, NULL, "{\"alt_text\":\"@rep\"}",
     "invalid_setting", "settings.alt_text", "501 code points; Pinterest accepts 1 to 500"},
    /* YouTube: one video, title 2..100, description 5000 bytes, no < > */
    {"yt no video", YT, KEEP, KEEP, "", NULL, NULL, NULL, NULL, "media_required", "media",
     "YouTube requires at least 1"},
    {"yt image", YT, KEEP, KEEP, "image/jpeg,100", NULL, NULL, NULL, NULL,
     "media_kind_not_supported", "media[0]", "YouTube posts cannot carry a image"},
    {"yt 2 videos", YT, KEEP, KEEP, "video/mp4,100,0x0,5000;video/mp4,100,0x0,5000", NULL, NULL,
     NULL, NULL, "too_many_media", "media", "2 media exceeds YouTube's limit of 1"},
    {"yt no title", YT, KEEP, NULL, KEEP, NULL, NULL, NULL, NULL, "title_required", "title",
     "required by YouTube (2 to 100 characters)"},
    {"yt title 1", YT, KEEP, "a", KEEP, NULL, NULL, NULL, NULL, "title_too_short", "title",
     "1 code point is shorter than YouTube's minimum of 2"},
    {"yt title 2", YT, KEEP, "ab", KEEP, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"yt title 100 multibyte", YT, KEEP, "@rep:100:\xe6\x97\xa5", KEEP, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL},
    {"yt title 101", YT, KEEP, "@rep:101:a", KEEP, NULL, NULL, NULL, NULL, "title_too_long",
     "title", "101 code points exceeds YouTube's limit of 100"},
    {"yt title angle", YT, KEEP, "a <b>", KEEP, NULL, NULL, NULL, NULL, "forbidden_character",
     "title", "'<' and '>' are not allowed by YouTube"},
    {"yt description bytes", YT, "@rep:2501:\xc3\xa9", KEEP, KEEP, NULL, NULL, NULL, NULL,
     "text_too_long", "text", "5002 bytes exceeds YouTube's limit of 5000 bytes"},
    {"yt description 5000", YT, "@rep:5000:a", KEEP, KEEP, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL},
    {"yt privacy", YT, KEEP, KEEP, KEEP, NULL, NULL, NULL,
     "{\"privacy_status\":\"unlisted\",\"made_for_kids\":false,\"tags\":[\"a\",\"b\"],"
     "\"category_id\":\"22\"}",
     NULL, NULL, NULL},
    {"yt bad privacy", YT, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"privacy_status\":\"secret\"}",
     "invalid_setting", "settings.privacy_status", "must be one of public, unlisted, private"},
    {"yt tags total", YT, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"tags\":\"@reptags\"}",
     "invalid_setting", "settings.tags", "501 code points in all exceeds YouTube's limit of 500"},
    {"yt tag not string", YT, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"tags\":[\"a\",3]}",
     "invalid_setting", "settings.tags[1]", "must be a non-empty string"},
    {"yt category", YT, KEEP, KEEP, KEEP, NULL, NULL, NULL, "{\"category_id\":\"ab\"}",
     "invalid_setting", "settings.category_id", "numeric YouTube category id"},
    {"yt webm 12h", YT, KEEP, KEEP, "video/webm,100000,0x0,43200000", NULL, NULL, NULL, NULL, NULL,
     NULL, NULL},
    {"yt 12h+1", YT, KEEP, KEEP, "video/mp4,100000,0x0,43200001", NULL, NULL, NULL, NULL,
     "video_too_long", "media[0].duration_ms", "YouTube's limit of 43200000 ms"},
    /* Google Business Profile: 1500, at most one image, no video, a location */
    {"gbp 1500", GBP, "@rep:1500:a", KEEP, KEEP, NULL, KEEP, NULL, NULL, NULL, NULL, NULL},
    {"gbp 1501", GBP, "@rep:1501:a", KEEP, KEEP, NULL, KEEP, NULL, NULL, "text_too_long", "text",
     "1501 code points exceeds Google Business Profile's limit of 1500"},
    {"gbp image", GBP, KEEP, KEEP, "image/jpeg,20000,800x600", NULL, KEEP, NULL, NULL, NULL, NULL,
     NULL},
    {"gbp 2 images", GBP, KEEP, KEEP, "image/jpeg,20000;image/jpeg,20000", NULL, KEEP, NULL, NULL,
     "too_many_media", "media", "2 media exceeds Google Business Profile's limit of 1"},
    {"gbp video", GBP, KEEP, KEEP, "video/mp4,20000,0x0,5000", NULL, KEEP, NULL, NULL,
     "media_kind_not_supported", "media[0]", "Google Business Profile posts cannot carry a video"},
    {"gbp gif", GBP, KEEP, KEEP, "image/gif,20000", NULL, KEEP, NULL, NULL,
     "media_kind_not_supported", "media[0]", "cannot carry a gif"},
    {"gbp small file", GBP, KEEP, KEEP, "image/jpeg,9999,800x600", NULL, KEEP, NULL, NULL,
     "media_too_small", "media[0].size_bytes", "below Google Business Profile's minimum of 10000"},
    {"gbp small image", GBP, KEEP, KEEP, "image/jpeg,20000,249x400", NULL, KEEP, NULL, NULL,
     "dimensions_too_small", "media[0].width",
     "249x400 pixels is below Google Business "
     "Profile's minimum of 250x250"},
    {"gbp no location", GBP, KEEP, KEEP, KEEP, NULL, NULL, NULL, NULL, "location_required",
     "location_id", "required by Google Business Profile (the business location)"},
    {"gbp no text", GBP, NULL, KEEP, KEEP, NULL, KEEP, NULL, NULL, "text_required", "text",
     "required by Google Business Profile for a STANDARD post"},
    {"gbp cta needs link", GBP, KEEP, KEEP, KEEP, NULL, KEEP, NULL, "{\"cta_action\":\"BOOK\"}",
     "link_required", "link", "the call to action BOOK needs a link"},
    {"gbp cta ok", GBP, KEEP, KEEP, KEEP, NULL, KEEP, "https://example.com/book",
     "{\"cta_action\":\"BOOK\"}", NULL, NULL, NULL},
    {"gbp call with link", GBP, KEEP, KEEP, KEEP, NULL, KEEP, "https://example.com",
     "{\"cta_action\":\"CALL\"}", "link_not_applicable", "link", "CALL takes no link"},
    {"gbp link without cta", GBP, KEEP, KEEP, KEEP, NULL, KEEP, "https://example.com", NULL,
     "setting_required", "settings.cta_action", "set settings.cta_action"},
    {"gbp event no title", GBP, KEEP, KEEP, KEEP, NULL, KEEP, NULL, "{\"topic_type\":\"EVENT\"}",
     "setting_required", "settings.event_title", "for a EVENT post"},
    {"gbp offer no text", GBP, NULL, KEEP, KEEP, NULL, KEEP, NULL,
     "{\"topic_type\":\"OFFER\",\"event_title\":\"Sale\"}", NULL, NULL, NULL},
    {"gbp standard with event title", GBP, KEEP, KEEP, KEEP, NULL, KEEP, NULL,
     "{\"event_title\":\"Sale\"}", "setting_not_applicable", "settings.event_title",
     "only applies to EVENT and OFFER"},
    {"gbp title", GBP, KEEP, "T", KEEP, NULL, KEEP, NULL, NULL, "field_not_supported", "title",
     "Google Business Profile posts have no title"},
};

static char *expand(const char *spec)
{
    if (strncmp(spec, "@rep:", 5) == 0) {
        char *end = NULL;
        long n = strtol(spec + 5, &end, 10);
        assert_true(end && *end == ':');
        return repeat(end + 1, (size_t)n);
    }
    return strdup(spec);
}

static void apply_case(const rule_case *c, tgt *g, char **title_buf)
{
    base_target(g, c->p);
    if (c->text != KEEP) {
        if (!c->text) {
            set_text(g, NULL, 0);
        } else {
            char *s = expand(c->text);
            set_text(g, s, strlen(s));
            free(s);
        }
    }
    if (c->title != KEEP) {
        *title_buf = c->title ? expand(c->title) : NULL;
        g->t.title = *title_buf;
    }
    if (c->media != KEEP)
        set_media(g, c->media);
    if (c->board)
        g->t.board_id = *c->board ? c->board : NULL;
    if (c->location != KEEP)
        g->t.location_id = c->location;
    g->t.link = c->link;
    if (c->settings) {
        if (strcmp(c->settings, "{\"alt_text\":\"@rep\"}") == 0) {
            char *s = repeat("a", 501);
            g->settings = json_pack("{s:s}", "alt_text", s);
            free(s);
        } else if (strcmp(c->settings, "{\"tags\":\"@reptags\"}") == 0) {
            char *s = repeat("t", 251);
            char *s2 = repeat("u", 250);
            g->settings = json_pack("{s:[s,s]}", "tags", s, s2);
            free(s);
            free(s2);
        } else {
            json_error_t je;
            g->settings = json_loads(c->settings, JSON_DECODE_ANY, &je);
            assert_non_null(g->settings);
        }
        g->t.settings = g->settings;
    }
}

static void test_rule_table(void **state)
{
    (void)state;
    ex_connectors reg;
    assert_int_equal(ex_connectors_init_sandbox(&reg), PL_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const rule_case *c = &cases[i];
        tgt g;
        char *title = NULL;
        ex_problems pr;
        apply_case(c, &g, &title);
        pl_rc rc = ex_connector_validate(ex_connectors_get(&reg, c->p), &g.t, &pr);
        if (!c->code) {
            if (rc != PL_OK || pr.count)
                fail_msg("case \"%s\": expected valid, got %zu problems, first: %s", c->name,
                         pr.count, pr.count ? pr.items[0].message : "-");
        } else {
            size_t k;
            if (rc != PL_ERR_INVALID)
                fail_msg("case \"%s\": expected %s, got rc %d", c->name, c->code, rc);
            for (k = 0; k < pr.count; k++)
                if (strcmp(pr.items[k].code, c->code) == 0)
                    break;
            if (k == pr.count)
                fail_msg("case \"%s\": no problem %s; first: %s/%s", c->name, c->code,
                         pr.count ? pr.items[0].code : "-", pr.count ? pr.items[0].message : "-");
            if (strcmp(pr.items[k].field, c->field) != 0)
                fail_msg("case \"%s\": field %s, expected %s", c->name, pr.items[k].field,
                         c->field);
            if (!strstr(pr.items[k].message, c->msg))
                fail_msg("case \"%s\": message \"%s\" lacks \"%s\"", c->name, pr.items[k].message,
                         c->msg);
            /* every message names its field first */
            assert_memory_equal(pr.items[k].message, pr.items[k].field, strlen(pr.items[k].field));
        }
        free(title);
        free_target(&g);
    }
    ex_connectors_free(&reg);
}

/* Several problems at once are all reported, and a full list counts the rest. */
static void test_all_problems_reported(void **state)
{
    (void)state;
    tgt g;
    ex_problems pr;
    base_target(&g, EX_PLATFORM_X);
    char *s = repeat("a", 300);
    set_text(&g, s, 300);
    free(s);
    set_media(&g, "image/jpeg,1;image/jpeg,1;image/jpeg,1;image/jpeg,1;image/bmp,9000000");
    g.t.title = "nope";
    ex_problems_reset(&pr);
    assert_int_equal(ex_rules_check(&g.t, &pr), PL_ERR_INVALID);
    const char *want[] = {"text_too_long", "field_not_supported", "too_many_media",
                          "mime_not_supported", "media_too_large"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        size_t k;
        for (k = 0; k < pr.count; k++)
            if (strcmp(pr.items[k].code, want[w]) == 0)
                break;
        assert_true(k < pr.count);
    }
    /* overflow */
    ex_problems_reset(&pr);
    for (int i = 0; i < EX_CONN_PROBLEMS_MAX + 5; i++)
        ex_problems_add(&pr, "f", "c", "problem %d", i);
    assert_int_equal(pr.count, EX_CONN_PROBLEMS_MAX);
    assert_int_equal(pr.dropped, 5);
    assert_string_equal(pr.items[3].message, "f: problem 3");
    free_target(&g);
}

static void test_utf8_count(void **state)
{
    (void)state;
    size_t cp = 0, bad = 99;
    assert_int_equal(ex_utf8_count("", 0, &cp, &bad), PL_OK);
    assert_int_equal(cp, 0);
    assert_int_equal(ex_utf8_count("a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 10, &cp, &bad), PL_OK);
    assert_int_equal(cp, 4);
    assert_int_equal(ex_utf8_count("ab\0cd", 5, &cp, &bad), PL_ERR_INVALID);
    assert_int_equal(bad, 2);
    /* every lead byte that can never appear */
    for (int b = 0x80; b <= 0xff; b++) {
        char s[4] = {(char)b, (char)0x80, (char)0x80, (char)0x80};
        int can_lead = (b >= 0xc2 && b <= 0xf4);
        pl_rc rc = ex_utf8_count(s, b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2, &cp, &bad);
        /* 0xe0 needs a0.., 0xf0 needs 90.., so 80 continuation is overlong there */
        if (b == 0xe0 || b == 0xf0)
            can_lead = 0;
        assert_int_equal(rc, can_lead ? PL_OK : PL_ERR_INVALID);
    }
    /* a NUL byte in the text is its own problem */
    tgt g;
    ex_problems pr;
    base_target(&g, EX_PLATFORM_LINKEDIN);
    set_text(&g, "ab\0c", 4);
    ex_problems_reset(&pr);
    assert_int_equal(ex_rules_check(&g.t, &pr), PL_ERR_INVALID);
    assert_string_equal(pr.items[0].code, "nul_character");
    assert_string_equal(pr.items[0].message, "text: contains a NUL character at byte 2");
    free_target(&g);
}

static void test_kind_mismatch_and_mime(void **state)
{
    (void)state;
    ex_media_kind k;
    assert_int_equal(ex_media_kind_from_mime("image/gif", &k), PL_OK);
    assert_int_equal(k, EX_MEDIA_GIF);
    assert_int_equal(ex_media_kind_from_mime("image/jpeg", &k), PL_OK);
    assert_int_equal(k, EX_MEDIA_IMAGE);
    assert_int_equal(ex_media_kind_from_mime("video/mp4", &k), PL_OK);
    assert_int_equal(k, EX_MEDIA_VIDEO);
    assert_int_equal(ex_media_kind_from_mime("application/pdf", &k), PL_OK);
    assert_int_equal(k, EX_MEDIA_DOCUMENT);
    assert_int_equal(ex_media_kind_from_mime("text/html", &k), PL_ERR_UNSUPPORTED);
    assert_int_equal(ex_media_kind_from_mime("image/", &k), PL_ERR_UNSUPPORTED);

    /* a medium whose declared kind disagrees with its mime type */
    tgt g;
    ex_problems pr;
    base_target(&g, EX_PLATFORM_X);
    set_media(&g, "image/jpeg,1000");
    g.media[0].kind = EX_MEDIA_VIDEO;
    g.media[0].duration_ms = 1000;
    ex_problems_reset(&pr);
    assert_int_equal(ex_rules_check(&g.t, &pr), PL_ERR_INVALID);
    assert_string_equal(pr.items[0].code, "kind_mismatch");
    assert_string_equal(pr.items[0].message, "media[0].mime_type: image/jpeg is not a video");
    /* no mime type */
    set_media(&g, "image/jpeg,1000");
    g.media[0].mime_type = NULL;
    ex_problems_reset(&pr);
    assert_int_equal(ex_rules_check(&g.t, &pr), PL_ERR_INVALID);
    assert_string_equal(pr.items[0].code, "mime_required");
    free_target(&g);
}

static void test_names_and_actions(void **state)
{
    (void)state;
    static const struct {
        ex_outcome_kind k;
        const char *name;
        ex_action a;
    } rows[] = {
        {EX_OUTCOME_PUBLISHED, "published", EX_ACTION_DONE},
        {EX_OUTCOME_RATE_LIMITED, "rate_limited", EX_ACTION_RETRY},
        {EX_OUTCOME_TRANSIENT, "transient", EX_ACTION_RETRY},
        {EX_OUTCOME_AUTH_EXPIRED, "auth_expired", EX_ACTION_RECONNECT},
        {EX_OUTCOME_REJECTED, "rejected", EX_ACTION_FAIL},
        {EX_OUTCOME_DUPLICATE, "duplicate", EX_ACTION_FAIL},
        {EX_OUTCOME_UNKNOWN, "unknown", EX_ACTION_UNCONFIRMED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(ex_outcome_name(rows[i].k), rows[i].name);
        assert_int_equal(ex_outcome_action(rows[i].k), rows[i].a);
    }
    assert_int_equal(ex_outcome_action((ex_outcome_kind)99), EX_ACTION_UNCONFIRMED);
    assert_string_equal(ex_platform_display(EX_PLATFORM_GOOGLE_BUSINESS),
                        "Google Business Profile");
    assert_string_equal(ex_platform_display((ex_platform)42), "unknown");
    assert_string_equal(ex_metric_name(EX_METRIC_VIDEO_VIEWS), "video_views");
    assert_string_equal(ex_remote_state_name(EX_REMOTE_NOT_FOUND), "not_found");
    assert_string_equal(ex_media_kind_name(EX_MEDIA_DOCUMENT), "document");
}

static void test_channel_schema(void **state)
{
    (void)state;
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        json_t *o = NULL;
        const ex_rules *r = ex_rules_get((ex_platform)p);
        assert_int_equal(ex_rules_to_json((ex_platform)p, &o), PL_OK);
        assert_string_equal(json_string_value(json_object_get(o, "platform")),
                            ex_platform_name((ex_platform)p));
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(o, "text"), "max_code_points")),
            r->text_max_cp);
        json_t *media = json_object_get(o, "media");
        assert_int_equal(json_integer_value(json_object_get(media, "max_count")), r->media_max);
        assert_int_equal(json_object_get(o, "board_id") != NULL, r->board_required);
        assert_int_equal(json_object_get(o, "location_id") != NULL, r->location_required);
        assert_int_equal(json_array_size(json_object_get(o, "settings")), r->settings_count);
        json_decref(o);
    }
    json_t *o = NULL;
    assert_int_equal(ex_rules_to_json(EX_PLATFORM_YOUTUBE, &o), PL_OK);
    json_t *title = json_object_get(o, "title");
    assert_true(json_is_true(json_object_get(title, "required")));
    assert_int_equal(json_integer_value(json_object_get(title, "min_code_points")), 2);
    assert_int_equal(json_integer_value(json_object_get(title, "max_code_points")), 100);
    json_t *video = json_object_get(json_object_get(json_object_get(o, "media"), "kinds"), "video");
    assert_non_null(video);
    assert_null(json_object_get(json_object_get(json_object_get(o, "media"), "kinds"), "image"));
    json_decref(o);
    assert_int_equal(ex_rules_to_json((ex_platform)99, &o), PL_ERR_INVALID);
}

static void test_registry_and_wrappers(void **state)
{
    (void)state;
    ex_connectors reg;
    ex_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    assert_int_equal(ex_connectors_init_sandbox(&reg), PL_OK);
    ex_connectors_install(&reg, &ctx);
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        const ex_connector *c = ex_connectors_get(&reg, (ex_platform)p);
        assert_non_null(c);
        assert_ptr_equal(ctx.connectors[p], c);
        assert_int_equal(c->platform, p);
    }
    assert_null(ex_connectors_get(&reg, (ex_platform)-1));

    /* wrong platform for the connector */
    tgt g;
    ex_problems pr;
    base_target(&g, EX_PLATFORM_X);
    assert_int_equal(
        ex_connector_validate(ex_connectors_get(&reg, EX_PLATFORM_LINKEDIN), &g.t, &pr),
        PL_ERR_INVALID);
    assert_string_equal(pr.items[0].code, "platform_mismatch");
    assert_string_equal(pr.items[0].message,
                        "platform: a X target was given to the LinkedIn connector");

    /* argument checks of the wrappers */
    ex_outcome out;
    ex_publish_req req = {"key-1", 0, 1000};
    assert_int_equal(ex_connector_publish(ex_connectors_get(&reg, EX_PLATFORM_X), &g.t, &req, &out),
                     PL_ERR_INVALID); /* attempt 0 */
    req.attempt = 1;
    req.idempotency_key = "";
    assert_int_equal(ex_connector_publish(ex_connectors_get(&reg, EX_PLATFORM_X), &g.t, &req, &out),
                     PL_ERR_INVALID);
    assert_int_equal(ex_connector_validate(NULL, &g.t, &pr), PL_ERR_INVALID);
    ex_metrics m;
    ex_metrics_req mr = {EX_METRICS_ACCOUNT, NULL, "acc_1", NULL, 1000, 500};
    assert_int_equal(ex_connector_metrics(ex_connectors_get(&reg, EX_PLATFORM_X), &mr, &m),
                     PL_ERR_INVALID); /* to before from */
    mr.to_ms = mr.from_ms + EX_METRICS_PERIOD_MAX_MS + 1;
    assert_int_equal(ex_connector_metrics(ex_connectors_get(&reg, EX_PLATFORM_X), &mr, &m),
                     PL_ERR_INVALID); /* too long */
    mr.to_ms = mr.from_ms + 1;
    mr.account_id = NULL;
    assert_int_equal(ex_connector_metrics(ex_connectors_get(&reg, EX_PLATFORM_X), &mr, &m),
                     PL_ERR_INVALID);
    ex_status_req sr = {NULL, NULL, NULL, 0};
    ex_remote_status rs;
    assert_int_equal(ex_connector_status(ex_connectors_get(&reg, EX_PLATFORM_X), &sr, &rs),
                     PL_ERR_INVALID);

    /* replacing a slot frees the old connector (ASan would see a leak otherwise) */
    ex_connector *c = NULL;
    assert_int_equal(ex_sandbox_new(EX_PLATFORM_X, NULL, &c), PL_OK);
    ex_connectors_set_take(&reg, c);
    assert_ptr_equal(ex_connectors_get(&reg, EX_PLATFORM_X), c);
    free_target(&g);
    ex_connectors_free(&reg);
    ex_connectors_free(&reg); /* idempotent */
    ex_connectors_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_table),
        cmocka_unit_test(test_all_problems_reported),
        cmocka_unit_test(test_utf8_count),
        cmocka_unit_test(test_kind_mismatch_and_mime),
        cmocka_unit_test(test_names_and_actions),
        cmocka_unit_test(test_channel_schema),
        cmocka_unit_test(test_registry_and_wrappers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
