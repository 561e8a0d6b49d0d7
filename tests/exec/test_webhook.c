/* tests/exec/test_webhook.c — webhooks: signing vectors and verification, subscriptions and
 * their URL policy, the transactional outbox, and delivery to real loopback receivers (evhttp
 * on 127.0.0.1 port 0 in the test's own event loop): retry after a 500 with the fake clock,
 * a dead receiver, a slow receiver that never blocks enqueueing, a receiver timeout, two
 * dispatchers claiming one queue, a claim that outlives its dispatcher, deleted/disabled
 * webhooks (https over TLS: test_webhook_tls.c). No sleeps: the loop runs until the dispatcher has
 * nothing in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "exec/store.h"
#include "exec/webhook.h"
#include "tests/exec/helpers.h"

#define T0 1795910400000LL /* 2026-11-29T00:00:00Z */
#define WS "wsp_acme"

/* ---- fixture ---- */

typedef struct fx {
    th_env env; /* store, fake clock, ctx (tests/exec/helpers.h) */
    struct event_base *base;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    th_env_open(&f->env);
    core_fake_clock_init(&f->env.clock, T0);
    f->base = event_base_new();
    assert_non_null(f->base);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    event_base_free(f->base);
    th_env_free(&f->env);
    free(f);
    return 0;
}

static const ex_webhook_url_policy dev = {1};

/* Creates a webhook; returns its id and secret. */
static void create_hook(fx *f, const char *ws, const char *url, const char *events_json, char *id,
                        char *secret)
{
    json_error_t je;
    json_t *events = json_loads(events_json, 0, &je);
    json_t *args = json_pack("{s:s, s:o}", "url", url, "events", events);
    json_t *out = NULL;
    ex_err err = {0};
    pl_rc rc = ex_webhook_create(&f->env.ctx, ws, args, &dev, &out, &err);
    if (rc != PL_OK)
        fail_msg("create %s: %s", url, err.msg);
    snprintf(id, EX_ID_MAX, "%s", json_string_value(json_object_get(out, "id")));
    if (secret)
        snprintf(secret, EX_WEBHOOK_SECRET_SIZE, "%s",
                 json_string_value(json_object_get(out, "secret")));
    json_decref(out);
    json_decref(args);
}

static void enqueue(fx *f, const char *ws, const char *type, const char *post_id)
{
    ex_txn txn;
    json_t *data = json_pack("{s:s, s:s}", "post_id", post_id, "status", "published");
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, ws, type, data), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(data);
}

static json_t *deliveries(fx *f, const char *webhook_id)
{
    json_t *args = webhook_id ? json_pack("{s:s, s:i}", "webhook_id", webhook_id, "limit", 100)
                              : json_pack("{s:i}", "limit", 100);
    json_t *out = NULL;
    ex_err err = {0};
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, args, &out, &err), PL_OK);
    json_decref(args);
    return out;
}

static json_t *first_delivery(json_t *list)
{
    return json_array_get(json_object_get(list, "items"), 0);
}

/* ---- a loopback receiver ---- */

typedef struct receiver {
    struct evhttp *http;
    int port;
    char secret[EX_WEBHOOK_SECRET_SIZE];
    core_fake_clock *clock;
    int codes[8]; /* answers in order; the last repeats */
    int ncodes;
    int slow; /* never answer (the request is kept in `held`) */
    struct evhttp_request *held;
    const char *retry_after; /* sent with every non-200 answer when set */
    int count, bad_sig;
    char ids[64][EX_ID_MAX];
    char last_ts[32];
    char last_body[4096];
} receiver;

static void on_hook(struct evhttp_request *req, void *arg)
{
    receiver *r = arg;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[4096];
    const char *id = evhttp_find_header(h, "Postly-Webhook-Id");
    const char *ts = evhttp_find_header(h, "Postly-Webhook-Timestamp");
    const char *sig = evhttp_find_header(h, "Postly-Webhook-Signature");
    const char *ct = evhttp_find_header(h, "Content-Type");
    if (len >= sizeof body)
        len = sizeof body - 1;
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    if (!id || !ts || !sig || !ct || strcmp(ct, "application/json") != 0 ||
        evhttp_request_get_command(req) != EVHTTP_REQ_POST ||
        ex_webhook_verify_signature(r->secret, ts, sig, body, len,
                                    core_clock_now_s(&r->clock->base), 300) != PL_OK)
        r->bad_sig++;
    if (r->count < 64)
        snprintf(r->ids[r->count], EX_ID_MAX, "%s", id ? id : "");
    snprintf(r->last_ts, sizeof r->last_ts, "%s", ts ? ts : "");
    snprintf(r->last_body, sizeof r->last_body, "%s", body);
    int code = r->codes[r->count < r->ncodes ? r->count : r->ncodes - 1];
    r->count++;
    if (r->slow) {
        r->held = req; /* the test answers it, or the client times out and evhttp frees it */
        return;
    }
    if (r->retry_after && code != 200)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", r->retry_after);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", NULL);
}

static void receiver_start(fx *f, receiver *r, const int *codes, int ncodes)
{
    memset(r, 0, sizeof *r);
    r->clock = &f->env.clock;
    memcpy(r->codes, codes, sizeof(int) * (size_t)ncodes);
    r->ncodes = ncodes;
    r->http = evhttp_new(f->base);
    assert_non_null(r->http);
    evhttp_set_gencb(r->http, on_hook, r);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl), 0);
    r->port = ntohs(sa.sin_port);
}

static void receiver_url(const receiver *r, char *buf, size_t n)
{
    snprintf(buf, n, "http://127.0.0.1:%d/hooks/postly?src=test", r->port);
}

/* A receiver answering codes in turn, its URL into url, and a webhook of WS for events_json
 * pointing at it (id and the receiver's secret filled in). */
