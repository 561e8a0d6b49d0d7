/* postly-mcp: builds one context (config, log, event base, policy, keys, stores) and runs
 * the MCP resource server until SIGINT/SIGTERM (STYLE.md §6). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "authz/directory.h"
#include "authz/seen.h"
#include "core/crypto.h"
#include "core/http.h"
#include "core/log.h"
#include "exec/connector.h"
#include "exec/sandbox.h"
#include "exec/batch.h"
#include "exec/scheduler.h"
#include "exec/store.h"
#include "exec/webhook.h"
#include "keys/keyset.h"
#include "keys/verify.h"
#include "mcp/config.h"
#include "mcp/http.h"
#include "mcp/server.h"
#include "mcp/usage.h"
#include "policy/policy.h"

typedef struct app {
    struct event_base *base;
    mcp_server *srv;
    const mcp_config *cfg;
    pol_compiled *policy; /* the table in use (owned) */
    key_keyset *keys;
    mcp_usage *usage;
    az_seen *seen;
    const core_log *log;
} app;

/* Every second: the listening streams' keep-alives and checks, and the usage counters (one
 * transaction for all calls of that second). */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    mcp_server_stream_tick(a->srv); /* listening streams: keep-alives, token/grant re-checks */
    if (a->usage && mcp_usage_flush(a->usage) != PL_OK)
        core_log_error(a->log, "usage counters could not be written");
    /* Grants' last-call times: handed to the seen writer thread, never written here. */
    if (az_seen_flush(a->seen, core_clock_now_ms(core_clock_real())) == PL_ERR_STORE)
        core_log_warn(a->log, "last-call times of grants could not be written (%s/seen)",
                      a->cfg->data_dir);
}

/* The seen writer's purge asks the directory whether a grant is still alive (seen.h). */
static pl_rc grant_alive(void *arg, const char *gid)
{
    return az_directory_grant_check(arg, gid);
}

/* `postly-mcp usage [--data DIR] [--period YYYY-MM] [--workspace WS]`: prints the counters. */
static int usage_main(int argc, char **argv)
{
    const char *data = getenv("POSTLY_DATA"), *period = NULL, *ws = NULL;
    mcp_usage *u = NULL;
    int i;
    pl_rc rc;
    if (!data || !*data)
        data = "var";
    for (i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--period") == 0)
            period = argv[i + 1];
        else if (strcmp(argv[i], "--workspace") == 0)
            ws = argv[i + 1];
        else
            break;
    }
    if (i != argc) {
        fprintf(stderr, "usage: postly-mcp usage [--data DIR] [--period YYYY-MM] "
                        "[--workspace WS]\n");
        return 2;
    }
    rc = mcp_usage_open(data, core_clock_real(), 0, &u);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-mcp: usage store in %s/mcp-usage: %s\n", data, pl_strerror(rc));
        return 1;
    }
    rc = mcp_usage_report(u, period, ws, stdout);
    mcp_usage_free(u);
    return rc == PL_OK ? 0 : 1;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

static void policy_revision(const char *path, char *out, size_t outsz);

/* SIGHUP: reload the policy file; a file that does not load or that leaves a tool without a
 * row is refused and the running policy stays (the log says why). */
static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    pol_diags d;
    pol_compiled *p = NULL;
    char rev[64];
    pl_rc rc;
    pol_diags_init(&d);
    rc = pol_load_file(a->cfg->policy_file, 0, &d, &p);
    if (rc == PL_OK) {
        policy_revision(a->cfg->policy_file, rev, sizeof rev);
        rc = mcp_server_set_policy(a->srv, p, rev);
    }
    if (rc == PL_OK) {
        pol_compiled_free(a->policy);
        a->policy = p;
        core_log_info(a->log, "policy reloaded file=%s revision=%s", a->cfg->policy_file, rev);
    } else {
        pol_diags_print(&d, stderr);
        core_log_error(a->log, "policy reload refused (%s): keeping the running policy",
                       pl_strerror(rc));
        pol_compiled_free(p);
    }
    pol_diags_free(&d);
}

/* Every 10 s: expire idle sessions and pick up key rotations of postly-authz. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    key_error kerr;
    mcp_server_tick(a->srv);
    if (a->keys && key_keyset_reload(a->keys, &kerr) != PL_OK)
        core_log_warn(a->log, "key set reload failed: %s", kerr.text);
}

/* "sha256:<first 16 hex>" of the policy file: the revision written into audit records. */
static void policy_revision(const char *path, char *out, size_t outsz)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;
    uint8_t h[CORE_SHA256_LEN];
    char hex[CORE_SHA256_LEN * 2 + 1];
    snprintf(out, outsz, "unknown");
    if (!fp)
        return;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && n <= (long)POL_FILE_MAX &&
        fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, fp) == (size_t)n) {
        core_sha256(buf, (size_t)n, h);
        core_hex_encode(h, sizeof h, hex, sizeof hex);
        snprintf(out, outsz, "sha256:%.16s", hex);
    }
    free(buf);
    fclose(fp);
}

