// Property tests on every widget and management route: arbitrary bodies, hostile strings, huge numbers,
// deep nesting, wrong types, keys of every shape, arbitrary Origin and header values. Whatever comes
// in: no 5xx, every error in the SPEC's envelope with a listed code, and a refused request changes
// nothing (the business tables' digest is the same before and after).
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { formatKey } from '@parley/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mintKey } from '../../server/src/auth/keys.js';
import { createSite } from '../../server/src/services/provisioning.js';
import type { TestServer } from '../../server/src/test-helpers/harness.js';
import { counters, digest, envelopeProblem, FULL, noSecretsInLogsTest, pick, reliabilityFile, rememberSecret, send, watchLogs, type Reply } from './support.js';
import { addSigningKey, makeWorkspace, newServiceId, openTicket, roomyServer, userToken, type SiteFx, type WorkspaceFx } from './world.js';
import { XSS_CORPUS } from './xss-corpus.js';

reliabilityFile();

const RUNS = pick(30, 300);
const SEED = process.env.PARLEY_PROPERTY_SEED ? Number(process.env.PARLEY_PROPERTY_SEED) : undefined;

// ---- hostile values ----

const WEIRD = [
  '\u0000', '\u0001', '\u0008', '\u001b', '\u001f', '\u007f', '\u0085', '\u00a0', '\u200b', '\u200e', '\u200f', '\u202a', '\u202e',
  '\u2066', '\u2069', '\u2028', '\u2029', '\ufeff', '\ufffe', '\uffff', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ud83d\ude00',
  '\u0301', '\t', '\n', '\r', '\r\n', '"', "'", '\\', '`', '<', '>', '&', '%', '%00', '%zz', '../', '..%2f', '?', '#', '/', ';', '=',
  '__proto__', 'constructor', 'prototype', '${jndi:ldap://x}', '{{7*7}}', "' OR 1=1 --", 'NaN', 'Infinity', 'null', 'true', '𝕏', 'ﷺ',
];
const weird = fc.constantFrom(...WEIRD);
const nastyValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 3, arbitrary: fc.array(weird, { maxLength: 8 }).map((a) => a.join('')) },
  { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), weird, fc.string({ maxLength: 10 })).map(([a, b, c]) => a + b + c) },
  { weight: 1, arbitrary: fc.constantFrom(...XSS_CORPUS) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n\t ', 'x'.repeat(101), 'y'.repeat(256), 'z'.repeat(5001), 'w'.repeat(20_000)) },
);
const nasty = nastyValue;
const hugeNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -(2 ** 63), 2 ** 64, 1e21, -0, 0.1, 5e-324, Number.MAX_SAFE_INTEGER, -1, 0, 604_801),
  fc.double(),
  fc.integer(),
);
const scalar = fc.oneof(nasty, hugeNumber, fc.boolean(), fc.constant(null));
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(nasty, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
/** A value that is usually of the field's type (so validation gets past it) and sometimes anything. */
const maybe = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: good }, { weight: 1, arbitrary: anyValue });

/** Objects with the route's field names (and stray ones), each holding a hostile value. */
function shaped(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const known = fc.record(fields, { requiredKeys: [] });
  const stray = fc.dictionary(fc.oneof(fc.constantFrom(...Object.keys(fields), '__proto__', 'constructor', 'api_key'), nasty), anyValue, { maxKeys: 3 });
  return fc.oneof(
    { weight: 5, arbitrary: known },
    { weight: 1, arbitrary: fc.tuple(known, stray).map(([a, b]) => ({ ...(a as object), ...b })) },
    { weight: 1, arbitrary: anyValue },
  );
}

