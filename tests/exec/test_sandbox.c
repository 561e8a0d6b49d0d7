/* tests/exec/test_sandbox.c — the sandbox connectors: every documented test value on every
 * platform, repeat counts keyed by attempt, deterministic remote ids and URLs, status lookups
 * (by id and by idempotency key), remote deletion, metrics, the journal across instances and
 * processes, and concurrent publishing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/connector.h"
#include "exec/sandbox.h"
#include "tests/exec/helpers.h"

#define DAY (24LL * 3600 * 1000)
/* 2026-11-29T00:00:00Z */
#define T0 (1795910400000LL)

typedef struct tgt {
    ex_target t;
    ex_media_ref m;
    char text[600];
} tgt;

/* A valid target of platform p whose text (or YouTube title) carries `marker`. */
static void make_target(tgt *g, ex_platform p, const char *marker)
{
    memset(g, 0, sizeof *g);
    g->t.platform = p;
    g->t.workspace_id = "wsp_acme";
    g->t.account_id = "acc_0001";
    snprintf(g->text, sizeof g->text, "Launch day %s", marker ? marker : "");
    g->t.text = g->text;
    g->t.text_len = strlen(g->text);
    g->m.id = "med_1";
    switch (p) {
    case EX_PLATFORM_INSTAGRAM:
        g->m = (ex_media_ref){"med_1", "image/jpeg", EX_MEDIA_IMAGE, 100000, 1080, 1080, 0};
        break;
    case EX_PLATFORM_PINTEREST:
        g->m = (ex_media_ref){"med_1", "image/png", EX_MEDIA_IMAGE, 100000, 1000, 1500, 0};
        g->t.board_id = "board_9";
        break;
    case EX_PLATFORM_YOUTUBE:
        g->m = (ex_media_ref){"med_1", "video/mp4", EX_MEDIA_VIDEO, 9000000, 1920, 1080, 30000};
        g->t.title = "Launch video";
        break;
    case EX_PLATFORM_GOOGLE_BUSINESS:
        g->t.location_id = "locations/42";
        break;
    default:
        break;
    }
    if (g->m.mime_type) {
        g->t.media = &g->m;
        g->t.media_count = 1;
    }
}

static ex_connector *new_sandbox(ex_platform p, const char *journal_dir)
{
    ex_connector *c = NULL;
    ex_sandbox_options o = {journal_dir, 0};
    assert_int_equal(ex_sandbox_new(p, &o, &c), PL_OK);
    return c;
}

static pl_rc publish(const ex_connector *c, const tgt *g, const char *key, uint32_t attempt,
                     ex_outcome *out)
{
    ex_publish_req req = {key, attempt, T0 + attempt};
    return ex_connector_publish(c, &g->t, &req, out);
}

/* ---- every test value on every platform ---- */

static const struct {
    const char *marker;
    ex_outcome_kind kind;
    ex_action action;
    const char *code;
    const char *msg; /* follows the platform name */
    uint32_t landings;
} values[] = {
    {NULL, EX_OUTCOME_PUBLISHED, EX_ACTION_DONE, "", "", 1},
    {"[sandbox:rate_limit]", EX_OUTCOME_RATE_LIMITED, EX_ACTION_RETRY, "rate_limited",
     "answered 429 Too Many Requests", 0},
    {"[sandbox:transient]", EX_OUTCOME_TRANSIENT, EX_ACTION_RETRY, "transient",
     "answered 503 Service Unavailable", 0},
    {"[sandbox:auth_expired]", EX_OUTCOME_AUTH_EXPIRED, EX_ACTION_RECONNECT, "auth_expired",
     "says the account's authorization expired", 0},
    {"[sandbox:reject]", EX_OUTCOME_REJECTED, EX_ACTION_FAIL, "rejected",
     "rejected the post under its content policy", 0},
    {"[sandbox:duplicate]", EX_OUTCOME_DUPLICATE, EX_ACTION_FAIL, "duplicate",
     "refused the post as a duplicate of a recent one", 0},
    {"[sandbox:unknown]", EX_OUTCOME_UNKNOWN, EX_ACTION_UNCONFIRMED, "unknown",
     "did not answer before the timeout", 1},
    {"[sandbox:unknown_lost]", EX_OUTCOME_UNKNOWN, EX_ACTION_UNCONFIRMED, "unknown",
     "did not answer before the timeout", 0},
};

