/*
 * mcp/server.h — the MCP resource server, independent of the socket layer.
 *
 * mcp_server_handle() takes one HTTP request to the MCP endpoint (method, the headers that
 * matter, body) and produces one mcp_reply (status, headers, JSON body). It applies, in the
 * order of ARCHITECTURE.md §4: Host/Origin allow-lists, token checks (query-string tokens
 * refused, bearer token verified locally with keys/), MCP-Protocol-Version and MCP-Session-Id
 * rules, JSON-RPC parsing with bounds, then the method table. mcp/http.c binds it to
 * core/http; tests and the fuzz target call it directly.
 *
 * Thread: one mcp_server belongs to one event-loop thread (the verifier and the session table
 * are not synchronised).
 */
#ifndef POSTLY_MCP_SERVER_H
#define POSTLY_MCP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "mcp/config.h"
#include "mcp/session.h"

struct key_verifier;
struct pol_compiled;
struct ex_ctx;
struct az_directory;
struct mcp_usage;
struct az_seen;

/* Protocol revisions this server speaks, newest first (MCP 2025-11-25 basic/lifecycle
 * "Version Negotiation"). */
#define MCP_PROTOCOL_LATEST "2025-11-25"
/* Assumed when a request carries no MCP-Protocol-Version (basic/transports). */
#define MCP_PROTOCOL_DEFAULT "2025-03-26"

/* 1 when v names a supported revision. */
int mcp_protocol_supported(const char *v);

/* What the server borrows; everything must outlive it. */
typedef struct mcp_deps {
    const core_clock *clock;
    const core_log *log;
    struct key_verifier *verifier;     /* tokens (required) */
    const struct pol_compiled *policy; /* decisions (required) */
    const char *policy_revision;       /* shown in the audit log ("sha256:…" of the file) */
    const struct ex_ctx *ex;           /* the execution layer (required for tools/resources) */
    FILE *audit;                       /* JSON lines; NULL = no audit log */
    /* The authorization server's directory (authz/directory.h): grant liveness on every
     * request (a disconnected grant is refused at its next call) and workspace:list. NULL
     * only in unit tests that do not exercise revocation. */
    struct az_directory *directory;
    /* Usage metering and plan quotas (mcp/usage.h). NULL: not metered. */
    struct mcp_usage *usage;
    /* Last-call times of grants for the connected-apps page (authz/seen.h): every request
     * with a valid token of a live grant touches it (memory only). NULL: not recorded. */
    struct az_seen *seen;
    /* Group commit (exec/batch.h): the writes of store-only write tools join the loop
     * iteration's batch and their replies are marked held. NULL: every write is its own
     * durable transaction and no reply is held (unit tests that call mcp_server_handle). */
    struct ex_batcher *batcher;
} mcp_deps;

typedef struct mcp_server mcp_server;

/* cfg must already be finished (mcp_config_finish). PL_ERR_INVALID when a tool's schema or
 * the policy lacks a row for a tool (the server refuses to start rather than guess). */
pl_rc mcp_server_new(const mcp_config *cfg, const mcp_deps *deps, mcp_server **out);
void mcp_server_free(mcp_server *srv);

/* How the server writes to a listening stream (GET /mcp, MCP 2025-11-25 basic/transports
 * "Listening for Messages from the Server"): the transport's side of one open
 * text/event-stream response. Called on the server's thread only. */
typedef struct mcp_stream_sink {
    /* Sends len bytes of SSE text: PL_OK, or an error once the client has gone. */
    pl_rc (*write)(void *arg, const char *data, size_t len);
    /* 0 once the client's connection has closed. */
    int (*alive)(void *arg);
    /* Ends the response; arg is never used again after this call. */
    void (*close)(void *arg);
    void *arg;
} mcp_stream_sink;

/* One HTTP request. Strings are borrowed for the call; NULL when the header is absent. */
typedef struct mcp_request {
    unsigned method;   /* CORE_HTTP_GET / POST / DELETE (core/http.h values) */
    const char *query; /* raw query string ("" when none) */
    const char *host;
    size_t host_count;
    const char *origin;
    const char *authorization;
    size_t authorization_count;
    const char *accept;
    const char *content_type;
    const char *session_id;
    const char *protocol_version;
    const char *body;
    size_t body_len;
    const char *client_addr; /* the peer's address, for log lines (may be NULL) */
    /* 1: the caller can send mcp_reply.raw (mcp/http.c does); 0: every body is a json_t. */
    int raw_ok;
    /* GET only: the transport's sink for a listening stream (copied when a stream opens).
     * NULL: this transport cannot hold one open, and GET answers 405. */
    const mcp_stream_sink *stream_sink;
    const char *last_event_id; /* Last-Event-ID: resume a listening stream (docs/mcp.md) */
    /* 1: the transport can hold this request while its tool call is parked (mcp_reply.parked,
     * mcp_server_resume); needs deps.batcher. mcp/http.c sets it. */
    int park_ok;
} mcp_request;

#define MCP_WWW_AUTH_MAX 2048

/* One HTTP reply. status 0 never happens after mcp_server_handle. */
struct mcp_audit_line; /* mcp/auth.c */

