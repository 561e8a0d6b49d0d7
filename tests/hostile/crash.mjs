// tests/hostile/crash.mjs — CTest `hostile_crash`: SIGKILL each server in the middle of a load of
// writes, and restart it on the same data directory.
//
//  postly-mcp: 16 connections create drafts, create posts, publish them (idempotency keys) and
//    schedule others; the client records every acknowledged id. After SIGKILL and a restart:
//    every acknowledged draft and post is there, every acknowledged publish shows its target
//    published after exactly one attempt, a client retry of every publish (acknowledged or cut
//    off by the kill, same idempotency key) publishes nothing a second time, and every
//    acknowledged schedule is still scheduled, and every post scheduled to fall due around the
//    kill is published by the restarted scheduler after exactly one attempt (or, when the kill
//    fell between the killed scheduler's claim and its outcome, stays "publishing" under the
//    dead instance's lease after that one attempt: at most once, exec/publish.h); and the sandbox
//    platforms' own journal (<data>/exec/sandbox-journal) records each target landing at most once.
//  postly-authz: 6 refresh-token families rotate as fast as they can; after SIGKILL and a
//    restart on the same port: for each family the last acknowledged refresh token works once
//    (its successor works too), then reusing an older token is refused and ends the family.
//
// usage: node crash.mjs --authz BIN --mcp BIN --fixture BIN --policy FILE
import fs from 'node:fs';
import path from 'node:path';

import { Harness, mcpSession, oauthFlow, parseArgs, request } from './lib.mjs';

const h = new Harness(parseArgs(), 'crash', 200);
const check = h.check.bind(h);
const SCOPES = ['workspace:read', 'drafts:create', 'drafts:read', 'posts:read', 'posts:create', 'posts:publish',
  'posts:schedule', 'posts:status:read', 'social_accounts:read'];
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

