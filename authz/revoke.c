/* authz/revoke.c — token revocation (RFC 7009) and introspection (RFC 7662).
 *
 * Revocation accepts refresh tokens (the grant and its whole family end) and access tokens
 * (verified; their grant ends, so the resource server refuses every token of it, see
 * directory.h). It answers 200 for unknown tokens (RFC 7009 §2.2) and never revokes a token
 * of another client. Introspection is for resource servers: clients registered with the
 * introspect flag (postly-admin clients add --introspect). */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

/* Verifies an access token against every configured audience. */
static pl_rc verify_access(az_server *s, const char *tok, key_verified *kv)
{
    key_reason why;
    for (size_t i = 0; i < s->nresources; i++)
        if (s->verifiers[i] &&
            key_verifier_verify(s->verifiers[i], tok, strlen(tok), kv, &why) == PL_OK)
            return PL_OK;
    return PL_ERR_DENIED;
}

static pl_rc authed(az_server *s, core_http_req *req, core_form *f, az_client_auth *ca)
{
    core_form_error fe;
    const char *why;
    pl_rc rc = core_http_form_parse(req, NULL, f, &fe);
    if (rc != PL_OK) {
        core_http_reply_error(req, 400, "invalid_request", fe.msg);
        return rc;
    }
    rc = az_client_authenticate(s, req, f, ca, &why);
    if (rc == PL_ERR_INVALID) {
        core_http_reply_error(req, 400, "invalid_request", why);
        return rc;
    }
    if (rc != PL_OK) {
        if (ca->used_basic)
            core_http_header_add(req, "WWW-Authenticate", "Basic realm=\"postly\"");
        core_http_reply_error(req, 401, "invalid_client", why);
        return rc;
    }
    if (!core_form_get(f, "token")) {
        core_http_reply_error(req, 400, "invalid_request", "token is required");
        return PL_ERR_INVALID;
    }
    return PL_OK;
}

void az_h_revoke(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    az_client_auth ca;
    az_grant g;
    key_verified kv;
    const char *tok;
    if (authed(s, req, &f, &ca) != PL_OK)
        goto done;
    tok = core_form_get(&f, "token");
    if (az_refresh_grant(s->store, tok, &g, NULL) == PL_OK) {
        if (strcmp(g.client_id, ca.client.id) == 0)
            az_grant_revoke(s->store, g.gid);
    } else if (verify_access(s, tok, &kv) == PL_OK && strcmp(kv.client_id, ca.client.id) == 0) {
        az_grant_revoke(s->store, kv.gid);
    }
    core_http_reply_empty(req, 200);
done:
    core_form_free(&f);
}

void az_h_introspect(core_http_req *req, void *arg)
{
    az_server *s = arg;
    core_form f = {0};
    az_client_auth ca;
    az_grant g;
    key_verified kv;
    const char *tok;
    int current = 0;
    char sc[POL_SCOPE_FORMAT_MAX];
    json_t *o = NULL;
    if (authed(s, req, &f, &ca) != PL_OK)
        goto done;
    if (!ca.client.introspect) {
        core_http_reply_error(req, 403, "unauthorized_client",
                              "this client may not introspect tokens");
        goto done;
    }
    tok = core_form_get(&f, "token");
    if (verify_access(s, tok, &kv) == PL_OK) {
        if (az_grant_get(s->store, kv.gid, &g) == PL_OK && !g.revoked_ms)
            o = json_pack("{s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s}", "active", 1,
                          "token_type", "Bearer", "scope", kv.scope, "client_id", kv.client_id,
                          "sub", kv.sub, "aud", g.resource, "iss", s->issuer, "jti", kv.jti, "iat",
                          (json_int_t)kv.iat, "nbf", (json_int_t)kv.nbf, "exp", (json_int_t)kv.exp,
                          "ws", kv.ws, "gid", kv.gid);
    } else if (az_refresh_grant(s->store, tok, &g, &current) == PL_OK && current) {
        az_scope_str(g.scope, sc);
        o = json_pack("{s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "active", 1, "token_type",
                      "refresh_token", "scope", sc, "client_id", g.client_id, "sub", g.uid, "aud",
                      g.resource, "ws", g.ws, "gid", g.gid);
    }
    if (!o)
        o = json_pack("{s:b}", "active", 0); /* RFC 7662 §2.2: nothing more */
    core_http_reply_json(req, 200, o);
done:
    core_form_free(&f);
}
