/* Resource-server side of MCP 2025-11-25 basic/authorization: challenges, the policy gate,
 * and the audit record of every decision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "core/json_text.h"
#include "exec/args.h"
#include "mcp/mcp_int.h"

void mcp_auth_challenge(const mcp_server *srv, mcp_reply *reply, const char *error,
                        const char *description)
{
    char scope[POL_SCOPE_FORMAT_MAX];
    int n;
    if (pol_scope_format(srv->basic_scope, scope, sizeof scope, NULL) != PL_OK)
        scope[0] = '\0';
    /* RFC 6750 §3, RFC 9728 §5.1; MCP basic/authorization "Protected Resource Metadata
     * Discovery Requirements" and "Scope Selection Strategy". */
    n = snprintf(reply->www_authenticate, sizeof reply->www_authenticate,
                 "Bearer resource_metadata=\"%s\", scope=\"%s\"", srv->prm_url, scope);
    if (error && n > 0 && (size_t)n < sizeof reply->www_authenticate)
        snprintf(reply->www_authenticate + n, sizeof reply->www_authenticate - (size_t)n,
                 ", error=\"%s\", error_description=\"%s\"", error, description ? description : "");
    json_decref(reply->body);
    reply->status = 401;
    reply->body = json_pack("{s:s, s:s}", "error", error ? error : "unauthorized",
                            "error_description", description ? description : "");
}

static mcp_gate_result decide(const mcp_call *c, const char *name, pol_decision *d)
{
    const pol_compiled *p = c->srv->deps.policy;
    uint32_t tool;
    if (pol_tool_index(p, name, strlen(name), &tool) != PL_OK)
        return MCP_GATE_NO_ROW;
    if (pol_decide(p, c->who->scope_mask, c->ws_index, (uint32_t)c->cls, tool, d) != PL_OK)
        return MCP_GATE_NO_ROW;
    switch (d->verdict) {
    case POL_ALLOW:
        return MCP_GATE_ALLOW;
    case POL_DENY_SCOPE:
        return MCP_GATE_STEP_UP;
    case POL_DENY_POLICY:
        return MCP_GATE_POLICY;
    case POL_NEEDS_APPROVAL:
        return MCP_GATE_APPROVAL;
    }
    return MCP_GATE_NO_ROW;
}

mcp_gate_result mcp_gate_peek(const mcp_call *c, const char *name)
{
    pol_decision d;
    memset(&d, 0, sizeof d);
    return decide(c, name, &d);
}

mcp_gate_result mcp_gate(mcp_call *c, const char *name, pol_decision *dout)
{
    pol_decision d;
    mcp_gate_result g;
    memset(&d, 0, sizeof d);
    g = decide(c, name, &d);
    if (dout)
        *dout = d;
    if (g == MCP_GATE_STEP_UP) {
        char want[POL_SCOPE_FORMAT_MAX], need[POL_SCOPE_FORMAT_MAX],
            desc[POL_SCOPE_FORMAT_MAX + 96];
        mcp_reply *r = c->reply;
        /* The token's scopes plus the ones that would help: the client re-authorizes for the
         * union (MCP basic/authorization "Runtime Insufficient Scope Errors", RFC 6750 §3.1). */
        if (pol_scope_format((c->who->scope_mask | d.help) & POL_MASK_ALL, want, sizeof want,
                             NULL) != PL_OK)
            want[0] = '\0';
        if (pol_scope_format(d.help & POL_MASK_ALL, need, sizeof need, NULL) != PL_OK)
            need[0] = '\0';
        snprintf(desc, sizeof desc, "%s requires the scope %s", name, need);
        snprintf(r->www_authenticate, sizeof r->www_authenticate,
                 "Bearer error=\"insufficient_scope\", scope=\"%s\", resource_metadata=\"%s\", "
                 "error_description=\"%s\"",
                 want, c->srv->prm_url, desc);
        json_decref(r->body);
        r->status = 403;
        r->body = json_pack("{s:s, s:s, s:s}", "error", "insufficient_scope", "error_description",
                            desc, "scope", want);
        c->http_done = 1;
    }
    return g;
}

static const char *rule_id(const pol_compiled *p, uint32_t rule)
{
    pol_rule_info ri;
    if (rule == POL_RULE_NONE || pol_rule_get(p, rule, &ri) != PL_OK)
        return NULL;
    return ri.id;
}

/* Appends s as a JSON string (RFC 8259 §7). Claims are bounded and control-free, but escape
 * everything anyway: the audit log must stay one valid JSON object per line. */
static void add_json_str(core_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    core_buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        core_buf_add(b, run, (size_t)(s - run));
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            core_buf_add(b, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            core_buf_add(b, e, 6);
        }
        run = s + 1;
    }
    core_buf_add(b, run, (size_t)(s - run));
    core_buf_add(b, "\"", 1);
}

