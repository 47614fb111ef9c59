// The order of checks on widget routes (SPEC section 3) and the rate limit (SPEC section 5): keys
// from three places, secret keys refused and marked exposed, the path's site, the per-site and
// per-environment bucket exact under concurrency, its headers, and refusals counted per code.
import { importPKCS8, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKeyByHash, revokeKey } from '../db/keys.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, visitor } from '../test-helpers/widget.js';
import { sha256 } from '../util.js';

let t: TestServer;
beforeAll(async () => {
  // Noon UTC: the clock moves a little in these tests and must not cross a spend day.
  t = await startTestServer({ startAt: Date.UTC(2030, 0, 15, 12) });
});
afterAll(async () => {
  await t.close();
});

const keyRow = (key: string) => findKeyByHash(t.ctx.db, sha256(key))!;

describe('keys', () => {
  let fx: Fixture;
  beforeAll(() => {
    fx = seed(t.ctx);
  });
  const path = () => `/v1/widget/${fx.serviceId}/config`;

  it('is read from X-Parley-Key, Authorization: Bearer, or api_key in the body', async () => {
    expect((await call(t.base, 'GET', path(), { origin: fx.origin, headers: { 'X-Parley-Key': fx.pk.live } })).status).toBe(200);
    expect((await call(t.base, 'GET', path(), { origin: fx.origin, headers: { Authorization: `Bearer ${fx.pk.live}` } })).status).toBe(200);
    const r = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, { origin: fx.origin, body: { message: 'hi', api_key: fx.pk.live } });
    expect(r.status, r.text).toBe(201);
  });

  it('is required: 401 missing_authorization, and invalid or revoked keys are 401 invalid_api_key', async () => {
    const none = await call(t.base, 'GET', path(), { origin: fx.origin });
    expect([none.status, none.json.error.code]).toEqual([401, 'missing_authorization']);
    // The last checksum character changed (to x, or to y when it already is x: 1 key in 62).
    const bad = await call(t.base, 'GET', path(), { origin: fx.origin, key: `${fx.pk.live.slice(0, -1)}${fx.pk.live.endsWith('x') ? 'y' : 'x'}` });
    expect([bad.status, bad.json.error.code]).toEqual([401, 'invalid_api_key']);
    const other = seed(t.ctx);
    revokeKey(t.ctx.db, keyRow(other.pk.live).id, t.clock.now);
    const revoked = await visitor(t.base, other, 'GET', '/config');
    expect([revoked.status, revoked.json.error.code]).toEqual([401, 'invalid_api_key']);
  });

  it('two different keys are 400 conflicting_credentials; the same key twice is fine', async () => {
    const r = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, {
      key: fx.pk.live, origin: fx.origin, body: { message: 'hi', api_key: fx.pk.test },
    });
    expect([r.status, r.json.error.code]).toEqual([400, 'conflicting_credentials']);
    const same = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, {
      key: fx.pk.live, origin: fx.origin, body: { message: 'hi', api_key: fx.pk.live },
    });
    expect(same.status).toBe(201);
  });

  it('a key header sent twice with the same key is that key, with two keys it conflicts; an empty api_key is no key', async () => {
    const twice = (a: string, b: string) => {
      const headers = new Headers({ Origin: fx.origin });
      headers.append('X-Parley-Key', a);
      headers.append('X-Parley-Key', b);
      return fetch(`${t.base}${path()}`, { headers });
    };
    expect((await twice(fx.pk.live, fx.pk.live)).status).toBe(200);
    const two = await twice(fx.pk.live, fx.pk.test);
    expect([two.status, ((await two.json()) as { error: { code: string } }).error.code]).toEqual([400, 'conflicting_credentials']);
    const empty = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, {
      key: fx.pk.live, origin: fx.origin, body: { message: 'hi', api_key: '' },
    });
    expect(empty.status, empty.text).toBe(201);
  });

  it('a secret key is 403 publishable_key_required, and is marked exposed when sent with an Origin', async () => {
    const own = seed(t.ctx);
    const quiet = await call(t.base, 'GET', `/v1/widget/${own.serviceId}/config`, { key: own.sk.test });
    expect([quiet.status, quiet.json.error.code]).toEqual([403, 'publishable_key_required']);
    expect(keyRow(own.sk.test).exposed_at).toBeNull();
    const browser = await call(t.base, 'GET', `/v1/widget/${own.serviceId}/config`, { origin: own.origin, headers: { 'X-Parley-Key': own.sk.live } });
    expect([browser.status, browser.json.error.code]).toEqual([403, 'publishable_key_required']);
    expect(keyRow(own.sk.live).exposed_at).toBe(t.clock.now);
    expect(JSON.stringify(browser.json)).not.toContain(own.sk.live);
  });

  it("the key's site must be the path's: 403 site_mismatch, also for an unknown site", async () => {
    const a = seed(t.ctx, { allowed_origins: ['https://a.example'] });
    const b = seed(t.ctx, { allowed_origins: ['https://b.example'] });
    const r = await call(t.base, 'GET', `/v1/widget/${b.serviceId}/config`, { key: a.pk.live, origin: 'https://b.example' });
    expect([r.status, r.json.error.code]).toEqual([403, 'site_mismatch']);
    const post = await call(t.base, 'POST', `/v1/widget/${b.serviceId}/tickets`, { key: a.pk.live, origin: 'https://b.example', body: { message: 'x' } });
    expect([post.status, post.json.error.code]).toEqual([403, 'site_mismatch']);
    const unknown = await call(t.base, 'GET', '/v1/widget/no-such-site/config', { key: a.pk.live, origin: 'https://a.example' });
    expect([unknown.status, unknown.json.error.code]).toEqual([403, 'site_mismatch']);
    // Refused before the origin and rate-limit stages: the key was not even recorded as used.
    expect(keyRow(a.pk.live).last_used_at).toBeNull();
  });

  it('records last_used_at once the origin check passed', async () => {
    const own = seed(t.ctx);
    expect(keyRow(own.pk.live).last_used_at).toBeNull();
    await visitor(t.base, own, 'GET', '/config');
    expect(keyRow(own.pk.live).last_used_at).toBe(t.clock.now);
  });
});

