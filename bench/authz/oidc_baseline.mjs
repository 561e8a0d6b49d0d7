// bench/authz/oidc_baseline.mjs — the baseline of bench_authz: node-oidc-provider 9.13.3
// configured like postly-authz (public client, PKCE S256 required, resource indicators with
// one resource server, ES256 JWT access tokens of 600 s, refresh tokens rotated on every use,
// 60 s codes). Creates N authorization codes through its own models (so no browser is needed)
// and writes them to a file, then serves /token until killed.
//
// usage: node oidc_baseline.mjs N codes.json
// prints "READY <port>" once listening.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { createHash, randomBytes, generateKeyPairSync } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nm = join(here, '..', '..', 'tests', 'node', 'node_modules');
const { default: Provider } = await import(pathToFileURL(join(nm, 'oidc-provider', 'lib', 'index.js')));

const N = Number(process.argv[2] || 1000);
const out = process.argv[3] || 'codes.json';
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

const provider = new Provider('http://127.0.0.1', {
  adapter: MapAdapter,
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
writeFileSync(out, JSON.stringify(codes));
const server = provider.listen(0, '127.0.0.1', () => {
  console.log('READY ' + server.address().port);
});
