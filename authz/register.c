/* authz/register.c — Dynamic Client Registration (RFC 7591).
 *
 * Every field is validated; registered scopes are only hints (consent decides); limits per
 * source address and overall; an identical registration of a public client (auth method
 * none) from the same source returns the same client, while a confidential registration
 * always creates a new client (reusing one would hand its client_id a new secret: a takeover
 * by anyone behind the same address); a secret is shown once and stored as its SHA-256.
 * Unknown metadata fields are ignored (§2). */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REG_BODY_MAX ((size_t)16 * 1024)

static void reg_error(core_http_req *req, const char *code, const char *desc)
{
    core_http_reply_error(req, 400, code, desc); /* RFC 7591 §3.2.2 */
}

/* A string field: absent → def; present must be a string of 1..max bytes, no controls. */
static int str_field(json_t *o, const char *k, size_t max, const char **out, const char *def)
{
    json_t *v = json_object_get(o, k);
    const char *s;
    if (!v) {
        *out = def;
        return 1;
    }
    if (!json_is_string(v))
        return 0;
    s = json_string_value(v);
    if (!*s || json_string_length(v) > max || strlen(s) != json_string_length(v))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    *out = s;
    return 1;
}

void az_h_register(core_http_req *req, void *arg)
{
    az_server *s = arg;
    const char *body, *ct = core_http_header(req, "Content-Type"), *why = NULL;
    const char *name = NULL, *method = NULL, *scope = NULL;
    size_t len;
    json_error_t je;
    json_t *o = NULL, *ru, *gt, *rt, *resp = NULL, *canon = NULL;
    az_client c;
    char secret[AZ_SECRET_SIZE] = "", *canon_s = NULL, fpbuf[64];
    uint8_t fp[CORE_SHA256_LEN];
    int reused = 0, want_refresh = 0, pub;
    pl_rc rc;

    memset(&c, 0, sizeof c);
    if (!ct || strncmp(ct, "application/json", 16) != 0) {
        reg_error(req, "invalid_client_metadata", "the body must be application/json");
        goto done;
    }
    if (core_http_body(req, &body, &len) != PL_OK || len > REG_BODY_MAX) {
        reg_error(req, "invalid_client_metadata", "the body is too large (16 KiB at most)");
        goto done;
    }
    /* jansson rejects invalid UTF-8; duplicates are rejected too. */
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        reg_error(req, "invalid_client_metadata",
                  o ? "the body must be a JSON object"
                    : "the body is not valid JSON (or not UTF-8, or has duplicate keys)");
        goto done;
    }
    ru = json_object_get(o, "redirect_uris");
    if (!json_is_array(ru) || json_array_size(ru) == 0 || json_array_size(ru) > AZ_MAX_REDIRECTS) {
        reg_error(req, "invalid_redirect_uri", "redirect_uris must be an array of 1 to 8 URIs");
        goto done;
    }
    /* Private-use scheme redirects only for public clients (RFC 8252 §8.4): the auth method
     * itself is validated below (default client_secret_basic: confidential). */
    pub = json_is_string(json_object_get(o, "token_endpoint_auth_method")) &&
          strcmp(json_string_value(json_object_get(o, "token_endpoint_auth_method")), "none") == 0;
    for (size_t i = 0; i < json_array_size(ru); i++) {
        const char *u = json_string_value(json_array_get(ru, i));
        if (!u || az_redirect_uri_check(u, pub, &why) != PL_OK) {
            reg_error(req, "invalid_redirect_uri", u ? why : "redirect_uris must be strings");
            goto done;
        }
        for (size_t j = 0; j < c.nredirect; j++)
            if (strcmp(c.redirect_uris[j], u) == 0) {
                reg_error(req, "invalid_redirect_uri", "redirect_uris has a duplicate");
                goto done;
            }
        snprintf(c.redirect_uris[c.nredirect++], AZ_URI_MAX + 1, "%s", u);
    }
    if (!str_field(o, "client_name", AZ_NAME_MAX, &name, "Unnamed client") ||
        !str_field(o, "token_endpoint_auth_method", 32, &method, "client_secret_basic") ||
        !str_field(o, "scope", 255, &scope, "")) {
        reg_error(req, "invalid_client_metadata",
                  "client_name (<= 128 bytes), token_endpoint_auth_method and scope must be "
                  "non-empty strings without control characters");
        goto done;
    }
    {
        static const struct {
            const char *name;
            az_auth_method m;
        } methods[] = {{"none", AZ_AUTH_NONE},
                       {"client_secret_basic", AZ_AUTH_BASIC},
                       {"client_secret_post", AZ_AUTH_POST}};
        size_t i;
        for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
            if (strcmp(methods[i].name, method) == 0)
                break;
        if (i == sizeof methods / sizeof methods[0]) {
            reg_error(req, "invalid_client_metadata",
                      "token_endpoint_auth_method must be none, client_secret_basic or "
                      "client_secret_post");
            goto done;
        }
        c.auth = methods[i].m;
    }
    gt = json_object_get(o, "grant_types");
    if (gt) {
        int has_code = 0;
        if (!json_is_array(gt) || json_array_size(gt) == 0 || json_array_size(gt) > 4) {
            reg_error(req, "invalid_client_metadata", "grant_types must be a non-empty array");
            goto done;
        }
        for (size_t i = 0; i < json_array_size(gt); i++) {
            const char *g = json_string_value(json_array_get(gt, i));
            if (g && strcmp(g, "authorization_code") == 0)
                has_code = 1;
            else if (g && strcmp(g, "refresh_token") == 0)
                want_refresh = 1;
            else {
                reg_error(req, "invalid_client_metadata",
                          "grant_types may contain only authorization_code and refresh_token");
                goto done;
            }
        }
        if (!has_code) {
            reg_error(req, "invalid_client_metadata",
                      "grant_types must include authorization_code");
            goto done;
        }
    }
    rt = json_object_get(o, "response_types");
    if (rt) {
        if (!json_is_array(rt) || json_array_size(rt) != 1 ||
            !json_string_value(json_array_get(rt, 0)) ||
            strcmp(json_string_value(json_array_get(rt, 0)), "code") != 0) {
            reg_error(req, "invalid_client_metadata", "response_types must be [\"code\"]");
            goto done;
        }
    }
    {
        /* The other metadata of RFC 7591 §2: URLs must be https, strings bounded; key
         * material is refused (only none / client_secret_* are supported). */
        static const char *const urls[] = {"client_uri", "logo_uri", "tos_uri", "policy_uri"};
        static const char *const strs[] = {"software_id", "software_version"};
        static const char *const refused[] = {"jwks", "jwks_uri", "software_statement"};
        const char *v, *bad = NULL;
        json_t *contacts = json_object_get(o, "contacts");
        for (size_t i = 0; !bad && i < sizeof urls / sizeof urls[0]; i++) {
            if (!json_object_get(o, urls[i]))
                continue;
            if (!str_field(o, urls[i], AZ_URI_MAX, &v, "") || strncmp(v, "https://", 8) != 0 ||
                strpbrk(v, " <>\"'"))
                bad = urls[i];
        }
        for (size_t i = 0; !bad && i < sizeof strs / sizeof strs[0]; i++)
            if (!str_field(o, strs[i], 128, &v, ""))
                bad = strs[i];
        if (!bad && contacts) {
            if (!json_is_array(contacts) || json_array_size(contacts) > 8)
                bad = "contacts";
            for (size_t i = 0; !bad && i < json_array_size(contacts); i++) {
                const char *ctc = json_string_value(json_array_get(contacts, i));
                if (!ctc || !*ctc || strlen(ctc) > 128)
                    bad = "contacts";
            }
        }
        if (bad) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "%s is malformed (URLs must be https and <= 512 bytes; strings <= 128)", bad);
            reg_error(req, "invalid_client_metadata", msg);
            goto done;
        }
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
            if (json_object_get(o, refused[i])) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s is not supported here", refused[i]);
                reg_error(req,
                          strcmp(refused[i], "software_statement") == 0
                              ? "invalid_software_statement"
                              : "invalid_client_metadata",
                          msg);
                goto done;
            }
    }
    if (*scope) {
        uint64_t m;
        if (pol_scope_parse_list(scope, strlen(scope), &m, NULL) != PL_OK) {
            reg_error(req, "invalid_client_metadata",
                      "scope names an unknown scope or is malformed");
            goto done;
        }
    }
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.scope_hint, sizeof c.scope_hint, "%s", scope);
    snprintf(c.source, sizeof c.source, "%s", core_http_client_addr(req));
    snprintf(c.cls, sizeof c.cls, "%s", pol_class_name(POL_CLASS_DYNAMIC));
    c.kind = AZ_CLIENT_DCR;
    (void)want_refresh;

    /* Fingerprint: source + canonical metadata (sorted keys, compact). */
    canon = json_pack("{s:s,s:O,s:s,s:s,s:s}", "source", c.source, "redirect_uris", ru, "name",
                      c.name, "auth", method, "scope", scope);
    canon_s = canon ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!canon_s) {
        core_http_reply_error(req, 500, "server_error", NULL);
        goto done;
    }
    core_sha256(canon_s, strlen(canon_s), fp);
    if (c.auth != AZ_AUTH_NONE) {
        if (core_random_token(secret, sizeof secret, 32) != PL_OK) {
            core_http_reply_error(req, 500, "server_error", NULL);
            goto done;
        }
        core_sha256(secret, strlen(secret), c.secret_hash);
    }
    rc = az_client_register(s->store, &c, fp, &s->cfg.dcr, &reused);
    if (rc == PL_ERR_LIMIT) {
        core_http_header_add(req, "Retry-After", "3600");
        core_http_reply_error(req, 429, "too_many_registrations",
                              "registration limit reached for this address or overall; try later");
        goto done;
    }
    if (rc != PL_OK) {
        core_http_reply_error(req, 500, "server_error", "registration could not be stored");
        goto done;
    }
    core_hex_encode(fp, 8, fpbuf, sizeof fpbuf);
    core_log_info(s->log, "authz: client %s %s (fp %s)", c.id,
                  reused ? "re-registered" : "registered", fpbuf);
    resp = json_pack("{s:s,s:I,s:O,s:s,s:s,s:[s,s],s:[s]}", "client_id", c.id,
                     "client_id_issued_at", (json_int_t)(c.created_ms / 1000), "redirect_uris", ru,
                     "client_name", c.name, "token_endpoint_auth_method", method, "grant_types",
                     "authorization_code", "refresh_token", "response_types", "code");
    if (resp && *scope)
        json_object_set_new(resp, "scope", json_string(scope));
    if (resp && c.auth != AZ_AUTH_NONE) {
        json_object_set_new(resp, "client_secret", json_string(secret));
        json_object_set_new(resp, "client_secret_expires_at", json_integer(0));
    }
    core_http_reply_json(req, 201, resp);
    resp = NULL;
done:
    core_wipe(secret, sizeof secret);
    free(canon_s);
    json_decref(canon);
    json_decref(resp);
    json_decref(o);
}