/** Bodies that are not what JSON.stringify would make: deep nesting, bad bytes, duplicates, number overflow. */
const rawBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.integer({ min: 50, max: 16_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  fc.integer({ min: 50, max: 5_000 }).map((d) => '{"message":'.repeat(d) + '"x"' + '}'.repeat(d)),
  fc.constantFrom(
    '', 'null', '[]', '"text"', '123', 'true', '{', '{"message":', '{"message":"a"}garbage', '{"message":1e999}', '{"message":-1e999}',
    '{"message":"\\ud800"}', '{"message":"\\u0000"}', '{"message":"a","message":"b"}', '{"__proto__":{"admin":true},"message":"x"}',
    '{"constructor":{"prototype":{"polluted":1}},"message":"x"}', '\ufeff{"message":"bom"}', '{"message":"x"}\u0000', ' \n{"message":"ws"}\n ',
  ),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.string({ maxLength: 200 }),
);

const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'application/json;charset=utf-16',
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json-patch+json', 'application/xml', '*/*', '',
];

/** Percent-encodes a string byte by byte (lone surrogates become U+FFFD, as a browser would send). */
const enc = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
const rawSegment = fc.constantFrom('%', '%zz', '%E0%A4%A', '%ff', '%00', '%2e%2e', '..', '.', '%2F', 'a%2Fb', '%C0%AF', '%ED%A0%80');
const segment = (good: string[]) => fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...good) },
  { weight: 2, arbitrary: nasty.filter((s) => s.length > 0).map(enc) },
  { weight: 1, arbitrary: rawSegment },
);

const queryName = fc.oneof(fc.constantFrom('limit', 'cursor', 'status', 'days', 'after', 'api_key', 'limit[]', '__proto__'), nasty.map(enc));
const queryString = fc.array(fc.tuple(queryName, fc.oneof(nasty.map(enc), rawSegment, fc.constantFrom('0', '1', '50', '100', '101', '-1', '1e3', 'open', 'closed', '90', '91'))), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

// ---- the parties each route is tried with ----

interface Fx {
  ws: WorkspaceFx;
  site: SiteFx;
  other: SiteFx;
  ticket: { id: string; token: string };
  otherTicket: { id: string; token: string };
  readKey: string;
  revoked: string;
  userTok: string;
  keyIds: string[];
}

async function fixture(srv: TestServer): Promise<Fx> {
  const ws = makeWorkspace(srv, 'Prop', 2);
  const [site, other] = ws.sites as [SiteFx, SiteFx];
  await addSigningKey(srv.base, site);
  const t = await openTicket(srv.base, site, 'live', 'first');
  const o = await openTicket(srv.base, other, 'live', 'other');
  const now = srv.ctx.clock();
  const read = mintKey(srv.ctx.db, { type: 'secret', environment: 'live', name: 'read', scopes: ['read'], workspaceId: ws.id, siteId: null, sites: null, expiresAt: null, now });
  const revoked = mintKey(srv.ctx.db, { type: 'secret', environment: 'live', name: 'gone', scopes: ['read', 'write', 'admin'], workspaceId: ws.id, siteId: null, sites: null, expiresAt: null, now });
  srv.ctx.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(now - 1, revoked.row.id);
  rememberSecret(read.secret);
  rememberSecret(revoked.secret);
  return {
    ws, site, other,
    ticket: { id: t.json.ticket.id, token: t.json.visitor_token },
    otherTicket: { id: o.json.ticket.id, token: o.json.visitor_token },
    readKey: read.secret, revoked: revoked.secret, userTok: await userToken(site, 'prop-user'), keyIds: [read.row.id],
  };
}

/** Keys of every shape: real ones of every kind, well-formed unknown ones, broken checksums, junk. */
function keyArb(fx: Fx): fc.Arbitrary<string> {
  const real = [fx.site.pk.live, fx.site.pk.test, fx.other.pk.live, fx.ws.sk.live, fx.ws.sk.test, fx.readKey, fx.revoked];
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...real) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('publishable', 'secret') as fc.Arbitrary<'publishable' | 'secret'>, fc.constantFrom('live', 'test') as fc.Arbitrary<'live' | 'test'>).map(([t, e]) => formatKey(t, e, randomBytes(32))) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...real), fc.nat(56), fc.constantFrom('0', 'Z', 'a', '_', ' ')).map(([k, i, c]) => k.slice(0, i) + c + k.slice(i + 1)) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...real), fc.constantFrom('trim', 'upper', 'double', 'cut', 'space', 'nul')).map(([k, how]) =>
      how === 'trim' ? ` ${k} ` : how === 'upper' ? k.toUpperCase() : how === 'double' ? k + k : how === 'cut' ? k.slice(0, 50) : how === 'space' ? `${k} x` : `${k}\u0000`) },
    { weight: 1, arbitrary: nasty },
    { weight: 1, arbitrary: nasty.map((s) => `pk_live_${s}`) },
  );
}

