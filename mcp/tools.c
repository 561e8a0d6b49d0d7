/* The tool table (ARCHITECTURE.md §8) and tools/list, tools/call (MCP 2025-11-25
 * server/tools). Every tool is a thin adapter over the execution layer: the input schema
 * bounds and names every argument, the service does the work in one transaction, the result
 * is the service's JSON as structuredContent plus the same JSON as text. Required scopes are
 * not here: they come from the policy file's tool rows (policy/default.policy). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/directory.h"
#include "core/json_text.h"
#include "exec/account.h"
#include "exec/analytics.h"
#include "exec/batch.h"
#include "exec/campaign.h"
#include "exec/connector.h"
#include "exec/draft.h"
#include "exec/media.h"
#include "exec/post.h"
#include "exec/workspace.h"
#include "mcp/mcp_int.h"
#include "mcp/usage.h"

/* ---- adapters ---- */

pl_rc mcp_workspace_view(const ex_ctx *ex, const char *ws, json_t **out, ex_err *err)
{
    pl_rc rc = ex_workspace_get(ex, ws, out, err);
    if (rc == PL_ERR_NOT_FOUND) {
        /* The directory knows the workspace (the token names it); the execution layer keeps
         * its content record from the first write on (mcp_workspace_ensure). */
        json_t *o = json_object(), *id = json_string(ws);
        /* json_pack("{s:s, s:s, s:s, s:s, s:{}, s:i}", ...)'s tree without its format parser
         * (a third of a read call's tool time) */
        if (o && id && json_object_set_nocheck(o, "id", id) == 0 &&
            json_object_set_nocheck(o, "name", id) == 0 &&
            json_object_set_new_nocheck(o, "plan", json_string_nocheck("free")) == 0 &&
            json_object_set_new_nocheck(o, "timezone", json_string_nocheck("UTC")) == 0 &&
            json_object_set_new_nocheck(o, "settings", json_object()) == 0 &&
            json_object_set_new_nocheck(o, "version", json_integer(0)) == 0) {
            *out = o;
            o = NULL;
        }
        json_decref(id);
        json_decref(o);
        rc = *out ? PL_OK : PL_ERR_NOMEM;
    }
    return rc;
}

pl_rc mcp_workspace_ensure(const ex_ctx *ex, const char *ws)
{
    json_t *w = NULL, *a;
    ex_err e;
    ex_txn t = {0};
    MDB_val v;
    /* Existence only: the record's key, without parsing its JSON (on every write call). */
    pl_rc rc = ex_ws_valid(ws) ? ex_txn_begin(ex->store, 0, &t) : PL_ERR_NOT_FOUND;
    if (rc == PL_OK)
        rc = ex_txn_get_raw(&t, EX_DB_WORKSPACES, ws, &v);
    ex_txn_abort(&t);
    if (rc == PL_ERR_NOT_FOUND) {
        a = json_pack("{s:s}", "name", ws);
        rc = a ? ex_workspace_ensure(ex, ws, a, &w, &e) : PL_ERR_NOMEM;
        json_decref(a);
    }
    json_decref(w);
    return rc;
}

static pl_rc t_get_workspace(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                             ex_err *err)
{
    return mcp_workspace_view(ex, ws, out, err);
}

/* postly_get_channel_schema: the platform rules the sandboxes enforce (exec/connector.h). */
static pl_rc t_channel_schema(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                              ex_err *err)
{
    ex_platform p;
    const char *name = json_string_value(json_object_get(args, "platform"));
    if (!name || ex_platform_parse(name, &p) != PL_OK)
        return ex_err_set(err, PL_ERR_INVALID, "platform", "unknown network");
    return ex_rules_to_json(p, out);
}

/* postly_upload_media_chunk: one tool for the three steps of a chunked upload; "action"
 * picks the service and is removed before the service checks its arguments. */
static pl_rc t_upload_chunk(const ex_ctx *ex, const char *ws, const json_t *args, json_t **out,
                            ex_err *err)
{
    const char *action = json_string_value(json_object_get(args, "action"));
    json_t *rest = json_copy((json_t *)args);
    pl_rc rc;
    if (!rest)
        return PL_ERR_NOMEM;
    json_object_del(rest, "action");
    if (action && strcmp(action, "begin") == 0)
        rc = ex_media_upload_begin(ex, ws, rest, out, err);
    else if (action && strcmp(action, "append") == 0)
        rc = ex_media_upload_append(ex, ws, rest, out, err);
    else if (action && strcmp(action, "finish") == 0)
        rc = ex_media_upload_finish(ex, ws, rest, out, err);
    else
        rc = ex_err_set(err, PL_ERR_INVALID, "action", "must be begin, append or finish");
    json_decref(rest);
    return rc;
}

/* postly_list_workspaces: the user's workspaces from the authorization server's directory
 * (the source of truth for membership, ARCHITECTURE.md §7). */
static pl_rc t_list_workspaces(mcp_call *c, const pol_decision *d, const json_t *args, json_t **out,
                               ex_err *err)
{
    az_dir_membership m[100];
    size_t n = 0, i;
    json_t *items;
    pl_rc rc;
    if (!c->srv->deps.directory)
        return ex_err_set(err, PL_ERR_UNSUPPORTED, "", "the workspace directory is not available");
    rc = az_directory_user_workspaces(c->srv->deps.directory, c->who->sub, m,
                                      sizeof m / sizeof m[0], &n);
    if (rc != PL_OK && rc != PL_ERR_TOO_LARGE)
        return ex_err_set(err, rc, "", "the workspace directory could not be read");
    items = json_array();
    for (i = 0; items && i < n; i++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", m[i].ws.id, "name",
                                        m[i].ws.name, "plan", m[i].ws.plan, "role", m[i].role,
                                        "current", strcmp(m[i].ws.id, c->who->ws) == 0));
    *out = json_pack("{s:o, s:b}", "items", items, "truncated", rc == PL_ERR_TOO_LARGE);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

static const struct {
    const char *name;
    unsigned bit;
} platform_scopes[] = {
    {"facebook", POL_SCOPE_ANALYTICS_FACEBOOK_READ},
    {"instagram", POL_SCOPE_ANALYTICS_INSTAGRAM_READ},
    {"pinterest", POL_SCOPE_ANALYTICS_PINTEREST_READ},
    {"youtube", POL_SCOPE_ANALYTICS_YOUTUBE_READ},
    {"google_business", POL_SCOPE_ANALYTICS_GMB_READ},
    {"linkedin", POL_SCOPE_ANALYTICS_LINKEDIN_READ},
    {"x", POL_SCOPE_ANALYTICS_X_READ},
};