static void hooked_receiver(fx *f, receiver *r, const int *codes, int ncodes,
                            const char *events_json, char *url, size_t urlsz, char *id)
{
    receiver_start(f, r, codes, ncodes);
    receiver_url(r, url, urlsz);
    create_hook(f, WS, url, events_json, id, r->secret);
}

/* A dispatcher over the fixture's store and fake clock. */
static void new_dispatcher(fx *f, const ex_webhook_options *o, ex_webhook_dispatcher **d)
{
    assert_int_equal(ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, o, d),
                     PL_OK);
}

/* A port nobody listens on: bound (so no parallel test and no outgoing connection can take
 * it) but not listening, so connecting is refused. Close *fd when done. */
static int dead_port(int *fd)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &sl), 0);
    return ntohs(sa.sin_port);
}

static ex_webhook_options test_options(void)
{
    ex_webhook_options o;
    ex_webhook_options_default(&o);
    o.timeout_ms = 5000;
    o.max_attempts = 3;
    o.backoff_base_ms = 1000;
    o.backoff_max_ms = 8000;
    o.poll_ms = 3600000LL; /* the tests kick explicitly */
    o.lease_ms = 1000;
    return o;
}

static void run_until_idle(fx *f, ex_webhook_dispatcher *d)
{
    while (ex_webhook_dispatcher_in_flight(d) > 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* let the reaper run */
}

/* ---- signatures ---- */

static void test_signing_vectors(void **state)
{
    (void)state;
    char sig[80];
    const char *body = "{\"a\":1}";
    /* Computed independently: python3 hmac.new(b"whsec_test", b'1700000000.{"a":1}', sha256) */
    assert_int_equal(ex_webhook_sign("whsec_test", 1700000000, body, strlen(body), sig, sizeof sig),
                     PL_OK);
    assert_string_equal(sig, "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", sig, body,
                                                 strlen(body), 1700000010, 300),
                     PL_OK);
    /* A second vector: a secret of the real shape, UTF-8 in the body (signed as bytes). */
    const char *body2 =
        "{\"id\":\"evt_1\",\"type\":\"post.published\",\"data\":{\"text\":\"h\xc3\xa9llo "
        "\xe2\x9c\x93\"}}";
    const char *secret2 = "whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FHAbCdEfGhIjK";
    char sig2[80];
    assert_int_equal(ex_webhook_sign(secret2, 1795910400, body2, strlen(body2), sig2, sizeof sig2),
                     PL_OK);
    assert_string_equal(sig2,
                        "v1=b1878ef67ce556b2582aa7e3b6762276aae5a459df84a1229237efad2e035ec5");
    /* another secret, another body, a flipped hex digit */
    assert_int_equal(ex_webhook_verify_signature("whsec_other", "1700000000", sig, body,
                                                 strlen(body), 1700000000, 300),
                     PL_ERR_CRYPTO);
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", sig, "{\"a\":2}", 7,
                                                 1700000000, 300),
                     PL_ERR_CRYPTO);
    char bad[80];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", bad, body,
                                                 strlen(body), 1700000000, 300),
                     PL_ERR_CRYPTO);
    /* the timestamp is signed: moving it breaks the signature */
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000001", sig, body,
                                                 strlen(body), 1700000000, 300),
                     PL_ERR_CRYPTO);
    /* replay window, both directions */
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", sig, body,
                                                 strlen(body), 1700000301, 300),
                     PL_ERR_EXPIRED);
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", sig, body,
                                                 strlen(body), 1699999699, 300),
                     PL_ERR_EXPIRED);
    /* several signatures (secret rotation): any match passes */
    char two[200];
    snprintf(two, sizeof two, "%s %s", bad, sig);
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", two, body,
                                                 strlen(body), 1700000000, 300),
                     PL_OK);
    snprintf(two, sizeof two, "v0=abc,%s", sig);
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", two, body,
                                                 strlen(body), 1700000000, 300),
                     PL_OK);
    /* malformed headers */
    static const char *const bad_sigs[] = {"", "v0=abc", "v1=", "v1=zz", "sha256=abcd"};
    for (size_t i = 0; i < sizeof bad_sigs / sizeof bad_sigs[0]; i++)
        assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", bad_sigs[i], body,
                                                     strlen(body), 1700000000, 300),
                         PL_ERR_INVALID);
    static const char *const bad_ts[] = {"", "17000000x0", "-1", "1700000000.5",
                                         "9999999999999999"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
        assert_int_equal(ex_webhook_verify_signature("whsec_test", bad_ts[i], sig, body,
                                                     strlen(body), 1700000000, 300),
                         PL_ERR_INVALID);
    /* upper-case hex is not the format */
    char upper[80];
    snprintf(upper, sizeof upper, "v1=%s", sig + 3);
    for (char *p = upper + 3; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    assert_int_equal(ex_webhook_verify_signature("whsec_test", "1700000000", upper, body,
                                                 strlen(body), 1700000000, 300),
                     PL_ERR_INVALID);
    assert_int_equal(ex_webhook_sign("", 1, body, 1, sig, sizeof sig), PL_ERR_INVALID);
    assert_int_equal(ex_webhook_sign("k", 1, body, 1, sig, 10), PL_ERR_INVALID);
}

/* ---- subscriptions ---- */

static pl_rc try_create(fx *f, const char *ws, const char *url, json_t *events,
                        const ex_webhook_url_policy *pol, ex_err *err, json_t **out)
{
    json_t *args = json_pack("{s:s, s:o}", "url", url, "events", events);
    pl_rc rc = ex_webhook_create(&f->env.ctx, ws, args, pol, out, err);
    json_decref(args);
    return rc;
}

static void test_subscriptions(void **state)
{
    fx *f = *state;
    ex_err err;
    json_t *out = NULL;
    static const struct {
        const char *url;
        const char *msg;
    } refused[] = {
        {"http://127.0.0.1:8080/x", "url: loopback receivers are only allowed in development"},
        {"https://localhost/x", "url: loopback receivers"},
        {"https://[::1]/x", "url: loopback receivers"},
        {"https://10.1.2.3/x", "url: private, link-local and reserved addresses"},
        {"https://169.254.169.254/latest/meta-data", "url: private, link-local"},
        {"https://192.168.1.1/x", "url: private"},
        {"https://172.20.0.1/x", "url: private"},
        {"https://[fe80::1]/x", "url: private"},
        {"https://[::ffff:10.0.0.1]/x", "url: private"},
        {"https://0.0.0.0/x", "url: private"},
        {"https://127.1/x", "url: loopback receivers"},
        {"https://2130706433/x", "url: loopback receivers"},
        {"https://0x7f000001/x", "url: loopback receivers"},
        {"https://0xa9.254.169.254/x", "url: private"},
        {"https://[::]/x", "url: private"},
        {"https://LOCALHOST/x", "url: loopback receivers"},
        {"https://api.localhost/x", "url: loopback receivers"},
        {"http://example.com/x", "url: must be an https:// URL (http only to a loopback host"},
        {"ftp://example.com/x", "url: must be an https:// URL"},
        {"https://user:pw@example.com/x", "url: must not contain credentials"},
        {"https://example.com/x#frag", "url: must not contain a fragment"},
        {"https://exa mple.com/", "url: must be printable ASCII without spaces (byte 11)"},
        {"/relative/path", "url: must be an https:// URL"},
        {"", "url: must not be empty"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        memset(&err, 0, sizeof err);
        pl_rc rc =
            try_create(f, WS, refused[i].url, json_pack("[s]", "post.published"), NULL, &err, &out);
        if (rc == PL_OK || !strstr(err.msg, refused[i].msg))
            fail_msg("%s: rc %d, \"%s\"", refused[i].url, rc, err.msg);
        assert_null(out);
    }
    /* the development policy admits loopback http, nothing else */
    assert_int_equal(
        try_create(f, WS, "http://127.0.0.1:9/x", json_pack("[s]", "*"), &dev, &err, &out), PL_OK);
    json_decref(out);
    assert_int_equal(
        try_create(f, WS, "http://10.0.0.1/x", json_pack("[s]", "*"), &dev, &err, &out),
        PL_ERR_INVALID);

    static const struct {
        const char *events;
        const char *msg;
    } bad_events[] = {
        {"[]", "events: must be a non-empty array"},
        {"[\"post.nope\"]", "events[0]: unknown event type \"post.nope\""},
        {"[\"post.failed\", \"post.failed\"]", "events[1]: duplicate event type"},
        {"[3]", "events[0]: unknown event type"},
        {"\"post.failed\"", "events: must be a non-empty array"},
    };
    for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++) {
        memset(&err, 0, sizeof err);
        json_t *ev = json_loads(bad_events[i].events, JSON_DECODE_ANY, NULL);
        assert_int_equal(try_create(f, WS, "https://example.com/h", ev, NULL, &err, &out),
                         PL_ERR_INVALID);
        if (!strstr(err.msg, bad_events[i].msg))
            fail_msg("%s: \"%s\"", bad_events[i].events, err.msg);
    }
    json_t *args = json_pack("{s:s, s:[s], s:s}", "url", "https://example.com/h", "events",
                             "post.failed", "colour", "blue");
    assert_int_equal(ex_webhook_create(&f->env.ctx, WS, args, NULL, &out, &err), PL_ERR_INVALID);
    assert_non_null(strstr(err.msg, "colour"));
    json_decref(args);

    /* create: the secret appears once */
    assert_int_equal(try_create(f, WS, "https://hooks.example.com/postly",
                                json_pack("[s,s]", "post.published", "post.failed"), NULL, &err,
                                &out),
                     PL_OK);
    const char *secret = json_string_value(json_object_get(out, "secret"));
    assert_non_null(secret);
    assert_int_equal(strlen(secret), 6 + 43);
    assert_true(strncmp(secret, "whsec_", 6) == 0);
    char id[EX_ID_MAX], first_secret[EX_WEBHOOK_SECRET_SIZE];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
    snprintf(first_secret, sizeof first_secret, "%s", secret);
    assert_true(json_is_true(json_object_get(out, "active")));
    json_decref(out);

    json_t *get = json_pack("{s:s}", "webhook_id", id);
    assert_int_equal(ex_webhook_get(&f->env.ctx, WS, get, &out, &err), PL_OK);
    assert_null(json_object_get(out, "secret"));
    assert_string_equal(json_string_value(json_object_get(out, "url")),
                        "https://hooks.example.com/postly");
    json_decref(out);
    /* another workspace does not see it */
    assert_int_equal(ex_webhook_get(&f->env.ctx, "wsp_other", get, &out, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_webhook_list(&f->env.ctx, WS, NULL, &out, &err), PL_OK);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 2);
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(out, "items"), i, it)
        assert_null(json_object_get(it, "secret"));
    json_decref(out);

    /* update with optimistic concurrency */
    json_t *upd = json_pack("{s:s, s:i, s:[s], s:b}", "webhook_id", id, "expected_version", 1,
                            "events", "media.ready", "active", 0);
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, NULL, &out, &err), PL_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "version")), 2);
    assert_false(json_is_true(json_object_get(out, "active")));
    assert_null(json_object_get(out, "secret"));
    json_decref(out);
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, NULL, &out, &err), PL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "expected_version: 1 but the webhook is at version 2"));
    json_decref(upd);
    upd = json_pack("{s:s, s:s}", "webhook_id", id, "url", "http://127.0.0.1/x");
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, NULL, &out, &err), PL_ERR_INVALID);
    json_decref(upd);

    /* rotation shows a new secret once */
    assert_int_equal(ex_webhook_rotate_secret(&f->env.ctx, WS, get, &out, &err), PL_OK);
    assert_string_not_equal(json_string_value(json_object_get(out, "secret")), first_secret);
    json_decref(out);

    /* delete */
    assert_int_equal(ex_webhook_delete(&f->env.ctx, WS, get, &out, &err), PL_OK);
    assert_true(json_is_true(json_object_get(out, "deleted")));
    json_decref(out);
    assert_int_equal(ex_webhook_get(&f->env.ctx, WS, get, &out, &err), PL_ERR_NOT_FOUND);
    assert_int_equal(ex_webhook_delete(&f->env.ctx, WS, get, &out, &err), PL_ERR_NOT_FOUND);
    json_decref(get);
    get = json_pack("{s:s}", "webhook_id", "whk_nope");
    assert_int_equal(ex_webhook_get(&f->env.ctx, WS, get, &out, &err), PL_ERR_INVALID);
    json_decref(get);

    /* at most EX_WEBHOOKS_PER_WS_MAX per workspace */
    for (int k = 0; k < EX_WEBHOOKS_PER_WS_MAX - 1; k++) {
        assert_int_equal(
            try_create(f, WS, "https://example.com/h", json_pack("[s]", "*"), NULL, &err, &out),
            PL_OK);
        json_decref(out);
    }
    assert_int_equal(
        try_create(f, WS, "https://example.com/h", json_pack("[s]", "*"), NULL, &err, &out),
        PL_ERR_LIMIT);
    assert_int_equal(
        try_create(f, "bad|ws", "https://example.com/h", json_pack("[s]", "*"), NULL, &err, &out),
        PL_ERR_INVALID);
}

