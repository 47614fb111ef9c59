// Live streams and SQLite's reused row ids: a stream of a deleted site's ticket never receives the
// messages of the ticket that gets its row id next (any workspace), and pruning old events never
// makes the feed number new events below what it has already read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTicketById } from '../db/tickets.js';
import { runMaintenance } from '../maintenance.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, openStream, streamHeaders, type SseEvent } from '../test-helpers/widget.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.close();
});

const eventsUrl = (f: Fixture, id: string) => `${t.base}/v1/widget/${f.serviceId}/tickets/${id}/events`;
const bodies = (events: SseEvent[]) => events.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { body: string }).body);
const reply = (f: Fixture, id: string, message: string) =>
  call(t.base, 'POST', `/v1/sites/${f.serviceId}/tickets/${id}/messages`, { key: f.sk.live, body: { message } });

describe('a stream whose ticket was deleted with its site', () => {
  it("ends instead of showing the messages of another workspace's ticket that reuses the row id", async () => {
    const a = seed(t.ctx, { rate_limit_per_minute: 1000 }, 'Workspace A');
    const mine = await createTicket(t.base, a, { message: 'A private' });
    const seqA = findTicketById(t.ctx.db, mine.ticket.id)!.seq;
    const s = await openStream(eventsUrl(a, mine.ticket.id), streamHeaders(a, mine.visitor_token));
    try {
      expect(s.status).toBe(200);
      const del = await call(t.base, 'DELETE', `/v1/sites/${a.serviceId}`, { key: a.sk.live });
      expect(del.status, del.text).toBeLessThan(300);

      const b = seed(t.ctx, { rate_limit_per_minute: 1000 }, 'Workspace B');
      const theirs = await createTicket(t.base, b, { message: 'B private' });
      // The premise: SQLite handed B's ticket the freed row id (else this test proves nothing).
      expect(findTicketById(t.ctx.db, theirs.ticket.id)!.seq).toBe(seqA);
      const r = await reply(b, theirs.ticket.id, 'B agent reply');
      expect(r.status, r.text).toBe(201);

      await Promise.race([s.ended, new Promise((_, no) => setTimeout(() => no(new Error('stream still open')), 2000))]);
      expect(bodies(s.events)).toEqual([]);
      expect(s.lines.join('\n')).not.toContain('B ');
    } finally {
      s.close();
    }
  });
});

describe('pruning old events', () => {
  it('keeps the newest, so a stream open across a prune still gets the next reply', async () => {
    const fx = seed(t.ctx, { rate_limit_per_minute: 1000 });
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    try {
      for (let i = 0; i < 3; i++) expect((await reply(fx, c.ticket.id, `early ${i}`)).status).toBe(201);
      await s.until((e) => bodies(e).includes('early 2'), 'the early replies', 2000);
      const max = () => (t.ctx.db.prepare('SELECT MAX(seq) AS m, COUNT(*) AS n FROM ticket_events').get() as { m: number; n: number });
      const before = max();

      t.clock.advance(2 * 60 * 60_000);
      expect(runMaintenance(t.ctx)).toBeGreaterThan(0);
      expect(max()).toEqual({ m: before.m, n: 1 });

      expect((await reply(fx, c.ticket.id, 'after the prune')).status).toBe(201);
      await s.until((e) => bodies(e).includes('after the prune'), 'the reply after the prune', 2000);
      expect(max().m).toBe(before.m + 1);
    } finally {
      s.close();
    }
  });
});
