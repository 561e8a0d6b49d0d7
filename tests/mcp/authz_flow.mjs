// tests/mcp/authz_flow.mjs — postly-mcp with tokens issued by the real postly-authz (not the
// test fixture): both binaries on port 0 with one data directory, then over HTTP only:
// dynamic client registration, /authorize (PKCE S256, resource), login and consent forms,
// /token, MCP initialize and tool calls, a 403 step-up naming granted + needed scopes, the
// protected resource metadata pointing at the authorization server, and after /revoke the next
// MCP call refused with 401 invalid_token. Guards the contract between the two servers (iss,
// aud, cls, gid, scope names, JWKS). The browser and SDK-driven version is issue 7's e2e test.
//
// usage: node authz_flow.mjs --mcp BIN --authz BIN --policy FILE
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { harness } from './harness.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const { data, need, track } = harness('postly-flow-', 90);
const MCP_HOST = 'mcp.flow.test';
const RESOURCE = `http://${MCP_HOST}/mcp`;
const children = [];
let failures = 0;

function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}

// One HTTP request; no redirects followed; cookies carried by the caller.
function request(port, method, target, headers, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { b += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
    });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

// Waits until every pattern matched a line of the child's stdout or stderr.
function lines(child, pattern) {
  return new Promise((resolve, reject) => {
    const seen = {};
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (l) => {
        for (const [k, re] of Object.entries(pattern)) {
          const m = l.match(re);
          if (m && !(k in seen)) seen[k] = m[1];
        }
        if (Object.keys(seen).length === Object.keys(pattern).length) resolve(seen);
      });
    }
    child.once('exit', (c) => reject(new Error(`${child.spawnfile} exited with ${c}`)));
  });
}

