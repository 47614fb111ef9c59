// Origins and CORS of the widget routes (SPEC section 4): preflights and actual requests from
// allowed, other, `null`, wildcard and port-mismatched origins; origin_required and the backend
// proxy switch; CORS headers on errors only for allowed origins; a refused origin leaves no trace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, visitor, widgetState } from '../test-helpers/widget.js';
import { ALLOWED_HEADERS, EXPOSED_HEADERS } from './origins.js';

let t: TestServer;
let fx: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  fx = seed(t.ctx, { allowed_origins: ['https://shop.example', 'https://*.example.com', 'http://localhost:5173'] });
});
afterAll(async () => {
  await t.close();
});

async function preflight(serviceId: string, origin: string | undefined, method = 'POST') {
  const headers: Record<string, string> = {
    'Access-Control-Request-Method': method,
    'Access-Control-Request-Headers': 'content-type,x-parley-key,idempotency-key',
  };
  if (origin !== undefined) headers.Origin = origin;
  return fetch(`${t.base}/v1/widget/${serviceId}/tickets`, { method: 'OPTIONS', headers });
}

const list = (h: string | null) => (h ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
const corsHeaderNames = (h: Headers) => [...h.keys()].filter((k) => k.startsWith('access-control-'));

const ALLOWED = ['https://shop.example', 'https://help.example.com', 'https://a.b.c.example.com', 'http://localhost:5173'];
const REFUSED = [
  'https://elsewhere.example',
  'null',
  'https://example.com', // the apex of a wildcard entry is not covered by it
  'http://localhost:5174', // port mismatch
  'https://shop.example:8443', // port mismatch on an exact entry
  'http://shop.example', // scheme mismatch
  'https://help.example.com:444',
  'https://evilexample.com',
  'https://example.com.evil.net',
  'https://shop.example.evil.net',
  'https://shop.example/',
  'file://',
];

describe('preflight', () => {
  it.each(ALLOWED)('an allowed origin %s gets 204 with the widget methods, headers and a max age', async (origin) => {
    const r = await preflight(fx.serviceId, origin);
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(origin);
    expect(list(r.headers.get('access-control-allow-methods'))).toEqual(expect.arrayContaining(['get', 'post']));
    expect(list(r.headers.get('access-control-allow-headers'))).toEqual(
      expect.arrayContaining(ALLOWED_HEADERS.map((h) => h.toLowerCase())),
    );
    expect(Number(r.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(r.headers.get('access-control-allow-credentials')).toBeNull();
    expect(list(r.headers.get('vary'))).toContain('origin');
    // Preflights are free: no rate-limit accounting on them.
    expect(r.headers.get('ratelimit')).toBeNull();
  });

  it.each(REFUSED)('another origin %s gets 403 with no CORS headers', async (origin) => {
    const r = await preflight(fx.serviceId, origin);
    expect(r.status).toBe(403);
    expect(corsHeaderNames(r.headers)).toEqual([]);
    expect(list(r.headers.get('vary'))).toContain('origin');
    expect((await r.json()).error.code).toBe('origin_not_allowed');
  });

  it('a preflight for an unknown site is 403 with no CORS headers, whatever the origin', async () => {
    const r = await preflight('no-such-site', 'https://shop.example');
    expect(r.status).toBe(403);
    expect(corsHeaderNames(r.headers)).toEqual([]);
  });

  it('a preflight names its site: an origin allowed for one site is refused for another', async () => {
    const other = seed(t.ctx, { allowed_origins: ['https://other.example'] });
    expect((await preflight(other.serviceId, 'https://shop.example')).status).toBe(403);
    expect((await preflight(other.serviceId, 'https://other.example')).status).toBe(204);
  });

  it('an OPTIONS without Origin is refused', async () => {
    const r = await preflight(fx.serviceId, undefined);
    expect(r.status).toBe(403);
    expect(corsHeaderNames(r.headers)).toEqual([]);
  });

  it('preflights are neither rate limited nor change any row', async () => {
    const small = seed(t.ctx, { allowed_origins: ['https://shop.example'], rate_limit_per_minute: 1 });
    const before = widgetState(t.ctx.db);
    for (let i = 0; i < 10; i++) expect((await preflight(small.serviceId, 'https://shop.example')).status).toBe(204);
    expect(widgetState(t.ctx.db)).toEqual(before);
    const r = await visitor(t.base, small, 'GET', '/config');
    expect(r.status).toBe(200);
  });
});

describe('actual requests', () => {
  it.each(ALLOWED)('an allowed origin %s is served with its own origin echoed, never *', async (origin) => {
    const r = await visitor(t.base, fx, 'GET', '/config', { origin });
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(origin);
    expect(r.headers.get('access-control-allow-credentials')).toBeNull();
    expect(list(r.headers.get('vary'))).toContain('origin');
    expect(list(r.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(EXPOSED_HEADERS.map((h) => h.toLowerCase())),
    );
    for (const h of ['ratelimit', 'ratelimit-policy', 'x-ratelimit-remaining', 'retry-after', 'x-request-id']) {
      expect(list(r.headers.get('access-control-expose-headers'))).toContain(h);
    }
  });

  it.each(REFUSED)('another origin %s is 403 origin_not_allowed with no CORS headers', async (origin) => {
    const r = await visitor(t.base, fx, 'GET', '/config', { origin });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('origin_not_allowed');
    expect(corsHeaderNames(r.headers)).toEqual([]);
    expect(list(r.headers.get('vary'))).toContain('origin');
    // Refused before the rate limit: the bucket's headers as it stands (SPEC 5), nothing taken.
    const remaining = r.headers.get('x-ratelimit-remaining');
    expect(remaining).toMatch(/^\d+$/);
    const again = await visitor(t.base, fx, 'GET', '/config', { origin });
    expect(again.headers.get('x-ratelimit-remaining')).toBe(remaining);
  });

  it('errors carry CORS headers for an allowed origin (the widget can read them) and none for another', async () => {
    const mine = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: 'https://shop.example' });
    expect(mine.status).toBe(401);
    expect(mine.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(mine.headers.get('access-control-expose-headers')).toBeTruthy();
    const theirs = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: 'https://elsewhere.example' });
    expect(theirs.status).toBe(401);
    expect(corsHeaderNames(theirs.headers)).toEqual([]);
    const bad = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: '' } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('access-control-allow-origin')).toBe(fx.origin);
  });

  it('refusals of the body rules (413, 415, invalid_json) are readable by an allowed origin only', async () => {
    const big = JSON.stringify({ message: 'x'.repeat(40_000) });
    for (const [rawBody, type, status] of [[big, 'application/json', 413], ['hi', 'text/plain', 415], ['{', 'application/json', 400]] as const) {
      const mine = await visitor(t.base, fx, 'POST', '/tickets', { rawBody, headers: { 'Content-Type': type } });
      expect(mine.status).toBe(status);
      expect(mine.headers.get('access-control-allow-origin')).toBe(fx.origin);
      const theirs = await visitor(t.base, fx, 'POST', '/tickets', { origin: 'https://elsewhere.example', rawBody, headers: { 'Content-Type': type } });
      expect(theirs.status).toBe(status);
      expect(corsHeaderNames(theirs.headers)).toEqual([]);
    }
  });

  it('the key is checked before the origin: a bad key from a refused origin is 401', async () => {
    const r = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { key: 'pk_live_nope', origin: 'https://elsewhere.example' });
    expect(r.status).toBe(401);
  });
});