typedef struct mcp_reply {
    int status;
    json_t *body;                            /* NULL: no body */
    char session_id[MCP_SESSION_ID_LEN + 1]; /* non-empty: send MCP-Session-Id */
    char www_authenticate[MCP_WWW_AUTH_MAX]; /* non-empty: send WWW-Authenticate */
    char allow[32];                          /* non-empty: send Allow (405) */
    int retry_after_s;                       /* > 0: send Retry-After */
    /* Non-NULL (an array of JSON-RPC notifications, owned): answer with text/event-stream —
     * one SSE event per notification, then one with body (the response), then end the
     * stream (MCP 2025-11-25 basic/transports "Sending Messages to the Server"). Set only
     * for a 200 answer to a tools/call that carried params._meta.progressToken from a client
     * whose Accept includes text/event-stream. */
    json_t *events;
    /* Non-NULL (owned, malloc'd, raw_len bytes, NUL-terminated): the body as compact JSON text,
     * already serialised, instead of body (which is then NULL). Only when the request had
     * raw_ok set; used for successful tools/call results, so the result is serialised once. */
    char *raw;
    size_t raw_len;
    /* 1: the reply tells of writes that are in the open group-commit batch (deps.batcher): it
     * must not be sent before that batch is durable; if the batch fails, send
     * mcp_reply_held_failed()'s error instead. held_id (owned, may be NULL) is the JSON-RPC id
     * of a single request, for that error. */
    int held;
    json_t *held_id;
    /* The audit lines of the held tool calls (owned; mcp/auth.c), written with their final
     * outcome by mcp_server_release(): their outcome is known only once the batch is. */
    struct mcp_audit_line *audit;
    /* 1 (GET, status 200): a listening stream was opened on the request's stream_sink. The
     * transport starts a text/event-stream response (not cacheable) and keeps it
     * open; the server writes through the sink and calls its close when the stream ends
     * (session ended or expired, token expired, grant revoked, client gone, shutdown). */
    int stream;
    /* Non-NULL (owned; status 0, nothing else set): a store-only write tool call was parked
     * because a group-commit batch is being committed (exec/batch.h ex_batcher_ready): the
     * transport hands it to ex_batcher_park() and, when it runs, calls mcp_server_resume()
     * for the reply. Only when the request had park_ok. */
    struct mcp_parked *parked;
} mcp_reply;

/* Runs a parked call's write part (kept): its writes join the batch the loop holds (or wait
 * for one). Returns 1 when its reply will be held (mcp_reply.held): the transport holds a
 * placeholder now (ex_batcher_hold), so that the reply belongs to this batch, and fills it
 * with mcp_server_resume's reply. Optional; once at most. Loop thread. */
int mcp_server_resume_write(mcp_server *srv, struct mcp_parked *parked);

/* Runs a parked call (consumed) — its write part unless mcp_server_resume_write did, then the
 * rest (result, audit line) — and fills *reply as mcp_server_handle would have; the reply
 * may be held. Loop thread; the server must be alive (postly-mcp frees the batcher, which
 * runs what is still parked, before the server). */
pl_rc mcp_server_resume(mcp_server *srv, struct mcp_parked *parked, mcp_reply *reply);

/* Turns a held reply whose batch failed (rc) into the error to send instead: HTTP 500 with a
 * JSON-RPC error (-32603, the request's id or null for a JSON-RPC batch) saying that the
 * change was not made durable and should be retried. Keeps session_id; clears the rest. */
void mcp_reply_held_failed(mcp_reply *reply, pl_rc rc);

/* A held reply's batch is settled (rc, as given to ex_batch_done_fn): writes the reply's kept
 * audit lines — outcome as recorded when rc is PL_OK, "not_durable" otherwise; latency_ms up
 * to now, so it includes the wait for durability — and when rc != PL_OK turns the reply into
 * mcp_reply_held_failed()'s error. The transport calls it exactly once per held reply, before
 * sending it (also when it could not hold it: rc PL_ERR_NOMEM). Loop thread. */
void mcp_server_release(mcp_server *srv, mcp_reply *reply, pl_rc rc);

/* Writes one SSE event ("event: message\ndata: <compact JSON>\n\n"; the JSON has no
 * newline, so one data line) into buf. Returns the length, or 0 when buf is too small or
 * msg cannot be encoded; mcp_sse_event_size() gives the size needed. */
size_t mcp_sse_event(const json_t *msg, char *buf, size_t bufsz);
size_t mcp_sse_event_size(const json_t *msg);

/* Handles one request to the MCP endpoint. Always fills *reply (errors become replies) and
 * returns PL_OK, or PL_ERR_NOMEM when not even an error reply could be built. */
pl_rc mcp_server_handle(mcp_server *srv, const mcp_request *req, mcp_reply *reply);

/* Releases reply->body, reply->events and reply->raw, and zeroes reply. */
void mcp_reply_clear(mcp_reply *reply);

/* The RFC 9728 protected resource metadata document (new reference). */
json_t *mcp_server_prm(const mcp_server *srv);

/* Replaces the policy (the program does it on SIGHUP) and its revision (copied). The new
 * table is borrowed like the first: the caller frees the old one after this returns PL_OK.
 * PL_ERR_INVALID when the policy lacks a row for a tool of the table (nothing changes then).
 * Rate buckets start over (their rules may have changed). Sessions are kept. Open listening
 * streams whose tools or resources listing changed for their token are sent
 * notifications/tools/list_changed or notifications/resources/list_changed. */
pl_rc mcp_server_set_policy(mcp_server *srv, const struct pol_compiled *policy,
                            const char *revision);

/* Expires idle sessions (called from a timer). */
void mcp_server_tick(mcp_server *srv);

/* Listening streams (call about every second, on the server's thread): closes those whose
 * client has gone; at each stream's keep-alive time (limits.keepalive_s on the injected
 * clock) re-checks the token behind it (expiry) and its grant (revocation, deps.directory)
 * and the session, closing the stream when any fails, else sends an SSE comment line. */
void mcp_server_stream_tick(mcp_server *srv);

/* Open listening streams (tests, metrics). */
size_t mcp_server_stream_count(const mcp_server *srv);

/* Number of tools in the table, and the live session count (tests, metrics). */
size_t mcp_server_tool_count(const mcp_server *srv);
size_t mcp_server_session_count(const mcp_server *srv);

#endif