/* ---- the outbox ---- */

static void test_enqueue_outbox(void **state)
{
    fx *f = *state;
    char a[EX_ID_MAX], b[EX_ID_MAX], c[EX_ID_MAX];
    create_hook(f, WS, "https://a.example.com/h", "[\"post.published\"]", a, NULL);
    create_hook(f, WS, "https://b.example.com/h", "[\"*\"]", b, NULL);
    create_hook(f, WS, "https://c.example.com/h", "[\"post.published\"]", c, NULL);
    json_t *upd = json_pack("{s:s, s:b}", "webhook_id", c, "active", 0), *out = NULL;
    ex_err err;
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, NULL, &out, &err), PL_OK);
    json_decref(upd);
    json_decref(out);

    enqueue(f, WS, "post.published", "pst_1");
    json_t *l = deliveries(f, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 2); /* a and b, not c */
    json_t *d0 = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(d0, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(d0, "type")), "post.published");
    assert_null(json_object_get(d0, "body"));
    const char *e0 = json_string_value(json_object_get(d0, "event_id"));
    const char *e1 = json_string_value(
        json_object_get(json_array_get(json_object_get(l, "items"), 1), "event_id"));
    assert_string_equal(e0, e1); /* one event, two subscribers */
    json_decref(l);

    core_fake_clock_advance(&f->env.clock, 1); /* ids order by millisecond, then at random */
    enqueue(f, WS, "media.ready", "pst_2");    /* only b wants it */
    l = deliveries(f, a);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    l = deliveries(f, b);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 2);
    /* newest first */
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "type")),
                        "media.ready");
    json_decref(l);

    /* the event exists only if the caller's transaction commits */
    ex_txn txn;
    json_t *data = json_pack("{s:s}", "post_id", "pst_3");
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.failed", data), PL_OK);
    ex_txn_abort(&txn);
    l = deliveries(f, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
    json_decref(l);
    /* bad calls */
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.nope", data), PL_ERR_INVALID);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "*", data), PL_ERR_INVALID);
    json_t *arr = json_array();
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.failed", arr), PL_ERR_INVALID);
    json_decref(arr);
    /* too large */
    char *big = malloc(EX_WEBHOOK_BODY_MAX + 1);
    memset(big, 'x', EX_WEBHOOK_BODY_MAX);
    big[EX_WEBHOOK_BODY_MAX] = '\0';
    json_t *huge = json_pack("{s:s}", "blob", big);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.failed", huge),
                     PL_ERR_TOO_LARGE);
    json_decref(huge);
    free(big);
    /* a workspace without subscribers: nothing written, fine */
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, "wsp_quiet", "post.failed", data),
                     PL_OK);
    ex_txn_abort(&txn);
    assert_int_equal(ex_txn_begin(f->env.st, 0, &txn), PL_OK);
    assert_int_equal(ex_webhook_enqueue(&f->env.ctx, &txn, WS, "post.failed", data),
                     PL_ERR_INVALID);
    ex_txn_abort(&txn);
    json_decref(data);

    /* pagination of the delivery log */
    for (int k = 0; k < 5; k++)
        enqueue(f, WS, "post.failed", "pst_p"); /* b only */
    json_t *args = json_pack("{s:s, s:i}", "webhook_id", b, "limit", 3);
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, args, &l, &err), PL_OK);
    json_decref(args);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
    const char *before = json_string_value(json_object_get(l, "next_before"));
    assert_non_null(before);
    args = json_pack("{s:s, s:i, s:s}", "webhook_id", b, "limit", 3, "before", before);
    json_t *l2 = NULL;
    assert_int_equal(ex_webhook_deliveries(&f->env.ctx, WS, args, &l2, &err), PL_OK);
    json_decref(args);
    assert_int_equal(json_array_size(json_object_get(l2, "items")), 3);
    assert_true(strcmp(json_string_value(json_object_get(first_delivery(l2), "id")), before) < 0);
    json_decref(l);
    json_decref(l2);
}

