/* The listening stream (MCP 2025-11-25 basic/transports "Listening for Messages from the
 * Server": GET /mcp opens a text/event-stream the server may send requests and notifications
 * on) and resource subscriptions (server/resources "Subscriptions": resources/subscribe,
 * resources/unsubscribe, notifications/resources/updated).
 *
 * One stream per session (a second GET while one is open is refused with 409, as the
 * TypeScript SDK's server does), at most limits.max_streams in all. A stream belongs to the
 * token that opened it: it is closed when that token expires, its grant is revoked (checked at
 * every keep-alive, <= 30 s apart), the session ends or expires, the client goes away, or the
 * server stops. An open stream keeps its session alive (it is the client listening).
 *
 * Changes come from one place: the execution store's change observer (exec/store.h), told of
 * every key a committed write transaction of this process put or deleted — tool writes, the
 * scheduler's publications and failures, analytics refreshes alike. A key maps to the
 * resource URIs it backs (key_uris); each session of the key's workspace subscribed to one of
 * them gives it the session's next event id and keeps it (the last RESUME_SLOTS, for a GET
 * that resumes with Last-Event-ID), and sends notifications/resources/updated on its open
 * stream if the stream's token may still read the resource. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/directory.h"
#include "core/http.h"
#include "mcp/mcp_int.h"

#define URI_MAX 256 /* as resources.c */

/* The last notifications of a session, for resumption (Last-Event-ID): the one with event id
 * i is in slot (i - 1) % RESUME_SLOTS while i > last_id - RESUME_SLOTS. */
#define RESUME_SLOTS 8

/* What a session carries besides the table's fields (mcp_session.ext). */
typedef struct sess_ext {
    struct sess_ext *prev, *next; /* in the server's list of subscribing sessions */
    int listed;
    mcp_session *session;
    char ws[KEY_CLAIM_MAX + 1]; /* the session's workspace (part of its principal) */
    struct mcp_stream *stream;  /* the open listening stream, or NULL */
    size_t nsubs;
    char **subs;                /* subscribed URIs, limits.max_subscriptions slots once allocated */
    uint64_t last_id;           /* event ids given so far (1, 2, ...) */
    char *recent[RESUME_SLOTS]; /* the URI of each recent notification (owned) */
    /* The listings the session's stream last reflected (mcp_tools_visible_fp,
     * mcp_resources_visible_fp), once lists_known: set when its first stream opens, updated
     * with every list_changed notification sent. */
    int lists_known;
    uint64_t lists[2];
} sess_ext;

typedef struct mcp_stream {
    struct mcp_stream *prev, *next;
    uint64_t replay_from; /* > 0: resend ids from this one at the next tick (Last-Event-ID) */
    int check_lists;      /* 1: compare the listings at the next tick (a reopened stream) */
    mcp_server *srv;
    mcp_session *session; /* NULL once the session has ended (the stream closes right after) */
    key_verified who;     /* the token that opened it */
    pol_class cls;
    mcp_stream_sink sink;
    int64_t next_keepalive_ms;
} mcp_stream;

static void transport_error(mcp_reply *r, int status, int code, const char *msg)
{
    json_decref(r->body);
    r->status = status;
    r->body = mcp_rpc_error_new(NULL, code, msg, NULL);
}

static sess_ext *ext_of(mcp_session *s)
{
    sess_ext *x = s->ext;
    if (!x && (x = calloc(1, sizeof *x)) != NULL) {
        x->session = s;
        s->ext = x;
    }
    return x;
}

static void replay(mcp_stream *st);
static int send_list_changes(mcp_stream *st);

static int64_t keepalive_ms(const mcp_server *srv)
{
    int k = srv->cfg->limits.keepalive_s;
    return (int64_t)(k > 0 && k <= 29 ? k : 15) * 1000;
}