/* ex_time_format(ms) ("YYYY-MM-DDTHH:MM:SS.mmmZ"), with the part up to the seconds formatted
 * once per second (gmtime_r and snprintf were a quarter of the audit line's cost). */
static void audit_time(mcp_server *srv, int64_t ms, char *when, size_t whensz)
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - sec * 1000);
    size_t n;
    if (!srv->audit_when[0] || srv->audit_sec != sec) {
        ex_time_format(sec * 1000, srv->audit_when, sizeof srv->audit_when);
        srv->audit_sec = sec;
    }
    n = strlen(srv->audit_when);
    if (n < 5 || n >= whensz || srv->audit_when[n - 5] != '.' || srv->audit_when[n - 1] != 'Z') {
        ex_time_format(ms, when, whensz); /* an unexpected shape: the slow path */
        return;
    }
    memcpy(when, srv->audit_when, n + 1);
    when[n - 4] = (char)('0' + frac / 100);
    when[n - 3] = (char)('0' + frac / 10 % 10);
    when[n - 2] = (char)('0' + frac % 10);
}

/* v as lowercase hex, at least 12 digits (printf's %012llx). */
static void add_hex12(core_buf *b, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char t[16];
    size_t n = 0, i;
    do {
        t[n++] = hex[v & 15];
        v >>= 4;
    } while (v);
    while (n < 12)
        t[n++] = '0';
    for (i = 0; i < n / 2; i++) {
        char x = t[i];
        t[i] = t[n - 1 - i];
        t[n - 1 - i] = x;
    }
    core_buf_add(b, t, n);
}

/* v in decimal (printf's %lld). */
static void add_i64(core_buf *b, int64_t v)
{
    char t[CORE_DEC_I64_MAX];
    core_buf_add(b, t, core_dec_i64(v, t));
}

/* name is a literal of this file (no escaping needed); appended piecewise rather than through
 * core_buf_addf, whose vsnprintf was a sixth of the audit line's cost. */
static void add_field(core_buf *b, const char *name, const char *value)
{
    core_buf_add(b, ",\"", 2);
    core_buf_adds(b, name);
    core_buf_add(b, "\":", 2);
    add_json_str(b, value ? value : "");
}

/* The hash ex_json_hash(args, NULL, out) gives (SHA-256 of the compact, key-sorted dump),
 * without its deep copy, which it makes only to delete a skipped key. */
static pl_rc args_hash(const mcp_server *srv, const json_t *args, uint8_t out[32])
{
    char *s;
    size_t n = 0;
    if (json_is_object(args) && json_object_size(args) == 0) {
        /* most read calls carry no arguments: SHA-256("{}"), computed at start */
        memcpy(out, srv->empty_args_sha256, 32);
        return PL_OK;
    }
    s = core_json_compact_sorted(args, NULL, &n); /* json_dumps(SORT_KEYS)'s bytes */
    if (!s)
        return PL_ERR_NOMEM;
    core_sha256(s, n, out);
    free(s);
    return PL_OK;
}

/* A kept audit line (mcp_call.audit_hold): its text without the outcome (at off_mid) and the
 * latency (at off_tail), filled in when it is written. */
struct mcp_audit_line {
    struct mcp_audit_line *next;
    char *text;
    size_t len, off_mid, off_tail;
    int64_t start_ms;
    char outcome[48];
};

void mcp_audit_lines_free(struct mcp_audit_line *list)
{
    while (list) {
        struct mcp_audit_line *next = list->next;
        free(list->text);
        free(list);
        list = next;
    }
}

void mcp_audit_lines_move(struct mcp_audit_line **to, struct mcp_audit_line **from)
{
    while (*to)
        to = &(*to)->next;
    *to = *from;
    *from = NULL;
}

void mcp_audit_lines_write(mcp_server *srv, struct mcp_audit_line *list, const char *outcome)
{
    FILE *fp = srv->deps.audit;
    struct mcp_audit_line *l;
    core_buf b;
    core_buf_init(&b, 16384 + 128); /* a kept line (<= 16384) + outcome and latency */
    for (l = list; fp && l; l = l->next) {
        core_buf_reset(&b);
        core_buf_add(&b, l->text, l->off_mid);
        add_field(&b, "outcome", outcome ? outcome : l->outcome);
        core_buf_add(&b, l->text + l->off_mid, l->off_tail - l->off_mid);
        add_i64(&b, core_clock_now_ms(srv->deps.clock) - l->start_ms);
        if (core_buf_add(&b, l->text + l->off_tail, l->len - l->off_tail) == PL_OK)
            fwrite(b.p, 1, b.len, fp);
    }
    if (fp && list)
        fflush(fp);
    core_buf_free(&b);
    mcp_audit_lines_free(list);
}