/* postly_get_post_analytics: only the platforms whose analytics scope the token may use here
 * (analytics:read does not imply them, ARCHITECTURE.md §6). */
static pl_rc t_post_analytics(mcp_call *c, const pol_decision *d, const json_t *args, json_t **out,
                              ex_err *err)
{
    json_t *a = json_copy((json_t *)args), *pl = json_array();
    size_t i;
    pl_rc rc;
    for (i = 0; pl && i < sizeof platform_scopes / sizeof platform_scopes[0]; i++)
        if (d->effective & POL_MASK(platform_scopes[i].bit))
            json_array_append_new(pl, json_string(platform_scopes[i].name));
    if (!a || !pl) {
        json_decref(a);
        json_decref(pl);
        return PL_ERR_NOMEM;
    }
    json_object_set_new(a, "platforms", pl);
    rc = ex_analytics_post(c->srv->deps.ex, c->who->ws, a, out, err);
    json_decref(a);
    return rc;
}

/* ---- schemas (JSON text; checked at start-up by mcp_schema_check) ---- */

#define S_EMPTY_IN "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"
#define S_CURSOR                                                                                   \
    "\"cursor\":{\"type\":\"string\",\"maxLength\":512,\"description\":\"Opaque next_cursor "      \
    "from the previous page; omit for the first page.\"},"                                         \
    "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100,\"description\":\"Page size "   \
    "(default 20).\"}"
#define S_PLATFORM_ENUM                                                                            \
    "[\"facebook\",\"instagram\",\"pinterest\",\"youtube\",\"google_business\",\"linkedin\","      \
    "\"x\"]"
#define S_PAGE_OUT                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":"      \
    "\"object\"}},\"next_cursor\":{\"type\":[\"string\",\"null\"]}},\"required\":[\"items\"]}"
#define S_OBJ_OUT(req)                                                                             \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"version\":{\"type\":"     \
    "\"integer\"}},\"required\":[" req "]}"

#define S_ID(name, what)                                                                           \
    "\"" name "\":{\"type\":\"string\",\"maxLength\":48,\"description\":\"" what "\"}"
#define S_VERSION                                                                                  \
    "\"expected_version\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":2147483647,"             \
    "\"description\":\"Optimistic concurrency: the version you read; a mismatch is a "             \
    "conflict error.\"}"
#define S_IDEM                                                                                     \
    "\"idempotency_key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,"                  \
    "\"description\":\"Any unique string; retrying with the same key and arguments replays the "   \
    "first result instead of acting twice.\"}"
#define S_IDS(name, what)                                                                          \
    "\"" name "\":{\"type\":\"array\",\"maxItems\":20,\"items\":{\"type\":\"string\","             \
    "\"maxLength\":48},\"description\":\"" what "\"}"
#define S_POST_CONTENT                                                                                                                                                                                                       \
    "\"text\":{\"type\":\"string\",\"maxLength\":65536,\"description\":\"Post text; each "                                                                                                                                   \
    "network's length limit applies (see postly_get_channel_schema).\"},"                                                                                                                                                    \
    "\"title\":{\"type\":\"string\",\"maxLength\":1024,\"description\":\"Title (YouTube, "                                                                                                                                   \
    "Pinterest).\"},"                                                                                                                                                                                                        \
    "\"link\":{\"type\":\"string\",\"maxLength\":2048,\"description\":\"URL to attach.\"}," S_IDS(                                                                                                                           \
        "media_ids",                                                                                                                                                                                                         \
        "Media from postly_upload_media (med_...).") ","                                                                                                                                                                     \
                                                     "\"targets\":{\"type\":\"array\","                                                                                                                                      \
                                                     "\"maxItems\":20,\"description\":\"Per-"                                                                                                                                \
                                                     "account targets "                                                                                                                                                      \
                                                     "with optional overrides; use instead of "                                                                                                                              \
                                                     "account_ids.\",\"items\":{\"type\":"                                                                                                                                   \
                                                     "\"object\","                                                                                                                                                           \
                                                     "\"properties\":{" S_ID(                                                                                                                                                \
                                                         "account_id",                                                                                                                                                       \
                                                         "acc_... id") ",\"text\":{\"type\":"                                                                                                                                \
                                                                       "\"string\","                                                                                                                                         \
                                                                       "\"maxLength\":65536},"                                                                                                                               \
                                                                       "\"title\":{\"type\":"                                                                                                                                \
                                                                       "\"string\",\"maxLength\":"                                                                                                                           \
                                                                       "1024},\"link\":{\"type\":"                                                                                                                           \
                                                                       "\"string\",\"maxLength\":"                                                                                                                           \
                                                                       "2048}," S_IDS(                                                                                                                                       \
                                                                           "media_ids",                                                                                                                                      \
                                                                           "override media") ",\""                                                                                                                           \
                                                                                             "set"                                                                                                                           \
                                                                                             "tin"                                                                                                                           \
                                                                                             "gs"                                                                                                                            \
                                                                                             "\":"                                                                                                                           \
                                                                                             "{\""                                                                                                                           \
                                                                                             "typ"                                                                                                                           \
                                                                                             "e\""                                                                                                                           \
                                                                                             ":\""                                                                                                                           \
                                                                                             "obj"                                                                                                                           \
                                                                                             "ect"                                                                                                                           \
                                                                                             "\","                                                                                                                           \
                                                                                             "\"d"                                                                                                                           \
                                                                                             "esc"                                                                                                                           \
                                                                                             "rip"                                                                                                                           \
                                                                                             "tio"                                                                                                                           \
                                                                                             "n\""                                                                                                                           \
                                                                                             ":\""                                                                                                                           \
                                                                                             "Net"                                                                                                                           \
                                                                                             "wor"                                                                                                                           \
                                                                                             "k-"                                                                                                                            \
                                                                                             "spe"                                                                                                                           \
                                                                                             "cif"                                                                                                                           \
                                                                                             "ic "                                                                                                                           \
                                                                                             "set"                                                                                                                           \
                                                                                             "tin"                                                                                                                           \
                                                                                             "gs "                                                                                                                           \
                                                                                             "(se"                                                                                                                           \
                                                                                             "e "                                                                                                                            \
                                                                                             "pos"                                                                                                                           \
                                                                                             "tly"                                                                                                                           \
                                                                                             "_ge"                                                                                                                           \
                                                                                             "t_"                                                                                                                            \
                                                                                             "cha"                                                                                                                           \
                                                                                             "nne"                                                                                                                           \
                                                                                             "l_"                                                                                                                            \
                                                                                             "sch"                                                                                                                           \
                                                                                             "ema"                                                                                                                           \
                                                                                             ")."                                                                                                                            \
                                                                                             "\"}"                                                                                                                           \
                                                                                             "," S_ID("board_id", "Pinterest board") "," S_ID(                                                                               \
                                                                                                 "location_id",                                                                                                              \
                                                                                                 "Google Business location") "},\"required\":[\"account_id\"],"                                                              \
                                                                                                                             "\"additionalProperties\":false}}," S_IDS(                                                      \
                                                                                                                                 "account_ids",                                                                              \
                                                                                                                                 "Social accounts to post to (acc_...); use targets for overrides.") "," S_ID("campaign_id", \
                                                                                                                                                                                                              "Campaign to attach the post to (cmp_...).")