describe('the order of checks', () => {
  it('body before key: invalid JSON and non-JSON bodies are refused before any key is looked at', async () => {
    const fx = seed(t.ctx);
    const json = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, { origin: fx.origin, rawBody: '{"message":', headers: { 'Content-Type': 'application/json' } });
    expect([json.status, json.json.error.code]).toEqual([400, 'invalid_json']);
    const type = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, { origin: fx.origin, rawBody: 'message=hi', headers: { 'Content-Type': 'text/plain' } });
    expect([type.status, type.json.error.code]).toEqual([415, 'unsupported_media_type']);
  });

  it('site before origin, origin before rate limit, rate limit before fields', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 1 });
    const other = seed(t.ctx);
    expect((await call(t.base, 'GET', `/v1/widget/${other.serviceId}/config`, { key: fx.pk.live, origin: 'https://evil.example' })).json.error.code).toBe('site_mismatch');
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(200);
    expect((await visitor(t.base, fx, 'GET', '/config', { origin: 'https://evil.example' })).json.error.code).toBe('origin_not_allowed');
    const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { nonsense: true } });
    expect([r.status, r.json.error.code]).toEqual([429, 'rate_limit_exceeded']);
  });

  it('fields before the ticket, the ticket before identity and spend', async () => {
    const fx = seed(t.ctx, { daily_spend_cap_micros: 0, widget: { require_identity: true } });
    const bad = await visitor(t.base, fx, 'POST', '/tickets/tkt_nope/messages', { body: { message: '' }, headers: { 'X-Visitor-Token': 'vt_x' } });
    expect([bad.status, bad.json.error.code]).toEqual([400, 'invalid_request']);
    const missing = await visitor(t.base, fx, 'POST', '/tickets/tkt_nope/messages', { body: { message: 'hi' }, headers: { 'X-Visitor-Token': 'vt_x' } });
    expect([missing.status, missing.json.error.code]).toEqual([404, 'not_found']);
    const identity = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'hi' } });
    expect([identity.status, identity.json.error.code]).toEqual([403, 'identity_required']);
    const badToken = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'hi', user_token: 'a.b.c' } });
    expect([badToken.status, badToken.json.error.code]).toEqual([401, 'invalid_user_token']);
    const made = await call(t.base, 'POST', `/v1/sites/${fx.serviceId}/signing-keys`, { key: fx.sk.live, body: {} });
    const token = await new SignJWT({ sub: 'user-1' })
      .setProtectedHeader({ alg: 'ES256', kid: made.json.signing_key.id })
      .setIssuedAt(Math.floor(t.clock.now / 1000))
      .setExpirationTime(Math.floor(t.clock.now / 1000) + 600)
      .sign(await importPKCS8(made.json.private_key_pem, 'ES256'));
    const spend = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'hi', user_token: token } });
    expect([spend.status, spend.json.error.code]).toEqual([402, 'spend_cap_exceeded']);
  });
});

