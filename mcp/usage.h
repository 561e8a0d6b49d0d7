/*
 * mcp/usage.h — usage metering and plan quotas ("monetization controls", seed: MCP Execution
 * Flow). Every executed tool call is counted per workspace, and per workspace × client × tool,
 * for the billing period (the calendar month, UTC). Plans put quotas on tool calls and on
 * publishes (postly_publish_post, postly_retry_post) per period; a call over quota is refused
 * with an error naming the plan, the quota and the reset time.
 *
 * Storage: an LMDB environment of its own, <data>/mcp-usage (owned by postly-mcp):
 *   "<YYYY-MM>|<ws>|calls"                 -> uint64 (little endian)
 *   "<YYYY-MM>|<ws>|publishes"             -> uint64
 *   "<YYYY-MM>|<ws>|tool|<client>|<tool>"  -> uint64
 * Counts are kept in memory and written in one transaction per mcp_usage_flush() (the server
 * flushes every second and at shutdown), so metering costs no fsync per call; a crash loses at
 * most the last second of counts (documented in docs/mcp.md).
 *
 * Thread: not synchronised; the server's event-loop thread (and mcp_usage_report from a
 * separate process: LMDB serves several readers).
 */
#ifndef POSTLY_MCP_USAGE_H
#define POSTLY_MCP_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/err.h"

typedef struct mcp_plan {
    const char *name;   /* "free", "pro", "business" */
    uint64_t calls;     /* tool calls per period */
    uint64_t publishes; /* publishes per period */
} mcp_plan;

/* The plan called name; an unknown or NULL name gives "free" (the most restrictive). */
const mcp_plan *mcp_plan_get(const char *name);

typedef struct mcp_usage mcp_usage;

/* Opens (creating, mode 0700) <data_dir>/mcp-usage. nosync: tests only. */
pl_rc mcp_usage_open(const char *data_dir, const core_clock *clock, int nosync, mcp_usage **out);
/* Flushes and closes. NULL-safe. */
void mcp_usage_free(mcp_usage *u);

typedef struct mcp_quota_denial {
    const mcp_plan *plan;
    const char *what; /* "tool calls" or "publishes" */
    uint64_t quota, used;
    char resets_at[40]; /* RFC 3339 UTC: the first instant of the next period */
} mcp_quota_denial;

/* Checks the quotas of plan for workspace ws and, when within them, counts the call (and the
 * publish when is_publish). PL_OK; PL_ERR_LIMIT with *d filled (nothing counted);
 * PL_ERR_STORE when the counters could not be read (the caller fails closed). */
pl_rc mcp_usage_count(mcp_usage *u, const char *ws, const mcp_plan *plan, const char *client,
                      const char *tool, int is_publish, mcp_quota_denial *d);

/* Writes pending counts in one transaction. */
pl_rc mcp_usage_flush(mcp_usage *u);

/* Prints the counters of period ("YYYY-MM"; NULL = current) for workspace ws (NULL = all) as
 * text lines "<period> <ws> calls N" / "publishes N" / "tool <client> <tool> N". */
pl_rc mcp_usage_report(mcp_usage *u, const char *period, const char *ws, FILE *out);

#endif
