/* tests/core/test_http.c — core/http.h over real loopback sockets on port 0, driven by the
 * in-process client of core/http_client.h on the same event base. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/http.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/http.h"
#include "core/http_client.h"

typedef struct fixture {
    struct event_base *base;
    core_http *http;
    core_log log;
    int calls;
    core_http_req *parked; /* a deferred request */
} fixture;

static void h_hello(core_http_req *req, void *arg)
{
    fixture *fx = arg;
    json_t *o = json_object();
    fx->calls++;
    json_object_set_new(o, "path", json_string(core_http_path(req)));
    json_object_set_new(o, "query", json_string(core_http_query(req)));
    json_object_set_new(o, "addr", json_string(core_http_client_addr(req)));
    json_object_set_new(o, "method", json_integer(core_http_method(req)));
    core_http_reply_json(req, 200, o);
}

static void h_form(core_http_req *req, void *arg)
{
    core_form f;
    core_form_error e;
    pl_rc rc = core_http_form_parse(req, NULL, &f, &e);
    if (rc != PL_OK) {
        core_http_reply_error(req, rc == PL_ERR_UNSUPPORTED ? 415 : 400, "invalid_request", e.msg);
        goto done;
    }
    core_http_reply_text(req, 200, core_form_get(&f, "name") ? core_form_get(&f, "name") : "");
done:
    core_form_free(&f);
}

static void h_query(core_http_req *req, void *arg)
{
    core_form f;
    core_form_error e;
    if (core_http_query_parse(req, NULL, &f, &e) != PL_OK)
        core_http_reply_error(req, 400, "invalid_request", e.msg);
    else
        core_http_reply_text(req, 200, core_form_get(&f, "q") ? core_form_get(&f, "q") : "-");
    core_form_free(&f);
}

static void h_page(core_http_req *req, void *arg)
{
    static const char html[] = "<p>hi</p>";
    core_http_reply_html(req, 200, html, sizeof html - 1);
}

static void h_redirect(core_http_req *req, void *arg)
{
    core_http_header_add(req, "X-Extra", "1");
    assert_int_equal(core_http_header_add(req, "X-Bad", "a\r\nSet-Cookie: x=1"), PL_ERR_INVALID);
    core_http_reply_redirect(req, 303, "https://client.example/cb?code=abc&state=xyz");
}

static void h_bad_redirect(core_http_req *req, void *arg)
{
    core_http_reply_redirect(req, 302, "https://x.example/\r\nSet-Cookie: a=b");
}

static void h_forgets(core_http_req *req, void *arg)
{
    (void)req; /* no reply: the layer must answer 500 */
}

static void h_twice(core_http_req *req, void *arg)
{
    core_http_reply_text(req, 200, "first");
}

static void h_defer(core_http_req *req, void *arg)
{
    fixture *fx = arg;
    core_http_defer(req);
    fx->parked = req;
}

static void h_nostore(core_http_req *req, void *arg)
{
    core_http_secure(req, CORE_HTTP_SEC_NOSTORE);
    core_http_reply_json(req, 200, NULL);
}

static void h_header(core_http_req *req, void *arg)
{
    const char *v = core_http_header(req, "X-Probe");
    char buf[64];
    snprintf(buf, sizeof buf, "%s/%zu", v ? v : "-", core_http_header_count(req, "X-Probe"));
    core_http_reply_text(req, 200, buf);
}

/* A stream started and ended in the handler; a reply after it is ignored (the stream was the
 * one reply); an empty chunk sends nothing (it would end the chunked body). */
