// tests/hostile/lib.mjs — shared harness of the hostile, load and crash suites: starts the real
// postly-authz and postly-mcp binaries (the CTest build is ASan+UBSan) on port 0 with one
// mkdtemp data directory, keeps their whole stderr so sanitizer reports can be asserted absent,
// mints tokens with tests/mcp's mcp_fixture (a real grant in the authorization server's store,
// signed with the data directory's key set), and offers HTTP helpers (node:http and raw sockets).
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export const MCP_HOST = 'mcp.hostile.test';
export const RESOURCE = `http://${MCP_HOST}/mcp`;

export function parseArgs() {
  const a = {};
  for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  return a;
}

export class Harness {
  constructor(args, name, watchdogS) {
    this.args = args;
    this.failures = 0;
    this.data = fs.mkdtempSync(path.join(os.tmpdir(), `postly-${name}-`));
    this.spawned = [];
    this.stderr = new Map(); // label -> collected stderr text (all generations of a process)
    for (const f of [args.authz, args.mcp, args.fixture]) {
      try {
        fs.accessSync(f, fs.constants.X_OK);
      } catch {
        console.log(`SKIP ${f} is not built (build postly-authz, postly-mcp and mcp_fixture)`);
        process.exit(77);
      }
    }
    process.on('exit', () => {
      for (const c of this.spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      fs.rmSync(this.data, { recursive: true, force: true });
    });
    setTimeout(() => {
      console.log(`FAIL watchdog: the test did not finish within ${watchdogS} s`);
      process.exit(1);
    }, watchdogS * 1000).unref();
    // A policy without rate rules for the load test is written by the caller when needed.
    this.policy = args.policy;
  }

  check(cond, what) {
    console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
    if (!cond) this.failures++;
    return cond;
  }

  track(child, label) {
    this.spawned.push(child);
    let text = this.stderr.get(label) || '';
    this.stderr.set(label, text);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c) => {
      text += c;
      this.stderr.set(label, text);
    });
    child.on('error', (e) => {
      console.log(`FAIL ${label}: ${e.message}`);
      process.exit(1);
    });
    return child;
  }

  // Waits until every pattern matched a line of the child's stdout.
  lines(child, pattern) {
    return new Promise((resolve, reject) => {
      const seen = {};
      readline.createInterface({ input: child.stdout }).on('line', (l) => {
        for (const [k, re] of Object.entries(pattern)) {
          const m = l.match(re);
          if (m && !(k in seen)) seen[k] = m[1];
        }
        if (Object.keys(seen).length === Object.keys(pattern).length) resolve(seen);
      });
      child.once('exit', (c, s) => reject(new Error(`${child.spawnfile} exited with ${c ?? s}`)));
    });
  }

  async startAuthz(port = 0) {
    const c = this.track(spawn(this.args.authz, ['--data', this.data, '--port', String(port), '--resource',
      RESOURCE, '--demo', '--policy', this.policy, '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] }), 'postly-authz');
    const pat = { port: /listening on http:\/\/127\.0\.0\.1:(\d+)/ };
    if (!this.password) pat.password = /password (\S+)/;
    const m = await this.lines(c, pat);
    if (m.password) this.password = m.password;
    this.authz = c;
    this.aport = Number(m.port);
    this.issuer = `http://127.0.0.1:${this.aport}`;
    return c;
  }

  async startMcp(extra = []) {
    const c = this.track(spawn(this.args.mcp, ['--listen', '127.0.0.1:0', '--print-port', '--url', RESOURCE,
      '--authz', this.issuer, '--data', this.data, '--policy', this.policy, '--allow-host', MCP_HOST,
      '--log-level', 'warn', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }), 'postly-mcp');
    this.mcp = c;
    this.mport = Number((await this.lines(c, { port: /^(\d+)$/ })).port);
    return c;
  }

  // A token for a real grant (mcp_fixture): [token, gid].
  mint(ws, scopes, { iss = this.issuer, aud = RESOURCE, cls = 'preregistered', life = '600', plan } = {}) {
    const env = { ...process.env };
    if (plan) env.MCP_FIXTURE_PLAN = plan;
    return execFileSync(this.args.fixture, ['mint', this.data, iss, aud, ws, cls, life, ...scopes], { env })
      .toString().trim().split(' ');
  }

  revoke(gid) {
    execFileSync(this.args.fixture, ['revoke', this.data, gid]);
  }

  // The token re-signed with the data directory's real private key after patching its claims
  // (and header): expired, not-yet-valid and similar tokens that only the clock makes invalid.
  resign(token, claims, header = {}) {
    const [hd, pl] = token.split('.');
    const head = { ...JSON.parse(Buffer.from(hd, 'base64url')), ...header };
    const body = { ...JSON.parse(Buffer.from(pl, 'base64url')), ...claims };
    const key = fs.readFileSync(path.join(this.data, 'keys', `${head.kid}.pem`));
    const input = `${Buffer.from(JSON.stringify(head)).toString('base64url')}.${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
    const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  }

  account(ws, platform, name) {
    return execFileSync(this.args.fixture, ['account', this.data, ws, platform, name]).toString().trim();
  }

  // Asserts that no sanitizer report reached a process's stderr.
  sanitizerClean(label) {
    const t = this.stderr.get(label) || '';
    const bad = /ERROR: AddressSanitizer|runtime error|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer/.exec(t);
    if (bad) console.log(t.slice(Math.max(0, bad.index - 200), bad.index + 3000));
    return this.check(!bad, `${label}: no ASan/UBSan/LSan report on stderr`);
  }

  // SIGTERM and wait: exit 0 within 15 s.
  stop(child, label) {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        this.check(false, `${label} was still running before SIGTERM (exit ${child.exitCode ?? child.signalCode})`);
        resolve();
        return;
      }
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      child.once('exit', (code, sig) => {
        clearTimeout(t);
        this.check(code === 0, `${label} exits cleanly on SIGTERM (exit ${code ?? sig})`);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  kill9(child) {
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  finish() {
    console.log(this.failures ? `${this.failures} FAILED` : 'all passed');
    process.exit(this.failures ? 1 : 0);
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// One HTTP request; no redirects followed. Resolves {status, headers, body}; rejects on a
// network error (ECONNRESET ...).
export function request(port, method, target, headers, body, opts = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: target, headers,
      agent: opts.agent === undefined ? agent : opts.agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
    });
    r.on('error', reject);
    if (opts.timeoutMs) r.setTimeout(opts.timeoutMs, () => r.destroy(new Error('timeout')));
    if (body) r.write(body);
    r.end();
  });
}

// Raw bytes over a fresh socket; resolves with everything the server sent until it closed the
// connection or `waitMs` passed without more data (then the socket is destroyed).
export function raw(port, bytes, waitMs = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const got = [];
    let timer;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(got).toString('latin1'));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, waitMs);
    };
    s.on('connect', () => {
      s.write(bytes);
      arm();
    });
    s.on('data', (c) => {
      got.push(c);
      arm();
    });
    s.on('error', done);
    s.on('close', done);
  });
}

export function pkce() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url') };
}

// The OAuth flow over HTTP against postly-authz: DCR (public client), /authorize, login,
// consent (approve), /token. Returns {clientId, tokens, jar, redirect}.
export async function oauthFlow(h, scope) {
  const aport = h.aport;
  const ah = { Host: `127.0.0.1:${aport}` };
  const redirect = 'http://127.0.0.1:9/cb';
  let r = await request(aport, 'POST', '/register', { ...ah, 'Content-Type': 'application/json' },
    JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: 'none', client_name: 'hostile' }));
  const clientId = JSON.parse(r.body).client_id;
  const { verifier, challenge } = pkce();
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirect,
    code_challenge: challenge, code_challenge_method: 'S256', state: 's1', resource: RESOURCE, scope });
  r = await request(aport, 'GET', `/authorize?${q}`, ah);
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers['set-cookie'] || []) {
      const kv = c.split(';')[0];
      jar.set(kv.split('=')[0], kv);
    }
  };
  const cookie = () => [...jar.values()].join('; ');
  keep(r);
  const loginUrl = r.headers.location;
  r = await request(aport, 'GET', loginUrl, { ...ah, Cookie: cookie() });
  keep(r);
  const fields = new URLSearchParams(formFields(r.body).filter(([n]) => ['csrf', 'rid', 'next'].includes(n)));
  fields.set('username', 'demo');
  fields.set('password', h.password);
  const post = { ...ah, 'Content-Type': 'application/x-www-form-urlencoded', Origin: `http://127.0.0.1:${aport}` };
  r = await request(aport, 'POST', '/login', { ...post, Cookie: cookie() }, fields.toString());
  keep(r);
  const consentUrl = r.headers.location;
  r = await request(aport, 'GET', consentUrl, { ...ah, Cookie: cookie() });
  keep(r);
  const consentPage = r;
  const consent = new URLSearchParams(formFields(r.body, 'consent-form'));
  consent.set('action', 'approve');
  r = await request(aport, 'POST', '/consent', { ...post, Cookie: cookie() }, consent.toString());
  const code = r.headers.location && new URL(r.headers.location).searchParams.get('code');
  r = await request(aport, 'POST', '/token', { ...ah, 'Content-Type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirect,
      client_id: clientId, code_verifier: verifier, resource: RESOURCE }).toString());
  return { clientId, tokens: JSON.parse(r.body), status: r.status, cookie, keep, consentPage, consentUrl,
    loginUrl, redirect };
}

export function formFields(html, id) {
  const part = id ? html.slice(html.indexOf(`id="${id}"`)) : html;
  return [...part.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"[^>]*>/g)].map((m) => [m[1], m[2]]);
}

// An MCP session: initialize with a token; returns a call(method, params) helper.
export async function mcpSession(port, token, version = '2025-11-25') {
  const base = { Host: MCP_HOST, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${token}` };
  const r = await request(port, 'POST', '/mcp', base, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'hostile', version: '1' } } }));
  if (r.status !== 200) throw new Error(`initialize: ${r.status} ${r.body.slice(0, 200)}`);
  const headers = { ...base, 'MCP-Session-Id': r.headers['mcp-session-id'], 'MCP-Protocol-Version': version };
  let id = 2;
  const rpc = async (method, params) => {
    const res = await request(port, 'POST', '/mcp', headers, JSON.stringify({ jsonrpc: '2.0', id: id++, method, params }));
    let j = null;
    try {
      j = JSON.parse(res.body);
    } catch { /* not JSON */ }
    return { ...res, json: j };
  };
  const tool = async (name, args) => {
    const res = await rpc('tools/call', { name, arguments: args });
    const result = res.json && res.json.result;
    return { ...res, result, data: result && result.structuredContent,
      isError: !!(result && result.isError), text: result && result.content && result.content[0] && result.content[0].text };
  };
  return { headers, rpc, tool };
}
