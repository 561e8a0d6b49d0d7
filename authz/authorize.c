/* authz/authorize.c — the authorization request (RFC 6749 §4.1.1 with RFC 7636, RFC 8707,
 * RFC 9207, RFC 9700), the login page and the consent page.
 *
 * Error rules (RFC 6749 §4.1.2.1, RFC 9700 §4.11): until the client and its redirect URI are
 * known to match, every error is an error page, never a redirect (no open redirector). After
 * that, errors go back to the client with `error`, `state` and `iss`. */
#include "server_int.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- redirects back to the client ----------------------------------------------------- */

static pl_rc add_param(core_buf *b, int *first, const char *k, const char *v)
{
    pl_rc rc = core_buf_adds(b, *first ? "" : "&");
    *first = 0;
    if (rc == PL_OK)
        rc = core_buf_adds(b, k);
    if (rc == PL_OK)
        rc = core_buf_adds(b, "=");
    if (rc == PL_OK)
        rc = core_buf_add_urlenc(b, v, strlen(v));
    return rc;
}

/* redirect_uri + ('?' or '&') + params (NULL-terminated name,value pairs; NULL values
 * skipped). */
static void redirect_with(az_server *s, core_http_req *req, int status, const char *redirect_uri,
                          const char *const *kv)
{
    core_buf b;
    int first = 1;
    pl_rc rc;
    core_buf_init(&b, 8192);
    rc = core_buf_adds(&b, redirect_uri);
    if (rc == PL_OK)
        rc = core_buf_adds(&b, strchr(redirect_uri, '?') ? "&" : "?");
    for (; rc == PL_OK && kv[0]; kv += 2)
        if (kv[1])
            rc = add_param(&b, &first, kv[0], kv[1]);
    if (rc != PL_OK)
        az_error_page(s, req, 500, "Something went wrong", "The redirect could not be built.");
    else
        core_http_reply_redirect(req, status, b.p);
    if (b.p)
        core_wipe(b.p, b.len); /* may hold a code */
    core_buf_free(&b);
}

void az_redirect_error(az_server *s, core_http_req *req, const char *redirect_uri,
                       const char *state, const char *error, const char *description)
{
    const char *kv[] = {"error",     error,     "error_description",
                        description, "state",   state && *state ? state : NULL,
                        "iss",       s->issuer, NULL};
    redirect_with(s, req, core_http_method(req) == CORE_HTTP_POST ? 303 : 302, redirect_uri, kv);
}

void az_finish_authorization(az_server *s, core_http_req *req, const az_pending *p, const char *uid,
                             const char *ws, const char *cls, uint64_t scope)
{
    az_code c;
    char code[AZ_SECRET_SIZE];
    memset(&c, 0, sizeof c);
    snprintf(c.client_id, sizeof c.client_id, "%s", p->client_id);
    snprintf(c.redirect_uri, sizeof c.redirect_uri, "%s", p->redirect_uri);
    snprintf(c.challenge, sizeof c.challenge, "%s", p->challenge);
    snprintf(c.resource, sizeof c.resource, "%s", p->resource);
    snprintf(c.ws, sizeof c.ws, "%s", ws);
    snprintf(c.uid, sizeof c.uid, "%s", uid);
    snprintf(c.cls, sizeof c.cls, "%s", cls);
    c.scope = scope;
    if (az_code_issue(s->store, &c, code) != PL_OK) {
        az_redirect_error(s, req, p->redirect_uri, p->state, "server_error",
                          "the authorization code could not be stored");
        return;
    }
    az_pending_del(s->store, p->rid);
    {
        /* RFC 9207: iss in every authorization response. */
        const char *kv[] = {"code", code,      "state", p->state[0] ? p->state : NULL,
                            "iss",  s->issuer, NULL};
        redirect_with(s, req, core_http_method(req) == CORE_HTTP_POST ? 303 : 302, p->redirect_uri,
                      kv);
    }
    core_wipe(code, sizeof code);
}

/* ---- GET /authorize ------------------------------------------------------------------------ */

