/* authz/clients.c — redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1)
 * and client lookup. */
#include "server_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

static int host_is_loopback(const char *h)
{
    return h && (strcmp(h, "127.0.0.1") == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0 ||
                 strcasecmp(h, "localhost") == 0);
}

pl_rc az_redirect_uri_valid(const char *uri, const char **why)
{
    struct evhttp_uri *u = NULL;
    const char *scheme, *host;
    size_t n = uri ? strlen(uri) : 0;
    pl_rc rc = PL_ERR_INVALID;
    *why = "redirect URI is not a valid absolute URI";
    if (n == 0 || n > AZ_URI_MAX) {
        *why = "redirect URI is empty or longer than 512 bytes";
        return PL_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f) {
            *why = "redirect URI contains spaces, control or non-ASCII characters";
            return PL_ERR_INVALID;
        }
    if (strchr(uri, '#')) {
        *why = "redirect URI must not contain a fragment (RFC 6749 §3.1.2)";
        return PL_ERR_INVALID;
    }
    u = evhttp_uri_parse_with_flags(uri, 0);
    if (!u)
        goto out;
    scheme = evhttp_uri_get_scheme(u);
    host = evhttp_uri_get_host(u);
    if (!scheme || !host || !*host)
        goto out;
    if (evhttp_uri_get_userinfo(u)) {
        *why = "redirect URI must not contain user information";
        goto out;
    }
    /* https, or http on a loopback host: RFC 8252 §7.3 loopback redirect of a native app. */
    if (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && host_is_loopback(host))) {
        rc = PL_OK;
    } else {
        *why = "redirect URI must use https, or http on a loopback address (127.0.0.1, [::1], "
               "localhost)";
    }
out:
    if (u)
        evhttp_uri_free(u);
    if (rc == PL_OK)
        *why = NULL;
    return rc;
}

int az_uri_is_loopback(const char *uri)
{
    struct evhttp_uri *u = uri ? evhttp_uri_parse_with_flags(uri, 0) : NULL;
    int r = u && host_is_loopback(evhttp_uri_get_host(u));
    if (u)
        evhttp_uri_free(u);
    return r;
}

void az_uri_host(const char *uri, char *out, size_t outsz)
{
    struct evhttp_uri *u = uri ? evhttp_uri_parse_with_flags(uri, 0) : NULL;
    const char *h = u ? evhttp_uri_get_host(u) : NULL;
    snprintf(out, outsz, "%s", h ? h : "");
    if (u)
        evhttp_uri_free(u);
}

static int streq_null(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Loopback registrations match any port (RFC 8252 §7.3); everything else must be equal. */
static int loopback_match(const char *reg, const char *given)
{
    struct evhttp_uri *a = evhttp_uri_parse_with_flags(reg, 0);
    struct evhttp_uri *b = evhttp_uri_parse_with_flags(given, 0);
    int r = 0;
    if (a && b && streq_null(evhttp_uri_get_scheme(a), "http") &&
        streq_null(evhttp_uri_get_scheme(b), "http") && host_is_loopback(evhttp_uri_get_host(a)) &&
        streq_null(evhttp_uri_get_host(a), evhttp_uri_get_host(b)) && !evhttp_uri_get_userinfo(b) &&
        !evhttp_uri_get_fragment(b) && !strchr(given, '#') &&
        streq_null(evhttp_uri_get_path(a), evhttp_uri_get_path(b)) &&
        streq_null(evhttp_uri_get_query(a), evhttp_uri_get_query(b)))
        r = 1;
    if (a)
        evhttp_uri_free(a);
    if (b)
        evhttp_uri_free(b);
    return r;
}

int az_redirect_uri_match(const az_client *c, const char *given)
{
    if (!given || strlen(given) > AZ_URI_MAX)
        return 0;
    for (size_t i = 0; i < c->nredirect; i++) {
        if (strcmp(c->redirect_uris[i], given) == 0)
            return 1;
        if (az_uri_is_loopback(c->redirect_uris[i]) && loopback_match(c->redirect_uris[i], given))
            return 1;
    }
    return 0;
}

pl_rc az_client_lookup(az_server *s, const char *client_id, az_client *out)
{
    if (!client_id || !*client_id || strlen(client_id) > AZ_CLIENT_ID_MAX)
        return PL_ERR_NOT_FOUND;
    return az_client_get(s->store, client_id, out);
}
