// tests/mcp/sdk_client.mjs — the official MCP TypeScript SDK client (@modelcontextprotocol/sdk)
// against the real postly-mcp binary: connect (initialize + initialized), list tools,
// resources and prompts, and call tools of every group. The SDK client validates each
// structuredContent against the tool's outputSchema (ajv), so a drift between a tool's
// declared output and what the execution layer returns fails here. Also: a step-up 403 reaches
// the client as an error carrying the status, DELETE ends the session, and a call made with
// onprogress receives notifications/progress over a text/event-stream answer.
//
// usage: node sdk_client.mjs --mcp BIN --fixture BIN --policy FILE --modules NODE_MODULES
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

const ISSUER = 'http://127.0.0.1:1';
let AUD = 'http://127.0.0.1:1/mcp'; // the real one is known once the server has bound its port
const { data, need, track } = harness('postly-sdk-', 90);
let mcp = null;
let failures = 0;

function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    console.log(`FAIL ${what}`);
    failures++;
  }
}

function mint(scopes) {
  return execFileSync(args.fixture, ['mint', data, ISSUER, AUD, 'ws_sdk', 'preregistered', '600', ...scopes])
    .toString().trim().split(' ')[0];
}

async function connect(token, port) {
  const client = new Client({ name: 'postly-sdk-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

async function main() {
  const all = [
    'workspace:read', 'workspace:list', 'posts:read', 'posts:create', 'posts:update', 'posts:schedule',
    'posts:publish', 'analytics:linkedin:read', 'media:update',
    'posts:status:read', 'drafts:read', 'drafts:create', 'drafts:update', 'media:read', 'media:upload',
    'campaigns:read', 'campaigns:create', 'campaigns:update', 'social_accounts:read',
    'social_accounts:list', 'analytics:read', 'analytics:x:read',
  ];
  need(args.mcp);
  need(args.fixture);
  mint(['workspace:read']); // creates the authorization server's store and the key set
  // No --url: the canonical URL (and the Host/Origin allow-lists) follow the bound port.
  mcp = track(spawn(args.mcp, ['--listen', '127.0.0.1:0', '--print-port', '--authz', ISSUER,
    '--data', data, '--policy', args.policy, '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await new Promise((resolve, reject) => {
    readline.createInterface({ input: mcp.stdout }).once('line', (l) => resolve(Number(l)));
    mcp.once('exit', (c) => reject(new Error(`postly-mcp exited with ${c}`)));
  });
  AUD = `http://127.0.0.1:${port}/mcp`;
  const token = mint(all);

  const { client, transport } = await connect(token, port);
  check(client.getServerVersion()?.name === 'postly-mcp', 'initialize: serverInfo');
  check(typeof transport.sessionId === 'string' && transport.sessionId.length === 43, 'session id');
  const tools = (await client.listTools()).tools;
  check(tools.length >= 30, `tools/list: ${tools.length} tools`);
  check(tools.every((t) => t.outputSchema && t.annotations && typeof t.annotations.readOnlyHint === 'boolean'),
    'every tool has an outputSchema and explicit annotations');

  const call = async (name, a) => {
    const r = await client.callTool({ name, arguments: a });
    check(!r.isError && r.structuredContent, `${name}: structuredContent valid against its outputSchema`);
    check(JSON.stringify(JSON.parse(r.content[0].text)) === JSON.stringify(r.structuredContent),
      `${name}: text is the same JSON`);
    return r.structuredContent;
  };
  await call('postly_get_workspace', {});
  await call('postly_get_channel_schema', { platform: 'pinterest' });
  await call('postly_list_social_accounts', {});
  const cmp = await call('postly_create_campaign', { name: 'SDK', idempotency_key: 'k1' });
  await call('postly_get_campaign', { campaign_id: cmp.id });
  await call('postly_update_campaign', { campaign_id: cmp.id, goal: 'check schemas' });
  await call('postly_list_campaigns', {});
  const drf = await call('postly_create_draft', { text: 'hello', idempotency_key: 'd1' });
  await call('postly_get_draft', { draft_id: drf.id });
  await call('postly_update_draft', { draft_id: drf.id, notes: 'n' });
  await call('postly_list_drafts', {});
  await call('postly_list_posts', {});
  await call('postly_list_media', {});
  await call('postly_get_analytics_summary', {});
  await call('postly_get_platform_analytics', { platform: 'x' });
  await call('postly_list_workspaces', {});

  // posts and media: an account connected in the execution layer, then the post life cycle
  const acc = execFileSync(args.fixture, ['account', data, 'ws_sdk', 'linkedin', 'Acme']).toString().trim();
  await call('postly_get_social_account', { account_id: acc });
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
  const med = await call('postly_upload_media', { data_base64: png, filename: 'a.png' });
  await call('postly_get_media', { media_id: med.id });
  await call('postly_update_media', { media_id: med.id, alt_text: 'a dot' });
  const draftPost = { account_ids: [acc], text: 'Hello from the SDK test', media_ids: [med.id] };
  await call('postly_validate_post', draftPost);
  const post = await call('postly_create_post', { ...draftPost, idempotency_key: 'p1' });
  await call('postly_get_post', { post_id: post.id });
  await call('postly_update_post', { post_id: post.id, text: 'Hello again' });
  await call('postly_schedule_post', { post_id: post.id, scheduled_at: '2027-06-01T09:00:00Z' });
  await call('postly_unschedule_post', { post_id: post.id });
  const pub = await call('postly_publish_post', { post_id: post.id, idempotency_key: 'pub1' });
  check(pub.status === 'published', `published: ${pub.status}`);
  await call('postly_get_post_status', { post_id: post.id });
  await call('postly_get_post_analytics', { post_id: post.id });

  // Progress (MCP 2025-11-25 basic/utilities/progress): with onprogress the SDK sends
  // _meta.progressToken; the server answers with text/event-stream carrying
  // notifications/progress and then the result, which the SDK validates as usual.
  const progress = [];
  const withProgress = await client.callTool({ name: 'postly_create_draft', arguments: { text: 'with progress' } },
    undefined, { onprogress: (p) => progress.push(p) });
  check(!withProgress.isError && typeof withProgress.structuredContent?.id === 'string',
    'tools/call with onprogress: the result arrives over SSE');
  check(progress.length === 3 && progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress) &&
    progress[2].progress === progress[2].total && typeof progress[0].message === 'string',
  `progress notifications received in order: ${JSON.stringify(progress)}`);

  const bad = await client.callTool({ name: 'postly_get_draft', arguments: { draft_id: 7 } });
  check(bad.isError === true && /draft_id/.test(bad.content[0].text), 'a bad argument is an isError result naming the field');

  let stepUp = null;
  try {
    await client.callTool({ name: 'postly_delete_post', arguments: { post_id: 'pst_x' } });
  } catch (e) {
    stepUp = e;
  }
  check(stepUp && /403/.test(String(stepUp.code ?? stepUp.message)), `step-up: the SDK surfaces the 403 (${stepUp && stepUp.message})`);

  const res = await client.listResources();
  check(res.resources.some((r) => r.uri === 'postly://workspace'), 'resources/list');
  const ws = await client.readResource({ uri: 'postly://workspace' });
  check(JSON.parse(ws.contents[0].text).id === 'ws_sdk', 'resources/read postly://workspace');
  const prompts = await client.listPrompts();
  check(prompts.prompts.length >= 3, 'prompts/list');
  const p = await client.getPrompt({ name: 'postly_draft_post', arguments: { topic: 'tea' } });
  check(/tea/.test(p.messages[0].content.text), 'prompts/get');
  await client.setLoggingLevel('warning');
  check(true, 'logging/setLevel');
  await client.ping();
  check(true, 'ping');

  await transport.terminateSession();
  check(transport.sessionId === undefined, 'DELETE ends the session');
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
