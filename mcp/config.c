#include "mcp/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

void mcp_config_defaults(mcp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8081;
    snprintf(cfg->authz_url, sizeof cfg->authz_url, "http://127.0.0.1:8080");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "var");
    snprintf(cfg->policy_file, sizeof cfg->policy_file, "policy/default.policy");
    cfg->limits.max_body = 8u << 20; /* inline media (5 MiB decoded) as base64 fits */
    cfg->limits.max_headers = 16u << 10;
    cfg->limits.max_depth = 32;
    cfg->limits.max_string = 7u << 20;
    cfg->limits.max_conns = 512;
    cfg->limits.idle_timeout_s = 60;
    cfg->limits.header_timeout_s = 10;
    cfg->limits.max_sessions = 10000;
    cfg->limits.sessions_per_principal = 32;
    cfg->limits.session_idle_ms = (int64_t)30 * 60 * 1000;
    cfg->limits.max_rate_buckets = 100000;
    cfg->limits.token_rate_per_min = 300;
    cfg->limits.max_streams = 256;
    cfg->limits.keepalive_s = 15;
    cfg->limits.max_subscriptions = 64;
    cfg->leeway_s = 30;
    cfg->seen_interval_s = 60;
    cfg->log_level = CORE_LOG_INFO;
    cfg->run_scheduler = 1;
    cfg->run_webhooks = 1;
}

void mcp_config_usage(FILE *fp)
{
    fprintf(fp,
            "usage: postly-mcp [options]\n"
            "  --listen HOST:PORT     listen address (POSTLY_MCP_LISTEN, default 127.0.0.1:8081;"
            " port 0 = any)\n"
            "  --url URL              canonical resource URL = token audience (POSTLY_MCP_URL,\n"
            "                         default http://<listen>/mcp)\n"
            "  --authz URL            authorization server issuer (POSTLY_AUTHZ_URL,\n"
            "                         default http://127.0.0.1:8080)\n"
            "  --jwks-uri URL         fetch the JWKS from the authorization server instead of\n"
            "                         reading <data>/keys (POSTLY_MCP_JWKS_URI)\n"
            "  --data DIR             data directory (POSTLY_DATA, default ./var)\n"
            "  --policy FILE          policy file (POSTLY_POLICY, default policy/default.policy)\n"
            "  --audit FILE           audit log, JSON lines (POSTLY_MCP_AUDIT,\n"
            "                         default <data>/mcp-audit.jsonl)\n"
            "  --allow-origin ORIGIN  allowed Origin, repeatable (POSTLY_MCP_ALLOWED_ORIGINS,"
            " comma-separated)\n"
            "  --allow-host HOST      allowed Host, repeatable (POSTLY_MCP_ALLOWED_HOSTS,"
            " comma-separated)\n"
            "  --max-body BYTES       largest POST body (default 8388608)\n"
            "  --max-conns N          concurrent connections (default 512)\n"
            "  --idle-timeout SEC     idle connection timeout (default 60)\n"
            "  --header-timeout SEC   a request must arrive whole within SEC of its first\n"
            "                         byte (POSTLY_MCP_HEADER_TIMEOUT, default 10)\n"
            "  --session-idle SEC     MCP session idle expiry (default 1800)\n"
            "  --token-rate N         tool calls per minute of one access token, burst N/4\n"
            "                         (POSTLY_MCP_TOKEN_RATE, default 300, 0 = off)\n"
            "  --max-streams N        open GET /mcp listening streams (POSTLY_MCP_MAX_STREAMS,\n"
            "                         default 256, 0 = none: GET answers 405)\n"
            "  --keepalive SEC        keep-alive comment on a listening stream, and the\n"
            "                         stream's token and grant re-checked, every SEC\n"
            "                         (POSTLY_MCP_KEEPALIVE, 1..29, default 15)\n"
            "  --max-subscriptions N  resources/subscribe entries per session\n"
            "                         (POSTLY_MCP_MAX_SUBSCRIPTIONS, default 64)\n"
            "  --leeway SEC           clock skew allowed on a token's exp and nbf\n"
            "                         (POSTLY_MCP_LEEWAY, 0..300, default 30)\n"
            "  --seen-interval SEC    write a grant's last-call time (connected-apps page)\n"
            "                         at most every SEC (POSTLY_MCP_SEEN_INTERVAL, 1..3600,\n"
            "                         default 60)\n"
            "  --log-level LEVEL      debug|info|warn|error|off (POSTLY_LOG_LEVEL, default info)\n"
            "  --no-scheduler         do not publish scheduled posts in this process\n"
            "                         (POSTLY_MCP_SCHEDULER=off)\n"
            "  --no-webhooks          do not deliver webhook events in this process\n"
            "                         (POSTLY_MCP_WEBHOOKS=off)\n"
            "  --unsafe-no-fsync      BENCHMARKS ONLY: writes are never fsynced, so a power\n"
            "                         loss may lose acknowledged writes or corrupt the store\n"
            "  --print-port           print the bound port on stdout once listening\n"
            "  --help                 this text\n"
            "       postly-mcp usage [--data DIR] [--period YYYY-MM] [--workspace WS]\n"
            "                         print the usage counters (docs/mcp.md)\n");
}