static void h_stream(core_http_req *req, void *arg)
{
    assert_int_equal(core_http_stream_chunk(req, "x", 1), PL_ERR_STATE); /* no stream yet */
    core_http_header_add(req, "X-Before", "1");
    assert_int_equal(core_http_stream_start(req, 200, "text/event-stream"), PL_OK);
    assert_true(core_http_replied(req));
    assert_true(core_http_streaming(req));
    assert_int_equal(core_http_stream_start(req, 200, "text/plain"), PL_ERR_STATE);
    assert_int_equal(core_http_stream_chunk(req, "data: one\n\n", 11), PL_OK);
    assert_int_equal(core_http_stream_chunk(req, "", 0), PL_OK);
    assert_int_equal(core_http_stream_chunk(req, "data: two\n\n", 11), PL_OK);
    core_http_stream_end(req);
    assert_false(core_http_streaming(req));
    core_http_reply_text(req, 500, "second"); /* ignored, logged */
}

/* Forgets to end its stream: core/http ends it (a bug, logged), the client gets the body. */
static void h_stream_open(core_http_req *req, void *arg)
{
    core_http_stream_start(req, 200, "text/plain");
    core_http_stream_chunk(req, "partial", 7);
}

/* Defers, then streams from a timer. */
static void h_stream_defer(core_http_req *req, void *arg)
{
    fixture *fx = arg;
    core_http_defer(req);
    fx->parked = req;
}

static const core_http_route routes[] = {
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/hello", h_hello, 0},
    {CORE_HTTP_POST, "/form", h_form, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_GET, "/query", h_query, 0},
    {CORE_HTTP_GET, "/page", h_page, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/redirect", h_redirect, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_GET, "/badredirect", h_bad_redirect, 0},
    {CORE_HTTP_GET, "/forgets", h_forgets, 0},
    {CORE_HTTP_GET, "/twice", h_twice, 0},
    {CORE_HTTP_GET, "/defer", h_defer, 0},
    {CORE_HTTP_GET, "/nostore", h_nostore, 0},
    {CORE_HTTP_GET, "/header", h_header, 0},
    {CORE_HTTP_GET, "/stream", h_stream, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_GET, "/stream-open", h_stream_open, 0},
    {CORE_HTTP_GET, "/stream-defer", h_stream_defer, 0},
};

/* Every test runs twice: on a plain event base, and on core_http_base_new()'s (the epoll
 * changelist postly-authz uses). */
static int setup_base(void **state, int changelist)
{
    fixture *fx = calloc(1, sizeof *fx);
    core_http_config cfg = {.host = "127.0.0.1", .port = 0, .log = &fx->log};
    fx->log.level = CORE_LOG_OFF;
    cfg.limits.max_body = 1024;
    fx->base = changelist ? core_http_base_new() : event_base_new();
    assert_non_null(fx->base);
    assert_int_equal(core_http_new(fx->base, &cfg, &fx->http), PL_OK);
    assert_int_not_equal(core_http_port(fx->http), 0);
    assert_int_equal(core_http_routes_add(fx->http, routes, sizeof routes / sizeof routes[0], fx),
                     PL_OK);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_base(state, 0);
}

static int setup_changelist(void **state)
{
    return setup_base(state, 1);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    core_http_free(fx->http);
    event_base_free(fx->base);
    free(fx);
    return 0;
}

static void fetch(fixture *fx, const char *method, const char *target, const char *const *hdrs,
                  const char *body, core_http_fetch_resp *r)
{
    core_http_fetch_req rq = {.method = method,
                              .host = "127.0.0.1",
                              .port = core_http_port(fx->http),
                              .target = target,
                              .headers = hdrs,
                              .body = body,
                              .body_len = body ? strlen(body) : 0};
    assert_int_equal(core_http_fetch(fx->base, &rq, r), PL_OK);
}

static void test_route_and_getters(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    json_t *j;
    fetch(fx, "GET", "/hello?a=1&b=2", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "application/json");
    assert_string_equal(core_http_fetch_header(&r, "X-Content-Type-Options"), "nosniff");
    assert_null(core_http_fetch_header(&r, "X-Frame-Options"));
    j = json_loads(r.body.p, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/hello");
    assert_string_equal(json_string_value(json_object_get(j, "query")), "a=1&b=2");
    assert_string_equal(json_string_value(json_object_get(j, "addr")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "method")), CORE_HTTP_GET);
    json_decref(j);
    core_http_fetch_resp_free(&r);
    assert_int_equal(fx->calls, 1);
}

static void test_404_405(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "GET", "/nope", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.p, "\"not_found\""));
    /* ARCHITECTURE.md §10: error replies are no-store (404 is heuristically cacheable). */
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    core_http_fetch_resp_free(&r);
    /* Exact match only: a trailing slash or a prefix is another path. */
    fetch(fx, "GET", "/hello/", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    core_http_fetch_resp_free(&r);
    fetch(fx, "DELETE", "/hello", NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(core_http_fetch_header(&r, "Allow"), "GET, HEAD");
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    core_http_fetch_resp_free(&r);
    assert_int_equal(fx->calls, 0);
}

static void test_form_body(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    static const char *const form_ct[] = {"Content-Type",
                                          "application/x-www-form-urlencoded; charset=UTF-8", NULL};
    static const char *const json_ct[] = {"Content-Type", "application/json", NULL};
    fetch(fx, "POST", "/form", form_ct, "name=%3Cb%3E+x", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "<b> x");
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    assert_string_equal(core_http_fetch_header(&r, "Pragma"), "no-cache");
    core_http_fetch_resp_free(&r);

    fetch(fx, "POST", "/form", form_ct, "name=a&name=b", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.p, "parameter 'name' is included more than once"));
    /* The route's no-store applies to error replies too. */
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    core_http_fetch_resp_free(&r);

    fetch(fx, "POST", "/form", form_ct, "name=%ff", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.p, "not valid UTF-8"));
    core_http_fetch_resp_free(&r);

    fetch(fx, "POST", "/form", json_ct, "{\"name\":1}", &r);
    assert_int_equal(r.status, 415);
    core_http_fetch_resp_free(&r);
}