static void stream_close(mcp_stream *st, const char *reason)
{
    mcp_server *srv = st->srv;
    if (st->prev)
        st->prev->next = st->next;
    else
        srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    srv->nstreams--;
    if (st->session && st->session->ext)
        ((sess_ext *)st->session->ext)->stream = NULL;
    core_log_info(srv->deps.log, "listening stream closed reason=%s client=%s ws=%s", reason,
                  st->who.client_id, st->who.ws);
    if (st->sink.alive(st->sink.arg)) {
        /* An SSE comment (HTML §9.2.6: lines starting with ':' are ignored): for people
         * reading the stream, never for clients to parse. */
        char line[160];
        int n = snprintf(line, sizeof line, ": closing: %s\n\n", reason);
        if (n > 0 && (size_t)n < sizeof line)
            (void)st->sink.write(st->sink.arg, line, (size_t)n);
    }
    st->sink.close(st->sink.arg);
    free(st);
}

/* NULL when the token behind st may still be used, else why not. */
static const char *stream_authz(const mcp_stream *st)
{
    mcp_server *srv = st->srv;
    int64_t now_s = core_clock_now_ms(srv->deps.clock) / 1000;
    if (st->who.exp <= now_s)
        return "the access token expired";
    if (srv->deps.directory) {
        pl_rc rc = az_directory_grant_check(srv->deps.directory, st->who.gid);
        if (rc == PL_ERR_DENIED)
            return "the grant behind the token was revoked";
        if (rc != PL_OK)
            return "the grant could not be checked"; /* fail closed; the client reconnects */
    }
    return NULL;
}

void mcp_stream_session_ended(void *arg, mcp_session *s)
{
    sess_ext *x = s->ext;
    size_t i;
    if (!x)
        return;
    if (x->stream) {
        x->stream->session = NULL;
        stream_close(x->stream, "the session ended");
    }
    if (x->listed) {
        mcp_server *srv = arg;
        if (x->prev)
            x->prev->next = x->next;
        else
            srv->subscribers = x->next;
        if (x->next)
            x->next->prev = x->prev;
    }
    for (i = 0; i < x->nsubs; i++)
        free(x->subs[i]);
    for (i = 0; i < RESUME_SLOTS; i++)
        free(x->recent[i]);
    free(x->subs);
    free(x);
    s->ext = NULL;
}

void mcp_stream_close_all(mcp_server *srv)
{
    while (srv->streams)
        stream_close(srv->streams, "the server is shutting down");
}

size_t mcp_server_stream_count(const mcp_server *srv)
{
    return srv ? srv->nstreams : 0;
}

/* 1 when Accept allows text/event-stream (basic/transports: the client MUST list it). */
static int accepts_sse(const char *accept)
{
    return accept && (strstr(accept, "text/event-stream") || strstr(accept, "text/*") ||
                      strstr(accept, "*/*"));
}