static pl_rc set_str(char *dst, size_t dstsz, const char *v, const char *what, char *errbuf,
                     size_t errsz)
{
    size_t n = strlen(v);
    if (n == 0 || n >= dstsz) {
        snprintf(errbuf, errsz, "%s: must be 1..%zu characters", what, dstsz - 1);
        return PL_ERR_INVALID;
    }
    memcpy(dst, v, n + 1);
    return PL_OK;
}

static pl_rc parse_long(const char *v, long lo, long hi, long *out, const char *what, char *errbuf,
                        size_t errsz)
{
    char *end = NULL;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || !end || end == v || *end || x < lo || x > hi) {
        snprintf(errbuf, errsz, "%s: expected an integer in %ld..%ld, got \"%.40s\"", what, lo, hi,
                 v);
        return PL_ERR_INVALID;
    }
    *out = x;
    return PL_OK;
}

static pl_rc parse_listen(mcp_config *cfg, const char *v, const char *what, char *errbuf,
                          size_t errsz)
{
    const char *colon = strrchr(v, ':');
    long port;
    size_t hlen;
    pl_rc rc;
    if (!colon || colon == v) {
        snprintf(errbuf, errsz, "%s: expected HOST:PORT", what);
        return PL_ERR_INVALID;
    }
    hlen = (size_t)(colon - v);
    if (hlen >= sizeof cfg->listen_host) {
        snprintf(errbuf, errsz, "%s: host too long", what);
        return PL_ERR_INVALID;
    }
    rc = parse_long(colon + 1, 0, 65535, &port, what, errbuf, errsz);
    if (rc != PL_OK)
        return rc;
    memcpy(cfg->listen_host, v, hlen);
    cfg->listen_host[hlen] = '\0';
    cfg->listen_port = (int)port;
    return PL_OK;
}

static pl_rc list_add(char list[][MCP_CFG_ENTRY_MAX], size_t *n, const char *v, size_t len,
                      const char *what, char *errbuf, size_t errsz)
{
    size_t i;
    if (len == 0)
        return PL_OK;
    if (len >= MCP_CFG_ENTRY_MAX) {
        snprintf(errbuf, errsz, "%s: entry longer than %d characters", what, MCP_CFG_ENTRY_MAX - 1);
        return PL_ERR_INVALID;
    }
    for (i = 0; i < *n; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], v, len) == 0)
            return PL_OK;
    if (*n >= MCP_CFG_LIST_MAX) {
        snprintf(errbuf, errsz, "%s: more than %d entries", what, MCP_CFG_LIST_MAX);
        return PL_ERR_INVALID;
    }
    memcpy(list[*n], v, len);
    list[*n][len] = '\0';
    (*n)++;
    return PL_OK;
}

static pl_rc list_add_csv(char list[][MCP_CFG_ENTRY_MAX], size_t *n, const char *v,
                          const char *what, char *errbuf, size_t errsz)
{
    while (*v) {
        const char *comma = strchr(v, ',');
        size_t len = comma ? (size_t)(comma - v) : strlen(v);
        pl_rc rc = list_add(list, n, v, len, what, errbuf, errsz);
        if (rc != PL_OK)
            return rc;
        v += len;
        if (*v == ',')
            v++;
    }
    return PL_OK;
}

