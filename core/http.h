/*
 * core/http.h — the thin layer over libevent's evhttp that both daemons (postly-authz,
 * postly-mcp) serve HTTP with.
 *
 * What it adds to evhttp:
 *  - a route table (method mask + exact path -> handler) instead of branches; an unknown
 *    path answers 404, a known path with another method 405 with `Allow`;
 *  - limits set once (body size, header size, idle/read timeout, open connections);
 *  - request helpers (method, path, query, headers, bounded body, client address) and the
 *    strict query/form parsing of core/form.h;
 *  - reply helpers (JSON via jansson, HTML, text, 302/303 redirects, extra headers) and the
 *    security header sets below, applied per route and per request;
 *  - streamed replies (chunked transfer encoding: core_http_stream_start/chunk/end), e.g.
 *    text/event-stream;
 *  - exactly one reply per request: a handler either replies, or calls core_http_defer()
 *    and replies later; a stream counts as the reply from its start; a handler that returns without
 * doing either gets a 500 (and a log line naming the route: that is a bug). A second reply is
 * ignored and logged.
 *
 * Threading: a core_http and every core_http_req belong to the event loop (struct
 * event_base) they were created on. Every function here must be called from that loop's
 * thread, including replies to deferred requests (use event_active/evuser triggers from
 * other threads to get back onto the loop).
 *
 * Signals: the process must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN) in main), or a client
 * that closes its connection while a reply is being written kills it.
 *
 * Lifetime: a core_http_req is valid from the handler call until its reply has been sent
 * (core_http_reply_* returns). Strings returned by the request getters are borrowed and
 * valid for the same span.
 */
#ifndef POSTLY_CORE_HTTP_H
#define POSTLY_CORE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "form.h"
#include "log.h"

typedef struct core_http core_http;
typedef struct core_http_req core_http_req;

/* Methods as a bit mask (values match libevent's EVHTTP_REQ_*). */
enum {
    CORE_HTTP_GET = 1 << 0,
    CORE_HTTP_POST = 1 << 1,
    CORE_HTTP_HEAD = 1 << 2,
    CORE_HTTP_PUT = 1 << 3,
    CORE_HTTP_DELETE = 1 << 4,
    CORE_HTTP_OPTIONS = 1 << 5,
    CORE_HTTP_PATCH = 1 << 8,
};

/* Security header sets. Every reply carries X-Content-Type-Options: nosniff. */
enum {
    /* Cache-Control: no-store, Pragma: no-cache (RFC 6749 §5.1, RFC 7591 §3.2.1). */
    CORE_HTTP_SEC_NOSTORE = 1 << 0,
    /* X-Frame-Options: DENY and Content-Security-Policy: frame-ancestors 'none'
     * (RFC 9700 §4.16 clickjacking). A page's own CSP (core_http_header_add) is a separate
     * policy; browsers enforce both. */
    CORE_HTTP_SEC_NOFRAME = 1 << 1,
    /* Referrer-Policy: no-referrer (keeps codes and state out of Referer, RFC 9700 §4.2.4). */
    CORE_HTTP_SEC_NOREFERRER = 1 << 2,
    /* All of the above: what login, consent and error pages use. */
    CORE_HTTP_SEC_PAGE = (1 << 0) | (1 << 1) | (1 << 2),
};

/* A handler. `arg` is the pointer given with the route. It must reply or defer. */
typedef void (*core_http_handler)(core_http_req *req, void *arg);

typedef struct core_http_route {
    unsigned methods; /* CORE_HTTP_* mask */
    const char *path; /* exact match on the raw (undecoded) path, e.g. "/token" */
    core_http_handler handler;
    unsigned security; /* CORE_HTTP_SEC_* applied to every reply of this route */
} core_http_route;

typedef struct core_http_limits {
    size_t max_body;          /* bytes; larger bodies get 413 from libevent (default 64 KiB) */
    size_t max_headers;       /* bytes of request line + headers (default 16 KiB) */
    int timeout_s;            /* read/write timeout per connection: idle keep-alive, a stalled
                                 read or write (default 30) */
    unsigned max_connections; /* open connections, counted from accept; one over it gets a fixed
                                 503 at once, without waiting for its request, and is closed
                                 (default 1024) */
    int header_timeout_s;     /* a request (line, headers, body) must arrive whole within this
                                 many seconds of its first byte, else the connection is closed
                                 (slowloris: dripping bytes resets timeout_s but not this;
                                 default 10) */
} core_http_limits;