async function main() {
  need(args.authz);
  need(args.mcp);
  const authz = track(spawn(args.authz, ['--data', data, '--port', '0', '--resource', RESOURCE, '--demo',
    '--policy', args.policy, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(authz);
  const a = await lines(authz, { port: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    password: /password (\S+)/ });
  const aport = Number(a.port);
  const issuer = `http://127.0.0.1:${aport}`;

  const mcp = track(spawn(args.mcp, ['--listen', '127.0.0.1:0', '--print-port', '--url', RESOURCE,
    '--authz', issuer, '--jwks-uri', `${issuer}/jwks`, '--data', data, '--policy', args.policy,
    '--allow-host', MCP_HOST, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  children.push(mcp);
  const mport = Number((await lines(mcp, { port: /^(\d+)$/ })).port);

  // Discovery: 401 → protected resource metadata → the authorization server.
  const mh = { Host: MCP_HOST, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'flow', version: '1' } } });
  let r = await request(mport, 'POST', '/mcp', mh, init);
  check(r.status === 401 && /resource_metadata="http:\/\/mcp\.flow\.test\/\.well-known\/oauth-protected-resource\/mcp"/.test(r.headers['www-authenticate']),
    '401 names the protected resource metadata');
  r = await request(mport, 'GET', '/.well-known/oauth-protected-resource/mcp', { Host: MCP_HOST });
  const prm = JSON.parse(r.body);
  check(prm.resource === RESOURCE && prm.authorization_servers[0] === issuer,
    'metadata: resource and authorization server');

  // Registration, authorization with PKCE, login and consent.
  const ah = { Host: `127.0.0.1:${aport}` };
  r = await request(aport, 'POST', '/register', { ...ah, 'Content-Type': 'application/json' },
    JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none', client_name: 'flow' }));
  check(r.status === 201, 'dynamic client registration');
  const clientId = JSON.parse(r.body).client_id;
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: 'http://127.0.0.1:9/cb',
    code_challenge: challenge, code_challenge_method: 'S256', state: 's1', resource: RESOURCE,
    scope: prm.scopes_supported.join(' ') + ' posts:read' });
  r = await request(aport, 'GET', `/authorize?${q}`, ah);
  const jar = new Map(); // cookie name -> "name=value" (a later Set-Cookie replaces)
  const keep = (res) => {
    for (const c of res.headers['set-cookie'] || []) {
      const kv = c.split(';')[0];
      jar.set(kv.split('=')[0], kv);
    }
  };
  const cookies = { join: () => [...jar.values()].join('; ') };
  keep(r);
  r = await request(aport, 'GET', r.headers.location, { ...ah, Cookie: cookies.join('; ') });
  keep(r);
  const form = (html, id) => {
    const part = id ? html.slice(html.indexOf(`id="${id}"`)) : html;
    return [...part.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"[^>]*>/g)].map((m) => [m[1], m[2]]);
  };
  const fields = new URLSearchParams(form(r.body).filter(([n]) => ['csrf', 'rid', 'next'].includes(n)));
  fields.set('username', 'demo');
  fields.set('password', a.password);
  const post = { ...ah, 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://127.0.0.1:${aport}` };
  r = await request(aport, 'POST', '/login', { ...post, Cookie: cookies.join('; ') }, fields.toString());
  keep(r);
  check(r.status === 303, 'login');
  r = await request(aport, 'GET', r.headers.location, { ...ah, Cookie: cookies.join('; ') });
  keep(r);
  const consent = new URLSearchParams(form(r.body, 'consent-form'));
  consent.set('action', 'approve');
  r = await request(aport, 'POST', '/consent', { ...post, Cookie: cookies.join('; ') }, consent.toString());
  if (r.status !== 303) console.log(r.status, r.body.slice(0, 300));
  const code = new URL(r.headers.location).searchParams.get('code');
  check(!!code, 'consent gives a code');
  r = await request(aport, 'POST', '/token', { ...ah, 'Content-Type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/cb',
      client_id: clientId, code_verifier: verifier, resource: RESOURCE }).toString());
  const tok = JSON.parse(r.body);
  check(r.status === 200 && tok.access_token, `token (scope: ${tok.scope})`);

  // MCP with the issued token.
  const auth = { ...mh, Authorization: `Bearer ${tok.access_token}` };
  r = await request(mport, 'POST', '/mcp', auth, init);
  check(r.status === 200 && r.headers['mcp-session-id'], 'initialize with the issued token');
  const sess = { ...auth, 'MCP-Session-Id': r.headers['mcp-session-id'], 'MCP-Protocol-Version': '2025-11-25' };
  const callTool = (name, a2) => request(mport, 'POST', '/mcp', sess, JSON.stringify({
    jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: a2 } }));
  r = await callTool('postly_get_workspace', {});
  const ws = JSON.parse(r.body).result?.structuredContent;
  check(r.status === 200 && ws && ws.id, `postly_get_workspace acts in ${ws && ws.id}`);
  r = await callTool('postly_list_posts', {});
  check(r.status === 200 && JSON.parse(r.body).result?.isError === false, 'postly_list_posts');
  r = await callTool('postly_publish_post', { post_id: 'pst_x' });
  const wa = r.headers['www-authenticate'] || '';
  check(r.status === 403 && /error="insufficient_scope"/.test(wa) && /posts:publish/.test(wa) && /workspace:read/.test(wa),
    `step-up: ${wa}`);

  // Revocation (RFC 7009 on the refresh token revokes the grant): the next call is refused.
  r = await request(aport, 'POST', '/revoke', { ...ah, 'Content-Type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ token: tok.refresh_token, client_id: clientId }).toString());
  check(r.status === 200, 'revoke');
  r = await request(mport, 'POST', '/mcp', sess, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }));
  check(r.status === 401 && /invalid_token/.test(r.headers['www-authenticate']), 'revoked grant: 401 at the next call');
}

main()
  .catch((e) => {
    console.log(`FAIL ${e.stack || e}`);
    failures++;
  })
  .finally(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    fs.rmSync(data, { recursive: true, force: true });
    console.log(failures ? `${failures} failure(s)` : 'all passed');
    process.exit(failures ? 1 : 0);
  });
