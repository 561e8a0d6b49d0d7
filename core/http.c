#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define DEFAULT_MAX_BODY         ((size_t)64 * 1024)
#define DEFAULT_MAX_HEADERS      ((size_t)16 * 1024)
#define DEFAULT_TIMEOUT_S        30
#define DEFAULT_MAX_CONNECTIONS  1024
#define DEFAULT_HEADER_TIMEOUT_S 10
#define LINGER_S                 1  /* a refused connection is drained this long, then closed */
#define HUP_TICK_MS              50 /* deferred requests' close watches are armed from this tick */

typedef struct route_ent {
    const core_http_route *r;
    void *arg;
} route_ent;

/* One accepted connection (see "connection accounting" below). */
typedef struct conn_ent conn_ent;
struct conn_ent {
    core_http *h;
    conn_ent *prev, *next;
    struct bufferevent *bev;         /* created by conn_new; one reference is ours */
    struct evhttp_connection *evcon; /* set by conn_adopt; NULL before */
    struct event *adopt;             /* zero timer: runs once libevent has set the connection up */
    struct event *deadline;          /* header_timeout_s from a request's first byte */
    struct evbuffer_cb_entry *watch; /* on the input buffer: sees a request's first byte */
    enum { CONN_IDLE, CONN_READING, CONN_HANDLING } state;
    int counted; /* adopted and counted against max_connections */
};

/* A refused connection being drained before its close (no RST over the 503). */
typedef struct linger_ent linger_ent;
struct linger_ent {
    linger_ent *prev, *next;
    core_http *h;
    evutil_socket_t fd;
    struct event *ev;
};

struct core_http {
    struct event_base *base;
    struct evhttp *ev;
    struct evhttp_bound_socket *sock;
    const core_log *log;
    core_http_limits lim;
    uint16_t port;
    route_ent *routes;
    size_t nroutes, routes_cap;
    conn_ent *conns;        /* every accepted connection still open */
    size_t nconns;          /* of them, adopted and counted */
    core_http_req *defer;   /* deferred requests not yet answered */
    struct event *hup_tick; /* arms the close watch of requests deferred a while (hup_tick_cb) */
    linger_ent *lingers;
};

struct core_http_req {
    core_http *h;              /* NULL once the server was freed under a deferred request */
    struct evhttp_request *ev; /* NULL once libevent freed it (client gone) */
    struct evhttp_connection *evcon;
    conn_ent *conn;               /* NULL when untracked or closed */
    core_http_req *dprev, *dnext; /* h->defer list while deferred */
    int gone;                     /* the client's connection closed before the reply */
    struct event *hup;            /* while deferred: sees the client's close (hup_cb) */
    int hup_ticks;                /* hup ticks seen while deferred without a watch */
    const route_ent *route;
    unsigned security;
    int replied;
    int deferred;
    int in_handler; /* dispatch() still holds req */
    int streaming;  /* between core_http_stream_start and core_http_stream_end */
    char *body;
    size_t body_len;
    int body_loaded;
    void *data;
    char addr[64];
};

/* ---- connection accounting ------------------------------------------------------------
 * libevent 2.1 has neither evhttp_set_max_connections() nor a new-connection callback
 * (evhttp_set_newreqcb is 2.2). What it has: evhttp_set_bevcb(), called once per accepted
 * connection to make its bufferevent. conn_new() makes it (taking a reference, so the
 * bufferevent outlives libevent's free of the connection) and schedules conn_adopt() on a zero
 * timer; by then libevent has made the evhttp_connection and set it as the bufferevent's
 * callback argument (bufferevent_getcb; a freed connection leaves NULL there, bufferevent_free
 * clears the callbacks). conn_adopt() counts the connection, or refuses it at once over
 * max_connections (a fixed 503 written to the socket, then closed: a connection beyond the
 * limit never waits for a request). The close callback (conn_closed) uncounts it.
 *
 * Slow requests (slowloris): libevent's timeout (timeout_s) is per read, so a client dripping
 * one byte a second resets it forever. conn_input() watches the input buffer: a request's first
 * byte arms a deadline of header_timeout_s for the whole request (line, headers and body);
 * dispatch() disarms it; when it fires the connection is closed. */

static void conn_drop(conn_ent *c)
{
    core_http *h = c->h;
    if (c->watch)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->watch);
    if (c->adopt)
        event_free(c->adopt);
    if (c->deadline)
        event_free(c->deadline);
    if (c->counted)
        h->nconns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->bev)
        bufferevent_decref(c->bev);
    free(c);
}

