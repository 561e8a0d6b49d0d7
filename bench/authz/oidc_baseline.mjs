// bench/authz/oidc_baseline.mjs — the baseline of bench_authz: node-oidc-provider 9.13.3
// configured like postly-authz (public client, PKCE S256 required, resource indicators with
// one resource server, ES256 JWT access tokens of 600 s, refresh tokens rotated on every use,
// 60 s codes). Creates N authorization codes through its own models (so no browser is needed)
// and writes them to a file, then serves /token until killed.
//
// usage: node oidc_baseline.mjs N codes.json [memory | sqlite:PATH]
//   memory       (default) every model in a Map in the process: nothing on disk
//   sqlite:PATH  a persistent adapter as a Node deployment would write it with Node 22's
//                built-in node:sqlite: one table keyed by (model, id) with the JSON payload,
//                indexes for the grantId / uid / userCode look-ups, WAL journal with
//                synchronous=FULL, so every upsert, consume and destroy is on disk (the WAL
//                fsynced) before the adapter call returns — like postly-authz's default, which
//                answers only once the grant is on disk. node:sqlite is synchronous: each
//                write's commit blocks the event loop for its fsync; there is no group commit.
// prints "READY <port>" once listening.
import { writeFileSync } from 'node:fs';
import { createHash, randomBytes, generateKeyPairSync } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DatabaseSync } from 'node:sqlite';

const here = dirname(fileURLToPath(import.meta.url));
const nm = join(here, '..', '..', 'tests', 'node', 'node_modules');
const { default: Provider } = await import(pathToFileURL(join(nm, 'oidc-provider', 'lib', 'index.js')));

const N = Number(process.argv[2] || 1000);
const out = process.argv[3] || 'codes.json';
const mode = process.argv[4] || 'memory';
const RESOURCE = 'http://127.0.0.1:8081/mcp';
const SCOPES = 'workspace:read posts:read analytics:read';
const REDIRECT = 'http://127.0.0.1/cb';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = privateKey.export({ format: 'jwk' });
jwk.alg = 'ES256';
jwk.use = 'sig';

// The bundled development adapter is an LRU cache of 1000 entries: at benchmark volumes it
// evicts codes and grants. This is the same in-memory storage without eviction.
const store = new Map();
const byGrant = new Map();
class MapAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload) {
    const k = this.key(id);
    store.set(k, payload);
    if (payload.grantId) {
      if (!byGrant.has(payload.grantId)) byGrant.set(payload.grantId, new Set());
      byGrant.get(payload.grantId).add(k);
    }
  }
  async find(id) { return store.get(this.key(id)); }
  async findByUid(uid) { for (const v of store.values()) if (v.uid === uid) return v; return undefined; }
  async findByUserCode() { return undefined; }
  async consume(id) { const v = store.get(this.key(id)); if (v) v.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    const keys = byGrant.get(grantId);
    if (keys) for (const k of keys) store.delete(k);
    byGrant.delete(grantId);
  }
}