typedef struct core_http_config {
    const char *host;        /* "127.0.0.1", "::1", "0.0.0.0" (borrowed during _new) */
    uint16_t port;           /* 0 = any free port; read it back with core_http_port() */
    core_http_limits limits; /* zero fields take the defaults */
    const core_log *log;     /* borrowed for the server's lifetime; may be NULL */
} core_http_config;

/* An event base for a server of this module: libevent's default, with the epoll backend's
 * changelist (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST; plain event_base_new() if that cannot be
 * had). evhttp drops a connection's read interest when a request has arrived, asks for write
 * readiness when the reply is queued and drops it again once written, then re-adds the read
 * interest: four epoll_ctl calls per request on a plain base. With the changelist, the
 * changes made within one loop iteration are merged and applied once before epoll_wait, and
 * changes that cancel out cost nothing. libevent's one caveat: no dup()ed descriptor may be
 * registered on such a base (closing one copy leaves the other's registration behind); this
 * module registers none. NULL only when out of memory. Free with event_base_free(). */
struct event_base *core_http_base_new(void);

/* Creates a server on base, binds host:port and starts accepting. *out owns the listener.
 * PL_ERR_IO when the bind fails (the message in the log names host and port),
 * PL_ERR_NOMEM. */
pl_rc core_http_new(struct event_base *base, const core_http_config *cfg, core_http **out);

/* The bound port (the real one when the config asked for 0). */
uint16_t core_http_port(const core_http *h);

/* Adds n routes from a table (the table and its strings are borrowed for the server's
 * lifetime: make them static). `arg` is passed to every handler. PL_ERR_EXISTS when a path
 * is already routed for one of the methods, PL_ERR_NOMEM. */
pl_rc core_http_routes_add(core_http *h, const core_http_route *table, size_t n, void *arg);

/* Stops listening, closes connections and frees h. Requests still deferred become gone (see
 * core_http_defer): their later reply only frees them. h may be NULL. */
void core_http_free(core_http *h);

/* ---- requests ---------------------------------------------------------------------- */

/* The method as a single CORE_HTTP_* bit. */
unsigned core_http_method(const core_http_req *req);

/* The raw path ("/authorize"), never NULL. */
const char *core_http_path(const core_http_req *req);

/* The raw query string after '?' (without it), or "" when there is none. */
const char *core_http_query(const core_http_req *req);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *core_http_header(const core_http_req *req, const char *name);

/* How many times header `name` appears (a duplicated Host or Authorization is suspect). */
size_t core_http_header_count(const core_http_req *req, const char *name);

/* The body as one contiguous, NUL-terminated buffer of *len bytes (the NUL is not counted;
 * the body may itself contain NULs). Bounded by limits.max_body. Borrowed from req. */
pl_rc core_http_body(core_http_req *req, const char **data, size_t *len);

/* The peer's numeric address ("127.0.0.1", "::1"), never NULL ("" when unknown). */
const char *core_http_client_addr(const core_http_req *req);

/* Parses the query string with core_form_parse(). The caller frees *out. */
pl_rc core_http_query_parse(const core_http_req *req, const core_form_limits *lim, core_form *out,
                            core_form_error *err);

/* Parses an application/x-www-form-urlencoded body. PL_ERR_UNSUPPORTED when the
 * Content-Type is something else (parameters such as "; charset=UTF-8" are accepted).
 * The caller frees *out. */
pl_rc core_http_form_parse(core_http_req *req, const core_form_limits *lim, core_form *out,
                           core_form_error *err);

/* The request's opaque per-request pointer, for handlers that defer. */
void core_http_set_data(core_http_req *req, void *data);
void *core_http_data(const core_http_req *req);

/* ---- replies ----------------------------------------------------------------------- */

/* Adds a response header (name and value are copied). Values with CR or LF are refused
 * with PL_ERR_INVALID (header injection). Call before the reply. */
pl_rc core_http_header_add(core_http_req *req, const char *name, const char *value);

/* Adds CORE_HTTP_SEC_* sets for this request's reply (on top of the route's). */
void core_http_secure(core_http_req *req, unsigned security);