describe('rate limit', () => {
  it('sends the IETF draft and legacy headers on every response after the origin check', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 5 });
    const responses = [
      await visitor(t.base, fx, 'GET', '/config'),
      await visitor(t.base, fx, 'POST', '/tickets', { body: {} }),
      await visitor(t.base, fx, 'GET', '/tickets/tkt_nope/messages', { headers: { 'X-Visitor-Token': 'vt_x' } }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 400, 404]);
    responses.forEach((r, i) => {
      expect(r.headers.get('ratelimit-policy')).toBe('"site";q=5;w=60');
      expect(r.headers.get('ratelimit')).toMatch(new RegExp(`^"site";r=${4 - i};t=\\d+$`));
      expect(r.headers.get('x-ratelimit-limit')).toBe('5');
      expect(r.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(t.clock.now / 1000));
      expect(r.headers.get('retry-after')).toBeNull();
    });
  });

  it('refuses with 429, Retry-After in whole seconds, and admits again once a token is back', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 2 });
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(200);
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(200);
    const r = await visitor(t.base, fx, 'GET', '/config');
    expect([r.status, r.json.error.code]).toEqual([429, 'rate_limit_exceeded']);
    expect(r.headers.get('retry-after')).toBe('30');
    expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(r.headers.get('access-control-allow-origin')).toBe(fx.origin);
    t.clock.advance(29_000);
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(429);
    t.clock.advance(1_000);
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(200);
    expect((await visitor(t.base, fx, 'GET', '/config')).status).toBe(429);
  });

  it('admits exactly min(N, R) of N concurrent requests with R tokens left', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 20 });
    const burst = await Promise.all(Array.from({ length: 50 }, () => visitor(t.base, fx, 'GET', '/config')));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(20);
    expect(burst.filter((r) => r.status === 429)).toHaveLength(30);

    // R = 13 left after 7 were spent, N = 40 concurrent writes.
    const fx2 = seed(t.ctx, { rate_limit_per_minute: 20 });
    for (let i = 0; i < 7; i++) expect((await visitor(t.base, fx2, 'GET', '/config')).status).toBe(200);
    const writes = await Promise.all(Array.from({ length: 40 }, (_, i) => visitor(t.base, fx2, 'POST', '/tickets', { body: { message: `m${i}` } })));
    expect(writes.filter((r) => r.status === 201)).toHaveLength(13);
    expect(writes.filter((r) => r.status === 429)).toHaveLength(27);

    // N < R: all are admitted.
    const fx3 = seed(t.ctx, { rate_limit_per_minute: 20 });
    const few = await Promise.all(Array.from({ length: 15 }, () => visitor(t.base, fx3, 'GET', '/config')));
    expect(few.every((r) => r.status === 200)).toBe(true);
  });

  it('buckets are per site and per environment', async () => {
    const a = seed(t.ctx, { rate_limit_per_minute: 1 });
    const b = seed(t.ctx, { rate_limit_per_minute: 1 });
    expect((await visitor(t.base, a, 'GET', '/config')).status).toBe(200);
    expect((await visitor(t.base, a, 'GET', '/config')).status).toBe(429);
    expect((await visitor(t.base, a, 'GET', '/config', { key: a.pk.test })).status).toBe(200);
    expect((await visitor(t.base, a, 'GET', '/config', { key: a.pk.test })).status).toBe(429);
    expect((await visitor(t.base, b, 'GET', '/config')).status).toBe(200);
  });
});

describe('refusals are counted per code for the usage route', () => {
  it('counts refusals after the origin check, in the environment of the key, and nothing before it', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 100, daily_spend_cap_micros: 10_000 });
    const ticket = await createTicket(t.base, fx);
    await visitor(t.base, fx, 'POST', '/tickets', { body: {} }); // 400
    await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x' } }); // 402
    await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x' } }); // 402
    await visitor(t.base, fx, 'GET', `/tickets/${ticket.ticket.id}/messages`); // 404, no token
    await visitor(t.base, fx, 'GET', `/tickets/${ticket.ticket.id}/messages`, { key: fx.pk.test, headers: { 'X-Visitor-Token': ticket.visitor_token } }); // 404 in test
    // Not counted: refused before or at the origin check.
    await visitor(t.base, fx, 'GET', '/config', { origin: 'https://evil.example' });
    await visitor(t.base, fx, 'GET', '/config', { key: 'pk_live_bad' });
    await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { key: fx.pk.live });
    const live = await call(t.base, 'GET', `/v1/sites/${fx.serviceId}/usage?days=1`, { key: fx.sk.live });
    expect(live.status, live.text).toBe(200);
    expect(live.json.usage[0].refused).toEqual({ invalid_request: 1, spend_cap_exceeded: 2, not_found: 1 });
    const test = await call(t.base, 'GET', `/v1/sites/${fx.serviceId}/usage?days=1`, { key: fx.sk.test });
    expect(test.json.usage[0].refused).toEqual({ not_found: 1 });
  });

  it('refused message posts spend their token, are counted once and write nothing', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 4, daily_spend_cap_micros: 10_000 });
    const c = await createTicket(t.base, fx);
    const post = (headers: Record<string, string>, message = 'x') =>
      visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message }, headers });
    expect((await post({ 'X-Visitor-Token': 'vt_wrong' })).status).toBe(404);
    expect((await post({ 'X-Visitor-Token': c.visitor_token }, '')).status).toBe(400);
    expect((await post({ 'X-Visitor-Token': c.visitor_token })).status).toBe(402);
    expect((await post({ 'X-Visitor-Token': c.visitor_token })).status).toBe(429);
    const usage = await call(t.base, 'GET', `/v1/sites/${fx.serviceId}/usage?days=1`, { key: fx.sk.live });
    expect(usage.json.usage[0]).toMatchObject({
      tickets: 1, messages: 1, spend_micros: 10_000,
      refused: { not_found: 1, invalid_request: 1, spend_cap_exceeded: 1, rate_limit_exceeded: 1 },
    });
    expect((t.ctx.db.prepare('SELECT COUNT(*) AS n FROM messages m JOIN tickets k ON k.seq = m.ticket_seq WHERE k.id = ?').get(c.ticket.id) as { n: number }).n).toBe(1);
  });

  it('counts 429s', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 1 });
    await Promise.all(Array.from({ length: 5 }, () => visitor(t.base, fx, 'GET', '/config')));
    const live = await call(t.base, 'GET', `/v1/sites/${fx.serviceId}/usage?days=1`, { key: fx.sk.live });
    expect(live.json.usage[0].refused).toEqual({ rate_limit_exceeded: 4 });
  });
});