#define S_POST_OUT                                                                                 \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"status\":{\"type\":"      \
    "\"string\"},\"version\":{\"type\":\"integer\"},\"targets\":{\"type\":\"array\"}},"            \
    "\"required\":[\"id\",\"status\"]}"
#define S_DELETED_OUT                                                                              \
    "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"deleted\":{\"type\":"     \
    "\"boolean\"}},\"required\":[\"id\",\"deleted\"]}"
#define S_IN(props, req)                                                                           \
    "{\"type\":\"object\",\"properties\":{" props "},\"required\":[" req                           \
    "],\"additionalProperties\":false}"
#define S_SCHEDULED_AT                                                                             \
    "\"scheduled_at\":{\"type\":\"string\",\"maxLength\":40,\"description\":\"RFC 3339 time "      \
    "with offset, e.g. 2026-12-01T09:30:00+01:00; must be in the future.\"},"                      \
    "\"timezone\":{\"type\":\"string\",\"maxLength\":64,\"description\":\"IANA zone name "         \
    "(default: the workspace's).\"}"
#define S_CAMPAIGN_FIELDS                                                                          \
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},\"goal\":{\"type\":"         \
    "\"string\",\"maxLength\":2000},\"start_date\":{\"type\":\"string\",\"maxLength\":10,"         \
    "\"description\":\"YYYY-MM-DD\"},\"end_date\":{\"type\":\"string\",\"maxLength\":10,"          \
    "\"description\":\"YYYY-MM-DD\"},\"status\":{\"type\":\"string\",\"enum\":[\"planned\","       \
    "\"active\",\"completed\",\"archived\"]}"

#define S_DRAFT_FIELDS                                                                             \
    "\"text\":{\"type\":\"string\",\"maxLength\":65536},\"title\":{\"type\":\"string\","           \
    "\"maxLength\":1024},\"link\":{\"type\":\"string\",\"maxLength\":2048}," S_IDS(                \
        "media_ids",                                                                               \
        "Media (med_...).") "," S_IDS("account_ids",                                               \
                                      "Intended accounts (acc_...).") ",\"notes\":{\"type\":"      \
                                                                      "\"string\",\"maxLength\":"  \
                                                                      "4000}"
#define S_PERIOD                                                                                   \
    "\"from\":{\"type\":\"string\",\"maxLength\":40,\"description\":\"RFC 3339 start (default: "   \
    "28 days ago).\"},\"to\":{\"type\":\"string\",\"maxLength\":40,\"description\":\"RFC 3339 "    \
    "end (default: now).\"}"

