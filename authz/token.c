/* authz/token.c — the token endpoint (RFC 6749 §3.2, §4.1.3, §6; RFC 7636 §4.5-4.6;
 * RFC 8707 §2.2; RFC 9700 §4.14). Responses carry Cache-Control: no-store (route flag);
 * errors follow RFC 6749 §5.2. */
#include "server_int.h"
#include "signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pl_rc az_mint_access(az_server *s, const az_grant *g, uint64_t scope, const core_clock *clock,
                     char *out, size_t outsz)
{
    char sc[POL_SCOPE_FORMAT_MAX];
    key_claims kc = {0};
    az_scope_str(scope, sc);
    kc.iss = s->issuer;
    kc.sub = g->uid;
    kc.aud = g->resource;
    kc.client_id = g->client_id;
    kc.scope = sc;
    kc.ws = g->ws;
    kc.gid = g->gid;
    kc.cls = g->cls;
    kc.lifetime_s = s->cfg.access_ttl_s;
    return key_token_mint(s->keys, clock, &kc, out, outsz, NULL, NULL);
}

/* Every /token reply waits for the group commit of the store writes made while handling
 * it (store.h "group commit"): nothing is acknowledged before it is durable. body[0..len) is
 * the JSON text, in the same allocation. */
/* The largest /token body: a token reply (an error reply is shorter). */
#define TOKEN_BODY_MAX (KEY_TOKEN_MAX + POL_SCOPE_FORMAT_MAX + AZ_SECRET_SIZE + 128)

/* Queues a reply slot of cap body bytes for req (NULL when out of memory: a 503 was sent). */
static az_deferred *reply_slot(az_server *s, core_http_req *req, int status, size_t cap, int basic)
{
    az_deferred *d = malloc(sizeof *d + cap);
    if (!d) {
        core_http_reply_error(req, 503, "temporarily_unavailable", NULL);
        return NULL;
    }
    d->req = req;
    d->status = status;
    d->len = 0;
    d->basic = basic;
    d->seq = 0;
    d->next = NULL;
    core_http_defer(req);
    *s->deferred_tail = d;
    s->deferred_tail = &d->next;
    if (!s->commit_scheduled) {
        /* Runs after the callbacks already due in this loop iteration: their requests join
         * the same batch. */
        s->commit_scheduled = 1;
        event_active(s->commit, 0, 0);
    }
    return d;
}

static void reply_later(az_server *s, core_http_req *req, int status, const char *body, size_t len,
                        int basic)
{
    az_deferred *d = reply_slot(s, req, status, len, basic);
    if (d) {
        memcpy(d->body, body, len);
        d->len = len;
    }
}

static void deferred_free(az_deferred *d)
{
    core_wipe(d->body, d->len); /* tokens */
    free(d);
}

/* Server shutdown: the request is answered (503, nothing was acknowledged: an open batch is
 * aborted) so the HTTP layer frees it, and the slot freed. */
static void deferred_abandon(az_deferred *d)
{
    core_http_reply_error(d->req, 503, "temporarily_unavailable", "the server is stopping");
    deferred_free(d);
}

static void send_deferred(az_deferred *d, pl_rc rc)
{
    if (rc != PL_OK) {
        core_http_reply_error(d->req, 500, "server_error", "the change could not be stored");
    } else {
        if (d->status == 401 && d->basic)
            core_http_header_add(d->req, "WWW-Authenticate", "Basic realm=\"postly\"");
        core_http_reply_body(d->req, d->status, "application/json", d->body, d->len);
    }
    deferred_free(d);
}