/* ---- delivery over loopback ---- */

static void test_delivery_retry_with_fake_clock(void **state)
{
    fx *f = *state;
    receiver r;
    static const int codes[] = {500, 200};
    char url[128], id[EX_ID_MAX];
    hooked_receiver(f, &r, codes, 2, "[\"post.published\"]", url, sizeof url, id);
    enqueue(f, WS, "post.published", "pst_42");

    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = -1;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.bad_sig, 0);
    json_t *ev = json_loads(r.last_body, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "id")), r.ids[0]);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "post.published");
    assert_string_equal(json_string_value(json_object_get(ev, "workspace_id")), WS);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"), "post_id")),
                        "pst_42");
    json_decref(ev);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(T0 / 1000));
    assert_string_equal(r.last_ts, ts);

    json_t *l = deliveries(f, id), *dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    assert_int_equal(json_integer_value(json_object_get(dl, "attempts")), 1);
    json_t *a0 = json_array_get(json_object_get(dl, "last"), 0);
    assert_int_equal(json_integer_value(json_object_get(a0, "status_code")), 500);
    assert_string_equal(json_string_value(json_object_get(a0, "error")), "HTTP 500");
    assert_non_null(json_object_get(a0, "latency_ms"));
    json_decref(l);

    /* backoff: 1000 ms +-20%, so nothing before 800 ms and certainly something by 1200 */
    core_fake_clock_advance(&f->env.clock, 799);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    core_fake_clock_advance(&f->env.clock, 401);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.bad_sig, 0);
    assert_string_equal(r.ids[0], r.ids[1]); /* the same event id on every attempt */
    snprintf(ts, sizeof ts, "%lld", (long long)((T0 + 1200) / 1000));
    assert_string_equal(r.last_ts, ts); /* a fresh timestamp per attempt */
    l = deliveries(f, id);
    dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "delivered");
    assert_int_equal(json_integer_value(json_object_get(dl, "attempts")), 2);
    assert_true(json_is_string(json_object_get(dl, "delivered_at")));
    assert_int_equal(json_array_size(json_object_get(dl, "last")), 2);
    json_decref(l);
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.attempts, 2);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.retried, 1);
    assert_int_equal(s.failed, 0);
    /* nothing left */
    core_fake_clock_advance(&f->env.clock, 3600000LL);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