// The durable adapter (oidc-provider's adapter interface: upsert, find, findByUid,
// findByUserCode, consume, destroy, revokeByGrantId).
let db = null;
class SqliteAdapter {
  constructor(name) { this.name = name; }
  static open(path) {
    db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    db.exec(`CREATE TABLE IF NOT EXISTS oidc (
               model TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL,
               grant_id TEXT, uid TEXT, user_code TEXT, expires_at INTEGER, consumed_at INTEGER,
               PRIMARY KEY (model, id)) WITHOUT ROWID`);
    db.exec('CREATE INDEX IF NOT EXISTS oidc_grant ON oidc (grant_id) WHERE grant_id IS NOT NULL');
    db.exec('CREATE INDEX IF NOT EXISTS oidc_uid ON oidc (model, uid) WHERE uid IS NOT NULL');
    db.exec('CREATE INDEX IF NOT EXISTS oidc_user_code ON oidc (model, user_code) WHERE user_code IS NOT NULL');
    SqliteAdapter.q = {
      upsert: db.prepare(`INSERT INTO oidc (model, id, payload, grant_id, uid, user_code, expires_at)
                          VALUES (?, ?, ?, ?, ?, ?, ?)
                          ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload,
                            grant_id = excluded.grant_id, uid = excluded.uid,
                            user_code = excluded.user_code, expires_at = excluded.expires_at,
                            consumed_at = NULL`),
      find: db.prepare('SELECT payload, consumed_at FROM oidc WHERE model = ? AND id = ?'),
      byUid: db.prepare('SELECT payload, consumed_at FROM oidc WHERE model = ? AND uid = ?'),
      byUserCode: db.prepare('SELECT payload, consumed_at FROM oidc WHERE model = ? AND user_code = ?'),
      consume: db.prepare('UPDATE oidc SET consumed_at = ? WHERE model = ? AND id = ?'),
      destroy: db.prepare('DELETE FROM oidc WHERE model = ? AND id = ?'),
      revoke: db.prepare('DELETE FROM oidc WHERE grant_id = ?'),
    };
  }
  static row(r) {
    if (!r) return undefined;
    const p = JSON.parse(r.payload);
    if (r.consumed_at) p.consumed = r.consumed_at;
    return p;
  }
  async upsert(id, payload, expiresIn) {
    SqliteAdapter.q.upsert.run(this.name, id, JSON.stringify(payload), payload.grantId ?? null,
      payload.uid ?? null, payload.userCode ?? null,
      expiresIn ? Math.floor(Date.now() / 1000) + expiresIn : null);
  }
  async find(id) { return SqliteAdapter.row(SqliteAdapter.q.find.get(this.name, id)); }
  async findByUid(uid) { return SqliteAdapter.row(SqliteAdapter.q.byUid.get(this.name, uid)); }
  async findByUserCode(c) { return SqliteAdapter.row(SqliteAdapter.q.byUserCode.get(this.name, c)); }
  async consume(id) { SqliteAdapter.q.consume.run(Math.floor(Date.now() / 1000), this.name, id); }
  async destroy(id) { SqliteAdapter.q.destroy.run(this.name, id); }
  async revokeByGrantId(grantId) { SqliteAdapter.q.revoke.run(grantId); }
}
if (mode.startsWith('sqlite:')) SqliteAdapter.open(mode.slice(7));
else if (mode !== 'memory') throw new Error(`unknown mode ${mode}`);

const provider = new Provider('http://127.0.0.1', {
  adapter: db ? SqliteAdapter : MapAdapter,
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  clients: [{ client_id: 'bench', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT],
              id_token_signed_response_alg: 'ES256',
              grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }],
  jwks: { keys: [jwk] },
  scopes: SCOPES.split(' '),
  pkce: { required: () => true },
  issueRefreshToken: () => true,
  rotateRefreshToken: () => true,
  ttl: { AuthorizationCode: 60, AccessToken: 600, RefreshToken: 14 * 24 * 3600, Grant: 14 * 24 * 3600 },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: SCOPES, accessTokenFormat: 'jwt', accessTokenTTL: 600,
                                      jwt: { sign: { alg: 'ES256' } } }),
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('oidc server_error', err));

const client = await provider.Client.find('bench');
const codes = [];
// Seeding is not measured: one transaction (one fsync) for all the codes and grants.
if (db) db.exec('BEGIN');
for (let i = 0; i < N; i++) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const grant = new provider.Grant({ accountId: 'user-' + i, clientId: 'bench' });
  grant.addResourceScope(RESOURCE, SCOPES);
  const grantId = await grant.save();
  const ac = new provider.AuthorizationCode({
    accountId: 'user-' + i, grantId, client, redirectUri: REDIRECT, scope: SCOPES,
    resource: RESOURCE, codeChallenge: challenge, codeChallengeMethod: 'S256',
  });
  codes.push({ code: await ac.save(), verifier });
}
if (db) db.exec('COMMIT');
writeFileSync(out, JSON.stringify(codes));
const server = provider.listen(0, '127.0.0.1', () => {
  console.log('READY ' + server.address().port);
});