interface Sample {
  method: string;
  path: string;
  headers: [string, string][];
  body?: unknown;
  raw?: string | Buffer;
  contentType?: string;
}

/** Mostly values fetch will send (Latin-1 without control bytes); now and then anything (skipped if refused). */
const headerSafe = (a: fc.Arbitrary<string>) => fc.oneof(
  { weight: 5, arbitrary: a.map((v) => v.replace(/[^\x20-\x7e\xa0-\xff]/g, '').trim()) },
  { weight: 1, arbitrary: a },
);

/** Where a key goes and which other headers come along. */
function headersArb(fx: Fx, widget: boolean): fc.Arbitrary<[string, string][]> {
  const key = headerSafe(keyArb(fx));
  const nasty = headerSafe(nastyValue);
  const keyHeaders = fc.oneof(
    key.map((k) => [[widget ? 'X-Parley-Key' : 'Authorization', widget ? k : `Bearer ${k}`]] as [string, string][]),
    key.map((k) => [['Authorization', `Bearer ${k}`]] as [string, string][]),
    key.map((k) => [['X-API-Key', k]] as [string, string][]),
    fc.tuple(key, key).map(([a, b]) => [['X-Parley-Key', a], ['Authorization', `Bearer ${b}`]] as [string, string][]),
    fc.tuple(fc.constantFrom('Basic', 'bearer', 'Token', 'Bearer  ', ''), key).map(([s, k]) => [['Authorization', `${s} ${k}`]] as [string, string][]),
    fc.constant([] as [string, string][]),
  );
  const origin = fc.oneof(
    { weight: 4, arbitrary: fc.constant(fx.site.origin) },
    { weight: 1, arbitrary: fc.constantFrom(fx.other.origin, 'null', 'https://evil.example', fx.site.origin.toUpperCase(), `${fx.site.origin}:443`, `${fx.site.origin}/`, `${fx.site.origin}.evil.example`, `http://${fx.site.origin.slice(8)}`, 'file://', '*') },
    { weight: 1, arbitrary: nasty },
  );
  const optional = (name: string, v: fc.Arbitrary<string>) => fc.option(v.map((x) => [name, x] as [string, string]), { nil: undefined });
  return fc.tuple(
    keyHeaders,
    optional('Origin', origin),
    optional('X-Visitor-Token', fc.oneof(fc.constantFrom(fx.ticket.token, fx.otherTicket.token, `${fx.ticket.token}x`), nasty)),
    optional('X-User-Token', fc.oneof(fc.constant(fx.userTok), fc.constantFrom('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'a.b.c', `${fx.userTok}x`), nasty)),
    optional('Idempotency-Key', fc.oneof(fc.uuid(), nasty, fc.constant('k'.repeat(256)))),
    optional('Content-Encoding', fc.constantFrom('gzip', 'identity', 'br', 'x')),
    fc.option(fc.tuple(fc.constantFrom('X-Forwarded-For', 'Accept', 'Access-Control-Request-Method', 'Access-Control-Request-Headers', 'Range', 'Cookie'), nasty), { nil: undefined }),
  ).map(([k, ...rest]) => [...k, ...rest.filter((x): x is [string, string] => x !== undefined)]);
}

interface Route {
  name: string;
  method: string;
  widget: boolean;
  path(fx: Fx): fc.Arbitrary<string>;
  body?: fc.Arbitrary<unknown>;
}

/** Things a destructive route may delete: placeholders in the path, replaced by a fresh victim after each success. */
const VICTIM_SITE = 'victim-site-placeholder';
const VICTIM_KEY = 'key_victimplaceholder';
interface Victim {
  serviceId: string;
  keyId: string;
}

const message = fc.oneof(fc.constant('hello'), nasty, fc.constantFrom(...XSS_CORPUS));
const ticketBody = shaped({
  message: maybe(message),
  visitor: maybe(fc.record({ name: maybe(nasty), email: maybe(fc.oneof(fc.emailAddress(), nasty)) }, { requiredKeys: [] })),
  page_url: maybe(fc.oneof(fc.webUrl(), nasty, fc.constantFrom('javascript:alert(1)', 'data:text/html,x', 'https://x/'.padEnd(2100, 'a')))),
  metadata: maybe(fc.dictionary(nasty, fc.oneof(nasty, anyValue), { maxKeys: 22 })),
  user_token: maybe(nasty),
  api_key: maybe(nasty),
});
const siteBody = shaped({
  service_id: maybe(fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,20}$/), nasty)),
  name: maybe(nasty),
  allowed_origins: maybe(fc.array(fc.oneof(fc.webUrl(), nasty, fc.constantFrom('https://*.example.com', 'https://*', 'http://a:99999')), { maxLength: 3 })),
  allow_server_requests: maybe(fc.boolean()),
  rate_limit_per_minute: maybe(hugeNumber),
  daily_spend_cap_micros: maybe(hugeNumber),
  prices: maybe(fc.record({ 'ticket.create': maybe(hugeNumber), 'message.create': maybe(hugeNumber) }, { requiredKeys: [] })),
  widget: maybe(fc.record({ greeting: maybe(nasty), color: maybe(fc.oneof(fc.constant('#abcdef'), nasty)), position: maybe(nasty), require_identity: maybe(fc.boolean()) }, { requiredKeys: [] })),
});
const keyBody = shaped({
  type: maybe(fc.constantFrom('publishable', 'secret')),
  name: maybe(nasty),
  site: maybe(nasty),
  scopes: maybe(fc.array(fc.oneof(fc.constantFrom('read', 'write', 'admin', 'widget'), nasty), { maxLength: 5 })),
  sites: maybe(fc.array(nasty, { maxLength: 3 })),
  expires_at: maybe(fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), nasty)),
});

