#include "mcp/server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json_text.h"
#include "core/crypto.h"
#include "authz/directory.h"
#include "authz/seen.h"
#include "core/http.h"
#include "mcp/mcp_int.h"

/* MCP 2025-11-25 basic/lifecycle: the revisions we speak, newest first. */
static const char *const protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

int mcp_protocol_supported(const char *v)
{
    size_t i;
    if (!v)
        return 0;
    for (i = 0; i < sizeof protocol_versions / sizeof protocol_versions[0]; i++)
        if (strcmp(v, protocol_versions[i]) == 0)
            return 1;
    return 0;
}

/* MCP 2025-11-25 server/utilities/logging: syslog severities (RFC 5424). */
static const char *const log_levels[] = {"debug", "info",     "notice", "warning",
                                         "error", "critical", "alert",  "emergency"};

void mcp_reply_clear(mcp_reply *reply)
{
    if (!reply)
        return;
    json_decref(reply->body);
    json_decref(reply->events);
    json_decref(reply->held_id);
    free(reply->raw);
    mcp_audit_lines_free(reply->audit); /* unreleased: see mcp_server_release */
    memset(reply, 0, sizeof *reply);
}

void mcp_server_release(mcp_server *srv, mcp_reply *reply, pl_rc rc)
{
    /* One line per call, written once its outcome is final: the client's outcome. */
    mcp_audit_lines_write(srv, reply->audit, rc == PL_OK ? NULL : "not_durable");
    reply->audit = NULL;
    if (rc != PL_OK)
        mcp_reply_held_failed(reply, rc);
}

void mcp_reply_held_failed(mcp_reply *reply, pl_rc rc)
{
    char msg[200], sid[sizeof reply->session_id];
    json_t *id = reply->held_id;
    snprintf(msg, sizeof msg,
             "the change could not be made durable (store: %s); treat it as not saved and "
             "retry (with the same idempotency_key a retry cannot apply it twice)",
             pl_errname(rc));
    memcpy(sid, reply->session_id, sizeof sid);
    reply->held_id = NULL;
    mcp_reply_clear(reply);
    memcpy(reply->session_id, sid, sizeof sid);
    reply->status = 500;
    reply->body = mcp_rpc_error_new(id, MCP_RPC_INTERNAL_ERROR, msg, NULL);
    json_decref(id);
}

/* HTML Living Standard §9.2 "Server-sent events": an event is lines of "field: value" ended
 * by a blank line; "event: message" is the default type, spelled out for clarity. Compact
 * JSON escapes control characters, so the data is one line. */
#define SSE_PREFIX "event: message\ndata: "
#define SSE_SUFFIX "\n\n"

size_t mcp_sse_event_size(const json_t *msg)
{
    size_t n = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    return n ? n + sizeof SSE_PREFIX - 1 + sizeof SSE_SUFFIX - 1 : 0;
}

size_t mcp_sse_event(const json_t *msg, char *buf, size_t bufsz)
{
    size_t need = mcp_sse_event_size(msg), n;
    if (need == 0 || need > bufsz)
        return 0;
    memcpy(buf, SSE_PREFIX, sizeof SSE_PREFIX - 1);
    n = json_dumpb(msg, buf + sizeof SSE_PREFIX - 1, bufsz - (sizeof SSE_PREFIX - 1), JSON_COMPACT);
    if (n + sizeof SSE_PREFIX - 1 + sizeof SSE_SUFFIX - 1 != need)
        return 0;
    memcpy(buf + sizeof SSE_PREFIX - 1 + n, SSE_SUFFIX, sizeof SSE_SUFFIX - 1);
    return need;
}

void mcp_progress(mcp_call *c, double progress, double total, const char *message)
{
    json_t *n;
    if (!c->events || !c->progress_token || progress <= c->progress)
        return;
    n = json_pack("{s:s, s:s, s:{s:O, s:f, s:f, s:s}}", "jsonrpc", "2.0", "method",
                  "notifications/progress", "params", "progressToken", c->progress_token,
                  "progress", progress, "total", total, "message", message);
    if (n && json_array_append_new(c->events, n) == 0)
        c->progress = progress;
}

/* A transport-level refusal: HTTP status and a JSON-RPC error body with id null.
 * -32000 is the implementation-defined server error (JSON-RPC 2.0 §5.1), as the official
 * SDKs answer transport errors. */
static void reply_transport(mcp_reply *r, int status, int code, const char *msg)
{
    json_decref(r->body);
    r->status = status;
    r->body = mcp_rpc_error_new(NULL, code, msg, NULL);
}

static void reply_rpc(mcp_reply *r, int status, json_t *body_take)
{
    json_decref(r->body);
    r->status = status;
    r->body = body_take;
}

/* ---- methods ---- */