/* Options as data: flag, environment variable, and what they set. */
typedef enum opt_kind {
    OPT_LISTEN,
    OPT_URL,
    OPT_AUTHZ,
    OPT_JWKS,
    OPT_DATA,
    OPT_POLICY,
    OPT_AUDIT,
    OPT_ORIGIN,
    OPT_HOST,
    OPT_MAX_BODY,
    OPT_MAX_CONNS,
    OPT_IDLE,
    OPT_HEADER_TIMEOUT,
    OPT_SESSION_IDLE,
    OPT_TOKEN_RATE,
    OPT_MAX_STREAMS,
    OPT_KEEPALIVE,
    OPT_MAX_SUBS,
    OPT_LEEWAY,
    OPT_SEEN_INTERVAL,
    OPT_LOG_LEVEL
} opt_kind;

static const struct {
    const char *flag;
    const char *env;
    opt_kind kind;
} options[] = {
    {"--listen", "POSTLY_MCP_LISTEN", OPT_LISTEN},
    {"--url", "POSTLY_MCP_URL", OPT_URL},
    {"--authz", "POSTLY_AUTHZ_URL", OPT_AUTHZ},
    {"--jwks-uri", "POSTLY_MCP_JWKS_URI", OPT_JWKS},
    {"--data", "POSTLY_DATA", OPT_DATA},
    {"--policy", "POSTLY_POLICY", OPT_POLICY},
    {"--audit", "POSTLY_MCP_AUDIT", OPT_AUDIT},
    {"--allow-origin", "POSTLY_MCP_ALLOWED_ORIGINS", OPT_ORIGIN},
    {"--allow-host", "POSTLY_MCP_ALLOWED_HOSTS", OPT_HOST},
    {"--max-body", "POSTLY_MCP_MAX_BODY", OPT_MAX_BODY},
    {"--max-conns", "POSTLY_MCP_MAX_CONNS", OPT_MAX_CONNS},
    {"--idle-timeout", "POSTLY_MCP_IDLE_TIMEOUT", OPT_IDLE},
    {"--header-timeout", "POSTLY_MCP_HEADER_TIMEOUT", OPT_HEADER_TIMEOUT},
    {"--session-idle", "POSTLY_MCP_SESSION_IDLE", OPT_SESSION_IDLE},
    {"--token-rate", "POSTLY_MCP_TOKEN_RATE", OPT_TOKEN_RATE},
    {"--max-streams", "POSTLY_MCP_MAX_STREAMS", OPT_MAX_STREAMS},
    {"--keepalive", "POSTLY_MCP_KEEPALIVE", OPT_KEEPALIVE},
    {"--max-subscriptions", "POSTLY_MCP_MAX_SUBSCRIPTIONS", OPT_MAX_SUBS},
    {"--leeway", "POSTLY_MCP_LEEWAY", OPT_LEEWAY},
    {"--seen-interval", "POSTLY_MCP_SEEN_INTERVAL", OPT_SEEN_INTERVAL},
    {"--log-level", "POSTLY_LOG_LEVEL", OPT_LOG_LEVEL},
};

