/* authz/main.c — postly-authz: flags → az_config, one event loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "authz/server.h"
#include "core/http.h"
#include "core/log.h"

static const char usage[] =
    "usage: postly-authz [options]\n"
    "  --data DIR        data directory (default ./var); keys in DIR/keys, store in DIR/authz\n"
    "  --host HOST       listen address (default 127.0.0.1)\n"
    "  --port PORT       listen port (default 8080; 0 = any)\n"
    "  --issuer URL      issuer identifier (default http://HOST:PORT)\n"
    "  --resource URL    canonical URL of a resource server (repeatable;\n"
    "                    default http://127.0.0.1:8081/mcp)\n"
    "  --web DIR         page templates, CSS and JS (default: the source tree's web/)\n"
    "  --policy FILE     policy file for roles, ceilings and client classes\n"
    "                    (default: the source tree's policy/default.policy; 'none' = built-in)\n"
    "  --demo            on first start create user 'demo' (password printed once) and\n"
    "                    workspaces 'demo' and 'demo-readonly'\n"
    "  --access-ttl SECS access-token lifetime, 1..3600 seconds (default 600); refresh\n"
    "                    tokens are unaffected\n"
    "  --cimd-allow-loopback\n"
    "                    TESTING ONLY: also accept client metadata document URLs\n"
    "                    http://127.0.0.1:PORT/... (fetched over plain http from loopback);\n"
    "                    never use it on a deployed server (a warning is logged at start)\n"
    "  --log-level LVL   debug, info, warn, error (default info)\n"
    "  --inline-fsync    complete each group commit on the event loop thread (default: the\n"
    "                    meta-page fsync runs on a second thread)\n"
    "  --sign-on-loop    no second thread for signatures: each access token is signed in\n"
    "                    full on the event loop (default: a second thread precomputes the\n"
    "                    ECDSA nonces, most of a signature's work, ahead of the requests)\n"
    "  --unsafe-no-fsync commit without fsync (benchmarks only: a crash loses or corrupts\n"
    "                    acknowledged data)\n";

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* --access-ttl: a whole number of seconds in 1..3600 (an access token is short-lived; the
 * resource server cannot revoke it before it expires except through the grant revocation
 * list, docs/authz.md). */
static int parse_ttl(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > 3600)
        return -1;
    *out = v;
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    az_config cfg = {0};
    core_log log = {NULL, CORE_LOG_INFO, "authz"};
    struct event_base *base = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    az_server *srv = NULL;
    int demo = 0, ret = 1;
    pl_rc rc;

    cfg.data_dir = "var";
#ifdef POSTLY_DEFAULT_POLICY
    cfg.policy_path = POSTLY_DEFAULT_POLICY;
#endif
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--demo") == 0) {
            demo = 1;
            continue;
        }
        if (strcmp(a, "--inline-fsync") == 0) {
            cfg.inline_fsync = 1;
            continue;
        }
        if (strcmp(a, "--sign-on-loop") == 0) {
            cfg.sign_on_loop = 1;
            continue;
        }
        if (strcmp(a, "--cimd-allow-loopback") == 0) {
            cfg.cimd_allow_loopback = 1;
            continue;
        }
        if (strcmp(a, "--unsafe-no-fsync") == 0) {
            cfg.nosync = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "postly-authz: %s needs a value\n%s", a, usage);
            return 2;
        }
        i++;
        if (strcmp(a, "--data") == 0)
            cfg.data_dir = v;
        else if (strcmp(a, "--host") == 0)
            cfg.host = v;
        else if (strcmp(a, "--port") == 0) {
            if (parse_port(v, &cfg.port) != 0) {
                fprintf(stderr, "postly-authz: --port: '%s' is not a port number\n", v);
                return 2;
            }
        } else if (strcmp(a, "--access-ttl") == 0) {
            if (parse_ttl(v, &cfg.access_ttl_s) != 0) {
                fprintf(stderr,
                        "postly-authz: --access-ttl: '%.40s' is not a number of seconds in "
                        "1..3600\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "--issuer") == 0)
            cfg.issuer = v;
        else if (strcmp(a, "--resource") == 0) {
            if (cfg.nresources == AZ_MAX_RESOURCES) {
                fprintf(stderr, "postly-authz: at most %d --resource\n", AZ_MAX_RESOURCES);
                return 2;
            }
            cfg.resources[cfg.nresources++] = v;
        } else if (strcmp(a, "--web") == 0)
            cfg.web_dir = v;
        else if (strcmp(a, "--policy") == 0)
            cfg.policy_path = strcmp(v, "none") == 0 ? NULL : v;
        else if (strcmp(a, "--log-level") == 0) {
            int l = core_log_level_parse(v);
            if (l < 0) {
                fprintf(stderr, "postly-authz: --log-level: unknown level '%s'\n", v);
                return 2;
            }
            log.level = (core_log_level)l;
        } else {
            fprintf(stderr, "postly-authz: unknown option %s\n%s", a, usage);
            return 2;
        }
    }
    if (cfg.nresources == 0)
        cfg.resources[cfg.nresources++] = "http://127.0.0.1:8081/mcp";
    cfg.log = &log;
    if (cfg.cimd_allow_loopback)
        core_log_warn(&log, "--cimd-allow-loopback: client metadata documents are fetched from "
                            "http://127.0.0.1 too; this option is for tests only, never for a "
                            "deployed server");

    /* Before any other thread exists (the syncer; curl fetches client metadata documents). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    base = core_http_base_new(); /* epoll changelist: fewer epoll_ctl per request (core/http.h) */
    if (!base)
        goto out;
    rc = az_server_new(base, &cfg, &srv);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-authz: cannot start: %s (see the log above)\n", pl_strerror(rc));
        goto out;
    }
    if (demo) {
        char pw[64];
        rc = az_demo_seed(az_server_store(srv), pw, sizeof pw);
        if (rc == PL_OK) {
            /* Printed once, to stdout only; never logged. */
            printf("postly-authz: demo user created: username demo, password %s\n", pw);
            printf("postly-authz: (shown once; change it with: postly-admin --data %s users "
                   "passwd demo)\n",
                   cfg.data_dir);
        } else if (rc == PL_ERR_EXISTS) {
            printf("postly-authz: demo user 'demo' already exists (its password was shown at the "
                   "first start; set a new one with: postly-admin --data %s users passwd demo)\n",
                   cfg.data_dir);
        } else {
            fprintf(stderr, "postly-authz: demo data: %s\n", pl_strerror(rc));
            goto out;
        }
        memset(pw, 0, sizeof pw);
    }
    printf("postly-authz: listening on %s (metadata %s/.well-known/oauth-authorization-server, "
           "connected apps %s/apps)\n",
           az_server_issuer(srv), az_server_issuer(srv), az_server_issuer(srv));
    fflush(stdout);
    core_log_info(&log, "listening issuer=%s", az_server_issuer(srv));
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (!sigint || !sigterm || event_add(sigint, NULL) != 0 || event_add(sigterm, NULL) != 0)
        goto out;
    signal(SIGPIPE, SIG_IGN);
    event_base_dispatch(base);
    core_log_info(&log, "stopping");
    ret = 0;
out:
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    az_server_free(srv);
    if (base)
        event_base_free(base);
    curl_global_cleanup();
    return ret;
}
