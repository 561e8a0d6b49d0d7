// tests/e2e/e2e_client.mjs — the official MCP TypeScript SDK client (@modelcontextprotocol/sdk:
// Client, StreamableHTTPClientTransport, an OAuthClientProvider written here) against
// postly-mcp and postly-authz started with scripts/run.sh's flags (port 0, a fresh data
// directory, --demo with the printed password captured), the login and consent done by Debian's
// Chromium through playwright-core.
//
// One scenario per run (CTest registers each as its own test; each has its own data dir, ports,
// browser profile and watchdog):
//   dcr-loopback     Dynamic Client Registration, loopback redirect on an ephemeral port
//                    (RFC 8252 §7.3) served by this script; the full tool flow
//   dcr-web, prereg-web  DCR / pre-registered, https redirect of a web assistant: Chromium
//                    is stopped at the redirect
//                    by Playwright routing (no https server)
//   prereg-scheme    pre-registered client (postly-admin clients add), private-use URI scheme
//                    redirect (RFC 8252 §7.1), captured from the 303 in Chromium
//   cimd             Client ID Metadata Document served on loopback (postly-authz
//                    --cimd-allow-loopback), loopback redirect; the full tool flow
//   stepup           Read-Only Analytics Assistant only → postly_publish_post → 403
//                    insufficient_scope → the SDK re-authorizes → approve → the call succeeds
//   refresh          the SDK refreshes on 401 and continues; replaying an old refresh token
//                    revokes the family (the client cannot call or refresh afterwards)
//   disconnect       Disconnect on /apps in Chromium → the next call fails at once, no refresh
//
// usage: node e2e_client.mjs --scenario NAME --mcp BIN --authz BIN --admin BIN
//                            --policy FILE --modules NODE_MODULES --artifacts DIR
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const require = createRequire(path.join(path.resolve(args.modules), 'resolve-from-here.js'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { UnauthorizedError } = require('@modelcontextprotocol/sdk/client/auth.js');
const { chromium } = require('playwright-core');

const SCENARIO = args.scenario;
const MCP_HOST = 'mcp.e2e.test'; // the canonical resource URL's host; mapped to the bound port
const RESOURCE = `http://${MCP_HOST}/mcp`;
const T0 = Date.now();
const data = fs.mkdtempSync(path.join(os.tmpdir(), `postly-e2e-${SCENARIO}-`));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), `postly-e2e-chromium-`));
fs.mkdirSync(args.artifacts, { recursive: true });
let failures = 0;
let browser = null;
// postly-mcp's --leeway (token exp/nbf clock skew, seconds): small, so the refresh flow waits
// for an access token to expire about 30 s less than with the default 30.
const MCP_LEEWAY_S = 1;
const spawned = [];
const servers = [];

process.on('exit', () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(profile, { recursive: true, force: true });
});
setTimeout(() => {
  console.log('FAIL watchdog: the scenario did not finish within 150 s');
  process.exit(1);
}, 150000).unref();

