/* authz/pages.c — HTML templates from web/ (loaded once at start), rendering with escaping,
 * and the static CSS/JS. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The page CSP: nothing but our own CSS and JS; no inline script or style, no framing.
 * No form-action: Chrome applies it to the redirect after the consent POST, which goes to
 * the client's redirect URI. */
static const char page_csp[] = "default-src 'none'; style-src 'self'; script-src 'self'; "
                               "img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

static const char *const template_names[] = {"layout", "login", "consent", "error", "apps"};

static pl_rc read_file(const char *dir, const char *name, char **out, size_t *len)
{
    char path[1200];
    FILE *fp;
    core_buf b;
    char chunk[4096];
    size_t n;
    pl_rc rc = PL_OK;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "rb");
    if (!fp)
        return PL_ERR_IO;
    core_buf_init(&b, AZ_PAGE_MAX);
    while (rc == PL_OK && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        rc = core_buf_add(&b, chunk, n);
    fclose(fp);
    if (rc == PL_OK)
        rc = core_buf_take(&b, out, len);
    core_buf_free(&b);
    return rc;
}

pl_rc az_pages_load(az_server *s)
{
    for (size_t i = 0; i < sizeof template_names / sizeof template_names[0]; i++) {
        char file[64];
        snprintf(file, sizeof file, "%s.html", template_names[i]);
        s->templates[i].name = template_names[i];
        if (read_file(s->web_dir, file, &s->templates[i].text, NULL) != PL_OK) {
            core_log_error(s->log, "authz: cannot read template %s/%s", s->web_dir, file);
            return PL_ERR_IO;
        }
        s->ntemplates = i + 1;
    }
    if (read_file(s->web_dir, "authz.css", &s->css, &s->css_len) != PL_OK ||
        read_file(s->web_dir, "consent.js", &s->js, &s->js_len) != PL_OK) {
        core_log_error(s->log, "authz: cannot read %s/authz.css or consent.js", s->web_dir);
        return PL_ERR_IO;
    }
    return PL_OK;
}

void az_pages_free(az_server *s)
{
    for (size_t i = 0; i < s->ntemplates; i++)
        free(s->templates[i].text);
    s->ntemplates = 0;
    free(s->css);
    free(s->js);
    s->css = s->js = NULL;
}

static const char *template_text(az_server *s, const char *name)
{
    for (size_t i = 0; i < s->ntemplates; i++)
        if (strcmp(s->templates[i].name, name) == 0)
            return s->templates[i].text;
    return NULL;
}

/* Expands {{name}} (escaped) and {{{name}}} (raw) of tpl into b. */
static pl_rc expand(core_buf *b, const char *tpl, const az_var *vars, size_t nvars)
{
    pl_rc rc = PL_OK;
    const char *p = tpl;
    while (rc == PL_OK && *p) {
        const char *open = strstr(p, "{{"), *close;
        int raw;
        size_t nlen;
        if (!open)
            return core_buf_adds(b, p);
        rc = core_buf_add(b, p, (size_t)(open - p));
        raw = open[2] == '{';
        open += raw ? 3 : 2;
        close = strstr(open, raw ? "}}}" : "}}");
        if (!close)
            return PL_ERR_PARSE;
        nlen = (size_t)(close - open);
        for (size_t i = 0; rc == PL_OK && i < nvars; i++) {
            if (strlen(vars[i].name) != nlen || memcmp(vars[i].name, open, nlen) != 0)
                continue;
            const char *v = vars[i].value ? vars[i].value : "";
            /* A raw placeholder only takes values the server marked raw. */
            rc = raw && vars[i].raw ? core_buf_adds(b, v) : core_buf_add_html(b, v, strlen(v));
            break;
        }
        p = close + (raw ? 3 : 2);
    }
    return rc;
}

void az_page_reply(az_server *s, core_http_req *req, int status, const char *title,
                   const char *name, const az_var *vars, size_t nvars)
{
    core_buf body, page;
    const char *tpl = template_text(s, name), *layout = template_text(s, "layout");
    pl_rc rc = PL_OK;
    core_buf_init(&body, AZ_PAGE_MAX);
    core_buf_init(&page, AZ_PAGE_MAX);
    if (!tpl || !layout)
        rc = PL_ERR_INTERNAL;
    if (rc == PL_OK)
        rc = expand(&body, tpl, vars, nvars);
    if (rc == PL_OK) {
        az_var lv[] = {{"title", title, 0}, {"body", body.p ? body.p : "", 1}};
        rc = expand(&page, layout, lv, 2);
    }
    if (rc != PL_OK) {
        core_log_error(s->log, "authz: page %s could not be rendered (%s)", name, pl_strerror(rc));
        core_http_reply_text(req, 500, "The page could not be rendered.");
    } else {
        core_http_header_add(req, "Content-Security-Policy", page_csp);
        core_http_secure(req, CORE_HTTP_SEC_PAGE);
        core_http_reply_html(req, status, page.p, page.len);
    }
    core_buf_free(&body);
    core_buf_free(&page);
}

void az_error_page(az_server *s, core_http_req *req, int status, const char *title,
                   const char *detail)
{
    az_var v[] = {{"heading", title, 0}, {"detail", detail, 0}};
    az_page_reply(s, req, status, title, "error", v, 2);
}

void az_h_static(core_http_req *req, void *arg)
{
    az_server *s = arg;
    int css = strcmp(core_http_path(req), "/static/authz.css") == 0;
    core_http_header_add(req, "Cache-Control", "public, max-age=300");
    if (css)
        core_http_reply_body(req, 200, "text/css; charset=utf-8", s->css, s->css_len);
    else
        core_http_reply_body(req, 200, "text/javascript; charset=utf-8", s->js, s->js_len);
}