void mcp_stream_open(mcp_call *c, const mcp_request *req, const uint8_t owner[32])
{
    mcp_server *srv = c->srv;
    mcp_reply *reply = c->reply;
    mcp_session *session = NULL;
    mcp_stream *st;
    sess_ext *x;

    if (!req->stream_sink || srv->cfg->limits.max_streams == 0) {
        /* basic/transports "Listening for Messages": 405 when no SSE stream is offered. */
        snprintf(reply->allow, sizeof reply->allow, "POST, DELETE");
        transport_error(reply, 405, -32000,
                        "Method Not Allowed: this server offers no listening stream");
        return;
    }
    if (!accepts_sse(req->accept)) {
        transport_error(reply, 406, -32000,
                        "Not Acceptable: a GET opens a listening stream; Accept must include "
                        "text/event-stream");
        return;
    }
    if (req->protocol_version && !mcp_protocol_supported(req->protocol_version)) {
        transport_error(reply, 400, -32000,
                        "Bad Request: unsupported MCP-Protocol-Version (supported: 2025-11-25, "
                        "2025-06-18, 2025-03-26)");
        return;
    }
    if (!req->session_id) {
        transport_error(reply, 400, -32000,
                        "Bad Request: MCP-Session-Id header is required (initialize first)");
        return;
    }
    if (mcp_session_find(srv->sessions, req->session_id, owner, &session) != PL_OK) {
        transport_error(reply, 404, -32001, "Session not found");
        return;
    }
    x = ext_of(session);
    if (!x) {
        transport_error(reply, 500, MCP_RPC_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (x->stream && !x->stream->sink.alive(x->stream->sink.arg))
        stream_close(x->stream, "the client went away"); /* a reconnect: the old one is dead */
    if (x->stream) {
        transport_error(reply, 409, -32000,
                        "Conflict: only one listening stream (GET) is allowed per session, and "
                        "this session already has one open");
        return;
    }
    if (srv->nstreams >= srv->cfg->limits.max_streams) {
        transport_error(reply, 503, -32000,
                        "Service Unavailable: too many listening streams are open; try again "
                        "later (POST requests are not affected)");
        reply->retry_after_s = 10;
        return;
    }
    st = calloc(1, sizeof *st);
    if (!st) {
        transport_error(reply, 500, MCP_RPC_INTERNAL_ERROR, "out of memory");
        return;
    }
    st->srv = srv;
    st->session = session;
    st->who = *c->who;
    st->cls = c->cls;
    st->sink = *req->stream_sink;
    st->next_keepalive_ms = core_clock_now_ms(srv->deps.clock) + keepalive_ms(srv);
    st->next = srv->streams;
    if (st->next)
        st->next->prev = st;
    srv->streams = st;
    srv->nstreams++;
    x->stream = st;
    /* The first tick (the transport runs one right after starting the stream) records the
     * listings, or, for a session whose earlier stream closed, sends list_changed for a
     * reload that happened meanwhile. */
    st->check_lists = 1;
    if (req->last_event_id) {
        /* basic/transports "Resumability and Redelivery": resend what followed that id on this
         * session's stream (the recent ones kept: RESUME_SLOTS), once the response has started
         * (mcp_server_stream_tick; the transport calls it right after starting the stream). An
         * id this session never gave is ignored: a fresh stream. */
        char *end = NULL;
        unsigned long long id = strtoull(req->last_event_id, &end, 10);
        if (end != req->last_event_id && *end == '\0' && req->last_event_id[0] != '-' &&
            id < x->last_id)
            st->replay_from = (uint64_t)id + 1;
    }
    core_log_info(srv->deps.log, "listening stream opened client=%s ws=%s streams=%zu",
                  st->who.client_id, st->who.ws, srv->nstreams);
    reply->status = 200;
    reply->stream = 1;
}

void mcp_server_stream_tick(mcp_server *srv)
{
    static const char keepalive[] = ": keep-alive\n\n";
    mcp_stream *st, *next;
    int64_t now;
    if (!srv)
        return;
    now = core_clock_now_ms(srv->deps.clock);
    for (st = srv->streams; st; st = next) {
        const char *why;
        next = st->next;
        if (!st->sink.alive(st->sink.arg)) {
            stream_close(st, "the client went away");
            continue;
        }
        if (st->check_lists) {
            st->check_lists = 0;
            if (!send_list_changes(st))
                continue; /* closed */
        }
        if (st->replay_from) {
            replay(st); /* may close st */
            continue;
        }
        if (now < st->next_keepalive_ms)
            continue;
        why = stream_authz(st);
        if (why) {
            stream_close(st, why);
            continue;
        }
        if (st->sink.write(st->sink.arg, keepalive, sizeof keepalive - 1) != PL_OK) {
            stream_close(st, "the client went away");
            continue;
        }
        if (st->session)
            mcp_session_touch(srv->sessions, st->session);
        st->next_keepalive_ms = now + keepalive_ms(srv);
    }
}

/* ---- subscriptions ---- */

static int sub_index(const sess_ext *x, const char *uri, size_t *at)
{
    size_t i;
    for (i = 0; x && i < x->nsubs; i++) {
        if (strcmp(x->subs[i], uri) == 0) {
            if (at)
                *at = i;
            return 1;
        }
    }
    return 0;
}

/* Which databases back resources (their keys map to URIs in key_uris). */
#define OBSERVED_DBS                                                                               \
    ((1u << EX_DB_WORKSPACES) | (1u << EX_DB_ACCOUNTS) | (1u << EX_DB_POSTS) |                     \
     (1u << EX_DB_CAMPAIGNS) | (1u << EX_DB_ANALYTICS))

static void on_change(void *arg, ex_db db, const char *key);

pl_rc mcp_resources_subscribe(mcp_call *c, const json_t *params, json_t **result,
                              mcp_rpc_error *err)
{
    mcp_server *srv = c->srv;
    const char *uri = json_string_value(json_object_get(params, "uri"));
    size_t max = srv->cfg->limits.max_subscriptions;
    sess_ext *x;
    pl_rc rc;

    /* server/resources "Subscriptions": the same checks as reading it. */
    rc = mcp_resource_access(c, params, "subscribe", NULL, err);
    if (rc != PL_OK)
        return rc;
    x = c->session ? ext_of(c->session) : NULL;
    if (!x)
        return PL_ERR_NOMEM;
    if (!sub_index(x, uri, NULL)) { /* subscribing twice is one subscription */
        if (x->nsubs >= max) {
            err->code = MCP_RPC_INVALID_PARAMS;
            snprintf(err->msg, sizeof err->msg,
                     "params.uri: this session already has %zu subscriptions, the limit; "
                     "unsubscribe from one first",
                     max);
            return PL_ERR_LIMIT;
        }
        if (!x->subs && !(x->subs = calloc(max, sizeof(char *))))
            return PL_ERR_NOMEM;
        if (!(x->subs[x->nsubs] = strdup(uri)))
            return PL_ERR_NOMEM;
        x->nsubs++;
    }
    if (!x->listed) {
        snprintf(x->ws, sizeof x->ws, "%s", c->who->ws);
        x->next = srv->subscribers;
        if (x->next)
            x->next->prev = x;
        srv->subscribers = x;
        x->listed = 1;
    }
    if (!srv->observing && srv->deps.ex && srv->deps.ex->store) {
        /* Installed with the first subscription: until then writes pay nothing for it. */
        ex_store_set_observer(srv->deps.ex->store, OBSERVED_DBS, on_change, srv);
        srv->observing = 1;
    }
    *result = json_object();
    return *result ? PL_OK : PL_ERR_NOMEM;
}

pl_rc mcp_resources_unsubscribe(mcp_call *c, const json_t *params, json_t **result,
                                mcp_rpc_error *err)
{
    const char *uri = json_string_value(json_object_get(params, "uri"));
    sess_ext *x = c->session ? c->session->ext : NULL;
    size_t at;
    if (!uri) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.uri: required string");
        return PL_ERR_INVALID;
    }
    if (strlen(uri) > URI_MAX) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.uri: longer than %d bytes", URI_MAX);
        return PL_ERR_INVALID;
    }
    /* Idempotent: a URI that is not subscribed (or never existed) is already unsubscribed. */
    if (sub_index(x, uri, &at)) {
        free(x->subs[at]);
        x->subs[at] = x->subs[x->nsubs - 1];
        x->nsubs--;
    }
    *result = json_object();
    return *result ? PL_OK : PL_ERR_NOMEM;
}

