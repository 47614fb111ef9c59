// /v1/sites over real HTTP (SPEC section 7): create with origin validation and its publishable keys
// (shown once), get, list with cursors, patch as a merge, delete with its keys and tickets.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSiteByServiceId } from '../db/sites.js';
import { insertMessage, insertTicket } from '../db/tickets.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { newId } from '../util.js';

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
  return r.json.error;
}

let n = 0;
const sid = () => `s${process.pid}-${++n}`;

async function createSite(body: Json, as = f.sk.live): Promise<Json> {
  const r = await call(t.base, 'POST', '/v1/sites', { key: as, body: { service_id: sid(), name: 'Shop', allowed_origins: ['https://shop.example'], ...body } });
  expect(r.status, r.text).toBe(201);
  return r.json;
}

/** A ticket with one message, written through the repositories (the widget API is another router). */
function addTicket(serviceId: string, environment: 'live' | 'test'): string {
  const site = findSiteByServiceId(t.ctx.db, serviceId)!;
  const now = t.clock.now;
  const ticket = insertTicket(t.ctx.db, {
    id: newId('tkt'), site_id: site.id, environment, status: 'open', visitor_token_hash: randomBytes(32),
    visitor_name: null, visitor_email: null, user_id: null, user_name: null, user_email: null,
    page_url: null, metadata: null, created_at: now, updated_at: now,
  });
  insertMessage(t.ctx.db, { id: newId('msg'), ticket_seq: ticket.seq, author: 'visitor', author_name: null, body: 'hi', created_at: now });
  return ticket.id;
}

