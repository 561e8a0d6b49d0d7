// tests/hostile/load.mjs — CTest `hostile_load`: 64 concurrent keep-alive connections of mixed
// MCP calls (reads, writes, validation, resources, pings) against the sanitized postly-mcp for a
// bounded time (LOAD_SECONDS, default 15 s, and at most LOAD_MAX requests, default 4000), with
// a few token refreshes against postly-authz alongside. Zero transport errors, zero 5xx, zero
// unexpected tool errors; peak RSS (VmHWM) of both processes reported; both exit cleanly with
// no sanitizer report. Rate rules are removed from the policy and the workspaces are on the
// enterprise plan: the test measures the server, not the limits (tested elsewhere).
//
// usage: node load.mjs --authz BIN --mcp BIN --fixture BIN --policy FILE
import fs from 'node:fs';
import path from 'node:path';

import { Harness, mcpSession, oauthFlow, parseArgs, request } from './lib.mjs';

const h = new Harness(parseArgs(), 'load', 200);
const check = h.check.bind(h);
const SECONDS = Number(process.env.LOAD_SECONDS || 15);
const MAX = Number(process.env.LOAD_MAX || 4000);
const CONNS = 64;
const SCOPES = ['workspace:read', 'drafts:create', 'drafts:read', 'drafts:update', 'posts:read', 'posts:create',
  'campaigns:read', 'analytics:read', 'social_accounts:list'];

function hwm(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main() {
  const policy = path.join(h.data, 'load.policy');
  fs.writeFileSync(policy, fs.readFileSync(h.args.policy, 'utf8').split('\n').filter((l) => !/^rate\s/.test(l)).join('\n'));
  h.policy = policy;
  await h.startAuthz();
  for (const ws of ['ws_l0', 'ws_l1', 'ws_l2', 'ws_l3']) h.mint(ws, ['workspace:read'], { plan: 'enterprise' });
  await h.startMcp(['--token-rate', '0']);
  // Sessions are bounded per principal (32): 4 workspaces x 16 connections.
  const toks = ['ws_l0', 'ws_l1', 'ws_l2', 'ws_l3'].map((ws) => h.mint(ws, SCOPES, { plan: 'enterprise' })[0]);
  const sessions = [];
  for (let i = 0; i < CONNS; i++) sessions.push(await mcpSession(h.mport, toks[i % 4]));
  const flow = await oauthFlow(h, 'workspace:read');
  check(flow.status === 200, 'a refresh token for the refresh workers');

  const stats = { n: 0, fail: 0, s5xx: 0, byKind: {} };
  const deadline = Date.now() + SECONDS * 1000;
  const failures = [];
  const note = (kind, ok, what) => {
    stats.n++;
    stats.byKind[kind] = (stats.byKind[kind] || 0) + 1;
    if (!ok) {
      stats.fail++;
      if (failures.length < 5) failures.push(`${kind}: ${what}`);
    }
  };
  const worker = async (s, w) => {
    const mine = [];
    for (let k = 0; Date.now() < deadline && stats.n < MAX; k++) {
      let r;
      const op = (k + w) % 8;
      try {
        if (op === 0 || mine.length === 0) {
          r = await s.tool('postly_create_draft', { text: `load ${w}/${k}` });
          if (r.data && r.data.id) mine.push(r.data.id);
        } else if (op === 1) {
          r = await s.tool('postly_get_draft', { draft_id: mine[k % mine.length] });
        } else if (op === 2) {
          r = await s.tool('postly_list_drafts', { limit: 10 });
        } else if (op === 3) {
          r = await s.tool('postly_update_draft', { draft_id: mine[k % mine.length], notes: `n${k}` });
          if (r.isError && /version|conflict/i.test(r.text || '')) r.isError = false; // optimistic concurrency is a valid answer
        } else if (op === 4) {
          r = await s.tool('postly_get_workspace', {});
        } else if (op === 5) {
          r = await s.tool('postly_get_analytics_summary', {});
        } else if (op === 6) {
          r = await s.rpc('resources/read', { uri: 'postly://workspace' });
          r.isError = !(r.json && r.json.result);
        } else {
          r = await s.rpc('ping', {});
          r.isError = !(r.json && r.json.result);
        }
        if (r.status >= 500) stats.s5xx++;
        note(op, r.status === 200 && !r.isError, `${r.status} ${r.body.slice(0, 120)}`);
      } catch (e) {
        note(op, false, e.message);
      }
    }
  };
  const refresher = async () => {
    let rt = flow.tokens.refresh_token;
    const ah = { Host: `127.0.0.1:${h.aport}`, 'Content-Type': 'application/x-www-form-urlencoded' };
    while (Date.now() < deadline && stats.n < MAX) {
      try {
        const r = await request(h.aport, 'POST', '/token', ah, new URLSearchParams({ grant_type: 'refresh_token',
          refresh_token: rt, client_id: flow.clientId }).toString());
        if (r.status >= 500) stats.s5xx++;
        const j = JSON.parse(r.body);
        note('refresh', r.status === 200 && !!j.refresh_token, `${r.status} ${r.body.slice(0, 100)}`);
        if (j.refresh_token) rt = j.refresh_token;
      } catch (e) {
        note('refresh', false, e.message);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const t0 = Date.now();
  await Promise.all([...sessions.map((s, i) => worker(s, i)), refresher()]);
  const secs = (Date.now() - t0) / 1000;
  console.log(`load: ${stats.n} requests over ${CONNS} connections in ${secs.toFixed(1)} s (${(stats.n / secs).toFixed(0)}/s), by kind ${JSON.stringify(stats.byKind)}`);
  for (const f of failures) console.log(`  failure: ${f}`);
  check(stats.n >= 500, `at least 500 requests served (${stats.n})`);
  check(stats.fail === 0, `zero errors (${stats.fail})`);
  check(stats.s5xx === 0, `zero 5xx (${stats.s5xx})`);
  const mk = hwm(h.mcp.pid), ak = hwm(h.authz.pid);
  console.log(`peak RSS (VmHWM, ASan build when sanitized): postly-mcp ${(mk / 1024).toFixed(1)} MiB, postly-authz ${(ak / 1024).toFixed(1)} MiB`);
  check(mk > 0 && mk < 1024 * 1024, `postly-mcp peak RSS bounded (< 1 GiB): ${(mk / 1024).toFixed(1)} MiB`);
  const s = await mcpSession(h.mport, toks[0]);
  const w = await s.tool('postly_get_workspace', {});
  check(w.status === 200 && w.data && w.data.id === 'ws_l0', 'postly-mcp answers normally after the load');
  await h.stop(h.mcp, 'postly-mcp');
  await h.stop(h.authz, 'postly-authz');
  h.sanitizerClean('postly-mcp');
  h.sanitizerClean('postly-authz');
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  h.failures++;
}).finally(() => h.finish());
