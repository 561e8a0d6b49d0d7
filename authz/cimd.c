/* authz/cimd.c — Client ID Metadata Documents (MCP 2025-11-25 basic/authorization "Client ID
 * Metadata Documents"; draft-ietf-oauth-client-id-metadata-document).
 *
 * A client_id that is an https URL names a JSON document describing the client. It is
 * fetched with libcurl under these rules:
 *  - https only (the test option cimd_allow_loopback also allows http to 127.0.0.1);
 *  - the URL has a path, no fragment, no userinfo, at most 512 bytes;
 *  - the peer address is checked when the socket is opened (after DNS): loopback, private,
 *    link-local, CGNAT, multicast and unspecified addresses are refused (SSRF), also when an
 *    IPv6 address carries one (mapped, NAT64, 6to4), except 127.0.0.1 with the test option;
 *    never through a proxy;
 *  - no redirects; 3 s to connect, 5 s in all; at most 64 KiB; TLS verified;
 *  - the document's client_id must equal the URL exactly; its redirect_uris follow the
 *    registration rules; token_endpoint_auth_method must be "none" (public client);
 *  - the result is cached in the store for the response's Cache-Control max-age, bounded to
 *    [5 min, 24 h] (1 h without one; no-store/no-cache: 5 min); a stale copy with an ETag is
 *    revalidated with If-None-Match (304 keeps it).
 * The fetch runs on a worker thread while the request that needs it waits (see below). */
#include "server_int.h"
#include "worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/http.h>

#define CIMD_MAX_BYTES   ((size_t)64 * 1024)
#define CIMD_TIMEOUT_MS  5000
#define CIMD_CONNECT_MS  3000
#define CIMD_TTL_MIN_S   300
#define CIMD_TTL_MAX_S   86400
#define CIMD_TTL_DEFAULT 3600

typedef struct fetch {
    core_buf body;
    int too_big;
    int allow_loopback;
    int blocked;
    long max_age; /* -1 when absent */
    char etag[128];
} fetch;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    fetch *f = arg;
    if (core_buf_add(&f->body, p, sz * n) != PL_OK) {
        f->too_big = 1;
        return 0;
    }
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    fetch *f = arg;
    size_t len = sz * n;
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), p);
    if (strncasecmp(line, "etag:", 5) == 0) {
        /* Kept only when it is plain printable ASCII (it goes back in a request header). */
        const char *v = line + 5;
        size_t k;
        while (*v == ' ' || *v == '\t')
            v++;
        k = strcspn(v, "\r\n");
        while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
            k--;
        f->etag[0] = '\0';
        if (k > 0 && k < sizeof f->etag) {
            size_t i;
            for (i = 0; i < k && v[i] > 0x20 && v[i] < 0x7f; i++)
                ;
            if (i == k)
                snprintf(f->etag, sizeof f->etag, "%.*s", (int)k, v);
        }
    }
    if (strncasecmp(line, "cache-control:", 14) == 0) {
        const char *ma = strstr(line, "max-age=");
        if (strstr(line, "no-store") || strstr(line, "no-cache"))
            f->max_age = 0;
        else if (ma)
            f->max_age = strtol(ma + 8, NULL, 10);
    }
    return len;
}

/* 1 when the IPv4 address (host order) may be contacted. */
static int ipv4_allowed(uint32_t a, int allow_loopback)
{
    static const struct {
        uint32_t net, mask;
    } deny[] = {
        {0x00000000, 0xff000000}, /* 0/8 */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8 */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xe0000000, 0xe0000000}, /* multicast, reserved, broadcast */
    };
    if (allow_loopback && a == 0x7f000001)
        return 1;
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if ((a & deny[i].mask) == deny[i].net)
            return 0;
    return 1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 when the address may be contacted (SSRF rules above). */
