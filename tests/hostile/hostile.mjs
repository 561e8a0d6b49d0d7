// tests/hostile/hostile.mjs — CTest `hostile_requests`: hostile requests against both running
// servers (the CTest build is ASan+UBSan). Each request gets its specified status/error; then
// both processes still answer a normal request, exit 0 on SIGTERM, and left no ASan, UBSan or
// LSan report on stderr. See docs/security.md for the threat each case covers.
//
// usage: node hostile.mjs --authz BIN --mcp BIN --fixture BIN --policy FILE
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { Harness, MCP_HOST, RESOURCE, formFields, mcpSession, oauthFlow, parseArgs, pkce, raw, request } from './lib.mjs';

const h = new Harness(parseArgs(), 'hostile', 170);
const check = h.check.bind(h);
const ALL = ['workspace:read', 'workspace:list', 'drafts:create', 'drafts:read', 'drafts:update', 'posts:read',
  'posts:create', 'media:upload', 'media:read', 'campaigns:read', 'social_accounts:list', 'analytics:read'];

const status1 = (text) => (/^HTTP\/1\.[01] (\d{3})/.exec(text) || [])[1];

async function mcpTransport(tok) {
  const p = h.mport;
  const base = { Host: MCP_HOST, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${tok}` };
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'h', version: '1' } } });

  // Malformed and truncated HTTP: an error status or a closed connection, never a crash.
  let t = await raw(p, 'GARBAGE\r\n\r\n');
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `garbage request line → ${status1(t) || 'closed'}`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"jsonrpc":`, 1500);
  check(!/^HTTP\/1\.[01] [25]/.test(t), `truncated body (Content-Length 500, 11 bytes sent) → ${status1(t) || 'no answer'} (no 2xx/5xx)`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`);
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `bad chunk size → ${status1(t) || 'closed'}`);
  t = await raw(p, `GET /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `20 KB header → ${status1(t) || 'closed'}`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nContent-Length: -1\r\n\r\n`);
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `negative Content-Length → ${status1(t) || 'closed'}`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nContent-Length: 99999999999999999999\r\n\r\n`);
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `overflowing Content-Length → ${status1(t) || 'closed'}`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nHost: evil.example\r\nContent-Type: application/json\r\nAuthorization: Bearer ${tok}\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
  check(status1(t) === '400', `two Host headers → ${status1(t)}`);
  t = await raw(p, `POST /mcp HTTP/1.1\r\nHost: ${MCP_HOST}\r\nContent-Type: application/json\r\nAccept: application/json\r\nAuthorization: Bearer ${tok}\r\nAuthorization: Bearer x\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
  check(status1(t) === '400', `two Authorization headers → ${status1(t)}`);

  let r = await request(p, 'POST', `/mcp?access_token=${tok}`, base, init);
  check(r.status === 400 && !r.body.includes(tok), `access_token in the query → ${r.status}, token not echoed`);
  r = await request(p, 'POST', '/mcp', { ...base, Host: 'evil.example' }, init);
  check(r.status === 403, `foreign Host (DNS rebinding) → ${r.status}`);
  r = await request(p, 'POST', '/mcp', { ...base, Origin: 'https://evil.example' }, init);
  check(r.status === 403, `foreign Origin → ${r.status}`);
  r = await request(p, 'GET', '/mcp/../.well-known/oauth-protected-resource', { Host: MCP_HOST });
  check(r.status === 404, `dot segments in the path → ${r.status}`);

  // Oversized and deeply nested JSON, invalid UTF-8, duplicate keys.
  const s = await mcpSession(p, tok);
  const post = (body, hdr = {}) => request(p, 'POST', '/mcp', { ...s.headers, ...hdr }, body);
  r = await post(Buffer.alloc(1024 * 1024 + 10, 0x20));
  check(r.status === 413, `body over --max-body (1 MiB) → ${r.status}`);
  r = await post('{"a":'.repeat(100000));
  check(r.status === 400 && /nesting/.test(r.body), `100000 nested objects → ${r.status} ${r.body.slice(0, 90)}`);
  r = await post(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"postly_create_draft","arguments":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}}`);
  check(r.status === 400 && /-32600/.test(r.body), `nesting 43 inside params → ${r.status}`);
  r = await post(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":6,"method":"ping","x":"'), Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('"}')]));
  check(r.status === 400 && /-32700/.test(r.body), `invalid UTF-8 (overlong, surrogate) → ${r.status}`);
  r = await post('{"jsonrpc":"2.0","id":7,"method":"ping","method":"tools/call"}');
  check(r.status === 400 && /-32700/.test(r.body), `duplicate keys → ${r.status}`);
  r = await post('{"jsonrpc":"2.0","id":8,"method":"ping"');
  check(r.status === 400 && /-32700/.test(r.body), `truncated JSON → ${r.status}`);
  r = await post(`[${Array(40).fill('{"jsonrpc":"2.0","id":1,"method":"ping"}').join(',')}]`);
  check(r.status === 400, `batch in a 2025-11-25 session → ${r.status}`);
  r = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }), { 'Content-Type': 'text/plain' });
  check(r.status === 415, `Content-Type text/plain → ${r.status}`);
  r = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }), { 'MCP-Session-Id': 'A'.repeat(43) });
  check(r.status === 404, `forged session id → ${r.status}`);
  let c = await s.tool('postly_create_draft', { text: 'x'.repeat(200000) });
  check(c.status === 200 && c.isError, `200 KB draft text → isError (${(c.text || '').slice(0, 80)})`);
  c = await s.tool('postly_create_draft', { text: 'a\u0000b' });
  check(c.status === 400 && /-32700/.test(c.body) && /NUL/.test(c.body), `\\u0000 inside a JSON string → ${c.status} -32700`);
  r = await post('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"postly_create_draft","arguments":{"text":"\\ud83d"}}}');
  check((r.status === 400 && /-3270/.test(r.body)) || (r.status === 200 && /isError":true/.test(r.body)), `lone surrogate escape → ${r.status} ${r.body.slice(0, 70)}`);
  return s;
}

async function mcpAuthz(s) {
  const p = h.mport;
  const base = { Host: MCP_HOST, 'Content-Type': 'application/json', Accept: 'application/json' };
  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'h', version: '1' } } });
  const tryTok = async (tok, what) => {
    const r = await request(p, 'POST', '/mcp', { ...base, Authorization: `Bearer ${tok}` }, ping);
    check(r.status === 401 && /invalid_token/.test(r.headers['www-authenticate'] || '') && !(r.headers['www-authenticate'] || '').includes(tok.slice(-20)),
      `${what} → ${r.status} ${(r.headers['www-authenticate'] || '').replace(/.*error_description=/, '')}`);
  };
  await tryTok(h.mint('ws_a', ['workspace:read'], { aud: 'http://other.example/mcp' })[0], 'token for another audience');
  await tryTok(h.mint('ws_a', ['workspace:read'], { iss: 'http://evil.example' })[0], 'token from another issuer');
  const good = h.mint('ws_a', ['workspace:read'])[0];
  const [hd, pl, sig] = good.split('.');
  const claims = JSON.parse(Buffer.from(pl, 'base64url'));
  const forged = Buffer.from(JSON.stringify({ ...claims, ws: 'ws_b', scope: 'workspace:read posts:publish' })).toString('base64url');
  await tryTok(`${hd}.${forged}.${sig}`, 'claims edited (ws, scope), old signature');
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
  await tryTok(`${none}.${pl}.`, 'alg none');
  const hs = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: JSON.parse(Buffer.from(hd, 'base64url')).kid })).toString('base64url');
  await tryTok(`${hs}.${pl}.${sig}`, 'alg HS256 with the same kid');
  await tryTok(`${hd}.${pl}.${sig.slice(0, -4)}AAAA`, 'tampered signature');
  await tryTok('a'.repeat(9000), '9000-byte garbage token');
  const now = Math.floor(Date.now() / 1000);
  await tryTok(h.resign(good, { iat: now - 1300, nbf: now - 1300, exp: now - 700 }), 'expired token (re-signed with the real key)');
  await tryTok(h.resign(good, { iat: now + 600, nbf: now + 600, exp: now + 1200 }), 'token not yet valid (nbf in 10 min)');
  await tryTok(h.resign(good, {}, { typ: 'JWT' }), 'typ JWT instead of at+jwt');
  await tryTok(h.resign(good, { gid: 'g_forged' }), 'unknown grant id (signed)');
  const [revTok, revGid] = h.mint('ws_a', ['workspace:read']);
  h.revoke(revGid);
  await tryTok(revTok, 'token of a revoked grant');

  // Cross-workspace ids, forged cursors, traversal in resource URIs and media names.
  const d = await s.tool('postly_create_draft', { text: 'secret plan of ws_a' });
  check(!!(d.data && d.data.id), 'draft created in ws_a');
  const sb = await mcpSession(p, h.mint('ws_b', ALL)[0]);
  let c = await sb.tool('postly_get_draft', { draft_id: d.data.id });
  check(c.isError && /not.?found/i.test(c.text) && !c.text.includes('secret'), `ws_b reads ws_a's draft → ${(c.text || '').slice(0, 70)}`);
  c = await sb.tool('postly_update_draft', { draft_id: d.data.id, text: 'overwritten' });
  check(c.isError && /not.?found/i.test(c.text), 'ws_b updates ws_a\'s draft → not found');
  c = await s.tool('postly_get_draft', { draft_id: d.data.id });
  check(c.data && c.data.text === 'secret plan of ws_a', 'ws_a\'s draft unchanged');
  let r = await sb.rpc('resources/read', { uri: `postly://posts/${d.data.id}` });
  check(r.json && r.json.error && r.json.error.code === -32002, `resource of another kind/workspace → ${r.json && r.json.error && r.json.error.code}`);
  for (const uri of ['postly://posts/../../../etc/passwd', 'postly://posts/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    'file:///etc/passwd', 'postly://campaigns/..', 'postly://analytics/../../workspace', `postly://posts/${'a'.repeat(5000)}`]) {
    r = await s.rpc('resources/read', { uri });
    check(r.json && r.json.error && [-32002, -32602].includes(r.json.error.code) && !/root:/.test(r.body), `resources/read ${uri.slice(0, 48)} → ${r.json && r.json.error && r.json.error.code}`);
  }
  for (let i = 0; i < 3; i++) await s.tool('postly_create_draft', { text: `page ${i}` });
  const l = await s.tool('postly_list_drafts', { limit: 1 });
  const cur = l.data && l.data.next_cursor;
  check(!!cur, 'list_drafts gives a cursor');
  if (cur) {
    const flipped = cur.slice(0, 5) + (cur[5] === 'A' ? 'B' : 'A') + cur.slice(6);
    for (const [what, k] of [['bit-flipped', flipped], ['garbage', '!!notbase64!!'], ['empty-ish', 'AA'], ['long', 'A'.repeat(4000)]]) {
      c = await s.tool('postly_list_drafts', { limit: 1, cursor: k });
      check(c.isError && /cursor/i.test(c.text || ''), `${what} cursor → isError naming the cursor`);
    }
    c = await sb.tool('postly_list_drafts', { limit: 1, cursor: cur });
    check(c.isError || (c.data && !JSON.stringify(c.data).includes('page')), 'ws_a\'s cursor in ws_b does not list ws_a\'s drafts');
  }
  r = await s.rpc('resources/list', { cursor: 'Zm9yZ2Vk' });
  check(r.json && r.json.error && r.json.error.code === -32602, `forged resources/list cursor → ${r.json && r.json.error && r.json.error.code}`);
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  const marker = `postly-traversal-${process.pid}`;
  for (const fn of [`../../../../../../tmp/${marker}.png`, `/tmp/${marker}.png`, '..\\..\\x.png', 'a\r\nX-Evil: 1.png']) {
    c = await s.tool('postly_upload_media', { data_base64: png, filename: fn });
    // Media bytes are content-addressed (<data>/exec/…/sha256): a name is metadata, never a path.
    check(c.status === 200 && (c.isError || !!(c.data && c.data.id)), `media name ${JSON.stringify(fn)} → ${c.isError ? 'isError ' + (c.text || '').slice(0, 60) : 'metadata only, id ' + c.data.id}`);
  }
  check(!fs.existsSync(path.join(os.tmpdir(), `${marker}.png`)), 'no file written outside the data directory');
}