/* libevent is closing evcon (client EOF, timeout, error, our deadline, core_http_free). Deferred
 * requests on it are marked gone: libevent frees a request still queued on the connection right
 * after this callback (evhttp_connection_free), and leaves one it detached (client EOF while the
 * reply was pending: evhttp_connection_incoming_fail sets its connection to NULL) to whoever
 * replies, which then frees it (send_reply, core_http_stream_end). */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    conn_ent *c = arg;
    for (core_http_req *r = c->h->defer; r; r = r->dnext) {
        if (r->evcon != evcon)
            continue;
        r->gone = 1;
        r->conn = NULL;
        if (r->hup) {
            event_free(r->hup);
            r->hup = NULL;
        }
        if (r->ev && evhttp_request_get_connection(r->ev) == evcon)
            r->ev = NULL; /* libevent frees it now */
    }
    conn_drop(c);
}

static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn_ent *c = arg;
    (void)fd;
    (void)what;
    core_log_warn(c->h->log, "http: request not received within %d s, closing the connection",
                  c->h->lim.header_timeout_s);
    evhttp_connection_free(c->evcon); /* conn_closed frees c */
}

static void conn_arm(conn_ent *c)
{
    struct timeval tv = {c->h->lim.header_timeout_s, 0};
    c->state = CONN_READING;
    event_add(c->deadline, &tv);
}

static void conn_input(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    conn_ent *c = arg;
    (void)b;
    if (info->n_added && c->state == CONN_IDLE)
        conn_arm(c);
}

/* The request on c has been answered: the next one's deadline starts at its first byte (or now,
 * when it is already buffered). */
static void conn_replied(conn_ent *c)
{
    if (!c || c->state != CONN_HANDLING)
        return;
    c->state = CONN_IDLE;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        conn_arm(c);
}

static void linger_free(linger_ent *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        l->h->lingers = l->next;
    if (l->next)
        l->next->prev = l->prev;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[4096];
    ssize_t n = 0;
    if (what & EV_READ)
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            ;
    if (!(what & EV_READ) || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        linger_free(arg);
}

/* Over max_connections: a fixed 503 goes straight to the socket, our write side is shut, and
 * what the client still sends is read and dropped for up to LINGER_S (closing a socket with
 * unread data would send an RST that can destroy the 503 before the client reads it). */
#define BUSY_BODY                                                                                  \
    "{\"error\":\"temporarily_unavailable\",\"error_description\":\"too many connections\"}"
_Static_assert(sizeof BUSY_BODY - 1 == 78, "the 503's Content-Length is its body's length");

static void conn_refuse(conn_ent *c)
{
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\nPragma: no-cache\r\n"
        "Content-Length: 78\r\n\r\n" BUSY_BODY;
    core_http *h = c->h;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    linger_ent *l = NULL;
    struct timeval tv = {LINGER_S, 0};
    core_log_warn(h->log, "http: connection limit %u reached, refusing a connection",
                  h->lim.max_connections);
    if (fd >= 0) {
        ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(fd, SHUT_WR);
        /* The linger takes the socket itself: detached from the bufferevent, which then
         * neither watches nor closes it (the connection's own close below shuts its write side
         * again, harmlessly). Not a dup(): a dup()ed descriptor is unsafe on a base with the
         * epoll changelist (core_http_base_new). */
        bufferevent_setfd(c->bev, -1);
        l = calloc(1, sizeof *l);
        if (!l) {
            close(fd);
        } else {
            l->h = h;
            l->fd = fd;
            l->ev = event_new(h->base, l->fd, EV_READ | EV_PERSIST, linger_cb, l);
            if (!l->ev || event_add(l->ev, &tv) != 0) {
                if (l->ev)
                    event_free(l->ev);
                close(l->fd);
                free(l);
            } else {
                l->next = h->lingers;
                if (l->next)
                    l->next->prev = l;
                h->lingers = l;
            }
        }
    }
    evhttp_connection_free(c->evcon); /* conn_closed drops c */
}

/* Ties c to its evhttp_connection; 1 when that is over max_connections (then uncounted). */
static int conn_adopt_now(conn_ent *c, struct evhttp_connection *evcon)
{
    core_http *h = c->h;
    event_del(c->adopt);
    c->evcon = evcon;
    evhttp_connection_set_closecb(evcon, conn_closed, c);
    if (h->nconns >= h->lim.max_connections)
        return 1;
    c->counted = 1;
    h->nconns++;
    c->watch = evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input, c);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        conn_arm(c);
    return 0;
}

