// tests/mcp/sdk_subscribe.mjs — resource subscriptions with the official MCP TypeScript SDK
// client (@modelcontextprotocol/sdk, StreamableHTTPClientTransport) against the real
// postly-mcp binary. After initialize the SDK opens the listening stream (GET /mcp,
// text/event-stream) by itself; the client subscribes to post resources and receives
// notifications/resources/updated (ResourceUpdatedNotificationSchema) when a tool publishes
// one and when postly-mcp's scheduler publishes another at its time. Also: a second GET for the
// same session is refused with 409, DELETE closes the stream. A policy reload (SIGHUP) that
// hides a tool from this client sends notifications/tools/list_changed
// (ToolListChangedNotificationSchema) and tools/list no longer shows it.
//
// usage: node sdk_subscribe.mjs --mcp BIN --fixture BIN --policy FILE --modules NODE_MODULES
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { harness } from './harness.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const require = createRequire(path.join(args.modules, 'resolve-from-here.js'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema } = require('@modelcontextprotocol/sdk/types.js');

const ISSUER = 'http://127.0.0.1:1';
let AUD = 'http://127.0.0.1:1/mcp';
const { data, need, track } = harness('postly-sdksub-', 60);
let mcp = null;
let failures = 0;

function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}
function mint(scopes) {
  return execFileSync(args.fixture, ['mint', data, ISSUER, AUD, 'ws_sub', 'preregistered', '600', ...scopes])
    .toString().trim().split(' ')[0];
}
// Collects values; wait() resolves with the first one at index >= from that pred accepts, or
// rejects after ms.
function waiter() {
  const seen = [];
  let pending = null;
  return {
    seen,
    push(v) {
      seen.push(v);
      if (pending && pending.pred(v)) {
        clearTimeout(pending.timer);
        pending.resolve(v);
        pending = null;
      }
    },
    wait(pred, ms, what, from = 0) {
      const hit = seen.slice(from).find(pred);
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        pending = { pred, resolve, timer: setTimeout(() => reject(new Error(`timed out: ${what}`)), ms) };
      });
    },
  };
}

