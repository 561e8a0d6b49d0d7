/* tests/authz/test_cimd.c — Client ID Metadata Documents: documents served by a child process
 * on 127.0.0.1 (the server runs with the loopback test option), and the refusals: client_id
 * mismatch, oversized, redirects, confidential clients, bad redirect URIs, and without the
 * test option: http and loopback/private addresses (SSRF). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/http.h>

#include "authz/store.h"
#include "core/http.h"
#include "flow.h"

static int doc_port;

static void serve_doc(core_http_req *req, void *arg)
{
    const char *path = core_http_path(req), *host = core_http_header(req, "Host");
    char body[1024];
    (void)arg;
    if (strcmp(path, "/big.json") == 0) {
        static char big[100 * 1024];
        memset(big, ' ', sizeof big);
        big[0] = '{';
        big[sizeof big - 1] = '}';
        core_http_reply_body(req, 200, "application/json", big, sizeof big);
        return;
    }
    if (strcmp(path, "/etag.json") == 0) {
        const char *inm = core_http_header(req, "If-None-Match");
        if (inm && strcmp(inm, "\"v1\"") == 0) {
            core_http_header_add(req, "ETag", "\"v1\"");
            core_http_header_add(req, "Cache-Control", "max-age=900");
            core_http_reply_empty(req, 304);
            return;
        }
        core_http_header_add(req, "ETag", "\"v1\"");
    }
    if (strcmp(path, "/slow.json") == 0)
        sleep(1); /* a slow metadata server (in the child process) */
    if (strcmp(path, "/redirect.json") == 0) {
        core_http_reply_redirect(req, 302, "/good.json");
        return;
    }
    snprintf(body, sizeof body,
             "{\"client_id\":\"http://%.64s%s\",\"client_name\":\"Doc <Client>\","
             "\"redirect_uris\":[\"%s\"],\"token_endpoint_auth_method\":\"%s\"}",
             host ? host : "", strcmp(path, "/mismatch.json") == 0 ? "/other.json" : path,
             strcmp(path, "/badredirect.json") == 0 ? "http://evil.example/cb"
                                                    : "http://127.0.0.1/cb",
             strcmp(path, "/conf.json") == 0 ? "client_secret_basic" : "none");
    core_http_header_add(req, "Cache-Control", "max-age=600");
    core_http_reply_body(req, 200, "application/json", body, strlen(body));
}

static const core_http_route doc_routes[] = {
    {CORE_HTTP_GET, "/good.json", serve_doc, 0}, {CORE_HTTP_GET, "/mismatch.json", serve_doc, 0},
    {CORE_HTTP_GET, "/big.json", serve_doc, 0},  {CORE_HTTP_GET, "/redirect.json", serve_doc, 0},
    {CORE_HTTP_GET, "/conf.json", serve_doc, 0}, {CORE_HTTP_GET, "/slow.json", serve_doc, 0},
    {CORE_HTTP_GET, "/etag.json", serve_doc, 0}, {CORE_HTTP_GET, "/badredirect.json", serve_doc, 0},
};

/* Forks the document server; returns its pid, sets doc_port. */
static pid_t start_docs(void)
{
    int fds[2];
    pid_t pid;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct event_base *b;
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a failing test */
        b = event_base_new();
        core_http *h = NULL;
        core_http_config cfg = {.host = "127.0.0.1"};
        core_log log = {NULL, CORE_LOG_OFF, "docs"};
        cfg.log = &log;
        if (!b || core_http_new(b, &cfg, &h) != PL_OK ||
            core_http_routes_add(h, doc_routes, sizeof doc_routes / sizeof doc_routes[0], NULL) !=
                PL_OK)
            _exit(1);
        doc_port = core_http_port(h);
        if (write(fds[1], &doc_port, sizeof doc_port) != sizeof doc_port)
            _exit(1);
        event_base_dispatch(b);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &doc_port, sizeof doc_port), (ssize_t)sizeof doc_port);
    close(fds[0]);
    return pid;
}

