/* Resources and resource templates (MCP 2025-11-25 server/resources): read-only context,
 * each guarded by its policy row "resource:<uri or template>". Listing pages through the
 * execution layer's HMAC cursors wrapped in our own opaque cursor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"
#include "core/crypto.h"
#include "exec/account.h"
#include "exec/analytics.h"
#include "exec/campaign.h"
#include "exec/post.h"
#include "exec/workspace.h"
#include "mcp/mcp_int.h"

#define MIME_JSON "application/json"
#define URI_MAX   256

typedef pl_rc (*res_read_fn)(const ex_ctx *ex, const char *ws, const char *id, json_t **out,
                             ex_err *err);
/* Lists concrete resources: args {cursor?, limit?} -> {items, next_cursor}. */
typedef pl_rc (*res_list_fn)(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                             ex_err *err);

typedef struct res_def {
    const char *uri;    /* fixed URI, or a template with one trailing {id} / {platform} */
    const char *prefix; /* for templates: the URI up to the variable */
    const char *name, *title, *description;
    const char *policy; /* policy row */
    const char *id_arg; /* the service's argument carrying the variable */
    res_read_fn read;
    res_list_fn list;      /* NULL: not enumerated by resources/list */
    const char *item_name; /* field of a listed item used as display name */
} res_def;

static pl_rc r_workspace(const ex_ctx *ex, const char *ws, const char *id, json_t **out,
                         ex_err *err)
{
    return mcp_workspace_view(ex, ws, out, err);
}

static pl_rc r_account(const ex_ctx *ex, const char *ws, const char *id, json_t **out, ex_err *err)
{
    json_t *a = json_pack("{s:s}", "account_id", id);
    pl_rc rc = a ? ex_account_get(ex, ws, a, out, err) : PL_ERR_NOMEM;
    json_decref(a);
    return rc;
}

static pl_rc r_campaign(const ex_ctx *ex, const char *ws, const char *id, json_t **out, ex_err *err)
{
    json_t *a = json_pack("{s:s}", "campaign_id", id);
    pl_rc rc = a ? ex_campaign_get(ex, ws, a, out, err) : PL_ERR_NOMEM;
    json_decref(a);
    return rc;
}

static pl_rc r_post(const ex_ctx *ex, const char *ws, const char *id, json_t **out, ex_err *err)
{
    json_t *a = json_pack("{s:s}", "post_id", id);
    pl_rc rc = a ? ex_post_get(ex, ws, a, out, err) : PL_ERR_NOMEM;
    json_decref(a);
    return rc;
}

static pl_rc r_summary(const ex_ctx *ex, const char *ws, const char *id, json_t **out, ex_err *err)
{
    json_t *a = json_object();
    pl_rc rc = a ? ex_analytics_summary(ex, ws, a, out, err) : PL_ERR_NOMEM;
    json_decref(a);
    return rc;
}

static pl_rc r_platform(const ex_ctx *ex, const char *ws, const char *id, json_t **out, ex_err *err)
{
    json_t *a = json_pack("{s:s}", "platform", id);
    pl_rc rc = a ? ex_analytics_platform(ex, ws, a, out, err) : PL_ERR_NOMEM;
    json_decref(a);
    return rc;
}

static const res_def resources[] = {
    {"postly://workspace", NULL, "workspace", "Workspace",
     "The workspace this connection acts in: name, plan, time zone, settings.",
     "resource:postly://workspace", NULL, r_workspace, NULL, NULL},
    {"postly://social-accounts/{id}", "postly://social-accounts/", "social-account",
     "Social account",
     "One connected social account: platform, state, boards or locations to target.",
     "resource:postly://social-accounts/{id}", "account_id", r_account, ex_account_list,
     "display_name"},
    {"postly://campaigns/{id}", "postly://campaigns/", "campaign", "Campaign",
     "One campaign: name, goal, dates, status, number of posts.",
     "resource:postly://campaigns/{id}", "campaign_id", r_campaign, ex_campaign_list, "name"},
    {"postly://posts/{id}", "postly://posts/", "post", "Post",
     "One post with its targets and per-network status.", "resource:postly://posts/{id}", "post_id",
     r_post, ex_post_list, "status"},
    {"postly://analytics/summary", NULL, "analytics-summary", "Analytics summary",
     "Totals across all networks for the last 28 days.", "resource:postly://analytics/summary",
     NULL, r_summary, NULL, NULL},
    /* The platform picks the policy row resource:postly://analytics/<platform>, which needs
     * exactly that network's scope; the template row is what listings show. */
    {"postly://analytics/{platform}", "postly://analytics/", "platform-analytics",
     "Network analytics", "One network's metrics for the last 28 days.",
     "resource:postly://analytics/{platform}", "platform", r_platform, NULL, NULL},
};
#define N_RES (sizeof resources / sizeof resources[0])