static void test_dead_receiver(void **state)
{
    fx *f = *state;
    char url[128], id[EX_ID_MAX], secret[EX_WEBHOOK_SECRET_SIZE];
    int dead_fd;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/gone", dead_port(&dead_fd));
    create_hook(f, WS, url, "[\"post.failed\"]", id, secret);
    enqueue(f, WS, "post.failed", "pst_1");
    ex_webhook_options o = test_options();
    o.max_attempts = 2;
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    json_t *l = deliveries(f, id), *dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    json_t *a0 = json_array_get(json_object_get(dl, "last"), 0);
    assert_int_equal(json_integer_value(json_object_get(a0, "status_code")), 0);
    assert_true(json_is_string(json_object_get(a0, "error")));
    json_decref(l);
    core_fake_clock_advance(&f->env.clock, 1200);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    l = deliveries(f, id);
    dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(dl, "attempts")), 2);
    assert_true(json_is_string(json_object_get(dl, "last_error")));
    json_decref(l);
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.failed, 1);
    core_fake_clock_advance(&f->env.clock, 3600000LL);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    ex_webhook_dispatcher_free(d);
    close(dead_fd);
}

/* A receiver that sits on a request holds one of the dispatcher's slots and nothing else:
 * enqueueing commits at once and the bound holds. The test then answers the held request
 * itself, so the outcome never depends on how fast this process runs (with a real-time
 * timeout racing 21 sequential requests, a loaded machine once made this test fail). */