async function mcpCrash() {
  const tok = h.mint('ws_c', SCOPES, { plan: 'enterprise' })[0];
  const acc = h.account('ws_c', 'linkedin', 'Crash Co');
  const acked = { drafts: [], posts: [], published: new Map(), scheduled: [], soon: [], tried: new Map() };
  let stop = false;
  let inflight = 0;
  const worker = async (w) => {
    const s = await mcpSession(h.mport, tok);
    for (let k = 0; !stop; k++) {
      inflight++;
      try {
        const d = await s.tool('postly_create_draft', { text: `draft ${w}/${k}` });
        if (d.status === 200 && d.data && d.data.id) acked.drafts.push(d.data.id);
        const p = await s.tool('postly_create_post', { account_ids: [acc], text: `post ${w}/${k}`, idempotency_key: `cp-${w}-${k}` });
        if (!(p.status === 200 && p.data && p.data.id)) continue;
        acked.posts.push(p.data.id);
        if (k % 4 === 1) {
          // Due in 1.5-4.5 s: some fire before the kill, some after the restart (the scheduler
          // runs inside postly-mcp).
          const at = new Date(Date.now() + 1500 + ((w * 7 + k * 13) % 3000)).toISOString();
          const sc = await s.tool('postly_schedule_post', { post_id: p.data.id, scheduled_at: at });
          if (sc.status === 200 && !sc.isError) acked.soon.push(p.data.id);
          continue;
        }
        if (k % 3 === 2) {
          const sc = await s.tool('postly_schedule_post', { post_id: p.data.id, scheduled_at: '2027-06-01T09:00:00Z' });
          if (sc.status === 200 && !sc.isError) acked.scheduled.push(p.data.id);
          continue;
        }
        acked.tried.set(p.data.id, `pub-${w}-${k}`);
        const pub = await s.tool('postly_publish_post', { post_id: p.data.id, idempotency_key: `pub-${w}-${k}` });
        if (pub.status === 200 && !pub.isError) acked.published.set(p.data.id, pub.data);
      } catch {
        return; // the server died: nothing after this was acknowledged
      } finally {
        inflight--;
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, i) => worker(i));
  while (acked.published.size < 40) await wait(20);
  const cut = inflight;
  await h.kill9(h.mcp);
  stop = true;
  await Promise.all(workers);
  console.log(`postly-mcp killed with ${cut} requests in flight; acknowledged: ${acked.drafts.length} drafts, ${acked.posts.length} posts, ${acked.published.size} publishes, ${acked.scheduled.length} + ${acked.soon.length} schedules`);
  await h.startMcp(['--token-rate', '0']);
  const s = await mcpSession(h.mport, tok);
  let missing = 0;
  for (const id of acked.drafts) {
    const r = await s.tool('postly_get_draft', { draft_id: id });
    if (!(r.data && r.data.id === id)) missing++;
  }
  check(missing === 0, `every acknowledged draft is there after SIGKILL (${acked.drafts.length}, missing ${missing})`);
  missing = 0;
  for (const id of acked.posts) {
    const r = await s.tool('postly_get_post', { post_id: id });
    if (!(r.data && r.data.id === id) && missing++ === 0) console.log(`  ${id}: ${r.status} ${r.body.slice(0, 300)}`);
  }
  check(missing === 0, `every acknowledged post is there (${acked.posts.length}, missing ${missing})`);
  let badSched = 0;
  for (const id of acked.scheduled) {
    const r = await s.tool('postly_get_post', { post_id: id });
    if (!(r.data && /scheduled/.test(JSON.stringify(r.data.status ?? r.data)))) badSched++;
  }
  check(badSched === 0, `every acknowledged schedule is still scheduled (${acked.scheduled.length}, wrong ${badSched})`);
  // Scheduled publishes due around the kill: each ends published after exactly one attempt.
  const until = Date.now() + 30000;
  let pending = acked.soon.slice(), wrong = 0, last = new Map();
  while (pending.length && Date.now() < until) {
    const next = [];
    for (const id of pending) {
      const r = await s.tool('postly_get_post_status', { post_id: id });
      const t = (r.data && r.data.targets) || [];
      last.set(id, t);
      if (t.length === 1 && t[0].status === 'published') {
        if (t[0].attempts !== 1) {
          wrong++;
          console.log(`  ${id}: ${JSON.stringify(t)}`);
        }
      } else {
        next.push(id);
      }
    }
    pending = next;
    // Claimed by the killed scheduler (one attempt, "publishing"): its lease is the dead
    // instance's for lease_ms (5 min), after which recovery marks it "unconfirmed" — it is
    // never published twice, and no restarted scheduler may take it over before then.
    if (pending.every((id) => { const t = last.get(id); return t.length === 1 && t[0].status === 'publishing'; })) break;
    await wait(250);
  }
  const inLease = pending.filter((id) => { const t = last.get(id); return t.length === 1 && t[0].status === 'publishing' && t[0].attempts === 1; });
  for (const id of pending) if (!inLease.includes(id)) console.log(`  unpublished ${id}: ${JSON.stringify(last.get(id))}`);
  check(acked.soon.length > inLease.length && pending.length === inLease.length && wrong === 0,
    `every schedule due around the kill published by the restarted scheduler, one attempt each (${acked.soon.length}: ${acked.soon.length - pending.length} published, ${inLease.length} claimed by the killed one and left under its lease, ${pending.length - inLease.length} otherwise unpublished, ${wrong} repeated)`);
  // Publishes: the acknowledged ones are published after one attempt; a client retry (same key)
  // of every publish, acknowledged or cut off, does not publish again.
  let bad = 0, twice = 0, shown = 0;
  for (const [id, key] of acked.tried) {
    const before = await s.tool('postly_get_post_status', { post_id: id });
    const retry = await s.tool('postly_publish_post', { post_id: id, idempotency_key: key });
    const after = await s.tool('postly_get_post_status', { post_id: id });
    const tb = (before.data && before.data.targets) || [];
    const ta = (after.data && after.data.targets) || [];
        if (acked.published.has(id) && !(tb.length === 1 && /published/.test(tb[0].status ?? tb[0].state) && (tb[0].attempts ?? 1) === 1)) bad++;
    if (retry.status !== 200 || ta.length !== 1 || (ta[0].attempts ?? 1) > 1 ||
        (tb[0] && tb[0].remote_id && ta[0].remote_id !== tb[0].remote_id)) {
      twice++;
      if (twice <= 3) console.log(`  ${id}: before ${JSON.stringify(tb)} retry ${retry.body.slice(0, 200)} after ${JSON.stringify(ta)}`);
    }
  }
  check(bad === 0, `every acknowledged publish shows its target published after one attempt (${acked.published.size}, wrong ${bad})`);
  check(twice === 0, `retrying all ${acked.tried.size} publishes with their keys publishes no target twice (${twice})`);
  // The platform's side (exec/sandbox.h): postly-mcp's sandbox connectors journal every landing
  // as "L <32 hex>\n" (the digest of platform + idempotency key) in <data>/exec/sandbox-journal,
  // across both processes. Each target may appear at most once.
  const jdir = path.join(h.data, 'exec', 'sandbox-journal');
  const landed = new Map();
  let lines = 0;
  for (const f of fs.existsSync(jdir) ? fs.readdirSync(jdir) : []) {
    if (!/^sandbox-[a-z_]+\.journal$/.test(f)) continue;
    for (const l of fs.readFileSync(path.join(jdir, f), 'utf8').split('\n')) {
      if (!/^L [0-9a-f]{32}$/.test(l)) continue;
      lines++;
      landed.set(`${f}:${l}`, (landed.get(`${f}:${l}`) ?? 0) + 1);
    }
  }
  const dup = [...landed.values()].filter((n) => n > 1).length;
  const want = acked.published.size + acked.soon.length;
  check(lines >= want && dup === 0,
    `the sandbox platforms' journal shows each target landed at most once (${lines} landings for ${want} acknowledged publishes and schedules, ${dup} landed twice)`);
}

async function authzCrash() {
  const fams = [];
  for (let i = 0; i < 6; i++) {
    const f = await oauthFlow(h, 'workspace:read');
    if (!f.tokens.refresh_token) throw new Error(`flow ${i}: ${JSON.stringify(f.tokens)}`);
    fams.push({ clientId: f.clientId, chain: [f.tokens.refresh_token] });
  }
  const ah = () => ({ Host: `127.0.0.1:${h.aport}`, 'Content-Type': 'application/x-www-form-urlencoded' });
  const refresh = (f, rt) => request(h.aport, 'POST', '/token', ah(), new URLSearchParams({ grant_type: 'refresh_token',
    refresh_token: rt, client_id: f.clientId }).toString(), { agent: false });
  let stop = false;
  let rotations = 0;
  const spin = async (f) => {
    while (!stop) {
      try {
        const r = await refresh(f, f.chain[f.chain.length - 1]);
        const j = JSON.parse(r.body);
        if (r.status !== 200 || !j.refresh_token) throw new Error(`refresh before the kill: ${r.status} ${r.body}`);
        f.chain.push(j.refresh_token); // acknowledged
        rotations++;
      } catch (e) {
        if (!stop && !/ECONNRESET|ECONNREFUSED|socket hang up/.test(e.message)) {
          check(false, e.message);
        }
        return;
      }
    }
  };
  const spinners = fams.map(spin);
  while (rotations < 60) await wait(10);
  const port = h.aport;
  await h.kill9(h.authz);
  stop = true;
  await Promise.all(spinners);
  console.log(`postly-authz killed after ${rotations} acknowledged rotations`);
  await h.startAuthz(port);
  let ok = 0;
  for (const [i, f] of fams.entries()) {
    const last = f.chain[f.chain.length - 1];
    const older = f.chain[f.chain.length - 2];
    let r = await refresh(f, last);
    const j = JSON.parse(r.body);
    const a = r.status === 200 && !!j.refresh_token;
    r = a ? await refresh(f, j.refresh_token) : r;
    const j2 = JSON.parse(r.body);
    const b = r.status === 200 && !!j2.refresh_token;
    // Family i even: the used acknowledged token again; odd: the one before it. Both refused,
    // and the family ends (its newest token stops working too).
    r = await refresh(f, i % 2 ? older : last);
    const c = r.status === 400 && /invalid_grant/.test(r.body);
    r = b ? await refresh(f, j2.refresh_token) : r;
    const d = r.status === 400 && /invalid_grant/.test(r.body);
    if (a && b && c && d) ok++;
    else console.log(`  family ${i}: last works ${a}, successor works ${b}, ${i % 2 ? 'older' : 'reused'} refused ${c}, family ended ${d}`);
  }
  check(ok === fams.length, `every refresh family is consistent after SIGKILL: the last acknowledged token works once, older reuse is refused and ends the family (${ok}/${fams.length})`);
}

async function main() {
  const policy = path.join(h.data, 'crash.policy');
  fs.writeFileSync(policy, fs.readFileSync(h.args.policy, 'utf8').split('\n').filter((l) => !/^rate\s/.test(l)).join('\n'));
  h.policy = policy;
  await h.startAuthz();
  h.mint('ws_c', ['workspace:read'], { plan: 'enterprise' });
  await h.startMcp(['--token-rate', '0']);
  await mcpCrash();
  await authzCrash();
  const m = await request(h.aport, 'GET', '/.well-known/oauth-authorization-server', { Host: `127.0.0.1:${h.aport}` });
  check(m.status === 200, 'postly-authz serves after the restart');
  await h.stop(h.mcp, 'postly-mcp');
  await h.stop(h.authz, 'postly-authz');
  h.sanitizerClean('postly-mcp');
  h.sanitizerClean('postly-authz');
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  h.failures++;
}).finally(() => h.finish());
