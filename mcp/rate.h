/*
 * mcp/rate.h — token buckets for the policy file's `rate` rules (policy/policy.h
 * pol_rate_info): one bucket per (rule, key), the key being the client id, the user (sub) or
 * the workspace as the rule's `per=` says. A bucket holds `burst` tokens and refills at
 * `limit` per `period_s`; a call takes one token from every bucket whose rule applies.
 *
 * Besides the policy's rules, a per-token bucket (token_limit calls per minute, burst a quarter
 * of that, keyed by the token's jti) caps what one leaked or runaway token can do; 0 = off.
 *
 * Memory is bounded: at most max_buckets live buckets; when full, buckets that have refilled
 * completely (indistinguishable from new ones) are dropped first, and if none can be dropped
 * the call is refused as limited (fail closed) with the rule id "table-full".
 *
 * Thread: not synchronised; the server's event-loop thread only.
 */
#ifndef POSTLY_MCP_RATE_H
#define POSTLY_MCP_RATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "policy/policy.h"

typedef struct mcp_rate mcp_rate;

/* The identity a call is accounted to. Strings borrowed for the call. */
typedef struct mcp_rate_who {
    const char *client_id;
    const char *user;
    const char *workspace;
    const char *token; /* the token's jti */
    pol_class cls;
} mcp_rate_who;

/* Which limit refused a call. */
typedef struct mcp_rate_denial {
    const char *rule_id; /* borrowed from the policy (or "table-full") */
    uint32_t limit, period_s;
    const char *per;   /* "client", "user", "workspace" or "token" */
    int retry_after_s; /* >= 1 */
} mcp_rate_denial;

pl_rc mcp_rate_new(const pol_compiled *policy, const core_clock *clock, size_t max_buckets,
                   uint32_t token_limit, mcp_rate **out);
void mcp_rate_free(mcp_rate *r);

/* Takes one token from every bucket that applies to a call of `who` to policy row `tool`
 * (pol_tool_index). PL_OK when all had one (and all are charged); PL_ERR_LIMIT with *denied
 * filled when one was empty (then none is charged). */
pl_rc mcp_rate_take(mcp_rate *r, const mcp_rate_who *who, uint32_t tool, mcp_rate_denial *denied);

/* Live buckets (tests). */
size_t mcp_rate_buckets(const mcp_rate *r);

#endif
