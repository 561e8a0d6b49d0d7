/*
 * mcp/mcp_int.h — private to mcp/: the server struct, the per-request call context, and the
 * tool / resource / prompt tables shared by server.c, auth.c, tools.c, resources.c and
 * prompts.c. Not a public contract.
 */
#ifndef POSTLY_MCP_INT_H
#define POSTLY_MCP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/store.h"
#include "keys/verify.h"
#include "mcp/jsonrpc.h"
#include "mcp/rate.h"
#include "mcp/server.h"
#include "mcp/session.h"
#include "policy/policy.h"

typedef struct mcp_call mcp_call;

/* ---- tools as data (STYLE.md §7: a new tool is a row) ---- */

/* A tool's work: validate/translate args, call the execution layer, shape *out (an object,
 * new reference). Failures fill err (field + message) and return the pl_rc; the caller
 * turns them into isError results. */
typedef pl_rc (*mcp_tool_fn)(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                             ex_err *err);

enum { MCP_PUBLISH_NEVER = 0, MCP_PUBLISH_ALWAYS = 1, MCP_PUBLISH_IF_SCHEDULED = 2 };

typedef struct mcp_tool {
    const char *name;          /* postly_verb_noun; also the policy row name */
    const char *title;         /* human display name */
    const char *description;   /* for a model: when to use it, side effects */
    const char *input_schema;  /* JSON Schema text (parsed and checked at start) */
    const char *output_schema; /* JSON Schema text of structuredContent */
    /* MCP 2025-11-25 server/tools "Tool Annotations": all four always explicit. */
    int read_only, destructive, idempotent, open_world;
    const char *policy_suffix_arg; /* non-NULL: the policy row is name#<this argument> */
    mcp_tool_fn fn;
    /* Counted against the plan's publish quota: publishing now, and committing a post to the
     * schedule (the scheduler later publishes it without another MCP call, so the quota is
     * taken when the user's agent schedules; unscheduling gives nothing back). */
    int counts_publish; /* MCP_PUBLISH_* */
    /* Instead of fn, for the few tools that need the caller (user, decision, directory). */
    pl_rc (*cfn)(struct mcp_call *c, const pol_decision *d, const json_t *args, json_t **out,
                 ex_err *err);
} mcp_tool;

/* The table (mcp/tools.c). */
extern const mcp_tool mcp_tools[];
extern const size_t mcp_tools_count;

/* ---- the server ---- */

struct mcp_server {
    const mcp_config *cfg;
    mcp_deps deps;
    mcp_session_table *sessions;
    json_t **tool_in;  /* parsed input schemas, one per mcp_tools row */
    json_t **tool_out; /* parsed output schemas */
    uint64_t basic_scope;
    char prm_url[MCP_CFG_URL_MAX + 64];
    char resource_url[MCP_CFG_URL_MAX];
    uint64_t decision_seq;
    char boot_id[17];  /* random per start: decision ids are unique across restarts */
    char revision[80]; /* the policy revision (deps.policy_revision points here) */
    /* Directory answers about workspaces (existence, plan), a few seconds old at most. */
#define MCP_WS_CACHE_SLOTS 256
    struct mcp_ws_cache_ent {
        char ws[72];
        char plan[32];
        int64_t expires_ms;
    } ws_cache[MCP_WS_CACHE_SLOTS];
    mcp_rate *rate;
    uint8_t empty_args_sha256[32]; /* SHA-256("{}") for the audit line's args_sha256 */
    int64_t audit_sec;             /* the second audit_when was formatted for */
    char audit_when[40];           /* ex_time_format of audit_sec, "" until the first audit line */
    /* Listening streams (GET /mcp) and resource subscriptions (mcp/stream.c). */
    struct mcp_stream *streams;   /* open streams, a list */
    struct sess_ext *subscribers; /* sessions with subscriptions, a list */
    size_t nstreams;
    int observing; /* the store's change observer is installed */
};