/* The handler will reply later (from the loop thread).
 * The connection may close meanwhile. libevent 2.1 does not read a connection whose request
 * awaits its reply; a watch on the socket sees the client's close, armed only for requests still
 * deferred 50 to 100 ms after core_http_defer (most deferred replies leave sooner, and the watch
 * costs an event per request), so a client's close is seen within about 100 ms of the deferral,
 * or when the reply is written (libevent then frees request and connection); a close by the server
 * (core_http_free, a failed write mid-stream) frees or detaches the evhttp_request at once. Either
 * way req itself stays valid until its reply: core_http_gone() turns 1, the getters answer as for
 * an empty request ("" path, NULL headers, PL_ERR_IO body unless already read), and the later reply
 * (or stream start/chunk/end) sends nothing, frees what is left and logs at debug;
 * core_http_stream_chunk() then returns PL_ERR_IO. The same holds for requests still deferred when
 * core_http_free() runs. */
void core_http_defer(core_http_req *req);

/* 1 once the client's connection closed before the reply (a deferred handler may stop its work;
 * it must still reply, which frees req). */
int core_http_gone(const core_http_req *req);

/* Replies with status and a JSON body (Content-Type: application/json). Takes ownership
 * of body (json_decref'd here, also on error). body NULL sends an empty object. */
void core_http_reply_json(core_http_req *req, int status, json_t *body);

/* Replies with an HTML page (text/html; charset=utf-8); html is copied. */
void core_http_reply_html(core_http_req *req, int status, const char *html, size_t len);

/* Replies with a body of any content type (ctype copied): the raw reply (status, content
 * type, bytes; data is copied), e.g. for JSON a caller has already serialised. */
void core_http_reply_body(core_http_req *req, int status, const char *ctype, const void *data,
                          size_t len);

/* Like core_http_reply_body, but takes data (a malloc'd buffer of len bytes, or NULL with len
 * 0): it is freed with free() once sent, and on every other path (second reply, client gone,
 * out of memory), so the caller never frees it. The bytes are not copied: libevent writes
 * them from data itself (evbuffer_add_reference). */
void core_http_reply_take(core_http_req *req, int status, const char *ctype, char *data,
                          size_t len);

/* Replies with text/plain; charset=utf-8. */
void core_http_reply_text(core_http_req *req, int status, const char *text);

/* Replies with an empty body of the given status (204, 405 ...). */
void core_http_reply_empty(core_http_req *req, int status);

/* Redirects (302 or 303; 303 after a POST, RFC 9700 §4.11) to location, which must be an
 * absolute URL or an absolute path without CR/LF (else a 500 is sent instead). */
void core_http_reply_redirect(core_http_req *req, int status, const char *location);

/* Sends a JSON error body {"error": code, "error_description": description} (description
 * may be NULL). The OAuth error shape (RFC 6749 §5.2), also used for plain API errors. */
void core_http_reply_error(core_http_req *req, int status, const char *code,
                           const char *description);

/* ---- streamed replies (chunked transfer encoding) ----------------------------------
 * core_http_stream_start() IS the request's one reply (a later core_http_reply_* is ignored and
 * logged, like any second reply): it sends the status line and headers (ctype, the headers
 * added so far, the security sets) and opens a chunked body. core_http_stream_chunk() sends
 * bytes (not copied after return); core_http_stream_end() sends the last chunk and frees a
 * deferred request. A handler either ends its stream before returning, or calls
 * core_http_defer() and ends it later from the loop thread; one that returns with its stream
 * open and not deferred is a bug: the stream is ended for it and logged. Nothing may be
 * called on req after core_http_stream_end(). Chunk or end outside an open stream: PL_ERR_STATE
 * (logged). The body limit does not apply (the server produces it). */
pl_rc core_http_stream_start(core_http_req *req, int status, const char *ctype);
/* PL_ERR_STATE outside a stream, PL_ERR_NOMEM. len 0 sends nothing. */
pl_rc core_http_stream_chunk(core_http_req *req, const void *data, size_t len);
void core_http_stream_end(core_http_req *req);
/* 1 between core_http_stream_start and core_http_stream_end. */
int core_http_streaming(const core_http_req *req);

/* Makes an open stream long-lived (server-sent events that stay open for hours): the
 * connection's read timeout (limits.timeout_s) is removed. libevent 2.1 keeps EV_READ enabled
 * while it writes a reply (to see a close), so that timeout would otherwise end any stream
 * after timeout_s without input, keep-alive writes or not. The write timeout stays: a client
 * that stops reading is still disconnected once the socket's buffer is full for timeout_s. A
 * client's close is seen by the deferred request's connection watch (core_http_defer).
 * PL_ERR_STATE outside a stream; PL_OK (nothing to do) once the client has gone. */
pl_rc core_http_stream_persist(core_http_req *req);

/* 1 once the reply has been sent (or a stream started). */
int core_http_replied(const core_http_req *req);

#endif
