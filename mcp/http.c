#include "mcp/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "exec/batch.h"
#include "mcp/mcp_int.h"

static int origin_allowed(const mcp_server *srv, const char *origin)
{
    size_t i;
    if (!origin)
        return 0;
    for (i = 0; i < srv->cfg->n_origins; i++)
        if (strcasecmp(srv->cfg->origins[i], origin) == 0)
            return 1;
    return 0;
}

/* CORS for browser-based clients (MCP Inspector) from an allowed Origin only. */
static void cors(core_http_req *req, const mcp_server *srv)
{
    const char *origin = core_http_header(req, "Origin");
    if (!origin_allowed(srv, origin))
        return;
    core_http_header_add(req, "Access-Control-Allow-Origin", origin);
    core_http_header_add(req, "Vary", "Origin");
    core_http_header_add(req, "Access-Control-Expose-Headers",
                         "MCP-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After");
}

/* One SSE event per message (mcp_sse_event). */
static pl_rc send_event(core_http_req *req, const json_t *msg)
{
    size_t need = mcp_sse_event_size(msg), n;
    char *buf = need ? malloc(need) : NULL;
    pl_rc rc = PL_ERR_NOMEM;
    if (buf && (n = mcp_sse_event(msg, buf, need)) > 0)
        rc = core_http_stream_chunk(req, buf, n);
    free(buf);
    return rc;
}

/* MCP 2025-11-25 basic/transports: a POSTed request may be answered with text/event-stream;
 * the server sends related notifications (here notifications/progress), then the JSON-RPC
 * response, and then closes the stream. The tool runs synchronously on this loop, so every
 * event is produced before the first byte leaves: the client gets them in order, promptly
 * followed by the result (docs/mcp.md "Progress over SSE"). */
static void send_sse(core_http_req *req, const mcp_reply *rp)
{
    size_t i;
    json_t *ev;
    core_http_header_add(req, "Cache-Control", "no-cache");
    if (core_http_stream_start(req, rp->status, "text/event-stream") != PL_OK)
        return;
    json_array_foreach(rp->events, i, ev)
    {
        if (send_event(req, ev) != PL_OK)
            break;
    }
    (void)send_event(req, rp->body);
    core_http_stream_end(req);
}

/* The listening stream's sink (mcp_stream_sink): the deferred request's chunked reply. */
static pl_rc sink_write(void *arg, const char *data, size_t len)
{
    core_http_req *req = arg;
    if (core_http_gone(req))
        return PL_ERR_IO;
    return core_http_stream_chunk(req, data, len);
}

static int sink_alive(void *arg)
{
    return !core_http_gone(arg);
}

static void sink_close(void *arg)
{
    core_http_stream_end(arg);
}

/* Sends rp (consumed) with its headers. */
static void send_reply(core_http_req *req, mcp_reply *rp)
{
    char num[16];
    if (rp->session_id[0])
        core_http_header_add(req, "MCP-Session-Id", rp->session_id);
    if (rp->www_authenticate[0])
        core_http_header_add(req, "WWW-Authenticate", rp->www_authenticate);
    if (rp->allow[0])
        core_http_header_add(req, "Allow", rp->allow);
    if (rp->retry_after_s > 0) {
        snprintf(num, sizeof num, "%d", rp->retry_after_s);
        core_http_header_add(req, "Retry-After", num);
    }
    if (rp->stream) {
        /* A listening stream: open until the server closes it through the sink. Exempt from
         * the idle timeout (core_http_stream_persist); a dead client is seen by the connection
         * watch or a failed keep-alive write. */
        /* Cache-Control: no-store from the route (CORE_HTTP_SEC_NOSTORE), stricter than the
         * no-cache SSE servers usually send. */
        core_http_defer(req);
        if (core_http_stream_start(req, rp->status, "text/event-stream") == PL_OK)
            (void)core_http_stream_persist(req);
    } else if (rp->events) {
        send_sse(req, rp);
    } else if (rp->raw) {
        core_http_reply_take(req, rp->status, "application/json", rp->raw, rp->raw_len);
        rp->raw = NULL; /* taken */
    } else if (rp->body) {
        core_http_reply_json(req, rp->status, rp->body);
        rp->body = NULL; /* taken */
    } else {
        core_http_reply_empty(req, rp->status);
    }
    mcp_reply_clear(rp);
}