static void conn_adopt(evutil_socket_t fd, short what, void *arg)
{
    conn_ent *c = arg;
    bufferevent_data_cb rd = NULL, wr = NULL;
    bufferevent_event_cb evcb = NULL;
    void *cbarg = NULL;
    (void)fd;
    (void)what;
    if (c->evcon)
        return;
    bufferevent_getcb(c->bev, &rd, &wr, &evcb, &cbarg);
    if (!cbarg) { /* libevent already gave the connection up */
        conn_drop(c);
        return;
    }
    if (conn_adopt_now(c, cbarg))
        conn_refuse(c);
}

static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
    core_http *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    conn_ent *c = bev ? calloc(1, sizeof *c) : NULL;
    struct timeval now = {0, 0};
    if (!c)
        return bev; /* untracked: its request gets a 503 (dispatch) */
    c->h = h;
    c->adopt = evtimer_new(base, conn_adopt, c);
    c->deadline = evtimer_new(base, conn_deadline, c);
    if (!c->adopt || !c->deadline || event_add(c->adopt, &now) != 0) {
        if (c->adopt)
            event_free(c->adopt);
        if (c->deadline)
            event_free(c->deadline);
        free(c);
        return bev;
    }
    bufferevent_incref(bev);
    c->bev = bev;
    c->next = h->conns;
    if (c->next)
        c->next->prev = c;
    h->conns = c;
    return bev;
}

/* The counted entry of evcon, adopting it when its first request outran conn_adopt's timer;
 * NULL when untracked or over the limit (dispatch answers 503 and closes). */
static conn_ent *conn_find(core_http *h, struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    for (conn_ent *c = h->conns; c; c = c->next) {
        if (c->bev != bev)
            continue;
        if (!c->evcon && conn_adopt_now(c, evcon))
            return NULL;
        return c->counted ? c : NULL;
    }
    return NULL;
}

static void defer_unlink(core_http_req *req)
{
    if (!req->h || !(req->dprev || req->dnext || req->h->defer == req))
        return;
    if (req->dprev)
        req->dprev->dnext = req->dnext;
    else
        req->h->defer = req->dnext;
    if (req->dnext)
        req->dnext->dprev = req->dprev;
    req->dprev = req->dnext = NULL;
}

/* ---- replies ------------------------------------------------------------------------- */

/* ARCHITECTURE.md §10: every error reply (status >= 400) carries Cache-Control: no-store,
 * whatever its route asked for and whoever produced it (a handler, or this layer's own 404,
 * 405, 500 and 503): 404 and 405 are heuristically cacheable (RFC 9110 §15.1), and a handler's
 * max-age meant for its success reply must not keep an error in a cache. */
static void add_security(core_http_req *req, int status)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req->ev);
    unsigned sec = req->security | (req->route ? req->route->r->security : 0);
    if (status >= 400)
        sec |= CORE_HTTP_SEC_NOSTORE;
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    if (sec & CORE_HTTP_SEC_NOSTORE) {
        evhttp_remove_header(out, "Cache-Control");
        evhttp_add_header(out, "Cache-Control", "no-store");
        evhttp_add_header(out, "Pragma", "no-cache");
    }
    if (sec & CORE_HTTP_SEC_NOFRAME) {
        evhttp_add_header(out, "X-Frame-Options", "DENY");
        evhttp_add_header(out, "Content-Security-Policy", "frame-ancestors 'none'");
    }
    if (sec & CORE_HTTP_SEC_NOREFERRER)
        evhttp_add_header(out, "Referrer-Policy", "no-referrer");
}

static const char *reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } tab[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {409, "Conflict"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].code == status)
            return tab[i].text;
    return "Status";
}

static void req_free(core_http_req *req)
{
    if (!req)
        return;
    if (req->hup)
        event_free(req->hup);
    defer_unlink(req);
    free(req->body);
    free(req);
}

/* The reply to a request whose client has gone: nothing is sent; the request libevent left to
 * us (detached) is freed, and a deferred req with it. */