async function main() {
  need(args.mcp);
  need(args.fixture);
  mint(['workspace:read']);
  const policy = path.join(data, 'reloadable.policy'); // a copy this test edits, then SIGHUPs
  fs.copyFileSync(args.policy, policy);
  mcp = spawn(args.mcp, ['--listen', '127.0.0.1:0', '--print-port', '--authz', ISSUER,
    '--data', data, '--policy', policy, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(mcp);
  const port = await new Promise((resolve, reject) => {
    readline.createInterface({ input: mcp.stdout }).once('line', (l) => resolve(Number(l)));
    mcp.once('exit', (c) => reject(new Error(`postly-mcp exited with ${c}`)));
  });
  AUD = `http://127.0.0.1:${port}/mcp`;
  const token = mint(['workspace:read', 'posts:read', 'posts:create', 'posts:update', 'posts:schedule',
    'posts:publish', 'posts:status:read', 'social_accounts:read']);
  const acc = execFileSync(args.fixture, ['account', data, 'ws_sub', 'linkedin', 'Acme']).toString().trim();

  // The transport's requests, to see the listening stream open (the SDK starts it itself).
  const streams = waiter();
  const loggingFetch = async (input, init = {}) => {
    const res = await fetch(input, init);
    if ((init.method || 'GET') === 'GET') streams.push({ status: res.status, type: res.headers.get('content-type') });
    return res;
  };
  const client = new Client({ name: 'postly-sdk-subscribe', version: '1.0.0' });
  const updates = waiter();
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri));
  const listChanges = waiter();
  client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => listChanges.push(n.method));
  const transport = new StreamableHTTPClientTransport(new URL(AUD), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: loggingFetch,
  });
  await client.connect(transport);
  check(client.getServerCapabilities()?.resources?.subscribe === true, 'initialize: resources.subscribe = true');
  const get = await streams.wait(() => true, 5000, 'the SDK opens GET /mcp');
  check(get.status === 200 && /^text\/event-stream/.test(get.type || ''), `GET /mcp: ${get.status} ${get.type}`);

  const call = async (name, a) => {
    const r = await client.callTool({ name, arguments: a });
    if (r.isError) throw new Error(`${name}: ${r.content?.[0]?.text}`);
    return r.structuredContent;
  };
  const now = await call('postly_create_post', { account_ids: [acc], text: 'published by a tool' });
  const later = await call('postly_create_post', { account_ids: [acc], text: 'published by the scheduler' });
  const uriNow = `postly://posts/${now.id}`;
  const uriLater = `postly://posts/${later.id}`;
  await client.subscribeResource({ uri: uriNow });
  await client.subscribeResource({ uri: uriLater });
  await client.subscribeResource({ uri: uriNow }); // idempotent
  check(true, 'resources/subscribe (twice for one URI: idempotent)');
  let bad = null;
  try {
    await client.subscribeResource({ uri: 'postly://posts/pst_unknown' });
  } catch (e) {
    bad = e;
  }
  check(bad && bad.code === -32002, `subscribing to an unknown post: ${bad && bad.code} ${bad && bad.message}`);

  const pub = await call('postly_publish_post', { post_id: now.id, idempotency_key: 'pub-now' });
  check(pub.status === 'published', `published by the tool: ${pub.status}`);
  await updates.wait((u) => u === uriNow, 5000, `notifications/resources/updated for ${uriNow}`);
  check(true, `ResourceUpdatedNotification for ${uriNow} after the tool published it`);
  const read = JSON.parse((await client.readResource({ uri: uriNow })).contents[0].text);
  check(read.status === 'published', `re-read after the notification: ${read.status}`);

  // The scheduler (on postly-mcp's loop, real clock) publishes the second post 2 s from now.
  const at = new Date(Date.now() + 2000).toISOString().replace(/\.\d+Z$/, 'Z');
  const sch = await call('postly_schedule_post', { post_id: later.id, scheduled_at: at });
  check(sch.status === 'scheduled', `scheduled for ${at}`);
  // Each change of the post is one notification (scheduled, claimed, published): re-read after
  // each until the scheduler's publication shows.
  let from = 0;
  let status = '';
  for (let i = 0; i < 6 && status !== 'published'; i++) {
    await updates.wait((u) => u === uriLater, 10000, `notifications/resources/updated for ${uriLater}`, from);
    from = updates.seen.length;
    status = JSON.parse((await client.readResource({ uri: uriLater })).contents[0].text).status;
  }
  check(status === 'published', `ResourceUpdatedNotification for ${uriLater} when the scheduler published it (${status})`);

  // One listening stream per session: a second GET is refused.
  const second = await fetch(AUD, { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream',
    'MCP-Session-Id': transport.sessionId, 'MCP-Protocol-Version': '2025-11-25' } });
  const body = await second.json().catch(() => ({}));
  check(second.status === 409 && /one listening stream/.test(body?.error?.message || ''),
    `a second GET for the session: ${second.status} ${body?.error?.message}`);

  // A policy reload that forbids posts:delete to this client's class hides postly_delete_post.
  const toolNames = async () => (await client.listTools()).tools.map((t) => t.name);
  check(client.getServerCapabilities()?.tools?.listChanged === true, 'initialize: tools.listChanged = true');
  check((await toolNames()).includes('postly_delete_post'), 'tools/list shows postly_delete_post before the reload');
  fs.appendFileSync(policy, 'forbid f-sdk-test class=preregistered scopes=posts:delete\n');
  mcp.kill('SIGHUP');
  await listChanges.wait(() => true, 5000, 'notifications/tools/list_changed after SIGHUP');
  check(true, 'ToolListChangedNotification after the policy reload');
  check(!(await toolNames()).includes('postly_delete_post'), 'tools/list hides postly_delete_post after the reload');

  await client.unsubscribeResource({ uri: uriNow });
  check(true, 'resources/unsubscribe');
  await transport.terminateSession();
  check(transport.sessionId === undefined, 'DELETE ends the session (and its stream)');
  await client.close();
}

main()
  .catch((e) => {
    console.log(`FAIL ${e.stack || e}`);
    failures++;
  })
  .finally(() => {
    if (mcp && mcp.exitCode === null) mcp.kill('SIGTERM');
    fs.rmSync(data, { recursive: true, force: true });
    console.log(failures ? `${failures} failure(s)` : 'all passed');
    process.exit(failures ? 1 : 0);
  });
