/*
 * authz/server_int.h — what the endpoint files of postly-authz share (not a public header).
 */
#ifndef POSTLY_AUTHZ_SERVER_INT_H
#define POSTLY_AUTHZ_SERVER_INT_H

#include "authz/server.h"
#include "core/buf.h"
#include "core/form.h"
#include "core/http.h"
#include "core/syncer.h"
#include "keys/keyset.h"
#include "keys/token.h"
#include "keys/verify.h"
#include "policy/policy.h"
#include "policy/scopes.h"

#define AZ_COOKIE   "postly_session"
#define AZ_PAGE_MAX ((size_t)256 * 1024)
#define AZ_WS_MAX   64 /* workspaces shown on the consent page */

typedef struct az_template {
    const char *name; /* "login" */
    char *text;       /* file content */
} az_template;

/* A /token reply waiting for the group commit (token.c). */
typedef struct az_deferred {
    core_http_req *req;
    int status;
    int basic;    /* add WWW-Authenticate: Basic */
    uint64_t seq; /* the commit it waits for (syncer) */
    struct az_deferred *next;
    size_t len;
    char body[]; /* the JSON text (len bytes), wiped when freed: it may carry tokens */
} az_deferred;

struct az_server {
    az_config cfg;
    char issuer[256];
    char resources[AZ_MAX_RESOURCES][AZ_URI_MAX + 1];
    size_t nresources;
    char web_dir[1024];
    struct event_base *base;
    core_http *http;
    az_store *store;
    key_keyset *keys;
    key_verifier *verifiers[AZ_MAX_RESOURCES]; /* one per resource (audience) */
    pol_compiled *policy;                      /* NULL: temporary table (grant.c) */
    az_template templates[8];
    size_t ntemplates;
    char *css, *js;
    size_t css_len, js_len;
    struct event *sweep;
    struct event *keys_reload; /* picks up rotations made by postly-keys (every 5 s) */
    struct event *commit;      /* group commit, activated once per loop iteration with work */
    int commit_scheduled;
    uint64_t commits, committed_replies; /* group-commit statistics, logged at exit */
    az_deferred *deferred, **deferred_tail;
    /* Replies whose commit waits for the syncer's meta sync, in commit order. */
    az_deferred *syncing, **syncing_tail;
    uint64_t commit_seq;
    struct core_syncer *syncer; /* NULL with cfg.nosync */
    struct az_signer *signer;   /* nonce precomputation (signer.h); NULL with cfg.sign_on_loop */
    struct az_workers *workers; /* slow work off the loop (worker.h) */
    const core_log *log;
};
typedef struct az_server az_server;

/* ---- endpoint handlers (one file each) ---- */
void az_h_metadata(core_http_req *req, void *arg);
void az_h_jwks(core_http_req *req, void *arg);
void az_h_register(core_http_req *req, void *arg);
void az_h_authorize(core_http_req *req, void *arg);
void az_h_login_get(core_http_req *req, void *arg);
void az_h_login_post(core_http_req *req, void *arg);
void az_h_consent_get(core_http_req *req, void *arg);
void az_h_consent_post(core_http_req *req, void *arg);
void az_h_token(core_http_req *req, void *arg);
void az_h_revoke(core_http_req *req, void *arg);
void az_h_introspect(core_http_req *req, void *arg);
void az_h_apps(core_http_req *req, void *arg);
void az_h_apps_disconnect(core_http_req *req, void *arg);
void az_h_logout(core_http_req *req, void *arg);
void az_h_static(core_http_req *req, void *arg);

/* ---- pages.c ---- */
typedef struct az_var {
    const char *name;
    const char *value; /* escaped on output unless raw */
    int raw;           /* value is trusted HTML built by the server */
} az_var;

pl_rc az_pages_load(az_server *s);
void az_pages_free(az_server *s);
/* Renders template `name` inside the layout and replies. Template placeholders: {{name}}
 * (HTML-escaped) and {{{name}}} (raw). A missing variable renders as "". */
void az_page_reply(az_server *s, core_http_req *req, int status, const char *title,
                   const char *name, const az_var *vars, size_t nvars);
/* The error page (never a redirect): status, a short title and an explanation. */
void az_error_page(az_server *s, core_http_req *req, int status, const char *title,
                   const char *detail);

/* ---- clients.c: redirect URIs and client lookup ---- */
/* Validates a redirect URI for registration: https with a host, or http on a loopback
 * host (127.0.0.1, [::1], localhost; RFC 8252 §7.3); for a public client (auth method none,
 * public_client != 0) also a private-use URI scheme of a native app (RFC 8252 §7.1): a
 * reverse-domain scheme (com.example.app:/cb) or a listed single-label editor scheme
 * (cursor://..., vscode://...), never javascript:, data:, file: and the like. No fragment, no
 * userinfo; <= 512 bytes. *why gets a static reason. */
pl_rc az_redirect_uri_check(const char *uri, int public_client, const char **why);
/* az_redirect_uri_check(uri, 1, why): for public clients only (CIMD documents, whose clients
 * are all public). DCR and postly-admin call az_redirect_uri_check with the auth method. */
