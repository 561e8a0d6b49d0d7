/*
 * authz/server.h — postly-authz, the OAuth 2.1 authorization server (issue 5), as a library:
 * main.c parses flags into an az_config and calls az_server_new() on its event base; the
 * tests do the same on port 0.
 *
 * Endpoints (docs/authz.md has the full list with the rules each applies):
 *   GET  /.well-known/oauth-authorization-server, /.well-known/openid-configuration (RFC 8414)
 *   GET  /jwks                      the signing keys (RFC 7517)
 *   POST /register                  dynamic client registration (RFC 7591)
 *   GET  /authorize                 authorization request (RFC 6749 §4.1, RFC 7636, RFC 8707)
 *   GET/POST /login                 login form (session cookie, throttled)
 *   GET/POST /consent               consent page (workspace, bundles, scopes)
 *   POST /token                     authorization_code and refresh_token grants
 *   POST /revoke, /introspect       RFC 7009, RFC 7662
 *   GET  /apps, POST /apps/disconnect   connected apps
 *   GET  /static/...                CSS and JS of the pages
 *
 * Threads: everything runs on the event loop thread of `base`.
 */
#ifndef POSTLY_AUTHZ_SERVER_H
#define POSTLY_AUTHZ_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "authz/store.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"

#define AZ_MAX_RESOURCES 8

typedef struct az_config {
    const char *data_dir; /* required: <data>/authz and <data>/keys live there */
    const char *host;     /* "127.0.0.1" */
    uint16_t port;        /* 0 = any */
    const char *issuer;   /* NULL: http://<host>:<bound port> */
    /* Canonical URLs of the resource servers tokens may be issued for (RFC 8707). A request
     * without `resource` gets resources[0] when there is exactly one. */
    const char *resources[AZ_MAX_RESOURCES];
    size_t nresources;
    const char *web_dir;     /* NULL: the source tree's web/ */
    const char *policy_path; /* NULL: built-in temporary role/ceiling table */
    int64_t access_ttl_s;    /* 0: 600 */
    az_dcr_limits dcr;       /* zero fields: 10 per source / 200 total per hour, 10000 */
    int cimd_allow_loopback; /* tests only: CIMD documents from 127.0.0.1 over http */
    int inline_fsync; /* 1: group commits fsync data and meta on the loop thread (no syncer) */
    int sign_on_loop; /* 1: no signer thread (authz/signer.h): full signatures on the loop */
    /* Store options (tests): */
    int nosync;
    uint64_t scrypt_n;
    const core_clock *clock; /* NULL: real clock */
    const core_log *log;     /* may be NULL */
} az_config;

typedef struct az_server az_server;

/* Opens the store and the key set (creating both on first start), loads the policy and the
 * page templates, binds and starts serving. PL_ERR_IO (bind, templates), PL_ERR_STORE,
 * PL_ERR_CRYPTO (keys), PL_ERR_PARSE (policy), PL_ERR_INVALID (config). */
pl_rc az_server_new(struct event_base *base, const az_config *cfg, az_server **out);

uint16_t az_server_port(const az_server *s);
/* The issuer identifier (borrowed; valid for the server's life). */
const char *az_server_issuer(const az_server *s);
/* The server's store, for seeding (demo data, tests). Borrowed. */
az_store *az_server_store(az_server *s);
/* JWKS JSON of the server's keys (caller frees). */
pl_rc az_server_jwks(const az_server *s, char **json);

/* Group-commit counters: batches committed and /token replies sent after them. */
void az_server_commit_stats(const az_server *s, uint64_t *commits, uint64_t *replies);

/* Re-reads the key set (postly-keys rotated or pruned it). The server does this every 5 s
 * by itself; tests call it to avoid waiting. On failure the current keys stay. */
pl_rc az_server_keys_reload(az_server *s);

void az_server_free(az_server *s);

/* First-start demo data: user "demo" with a generated password (written to password_out,
 * shown once by the caller), workspace "demo" (plan "pro") with demo as owner, and a second
 * workspace "demo-readonly" where demo is an editor (the default policy caps that workspace
 * at the analytics bundles, so the consent page shows ceiling reasons). PL_ERR_EXISTS when the user
 * exists. */
pl_rc az_demo_seed(az_store *st, char *password_out, size_t password_size);

#endif