/* Per request: who is calling, where, and how the reply is shaped. */
struct mcp_call {
    mcp_server *srv;
    const key_verified *who;
    pol_class cls;
    uint32_t ws_index;
    mcp_session *session;
    mcp_reply *reply;
    int http_done;    /* a handler produced an HTTP-level reply (403 step-up, 429) */
    const json_t *id; /* the request's id (borrowed) */
    char plan[32];    /* the workspace's plan ("" = unknown: mcp_plan_get gives free) */
    int64_t start_ms;
    /* MCP 2025-11-25 basic/utilities/progress: a tools/call with params._meta.progressToken
     * from a client that accepts text/event-stream. progress_token is borrowed from the
     * request; events (owned) collects notifications/progress messages that the transport
     * sends as SSE events before the response. Both NULL otherwise. */
    const json_t *progress_token;
    json_t *events;
    double progress; /* the last value sent: progress must increase */
    /* raw_ok: the caller accepts a pre-serialised result (a single request answered as
     * application/json; not batches, not SSE). A method may then leave *result NULL and put
     * the result object's compact JSON text in raw_result (owned, malloc'd, raw_result_len
     * bytes); dispatch splices it into the response text (mcp_reply.raw). */
    int raw_ok;
    char *raw_result;
    size_t raw_result_len;
    /* 1: a tool's writes joined the open group-commit batch (exec/batch.h): the reply must
     * wait until the batch is durable (mcp_reply.held). */
    int held;
    /* Audit lines of a call whose outcome is final only when its batch is (docs/mcp.md "Group
     * commit"): while audit_hold is set, mcp_audit() appends its line to *audit_hold instead
     * of writing it; audit_kept (owned) collects the lines of the calls that joined the batch,
     * handed to mcp_reply.audit and written by mcp_server_release(). */
    struct mcp_audit_line **audit_hold;
    struct mcp_audit_line *audit_kept;
    /* Parking (docs/mcp.md "Group commit"): park_ok (a single request over a transport that
     * can hold it, with deps.batcher) lets tools/call park an authorised store-only write
     * while a batch commit is in flight (ex_batcher_ready() 0): it then returns with park set
     * (owned) and no reply; mcp_tools_call_resume() runs the rest later. */
    int park_ok;
    struct tool_park *park;
};

/* Runs the write part of a parked tools/call (c->park, kept): workspace record, quota, the
 * tool in the batch (sets c->held when it joined). Once only. */
void mcp_tools_call_resume_write(mcp_call *c);
/* Runs the rest of a parked tools/call (c->park, consumed): the write part if not done yet,
 * then result and audit line, as mcp_tools_call would have. */
pl_rc mcp_tools_call_resume(mcp_call *c, json_t **result, mcp_rpc_error *err);
/* Frees a parked call's state without running it. NULL-safe. */
void mcp_tools_park_free(struct tool_park *p);

/* Appends a notifications/progress message (progress, total, message) to c->events when the
 * request asked for progress; nothing otherwise. progress must exceed the previous value. */
void mcp_progress(mcp_call *c, double progress, double total, const char *message);

/* A method handler: PL_OK with *result (new reference), or an error: err filled (JSON-RPC
 * error), or c->http_done set (reply already formed). */
typedef pl_rc (*mcp_method_fn)(mcp_call *c, const json_t *params, json_t **result,
                               mcp_rpc_error *err);

/* The workspace's content record (exec/workspace.h) for reads: when the execution layer has
 * none yet, the defaults it would create ({id, name = id, plan "free", timezone "UTC",
 * settings {}, version 0}) WITHOUT writing anything, so read-only tools and resources stay
 * free of side effects. */
pl_rc mcp_workspace_view(const struct ex_ctx *ex, const char *ws, json_t **out, ex_err *err);
/* Creates the record with those defaults when missing (the first write tool call does). */
pl_rc mcp_workspace_ensure(const struct ex_ctx *ex, const char *ws);

pl_rc mcp_tools_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
/* What tools/list, resources/list and resources/templates/list would show c (which tools,
 * resources, templates and per-platform rows the policy lets it see or read), folded into
 * one 64-bit value each: equal values, equal lists (up to a hash collision). The listening
 * stream compares them across a policy reload (notifications/.../list_changed). */
