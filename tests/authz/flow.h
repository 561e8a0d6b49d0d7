/* tests/authz/flow.h — an in-process postly-authz on port 0 and a browser-like client for
 * the integration tests (cookies, forms, CSRF scraping), all on one event base. */
#ifndef POSTLY_TESTS_AUTHZ_FLOW_H
#define POSTLY_TESTS_AUTHZ_FLOW_H

#include <stdint.h>

#include <jansson.h>

#include "authz/server.h"
#include "core/buf.h"
#include "core/http_client.h"

#define T_RESOURCE    "https://mcp.example/mcp"
#define T_RESOURCE2   "https://other.example/mcp"
#define T_REDIRECT    "https://app.example/cb"
#define T_VERIFIER    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define T_CONF_SECRET "s3cret-of-the-confidential-client-0123456789"

typedef struct tsrv {
    char dir[256];
    struct event_base *base;
    core_fake_clock clock;
    core_log log;
    az_server *srv;
    char uid_alice[AZ_ID_MAX + 1];
} tsrv;

typedef struct tresp {
    core_http_fetch_resp r;
    char cookie[128]; /* "postly_session=..." from Set-Cookie, or "" */
} tresp;

/* Starts a server (policy: the shipped default.policy when `policy`), seeds alice
 * (password "alice password") as owner of "acme" and viewer of "beta", clients "cli-public"
 * (public; https://app.example/cb and http://127.0.0.1/callback), "cli-conf"
 * (client_secret_basic, T_CONF_SECRET) and "rs" (introspection, client_secret_post). */
void tsrv_start(tsrv *t, int policy);
/* The same with fsync (durable: group commit + the syncer thread, as in production). */
void tsrv_start_durable(tsrv *t, int policy, int durable);
/* ... and with the CIMD loopback test option. */
void tsrv_start_opts(tsrv *t, int policy, int durable, int cimd_loopback);
/* ... and an issuer (NULL: http://127.0.0.1:<port>). */
void tsrv_start_full(tsrv *t, int policy, int durable, int cimd_loopback, const char *issuer);
void tsrv_stop(tsrv *t);

/* method GET/POST; body form-encoded when not NULL; cookie may be NULL or "";
 * extra: NULL-terminated name,value list (may be NULL). */
void t_req(tsrv *t, const char *method, const char *target, const char *body, const char *cookie,
           const char *const *extra, tresp *out);
void t_free(tresp *r);

/* The value of query parameter name in a Location URL (decoded), "" if absent. */
void t_loc_param(const tresp *r, const char *name, char *out, size_t outsz);
/* The value of the hidden input `name` in an HTML body. */
void t_html_input(const tresp *r, const char *name, char *out, size_t outsz);

/* S256 challenge of T_VERIFIER. */
const char *t_challenge(void);

/* Logs alice in for an authorization request with the given extra query (URL-encoded,
 * starting with '&', e.g. "&scope=posts%3Aread") for client cli-public. Fills cookie and
 * rid; returns after the consent page GET (resp kept in page, caller frees). */
void t_login_to_consent(tsrv *t, const char *client_id, const char *redirect,
                        const char *extra_query, char cookie[128], char rid[64], tresp *page);

/* Full flow to a code: consent approves `scopes` (space separated) in workspace ws. */
void t_get_code(tsrv *t, const char *scope_query, const char *ws, const char *scopes,
                char code[64]);
/* The same, and cookie gets alice's session (signed in, the consent remembered). */
void t_approve(tsrv *t, const char *scope_query, const char *ws, const char *scopes, char code[64],
               char cookie[128]);

/* POST /token; body built by the caller; auth = extra headers (may be NULL). Returns parsed
 * JSON (caller json_decref) and status. */
json_t *t_token(tsrv *t, const char *body, const char *const *auth, int *status);

/* Decodes the payload of a JWT into JSON (caller json_decref). */
json_t *t_jwt_payload(const char *jwt);

#endif
