/*
 * exec/connector.h — the one interface between the execution layer and a social platform
 * (ARCHITECTURE.md §9): validate, publish, check status, delete remote, metrics.
 *
 * The shipped connectors are deterministic sandboxes (exec/sandbox.h), one per platform, that
 * apply the real platform rules (ex_rules_get) and simulate outcomes from documented test
 * values (docs/connectors.md). A real connector plugs in later behind the same vtable.
 *
 * WHO CALLS WHAT
 *   Services build an ex_target from a post's target (account fields, text, media, settings),
 *   call ex_connector_validate() on create/update/validate/schedule, and the scheduler calls
 *   ex_connector_publish() with the target's stable idempotency key and its attempt number.
 *   ex_outcome_action() says what the caller must do with an outcome (table, not branches).
 *
 * OWNERSHIP: every pointer in ex_target and the request structs is borrowed for the duration
 * of the call only; connectors keep nothing. Results come back in caller-owned fixed-size
 * structs (no allocation, nothing to free).
 *
 * THREADS: a connector is immutable after creation (a sandbox's small record of remote
 * deletions is guarded by its own mutex), so any thread may call any function concurrently.
 * Functions never block on the network in the sandbox; a real connector's publish may block
 * and must be called off the event loop or be given its own asynchronous variant later.
 *
 * PLATFORMS: ex_platform, ex_platform_name() and ex_platform_parse() are declared in
 * exec/store.h ("facebook", "instagram", "pinterest", "youtube", "google_business",
 * "linkedin", "x"); this header adds display names and the rule table.
 */
#ifndef POSTLY_EXEC_CONNECTOR_H
#define POSTLY_EXEC_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "exec/store.h"

/* "Facebook", "Instagram", "Pinterest", "YouTube", "Google Business Profile", "LinkedIn", "X".
 * Static string; "unknown" for an out-of-range value. Used in problem messages. */
const char *ex_platform_display(ex_platform p);

/* ------------------------------------------------------------------------------------------ */
/* Media and targets                                                                          */

typedef enum ex_media_kind {
    EX_MEDIA_IMAGE = 0, /* still image: jpeg, png, webp, ... */
    EX_MEDIA_GIF,       /* image/gif (X treats an animated GIF as its own kind) */
    EX_MEDIA_VIDEO,     /* video/mp4, video/quicktime, ... */
    EX_MEDIA_DOCUMENT,  /* application/pdf (LinkedIn document posts) */
    EX_MEDIA__COUNT
} ex_media_kind;

/* "image", "gif", "video", "document". */
const char *ex_media_kind_name(ex_media_kind k);

/* The kind of a (sniffed) mime type: image/gif -> GIF, image/... -> IMAGE, video/... -> VIDEO,
 * application/pdf -> DOCUMENT. PL_ERR_UNSUPPORTED for anything else. */
pl_rc ex_media_kind_from_mime(const char *mime, ex_media_kind *out);

/* One medium attached to a target. Dimensions and duration may be 0 when unknown: the rules
 * that need them are then skipped (the sniffer should fill them when it can). */
typedef struct ex_media_ref {
    const char *id;        /* Postly media id, for problem messages and deterministic ids */
    const char *mime_type; /* sniffed, never the client's claim: "image/jpeg" */
    ex_media_kind kind;
    uint64_t size_bytes;
    uint32_t width;       /* pixels */
    uint32_t height;      /* pixels */
    uint32_t duration_ms; /* video only */
} ex_media_ref;

/* Limits of the problem list and result strings. */
#define EX_CONN_PROBLEMS_MAX 16
#define EX_CONN_FIELD_MAX    64
#define EX_CONN_CODE_MAX     40
#define EX_CONN_MSG_MAX      256
#define EX_REMOTE_ID_MAX     96
#define EX_URL_MAX           256

/* One post target as the connector sees it. Text is UTF-8 with an explicit length (it may be
 * invalid UTF-8 or contain NULs: the connector says so, it never trusts it). NULL strings mean
 * "absent". */
