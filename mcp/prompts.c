/* Prompts for common workflows (MCP 2025-11-25 server/prompts). A prompt only produces
 * text for the model; the tools it mentions are still gated by scopes and policy. */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "mcp/mcp_int.h"

#define ARG_MAX 500 /* characters of one argument value */

typedef struct prompt_arg {
    const char *name, *description;
    int required;
} prompt_arg;

typedef struct prompt_def {
    const char *name, *title, *description;
    prompt_arg args[3];
    /* The message: literal text with {name} placeholders for arguments; an absent optional
     * argument is replaced by its fallback after '|' in the placeholder ({platforms|all}). */
    const char *text;
} prompt_def;

static const prompt_def prompts[] = {
    {"postly_plan_campaign_week",
     "Plan a week of campaign posts",
     "Plans one week of posts for a campaign goal across the workspace's connected accounts, "
     "then creates the campaign and draft posts after you confirm.",
     {{"goal", "What the campaign should achieve (for example: launch of the spring menu)", 1},
      {"platforms", "Comma-separated networks to use (default: every connected account)", 0},
      {"start_date", "First day, YYYY-MM-DD (default: next Monday)", 0}},
     "Plan a one-week social media campaign for this goal: {goal}.\n"
     "Networks: {platforms|all connected accounts}. Start: {start_date|next Monday}.\n"
     "1. Call postly_get_workspace for the time zone and postly_list_social_accounts for the "
     "accounts.\n"
     "2. Propose 5-7 posts (day, time in the workspace time zone, network, text within that "
     "network's limits, media idea) and wait for my confirmation.\n"
     "3. After I confirm, create the campaign with postly_create_campaign and each post with "
     "postly_create_post (campaign_id set, scheduled_at in RFC 3339 with offset), using one "
     "idempotency_key per post. Do not publish anything immediately."},
    {"postly_analytics_report",
     "Analytics report",
     "Summarises how the workspace's posts performed over a period, overall or for one "
     "network, with the three best and worst posts and concrete suggestions.",
     {{"period", "Period to cover, for example: last 7 days, March 2026", 0},
      {"platform",
       "One network (facebook, instagram, pinterest, youtube, google_business, "
       "linkedin, x); default: all the token may read",
       0},
      {NULL, NULL, 0}},
     "Write an analytics report for {period|the last 7 days} covering {platform|every network "
     "I may read}.\n"
     "Use postly_get_analytics_summary and postly_get_platform_analytics (one call per "
     "network), and postly_get_post_analytics for the notable posts. Report reach, engagement "
     "and clicks with the change against the previous period, the three best and three worst "
     "posts with a reason for each, and three concrete suggestions. Read-only: change nothing."},
    {"postly_draft_post",
     "Draft a post",
     "Drafts one post adapted to each selected network's rules and saves it as a draft for "
     "review; nothing is published.",
     {{"topic", "What the post is about", 1},
      {"platforms", "Comma-separated networks (default: every connected account)", 0},
      {"tone", "Voice, for example: friendly, formal, playful", 0}},
     "Draft a social media post about: {topic}.\n"
     "Networks: {platforms|all connected accounts}. Tone: {tone|friendly}.\n"
     "Check each network's rules with postly_get_channel_schema, validate with "
     "postly_validate_post, then save it with postly_create_draft. Do not schedule or "
     "publish."},
};
#define N_PROMPTS (sizeof prompts / sizeof prompts[0])

pl_rc mcp_prompts_list(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    json_t *arr = json_array();
    size_t i, j;
    if (json_object_get(params, "cursor")) {
        json_decref(arr);
        err->code = MCP_RPC_INVALID_PARAMS;
        snprintf(err->msg, sizeof err->msg, "params.cursor: invalid cursor");
        return PL_ERR_INVALID;
    }
    for (i = 0; arr && i < N_PROMPTS; i++) {
        json_t *args = json_array();
        for (j = 0; j < 3 && prompts[i].args[j].name; j++)
            json_array_append_new(args,
                                  json_pack("{s:s, s:s, s:b}", "name", prompts[i].args[j].name,
                                            "description", prompts[i].args[j].description,
                                            "required", prompts[i].args[j].required));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", prompts[i].name,
                                             "title", prompts[i].title, "description",
                                             prompts[i].description, "arguments", args));
    }
    *result = json_pack("{s:o}", "prompts", arr);
    return *result ? PL_OK : PL_ERR_NOMEM;
}