const mcp_tool mcp_tools[] = {
    {"postly_get_workspace", "Get workspace",
     "Returns the workspace this connection acts in: id, name, plan, default time zone and "
     "settings. Use it first to learn the time zone before scheduling. Read-only.",
     S_EMPTY_IN,
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"name\":{\"type\":"
     "\"string\"},\"plan\":{\"type\":\"string\"},\"timezone\":{\"type\":\"string\"}},"
     "\"required\":[\"id\",\"name\",\"plan\",\"timezone\"]}",
     1, 0, 1, 0, NULL, t_get_workspace, 0, NULL},
    {"postly_list_social_accounts", "List social accounts",
     "Lists the social accounts connected to this workspace (Facebook, Instagram, Pinterest, "
     "YouTube, Google Business Profile, LinkedIn, X) with their state; an account in "
     "needs_reconnect cannot publish until the user reconnects it. Use the ids as account_ids "
     "when creating posts. Paginated: pass next_cursor back as cursor. Read-only.",
     "{\"type\":\"object\",\"properties\":{\"platform\":{\"type\":\"string\","
     "\"enum\":" S_PLATFORM_ENUM
     ",\"description\":\"Only accounts of this network.\"},\"state\":{\"type\":"
     "\"string\",\"enum\":[\"connected\",\"needs_reconnect\"]}," S_CURSOR
     "},\"additionalProperties\":false}",
     S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_account_list, 0, NULL},
    {"postly_get_social_account", "Get social account",
     "Returns one social account of this workspace by id, with its platform-specific choices "
     "(Pinterest boards, Google Business locations) needed when targeting it. Read-only.",
     "{\"type\":\"object\",\"properties\":{\"account_id\":{\"type\":\"string\",\"maxLength\":48,"
     "\"description\":\"An id from postly_list_social_accounts (acc_...).\"}},\"required\":["
     "\"account_id\"],\"additionalProperties\":false}",
     S_OBJ_OUT("\"id\""), 1, 0, 1, 0, NULL, ex_account_get, 0, NULL},
    {"postly_get_channel_schema", "Get channel rules",
     "Returns one network's publishing rules: text length (in code points), media counts, "
     "kinds and mime types, required fields such as Pinterest's board or YouTube's title, and "
     "its settings. Check it before writing a post for that network. Read-only; needs any "
     "valid connection.",
     S_IN("\"platform\":{\"type\":\"string\",\"enum\":" S_PLATFORM_ENUM "}", "\"platform\""),
     "{\"type\":\"object\"}", 1, 0, 1, 0, NULL, t_channel_schema, 0, NULL},
    /* posts */
    {"postly_validate_post", "Validate post",
     "Checks a post against each target network's rules without saving anything: either the "
     "arguments of postly_create_post or the post_id of a stored post. Returns valid and a list "
     "of problems naming the target and field. Use before creating or publishing. Read-only.",
     S_IN(S_POST_CONTENT
          "," S_ID("post_id", "A stored post to re-check (pst_...).") "," S_SCHEDULED_AT "," S_IDEM,
          ""),
     "{\"type\":\"object\",\"properties\":{\"valid\":{\"type\":\"boolean\"},\"problems\":{"
     "\"type\":\"array\"}},\"required\":[\"valid\",\"problems\"]}",
     1, 0, 1, 0, NULL, ex_post_validate, 0, NULL},
    {"postly_create_post", "Create post",
     "Creates a post for one or more social accounts. Without scheduled_at it is saved as a "
     "draft post (nothing is published); with scheduled_at it is scheduled and will publish "
     "automatically at that time. Validated against each network's rules first. Pass an "
     "idempotency_key so a retry does not create a duplicate.",
     S_IN(S_POST_CONTENT "," S_SCHEDULED_AT "," S_IDEM, ""), S_POST_OUT, 0, 0, 0, 0, NULL,
     ex_post_create, MCP_PUBLISH_IF_SCHEDULED, NULL},
    {"postly_list_posts", "List posts",
     "Lists posts of this workspace, newest last, filtered by status, campaign, network or a "
     "time range (on scheduled_at when set, else created_at). Paginated: pass next_cursor back "
     "as cursor. Read-only.",
     S_IN("\"status\":{\"type\":\"string\",\"enum\":[\"draft\",\"scheduled\",\"publishing\","
          "\"published\",\"partially_published\",\"failed\"]}," S_ID(
              "campaign_id",
              "cmp_...") ",\"platform\":{\"type\":\"string\",\"enum\":" S_PLATFORM_ENUM
                         "},\"from\":{\"type\":"
                         "\"string\",\"maxLength\":40,\"description\":\"RFC "
                         "3339\"},\"to\":{\"type\":\"string\","
                         "\"maxLength\":40,\"description\":\"RFC 3339\"}," S_CURSOR,
          ""),
     S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_post_list, 0, NULL},
    {"postly_get_post", "Get post",
     "Returns one post with its targets, per-target status, remote ids and URLs. Read-only.",
     S_IN(S_ID("post_id", "pst_... id"), "\"post_id\""), S_POST_OUT, 1, 0, 1, 0, NULL, ex_post_get,
     0, NULL},
    {"postly_update_post", "Update post",
     "Changes a draft or scheduled post's text, title, link, media, targets or campaign; "
     "re-validated against the networks' rules. A post being published cannot be edited. Pass "
     "expected_version to avoid overwriting someone else's change.",
     S_IN(S_ID("post_id", "pst_... id") "," S_POST_CONTENT "," S_VERSION, "\"post_id\""),
     S_POST_OUT, 0, 0, 1, 0, NULL, ex_post_update, 0, NULL},
    {"postly_delete_post", "Delete post",
     "Deletes a post from Postly (not while it is being published). This cannot be undone. "
     "Ask the user before calling.",
     S_IN(S_ID("post_id", "pst_... id") "," S_VERSION, "\"post_id\""), S_DELETED_OUT, 0, 1, 1, 0,
     NULL, ex_post_delete, 0, NULL},
    {"postly_schedule_post", "Schedule post",
     "Schedules a draft post (or moves a scheduled one) to publish automatically at "
     "scheduled_at. Times are RFC 3339 with an offset; past times are refused.",
     S_IN(S_ID("post_id", "pst_... id") "," S_SCHEDULED_AT "," S_VERSION,
          "\"post_id\",\"scheduled_at\""),
     S_POST_OUT, 0, 0, 1, 0, NULL, ex_post_schedule, MCP_PUBLISH_ALWAYS, NULL},
    {"postly_unschedule_post", "Unschedule post",
     "Takes a scheduled post off the schedule; it goes back to draft and will not publish.",
     S_IN(S_ID("post_id", "pst_... id") "," S_VERSION, "\"post_id\""), S_POST_OUT, 0, 0, 1, 0, NULL,
     ex_post_unschedule, 0, NULL},
    {"postly_publish_post", "Publish post now",
     "Publishes a draft or scheduled post to its social networks immediately. This is public "
     "and cannot be undone from Postly: confirm with the user first. Pass an idempotency_key so "
     "a retry after a timeout does not publish twice. Returns the post with per-target results.",
     S_IN(S_ID("post_id", "pst_... id") "," S_IDEM, "\"post_id\""), S_POST_OUT, 0, 1, 0, 1, NULL,
     ex_post_publish, MCP_PUBLISH_ALWAYS, NULL},
    {"postly_retry_post", "Retry failed targets",
     "Publishes again the targets of a post that failed (and, with force, those whose outcome "
     "is unknown, which may duplicate a post on that network). Public: confirm with the user.",
     S_IN(S_ID("post_id", "pst_... id") ",\"force\":{\"type\":\"boolean\",\"description\":"
                                        "\"Also retry unconfirmed targets.\"}," S_IDEM,
          "\"post_id\""),
     S_POST_OUT, 0, 1, 0, 1, NULL, ex_post_retry, MCP_PUBLISH_ALWAYS, NULL},
    {"postly_get_post_status", "Get post status",
     "Returns the publishing status of a post and of each target (attempts, next retry, remote "
     "URL, error). Use it to follow a scheduled or publishing post. Read-only.",
     S_IN(S_ID("post_id", "pst_... id"), "\"post_id\""), S_POST_OUT, 1, 0, 1, 0, NULL,
     ex_post_status, 0, NULL},
    /* media */
    {"postly_upload_media", "Upload media",
     "Uploads one image, video or PDF given inline as base64 (up to 5 MiB decoded; use "
     "postly_upload_media_chunk for larger files). The type is detected from the content. "
     "Returns the medium; put its id in media_ids of a post.",
     S_IN("\"data_base64\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":7000000},"
          "\"filename\":{\"type\":\"string\",\"maxLength\":255},\"mime_type\":{\"type\":"
          "\"string\",\"maxLength\":100},\"alt_text\":{\"type\":\"string\",\"maxLength\":1500}"
          "," S_IDEM,
          "\"data_base64\""),
     S_OBJ_OUT("\"id\""), 0, 0, 0, 0, NULL, ex_media_upload, 0, NULL},
    {"postly_upload_media_chunk", "Upload media in chunks",
     "Uploads a large file in steps: action begin (total_bytes, filename) returns an upload_id; "
     "action append (upload_id, offset, data_base64 up to 8 MiB decoded) adds bytes at offset; "
     "action finish (upload_id) returns the medium.",
     S_IN("\"action\":{\"type\":\"string\",\"enum\":[\"begin\",\"append\",\"finish\"]}," S_ID(
              "upload_id", "upl_... from begin") ",\"offset\":{\"type\":\"integer\",\"minimum\":0,"
                                                 "\"maximum\":1099511627776},\"total_bytes\":{"
                                                 "\"type\":\"integer\",\"minimum\":1,"
                                                 "\"maximum\":1099511627776},\"data_base64\":{"
                                                 "\"type\":\"string\",\"maxLength\":"
                                                 "11200000},\"filename\":{\"type\":\"string\","
                                                 "\"maxLength\":255},\"mime_type\":{"
                                                 "\"type\":\"string\",\"maxLength\":100},\"alt_"
                                                 "text\":{\"type\":\"string\","
                                                 "\"maxLength\":1500}",
          "\"action\""),
     "{\"type\":\"object\"}", 0, 0, 0, 0, NULL, t_upload_chunk, 0, NULL},
    {"postly_list_media", "List media",
     "Lists the workspace's uploaded media, optionally of one kind. Paginated. Read-only.",
     S_IN("\"kind\":{\"type\":\"string\",\"enum\":[\"image\",\"gif\",\"video\",\"document\"]}"
          "," S_CURSOR,
          ""),
     S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_media_list, 0, NULL},
    {"postly_get_media", "Get media",
     "Returns one medium's metadata (type, size, dimensions, alt text, posts using it). "
     "Read-only.",
     S_IN(S_ID("media_id", "med_... id"), "\"media_id\""), S_OBJ_OUT("\"id\""), 1, 0, 1, 0, NULL,
     ex_media_get, 0, NULL},
    {"postly_update_media", "Update media", "Changes a medium's alt text or file name.",
     S_IN(
         S_ID("media_id",
              "med_... id") ",\"alt_text\":{\"type\":\"string\",\"maxLength\":"
                            "1500},\"filename\":{\"type\":\"string\",\"maxLength\":255}," S_VERSION,
         "\"media_id\""),
     S_OBJ_OUT("\"id\""), 0, 0, 1, 0, NULL, ex_media_update, 0, NULL},
    {"postly_delete_media", "Delete media",
     "Deletes a medium. One used by a scheduled or publishing post needs force (the post then "
     "loses it). Cannot be undone: ask the user first.",
     S_IN(S_ID("media_id", "med_... id") ",\"force\":{\"type\":\"boolean\"}," S_VERSION,
          "\"media_id\""),
     S_DELETED_OUT, 0, 1, 1, 0, NULL, ex_media_delete, 0, NULL},
    /* campaigns */
    {"postly_create_campaign", "Create campaign",
     "Creates a campaign (name, goal, dates) that posts can be grouped under via campaign_id. "
     "Pass an idempotency_key so a retry does not create a duplicate.",
     S_IN(S_CAMPAIGN_FIELDS "," S_IDEM, "\"name\""), S_OBJ_OUT("\"id\""), 0, 0, 0, 0, NULL,
     ex_campaign_create, 0, NULL},
    {"postly_list_campaigns", "List campaigns",
     "Lists the workspace's campaigns, optionally by status. Paginated. Read-only.",
     S_IN("\"status\":{\"type\":\"string\",\"enum\":[\"planned\",\"active\",\"completed\","
          "\"archived\"]}," S_CURSOR,
          ""),
     S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_campaign_list, 0, NULL},
    {"postly_get_campaign", "Get campaign",
     "Returns one campaign with its dates, status and number of posts. Read-only.",
     S_IN(S_ID("campaign_id", "cmp_... id"), "\"campaign_id\""), S_OBJ_OUT("\"id\""), 1, 0, 1, 0,
     NULL, ex_campaign_get, 0, NULL},
    {"postly_update_campaign", "Update campaign",
     "Changes a campaign's name, goal, dates or status.",
     S_IN(S_ID("campaign_id", "cmp_... id") "," S_CAMPAIGN_FIELDS "," S_VERSION, "\"campaign_id\""),
     S_OBJ_OUT("\"id\""), 0, 0, 1, 0, NULL, ex_campaign_update, 0, NULL},
    {"postly_delete_campaign", "Delete campaign",
     "Deletes a campaign; its posts are kept and only unlinked. Cannot be undone: ask the user "
     "first.",
     S_IN(S_ID("campaign_id", "cmp_... id") "," S_VERSION, "\"campaign_id\""), S_DELETED_OUT, 0, 1,
     1, 0, NULL, ex_campaign_delete, 0, NULL},
    /* workspace */
    {"postly_list_workspaces", "List workspaces",
     "Lists the workspaces the connected user belongs to, with their role and plan; current is "
     "the one this connection acts in (a connection acts in exactly one workspace: to work in "
     "another, the user reconnects and picks it). Read-only.",
     S_EMPTY_IN,
     "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\"},\"truncated\":{"
     "\"type\":\"boolean\"}},\"required\":[\"items\"]}",
     1, 0, 1, 0, NULL, NULL, 0, t_list_workspaces},
    /* drafts */
    {"postly_create_draft", "Create draft",
     "Saves free-form work in progress (text, title, link, media, intended accounts, notes) "
     "that is not yet a post: no network rules are checked and nothing is scheduled or "
     "published. Pass an idempotency_key so a retry does not create a duplicate.",
     S_IN(S_DRAFT_FIELDS "," S_IDEM, ""), S_OBJ_OUT("\"id\""), 0, 0, 0, 0, NULL, ex_draft_create, 0,
     NULL},
    {"postly_list_drafts", "List drafts",
     "Lists the workspace's drafts, oldest first. Paginated: pass next_cursor back as cursor. "
     "Read-only.",
     S_IN(S_CURSOR, ""), S_PAGE_OUT, 1, 0, 1, 0, NULL, ex_draft_list, 0, NULL},
    {"postly_get_draft", "Get draft",
     "Returns one draft with its text, media and notes. Read-only.",
     S_IN(S_ID("draft_id", "drf_... id"), "\"draft_id\""), S_OBJ_OUT("\"id\""), 1, 0, 1, 0, NULL,
     ex_draft_get, 0, NULL},
    {"postly_update_draft", "Update draft",
     "Changes a draft's text, title, link, media, accounts or notes. Pass expected_version to "
     "avoid overwriting someone else's change.",
     S_IN(S_ID("draft_id", "drf_... id") "," S_DRAFT_FIELDS "," S_VERSION, "\"draft_id\""),
     S_OBJ_OUT("\"id\""), 0, 0, 1, 0, NULL, ex_draft_update, 0, NULL},
    {"postly_delete_draft", "Delete draft",
     "Deletes a draft. Cannot be undone: ask the user first.",
     S_IN(S_ID("draft_id", "drf_... id") "," S_VERSION, "\"draft_id\""), S_DELETED_OUT, 0, 1, 1, 0,
     NULL, ex_draft_delete, 0, NULL},
    /* analytics */
    {"postly_get_analytics_summary", "Analytics summary",
     "Totals across all networks for a period (default: the last 28 days; at most 366 days): "
     "impressions, reach, engagements, clicks and more, with which networks contributed. "
     "Per-network detail needs postly_get_platform_analytics. Read-only.",
     S_IN(S_PERIOD, ""),
     "{\"type\":\"object\",\"properties\":{\"period\":{\"type\":\"object\"},\"totals\":{"
     "\"type\":\"object\"}},\"required\":[\"totals\"]}",
     1, 0, 1, 1, NULL, ex_analytics_summary, 0, NULL},
    {"postly_get_platform_analytics", "Network analytics",
     "Metrics of one network's accounts for a period: the normalized metrics plus the "
     "network's own. Needs that network's analytics scope (analytics:read alone is not "
     "enough). Read-only.",
     S_IN("\"platform\":{\"type\":\"string\",\"enum\":" S_PLATFORM_ENUM "}," S_PERIOD,
          "\"platform\""),
     "{\"type\":\"object\",\"properties\":{\"platform\":{\"type\":\"string\"},"
     "\"metrics\":{\"type\":\"object\"}},\"required\":[\"platform\"]}",
     1, 0, 1, 1, "platform", ex_analytics_platform, 0, NULL},
    {"postly_get_post_analytics", "Post analytics",
     "Metrics of one published post per target, limited to the networks whose analytics this "
     "connection may read. Read-only.",
     S_IN(S_ID("post_id", "pst_... id"), "\"post_id\""),
     "{\"type\":\"object\",\"properties\":{\"post_id\":{\"type\":\"string\"},\"targets\":{"
     "\"type\":\"array\"}},\"required\":[\"post_id\",\"targets\"]}",
     1, 0, 1, 1, NULL, NULL, 0, t_post_analytics},
};
const size_t mcp_tools_count = sizeof mcp_tools / sizeof mcp_tools[0];