async function authzHostile() {
  const p = h.aport;
  const ah = { Host: `127.0.0.1:${p}` };
  const form = { ...ah, 'Content-Type': 'application/x-www-form-urlencoded' };
  let t = await raw(p, 'GET /authorize?a=%zz HTTP/1.1\r\n\r\n');
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `authz: request without Host, bad escape → ${status1(t) || 'closed'}`);
  t = await raw(p, 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 900\r\n\r\ngrant_type=refresh', 1500);
  check(!/^HTTP\/1\.[01] [25]/.test(t), `authz: truncated /token body → ${status1(t) || 'no answer'}`);
  t = await raw(p, `GET /${'a'.repeat(30000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  check(!t || /^HTTP\/1\.[01] 4\d\d/.test(t), `authz: 30 KB request line → ${status1(t) || 'closed'}`);

  // Registration: oversized, nested, invalid UTF-8, duplicate keys, bad redirect URIs.
  const reg = (body) => request(p, 'POST', '/register', { ...ah, 'Content-Type': 'application/json' }, body);
  let r = await reg(JSON.stringify({ redirect_uris: ['https://a.example/cb'], client_name: 'x'.repeat(70000) }));
  check(r.status === 413 || r.status === 400, `register: 70 KB body → ${r.status}`);
  r = await reg(`{"redirect_uris":["https://a.example/cb"],"x":${'['.repeat(7000)}${']'.repeat(7000)}}`);
  check(r.status === 400, `register: 7000 nested arrays (inside the 16 KiB bound) → ${r.status}`);
  r = await reg(Buffer.concat([Buffer.from('{"redirect_uris":["https://a.example/cb"],"client_name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]));
  check(r.status === 400, `register: invalid UTF-8 → ${r.status}`);
  r = await reg('{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://evil.example/cb"]}');
  check(r.status === 400, `register: duplicate keys → ${r.status}`);
  for (const u of ['javascript:alert(1)', 'http://evil.example/cb', 'https://a.example/cb#x', 'https://u:p@a.example/cb', 'https://a.example/c\r\nb']) {
    r = await reg(JSON.stringify({ redirect_uris: [u] }));
    check(r.status === 400 && /invalid_redirect_uri/.test(r.body), `register: redirect ${JSON.stringify(u)} → ${r.status}`);
  }

  // /authorize: duplicated parameters, header injection through redirect_uri and state.
  r = await reg(JSON.stringify({ redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'none', client_name: 'h' }));
  const cid = JSON.parse(r.body).client_id;
  const { challenge } = pkce();
  const base = `response_type=code&client_id=${encodeURIComponent(cid)}&code_challenge=${challenge}&code_challenge_method=S256&resource=${encodeURIComponent(RESOURCE)}`;
  r = await request(p, 'GET', `/authorize?${base}&client_id=other`, ah);
  check(r.status === 400 && !r.headers.location, `authorize: duplicated client_id → ${r.status}, no redirect`);
  r = await request(p, 'GET', `/authorize?${base}&redirect_uri=https://a.example/cb&redirect_uri=https://evil.example/`, ah);
  check(r.status === 400 && !r.headers.location, `authorize: conflicting redirect_uri → ${r.status}, no redirect`);
  r = await request(p, 'GET', `/authorize?${base}&redirect_uri=${encodeURIComponent('https://a.example/cb\r\nSet-Cookie: evil=1')}`, ah);
  check(r.status === 400 && !r.headers.location && !r.headers['set-cookie']?.some((x) => /evil/.test(x)), `authorize: CRLF in redirect_uri → ${r.status}, error page`);
  r = await request(p, 'GET', `/authorize?${base}&redirect_uri=https://evil.example/cb`, ah);
  check(r.status === 400 && !r.headers.location, `authorize: unregistered redirect_uri → ${r.status} (no open redirect)`);
  t = await raw(p, `GET /authorize?${base.replace('S256', 'plain')}&redirect_uri=https://a.example/cb&state=${encodeURIComponent('x\r\nSet-Cookie: evil=1\r\n')} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n\r\n`);
  const loc = (/\r\nLocation: ([^\r\n]*)/i.exec(t) || [])[1] || '';
  check(/^HTTP\/1\.1 30[23]/.test(t) && !/\r\nSet-Cookie: evil/i.test(t) && /state=x%0D%0ASet-Cookie/i.test(loc) && /error=invalid_request/.test(loc) && /[?&]iss=/.test(loc),
    `authorize: CRLF in state → redirect with the state percent-encoded, no injected header (${loc.slice(0, 60)}…)`);
  r = await request(p, 'GET', `/authorize?${base}&redirect_uri=https://a.example/cb&state=${'s'.repeat(600)}`, ah);
  check(r.status === 302 || r.status === 303 ? /error=invalid_request/.test(r.headers.location) : r.status === 400, `authorize: 600-byte state → ${r.status}`);
  r = await request(p, 'GET', `/authorize?${base}&redirect_uri=https://a.example/cb&scope=${encodeURIComponent('workspace:read \u00ff\u0000')}`, ah);
  check(r.status === 400 && !r.headers.location, `authorize: NUL in scope → ${r.status}`);

  // /token: duplicated and conflicting parameters, garbage grants.
  r = await request(p, 'POST', '/token', form, 'grant_type=authorization_code&grant_type=refresh_token&code=x');
  check(r.status === 400 && /invalid_request/.test(r.body) && r.headers['cache-control'] === 'no-store', `token: duplicated grant_type → ${r.status} ${JSON.parse(r.body).error}, no-store`);
  r = await request(p, 'POST', '/token', form, `grant_type=refresh_token&refresh_token=${'A'.repeat(43)}&client_id=${cid}`);
  check(r.status === 400 && /invalid_grant/.test(r.body), `token: forged refresh token → ${r.status} ${JSON.parse(r.body).error}`);
  r = await request(p, 'POST', '/token', form, `grant_type=authorization_code&code=%ff%fe&client_id=${cid}`);
  check(r.status === 400, `token: invalid UTF-8 in the form → ${r.status}`);
  // A raw NUL byte in a form body (fuzz_form found the parser let it through, truncating the
  // C string: "refresh_token\0junk" was read as "refresh_token").
  r = await request(p, 'POST', '/token', form, Buffer.from(`grant_type=refresh_token\u0000junk&refresh_token=${'A'.repeat(43)}&client_id=${cid}`));
  check(r.status === 400 && /invalid_request/.test(r.body) && /NUL/.test(r.body), `token: raw NUL byte in the form → ${r.status} ${r.body.slice(0, 90)}`);
  r = await request(p, 'POST', '/token', { ...ah, 'Content-Type': 'application/json' }, '{"grant_type":"refresh_token"}');
  check(r.status === 400, `token: JSON body → ${r.status}`);
  r = await request(p, 'POST', '/token', { ...form, Authorization: 'Basic ' + Buffer.from('a:b').toString('base64') }, `grant_type=refresh_token&refresh_token=x&client_id=${cid}&client_secret=y`);
  check(r.status === 400 || r.status === 401, `token: two client authentication methods → ${r.status} ${JSON.parse(r.body).error}`);

  // Pages: framing headers, CSRF (missing, foreign session, other request).
  const flow = await oauthFlow(h, 'workspace:read');
  check(flow.status === 200 && !!flow.tokens.refresh_token, 'oauth flow (DCR, PKCE, login, consent, token) for the page tests');
  for (const [pathName, hdr] of [['/apps', { Cookie: flow.cookie() }], ['/login', {}], ['/authorize?client_id=nope', {}]]) {
    r = await request(p, 'GET', pathName, { ...ah, ...hdr });
    check(r.headers['x-frame-options'] === 'DENY' && /frame-ancestors 'none'/.test(r.headers['content-security-policy'] || '') &&
      r.headers['referrer-policy'] === 'no-referrer', `${pathName} (${r.status}): X-Frame-Options DENY, CSP frame-ancestors 'none', no-referrer`);
  }
  const apps = await request(p, 'GET', '/apps', { ...ah, Cookie: flow.cookie() });
  const appForm = formFields(apps.body).filter(([n]) => n !== 'csrf');
  const post = { ...form, Origin: `http://127.0.0.1:${p}` };
  r = await request(p, 'POST', '/apps/disconnect', { ...post, Cookie: flow.cookie() }, new URLSearchParams(appForm).toString());
  check(r.status === 400 || r.status === 403, `apps/disconnect without CSRF → ${r.status}`);
  r = await request(p, 'POST', '/apps/disconnect', { ...post, Cookie: flow.cookie() }, new URLSearchParams([...appForm, ['csrf', 'A'.repeat(43)]]).toString());
  check(r.status === 400 || r.status === 403, `apps/disconnect with a forged CSRF → ${r.status}`);
  const other = await oauthFlow(h, 'workspace:read'); // another browser session
  const otherApps = await request(p, 'GET', '/apps', { ...ah, Cookie: other.cookie() });
  const otherCsrf = (formFields(otherApps.body).find(([n]) => n === 'csrf') || [])[1];
  r = await request(p, 'POST', '/apps/disconnect', { ...post, Cookie: flow.cookie() }, new URLSearchParams([...appForm, ['csrf', otherCsrf || '']]).toString());
  check(r.status === 400 || r.status === 403, `apps/disconnect with another session's CSRF → ${r.status}`);
  r = await request(p, 'POST', '/logout', { ...post, Cookie: flow.cookie() }, 'csrf=');
  const still = await request(p, 'GET', '/apps', { ...ah, Cookie: flow.cookie() });
  check(still.status === 200 && /disconnect/i.test(still.body), `logout without CSRF → ${r.status}, the session survives (/apps ${still.status})`);
  r = await request(p, 'POST', '/token', form, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: flow.tokens.refresh_token, client_id: flow.clientId }).toString());
  check(r.status === 200, 'the grant survived the forged disconnects (refresh works)');
  r = await request(p, 'POST', '/login', { ...post }, 'username=demo&password=x&csrf=abc&rid=def');
  check(r.status === 400 || r.status === 403, `login POST without a session/CSRF → ${r.status}`);
  // A consent POST carrying this session's CSRF token for another request id.
  const page = other.consentPage.body;
  const consentCsrf = (formFields(page, 'consent-form').find(([n]) => n === 'csrf') || [])[1];
  r = await request(p, 'POST', '/consent', { ...post, Cookie: flow.cookie() }, new URLSearchParams({ csrf: consentCsrf || 'x', rid: 'A'.repeat(43), action: 'approve', workspace: 'demo' }).toString());
  check((r.status === 400 || r.status === 403) && !(r.headers.location || '').includes('code='), `consent with a CSRF token of another session/request → ${r.status}, no code`);
}