static void test_body_limit(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    static const char *const form_ct[] = {"Content-Type", "application/x-www-form-urlencoded",
                                          NULL};
    char *big = malloc(4096);
    memset(big, 'a', 4095);
    big[4095] = '\0';
    fetch(fx, "POST", "/form", form_ct, big, &r);
    assert_int_equal(r.status, 413);
    core_http_fetch_resp_free(&r);
    free(big);
    /* The server still serves after refusing. */
    fetch(fx, "GET", "/hello", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    core_http_fetch_resp_free(&r);
}

static void test_query_parse(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "GET", "/query?q=caf%C3%A9", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "caf\xc3\xa9");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/query?q=1&q=2", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.p, "'q' is included more than once"));
    /* A handler's error reply on a route without the no-store set still gets it (§10). */
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/query?q=%zz", NULL, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.p, "invalid percent-escape"));
    core_http_fetch_resp_free(&r);
}

static void test_security_headers(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "GET", "/page", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "text/html; charset=utf-8");
    assert_string_equal(core_http_fetch_header(&r, "X-Frame-Options"), "DENY");
    assert_string_equal(core_http_fetch_header(&r, "Content-Security-Policy"),
                        "frame-ancestors 'none'");
    assert_string_equal(core_http_fetch_header(&r, "Referrer-Policy"), "no-referrer");
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/nostore", NULL, NULL, &r);
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    assert_null(core_http_fetch_header(&r, "X-Frame-Options"));
    assert_string_equal(r.body.p, "{}");
    core_http_fetch_resp_free(&r);
}

static void test_redirects(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "POST", "/redirect", NULL, NULL, &r);
    assert_int_equal(r.status, 303);
    assert_string_equal(core_http_fetch_header(&r, "Location"),
                        "https://client.example/cb?code=abc&state=xyz");
    assert_string_equal(core_http_fetch_header(&r, "X-Extra"), "1");
    assert_null(core_http_fetch_header(&r, "X-Bad"));
    assert_null(core_http_fetch_header(&r, "Set-Cookie"));
    assert_string_equal(core_http_fetch_header(&r, "Referrer-Policy"), "no-referrer");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/badredirect", NULL, NULL, &r);
    assert_int_equal(r.status, 500);
    assert_null(core_http_fetch_header(&r, "Location"));
    assert_null(core_http_fetch_header(&r, "Set-Cookie"));
    core_http_fetch_resp_free(&r);
}