/* A reply held until its group-commit batch is durable (exec/batch.h). */
typedef struct held_reply {
    core_http_req *req;
    mcp_server *srv;
    mcp_reply rp;
} held_reply;

static void send_held(void *arg, pl_rc rc)
{
    held_reply *h = arg;
    mcp_server_release(h->srv, &h->rp, rc); /* audit lines with the final outcome */
    send_reply(h->req, &h->rp);
    free(h);
}

/* A request whose tool call is parked (mcp_reply.parked). */
typedef struct parked_req {
    core_http_req *req;
    mcp_server *srv;
    struct mcp_parked *p;
    held_reply *h;   /* held by run_parked_write: filled by run_parked_finish */
    int hold_failed; /* its reply must be held but could not be (out of memory) */
} parked_req;

static void finish(mcp_server *srv, core_http_req *req, mcp_reply *rp);

/* With the batch (ex_batcher_park's run): the call's writes; its reply is held now, in this
 * batch, and formed by run_parked_finish after the batch went to the committer. */
static void run_parked_write(void *arg)
{
    parked_req *pr = arg;
    if (!mcp_server_resume_write(pr->srv, pr->p))
        return;
    held_reply *h = calloc(1, sizeof *h);
    if (h) {
        h->req = pr->req;
        h->srv = pr->srv;
        if (ex_batcher_hold(pr->srv->deps.batcher, send_held, h) == PL_OK) {
            pr->h = h;
            return;
        }
        free(h);
    }
    pr->hold_failed = 1;
}

/* After the batch was handed over (ex_batcher_park's finish): the reply. */
static void run_parked_finish(void *arg)
{
    parked_req *pr = arg;
    mcp_reply rp;
    mcp_server_resume(pr->srv, pr->p, &rp);
    if (pr->h) {
        pr->h->rp = rp; /* moved: sent by send_held once the batch is durable */
    } else if (pr->hold_failed && rp.held) {
        /* Not held: the change is not known to be durable, so it is not acknowledged. */
        mcp_server_release(pr->srv, &rp, PL_ERR_NOMEM);
        send_reply(pr->req, &rp);
    } else {
        finish(pr->srv, pr->req, &rp);
    }
    free(pr);
}