static int addr_allowed(const struct sockaddr *sa, int allow_loopback)
{
    static const uint8_t zero[12] = {0}, mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                         nat64[12] = {0, 0x64, 0xff, 0x9b};
    const uint8_t *b;
    if (sa->sa_family == AF_INET)
        return ipv4_allowed(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr),
                            allow_loopback);
    if (sa->sa_family != AF_INET6)
        return 0;
    b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    /* Forms that carry an IPv4 address are judged as that address: ::/96 (unspecified,
     * loopback, IPv4-compatible), ::ffff:0:0/96 (mapped), 64:ff9b::/96 (NAT64, RFC 6052) and
     * 2002::/16 (6to4, RFC 3056): a gateway would reach the IPv4 address for us. */
    if (memcmp(b, zero, 12) == 0 || memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return ipv4_allowed(be32(b + 12), allow_loopback);
    if (b[0] == 0x20 && b[1] == 0x02)
        return ipv4_allowed(be32(b + 2), allow_loopback);
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return 0;
    if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) /* fe80::/10 link-local, fec0::/10 site-local */
        return 0;
    if (b[0] == 0xff) /* multicast */
        return 0;
    return 1;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    fetch *f = arg;
    (void)purpose;
    if (!addr_allowed(&a->addr, f->allow_loopback)) {
        f->blocked = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* The URL rules; *why gets a static reason. */
static int url_ok(const char *url, int allow_loopback, const char **why)
{
    struct evhttp_uri *u;
    const char *path;
    int ok = 0;
    if (strlen(url) > AZ_URI_MAX || strchr(url, '#')) {
        *why = "the client_id URL is too long or has a fragment";
        return 0;
    }
    u = evhttp_uri_parse_with_flags(url, 0);
    if (!u) {
        *why = "the client_id URL does not parse";
        return 0;
    }
    path = evhttp_uri_get_path(u);
    if (!evhttp_uri_get_scheme(u)) /* a relative reference parses too (fuzz/cimd/corpus/relative) */
        *why = "the client_id URL must be an absolute https URL";
    else if (evhttp_uri_get_userinfo(u))
        *why = "the client_id URL has user information";
    else if (!path || strlen(path) < 2)
        *why = "the client_id URL must have a path";
    else if (strstr(path, "/./") || strstr(path, "/../"))
        *why = "the client_id URL has dot segments";
    else if (strcmp(evhttp_uri_get_scheme(u), "https") == 0 ||
             (allow_loopback && strcmp(evhttp_uri_get_scheme(u), "http") == 0 &&
              evhttp_uri_get_host(u) && strcmp(evhttp_uri_get_host(u), "127.0.0.1") == 0))
        ok = 1;
    else
        *why = "the client_id URL must use https";
    evhttp_uri_free(u);
    return ok;
}

/* Validates the document into out. */
static int doc_ok(const char *url, const char *body, size_t len, az_client *out, const char **why)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *ru;
    const char *id, *name, *method;
    int ok = 0;
    memset(out, 0, sizeof *out);
    if (!json_is_object(o)) {
        *why = "the metadata document is not a JSON object";
        goto out;
    }
    id = json_string_value(json_object_get(o, "client_id"));
    if (!id || strcmp(id, url) != 0) {
        *why = "the metadata document's client_id is not its URL";
        goto out;
    }
    method = json_string_value(json_object_get(o, "token_endpoint_auth_method"));
    if (method && strcmp(method, "none") != 0) {
        *why = "only public clients (token_endpoint_auth_method none) are supported";
        goto out;
    }
    ru = json_object_get(o, "redirect_uris");
    if (!json_is_array(ru) || json_array_size(ru) == 0 || json_array_size(ru) > AZ_MAX_REDIRECTS) {
        *why = "redirect_uris must be an array of 1 to 8 URIs";
        goto out;
    }
    for (size_t i = 0; i < json_array_size(ru); i++) {
        const char *r = json_string_value(json_array_get(ru, i));
        if (!r) {
            *why = "redirect_uris must contain only strings";
            goto out;
        }
        if (az_redirect_uri_valid(r, why) != PL_OK)
            goto out;
        snprintf(out->redirect_uris[out->nredirect++], AZ_URI_MAX + 1, "%s", r);
    }
    name = json_string_value(json_object_get(o, "client_name"));
    if (name) {
        size_t n = strlen(name);
        for (size_t i = 0; name && i < n; i++) /* stop at the first: name[i] after NULL crashed */
            if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
                name = NULL;
        if (!name || n == 0 || n > AZ_NAME_MAX)
            name = NULL;
    }
    snprintf(out->id, sizeof out->id, "%s", url);
    if (name)
        snprintf(out->name, sizeof out->name, "%s", name);
    else
        az_uri_host(url, out->name, sizeof out->name);
    out->kind = AZ_CLIENT_CIMD;
    out->auth = AZ_AUTH_NONE;
    snprintf(out->cls, sizeof out->cls, "%s", pol_class_name(POL_CLASS_CIMD));
    ok = 1;
out:
    json_decref(o);
    return ok;
}

/* Fetches and validates the document (any thread: touches neither the store nor the server).
 * With a cached copy that has an ETag, the request is conditional (If-None-Match) and a 304
 * keeps the cached client. *ttl_s gets the cache lifetime. */