describe('internationalised domain names', () => {
  it('an allowlist entry in Unicode is stored as the punycode that browsers send, exact and wildcard', async () => {
    const sid = `idn-${process.pid}`;
    const made = await call(t.base, 'POST', '/v1/sites', {
      key: fx.sk.live,
      body: { service_id: sid, name: 'IDN', allowed_origins: ['https://Bücher.example', 'https://*.bücher.example:8443'] },
    });
    expect(made.status, made.text).toBe(201);
    expect(made.json.site.allowed_origins).toEqual(['https://xn--bcher-kva.example', 'https://*.xn--bcher-kva.example:8443']);
    const pk = made.json.publishable_keys.live as string;
    for (const origin of ['https://xn--bcher-kva.example', 'https://shop.xn--bcher-kva.example:8443']) {
      const r = await call(t.base, 'GET', `/v1/widget/${sid}/config`, { key: pk, origin });
      expect(r.status, `${origin}: ${r.text}`).toBe(200);
      expect(r.headers.get('access-control-allow-origin')).toBe(origin);
    }
    const apex = await call(t.base, 'GET', `/v1/widget/${sid}/config`, { key: pk, origin: 'https://xn--bcher-kva.example:8443' });
    expect(apex.status).toBe(403);
    const bad = await call(t.base, 'POST', '/v1/sites', {
      key: fx.sk.live, body: { service_id: `${sid}-bad`, name: 'IDN', allowed_origins: ['https://b\u00fccher .example'] },
    });
    expect(bad.status).toBe(400);
  });
});

