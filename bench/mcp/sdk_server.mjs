// bench/mcp/sdk_server.mjs — baseline (b) of the tools/call benchmark: the official MCP
// TypeScript SDK (@modelcontextprotocol/sdk) in its stateless Streamable HTTP mode (a server
// and a transport per request, as the SDK's stateless example does), with bearer JWT
// verification (jose, ES256 against the same JWKS, iss/aud checked) and the same two tools
// doing the same work in memory: a read (the workspace record) and a write (a draft).
//   node sdk_server.mjs JWKS_FILE ISSUER AUDIENCE   prints its port, serves until killed.
// Packages resolve from $POSTLY_NODE_MODULES (tests/node/node_modules).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.POSTLY_NODE_MODULES, 'resolve-from-here.js'));
const express = require('express');
const jose = require('jose');
const { z } = require('zod');
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { requireBearerAuth } = require('@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js');

const [jwksFile, issuer, audience] = process.argv.slice(2);
const jwks = jose.createLocalJWKSet(JSON.parse(fs.readFileSync(jwksFile, 'utf8')));
const workspace = { id: 'ws_bench', name: 'ws_bench', plan: 'enterprise', timezone: 'UTC',
  settings: {}, version: 1, created_at: '2026-11-29T05:00:00.000Z',
  updated_at: '2026-11-29T05:00:00.000Z' };
const drafts = new Map();
let seq = 0;

function newServer() {
  const server = new McpServer({ name: 'sdk-bench', version: '1.0.0' });
  server.registerTool('postly_get_workspace', {
    description: 'Returns the workspace.', inputSchema: {},
    annotations: { readOnlyHint: true },
  }, async () => ({ content: [{ type: 'text', text: JSON.stringify(workspace) }],
    structuredContent: workspace }));
  server.registerTool('postly_create_draft', {
    description: 'Creates a draft.',
    inputSchema: { text: z.string().max(65536).optional(), notes: z.string().max(4000).optional() },
  }, async (args) => {
    const d = { id: `drf_${++seq}`, ...args, version: 1 };
    drafts.set(d.id, d);
    return { content: [{ type: 'text', text: JSON.stringify(d) }], structuredContent: d };
  });
  return server;
}

const app = express();
app.use(express.json({ limit: '8mb' }));
app.use('/mcp', requireBearerAuth({
  verifier: {
    async verifyAccessToken(token) {
      const { payload } = await jose.jwtVerify(token, jwks, { issuer, audience,
        algorithms: ['ES256'], typ: 'at+jwt' });
      return { token, clientId: payload.client_id, scopes: String(payload.scope).split(' '),
        expiresAt: payload.exp };
    },
  },
}));
app.post('/mcp', async (req, res) => {
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined,
    enableJsonResponse: true });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
const listener = app.listen(0, '127.0.0.1', () => {
  console.log(listener.address().port);
});
