/* authz/server.c — startup, the route table, periodic sweeping, demo data. */
#include "server_int.h"
#include "signer.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef POSTLY_WEB_DIR
#define POSTLY_WEB_DIR "web"
#endif

/* The route table (STYLE.md: tables over branches). Pages get the page security set;
 * token-bearing JSON endpoints get no-store. */
/* GET / : people who open the server's address land on their connected apps. */
static void h_root(core_http_req *req, void *arg)
{
    (void)arg;
    core_http_reply_redirect(req, 302, "/apps");
}

static const core_http_route routes[] = {
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/", h_root, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/.well-known/oauth-authorization-server", az_h_metadata, 0},
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/.well-known/openid-configuration", az_h_metadata, 0},
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/jwks", az_h_jwks, 0},
    {CORE_HTTP_POST, "/register", az_h_register, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_GET, "/authorize", az_h_authorize, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_GET, "/login", az_h_login_get, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/login", az_h_login_post, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_GET, "/consent", az_h_consent_get, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/consent", az_h_consent_post, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/token", az_h_token, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_POST, "/revoke", az_h_revoke, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_POST, "/introspect", az_h_introspect, CORE_HTTP_SEC_NOSTORE},
    {CORE_HTTP_GET, "/apps", az_h_apps, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/apps/disconnect", az_h_apps_disconnect, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_POST, "/logout", az_h_logout, CORE_HTTP_SEC_PAGE},
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/static/authz.css", az_h_static, 0},
    {CORE_HTTP_GET | CORE_HTTP_HEAD, "/static/consent.js", az_h_static, 0},
};

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    az_server *s = arg;
    (void)fd;
    (void)what;
    if (az_store_sweep(s->store) != PL_OK)
        core_log_warn(s->log, "authz: store sweep failed");
}

/* postly-keys rotates and prunes in another process; reloading is cheap when keys.json did
 * not change. A failed reload keeps the previous key set (and says so). */
pl_rc az_server_keys_reload(az_server *s)
{
    key_error ke = {{0}};
    pl_rc rc;
    /* The signer thread reads the key set: no precomputation while it changes (signer.h);
     * the change empties the pool of precomputed nonces (keys/keyset.h). */
    if (s->signer)
        az_signer_keys_lock(s->signer);
    rc = key_keyset_reload(s->keys, &ke);
    if (s->signer)
        az_signer_keys_unlock(s->signer);
    if (rc != PL_OK)
        core_log_warn(s->log, "authz: key set reload failed, keeping the current keys: %s",
                      ke.text);
    return rc;
}

static void on_keys_reload(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    az_server_keys_reload(arg);
}

