// Idempotency-Key on widget POSTs (SPEC section 6): a retry with the same key and body within 24 h
// replays the first answer without a second row or charge (also after a dropped connection and
// between racing retries); another body is 409; the stored record holds no usable visitor token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, spendLedger, visitor } from '../test-helpers/widget.js';
import { canonicalJson } from '../http/idempotency.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ startAt: Date.UTC(2030, 0, 15, 6) });
});
afterAll(async () => {
  await t.close();
});

const count = (sql: string, ...args: unknown[]) => (t.ctx.db.prepare(sql).get(...args) as { n: number }).n;
const ticketsOf = (fx: Fixture) => count('SELECT COUNT(*) AS n FROM tickets t JOIN sites s ON s.id = t.site_id WHERE s.service_id = ?', fx.serviceId);
const messagesOf = (fx: Fixture) =>
  count('SELECT COUNT(*) AS n FROM messages m JOIN tickets t ON t.seq = m.ticket_seq JOIN sites s ON s.id = t.site_id WHERE s.service_id = ?', fx.serviceId);
const withKey = (key: string, extra: Record<string, string> = {}) => ({ headers: { 'Idempotency-Key': key, ...extra } });

describe('POST /tickets', () => {
  it('replays the first response (same status, ticket and visitor token) with no second ticket or charge', async () => {
    const fx = seed(t.ctx);
    const body = { message: 'Hello', visitor: { name: 'Ann', email: 'ann@example.org' } };
    const first = await visitor(t.base, fx, 'POST', '/tickets', { body, ...withKey('key-1') });
    expect(first.status).toBe(201);
    // The same body in another key order, with the key moved into the body: the same request.
    const again = await visitor(t.base, fx, 'POST', '/tickets', {
      key: '', body: { visitor: { email: 'ann@example.org', name: 'Ann' }, api_key: fx.pk.live, message: 'Hello' }, ...withKey('key-1'),
    });
    expect(again.status).toBe(201);
    expect(again.json).toEqual(first.json);
    expect(ticketsOf(fx)).toBe(1);
    expect(spendLedger(t.ctx.db, fx.serviceId).spent).toBe(10_000);
    // The replayed token works.
    const read = await visitor(t.base, fx, 'GET', `/tickets/${again.json.ticket.id}/messages`, { headers: { 'X-Visitor-Token': again.json.visitor_token } });
    expect(read.status).toBe(200);
  });

  it('the same key with another body is 409 idempotency_conflict and changes nothing', async () => {
    const fx = seed(t.ctx);
    expect((await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'one' }, ...withKey('k') })).status).toBe(201);
    const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'two' }, ...withKey('k') });
    expect([r.status, r.json.error.code]).toEqual([409, 'idempotency_conflict']);
    expect(ticketsOf(fx)).toBe(1);
    expect(spendLedger(t.ctx.db, fx.serviceId).spent).toBe(10_000);
  });

  it('keys are scoped by site, environment and route', async () => {
    const a = seed(t.ctx, { allowed_origins: ['https://shop.example'] });
    const b = seed(t.ctx, { allowed_origins: ['https://shop.example'] });
    const body = { message: 'same' };
    const one = await visitor(t.base, a, 'POST', '/tickets', { body, ...withKey('shared') });
    const two = await visitor(t.base, b, 'POST', '/tickets', { body, ...withKey('shared') });
    const three = await visitor(t.base, a, 'POST', '/tickets', { key: a.pk.test, body, ...withKey('shared') });
    expect([one.status, two.status, three.status]).toEqual([201, 201, 201]);
    expect(new Set([one.json.ticket.id, two.json.ticket.id, three.json.ticket.id]).size).toBe(3);
    const msg = await visitor(t.base, a, 'POST', `/tickets/${one.json.ticket.id}/messages`, {
      body, headers: { 'Idempotency-Key': 'shared', 'X-Visitor-Token': one.json.visitor_token },
    });
    expect(msg.status).toBe(201);
  });

  it('racing retries with one key store one ticket, charge once and all get the same answer', async () => {
    const fx = seed(t.ctx);
    const all = await Promise.all(
      Array.from({ length: 25 }, () => visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'race' }, ...withKey('racing') })),
    );
    expect(all.map((r) => r.status)).toEqual(Array(25).fill(201));
    expect(new Set(all.map((r) => r.text)).size).toBe(1);
    expect(ticketsOf(fx)).toBe(1);
    expect(spendLedger(t.ctx.db, fx.serviceId).spent).toBe(10_000);
  });

  it('a retry after a dropped connection gets the ticket the first attempt created', async () => {
    const fx = seed(t.ctx);
    const abort = new AbortController();
    const first = fetch(`${t.base}/v1/widget/${fx.serviceId}/tickets`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Parley-Key': fx.pk.live, Origin: fx.origin, 'Idempotency-Key': 'dropped' },
      body: JSON.stringify({ message: 'did this arrive?' }),
      signal: abort.signal,
    }).catch((e: unknown) => e);
    // The request reached the server and was written; the client gives up before reading the answer.
    for (let i = 0; i < 500 && ticketsOf(fx) === 0; i++) await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    const dropped = await first;
    if (dropped instanceof Response) await dropped.body?.cancel().catch(() => undefined);
    expect(ticketsOf(fx)).toBe(1);
    const retry = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'did this arrive?' }, ...withKey('dropped') });
    expect(retry.status).toBe(201);
    const stored = t.ctx.db.prepare('SELECT id FROM tickets t WHERE site_id = (SELECT id FROM sites WHERE service_id = ?)').all(fx.serviceId);
    expect(stored).toEqual([{ id: retry.json.ticket.id }]);
    expect(spendLedger(t.ctx.db, fx.serviceId).spent).toBe(10_000);
  });

  it('a replay is not refused by a cap reached meanwhile; an expired key (24 h) counts as new', async () => {
    const fx = seed(t.ctx, { daily_spend_cap_micros: 10_000 });
    const first = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'hi' }, ...withKey('old') });
    expect(first.status).toBe(201);
    const replay = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'hi' }, ...withKey('old') });
    expect(replay.status).toBe(201);
    expect(replay.json.ticket.id).toBe(first.json.ticket.id);
    t.clock.advance(24 * 60 * 60 * 1000 - 1);
    const late = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'changed' }, ...withKey('old') });
    expect(late.status).toBe(409);
    t.clock.advance(1);
    const fresh = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'changed' }, ...withKey('old') });
    expect(fresh.status, fresh.text).toBe(201);
    expect(fresh.json.ticket.id).not.toBe(first.json.ticket.id);
    expect(ticketsOf(fx)).toBe(2);
  });

  it('the stored record holds neither the visitor token nor the key in plaintext', async () => {
    const fx = seed(t.ctx);
    const key = 'a-very-recognisable-idempotency-key';
    const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'secret?' }, ...withKey(key) });
    const dump = JSON.stringify(t.ctx.db.prepare('SELECT scope, key, response FROM idempotency').all());
    expect(dump).not.toContain(r.json.visitor_token);
    expect(dump).not.toContain(key);
  });

  it('an Idempotency-Key must be 1 to 255 characters', async () => {
    const fx = seed(t.ctx);
    for (const key of ['', 'k'.repeat(256)]) {
      const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x' }, ...withKey(key) });
      expect([r.status, r.json.error.code]).toEqual([400, 'invalid_request']);
    }
    expect((await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x' }, ...withKey('k'.repeat(255)) })).status).toBe(201);
    expect(ticketsOf(fx)).toBe(1);
  });
});