/* The sandbox connectors with their journal in <data_dir>/exec/sandbox-journal (docs/mcp.md
 * "Sandbox journal"): the platforms' own record of what landed, kept across restarts so a
 * crash test can count publications per target (exec/sandbox.h). */
static pl_rc sandbox_connectors(const char *data_dir, ex_connectors *conns)
{
    char dir[MCP_CFG_URL_MAX + 32];
    ex_sandbox_options opt;
    pl_rc rc = PL_OK;
    int n = snprintf(dir, sizeof dir, "%s/exec/sandbox-journal", data_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return PL_ERR_INVALID;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "postly-mcp: sandbox journal %s: %s\n", dir, strerror(errno));
        return PL_ERR_IO;
    }
    memset(&opt, 0, sizeof opt);
    opt.journal_dir = dir;
    memset(conns, 0, sizeof *conns);
    for (int p = 0; p < EX_PLATFORM__COUNT && rc == PL_OK; p++) {
        ex_connector *c = NULL;
        rc = ex_sandbox_new((ex_platform)p, &opt, &c);
        if (rc == PL_OK)
            ex_connectors_set_take(conns, c);
        else
            fprintf(stderr, "postly-mcp: sandbox journal in %s: %s\n", dir, pl_strerror(rc));
    }
    if (rc != PL_OK)
        ex_connectors_free(conns);
    return rc;
}