void az_commit_cb(evutil_socket_t fd, short what, void *arg)
{
    az_server *s = arg;
    az_deferred *d = s->deferred, *next;
    int needs_sync = 0;
    pl_rc rc;
    /* Once per loop iteration with /token work: the signer thread refills the nonces this
     * iteration used (signer.h). */
    az_signer_poke(s->signer);
    rc = az_store_batch_commit(s->store, &needs_sync);
    (void)fd;
    (void)what;
    s->commit_scheduled = 0;
    s->commits++;
    s->deferred = NULL;
    s->deferred_tail = &s->deferred;
    if (rc != PL_OK)
        core_log_error(s->log, "authz: group commit failed (%s); answering 500", pl_strerror(rc));
    if (needs_sync && s->syncer) {
        /* Durable once the syncer's next fdatasync completes (core/syncer.h). */
        s->commit_seq++;
        for (; d; d = next) {
            next = d->next;
            d->next = NULL;
            d->seq = s->commit_seq;
            *s->syncing_tail = d;
            s->syncing_tail = &d->next;
        }
        core_syncer_request(s->syncer, s->commit_seq);
        return;
    }
    for (; d; d = next) {
        next = d->next;
        send_deferred(d, rc);
        s->committed_replies++;
    }
}

void az_synced_cb(void *arg, uint64_t seq, pl_rc rc)
{
    az_server *s = arg;
    if (rc != PL_OK)
        core_log_error(s->log, "authz: fdatasync failed (%s); answering 500", pl_strerror(rc));
    while (s->syncing && s->syncing->seq <= seq) {
        az_deferred *d = s->syncing;
        s->syncing = d->next;
        if (!s->syncing)
            s->syncing_tail = &s->syncing;
        send_deferred(d, rc);
        s->committed_replies++;
    }
}

void az_deferred_drop(az_server *s)
{
    az_deferred *lists[2] = {s->deferred, s->syncing}, *d, *next;
    for (int i = 0; i < 2; i++)
        for (d = lists[i]; d; d = next) {
            next = d->next;
            deferred_abandon(d);
        }
    s->deferred = s->syncing = NULL;
    s->deferred_tail = &s->deferred;
    s->syncing_tail = &s->syncing;
}

/* Appends to a fixed buffer; out of room sets full. */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    int full;
} jbuf;