function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} [${((Date.now() - T0) / 1000).toFixed(1)}s] ${what}`);
  if (!cond) failures++;
  return cond;
}
function need(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    console.log(`SKIP ${file} is not built`);
    process.exit(77);
  }
}
function track(child) {
  spawned.push(child);
  child.on('error', (e) => {
    console.log(`FAIL ${child.spawnfile}: ${e.message}`);
    process.exit(1);
  });
  return child;
}
// Resolves once every pattern matched a line of the child's stdout or stderr (lines are echoed).
function lines(child, pattern) {
  return new Promise((resolve, reject) => {
    const seen = {};
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (l) => {
        if (!/password/.test(l)) console.log(`  | ${l}`);
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

// ---- the two servers, as scripts/run.sh starts them (port 0 instead of 8080/8081) ----
// refresh: access tokens of ACCESS_TTL s, so they really expire; cimd: the test-only option
// that lets postly-authz fetch a client metadata document from http://127.0.0.1.
const ACCESS_TTL = 2;
const AUTHZ_EXTRA = { refresh: ['--access-ttl', String(ACCESS_TTL)], cimd: ['--cimd-allow-loopback'] };
async function startServers() {
  need(args.authz);
  need(args.mcp);
  need(args.admin);
  fs.chmodSync(data, 0o700);
  const authz = track(spawn(args.authz, ['--data', data, '--host', '127.0.0.1', '--port', '0',
    '--resource', RESOURCE, '--demo', '--policy', args.policy, '--log-level', 'warn', ...AUTHZ_EXTRA[SCENARIO] || []],
  { stdio: ['ignore', 'pipe', 'pipe'] }));
  const a = await lines(authz, { port: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    password: /demo user created: username demo, password (\S+)/ });
  const issuer = `http://127.0.0.1:${a.port}`;
  // A sandbox LinkedIn account in the demo workspace, as scripts/run.sh seeds them.
  const account = JSON.parse(execFileSync(args.admin, ['--data', data, 'accounts', 'add', '--workspace', 'demo',
    '--platform', 'linkedin', '--name', 'Demo Company']).toString()).id;
  const mcp = track(spawn(args.mcp, ['--listen', '127.0.0.1:0', '--print-port', '--url', RESOURCE,
    '--authz', issuer, '--data', data, '--policy', args.policy, '--allow-host', MCP_HOST,
    '--leeway', String(MCP_LEEWAY_S), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const m = await lines(mcp, { port: /^(\d+)$/ });
  return { issuer, password: a.password, mport: Number(m.port), account };
}

// fetch for the SDK: requests to the canonical MCP host go to the bound port with the canonical
// Host header (undici's fetch does not let a caller set Host); the body streams (SSE).
function hostFetch(mport, log) {
  return (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.host !== MCP_HOST) {
      return fetch(input, init).then((res) => {
        if (log) log.push({ method: init.method || 'GET', path: url.pathname, status: res.status, www: '', authz: true });
        return res;
      });
    }
    return new Promise((resolve, reject) => {
      const headers = {};
      new Headers(init.headers || {}).forEach((v, k) => { headers[k] = v; });
      headers.host = MCP_HOST;
      const req = http.request({ host: '127.0.0.1', port: mport, method: init.method || 'GET',
        path: url.pathname + url.search, headers }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        if (process.env.E2E_DEBUG) console.log(`  > ${init.method || 'GET'} ${url.pathname} ${res.statusCode} ${res.headers['www-authenticate'] || ''}`);
        if (log) log.push({ method: init.method || 'GET', path: url.pathname, status: res.statusCode,
          www: res.headers['www-authenticate'] || '' });
        const nobody = res.statusCode === 204 || res.statusCode === 304 || init.method === 'HEAD';
        resolve(new Response(nobody ? null : Readable.toWeb(res), { status: res.statusCode, headers: h }));
      });
      req.on('error', reject);
      if (init.signal) init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
      if (init.body) req.write(init.body);
      req.end();
    });
  };
}

// ---- the client's OAuthClientProvider (kept in memory, as a CLI client keeps its file) ----
class Provider {
  constructor(redirectUrl, metadata, preset) {
    this._redirectUrl = redirectUrl;
    this._metadata = metadata;
    this._client = preset; // pre-registered / CIMD: client information known up front
    this._tokens = undefined;
    this._verifier = undefined;
    this.authUrls = []; // every authorization URL the SDK sent the user to
    this.saved = []; // every token set the SDK saved
    this.registered = 0;
    this.lastMcpStatus = 0; // set by the fetch log: refresh on 401, re-authorize on 403
  }
  get redirectUrl() { return this._redirectUrl; }
  get clientMetadata() { return this._metadata; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; this.registered++; }
  // A client refreshes when its access token was refused (401); on 403 insufficient_scope it
  // needs the user's approval for more scopes, which a refresh cannot give (RFC 6749 §6), so
  // it does not offer its refresh token then (the SDK would otherwise refresh, retry, and fail).
  tokens() {
    if (!this._tokens) return undefined;
    if (this.lastMcpStatus === 403) {
      const { refresh_token: _unused, ...rest } = this._tokens;
      return rest;
    }
    return this._tokens;
  }
  saveTokens(t) { this._tokens = t; this.saved.push(t); }
  redirectToAuthorization(url) { this.authUrls.push(new URL(url)); }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  invalidateCredentials(what) {
    if (what === 'all' || what === 'tokens') this._tokens = undefined;
    if (what === 'all' || what === 'client') this._client = undefined;
  }
}

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

