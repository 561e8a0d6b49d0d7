/*
 * mcp/config.h — the configuration of postly-mcp, parsed once (environment, then flags) into a
 * plain struct that runtime code receives as `const mcp_config *` (STYLE.md §9).
 *
 * Every option, its flag, its environment variable and its default are listed in docs/mcp.md
 * and printed by `postly-mcp --help`.
 */
#ifndef POSTLY_MCP_CONFIG_H
#define POSTLY_MCP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

#define MCP_CFG_URL_MAX   512
#define MCP_CFG_LIST_MAX  16 /* entries of an allow-list */
#define MCP_CFG_ENTRY_MAX 256

typedef struct mcp_limits {
    size_t max_body;               /* bytes of one POST body */
    size_t max_headers;            /* bytes of the request line + headers */
    size_t max_depth;              /* JSON nesting */
    size_t max_string;             /* raw bytes of one JSON string */
    unsigned max_conns;            /* concurrent connections */
    int idle_timeout_s;            /* a connection idle this long is closed */
    int header_timeout_s;          /* a request must arrive whole within this (slowloris) */
    size_t max_sessions;           /* live MCP sessions */
    size_t sessions_per_principal; /* live sessions of one user+client+workspace (0 = any) */
    int64_t session_idle_ms;       /* an MCP session unused this long ends */
    size_t max_rate_buckets;       /* live token buckets of the rate rules */
    uint32_t token_rate_per_min;   /* calls per minute of one access token (0 = off) */
    /* GET /mcp server-to-client SSE streams (docs/mcp.md "Listening stream"): at most
     * max_streams open at once (0 = none offered: GET answers 405), one per session; a
     * keep-alive comment every keepalive_s, when the token and grant behind the stream are
     * checked again (1..29 s: with the one-second timer, a revocation is seen within 30 s). */
    size_t max_streams;
    int keepalive_s;
    size_t max_subscriptions; /* resources/subscribe entries of one session */
} mcp_limits;

typedef struct mcp_config {
    char canonical_url[MCP_CFG_URL_MAX]; /* this server's resource URL, the tokens' aud:
                                            "http://127.0.0.1:8081/mcp" */
    char listen_host[MCP_CFG_ENTRY_MAX]; /* "127.0.0.1" */
    int listen_port;                     /* 0 = any free port */
    char authz_url[MCP_CFG_URL_MAX];     /* the authorization server's issuer */
    /* "" = verify with the key set in <data_dir>/keys (single machine); else fetch the JWKS
     * from this URL (the authorization server's jwks_uri) and never touch private keys. */
    char jwks_uri[MCP_CFG_URL_MAX];
    char data_dir[MCP_CFG_URL_MAX];    /* "./var" */
    char policy_file[MCP_CFG_URL_MAX]; /* "policy/default.policy" */
    char audit_file[MCP_CFG_URL_MAX];  /* "" = <data_dir>/mcp-audit.jsonl */
    /* Origin values allowed on /mcp (exact match, scheme://host[:port]); requests without
     * Origin are allowed (non-browser clients). */
    char origins[MCP_CFG_LIST_MAX][MCP_CFG_ENTRY_MAX];
    size_t n_origins;
    /* Host header values allowed (host[:port], exact, case-insensitive). */
    char hosts[MCP_CFG_LIST_MAX][MCP_CFG_ENTRY_MAX];
    size_t n_hosts;
    mcp_limits limits;
    int log_level; /* core_log_level */
    /* Background work hosted on the event loop (docs/mcp.md "Scheduler and webhooks"):
     * the scheduler publishes due posts, the dispatcher delivers webhook events. Both are on
     * by default; --no-scheduler / --no-webhooks (or POSTLY_MCP_SCHEDULER=off,
     * POSTLY_MCP_WEBHOOKS=off) turn them off. Several instances on one data directory are safe
     * (claims are LMDB transactions). */
    int run_scheduler;
    int run_webhooks;
    /* --unsafe-no-fsync (benchmarks only, no environment variable so it cannot be left on by
     * a deployment's environment): the execution store opens with EX_STORE_NOSYNC, so writes
     * are acknowledged without reaching the disk. Logged as a warning at start. */
    int unsafe_no_fsync;
    /* Clock skew allowed on a token's exp and nbf, seconds (--leeway, POSTLY_MCP_LEEWAY;
     * default 30, 0..300; keys/verify.h leeway_s). */
    int leeway_s;
    /* A grant's last-call time (the connected-apps page, authz/seen.h) is written at most
     * once per this many seconds (--seen-interval, POSTLY_MCP_SEEN_INTERVAL; 1..3600,
     * default 60): the page may lag the true last call by about this much. */
    int seen_interval_s;
} mcp_config;

/* Fills the documented defaults (canonical URL and allow-lists derived from the listen
 * address by mcp_config_finish()). */
void mcp_config_defaults(mcp_config *cfg);

/* Applies the environment (POSTLY_MCP_*, POSTLY_DATA), then argv flags. PL_ERR_INVALID with a
 * message naming the flag or variable in errbuf. *want_help set for --help. */
pl_rc mcp_config_parse(mcp_config *cfg, int argc, char **argv, int *want_help, char *errbuf,
                       size_t errsz);

/* Derives what was not set: the canonical URL from the listen address, and the Host and
 * Origin allow-lists from the canonical URL (plus localhost/127.0.0.1 aliases for a loopback
 * listener). Call after the real port is known (port 0 binds first). */
pl_rc mcp_config_finish(mcp_config *cfg, int bound_port, char *errbuf, size_t errsz);

void mcp_config_usage(FILE *fp);

#endif
