/*
 * authz/admin_exec.h — the postly-admin commands that work on the execution layer's store
 * (<data>/exec) and postly-mcp's usage counters (<data>/mcp-usage) rather than on the
 * authorization server's store. They live apart from admin.c (which is part of postly_authz)
 * because they link postly_exec and postly_mcp, and postly_mcp itself links postly_authz:
 * this file is built into the postly_admin_exec library that only the postly-admin program
 * (and its tests) link. docs/authz.md "postly-admin" and docs/webhooks.md describe them:
 *
 *   accounts add --workspace WS --platform P --name NAME [--remote-account ID]
 *                [--board ID[=NAME]]... [--location ID[=NAME]]...
 *                                             a (sandbox connector) social account through
 *                                             ex_account_create(); prints it as JSON
 *   accounts list --workspace WS [--platform P] [--state connected|needs_reconnect]
 *   webhooks add --workspace WS --url URL --event TYPE [--event TYPE]... [--description TEXT]
 *                [--allow-http-loopback]      prints the subscription and its secret (once)
 *   webhooks list --workspace WS
 *   webhooks remove ID --workspace WS
 *   webhooks rotate-secret ID --workspace WS  prints the new secret (once)
 *   webhooks deliveries --workspace WS [--webhook ID] [--limit N]
 *   usage [--workspace WS] [--period YYYY-MM] the counters postly-mcp keeps (mcp/usage.h)
 *
 * --allow-http-loopback admits http://127.0.0.1:<port>/... receivers: development and tests
 * only (the subscription remembers it; the dispatcher then connects to loopback for it alone).
 */
#ifndef POSTLY_AUTHZ_ADMIN_EXEC_H
#define POSTLY_AUTHZ_ADMIN_EXEC_H

#include <stddef.h>

#include "authz/admin.h"

/* The commands above, for az_admin_run(). */
extern const az_admin_ext az_admin_exec_cmds[];
extern const size_t az_admin_exec_cmds_count;

#endif
