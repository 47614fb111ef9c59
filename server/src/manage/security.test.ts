// Cross-cutting guarantees of the management API: no CORS headers ever, the per-key rate limit with
// the SPEC's headers (exact under concurrency), and no key material in any log line of a full run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, widgetState } from '../test-helpers/widget.js';

type Json = Record<string, any>;

describe('no CORS on management routes', () => {
  let t: TestServer;
  let f: Fixture;
  beforeAll(async () => {
    t = await startTestServer();
    f = seed(t.ctx);
  });
  afterAll(() => t.close());

  it('sends no Access-Control-* header, on success, on errors or to a preflight', async () => {
    const origin = f.origin;
    const responses = [
      await call(t.base, 'GET', '/v1/sites', { key: f.sk.live, origin }),
      await call(t.base, 'GET', `/v1/sites/${f.serviceId}/tickets`, { key: f.sk.live, origin }),
      await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, origin, body: { type: 'secret', name: 'x' } }),
      await call(t.base, 'GET', '/v1/sites', { origin }),
      await call(t.base, 'GET', '/v1/keys', { key: f.pk.live, origin }),
      await call(t.base, 'OPTIONS', '/v1/sites', {
        origin, headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
      }),
    ];
    for (const r of responses) {
      expect(r.headers.get('x-request-id')).toMatch(/^req_/);
      for (const [name] of r.headers) expect(name).not.toMatch(/^access-control-/);
    }
  });
});

describe('SPEC 8 rows of the body rules, on management routes', () => {
  let t: TestServer;
  let f: Fixture;
  beforeAll(async () => {
    t = await startTestServer();
    f = seed(t.ctx);
  });
  afterAll(() => t.close());

  const expectCode = (r: { status: number; json: any; headers: Headers }, status: number, code: string) => {
    expect(r.status, JSON.stringify(r.json)).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(r.json.error.request_id).toBe(r.headers.get('x-request-id'));
  };

  it('400 invalid_json, 415 unsupported_media_type, 413 payload_too_large, 404 for an unknown route', async () => {
    expectCode(await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, rawBody: '{"type": "secret",', headers: { 'Content-Type': 'application/json' } }), 400, 'invalid_json');
    expectCode(await call(t.base, 'PATCH', `/v1/sites/${f.serviceId}`, { key: f.sk.live, rawBody: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    const big = JSON.stringify({ type: 'secret', name: 'x'.repeat(40 * 1024) });
    expectCode(await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, rawBody: big, headers: { 'Content-Type': 'application/json' } }), 413, 'payload_too_large');
    expectCode(await call(t.base, 'GET', '/v1/nothing-here', { key: f.sk.live }), 404, 'not_found');
    expectCode(await call(t.base, 'PUT', `/v1/sites/${f.serviceId}`, { key: f.sk.live, body: {} }), 404, 'not_found');
    // A JSON body that is not an object is a field error.
    expectCode(await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: ['secret'] }), 400, 'invalid_request');
  });
});

describe('query strings on management routes', () => {
  let t: TestServer;
  let f: Fixture;
  beforeAll(async () => {
    t = await startTestServer();
    f = seed(t.ctx, { rate_limit_per_minute: 1000 });
  });
  afterAll(() => t.close());

  it('a route that reads no query refuses any parameter as 400 invalid_request naming it, and changes nothing', async () => {
    const ticket = await createTicket(t.base, f);
    const sgk = await call(t.base, 'POST', `/v1/sites/${f.serviceId}/signing-keys`, { key: f.sk.live, body: {} });
    const key = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'spare' } });
    expect([sgk.status, key.status]).toEqual([201, 201]);
    const site = `/v1/sites/${f.serviceId}`;
    const tkt = `${site}/tickets/${ticket.ticket.id}`;
    const before = widgetState(t.ctx.db);
    const routes: Array<[string, string, object?]> = [
      ['GET', site],
      ['PATCH', site, { name: 'Renamed' }],
      ['DELETE', site],
      ['POST', '/v1/sites', { service_id: 'query-site', name: 'Q', allowed_origins: ['https://q.example'] }],
      ['POST', '/v1/keys', { type: 'secret', name: 'q' }],
      ['DELETE', `/v1/keys/${key.json.key.id}`],
      ['POST', `/v1/keys/${key.json.key.id}/rotate`, {}],
      ['GET', tkt],
      ['POST', `${tkt}/messages`, { message: 'agent' }],
      ['PATCH', tkt, { status: 'closed' }],
      ['GET', `${site}/signing-keys`],
      ['POST', `${site}/signing-keys`, {}],
      ['DELETE', `${site}/signing-keys/${sgk.json.signing_key.id}`],
    ];
    for (const [method, path, body] of routes) {
      for (const q of ['?foo=1', '?limit=1', '?cursor=x']) {
        const r = await call(t.base, method, `${path}${q}`, { key: f.sk.live, ...(body ? { body } : {}) });
        expect([r.status, r.json?.error?.code], `${method} ${path}${q}: ${r.text}`).toEqual([400, 'invalid_request']);
        expect(JSON.stringify(r.json.error.issues)).toContain(q.slice(1).split('=')[0]);
      }
    }
    const after = widgetState(t.ctx.db);
    expect({ ...after, rate_limits: null, keys: null }).toEqual({ ...before, rate_limits: null, keys: null });
    const keys = await call(t.base, 'GET', '/v1/keys', { key: f.sk.live });
    expect(keys.json.keys.find((k: Json) => k.id === key.json.key.id).revoked_at).toBeNull();
    expect((await call(t.base, 'GET', `${site}/signing-keys`, { key: f.sk.live })).json.signing_keys).toHaveLength(1);
    expect((await call(t.base, 'GET', site, { key: f.sk.live })).json.site.name).not.toBe('Renamed');
    // The lists read their own parameters, and refuse unknown ones.
    expect((await call(t.base, 'GET', `${site}/tickets?limit=1`, { key: f.sk.live })).status).toBe(200);
    expect((await call(t.base, 'GET', `${site}/tickets?foo=1`, { key: f.sk.live })).status).toBe(400);
  });
});

