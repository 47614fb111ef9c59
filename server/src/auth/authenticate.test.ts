// Authentication of management routes over real HTTP (SPEC sections 2, 3, 8): where keys come from,
// every 401/403/400 a credential can produce, revocation and expiry on the very next request (also
// across server processes sharing one database), last_used_at at most once a minute, exposed_at.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { formatKey } from '@parley/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyById } from '../db/keys.js';
import { errorHandler } from '../errors.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { parley, type Proc } from '../test-helpers/spawn.js';
import { authenticatePublishable } from './authenticate.js';

let t: TestServer;
let f: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  f = seed(t.ctx);
});
afterAll(async () => {
  await t.close();
});

function expectError(r: { status: number; json: any; headers: Headers }, status: number, code: string) {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(r.json.error.request_id).toBe(r.headers.get('x-request-id'));
}

/** A fresh secret key of the seeded workspace, made through the API. */
async function newKey(body: Record<string, unknown> = {}, as = f.sk.live): Promise<{ id: string; secret: string }> {
  const r = await call(t.base, 'POST', '/v1/keys', { key: as, body: { type: 'secret', name: 'probe', scopes: ['read'], ...body } });
  expect(r.status, r.text).toBe(201);
  return r.json.key;
}

const sites = (key: string, headers?: Record<string, string>) => call(t.base, 'GET', '/v1/sites', { key, headers });

describe('where a secret key may come from', () => {
  it('Authorization: Bearer and X-API-Key both work', async () => {
    expect((await sites(f.sk.live)).status).toBe(200);
    expect((await call(t.base, 'GET', '/v1/sites', { headers: { 'X-API-Key': f.sk.live } })).status).toBe(200);
    expect((await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `bearer ${f.sk.live}` } })).status).toBe(200);
  });

  it("a widget route's key header is no credential on a management route, and X-API-Key none on a widget route", async () => {
    // SPEC 3 names the sources of each kind of route; a key elsewhere is not looked at.
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { 'X-Parley-Key': f.sk.live } }), 401, 'missing_authorization');
    expect((await sites(f.sk.live, { 'X-Parley-Key': f.sk.test })).status).toBe(200);
    const widget = (headers: Record<string, string>) =>
      call(t.base, 'GET', `/v1/widget/${f.serviceId}/config`, { origin: f.origin, headers });
    expectError(await widget({ 'X-API-Key': f.pk.live }), 401, 'missing_authorization');
    expect((await widget({ 'X-Parley-Key': f.pk.live, 'X-API-Key': f.pk.test })).status).toBe(200);
  });

  it('the same key in both headers is one credential', async () => {
    expect((await sites(f.sk.live, { 'X-API-Key': f.sk.live })).status).toBe(200);
  });

  it('two different keys are 400 conflicting_credentials', async () => {
    expectError(await sites(f.sk.live, { 'X-API-Key': f.sk.test }), 400, 'conflicting_credentials');
  });

  it('two Authorization headers with different keys are 400, the same key twice is that key', async () => {
    // fetch folds repeated headers into one; node:http sends each on a line of its own.
    const get = (values: string[]) =>
      new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
        const req = request(`${t.base}/v1/sites`, { headers: { Authorization: values } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, code: res.statusCode === 200 ? undefined : JSON.parse(text).error.code }));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await get([`Bearer ${f.sk.live}`, `Bearer ${f.sk.test}`])).toEqual({ status: 400, code: 'conflicting_credentials' });
    expect(await get([`Bearer ${f.sk.test}`, `Bearer ${f.sk.live}`])).toEqual({ status: 400, code: 'conflicting_credentials' });
    expect(await get([`Bearer ${f.sk.live}`, `Bearer ${f.sk.live}`])).toEqual({ status: 200, code: undefined });
  });

  it('an Authorization header without the Bearer scheme is 401, also when it holds a valid key', async () => {
    for (const value of [f.sk.live, `Token ${f.sk.live}`]) {
      expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: value } }), 401, 'invalid_api_key');
    }
  });

  it('no key is 401 missing_authorization', async () => {
    expectError(await call(t.base, 'GET', '/v1/sites'), 401, 'missing_authorization');
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: '' } }), 401, 'missing_authorization');
  });

  it("the 401 names the places the route's kind of key may come from, and only those", async () => {
    const manage = (await call(t.base, 'GET', '/v1/sites')).json.error.message as string;
    expect(manage).toMatch(/sk_/);
    expect(manage).toMatch(/Authorization: Bearer/);
    expect(manage).toMatch(/X-API-Key/);
    expect(manage).not.toMatch(/X-Parley-Key|api_key|pk_/);
    const widget = (await call(t.base, 'GET', `/v1/widget/${f.serviceId}/config`, { origin: f.origin })).json.error.message as string;
    expect(widget).toMatch(/pk_/);
    expect(widget).toMatch(/X-Parley-Key/);
    expect(widget).toMatch(/Authorization: Bearer/);
    expect(widget).toMatch(/api_key/);
    expect(widget).not.toMatch(/X-API-Key|sk_/);
  });

  it('a key in the JSON body does not count on management routes', async () => {
    const r = await call(t.base, 'POST', '/v1/keys', { body: { api_key: f.sk.live, type: 'secret', name: 'x' } });
    expectError(r, 401, 'missing_authorization');
  });
});