static int challenge_valid(const char *c)
{
    /* RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters. */
    return c && strlen(c) == 43 &&
           strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

static int same_site(core_http_req *req)
{
    const char *sfs = core_http_header(req, "Sec-Fetch-Site");
    return sfs && (strcmp(sfs, "same-origin") == 0 || strcmp(sfs, "same-site") == 0);
}

static void authorize_resume(az_server *s, void *arg, pl_rc rc)
{
    core_http_req *req = arg;
    if (rc != PL_OK) {
        az_error_page(s, req, 400, "Unknown application",
                      "This application's metadata document could not be used, so it cannot be "
                      "authorized. Go back to the application and reconnect it.");
        return;
    }
    az_h_authorize(req, s); /* the document is now cached and fresh */
}

void az_h_authorize(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    az_client c;
    az_pending p;
    az_session ss;
    const char *client_id, *redirect_uri, *state, *v, *scope, *resource, *why;
    char loc[128];
    size_t i;

    memset(&p, 0, sizeof p);
    if (core_http_query_parse(req, NULL, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid authorization request", fe.msg);
        goto done;
    }
    client_id = core_form_get(&f, "client_id");
    if (!client_id || !*client_id) {
        az_error_page(s, req, 400, "Invalid authorization request",
                      "The request has no client_id. Go back to the application and try again.");
        goto done;
    }
    if (az_cimd_is_url(s, client_id) &&
        (az_client_lookup(s, client_id, &c) != PL_OK || c.kind != AZ_CLIENT_CIMD ||
         core_clock_now_ms(s->cfg.clock) >= c.expires_ms)) {
        /* A metadata document not cached (or stale): fetch it off the loop, then resume. */
        pl_rc rc = az_cimd_fetch_async(s, client_id, authorize_resume, req);
        if (rc == PL_OK)
            core_http_defer(req);
        else
            az_error_page(s, req, 503, "Please try again",
                          "Too many applications are being looked up right now.");
        goto done;
    }
    if (az_client_lookup(s, client_id, &c) != PL_OK) {
        az_error_page(s, req, 400, "Unknown application",
                      "This application is not registered with Postly, so it cannot be "
                      "authorized. Go back to the application and reconnect it.");
        goto done;
    }
    redirect_uri = core_form_get(&f, "redirect_uri");
    if (!redirect_uri && c.nredirect == 1)
        redirect_uri = c.redirect_uris[0];
    if (!redirect_uri || !az_redirect_uri_match(&c, redirect_uri)) {
        /* RFC 9700 §4.1: exact matching; never redirect to an unregistered URI. */
        az_error_page(s, req, 400, "Invalid redirect address",
                      redirect_uri ? "The address this application asked to return to is not "
                                     "one it registered. Postly will not send you there."
                                   : "The request has no redirect_uri and the application "
                                     "registered several.");
        goto done;
    }
    /* From here on errors go back to the client. */
    state = core_form_get(&f, "state");
    if (state && strlen(state) > AZ_STATE_MAX) {
        az_redirect_error(s, req, redirect_uri, NULL, "invalid_request",
                          "state is longer than 512 bytes");
        goto done;
    }
    v = core_form_get(&f, "response_type");
    if (!v || strcmp(v, "code") != 0) {
        az_redirect_error(s, req, redirect_uri, state,
                          v ? "unsupported_response_type" : "invalid_request",
                          v ? "only response_type=code is supported" : "response_type is required");
        goto done;
    }
    v = core_form_get(&f, "code_challenge");
    if (!v) {
        az_redirect_error(s, req, redirect_uri, state, "invalid_request",
                          "code_challenge is required (PKCE with S256)");
        goto done;
    }
    {
        const char *m = core_form_get(&f, "code_challenge_method");
        /* RFC 7636 §4.3: absent means plain, which OAuth 2.1 and RFC 9700 §2.1.1 refuse. */
        if (!m || strcmp(m, "S256") != 0) {
            az_redirect_error(s, req, redirect_uri, state, "invalid_request",
                              "code_challenge_method must be S256 (plain is not accepted)");
            goto done;
        }
    }
    if (!challenge_valid(v)) {
        az_redirect_error(s, req, redirect_uri, state, "invalid_request",
                          "code_challenge must be 43 base64url characters");
        goto done;
    }
    snprintf(p.challenge, sizeof p.challenge, "%s", v);
    resource = core_form_get(&f, "resource");
    if (!resource && s->nresources == 1)
        resource = s->resources[0];
    for (i = 0; resource && i < s->nresources; i++)
        if (strcmp(resource, s->resources[i]) == 0)
            break;
    if (!resource || i == s->nresources) {
        /* RFC 8707 §2: the resource must be one this server issues tokens for. */
        az_redirect_error(s, req, redirect_uri, state, "invalid_target",
                          resource ? "resource is not a resource server known here"
                                   : "resource is required");
        goto done;
    }
    scope = core_form_get(&f, "scope");
    if (!scope || !*scope) {
        p.scope = az_default_scope();
    } else {
        size_t off = 0;
        pl_rc rc = pol_scope_parse_list(scope, strlen(scope), &p.scope, &off);
        if (rc != PL_OK || p.scope == 0) {
            az_redirect_error(s, req, redirect_uri, state, "invalid_scope",
                              rc == PL_ERR_NOT_FOUND ? "scope names an unknown scope"
                                                     : "scope is malformed");
            goto done;
        }
    }
    v = core_form_get(&f, "prompt");
    if (v && strcmp(v, "none") == 0) {
        /* No interaction possible: this server always asks at least once. */
        az_redirect_error(s, req, redirect_uri, state,
                          az_session_of(s, req, NULL, &ss) == PL_OK && ss.uid[0]
                              ? "consent_required"
                              : "login_required",
                          "user interaction is required");
        goto done;
    }
    snprintf(p.client_id, sizeof p.client_id, "%s", c.id);
    snprintf(p.redirect_uri, sizeof p.redirect_uri, "%s", redirect_uri);
    snprintf(p.state, sizeof p.state, "%s", state ? state : "");
    snprintf(p.resource, sizeof p.resource, "%s", resource);
    p.same_site = same_site(req);
    if (az_pending_put(s->store, &p) != PL_OK) {
        az_redirect_error(s, req, redirect_uri, state, "server_error",
                          "the request could not be stored");
        goto done;
    }
    why = az_session_of(s, req, NULL, &ss) == PL_OK && ss.uid[0] ? "/consent" : "/login";
    snprintf(loc, sizeof loc, "%s?rid=%s", why, p.rid);
    core_http_reply_redirect(req, 302, loc);
done:
    core_form_free(&f);
}

/* ---- login ----------------------------------------------------------------------------------- */

/* `rid` is an authorization request id, or NULL for a plain login (to /apps). */
static void login_page(az_server *s, core_http_req *req, int status, const az_session *ss,
                       const char *rid, const char *error, const char *username)
{
    char csrf[AZ_SECRET_SIZE] = "";
    char back[160];
    az_var v[6];
    az_csrf_make(ss, "login", rid ? rid : "apps", csrf);
    snprintf(back, sizeof back, "%s", rid ? rid : "");
    v[0] = (az_var){"rid", back, 0};
    v[1] = (az_var){"next", rid ? "" : "apps", 0};
    v[2] = (az_var){"csrf", csrf, 0};
    v[3] = (az_var){"error", error ? error : "", 0};
    v[4] = (az_var){"error_class", error ? "error" : "hidden", 0};
    v[5] = (az_var){"username", username ? username : "", 0};
    az_page_reply(s, req, status, "Sign in", "login", v, 6);
}

static const char *rid_param(const core_form *f)
{
    const char *rid = core_form_get(f, "rid");
    return rid && strlen(rid) == AZ_SECRET_LEN &&
                   strspn(rid,
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                       AZ_SECRET_LEN
               ? rid
               : NULL;
}

void az_h_login_get(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    az_session ss;
    char sid[AZ_SECRET_SIZE];
    const char *rid;
    if (core_http_query_parse(req, NULL, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid request", fe.msg);
        goto done;
    }
    rid = rid_param(&f);
    if (az_session_of(s, req, sid, &ss) != PL_OK) {
        if (az_session_new(s->store, "", sid, &ss) != PL_OK) {
            az_error_page(s, req, 500, "Something went wrong", "No session could be started.");
            goto done;
        }
        az_session_cookie(s, req, sid);
    } else if (ss.uid[0]) {
        char loc[128];
        snprintf(loc, sizeof loc, rid ? "/consent?rid=%s" : "/apps", rid);
        core_http_reply_redirect(req, 302, loc);
        goto done;
    }
    login_page(s, req, 200, &ss, rid, NULL, NULL);
done:
    core_wipe(sid, sizeof sid);
    core_form_free(&f);
}

/* A login waiting for its scrypt check on a worker thread (worker.h). */
typedef struct login_job {
    core_http_req *req;
    az_login l;
    char password[AZ_PASSWORD_MAX + 1];
    int ok;
    char rid[AZ_SECRET_SIZE]; /* "" for a plain login */
    char user[AZ_USERNAME_MAX + 1];
    char sid[AZ_SECRET_SIZE];
    az_session ss;
} login_job;

static void login_work(void *arg)
{
    login_job *j = arg;
    j->ok = az_password_check(j->l.enc, j->password);
    core_wipe(j->password, sizeof j->password);
}

static void login_done(az_server *s, void *arg)
{
    login_job *j = arg;
    core_http_req *req = j->req;
    const char *rid = j->rid[0] ? j->rid : NULL;
    char nsid[AZ_SECRET_SIZE], uid[AZ_ID_MAX + 1], loc[128];
    az_session ns;
    if (az_user_login_finish(s->store, &j->l, j->ok, uid) != PL_OK) {
        /* One message for unknown user, wrong password and disabled account. */
        login_page(s, req, 401, &j->ss, rid, "Incorrect username or password.", j->user);
        goto done;
    }
    /* A new session id at login (no session fixation). */
    if (az_session_new(s->store, uid, nsid, &ns) != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "No session could be started.");
        goto done;
    }
    az_session_del(s->store, j->sid);
    az_session_cookie(s, req, nsid);
    snprintf(loc, sizeof loc, rid ? "/consent?rid=%s" : "/apps", rid);
    core_http_reply_redirect(req, 303, loc);
    core_wipe(nsid, sizeof nsid);
done:
    core_wipe(j, sizeof *j);
    free(j);
}

void az_h_login_post(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    login_job *j = calloc(1, sizeof *j);
    const char *rid, *user, *pw;
    pl_rc rc;

    if (!j) {
        core_http_reply_text(req, 503, "Out of memory.");
        return;
    }
    if (core_http_form_parse(req, NULL, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid request", fe.msg);
        goto done;
    }
    if (az_session_of(s, req, j->sid, &j->ss) != PL_OK) {
        az_error_page(s, req, 400, "Your session has expired",
                      "Go back to the application and connect again.");
        goto done;
    }
    rid = rid_param(&f);
    if (!az_csrf_check(&j->ss, "login", rid ? rid : "apps", core_form_get(&f, "csrf"))) {
        az_error_page(s, req, 403, "This form has expired",
                      "The form was not sent from this browser session. Reload the page and "
                      "try again.");
        goto done;
    }
    user = core_form_get(&f, "username");
    pw = core_form_get(&f, "password");
    if (!user || !pw || !*user || !*pw || strlen(user) > AZ_USERNAME_MAX ||
        strlen(pw) > AZ_PASSWORD_MAX) {
        login_page(s, req, 400, &j->ss, rid, "Enter your username and password.", NULL);
        goto done;
    }
    rc = az_user_login_begin(s->store, user, core_http_client_addr(req), &j->l);
    if (rc == PL_ERR_LIMIT) {
        core_log_warn(s->log, "authz: login throttled addr=%s", core_http_client_addr(req));
        login_page(s, req, 429, &j->ss, rid, "Too many attempts. Wait a few minutes and try again.",
                   user);
        goto done;
    }
    if (rc != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "Sign-in is unavailable right now.");
        goto done;
    }
    /* The scrypt check (tens of milliseconds) runs off the event loop. */
    j->req = req;
    snprintf(j->password, sizeof j->password, "%s", pw);
    snprintf(j->rid, sizeof j->rid, "%s", rid ? rid : "");
    snprintf(j->user, sizeof j->user, "%s", user);
    rc = az_work_submit(s, login_work, login_done, j);
    if (rc != PL_OK) {
        login_page(s, req, 503, &j->ss, rid, "Too many sign-ins at once. Try again in a moment.",
                   user);
        goto done;
    }
    core_http_defer(req);
    j = NULL; /* owned by the job now */
done:
    if (j) {
        core_wipe(j, sizeof *j);
        free(j);
    }
    core_form_free(&f);
}

/* ---- consent -----------------------------------------------------------------------------------
 */

typedef struct consent_ctx {
    az_pending p;
    az_client c;
    az_session ss;
    az_dir_membership ws[AZ_WS_MAX];
    size_t nws;
    size_t sel; /* index into ws */
    pol_grant g;
} consent_ctx;

/* Loads what both GET and POST need. Replies (error page or redirect) and returns non-OK
 * when it cannot continue. */
static pl_rc consent_load(az_server *s, core_http_req *req, const char *rid, const char *ws,
                          int strict, consent_ctx *x)
{
    pl_rc rc;
    char loc[128];
    if (az_session_of(s, req, NULL, &x->ss) != PL_OK || !x->ss.uid[0]) {
        if (!rid) {
            az_error_page(s, req, 400, "Invalid request", "The request id is missing.");
            return PL_ERR_INVALID;
        }
        snprintf(loc, sizeof loc, "/login?rid=%s", rid);
        core_http_reply_redirect(req, core_http_method(req) == CORE_HTTP_POST ? 303 : 302, loc);
        return PL_ERR_DENIED;
    }
    {
        az_user u;
        if (az_user_get(s->store, x->ss.uid, &u) != PL_OK || u.disabled) {
            az_error_page(s, req, 403, "This account cannot be used",
                          "Sign-in is not possible with this account. Contact your workspace "
                          "administrator.");
            return PL_ERR_DENIED;
        }
    }
    rc = rid ? az_pending_get(s->store, rid, &x->p) : PL_ERR_NOT_FOUND;
    if (rc != PL_OK) {
        az_error_page(s, req, 400, "This request has expired",
                      "The authorization request is unknown, already answered or too old. Go "
                      "back to the application and connect again.");
        return rc;
    }
    if (az_client_lookup(s, x->p.client_id, &x->c) != PL_OK) {
        az_error_page(s, req, 400, "Unknown application",
                      "The application is no longer registered.");
        return PL_ERR_NOT_FOUND;
    }
    rc = az_user_workspaces(s->store, x->ss.uid, x->ws, AZ_WS_MAX, &x->nws);
    if ((rc != PL_OK && rc != PL_ERR_TOO_LARGE) || x->nws == 0) {
        az_redirect_error(s, req, x->p.redirect_uri, x->p.state, "access_denied",
                          "the user is not a member of any workspace");
        return PL_ERR_DENIED;
    }
    x->sel = 0;
    if (ws) {
        size_t i;
        for (i = 0; i < x->nws; i++)
            if (strcmp(x->ws[i].ws.id, ws) == 0)
                break;
        if (i == x->nws && strict) {
            az_error_page(s, req, 400, "Unknown workspace",
                          "You are not a member of the workspace that was selected.");
            return PL_ERR_NOT_FOUND;
        }
        x->sel = i == x->nws ? 0 : i;
    }
    rc = az_grantable(s, x->ws[x->sel].role, x->ws[x->sel].ws.id, x->c.cls, x->p.scope, &x->g);
    if (rc != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "The policy could not be evaluated.");
        return rc;
    }
    return PL_OK;
}

static const char *client_flag(const az_client *c, const char *redirect_uri, char *buf,
                               size_t bufsz)
{
    char host[256];
    if (c->kind == AZ_CLIENT_CIMD) {
        az_uri_host(c->id, host, sizeof host);
        snprintf(buf, bufsz,
                 "Described by a metadata document published at %s; not verified by Postly.%s",
                 host,
                 az_uri_is_loopback(redirect_uri) ? " It runs on this computer."
                 : az_uri_is_private_scheme(redirect_uri)
                     ? " A native app on this computer (private-use scheme redirect)."
                     : "");
        return buf;
    }
    /* RFC 8252 §8.4: any app on the device may claim a private-use scheme. */
    if (az_uri_is_private_scheme(redirect_uri))
        return "A native app on this computer (private-use scheme redirect); Postly cannot "
               "verify who made it.";
    if (az_uri_is_loopback(redirect_uri))
        return "Runs on this computer (loopback redirect); Postly cannot verify who made it.";
    return c->kind == AZ_CLIENT_PRE ? ""
                                    : "Registered itself automatically; not verified by Postly.";
}

static pl_rc render_scopes(core_buf *b, const consent_ctx *x, uint64_t checked)
{
    pl_rc rc = PL_OK;
    for (int cat = 0; rc == PL_OK && cat < POL_CAT__COUNT; cat++) {
        int opened = 0;
        for (unsigned bit = 0; rc == PL_OK && bit < pol_scope_count(); bit++) {
            const pol_scope_info *si;
            uint64_t m = POL_MASK(bit);
            int avail = (x->g.grantable & m) != 0;
            if (!(x->p.scope & m) || pol_scope_get(bit, &si) != PL_OK || (int)si->category != cat)
                continue;
            if (!opened) {
                rc = core_buf_addf(b, "<fieldset class=\"category\"><legend>");
                if (rc == PL_OK)
                    rc = core_buf_add_html(b, pol_category_title((pol_category)cat),
                                           strlen(pol_category_title((pol_category)cat)));
                if (rc == PL_OK)
                    rc = core_buf_adds(b, "</legend>");
                opened = 1;
            }
            if (rc == PL_OK)
                rc = core_buf_addf(
                    b,
                    "<label class=\"scope%s%s\"><input type=\"checkbox\" "
                    "name=\"scope\" value=\"%s\"%s%s> <code>%s</code>",
                    si->destructive ? " destructive" : "", avail ? "" : " unavailable", si->name,
                    avail && (checked & m) ? " checked" : "", avail ? "" : " disabled", si->name);
            if (rc == PL_OK && si->destructive)
                rc = core_buf_adds(b, " <span class=\"badge danger\">Destructive</span>");
            if (rc == PL_OK)
                rc = core_buf_adds(b, "<span class=\"desc\">");
            if (rc == PL_OK)
                rc = core_buf_add_html(b, si->description, strlen(si->description));
            if (rc == PL_OK)
                rc = core_buf_adds(b, "</span>");
            if (rc == PL_OK && !avail) {
                const char *why =
                    x->g.denied_class & m
                        ? "Not available to this kind of application (workspace policy)."
                    : x->g.denied_ceiling & m ? "Not available in this workspace (workspace limit)."
                                              : NULL;
                char rolemsg[160];
                if (!why) {
                    snprintf(rolemsg, sizeof rolemsg,
                             "Your role in this workspace (%s) cannot grant this permission.",
                             x->ws[x->sel].role);
                    why = rolemsg;
                }
                rc = core_buf_adds(b, "<span class=\"why\">");
                if (rc == PL_OK)
                    rc = core_buf_add_html(b, why, strlen(why));
                if (rc == PL_OK)
                    rc = core_buf_adds(b, "</span>");
            }
            if (rc == PL_OK)
                rc = core_buf_adds(b, "</label>");
        }
        if (rc == PL_OK && opened)
            rc = core_buf_adds(b, "</fieldset>");
    }
    return rc;
}

static pl_rc render_workspaces(core_buf *b, const consent_ctx *x)
{
    pl_rc rc = PL_OK;
    for (size_t i = 0; rc == PL_OK && i < x->nws; i++) {
        rc = core_buf_adds(b, "<option value=\"");
        if (rc == PL_OK)
            rc = core_buf_add_html(b, x->ws[i].ws.id, strlen(x->ws[i].ws.id));
        if (rc == PL_OK)
            rc = core_buf_adds(b, i == x->sel ? "\" selected>" : "\">");
        if (rc == PL_OK)
            rc = core_buf_add_html(b, x->ws[i].ws.name, strlen(x->ws[i].ws.name));
        if (rc == PL_OK)
            rc = core_buf_addf(b, " (%s)</option>", x->ws[i].role);
    }
    return rc;
}

/* Whether the policy offers recommended bundle i here (its workspace's `bundles=` and the
 * bundle's `offer=` roles); *why says why not. Without a policy every bundle is offered. */
static int bundle_offered(az_server *s, const consent_ctx *x, unsigned i, const char **why)
{
    const char *role = x->ws[x->sel].role, *ws = x->ws[x->sel].ws.id;
    pol_role r;
    uint32_t wi;
    uint64_t rows;
    pol_bundle_row row;
    if (!s->policy)
        return 1;
    if (pol_role_lookup(role, strlen(role), &r) != PL_OK ||
        pol_workspace_index(s->policy, ws, strlen(ws), &wi, NULL) != PL_OK ||
        pol_workspace_bundles(s->policy, wi, &rows) != PL_OK ||
        pol_bundle_row_get(s->policy, i, &row) != PL_OK) {
        *why = "Not available.";
        return 0;
    }
    if (!(rows & ((uint64_t)1 << i))) {
        *why = "Not offered in this workspace.";
        return 0;
    }
    if (!(row.offer_roles & (1u << r))) {
        *why = "Not offered to your role in this workspace.";
        return 0;
    }
    return 1;
}

static pl_rc render_bundles(az_server *s, core_buf *b, const consent_ctx *x)
{
    pl_rc rc = PL_OK;
    for (unsigned i = 0; rc == PL_OK && i < pol_bundle_count(); i++) {
        const pol_bundle_info *bi;
        char names[POL_SCOPE_FORMAT_MAX];
        const char *why = NULL;
        uint64_t m;
        if (pol_bundle_get(i, &bi) != PL_OK)
            continue;
        if (!bundle_offered(s, x, i, &why)) {
            rc = core_buf_addf(b, "<li><span class=\"bundle disabled\" id=\"bundle-%s\"><strong>",
                               bi->id);
            if (rc == PL_OK)
                rc = core_buf_add_html(b, bi->display_name, strlen(bi->display_name));
            if (rc == PL_OK)
                rc = core_buf_addf(b, "</strong><span class=\"why\">%s</span></span></li>", why);
            continue;
        }
        m = bi->mask & x->g.grantable;
        az_scope_str(m, names);
        rc = core_buf_addf(b,
                           "<li><a class=\"bundle\" data-scopes=\"%s\" "
                           "href=\"/consent?rid=%s&amp;ws=",
                           names, x->p.rid);
        if (rc == PL_OK)
            rc = core_buf_add_urlenc(b, x->ws[x->sel].ws.id, strlen(x->ws[x->sel].ws.id));
        if (rc == PL_OK)
            rc = core_buf_addf(b, "&amp;bundle=%s\" id=\"bundle-%s\"><strong>", bi->id, bi->id);
        if (rc == PL_OK)
            rc = core_buf_add_html(b, bi->display_name, strlen(bi->display_name));
        if (rc == PL_OK)
            rc = core_buf_addf(b, "</strong> <span class=\"count\">%d of %d available</span>",
                               __builtin_popcountll(m), __builtin_popcountll(bi->mask));
        if (rc == PL_OK)
            rc = core_buf_adds(b, "<span class=\"desc\">");
        if (rc == PL_OK)
            rc = core_buf_add_html(b, bi->description, strlen(bi->description));
        if (rc == PL_OK)
            rc = core_buf_adds(b, "</span></a></li>");
    }
    return rc;
}

static void consent_page(az_server *s, core_http_req *req, int status, const consent_ctx *x,
                         uint64_t checked, const char *error)
{
    core_buf scopes, wss, bundles;
    char csrf[AZ_SECRET_SIZE] = "", host[256];
    pl_rc rc;
    char flagbuf[512];
    const char *flag = client_flag(&x->c, x->p.redirect_uri, flagbuf, sizeof flagbuf);
    core_buf_init(&scopes, AZ_PAGE_MAX);
    core_buf_init(&wss, AZ_PAGE_MAX);
    core_buf_init(&bundles, AZ_PAGE_MAX);
    if (az_uri_is_private_scheme(x->p.redirect_uri)) /* no host: name the app's scheme */
        snprintf(host, sizeof host, "%.*s:", (int)strcspn(x->p.redirect_uri, ":"),
                 x->p.redirect_uri);
    else
        az_uri_host(x->p.redirect_uri, host, sizeof host);
    rc = render_scopes(&scopes, x, checked);
    if (rc == PL_OK)
        rc = render_workspaces(&wss, x);
    if (rc == PL_OK)
        rc = render_bundles(s, &bundles, x);
    if (rc == PL_OK)
        rc = az_csrf_make(&x->ss, "consent", x->p.rid, csrf);
    if (rc != PL_OK) {
        az_error_page(s, req, 500, "Something went wrong", "The page could not be built.");
    } else {
        az_var v[] = {
            {"client_name", x->c.name, 0},
            {"redirect_host", host, 0},
            {"client_id", x->c.id, 0},
            {"flag", flag, 0},
            {"flag_class", *flag ? "flag" : "hidden", 0},
            {"rid", x->p.rid, 0},
            {"csrf", csrf, 0},
            {"ws", x->ws[x->sel].ws.id, 0},
            {"ws_name", x->ws[x->sel].ws.name, 0},
            {"role", x->ws[x->sel].role, 0},
            {"workspaces", wss.p ? wss.p : "", 1},
            {"bundles", bundles.p ? bundles.p : "", 1},
            {"scopes", scopes.p ? scopes.p : "", 1},
            {"error", error ? error : "", 0},
            {"error_class", error ? "error" : "hidden", 0},
        };
        az_page_reply(s, req, status, "Allow access", "consent", v, sizeof v / sizeof v[0]);
    }
    core_buf_free(&scopes);
    core_buf_free(&wss);
    core_buf_free(&bundles);
}

void az_h_consent_get(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    consent_ctx *x = calloc(1, sizeof *x);
    const char *bundle, *ws;
    char rws[AZ_ID_MAX + 1] = "";
    uint64_t rscope = 0, checked;
    int remembered;

    if (!x) {
        core_http_reply_text(req, 503, "Out of memory.");
        return;
    }
    if (core_http_query_parse(req, NULL, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid request", fe.msg);
        goto done;
    }
    ws = core_form_get(&f, "ws");
    /* Without an explicit choice, preselect the workspace remembered for this client
     * (silently falling back to the first one if the user left it). */
    if (!ws && az_session_of(s, req, NULL, &x->ss) == PL_OK && x->ss.uid[0] &&
        az_pending_get(s->store, rid_param(&f) ? rid_param(&f) : "", &x->p) == PL_OK &&
        az_consent_get(s->store, x->ss.uid, x->p.client_id, rws, &rscope) == PL_OK)
        ws = rws;
    if (consent_load(s, req, rid_param(&f), ws, ws != rws, x) != PL_OK)
        goto done;
    remembered = ws == rws && strcmp(x->ws[x->sel].ws.id, rws) == 0;
    /* Remembered consent: same client and workspace, and the remembered scopes cover
     * everything grantable of this request — skipped silently only when the authorization
     * request came from a same-site navigation, and so does this one: a pending request is not
     * bound to a browser, so whoever created it could otherwise open it in the user's browser
     * from another site and get a code without the page. What is granted is what was asked
     * (∩ grantable), never more because more was remembered. A request for anything not
     * remembered (a step-up) shows the page. */
    if (remembered && !core_form_get(&f, "bundle") && x->p.same_site && same_site(req) &&
        rscope != 0 && x->g.grantable != 0 && (x->g.grantable & ~rscope) == 0) {
        az_finish_authorization(s, req, &x->p, x->ss.uid, x->ws[x->sel].ws.id, x->c.cls,
                                x->g.grantable);
        goto done;
    }
    /* Preselect what the client asked for (∩ grantable), not a remembered earlier choice: on a
     * step-up the earlier choice lacks the new scope, and Allow would grant nothing new. */
    checked = x->g.grantable;
    bundle = core_form_get(&f, "bundle");
    if (bundle) {
        const pol_bundle_info *bi;
        const char *why;
        for (unsigned i = 0; i < pol_bundle_count(); i++)
            if (pol_bundle_get(i, &bi) == PL_OK && strcmp(bi->id, bundle) == 0 &&
                bundle_offered(s, x, i, &why))
                checked = bi->mask & x->g.grantable;
    }
    consent_page(s, req, 200, x, checked, NULL);
done:
    core_form_free(&f);
    free(x);
}

void az_h_consent_post(core_http_req *req, void *arg)
{
    az_server *s = arg;
    static const char *const rep[] = {"scope", NULL};
    core_form_limits lim = core_form_default_limits;
    core_form f = {0};
    core_form_error fe;
    consent_ctx *x = calloc(1, sizeof *x);
    const char *rid, *action;
    uint64_t chosen = 0;

    if (!x) {
        core_http_reply_text(req, 503, "Out of memory.");
        return;
    }
    lim.repeatable = rep;
    if (core_http_form_parse(req, &lim, &f, &fe) != PL_OK) {
        az_error_page(s, req, 400, "Invalid request", fe.msg);
        goto done;
    }
    rid = rid_param(&f);
    /* CSRF first: nothing else of an unauthenticated form is trusted. */
    if (az_session_of(s, req, NULL, &x->ss) != PL_OK || !x->ss.uid[0] || !rid ||
        !az_csrf_check(&x->ss, "consent", rid, core_form_get(&f, "csrf"))) {
        az_error_page(s, req, 403, "This form has expired",
                      "The form was not sent from this browser session. Go back to the "
                      "application and connect again.");
        goto done;
    }
    if (consent_load(s, req, rid, core_form_get(&f, "ws"), 1, x) != PL_OK)
        goto done;
    action = core_form_get(&f, "action");
    if (action && strcmp(action, "deny") == 0) {
        az_pending_del(s->store, x->p.rid);
        az_redirect_error(s, req, x->p.redirect_uri, x->p.state, "access_denied",
                          "the user denied the request");
        goto done;
    }
    if (!action || strcmp(action, "approve") != 0) {
        az_error_page(s, req, 400, "Invalid request", "Choose Allow or Deny.");
        goto done;
    }
    for (size_t i = 0; i < f.n; i++) {
        unsigned bit;
        if (strcmp(f.v[i].name, "scope") != 0)
            continue;
        if (pol_scope_lookup(f.v[i].value, f.v[i].value_len, &bit) != PL_OK) {
            az_error_page(s, req, 400, "Invalid request", "An unknown permission was submitted.");
            goto done;
        }
        chosen |= POL_MASK(bit);
    }
    if (chosen & ~x->g.grantable) {
        consent_page(s, req, 400, x, chosen & x->g.grantable,
                     "A permission you selected cannot be granted in this workspace.");
        goto done;
    }
    if (!chosen) {
        consent_page(s, req, 400, x, 0, "Choose at least one permission, or deny.");
        goto done;
    }
    az_consent_put(s->store, x->ss.uid, x->c.id, x->ws[x->sel].ws.id, chosen);
    az_finish_authorization(s, req, &x->p, x->ss.uid, x->ws[x->sel].ws.id, x->c.cls, chosen);
done:
    core_form_free(&f);
    free(x);
}