describe('POST /v1/sites', () => {
  it('creates a site with defaults, normalised origins and both publishable keys', async () => {
    const service_id = sid();
    const r = await call(t.base, 'POST', '/v1/sites', {
      key: f.sk.live,
      body: { service_id, name: 'Acme App', allowed_origins: ['HTTPS://App.Example.com:443/', 'http://localhost:3000', 'https://*.acme.example', 'https://app.example.com'] },
    });
    expect(r.status, r.text).toBe(201);
    expect(Object.keys(r.json).sort()).toEqual(['publishable_keys', 'site']);
    expect(r.json.site).toEqual({
      service_id,
      name: 'Acme App',
      allowed_origins: ['https://app.example.com', 'http://localhost:3000', 'https://*.acme.example'],
      allow_server_requests: false,
      rate_limit_per_minute: 120,
      daily_spend_cap_micros: 5_000_000,
      prices: { 'ticket.create': 10_000, 'message.create': 1_000 },
      widget: { greeting: expect.any(String), color: expect.stringMatching(/^#[0-9a-f]{6}$/i), position: 'bottom-right', require_identity: false },
      created_at: new Date(t.clock.now).toISOString(),
    });
    expect(r.json.publishable_keys.live).toMatch(/^pk_live_[0-9A-Za-z]{49}$/);
    expect(r.json.publishable_keys.test).toMatch(/^pk_test_[0-9A-Za-z]{49}$/);
    // The keys exist for that site, listed without their secrets.
    const keys = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    const mine = keys.json.keys.filter((k: Json) => k.site === service_id);
    expect(mine).toHaveLength(1);
    expect(mine[0].prefix).toBe(r.json.publishable_keys.live.slice(0, 12));
    expect(keys.text).not.toContain(r.json.publishable_keys.live.slice(12));
  });

  it('takes every optional setting', async () => {
    const { site } = await createSite({
      allow_server_requests: true, rate_limit_per_minute: 30, daily_spend_cap_micros: 0,
      prices: { 'message.create': 0 }, widget: { color: '#112233', position: 'bottom-left', require_identity: true },
    });
    expect(site).toMatchObject({
      allow_server_requests: true, rate_limit_per_minute: 30, daily_spend_cap_micros: 0,
      prices: { 'ticket.create': 10_000, 'message.create': 0 },
      widget: { color: '#112233', position: 'bottom-left', require_identity: true },
    });
  });

  it('a test key creates the site but gets (and mints) only the test publishable key', async () => {
    const r = await createSite({}, f.sk.test);
    expect(r.publishable_keys.live).toBeNull();
    expect(r.publishable_keys.test).toMatch(/^pk_test_/);
    const live = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    expect(live.json.keys.some((k: Json) => k.site === r.site.service_id)).toBe(false);
  });

  it.each([
    ['a typo in a field name', { alowed_origins: ['https://a.example'] }, 'alowed_origins'],
    ['an invalid origin', { allowed_origins: ['https://a.example/path'] }, 'allowed_origins.0'],
    ['a bare wildcard', { allowed_origins: ['https://*'] }, 'allowed_origins.0'],
    ['a non-http scheme', { allowed_origins: ['ftp://a.example'] }, 'allowed_origins.0'],
    // A wildcard over a public suffix would admit everybody's sites under it.
    ['a wildcard over a country suffix', { allowed_origins: ['https://a.example', 'https://*.co.uk'] }, 'allowed_origins.1'],
    ['a wildcard over com.au', { allowed_origins: ['https://*.COM.au'] }, 'allowed_origins.0'],
    ['a wildcard over a shared host', { allowed_origins: ['https://*.github.io'] }, 'allowed_origins.0'],
    ['a wildcard over a shared storage host', { allowed_origins: ['https://*.s3.amazonaws.com'] }, 'allowed_origins.0'],
    ['a wildcard over a shared shop host', { allowed_origins: ['https://*.myshopify.com'] }, 'allowed_origins.0'],
    ['a wildcard over r2.dev', { allowed_origins: ['https://*.r2.dev'] }, 'allowed_origins.0'],
    ['a wildcard over an IP address tail', { allowed_origins: ['http://*.0.0.1:3000'] }, 'allowed_origins.0'],
    // SPEC 4's wildcard is https (plaintext only for *.localhost, a development server).
    ['a plaintext wildcard', { allowed_origins: ['http://*.acme.com'] }, 'allowed_origins.0'],
    ['a plaintext wildcard with a port', { allowed_origins: ['https://a.example', 'HTTP://*.Acme.com:8080'] }, 'allowed_origins.1'],
    ['a bad service id', { service_id: 'Bad_Id' }, 'service_id'],
    ['a rate limit of 0', { rate_limit_per_minute: 0 }, 'rate_limit_per_minute'],
    ['a negative cap', { daily_spend_cap_micros: -1 }, 'daily_spend_cap_micros'],
    ['a fractional price', { prices: { 'ticket.create': 1.5 } }, 'prices.ticket.create'],
    ['an unknown price', { prices: { 'ticket.delete': 1 } }, 'prices.ticket.delete'],
    ['a bad colour', { widget: { color: 'red' } }, 'widget.color'],
    ['an unknown widget field', { widget: { colour: '#ffffff' } }, 'widget.colour'],
    ['a missing name', { name: undefined }, 'name'],
  ])('400 invalid_request for %s, naming the field', async (_what, patch, path) => {
    const body: Json = { service_id: sid(), name: 'x', allowed_origins: ['https://a.example'], ...patch };
    const err = expectError(await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body }), 400, 'invalid_request');
    expect(err.issues.map((i: Json) => i.path)).toContain(path);
    if (typeof body.service_id === 'string' && /^[a-z0-9]/.test(body.service_id)) expect(findSiteByServiceId(t.ctx.db, body.service_id)).toBeUndefined();
  });

  it('a wildcard over a domain of its own is kept, also under a country suffix or a shared host', async () => {
    const entries = ['https://*.shop.co.uk', 'https://*.acme.com.au', 'https://*.acme.github.io', 'https://*.example.com', 'http://*.localhost:5173'];
    const r = await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: sid(), name: 'x', allowed_origins: entries } });
    expect(r.status, r.text).toBe(201);
    expect(r.json.site.allowed_origins).toEqual(entries);
  });

  it('a service id that is taken (by any workspace) is 400', async () => {
    const err = expectError(await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: other.serviceId, name: 'x', allowed_origins: [] } }), 400, 'invalid_request');
    expect(err.issues).toEqual([{ path: 'service_id', message: 'is already taken' }]);
  });
});