static void reply_gone(core_http_req *req)
{
    core_log_debug(req->h ? req->h->log : NULL,
                   "http: client closed its connection before the reply; reply dropped");
    if (req->ev)
        evhttp_request_free(req->ev);
    req->ev = NULL;
    req->streaming = 0;
    if (req->deferred && !req->in_handler)
        req_free(req);
}

static void free_cleanup(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* The one place a reply leaves. Frees req. With `owned` set, body is a malloc'd buffer that
 * this function takes (freed here on every path): it goes into the request's output buffer as
 * a reference (evbuffer_add_reference) and is freed once libevent has written it, so the reply
 * body is not copied. Otherwise body is borrowed and copied. */
static void send_reply_ex(core_http_req *req, int status, const void *body, size_t len,
                          const char *ctype, int owned)
{
    struct evbuffer *out;
    if (req->replied) {
        core_log_error(req->h ? req->h->log : NULL, "http: second reply to %s ignored (bug)",
                       core_http_path(req));
        if (owned)
            free((void *)body);
        return;
    }
    req->replied = 1;
    if (req->gone) {
        if (owned)
            free((void *)body);
        reply_gone(req);
        return;
    }
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Content-Type", ctype);
    if (len) {
        /* evhttp_send_reply with a NULL buffer sends the request's output buffer (and sets
         * Content-Length from it). */
        out = evhttp_request_get_output_buffer(req->ev);
        if (owned ? evbuffer_add_reference(out, body, len, free_cleanup, NULL) != 0
                  : evbuffer_add(out, body, len) != 0) {
            if (owned)
                free((void *)body);
            evbuffer_drain(out, evbuffer_get_length(out));
            status = 500;
        }
    } else if (owned) {
        free((void *)body);
    }
    add_security(req, status);
    core_log_debug(req->h->log, "http %s %d", core_http_path(req), status);
    evhttp_send_reply(req->ev, status, reason(status), NULL);
    conn_replied(req->conn);
    /* A deferred request is freed here; a direct one after its handler returns. */
    if (req->deferred && !req->in_handler)
        req_free(req);
}

static void send_reply(core_http_req *req, int status, const void *body, size_t len,
                       const char *ctype)
{
    send_reply_ex(req, status, body, len, ctype, 0);
}

/* ---- streamed (chunked) replies ---- */

pl_rc core_http_stream_start(core_http_req *req, int status, const char *ctype)
{
    if (req->replied) {
        core_log_error(req->h ? req->h->log : NULL,
                       "http: stream after a reply to %s ignored (bug)", core_http_path(req));
        return PL_ERR_STATE;
    }
    req->replied = 1;
    req->streaming = 1;
    if (req->gone)
        return PL_OK; /* nothing to send; chunks say PL_ERR_IO, the end frees */
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Content-Type", ctype);
    add_security(req, status);
    core_log_debug(req->h->log, "http %s %d (stream)", core_http_path(req), status);
    evhttp_send_reply_start(req->ev, status, reason(status));
    return PL_OK;
}

pl_rc core_http_stream_chunk(core_http_req *req, const void *data, size_t len)
{
    struct evbuffer *buf;
    if (!req->streaming) {
        core_log_error(req->h ? req->h->log : NULL,
                       "http: chunk outside a stream on %s ignored (bug)", core_http_path(req));
        return PL_ERR_STATE;
    }
    if (req->gone)
        return PL_ERR_IO;
    if (len == 0)
        return PL_OK; /* an empty chunk would end the chunked encoding */
    buf = evbuffer_new();
    if (!buf)
        return PL_ERR_NOMEM;
    if (evbuffer_add(buf, data, len) != 0) {
        evbuffer_free(buf);
        return PL_ERR_NOMEM;
    }
    evhttp_send_reply_chunk(req->ev, buf);
    evbuffer_free(buf);
    return PL_OK;
}

void core_http_stream_end(core_http_req *req)
{
    if (!req->streaming) {
        core_log_error(req->h ? req->h->log : NULL,
                       "http: end of a stream that is not open on %s (bug)", core_http_path(req));
        return;
    }
    if (req->gone) {
        reply_gone(req);
        return;
    }
    req->streaming = 0;
    evhttp_send_reply_end(req->ev);
    conn_replied(req->conn);
    if (req->deferred && !req->in_handler)
        req_free(req);
}

int core_http_streaming(const core_http_req *req)
{
    return req->streaming;
}

pl_rc core_http_stream_persist(core_http_req *req)
{
    struct timeval w;
    if (!req->streaming)
        return PL_ERR_STATE;
    if (req->gone || !req->conn || !req->conn->bev)
        return PL_OK;
    w.tv_sec = req->h->lim.timeout_s;
    w.tv_usec = 0;
    /* bufferevent_enable() re-arms events with the stored timeouts: NULL = none for reads. */
    return bufferevent_set_timeouts(req->conn->bev, NULL, &w) == 0 ? PL_OK : PL_ERR_IO;
}

int core_http_replied(const core_http_req *req)
{
    return req->replied;
}

void core_http_reply_json(core_http_req *req, int status, json_t *body)
{
    char *text = NULL;
    if (req->replied) {
        json_decref(body);
        send_reply(req, status, NULL, 0, NULL); /* logs the bug */
        return;
    }
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text && body) {
        send_reply(req, 500, "{\"error\":\"server_error\"}", 24, "application/json");
        return;
    }
    if (!text)
        send_reply(req, status, "{}", 2, "application/json");
    else
        send_reply_ex(req, status, text, strlen(text), "application/json", 1);
}