describe('keys that are refused', () => {
  it('a malformed key, a wrong checksum and an unknown key are 401 invalid_api_key', async () => {
    const good = f.sk.live;
    const flipped = good.slice(0, 20) + (good[20] === 'a' ? 'b' : 'a') + good.slice(21);
    const unknown = formatKey('secret', 'live', randomBytes(32));
    for (const bad of ['nonsense', `Basic ${good}`, flipped, good.slice(0, -1), unknown]) {
      const r = await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: bad.startsWith('Basic') ? bad : `Bearer ${bad}` } });
      expectError(r, 401, 'invalid_api_key');
      if (bad.length > 40) expect(r.text).not.toContain(bad.replace(/^Basic /, '').slice(8, 40));
    }
  });

  it('a publishable key on a management route is 403 insufficient_scope', async () => {
    expectError(await call(t.base, 'GET', '/v1/sites', { headers: { Authorization: `Bearer ${f.pk.live}` } }), 403, 'insufficient_scope');
    expectError(await call(t.base, 'GET', `/v1/sites/${f.serviceId}/tickets`, { headers: { 'X-API-Key': f.pk.test } }), 403, 'insufficient_scope');
  });

  it('a revoked key is refused on the very next request', async () => {
    const k = await newKey();
    expect((await sites(k.secret)).status).toBe(200);
    expect((await call(t.base, 'DELETE', `/v1/keys/${k.id}`, { key: f.sk.live })).status).toBe(200);
    expectError(await sites(k.secret), 401, 'invalid_api_key');
  });

  it('an expired key is refused from its expiry on', async () => {
    const k = await newKey({ expires_at: new Date(t.clock.now + 60_000).toISOString() });
    expect((await sites(k.secret)).status).toBe(200);
    t.clock.advance(59_000);
    expect((await sites(k.secret)).status).toBe(200);
    t.clock.advance(1_000);
    expectError(await sites(k.secret), 401, 'invalid_api_key');
  });
});

describe('last_used_at', () => {
  it('is written on first use and then at most once a minute', async () => {
    const k = await newKey();
    expect(findKeyById(t.ctx.db, k.id)!.last_used_at).toBeNull();
    const first = t.clock.now;
    await sites(k.secret);
    expect(findKeyById(t.ctx.db, k.id)!.last_used_at).toBe(first);
    t.clock.advance(30_000);
    await sites(k.secret);
    await sites(k.secret);
    expect(findKeyById(t.ctx.db, k.id)!.last_used_at).toBe(first);
    t.clock.advance(31_000);
    await sites(k.secret);
    expect(findKeyById(t.ctx.db, k.id)!.last_used_at).toBe(t.clock.now);
    const listed = await call(t.base, 'GET', '/v1/keys', { key: f.sk.live });
    expect(listed.json.keys.find((x: { id: string }) => x.id === k.id).last_used_at).toBe(new Date(t.clock.now).toISOString());
  });
});