static void stop_docs(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static int authorize_status(tsrv *t, const char *client_url, tresp *r)
{
    char target[2048], enc[600];
    core_buf b;
    core_buf_init(&b, sizeof enc - 1);
    core_buf_add_urlenc(&b, client_url, strlen(client_url));
    snprintf(enc, sizeof enc, "%s", b.p);
    core_buf_free(&b);
    snprintf(target, sizeof target,
             "/authorize?response_type=code&client_id=%s&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%"
             "3A4321%%2Fcb"
             "&state=s&code_challenge=%s&code_challenge_method=S256&resource=https%%3A%%2F%%2Fmcp."
             "example%%2Fmcp",
             enc, t_challenge());
    t_req(t, "GET", target, NULL, NULL, NULL, r);
    return r->r.status;
}

static void test_cimd_documents(void **state)
{
    tsrv t;
    pid_t docs = start_docs();
    char url[256], cookie[128], rid[64];
    tresp r, page;
    az_client c;
    (void)state;
    tsrv_start_opts(&t, 1, 0, 1);
    /* Metadata advertises the feature. */
    t_req(&t, "GET", "/.well-known/oauth-authorization-server", NULL, NULL, NULL, &r);
    assert_non_null(strstr(r.r.body.p, "\"client_id_metadata_document_supported\":true"));
    t_free(&r);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/good.json", doc_port);
    assert_int_equal(authorize_status(&t, url, &r), 302);
    assert_int_equal(strncmp(core_http_fetch_header(&r.r, "Location"), "/login?rid=", 11), 0);
    t_free(&r);
    assert_int_equal(az_client_get(az_server_store(t.srv), url, &c), PL_OK);
    assert_int_equal(c.kind, AZ_CLIENT_CIMD);
    assert_string_equal(c.cls, "cimd");
    assert_string_equal(c.name, "Doc <Client>");
    /* max-age=600 honoured. */
    assert_int_equal(c.expires_ms - c.created_ms, 600 * 1000);
    /* The consent page names the document's host, escaped. */
    t_login_to_consent(&t, url, "http://127.0.0.1:4321/cb",
                       "&resource=https%3A%2F%2Fmcp.example%2Fmcp", cookie, rid, &page);
    assert_int_equal(page.r.status, 200);
    assert_non_null(strstr(page.r.body.p, "metadata document published at 127.0.0.1"));
    assert_non_null(strstr(page.r.body.p, "Doc &lt;Client&gt;"));
    t_free(&page);

    {
        static const char *const bad[] = {"/mismatch.json", "/big.json",         "/redirect.json",
                                          "/conf.json",     "/badredirect.json", "/missing.json"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(url, sizeof url, "http://127.0.0.1:%d%s", doc_port, bad[i]);
            assert_int_equal(authorize_status(&t, url, &r), 400);
            assert_non_null(strstr(r.r.body.p, "Unknown application"));
            assert_null(core_http_fetch_header(&r.r, "Location"));
            t_free(&r);
            assert_int_equal(az_client_get(az_server_store(t.srv), url, &c), PL_ERR_NOT_FOUND);
        }
    }
    tsrv_stop(&t);

    /* Without the test option: https only, and no loopback or private addresses. */
    tsrv_start_opts(&t, 1, 0, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/good.json", doc_port);
    assert_int_equal(authorize_status(&t, url, &r), 400);
    t_free(&r);
    {
        static const char *const ssrf[] = {
            "https://127.0.0.1:1/doc.json",  "https://10.0.0.1:1/doc.json",
            "https://[::1]:1/doc.json",      "https://169.254.169.254/latest.json",
            "https://192.168.1.1:1/x.json",  "https://example.com",
            "https://a.example/x.json#frag", "https://u:p@a.example/x.json"};
        for (size_t i = 0; i < sizeof ssrf / sizeof ssrf[0]; i++) {
            assert_int_equal(authorize_status(&t, ssrf[i], &r), 400);
            t_free(&r);
        }
    }
    tsrv_stop(&t);
    stop_docs(docs);
}

/* A stale document with an ETag is revalidated: the 304 (max-age 900) keeps the client. */
static void test_cimd_revalidation(void **state)
{
    tsrv t;
    pid_t docs = start_docs();
    char url[256];
    tresp r;
    az_client c;
    (void)state;
    tsrv_start_opts(&t, 1, 0, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/etag.json", doc_port);
    assert_int_equal(authorize_status(&t, url, &r), 302);
    t_free(&r);
    assert_int_equal(az_client_get(az_server_store(t.srv), url, &c), PL_OK);
    assert_string_equal(c.etag, "\"v1\"");
    assert_int_equal(c.expires_ms - c.created_ms, 600 * 1000);
    core_fake_clock_advance(&t.clock, 601000);
    assert_int_equal(authorize_status(&t, url, &r), 302);
    t_free(&r);
    assert_int_equal(az_client_get(az_server_store(t.srv), url, &c), PL_OK);
    assert_int_equal(c.expires_ms - c.created_ms, 900 * 1000); /* from the 304 */
    assert_string_equal(c.name, "Doc <Client>");
    tsrv_stop(&t);
    stop_docs(docs);
}

static void slow_done(struct evhttp_request *req, void *arg)
{
    int *status = arg;
    *status = req ? evhttp_request_get_response_code(req) : -1;
}

/* A slow metadata server does not stall the event loop: other requests are answered while
 * the /authorize that needs the document waits for it. */
static void test_cimd_fetch_does_not_block(void **state)
{
    tsrv t;
    pid_t docs = start_docs();
    char url[256], target[1024];
    int slow_status = 0;
    tresp r;
    struct evhttp_connection *con;
    struct evhttp_request *req;
    (void)state;
    tsrv_start_opts(&t, 1, 0, 1);
    snprintf(url, sizeof url, "http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fslow.json", doc_port);
    snprintf(target, sizeof target,
             "/authorize?response_type=code&client_id=%s&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%"
             "2Fcb&state=s&code_challenge=%s&code_challenge_method=S256&resource=https%%3A%%2F%%"
             "2Fmcp.example%%2Fmcp",
             url, t_challenge());
    con = evhttp_connection_base_new(t.base, NULL, "127.0.0.1", az_server_port(t.srv));
    req = evhttp_request_new(slow_done, &slow_status);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    assert_int_equal(evhttp_make_request(con, req, EVHTTP_REQ_GET, target), 0);
    t_req(&t, "GET", "/jwks", NULL, NULL, NULL, &r);
    assert_int_equal(r.r.status, 200);
    assert_int_equal(slow_status, 0); /* still waiting for the document */
    t_free(&r);
    while (slow_status == 0)
        event_base_loop(t.base, EVLOOP_ONCE);
    assert_int_equal(slow_status, 302);
    evhttp_connection_free(con);
    tsrv_stop(&t);
    stop_docs(docs);
}

/* A port nothing listens on (bound, read back, closed). */
static int closed_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* A proxy named by the environment is never used for documents: the address checks (SSRF)
 * judge the peer the fetch connects to, and through a proxy that would be the proxy, which
 * then fetches any address on our behalf. Here the "proxy" (the document server, which names
 * the document after the Host it is asked for) must not be reached. */
static void test_cimd_ignores_proxy_env(void **state)
{
    static const char *const vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                       "ALL_PROXY"};
    tsrv t;
    pid_t docs = start_docs();
    char url[256], proxy[64];
    tresp r;
    az_client c;
    (void)state;
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", doc_port);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        setenv(vars[i], proxy, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    tsrv_start_opts(&t, 1, 0, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/good.json", closed_port());
    assert_int_equal(authorize_status(&t, url, &r), 400);
    assert_null(core_http_fetch_header(&r.r, "Location"));
    t_free(&r);
    assert_int_equal(az_client_get(az_server_store(t.srv), url, &c), PL_ERR_NOT_FOUND);
    /* The document server itself still works directly. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/good.json", doc_port);
    assert_int_equal(authorize_status(&t, url, &r), 302);
    t_free(&r);
    tsrv_stop(&t);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    stop_docs(docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cimd_documents), cmocka_unit_test(test_cimd_fetch_does_not_block),
        cmocka_unit_test(test_cimd_revalidation), cmocka_unit_test(test_cimd_ignores_proxy_env)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