void core_http_reply_take(core_http_req *req, int status, const char *ctype, char *data, size_t len)
{
    send_reply_ex(req, status, data, len, ctype, 1);
}

void core_http_reply_html(core_http_req *req, int status, const char *html, size_t len)
{
    send_reply(req, status, html, len, "text/html; charset=utf-8");
}

void core_http_reply_body(core_http_req *req, int status, const char *ctype, const void *data,
                          size_t len)
{
    send_reply(req, status, data, len, ctype);
}

void core_http_reply_text(core_http_req *req, int status, const char *text)
{
    send_reply(req, status, text, strlen(text), "text/plain; charset=utf-8");
}

void core_http_reply_empty(core_http_req *req, int status)
{
    send_reply(req, status, NULL, 0, NULL);
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

void core_http_reply_redirect(core_http_req *req, int status, const char *location)
{
    if (!req->replied && !req->gone &&
        (has_crlf(location) || strlen(location) > 8192 ||
         evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Location", location) !=
             0)) {
        core_log_error(req->h->log, "http: refused redirect target on %s (bug)",
                       core_http_path(req));
        core_http_reply_error(req, 500, "server_error", "invalid redirect");
        return;
    }
    send_reply(req, status == 303 ? 303 : 302, NULL, 0, NULL);
}

void core_http_reply_error(core_http_req *req, int status, const char *code,
                           const char *description)
{
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "error", json_string(code));
        if (description)
            json_object_set_new(o, "error_description", json_string(description));
    }
    core_http_reply_json(req, status, o);
}

pl_rc core_http_header_add(core_http_req *req, const char *name, const char *value)
{
    if (has_crlf(name) || has_crlf(value))
        return PL_ERR_INVALID;
    if (!req->ev)
        return PL_ERR_IO; /* the client has gone */
    return evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value) == 0
               ? PL_OK
               : PL_ERR_INVALID;
}

void core_http_secure(core_http_req *req, unsigned security)
{
    req->security |= security;
}

/* A deferred request's socket became readable. libevent 2.1 does not read a connection whose
 * request awaits its reply, so without this a client's close would be seen only when the reply
 * is written. EOF or an error: the connection is closed now (conn_closed marks the request gone;
 * libevent frees the evhttp_request with it). Data (a pipelined request): left for libevent,
 * and the watch ends. */
static void hup_cb(evutil_socket_t fd, short what, void *arg)
{
    core_http_req *req = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    (void)what;
    if (n > 0)
        return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(req->hup, NULL);
        return;
    }
    core_log_debug(req->h->log, "http: client closed its connection while %s was deferred",
                   core_http_path(req));
    evhttp_connection_free(req->evcon); /* conn_closed: req gone, req->hup freed */
}

static void hup_arm(core_http_req *req)
{
    evutil_socket_t fd = req->conn ? bufferevent_getfd(req->conn->bev) : -1;
    if (fd < 0 || req->hup)
        return;
    req->hup = event_new(req->h->base, fd, EV_READ, hup_cb, req);
    if (req->hup && event_add(req->hup, NULL) != 0) {
        event_free(req->hup);
        req->hup = NULL;
    }
}