static pl_rc m_initialize(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const json_t *pv = json_object_get(params, "protocolVersion");
    const json_t *caps = json_object_get(params, "capabilities");
    const json_t *info = json_object_get(params, "clientInfo");
    const char *version = MCP_PROTOCOL_LATEST;
    json_t *res;

    if (!json_is_string(pv)) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.protocolVersion: required string");
        return PL_ERR_INVALID;
    }
    if (caps && !json_is_object(caps)) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.capabilities: must be an object");
        return PL_ERR_INVALID;
    }
    if (!json_is_object(info) || !json_is_string(json_object_get(info, "name"))) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg,
                 "params.clientInfo: required object with a string \"name\"");
        return PL_ERR_INVALID;
    }
    /* basic/lifecycle "Version Negotiation": echo a supported version, else offer ours. */
    if (mcp_protocol_supported(json_string_value(pv)))
        version = json_string_value(pv);
    res = json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}, s:{s:b}, s:{}, s:{}}, s:{s:s, s:s, s:s}, s:s}",
                    "protocolVersion", version, "capabilities", "tools", "listChanged", 1,
                    "resources", "subscribe", 1, "listChanged", 1, "prompts", "listChanged", 0,
                    "logging", "completions", "serverInfo", "name", "postly-mcp", "title", "Postly",
                    "version", "0.1.0", "instructions",
                    "Postly publishes to social networks on the user's behalf. Every call acts "
                    "in the one workspace the user picked when connecting. Read context with "
                    "postly_get_workspace and the postly:// resources; write tools change real "
                    "content. A 403 insufficient_scope answer means the user must grant one "
                    "more scope.");
    if (!res)
        return PL_ERR_NOMEM;
    *result = res;
    return PL_OK;
}

static pl_rc m_ping(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    *result = json_object();
    return *result ? PL_OK : PL_ERR_NOMEM;
}

static pl_rc m_set_level(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *lv = json_string_value(json_object_get(params, "level"));
    size_t i;
    for (i = 0; lv && i < sizeof log_levels / sizeof log_levels[0]; i++) {
        if (strcmp(lv, log_levels[i]) == 0) {
            if (c->session)
                c->session->log_level = (int)i;
            *result = json_object();
            return *result ? PL_OK : PL_ERR_NOMEM;
        }
    }
    err->code = MCP_RPC_INVALID_PARAMS;
    snprintf(err->msg, sizeof err->msg,
             "params.level: must be one of debug, info, notice, warning, error, critical, "
             "alert, emergency");
    return PL_ERR_INVALID;
}

static const struct {
    const char *name;
    mcp_method_fn fn;
} methods[] = {
    {"initialize", m_initialize},
    {"ping", m_ping},
    {"logging/setLevel", m_set_level},
    {"tools/list", mcp_tools_list},
    {"tools/call", mcp_tools_call},
    {"resources/list", mcp_resources_list},
    {"resources/templates/list", mcp_resources_templates_list},
    {"resources/read", mcp_resources_read},
    {"resources/subscribe", mcp_resources_subscribe},
    {"resources/unsubscribe", mcp_resources_unsubscribe},
    {"prompts/list", mcp_prompts_list},
    {"prompts/get", mcp_prompts_get},
    {"completion/complete", mcp_completion_complete},
};

static mcp_method_fn method_find(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].fn;
    return NULL;
}

/* ---- lifecycle ---- */

/* Every tool of the table needs a requirement row in the policy: the server refuses a policy
 * that would leave a tool undecidable rather than guess. */
static pl_rc policy_covers_tools(const pol_compiled *policy, const core_log *log)
{
    size_t i;
    for (i = 0; i < mcp_tools_count; i++) {
        const mcp_tool *t = &mcp_tools[i];
        uint32_t idx;
        if (pol_tool_index(policy, t->name, strlen(t->name), &idx) != PL_OK) {
            core_log_error(log, "tool %s: the policy has no requirement row for it", t->name);
            return PL_ERR_INVALID;
        }
    }
    return PL_OK;
}

pl_rc mcp_server_set_policy(mcp_server *srv, const struct pol_compiled *policy,
                            const char *revision)
{
    mcp_rate *rate = NULL;
    pl_rc rc;
    if (!srv || !policy)
        return PL_ERR_INVALID;
    rc = policy_covers_tools(policy, srv->deps.log);
    if (rc != PL_OK)
        return rc;
    rc = mcp_rate_new(policy, srv->deps.clock, srv->cfg->limits.max_rate_buckets,
                      srv->cfg->limits.token_rate_per_min, &rate);
    if (rc != PL_OK)
        return rc;
    mcp_rate_free(srv->rate); /* rule indices change with the policy: buckets start full */
    srv->rate = rate;
    srv->deps.policy = policy;
    snprintf(srv->revision, sizeof srv->revision, "%s", revision ? revision : "");
    mcp_stream_policy_changed(srv);
    return PL_OK;
}