static void test_exactly_one_reply(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "GET", "/forgets", NULL, NULL, &r);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body.p, "server_error"));
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/twice", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "first");
    core_http_fetch_resp_free(&r);
}

/* A deferred request is answered from a timer on the same loop. */
static void finish_parked(evutil_socket_t fd, short what, void *arg)
{
    fixture *fx = arg;
    if (fx->parked) {
        assert_false(core_http_replied(fx->parked));
        core_http_reply_text(fx->parked, 202, "later");
        fx->parked = NULL;
    }
}

static void test_defer(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    struct timeval tv = {0, 1000};
    struct event *ev = event_new(fx->base, -1, EV_PERSIST, finish_parked, fx);
    event_add(ev, &tv);
    fetch(fx, "GET", "/defer", NULL, NULL, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body.p, "later");
    core_http_fetch_resp_free(&r);
    event_free(ev);
}

static void test_stream(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    fetch(fx, "GET", "/stream", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "data: one\n\ndata: two\n\n");
    assert_string_equal(core_http_fetch_header(&r, "Content-Type"), "text/event-stream");
    assert_string_equal(core_http_fetch_header(&r, "Transfer-Encoding"), "chunked");
    assert_string_equal(core_http_fetch_header(&r, "X-Before"), "1");
    assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
    assert_string_equal(core_http_fetch_header(&r, "X-Content-Type-Options"), "nosniff");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/stream-open", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "partial");
    core_http_fetch_resp_free(&r);
}

static void stream_parked(evutil_socket_t fd, short what, void *arg)
{
    fixture *fx = arg;
    if (fx->parked) {
        core_http_req *req = fx->parked;
        fx->parked = NULL;
        assert_int_equal(core_http_stream_start(req, 200, "text/event-stream"), PL_OK);
        assert_int_equal(core_http_stream_chunk(req, "data: late\n\n", 12), PL_OK);
        core_http_stream_end(req); /* frees the deferred request */
    }
}

static void test_stream_deferred(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    struct timeval tv = {0, 1000};
    struct event *ev = event_new(fx->base, -1, EV_PERSIST, stream_parked, fx);
    event_add(ev, &tv);
    fetch(fx, "GET", "/stream-defer", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.p, "data: late\n\n");
    core_http_fetch_resp_free(&r);
    event_free(ev);
}

static void test_headers_in(void **state)
{
    fixture *fx = *state;
    core_http_fetch_resp r;
    static const char *const two[] = {"X-Probe", "a", "x-probe", "b", NULL};
    fetch(fx, "GET", "/header", two, NULL, &r);
    assert_string_equal(r.body.p, "a/2");
    core_http_fetch_resp_free(&r);
    fetch(fx, "GET", "/header", NULL, NULL, &r);
    assert_string_equal(r.body.p, "-/0");
    core_http_fetch_resp_free(&r);
}

static void test_route_conflict_and_bind(void **state)
{
    fixture *fx = *state;
    static const core_http_route dup[] = {{CORE_HTTP_GET, "/hello", h_hello, 0}};
    static const core_http_route other_method[] = {{CORE_HTTP_POST, "/hello", h_hello, 0}};
    core_http *h2 = NULL;
    core_http_config cfg = {.host = "127.0.0.1", .port = core_http_port(fx->http), .log = &fx->log};
    assert_int_equal(core_http_routes_add(fx->http, dup, 1, fx), PL_ERR_EXISTS);
    assert_int_equal(core_http_routes_add(fx->http, other_method, 1, fx), PL_OK);
    /* The port is taken: a second bind fails cleanly. */
    assert_int_equal(core_http_new(fx->base, &cfg, &h2), PL_ERR_IO);
    assert_null(h2);
}

static void keep_done(struct evhttp_request *req, void *arg)
{
    assert_non_null(req);
    assert_int_equal(evhttp_request_get_response_code(req), 200);
    event_base_loopbreak(arg);
}