static void test_every_outcome_every_platform(void **state)
{
    (void)state;
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        ex_connector *c = new_sandbox((ex_platform)p, NULL);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            tgt g;
            ex_outcome out;
            ex_problems pr;
            char key[64];
            snprintf(key, sizeof key, "pst_1:acc_%d:%zu", p, v);
            make_target(&g, (ex_platform)p, values[v].marker);
            assert_int_equal(ex_connector_validate(c, &g.t, &pr), PL_OK);
            assert_int_equal(publish(c, &g, key, 1, &out), PL_OK);
            assert_int_equal(out.kind, values[v].kind);
            assert_int_equal(ex_outcome_action(out.kind), values[v].action);
            assert_string_equal(out.code, values[v].code);
            if (values[v].kind == EX_OUTCOME_PUBLISHED) {
                assert_true(out.remote_id[0] != '\0');
                assert_true(strncmp(out.url, "https://", 8) == 0);
                assert_int_equal(out.published_at_ms, T0 + 1);
            } else {
                char want[200];
                snprintf(want, sizeof want, "%s %s", ex_platform_display((ex_platform)p),
                         values[v].msg);
                assert_non_null(strstr(out.message, want));
                assert_string_equal(out.remote_id, "");
                assert_string_equal(out.url, "");
            }
            assert_int_equal(out.retry_after_ms, values[v].kind == EX_OUTCOME_RATE_LIMITED
                                                     ? EX_SANDBOX_RETRY_AFTER_DEFAULT_MS
                                                     : 0);
            uint32_t n = 99;
            assert_int_equal(ex_sandbox_landings(c, key, &n), PL_OK);
            assert_int_equal(n, values[v].landings);
            /* without "*N" the outcome repeats on later attempts */
            assert_int_equal(publish(c, &g, key, 7, &out), PL_OK);
            assert_int_equal(out.kind, values[v].kind);
        }
        ex_connector_free(c);
    }
}

static void test_repeat_counts_by_attempt(void **state)
{
    (void)state;
    ex_connector *c = new_sandbox(EX_PLATFORM_LINKEDIN, NULL);
    static const struct {
        const char *marker;
        ex_outcome_kind first;
        uint32_t n;
    } rows[] = {
        {"[sandbox:transient*2]", EX_OUTCOME_TRANSIENT, 2},
        {"[sandbox:rate_limit*1]", EX_OUTCOME_RATE_LIMITED, 1},
        {"[sandbox:unknown_lost*3]", EX_OUTCOME_UNKNOWN, 3},
        {"[sandbox:auth_expired*1]", EX_OUTCOME_AUTH_EXPIRED, 1},
        {"[sandbox:reject*99]", EX_OUTCOME_REJECTED, 99},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tgt g;
        ex_outcome out;
        char key[32];
        snprintf(key, sizeof key, "k%zu", i);
        make_target(&g, EX_PLATFORM_LINKEDIN, rows[i].marker);
        for (uint32_t a = 1; a <= rows[i].n; a++) {
            assert_int_equal(publish(c, &g, key, a, &out), PL_OK);
            assert_int_equal(out.kind, rows[i].first);
        }
        assert_int_equal(publish(c, &g, key, rows[i].n + 1, &out), PL_OK);
        assert_int_equal(out.kind, EX_OUTCOME_PUBLISHED);
        uint32_t n = 0;
        assert_int_equal(ex_sandbox_landings(c, key, &n), PL_OK);
        assert_int_equal(n, 1);
    }
    ex_connector_free(c);

    /* the retry-after of a rate limit comes from the options */
    ex_sandbox_options o = {NULL, 1234};
    assert_int_equal(ex_sandbox_new(EX_PLATFORM_X, &o, &c), PL_OK);
    tgt g;
    ex_outcome out;
    make_target(&g, EX_PLATFORM_X, "[sandbox:rate_limit]");
    assert_int_equal(publish(c, &g, "k", 1, &out), PL_OK);
    assert_int_equal(out.retry_after_ms, 1234);
    ex_connector_free(c);
}