// ---- the browser: log in when asked, pick on the consent page, approve; capture the redirect
async function openBrowser() {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

let shots = 0;
async function shot(page, name) {
  const file = path.join(args.artifacts, `${SCENARIO}-${String(++shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

// Drives one authorization in Chromium and returns the redirect as the client receives it:
// the loopback server's request (loopback), the routed request Chromium was stopped at (https),
// or the Location of the authorization server's 303 that Chromium hands to the OS (private-use
// scheme). `choose(page)` picks scopes before approving (default: none, the page's
// preselection — what was asked — is approved as it is).
async function authorizeInBrowser(env, url, choose) {
  const ctx = env.browser;
  const page = await ctx.newPage();
  const hit = new Promise((r) => env.waiters.push(r));
  if (env.style === 'scheme') {
    page.on('response', (res) => {
      const loc = res.headers().location;
      if (loc && res.status() >= 300 && res.status() < 400 && loc.startsWith(env.redirect)) env.deliver(new URL(loc));
    });
  }
  const step = (w) => console.log(`  browser [${((Date.now() - T0) / 1000).toFixed(1)}s] ${w}`);
  step(`open ${url.pathname}`);
  await page.goto(url.href, { waitUntil: 'domcontentloaded' }).catch(() => {});
  step(`at ${page.url().slice(0, 60)}`);
  const which = await Promise.race([
    hit.then(() => 'done'),
    page.waitForSelector('#username', { timeout: 20000 }).then(() => 'login'),
    page.waitForSelector('#approve', { timeout: 20000 }).then(() => 'consent'),
  ]);
  if (which === 'login') {
    await page.fill('#username', 'demo');
    await page.fill('#password', env.password);
    await Promise.all([page.waitForURL(/\/consent\?/), page.click('#signin')]);
    step('signed in');
  }
  if (which !== 'done') {
    await page.waitForSelector('#approve');
    const pre = await page.$$eval('input[name=scope]:checked', (els) => els.map((e) => e.value));
    console.log(`  consent page preselects: ${pre.join(' ')}`);
    if (choose) {
      await choose(page);
    } else {
      // No box is ticked here: the page must preselect every scope asked for that can be
      // granted, a step-up's new scope included.
      const asked = (url.searchParams.get('scope') || '').split(' ').filter(Boolean);
      const enabled = await page.$$eval('input[name=scope]:not(:disabled)', (els) => els.map((e) => e.value));
      const want = asked.filter((x) => enabled.includes(x));
      check(want.length > 0 && want.every((x) => pre.includes(x)) && pre.every((x) => asked.includes(x)),
        `the consent page preselects what was asked (${want.join(' ')})`);
    }
    await shot(page, 'consent');
    step('approve');
    page.click('#approve').catch(() => {}); // the redirect below is what counts
  }
  let timer;
  const loc = await Promise.race([hit, new Promise((_, reject) => {
    timer = setTimeout(async () => {
      const text = await Promise.race([page.textContent('body').catch(() => ''),
        new Promise((r) => setTimeout(() => r('(page does not answer)'), 3000))]);
      reject(new Error(`no redirect to ${env.redirect} within 20 s; page ${page.url()}: ${text.replace(/\s+/g, ' ').slice(0, 400)}`));
    }, 20000);
  })]).finally(() => clearTimeout(timer));
  // Not awaited: closing a page whose navigation to the callback is still settling can hang.
  page.close().catch(() => {});
  return loc;
}

// Runs `op`; when the SDK sends the user to authorize (UnauthorizedError), does it in the
// browser, hands the code to the transport (finishAuth), and runs `op` again.
async function withAuth(env, op, choose) {
  for (let round = 0; round < 3; round++) {
    const before = env.provider.authUrls.length;
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof UnauthorizedError) || env.provider.authUrls.length === before) throw e;
      const url = env.provider.authUrls.at(-1);
      console.log(`  authorize: scope=${url.searchParams.get('scope')}`);
      const loc = await authorizeInBrowser(env, url, choose);
      check(loc.searchParams.get('state') === url.searchParams.get('state') && loc.searchParams.get('iss') === env.issuer,
        `redirect to ${loc.protocol}//${loc.host}${loc.pathname} carries state and iss`);
      await env.transport.finishAuth(loc.searchParams.get('code'));
    }
  }
  throw new Error('authorization did not converge');
}

