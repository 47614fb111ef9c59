// Spend caps (SPEC section 5): per-site prices in micro-dollars, a daily cap per site and environment
// that resets at 00:00 UTC, 402 with resets_at, charge and action in one transaction so that the
// cap holds exactly under concurrency and the stored spend always equals the stored actions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startTestServer, type TestServer } from '../test-helpers/harness.js';
import { createTicket, spendLedger, visitor } from '../test-helpers/widget.js';

const NOON = Date.UTC(2030, 0, 15, 12);
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ startAt: NOON });
});
afterAll(async () => {
  await t.close();
});

const meter = (serviceId: string, environment = 'live') =>
  t.ctx.db.prepare(`SELECT day, spent_micros, tickets, messages FROM spend_meters m JOIN sites s ON s.id = m.site_id
    WHERE s.service_id = ? AND m.environment = ? ORDER BY day`).all(serviceId, environment);

describe('prices', () => {
  it('charges the defaults: $0.01 per ticket, $0.001 per message', async () => {
    const fx = seed(t.ctx);
    const c = await createTicket(t.base, fx);
    await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: 'more' }, headers: { 'X-Visitor-Token': c.visitor_token } });
    expect(meter(fx.serviceId)).toEqual([{ day: '2030-01-15', spent_micros: 11_000, tickets: 1, messages: 2 }]);
  });

  it("charges the site's own prices, per environment", async () => {
    const fx = seed(t.ctx, { prices: { 'ticket.create': 300, 'message.create': 7 } });
    const c = await createTicket(t.base, fx, { message: 'hi' }, { key: fx.pk.test });
    for (let i = 0; i < 3; i++) {
      const r = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { key: fx.pk.test, body: { message: `m${i}` }, headers: { 'X-Visitor-Token': c.visitor_token } });
      expect(r.status).toBe(201);
    }
    expect(meter(fx.serviceId, 'test')).toEqual([{ day: '2030-01-15', spent_micros: 321, tickets: 1, messages: 4 }]);
    expect(meter(fx.serviceId, 'live')).toEqual([]);
  });
});

describe('the daily cap', () => {
  it('refuses the action that would pass it with 402 and resets_at, and stores nothing for it', async () => {
    const fx = seed(t.ctx, { daily_spend_cap_micros: 25_000 });
    const a = await createTicket(t.base, fx);
    await createTicket(t.base, fx);
    const post = (message: string) =>
      visitor(t.base, fx, 'POST', `/tickets/${a.ticket.id}/messages`, { body: { message }, headers: { 'X-Visitor-Token': a.visitor_token } });
    for (let i = 0; i < 5; i++) expect((await post(`m${i}`)).status).toBe(201);
    const refused = await post('one too many');
    expect(refused.status).toBe(402);
    expect(refused.json.error).toMatchObject({ code: 'spend_cap_exceeded', resets_at: '2030-01-16T00:00:00.000Z' });
    expect(refused.headers.get('access-control-allow-origin')).toBe(fx.origin);
    const ticket = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'new' } });
    expect([ticket.status, ticket.json.error.code]).toEqual([402, 'spend_cap_exceeded']);
    expect(meter(fx.serviceId)).toEqual([{ day: '2030-01-15', spent_micros: 25_000, tickets: 2, messages: 7 }]);
    const ledger = spendLedger(t.ctx.db, fx.serviceId);
    expect([ledger.tickets, ledger.visitorMessages]).toEqual([2, 7]);
    // The test environment has its own meter.
    expect((await createTicket(t.base, fx, { message: 'test' }, { key: fx.pk.test })).ticket.environment).toBe('test');
  });

  it('a cap of zero refuses everything that costs something', async () => {
    const fx = seed(t.ctx, { daily_spend_cap_micros: 0 });
    expect((await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x' } })).status).toBe(402);
    const free = seed(t.ctx, { daily_spend_cap_micros: 0, prices: { 'ticket.create': 0, 'message.create': 0 } });
    expect((await visitor(t.base, free, 'POST', '/tickets', { body: { message: 'x' } })).status).toBe(201);
  });

  it('500 concurrent ticket creations against a cap allowing 100 create exactly 100', async () => {
    const fx = seed(t.ctx, { daily_spend_cap_micros: 100 * 10_000, rate_limit_per_minute: 100_000 });
    const all = await Promise.all(
      Array.from({ length: 500 }, (_, i) => visitor(t.base, fx, 'POST', '/tickets', { body: { message: `race ${i}` } })),
    );
    const statuses = all.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(100);
    expect(statuses.filter((s) => s === 402)).toHaveLength(400);
    const ledger = spendLedger(t.ctx.db, fx.serviceId);
    expect(ledger.tickets).toBe(100);
    expect(ledger.spent).toBe(ledger.tickets * ledger.ticketPrice + (ledger.visitorMessages - ledger.tickets) * ledger.messagePrice);
    expect(ledger.spent).toBe(1_000_000);
    expect([ledger.meterTickets, ledger.meterMessages]).toEqual([100, 100]);
  });
});

describe('UTC days', () => {
  it('the cap resets at 00:00 UTC', async () => {
    const night = await startTestServer({ startAt: Date.UTC(2030, 5, 30, 23, 59, 50) });
    try {
      const fx = seed(night.ctx, { daily_spend_cap_micros: 20_000 });
      await createTicket(night.base, fx);
      await createTicket(night.base, fx);
      const refused = await visitor(night.base, fx, 'POST', '/tickets', { body: { message: 'late' } });
      expect(refused.status).toBe(402);
      expect(refused.json.error.resets_at).toBe('2030-07-01T00:00:00.000Z');
      night.clock.set(Date.UTC(2030, 5, 30, 23, 59, 59, 999));
      expect((await visitor(night.base, fx, 'POST', '/tickets', { body: { message: 'still late' } })).status).toBe(402);
      night.clock.set(Date.UTC(2030, 6, 1));
      expect((await visitor(night.base, fx, 'POST', '/tickets', { body: { message: 'a new day' } })).status).toBe(201);
      const days = night.ctx.db.prepare('SELECT day, spent_micros, tickets FROM spend_meters ORDER BY day').all();
      expect(days).toEqual([
        { day: '2030-06-30', spent_micros: 20_000, tickets: 2 },
        { day: '2030-07-01', spent_micros: 10_000, tickets: 1 },
      ]);
    } finally {
      await night.close();
    }
  });
});