int main(int argc, char **argv)
{
    static mcp_config cfg;
    core_log log = {NULL, CORE_LOG_INFO, "mcp"};
    core_http_config hcfg;
    core_http *http = NULL;
    pol_compiled *policy = NULL;
    pol_diags diags;
    key_keyset *keys = NULL;
    key_keyset_cfg kcfg;
    key_verifier *verifier = NULL;
    key_verifier_cfg vcfg;
    key_error kerr;
    ex_store *store = NULL;
    ex_connectors conns;
    ex_ctx ex;
    az_directory *dir = NULL;
    az_seen *seen = NULL;
    az_seen_cfg seen_cfg;
    FILE *audit = NULL;
    mcp_server *srv = NULL;
    mcp_deps deps;
    mcp_usage *usage = NULL;
    ex_scheduler *sched = NULL;
    ex_webhook_dispatcher *hooks = NULL;
    ex_batcher *batcher = NULL;
    struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL, *tick = NULL, *flush = NULL;
    struct timeval every = {10, 0}, second = {1, 0};
    char err[256], revision[64], audit_path[MCP_CFG_URL_MAX + 32];
    int want_help = 0, print_port = 0, i, status = 1;
    app a;
    pl_rc rc;

    if (argc > 1 && strcmp(argv[1], "usage") == 0)
        return usage_main(argc, argv);
    memset(&conns, 0, sizeof conns);
    memset(&ex, 0, sizeof ex);
    memset(&a, 0, sizeof a);
    pol_diags_init(&diags);
    mcp_config_defaults(&cfg);
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--print-port") == 0)
            print_port = 1;
    if (mcp_config_parse(&cfg, argc, argv, &want_help, err, sizeof err) != PL_OK) {
        fprintf(stderr, "postly-mcp: %s\n", err);
        status = 2;
        goto out;
    }
    if (want_help) {
        mcp_config_usage(stdout);
        status = 0;
        goto out;
    }
    log.level = (core_log_level)cfg.log_level;
    signal(SIGPIPE, SIG_IGN);

    a.base = core_http_base_new(); /* epoll changelist: fewer epoll_ctl per request (core/http.h) */
    if (!a.base)
        goto out;
    memset(&hcfg, 0, sizeof hcfg);
    hcfg.host = cfg.listen_host;
    hcfg.port = (uint16_t)cfg.listen_port;
    /* The socket layer's cap sits 64 KiB above ours: a body a little over the limit gets the
     * clear JSON 413 from mcp_server_handle; only a far larger one is cut off by libevent. */
    hcfg.limits.max_body = cfg.limits.max_body + 65536;
    hcfg.limits.max_headers = cfg.limits.max_headers;
    hcfg.limits.timeout_s = cfg.limits.idle_timeout_s;
    hcfg.limits.max_connections = cfg.limits.max_conns;
    hcfg.limits.header_timeout_s = cfg.limits.header_timeout_s;
    hcfg.log = &log;
    if (core_http_new(a.base, &hcfg, &http) != PL_OK) {
        fprintf(stderr, "postly-mcp: cannot listen on %s:%d\n", cfg.listen_host, cfg.listen_port);
        goto out;
    }
    if (mcp_config_finish(&cfg, core_http_port(http), err, sizeof err) != PL_OK) {
        fprintf(stderr, "postly-mcp: %s\n", err);
        goto out;
    }

    rc = pol_load_file(cfg.policy_file, 0, &diags, &policy);
    if (rc != PL_OK) {
        pol_diags_print(&diags, stderr);
        fprintf(stderr, "postly-mcp: policy %s: %s\n", cfg.policy_file, pl_strerror(rc));
        goto out;
    }
    policy_revision(cfg.policy_file, revision, sizeof revision);

    /* Tokens are verified against the key set in the data directory (single machine; the key
     * set is reloaded every tick so a rotation by postly-authz is seen), or against the JWKS
     * fetched from the authorization server's jwks_uri (--jwks-uri: no private key is ever
     * read by this process; an unknown kid refetches at most once per interval). */
    memset(&vcfg, 0, sizeof vcfg);
    vcfg.issuer = cfg.authz_url;
    vcfg.audience = cfg.canonical_url;
    vcfg.leeway_s = cfg.leeway_s; /* --leeway: exp/nbf clock skew */
    if (cfg.jwks_uri[0]) {
        vcfg.fetch = key_jwks_fetch_http;
        vcfg.fetch_ctx = cfg.jwks_uri;
    } else {
        memset(&kcfg, 0, sizeof kcfg);
        kcfg.data_dir = cfg.data_dir;
        kcfg.leeway_s = -1;
        kcfg.public_only = 1; /* docs/keys.md §4.3: a verifier never reads a private key */
        rc = key_keyset_open(&kcfg, &keys, &kerr);
        if (rc != PL_OK) {
            fprintf(stderr, "postly-mcp: key set in %s/keys: %s (%s)\n", cfg.data_dir,
                    pl_strerror(rc), kerr.text);
            goto out;
        }
        vcfg.keyset = keys;
    }
    if (key_verifier_new(&vcfg, &verifier) != PL_OK) {
        fprintf(stderr, "postly-mcp: cannot create the token verifier\n");
        goto out;
    }
    rc = az_directory_open(cfg.data_dir, &dir);
    if (rc != PL_OK) {
        fprintf(stderr,
                "postly-mcp: authorization-server directory in %s/authz: %s (start postly-authz "
                "once with the same data directory)\n",
                cfg.data_dir, pl_strerror(rc));
        goto out;
    }
    /* Grants' last-call times for postly-authz's connected-apps page (authz/seen.h): display
     * only, so a failure to open is a warning, not a reason to refuse to serve. */
    memset(&seen_cfg, 0, sizeof seen_cfg);
    seen_cfg.data_dir = cfg.data_dir;
    seen_cfg.interval_ms = (int64_t)cfg.seen_interval_s * 1000;
    seen_cfg.alive = grant_alive;
    seen_cfg.alive_arg = dir;
    rc = az_seen_open(&seen_cfg, &seen);
    if (rc != PL_OK)
        core_log_warn(&log, "last-call times of grants are not recorded: %s/seen: %s", cfg.data_dir,
                      pl_strerror(rc));
    /* Group commit (docs/mcp.md "Group commit"): MDB_NOMETASYNC, the batcher's committer
     * thread (begins and commits each batch: the data fsync leaves this loop; writes arriving
     * meanwhile are parked) and its syncer thread (the meta page), every write still
     * acknowledged only once it is on disk. */
    rc = ex_store_open_data_dir(
        cfg.data_dir, cfg.unsafe_no_fsync ? EX_STORE_NOSYNC : EX_STORE_GROUP_COMMIT, &store);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-mcp: execution store in %s/exec: %s\n", cfg.data_dir,
                pl_strerror(rc));
        goto out;
    }
    if (sandbox_connectors(cfg.data_dir, &conns) != PL_OK)
        goto out;
    ex.store = store;
    ex.clock = core_clock_real();
    ex.log = &log;
    ex_limits_default(&ex.limits);
    ex_connectors_install(&conns, &ex);

    if (cfg.audit_file[0])
        snprintf(audit_path, sizeof audit_path, "%s", cfg.audit_file);
    else
        snprintf(audit_path, sizeof audit_path, "%s/mcp-audit.jsonl", cfg.data_dir);
    audit = fopen(audit_path, "a");
    if (!audit) {
        fprintf(stderr, "postly-mcp: audit log %s: %s\n", audit_path, strerror(errno));
        goto out;
    }
    chmod(audit_path, 0600);
    rc = mcp_usage_open(cfg.data_dir, core_clock_real(), 0, &usage);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-mcp: usage store in %s/mcp-usage: %s\n", cfg.data_dir,
                pl_strerror(rc));
        goto out;
    }

    if (cfg.unsafe_no_fsync) /* on stderr whatever the log level: never silent */
        fprintf(stderr,
                "postly-mcp: WARNING: --unsafe-no-fsync: writes are NOT fsynced; a power loss "
                "may lose acknowledged writes or corrupt %s/exec. For benchmarks only.\n",
                cfg.data_dir);
    rc = ex_batcher_new(a.base, store, &log, &batcher);
    if (rc != PL_OK) {
        fprintf(stderr, "postly-mcp: group commit: %s\n", pl_strerror(rc));
        goto out;
    }
    memset(&deps, 0, sizeof deps);
    deps.clock = core_clock_real();
    deps.log = &log;
    deps.verifier = verifier;
    deps.policy = policy;
    deps.policy_revision = revision;
    deps.ex = &ex;
    deps.audit = audit;
    deps.directory = dir;
    deps.usage = usage;
    deps.seen = seen;
    deps.batcher = batcher;
    if (mcp_server_new(&cfg, &deps, &srv) != PL_OK) {
        fprintf(stderr, "postly-mcp: the tool table and the policy disagree (see log)\n");
        goto out;
    }
    if (mcp_http_attach(http, srv) != PL_OK)
        goto out;
    /* Background work on this loop (docs/mcp.md "Scheduler and webhooks"): due posts are
     * published, events delivered. Another instance on the same data directory is safe: a
     * claim is one LMDB write transaction (exec/scheduler.h, exec/webhook.h). The scheduler
     * looks at the queue at least every second, so a post scheduled by this or another
     * process is seen within a second of its time. */
    if (cfg.run_scheduler) {
        rc = ex_scheduler_new(&ex, NULL, &sched);
        if (rc == PL_OK)
            rc = ex_scheduler_attach(sched, a.base, 1000);
        if (rc != PL_OK) {
            fprintf(stderr, "postly-mcp: scheduler: %s\n", pl_strerror(rc));
            goto out;
        }
    }
    if (cfg.run_webhooks) {
        rc = ex_webhook_dispatcher_new(a.base, store, core_clock_real(), &log, NULL, &hooks);
        if (rc != PL_OK) {
            fprintf(stderr, "postly-mcp: webhook dispatcher: %s\n", pl_strerror(rc));
            goto out;
        }
    }
    a.srv = srv;
    a.keys = keys;
    a.log = &log;
    a.usage = usage;
    a.seen = seen;
    a.cfg = &cfg;
    a.policy = policy;
    policy = NULL; /* owned by a from here; SIGHUP may replace it */
    sigint = evsignal_new(a.base, SIGINT, on_signal, a.base);
    sigterm = evsignal_new(a.base, SIGTERM, on_signal, a.base);
    sighup = evsignal_new(a.base, SIGHUP, on_hup, &a);
    tick = event_new(a.base, -1, EV_PERSIST, on_tick, &a);
    flush = event_new(a.base, -1, EV_PERSIST, on_flush, &a);
    if (!sigint || !sigterm || !sighup || !tick || !flush)
        goto out;
    event_add(sighup, NULL);
    event_add(flush, &second);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    event_add(tick, &every);
    core_log_info(&log, "listening url=%s policy=%s tools=%zu scheduler=%s webhooks=%s",
                  cfg.canonical_url, revision, mcp_server_tool_count(srv), sched ? "on" : "off",
                  hooks ? "on" : "off");
    if (print_port) {
        printf("%d\n", cfg.listen_port);
        fflush(stdout);
    }
    event_base_dispatch(a.base);
    core_log_info(&log, "stopped");
    status = 0;
