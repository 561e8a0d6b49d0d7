/* authz/apps.c — the connected apps page: each grant with client, workspace, scopes, first
 * use (the grant's creation), its last token issuance, its last MCP call (recorded by
 * postly-mcp in <data>/seen, seen.h) and a Disconnect button that revokes the grant (refresh
 * family dead at once; the resource server refuses its access tokens on the next request,
 * directory.h). */
#include "server_int.h"

#include "authz/seen.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APPS_MAX 100

static void fmt_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, 32, "-");
}

/* How long ago, in words ("" when ms lies in the future: clocks of two processes). */
static void fmt_ago(int64_t now_ms, int64_t ms, char out[48])
{
    /* Tables over branches: the largest unit that fits. */
    static const struct {
        int64_t s;
        const char *one, *many;
    } units[] = {{86400, "day", "days"}, {3600, "hour", "hours"}, {60, "minute", "minutes"}};
    int64_t d = (now_ms - ms) / 1000;
    out[0] = '\0';
    if (d < 0)
        return;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (d >= units[i].s) {
            int64_t n = d / units[i].s;
            snprintf(out, 48, "%" PRId64 " %s ago", n, n == 1 ? units[i].one : units[i].many);
            return;
        }
    snprintf(out, 48, "less than a minute ago");
}

/* The "Last MCP call" cell. seen_rc: how reading <data>/seen went (PL_OK even when absent). */
static pl_rc seen_cell(core_buf *b, pl_rc seen_rc, int64_t now_ms, int64_t ms)
{
    char when[32], ago[48], iso[32];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (seen_rc != PL_OK)
        return core_buf_adds(b, "<td class=\"seen\">unavailable</td>");
    if (ms <= 0)
        return core_buf_adds(b, "<td class=\"seen\" data-ms=\"0\">never</td>");
    fmt_time(ms, when);
    fmt_ago(now_ms, ms, ago);
    if (!gmtime_r(&t, &tm) || strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        iso[0] = '\0';
    /* Only digits, the formats above and fixed words: nothing here needs escaping. */
    return core_buf_addf(b,
                         "<td class=\"seen\" data-ms=\"%" PRId64 "\"><time datetime=\"%s\">%s"
                         "</time>%s%s%s</td>",
                         ms, iso, when, ago[0] ? "<br><span class=\"small\">" : "", ago,
                         ago[0] ? "</span>" : "");
}

void az_h_apps(core_http_req *req, void *arg)
{
    az_server *s = arg;
    az_session ss;
    az_grant *g = calloc(APPS_MAX, sizeof *g);
    az_user u;
    size_t n = 0;
    core_buf rows;
    char csrf[AZ_SECRET_SIZE];
    const char *gids[APPS_MAX];
    int64_t seen[APPS_MAX];
    int64_t now = core_clock_now_ms(s->cfg.clock);
    pl_rc rc = PL_OK, seen_rc;

    core_buf_init(&rows, AZ_PAGE_MAX);
    if (!g) {
        core_http_reply_text(req, 503, "Out of memory.");
        goto done;
    }
    if (az_session_of(s, req, NULL, &ss) != PL_OK || !ss.uid[0]) {
        core_http_reply_redirect(req, 302, "/login?next=apps");
        goto done;
    }
    if (az_user_get(s->store, ss.uid, &u) != PL_OK ||
        az_grant_list(s->store, ss.uid, g, APPS_MAX, &n) != PL_OK ||
        az_csrf_make(&ss, "apps", "", csrf) != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "Your apps could not be listed.");
        goto done;
    }
    /* The last MCP call of each grant, as postly-mcp recorded it (seen.h): an absent
     * environment means "never"; one that cannot be read leaves the page working with
     * "unavailable" in that column. */
    for (size_t i = 0; i < n; i++)
        gids[i] = g[i].gid;
    seen_rc = az_seen_read(s->cfg.data_dir, gids, n, seen);
    if (seen_rc != PL_OK)
        core_log_warn(s->log, "authz: last-call times in %s/seen: %s", s->cfg.data_dir,
                      pl_strerror(seen_rc));
    for (size_t i = 0; rc == PL_OK && i < n; i++) {
        az_client c;
        az_dir_workspace w;
        char sc[POL_SCOPE_FORMAT_MAX], first[32], last[32];
        const char *cname =
            az_client_get(s->store, g[i].client_id, &c) == PL_OK ? c.name : g[i].client_id;
        const char *wname = az_ws_get(s->store, g[i].ws, &w) == PL_OK ? w.name : g[i].ws;
        az_scope_str(g[i].scope, sc);
        fmt_time(g[i].created_ms, first);
        fmt_time(g[i].last_used_ms, last);
        rc = core_buf_adds(&rows, "<tr><td class=\"app\">");
        if (rc == PL_OK)
            rc = core_buf_add_html(&rows, cname, strlen(cname));
        if (rc == PL_OK)
            rc = core_buf_adds(&rows, "</td><td>");
        if (rc == PL_OK)
            rc = core_buf_add_html(&rows, wname, strlen(wname));
        if (rc == PL_OK)
            rc = core_buf_adds(&rows, "</td><td class=\"scopes\"><code>");
        if (rc == PL_OK)
            rc = core_buf_add_html(&rows, sc, strlen(sc));
        if (rc == PL_OK)
            rc = core_buf_addf(&rows, "</code></td><td>%s</td><td>%s</td>", first, last);
        if (rc == PL_OK)
            rc = seen_cell(&rows, seen_rc, now, seen[i]);
        if (rc == PL_OK)
            rc = core_buf_addf(&rows,
                               "<td><form method=\"post\" "
                               "action=\"/apps/disconnect\"><input type=\"hidden\" name=\"csrf\" "
                               "value=\"%s\"><input type=\"hidden\" name=\"gid\" value=\"%s\">"
                               "<button class=\"danger\" type=\"submit\">Disconnect</button>"
                               "</form></td></tr>",
                               csrf, g[i].gid);
    }
    if (rc == PL_OK && n == 0)
        rc = core_buf_adds(&rows, "<tr><td colspan=\"7\">No connected apps.</td></tr>");
    if (rc != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "The page could not be built.");
    } else {
        az_var v[] = {{"username", u.username, 0}, {"rows", rows.p, 1}, {"csrf", csrf, 0}};
        az_page_reply(s, req, 200, "Connected apps", "apps", v, 3);
    }