static void test_connection_limit(void **state)
{
    fixture *fx = *state;
    core_http *h = NULL;
    core_http_fetch_resp r;
    core_http_config cfg = {.host = "127.0.0.1", .log = &fx->log};
    core_http_fetch_req rq = {.method = "GET", .host = "127.0.0.1", .target = "/hello"};
    cfg.limits.max_connections = 1;
    assert_int_equal(core_http_new(fx->base, &cfg, &h), PL_OK);
    assert_int_equal(core_http_routes_add(h, routes, 1, fx), PL_OK);
    rq.port = core_http_port(h);
    /* Sequential connections: each closes before the next, so the limit of one holds. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(core_http_fetch(fx->base, &rq, &r), PL_OK);
        assert_int_equal(r.status, 200);
        core_http_fetch_resp_free(&r);
        /* Let the server see the client's close. */
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
    }
    /* A kept-alive connection holds the only slot: another connection gets 503. */
    {
        struct evhttp_connection *keep =
            evhttp_connection_base_new(fx->base, NULL, "127.0.0.1", rq.port);
        struct evhttp_request *kr = evhttp_request_new(keep_done, fx->base);
        evhttp_add_header(evhttp_request_get_output_headers(kr), "Host", "127.0.0.1");
        assert_int_equal(evhttp_make_request(keep, kr, EVHTTP_REQ_GET, "/hello"), 0);
        event_base_dispatch(fx->base); /* keep_done breaks the loop */
        assert_int_equal(core_http_fetch(fx->base, &rq, &r), PL_OK);
        assert_int_equal(r.status, 503);
        assert_string_equal(core_http_fetch_header(&r, "Connection"), "close");
        assert_string_equal(core_http_fetch_header(&r, "Cache-Control"), "no-store");
        core_http_fetch_resp_free(&r);
        evhttp_connection_free(keep);
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        assert_int_equal(core_http_fetch(fx->base, &rq, &r), PL_OK);
        assert_int_equal(r.status, 200);
        core_http_fetch_resp_free(&r);
    }
    core_http_free(h);
}

/* ---- raw sockets ---- */

static int raw_connect(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Runs the loop one bounded step (at most 20 ms of waiting for events). */
/* Monotonic milliseconds: what the server's own timers (libevent, monotonic) measure. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void loop_step(fixture *fx)
{
    struct timeval tv = {0, 20000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

/* 1 when fd has been closed by the server (EOF or reset), reading whatever came first into
 * buf; 0 when nothing more happened. */
static int raw_closed(int fd, char *buf, size_t cap, size_t *have)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 0) == 1) {
        ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (n <= 0)
            return 1;
        *have += (size_t)n;
        buf[*have] = '\0';
    }
    return 0;
}

/* A deferred handler's client closes its socket before the reply: the server notices (libevent
 * 2.1 does not read such a connection by itself), closes the connection, libevent frees the
 * evhttp_request, and the request turns gone; the later reply or deferred stream sends nothing
 * and frees what is left (ASan: no use after free, no leak). The server keeps serving. */