/* Tools whose work is more than LMDB writes that must stay in order with a durable commit:
 * media bytes are renamed into place or unlinked around the metadata commit (exec/media.c),
 * which must be durable first. They run outside the group-commit batch. */
static const char *const unbatched_tools[] = {
    "postly_upload_media",
    "postly_upload_media_chunk",
    "postly_delete_media",
};

/* 1 when the tool's writes may join the loop iteration's batch (docs/mcp.md "Group commit"):
 * a write tool (not read-only) whose only effects are LMDB writes — not open-world (no
 * connector call that must follow a durable write) and not in unbatched_tools. */
static int batchable(const mcp_tool *t)
{
    if (t->read_only || t->open_world)
        return 0;
    for (size_t i = 0; i < sizeof unbatched_tools / sizeof unbatched_tools[0]; i++)
        if (strcmp(t->name, unbatched_tools[i]) == 0)
            return 0;
    return 1;
}

static const mcp_tool *tool_find(const char *name, size_t *index)
{
    size_t i;
    for (i = 0; i < mcp_tools_count; i++) {
        if (strcmp(mcp_tools[i].name, name) == 0) {
            *index = i;
            return &mcp_tools[i];
        }
    }
    return NULL;
}

static const char *const platform_names[] = {"facebook",        "instagram", "pinterest", "youtube",
                                             "google_business", "linkedin",  "x"};