static void test_slow_receiver_never_blocks(void **state)
{
    fx *f = *state;
    receiver slow, fast;
    static const int ok[] = {200};
    char url[128], slow_id[EX_ID_MAX], fast_id[EX_ID_MAX];
    receiver_start(f, &slow, ok, 1);
    slow.slow = 1;
    receiver_start(f, &fast, ok, 1);
    receiver_url(&slow, url, sizeof url);
    create_hook(f, WS, url, "[\"post.failed\"]", slow_id, slow.secret);
    receiver_url(&fast, url, sizeof url);
    create_hook(f, WS, url, "[\"post.published\"]", fast_id, fast.secret);

    ex_webhook_options o = test_options();
    o.max_in_flight = 1;
    o.timeout_ms = 600000; /* never reached: the test answers the held request */
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    enqueue(f, WS, "post.failed", "pst_slow");
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    /* the request reaches the receiver, which sits on it */
    while (slow.count == 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(ex_webhook_dispatcher_in_flight(d), 1);
    /* meanwhile publishing goes on: every enqueue commits at once */
    for (int i = 0; i < 20; i++)
        enqueue(f, WS, "post.published", "pst_fast");
    /* and the dispatcher keeps to its bound */
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(fast.count, 0);
    assert_int_equal(ex_webhook_dispatcher_in_flight(d), 1);
    /* the slow one finally answers; then the 20 others go through one at a time */
    assert_non_null(slow.held);
    evhttp_send_reply(slow.held, 200, "OK", NULL);
    slow.held = NULL;
    ex_webhook_stats s;
    do {
        event_base_loop(f->base, EVLOOP_ONCE);
        ex_webhook_dispatcher_stats(d, &s);
    } while (s.attempts < 21);
    run_until_idle(f, d);
    assert_int_equal(fast.count, 20);
    assert_int_equal(fast.bad_sig, 0);
    assert_int_equal(slow.count, 1);
    assert_int_equal(s.delivered, 21);
    ex_webhook_dispatcher_free(d);
    evhttp_free(slow.http);
    evhttp_free(fast.http);
}

/* A receiver that never answers: the attempt ends with "timeout" after timeout_ms (real
 * time; whether the request reached the receiver first or not, no answer ever comes) and is
 * retried later. */
static void test_receiver_timeout(void **state)
{
    fx *f = *state;
    receiver slow;
    static const int ok[] = {200};
    char url[128], id[EX_ID_MAX];
    receiver_start(f, &slow, ok, 1);
    slow.slow = 1;
    receiver_url(&slow, url, sizeof url);
    create_hook(f, WS, url, "[\"post.failed\"]", id, slow.secret);
    ex_webhook_options o = test_options();
    o.timeout_ms = 200;
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    enqueue(f, WS, "post.failed", "pst_slow");
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    json_t *l = deliveries(f, id), *dl = first_delivery(l);
    json_t *a0 = json_array_get(json_object_get(dl, "last"), 0);
    assert_string_equal(json_string_value(json_object_get(a0, "error")), "timeout");
    assert_int_equal(json_integer_value(json_object_get(a0, "status_code")), 0);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    json_decref(l);
    ex_webhook_dispatcher_free(d);
    evhttp_free(slow.http);
}

static void test_two_dispatchers_claim_once(void **state)
{
    fx *f = *state;
    receiver r;
    static const int ok[] = {200};
    char url[128], id[EX_ID_MAX];
    hooked_receiver(f, &r, ok, 1, "[\"*\"]", url, sizeof url, id);
    for (int i = 0; i < 7; i++)
        enqueue(f, WS, "post.scheduled", "pst_s");
    ex_webhook_options o = test_options();
    o.max_in_flight = 2;
    ex_webhook_dispatcher *d1 = NULL, *d2 = NULL;
    int s1 = 0, s2 = 0;
    new_dispatcher(f, &o, &d1);
    new_dispatcher(f, &o, &d2);
    assert_int_equal(ex_webhook_dispatcher_kick(d1, &s1), PL_OK);
    assert_int_equal(ex_webhook_dispatcher_kick(d2, &s2), PL_OK);
    assert_int_equal(s1, 2);
    assert_int_equal(s2, 2);
    ex_webhook_stats a, b;
    do {
        event_base_loop(f->base, EVLOOP_ONCE);
        ex_webhook_dispatcher_stats(d1, &a);
        ex_webhook_dispatcher_stats(d2, &b);
    } while (a.delivered + b.delivered < 7);
    run_until_idle(f, d1);
    run_until_idle(f, d2);
    assert_int_equal(r.count, 7); /* every event once, none twice */
    for (int i = 0; i < r.count; i++)
        for (int k = 0; k < i; k++)
            assert_string_not_equal(r.ids[i], r.ids[k]);
    ex_webhook_dispatcher_free(d1);
    ex_webhook_dispatcher_free(d2);
    evhttp_free(r.http);
}

static void test_claim_outlives_dispatcher(void **state)
{
    fx *f = *state;
    receiver r;
    static const int ok[] = {200};
    char url[128], id[EX_ID_MAX];
    hooked_receiver(f, &r, ok, 1, "[\"post.published\"]", url, sizeof url, id);
    enqueue(f, WS, "post.published", "pst_1");
    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    ex_webhook_dispatcher_free(d); /* "crashes" with the request in flight */
    json_t *l = deliveries(f, id);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "status")),
                        "delivering");
    json_decref(l);
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0); /* still leased */
    core_fake_clock_advance(&f->env.clock, o.timeout_ms + o.lease_ms);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    l = deliveries(f, id);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "status")),
                        "delivered");
    json_decref(l);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

static void test_deleted_disabled_and_tls(void **state)
{
    fx *f = *state;
    char a[EX_ID_MAX], b[EX_ID_MAX], url[128];
    int dead_fd;
    snprintf(url, sizeof url, "https://127.0.0.1:%d/a", dead_port(&dead_fd));
    create_hook(f, WS, url, "[\"post.failed\"]", a, NULL);
    create_hook(f, WS, "https://hooks.example.com/b", "[\"post.published\"]", b, NULL);
    enqueue(f, WS, "post.failed", "pst_1");
    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    /* https to a receiver that refuses connections: recorded, retried later (TLS itself:
     * test_webhook_tls.c) */
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    json_t *l = deliveries(f, a), *dl = first_delivery(l);
    const char *e = json_string_value(json_object_get(dl, "last_error"));
    assert_non_null(e);
    assert_true(strncmp(e, "tls:", 4) != 0); /* a socket error, not a TLS one */
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "pending");
    json_decref(l);
    /* the webhook is deleted before the retry */
    json_t *args = json_pack("{s:s}", "webhook_id", a), *out = NULL;
    ex_err err;
    assert_int_equal(ex_webhook_delete(&f->env.ctx, WS, args, &out, &err), PL_OK);
    json_decref(args);
    json_decref(out);
    core_fake_clock_advance(&f->env.clock, 60000LL);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    l = deliveries(f, a);
    dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(dl, "last_error")), "webhook deleted");
    json_decref(l);
    /* a disabled webhook */
    enqueue(f, WS, "post.published", "pst_2");
    args = json_pack("{s:s, s:b}", "webhook_id", b, "active", 0);
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, args, NULL, &out, &err), PL_OK);
    json_decref(args);
    json_decref(out);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    l = deliveries(f, b);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "last_error")),
                        "webhook disabled");
    json_decref(l);
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.failed, 2);
    ex_webhook_dispatcher_free(d);
    /* bad options */
    o.max_in_flight = 0;
    assert_int_equal(
        ex_webhook_dispatcher_new(f->base, f->env.st, &f->env.clock.base, NULL, &o, &d),
        PL_ERR_INVALID);
    close(dead_fd);
}