static size_t codepoints(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

pl_rc mcp_prompts_get(mcp_call *c, const json_t *params, json_t **result, mcp_rpc_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const json_t *args = json_object_get(params, "arguments");
    const prompt_def *p = NULL;
    const char *t, *k;
    json_t *v;
    core_buf b;
    size_t i, j;
    pl_rc rc = PL_OK;

    err->code = MCP_RPC_INVALID_PARAMS;
    if (!name) {
        snprintf(err->msg, sizeof err->msg, "params.name: required string");
        return PL_ERR_INVALID;
    }
    for (i = 0; i < N_PROMPTS; i++)
        if (strcmp(prompts[i].name, name) == 0)
            p = &prompts[i];
    if (!p) {
        snprintf(err->msg, sizeof err->msg, "unknown prompt: %.100s", name);
        return PL_ERR_INVALID;
    }
    if (args && !json_is_object(args)) {
        snprintf(err->msg, sizeof err->msg, "params.arguments: must be an object of strings");
        return PL_ERR_INVALID;
    }
    json_object_foreach((json_t *)args, k, v)
    {
        int known = 0;
        for (j = 0; j < 3 && p->args[j].name; j++)
            known |= strcmp(p->args[j].name, k) == 0;
        if (!known || !json_is_string(v) || codepoints(json_string_value(v)) > ARG_MAX) {
            snprintf(err->msg, sizeof err->msg, "params.arguments.%.40s: %s", k,
                     !known ? "unknown argument" : "must be a string of at most 500 characters");
            return PL_ERR_INVALID;
        }
    }
    for (j = 0; j < 3 && p->args[j].name; j++) {
        const char *val = json_string_value(json_object_get(args, p->args[j].name));
        if (p->args[j].required && (!val || !*val)) {
            snprintf(err->msg, sizeof err->msg, "params.arguments.%s: required", p->args[j].name);
            return PL_ERR_INVALID;
        }
    }
    core_buf_init(&b, 16384);
    for (t = p->text; *t && rc == PL_OK;) {
        const char *open = strchr(t, '{'), *close, *bar;
        char key[40];
        const char *val;
        size_t klen;
        if (!open) {
            rc = core_buf_adds(&b, t);
            break;
        }
        close = strchr(open, '}');
        rc = core_buf_add(&b, t, (size_t)(open - t));
        if (rc != PL_OK || !close)
            break;
        bar = memchr(open, '|', (size_t)(close - open));
        klen = (size_t)((bar ? bar : close) - open - 1);
        snprintf(key, sizeof key, "%.*s", (int)klen, open + 1);
        val = json_string_value(json_object_get(args, key));
        if (val && *val)
            rc = core_buf_adds(&b, val);
        else if (bar)
            rc = core_buf_add(&b, bar + 1, (size_t)(close - bar - 1));
        t = close + 1;
    }
    if (rc == PL_OK)
        *result =
            json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "description", p->description, "messages",
                      "role", "user", "content", "type", "text", "text", b.p ? b.p : "");
    core_buf_free(&b);
    if (rc != PL_OK || !*result) {
        err->code = MCP_RPC_INTERNAL_ERROR;
        snprintf(err->msg, sizeof err->msg, "prompt rendering failed");
        return rc != PL_OK ? rc : PL_ERR_NOMEM;
    }
    return PL_OK;
}

/* MCP 2025-11-25 server/utilities/completion: suggestions for prompt arguments whose values
 * come from a fixed set (networks, periods, tones). Unknown references and free-text
 * arguments get an empty list: completion is a hint, never an error for the user. */
static const struct {
    const char *arg;
    const char *values[8];
} completions[] = {
    {"platform",
     {"facebook", "instagram", "pinterest", "youtube", "google_business", "linkedin", "x", NULL}},
    {"platforms",
     {"facebook", "instagram", "pinterest", "youtube", "google_business", "linkedin", "x", NULL}},
    {"period", {"last 7 days", "last 30 days", "this month", "last month", NULL}},
    {"tone", {"friendly", "formal", "playful", "informative", NULL}},
};

pl_rc mcp_completion_complete(mcp_call *c, const json_t *params, json_t **result,
                              mcp_rpc_error *err)
{
    const json_t *ref = json_object_get(params, "ref");
    const json_t *arg = json_object_get(params, "argument");
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *pname = json_string_value(json_object_get(ref, "name"));
    const char *aname = json_string_value(json_object_get(arg, "name"));
    const char *value = json_string_value(json_object_get(arg, "value"));
    json_t *values = json_array();
    size_t i, j, plen;
    int known_prompt = 0;

    err->code = MCP_RPC_INVALID_PARAMS;
    if (!type || (strcmp(type, "ref/prompt") != 0 && strcmp(type, "ref/resource") != 0)) {
        json_decref(values);
        snprintf(err->msg, sizeof err->msg,
                 "params.ref.type: must be \"ref/prompt\" or \"ref/resource\"");
        return PL_ERR_INVALID;
    }
    if (!aname || !value) {
        json_decref(values);
        snprintf(err->msg, sizeof err->msg,
                 "params.argument: required object with string \"name\" and \"value\"");
        return PL_ERR_INVALID;
    }
    for (i = 0; pname && strcmp(type, "ref/prompt") == 0 && i < N_PROMPTS; i++)
        if (strcmp(prompts[i].name, pname) == 0)
            known_prompt = 1;
    plen = strlen(value);
    for (i = 0; known_prompt && i < sizeof completions / sizeof completions[0]; i++) {
        if (strcmp(completions[i].arg, aname) != 0)
            continue;
        for (j = 0; j < 8 && completions[i].values[j]; j++)
            if (strncmp(completions[i].values[j], value, plen) == 0)
                json_array_append_new(values, json_string(completions[i].values[j]));
    }
    *result = json_pack("{s:{s:o, s:I, s:b}}", "completion", "values", values, "total",
                        (json_int_t)json_array_size(values), "hasMore", 0);
    return *result ? PL_OK : PL_ERR_NOMEM;
}