/* The policy row of t for these args ("postly_get_platform_analytics#facebook"). */
static void policy_name(const mcp_tool *t, const json_t *args, char *buf, size_t bufsz)
{
    const char *v = t->policy_suffix_arg
                        ? json_string_value(json_object_get(args, t->policy_suffix_arg))
                        : NULL;
    size_t n;
    if (v) {
        snprintf(buf, bufsz, "%s#%s", t->name, v);
        return;
    }
    n = strlen(t->name); /* snprintf("%s") without printf: every call */
    if (n > bufsz - 1)
        n = bufsz - 1;
    memcpy(buf, t->name, n);
    buf[n] = '\0';
}

/* Visible in tools/list: the policy lets this client obtain it here (maybe after step-up). */
static int tool_visible(const mcp_call *c, const mcp_tool *t)
{
    char name[POL_NAME_MAX + 32];
    size_t i;
    mcp_gate_result g;
    if (!t->policy_suffix_arg) {
        g = mcp_gate_peek(c, t->name);
        return g != MCP_GATE_POLICY && g != MCP_GATE_NO_ROW;
    }
    for (i = 0; i < sizeof platform_names / sizeof platform_names[0]; i++) {
        snprintf(name, sizeof name, "%s#%s", t->name, platform_names[i]);
        g = mcp_gate_peek(c, name);
        if (g != MCP_GATE_POLICY && g != MCP_GATE_NO_ROW)
            return 1;
    }
    return 0;
}

uint64_t mcp_tools_visible_fp(const mcp_call *c)
{
    uint64_t fp = MCP_FP_INIT;
    size_t i;
    for (i = 0; i < mcp_tools_count; i++)
        fp = mcp_fp_add(fp, (unsigned)tool_visible(c, &mcp_tools[i]));
    return fp;
}

pl_rc mcp_tools_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    json_t *arr = json_array(), *res;
    size_t i;
    const json_t *cursor = json_object_get(params, "cursor");
    if (cursor) {
        /* The whole catalogue fits one page; no cursor of ours exists. */
        json_decref(arr);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.cursor: invalid cursor");
        return PL_ERR_INVALID;
    }
    for (i = 0; arr && i < mcp_tools_count; i++) {
        const mcp_tool *t = &mcp_tools[i];
        json_t *row;
        if (!tool_visible(c, t))
            continue;
        row = json_pack("{s:s, s:s, s:s, s:O, s:O, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name,
                        "title", t->title, "description", t->description, "inputSchema",
                        c->srv->tool_in[i], "outputSchema", c->srv->tool_out[i], "annotations",
                        "title", t->title, "readOnlyHint", t->read_only, "destructiveHint",
                        t->destructive, "idempotentHint", t->idempotent, "openWorldHint",
                        t->open_world);
        if (row)
            json_array_append_new(arr, row);
    }
    res = json_pack("{s:o}", "tools", arr);
    if (c->raw_result)
        return PL_OK; /* *result stays NULL: the caller sends c->raw_result */
    if (!res)
        return PL_ERR_NOMEM;
    *result = res;
    return PL_OK;
}

/* A tool execution error (isError: true) the model can read and act on. */
static json_t *tool_error(const char *code, const char *field, const char *message)
{
    json_t *detail = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "field",
                               field ? field : "", "message", message);
    char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_t *res = json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text",
                            text ? text : message, "isError", 1);
    free(text);
    json_decref(detail);
    return res;
}

static const char *rule_name(const mcp_call *c, uint32_t rule)
{
    pol_rule_info ri;
    if (rule == POL_RULE_NONE || pol_rule_get(c->srv->deps.policy, rule, &ri) != PL_OK)
        return "-";
    return ri.id;
}