/* The close watch is armed lazily: a request still deferred at the second tick after its
 * deferral (HUP_TICK_MS to 2 * HUP_TICK_MS later) gets it. Most deferred replies (postly-authz's
 * /token waits for a commit and a signature) leave within a millisecond or two, and arming and
 * removing the watch cost an event per request, ~1.2-1.8 k instructions (docs/performance.md,
 * "Authorization server"; no system call: the socket is already registered for EPOLLIN by its
 * bufferevent, so libevent's epoll interest set does not change); a client that goes away from a
 * long-deferred request (a listening stream, a slow operation) is still seen, at most 2 *
 * HUP_TICK_MS later than before. One timer per server, running only while some deferred request has
 * no watch yet. */
static void hup_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    core_http *h = arg;
    int waiting = 0;
    (void)fd;
    (void)what;
    for (core_http_req *r = h->defer; r; r = r->dnext) {
        if (r->hup || !r->conn || r->gone)
            continue;
        if (r->hup_ticks++ >= 1)
            hup_arm(r);
        else
            waiting = 1;
    }
    if (waiting) {
        struct timeval tv = {0, (suseconds_t)HUP_TICK_MS * 1000};
        evtimer_add(h->hup_tick, &tv);
    }
}

void core_http_defer(core_http_req *req)
{
    if (req->deferred)
        return;
    req->deferred = 1;
    req->dnext = req->h->defer;
    if (req->dnext)
        req->dnext->dprev = req;
    req->h->defer = req;
    req->hup_ticks = 0;
    if (!evtimer_pending(req->h->hup_tick, NULL)) {
        struct timeval tv = {0, (suseconds_t)HUP_TICK_MS * 1000};
        if (evtimer_add(req->h->hup_tick, &tv) != 0)
            hup_arm(req); /* no tick: watched at once */
    }
}

int core_http_gone(const core_http_req *req)
{
    return req->gone;
}

void core_http_set_data(core_http_req *req, void *data)
{
    req->data = data;
}

void *core_http_data(const core_http_req *req)
{
    return req->data;
}

/* ---- request getters ----------------------------------------------------------------- */

unsigned core_http_method(const core_http_req *req)
{
    return req->ev ? (unsigned)evhttp_request_get_command(req->ev) : 0;
}

const char *core_http_path(const core_http_req *req)
{
    const struct evhttp_uri *u = req->ev ? evhttp_request_get_evhttp_uri(req->ev) : NULL;
    const char *p = u ? evhttp_uri_get_path(u) : NULL;
    return p ? p : "";
}

const char *core_http_query(const core_http_req *req)
{
    const struct evhttp_uri *u = req->ev ? evhttp_request_get_evhttp_uri(req->ev) : NULL;
    const char *q = u ? evhttp_uri_get_query(u) : NULL;
    return q ? q : "";
}

const char *core_http_header(const core_http_req *req, const char *name)
{
    return req->ev ? evhttp_find_header(evhttp_request_get_input_headers(req->ev), name) : NULL;
}

size_t core_http_header_count(const core_http_req *req, const char *name)
{
    struct evkeyvalq *hs;
    struct evkeyval *kv;
    size_t n = 0;
    if (!req->ev)
        return 0;
    hs = evhttp_request_get_input_headers(req->ev);
    for (kv = hs->tqh_first; kv; kv = kv->next.tqe_next)
        if (strcasecmp(kv->key, name) == 0)
            n++;
    return n;
}

pl_rc core_http_body(core_http_req *req, const char **data, size_t *len)
{
    if (!req->body_loaded) {
        struct evbuffer *in;
        if (!req->ev)
            return PL_ERR_IO; /* the client has gone */
        in = evhttp_request_get_input_buffer(req->ev);
        size_t n = in ? evbuffer_get_length(in) : 0;
        if (n > req->h->lim.max_body)
            return PL_ERR_TOO_LARGE;
        req->body = malloc(n + 1);
        if (!req->body)
            return PL_ERR_NOMEM;
        if (n && evbuffer_copyout(in, req->body, n) != (ev_ssize_t)n) {
            free(req->body);
            req->body = NULL;
            return PL_ERR_IO;
        }
        req->body[n] = '\0';
        req->body_len = n;
        req->body_loaded = 1;
    }
    *data = req->body;
    *len = req->body_len;
    return PL_OK;
}

const char *core_http_client_addr(const core_http_req *req)
{
    return req->addr;
}