static void on_mcp(core_http_req *req, void *arg)
{
    mcp_server *srv = arg;
    mcp_request rq;
    mcp_reply rp;
    mcp_stream_sink sink;
    const char *body = NULL;
    size_t len = 0;

    cors(req, srv);
    if (core_http_method(req) == CORE_HTTP_OPTIONS) {
        if (origin_allowed(srv, core_http_header(req, "Origin"))) {
            core_http_header_add(req, "Access-Control-Allow-Methods", "GET, POST, DELETE");
            core_http_header_add(req, "Access-Control-Allow-Headers",
                                 "Authorization, Content-Type, Accept, MCP-Session-Id, "
                                 "MCP-Protocol-Version, Last-Event-ID");
            core_http_header_add(req, "Access-Control-Max-Age", "600");
            core_http_reply_empty(req, 204);
        } else {
            core_http_reply_json(req, 403,
                                 json_pack("{s:s, s:s}", "error", "forbidden", "error_description",
                                           "Origin is not allowed"));
        }
        return;
    }
    memset(&rq, 0, sizeof rq);
    rq.method = core_http_method(req);
    rq.query = core_http_query(req);
    rq.host = core_http_header(req, "Host");
    rq.host_count = core_http_header_count(req, "Host");
    rq.origin = core_http_header(req, "Origin");
    rq.authorization = core_http_header(req, "Authorization");
    rq.authorization_count = core_http_header_count(req, "Authorization");
    rq.accept = core_http_header(req, "Accept");
    rq.content_type = core_http_header(req, "Content-Type");
    rq.session_id = core_http_header(req, "MCP-Session-Id");
    rq.protocol_version = core_http_header(req, "MCP-Protocol-Version");
    rq.client_addr = core_http_client_addr(req);
    rq.last_event_id = core_http_header(req, "Last-Event-ID");
    if (rq.method == CORE_HTTP_GET) {
        sink.write = sink_write;
        sink.alive = sink_alive;
        sink.close = sink_close;
        sink.arg = req;
        rq.stream_sink = &sink;
    }
    if (rq.method == CORE_HTTP_POST && core_http_body(req, &body, &len) != PL_OK) {
        core_http_reply_json(req, 413, mcp_rpc_error_new(NULL, -32000, "Payload Too Large", NULL));
        return;
    }
    rq.body = body;
    rq.body_len = len;
    rq.raw_ok = 1;
    rq.park_ok = srv->deps.batcher != NULL;
    mcp_server_handle(srv, &rq, &rp);
    if (rp.parked) {
        /* A write parked while a batch commit is in flight (docs/mcp.md "Group commit"):
         * answered when it has run in the next batch and that batch is durable. */
        parked_req *pr = malloc(sizeof *pr);
        struct mcp_parked *p = rp.parked;
        rp.parked = NULL;
        if (pr) {
            pr->req = req;
            pr->srv = srv;
            pr->p = p;
            pr->h = NULL;
            pr->hold_failed = 0;
            if (ex_batcher_park(srv->deps.batcher, run_parked_write, run_parked_finish, pr) ==
                PL_OK) {
                core_http_defer(req);
                return;
            }
            free(pr);
        }
        mcp_server_resume(srv, p, &rp); /* could not park: run now (its write waits) */
    }
    finish(srv, req, &rp);
}

/* The reply of a handled (or resumed) request: held until its batch is durable, or sent. */
static void finish(mcp_server *srv, core_http_req *req, mcp_reply *rpp)
{
    mcp_reply rp = *rpp;
    if (rp.held && srv->deps.batcher) {
        held_reply *h = malloc(sizeof *h);
        if (h) {
            h->req = req;
            h->srv = srv;
            h->rp = rp; /* moved */
            if (ex_batcher_hold(srv->deps.batcher, send_held, h) == PL_OK) {
                core_http_defer(req);
                return;
            }
            free(h);
        }
        /* Not held: the change is not known to be durable, so it is not acknowledged. */
        mcp_server_release(srv, &rp, PL_ERR_NOMEM);
    }
    if (rp.stream) {
        send_reply(req, &rp);
        mcp_server_stream_tick(srv); /* a resumed stream (Last-Event-ID) gets what it missed */
        return;
    }
    send_reply(req, &rp);
}

/* RFC 9728 §3: the metadata document, public. */
static void on_prm(core_http_req *req, void *arg)
{
    const mcp_server *srv = arg;
    json_t *doc = mcp_server_prm(srv);
    core_http_header_add(req, "Access-Control-Allow-Origin", "*");
    core_http_header_add(req, "Cache-Control", "max-age=300");
    if (!doc) {
        core_http_reply_error(req, 500, "server_error", "metadata unavailable");
        return;
    }
    core_http_reply_json(req, 200, doc);
}

static const core_http_route routes[] = {
    {CORE_HTTP_GET | CORE_HTTP_POST | CORE_HTTP_DELETE | CORE_HTTP_OPTIONS, MCP_ENDPOINT_PATH,
     on_mcp, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_GET, "/.well-known/oauth-protected-resource" MCP_ENDPOINT_PATH, on_prm, 0},
    {CORE_HTTP_GET, "/.well-known/oauth-protected-resource", on_prm, 0},
};

pl_rc mcp_http_attach(core_http *h, mcp_server *srv)
{
    return core_http_routes_add(h, routes, sizeof routes / sizeof routes[0], srv);
}