static pl_rc open_keys(az_server *s)
{
    key_keyset_cfg kc = {0};
    key_error ke = {{0}};
    pl_rc rc;
    kc.data_dir = s->cfg.data_dir;
    kc.clock = s->cfg.clock;
    kc.max_token_lifetime_s = s->cfg.access_ttl_s;
    kc.leeway_s = -1;
    kc.create = 1;
    rc = key_keyset_open(&kc, &s->keys, &ke);
    if (rc != PL_OK) {
        core_log_error(s->log, "authz: key set: %s", ke.text);
        return rc;
    }
    for (size_t i = 0; i < s->nresources; i++) {
        key_verifier_cfg vc = {0};
        vc.issuer = s->issuer;
        vc.audience = s->resources[i];
        vc.leeway_s = -1;
        vc.clock = s->cfg.clock;
        vc.keyset = s->keys;
        rc = key_verifier_new(&vc, &s->verifiers[i]);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

static pl_rc load_policy(az_server *s)
{
    pol_diags d;
    pl_rc rc;
    if (!s->cfg.policy_path)
        return PL_OK;
    pol_diags_init(&d);
    rc = pol_load_file(s->cfg.policy_path, 0, &d, &s->policy);
    if (rc != PL_OK) {
        core_log_error(s->log, "authz: policy %s does not load (%s)", s->cfg.policy_path,
                       pl_strerror(rc));
        pol_diags_print(&d, stderr);
    }
    pol_diags_free(&d);
    return rc;
}

/* core/syncer.h's sync function: the store's meta-page fdatasync. */
static pl_rc store_sync(void *st)
{
    return az_store_sync(st);
}

pl_rc az_server_new(struct event_base *base, const az_config *cfg, az_server **out)
{
    pl_rc rc = PL_OK;
    az_server *s = NULL;
    az_store_cfg sc = {0};
    core_http_config hc = {0};
    struct timeval tv = {60, 0};

    *out = NULL;
    if (!cfg->data_dir || !cfg->host || cfg->nresources == 0 || cfg->nresources > AZ_MAX_RESOURCES)
        return PL_ERR_INVALID;
    s = calloc(1, sizeof *s);
    if (!s)
        return PL_ERR_NOMEM;
    s->cfg = *cfg;
    s->base = base;
    s->log = cfg->log;
    if (!s->cfg.access_ttl_s)
        s->cfg.access_ttl_s = KEY_TOKEN_LIFETIME_DEFAULT_S;
    if (!s->cfg.dcr.per_source)
        s->cfg.dcr.per_source = 10;
    if (!s->cfg.dcr.total)
        s->cfg.dcr.total = 200;
    if (!s->cfg.dcr.window_ms)
        s->cfg.dcr.window_ms = (int64_t)3600 * 1000;
    if (!s->cfg.dcr.max_clients)
        s->cfg.dcr.max_clients = 10000;
    for (size_t i = 0; i < cfg->nresources; i++) {
        if (!cfg->resources[i] || strlen(cfg->resources[i]) > AZ_URI_MAX) {
            rc = PL_ERR_INVALID;
            goto out;
        }
        snprintf(s->resources[i], sizeof s->resources[i], "%s", cfg->resources[i]);
    }
    s->nresources = cfg->nresources;
    snprintf(s->web_dir, sizeof s->web_dir, "%s", cfg->web_dir ? cfg->web_dir : POSTLY_WEB_DIR);

    sc.data_dir = cfg->data_dir;
    sc.clock = cfg->clock;
    sc.nosync = cfg->nosync;
    /* The syncer completes batch commits on a second thread (core/syncer.h) unless asked to fsync
     * inline. */
    sc.nometasync = !cfg->nosync && !cfg->inline_fsync;
    sc.scrypt_n = cfg->scrypt_n;
    rc = az_store_open(&sc, &s->store);
    if (rc != PL_OK) {
        core_log_error(s->log, "authz: cannot open the store in %s/authz (%s)", cfg->data_dir,
                       pl_strerror(rc));
        goto out;
    }
    rc = az_pages_load(s);
    if (rc != PL_OK)
        goto out;
    rc = load_policy(s);
    if (rc != PL_OK)
        goto out;

    hc.host = cfg->host;
    hc.port = cfg->port;
    hc.log = cfg->log;
    hc.limits.max_body = (size_t)64 * 1024;
    rc = core_http_new(base, &hc, &s->http);
    if (rc != PL_OK)
        goto out;
    if (cfg->issuer) {
        snprintf(s->issuer, sizeof s->issuer, "%s", cfg->issuer);
    } else {
        int v6 = strchr(cfg->host, ':') != NULL;
        snprintf(s->issuer, sizeof s->issuer, "http://%s%s%s:%u", v6 ? "[" : "", cfg->host,
                 v6 ? "]" : "", (unsigned)core_http_port(s->http));
    }
    rc = open_keys(s);
    if (rc != PL_OK)
        goto out;
    rc = core_http_routes_add(s->http, routes, sizeof routes / sizeof routes[0], s);
    if (rc != PL_OK)
        goto out;
    s->deferred_tail = &s->deferred;
    s->syncing_tail = &s->syncing;
    if (sc.nometasync) {
        rc = core_syncer_new(base, store_sync, s->store, az_synced_cb, s, &s->syncer);
        if (rc != PL_OK)
            goto out;
    }
    rc = az_work_init(s);
    if (rc != PL_OK)
        goto out;
    if (!cfg->sign_on_loop) {
        rc = az_signer_new(s->keys, &s->signer);
        if (rc != PL_OK)
            goto out;
    }
    s->commit = event_new(base, -1, 0, az_commit_cb, s);
    if (!s->commit) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    s->sweep = event_new(base, -1, EV_PERSIST, on_sweep, s);
    if (!s->sweep || event_add(s->sweep, &tv) != 0) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    {
        struct timeval ktv = {5, 0};
        s->keys_reload = event_new(base, -1, EV_PERSIST, on_keys_reload, s);
        if (!s->keys_reload || event_add(s->keys_reload, &ktv) != 0) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
    }
    *out = s;
    s = NULL;
out:
    az_server_free(s);
    return rc;
}

void az_server_commit_stats(const az_server *s, uint64_t *commits, uint64_t *replies)
{
    *commits = s->commits;
    *replies = s->committed_replies;
}

uint16_t az_server_port(const az_server *s)
{
    return core_http_port(s->http);
}

const char *az_server_issuer(const az_server *s)
{
    return s->issuer;
}

az_store *az_server_store(az_server *s)
{
    return s->store;
}

pl_rc az_server_jwks(const az_server *s, char **json)
{
    return key_keyset_jwks(s->keys, json, NULL);
}

void az_server_free(az_server *s)
{
    if (!s)
        return;
    core_syncer_free(s->syncer); /* before anything it calls back into */
    az_signer_free(s->signer);   /* before the key set it reads */
    az_work_free(s);             /* joins running work; their replies are dropped */
    if (s->sweep)
        event_free(s->sweep);
    if (s->keys_reload)
        event_free(s->keys_reload);
    if (s->commit)
        event_free(s->commit);
    if (s->commits)
        core_log_info(s->log, "authz: %llu token replies in %llu group commits",
                      (unsigned long long)s->committed_replies, (unsigned long long)s->commits);
    az_deferred_drop(s);
    core_http_free(s->http);
    for (size_t i = 0; i < AZ_MAX_RESOURCES; i++)
        key_verifier_free(s->verifiers[i]);
    key_keyset_free(s->keys);
    pol_compiled_free(s->policy);
    az_pages_free(s);
    az_store_free(s->store);
    free(s);
}

pl_rc az_demo_seed(az_store *st, char *password_out, size_t password_size)
{
    char uid[AZ_ID_MAX + 1], pw[CORE_B64URL_SIZE(12)];
    pl_rc rc = core_random_token(pw, sizeof pw, 12);
    if (rc == PL_OK)
        rc = az_user_add(st, "demo", pw, uid);
    if (rc == PL_OK) {
        rc = az_ws_add(st, "demo", "Demo Workspace", "pro");
        if (rc == PL_ERR_EXISTS)
            rc = PL_OK;
    }
    if (rc == PL_OK) {
        rc = az_ws_add(st, "demo-readonly", "Demo Read-only", "free");
        if (rc == PL_ERR_EXISTS)
            rc = PL_OK;
    }
    if (rc == PL_OK)
        rc = az_member_set(st, uid, "demo", "owner");
    if (rc == PL_OK)
        rc = az_member_set(st, uid, "demo-readonly", "editor");
    if (rc == PL_OK)
        snprintf(password_out, password_size, "%s", pw);
    core_wipe(pw, sizeof pw);
    return rc;
}
