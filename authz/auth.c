/* authz/auth.c — client authentication at the token, revocation and introspection
 * endpoints (RFC 6749 §2.3.1: client_secret_basic, client_secret_post; public clients
 * send only client_id). */
#include "server_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding. */
static pl_rc basic_decode(const char *hdr, char *id, size_t idsz, char *secret, size_t secsz)
{
    unsigned char raw[1024];
    char text[1025];
    int n;
    size_t len, b64len;
    const char *colon;
    core_form f = {0};
    core_buf b;
    pl_rc rc;
    if (strncasecmp(hdr, "Basic ", 6) != 0)
        return PL_ERR_INVALID;
    hdr += 6;
    b64len = strlen(hdr);
    if (b64len == 0 || b64len > 1360)
        return PL_ERR_INVALID;
    n = EVP_DecodeBlock(raw, (const unsigned char *)hdr, (int)b64len);
    if (n < 0)
        return PL_ERR_INVALID;
    len = (size_t)n;
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (b64len >= 1 && hdr[b64len - 1] == '=')
        len--;
    if (b64len >= 2 && hdr[b64len - 2] == '=')
        len--;
    memcpy(text, raw, len);
    text[len] = '\0';
    if (strlen(text) != len || !(colon = strchr(text, ':')))
        return PL_ERR_INVALID;
    /* Decode each half as a form value: reuse the form parser on "i=<id>&s=<secret>". */
    core_buf_init(&b, 2100);
    rc = core_buf_adds(&b, "i=");
    if (rc == PL_OK)
        rc = core_buf_add(&b, text, (size_t)(colon - text));
    if (rc == PL_OK)
        rc = core_buf_adds(&b, "&s=");
    if (rc == PL_OK)
        rc = core_buf_adds(&b, colon + 1);
    core_wipe(text, sizeof text);
    core_wipe(raw, sizeof raw);
    if (rc == PL_OK)
        rc = core_form_parse(b.p, b.len, NULL, &f, NULL);
    if (b.p)
        core_wipe(b.p, b.len);
    core_buf_free(&b);
    if (rc == PL_OK && (!core_form_get(&f, "i") || !*core_form_get(&f, "i")))
        rc = PL_ERR_INVALID;
    if (rc == PL_OK) {
        snprintf(id, idsz, "%s", core_form_get(&f, "i"));
        snprintf(secret, secsz, "%s", core_form_get(&f, "s") ? core_form_get(&f, "s") : "");
    }
    core_form_free(&f);
    return rc;
}

pl_rc az_client_authenticate(az_server *s, core_http_req *req, const core_form *f,
                             az_client_auth *out, const char **why)
{
    const char *hdr = core_http_header(req, "Authorization");
    const char *form_id = core_form_get(f, "client_id"),
               *form_secret = core_form_get(f, "client_secret");
    char id[AZ_CLIENT_ID_MAX + 1] = "", secret[256] = "";
    az_auth_method method;
    uint8_t h[CORE_SHA256_LEN];
    pl_rc rc = PL_OK;

    memset(out, 0, sizeof *out);
    *why = "client authentication failed";
    if (core_http_header_count(req, "Authorization") > 1) {
        *why = "more than one Authorization header";
        return PL_ERR_INVALID;
    }
    if (hdr) {
        out->used_basic = 1;
        if (form_secret) {
            /* RFC 6749 §2.3: one method per request. */
            *why = "the client used more than one authentication method";
            return PL_ERR_INVALID;
        }
        if (basic_decode(hdr, id, sizeof id, secret, sizeof secret) != PL_OK) {
            *why = "malformed Basic authorization header";
            return PL_ERR_DENIED;
        }
        if (form_id && strcmp(form_id, id) != 0) {
            *why = "client_id differs from the authenticated client";
            rc = PL_ERR_INVALID;
            goto out;
        }
        method = AZ_AUTH_BASIC;
    } else if (form_secret) {
        if (!form_id) {
            *why = "client_id is required with client_secret";
            return PL_ERR_INVALID;
        }
        snprintf(id, sizeof id, "%s", form_id);
        snprintf(secret, sizeof secret, "%s", form_secret);
        method = AZ_AUTH_POST;
    } else {
        size_t n = form_id ? strlen(form_id) : 0;
        if (!form_id) {
            *why = "client authentication is required (client_id missing)";
            return PL_ERR_DENIED;
        }
        /* A public client sends only its id: copied whole, or unknown when too long. */
        if (n >= sizeof id) {
            *why = "unknown client";
            return PL_ERR_DENIED;
        }
        memcpy(id, form_id, n + 1);
        method = AZ_AUTH_NONE;
    }
    if (az_client_lookup(s, id, &out->client) != PL_OK) {
        *why = "unknown client";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (out->client.auth != method) {
        *why = out->client.auth == AZ_AUTH_NONE
                   ? "this client is public: send client_id only"
                   : "this client must authenticate with its registered method";
        rc = PL_ERR_DENIED;
        goto out;
    }
    if (method != AZ_AUTH_NONE) {
        core_sha256(secret, strlen(secret), h);
        if (!core_ct_equal(h, out->client.secret_hash, sizeof h)) {
            *why = "client authentication failed";
            rc = PL_ERR_DENIED;
            goto out;
        }
    }
    *why = NULL;
out:
    core_wipe(secret, sizeof secret);
    return rc;
}