static int is_template(const res_def *r)
{
    return r->prefix != NULL;
}

static int visible(const mcp_call *c, const res_def *r)
{
    mcp_gate_result g = mcp_gate_peek(c, r->policy);
    return g != MCP_GATE_POLICY && g != MCP_GATE_NO_ROW;
}

static int allowed_now(const mcp_call *c, const res_def *r)
{
    return mcp_gate_peek(c, r->policy) == MCP_GATE_ALLOW;
}

/* The networks resources/list names one postly://analytics/<platform> resource for. */
static const char *const platforms[] = {"facebook",        "instagram", "pinterest", "youtube",
                                        "google_business", "linkedin",  "x"};
#define N_PLATFORMS (sizeof platforms / sizeof platforms[0])

/* 1 when c may read template d's resource for platforms[k] now; its URI into uri. */
static int platform_allowed(const mcp_call *c, const res_def *d, size_t k, char *uri, size_t urisz)
{
    char row[URI_MAX + 16];
    snprintf(uri, urisz, "%s%s", d->prefix, platforms[k]);
    snprintf(row, sizeof row, "resource:%s", uri);
    return mcp_gate_peek(c, row) == MCP_GATE_ALLOW;
}

uint64_t mcp_resources_visible_fp(const mcp_call *c)
{
    uint64_t fp = MCP_FP_INIT;
    size_t i, k;
    for (i = 0; i < N_RES; i++) {
        const res_def *d = &resources[i];
        char uri[URI_MAX];
        /* templates/list shows the visible templates, resources/list what is allowed now */
        fp = mcp_fp_add(fp, (unsigned)(visible(c, d) << 1 | allowed_now(c, d)));
        if (is_template(d) && !d->list && d->id_arg && strcmp(d->id_arg, "platform") == 0)
            for (k = 0; k < N_PLATFORMS; k++)
                fp = mcp_fp_add(fp, (unsigned)platform_allowed(c, d, k, uri, sizeof uri));
    }
    return fp;
}

pl_rc mcp_resources_templates_list(mcp_call *c, const json_t *params, json_t **result,
                                   mcp_rpc_error *err)
{
    json_t *arr = json_array();
    size_t i;
    if (json_object_get(params, "cursor")) {
        json_decref(arr);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.cursor: invalid cursor");
        return PL_ERR_INVALID;
    }
    for (i = 0; arr && i < N_RES; i++) {
        if (!is_template(&resources[i]) || !visible(c, &resources[i]))
            continue;
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "uriTemplate",
                                             resources[i].uri, "name", resources[i].name, "title",
                                             resources[i].title, "description",
                                             resources[i].description, "mimeType", MIME_JSON));
    }
    *result = json_pack("{s:o}", "resourceTemplates", arr);
    return *result ? PL_OK : PL_ERR_NOMEM;
}

/* Our cursor: base64url of {"r": resource index, "c": the service's cursor or null}. The
 * service cursor is HMAC-protected by the execution layer; r is range-checked. */
static pl_rc cursor_decode(const char *text, size_t *r, char *inner, size_t innersz)
{
    uint8_t raw[1024];
    size_t n = 0;
    json_t *o;
    json_error_t je;
    const json_t *jr, *jc;
    pl_rc rc = PL_ERR_INVALID;
    if (strlen(text) > 1300 || core_b64url_decode(text, strlen(text), raw, sizeof raw, &n) != PL_OK)
        return PL_ERR_INVALID;
    o = json_loadb((const char *)raw, n, 0, &je);
    jr = json_object_get(o, "r");
    jc = json_object_get(o, "c");
    if (json_is_integer(jr) && json_integer_value(jr) >= 0 &&
        (size_t)json_integer_value(jr) < N_RES && (json_is_null(jc) || json_is_string(jc))) {
        *r = (size_t)json_integer_value(jr);
        snprintf(inner, innersz, "%s", json_is_string(jc) ? json_string_value(jc) : "");
        rc = PL_OK;
    }
    json_decref(o);
    return rc;
}