pl_rc az_redirect_uri_valid(const char *uri, const char **why);
/* 1 when the URI uses a private-use scheme az_redirect_uri_valid() accepts for native apps. */
int az_uri_is_private_scheme(const char *uri);
/* 1 when `given` matches one of c's redirect URIs: exactly, or for a loopback http
 * registration with any port (RFC 8252 §7.3). */
int az_redirect_uri_match(const az_client *c, const char *given);
/* 1 when the URI's host is a loopback host. */
int az_uri_is_loopback(const char *uri);
/* The host part of a URI into out ("" when unparseable). */
void az_uri_host(const char *uri, char *out, size_t outsz);
/* Finds a client by id in the store (for a metadata-document URL: the cached document, even
 * past its freshness; /authorize refreshes it). PL_ERR_NOT_FOUND. */
pl_rc az_client_lookup(az_server *s, const char *client_id, az_client *out);

/* ---- cimd.c: Client ID Metadata Documents ---- */
typedef struct az_workers az_workers;
typedef void (*az_cimd_done_fn)(az_server *s, void *arg, pl_rc rc);
/* 1 when client_id is a metadata-document URL (https; http://127.0.0.1 with the test
 * option). */
int az_cimd_is_url(const az_server *s, const char *client_id);
/* Fetches and validates the document of url on a worker thread (worker.h), stores it, then
 * calls done(s, arg, rc) on the loop thread (rc PL_OK: the client is in the store).
 * PL_ERR_BUSY when too much work is in flight. */
pl_rc az_cimd_fetch_async(az_server *s, const char *url, az_cimd_done_fn done, void *arg);

/* ---- auth.c: client authentication at /token, /revoke, /introspect (RFC 6749 §2.3) ---- */
typedef struct az_client_auth {
    az_client client;
    int used_basic; /* answer 401 with WWW-Authenticate: Basic on failure */
} az_client_auth;
/* Authenticates the client of a form request. PL_OK; PL_ERR_DENIED → 401 invalid_client
 * (*why says why); PL_ERR_INVALID → 400 invalid_request (two methods, malformed header). */
pl_rc az_client_authenticate(az_server *s, core_http_req *req, const core_form *f,
                             az_client_auth *out, const char **why);

/* ---- grant.c: what may be granted ---- */
/* requested ∩ role ∩ workspace ceiling ∖ forbidden-for-class, with the reasons. */
pl_rc az_grantable(az_server *s, const char *role, const char *ws, const char *cls,
                   uint64_t requested, pol_grant *out);
/* The default scope when a request has none: the smallest read-only bundle. */
uint64_t az_default_scope(void);

/* ---- session.c: cookies and CSRF ---- */
/* The session of the request's cookie. PL_ERR_NOT_FOUND when none or expired. sid_out may
 * be NULL. */
pl_rc az_session_of(az_server *s, core_http_req *req, char sid_out[AZ_SECRET_SIZE],
                    az_session *out);
/* Sets the session cookie (HttpOnly; SameSite=Lax; Path=/; Secure over https). */
void az_session_cookie(az_server *s, core_http_req *req, const char *sid);
/* CSRF token = base64url(HMAC(session csrf key, purpose "|" binding)). */
pl_rc az_csrf_make(const az_session *ss, const char *purpose, const char *binding,
                   char out[AZ_SECRET_SIZE]);
/* 1 when token is the CSRF token for this session, purpose and binding. */
int az_csrf_check(const az_session *ss, const char *purpose, const char *binding,
                  const char *token);

/* ---- authorize.c: shared by login and consent ---- */
/* Redirects to the client with an error (RFC 6749 §4.1.2.1), state and iss (RFC 9207). */
void az_redirect_error(az_server *s, core_http_req *req, const char *redirect_uri,
                       const char *state, const char *error, const char *description);
/* Issues a code for the pending request and redirects (303) with code, state and iss. */
void az_finish_authorization(az_server *s, core_http_req *req, const az_pending *p, const char *uid,
                             const char *ws, const char *cls, uint64_t scope);

/* ---- tokens ---- */
/* The group-commit event callback (token.c): commits the store's batch, then sends every
 * deferred reply (or a 500 when the commit failed). */
void az_commit_cb(evutil_socket_t fd, short what, void *arg);
/* Server shutdown: answers every deferred reply 503 temporarily_unavailable (nothing was
 * acknowledged; an open batch is aborted) and frees it. */
void az_deferred_drop(az_server *s);
/* The syncer's callback (token.c): sends the replies of commits <= seq. */
void az_synced_cb(void *arg, uint64_t seq, pl_rc rc);
/* Mints the access token of grant g with scope mask (<= g->scope), at the time of clock
 * (loop thread; with a precomputed nonce when the signer thread has one ready). */
pl_rc az_mint_access(az_server *s, const az_grant *g, uint64_t scope, const core_clock *clock,
                     char *out, size_t outsz);

/* Formats a scope mask (POL_SCOPE_FORMAT_MAX buffer). */
void az_scope_str(uint64_t mask, char out[POL_SCOPE_FORMAT_MAX]);

#endif