function routes(): Route[] {
  const sid = (fx: Fx) => segment([fx.site.serviceId, fx.site.serviceId, fx.other.serviceId]);
  const tid = (fx: Fx) => segment([fx.ticket.id, fx.ticket.id, fx.otherTicket.id]);
  const w = (method: string, tail: (fx: Fx) => fc.Arbitrary<string>, body?: fc.Arbitrary<unknown>): Route => ({
    name: `${method} /v1/widget/:sid${tail.name}`, method, widget: true, body,
    path: (fx) => fc.tuple(sid(fx), tail(fx)).map(([s, t]) => `/v1/widget/${s}${t}`),
  });
  const named = (label: string, f: (fx: Fx) => fc.Arbitrary<string>) => Object.defineProperty(f, 'name', { value: label });
  const m = (method: string, label: string, path: (fx: Fx) => fc.Arbitrary<string>, body?: fc.Arbitrary<unknown>): Route => ({
    name: `${method} ${label}`, method, widget: false, path, body,
  });
  const siteSeg = (fx: Fx) => sid(fx).map((s) => `/v1/sites/${s}`);
  const withQuery = (a: fc.Arbitrary<string>) => fc.tuple(a, queryString).map(([p, q]) => p + q);
  return [
    w('GET', named('/config', () => fc.constant('/config'))),
    w('POST', named('/tickets', () => fc.constant('/tickets')), ticketBody),
    w('GET', named('/tickets (user list)', () => queryString.map((q) => `/tickets${q}`))),
    w('GET', named('/tickets/:id/messages', (fx) => fc.tuple(tid(fx), queryString).map(([t, q]) => `/tickets/${t}/messages${q}`))),
    w('POST', named('/tickets/:id/messages', (fx) => tid(fx).map((t) => `/tickets/${t}/messages`)), shaped({ message: maybe(message), api_key: maybe(nasty) })),
    w('GET', named('/tickets/:id/events', (fx) => tid(fx).map((t) => `/tickets/${t}/events`))),
    w('OPTIONS', named('/tickets (preflight)', () => fc.constant('/tickets'))),
    m('GET', '/v1/sites', () => queryString.map((q) => `/v1/sites${q}`)),
    m('POST', '/v1/sites', () => fc.constant('/v1/sites'), siteBody),
    m('GET', '/v1/sites/:sid', siteSeg),
    m('PATCH', '/v1/sites/:sid', siteSeg, siteBody),
    m('DELETE', '/v1/sites/:sid', (fx) => segment([VICTIM_SITE, VICTIM_SITE, fx.other.serviceId]).map((s) => `/v1/sites/${s}`)),
    m('POST', '/v1/keys', () => fc.constant('/v1/keys'), keyBody),
    m('GET', '/v1/keys', () => queryString.map((q) => `/v1/keys${q}`)),
    m('DELETE', '/v1/keys/:id', (fx) => segment([VICTIM_KEY, VICTIM_KEY, fx.keyIds[0]!]).map((k) => `/v1/keys/${k}`)),
    m('POST', '/v1/keys/:id/rotate', (fx) => segment([VICTIM_KEY, VICTIM_KEY, fx.keyIds[0]!]).map((k) => `/v1/keys/${k}/rotate`), shaped({ grace_seconds: maybe(hugeNumber) })),
    m('GET', '/v1/sites/:sid/tickets', (fx) => withQuery(siteSeg(fx).map((s) => `${s}/tickets`))),
    m('GET', '/v1/sites/:sid/tickets/:id', (fx) => fc.tuple(siteSeg(fx), tid(fx)).map(([s, t]) => `${s}/tickets/${t}`)),
    m('POST', '/v1/sites/:sid/tickets/:id/messages', (fx) => fc.tuple(siteSeg(fx), tid(fx)).map(([s, t]) => `${s}/tickets/${t}/messages`),
      shaped({ message: maybe(message), author_name: maybe(nasty) })),
    m('PATCH', '/v1/sites/:sid/tickets/:id', (fx) => fc.tuple(siteSeg(fx), tid(fx)).map(([s, t]) => `${s}/tickets/${t}`),
      shaped({ status: maybe(fc.oneof(fc.constantFrom('open', 'closed', 'OPEN', 'deleted'), nasty)) })),
    m('GET', '/v1/sites/:sid/usage', (fx) => withQuery(siteSeg(fx).map((s) => `${s}/usage`))),
    m('GET', '/v1/sites/:sid/signing-keys', (fx) => siteSeg(fx).map((s) => `${s}/signing-keys`)),
    m('POST', '/v1/sites/:sid/signing-keys', (fx) => siteSeg(fx).map((s) => `${s}/signing-keys`),
      shaped({ public_key_pem: maybe(fc.oneof(nasty, fc.constant('-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----'))) })),
    m('DELETE', '/v1/sites/:sid/signing-keys/:id', (fx) => fc.tuple(siteSeg(fx), segment([fx.site.signingKeyId, 'sgk_nope'])).map(([s, g]) => `${s}/signing-keys/${g}`)),
  ];
}