// Slowloris: many connections that send a header byte at a time; the servers keep serving, and
// postly-mcp (started with --header-timeout 3) closes every dripping connection once its request
// has not arrived whole 3 s after its first byte, although each drip resets the idle timeout.
async function slowloris() {
  const socks = [];
  const t00 = Date.now();
  const cut = []; // ms after the start at which postly-mcp closed each of its slow connections
  const open = (port) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('connect', () => s.write('POST /mcp HTTP/1.1\r\nHost: x\r\nX-Slow: '));
    if (port === h.mport) s.on('close', () => cut.push(Date.now() - t00));
    socks.push(s);
  };
  for (let i = 0; i < 150; i++) {
    open(h.mport);
    open(h.aport);
  }
  const drip = setInterval(() => { for (const s of socks) if (!s.destroyed) s.write('a'); }, 200);
  await new Promise((res) => setTimeout(res, 500));
  const t0 = Date.now();
  let ok = 0;
  for (let i = 0; i < 20; i++) {
    const a = await request(h.aport, 'GET', '/.well-known/oauth-authorization-server', { Host: `127.0.0.1:${h.aport}` }, null, { timeoutMs: 5000 });
    const m = await request(h.mport, 'GET', '/.well-known/oauth-protected-resource/mcp', { Host: MCP_HOST }, null, { timeoutMs: 5000 });
    if (a.status === 200 && m.status === 200) ok++;
  }
  const ms = Date.now() - t0;
  check(ok === 20, `300 slow connections open: 20/20 normal request pairs served (${ok}) in ${ms} ms`);
  for (let i = 0; i < 100 && cut.length < 150; i++) await new Promise((res) => setTimeout(res, 100));
  check(cut.length === 150 && Math.min(...cut) >= 2500 && Math.max(...cut) < 9000,
    `postly-mcp closed all 150 dripping connections at the request deadline (${cut.length}, after ${Math.min(...cut)}..${Math.max(...cut)} ms)`);
  clearInterval(drip);
  for (const s of socks) s.destroy();
}

async function main() {
  await h.startAuthz();
  h.mint('ws_a', ['workspace:read']);
  await h.startMcp(['--max-body', '1048576', '--header-timeout', '3']);
  const tok = h.mint('ws_a', ALL)[0];
  const s = await mcpTransport(tok);
  await mcpAuthz(s);
  await authzHostile();
  await slowloris();
  // Still up, still correct.
  const after = await mcpSession(h.mport, h.mint('ws_a', ALL)[0]);
  const w = await after.tool('postly_get_workspace', {});
  check(w.status === 200 && w.data && w.data.id === 'ws_a', 'postly-mcp answers a normal tool call after the suite');
  const m = await request(h.aport, 'GET', '/.well-known/oauth-authorization-server', { Host: `127.0.0.1:${h.aport}` });
  check(m.status === 200 && JSON.parse(m.body).issuer === h.issuer, 'postly-authz answers its metadata after the suite');
  await h.stop(h.mcp, 'postly-mcp');
  await h.stop(h.authz, 'postly-authz');
  h.sanitizerClean('postly-mcp');
  h.sanitizerClean('postly-authz');
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  h.failures++;
}).finally(() => h.finish());