describe('GET /v1/sites', () => {
  it('lists the workspace sites only, in pages without duplicates or gaps', async () => {
    for (let i = 0; i < 4; i++) await createSite({});
    const all: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await call(t.base, 'GET', `/v1/sites?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: f.sk.live });
      expect(r.status).toBe(200);
      expect(r.json.sites.length).toBeLessThanOrEqual(2);
      all.push(...r.json.sites.map((s: Json) => s.service_id));
      cursor = r.json.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBeGreaterThan(2);
    expect(new Set(all).size).toBe(all.length);
    const inDb = (t.ctx.db.prepare('SELECT service_id FROM sites WHERE workspace_id = ? ORDER BY id').all(f.workspaceId) as Json[]).map((r) => r.service_id);
    expect(all).toEqual(inDb);
    expect(all).not.toContain(other.serviceId);
  });

  it('a site of another workspace, or none, is 404', async () => {
    expectError(await call(t.base, 'GET', `/v1/sites/${other.serviceId}`, { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'GET', '/v1/sites/no-such-site', { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'PATCH', `/v1/sites/${other.serviceId}`, { key: f.sk.live, body: { name: 'pwned' } }), 404, 'not_found');
    expectError(await call(t.base, 'DELETE', `/v1/sites/${other.serviceId}`, { key: f.sk.live }), 404, 'not_found');
    expect((await call(t.base, 'GET', `/v1/sites/${other.serviceId}`, { key: other.sk.live })).json.site.name).toBe('Acme Help');
  });

  it('gets one site', async () => {
    const r = await call(t.base, 'GET', `/v1/sites/${f.serviceId}`, { key: f.sk.test });
    expect(r.status).toBe(200);
    expect(r.json.site.service_id).toBe(f.serviceId);
  });
});

describe('PATCH /v1/sites/:sid', () => {
  it('merges: fields left out keep their value, also inside widget and prices; origins are replaced whole', async () => {
    const { site } = await createSite({
      allowed_origins: ['https://a.example', 'https://b.example'], rate_limit_per_minute: 77,
      prices: { 'ticket.create': 5, 'message.create': 6 }, widget: { greeting: 'Hello', color: '#000000' },
    });
    const path = `/v1/sites/${site.service_id}`;
    const r = await call(t.base, 'PATCH', path, { key: f.sk.live, body: { widget: { color: '#ffffff' }, prices: { 'message.create': 9 } } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.site).toEqual({
      ...site,
      prices: { 'ticket.create': 5, 'message.create': 9 },
      widget: { ...site.widget, greeting: 'Hello', color: '#ffffff' },
    });
    const o = await call(t.base, 'PATCH', path, { key: f.sk.live, body: { allowed_origins: ['HTTPS://C.example'], allow_server_requests: true } });
    expect(o.json.site.allowed_origins).toEqual(['https://c.example']);
    expect(o.json.site.allow_server_requests).toBe(true);
    expect(o.json.site.rate_limit_per_minute).toBe(77);
    expect((await call(t.base, 'GET', path, { key: f.sk.live })).json.site).toEqual(o.json.site);
    // An empty patch changes nothing.
    expect((await call(t.base, 'PATCH', path, { key: f.sk.live, body: {} })).json.site).toEqual(o.json.site);
  });

  it('refuses unknown fields and out-of-range values, changing nothing', async () => {
    const { site } = await createSite({});
    const path = `/v1/sites/${site.service_id}`;
    for (const [body, field] of [
      [{ alowed_origins: [] }, 'alowed_origins'],
      [{ service_id: 'renamed' }, 'service_id'],
      [{ widget: { position: 'top' } }, 'widget.position'],
      [{ allowed_origins: ['*'] }, 'allowed_origins.0'],
      [{ name: '' }, 'name'],
    ] as const) {
      const err = expectError(await call(t.base, 'PATCH', path, { key: f.sk.live, body }), 400, 'invalid_request');
      expect(err.issues.map((i: Json) => i.path)).toContain(field);
    }
    expect((await call(t.base, 'GET', path, { key: f.sk.live })).json.site).toEqual(site);
  });

  it('counts names and the greeting as a reader counts characters, like messages: an emoji with its parts is one', async () => {
    const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}'; // 11 UTF-16 units, 1 character
    const thumb = '\u{1F44D}\u{1F3FD}'; // 4 units, 1 character
    const { site } = await createSite({ name: family.repeat(100), widget: { greeting: thumb.repeat(500) } });
    expect(site.name).toBe(family.repeat(100));
    expect(site.widget.greeting).toBe(thumb.repeat(500));
    const path = `/v1/sites/${site.service_id}`;
    for (const [body, field] of [
      [{ name: family.repeat(101) }, 'name'],
      [{ widget: { greeting: thumb.repeat(501) } }, 'widget.greeting'],
      [{ name: '   ' }, 'name'],
      [{ name: '\u200B\u200E\uFEFF' }, 'name'], // nothing a reader would see
    ] as const) {
      const err = expectError(await call(t.base, 'PATCH', path, { key: f.sk.live, body }), 400, 'invalid_request');
      expect(err.issues.map((i: Json) => i.path)).toContain(field);
    }
    const key = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: family.repeat(100), scopes: ['read'] } });
    expect([key.status, key.json.key?.name]).toEqual([201, family.repeat(100)]);
    expectError(await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: family.repeat(101), scopes: ['read'] } }), 400, 'invalid_request');
  });

  it('DELETE takes no body: a JSON value other than {} is 400 and deletes nothing', async () => {
    const { site } = await createSite({});
    for (const rawBody of ['3', 'null', '{"force":true}']) {
      const r = await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.live, rawBody, headers: { 'Content-Type': 'application/json' } });
      expectError(r, 400, 'invalid_request');
    }
    expect((await call(t.base, 'GET', `/v1/sites/${site.service_id}`, { key: f.sk.live })).status).toBe(200);
    expect((await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.live })).status).toBe(204);
  });

  it('concurrent patches of different fields are all kept', async () => {
    const { site } = await createSite({});
    const path = `/v1/sites/${site.service_id}`;
    const bodies = [{ name: 'N' }, { rate_limit_per_minute: 5 }, { widget: { greeting: 'G' } }, { widget: { color: '#abcdef' } }, { prices: { 'ticket.create': 1 } }];
    const rs = await Promise.all(bodies.map((body) => call(t.base, 'PATCH', path, { key: f.sk.live, body })));
    for (const r of rs) expect(r.status).toBe(200);
    const now = (await call(t.base, 'GET', path, { key: f.sk.live })).json.site;
    expect(now).toMatchObject({ name: 'N', rate_limit_per_minute: 5, widget: { greeting: 'G', color: '#abcdef' }, prices: { 'ticket.create': 1 } });
  });
});

describe('DELETE /v1/sites/:sid', () => {
  it('deletes the site with its keys and tickets; its keys are refused at once', async () => {
    const { site, publishable_keys } = await createSite({});
    const restricted = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'r', sites: [site.service_id] } });
    addTicket(site.service_id, 'live');
    addTicket(site.service_id, 'test');
    const id = findSiteByServiceId(t.ctx.db, site.service_id)!.id;
    // Before: the publishable key is valid (a secret route refuses it for its type, 403).
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `Bearer ${publishable_keys.live}` } }), 403, 'insufficient_scope');
    const r = await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.live });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expectError(await call(t.base, 'GET', `/v1/sites/${site.service_id}`, { key: f.sk.live }), 404, 'not_found');
    // After: the key no longer exists at all (401), on the very next request.
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `Bearer ${publishable_keys.live}` } }), 401, 'invalid_api_key');
    expect((t.ctx.db.prepare('SELECT COUNT(*) AS n FROM tickets WHERE site_id = ?').get(id) as Json).n).toBe(0);
    expect((t.ctx.db.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE site_id = ?').get(id) as Json).n).toBe(0);
    // A secret key restricted to it stays valid but reaches nothing there.
    expectError(await call(t.base, 'GET', `/v1/sites/${site.service_id}/tickets`, { key: restricted.json.key.secret }), 404, 'not_found');
    expectError(await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.live }), 404, 'not_found');
  });

  it('leaves nothing behind for a later site that gets the freed internal id: no spent rate limit, no replayed response', async () => {
    const { site, publishable_keys } = await createSite({ rate_limit_per_minute: 2 });
    const oldId = findSiteByServiceId(t.ctx.db, site.service_id)!.id;
    const widget = (serviceId: string, pk: string, method: string, path: string, o: Json = {}) =>
      call(t.base, method, `/v1/widget/${serviceId}${path}`, { key: pk, origin: 'https://shop.example', ...o });
    const idem = { headers: { 'Idempotency-Key': 'order-42' }, body: { message: 'Where is my order?' } };
    const first = await widget(site.service_id, publishable_keys.live, 'POST', '/tickets', idem);
    expect(first.status, first.text).toBe(201);
    expect((await widget(site.service_id, publishable_keys.live, 'GET', '/config')).status).toBe(200);
    expect((await widget(site.service_id, publishable_keys.live, 'GET', '/config')).status).toBe(429);
    expect((await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.live })).status).toBe(204);

    // Another workspace's new site: SQLite hands the freed row id out again.
    const next = await createSite({ rate_limit_per_minute: 2 }, other.sk.live);
    expect(findSiteByServiceId(t.ctx.db, next.site.service_id)!.id).toBe(oldId);
    const config = await widget(next.site.service_id, next.publishable_keys.live, 'GET', '/config');
    expect(config.status, config.text).toBe(200);
    expect(config.headers.get('x-ratelimit-remaining')).toBe('1');
    // The deleted site's stored response (its ticket, its visitor token) is not replayed to the new one.
    const again = await widget(next.site.service_id, next.publishable_keys.live, 'POST', '/tickets', idem);
    expect(again.status, again.text).toBe(201);
    expect(again.json.ticket.id).not.toBe(first.json.ticket.id);
    expect(again.json.visitor_token).not.toBe(first.json.visitor_token);
  });

  it('a test key cannot delete a site holding live data, but may delete one that has none', async () => {
    const { site } = await createSite({});
    expectError(await call(t.base, 'DELETE', `/v1/sites/${site.service_id}`, { key: f.sk.test }), 403, 'insufficient_scope');
    expect((await call(t.base, 'GET', `/v1/sites/${site.service_id}`, { key: f.sk.live })).status).toBe(200);
    const testOnly = await createSite({}, f.sk.test);
    addTicket(testOnly.site.service_id, 'test');
    expect((await call(t.base, 'DELETE', `/v1/sites/${testOnly.site.service_id}`, { key: f.sk.test })).status).toBe(204);
  });
});