/** The request of one sample: the route's path and headers, and a body that is shaped, raw or absent. */
function sampleArb(route: Route, fx: Fx): fc.Arbitrary<Sample> {
  const body: fc.Arbitrary<Pick<Sample, 'body' | 'raw' | 'contentType'>> = fc.oneof(
    { weight: route.body ? 6 : 1, arbitrary: (route.body ?? anyValue).map((b) => ({ body: b })) },
    { weight: 1, arbitrary: rawBody.map((raw) => ({ raw })) },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(rawBody, (route.body ?? anyValue).map((b) => JSON.stringify(b) ?? 'null')), fc.constantFrom(...CONTENT_TYPES)).map(([raw, contentType]) => ({ raw, contentType })) },
    { weight: route.method === 'GET' || route.method === 'DELETE' ? 4 : 1, arbitrary: fc.constant({}) },
  );
  return fc.tuple(route.path(fx), headersArb(fx, route.widget), body).map(([path, headers, b]) => ({ method: route.method, path, headers, ...b }));
}

async function attempt(srv: TestServer, s: Sample, victim?: Victim): Promise<Reply | null> {
  const path = victim ? s.path.replace(VICTIM_SITE, victim.serviceId).replace(VICTIM_KEY, victim.keyId) : s.path;
  const headers: Record<string, string> = {};
  for (const [k, v] of s.headers) headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  if (s.contentType !== undefined) {
    if (s.contentType) headers['Content-Type'] = s.contentType;
  } else if (s.raw !== undefined) headers['Content-Type'] = 'application/json';
  const canHaveBody = s.method !== 'GET' && s.method !== 'HEAD';
  try {
    return await send(srv.base, s.method, path, {
      headers,
      ...(canHaveBody && s.raw !== undefined ? { raw: s.raw } : {}),
      ...(canHaveBody && s.raw === undefined && s.body !== undefined ? { body: s.body } : {}),
    });
  } catch (err) {
    // fetch itself refuses some header values (before sending anything): those never reach a server.
    // The raw-socket property below sends such bytes anyway.
    if (err instanceof TypeError && err.message !== 'fetch failed') return null;
    if (err instanceof TypeError && (err.cause as { code?: string } | undefined)?.code === 'UND_ERR_INVALID_ARG') return null;
    throw err;
  }
}