/* ---- change -> notifications/resources/updated ---- */

/* The URIs a changed key backs (at most 2) and its workspace. Keys: exec/store.h "KEY
 * LAYOUT" — "<ws>" (workspaces), "<ws>|acc|<id>", "<ws>|pst|<id>", "<ws>|cmp|<id>" and the
 * campaign's post links "<ws>|cpl|<campaign>|<post>", analytics "<ws>|<id>[|<id>]|<platform>"
 * (a network's numbers change the summary and that network's resource). */
static size_t key_uris(ex_db db, const char *key, char *ws, size_t wssz, char uris[2][URI_MAX + 1])
{
    const char *bar = strchr(key, '|'), *rest, *last;
    static const struct {
        ex_db db;
        const char *kind, *prefix;
    } kinds[] = {
        {EX_DB_ACCOUNTS, "acc|", "postly://social-accounts/"},
        {EX_DB_POSTS, "pst|", "postly://posts/"},
        {EX_DB_CAMPAIGNS, "cmp|", "postly://campaigns/"},
        {EX_DB_CAMPAIGNS, "cpl|", "postly://campaigns/"},
    };
    size_t wl = bar ? (size_t)(bar - key) : strlen(key), i;
    if (wl == 0 || wl >= wssz)
        return 0;
    memcpy(ws, key, wl);
    ws[wl] = '\0';
    if (db == EX_DB_WORKSPACES) {
        if (bar)
            return 0;
        snprintf(uris[0], URI_MAX + 1, "postly://workspace");
        return 1;
    }
    if (!bar)
        return 0;
    rest = bar + 1;
    if (db == EX_DB_ANALYTICS) {
        last = strrchr(rest, '|');
        if (!last || !last[1])
            return 0;
        snprintf(uris[0], URI_MAX + 1, "postly://analytics/summary");
        snprintf(uris[1], URI_MAX + 1, "postly://analytics/%s", last + 1);
        return 2;
    }
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t kl = strlen(kinds[i].kind), idl;
        const char *id;
        if (kinds[i].db != db || strncmp(rest, kinds[i].kind, kl) != 0)
            continue;
        id = rest + kl;
        idl = strcspn(id, "|");
        if (idl == 0 || idl > URI_MAX - strlen(kinds[i].prefix))
            return 0;
        snprintf(uris[0], URI_MAX + 1, "%s%.*s", kinds[i].prefix, (int)idl, id);
        return 1;
    }
    return 0;
}

