/* authz/clients.c — redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7.1 and §7.3, RFC 9700 §4.1)
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

/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Returns its length
 * (the ':' follows), or 0. */
static size_t scheme_len(const char *uri)
{
    size_t i = 0;
    if (!((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z')))
        return 0;
    while (uri[i] && uri[i] != ':') {
        char c = uri[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return 0;
        i++;
    }
    return uri[i] == ':' ? i : 0;
}

/* Single-label private-use schemes of native editors that register them without the reverse
 * domain name RFC 8252 §7.1 recommends (docs/authz.md "Redirect URIs"). Every other private-use
 * scheme must be a reverse domain name (at least two labels). */
static const char *const native_single_label[] = {
    "cursor", "vscode", "vscode-insiders", "windsurf", "zed",
};

/* Schemes that name a transport, a document or script, or a browser-internal page: never a
 * native app's redirect, whatever their shape. */
static const char *const never_native[] = {
    "http",          "https",       "javascript", "vbscript",
    "data",          "file",        "blob",       "about",
    "ftp",           "ws",          "wss",        "mailto",
    "tel",           "sms",         "chrome",     "chrome-extension",
    "moz-extension", "view-source", "filesystem", "intent",
    "content",
};

static int in_table(const char *const *t, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i]) == len && strncasecmp(t[i], s, len) == 0)
            return 1;
    return 0;
}

/* A reverse domain name: labels of [A-Za-z0-9-] separated by single periods, at least two. */
static int reverse_dns(const char *s, size_t len)
{
    size_t labels = 1, cur = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (cur == 0)
                return 0;
            labels++;
            cur = 0;
        } else if (s[i] == '+') {
            return 0;
        } else {
            cur++;
        }
    }
    return cur > 0 && labels >= 2;
}

int az_uri_is_private_scheme(const char *uri)
{
    size_t n = uri ? scheme_len(uri) : 0;
    if (n == 0 || in_table(never_native, sizeof never_native / sizeof never_native[0], uri, n))
        return 0;
    return reverse_dns(uri, n) ||
           in_table(native_single_label, sizeof native_single_label / sizeof native_single_label[0],
                    uri, n);
}

/* RFC 8252 §7.1 private-use URI scheme redirect: public clients only (§8.4: nothing stops
 * another app claiming the scheme, so the redirect authenticates nothing; PKCE protects the
 * code). */
static pl_rc private_scheme_valid(const char *uri, size_t slen, int public_client, const char **why)
{
    const char *rest = uri + slen + 1;
    if (!az_uri_is_private_scheme(uri)) {
        *why = in_table(never_native, sizeof never_native / sizeof never_native[0], uri, slen)
                   ? "redirect URI must use https, or http on a loopback address (127.0.0.1, "
                     "[::1], localhost)"
                   : "a private-use URI scheme must be a reverse domain name such as "
                     "com.example.app: (RFC 8252 §7.1)";
        return PL_ERR_INVALID;
    }
    if (!public_client) {
        *why = "private-use URI scheme redirects are allowed only for public native clients "
               "(token endpoint auth method none; RFC 8252 §8.4)";
        return PL_ERR_INVALID;
    }
    if (*rest != '/') {
        *why = "a private-use URI scheme redirect needs a path, e.g. com.example.app:/callback";
        return PL_ERR_INVALID;
    }
    if (strncmp(rest, "//", 2) == 0 && strchr(rest + 2, '@')) {
        *why = "redirect URI must not contain user information";
        return PL_ERR_INVALID;
    }
    return PL_OK;
}

pl_rc az_redirect_uri_check(const char *uri, int public_client, const char **why)
{
    struct evhttp_uri *u = NULL;
    const char *scheme, *host;
    size_t n = uri ? strlen(uri) : 0, slen;
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
    slen = scheme_len(uri);
    if (slen == 0)
        return PL_ERR_INVALID;
    if (!((slen == 4 && strncasecmp(uri, "http", 4) == 0) ||
          (slen == 5 && strncasecmp(uri, "https", 5) == 0))) {
        rc = private_scheme_valid(uri, slen, public_client, why);
        goto out;
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

pl_rc az_redirect_uri_valid(const char *uri, const char **why)
{
    return az_redirect_uri_check(uri, 1, why);
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