/* The successful result's text, built once (c->raw_result): what json_dumps(JSON_COMPACT)
 * makes of {"content":[{"type":"text","text":TEXT}],"structuredContent":OUT,"isError":false}
 * (jansson keeps keys in insertion order), with TEXT = the compact dump of OUT, spliced in
 * twice instead of parsed back into a tree and serialised again. TEXT comes from
 * core_json_compact (json_dumps's bytes), so it holds no control characters (they are escaped
 * there); inside a JSON string only '"' and '\\' then need a backslash, exactly as jansson would
 * write them. PL_ERR_INVALID when TEXT has a control character after all (the caller then takes the
 * tree path), PL_ERR_NOMEM. */
static pl_rc raw_result(mcp_call *c, const char *text)
{
    static const char p1[] = "{\"content\":[{\"type\":\"text\",\"text\":\"";
    static const char p2[] = "\"}],\"structuredContent\":";
    static const char p3[] = ",\"isError\":false}";
    size_t n = strlen(text), k, len;
    char *r = malloc(sizeof p1 - 1 + 2 * n + sizeof p2 - 1 + n + sizeof p3), *w;
    if (!r)
        return PL_ERR_NOMEM;
    w = r;
    memcpy(w, p1, sizeof p1 - 1);
    w += sizeof p1 - 1;
    /* escaped in one pass, eight bytes at a time where none needs a look (core/json_text.h) */
    k = core_json_escape_quotes(w, text, n);
    if (k == SIZE_MAX) {
        free(r);
        return PL_ERR_INVALID;
    }
    w += k;
    memcpy(w, p2, sizeof p2 - 1);
    w += sizeof p2 - 1;
    memcpy(w, text, n);
    w += n;
    memcpy(w, p3, sizeof p3);
    len = (size_t)(w - r) + sizeof p3 - 1;
    c->raw_result = r;
    c->raw_result_len = len;
    return PL_OK;
}

/* The end of a tools/call: *result from res (taken), or the raw result, or the HTTP-level
 * reply already formed. */
static pl_rc call_end(mcp_call *c, json_t *res, json_t **result)
{
    if (c->http_done) {
        json_decref(res);
        return PL_ERR_DENIED;
    }
    if (c->raw_result)
        return PL_OK; /* *result stays NULL: the caller sends c->raw_result */
    if (!res)
        return PL_ERR_NOMEM;
    *result = res;
    return PL_OK;
}

/* An authorised tools/call from its writes on: the write part runs with the batch, the rest
 * (result text, audit line) needs no transaction and may run after the batch was handed to
 * the committer (a parked call: mcp_server_resume_write, then mcp_server_resume). */
typedef struct tool_run {
    const mcp_tool *t;
    const char *pname;
    pol_decision d;
    const json_t *args;
    json_t *out, *res; /* the tool's output; res: an early error result */
    ex_err xe;
    pl_rc rc;
    int joined;
    struct mcp_audit_line *lines; /* kept while the outcome waits for the batch's */
} tool_run;

/* A parked tools/call (mcp_int.h park): what its rest needs. */
struct tool_park {
    char pname[POL_NAME_MAX + 32];
    json_t *args; /* a reference */
    int wrote;    /* run_write done */
    tool_run r;
};
typedef struct tool_park tool_park;

/* The write part: workspace record, quota, the tool (its writes join the batch when
 * batchable). */
static void run_write(mcp_call *c, tool_run *r)
{
    char msg[400];
    int batched;

    memset(&r->xe, 0, sizeof r->xe);
    /* Group commit (exec/batch.h, docs/mcp.md "Group commit"): the writes of a tool that
     * stays inside the store (not read-only, not open-world: no connector call or other
     * effect outside LMDB that must follow a durable write) join this loop iteration's batch;
     * the reply is then held until the batch is committed and synced. */
    batched = c->srv->deps.batcher && batchable(r->t);
    if (batched) {
        ex_batcher_enter(c->srv->deps.batcher);
        c->audit_hold = &r->lines; /* the outcome is final only with the batch's */
    }
    if (!r->t->read_only && mcp_workspace_ensure(c->srv->deps.ex, c->who->ws) != PL_OK) {
        r->res = tool_error("unavailable", "", "the workspace record could not be created");
        mcp_audit(c, "tool", r->pname, "store_failed", &r->d, r->args);
        goto out;
    }
    if (c->srv->deps.usage) {
        mcp_quota_denial qd;
        const mcp_plan *plan;
        json_t *w = NULL;
        pl_rc rc;
        if (!c->plan[0] && ex_workspace_get(c->srv->deps.ex, c->who->ws, &w, NULL) == PL_OK)
            snprintf(c->plan, sizeof c->plan, "%s",
                     json_string_value(json_object_get(w, "plan"))
                         ? json_string_value(json_object_get(w, "plan"))
                         : "");
        json_decref(w);
        plan = mcp_plan_get(c->plan);
        memset(&qd, 0, sizeof qd);
        rc = mcp_usage_count(c->srv->deps.usage, c->who->ws, plan, c->who->client_id, r->t->name,
                             r->t->counts_publish == MCP_PUBLISH_ALWAYS ||
                                 (r->t->counts_publish == MCP_PUBLISH_IF_SCHEDULED &&
                                  json_object_get(r->args, "scheduled_at")),
                             &qd);
        if (rc == PL_ERR_LIMIT) {
            snprintf(msg, sizeof msg,
                     "quota exhausted: the %s plan allows %llu %s per month and this workspace "
                     "has used %llu; the quota resets at %s",
                     qd.plan->name, (unsigned long long)qd.quota, qd.what,
                     (unsigned long long)qd.used, qd.resets_at);
            r->res = tool_error("quota_exceeded", "", msg);
            mcp_audit(c, "tool", r->pname, "quota_exceeded", &r->d, r->args);
            goto out;
        }
        if (rc != PL_OK) {
            r->res =
                tool_error("unavailable", "", "usage metering is unavailable; try again later");
            mcp_audit(c, "tool", r->pname, "metering_failed", &r->d, r->args);
            goto out;
        }
    }
    mcp_progress(c, 1, 3, "authorized: arguments valid, policy and quota allow the call");
    if (c->progress_token) { /* the message only when a client asked for progress */
        char m[POL_NAME_MAX + 16];
        snprintf(m, sizeof m, "running %s", r->t->name);
        mcp_progress(c, 2, 3, m);
    }
    r->rc = r->t->cfn ? r->t->cfn(c, &r->d, r->args, &r->out, &r->xe)
                      : r->t->fn(c->srv->deps.ex, c->who->ws, r->args, &r->out, &r->xe);
out:
    if (batched)
        r->joined = ex_batcher_leave(c->srv->deps.batcher);
    c->held |= r->joined;
}