describe('requests without an Origin', () => {
  it('are 403 origin_required unless the site allows server requests', async () => {
    const r = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { key: fx.pk.live });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('origin_required');
    const post = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, { body: { message: 'hi', api_key: fx.pk.live } });
    expect(post.status).toBe(403);
    expect(post.json.error.code).toBe('origin_required');
  });

  it('are served for a site with allow_server_requests: the backend proxy with api_key in the body', async () => {
    const proxy = seed(t.ctx, { allowed_origins: ['https://shop.example'], allow_server_requests: true });
    const base = `/v1/widget/${proxy.serviceId}`;
    const created = await call(t.base, 'POST', `${base}/tickets`, { body: { message: 'from the backend', api_key: proxy.pk.live } });
    expect(created.status, created.text).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBeNull();
    expect(created.headers.get('ratelimit-policy')).toMatch(/^"site";q=\d+;w=60$/);
    const id = created.json.ticket.id as string;
    const token = created.json.visitor_token as string;
    const posted = await call(t.base, 'POST', `${base}/tickets/${id}/messages`, {
      body: { message: 'again', api_key: proxy.pk.live },
      headers: { 'X-Visitor-Token': token },
    });
    expect(posted.status, posted.text).toBe(201);
    const read = await call(t.base, 'GET', `${base}/tickets/${id}/messages`, { key: proxy.pk.live, headers: { 'X-Visitor-Token': token } });
    expect(read.json.messages.map((m: { body: string }) => m.body)).toEqual(['from the backend', 'again']);
    // The switch opens nothing to other pages: a browser call from another origin is still refused.
    const page = await call(t.base, 'GET', `${base}/config`, { key: proxy.pk.live, origin: 'https://elsewhere.example' });
    expect(page.status).toBe(403);
    expect(page.json.error.code).toBe('origin_not_allowed');
  });
});

describe('a refused origin has no side effect at all', () => {
  it('stores, charges and counts nothing, and does not even touch the key', async () => {
    const site = seed(t.ctx, { allowed_origins: ['https://shop.example'] });
    // A ticket from the allowed origin of another site gives the refused calls something to aim at.
    const ticket = await createTicket(t.base, fx);
    const evil = { origin: 'https://evil.example' };
    const before = widgetState(t.ctx.db);
    const calls = [
      visitor(t.base, site, 'GET', '/config', evil),
      visitor(t.base, site, 'POST', '/tickets', { ...evil, body: { message: 'spam' } }),
      visitor(t.base, site, 'POST', '/tickets', { ...evil, body: { message: 'spam' }, headers: { 'Idempotency-Key': 'k1' } }),
      visitor(t.base, site, 'POST', '/tickets', { ...evil, body: { message: '' } }),
      visitor(t.base, site, 'POST', '/tickets', { origin: 'null', body: { message: 'spam' } }),
      visitor(t.base, site, 'GET', `/tickets/${ticket.ticket.id}/messages`, { ...evil, headers: { 'X-Visitor-Token': ticket.visitor_token } }),
      visitor(t.base, site, 'GET', `/tickets/${ticket.ticket.id}/events`, { ...evil, headers: { 'X-Visitor-Token': ticket.visitor_token } }),
      visitor(t.base, site, 'POST', `/tickets/${ticket.ticket.id}/messages`, { ...evil, body: { message: 'x' }, headers: { 'X-Visitor-Token': ticket.visitor_token } }),
      call(t.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { ...evil, body: { message: 'spam', api_key: site.pk.live } }),
    ];
    for (const r of await Promise.all(calls)) {
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe('origin_not_allowed');
    }
    expect(widgetState(t.ctx.db)).toEqual(before);
  });
});