pl_rc mcp_server_new(const mcp_config *cfg, const mcp_deps *deps, mcp_server **out)
{
    mcp_server *srv = NULL;
    const pol_bundle_info *bundle = NULL;
    const char *p, *path;
    size_t i, olen;
    pl_rc rc;
    char err[256];

    *out = NULL;
    if (!cfg || !deps || !deps->verifier || !deps->policy || !cfg->canonical_url[0])
        return PL_ERR_INVALID;
    srv = calloc(1, sizeof *srv);
    if (!srv)
        return PL_ERR_NOMEM;
    srv->cfg = cfg;
    srv->deps = *deps;
    core_sha256("{}", 2, srv->empty_args_sha256);
    rc = mcp_session_table_new(deps->clock, cfg->limits.max_sessions,
                               cfg->limits.sessions_per_principal, cfg->limits.session_idle_ms,
                               &srv->sessions);
    if (rc != PL_OK)
        goto out;
    mcp_session_table_on_end(srv->sessions, mcp_stream_session_ended, srv);
    {
        uint8_t rnd[8];
        rc = core_random(rnd, sizeof rnd);
        if (rc != PL_OK)
            goto out;
        core_hex_encode(rnd, sizeof rnd, srv->boot_id, sizeof srv->boot_id);
    }
    rc = mcp_rate_new(deps->policy, deps->clock, cfg->limits.max_rate_buckets,
                      cfg->limits.token_rate_per_min, &srv->rate);
    if (rc != PL_OK)
        goto out;
    srv->tool_in = calloc(mcp_tools_count + 1, sizeof(json_t *));
    srv->tool_out = calloc(mcp_tools_count + 1, sizeof(json_t *));
    if (!srv->tool_in || !srv->tool_out) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < mcp_tools_count; i++) {
        const mcp_tool *t = &mcp_tools[i];
        json_error_t je;
        srv->tool_in[i] = json_loads(t->input_schema, 0, &je);
        srv->tool_out[i] = json_loads(t->output_schema, 0, &je);
        if (!srv->tool_in[i] || !srv->tool_out[i] ||
            mcp_schema_check(srv->tool_in[i], 1, err, sizeof err) != PL_OK ||
            mcp_schema_check(srv->tool_out[i], 0, err, sizeof err) != PL_OK) {
            core_log_error(deps->log, "tool %s: bad schema: %s", t->name, err);
            rc = PL_ERR_INVALID;
            goto out;
        }
    }
    rc = policy_covers_tools(deps->policy, deps->log);
    if (rc != PL_OK)
        goto out;
    snprintf(srv->revision, sizeof srv->revision, "%s",
             deps->policy_revision ? deps->policy_revision : "");
    srv->deps.policy_revision = srv->revision;
    /* The basic scope set of the 401 challenge and scopes_supported: the smallest read-only
     * bundle plus workspace:read, so a client that asks for "everything offered" starts
     * with read-only access and steps up (MCP 2025-11-25 basic/authorization "Scope
     * Selection Strategy"). */
    srv->basic_scope = POL_MASK(POL_SCOPE_WORKSPACE_READ);
    if (pol_bundle_get(POL_BUNDLE_ANALYTICS_READONLY, &bundle) == PL_OK)
        srv->basic_scope |= bundle->mask;
    /* RFC 9728 §3.1: the well-known segment goes between the host and the path. */
    snprintf(srv->resource_url, sizeof srv->resource_url, "%s", cfg->canonical_url);
    p = strstr(cfg->canonical_url, "://");
    p = p ? p + 3 : cfg->canonical_url;
    path = strchr(p, '/');
    olen = path ? (size_t)(path - cfg->canonical_url) : strlen(cfg->canonical_url);
    snprintf(srv->prm_url, sizeof srv->prm_url, "%.*s/.well-known/oauth-protected-resource%s",
             (int)olen, cfg->canonical_url, path && strcmp(path, "/") != 0 ? path : "");
    rc = PL_OK;
out:
    if (rc != PL_OK)
        mcp_server_free(srv);
    else
        *out = srv;
    return rc;
}

void mcp_server_free(mcp_server *srv)
{
    size_t i;
    if (!srv)
        return;
    for (i = 0; i < mcp_tools_count; i++) {
        if (srv->tool_in)
            json_decref(srv->tool_in[i]);
        if (srv->tool_out)
            json_decref(srv->tool_out[i]);
    }
    free(srv->tool_in);
    free(srv->tool_out);
    mcp_stream_close_all(srv);
    if (srv->observing)
        ex_store_set_observer(srv->deps.ex->store, 0, NULL, NULL);
    mcp_session_table_free(srv->sessions);
    mcp_rate_free(srv->rate);
    free(srv);
}

void mcp_server_tick(mcp_server *srv)
{
    if (srv)
        mcp_session_sweep(srv->sessions, NULL);
}

size_t mcp_server_tool_count(const mcp_server *srv)
{
    return mcp_tools_count;
}

size_t mcp_server_session_count(const mcp_server *srv)
{
    return srv ? mcp_session_count(srv->sessions) : 0;
}

json_t *mcp_server_prm(const mcp_server *srv)
{
    char scope[POL_SCOPE_FORMAT_MAX];
    json_t *doc, *arr;
    const char *s, *sp;
    if (pol_scope_format(srv->basic_scope, scope, sizeof scope, NULL) != PL_OK)
        return NULL;
    arr = json_array();
    for (s = scope; arr && *s; s = *sp ? sp + 1 : sp) {
        sp = strchr(s, ' ');
        if (!sp)
            sp = s + strlen(s);
        json_array_append_new(arr, json_stringn(s, (size_t)(sp - s)));
    }
    /* RFC 9728 §2. */
    doc = json_pack("{s:s, s:[s], s:o, s:[s], s:s}", "resource", srv->resource_url,
                    "authorization_servers", srv->cfg->authz_url, "scopes_supported", arr,
                    "bearer_methods_supported", "header", "resource_name", "Postly MCP");
    return doc;
}