pl_rc core_http_query_parse(const core_http_req *req, const core_form_limits *lim, core_form *out,
                            core_form_error *err)
{
    const char *q = core_http_query(req);
    return core_form_parse(q, strlen(q), lim, out, err);
}

pl_rc core_http_form_parse(core_http_req *req, const core_form_limits *lim, core_form *out,
                           core_form_error *err)
{
    static const char ct_form[] = "application/x-www-form-urlencoded";
    const char *ct = core_http_header(req, "Content-Type"), *data;
    size_t len, n = sizeof ct_form - 1;
    pl_rc rc;
    out->v = NULL;
    out->n = 0;
    if (!ct || strncasecmp(ct, ct_form, n) != 0 ||
        (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
        if (err)
            snprintf(err->msg, sizeof err->msg,
                     "the body must be application/x-www-form-urlencoded");
        return PL_ERR_UNSUPPORTED;
    }
    rc = core_http_body(req, &data, &len);
    if (rc != PL_OK) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "the body could not be read");
        return rc;
    }
    return core_form_parse(data, len, lim, out, err);
}

/* ---- dispatch ------------------------------------------------------------------------ */

static void dispatch(struct evhttp_request *ev, void *arg)
{
    core_http *h = arg;
    core_http_req *req = calloc(1, sizeof *req);
    const char *path;
    unsigned method, allowed = 0;
    char *peer = NULL;
    ev_uint16_t peer_port = 0;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);

    if (!req) { /* out of memory: an empty 503, still no-store (§10) */
        struct evkeyvalq *out = evhttp_request_get_output_headers(ev);
        evhttp_add_header(out, "Connection", "close");
        evhttp_add_header(out, "Cache-Control", "no-store");
        evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
        evhttp_send_reply(ev, 503, "Service Unavailable", NULL);
        return;
    }
    req->h = h;
    req->ev = ev;
    req->evcon = evcon;
    req->conn = evcon ? conn_find(h, evcon) : NULL;
    if (req->conn) {
        event_del(req->conn->deadline); /* the whole request arrived in time */
        req->conn->state = CONN_HANDLING;
    }
    if (evcon) {
        evhttp_connection_get_peer(evcon, &peer, &peer_port);
        if (peer)
            snprintf(req->addr, sizeof req->addr, "%s", peer);
    }
    if (!req->conn) { /* over the limit, or untracked (out of memory when it was accepted) */
        core_log_warn(h->log, "http: connection limit %u reached, refusing %s",
                      h->lim.max_connections, req->addr);
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Connection", "close");
        core_http_reply_error(req, 503, "temporarily_unavailable", "too many connections");
        goto done;
    }
    path = core_http_path(req);
    method = core_http_method(req);
    for (size_t i = 0; i < h->nroutes; i++) {
        if (strcmp(h->routes[i].r->path, path) != 0)
            continue;
        allowed |= h->routes[i].r->methods;
        if (h->routes[i].r->methods & method) {
            req->route = &h->routes[i];
            break;
        }
    }
    if (!req->route) {
        if (allowed) {
            static const struct {
                unsigned bit;
                const char *name;
            } names[] = {{CORE_HTTP_GET, "GET"},        {CORE_HTTP_HEAD, "HEAD"},
                         {CORE_HTTP_POST, "POST"},      {CORE_HTTP_PUT, "PUT"},
                         {CORE_HTTP_DELETE, "DELETE"},  {CORE_HTTP_PATCH, "PATCH"},
                         {CORE_HTTP_OPTIONS, "OPTIONS"}};
            char allow[64] = "";
            size_t off = 0;
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                if (!(allowed & names[i].bit))
                    continue;
                int n = snprintf(allow + off, sizeof allow - off, "%s%s", off ? ", " : "",
                                 names[i].name);
                if (n > 0 && (size_t)n < sizeof allow - off)
                    off += (size_t)n;
            }
            core_http_header_add(req, "Allow", allow);
            core_http_reply_error(req, 405, "method_not_allowed",
                                  "this method is not allowed on this path");
        } else {
            core_http_reply_error(req, 404, "not_found", "no such path");
        }
        goto done;
    }
    req->in_handler = 1;
    req->route->r->handler(req, req->route->arg);
    req->in_handler = 0;
    if (req->deferred && (!req->replied || req->streaming))
        return; /* freed by its reply, or by the end of its stream */
    if (req->streaming) {
        core_log_error(h->log, "http: handler for %s left its stream open without deferring (bug)",
                       req->route->r->path);
        core_http_stream_end(req);
    }
    if (req->replied)
        goto done;
    core_log_error(h->log, "http: handler for %s returned without a reply (bug)",
                   req->route->r->path);
    core_http_reply_error(req, 500, "server_error", "no reply");
