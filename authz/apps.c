/* authz/apps.c — the connected apps page: each grant with client, workspace, scopes, first
 * and last use, and a Disconnect button that revokes the grant (refresh family dead at once;
 * the resource server refuses its access tokens on the next request, directory.h). */
#include "server_int.h"

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

void az_h_apps(core_http_req *req, void *arg)
{
    az_server *s = arg;
    az_session ss;
    az_grant *g = calloc(APPS_MAX, sizeof *g);
    az_user u;
    size_t n = 0;
    core_buf rows;
    char csrf[AZ_SECRET_SIZE];
    pl_rc rc = PL_OK;

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
            rc = core_buf_addf(&rows,
                               "</code></td><td>%s</td><td>%s</td><td><form method=\"post\" "
                               "action=\"/apps/disconnect\"><input type=\"hidden\" name=\"csrf\" "
                               "value=\"%s\"><input type=\"hidden\" name=\"gid\" value=\"%s\">"
                               "<button class=\"danger\" type=\"submit\">Disconnect</button>"
                               "</form></td></tr>",
                               first, last, csrf, g[i].gid);
    }
    if (rc == PL_OK && n == 0)
        rc = core_buf_adds(&rows, "<tr><td colspan=\"6\">No connected apps.</td></tr>");
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