static void test_markers_in_title_and_bad_markers(void **state)
{
    (void)state;
    ex_connector *c = new_sandbox(EX_PLATFORM_YOUTUBE, NULL);
    tgt g;
    ex_outcome out;
    ex_problems pr;
    make_target(&g, EX_PLATFORM_YOUTUBE, NULL);
    g.t.title = "Demo [sandbox:duplicate]";
    assert_int_equal(publish(c, &g, "k1", 1, &out), PL_OK);
    assert_int_equal(out.kind, EX_OUTCOME_DUPLICATE);
    /* the same value twice is fine; two different ones conflict */
    make_target(&g, EX_PLATFORM_YOUTUBE, "[sandbox:reject]");
    g.t.title = "Demo [sandbox:reject]";
    assert_int_equal(ex_connector_validate(c, &g.t, &pr), PL_OK);
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"[sandbox:nope]", "unknown sandbox test value [sandbox:nope]"},
        {"[sandbox:transient*0]", "bad repeat count in [sandbox:transient*0]"},
        {"[sandbox:transient*100]", "bad repeat count"},
        {"[sandbox:transient*x]", "bad repeat count"},
        {"[sandbox:transient", "unterminated sandbox test value at byte 11"},
        {"[sandbox:reject] [sandbox:duplicate]", "conflicting sandbox test values"},
        {"[sandbox:reject] [sandbox:reject*2]", "conflicting sandbox test values"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_target(&g, EX_PLATFORM_YOUTUBE, bad[i].text);
        assert_int_equal(ex_connector_validate(c, &g.t, &pr), PL_ERR_INVALID);
        assert_int_equal(pr.count, 1);
        assert_string_equal(pr.items[0].code, "sandbox_test_value");
        assert_string_equal(pr.items[0].field, "text");
        if (!strstr(pr.items[0].message, bad[i].msg))
            fail_msg("%s: %s", bad[i].text, pr.items[0].message);
        /* publishing an invalid target sends nothing */
        assert_int_equal(publish(c, &g, "bad", 1, &out), PL_ERR_INVALID);
    }
    uint32_t n = 9;
    assert_int_equal(ex_sandbox_landings(c, "bad", &n), PL_OK);
    assert_int_equal(n, 0);
    /* a rule violation also stops publishing */
    make_target(&g, EX_PLATFORM_YOUTUBE, NULL);
    g.t.title = "x";
    assert_int_equal(publish(c, &g, "bad", 1, &out), PL_ERR_INVALID);
    assert_int_equal(ex_sandbox_landings(c, "bad", &n), PL_OK);
    assert_int_equal(n, 0);
    /* "[sandbox" without the colon, or other brackets, are ordinary text */
    make_target(&g, EX_PLATFORM_YOUTUBE, "[sandbox] [x] [sandbo");
    assert_int_equal(publish(c, &g, "ok", 1, &out), PL_OK);
    assert_int_equal(out.kind, EX_OUTCOME_PUBLISHED);
    ex_connector_free(c);
}

/* ---- ids, URLs, status, deletion ---- */

