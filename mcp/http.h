/*
 * mcp/http.h — binds an mcp_server to a core/http server: the MCP endpoint `/mcp`
 * (POST, GET, DELETE, and OPTIONS for browser preflight) and the RFC 9728 protected resource
 * metadata at both well-known paths.
 *
 * Thread: the event loop's thread (core/http.h).
 */
#ifndef POSTLY_MCP_HTTP_H
#define POSTLY_MCP_HTTP_H

#include "core/http.h"
#include "mcp/server.h"

/* The path of the MCP endpoint. */
#define MCP_ENDPOINT_PATH "/mcp"

/* Adds the routes to h. srv is borrowed and must outlive h. PL_ERR_EXISTS / PL_ERR_NOMEM as
 * core_http_routes_add. */
pl_rc mcp_http_attach(core_http *h, mcp_server *srv);

#endif