uint64_t mcp_tools_visible_fp(const mcp_call *c);
uint64_t mcp_resources_visible_fp(const mcp_call *c);
/* One step of those fingerprints (FNV-1a over one byte per listed item). */
static inline uint64_t mcp_fp_add(uint64_t fp, unsigned v)
{
    return (fp ^ (uint8_t)v) * 0x100000001b3ULL;
}
#define MCP_FP_INIT 0xcbf29ce484222325ULL
pl_rc mcp_tools_call(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
pl_rc mcp_resources_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
pl_rc mcp_resources_templates_list(mcp_call *c, const json_t *params, json_t **result,
                                   mcp_rpc_error *err);
pl_rc mcp_resources_read(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
/* params.uri checked as resources/read does it: bounds, known URI, the policy gate (403
 * step-up; hidden by policy -> -32002), the rate rules, and the object read in the caller's
 * workspace (unknown or another workspace's -> -32002). kind names the audit record
 * ("resource", "subscribe"). *out (when out is non-NULL) is the resource's JSON. */
pl_rc mcp_resource_access(mcp_call *c, const json_t *params, const char *kind, json_t **out,
                          mcp_rpc_error *err);
/* The policy row guarding uri into buf; PL_ERR_NOT_FOUND when no resource matches. */
pl_rc mcp_resource_policy(const char *uri, char *buf, size_t bufsz);

/* ---- listening streams and subscriptions (mcp/stream.c) ---- */

/* GET /mcp (after Host, Origin and the token were checked): opens a listening stream for the
 * request's session, or forms the refusal (405, 406, 400, 404, 409, 503). */
void mcp_stream_open(mcp_call *c, const mcp_request *req, const uint8_t owner[32]);
pl_rc mcp_resources_subscribe(mcp_call *c, const json_t *params, json_t **result,
                              mcp_rpc_error *err);
pl_rc mcp_resources_unsubscribe(mcp_call *c, const json_t *params, json_t **result,
                                mcp_rpc_error *err);
/* Session end hook (mcp_session_table_on_end): closes the session's stream, drops its
 * subscriptions. arg is the server. */
void mcp_stream_session_ended(void *arg, mcp_session *s);
/* Closes every stream (server shutdown). */
void mcp_stream_close_all(mcp_server *srv);
/* The policy was replaced (SIGHUP): each open stream whose tools or resources listing changed
 * for its token is sent notifications/tools/list_changed and/or
 * notifications/resources/list_changed (server/tools, server/resources "List Changed
 * Notification"); a session whose stream is closed is told when it opens one again. */
void mcp_stream_policy_changed(mcp_server *srv);
pl_rc mcp_prompts_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
pl_rc mcp_prompts_get(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err);
pl_rc mcp_completion_complete(mcp_call *c, const json_t *params, json_t **result,
                              mcp_rpc_error *err);

/* ---- the policy gate (mcp/auth.c) ---- */

typedef enum mcp_gate_result {
    MCP_GATE_ALLOW = 0,
    MCP_GATE_STEP_UP,  /* 403 insufficient_scope formed in c->reply; c->http_done set */
    MCP_GATE_POLICY,   /* forbidden here by policy: hide and refuse */
    MCP_GATE_APPROVAL, /* needs a person's approval first */
    MCP_GATE_NO_ROW    /* the policy has no row for this name: deny */
} mcp_gate_result;

/* Decides for the policy row `name` and, on DENY_SCOPE, forms the 403 step-up reply. *d (may
 * be NULL) receives the decision. Writes the decision's audit record when audit is set. */
mcp_gate_result mcp_gate(mcp_call *c, const char *name, pol_decision *d);

/* Charges the rate buckets for a call to policy row `name`. PL_OK, or PL_ERR_LIMIT with a
 * 429 reply (Retry-After, JSON-RPC error naming the rule) formed and c->http_done set. */
pl_rc mcp_rate_charge(mcp_call *c, const char *name, const json_t *id);

/* Decision without side effects (for listings). */
mcp_gate_result mcp_gate_peek(const mcp_call *c, const char *name);

/* Forms a 401 reply: WWW-Authenticate with resource_metadata and scope (+ error). */
void mcp_auth_challenge(const mcp_server *srv, mcp_reply *reply, const char *error,
                        const char *description);

/* Writes one audit record (JSON line): never the token, arguments only as a hash. While
 * c->audit_hold is set the record is kept instead (appended to *c->audit_hold), to be written
 * by mcp_audit_lines_write() with its final outcome and latency. */
void mcp_audit(mcp_call *c, const char *kind, const char *target, const char *outcome,
               const pol_decision *d, const json_t *args);
/* Writes the kept lines of list (in order) with outcome (NULL: each line's own) and the
 * latency up to now, then frees them. */
void mcp_audit_lines_write(mcp_server *srv, struct mcp_audit_line *list, const char *outcome);
/* Frees the lines of list without writing them. NULL-safe. */
void mcp_audit_lines_free(struct mcp_audit_line *list);
/* Appends the lines of *from to *to (both owned lists); *from becomes NULL. */
void mcp_audit_lines_move(struct mcp_audit_line **to, struct mcp_audit_line **from);

/* ---- JSON Schema subset used by the tool table (mcp/schema.c) ---- */

/* Checks that schema uses only the supported keywords and has bounds on every string and
 * array. PL_ERR_INVALID with a message in errbuf. */
pl_rc mcp_schema_check(const json_t *schema, int input, char *errbuf, size_t errsz);

/* Validates v against schema. PL_ERR_INVALID with err->field (a JSON path like
 * "targets[2].text") and err->msg naming the rule. */
pl_rc mcp_schema_validate(const json_t *schema, const json_t *v, ex_err *err);

#endif
