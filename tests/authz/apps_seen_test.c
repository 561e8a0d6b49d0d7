/* tests/authz/apps_seen_test.c (CTest authz_apps_seen) — the connected-apps page shows the
 * last MCP call of a grant: postly-authz in-process on port 0 issues two real grants (login,
 * consent, code, token), the real postly-mcp binary serves calls with grant A's token over
 * loopback, and the /apps page (HTTP, signed in) then shows A's last call and "never" for B.
 *
 * Processes: this one holds postly-authz's store; postly-mcp (a child) opens the directory
 * read-only and writes <data>/seen; the page reads <data>/seen read-only here (seen.h).
 * Synchronisation without sleeps: postly-mcp is stopped (SIGTERM, waitpid) before the page
 * is read, and writes its pending last-call times on the way out (az_seen_free). The
 * periodic path (flush timer, writer thread, interval) is covered by test_seen.c with given
 * times. The authz clock is a fake one set to the real time (postly-mcp checks the tokens'
 * times against its real clock), then moved forward to check the "ago" wording. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "authz/seen.h"
#include "authz/store.h"
#include "core/buf.h"
#include "flow.h"

#define MCP_HOST "mcp.example"

#define INIT                                                                                       \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"     \
    "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}"
#define CALL                                                                                       \
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"                \
    "\"postly_get_workspace\",\"arguments\":{}}}"

typedef struct grant {
    char at[4096];
    char gid[AZ_ID_MAX + 1];
} grant;

/* A grant of alice's for cli-public in workspace ws: code flow and token exchange. */
static void new_grant(tsrv *t, const char *ws, grant *g, char cookie[128])
{
    char code[64], body[1024];
    int st;
    json_t *j, *p;
    t_approve(t, "&resource=https%3A%2F%2Fmcp.example%2Fmcp&scope=workspace%3Aread", ws,
              "workspace:read", code, cookie);
    snprintf(body, sizeof body,
             "grant_type=authorization_code&client_id=cli-public&code=%s&redirect_uri="
             "https%%3A%%2F%%2Fapp.example%%2Fcb&code_verifier=" T_VERIFIER,
             code);
    j = t_token(t, body, NULL, &st);
    assert_int_equal(st, 200);
    snprintf(g->at, sizeof g->at, "%s", json_string_value(json_object_get(j, "access_token")));
    json_decref(j);
    p = t_jwt_payload(g->at);
    assert_non_null(p);
    snprintf(g->gid, sizeof g->gid, "%s", json_string_value(json_object_get(p, "gid")));
    json_decref(p);
    assert_true(az_id_valid(g->gid));
}

