/*
 * fuzz/cimd/fuzz_cimd.c — libFuzzer target for the Client ID Metadata Document checks of
 * postly-authz (authz/cimd.c): the client_id URL rules (url_ok), the response header parsing
 * (on_header: ETag and Cache-Control max-age) and the document validator (doc_ok). These are
 * static in cimd.c, so the file is included here (no network: fetch_doc is never called).
 *
 * Input: "<url>\n<header line>\n...\n\n<document body>". Properties checked on every input:
 *  - an accepted URL is https (or http://127.0.0.1 with the test option) and ≤ 512 bytes;
 *  - a kept ETag is printable ASCII without spaces (it goes back into a request header);
 *  - an accepted document has client_id == URL, 1..8 redirect URIs that each pass the
 *    registration rules, a NUL-terminated name without control characters, class "cimd".
 */
/* Compiled in whole to reach its static validators without widening authz/cimd.h. */
#include "authz/cimd.c" // NOLINT(bugprone-suspicious-include)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t line_end(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    return nl ? (size_t)(nl - p) : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *why = NULL;
    size_t n = size, k = line_end(p, n);
    char url[1024];
    fetch f = {.max_age = -1};
    az_client c;

    if (k >= sizeof url)
        return 0;
    memcpy(url, p, k);
    url[k] = '\0';
    p += k < n ? k + 1 : k;
    n -= k < n ? k + 1 : k;

    for (int loop = 0; loop < 2; loop++) {
        why = NULL;
        if (url_ok(url, loop, &why)) {
            if (strlen(url) > AZ_URI_MAX || strchr(url, '#'))
                __builtin_trap();
            if (strncmp(url, "https:", 6) != 0 && !(loop && strncmp(url, "http:", 5) == 0))
                __builtin_trap();
        } else if (!why) {
            __builtin_trap(); /* every refusal names its reason */
        }
    }
    /* Header lines until an empty one (as libcurl hands them over: one line with its CRLF). */
    while (n > 0) {
        k = line_end(p, n);
        if (k == 0 || (k == 1 && p[0] == '\r')) {
            p += k < n ? k + 1 : k;
            n -= k < n ? k + 1 : k;
            break;
        }
        if (on_header((char *)p, 1, k < n ? k + 1 : k, &f) != (k < n ? k + 1 : k))
            __builtin_trap();
        for (const char *e = f.etag; *e; e++)
            if ((unsigned char)*e <= 0x20 || (unsigned char)*e >= 0x7f)
                __builtin_trap();
        p += k < n ? k + 1 : k;
        n -= k < n ? k + 1 : k;
    }
    why = NULL;
    if (doc_ok(url, p, n, &c, &why)) {
        if (strcmp(c.id, url) != 0 || c.nredirect < 1 || c.nredirect > AZ_MAX_REDIRECTS ||
            c.kind != AZ_CLIENT_CIMD || c.auth != AZ_AUTH_NONE || strcmp(c.cls, "cimd") != 0)
            __builtin_trap();
        for (size_t i = 0; i < c.nredirect; i++) {
            const char *w = NULL;
            if (az_redirect_uri_valid(c.redirect_uris[i], &w) != PL_OK)
                __builtin_trap();
        }
        if (memchr(c.name, '\0', sizeof c.name) == NULL)
            __builtin_trap();
        for (const char *e = c.name; *e; e++)
            if ((unsigned char)*e < 0x20 || *e == 0x7f)
                __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    return 0;
}