/* The call context of st's token under the running policy (its workspace index looked up
 * again: a SIGHUP reload renumbers them). */
static void stream_call(const mcp_stream *st, mcp_call *c)
{
    memset(c, 0, sizeof *c);
    c->srv = st->srv;
    c->who = &st->who;
    c->cls = st->cls;
    pol_workspace_index(st->srv->deps.policy, st->who.ws, strlen(st->who.ws), &c->ws_index, NULL);
}

/* Writes msg on st as one SSE event, after head (an "id:" line, or ""). Returns 0 when st was
 * closed (the client went away). */
static int stream_send(mcp_stream *st, const char *head, json_t *msg)
{
    size_t hl = strlen(head), n = msg ? mcp_sse_event_size(msg) : 0;
    char *buf = NULL;
    int ok = 1;
    if (n && (buf = malloc(hl + n)) != NULL && mcp_sse_event(msg, buf + hl, n) == n) {
        memcpy(buf, head, hl);
        if (st->sink.write(st->sink.arg, buf, hl + n) != PL_OK) {
            stream_close(st, "the client went away");
            ok = 0;
        }
    }
    free(buf);
    json_decref(msg);
    return ok;
}

/* Sends notification `id` (uri) on st if its token may still read the resource (policy row
 * `row`): expiry and grant first (closing the stream when they fail), then the policy (a reload
 * may have changed it; nothing is sent then). Returns 0 when st was closed. */
static int send_update(mcp_stream *st, uint64_t id, const char *uri, const char *row)
{
    const char *why = stream_authz(st);
    mcp_call c;
    char head[32];
    if (why) {
        stream_close(st, why);
        return 0;
    }
    stream_call(st, &c);
    if (mcp_gate_peek(&c, row) != MCP_GATE_ALLOW)
        return 1;
    /* HTML §9.2.6: "id:" sets the stream's last event ID, which a reconnecting client sends
     * back as Last-Event-ID. */
    snprintf(head, sizeof head, "id: %llu\n", (unsigned long long)id);
    return stream_send(st, head,
                       json_pack("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0", "method",
                                 "notifications/resources/updated", "params", "uri", uri));
}