static pl_rc fetch_doc(int allow_loopback, const char *url, const az_client *cached, az_client *out,
                       long *ttl_s, const char **why)
{
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    fetch f = {.max_age = -1, .allow_loopback = allow_loopback};
    long status = 0, ttl;
    CURLcode cc;
    pl_rc rc = PL_ERR_NOT_FOUND;

    *why = "the metadata document could not be fetched";
    core_buf_init(&f.body, CIMD_MAX_BYTES);
    if (!url_ok(url, f.allow_loopback, why))
        goto out;
    c = curl_easy_init();
    if (!c)
        goto out;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, f.allow_loopback ? "https,http" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* Never through a proxy from the environment (http_proxy, https_proxy, all_proxy):
     * open_socket() judges the peer it connects to, and a proxy would fetch any address,
     * internal ones included, on our behalf. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CIMD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CIMD_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CIMD_MAX_BYTES);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &f);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "postly-authz (client metadata)");
    if (cached && cached->etag[0]) {
        char h[160];
        snprintf(h, sizeof h, "If-None-Match: %s", cached->etag);
        hdrs = curl_slist_append(NULL, h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    }
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (f.blocked) {
        *why = "the client_id URL resolves to a private or loopback address";
        goto out;
    }
    if (f.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        *why = "the metadata document is larger than 64 KiB";
        goto out;
    }
    if (cc == CURLE_OK && status == 304 && cached && cached->etag[0]) {
        *out = *cached; /* not modified: the validated copy stays */
    } else if (cc != CURLE_OK || status != 200) {
        *why = "the metadata document could not be fetched (network error or not 200)";
        goto out;
    } else {
        if (!doc_ok(url, f.body.p ? f.body.p : "", f.body.len, out, why))
            goto out;
        snprintf(out->etag, sizeof out->etag, "%s", f.etag);
    }
    ttl = f.max_age < 0 ? CIMD_TTL_DEFAULT : f.max_age;
    if (ttl < CIMD_TTL_MIN_S)
        ttl = CIMD_TTL_MIN_S;
    if (ttl > CIMD_TTL_MAX_S)
        ttl = CIMD_TTL_MAX_S;
    *ttl_s = ttl;
    *why = NULL;
    rc = PL_OK;
out:
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    core_buf_free(&f.body);
    return rc;
}

/* ---- asynchronous fetches ---------------------------------------------------------------
 * The fetch runs on a worker thread (worker.h); the request that needed the client is
 * deferred meanwhile, so a slow or hostile metadata server never stalls the event loop. */
typedef struct cimd_job {
    char url[AZ_CLIENT_ID_MAX + 1];
    int allow_loopback;
    int has_cached;
    az_client cached;
    az_client c;
    long ttl_s;
    pl_rc rc;
    const char *why;
    az_cimd_done_fn done;
    void *arg;
} cimd_job;

static void job_work(void *arg)
{
    cimd_job *j = arg;
    j->rc = fetch_doc(j->allow_loopback, j->url, j->has_cached ? &j->cached : NULL, &j->c,
                      &j->ttl_s, &j->why);
}

static void job_done(az_server *s, void *arg)
{
    cimd_job *j = arg;
    if (j->rc == PL_OK) {
        j->c.created_ms = core_clock_now_ms(s->cfg.clock);
        j->c.expires_ms = j->c.created_ms + (int64_t)j->ttl_s * 1000;
        j->rc = az_client_put(s->store, &j->c);
    } else {
        core_log_warn(s->log, "authz: client metadata document refused: %s", j->why);
    }
    j->done(s, j->arg, j->rc);
    free(j);
}

int az_cimd_is_url(const az_server *s, const char *client_id)
{
    return strncmp(client_id, "https://", 8) == 0 ||
           (s->cfg.cimd_allow_loopback && strncmp(client_id, "http://127.0.0.1:", 17) == 0);
}

pl_rc az_cimd_fetch_async(az_server *s, const char *url, az_cimd_done_fn done, void *arg)
{
    cimd_job *j;
    pl_rc rc;
    if (strlen(url) > AZ_CLIENT_ID_MAX)
        return PL_ERR_INVALID;
    j = calloc(1, sizeof *j);
    if (!j)
        return PL_ERR_NOMEM;
    snprintf(j->url, sizeof j->url, "%s", url);
    j->allow_loopback = s->cfg.cimd_allow_loopback;
    j->has_cached =
        az_client_get(s->store, url, &j->cached) == PL_OK && j->cached.kind == AZ_CLIENT_CIMD;
    j->done = done;
    j->arg = arg;
    rc = az_work_submit(s, job_work, job_done, j);
    if (rc != PL_OK)
        free(j);
    return rc;
}