static void test_deterministic_ids_and_shapes(void **state)
{
    (void)state;
    static const struct {
        ex_platform p;
        const char *id_prefix;
        size_t id_len;
        const char *url_prefix;
    } shapes[] = {
        {EX_PLATFORM_FACEBOOK, "", 19, "https://www.facebook.com/"},
        {EX_PLATFORM_INSTAGRAM, "", 19, "https://www.instagram.com/p/"},
        {EX_PLATFORM_PINTEREST, "", 19, "https://www.pinterest.com/pin/"},
        {EX_PLATFORM_YOUTUBE, "", 11, "https://www.youtube.com/watch?v="},
        {EX_PLATFORM_GOOGLE_BUSINESS, "localPosts/", 30, "https://business.google.com/posts/"},
        {EX_PLATFORM_LINKEDIN, "urn:li:share:", 32,
         "https://www.linkedin.com/feed/update/urn:li:share:"},
        {EX_PLATFORM_X, "", 19, "https://x.com/i/status/"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        ex_connector *a = new_sandbox(shapes[i].p, NULL), *b = new_sandbox(shapes[i].p, NULL);
        tgt g;
        ex_outcome o1, o2, o3;
        make_target(&g, shapes[i].p, NULL);
        assert_int_equal(publish(a, &g, "pst_1:acc_1", 1, &o1), PL_OK);
        assert_int_equal(publish(b, &g, "pst_1:acc_1", 3, &o2), PL_OK);
        assert_int_equal(publish(a, &g, "pst_2:acc_1", 1, &o3), PL_OK);
        /* same inputs, another instance, another attempt: the same id and URL */
        assert_string_equal(o1.remote_id, o2.remote_id);
        assert_string_equal(o1.url, o2.url);
        assert_string_not_equal(o1.remote_id, o3.remote_id);
        assert_int_equal(strlen(o1.remote_id), shapes[i].id_len);
        assert_true(strncmp(o1.remote_id, shapes[i].id_prefix, strlen(shapes[i].id_prefix)) == 0);
        assert_true(strncmp(o1.url, shapes[i].url_prefix, strlen(shapes[i].url_prefix)) == 0);
        /* another workspace or account with the same key is another post */
        g.t.workspace_id = "wsp_other";
        assert_int_equal(publish(a, &g, "pst_1:acc_1", 1, &o3), PL_OK);
        assert_string_not_equal(o1.remote_id, o3.remote_id);
        ex_connector_free(a);
        ex_connector_free(b);
    }
}

static void test_status_and_delete(void **state)
{
    (void)state;
    ex_connector *c = new_sandbox(EX_PLATFORM_X, NULL);
    tgt g;
    ex_outcome out;
    ex_remote_status st;
    make_target(&g, EX_PLATFORM_X, NULL);
    assert_int_equal(publish(c, &g, "pst_1:acc_1", 1, &out), PL_OK);

    ex_status_req by_id = {out.remote_id, NULL, NULL, T0};
    assert_int_equal(ex_connector_status(c, &by_id, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_LIVE);
    assert_string_equal(st.url, out.url);

    /* a well-formed id the sandbox never issued */
    char forged[EX_REMOTE_ID_MAX];
    snprintf(forged, sizeof forged, "%s", out.remote_id);
    forged[18] = forged[18] == '9' ? '8' : (char)(forged[18] + 1);
    ex_status_req by_forged = {forged, NULL, NULL, T0};
    assert_int_equal(ex_connector_status(c, &by_forged, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_NOT_FOUND);
    assert_int_equal(ex_connector_delete_remote(c, forged, T0), PL_ERR_NOT_FOUND);
    /* malformed ids */
    static const char *const malformed[] = {"", "12", "abc", "urn:li:share:1234567890123456789",
                                            "12345678901234567890"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        ex_status_req r = {malformed[i], NULL, NULL, T0};
        assert_int_equal(ex_connector_status(c, &r, &st), PL_ERR_INVALID);
        assert_int_equal(ex_connector_delete_remote(c, malformed[i], T0), PL_ERR_INVALID);
    }

    /* lookup by idempotency key (what the scheduler does after an unknown outcome) */
    ex_status_req by_key = {NULL, &g.t, "pst_1:acc_1", T0};
    assert_int_equal(ex_connector_status(c, &by_key, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_LIVE);
    assert_string_equal(st.remote_id, out.remote_id);
    ex_status_req never = {NULL, &g.t, "pst_9:acc_1", T0};
    assert_int_equal(ex_connector_status(c, &never, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_NOT_FOUND);

    tgt u;
    make_target(&u, EX_PLATFORM_X, "[sandbox:unknown]");
    assert_int_equal(publish(c, &u, "pst_u:acc_1", 1, &out), PL_OK);
    assert_int_equal(out.kind, EX_OUTCOME_UNKNOWN);
    ex_status_req landed = {NULL, &u.t, "pst_u:acc_1", T0};
    assert_int_equal(ex_connector_status(c, &landed, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_LIVE);
    assert_true(st.remote_id[0] != '\0');
    make_target(&u, EX_PLATFORM_X, "[sandbox:unknown_lost]");
    assert_int_equal(publish(c, &u, "pst_l:acc_1", 1, &out), PL_OK);
    ex_status_req lost = {NULL, &u.t, "pst_l:acc_1", T0};
    assert_int_equal(ex_connector_status(c, &lost, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_NOT_FOUND);

    /* delete: idempotent, then status says deleted and metrics are gone */
    assert_int_equal(ex_connector_status(c, &by_key, &st), PL_OK);
    char id[EX_REMOTE_ID_MAX];
    snprintf(id, sizeof id, "%s", st.remote_id);
    assert_int_equal(ex_connector_delete_remote(c, id, T0), PL_OK);
    assert_int_equal(ex_connector_delete_remote(c, id, T0), PL_OK);
    ex_status_req del = {id, NULL, NULL, T0};
    assert_int_equal(ex_connector_status(c, &del, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_DELETED);
    assert_int_equal(ex_connector_status(c, &by_key, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_DELETED);
    ex_metrics m;
    ex_metrics_req mr = {EX_METRICS_POST, id, NULL, NULL, T0, T0 + DAY};
    assert_int_equal(ex_connector_metrics(c, &mr, &m), PL_ERR_NOT_FOUND);

    /* an id of another platform's shape */
    ex_connector *li = new_sandbox(EX_PLATFORM_LINKEDIN, NULL);
    ex_status_req cross = {id, NULL, NULL, T0};
    assert_int_equal(ex_connector_status(li, &cross, &st), PL_ERR_INVALID);
    ex_connector_free(li);
    ex_connector_free(c);
}

/* ---- metrics ---- */

static void get_metrics(const ex_connector *c, ex_metrics_scope scope, const char *id, int64_t from,
                        int64_t to, ex_metrics *m)
{
    ex_metrics_req r = {scope,
                        scope == EX_METRICS_POST ? id : NULL,
                        scope == EX_METRICS_ACCOUNT ? id : NULL,
                        NULL,
                        from,
                        to};
    assert_int_equal(ex_connector_metrics(c, &r, m), PL_OK);
}

static int64_t native(const ex_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->native_count; i++)
        if (strcmp(m->native[i].name, name) == 0)
            return m->native[i].value;
    return -1;
}

static void test_metrics(void **state)
{
    (void)state;
    for (int p = 0; p < EX_PLATFORM__COUNT; p++) {
        ex_connector *a = new_sandbox((ex_platform)p, NULL), *b = new_sandbox((ex_platform)p, NULL);
        tgt g;
        ex_outcome out;
        ex_metrics m1, m2, m3, m4;
        make_target(&g, (ex_platform)p, NULL);
        assert_int_equal(publish(a, &g, "pst_m:acc_1", 1, &out), PL_OK);
        /* deterministic across instances */
        get_metrics(a, EX_METRICS_POST, out.remote_id, T0, T0 + 7 * DAY, &m1);
        get_metrics(b, EX_METRICS_POST, out.remote_id, T0, T0 + 7 * DAY, &m2);
        assert_memory_equal(&m1, &m2, sizeof m1);
        assert_int_equal(m1.platform, p);
        assert_true(m1.native_count > 0);
        assert_true(m1.present[EX_METRIC_IMPRESSIONS]);
        assert_true(m1.value[EX_METRIC_IMPRESSIONS] > 0);
        assert_true(m1.present[EX_METRIC_ENGAGEMENTS]);
        assert_false(m1.present[EX_METRIC_FOLLOWERS]); /* a post has no followers */
        if (m1.present[EX_METRIC_REACH])
            assert_true(m1.value[EX_METRIC_REACH] <= m1.value[EX_METRIC_IMPRESSIONS]);
        /* flows add up over adjacent day-aligned periods */
        get_metrics(a, EX_METRICS_POST, out.remote_id, T0, T0 + 3 * DAY, &m3);
        get_metrics(a, EX_METRICS_POST, out.remote_id, T0 + 3 * DAY, T0 + 7 * DAY, &m4);
        for (size_t i = 0; i < m1.native_count; i++)
            assert_int_equal(m1.native[i].value, m3.native[i].value + m4.native[i].value);
        /* periods snap to whole UTC days */
        get_metrics(a, EX_METRICS_POST, out.remote_id, T0 + 3600000, T0 + 2 * DAY - 1, &m3);
        assert_int_equal(m3.from_ms, T0);
        assert_int_equal(m3.to_ms, T0 + 2 * DAY);
        /* another post differs */
        assert_int_equal(publish(a, &g, "pst_n:acc_1", 1, &out), PL_OK);
        get_metrics(a, EX_METRICS_POST, out.remote_id, T0, T0 + 7 * DAY, &m2);
        assert_memory_not_equal(m1.native, m2.native, sizeof m1.native);
        /* accounts report followers, which never fall */
        get_metrics(a, EX_METRICS_ACCOUNT, "acc_1", T0, T0 + DAY, &m3);
        get_metrics(a, EX_METRICS_ACCOUNT, "acc_1", T0 + 30 * DAY, T0 + 31 * DAY, &m4);
        /* Google Business Profile locations have no followers */
        assert_int_equal(m3.present[EX_METRIC_FOLLOWERS], p != EX_PLATFORM_GOOGLE_BUSINESS);
        assert_true(m4.value[EX_METRIC_FOLLOWERS] >= m3.value[EX_METRIC_FOLLOWERS]);
        ex_connector_free(a);
        ex_connector_free(b);
    }
    /* X: native names, and engagements is the sum of the interactions */
    ex_connector *x = new_sandbox(EX_PLATFORM_X, NULL);
    tgt g;
    ex_outcome out;
    ex_metrics m;
    make_target(&g, EX_PLATFORM_X, NULL);
    assert_int_equal(publish(x, &g, "pst_x:acc_1", 1, &out), PL_OK);
    get_metrics(x, EX_METRICS_POST, out.remote_id, T0, T0 + DAY, &m);
    assert_int_equal(m.value[EX_METRIC_IMPRESSIONS], native(&m, "impression_count"));
    assert_int_equal(m.value[EX_METRIC_SHARES],
                     native(&m, "retweet_count") + native(&m, "quote_count"));
    assert_int_equal(m.value[EX_METRIC_ENGAGEMENTS],
                     m.value[EX_METRIC_LIKES] + m.value[EX_METRIC_COMMENTS] +
                         m.value[EX_METRIC_SHARES] + m.value[EX_METRIC_SAVES] +
                         m.value[EX_METRIC_CLICKS]);
    assert_false(m.present[EX_METRIC_VIDEO_VIEWS]);
    assert_int_equal(native(&m, "followers_count"), -1);
    /* a bad post id */
    ex_metrics_req bad = {EX_METRICS_POST, "nope", NULL, NULL, T0, T0 + DAY};
    assert_int_equal(ex_connector_metrics(x, &bad, &m), PL_ERR_INVALID);
    ex_connector_free(x);
    /* Google Business: searches and calls, no likes */
    ex_connector *gbp = new_sandbox(EX_PLATFORM_GOOGLE_BUSINESS, NULL);
    get_metrics(gbp, EX_METRICS_ACCOUNT, "acc_1", T0, T0 + DAY, &m);
    assert_false(m.present[EX_METRIC_LIKES]);
    assert_true(native(&m, "CALL_CLICKS") >= 0);
    assert_int_equal(m.value[EX_METRIC_IMPRESSIONS],
                     native(&m, "BUSINESS_IMPRESSIONS_DESKTOP_MAPS") +
                         native(&m, "BUSINESS_IMPRESSIONS_DESKTOP_SEARCH") +
                         native(&m, "BUSINESS_IMPRESSIONS_MOBILE_MAPS") +
                         native(&m, "BUSINESS_IMPRESSIONS_MOBILE_SEARCH"));
    ex_connector_free(gbp);
}

/* ---- the journal ---- */

static void test_journal_across_instances_and_processes(void **state)
{
    (void)state;
    char dir[256];
    th_tmpdir(dir, sizeof dir);
    tgt g;
    ex_outcome out;
    uint32_t n = 0;
    make_target(&g, EX_PLATFORM_PINTEREST, NULL);

    ex_connector *c = new_sandbox(EX_PLATFORM_PINTEREST, dir);
    assert_int_equal(publish(c, &g, "pst_j:acc_1", 1, &out), PL_OK);
    char id[EX_REMOTE_ID_MAX];
    snprintf(id, sizeof id, "%s", out.remote_id);
    assert_int_equal(ex_connector_delete_remote(c, id, T0), PL_OK);
    ex_connector_free(c);

    /* a child process publishes the same target again and is killed */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ex_connector *cc = NULL;
        ex_sandbox_options o = {dir, 0};
        ex_outcome o2;
        if (ex_sandbox_new(EX_PLATFORM_PINTEREST, &o, &cc) != PL_OK)
            _exit(2);
        ex_publish_req req = {"pst_j:acc_1", 2, T0};
        if (ex_connector_publish(cc, &g.t, &req, &o2) != PL_OK)
            _exit(3);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    c = new_sandbox(EX_PLATFORM_PINTEREST, dir);
    assert_int_equal(ex_sandbox_landings(c, "pst_j:acc_1", &n), PL_OK);
    assert_int_equal(n, 2); /* the platform saw it published twice */
    ex_remote_status st;
    ex_status_req r = {id, NULL, NULL, T0};
    assert_int_equal(ex_connector_status(c, &r, &st), PL_OK);
    assert_int_equal(st.state, EX_REMOTE_DELETED);
    ex_connector_free(c);

    /* a torn last line is ignored; a corrupt line is refused */
    char path[512];
    snprintf(path, sizeof path, "%s/sandbox-pinterest.journal", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "L 0123", 6), 6);
    close(fd);
    c = new_sandbox(EX_PLATFORM_PINTEREST, dir);
    assert_int_equal(ex_sandbox_landings(c, "pst_j:acc_1", &n), PL_OK);
    assert_int_equal(n, 2);
    ex_connector_free(c);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "X zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n", 35), 35);
    close(fd);
    ex_sandbox_options o = {dir, 0};
    assert_int_equal(ex_sandbox_new(EX_PLATFORM_PINTEREST, &o, &c), PL_ERR_PARSE);
    assert_null(c);
    /* an unusable directory */
    ex_sandbox_options bad = {"/nonexistent/postly/sandbox", 0};
    assert_int_equal(ex_sandbox_new(EX_PLATFORM_X, &bad, &c), PL_ERR_IO);
    th_rmtree(dir);
}

/* ---- threads ---- */

typedef struct worker {
    const ex_connector *c;
    int id;
} worker;

static void *publish_many(void *arg)
{
    worker *w = arg;
    tgt g;
    make_target(&g, EX_PLATFORM_FACEBOOK, NULL);
    for (int i = 0; i < 500; i++) {
        char key[32];
        ex_outcome out;
        ex_publish_req req = {key, 1, T0};
        snprintf(key, sizeof key, "k%d", i % 50);
        if (ex_connector_publish(w->c, &g.t, &req, &out) != PL_OK ||
            out.kind != EX_OUTCOME_PUBLISHED)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_publishing(void **state)
{
    (void)state;
    ex_connector *c = new_sandbox(EX_PLATFORM_FACEBOOK, NULL);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){c, i};
        assert_int_equal(pthread_create(&th[i], NULL, publish_many, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    uint32_t total = 0;
    for (int k = 0; k < 50; k++) {
        char key[32];
        uint32_t n = 0;
        snprintf(key, sizeof key, "k%d", k);
        assert_int_equal(ex_sandbox_landings(c, key, &n), PL_OK);
        total += n;
    }
    assert_int_equal(total, 4 * 500);
    ex_connector_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_outcome_every_platform),
        cmocka_unit_test(test_repeat_counts_by_attempt),
        cmocka_unit_test(test_markers_in_title_and_bad_markers),
        cmocka_unit_test(test_deterministic_ids_and_shapes),
        cmocka_unit_test(test_status_and_delete),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_journal_across_instances_and_processes),
        cmocka_unit_test(test_concurrent_publishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