describe('rate limit per secret key', () => {
  let t: TestServer;
  let f: Fixture;
  beforeAll(async () => {
    t = await startTestServer({ limits: { managementRatePerMinute: 5 } });
    f = seed(t.ctx);
  });
  afterAll(() => t.close());

  const newKey = async (as: string) => (await call(t.base, 'POST', '/v1/keys', { key: as, body: { type: 'secret', name: 'r', scopes: ['read'] } })).json.key.secret as string;

  it('counts per key, with the SPEC headers, and 429 with Retry-After when spent', async () => {
    const admin = f.sk.test; // its own bucket; used once above by no one
    const k = await newKey(admin);
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(t.base, 'GET', '/v1/sites', { key: k });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-policy')).toBe('"key";q=5;w=60');
      expect(r.headers.get('x-ratelimit-limit')).toBe('5');
      expect(r.headers.get('ratelimit')).toMatch(/^"key";r=\d+;t=\d+$/);
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(t.clock.now / 1000));
      remaining.push(Number(r.headers.get('x-ratelimit-remaining')));
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    const refused = await call(t.base, 'GET', '/v1/sites', { key: k });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe('rate_limit_exceeded');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    // Another key of the same workspace is not affected.
    expect((await call(t.base, 'GET', '/v1/sites', { key: f.sk.live })).status).toBe(200);
    // One interval (12 s at 5/min) later, exactly one more request is admitted.
    t.clock.advance(12_000);
    expect((await call(t.base, 'GET', '/v1/sites', { key: k })).status).toBe(200);
    expect((await call(t.base, 'GET', '/v1/sites', { key: k })).status).toBe(429);
  });

  it('admits exactly the limit under concurrent requests', async () => {
    t.clock.advance(120_000);
    const k = await newKey(f.sk.live);
    const rs = await Promise.all(Array.from({ length: 25 }, () => call(t.base, 'GET', '/v1/sites', { key: k })));
    const statuses = rs.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
  });

  it('a refused key is 429 before its scope is looked at', async () => {
    t.clock.advance(120_000);
    const k = await newKey(f.sk.live);
    for (let i = 0; i < 5; i++) expect((await call(t.base, 'GET', '/v1/keys', { key: k })).status).toBe(403);
    expect((await call(t.base, 'GET', '/v1/keys', { key: k })).status).toBe(429);
  });
});

describe('key material never reaches a log line', () => {
  it('after a full run of every key operation, the logs hold no minted key', async () => {
    const t = await startTestServer();
    const minted: string[] = [];
    try {
      const f = seed(t.ctx);
      minted.push(f.sk.live, f.sk.test, f.pk.live, f.pk.test);
      const site = await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: `logs-${process.pid}`, name: 'L', allowed_origins: ['https://l.example'] } });
      minted.push(site.json.publishable_keys.live, site.json.publishable_keys.test);
      const made: Json[] = [];
      for (const body of [
        { type: 'secret', name: 'a', scopes: ['read', 'write'] },
        { type: 'secret', name: 'b', sites: [f.serviceId] },
        { type: 'publishable', name: 'c', site: f.serviceId },
      ]) {
        const r = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body });
        made.push(r.json.key);
        minted.push(r.json.key.secret);
      }
      const rotated = await call(t.base, 'POST', `/v1/keys/${made[0]!.id}/rotate`, { key: f.sk.live, body: { grace_seconds: 60 } });
      minted.push(rotated.json.key.secret);
      await call(t.base, 'DELETE', `/v1/keys/${made[1]!.id}`, { key: f.sk.live });
      // Refusals that carry keys: revoked, conflicting, wrong type, in the body, bad query.
      await call(t.base, 'GET', '/v1/sites', { key: made[1]!.secret });
      await call(t.base, 'GET', '/v1/sites', { key: f.sk.live, headers: { 'X-API-Key': f.sk.test } });
      await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `Bearer ${f.pk.live}` } });
      await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'x', api_key: f.sk.test } });
      await call(t.base, 'GET', `/v1/keys?cursor=${f.sk.live}`, { key: f.sk.live });
      await call(t.base, 'GET', `/v1/sites/${f.sk.test}`, { key: f.sk.live });
      expect(minted.every((k) => typeof k === 'string' && k.length === 57)).toBe(true);
    } finally {
      await t.close();
    }
    const logs = t.logs.join('\n');
    expect(t.logs.length).toBeGreaterThan(10); // the run was logged at all
    for (const key of minted) {
      expect(logs).not.toContain(key);
      expect(logs).not.toContain(key.slice(12, 51)); // the body past the display prefix
    }
  });
});