static void jb_add(jbuf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - b->len) {
        b->full = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define jb_lit(b, lit) jb_add((b), (lit), sizeof(lit) - 1)

/* RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E. Any other
 * byte (a quote, a backslash, a control byte, non-ASCII: a parameter name quoted by the form
 * parser may carry them) is written as '?', so the value never needs JSON escaping. */
static void jb_desc(jbuf *b, const char *s)
{
    for (; *s && !b->full; s++) {
        unsigned char c = (unsigned char)*s;
        char o = c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' ? (char)c : '?';
        jb_add(b, &o, 1);
    }
}

/* An error body (RFC 6749 §5.2): {"error":code,"error_description":desc} into text (cap >=
 * 16); code is one of the static RFC 6749 error codes ([a-z_], no escaping), desc may be
 * NULL. Returns its length. */
static size_t error_text(char *text, size_t cap, const char *code, const char *desc)
{
    jbuf b = {text, 0, cap, 0};
    jb_lit(&b, "{\"error\":\"");
    jb_add(&b, code, strlen(code));
    if (desc) {
        jb_lit(&b, "\",\"error_description\":\"");
        jb_desc(&b, desc);
        if (b.full) { /* cut a long description, keep the JSON whole */
            b.full = 0;
            b.len = cap - 3;
        }
    }
    jb_lit(&b, "\"}");
    return b.len;
}

static void token_error_s(az_server *s, core_http_req *req, int status, const char *code,
                          const char *desc, int basic)
{
    char text[512];
    reply_later(s, req, status, text, error_text(text, sizeof text, code, desc), basic);
}

#define token_error(req, status, code, desc, basic)                                                \
    token_error_s(s, (req), (status), (code), (desc), (basic))

/* The success body (RFC 6749 §5.1) into text (cap bytes): 0 and *len, or -1 when it does not
 * fit. Written directly: a JWS is base64url and dots, the refresh token base64url and scope
 * names [a-z_:] and spaces, so nothing needs JSON escaping. */
static int token_text(char *text, size_t cap, const char *at, int64_t ttl_s, const char *rt,
                      uint64_t scope, size_t *len)
{
    char sc[POL_SCOPE_FORMAT_MAX], num[24];
    jbuf b = {text, 0, cap, 0};
    size_t nlen = 0;
    unsigned long long ttl = ttl_s > 0 ? (unsigned long long)ttl_s : 0;
    az_scope_str(scope, sc);
    do /* expires_in, decimal */
        num[sizeof num - 1 - nlen++] = (char)('0' + ttl % 10);
    while ((ttl /= 10) != 0 && nlen < sizeof num);
    jb_lit(&b, "{\"access_token\":\"");
    jb_add(&b, at, strlen(at));
    jb_lit(&b, "\",\"token_type\":\"Bearer\",\"expires_in\":");
    jb_add(&b, num + sizeof num - nlen, nlen);
    jb_lit(&b, ",\"refresh_token\":\"");
    jb_add(&b, rt, strlen(rt));
    jb_lit(&b, "\",\"scope\":\"");
    jb_add(&b, sc, strlen(sc));
    jb_lit(&b, "\"}");
    *len = b.len;
    return b.full ? -1 : 0;
}

static void token_reply(az_server *s, core_http_req *req, const az_grant *g, uint64_t scope,
                        const char *rt)
{
    char at[KEY_TOKEN_MAX];
    az_deferred *d;
    /* Signed here, on the loop: with a nonce the signer thread precomputed, the signature is
     * a small part of the request (signer.h); the reply still waits for the group commit. */
    if (az_mint_access(s, g, scope, s->cfg.clock, at, sizeof at) != PL_OK) {
        token_error(req, 500, "server_error", "the access token could not be signed", 0);
        return;
    }
    /* The body written straight into its reply slot. */
    if ((d = reply_slot(s, req, 200, TOKEN_BODY_MAX, 0)) != NULL &&
        token_text(d->body, TOKEN_BODY_MAX, at, s->cfg.access_ttl_s, rt, scope, &d->len) != 0) {
        core_wipe(d->body, TOKEN_BODY_MAX);
        d->status = 500;
        d->len =
            error_text(d->body, TOKEN_BODY_MAX, "server_error", "the response could not be built");
    }
    core_wipe(at, strlen(at));
}

/* Current membership and policy still allow the grant? Returns what may be issued now. */
static pl_rc still_grantable(az_server *s, const az_grant *g, uint64_t *mask)
{
    char role[16];
    az_user u;
    pol_grant pg;
    pl_rc rc = az_user_get(s->store, g->uid, &u);
    if (rc != PL_OK || u.disabled)
        return PL_ERR_DENIED;
    rc = az_member_role(s->store, g->uid, g->ws, role);
    if (rc != PL_OK)
        return PL_ERR_DENIED;
    rc = az_grantable(s, role, g->ws, g->cls, g->scope, &pg);
    if (rc != PL_OK)
        return rc;
    *mask = pg.grantable;
    return PL_OK;
}

static void grant_code(az_server *s, core_http_req *req, const core_form *f,
                       const az_client_auth *ca)
{
    az_redeem in;
    az_grant g;
    char rt[AZ_SECRET_SIZE];
    const char *why = NULL, *code = core_form_get(f, "code");
    pl_rc rc;
    if (!code) {
        token_error(req, 400, "invalid_request", "code is required", 0);
        return;
    }
    in.client_id = ca->client.id;
    in.redirect_uri = core_form_get(f, "redirect_uri");
    in.verifier = core_form_get(f, "code_verifier");
    in.resource = core_form_get(f, "resource");
    rc = az_code_redeem(s->store, code, &in, &g, rt, &why);
    if (rc == PL_ERR_CONFLICT)
        core_log_warn(s->log, "authz: code replay by client %s; grant revoked", ca->client.id);
    if (rc == PL_ERR_STORE || rc == PL_ERR_NOMEM || rc == PL_ERR_CRYPTO) {
        token_error(req, 500, "server_error", "the code could not be redeemed", 0);
        return;
    }
    if (rc != PL_OK) {
        token_error(req, 400, "invalid_grant", why ? why : "invalid authorization code", 0);
        return;
    }
    {
        /* The user may have been disabled or left the workspace since the consent. */
        uint64_t now_ok;
        if (still_grantable(s, &g, &now_ok) != PL_OK || (g.scope & now_ok) == 0) {
            az_grant_revoke(s->store, g.gid);
            token_error(req, 400, "invalid_grant", "the user can no longer grant this access", 0);
            core_wipe(rt, sizeof rt);
            return;
        }
        g.scope &= now_ok;
    }
    token_reply(s, req, &g, g.scope, rt);
    core_wipe(rt, sizeof rt);
}

static void grant_refresh(az_server *s, core_http_req *req, const core_form *f,
                          const az_client_auth *ca)
{
    const char *rt = core_form_get(f, "refresh_token"), *scope = core_form_get(f, "scope");
    const char *why = NULL;
    az_grant g;
    char nrt[AZ_SECRET_SIZE];
    uint64_t want = 0, now_ok;
    pl_rc rc;
    if (!rt) {
        token_error(req, 400, "invalid_request", "refresh_token is required", 0);
        return;
    }
    if (scope && (pol_scope_parse_list(scope, strlen(scope), &want, NULL) != PL_OK || want == 0)) {
        /* An unknown token is reported first, as for any other request. */
        if (az_refresh_grant(s->store, rt, &g, NULL) != PL_OK)
            token_error(req, 400, "invalid_grant", "invalid refresh token", 0);
        else
            token_error(req, 400, "invalid_scope", "scope is malformed or names an unknown scope",
                        0);
        return;
    }
    /* RFC 6749 §6: a requested scope may narrow the grant's, never widen it; the store checks
     * that before rotating, so a refused widening costs nothing. */
    rc = az_refresh_rotate_scope(s->store, rt, ca->client.id, core_form_get(f, "resource"), want,
                                 &g, nrt, &why);
    if (rc == PL_ERR_CONFLICT)
        core_log_warn(s->log, "authz: refresh token reuse, grant %s revoked", g.gid);
    if (rc == PL_ERR_STORE || rc == PL_ERR_NOMEM || rc == PL_ERR_CRYPTO) {
        token_error(req, 500, "server_error", "the refresh token could not be rotated", 0);
        return;
    }
    if (rc == PL_ERR_INVALID) {
        token_error(req, 400, "invalid_scope", why, 0);
        return;
    }
    if (rc != PL_OK) {
        token_error(req, 400, "invalid_grant", why ? why : "invalid refresh token", 0);
        return;
    }
    if (!scope)
        want = g.scope;
    /* The user may have left the workspace or lost rights since: issue only what is still
     * grantable, and end the grant when nothing is. */
    if (still_grantable(s, &g, &now_ok) != PL_OK || (want & now_ok) == 0) {
        az_grant_revoke(s->store, g.gid);
        token_error(req, 400, "invalid_grant",
                    "the user can no longer grant this access; the grant is revoked", 0);
        core_wipe(nrt, sizeof nrt);
        return;
    }
    token_reply(s, req, &g, want & now_ok, nrt);
    core_wipe(nrt, sizeof nrt);
}

void az_h_token(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    core_form_error fe;
    az_client_auth ca;
    const char *gt, *why;
    pl_rc rc;

    az_store_batch_enter(s->store);
    rc = core_http_form_parse(req, NULL, &f, &fe);
    if (rc != PL_OK) {
        token_error(req, 400, "invalid_request", fe.msg, 0);
        goto done;
    }
    rc = az_client_authenticate(s, req, &f, &ca, &why);
    if (rc == PL_ERR_INVALID) {
        token_error(req, 400, "invalid_request", why, 0);
        goto done;
    }
    if (rc != PL_OK) {
        token_error(req, 401, "invalid_client", why, ca.used_basic);
        goto done;
    }
    gt = core_form_get(&f, "grant_type");
    if (!gt)
        token_error(req, 400, "invalid_request", "grant_type is required", 0);
    else if (strcmp(gt, "authorization_code") == 0)
        grant_code(s, req, &f, &ca);
    else if (strcmp(gt, "refresh_token") == 0)
        grant_refresh(s, req, &f, &ca);
    else
        token_error(req, 400, "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token", 0);
done:
    az_store_batch_leave(s->store);
    core_form_free(&f);
}
