/*
 * core/http_client.h — a small synchronous HTTP/1.1 client over libevent's evhttp, for tests
 * and tools that talk to a server on the same event loop (or any plain-HTTP server).
 *
 * core_http_fetch() runs `base` until the reply arrives, so an in-process server on the same
 * base answers while the client waits: tests need neither threads nor sleeps. Redirects are
 * not followed. Plain HTTP only (no TLS).
 *
 * Threading: the thread that owns base; not while base is already running a loop.
 * Signals: a server may close the connection while a large body is still being written;
 * callers ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) so that shows up as a failed request.
 */
#ifndef POSTLY_CORE_HTTP_CLIENT_H
#define POSTLY_CORE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "buf.h"
#include "err.h"

typedef struct core_http_kv {
    char *name;
    char *value;
} core_http_kv;

typedef struct core_http_fetch_req {
    const char *method; /* "GET", "POST", ... */
    const char *host;   /* "127.0.0.1" */
    uint16_t port;
    const char *target;         /* path and query: "/authorize?x=1" */
    const char *const *headers; /* NULL-terminated name,value,name,value,... (may be NULL) */
    const char *body;           /* may be NULL */
    size_t body_len;
    int timeout_s; /* 0 = 10 s */
} core_http_fetch_req;

typedef struct core_http_fetch_resp {
    int status; /* 0 when no reply came (connection refused, reset, timeout) */
    core_http_kv *headers;
    size_t nheaders;
    core_buf body; /* NUL-terminated; capped at 4 MiB */
} core_http_fetch_resp;

/* Sends the request and waits for the reply. PL_OK once a reply came (any status);
 * PL_ERR_IO when none did; PL_ERR_NOMEM, PL_ERR_INVALID (bad method). The caller frees
 * resp with core_http_fetch_resp_free() in every case. */
pl_rc core_http_fetch(struct event_base *base, const core_http_fetch_req *rq,
                      core_http_fetch_resp *resp);

/* First response header called name (case-insensitive), or NULL. Borrowed from resp. */
const char *core_http_fetch_header(const core_http_fetch_resp *resp, const char *name);

/* Number of response headers called name. */
size_t core_http_fetch_header_count(const core_http_fetch_resp *resp, const char *name);

void core_http_fetch_resp_free(core_http_fetch_resp *resp);

#endif
