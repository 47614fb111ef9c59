// /v1/keys over real HTTP (SPEC sections 2 and 7): create, list, revoke, rotate; each scope boundary,
// no escalation by creating or rotating a broader key, environments and site restrictions.
import { parseKey } from '@parley/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';

let t: TestServer;
let f: Fixture;
let other: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  f = seed(t.ctx);
  other = seed(t.ctx, {}, 'Other Inc');
});
afterAll(async () => {
  await t.close();
});

type Json = Record<string, any>;

function expectError(r: { status: number; json: any; headers: Headers }, status: number, code: string): Json {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(r.json.error.request_id).toBe(r.headers.get('x-request-id'));
  return r.json.error;
}

const KEY_FIELDS = ['id', 'name', 'prefix', 'type', 'environment', 'scopes', 'site', 'sites', 'created_at', 'last_used_at', 'expires_at', 'revoked_at', 'exposed_at'];

async function create(as: string, body: Json): Promise<Json> {
  const r = await call(t.base, 'POST', '/v1/keys', { key: as, body });
  expect(r.status, r.text).toBe(201);
  return r.json.key;
}
const secret = (as: string, scopes: string[], extra: Json = {}) => create(as, { type: 'secret', name: `k ${scopes.join('+')}`, scopes, ...extra });