typedef struct ex_target {
    ex_platform platform;
    const char *workspace_id;
    const char *account_id;     /* Postly social account id */
    const char *remote_account; /* the platform's page/user/channel id, may be NULL */
    const char *board_id;       /* Pinterest: board to pin to (required there) */
    const char *location_id;    /* Google Business Profile: location (required there) */
    const char *text;           /* caption / commentary / description */
    size_t text_len;            /* bytes of text */
    const char *title;          /* YouTube (required), Pinterest (optional) */
    const char *link;           /* Pinterest destination, Facebook link, GBP CTA url */
    const ex_media_ref *media;  /* media_count entries, in order */
    size_t media_count;
    const json_t *settings; /* JSON object of platform settings or NULL (see docs) */
} ex_target;

/* ------------------------------------------------------------------------------------------ */
/* Validation                                                                                 */

/* A problem names the field ("text", "title", "board_id", "media", "media[2].mime_type",
 * "settings.privacy_status"), a stable machine code ("text_too_long", "invalid_utf8",
 * "media_required", ...; the list is in docs/connectors.md) and a sentence for people:
 *   "text: 312 code points exceeds X's limit of 280". */
typedef struct ex_problem {
    char field[EX_CONN_FIELD_MAX];
    char code[EX_CONN_CODE_MAX];
    char message[EX_CONN_MSG_MAX];
} ex_problem;

typedef struct ex_problems {
    ex_problem items[EX_CONN_PROBLEMS_MAX];
    size_t count;   /* items filled */
    size_t dropped; /* further problems found but not stored */
} ex_problems;

/* Empties p. */
void ex_problems_reset(ex_problems *p);

