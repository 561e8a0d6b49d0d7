#include "http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define MAX_RESP_BODY ((size_t)4 * 1024 * 1024)

typedef struct fetch_ctx {
    struct event_base *base;
    core_http_fetch_resp *resp;
    pl_rc rc;
    int done;
} fetch_ctx;

static void on_reply(struct evhttp_request *req, void *arg)
{
    fetch_ctx *c = arg;
    struct evkeyvalq *hs;
    struct evkeyval *kv;
    struct evbuffer *in;
    size_t n = 0;
    c->done = 1;
    event_base_loopbreak(c->base);
    if (!req || evhttp_request_get_response_code(req) == 0) {
        c->rc = PL_ERR_IO;
        return;
    }
    c->resp->status = evhttp_request_get_response_code(req);
    hs = evhttp_request_get_input_headers(req);
    for (kv = hs->tqh_first; kv; kv = kv->next.tqe_next)
        n++;
    c->resp->headers = calloc(n ? n : 1, sizeof *c->resp->headers);
    if (!c->resp->headers) {
        c->rc = PL_ERR_NOMEM;
        return;
    }
    for (kv = hs->tqh_first; kv; kv = kv->next.tqe_next) {
        core_http_kv *h = &c->resp->headers[c->resp->nheaders];
        h->name = strdup(kv->key);
        h->value = strdup(kv->value);
        c->resp->nheaders++;
        if (!h->name || !h->value) {
            c->rc = PL_ERR_NOMEM;
            return;
        }
    }
    in = evhttp_request_get_input_buffer(req);
    n = evbuffer_get_length(in);
    if (n) {
        c->rc = core_buf_add(&c->resp->body, evbuffer_pullup(in, -1), n);
        if (c->rc != PL_OK)
            return;
    } else {
        c->rc = core_buf_add(&c->resp->body, "", 0);
    }
    c->rc = PL_OK;
}

static int kv_has(const char *const *h, const char *name)
{
    for (; h && h[0] && h[1]; h += 2)
        if (strcasecmp(h[0], name) == 0)
            return 1;
    return 0;
}

pl_rc core_http_fetch(struct event_base *base, const core_http_fetch_req *rq,
                      core_http_fetch_resp *resp)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type cmd;
    } methods[] = {{"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST},
                   {"HEAD", EVHTTP_REQ_HEAD},     {"PUT", EVHTTP_REQ_PUT},
                   {"DELETE", EVHTTP_REQ_DELETE}, {"OPTIONS", EVHTTP_REQ_OPTIONS},
                   {"PATCH", EVHTTP_REQ_PATCH}};
    fetch_ctx c = {.base = base, .resp = resp, .rc = PL_ERR_IO};
    struct evhttp_connection *con = NULL;
    struct evhttp_request *req = NULL;
    struct evkeyvalq *out;
    pl_rc rc = PL_OK;
    int cmd = -1;
    char hostport[300];

    memset(resp, 0, sizeof *resp);
    core_buf_init(&resp->body, MAX_RESP_BODY);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i].name, rq->method) == 0)
            cmd = (int)methods[i].cmd;
    if (cmd < 0) {
        rc = PL_ERR_INVALID;
        goto out;
    }
    con = evhttp_connection_base_new(base, NULL, rq->host, rq->port);
    req = evhttp_request_new(on_reply, &c);
    if (!con || !req) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    evhttp_connection_set_timeout(con, rq->timeout_s ? rq->timeout_s : 10);
    out = evhttp_request_get_output_headers(req);
    snprintf(hostport, sizeof hostport, "%s:%u", rq->host, (unsigned)rq->port);
    if (!rq->headers || !kv_has(rq->headers, "Host"))
        evhttp_add_header(out, "Host", hostport);
    for (const char *const *h = rq->headers; h && h[0] && h[1]; h += 2)
        evhttp_add_header(out, h[0], h[1]);
    if (rq->body && rq->body_len)
        evbuffer_add(evhttp_request_get_output_buffer(req), rq->body, rq->body_len);
    if (evhttp_make_request(con, req, (enum evhttp_cmd_type)cmd, rq->target) != 0) {
        req = NULL; /* freed by evhttp_make_request on failure */
        rc = PL_ERR_IO;
        goto out;
    }
    req = NULL; /* owned by the connection now */
    while (!c.done)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            break;
    rc = c.done ? c.rc : PL_ERR_IO;
out:
    if (req)
        evhttp_request_free(req);
    if (con)
        evhttp_connection_free(con);
    return rc;
}

const char *core_http_fetch_header(const core_http_fetch_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (resp->headers[i].name && strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

size_t core_http_fetch_header_count(const core_http_fetch_resp *resp, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < resp->nheaders; i++)
        n += resp->headers[i].name && strcasecmp(resp->headers[i].name, name) == 0;
    return n;
}

void core_http_fetch_resp_free(core_http_fetch_resp *resp)
{
    if (!resp)
        return;
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
    resp->headers = NULL;
    resp->nheaders = 0;
    core_buf_free(&resp->body);
}