void mcp_audit(mcp_call *c, const char *kind, const char *target, const char *outcome,
               const pol_decision *d, const json_t *args)
{
    FILE *fp = c->srv->deps.audit;
    const pol_compiled *p = c->srv->deps.policy;
    char when[40], hash_hex[65];
    uint8_t h[32];
    const char *r;
    int nrules = 0, keep = c->audit_hold != NULL;
    size_t off_mid = 0, off_tail = 0;
    core_buf b;

    if (!fp)
        return;
    /* Built by hand rather than through a jansson tree: this runs on every call (measured in
     * bench/mcp: a third of the request's user time went to the tree version). */
    core_buf_init(&b, 16384);
    audit_time(c->srv, core_clock_now_ms(c->srv->deps.clock), when, sizeof when);
    c->srv->decision_seq++;
    /* {"time":"…","decision_id":"dec_<boot id><seq as %012llx>" */
    core_buf_adds(&b, "{\"time\":\"");
    core_buf_adds(&b, when);
    core_buf_adds(&b, "\",\"decision_id\":\"dec_");
    core_buf_adds(&b, c->srv->boot_id);
    add_hex12(&b, c->srv->decision_seq);
    core_buf_add(&b, "\"", 1);
    add_field(&b, "policy_revision", c->srv->deps.policy_revision);
    add_field(&b, "workspace", c->who->ws);
    add_field(&b, "subject", c->who->sub);
    add_field(&b, "client", c->who->client_id);
    add_field(&b, "client_class", c->who->cls);
    add_field(&b, "kind", kind);
    add_field(&b, "target", target);
    if (keep)
        off_mid = b.len; /* the outcome goes here when the line is written */
    else
        add_field(&b, "outcome", outcome);
    core_buf_adds(&b, ",\"rule_ids\":[");
    if (d) {
        if ((r = rule_id(p, d->tool_rule)) != NULL) {
            add_json_str(&b, r);
            nrules++;
        }
        if ((r = rule_id(p, d->rule)) != NULL) {
            if (nrules)
                core_buf_add(&b, ",", 1);
            add_json_str(&b, r);
        }
    }
    core_buf_adds(&b, "],\"latency_ms\":");
    if (keep)
        off_tail = b.len; /* and the latency here */
    else
        add_i64(&b, core_clock_now_ms(c->srv->deps.clock) - c->start_ms);
    if (d)
        add_field(&b, "verdict", pol_verdict_name(d->verdict));
    /* Arguments only as a hash: never in clear (they may hold customer content). */
    if (args && args_hash(c->srv, args, h) == PL_OK &&
        core_hex_encode(h, sizeof h, hash_hex, sizeof hash_hex) == PL_OK)
        add_field(&b, "args_sha256", hash_hex);
    if (core_buf_adds(&b, "}\n") != PL_OK) {
        /* over the line bound: not written */
    } else if (keep) {
        struct mcp_audit_line *l = calloc(1, sizeof *l);
        if (l && core_buf_take(&b, &l->text, &l->len) == PL_OK) {
            l->off_mid = off_mid;
            l->off_tail = off_tail;
            l->start_ms = c->start_ms;
            snprintf(l->outcome, sizeof l->outcome, "%s", outcome);
            mcp_audit_lines_move(c->audit_hold, &l);
        }
        free(l); /* NULL when kept; out of memory: the line is lost, as a failed write */
    } else {
        fwrite(b.p, 1, b.len, fp);
        fflush(fp); /* a line survives a crash of this process */
    }
    core_buf_free(&b);
}

pl_rc mcp_rate_charge(mcp_call *c, const char *name, const json_t *id)
{
    mcp_rate_who who;
    mcp_rate_denial d;
    uint32_t tool;
    char msg[200];
    if (!c->srv->rate || pol_tool_index(c->srv->deps.policy, name, strlen(name), &tool) != PL_OK)
        return PL_OK;
    who.client_id = c->who->client_id;
    who.user = c->who->sub;
    who.workspace = c->who->ws;
    who.token = c->who->jti;
    who.cls = c->cls;
    memset(&d, 0, sizeof d);
    if (mcp_rate_take(c->srv->rate, &who, tool, &d) == PL_OK)
        return PL_OK;
    snprintf(msg, sizeof msg, "rate limit %s exceeded: %u calls per %u s per %s; retry after %d s",
             d.rule_id, d.limit, d.period_s, d.per ? d.per : "client", d.retry_after_s);
    json_decref(c->reply->body);
    c->reply->status = 429;
    c->reply->retry_after_s = d.retry_after_s;
    c->reply->body = mcp_rpc_error_new(
        (json_t *)id, -32000, msg,
        json_pack("{s:s, s:i}", "rule", d.rule_id, "retry_after_s", d.retry_after_s));
    c->http_done = 1;
    return PL_ERR_LIMIT;
}
