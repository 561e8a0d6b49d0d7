// tests/mcp/conformance.mjs — runs the official MCP conformance suite
// (@modelcontextprotocol/conformance, server mode) against the real postly-mcp binary.
//
// The suite cannot send a bearer token, so this harness (never the product) puts a small
// authenticating proxy in front of postly-mcp: it injects `Authorization: Bearer <token>`,
// where the token is minted by keys/ for a real grant created through the authorization
// server's store (tests/mcp/mcp_fixture). postly-mcp's canonical URL is the proxy's URL (the
// token's audience), as behind any reverse proxy, and its Host/Origin allow-lists name it.
//
// usage: node conformance.mjs --mcp BIN --fixture BIN --policy FILE --cli DIST_INDEX_JS
//                             --expected FILE [--scenario NAME] [--results DIR]
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { harness } from './harness.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['mcp', 'fixture', 'policy', 'cli', 'expected']) {
  if (!args[k]) {
    console.error(`conformance.mjs: --${k} is required`);
    process.exit(2);
  }
}

const ALL_SCOPES = (
  'workspace:read workspace:list posts:read posts:create posts:update posts:delete ' +
  'posts:schedule posts:publish posts:status:read drafts:read drafts:create drafts:update ' +
  'drafts:delete media:read media:upload media:update media:delete campaigns:read ' +
  'campaigns:create campaigns:update campaigns:delete social_accounts:read social_accounts:list ' +
  'analytics:read analytics:facebook:read analytics:instagram:read analytics:pinterest:read ' +
  'analytics:youtube:read analytics:gmb:read analytics:linkedin:read analytics:x:read'
).split(' ');
const ISSUER = 'http://127.0.0.1:1';

const { data, need, track } = harness('postly-conformance-', 240);

let mcp = null;
let upstreamPort = 0;
let token = '';

// The proxy: forwards every request unchanged (Host and Origin included, so the server's own
// DNS-rebinding checks are what the suite sees) and adds the bearer token.
const proxy = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  const up = http.request(
    { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers },
    (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    },
  );
  up.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy: ${e.message}`);
  });
  req.pipe(up);
});

function cleanup() {
  if (mcp && mcp.exitCode === null) mcp.kill('SIGTERM');
  proxy.close();
  fs.rmSync(data, { recursive: true, force: true });
}

async function main() {
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const port = proxy.address().port;
  const url = `http://127.0.0.1:${port}/mcp`;

  need(args.mcp);
  need(args.fixture);
  const out = execFileSync(args.fixture, [
    'mint', data, ISSUER, url, 'ws_conformance', 'preregistered', '3600', ...ALL_SCOPES,
  ]).toString().trim();
  token = out.split(' ')[0];

  mcp = track(spawn(args.mcp, [
    '--listen', '127.0.0.1:0', '--print-port', '--url', url, '--authz', ISSUER,
    '--data', data, '--policy', args.policy,
    '--allow-host', `127.0.0.1:${port},localhost:${port},[::1]:${port}`,
    '--allow-origin', `http://127.0.0.1:${port},http://localhost:${port},http://[::1]:${port}`,
    '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'inherit'] }));
  upstreamPort = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: mcp.stdout });
    rl.once('line', (l) => resolve(Number(l)));
    mcp.once('exit', (code) => reject(new Error(`postly-mcp exited with ${code}`)));
  });

  // Expected failures: "scenario  # reason" lines → the suite's YAML baseline.
  const lines = fs.readFileSync(args.expected, 'utf8').split('\n');
  const names = lines.map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  const yaml = path.join(data, 'expected-failures.yml');
  fs.writeFileSync(yaml, names.length ? 'server:\n' + names.map((n) => `  - ${n}\n`).join('') : 'server: []\n');

  const cliArgs = [args.cli, 'server', '--url', url, '--expected-failures', yaml,
    '-o', args.results || path.join(data, 'results')];
  if (args.scenario) cliArgs.push('--scenario', args.scenario);
  const code = await new Promise((resolve) => {
    const c = track(spawn(process.execPath, cliArgs, { stdio: 'inherit' }));
    c.on('exit', (c2) => resolve(c2 ?? 1));
  });
  return code;
}

main()
  .then((code) => {
    cleanup();
    process.exit(code);
  })
  .catch((e) => {
    console.error(`conformance.mjs: ${e.message}`);
    cleanup();
    process.exit(1);
  });
