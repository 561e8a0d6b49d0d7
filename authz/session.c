/* authz/session.c — the browser session cookie and CSRF tokens bound to session and
 * request (RFC 9700 §4.7: CSRF protection of the consent and login forms). */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

/* Finds the value of cookie `name` in a Cookie header. 0 when absent, -1 when present
 * twice (cookie tossing: treat as no session), 1 when found. */
static int cookie_find(const char *hdr, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    int found = 0;
    const char *p = hdr;
    while (p && *p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        if (len > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            if (found)
                return -1;
            found = 1;
            snprintf(out, outsz, "%.*s", (int)(len - nlen - 1), p + nlen + 1);
        }
        p = end ? end + 1 : NULL;
    }
    return found;
}

pl_rc az_session_of(az_server *s, core_http_req *req, char sid_out[AZ_SECRET_SIZE], az_session *out)
{
    const char *hdr = core_http_header(req, "Cookie");
    char sid[AZ_SECRET_SIZE + 8] = "";
    pl_rc rc = PL_ERR_NOT_FOUND;
    if (!hdr || core_http_header_count(req, "Cookie") > 1 ||
        cookie_find(hdr, AZ_COOKIE, sid, sizeof sid) != 1 || strlen(sid) != AZ_SECRET_LEN)
        goto out;
    if (az_session_get(s->store, sid, out) != PL_OK)
        goto out;
    if (sid_out)
        snprintf(sid_out, AZ_SECRET_SIZE, "%s", sid);
    rc = PL_OK;
out:
    core_wipe(sid, sizeof sid);
    return rc;
}

void az_session_cookie(az_server *s, core_http_req *req, const char *sid)
{
    char v[256];
    int secure = strncmp(s->issuer, "https://", 8) == 0;
    snprintf(v, sizeof v, "%s=%s; Path=/; HttpOnly; SameSite=Lax%s", AZ_COOKIE, sid,
             secure ? "; Secure" : "");
    core_http_header_add(req, "Set-Cookie", v);
    core_wipe(v, sizeof v);
}

pl_rc az_csrf_make(const az_session *ss, const char *purpose, const char *binding,
                   char out[AZ_SECRET_SIZE])
{
    uint8_t mac[CORE_SHA256_LEN];
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s|%s", purpose, binding ? binding : "");
    pl_rc rc;
    if (n < 0 || (size_t)n >= sizeof msg)
        return PL_ERR_TOO_LARGE;
    rc = core_hmac_sha256(ss->csrf_key, sizeof ss->csrf_key, msg, (size_t)n, mac);
    if (rc == PL_OK)
        rc = core_b64url_encode(mac, sizeof mac, out, AZ_SECRET_SIZE, NULL);
    core_wipe(mac, sizeof mac);
    return rc;
}

int az_csrf_check(const az_session *ss, const char *purpose, const char *binding, const char *token)
{
    char want[AZ_SECRET_SIZE];
    int ok;
    if (!token || strlen(token) != AZ_SECRET_LEN)
        return 0;
    ok = az_csrf_make(ss, purpose, binding, want) == PL_OK &&
         core_ct_equal(want, token, AZ_SECRET_LEN);
    core_wipe(want, sizeof want);
    return ok;
}