static void test_retention_purge(void **state)
{
    fx *f = *state;
    receiver r;
    static const int ok[] = {200};
    char url[128], a[EX_ID_MAX], b[EX_ID_MAX], c[EX_ID_MAX];
    hooked_receiver(f, &r, ok, 1, "[\"post.published\"]", url, sizeof url, a);
    create_hook(f, WS, "https://hooks.example.com/b", "[\"post.failed\"]", b, NULL);
    create_hook(f, WS, "https://hooks.example.com/c", "[\"media.ready\"]", c, NULL);
    enqueue(f, WS, "post.published", "pst_1"); /* a: will be delivered */
    enqueue(f, WS, "post.failed", "pst_2");    /* b: fails at once (no TLS, one attempt) */
    ex_webhook_options o = test_options();
    o.max_attempts = 1;
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 2);
    run_until_idle(f, d);
    enqueue(f, WS, "media.ready", "med_1"); /* c: stays pending (no kick) */
    json_t *l = deliveries(f, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
    json_decref(l);

    char resume[EX_KEY_MAX + 1] = "";
    size_t n = 0, total = 0;
    /* nothing is old enough yet */
    assert_int_equal(ex_webhook_purge(f->env.st, T0 - 1, 100, resume, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_string_equal(resume, "");
    /* ten days later, in steps of one record */
    core_fake_clock_advance(&f->env.clock, 10LL * 24 * 3600 * 1000);
    int calls = 0;
    do {
        assert_int_equal(
            ex_webhook_purge(f->env.st,
                             core_clock_now_ms(&f->env.clock.base) - 5LL * 24 * 3600 * 1000, 1,
                             resume, &n),
            PL_OK);
        total += n;
        calls++;
    } while (resume[0] && calls < 10);
    assert_int_equal(total, 2);
    assert_true(calls >= 3); /* the walk really went one record at a time */
    l = deliveries(f, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "webhook_id")), c);
    json_decref(l);
    assert_int_equal(ex_webhook_purge(f->env.st, 0, 0, resume, &n), PL_ERR_INVALID);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

static void test_send_test_and_gone(void **state)
{
    fx *f = *state;
    receiver r;
    static const int gone[] = {410};
    char url[128], id[EX_ID_MAX];
    ex_err err;
    json_t *out = NULL;
    hooked_receiver(f, &r, gone, 1, "[\"post.failed\"]", url, sizeof url, id);
    json_t *args = json_pack("{s:s}", "webhook_id", id);
    assert_int_equal(ex_webhook_send_test(&f->env.ctx, WS, args, &out, &err), PL_OK);
    char dlv[EX_ID_MAX];
    snprintf(dlv, sizeof dlv, "%s", json_string_value(json_object_get(out, "delivery_id")));
    json_decref(out);
    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.bad_sig, 0);
    json_t *ev = json_loads(r.last_body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "webhook.test");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "data"), "webhook_id")), id);
    json_decref(ev);
    /* 410 Gone: failed at once (no retry), and the subscription is disabled */
    json_t *l = deliveries(f, id);
    json_t *dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "id")), dlv);
    assert_string_equal(json_string_value(json_object_get(dl, "status")), "failed");
    assert_int_equal(json_integer_value(json_object_get(dl, "attempts")), 1);
    json_decref(l);
    assert_int_equal(ex_webhook_get(&f->env.ctx, WS, args, &out, &err), PL_OK);
    assert_false(json_is_true(json_object_get(out, "active")));
    assert_string_equal(json_string_value(json_object_get(out, "disabled_reason")),
                        "the receiver answered 410 Gone");
    json_decref(out);
    enqueue(f, WS, "post.failed", "pst_1"); /* nobody listens now */
    l = deliveries(f, id);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
    json_decref(l);
    assert_int_equal(ex_webhook_send_test(&f->env.ctx, WS, args, &out, &err), PL_ERR_STATE);
    /* re-enabled by its owner */
    json_t *upd = json_pack("{s:s, s:b}", "webhook_id", id, "active", 1);
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, NULL, &out, &err), PL_OK);
    assert_true(json_is_true(json_object_get(out, "active")));
    assert_null(json_object_get(out, "disabled_reason"));
    json_decref(out);
    json_decref(upd);
    /* other workspaces and bad ids */
    assert_int_equal(ex_webhook_send_test(&f->env.ctx, "wsp_other", args, &out, &err),
                     PL_ERR_NOT_FOUND);
    json_decref(args);
    args = json_pack("{s:s}", "webhook_id", "nope");
    assert_int_equal(ex_webhook_send_test(&f->env.ctx, WS, args, &out, &err), PL_ERR_INVALID);
    json_decref(args);
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.failed, 1);
    assert_int_equal(s.retried, 0);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

/* Eight requests in flight whose answers are recorded together (the reaper records every
 * answer that came in since it last ran in one transaction): mixed outcomes stay exact. */