describe('rate-limit headers on refusals before the rate check (SPEC 5: every widget response)', () => {
  const HEADERS = ['ratelimit-policy', 'ratelimit', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'];
  const limitOf = (r: { headers: Headers }) => Object.fromEntries(HEADERS.map((h) => [h, r.headers.get(h)]));

  it('carry the bucket as it stands, take nothing from it, and name the environment of the key', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 7 });
    const other = seed(t.ctx);
    const base = `/v1/widget/${fx.serviceId}`;
    const json = { 'Content-Type': 'application/json' };
    const refusals = [
      () => call(t.base, 'GET', `${base}/config`, { origin: fx.origin }), // 401 missing_authorization
      () => call(t.base, 'GET', `${base}/config`, { origin: fx.origin, key: `${fx.pk.live.slice(0, -1)}${fx.pk.live.endsWith('x') ? 'y' : 'x'}` }), // 401
      () => call(t.base, 'GET', `${base}/config`, { origin: 'https://evil.example', key: fx.pk.live }), // 403 origin_not_allowed
      () => call(t.base, 'GET', `${base}/config`, { key: fx.pk.live }), // 403 origin_required
      () => call(t.base, 'GET', `${base}/config`, { origin: fx.origin, key: other.pk.live }), // 403 site_mismatch
      () => call(t.base, 'GET', `${base}/nothing`, { origin: fx.origin, key: fx.pk.live }), // 404 no such route
      () => call(t.base, 'POST', `${base}/tickets`, { origin: fx.origin, key: fx.pk.live, rawBody: '{', headers: json }), // 400 invalid_json
      () => call(t.base, 'POST', `${base}/tickets`, { origin: fx.origin, key: fx.pk.live, rawBody: 'x', headers: { 'Content-Type': 'text/plain' } }), // 415
    ];
    const statuses: number[] = [];
    for (const refuse of refusals) {
      const r = await refuse();
      statuses.push(r.status);
      expect(limitOf(r), `${r.status} ${r.text}`).toEqual({
        'ratelimit-policy': '"site";q=7;w=60',
        ratelimit: '"site";r=7;t=0',
        'x-ratelimit-limit': '7',
        'x-ratelimit-remaining': '7',
        'x-ratelimit-reset': String(Math.ceil(t.clock.now / 1000)),
      });
      expect(r.headers.get('retry-after')).toBeNull();
    }
    expect(statuses).toEqual([401, 401, 403, 403, 403, 404, 400, 415]);
    // A request that is admitted takes the first token; the refusals took none.
    const ok = await visitor(t.base, fx, 'GET', '/config');
    expect([ok.status, ok.headers.get('x-ratelimit-remaining')]).toEqual([200, '6']);
    const after = await refusals[2]!();
    expect(after.headers.get('x-ratelimit-remaining')).toBe('6');
    expect(after.headers.get('ratelimit')).toMatch(/^"site";r=6;t=[1-9]\d*$/);
    // A test key's refusal shows the test bucket, untouched by the live request.
    const testKey = await call(t.base, 'GET', `${base}/config`, { origin: 'https://evil.example', key: fx.pk.test });
    expect([testKey.status, testKey.headers.get('x-ratelimit-remaining')]).toEqual([403, '7']);
  });

  it('are absent when the service id names no site (there is no bucket to report)', async () => {
    const r = await call(t.base, 'GET', '/v1/widget/no-such-site/config', { origin: 'https://shop.example' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.headers.get('ratelimit')).toBeNull();
  });
});