/* Starts postly-mcp on this data directory, trusting this issuer; returns its pid, *port. */
static pid_t mcp_start(const tsrv *t, int *port)
{
    char issuer[64], line[32];
    const char *argv[24];
    size_t n = 0;
    int out[2];
    pid_t pid;
    FILE *fp;
    snprintf(issuer, sizeof issuer, "http://127.0.0.1:%d", (int)az_server_port(t->srv));
    argv[n++] = POSTLY_MCP_BIN;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--print-port";
    argv[n++] = "--url";
    argv[n++] = T_RESOURCE;
    argv[n++] = "--authz";
    argv[n++] = issuer;
    argv[n++] = "--data";
    argv[n++] = t->dir;
    argv[n++] = "--policy";
    argv[n++] = POSTLY_SOURCE_DIR "/policy/default.policy";
    argv[n++] = "--log-level";
    argv[n++] = "error";
    argv[n++] = "--no-scheduler";
    argv[n++] = "--no-webhooks";
    argv[n] = NULL;
    assert_int_equal(pipe(out), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    fp = fdopen(out[0], "r");
    *port = 0;
    if (fgets(line, sizeof line, fp))
        *port = (int)strtol(line, NULL, 10);
    fclose(fp);
    assert_true(*port > 0);
    return pid;
}

static void mcp_stop(pid_t pid)
{
    int st;
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* POST /mcp with grant g's token; returns the status, the session id into sid. */
static int mcp_post(tsrv *t, int port, const grant *g, const char *sid, const char *body,
                    char sid_out[128])
{
    char auth[4200];
    const char *h[16];
    size_t n = 0;
    core_http_fetch_req q;
    core_http_fetch_resp r;
    const char *got;
    int status;
    snprintf(auth, sizeof auth, "Bearer %s", g->at);
    h[n++] = "Host";
    h[n++] = MCP_HOST;
    h[n++] = "Content-Type";
    h[n++] = "application/json";
    h[n++] = "Accept";
    h[n++] = "application/json, text/event-stream";
    h[n++] = "Authorization";
    h[n++] = auth;
    if (sid) {
        h[n++] = "MCP-Session-Id";
        h[n++] = sid;
    }
    h[n] = NULL;
    memset(&q, 0, sizeof q);
    q.method = "POST";
    q.host = "127.0.0.1";
    q.port = (uint16_t)port;
    q.target = "/mcp";
    q.headers = h;
    q.body = body;
    q.body_len = strlen(body);
    memset(&r, 0, sizeof r);
    assert_int_equal(core_http_fetch(t->base, &q, &r), PL_OK);
    status = r.status;
    if (sid_out) {
        got = core_http_fetch_header(&r, "MCP-Session-Id");
        snprintf(sid_out, 128, "%s", got ? got : "");
    }
    core_http_fetch_resp_free(&r);
    return status;
}

/* The <tr> of grant gid in the apps page (its Disconnect form names the gid), into row. */
static void row_of(const tresp *page, const char *gid, char *row, size_t rowsz)
{
    char pat[128];
    const char *body = page->r.body.p, *hit, *start, *end;
    snprintf(pat, sizeof pat, "name=\"gid\" value=\"%s\"", gid);
    hit = strstr(body, pat);
    assert_non_null(hit);
    start = hit;
    while (start > body && strncmp(start, "<tr>", 4) != 0)
        start--;
    end = strstr(hit, "</tr>");
    assert_non_null(end);
    assert_true((size_t)(end - start) < rowsz);
    snprintf(row, rowsz, "%.*s", (int)(end - start), start);
}

/* The data-ms of the "Last MCP call" cell of a row; -1 when the cell has none. */
static int64_t row_seen_ms(const char *row)
{
    const char *p = strstr(row, "<td class=\"seen\" data-ms=\"");
    if (!p)
        return -1;
    return strtoll(p + strlen("<td class=\"seen\" data-ms=\""), NULL, 10);
}

static void get_apps(tsrv *t, const char *cookie, tresp *page)
{
    t_req(t, "GET", "/apps", NULL, cookie, NULL, page);
    assert_int_equal(page->r.status, 200);
    /* The page keeps its protections (docs/authz.md "Endpoints"). */
    assert_string_equal(core_http_fetch_header(&page->r, "X-Frame-Options"), "DENY");
    assert_string_equal(core_http_fetch_header(&page->r, "Cache-Control"), "no-store");
    assert_non_null(strstr(core_http_fetch_header(&page->r, "Content-Security-Policy"),
                           "frame-ancestors 'none'"));
}

static void test_apps_show_last_mcp_call(void **state)
{
    tsrv t;
    grant a, b;
    char cookie[128], sid[128], row[8192], when[40];
    tresp page;
    int port;
    pid_t pid;
    int64_t before, after, ms;
    time_t tt;
    struct tm tm;
    (void)state;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    tsrv_start(&t, 1);
    t.clock.now_ms = core_clock_now_ms(core_clock_real());
    new_grant(&t, "acme", &a, cookie);
    new_grant(&t, "beta", &b, cookie);
    assert_string_not_equal(a.gid, b.gid);

    /* Before postly-mcp ever ran: no <data>/seen, both "never", and no error. */
    get_apps(&t, cookie, &page);
    row_of(&page, a.gid, row, sizeof row);
    assert_int_equal(row_seen_ms(row), 0);
    assert_non_null(strstr(row, ">never</td>"));
    assert_non_null(strstr(page.r.body.p, "Last MCP call"));
    assert_non_null(strstr(page.r.body.p, "Last token issued"));
    t_free(&page);

    /* Real calls with grant A's token. */
    pid = mcp_start(&t, &port);
    before = core_clock_now_ms(core_clock_real());
    assert_int_equal(mcp_post(&t, port, &a, NULL, INIT, sid), 200);
    assert_true(sid[0]);
    assert_int_equal(mcp_post(&t, port, &a, sid, CALL, NULL), 200);
    after = core_clock_now_ms(core_clock_real());
    mcp_stop(pid); /* writes the pending last-call times */

    get_apps(&t, cookie, &page);
    row_of(&page, a.gid, row, sizeof row);
    ms = row_seen_ms(row);
    assert_true(ms >= before);
    assert_true(ms <= after);
    /* The displayed minute is that time's. */
    tt = (time_t)(ms / 1000);
    assert_non_null(gmtime_r(&tt, &tm));
    assert_true(strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm) > 0);
    assert_non_null(strstr(row, when));
    assert_non_null(strstr(row, "Acme &lt;Inc&gt;")); /* still escaped */
    row_of(&page, b.gid, row, sizeof row);
    assert_int_equal(row_seen_ms(row), 0);
    assert_non_null(strstr(row, ">never</td>"));
    t_free(&page);

    /* Three minutes later (the authz clock), the page says so. */
    t.clock.now_ms = ms + (int64_t)3 * 60000 + 5000;
    get_apps(&t, cookie, &page);
    row_of(&page, a.gid, row, sizeof row);
    assert_int_equal(row_seen_ms(row), ms);
    assert_non_null(strstr(row, "3 minutes ago"));
    t_free(&page);

    /* A call with B's token: B gets its own time, A keeps its own. */
    pid = mcp_start(&t, &port);
    before = core_clock_now_ms(core_clock_real());
    assert_int_equal(mcp_post(&t, port, &b, NULL, INIT, sid), 200);
    after = core_clock_now_ms(core_clock_real());
    mcp_stop(pid);
    {
        const char *g[2] = {a.gid, b.gid};
        int64_t out[2];
        assert_int_equal(az_seen_read(t.dir, g, 2, out), PL_OK);
        assert_int_equal(out[0], ms);
        assert_true(out[1] >= before && out[1] <= after);
    }

    /* A refused token (its grant disconnected) records nothing. */
    assert_int_equal(az_grant_revoke(az_server_store(t.srv), a.gid), PL_OK);
    pid = mcp_start(&t, &port);
    assert_int_equal(mcp_post(&t, port, &a, NULL, INIT, NULL), 401);
    mcp_stop(pid);
    {
        const char *g[1] = {a.gid};
        int64_t out[1];
        assert_int_equal(az_seen_read(t.dir, g, 1, out), PL_OK);
        assert_true(out[0] == ms || out[0] == 0); /* kept, or purged as gone */
    }
    tsrv_stop(&t);
}

/* --seen-interval (POSTLY_MCP_SEEN_INTERVAL) takes 1..3600 seconds; anything else is a usage
 * error naming the option, before anything is opened. */
static void test_seen_interval_option(void **state)
{
    static const char *const bad[][2] = {{"--seen-interval", "0"},
                                         {"--seen-interval", "3601"},
                                         {"--seen-interval", "1m"},
                                         {"--seen-interval", ""}};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 1; i++) {
        int errp[2], st;
        char msg[512] = "";
        ssize_t got;
        pid_t pid;
        assert_int_equal(pipe(errp), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(errp[1], 2);
            close(errp[0]);
            close(errp[1]);
            if (i < sizeof bad / sizeof bad[0]) {
                execl(POSTLY_MCP_BIN, POSTLY_MCP_BIN, "--data", "/nonexistent", bad[i][0],
                      bad[i][1], (char *)NULL);
            } else {
                setenv("POSTLY_MCP_SEEN_INTERVAL", "-5", 1);
                execl(POSTLY_MCP_BIN, POSTLY_MCP_BIN, "--data", "/nonexistent", (char *)NULL);
            }
            _exit(127);
        }
        close(errp[1]);
        got = read(errp[0], msg, sizeof msg - 1);
        msg[got > 0 ? got : 0] = '\0';
        close(errp[0]);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
        assert_non_null(strstr(msg, i < sizeof bad / sizeof bad[0] ? "--seen-interval"
                                                                   : "POSTLY_MCP_SEEN_INTERVAL"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apps_show_last_mcp_call),
        cmocka_unit_test(test_seen_interval_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