describe('exposed_at', () => {
  // The widget router decides through authenticatePublishable; this route runs exactly that check
  // on the real database, and the management API's listing shows the mark.
  let probe: import('node:http').Server;
  let probeBase: string;
  beforeAll(async () => {
    const app = express();
    app.get('/probe', (req, res) => {
      authenticatePublishable(t.ctx, req);
      res.json({ ok: true });
    });
    app.use(errorHandler(() => undefined));
    probe = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    probeBase = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => probe.close(() => resolve())));

  const exposedOf = async (id: string) => {
    const r = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    return r.json.keys.find((x: { id: string }) => x.id === id).exposed_at as string | null;
  };

  it('a secret key sent with an Origin to a publishable-key check is 403 and marked exposed', async () => {
    const k = await newKey();
    const noOrigin = await call(probeBase, 'GET', '/probe', { headers: { 'X-Parley-Key': k.secret } });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.json.error.code).toBe('publishable_key_required');
    expect(await exposedOf(k.id)).toBeNull();
    const fromBrowser = await call(probeBase, 'GET', '/probe', { headers: { 'X-Parley-Key': k.secret, Origin: 'https://evil.example' } });
    expect(fromBrowser.json.error.code).toBe('publishable_key_required');
    const at = await exposedOf(k.id);
    expect(at).toBe(new Date(t.clock.now).toISOString());
    // The first sighting stands.
    t.clock.advance(5_000);
    await call(probeBase, 'GET', '/probe', { headers: { 'X-Parley-Key': k.secret, Origin: 'https://evil.example' } });
    expect(await exposedOf(k.id)).toBe(at);
  });

  it('on the real widget routes too: header or api_key in the body, with an Origin', async () => {
    const k = await newKey();
    const r = await call(t.base, 'GET', `/v1/widget/${f.serviceId}/config`, { headers: { 'X-Parley-Key': k.secret, Origin: f.origin } });
    expectError(r, 403, 'publishable_key_required');
    expect(await exposedOf(k.id)).toBe(new Date(t.clock.now).toISOString());
    const k2 = await newKey();
    const noOrigin = await call(t.base, 'POST', `/v1/widget/${f.serviceId}/tickets`, { body: { message: 'hi', api_key: k2.secret } });
    expectError(noOrigin, 403, 'publishable_key_required');
    expect(await exposedOf(k2.id)).toBeNull();
    const body = await call(t.base, 'POST', `/v1/widget/${f.serviceId}/tickets`, { origin: 'https://anywhere.example', body: { message: 'hi', api_key: k2.secret } });
    expectError(body, 403, 'publishable_key_required');
    expect(await exposedOf(k2.id)).not.toBeNull();
  });
});

describe('revocation across server processes sharing one database', () => {
  it('two in-process servers: revoked through one, refused by the other at once', async () => {
    // The same clock as the first server: rate-limit state in the shared database is in its time.
    const other = await startTestServer({ dbPath: t.dbPath, dir: t.dir, startAt: t.clock.now });
    try {
      const k = await newKey();
      expect((await sites(k.secret)).status).toBe(200);
      expect((await call(other.base, 'GET', '/v1/sites', { key: k.secret })).status).toBe(200);
      expect((await call(t.base, 'DELETE', `/v1/keys/${k.id}`, { key: f.sk.live })).status).toBe(200);
      expectError(await call(other.base, 'GET', '/v1/sites', { key: k.secret }), 401, 'invalid_api_key');
    } finally {
      await other.close();
    }
  });

  it('two `parley serve` processes: revoke through A, the next request to B is 401', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-revoke-'));
    const db = join(dir, 'p.db');
    const procs: Proc[] = [];
    try {
      const ws = parley(['workspace', 'create', 'Two', '--db', db, '--json']);
      procs.push(ws);
      await ws.exited;
      const admin = JSON.parse(ws.out.join('\n')).keys.live.secret as string;
      const serve = () => {
        const p = parley(['serve', '--port', '0', '--db', db], { env: { PARLEY_LOG_LEVEL: 'info' } });
        procs.push(p);
        return p.waitFor(() => p.logs().find((l) => l.msg === 'Parley listening')?.url as string | undefined, 'Parley listening');
      };
      const [a, b] = await Promise.all([serve(), serve()]);
      const made = await call(a, 'POST', '/v1/keys', { key: admin, body: { type: 'secret', name: 'ci', scopes: ['read'] } });
      expect(made.status).toBe(201);
      const { id, secret } = made.json.key as { id: string; secret: string };
      expect((await call(b, 'GET', '/v1/sites', { key: secret })).status).toBe(200);
      expect((await call(a, 'DELETE', `/v1/keys/${id}`, { key: admin })).status).toBe(200);
      expectError(await call(b, 'GET', '/v1/sites', { key: secret }), 401, 'invalid_api_key');
      // And rotation without grace: the old admin key stops at once on the other process.
      const rotated = await call(b, 'POST', `/v1/keys/${JSON.parse(ws.out.join('\n')).keys.live.id}/rotate`, { key: admin });
      expect(rotated.status).toBe(201);
      expectError(await call(a, 'GET', '/v1/sites', { key: admin }), 401, 'invalid_api_key');
      expect((await call(a, 'GET', '/v1/sites', { key: rotated.json.key.secret })).status).toBe(200);
    } finally {
      for (const p of procs) p.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