/* Appends a problem (printf-style message). When full, counts it in dropped. */
void ex_problems_add(ex_problems *p, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------------------------------ */
/* Publishing outcomes                                                                        */

typedef enum ex_outcome_kind {
    EX_OUTCOME_PUBLISHED = 0, /* live: remote_id, url, published_at_ms are set */
    EX_OUTCOME_RATE_LIMITED,  /* try again after retry_after_ms; not counted as a failure */
    EX_OUTCOME_TRANSIENT,     /* the platform failed (5xx, timeout before sending); retry */
    EX_OUTCOME_AUTH_EXPIRED,  /* the account's authorization expired: reconnect the account */
    EX_OUTCOME_REJECTED,      /* the platform refused the content: message says why; final */
    EX_OUTCOME_DUPLICATE,     /* the platform refused identical recent content; final */
    EX_OUTCOME_UNKNOWN,       /* sent, no answer: it may or may not be live; never auto-retry */
    EX_OUTCOME__COUNT
} ex_outcome_kind;

/* "published", "rate_limited", "transient", "auth_expired", "rejected", "duplicate",
 * "unknown". */
const char *ex_outcome_name(ex_outcome_kind k);

/* What the caller does with an outcome (docs/connectors.md, "Outcomes"). */
typedef enum ex_action {
    EX_ACTION_DONE = 0,    /* target published */
    EX_ACTION_RETRY,       /* schedule another attempt (backoff; at least retry_after_ms) */
    EX_ACTION_RECONNECT,   /* fail the target, mark the account needs_reconnect */
    EX_ACTION_FAIL,        /* fail the target with the outcome's code and message */
    EX_ACTION_UNCONFIRMED, /* mark the target unconfirmed; retry only when forced */
} ex_action;

/* The table: published->DONE, rate_limited->RETRY, transient->RETRY, auth_expired->RECONNECT,
 * rejected->FAIL, duplicate->FAIL, unknown->UNCONFIRMED. */
ex_action ex_outcome_action(ex_outcome_kind k);

typedef struct ex_publish_req {
    /* Stable for one target across all its attempts (e.g. "<post id>:<account id>"). A real
     * connector sends it where the platform supports idempotency; the sandbox derives the
     * remote id from it, so a retry after an unknown outcome finds the same post. */
    const char *idempotency_key;
    uint32_t attempt; /* 1 for the first attempt of this target, 2 for the next, ... */
    int64_t now_ms;   /* from the injected clock */
} ex_publish_req;

typedef struct ex_outcome {
    ex_outcome_kind kind;
    char remote_id[EX_REMOTE_ID_MAX]; /* PUBLISHED (and UNKNOWN never) */
    char url[EX_URL_MAX];             /* PUBLISHED: public permalink */
    int64_t published_at_ms;          /* PUBLISHED */
    int64_t retry_after_ms;           /* RATE_LIMITED (required), TRANSIENT (a hint, may be 0) */
    char code[EX_CONN_CODE_MAX];      /* platform-style error code, "" when published */
    char message[EX_CONN_MSG_MAX];    /* why, for people; never a secret */
} ex_outcome;

/* ------------------------------------------------------------------------------------------ */
/* Status, deletion, metrics                                                                  */

typedef enum ex_remote_state {
    EX_REMOTE_LIVE = 0,   /* the post exists and is public */
    EX_REMOTE_PROCESSING, /* accepted, not yet public (e.g. video transcoding) */
    EX_REMOTE_DELETED,    /* it existed and was deleted */
    EX_REMOTE_NOT_FOUND,  /* no such post (e.g. an unknown outcome that never landed) */
} ex_remote_state;

/* "live", "processing", "deleted", "not_found". */
const char *ex_remote_state_name(ex_remote_state s);

/* Either remote_id (a post we know) or, when it is NULL, the target and idempotency key of an
 * attempt whose outcome was unknown: the connector looks the post up by what it can. */
typedef struct ex_status_req {
    const char *remote_id;
    const ex_target *target;
    const char *idempotency_key;
    int64_t now_ms;
} ex_status_req;

typedef struct ex_remote_status {
    ex_remote_state state;
    char remote_id[EX_REMOTE_ID_MAX]; /* set when found */
    char url[EX_URL_MAX];
} ex_remote_status;

/* Normalized metrics, the same for every platform (docs/connectors.md, "Metrics"). */
typedef enum ex_metric {
    EX_METRIC_IMPRESSIONS = 0,
    EX_METRIC_REACH,
    EX_METRIC_ENGAGEMENTS,
    EX_METRIC_CLICKS,
    EX_METRIC_LIKES,
    EX_METRIC_COMMENTS,
    EX_METRIC_SHARES,
    EX_METRIC_SAVES,
    EX_METRIC_VIDEO_VIEWS,
    EX_METRIC_FOLLOWERS,
    EX_METRIC__COUNT
} ex_metric;

/* "impressions", "reach", "engagements", "clicks", "likes", "comments", "shares", "saves",
 * "video_views", "followers". */
const char *ex_metric_name(ex_metric m);

#define EX_NATIVE_METRICS_MAX 16
#define EX_NATIVE_NAME_MAX    48

typedef enum ex_metrics_scope {
    EX_METRICS_POST = 0, /* one published post: remote_id */
    EX_METRICS_ACCOUNT,  /* one account: account_id (+ remote_account) */
} ex_metrics_scope;

typedef struct ex_metrics_req {
    ex_metrics_scope scope;
    const char *remote_id;      /* POST */
    const char *account_id;     /* ACCOUNT (Postly id) */
    const char *remote_account; /* ACCOUNT, may be NULL */
    int64_t from_ms;            /* period [from_ms, to_ms), at most EX_METRICS_PERIOD_MAX_MS */
    int64_t to_ms;
} ex_metrics_req;

#define EX_METRICS_PERIOD_MAX_MS (366LL * 24 * 3600 * 1000)

typedef struct ex_native_metric {
    char name[EX_NATIVE_NAME_MAX]; /* the platform's own name: "impression_count", "SAVE" */
    int64_t value;
} ex_native_metric;

typedef struct ex_metrics {
    ex_platform platform;
    int64_t value[EX_METRIC__COUNT];   /* normalized values */
    uint8_t present[EX_METRIC__COUNT]; /* 1 when the platform reports that metric */
    ex_native_metric native[EX_NATIVE_METRICS_MAX];
    size_t native_count;
    int64_t from_ms, to_ms; /* the period actually covered */
} ex_metrics;

/* ------------------------------------------------------------------------------------------ */
/* The vtable                                                                                 */

typedef struct ex_connector ex_connector;

typedef struct ex_connector_ops {
    /* Fills problems (reset first by the wrapper). PL_OK when the target is valid,
     * PL_ERR_INVALID when problems->count > 0, other codes for internal failures. */
    pl_rc (*validate)(const ex_connector *c, const ex_target *t, ex_problems *problems);
    /* PL_OK when *out holds an outcome (any kind, including failures of the post);
     * PL_ERR_INVALID when the target does not validate (problems were the caller's job, the
     * connector re-checks and refuses: nothing is sent); other codes for internal failures. */
    pl_rc (*publish)(const ex_connector *c, const ex_target *t, const ex_publish_req *req,
                     ex_outcome *out);
    /* PL_OK with *out filled; PL_ERR_INVALID for a malformed remote id. */
    pl_rc (*status)(const ex_connector *c, const ex_status_req *req, ex_remote_status *out);
    /* PL_OK when deleted (or already deleted: idempotent); PL_ERR_NOT_FOUND when the platform
     * has no such post; PL_ERR_INVALID for a malformed remote id. */
    pl_rc (*delete_remote)(const ex_connector *c, const char *remote_id, int64_t now_ms);
    /* PL_OK with *out filled; PL_ERR_INVALID for a bad period or missing id. */
    pl_rc (*metrics)(const ex_connector *c, const ex_metrics_req *req, ex_metrics *out);
    /* Frees the connector (may be NULL for static connectors). */
    void (*free)(ex_connector *c);
} ex_connector_ops;

struct ex_connector {
    const ex_connector_ops *ops;
    ex_platform platform;
    const char *name; /* "sandbox-x", ... static */
    void *impl;       /* the implementation's state */
};

/* The wrappers below check their arguments (NULL, platform match, sizes), reset/clear the
 * output, then call the vtable. Use them rather than ops directly. PL_ERR_INVALID with a
 * problem "platform" when t->platform differs from the connector's. */
pl_rc ex_connector_validate(const ex_connector *c, const ex_target *t, ex_problems *problems);
pl_rc ex_connector_publish(const ex_connector *c, const ex_target *t, const ex_publish_req *req,
                           ex_outcome *out);
pl_rc ex_connector_status(const ex_connector *c, const ex_status_req *req, ex_remote_status *out);
pl_rc ex_connector_delete_remote(const ex_connector *c, const char *remote_id, int64_t now_ms);
pl_rc ex_connector_metrics(const ex_connector *c, const ex_metrics_req *req, ex_metrics *out);
void ex_connector_free(ex_connector *c);

/* ------------------------------------------------------------------------------------------ */
/* The registry: one connector per platform                                                   */

typedef struct ex_connectors {
    ex_connector *by_platform[EX_PLATFORM__COUNT];
} ex_connectors;

/* Fills reg with the seven sandbox connectors (exec/sandbox.h). On failure nothing is left
 * allocated. Free with ex_connectors_free(). */
pl_rc ex_connectors_init_sandbox(ex_connectors *reg);

/* Replaces the connector of c->platform with c (taken: freed by the registry), freeing the
 * previous one. */
void ex_connectors_set_take(ex_connectors *reg, ex_connector *c);

/* The connector of p, borrowed until the registry is freed or the slot replaced; NULL when
 * none. */
const ex_connector *ex_connectors_get(const ex_connectors *reg, ex_platform p);

/* Copies the registry's pointers into ctx->connectors (borrowed by the ctx). */
void ex_connectors_install(const ex_connectors *reg, ex_ctx *ctx);

/* Frees every connector; accepts NULL; leaves reg empty. */
void ex_connectors_free(ex_connectors *reg);

/* ------------------------------------------------------------------------------------------ */
/* Platform rules (data; the sandboxes enforce them, a real connector reuses them)             */

#define EX_RULES_MIMES_MAX 8

typedef struct ex_media_rule {
    uint8_t allowed;                       /* this kind may be attached at all */
    uint16_t max_count;                    /* of this kind in one post */
    uint64_t min_bytes;                    /* per medium, 0 = no minimum */
    uint64_t max_bytes;                    /* per medium */
    uint32_t min_width, min_height;        /* pixels, 0 = no minimum */
    uint32_t aspect_min_milli;             /* width/height x 1000, 0 = no bound */
    uint32_t aspect_max_milli;             /* width/height x 1000, 0 = no bound */
    uint32_t min_duration_ms;              /* video */
    uint32_t max_duration_ms;              /* video, 0 = no maximum */
    const char *mimes[EX_RULES_MIMES_MAX]; /* allowed mime types, NULL-terminated */
} ex_media_rule;

typedef enum ex_setting_type {
    EX_SETTING_ENUM = 0, /* a string from values */
    EX_SETTING_BOOL,     /* true / false */
    EX_SETTING_STRING,   /* a string of 1..max_len code points */
    EX_SETTING_STRINGS,  /* an array of at most max_items strings, max_len code points in all */
} ex_setting_type;

typedef struct ex_setting_rule {
    const char *name; /* key in ex_target.settings */
    ex_setting_type type;
    const char *const *values; /* ENUM: NULL-terminated list */
    uint32_t max_len;
    uint32_t max_items;
    const char *doc; /* one line for the channel schema */
} ex_setting_rule;

typedef struct ex_rules {
    ex_platform platform;
    uint32_t text_max_cp;    /* code points */
    uint32_t text_max_bytes; /* 0 = none (YouTube counts its description in bytes) */
    uint8_t text_required;   /* non-empty text required */
    uint8_t text_or_media;   /* at least one of text and media */
    uint8_t text_no_angle;   /* '<' and '>' refused in text and title (YouTube) */
    uint16_t media_min;      /* total media */
    uint16_t media_max;      /* total media */
    uint8_t mix_kinds;       /* may different kinds appear in one post */
    ex_media_rule media[EX_MEDIA__COUNT];
    uint8_t title_allowed;
    uint8_t title_required;
    uint16_t title_min_cp, title_max_cp; /* when a title is given */
    uint8_t board_required;
    uint8_t location_required;
    uint16_t link_max;               /* bytes; 0 = ex_target.link not accepted */
    uint16_t hashtags_max;           /* 0 = no limit */
    uint16_t mentions_max;           /* 0 = no limit */
    const ex_setting_rule *settings; /* settings_count rows */
    size_t settings_count;
    /* Cross-field rules that a row cannot express (Instagram reels need one video, a Google
     * Business call to action other than CALL needs a link, ...). May be NULL. */
    void (*extra)(const ex_target *t, ex_problems *problems);
    const char *sources; /* where the numbers come from (docs/connectors.md has the links) */
} ex_rules;

/* The rule table row of p (static, never NULL for a valid p). */
const ex_rules *ex_rules_get(ex_platform p);

/* Checks t against the rules of t->platform (text, title, media, account fields, link,
 * settings names and values, cross-field rules), appending every problem found. PL_OK when
 * none, PL_ERR_INVALID otherwise. */
pl_rc ex_rules_check(const ex_target *t, ex_problems *problems);

/* Strict UTF-8 (RFC 3629 §3–4: no overlongs, no surrogates, nothing above U+10FFFF, no
 * truncated sequences). *cp gets the number of code points; on PL_ERR_INVALID *bad_at gets the
 * byte offset of the first invalid sequence. NUL bytes are valid UTF-8 but refused here too
 * (PL_ERR_INVALID) because no platform accepts them. */
pl_rc ex_utf8_count(const char *s, size_t len, size_t *cp, size_t *bad_at);

/* The JSON description of p's rules for postly_get_channel_schema: limits, media kinds and
 * mime types, required fields, settings. *out is a new reference. */
pl_rc ex_rules_to_json(ex_platform p, json_t **out);

#endif
