#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define DEFAULT_MAX_BODY        ((size_t)64 * 1024)
#define DEFAULT_MAX_HEADERS     ((size_t)16 * 1024)
#define DEFAULT_TIMEOUT_S       30
#define DEFAULT_MAX_CONNECTIONS 1024

typedef struct route_ent {
    const core_http_route *r;
    void *arg;
} route_ent;

struct core_http {
    struct event_base *base;
    struct evhttp *ev;
    struct evhttp_bound_socket *sock;
    const core_log *log;
    core_http_limits lim;
    uint16_t port;
    route_ent *routes;
    size_t nroutes, routes_cap;
    /* Open connections we have seen a request on (max_connections, see conn_track). */
    struct evhttp_connection **conns;
    size_t nconns;
};

struct core_http_req {
    core_http *h;
    struct evhttp_request *ev;
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
 * libevent 2.1 has no evhttp_set_max_connections(); we track each connection on its first
 * request (close callback removes it) and answer 503 + close when the table is full. */

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    core_http *h = arg;
    for (size_t i = 0; i < h->nconns; i++) {
        if (h->conns[i] == evcon) {
            h->conns[i] = h->conns[--h->nconns];
            return;
        }
    }
}

/* 1 when the connection may proceed. */
static int conn_track(core_http *h, struct evhttp_connection *evcon)
{
    if (!evcon)
        return 1;
    for (size_t i = 0; i < h->nconns; i++)
        if (h->conns[i] == evcon)
            return 1;
    if (h->nconns >= h->lim.max_connections)
        return 0;
    h->conns[h->nconns++] = evcon;
    evhttp_connection_set_closecb(evcon, conn_closed, h);
    return 1;
}

/* ---- replies ------------------------------------------------------------------------- */

static void add_security(core_http_req *req)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req->ev);
    unsigned sec = req->security | (req->route ? req->route->r->security : 0);
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
    free(req->body);
    free(req);
}

/* The one place a reply leaves. Frees req. */
static void send_reply(core_http_req *req, int status, const void *body, size_t len,
                       const char *ctype)
{
    struct evbuffer *buf = NULL;
    if (req->replied) {
        core_log_error(req->h->log, "http: second reply to %s ignored (bug)", core_http_path(req));
        return;
    }
    req->replied = 1;
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Content-Type", ctype);
    add_security(req);
    if (len) {
        buf = evbuffer_new();
        if (!buf || evbuffer_add(buf, body, len) != 0) {
            evbuffer_free(buf);
            buf = NULL;
            status = 500;
        }
    }
    core_log_debug(req->h->log, "http %s %d", core_http_path(req), status);
    evhttp_send_reply(req->ev, status, reason(status), buf);
    if (buf)
        evbuffer_free(buf);
    /* A deferred request is freed here; a direct one after its handler returns. */
    if (req->deferred && !req->in_handler)
        req_free(req);
}

/* ---- streamed (chunked) replies ---- */

pl_rc core_http_stream_start(core_http_req *req, int status, const char *ctype)
{
    if (req->replied) {
        core_log_error(req->h->log, "http: stream after a reply to %s ignored (bug)",
                       core_http_path(req));
        return PL_ERR_STATE;
    }
    req->replied = 1;
    req->streaming = 1;
    if (ctype)
        evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Content-Type", ctype);
    add_security(req);
    core_log_debug(req->h->log, "http %s %d (stream)", core_http_path(req), status);
    evhttp_send_reply_start(req->ev, status, reason(status));
    return PL_OK;
}

pl_rc core_http_stream_chunk(core_http_req *req, const void *data, size_t len)
{
    struct evbuffer *buf;
    if (!req->streaming) {
        core_log_error(req->h->log, "http: chunk outside a stream on %s ignored (bug)",
                       core_http_path(req));
        return PL_ERR_STATE;
    }
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
        core_log_error(req->h->log, "http: end of a stream that is not open on %s (bug)",
                       core_http_path(req));
        return;
    }
    req->streaming = 0;
    evhttp_send_reply_end(req->ev);
    if (req->deferred && !req->in_handler)
        req_free(req);
}

int core_http_streaming(const core_http_req *req)
{
    return req->streaming;
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
        send_reply(req, status, text, strlen(text), "application/json");
    free(text);
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
    if (!req->replied && (has_crlf(location) || strlen(location) > 8192 ||
                          evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Location",
                                            location) != 0)) {
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
    return evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value) == 0
               ? PL_OK
               : PL_ERR_INVALID;
}

void core_http_secure(core_http_req *req, unsigned security)
{
    req->security |= security;
}

void core_http_defer(core_http_req *req)
{
    req->deferred = 1;
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
    return (unsigned)evhttp_request_get_command(req->ev);
}

const char *core_http_path(const core_http_req *req)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req->ev);
    const char *p = u ? evhttp_uri_get_path(u) : NULL;
    return p ? p : "";
}

const char *core_http_query(const core_http_req *req)
{
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req->ev);
    const char *q = u ? evhttp_uri_get_query(u) : NULL;
    return q ? q : "";
}

const char *core_http_header(const core_http_req *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

size_t core_http_header_count(const core_http_req *req, const char *name)
{
    struct evkeyvalq *hs = evhttp_request_get_input_headers(req->ev);
    struct evkeyval *kv;
    size_t n = 0;
    for (kv = hs->tqh_first; kv; kv = kv->next.tqe_next)
        if (strcasecmp(kv->key, name) == 0)
            n++;
    return n;
}

pl_rc core_http_body(core_http_req *req, const char **data, size_t *len)
{
    if (!req->body_loaded) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
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

    if (!req) {
        evhttp_send_error(ev, 503, "Service Unavailable");
        return;
    }
    req->h = h;
    req->ev = ev;
    if (evcon) {
        evhttp_connection_get_peer(evcon, &peer, &peer_port);
        if (peer)
            snprintf(req->addr, sizeof req->addr, "%s", peer);
    }
    if (!conn_track(h, evcon)) {
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
    h->conns = calloc(h->lim.max_connections, sizeof(struct evhttp_connection *));
    h->ev = evhttp_new(base);
    if (!h->conns || !h->ev) {
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
    free(h->conns);
    free(h->routes);
    free(h);
}