static json_t *cursor_encode(size_t r, const char *inner)
{
    json_t *o = json_pack("{s:I, s:s?}", "r", (json_int_t)r, "c", inner);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    char out[1400];
    json_t *res = NULL;
    if (s && core_b64url_encode((const uint8_t *)s, strlen(s), out, sizeof out, NULL) == PL_OK)
        res = json_string(out);
    free(s);
    json_decref(o);
    return res;
}

#define PAGE 50

pl_rc mcp_resources_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *cur = json_string_value(json_object_get(params, "cursor"));
    char inner[1100] = "";
    size_t r = 0;
    json_t *arr = json_array(), *next = NULL, *res;
    pl_rc rc = PL_OK;

    if (json_object_get(params, "cursor") &&
        (!cur || cursor_decode(cur, &r, inner, sizeof inner) != PL_OK)) {
        json_decref(arr);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.cursor: invalid cursor");
        return PL_ERR_INVALID;
    }
    for (; r < N_RES && !next; r++, inner[0] = '\0') {
        const res_def *d = &resources[r];
        if (!allowed_now(c, d))
            continue;
        if (!is_template(d)) {
            if (!inner[0])
                json_array_append_new(arr,
                                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "uri", d->uri, "name",
                                                d->name, "title", d->title, "description",
                                                d->description, "mimeType", MIME_JSON));
            continue;
        }
        if (!d->list && d->id_arg && strcmp(d->id_arg, "platform") == 0 && !inner[0]) {
            size_t k;
            for (k = 0; k < N_PLATFORMS; k++) {
                char uri[URI_MAX];
                if (platform_allowed(c, d, k, uri, sizeof uri))
                    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "uri", uri, "name",
                                                         platforms[k], "title", d->title,
                                                         "mimeType", MIME_JSON));
            }
            continue;
        }
        if (d->list) {
            json_t *args = json_pack("{s:i}", "limit", PAGE), *page = NULL, *it;
            ex_err xe;
            size_t i;
            const char *nc;
            if (inner[0])
                json_object_set_new(args, "cursor", json_string(inner));
            memset(&xe, 0, sizeof xe);
            rc = d->list(c->srv->deps.ex, c->who->ws, args, &page, &xe);
            json_decref(args);
            if (rc != PL_OK) {
                json_decref(page);
                json_decref(arr);
                err->code = rc == PL_ERR_INVALID ? MCP_RPC_INVALID_PARAMS : MCP_RPC_INTERNAL_ERROR;
                snprintf(err->msg, sizeof err->msg, "%s",
                         rc == PL_ERR_INVALID ? "params.cursor: invalid cursor" : "listing failed");
                return rc;
            }
            json_array_foreach(json_object_get(page, "items"), i, it)
            {
                const char *id = json_string_value(json_object_get(it, "id"));
                const char *nm = json_string_value(json_object_get(it, d->item_name));
                char uri[URI_MAX];
                if (!id)
                    continue;
                snprintf(uri, sizeof uri, "%s%s", d->prefix, id);
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "uri", uri, "name",
                                                     nm ? nm : id, "title", d->title, "mimeType",
                                                     MIME_JSON));
            }
            nc = json_string_value(json_object_get(page, "next_cursor"));
            if (nc)
                next = cursor_encode(r, nc);
            json_decref(page);
            if (next)
                break;
        }
    }
    res = json_pack("{s:o}", "resources", arr);
    if (res && next)
        json_object_set_new(res, "nextCursor", next);
    else
        json_decref(next);
    *result = res;
    return res ? PL_OK : PL_ERR_NOMEM;
}

static void not_found(mcp_rpc_error *err, const char *uri)
{
    err->code = MCP_RPC_RESOURCE_NOT_FOUND;
    snprintf(err->msg, sizeof err->msg, "Resource not found: %.120s", uri);
}

/* The definition matching uri and the policy row guarding it (pname: room for the per-network
 * row of the analytics template). NULL when no resource matches. */