static void test_defer_client_gone(void **state)
{
    fixture *fx = *state;
    static const char *const paths[] = {"/defer", "/stream-defer"};
    for (size_t k = 0; k < 2; k++) {
        char rq[128];
        int fd = raw_connect(core_http_port(fx->http)), i;
        core_http_req *req;
        snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", paths[k]);
        raw_send(fd, rq);
        for (i = 0; i < 500 && !fx->parked; i++)
            loop_step(fx);
        assert_non_null(fx->parked);
        req = fx->parked;
        fx->parked = NULL;
        assert_false(core_http_gone(req));
        close(fd);
        for (i = 0; i < 500 && !core_http_gone(req); i++)
            loop_step(fx);
        assert_true(core_http_gone(req));
        assert_string_equal(core_http_path(req), ""); /* the evhttp_request is gone */
        assert_null(core_http_header(req, "Host"));
        if (k == 0) {
            core_http_reply_text(req, 200, "too late");
        } else {
            assert_int_equal(core_http_stream_start(req, 200, "text/event-stream"), PL_OK);
            assert_int_equal(core_http_stream_chunk(req, "data: x\n\n", 9), PL_ERR_IO);
            core_http_stream_end(req); /* frees */
        }
        for (i = 0; i < 10; i++)
            loop_step(fx);
    }
    /* The server still serves. */
    {
        core_http_fetch_resp r;
        fetch(fx, "GET", "/hello", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        core_http_fetch_resp_free(&r);
    }
}

/* The server is freed while a request is deferred (its connection still open): libevent frees
 * the evhttp_request with the connection; the later reply must touch neither it nor the server
 * (before the fix: heap-use-after-free under ASan). */
static void test_defer_server_freed(void **state)
{
    fixture *fx = *state;
    core_http_req *req;
    int fd = raw_connect(core_http_port(fx->http)), i;
    raw_send(fd, "GET /defer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    for (i = 0; i < 500 && !fx->parked; i++)
        loop_step(fx);
    assert_non_null(fx->parked);
    req = fx->parked;
    fx->parked = NULL;
    core_http_free(fx->http);
    fx->http = NULL;
    assert_true(core_http_gone(req));
    core_http_reply_text(req, 200, "after free"); /* no-op, frees req */
    close(fd);
}

/* Slowloris: a client dripping one header byte per loop step keeps libevent's per-read
 * timeout (2 s here) from ever firing, but the request deadline (1 s from the first byte)
 * closes it; a normal client is served meanwhile. Over max_connections a new connection gets
 * the 503 at once, before it sends anything, and is closed. */
static void test_slow_headers_and_limit(void **state)
{
    fixture *fx = *state;
    core_http *h = NULL;
    core_http_config cfg = {.host = "127.0.0.1", .log = &fx->log};
    core_http_fetch_resp r;
    core_http_fetch_req rq = {.method = "GET", .host = "127.0.0.1", .target = "/hello"};
    static const char drip[] = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char buf[1024];
    size_t have = 0, sent = 0;
    int slow, over, closed = 0, steps;
    cfg.limits.timeout_s = 2;
    cfg.limits.header_timeout_s = 1;
    cfg.limits.max_connections = 2;
    assert_int_equal(core_http_new(fx->base, &cfg, &h), PL_OK);
    assert_int_equal(core_http_routes_add(h, routes, 1, fx), PL_OK);
    rq.port = core_http_port(h);
    int64_t t0 = mono_ms();
    slow = raw_connect(rq.port);
    /* one byte every 20 ms (faster than the 2 s idle timeout) for up to 3 s */
    for (steps = 0; steps < 150 && !closed; steps++) {
        if (sent < sizeof drip - 1)
            send(slow, drip + sent++, 1, MSG_NOSIGNAL);
        loop_step(fx);
        closed = raw_closed(slow, buf, sizeof buf, &have);
        if (steps == 10) { /* a normal client is served while the slow one drips */
            assert_int_equal(core_http_fetch(fx->base, &rq, &r), PL_OK);
            assert_int_equal(r.status, 200);
            core_http_fetch_resp_free(&r);
        }
    }
    assert_true(closed);
    assert_int_equal(have, 0); /* closed without an answer */
    /* Not before the 1 s header deadline — measured in time, not in loop steps, which take
     * longer than 20 ms on a loaded machine (the 5 ms allow for timer rounding). */
    assert_true(mono_ms() - t0 >= 995);
    assert_true(sent < sizeof drip - 1); /* long before the drip ended */
    close(slow);
    /* Two silent connections fill the limit; a third is answered 503 and closed at once. */
    slow = raw_connect(rq.port);
    int second = raw_connect(rq.port);
    for (steps = 0; steps < 5; steps++)
        loop_step(fx);
    over = raw_connect(rq.port);
    have = 0;
    closed = 0;
    for (steps = 0; steps < 100 && !closed; steps++) {
        loop_step(fx);
        closed = raw_closed(over, buf, sizeof buf, &have);
    }
    assert_true(closed);
    assert_true(steps < 50); /* at once: well before the 1 s linger */
    assert_non_null(strstr(buf, "HTTP/1.1 503 "));
    assert_non_null(strstr(buf, "too many connections"));
    assert_non_null(strstr(buf, "\r\nCache-Control: no-store\r\n"));
    {
        const char *cl = strstr(buf, "Content-Length: "), *body = strstr(buf, "\r\n\r\n");
        assert_non_null(cl);
        assert_non_null(body);
        assert_int_equal(strtol(cl + 16, NULL, 10), (long)strlen(body + 4));
    }
    close(over);
    close(slow);
    close(second);
    for (steps = 0; steps < 5; steps++)
        loop_step(fx);
    assert_int_equal(core_http_fetch(fx->base, &rq, &r), PL_OK);
    assert_int_equal(r.status, 200);
    core_http_fetch_resp_free(&r);
    core_http_free(h);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Over max_connections the refused socket itself goes to the linger (no dup(): unsafe with
 * the epoll changelist) and is closed exactly once, when the client has gone: the process's
 * descriptors come back to their count (one more close, of a descriptor the linger does not
 * own, or one fewer would both show). */
static void test_refused_socket_closed_once(void **state)
{
    fixture *fx = *state;
    core_http *h = NULL;
    core_http_config cfg = {.host = "127.0.0.1", .log = &fx->log};
    char buf[1024];
    size_t have = 0;
    int first, over, closed = 0, steps, before;
    cfg.limits.max_connections = 1;
    assert_int_equal(core_http_new(fx->base, &cfg, &h), PL_OK);
    assert_int_equal(core_http_routes_add(h, routes, 1, fx), PL_OK);
    first = raw_connect(core_http_port(h));
    for (steps = 0; steps < 5; steps++)
        loop_step(fx);
    before = count_fds();
    for (int round = 0; round < 3; round++) {
        over = raw_connect(core_http_port(h));
        have = 0;
        closed = 0;
        for (steps = 0; steps < 100 && !closed; steps++) {
            loop_step(fx);
            closed = raw_closed(over, buf, sizeof buf, &have);
        }
        assert_true(closed);
        assert_non_null(strstr(buf, "HTTP/1.1 503 "));
        /* the server's end stays open (draining) until the client closes */
        assert_int_equal(count_fds(), before + 2);
        close(over);
        for (steps = 0; steps < 100 && count_fds() != before; steps++)
            loop_step(fx);
        assert_int_equal(count_fds(), before);
    }
    close(first);
    core_http_free(h);
}

#define ON_CHANGELIST(fn) cmocka_unit_test_setup_teardown(fn, setup_changelist, teardown)

int main(void)
{
    /* The same tests again on core_http_base_new()'s base. */
    const struct CMUnitTest changelist_tests[] = {
        ON_CHANGELIST(test_route_and_getters),
        ON_CHANGELIST(test_404_405),
        ON_CHANGELIST(test_form_body),
        ON_CHANGELIST(test_body_limit),
        ON_CHANGELIST(test_query_parse),
        ON_CHANGELIST(test_security_headers),
        ON_CHANGELIST(test_redirects),
        ON_CHANGELIST(test_exactly_one_reply),
        ON_CHANGELIST(test_defer),
        ON_CHANGELIST(test_stream),
        ON_CHANGELIST(test_stream_deferred),
        ON_CHANGELIST(test_headers_in),
        ON_CHANGELIST(test_route_conflict_and_bind),
        ON_CHANGELIST(test_connection_limit),
        ON_CHANGELIST(test_defer_client_gone),
        ON_CHANGELIST(test_defer_server_freed),
        ON_CHANGELIST(test_slow_headers_and_limit),
        ON_CHANGELIST(test_refused_socket_closed_once),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_and_getters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_security_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exactly_one_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_conflict_and_bind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_client_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_server_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_headers_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_socket_closed_once, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(changelist_tests, NULL, NULL);
}