/* ---- request checks ---- */

static int list_has(const char list[][MCP_CFG_ENTRY_MAX], size_t n, const char *v)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (strcasecmp(list[i], v) == 0)
            return 1;
    return 0;
}

/* 1 when the query string carries an access_token parameter (RFC 6750 §2.3, which MCP
 * 2025-11-25 basic/authorization "Token Requirements" forbids). */
static int query_has_token(const char *q)
{
    const char *p = q;
    while (p && *p) {
        if (strncmp(p, "access_token=", 13) == 0 || strncmp(p, "access_token&", 13) == 0 ||
            strcmp(p, "access_token") == 0)
            return 1;
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

/* 1 when Accept lists text/event-stream (or a text or any-type wildcard; not when absent). */
static int accept_sse(const char *accept)
{
    return accept && (strstr(accept, "text/event-stream") || strstr(accept, "text/*") ||
                      strstr(accept, "*/*"));
}

/* Accept must allow application/json (MCP basic/transports: clients list both
 * application/json and text/event-stream; we answer JSON, or SSE for a tools/call that asks
 * for progress). Absent Accept is allowed. */
static int accept_ok(const char *accept)
{
    if (!accept || !*accept)
        return 1;
    return strstr(accept, "application/json") || strstr(accept, "*/*") ||
           strstr(accept, "application/*");
}

static int content_type_json(const char *ct)
{
    size_t n = strlen("application/json");
    if (!ct || strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static void owner_of(const key_verified *who, uint8_t out[32])
{
    char buf[KEY_CLAIM_MAX * 2 + KEY_URL_CLAIM_MAX + 8];
    int n = snprintf(buf, sizeof buf, "%s%c%s%c%s", who->sub, 0, who->client_id, 0, who->ws);
    core_sha256(buf, n > 0 ? (size_t)n : 0, out);
}

/* The workspace's existence and plan from the directory, remembered for WS_CACHE_MS: the
 * directory parses a JSON record per lookup (4 % of a read call in bench/mcp), and a deleted
 * workspace or a plan change may take that long to be seen. Grants are never cached: a
 * revocation is refused at the very next request. */
#define WS_CACHE_MS 5000

static pl_rc workspace_plan(mcp_server *srv, const char *ws, char plan[32])
{
    uint64_t h = 1469598103934665603ULL;
    const char *p;
    struct mcp_ws_cache_ent *e;
    int64_t now = core_clock_now_ms(srv->deps.clock);
    az_dir_workspace w;
    pl_rc rc;
    for (p = ws; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    e = &srv->ws_cache[h % MCP_WS_CACHE_SLOTS];
    if (e->expires_ms > now && strcmp(e->ws, ws) == 0) {
        memcpy(plan, e->plan, 32);
        return PL_OK;
    }
    rc = az_directory_workspace_get(srv->deps.directory, ws, &w);
    if (rc != PL_OK)
        return rc;
    snprintf(plan, 32, "%s", w.plan);
    if (strlen(ws) < sizeof e->ws) {
        snprintf(e->ws, sizeof e->ws, "%s", ws);
        memcpy(e->plan, plan, 32);
        e->expires_ms = now + WS_CACHE_MS;
    }
    return PL_OK;
}

/* Verifies the bearer token; on failure forms the reply and returns non-OK. */
static pl_rc authenticate(mcp_server *srv, const mcp_request *req, key_verified *who, char plan[32],
                          mcp_reply *reply)
{
    const char *a = req->authorization, *tok;
    key_reason why = KEY_REASON_NONE;
    pl_rc rc;

    if (query_has_token(req->query)) {
        reply->status = 400;
        reply->body = json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
                                "access tokens in the query string are refused; send them in "
                                "the Authorization header");
        return PL_ERR_DENIED;
    }
    if (req->authorization_count > 1) {
        reply->status = 400;
        reply->body = json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
                                "more than one Authorization header");
        return PL_ERR_DENIED;
    }
    if (!a) {
        /* RFC 6750 §3.1: no error code when the request had no authentication. */
        mcp_auth_challenge(srv, reply, NULL, "an access token is required");
        return PL_ERR_DENIED;
    }
    if (strncasecmp(a, "Bearer ", 7) != 0) {
        mcp_auth_challenge(srv, reply, "invalid_request",
                           "the Authorization header must use the Bearer scheme");
        return PL_ERR_DENIED;
    }
    tok = a + 7;
    while (*tok == ' ')
        tok++;
    rc = key_verifier_verify(srv->deps.verifier, tok, strlen(tok), who, &why);
    if (rc == PL_OK) {
        pol_class cls;
        if (pol_class_lookup(who->cls, strlen(who->cls), &cls) != PL_OK) {
            mcp_auth_challenge(srv, reply, "invalid_token", "the token's client class is unknown");
            return PL_ERR_DENIED;
        }
        if (srv->deps.directory) {
            /* A disconnected or revoked grant is refused at once: the directory reads the
             * authorization server's last committed state (authz/directory.h). */
            rc = az_directory_grant_check(srv->deps.directory, who->gid);
            if (rc == PL_OK)
                rc = workspace_plan(srv, who->ws, plan);
            if (rc == PL_ERR_DENIED || rc == PL_ERR_NOT_FOUND) {
                core_log_info(srv->deps.log, "401 invalid_token reason=%s client=%s ws=%s",
                              rc == PL_ERR_DENIED ? "grant_revoked" : "workspace_gone",
                              who->client_id, who->ws);
                mcp_auth_challenge(srv, reply, "invalid_token",
                                   rc == PL_ERR_DENIED ? "the grant behind this token was revoked"
                                                       : "the token's workspace does not exist");
                return PL_ERR_DENIED;
            }
            if (rc != PL_OK) {
                reply->status = 503;
                reply->retry_after_s = 5;
                reply->body =
                    json_pack("{s:s, s:s}", "error", "temporarily_unavailable", "error_description",
                              "the grant could not be checked right now");
                return PL_ERR_IO;
            }
        }
        return PL_OK;
    }
    if (key_reason_classify(why) == KEY_CLASS_INVALID_TOKEN) {
        /* The reason's name only: never the token or any part of it. */
        core_log_info(srv->deps.log, "401 invalid_token reason=%s peer=%s", key_reason_name(why),
                      req->client_addr ? req->client_addr : "-");
        mcp_auth_challenge(srv, reply, "invalid_token", key_reason_text(why));
        return PL_ERR_DENIED;
    }
    core_log_warn(srv->deps.log, "token verification unavailable: %s", key_reason_name(why));
    reply->status = 503;
    reply->retry_after_s = 5;
    reply->body = json_pack("{s:s, s:s}", "error", "temporarily_unavailable", "error_description",
                            "the token could not be verified right now");
    return PL_ERR_IO;
}

/* The response text around a pre-serialised result (c->raw_result, taken): the bytes
 * json_dumps(mcp_rpc_result_new(id, result), JSON_COMPACT) would give, without building and
 * walking the tree. */
static void reply_raw(mcp_call *c, const json_t *id)
{
    static const char p1[] = "{\"jsonrpc\":\"2.0\",\"id\":";
    static const char p2[] = ",\"result\":";
    char *idtext = id ? core_json_compact(id, NULL) : NULL; /* json_dumps(ENCODE_ANY)'s bytes */
    const char *idt = idtext ? idtext : "null";
    size_t idn = strlen(idt), len;
    char *r = NULL;

    if (id && !idtext)
        goto out;
    len = sizeof p1 - 1 + idn + sizeof p2 - 1 + c->raw_result_len + 1;
    r = malloc(len + 1);
    if (!r)
        goto out;
    memcpy(r, p1, sizeof p1 - 1);
    memcpy(r + sizeof p1 - 1, idt, idn); // NOLINT(bugprone-not-null-terminated-result): ends below
    memcpy(r + sizeof p1 - 1 + idn, p2, sizeof p2 - 1);
    memcpy(r + sizeof p1 - 1 + idn + sizeof p2 - 1, c->raw_result, c->raw_result_len);
    memcpy(r + len - 1, "}", 2);
out:
    free(idtext);
    free(c->raw_result);
    c->raw_result = NULL;
    c->raw_result_len = 0;
    json_decref(c->reply->body);
    c->reply->body = NULL;
    free(c->reply->raw);
    c->reply->raw = r;
    c->reply->raw_len = r ? len : 0;
    c->reply->status = r ? 200 : 0; /* 0: mcp_server_handle answers 500 */
}

static void dispatch_end(mcp_call *c, const mcp_rpc_msg *msg, pl_rc rc, json_t *result,
                         mcp_rpc_error *e);

/* Handles one parsed JSON-RPC request with a known session (or initialize). */
static void dispatch(mcp_call *c, mcp_rpc_msg *msg)
{
    mcp_method_fn fn = method_find(msg->method);
    mcp_rpc_error err;
    json_t *result = NULL, *empty = NULL;
    const json_t *params = msg->params;
    pl_rc rc;

    memset(&err, 0, sizeof err);
    if (!fn) {
        char m[160];
        snprintf(m, sizeof m, "method not found: %.100s", msg->method);
        reply_rpc(c->reply, 200, mcp_rpc_error_new(msg->id, MCP_RPC_METHOD_NOT_FOUND, m, NULL));
        return;
    }
    if (!params)
        params = empty = json_object();
    c->id = msg->id;
    rc = fn(c, params, &result, &err);
    json_decref(empty);
    if (c->park)
        return; /* parked: mcp_server_resume() ends it */
    dispatch_end(c, msg, rc, result, &err);
}

/* The JSON-RPC response of a dispatched request (rc, result taken, err). */
static void dispatch_end(mcp_call *c, const mcp_rpc_msg *msg, pl_rc rc, json_t *result,
                         mcp_rpc_error *e)
{
    mcp_rpc_error err = *e;
    if (c->http_done) {
        json_decref(result);
        return;
    }
    if (rc == PL_OK && c->raw_result) {
        json_decref(result);
        reply_raw(c, msg->id);
        return;
    }
    if (rc == PL_OK) {
        reply_rpc(c->reply, 200, mcp_rpc_result_new(msg->id, result));
        return;
    }
    json_decref(result);
    if (err.code == 0) {
        err.code = MCP_RPC_INTERNAL_ERROR;
        snprintf(err.msg, sizeof err.msg, "internal error: %s", pl_strerror(rc));
    }
    reply_rpc(c->reply, 200, mcp_rpc_error_new(msg->id, err.code, err.msg, NULL));
}

/* ---- JSON-RPC batches (MCP 2025-03-26 basic/transports: servers MUST accept them; removed
 * in 2025-06-18). Accepted in sessions that negotiated 2025-03-26 only. ---- */

#define MCP_BATCH_MAX 32

static int is_batch(const char *body, size_t len)
{
    size_t i;
    for (i = 0; body && i < len; i++) {
        if (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')
            continue;
        return body[i] == '[';
    }
    return 0;
}

/* One element's answer inside a batch: the JSON-RPC response, or for an HTTP-level answer
 * (403 step-up, 429 rate limit) an error element carrying the status and challenge, since one
 * HTTP response cannot carry several statuses. NULL for notifications and responses. */
static json_t *batch_element(mcp_call *c, const json_t *el, const mcp_rpc_limits *lim)
{
    char *text = json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
    mcp_rpc_msg msg;
    mcp_rpc_error perr;
    mcp_reply tmp, *saved;
    json_t *out = NULL;
    memset(&tmp, 0, sizeof tmp);
    memset(&perr, 0, sizeof perr);
    if (!text)
        return mcp_rpc_error_new(NULL, MCP_RPC_INTERNAL_ERROR, "internal error", NULL);
    if (mcp_rpc_parse(text, strlen(text), lim, &msg, &perr) != PL_OK) {
        out = mcp_rpc_error_new(perr.id, perr.code, perr.msg, NULL);
        json_decref(perr.id);
        free(text);
        return out;
    }
    free(text);
    if (msg.kind != MCP_RPC_REQUEST) {
        if (msg.kind == MCP_RPC_NOTIFICATION &&
            strcmp(msg.method, "notifications/initialized") == 0)
            c->session->initialized = 1;
        mcp_rpc_msg_clear(&msg);
        return NULL;
    }
    if (strcmp(msg.method, "initialize") == 0) {
        /* MCP 2025-03-26 basic/lifecycle: initialize MUST NOT be part of a batch. */
        out = mcp_rpc_error_new(msg.id, MCP_RPC_INVALID_REQUEST,
                                "initialize must not be part of a JSON-RPC batch", NULL);
        mcp_rpc_msg_clear(&msg);
        return out;
    }
    saved = c->reply;
    /* The element answers into tmp; c->reply is restored before tmp goes out of scope. */
    c->reply = &tmp; // cppcheck-suppress autoVariables
    c->http_done = 0;
    dispatch(c, &msg);
    c->reply = saved;
    if (c->http_done) {
        const json_t *b = tmp.body;
        const char *m = json_string_value(json_object_get(b, "error_description"));
        if (!m)
            m = json_string_value(json_object_get(json_object_get(b, "error"), "message"));
        out = mcp_rpc_error_new(msg.id, -32000, m ? m : "refused",
                                json_pack("{s:i, s:s, s:i}", "http_status", tmp.status,
                                          "www_authenticate", tmp.www_authenticate, "retry_after_s",
                                          tmp.retry_after_s));
    } else {
        out = tmp.body;
        tmp.body = NULL;
    }
    mcp_reply_clear(&tmp);
    mcp_rpc_msg_clear(&msg);
    return out;
}

static void handle_batch(mcp_server *srv, mcp_call *c, const mcp_request *req,
                         const uint8_t owner[32], const mcp_rpc_limits *lim)
{
    mcp_reply *reply = c->reply;
    mcp_session *session = NULL;
    mcp_rpc_error perr;
    json_error_t je;
    json_t *arr = NULL, *outs = NULL, *el;
    size_t i;

    memset(&perr, 0, sizeof perr);
    if (!req->session_id) {
        reply_transport(reply, 400, -32000, "Bad Request: MCP-Session-Id header is required");
        goto out;
    }
    if (mcp_session_find(srv->sessions, req->session_id, owner, &session) != PL_OK) {
        reply_transport(reply, 404, -32001, "Session not found");
        goto out;
    }
    if (strcmp(session->protocol_version, "2025-03-26") != 0) {
        reply_transport(reply, 400, MCP_RPC_INVALID_REQUEST,
                        "JSON-RPC batches are not supported: removed from MCP in 2025-06-18; "
                        "send one message per request");
        goto out;
    }
    if (mcp_rpc_prescan(req->body, req->body_len, lim, &perr) != PL_OK) {
        reply_transport(reply, 400, perr.code, perr.msg);
        goto out;
    }
    arr = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_array(arr)) {
        reply_transport(reply, 400, MCP_RPC_PARSE_ERROR, "parse error in the JSON-RPC batch");
        goto out;
    }
    if (json_array_size(arr) == 0 || json_array_size(arr) > MCP_BATCH_MAX) {
        /* JSON-RPC 2.0 §6: an empty batch is one invalid request. */
        reply_transport(reply, 400, MCP_RPC_INVALID_REQUEST,
                        json_array_size(arr) ? "a JSON-RPC batch holds at most 32 messages"
                                             : "an empty JSON-RPC batch is invalid");
        goto out;
    }
    c->session = session;
    outs = json_array();
    json_array_foreach(arr, i, el)
    {
        json_t *one = batch_element(c, el, lim);
        if (one)
            json_array_append_new(outs, one);
    }
    c->reply = reply;
    c->http_done = 0;
    if (json_array_size(outs) == 0) {
        reply->status = 202; /* only notifications and responses */
    } else {
        reply->status = 200;
        reply->body = outs;
        outs = NULL;
    }
out:
    json_decref(outs);
    json_decref(arr);
}

/* A call parked by tools/call (mcp_reply.parked): what the rest of it needs. */
struct mcp_parked {
    mcp_call call;
    key_verified who;
    mcp_rpc_msg msg;
};

/* The end of every request: SSE events, a held reply's id and audit lines, cleanup. */
static void handle_end(mcp_server *srv, mcp_call *call, mcp_rpc_msg *msg, mcp_reply *reply)
{
    if (call->events && reply->status == 200 && reply->body) {
        reply->events = call->events; /* taken */
        call->events = NULL;
    }
    if (call->held) {
        reply->held = 1;
        reply->held_id = msg->id ? json_incref(msg->id) : NULL;
        reply->audit = call->audit_kept; /* written at release */
    } else {
        mcp_audit_lines_write(srv, call->audit_kept, NULL); /* none expected: never lost */
    }
    call->audit_kept = NULL;
    json_decref(call->events);
    call->events = NULL;
    free(call->raw_result); /* NULL unless a method left one unsent */
    call->raw_result = NULL;
    mcp_tools_park_free(call->park);
    call->park = NULL;
    mcp_rpc_msg_clear(msg);
    if (reply->status == 0)
        reply_transport(reply, 500, MCP_RPC_INTERNAL_ERROR, "internal error");
}

pl_rc mcp_server_handle(mcp_server *srv, const mcp_request *req, mcp_reply *reply)
{
    const mcp_config *cfg = srv->cfg;
    mcp_rpc_limits lim = {cfg->limits.max_depth, cfg->limits.max_string};
    mcp_rpc_msg msg;
    mcp_rpc_error perr;
    key_verified who;
    mcp_call call;
    mcp_session *session = NULL;
    uint8_t owner[32];
    pl_rc rc;

    memset(reply, 0, sizeof *reply);
    memset(&msg, 0, sizeof msg);
    memset(&perr, 0, sizeof perr);
    memset(&call, 0, sizeof call);

    /* MCP 2025-11-25 basic/transports "Security Warning": validate Host and Origin against
     * allow-lists (DNS rebinding). */
    if (req->host_count != 1 || !req->host) {
        reply_transport(reply, 400, -32000, "Bad Request: exactly one Host header is required");
        goto out;
    }
    if (!list_has(cfg->hosts, cfg->n_hosts, req->host)) {
        reply_transport(reply, 403, -32000, "Forbidden: Host header is not allowed");
        goto out;
    }
    if (req->origin && !list_has(cfg->origins, cfg->n_origins, req->origin)) {
        reply_transport(reply, 403, -32000, "Forbidden: Origin is not allowed");
        goto out;
    }
    if (authenticate(srv, req, &who, call.plan, reply) != PL_OK)
        goto out;
    owner_of(&who, owner);
    call.srv = srv;
    call.who = &who;
    call.reply = reply;
    call.start_ms = core_clock_now_ms(srv->deps.clock);
    /* The grant is alive (authenticate): its last call, for the connected-apps page
     * (authz/seen.h: memory only here; written by another thread, at most once a minute). */
    az_seen_touch(srv->deps.seen, who.gid, call.start_ms);
    pol_class_lookup(who.cls, strlen(who.cls), &call.cls);
    pol_workspace_index(srv->deps.policy, who.ws, strlen(who.ws), &call.ws_index, NULL);

    if (req->method == CORE_HTTP_GET) {
        /* basic/transports "Listening for Messages from the Server" (mcp/stream.c). */
        mcp_stream_open(&call, req, owner);
        goto out;
    }
    if (req->method == CORE_HTTP_DELETE) {
        if (!req->session_id) {
            reply_transport(reply, 400, -32000, "Bad Request: MCP-Session-Id header is required");
            goto out;
        }
        rc = mcp_session_end(srv->sessions, req->session_id, owner);
        if (rc != PL_OK) {
            reply_transport(reply, 404, -32001, "Session not found");
            goto out;
        }
        reply->status = 204;
        goto out;
    }
    if (req->method != CORE_HTTP_POST) {
        snprintf(reply->allow, sizeof reply->allow, "GET, POST, DELETE");
        reply_transport(reply, 405, -32000, "Method Not Allowed");
        goto out;
    }
    if (!content_type_json(req->content_type)) {
        reply_transport(reply, 415, -32000,
                        "Unsupported Media Type: Content-Type must be application/json");
        goto out;
    }
    if (!accept_ok(req->accept)) {
        reply_transport(reply, 406, -32000, "Not Acceptable: Accept must include application/json");
        goto out;
    }
    if (req->protocol_version && !mcp_protocol_supported(req->protocol_version)) {
        reply_transport(reply, 400, -32000,
                        "Bad Request: unsupported MCP-Protocol-Version (supported: 2025-11-25, "
                        "2025-06-18, 2025-03-26)");
        goto out;
    }
    if (req->body_len > cfg->limits.max_body) {
        reply_transport(reply, 413, -32000, "Payload Too Large");
        goto out;
    }
    if (is_batch(req->body, req->body_len)) {
        handle_batch(srv, &call, req, owner, &lim);
        goto out;
    }
    rc = mcp_rpc_parse(req->body ? req->body : "", req->body_len, &lim, &msg, &perr);
    if (rc != PL_OK) {
        reply_rpc(reply, 400, mcp_rpc_error_new(perr.id, perr.code, perr.msg, NULL));
        json_decref(perr.id);
        goto out;
    }
    if (msg.kind == MCP_RPC_REQUEST && strcmp(msg.method, "initialize") == 0) {
        char version[16];
        dispatch(&call, &msg);
        if (reply->status == 200 && reply->body && json_object_get(reply->body, "result")) {
            const char *v = json_string_value(
                json_object_get(json_object_get(reply->body, "result"), "protocolVersion"));
            snprintf(version, sizeof version, "%s", v ? v : MCP_PROTOCOL_LATEST);
            rc = mcp_session_create(srv->sessions, owner, version, &session);
            if (rc != PL_OK) {
                reply_rpc(reply, 503,
                          mcp_rpc_error_new(msg.id, MCP_RPC_INTERNAL_ERROR,
                                            "too many open sessions; try again later", NULL));
                reply->retry_after_s = 10;
                goto out;
            }
            memcpy(reply->session_id, session->id, sizeof reply->session_id);
        }
        goto out;
    }
    /* basic/transports "Session Management". */
    if (!req->session_id) {
        reply_transport(reply, 400, -32000, "Bad Request: MCP-Session-Id header is required");
        goto out;
    }
    if (mcp_session_find(srv->sessions, req->session_id, owner, &session) != PL_OK) {
        reply_transport(reply, 404, -32001, "Session not found");
        goto out;
    }
    /* A supported MCP-Protocol-Version other than the negotiated one is accepted, as the
     * reference SDKs do (basic/transports only requires refusing unsupported ones, checked
     * above): each revision we speak answers these methods the same way. */
    call.session = session;
    if (msg.kind != MCP_RPC_REQUEST) {
        if (msg.kind == MCP_RPC_NOTIFICATION &&
            strcmp(msg.method, "notifications/initialized") == 0)
            session->initialized = 1;
        reply->status = 202;
        goto out;
    }
    /* basic/utilities/progress: a progressToken in _meta asks for notifications/progress;
     * they can only reach the client on an SSE response to this request. */
    if (strcmp(msg.method, "tools/call") == 0 && accept_sse(req->accept)) {
        const json_t *tok = json_object_get(json_object_get(msg.params, "_meta"), "progressToken");
        if (json_is_string(tok) || json_is_integer(tok)) {
            call.progress_token = tok;
            call.events = json_array();
        }
    }
    call.raw_ok = req->raw_ok && !call.events;
    call.park_ok = req->park_ok && srv->deps.batcher;
    dispatch(&call, &msg);
    if (call.park) {
        struct mcp_parked *p = malloc(sizeof *p);
        if (p) {
            /* Everything the rest of the call needs moves with it: the parsed message (the
             * arguments and id are borrowed from it), the verified token, the call. */
            p->who = who;
            p->call = call;
            p->call.who = &p->who;
            p->call.session = NULL; /* not used by tools/call; may end meanwhile */
            p->call.reply = NULL;
            p->msg = msg;
            reply->parked = p;
            return PL_OK;
        }
        /* Out of memory: run it now (its first write waits for the batch). */
        json_t *result = NULL;
        mcp_rpc_error err;
        memset(&err, 0, sizeof err);
        rc = mcp_tools_call_resume(&call, &result, &err);
        dispatch_end(&call, &msg, rc, result, &err);
    }
out:
    handle_end(srv, &call, &msg, reply);
    return PL_OK;
}

int mcp_server_resume_write(mcp_server *srv, struct mcp_parked *p)
{
    (void)srv;
    mcp_tools_call_resume_write(&p->call);
    return p->call.held;
}

pl_rc mcp_server_resume(mcp_server *srv, struct mcp_parked *p, mcp_reply *reply)
{
    json_t *result = NULL;
    mcp_rpc_error err;
    pl_rc rc;
    memset(reply, 0, sizeof *reply);
    memset(&err, 0, sizeof err);
    p->call.reply = reply;
    rc = mcp_tools_call_resume(&p->call, &result, &err);
    dispatch_end(&p->call, &p->msg, rc, result, &err);
    handle_end(srv, &p->call, &p->msg, reply);
    free(p);
    return PL_OK;
}