static const res_def *resolve(const char *uri, const char **var, const char **policy, char *pname,
                              size_t pnamesz)
{
    const res_def *d = NULL;
    size_t i;
    *var = "";
    for (i = 0; i < N_RES && !d; i++) {
        const res_def *r = &resources[i];
        if (!is_template(r) && strcmp(uri, r->uri) == 0) {
            d = r;
        } else if (is_template(r) && strncmp(uri, r->prefix, strlen(r->prefix)) == 0) {
            *var = uri + strlen(r->prefix);
            if (**var && !strchr(*var, '/'))
                d = r;
        }
    }
    if (!d)
        return NULL;
    *policy = d->policy;
    if (is_template(d) && strcmp(d->id_arg ? d->id_arg : "", "platform") == 0) {
        /* resource:postly://analytics/<platform>: one row per network; an unknown network
         * has no row and is not found. */
        snprintf(pname, pnamesz, "resource:%s", uri);
        *policy = pname;
    }
    return d;
}

pl_rc mcp_resource_policy(const char *uri, char *buf, size_t bufsz)
{
    const char *var, *policy = NULL;
    char pname[URI_MAX + 16];
    if (!uri || strlen(uri) > URI_MAX || !resolve(uri, &var, &policy, pname, sizeof pname)) {
        if (bufsz)
            buf[0] = '\0';
        return PL_ERR_NOT_FOUND;
    }
    snprintf(buf, bufsz, "%s", policy);
    return PL_OK;
}

pl_rc mcp_resource_access(mcp_call *c, const json_t *params, const char *kind, json_t **outp,
                          mcp_rpc_error *err)
{
    const char *uri = json_string_value(json_object_get(params, "uri"));
    const res_def *d;
    const char *var = "";
    const char *policy = NULL;
    char pname[URI_MAX + 16];
    json_t *out = NULL;
    pol_decision dec;
    mcp_gate_result g;
    ex_err xe;
    pl_rc rc;

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
    d = resolve(uri, &var, &policy, pname, sizeof pname);
    if (!d) {
        not_found(err, uri);
        return PL_ERR_NOT_FOUND;
    }
    g = mcp_gate(c, policy, &dec);
    if (g == MCP_GATE_STEP_UP) {
        mcp_audit(c, kind, policy, "deny_scope", &dec, NULL);
        return PL_ERR_DENIED;
    }
    if (g != MCP_GATE_ALLOW) {
        /* Hidden by policy: indistinguishable from a resource that does not exist. */
        mcp_audit(c, kind, policy, "deny_policy", &dec, NULL);
        not_found(err, uri);
        return PL_ERR_NOT_FOUND;
    }
    if (mcp_rate_charge(c, policy, c->id) != PL_OK) {
        mcp_audit(c, kind, policy, "rate_limited", &dec, NULL);
        return PL_ERR_LIMIT;
    }
    memset(&xe, 0, sizeof xe);
    rc = d->read(c->srv->deps.ex, c->who->ws, var, &out, &xe);
    if (rc == PL_ERR_NOT_FOUND || rc == PL_ERR_INVALID) {
        /* Another workspace's object, or an id that cannot exist: not found (existence must
         * not leak, ARCHITECTURE.md §4). */
        mcp_audit(c, kind, policy, "not_found", &dec, NULL);
        not_found(err, uri);
        return PL_ERR_NOT_FOUND;
    }
    if (rc != PL_OK) {
        mcp_audit(c, kind, policy, pl_errname(rc), &dec, NULL);
        err->code = MCP_RPC_INTERNAL_ERROR;
        snprintf(err->msg, sizeof err->msg, "reading %.100s failed: %s", uri, pl_strerror(rc));
        return rc;
    }
    mcp_audit(c, kind, policy, "ok", &dec, NULL);
    if (outp)
        *outp = out;
    else
        json_decref(out);
    return PL_OK;
}

pl_rc mcp_resources_read(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *uri = json_string_value(json_object_get(params, "uri"));
    json_t *out = NULL;
    char *text;
    pl_rc rc = mcp_resource_access(c, params, "resource", &out, err);
    if (rc != PL_OK)
        return rc;
    text = core_json_compact(out, NULL); /* json_dumps(JSON_COMPACT)'s bytes */
    *result = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType", MIME_JSON,
                        "text", text ? text : "{}");
    free(text);
    json_decref(out);
    return *result ? PL_OK : PL_ERR_NOMEM;
}