describe('POST /tickets/:id/messages', () => {
  it('replays the message with no second row or charge; another body is 409', async () => {
    const fx = seed(t.ctx);
    const c = await createTicket(t.base, fx);
    const post = (message: string, key: string) =>
      visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message }, headers: { 'Idempotency-Key': key, 'X-Visitor-Token': c.visitor_token } });
    const results = await Promise.all([post('retry me', 'm1'), post('retry me', 'm1'), post('retry me', 'm1')]);
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(new Set(results.map((r) => r.json.message.id)).size).toBe(1);
    expect(messagesOf(fx)).toBe(2);
    expect(spendLedger(t.ctx.db, fx.serviceId).spent).toBe(11_000);
    const conflict = await post('something else', 'm1');
    expect([conflict.status, conflict.json.error.code]).toEqual([409, 'idempotency_conflict']);
    expect(messagesOf(fx)).toBe(2);
  });

  it('a replay still needs the visitor token', async () => {
    const fx = seed(t.ctx);
    const c = await createTicket(t.base, fx);
    const ok = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: 'x' }, headers: { 'Idempotency-Key': 'z', 'X-Visitor-Token': c.visitor_token } });
    expect(ok.status).toBe(201);
    const other = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: 'x' }, headers: { 'Idempotency-Key': 'z', 'X-Visitor-Token': 'vt_guess' } });
    expect(other.status).toBe(404);
  });
});

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson({ a: '1' })).not.toBe(canonicalJson({ a: 1 }));
  });
});
