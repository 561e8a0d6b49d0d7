/* authz/meta.c — authorization server metadata (RFC 8414; served at both well-known paths,
 * MCP 2025-11-25 basic/authorization "Authorization Server Metadata Discovery") and JWKS. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *strings(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

void az_h_metadata(core_http_req *req, void *arg)
{
    az_server *s = arg;
    static const char *const rt[] = {"code"};
    static const char *const rm[] = {"query"};
    static const char *const gt[] = {"authorization_code", "refresh_token"};
    static const char *const cc[] = {"S256"};
    static const char *const am[] = {"none", "client_secret_basic", "client_secret_post"};
    static const char *const im[] = {"client_secret_basic", "client_secret_post"};
    static const struct {
        const char *field, *path;
    } endpoints[] = {
        {"authorization_endpoint", "/authorize"},  {"token_endpoint", "/token"},
        {"registration_endpoint", "/register"},    {"revocation_endpoint", "/revoke"},
        {"introspection_endpoint", "/introspect"}, {"jwks_uri", "/jwks"},
    };
    json_t *o = json_object(), *scopes = json_array();
    char url[400];
    for (unsigned b = 0; scopes && b < pol_scope_count(); b++) {
        const pol_scope_info *si;
        if (pol_scope_get(b, &si) == PL_OK)
            json_array_append_new(scopes, json_string(si->name));
    }
    json_object_set_new(o, "issuer", json_string(s->issuer));
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        snprintf(url, sizeof url, "%s%s", s->issuer, endpoints[i].path);
        json_object_set_new(o, endpoints[i].field, json_string(url));
    }
    json_object_set_new(o, "response_types_supported", strings(rt, 1));
    json_object_set_new(o, "response_modes_supported", strings(rm, 1));
    json_object_set_new(o, "grant_types_supported", strings(gt, 2));
    json_object_set_new(o, "code_challenge_methods_supported", strings(cc, 1));
    json_object_set_new(o, "token_endpoint_auth_methods_supported", strings(am, 3));
    json_object_set_new(o, "revocation_endpoint_auth_methods_supported", strings(am, 3));
    json_object_set_new(o, "introspection_endpoint_auth_methods_supported", strings(im, 2));
    json_object_set_new(o, "scopes_supported", scopes);
    json_object_set_new(o, "authorization_response_iss_parameter_supported", json_true());
    json_object_set_new(o, "client_id_metadata_document_supported", json_true());
    snprintf(url, sizeof url, "%s/apps", s->issuer);
    json_object_set_new(o, "service_documentation", json_string(url));
    core_http_header_add(req, "Cache-Control", "public, max-age=300");
    core_http_header_add(req, "Access-Control-Allow-Origin", "*");
    core_http_reply_json(req, 200, o);
}

void az_h_jwks(core_http_req *req, void *arg)
{
    az_server *s = arg;
    char *json = NULL;
    size_t len = 0;
    if (key_keyset_jwks(s->keys, &json, &len) != PL_OK) {
        core_http_reply_error(req, 500, "server_error", "the key set is unavailable");
        return;
    }
    core_http_header_add(req, "Cache-Control", "public, max-age=60");
    core_http_header_add(req, "Access-Control-Allow-Origin", "*");
    core_http_reply_body(req, 200, "application/jwk-set+json", json, len);
    free(json);
}