static void test_concurrent_answers(void **state)
{
    fx *f = *state;
    receiver r;
    static const int codes[] = {500, 500, 500, 500, 200};
    char url[128], id[EX_ID_MAX];
    hooked_receiver(f, &r, codes, 5, "[\"post.published\"]", url, sizeof url, id);
    for (int i = 0; i < 8; i++)
        enqueue(f, WS, "post.published", "pst_c");
    ex_webhook_options o = test_options();
    o.max_in_flight = 8;
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 8);
    run_until_idle(f, d);
    ex_webhook_stats s;
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.attempts, 8);
    assert_int_equal(s.delivered, 4);
    assert_int_equal(s.retried, 4);
    core_fake_clock_advance(&f->env.clock, 1200);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 4);
    run_until_idle(f, d);
    ex_webhook_dispatcher_stats(d, &s);
    assert_int_equal(s.attempts, 12);
    assert_int_equal(s.delivered, 8);
    assert_true(s.record_txns >= 1 && s.record_txns <= 12);
    print_message("12 answers recorded in %llu transactions\n", (unsigned long long)s.record_txns);
    assert_int_equal(r.count, 12);
    assert_int_equal(r.bad_sig, 0);
    json_t *l = deliveries(f, id), *it;
    size_t i, two = 0;
    json_array_foreach(json_object_get(l, "items"), i, it)
    {
        assert_string_equal(json_string_value(json_object_get(it, "status")), "delivered");
        two += json_integer_value(json_object_get(it, "attempts")) == 2;
    }
    assert_int_equal(two, 4);
    json_decref(l);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

/* A 429 with Retry-After: the next attempt waits for it, not just for the backoff. */
static void test_retry_after(void **state)
{
    fx *f = *state;
    receiver r;
    static const int codes[] = {429, 503, 200};
    char url[128], id[EX_ID_MAX];
    receiver_start(f, &r, codes, 3);
    r.retry_after = "5";
    receiver_url(&r, url, sizeof url);
    create_hook(f, WS, url, "[\"post.published\"]", id, r.secret);
    enqueue(f, WS, "post.published", "pst_r");
    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    run_until_idle(f, d);
    core_fake_clock_advance(&f->env.clock, 1200); /* the backoff alone would be over */
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    core_fake_clock_advance(&f->env.clock, 3800); /* 5 s after the answer */
    /* the second answer (503) asks for a day: capped at backoff_max_ms (8 s here) */
    r.retry_after = "86400";
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    core_fake_clock_advance(&f->env.clock, 5000);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 0);
    core_fake_clock_advance(&f->env.clock, 3000);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    assert_int_equal(r.count, 3);
    json_t *l = deliveries(f, id);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "status")),
                        "delivered");
    json_decref(l);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

/* A host name is resolved by the dispatcher, and every address it leads to must be allowed:
 * "localhost" registered in development is delivered; the same subscription stripped of its
 * loopback permission (a public name re-pointed at 127.0.0.1: DNS rebinding) is refused
 * before any connection. */
static void test_resolved_names_are_checked(void **state)
{
    fx *f = *state;
    receiver r;
    static const int ok[] = {200};
    char url[128], id[EX_ID_MAX];
    receiver_start(f, &r, ok, 1);
    snprintf(url, sizeof url, "http://localhost:%d/hook", r.port);
    create_hook(f, WS, url, "[\"post.published\"]", id, r.secret);
    enqueue(f, WS, "post.published", "pst_1");
    ex_webhook_options o = test_options();
    ex_webhook_dispatcher *d = NULL;
    int started = 0;
    new_dispatcher(f, &o, &d);
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    run_until_idle(f, d);
    assert_int_equal(r.count, 1);
    json_t *l = deliveries(f, id);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "status")),
                        "delivered");
    json_decref(l);

    /* the rebinding case: the stored subscription may not reach loopback */
    char key[EX_KEY_MAX + 1];
    ex_txn txn;
    json_t *w = NULL;
    snprintf(key, sizeof key, "%s|whk|%s", WS, id);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_WEBHOOKS, key, &w), PL_OK);
    assert_true(json_is_true(json_object_get(w, "allow_loopback")));
    json_object_set_new(w, "allow_loopback", json_false());
    assert_int_equal(ex_txn_put_json(&txn, EX_DB_WEBHOOKS, key, w), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(w);
    core_fake_clock_advance(&f->env.clock, 1);
    enqueue(f, WS, "post.published", "pst_2");
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    run_until_idle(f, d);
    assert_int_equal(r.count, 1); /* nothing reached the receiver */
    l = deliveries(f, id);
    json_t *dl = first_delivery(l);
    assert_string_equal(json_string_value(json_object_get(dl, "last_error")),
                        "the receiver's address is not public (SSRF guard)");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(dl, "last"), 0), "status_code")),
                     0);
    json_decref(l);
    /* the same for a literal address */
    json_t *upd = json_pack("{s:s, s:s}", "webhook_id", id, "url", "http://127.0.0.1:9/x"), *out;
    ex_err err;
    assert_int_equal(ex_webhook_update(&f->env.ctx, WS, upd, &dev, &out, &err), PL_OK);
    json_decref(out);
    json_decref(upd);
    assert_int_equal(ex_txn_begin(f->env.st, 1, &txn), PL_OK);
    assert_int_equal(ex_txn_get_json(&txn, EX_DB_WEBHOOKS, key, &w), PL_OK);
    json_object_set_new(w, "allow_loopback", json_false());
    assert_int_equal(ex_txn_put_json(&txn, EX_DB_WEBHOOKS, key, w), PL_OK);
    assert_int_equal(ex_txn_commit(&txn), PL_OK);
    json_decref(w);
    core_fake_clock_advance(&f->env.clock, 1);
    enqueue(f, WS, "post.published", "pst_3");
    assert_int_equal(ex_webhook_dispatcher_kick(d, &started), PL_OK);
    assert_int_equal(started, 1);
    assert_int_equal(ex_webhook_dispatcher_in_flight(d), 0); /* refused before connecting */
    l = deliveries(f, id);
    assert_string_equal(json_string_value(json_object_get(first_delivery(l), "last_error")),
                        "the receiver's address is not public (SSRF guard)");
    json_decref(l);
    ex_webhook_dispatcher_free(d);
    evhttp_free(r.http);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signing_vectors),
        cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_retry_with_fake_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_receiver_never_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_dispatchers_claim_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_outlives_dispatcher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_disabled_and_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_test_and_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolved_names_are_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