done:
    core_buf_free(&rows);
    free(g);
}

void az_h_apps_disconnect(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    az_session ss;
    az_grant g;
    const char *gid;
    char rws[AZ_ID_MAX + 1];
    uint64_t rscope = 0;
    if (core_http_form_parse(req, NULL, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid request", fe.msg);
        goto done;
    }
    if (az_session_of(s, req, NULL, &ss) != PL_OK || !ss.uid[0] ||
        !az_csrf_check(&ss, "apps", "", core_form_get(&f, "csrf"))) {
        az_error_page(s, req, 403, "This form has expired", "Reload the page and try again.");
        goto done;
    }
    gid = core_form_get(&f, "gid");
    /* Only the user's own grants; anything else looks like "not found". */
    if (!gid || az_grant_get(s->store, gid, &g) != PL_OK || strcmp(g.uid, ss.uid) != 0) {
        az_error_page(s, req, 404, "Not found", "That connection does not exist.");
        goto done;
    }
    /* A disconnect also withdraws the remembered consent for this client and workspace, or a
     * later same-site flow would skip the consent page and reconnect the app silently. The
     * remembered row keeps its workspace (still preselected) with no scopes: a remembered
     * consent covering nothing never skips the page (az_h_consent_get). Forgotten first, so
     * a failure in between leaves the grant alive and the user retries, never a disconnected
     * app that still reconnects silently. Consent for another workspace of this client stays
     * (its own grant is not touched). /revoke keeps the consent: RFC 7009 is the client
     * giving up a token, not the user withdrawing the decision (docs/authz.md). */
    if (az_consent_get(s->store, ss.uid, g.client_id, rws, &rscope) == PL_OK &&
        strcmp(rws, g.ws) == 0 && rscope != 0 &&
        az_consent_put(s->store, ss.uid, g.client_id, g.ws, 0) != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "The app could not be disconnected.");
        goto done;
    }
    if (az_grant_revoke(s->store, g.gid) != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "The app could not be disconnected.");
        goto done;
    }
    core_log_info(s->log, "authz: grant %s disconnected by its user", g.gid);
    core_http_reply_redirect(req, 303, "/apps");
done:
    core_form_free(&f);
}

void az_h_logout(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    az_session ss;
    char sid[AZ_SECRET_SIZE];
    if (core_http_form_parse(req, NULL, &f, &fe) == PL_OK &&
        az_session_of(s, req, sid, &ss) == PL_OK &&
        az_csrf_check(&ss, "apps", "", core_form_get(&f, "csrf"))) {
        az_session_del(s->store, sid);
        core_http_header_add(req, "Set-Cookie",
                             AZ_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    }
    core_http_reply_redirect(req, 303, "/login?next=apps");
    core_wipe(sid, sizeof sid);
    core_form_free(&f);
}