/* The rest: result, audit line, the reply's shape. */
static pl_rc run_finish(mcp_call *c, tool_run *r, json_t **result)
{
    json_t *res = r->res;
    if (!res) {
        mcp_progress(c, 3, 3, r->rc == PL_OK ? "done" : "failed");
        if (r->rc != PL_OK) {
            res = tool_error(pl_errname(r->rc), r->xe.field,
                             r->xe.msg[0] ? r->xe.msg : pl_strerror(r->rc));
            mcp_audit(c, "tool", r->pname, pl_errname(r->rc), &r->d, r->args);
        } else {
            char *text = core_json_compact(r->out, NULL); /* json_dumps(JSON_COMPACT)'s bytes */
            if (!(c->raw_ok && text && raw_result(c, text) == PL_OK)) {
                res = json_pack("{s:[{s:s}], s:O, s:b}", "content", "type", "text",
                                "structuredContent", r->out, "isError", 0);
                if (res && text)
                    json_object_set_new(json_array_get(json_object_get(res, "content"), 0), "text",
                                        json_string(text));
            }
            free(text);
            mcp_audit(c, "tool", r->pname, "ok", &r->d, r->args);
        }
    }
    r->res = NULL;
    c->audit_hold = NULL;
    if (r->joined) /* written with the reply, when the batch is settled (mcp_server_release) */
        mcp_audit_lines_move(&c->audit_kept, &r->lines);
    else
        mcp_audit_lines_write(c->srv, r->lines, NULL);
    r->lines = NULL;
    json_decref(r->out);
    r->out = NULL;
    return call_end(c, res, result);
}

pl_rc mcp_tools_call(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const json_t *args = json_object_get(params, "arguments");
    json_t *empty = NULL, *res = NULL;
    const mcp_tool *t;
    char pname[POL_NAME_MAX + 32], msg[400];
    pol_decision d;
    mcp_gate_result g;
    ex_err xe;
    size_t idx = 0;
    pl_rc rc;

    memset(&d, 0, sizeof d);
    memset(&xe, 0, sizeof xe);
    if (!name) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.name: required string");
        return PL_ERR_INVALID;
    }
    t = tool_find(name, &idx);
    if (!t) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "unknown tool: %.100s", name);
        return PL_ERR_INVALID;
    }
    if (args && !json_is_object(args)) {
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.arguments: must be an object");
        return PL_ERR_INVALID;
    }
    if (!args)
        args = empty = json_object();
    /* Arguments first when the policy row depends on one (the platform of analytics). */
    if (t->policy_suffix_arg && mcp_schema_validate(c->srv->tool_in[idx], args, &xe) != PL_OK) {
        res = tool_error("invalid", xe.field, xe.msg);
        mcp_audit(c, "tool", t->name, "invalid_arguments", NULL, args);
        goto out;
    }
    policy_name(t, args, pname, sizeof pname);
    g = mcp_gate(c, pname, &d);
    switch (g) {
    case MCP_GATE_ALLOW:
        break;
    case MCP_GATE_STEP_UP:
        mcp_audit(c, "tool", pname, "deny_scope", &d, args);
        goto out; /* 403 insufficient_scope already formed */
    case MCP_GATE_APPROVAL:
        snprintf(msg, sizeof msg,
                 "%s needs a person's approval before an AI client may run it here (policy rule "
                 "%s); ask a workspace admin",
                 t->name, rule_name(c, d.rule));
        res = tool_error("needs_approval", "", msg);
        mcp_audit(c, "tool", pname, "needs_approval", &d, args);
        goto out;
    case MCP_GATE_POLICY:
    case MCP_GATE_NO_ROW:
        /* Hidden from tools/list and refused: a plain protocol error, no step-up. */
        mcp_audit(c, "tool", pname, "deny_policy", &d, args);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg,
                 "tool %.48s is not available to this client in this workspace (policy rule "
                 "%.32s)",
                 t->name, g == MCP_GATE_POLICY ? rule_name(c, d.rule) : "none");
        json_decref(empty);
        return PL_ERR_DENIED;
    }
    if (mcp_rate_charge(c, pname, c->id) != PL_OK) {
        mcp_audit(c, "tool", pname, "rate_limited", &d, args);
        goto out; /* 429 with Retry-After already formed */
    }
    if (mcp_schema_validate(c->srv->tool_in[idx], args, &xe) != PL_OK) {
        res = tool_error("invalid", xe.field, xe.msg);
        mcp_audit(c, "tool", pname, "invalid_arguments", &d, args);
        goto out;
    }
    /* Group commit: while a batch commit (its fsync) is in flight, a store-only write is
     * parked, authorised and charged, and its rest runs when the loop holds the next batch
     * transaction (mcp_tools_call_resume); the loop serves other requests meanwhile. */
    if (c->park_ok && batchable(t) && !ex_batcher_ready(c->srv->deps.batcher)) {
        tool_park *p = calloc(1, sizeof *p);
        if (p) {
            snprintf(p->pname, sizeof p->pname, "%s", pname);
            p->args = json_incref((json_t *)args);
            p->r.t = t;
            p->r.pname = p->pname;
            p->r.d = d;
            p->r.args = p->args;
            c->park = p;
            json_decref(empty);
            return PL_ERR_BUSY;
        }
        /* Out of memory: run it now (its first write waits for the batch). */
    }
    {
        tool_run r;
        memset(&r, 0, sizeof r);
        r.t = t;
        r.pname = pname;
        r.d = d;
        r.args = args;
        run_write(c, &r);
        rc = run_finish(c, &r, result);
    }
    json_decref(empty);
    return rc;
out:
    json_decref(empty);
    return call_end(c, res, result);
}

void mcp_tools_call_resume_write(mcp_call *c)
{
    tool_park *p = c->park;
    if (p && !p->wrote) {
        run_write(c, &p->r);
        p->wrote = 1;
    }
}

pl_rc mcp_tools_call_resume(mcp_call *c, json_t **result, mcp_rpc_error *err)
{
    tool_park *p = c->park;
    pl_rc rc;
    (void)err;
    if (!p)
        return PL_ERR_INTERNAL;
    mcp_tools_call_resume_write(c);
    c->park = NULL;
    rc = run_finish(c, &p->r, result);
    mcp_tools_park_free(p);
    return rc;
}

void mcp_tools_park_free(tool_park *p)
{
    if (p) {
        json_decref(p->r.out);
        json_decref(p->r.res);
        mcp_audit_lines_free(p->r.lines);
        json_decref(p->args);
        free(p);
    }
}