/* The listings a list_changed notification stands for, in sess_ext.lists order. */
static const struct {
    uint64_t (*fp)(const mcp_call *c);
    const char *method;
} listings[2] = {
    {mcp_tools_visible_fp, "notifications/tools/list_changed"},
    {mcp_resources_visible_fp, "notifications/resources/list_changed"},
};

/* Compares what st's token would be listed now with what its session was last told, and sends
 * list_changed for each listing that differs (no event id: they are not replayed, a reopened
 * stream compares again instead). Checks expiry and grant first. Returns 0 when st was closed. */
static int send_list_changes(mcp_stream *st)
{
    sess_ext *x = st->session ? st->session->ext : NULL;
    const char *why = stream_authz(st);
    mcp_call c;
    size_t i;
    if (why) {
        stream_close(st, why);
        return 0;
    }
    if (!x)
        return 1;
    stream_call(st, &c);
    for (i = 0; i < sizeof listings / sizeof listings[0]; i++) {
        uint64_t now = listings[i].fp(&c);
        int changed = x->lists_known && now != x->lists[i];
        x->lists[i] = now;
        if (changed &&
            !stream_send(st, "",
                         json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", listings[i].method)))
            return 0;
    }
    x->lists_known = 1;
    return 1;
}

void mcp_stream_policy_changed(mcp_server *srv)
{
    mcp_stream *st, *next;
    for (st = srv->streams; st; st = next) {
        next = st->next;
        (void)send_list_changes(st); /* may close st */
    }
}

/* Gives the change of uri in workspace ws an event id in every session subscribed to it, keeps
 * it for resumption, and sends it on the session's stream when one is open. */
static void notify(mcp_server *srv, const char *ws, const char *uri)
{
    sess_ext *x, *next;
    char row[URI_MAX + 32];

    if (mcp_resource_policy(uri, row, sizeof row) != PL_OK)
        return;
    for (x = srv->subscribers; x; x = next) {
        size_t slot;
        next = x->next;
        if (strcmp(x->ws, ws) != 0 || !sub_index(x, uri, NULL))
            continue;
        x->last_id++;
        slot = (size_t)((x->last_id - 1) % RESUME_SLOTS);
        free(x->recent[slot]);
        x->recent[slot] = strdup(uri); /* NULL (no memory): not resumable, still sent */
        if (x->stream)
            (void)send_update(x->stream, x->last_id, uri, row);
    }
}

/* Resends what a resumed stream missed (mcp_stream.replay_from). */
static void replay(mcp_stream *st)
{
    sess_ext *x = st->session ? st->session->ext : NULL;
    uint64_t id = st->replay_from, oldest;
    char row[URI_MAX + 32];
    st->replay_from = 0;
    if (!x || x->last_id == 0)
        return;
    oldest = x->last_id > RESUME_SLOTS ? x->last_id - RESUME_SLOTS + 1 : 1;
    if (id < oldest)
        id = oldest; /* older ones are gone: the client re-reads what it cares about */
    for (; id <= x->last_id; id++) {
        const char *uri = x->recent[(id - 1) % RESUME_SLOTS];
        if (!uri || mcp_resource_policy(uri, row, sizeof row) != PL_OK)
            continue;
        if (!send_update(st, id, uri, row))
            return; /* closed */
    }
}

static void on_change(void *arg, ex_db db, const char *key)
{
    mcp_server *srv = arg;
    char ws[EX_WS_MAX], uris[2][URI_MAX + 1];
    size_t n, i;
    if (!srv->subscribers)
        return;
    n = key_uris(db, key, ws, sizeof ws, uris);
    for (i = 0; i < n; i++)
        notify(srv, ws, uris[i]);
}