out:
    if (flush)
        event_free(flush);
    if (tick)
        event_free(tick);
    if (sighup)
        event_free(sighup);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    ex_webhook_dispatcher_free(hooks);
    ex_scheduler_free(sched); /* detaches its timer */
    if (batcher) {
        ex_batch_stats bs;
        ex_batcher_stats(batcher, &bs);
        core_log_info(&log,
                      "group commit: %llu batches, %llu replies held (%llu errors), %llu syncs, "
                      "%llu writes parked during a commit",
                      (unsigned long long)bs.commits, (unsigned long long)bs.held,
                      (unsigned long long)bs.failed, (unsigned long long)bs.syncs,
                      (unsigned long long)bs.parked);
    }
    ex_batcher_free(batcher); /* runs the parked writes, commits and syncs what is open,
                                 sends the held replies */
    core_http_free(http);
    mcp_server_free(srv);
    mcp_usage_free(usage); /* flushes the last counts */
    az_seen_free(seen);    /* writes the pending last-call times; before the directory */
    if (audit)
        fclose(audit);
    ex_connectors_free(&conns);
    ex_store_free(store);
    az_directory_free(dir);
    key_verifier_free(verifier);
    key_keyset_free(keys);
    pol_compiled_free(policy);
    pol_compiled_free(a.policy);
    pol_diags_free(&diags);
    if (a.base)
        event_base_free(a.base);
    return status;
}