async function listAll(as: string): Promise<Json[]> {
  const out: Json[] = [];
  let cursor: string | null = null;
  do {
    const r = await call(t.base, 'GET', `/v1/keys?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { key: as });
    expect(r.status, r.text).toBe(200);
    out.push(...r.json.keys);
    cursor = r.json.next_cursor;
  } while (cursor);
  return out;
}

describe('POST /v1/keys', () => {
  it('creates a secret key with the SPEC shape; the plaintext only in this response', async () => {
    const key = await create(f.sk.live, { type: 'secret', name: '  CI deploy  ' });
    expect(Object.keys(key).sort()).toEqual([...KEY_FIELDS, 'secret'].sort());
    expect(key).toMatchObject({
      name: 'CI deploy', type: 'secret', environment: 'live', scopes: ['read'], site: null, sites: null,
      last_used_at: null, expires_at: null, revoked_at: null, exposed_at: null,
    });
    expect(key.id).toMatch(/^key_/);
    expect(parseKey(key.secret)).toEqual({ type: 'secret', environment: 'live', prefix: key.prefix });
    expect(key.prefix).toBe(key.secret.slice(0, 12));
    // It works, with exactly its scope.
    expect((await call(t.base, 'GET', '/v1/sites', { key: key.secret })).status).toBe(200);
    expectError(await call(t.base, 'GET', '/v1/keys', { key: key.secret }), 403, 'insufficient_scope');
  });

  it('scopes are stored once each, in a canonical order', async () => {
    const key = await secret(f.sk.live, ['admin', 'read', 'admin']);
    expect(key.scopes).toEqual(['read', 'admin']);
  });

  it('creates a publishable key for a site of the workspace, in the caller environment', async () => {
    const live = await create(f.sk.live, { type: 'publishable', name: 'second widget key', site: f.serviceId });
    expect(live).toMatchObject({ type: 'publishable', environment: 'live', scopes: ['widget'], site: f.serviceId, sites: null });
    expect(live.secret).toMatch(/^pk_live_/);
    const test = await create(f.sk.test, { type: 'publishable', name: 'w', site: f.serviceId, scopes: ['widget'] });
    expect(test.secret).toMatch(/^pk_test_/);
    // A publishable key never reaches management routes.
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `Bearer ${live.secret}` } }), 403, 'insufficient_scope');
  });

  it('expires_at is kept and must be in the future', async () => {
    const at = new Date(t.clock.now + 3_600_000).toISOString();
    expect((await secret(f.sk.live, ['read'], { expires_at: at })).expires_at).toBe(at);
    const past = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'x', expires_at: new Date(t.clock.now - 1).toISOString() } });
    expect(expectError(past, 400, 'invalid_request').issues).toEqual([{ path: 'expires_at', message: expect.any(String) }]);
  });

  it.each([
    ['an unknown field', { type: 'secret', name: 'x', scope: ['read'] }, 'scope'],
    ['a missing name', { type: 'secret' }, 'name'],
    ['an empty name', { type: 'secret', name: '   ' }, 'name'],
    ['an unknown type', { type: 'restricted', name: 'x' }, 'type'],
    ['an unknown scope', { type: 'secret', name: 'x', scopes: ['root'] }, 'scopes.0'],
    ['an empty scope list', { type: 'secret', name: 'x', scopes: [] }, 'scopes'],
    ['expires_at that is not ISO 8601', { type: 'secret', name: 'x', expires_at: 'tomorrow' }, 'expires_at'],
    ['a publishable key without a site', { type: 'publishable', name: 'x' }, 'site'],
    ['a publishable key with sites', { type: 'publishable', name: 'x', site: 'SITE', sites: ['SITE'] }, 'sites'],
    ['a publishable key with a secret scope', { type: 'publishable', name: 'x', site: 'SITE', scopes: ['read'] }, 'scopes'],
    ['a secret key with a site', { type: 'secret', name: 'x', site: 'SITE' }, 'site'],
    ['a secret key with the widget scope', { type: 'secret', name: 'x', scopes: ['read', 'widget'] }, 'scopes'],
    ['a publishable key for an unknown site', { type: 'publishable', name: 'x', site: 'no-such-site' }, 'site'],
    ['a publishable key for a site of another workspace', { type: 'publishable', name: 'x', site: 'OTHER' }, 'site'],
    ['a restriction naming an unknown site', { type: 'secret', name: 'x', sites: ['SITE', 'no-such-site'] }, 'sites.1'],
  ])('400 invalid_request for %s, naming the field', async (_what, raw, path) => {
    const body = JSON.parse(JSON.stringify(raw).replaceAll('"SITE"', JSON.stringify(f.serviceId)).replaceAll('"OTHER"', JSON.stringify(other.serviceId)));
    const before = (await listAll(f.sk.live)).length;
    const err = expectError(await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body }), 400, 'invalid_request');
    expect(err.issues.map((i: { path: string }) => i.path)).toContain(path);
    expect((await listAll(f.sk.live)).length).toBe(before);
  });
});

describe('scope boundaries', () => {
  it('read and write keys cannot manage keys; a write key cannot manage sites', async () => {
    const read = (await secret(f.sk.live, ['read'])).secret;
    const write = (await secret(f.sk.live, ['read', 'write'])).secret;
    for (const k of [read, write]) {
      expectError(await call(t.base, 'GET', '/v1/keys', { key: k }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'POST', '/v1/keys', { key: k, body: { type: 'secret', name: 'x' } }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'DELETE', '/v1/keys/key_whatever', { key: k }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'POST', '/v1/keys/key_whatever/rotate', { key: k }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'PATCH', `/v1/sites/${f.serviceId}`, { key: k, body: { name: 'x' } }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'DELETE', `/v1/sites/${f.serviceId}`, { key: k }), 403, 'insufficient_scope');
      expectError(await call(t.base, 'POST', '/v1/sites', { key: k, body: { service_id: 'nope-1', name: 'x', allowed_origins: [] } }), 403, 'insufficient_scope');
    }
  });

  it('an admin-only key manages keys but cannot read tickets', async () => {
    const admin = (await secret(f.sk.live, ['admin'])).secret;
    expect((await call(t.base, 'GET', '/v1/keys', { key: admin })).status).toBe(200);
    expectError(await call(t.base, 'GET', `/v1/sites/${f.serviceId}/tickets`, { key: admin }), 403, 'insufficient_scope');
  });

  it('a key can grant only scopes it has (no escalation by creating a broader key)', async () => {
    const adminOnly = (await secret(f.sk.live, ['admin'])).secret;
    const adminRead = (await secret(f.sk.live, ['read', 'admin'])).secret;
    const before = (await listAll(f.sk.live)).length;
    // The default scope is read: an admin-only key cannot hand it out either.
    expectError(await call(t.base, 'POST', '/v1/keys', { key: adminOnly, body: { type: 'secret', name: 'x' } }), 403, 'insufficient_scope');
    const e = expectError(await call(t.base, 'POST', '/v1/keys', { key: adminRead, body: { type: 'secret', name: 'x', scopes: ['read', 'write'] } }), 403, 'insufficient_scope');
    expect(e.message).toContain("'write'");
    expect((await listAll(f.sk.live)).length).toBe(before);
    expect((await secret(adminRead, ['read'])).scopes).toEqual(['read']);
    expect((await secret(adminOnly, ['admin'])).scopes).toEqual(['admin']);
  });

  it('nor by rotating a broader key', async () => {
    const adminRead = (await secret(f.sk.live, ['read', 'admin'])).secret;
    const full = await secret(f.sk.live, ['read', 'write', 'admin']);
    expectError(await call(t.base, 'POST', `/v1/keys/${full.id}/rotate`, { key: adminRead }), 403, 'insufficient_scope');
    // The broader key is untouched.
    expect((await call(t.base, 'GET', '/v1/keys', { key: full.secret })).status).toBe(200);
    const narrow = await secret(f.sk.live, ['read']);
    expect((await call(t.base, 'POST', `/v1/keys/${narrow.id}/rotate`, { key: adminRead })).status).toBe(201);
  });
});

describe('environments', () => {
  it('a test key creates test keys only and never sees live keys', async () => {
    const made = await secret(f.sk.test, ['read', 'write', 'admin']);
    expect(made.environment).toBe('test');
    expect(made.secret).toMatch(/^sk_test_/);
    const seen = await listAll(f.sk.test);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((k) => k.environment === 'test')).toBe(true);
    expect(seen.map((k) => k.id)).toContain(made.id);
    const live = await listAll(f.sk.live);
    expect(live.every((k) => k.environment === 'live')).toBe(true);
    expect(live.map((k) => k.id)).not.toContain(made.id);
  });

  it('live keys are 404 to a test key: no revoke, no rotate', async () => {
    const live = await secret(f.sk.live, ['read']);
    expectError(await call(t.base, 'DELETE', `/v1/keys/${live.id}`, { key: f.sk.test }), 404, 'not_found');
    expectError(await call(t.base, 'POST', `/v1/keys/${live.id}/rotate`, { key: f.sk.test }), 404, 'not_found');
    expect((await call(t.base, 'GET', '/v1/sites', { key: live.secret })).status).toBe(200);
  });

  it('keys of another workspace are 404 and never listed', async () => {
    const theirs = await secret(other.sk.live, ['read']);
    expectError(await call(t.base, 'DELETE', `/v1/keys/${theirs.id}`, { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'POST', `/v1/keys/${theirs.id}/rotate`, { key: f.sk.live }), 404, 'not_found');
    expect((await listAll(f.sk.live)).map((k) => k.id)).not.toContain(theirs.id);
    expect((await call(t.base, 'GET', '/v1/sites', { key: theirs.secret })).status).toBe(200);
  });
});

describe('site restrictions', () => {
  let second: string;
  let restricted: Json;
  beforeAll(async () => {
    second = `second-${process.pid}`;
    const r = await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: second, name: 'Second', allowed_origins: ['https://two.example'] } });
    expect(r.status, r.text).toBe(201);
    restricted = await secret(f.sk.live, ['read', 'write', 'admin'], { sites: [f.serviceId] });
    expect(restricted.sites).toEqual([f.serviceId]);
  });

  it('a restricted key sees only its sites: 403 site_mismatch for the others', async () => {
    const list = await call(t.base, 'GET', '/v1/sites', { key: restricted.secret });
    expect(list.json.sites.map((s: Json) => s.service_id)).toEqual([f.serviceId]);
    expect((await call(t.base, 'GET', `/v1/sites/${f.serviceId}`, { key: restricted.secret })).status).toBe(200);
    expectError(await call(t.base, 'GET', `/v1/sites/${second}`, { key: restricted.secret }), 403, 'site_mismatch');
    expectError(await call(t.base, 'GET', `/v1/sites/${second}/tickets`, { key: restricted.secret }), 403, 'site_mismatch');
    expectError(await call(t.base, 'PATCH', `/v1/sites/${second}`, { key: restricted.secret, body: { name: 'x' } }), 403, 'site_mismatch');
    expectError(await call(t.base, 'DELETE', `/v1/sites/${second}`, { key: restricted.secret }), 403, 'site_mismatch');
    expectError(await call(t.base, 'GET', `/v1/sites/${second}/usage`, { key: restricted.secret }), 403, 'site_mismatch');
  });

  it('keys it creates inherit its restriction and cannot widen it', async () => {
    const child = await secret(restricted.secret, ['read']);
    expect(child.sites).toEqual([f.serviceId]);
    expectError(await call(t.base, 'GET', `/v1/sites/${second}`, { key: child.secret }), 403, 'site_mismatch');
    expectError(
      await call(t.base, 'POST', '/v1/keys', { key: restricted.secret, body: { type: 'secret', name: 'x', sites: [f.serviceId, second] } }),
      403, 'site_mismatch',
    );
    expectError(
      await call(t.base, 'POST', '/v1/keys', { key: restricted.secret, body: { type: 'publishable', name: 'x', site: second } }),
      403, 'site_mismatch',
    );
    const pk = await create(restricted.secret, { type: 'publishable', name: 'w', site: f.serviceId });
    expect(pk.site).toBe(f.serviceId);
  });

  it('it cannot create sites outside its restriction', async () => {
    expectError(
      await call(t.base, 'POST', '/v1/sites', { key: restricted.secret, body: { service_id: `third-${process.pid}`, name: 'x', allowed_origins: [] } }),
      403, 'site_mismatch',
    );
  });

  it('it lists and reaches only keys within its restriction', async () => {
    const unrestricted = await secret(f.sk.live, ['read']);
    const pkSecond = await create(f.sk.live, { type: 'publishable', name: 'w2', site: second });
    const seen = (await listAll(restricted.secret)).map((k) => k.id);
    expect(seen).toContain(restricted.id);
    expect(seen).not.toContain(unrestricted.id);
    expect(seen).not.toContain(pkSecond.id);
    expectError(await call(t.base, 'DELETE', `/v1/keys/${unrestricted.id}`, { key: restricted.secret }), 404, 'not_found');
    // Rotating the unrestricted key would mint an unrestricted secret: refused as if it did not exist.
    expectError(await call(t.base, 'POST', `/v1/keys/${unrestricted.id}/rotate`, { key: restricted.secret }), 404, 'not_found');
  });
});

describe('GET /v1/keys', () => {
  it('lists metadata only, never a secret or hash, with cursor pages without duplicates or gaps', async () => {
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await secret(f.sk.live, ['read']));
    const all = await listAll(f.sk.live);
    const ids = all.map((k) => k.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of made) expect(ids).toContain(m.id);
    for (const k of all) expect(Object.keys(k).sort()).toEqual([...KEY_FIELDS].sort());
    const r = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    for (const m of made) expect(r.text).not.toContain(m.secret.slice(8, 40));
    expect(r.json.next_cursor).toBeNull();
  });

  it('DELETE takes no body: a field or a JSON value other than {} is 400 and revokes nothing', async () => {
    const k = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'to revoke', scopes: ['read'] } });
    const id = k.json.key.id as string;
    for (const rawBody of ['3', 'null', '"x"', '[]', '{"bogus":1}']) {
      const r = await call(t.base, 'DELETE', `/v1/keys/${id}`, { key: f.sk.live, rawBody, headers: { 'Content-Type': 'application/json' } });
      expectError(r, 400, 'invalid_request');
    }
    expect((await call(t.base, 'GET', '/v1/sites', { key: k.json.key.secret })).status).toBe(200); // still works
    const ok = await call(t.base, 'DELETE', `/v1/keys/${id}`, { key: f.sk.live, rawBody: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(ok.status).toBe(200);
  });

  it('refuses unknown parameters, bad limits and forged cursors', async () => {
    expectError(await call(t.base, 'GET', '/v1/keys?limt=5', { key: f.sk.live }), 400, 'invalid_request');
    expectError(await call(t.base, 'GET', '/v1/keys?limit=0', { key: f.sk.live }), 400, 'invalid_request');
    expectError(await call(t.base, 'GET', '/v1/keys?limit=101', { key: f.sk.live }), 400, 'invalid_request');
    expectError(await call(t.base, 'GET', '/v1/keys?limit=1e2', { key: f.sk.live }), 400, 'invalid_request');
    expectError(await call(t.base, 'GET', '/v1/keys?cursor=garbage', { key: f.sk.live }), 400, 'invalid_request');
  });
});

describe('DELETE /v1/keys/:id', () => {
  it('revokes at once; a second revoke keeps the first time', async () => {
    const k = await secret(f.sk.live, ['read']);
    const r = await call(t.base, 'DELETE', `/v1/keys/${k.id}`, { key: f.sk.live });
    expect(r.status).toBe(200);
    expect(r.json.key).toMatchObject({ id: k.id, revoked_at: new Date(t.clock.now).toISOString() });
    expect(r.json.key.secret).toBeUndefined();
    expectError(await call(t.base, 'GET', '/v1/sites', { key: k.secret }), 401, 'invalid_api_key');
    t.clock.advance(1000);
    const again = await call(t.base, 'DELETE', `/v1/keys/${k.id}`, { key: f.sk.live });
    expect(again.json.key.revoked_at).toBe(r.json.key.revoked_at);
    expectError(await call(t.base, 'DELETE', '/v1/keys/key_nope', { key: f.sk.live }), 404, 'not_found');
  });

  it('a key can revoke itself; its next request is 401', async () => {
    const k = await secret(f.sk.live, ['read', 'admin']);
    expect((await call(t.base, 'DELETE', `/v1/keys/${k.id}`, { key: k.secret })).status).toBe(200);
    expectError(await call(t.base, 'GET', '/v1/keys', { key: k.secret }), 401, 'invalid_api_key');
  });
});

describe('POST /v1/keys/:id/rotate', () => {
  it('without grace: a new key with the same name, scopes, restriction and expiry; the old one stops now', async () => {
    const expires = new Date(t.clock.now + 86_400_000).toISOString();
    const old = await secret(f.sk.live, ['read', 'write'], { name: 'backend', sites: [f.serviceId], expires_at: expires });
    const r = await call(t.base, 'POST', `/v1/keys/${old.id}/rotate`, { key: f.sk.live });
    expect(r.status, r.text).toBe(201);
    const fresh = r.json.key;
    expect(fresh.id).not.toBe(old.id);
    expect(fresh.secret).not.toBe(old.secret);
    expect(fresh).toMatchObject({ name: 'backend', type: 'secret', environment: 'live', scopes: ['read', 'write'], sites: [f.serviceId], expires_at: expires, revoked_at: null });
    expectError(await call(t.base, 'GET', '/v1/sites', { key: old.secret }), 401, 'invalid_api_key');
    expect((await call(t.base, 'GET', '/v1/sites', { key: fresh.secret })).status).toBe(200);
    const listed = (await listAll(f.sk.live)).find((k) => k.id === old.id);
    expect(listed!.revoked_at).toBe(new Date(t.clock.now).toISOString());
  });

  it('with grace: the old key works until the grace ends, then 401', async () => {
    const old = await secret(f.sk.live, ['read']);
    const r = await call(t.base, 'POST', `/v1/keys/${old.id}/rotate`, { key: f.sk.live, body: { grace_seconds: 3600 } });
    expect(r.status).toBe(201);
    const end = t.clock.now + 3_600_000;
    expect((await listAll(f.sk.live)).find((k) => k.id === old.id)!.revoked_at).toBe(new Date(end).toISOString());
    expect((await call(t.base, 'GET', '/v1/sites', { key: old.secret })).status).toBe(200);
    t.clock.set(end - 1);
    expect((await call(t.base, 'GET', '/v1/sites', { key: old.secret })).status).toBe(200);
    t.clock.set(end);
    expectError(await call(t.base, 'GET', '/v1/sites', { key: old.secret }), 401, 'invalid_api_key');
    expect((await call(t.base, 'GET', '/v1/sites', { key: r.json.key.secret })).status).toBe(200);
  });

  it('revoking during the grace period ends it at once', async () => {
    const old = await secret(f.sk.live, ['read']);
    await call(t.base, 'POST', `/v1/keys/${old.id}/rotate`, { key: f.sk.live, body: { grace_seconds: 600 } });
    expect((await call(t.base, 'GET', '/v1/sites', { key: old.secret })).status).toBe(200);
    await call(t.base, 'DELETE', `/v1/keys/${old.id}`, { key: f.sk.live });
    expectError(await call(t.base, 'GET', '/v1/sites', { key: old.secret }), 401, 'invalid_api_key');
  });

  it('rotates a publishable key for the same site', async () => {
    const pk = await create(f.sk.live, { type: 'publishable', name: 'widget', site: f.serviceId });
    const r = await call(t.base, 'POST', `/v1/keys/${pk.id}/rotate`, { key: f.sk.live });
    expect(r.status).toBe(201);
    expect(r.json.key).toMatchObject({ type: 'publishable', site: f.serviceId, scopes: ['widget'], name: 'widget' });
    expect(r.json.key.secret).toMatch(/^pk_live_/);
  });

  it('refuses a bad grace, a revoked key, an expired key and unknown fields', async () => {
    const k = await secret(f.sk.live, ['read'], { expires_at: new Date(t.clock.now + 10_000).toISOString() });
    for (const body of [{ grace_seconds: -1 }, { grace_seconds: 604_801 }, { grace_seconds: 1.5 }, { grace_seconds: '60' }, { grace: 60 }]) {
      expectError(await call(t.base, 'POST', `/v1/keys/${k.id}/rotate`, { key: f.sk.live, body }), 400, 'invalid_request');
    }
    expect((await call(t.base, 'POST', `/v1/keys/${k.id}/rotate`, { key: f.sk.live, body: { grace_seconds: 604_800 } })).status).toBe(201);
    // Already rotated (revocation scheduled): rotate its successor instead.
    expectError(await call(t.base, 'POST', `/v1/keys/${k.id}/rotate`, { key: f.sk.live }), 400, 'invalid_request');
    const e = await secret(f.sk.live, ['read'], { expires_at: new Date(t.clock.now + 10_000).toISOString() });
    t.clock.advance(10_000);
    expectError(await call(t.base, 'POST', `/v1/keys/${e.id}/rotate`, { key: f.sk.live }), 400, 'invalid_request');
  });
});