done:
    req_free(req);
}

/* ---- server -------------------------------------------------------------------------- */

struct event_base *core_http_base_new(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base = NULL;
    if (ec && event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base ? base : event_base_new();
}

pl_rc core_http_new(struct event_base *base, const core_http_config *cfg, core_http **out)
{
    pl_rc rc = PL_OK;
    core_http *h = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    *out = NULL;
    h = calloc(1, sizeof *h);
    if (!h) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    h->base = base;
    h->log = cfg->log;
    h->lim = cfg->limits;
    if (!h->lim.max_body)
        h->lim.max_body = DEFAULT_MAX_BODY;
    if (!h->lim.max_headers)
        h->lim.max_headers = DEFAULT_MAX_HEADERS;
    if (!h->lim.timeout_s)
        h->lim.timeout_s = DEFAULT_TIMEOUT_S;
    if (!h->lim.max_connections)
        h->lim.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!h->lim.header_timeout_s)
        h->lim.header_timeout_s = DEFAULT_HEADER_TIMEOUT_S;
    h->ev = evhttp_new(base);
    if (!h->ev) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    evhttp_set_max_body_size(h->ev, (ev_ssize_t)h->lim.max_body);
    evhttp_set_max_headers_size(h->ev, (ev_ssize_t)h->lim.max_headers);
    evhttp_set_timeout(h->ev, h->lim.timeout_s);
    evhttp_set_allowed_methods(h->ev, CORE_HTTP_GET | CORE_HTTP_POST | CORE_HTTP_HEAD |
                                          CORE_HTTP_PUT | CORE_HTTP_DELETE | CORE_HTTP_OPTIONS |
                                          CORE_HTTP_PATCH);
    evhttp_set_default_content_type(h->ev, "text/plain; charset=utf-8");
    evhttp_set_gencb(h->ev, dispatch, h);
    evhttp_set_bevcb(h->ev, conn_new, h);
    if (!(h->hup_tick = evtimer_new(base, hup_tick_cb, h))) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    h->sock = evhttp_bind_socket_with_handle(h->ev, cfg->host, cfg->port);
    if (!h->sock) {
        core_log_error(h->log, "http: cannot bind %s port %u", cfg->host, (unsigned)cfg->port);
        rc = PL_ERR_IO;
        goto out;
    }
    if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss, &sl) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    *out = h;
    h = NULL;
out:
    core_http_free(h);
    return rc;
}

uint16_t core_http_port(const core_http *h)
{
    return h->port;
}

pl_rc core_http_routes_add(core_http *h, const core_http_route *table, size_t n, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < h->nroutes; j++)
            if (strcmp(h->routes[j].r->path, table[i].path) == 0 &&
                (h->routes[j].r->methods & table[i].methods))
                return PL_ERR_EXISTS;
        if (h->nroutes == h->routes_cap) {
            size_t ncap = h->routes_cap ? h->routes_cap * 2 : 16;
            route_ent *nr = realloc(h->routes, ncap * sizeof *nr);
            if (!nr)
                return PL_ERR_NOMEM;
            h->routes = nr;
            h->routes_cap = ncap;
        }
        h->routes[h->nroutes].r = &table[i];
        h->routes[h->nroutes].arg = arg;
        h->nroutes++;
    }
    return PL_OK;
}

void core_http_free(core_http *h)
{
    if (!h)
        return;
    if (h->ev)
        evhttp_free(h->ev); /* closes connections: conn_closed() still sees h */
    while (h->conns)        /* accepted, not adopted yet */
        conn_drop(h->conns);
    while (h->defer) { /* answered later: a no-op that frees (h is gone) */
        core_http_req *r = h->defer;
        defer_unlink(r);
        r->h = NULL;
        r->gone = 1;
        r->conn = NULL;
        if (r->hup) {
            event_free(r->hup);
            r->hup = NULL;
        }
    }
    while (h->lingers)
        linger_free(h->lingers);
    if (h->hup_tick)
        event_free(h->hup_tick);
    free(h->routes);
    free(h);
}