async function connect(env) {
  const mk = () => {
    env.transport = new StreamableHTTPClientTransport(new URL(RESOURCE),
      { authProvider: env.provider, fetch: env.fetch });
    env.client = new Client({ name: 'postly-e2e', version: '1.0.0' });
    return env.client.connect(env.transport);
  };
  let first = true;
  await withAuth(env, async () => {
    if (!first) await env.client.close().catch(() => {});
    first = false;
    return mk();
  });
}

// ---- the redirect styles ----
async function loopbackCallback(deliver) {
  const hits = [];
  const srv = http.createServer((req, res) => {
    hits.push(new URL(req.url, 'http://127.0.0.1'));
    res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end('You can close this window.');
    deliver(new URL(req.url, `http://127.0.0.1:${srv.address().port}`));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  return { redirect: `http://127.0.0.1:${srv.address().port}/callback`, hits };
}

async function setup(style, registration) {
  const env = { ...(await startServers()), log: [], style, waiters: [] };
  // Only an authorization response counts (Chromium also asks the loopback server for /favicon.ico).
  env.deliver = (u) => {
    if (!u.searchParams.has('code') && !u.searchParams.has('error')) return;
    const w = env.waiters.shift();
    if (w) w(u);
  };
  env.fetch = hostFetch(env.mport, env.log);
  env.browser = await openBrowser();
  if (style === 'loopback') {
    const cb = await loopbackCallback(env.deliver);
    env.redirect = cb.redirect;
    env.hits = cb.hits;
  } else if (style === 'web') {
    env.redirect = 'https://assistant.example.com/oauth/callback';
    env.hits = [];
    await env.browser.route('https://assistant.example.com/**', (route) => {
      env.hits.push(new URL(route.request().url()));
      env.deliver(new URL(route.request().url()));
      return route.fulfill({ status: 200, contentType: 'text/plain', body: 'assistant callback' });
    });
  } else {
    env.redirect = 'com.example.editor:/callback';
    env.hits = [];
  }
  const metadata = { client_name: `E2E ${SCENARIO}`, redirect_uris: [env.redirect],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    token_endpoint_auth_method: 'none' };
  let preset;
  if (registration === 'cimd') {
    // A Client ID Metadata Document served here on loopback; postly-authz runs with the
    // test-only --cimd-allow-loopback. The SDK's own clientMetadataUrl path accepts only https
    // URLs (isHttpsUrl), so the provider hands the SDK what the SDK itself stores after
    // choosing a URL client_id: { client_id: URL } as client information. Everything else
    // (discovery, PKCE, authorize, token, refresh) is the SDK's.
    env.cimdFetches = 0;
    const srv = http.createServer((req, res) => {
      if (req.url !== '/oauth/client.json') {
        res.writeHead(404).end();
        return;
      }
      env.cimdFetches++;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300' });
      res.end(JSON.stringify({ ...metadata, client_id: env.cimdUrl, client_uri: `http://127.0.0.1:${srv.address().port}/` }));
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    servers.push(srv);
    env.cimdUrl = `http://127.0.0.1:${srv.address().port}/oauth/client.json`;
    preset = { client_id: env.cimdUrl, issuer: env.issuer };
  }
  if (registration === 'prereg') {
    const id = `e2e-${SCENARIO}`;
    // Private-use scheme redirects (RFC 8252 §7.1) are accepted for public clients (--auth none).
    execFileSync(args.admin, ['--data', data, 'clients', 'add', id, '--name', `E2E ${SCENARIO}`,
      '--redirect', env.redirect, '--auth', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
    preset = { client_id: id, issuer: env.issuer };
  }
  env.provider = new Provider(env.redirect, metadata, preset);
  const log = env.log;
  const push = log.push.bind(log);
  log.push = (e) => {
    if (e.path === '/mcp' && !e.authz) env.provider.lastMcpStatus = e.status;
    return push(e);
  };
  return env;
}

async function tool(env, name, a) {
  const r = await withAuth(env, () => env.client.callTool({ name, arguments: a }));
  check(!r.isError && r.structuredContent, `${name}${r.isError ? ': ' + r.content?.[0]?.text : ''}`);
  return r.structuredContent || {};
}

// ---- the discovery and registration chain, as the SDK walked it ----
function checkDiscovery(env, registration) {
  const l = env.log;
  check(l[0] && l[0].path === '/mcp' && l[0].status === 401 && /resource_metadata=/.test(l[0].www),
    '401 with resource_metadata');
  check(l.some((e) => e.path === '/.well-known/oauth-protected-resource/mcp' && e.status === 200),
    'protected resource metadata fetched');
  const u = env.provider.authUrls[0];
  check(u && u.origin === env.issuer && u.pathname === '/authorize', 'authorization server metadata → /authorize');
  check(u && u.searchParams.get('code_challenge_method') === 'S256' && u.searchParams.get('code_challenge')?.length === 43,
    'PKCE S256');
  check(u && u.searchParams.get('resource') === RESOURCE, 'resource indicator = the MCP URL');
  if (registration === 'dcr') check(env.provider.registered === 1 && env.provider._client.client_id, 'dynamic client registration');
  else check(env.provider.registered <= 1 && u.searchParams.get('client_id') === env.provider._client.client_id,
    `client_id ${u && u.searchParams.get('client_id')} (no registration)`);
  const t = env.provider._tokens;
  const c = t && claims(t.access_token);
  check(c && c.aud === RESOURCE && c.iss === env.issuer && c.ws === 'demo', `token: aud, iss, ws (${c && c.scope})`);
}

// The whole tool flow: tools/list, draft, medium, campaign, post scheduled then published
// through the sandbox connector, status and analytics read back.
async function toolFlow(env) {
  const tools = (await env.client.listTools()).tools.map((t) => t.name);
  check(tools.length >= 30 && tools.includes('postly_publish_post'), `tools/list: ${tools.length} tools`);
  const accounts = await tool(env, 'postly_list_social_accounts', {});
  const list = accounts.items || accounts.accounts || [];
  const acc = list.find((x) => x.id === env.account);
  check(!!acc, `the sandbox account is listed: ${JSON.stringify(acc || accounts).slice(0, 160)}`);
  const draft = await tool(env, 'postly_create_draft', { text: 'Launch notes, first cut', idempotency_key: 'e2e-d1' });
  check(/^drf_/.test(draft.id || ''), `draft ${draft.id}`);
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
  const med = await tool(env, 'postly_upload_media', { data_base64: png, filename: 'dot.png' });
  check(/^med_/.test(med.id || ''), `medium ${med.id}`);
  const cmp = await tool(env, 'postly_create_campaign', { name: 'E2E launch', idempotency_key: 'e2e-c1' });
  check(/^cmp_/.test(cmp.id || ''), `campaign ${cmp.id}`);
  const post = await tool(env, 'postly_create_post', { account_ids: [env.account], text: 'We launched (e2e)',
    media_ids: [med.id], campaign_id: cmp.id, idempotency_key: 'e2e-p1' });
  check(/^pst_/.test(post.id || ''), `post ${post.id}`);
  const when = new Date(Date.now() + 3 * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
  const sch = await tool(env, 'postly_schedule_post', { post_id: post.id, scheduled_at: when });
  check(sch.status === 'scheduled', `scheduled for ${when}: ${sch.status}`);
  const pub = await tool(env, 'postly_publish_post', { post_id: post.id, idempotency_key: 'e2e-pub1' });
  check(pub.status === 'published', `published now: ${pub.status}`);
  const st = await tool(env, 'postly_get_post_status', { post_id: post.id });
  check(st.status === 'published', `postly_get_post_status: ${st.status} ${JSON.stringify(st).slice(0, 200)}`);
  // A second post left to the scheduler: due in 2 s, published by postly-mcp's scheduler
  // through the sandbox connector with no further call; we watch its status (bounded).
  const soon = new Date(Date.now() + 2000).toISOString();
  const later = await tool(env, 'postly_create_post', { account_ids: [env.account], text: 'Scheduled (e2e)',
    scheduled_at: soon, idempotency_key: 'e2e-p2' });
  let seen = later.status;
  for (const until = Date.now() + 30000; seen !== 'published' && Date.now() < until;) {
    seen = (await env.client.callTool({ name: 'postly_get_post_status', arguments: { post_id: later.id } }))
      .structuredContent?.status;
    if (seen !== 'published') await new Promise((r) => setTimeout(r, 250)); // poll interval, under the rate limit
  }
  check(seen === 'published', `the scheduler published the post due at ${soon}: ${later.status} → ${seen}`);
  const an = await tool(env, 'postly_get_post_analytics', { post_id: post.id });
  const nums = JSON.stringify(an).match(/"[a-z_]+":\d+/g) || [];
  check(nums.length > 0, `post analytics numbers: ${nums.slice(0, 6).join(' ')}`);
  return post;
}

// ---- scenarios ----
async function registrationFlow(style, registration) {
  const env = await setup(style, registration);
  // The SDK asks for the 401's scope (the read-only default, SEP-835 order); every write tool
  // then steps up on its 403 insufficient_scope: incremental authorization, one consent each.
  await connect(env);
  checkDiscovery(env, registration);
  if (style === 'loopback') check(env.hits.some((u) => u.pathname === '/callback' && u.searchParams.get('code')),
    'the loopback server received the redirect');
  if (style === 'web') check(env.hits.some((u) => u.searchParams.get('code')), 'Chromium stopped at the https callback (routed)');
  if (registration === 'cimd') check(env.provider.authUrls[0].searchParams.get('client_id') === env.cimdUrl && env.cimdFetches >= 1,
    `client_id is the metadata document URL, fetched ${env.cimdFetches} time(s) by postly-authz`);
  if (style === 'scheme') check(env.provider.authUrls[0].searchParams.get('redirect_uri') === 'com.example.editor:/callback',
    'private-use scheme redirect_uri');
  await toolFlow(env);
  return env;
}

// The consent page's "Read-Only Analytics Assistant" bundle, nothing else.
async function readOnlyBundle(page) {
  await page.click('#bundle-analytics-readonly');
}
const READ_ONLY = ['analytics:read', 'social_accounts:read', 'workspace:list', 'workspace:read'];

function scopesOf(env) {
  return claims(env.provider._tokens.access_token).scope.split(' ').sort();
}

// A second client of the same user, connected like the first (its own registration).
async function secondClient(env, name) {
  const other = { ...env, log: [], provider: null };
  other.fetch = hostFetch(env.mport, other.log);
  other.provider = new Provider(env.redirect, { ...env.provider.clientMetadata, client_name: name });
  const push = other.log.push.bind(other.log);
  other.log.push = (e) => {
    if (e.path === '/mcp' && !e.authz) other.provider.lastMcpStatus = e.status;
    return push(e);
  };
  await connect(other);
  return other;
}

async function stepUp() {
  const env = await setup('loopback', 'dcr');
  // Someone with a publishing assistant prepared the post (its own client and grant).
  const writer = await secondClient(env, 'E2E writer');
  const post = await tool(writer, 'postly_create_post', { account_ids: [env.account], text: 'Step-up launch',
    idempotency_key: 'e2e-stepup-p1' });
  // The analytics client: the user picks only the Read-Only Analytics Assistant bundle.
  env.transport = null;
  let first = true;
  await withAuth(env, async () => {
    if (!first) await env.client.close().catch(() => {});
    first = false;
    env.transport = new StreamableHTTPClientTransport(new URL(RESOURCE), { authProvider: env.provider, fetch: env.fetch });
    env.client = new Client({ name: 'postly-e2e-analytics', version: '1.0.0' });
    return env.client.connect(env.transport);
  }, readOnlyBundle);
  check(JSON.stringify(scopesOf(env)) === JSON.stringify(READ_ONLY), `granted only the read-only bundle: ${scopesOf(env).join(' ')}`);
  const auths = env.provider.authUrls.length;
  const n = env.log.length;
  const r = await withAuth(env, () => env.client.callTool({ name: 'postly_publish_post',
    arguments: { post_id: post.id, idempotency_key: 'e2e-stepup-pub' } }));
  const denied = env.log.slice(n).find((e) => e.path === '/mcp' && e.status === 403);
  check(denied && /error="insufficient_scope"/.test(denied.www) && /posts:publish/.test(denied.www),
    `403 insufficient_scope naming posts:publish: ${denied && denied.www}`);
  const asked = env.provider.authUrls[auths];
  check(env.provider.authUrls.length === auths + 1 && asked && asked.searchParams.get('scope').split(' ').includes('posts:publish'),
    `the SDK re-authorized once for ${asked && asked.searchParams.get('scope')} (Allow on the preselected page)`);
  check(scopesOf(env).includes('posts:publish') && READ_ONLY.every((x) => scopesOf(env).includes(x)),
    `new token: ${scopesOf(env).join(' ')}`);
  check(!r.isError && r.structuredContent?.status === 'published', `the retried call succeeded: ${r.structuredContent?.status}`);
  const st = await tool(env, 'postly_get_post_status', { post_id: post.id }).catch((e) => ({ error: String(e) }));
  check(st.status === 'published' || st.error, `status read back: ${st.status || st.error}`);
}

// Waits until the access token has expired for postly-mcp too: exp plus the verifier's clock
// leeway plus one second. postly-mcp runs with --leeway 1 (the default is 30 s), so each wait
// is about 2 s past the token's lifetime instead of 31. Real time passing is what is tested
// here, not a synchronisation.
async function waitExpired(env) {
  const exp = claims(env.provider._tokens.access_token).exp;
  check(exp - claims(env.provider._tokens.access_token).iat === ACCESS_TTL, `access token lifetime ${ACCESS_TTL} s (--access-ttl)`);
  const ms = (exp + MCP_LEEWAY_S + 1) * 1000 - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

async function tokenRequest(env, params) {
  const res = await fetch(`${env.issuer}/token`, { method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: env.provider._client.client_id, resource: RESOURCE, ...params }) });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

async function refresh() {
  const env = await setup('loopback', 'dcr');
  await connect(env);
  const ws = await tool(env, 'postly_get_workspace', {});
  check(ws.id === 'demo', 'first call');
  const rts = [env.provider._tokens.refresh_token];
  for (let i = 1; i <= 2; i++) {
    await waitExpired(env);
    const n = env.log.length;
    const again = await tool(env, 'postly_get_workspace', {});
    const seen = env.log.slice(n).map((e) => `${e.path} ${e.status}`);
    check(seen.includes('/mcp 401') && seen.includes('/token 200'), `refresh ${i}: ${seen.join(', ')}`);
    check(again.id === 'demo' && env.provider.authUrls.length === 1, `refresh ${i}: the call went on without the user`);
    rts.push(env.provider._tokens.refresh_token);
  }
  check(new Set(rts).size === 3, 'refresh tokens rotate on every use');
  // An attacker replays the first refresh token (neither the last nor within its grace).
  const replay = await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rts[0] });
  check(replay.status === 400 && replay.body.error === 'invalid_grant', `replay of an old refresh token: ${replay.status} ${replay.body.error}`);
  const current = await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: rts[2] });
  check(current.status === 400 && current.body.error === 'invalid_grant', `the family is revoked: the current refresh token too (${current.status} ${current.body.error})`);
  await lockedOut(env, 'after the replay');
}

// The client's next call fails; the SDK cannot refresh and falls back to asking the user.
async function lockedOut(env, when) {
  const n = env.log.length;
  const auths = env.provider.authUrls.length;
  let err = null;
  try {
    await env.client.callTool({ name: 'postly_get_workspace', arguments: {} });
  } catch (e) {
    err = e;
  }
  const seen = env.log.slice(n).map((e) => `${e.path} ${e.status}`);
  check(err instanceof UnauthorizedError && env.provider.authUrls.length === auths + 1,
    `${when}: the call fails and the SDK must send the user to /authorize again (${err && err.message})`);
  check(seen[0] === '/mcp 401' && !seen.includes('/token 200'), `${when}: 401, refresh refused: ${seen.join(', ')}`);
}

async function disconnect() {
  const env = await setup('loopback', 'dcr');
  await connect(env);
  check((await tool(env, 'postly_get_workspace', {})).id === 'demo', 'connected');
  const page = await env.browser.newPage();
  await page.goto(`${env.issuer}/apps`);
  const row = page.locator('tr', { hasText: `E2E ${SCENARIO}` });
  check(await row.count() === 1, 'the app is listed on the connected-apps page');
  await shot(page, 'apps');
  await Promise.all([page.waitForURL(`${env.issuer}/apps`, { waitUntil: 'load' }), row.getByRole('button', { name: 'Disconnect' }).click()]);
  const t = Date.now();
  check(await page.locator('tr', { hasText: `E2E ${SCENARIO}` }).count() === 0, 'gone from the page');
  await shot(page, 'apps-after');
  await lockedOut(env, 'after disconnect');
  check(Date.now() - t < 30000, `refused ${Date.now() - t} ms after the disconnect (bound: 30 s)`);
  const rt = await tokenRequest(env, { grant_type: 'refresh_token', refresh_token: env.provider.saved.at(-1).refresh_token });
  check(rt.status === 400 && rt.body.error === 'invalid_grant', `the refresh token is dead: ${rt.status} ${rt.body.error}`);
}

async function scenario() {
  switch (SCENARIO) {
  case 'dcr-loopback': return registrationFlow('loopback', 'dcr');
  case 'dcr-web': return registrationFlow('web', 'dcr');
  case 'prereg-scheme': return registrationFlow('scheme', 'prereg');
  case 'prereg-web': return registrationFlow('web', 'prereg');
  case 'stepup': return stepUp();
  case 'refresh': return refresh();
  case 'disconnect': return disconnect();
  case 'cimd': return registrationFlow('loopback', 'cimd');
  default: throw new Error(`unknown scenario ${SCENARIO}`);
  }
}

scenario()
  .catch((e) => {
    console.log(`FAIL ${e.stack || e}`);
    failures++;
  })
  .finally(async () => {
    if (browser) await browser.close().catch(() => {});
    for (const s of servers) s.close();
    for (const c of spawned) if (c.exitCode === null) c.kill('SIGTERM');
    console.log(failures ? `${failures} failure(s)` : 'all passed');
    process.exit(failures ? 1 : 0);
  });
