// tests/authz/browser_consent.mjs — the consent flow in a real browser: Debian's Chromium
// driven by playwright-core. Starts postly-authz (--demo, port 0, fresh data dir), registers a
// loopback client with postly-admin, then: log in, pick a workspace and a bundle, untick one
// scope, approve; checks the redirect (code, state, iss) and that the token from /token
// carries exactly the chosen scopes. Saves a screenshot of the consent page.
//
// usage: node browser_consent.mjs <postly-authz> <postly-admin> <screenshot.png>
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'node', 'package.json'));
const { chromium } = require('playwright-core');

const [authzBin, adminBin, shot] = process.argv.slice(2);
if (!authzBin || !adminBin || !shot) {
  console.error('usage: node browser_consent.mjs <postly-authz> <postly-admin> <screenshot.png>');
  process.exit(2);
}
const RESOURCE = 'http://127.0.0.1:8081/mcp';
const data = mkdtempSync(join(tmpdir(), 'postly-browser-'));
const profile = mkdtempSync(join(tmpdir(), 'postly-chromium-'));
let server, browser, callback;

function startAuthz() {
  return new Promise((resolve, reject) => {
    server = spawn(authzBin, ['--data', data, '--port', '0', '--demo', '--resource', RESOURCE,
                              '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('postly-authz did not start: ' + out)), 20000);
    server.stdout.on('data', (d) => {
      out += d.toString();
      const pw = /password (\S+)/.exec(out);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (pw && url) {
        clearTimeout(timer);
        resolve({ password: pw[1], base: url[1] });
      }
    });
    server.on('exit', (code) => reject(new Error('postly-authz exited with ' + code + ': ' + out)));
  });
}

function startCallback() {
  return new Promise((resolve) => {
    const hits = [];
    callback = http.createServer((req, res) => {
      hits.push(new URL(req.url, 'http://127.0.0.1'));
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('done');
    });
    callback.listen(0, '127.0.0.1', () => resolve({ port: callback.address().port, hits }));
  });
}

function b64url(buf) {
  return buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

try {
  const { password, base } = await startAuthz();
  const cb = await startCallback();
  execFileSync(adminBin, ['--data', data, 'clients', 'add', 'browser-test', '--name',
                          'Browser Test <App>', '--redirect', 'http://127.0.0.1/cb']);
  const redirect = `http://127.0.0.1:${cb.port}/cb`;
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(12));
  // Ask for every scope: the bundle choice narrows it.
  const meta = await (await fetch(base + '/.well-known/oauth-authorization-server')).json();
  const q = new URLSearchParams({
    response_type: 'code', client_id: 'browser-test', redirect_uri: redirect, state,
    code_challenge: challenge, code_challenge_method: 'S256', resource: RESOURCE,
    scope: meta.scopes_supported.join(' '),
  });

  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  await page.goto(`${base}/authorize?${q}`);
  await page.waitForSelector('#username');
  await page.fill('#username', 'demo');
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('#signin')]);
  assert.ok(page.url().startsWith(base + '/consent?'), 'consent page after login: ' + page.url());
  assert.equal(await page.textContent('#client-name'), 'Browser Test <App>'); // escaped, shown as text
  assert.equal(await page.textContent('#redirect-host'), '127.0.0.1');

  // Workspace picker: switch to the read-only workspace and back (the page reloads itself).
  await Promise.all([page.waitForNavigation(), page.selectOption('#ws-select', 'demo-readonly')]);
  assert.ok(await page.isDisabled('input[value="posts:publish"]'), 'ceiling applies in demo-readonly');
  assert.match(await page.textContent('body'), /Not available in this workspace/);
  await Promise.all([page.waitForNavigation(), page.selectOption('#ws-select', 'demo')]);

  // A bundle, then untick one of its scopes.
  await page.click('#bundle-publishing-assistant');
  const ticked = await page.$$eval('input[name=scope]:checked', (els) => els.map((e) => e.value));
  assert.ok(ticked.includes('posts:publish'), 'bundle ticks posts:publish');
  await page.uncheck('input[value="posts:publish"]');
  const chosen = await page.$$eval('input[name=scope]:checked', (els) => els.map((e) => e.value));
  assert.equal(chosen.length, ticked.length - 1);
  assert.ok(await page.isVisible('.scope.destructive'), 'destructive scopes are marked');
  await page.screenshot({ path: shot, fullPage: true });

  await Promise.all([page.waitForURL(redirect + '**'), page.click('#approve')]);
  const hit = cb.hits.find((u) => u.pathname === '/cb');
  assert.ok(hit, 'the client received the redirect');
  assert.equal(hit.searchParams.get('state'), state);
  assert.equal(hit.searchParams.get('iss'), base);
  const code = hit.searchParams.get('code');
  assert.equal(code.length, 43);

  const res = await fetch(base + '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'browser-test',
                                code, redirect_uri: redirect, code_verifier: verifier,
                                resource: RESOURCE }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const tok = await res.json();
  const claims = JSON.parse(Buffer.from(tok.access_token.split('.')[1], 'base64url').toString());
  assert.deepEqual(claims.scope.split(' ').sort(), [...chosen].sort());
  assert.equal(claims.ws, 'demo');
  assert.equal(claims.aud, RESOURCE);
  assert.equal(claims.client_id, 'browser-test');
  console.log(`ok: consent flow in Chromium, ${chosen.length} scopes granted, screenshot ${shot}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (callback) callback.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  rmSync(profile, { recursive: true, force: true });
  rmSync(data, { recursive: true, force: true });
}