describe('properties of every route', () => {
  let srv: TestServer;
  let skipped = 0;
  beforeAll(async () => {
    srv = await roomyServer();
    watchLogs(() => srv.logs);
  });
  afterAll(async () => {
    await srv?.close();
  });

  for (const route of routes()) {
    test(`${route.name}: no 5xx, the error envelope, refusals change nothing`, async () => {
      const fx = await fixture(srv);
      let victim: Victim | undefined;
      const makeVictim = (): Victim => {
        const serviceId = newServiceId('victim');
        createSite(srv.ctx.db, fx.ws.id, { service_id: serviceId, name: 'Victim', allowed_origins: ['https://victim.example'] }, srv.ctx.clock());
        const k = mintKey(srv.ctx.db, { type: 'secret', environment: 'live', name: 'victim', scopes: ['read'], workspaceId: fx.ws.id, siteId: null, sites: null, expiresAt: null, now: srv.ctx.clock() });
        rememberSecret(k.secret);
        return { serviceId, keyId: k.row.id };
      };
      const destructive = route.method === 'DELETE' || route.name.includes('rotate');
      if (destructive) victim = makeVictim();
      await fc.assert(
        fc.asyncProperty(sampleArb(route, fx), async (sample) => {
          const before = digest(srv.ctx.db);
          const r = await attempt(srv, sample, victim);
          if (!r) {
            skipped++;
            return;
          }
          counters.badInputs++;
          const where = `${sample.method} ${sample.path} ${JSON.stringify(sample.headers).slice(0, 300)} -> ${r.status} ${r.text.slice(0, 200)}`;
          expect(r.status, where).toBeLessThan(500);
          expect(r.headers.get('x-request-id'), where).toBeTruthy();
          if (r.status >= 400) {
            expect(envelopeProblem(r), where).toBeNull();
            expect(digest(srv.ctx.db), `a refused request changed the database: ${where}`).toBe(before);
          }
          if (destructive && r.status < 300) victim = makeVictim();
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: !FULL, interruptAfterTimeLimit: pick(20_000, 60_000) },
      );
    });
  }

  test('arbitrary methods and paths: no 5xx and the envelope', async () => {
    const fx = await fixture(srv);
    const piece = fc.oneof(fc.constantFrom('v1', 'widget', 'sites', 'keys', 'tickets', 'messages', 'events', 'config', 'usage', 'signing-keys', 'rotate', fx.site.serviceId, fx.ticket.id), nasty.map(enc), rawSegment);
    const pathArb = fc.array(piece, { minLength: 0, maxLength: 6 }).map((p) => `/${p.join('/')}`);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'), pathArb, headersArb(fx, true), async (method, path, headers) => {
        const before = digest(srv.ctx.db);
        const r = await attempt(srv, { method, path, headers, body: method === 'GET' || method === 'HEAD' ? undefined : { message: 'x' } });
        if (!r) return;
        counters.badInputs++;
        expect(r.status, `${method} ${path}`).toBeLessThan(500);
        if (r.status >= 400 && method !== 'HEAD') {
          expect(envelopeProblem(r), `${method} ${path}`).toBeNull();
          expect(digest(srv.ctx.db)).toBe(before);
        }
      }),
      { numRuns: RUNS * 4, seed: SEED, endOnFailure: !FULL },
    );
    // Most samples must have reached the server, or the property proved little.
    expect(skipped, `${skipped} samples never left fetch`).toBeLessThan(RUNS * routes().length * 0.3);
  });

  test('raw requests fetch would never send (control bytes, bad names, huge headers, garbage): the envelope, and the server lives', async () => {
    const fx = await fixture(srv);
    const port = Number(new URL(srv.base).port);
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.constantFrom('\x00', '\x01', '\x7f', '\xff', 'a\rb', 'a\nb', ' leading', 'trailing ', '\t'),
      nasty,
    );
    const headerLine = fc.oneof(
      fc.tuple(fc.constantFrom('X-Parley-Key', 'Authorization', 'Origin', 'X-Visitor-Token', 'Content-Type', 'Idempotency-Key', 'X-Whatever'), bytes).map(([k, v]) => `${k}: ${v}`),
      fc.tuple(bytes, bytes).map(([k, v]) => `${k}: ${v}`),
      fc.constantFrom(`X-Big: ${'a'.repeat(20_000)}`, 'Content-Length: -1', 'Content-Length: 1e3', 'Content-Length: 5\r\nContent-Length: 6', 'Transfer-Encoding: chunked, gzip', 'Transfer-Encoding: chunked\r\nContent-Length: 3', 'Host:', ': novalue'),
    );
    const target = fc.oneof(
      fc.constantFrom(`/v1/widget/${fx.site.serviceId}/config`, `/v1/sites/${fx.site.serviceId}`, '/healthz', '*', 'http://evil.example/', `/${'p'.repeat(20_000)}`),
      bytes.map((b) => `/v1/widget/${b}`),
    );
    const request = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'BREW', 'get'), target, fc.array(headerLine, { maxLength: 4 }), fc.option(bytes, { nil: '' }))
        .map(([m, t, hs, body]) => `${m} ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${hs.map((h) => `${h}\r\n`).join('')}\r\n${body}`) },
      { weight: 1, arbitrary: bytes.map((b) => `${b}\r\n\r\n`) },
    );
    await fc.assert(
      fc.asyncProperty(request, async (text) => {
        counters.requests++;
        counters.badInputs++;
        const raw = await new Promise<string>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => socket.end(Buffer.from(text, 'latin1')));
          let got = '';
          socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
          socket.on('error', () => resolve(got));
          socket.on('close', () => resolve(got));
          setTimeout(() => socket.destroy(), 3_000);
        });
        if (raw === '') return; // closed without a word: allowed for bytes that are not HTTP at all
        const m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(raw);
        expect(m, `not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`).toBeTruthy();
        const status = Number(m![1]);
        const headers = new Headers();
        for (const line of m![2]!.split('\r\n')) {
          const i = line.indexOf(':');
          if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
        }
        let body = m![3]!;
        if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) body = body.replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n|\r\n0\r\n\r\n$/gi, '');
        const where = `${JSON.stringify(text.slice(0, 200))} -> ${raw.slice(0, 200)}`;
        expect(status, where).toBeLessThan(500);
        if (status >= 400) {
          let json: unknown = null;
          try {
            json = JSON.parse(body);
          } catch {
            json = null;
          }
          expect(envelopeProblem({ status, headers, json, text: body }), where).toBeNull();
        }
      }),
      { numRuns: RUNS * 4, seed: SEED, endOnFailure: !FULL },
    );
    const alive = await send(srv.base, 'GET', '/healthz');
    expect(alive.status).toBe(200);
  });

  noSecretsInLogsTest();
});