static pl_rc apply(mcp_config *cfg, opt_kind k, const char *v, const char *what, char *errbuf,
                   size_t errsz)
{
    long x = 0;
    pl_rc rc = PL_OK;
    switch (k) {
    case OPT_LISTEN:
        return parse_listen(cfg, v, what, errbuf, errsz);
    case OPT_URL:
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(errbuf, errsz, "%s: must be an http:// or https:// URL", what);
            return PL_ERR_INVALID;
        }
        return set_str(cfg->canonical_url, sizeof cfg->canonical_url, v, what, errbuf, errsz);
    case OPT_AUTHZ:
        return set_str(cfg->authz_url, sizeof cfg->authz_url, v, what, errbuf, errsz);
    case OPT_JWKS:
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(errbuf, errsz, "%s: must be an http:// or https:// URL", what);
            return PL_ERR_INVALID;
        }
        return set_str(cfg->jwks_uri, sizeof cfg->jwks_uri, v, what, errbuf, errsz);
    case OPT_DATA:
        return set_str(cfg->data_dir, sizeof cfg->data_dir, v, what, errbuf, errsz);
    case OPT_POLICY:
        return set_str(cfg->policy_file, sizeof cfg->policy_file, v, what, errbuf, errsz);
    case OPT_AUDIT:
        return set_str(cfg->audit_file, sizeof cfg->audit_file, v, what, errbuf, errsz);
    case OPT_ORIGIN:
        return list_add_csv(cfg->origins, &cfg->n_origins, v, what, errbuf, errsz);
    case OPT_HOST:
        return list_add_csv(cfg->hosts, &cfg->n_hosts, v, what, errbuf, errsz);
    case OPT_MAX_BODY:
        rc = parse_long(v, 1024, 64L << 20, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.max_body = (size_t)x;
        return rc;
    case OPT_MAX_CONNS:
        rc = parse_long(v, 1, 65535, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.max_conns = (unsigned)x;
        return rc;
    case OPT_IDLE:
        rc = parse_long(v, 1, 3600, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.idle_timeout_s = (int)x;
        return rc;
    case OPT_HEADER_TIMEOUT:
        rc = parse_long(v, 1, 3600, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.header_timeout_s = (int)x;
        return rc;
    case OPT_SESSION_IDLE:
        rc = parse_long(v, 1, 7L * 86400, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.session_idle_ms = (int64_t)x * 1000;
        return rc;
    case OPT_TOKEN_RATE:
        rc = parse_long(v, 0, 1000000000L, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.token_rate_per_min = (uint32_t)x;
        return rc;
    case OPT_MAX_STREAMS:
        rc = parse_long(v, 0, 65535, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.max_streams = (size_t)x;
        return rc;
    case OPT_KEEPALIVE:
        /* A revoked grant must stop working within 30 s (issue #6, the product's bound);
         * a stream is re-checked at each keep-alive, from a one-second timer: at most 29 + 1. */
        rc = parse_long(v, 1, 29, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.keepalive_s = (int)x;
        return rc;
    case OPT_MAX_SUBS:
        rc = parse_long(v, 1, 1024, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->limits.max_subscriptions = (size_t)x;
        return rc;
    case OPT_LEEWAY:
        rc = parse_long(v, 0, 300, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->leeway_s = (int)x;
        return rc;
    case OPT_SEEN_INTERVAL:
        rc = parse_long(v, 1, 3600, &x, what, errbuf, errsz);
        if (rc == PL_OK)
            cfg->seen_interval_s = (int)x;
        return rc;
    case OPT_LOG_LEVEL:
        x = core_log_level_parse(v);
        if (x < 0) {
            snprintf(errbuf, errsz, "%s: expected debug, info, warn, error or off", what);
            return PL_ERR_INVALID;
        }
        cfg->log_level = (int)x;
        return PL_OK;
    }
    return PL_ERR_INTERNAL;
}

/* On/off switches without a value: flag, environment variable ("on"/"off"), field. */
static const struct {
    const char *flag;
    const char *env;
    size_t offset;
} switches[] = {
    {"--no-scheduler", "POSTLY_MCP_SCHEDULER", offsetof(mcp_config, run_scheduler)},
    {"--no-webhooks", "POSTLY_MCP_WEBHOOKS", offsetof(mcp_config, run_webhooks)},
};

static pl_rc apply_switch_env(mcp_config *cfg, char *errbuf, size_t errsz)
{
    size_t s;
    for (s = 0; s < sizeof switches / sizeof switches[0]; s++) {
        const char *v = getenv(switches[s].env);
        int *field = (int *)((char *)cfg + switches[s].offset);
        if (!v || !*v)
            continue;
        if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
            *field = 1;
        else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
            *field = 0;
        else {
            snprintf(errbuf, errsz, "%s: expected on or off, got \"%.40s\"", switches[s].env, v);
            return PL_ERR_INVALID;
        }
    }
    return PL_OK;
}

static int switch_flag(mcp_config *cfg, const char *a)
{
    size_t s;
    for (s = 0; s < sizeof switches / sizeof switches[0]; s++)
        if (strcmp(a, switches[s].flag) == 0) {
            *(int *)((char *)cfg + switches[s].offset) = 0;
            return 1;
        }
    return 0;
}

pl_rc mcp_config_parse(mcp_config *cfg, int argc, char **argv, int *want_help, char *errbuf,
                       size_t errsz)
{
    size_t o;
    int i;
    pl_rc rc;
    *want_help = 0;
    for (o = 0; o < sizeof options / sizeof options[0]; o++) {
        const char *v = getenv(options[o].env);
        if (v && *v) {
            rc = apply(cfg, options[o].kind, v, options[o].env, errbuf, errsz);
            if (rc != PL_OK)
                return rc;
        }
    }
    rc = apply_switch_env(cfg, errbuf, errsz);
    if (rc != PL_OK)
        return rc;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (switch_flag(cfg, a))
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *want_help = 1;
            return PL_OK;
        }
        if (strcmp(a, "--print-port") == 0)
            continue; /* handled by main */
        if (strcmp(a, "--unsafe-no-fsync") == 0) {
            cfg->unsafe_no_fsync = 1; /* benchmarks only: flag only, no environment variable */
            continue;
        }
        for (o = 0; o < sizeof options / sizeof options[0]; o++)
            if (strcmp(a, options[o].flag) == 0)
                break;
        if (o == sizeof options / sizeof options[0]) {
            snprintf(errbuf, errsz, "unknown option \"%.60s\" (see --help)", a);
            return PL_ERR_INVALID;
        }
        if (i + 1 >= argc) {
            snprintf(errbuf, errsz, "%s: missing value", a);
            return PL_ERR_INVALID;
        }
        rc = apply(cfg, options[o].kind, argv[++i], a, errbuf, errsz);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

static int is_loopback(const char *host)
{
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

pl_rc mcp_config_finish(mcp_config *cfg, int bound_port, char *errbuf, size_t errsz)
{
    char hostport[MCP_CFG_ENTRY_MAX + 16], origin[MCP_CFG_ENTRY_MAX + 32];
    const char *p, *end;
    size_t hlen;
    int n;
    pl_rc rc;
    static const char *const aliases[] = {"127.0.0.1", "localhost", "[::1]"};

    if (bound_port > 0)
        cfg->listen_port = bound_port;
    if (!cfg->canonical_url[0]) {
        n = snprintf(cfg->canonical_url, sizeof cfg->canonical_url, "http://%s:%d/mcp",
                     cfg->listen_host, cfg->listen_port);
        if (n < 0 || (size_t)n >= sizeof cfg->canonical_url) {
            snprintf(errbuf, errsz, "canonical URL too long");
            return PL_ERR_INVALID;
        }
    }
    /* host[:port] of the canonical URL. */
    p = strstr(cfg->canonical_url, "://");
    p = p ? p + 3 : cfg->canonical_url;
    end = strchr(p, '/');
    hlen = end ? (size_t)(end - p) : strlen(p);
    if (hlen == 0 || hlen >= sizeof hostport) {
        snprintf(errbuf, errsz, "canonical URL \"%.80s\" has no host", cfg->canonical_url);
        return PL_ERR_INVALID;
    }
    memcpy(hostport, p, hlen);
    hostport[hlen] = '\0';
    if (cfg->n_hosts == 0) {
        rc = list_add(cfg->hosts, &cfg->n_hosts, hostport, hlen, "allowed hosts", errbuf, errsz);
        if (rc != PL_OK)
            return rc;
        if (is_loopback(cfg->listen_host)) {
            size_t i;
            for (i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
                n = snprintf(origin, sizeof origin, "%s:%d", aliases[i], cfg->listen_port);
                rc = list_add(cfg->hosts, &cfg->n_hosts, origin, (size_t)n, "allowed hosts", errbuf,
                              errsz);
                if (rc != PL_OK)
                    return rc;
            }
        }
    }
    if (cfg->n_origins == 0) {
        size_t i, nh = cfg->n_hosts;
        const char *scheme = strncmp(cfg->canonical_url, "https://", 8) == 0 ? "https" : "http";
        for (i = 0; i < nh; i++) {
            n = snprintf(origin, sizeof origin, "%s://%s", scheme, cfg->hosts[i]);
            if (n < 0 || (size_t)n >= sizeof origin)
                continue;
            rc = list_add(cfg->origins, &cfg->n_origins, origin, (size_t)n, "allowed origins",
                          errbuf, errsz);
            if (rc != PL_OK)
                return rc;
        }
    }
    return PL_OK;
}
