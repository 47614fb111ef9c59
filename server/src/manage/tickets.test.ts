// Tickets and usage of the management API over real HTTP (SPEC section 7): newest-first lists with
// opaque cursors (no duplicates or gaps while tickets are being added), a ticket with all its
// messages, agent replies (not charged, delivered to live streams), open/close, usage per day; all
// within the key's environment and site.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeedEvent } from '../events.js';
import { addCharge, countRefusal } from '../db/meters.js';
import type { DB } from '../db/open.js';
import { findSiteByServiceId } from '../db/sites.js';
import { findTicketById, insertMessage, insertTicket } from '../db/tickets.js';
import { call, seed, startTestServer, type CallResult, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { newId } from '../util.js';

let t: TestServer;
let f: Fixture;
let sibling: Fixture; // another site of another workspace
beforeAll(async () => {
  t = await startTestServer();
  f = seed(t.ctx);
  sibling = seed(t.ctx, {}, 'Sibling');
});
afterAll(async () => {
  await t.close();
});

type Json = Record<string, any>;

function expectError(r: { status: number; json: any }, status: number, code: string): Json {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.json.error.code).toBe(code);
  return r.json.error;
}

/** A ticket with `messages` visitor messages, written through the repositories in one transaction. */
function addTicket(db: DB, serviceId: string, environment: 'live' | 'test', o: { messages?: number; status?: 'open' | 'closed'; at?: number } = {}): string {
  const site = findSiteByServiceId(db, serviceId)!;
  const now = o.at ?? t.clock.now;
  return db.transaction(() => {
    const ticket = insertTicket(db, {
      id: newId('tkt'), site_id: site.id, environment, status: o.status ?? 'open', visitor_token_hash: randomBytes(32),
      visitor_name: 'Vera', visitor_email: 'vera@example.com', user_id: null, user_name: null, user_email: null,
      page_url: 'https://shop.example/cart', metadata: JSON.stringify({ plan: 'pro' }), created_at: now, updated_at: now,
    });
    for (let i = 0; i < (o.messages ?? 1); i++) {
      insertMessage(db, { id: newId('msg'), ticket_seq: ticket.seq, author: 'visitor', author_name: null, body: `m${i}`, created_at: now });
    }
    return ticket.id;
  }).immediate();
}

const tickets = (sid: string) => `/v1/sites/${sid}/tickets`;

describe('GET /v1/sites/:sid/tickets', () => {
  let site: string;
  beforeAll(async () => {
    const r = await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: `list-${process.pid}`, name: 'L', allowed_origins: [] } });
    site = r.json.site.service_id;
  });

  it('is empty at first', async () => {
    const r = await call(t.base, 'GET', tickets(site), { key: f.sk.live });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ tickets: [], next_cursor: null });
  });

  it('lists newest first, 50 by default, with the SPEC ticket shape', async () => {
    const ids = Array.from({ length: 55 }, () => addTicket(t.ctx.db, site, 'live'));
    const r = await call(t.base, 'GET', tickets(site), { key: f.sk.live });
    expect(r.json.tickets).toHaveLength(50);
    expect(r.json.tickets.map((x: Json) => x.id)).toEqual(ids.slice(-50).reverse());
    expect(typeof r.json.next_cursor).toBe('string');
    expect(r.json.tickets[0]).toEqual({
      id: ids[54], status: 'open', environment: 'live', visitor: { name: 'Vera', email: 'vera@example.com' }, user: null,
      page_url: 'https://shop.example/cart', metadata: { plan: 'pro' },
      created_at: new Date(t.clock.now).toISOString(), updated_at: new Date(t.clock.now).toISOString(),
    });
    const rest = await call(t.base, 'GET', `${tickets(site)}?cursor=${r.json.next_cursor}`, { key: f.sk.live });
    expect(rest.json.tickets.map((x: Json) => x.id)).toEqual(ids.slice(0, 5).reverse());
    expect(rest.json.next_cursor).toBeNull();
  });

  it('takes a cursor only on the list that returned it: not edited, made up, or from another list, site, workspace, environment or status filter', async () => {
    for (let i = 0; i < 3; i++) addTicket(t.ctx.db, site, 'live');
    for (let i = 0; i < 3; i++) addTicket(t.ctx.db, site, 'test');
    const page = await call(t.base, 'GET', `${tickets(site)}?limit=1`, { key: f.sk.live });
    const cursor = page.json.next_cursor as string;
    expect(cursor).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{16}$/);
    expect((await call(t.base, 'GET', `${tickets(site)}?limit=1&cursor=${cursor}`, { key: f.sk.live })).status).toBe(200);
    const [position, mac] = cursor.split('.') as [string, string];
    const refused = [
      [`${tickets(site)}?cursor=${(parseInt(position, 36) + 1).toString(36)}.${mac}`, f.sk.live], // another position
      [`${tickets(site)}?cursor=${position}.${'A'.repeat(16)}`, f.sk.live], // made up
      [`${tickets(site)}?cursor=${Buffer.from('c1:1000').toString('base64url')}`, f.sk.live], // the old form
      [`${tickets(site)}?cursor=0${cursor}`, f.sk.live], // the same position spelt with a leading zero
      [`${tickets(site)}?cursor=${cursor}`, f.sk.test], // another environment
      [`/v1/keys?cursor=${cursor}`, f.sk.live], // another list
      [`/v1/sites?cursor=${cursor}`, f.sk.live],
      [`${tickets(f.serviceId)}?cursor=${cursor}`, f.sk.live], // another site
      [`${tickets(sibling.serviceId)}?cursor=${cursor}`, sibling.sk.live], // another workspace
      [`${tickets(site)}?status=open&cursor=${cursor}`, f.sk.live], // another filter of the same list
      [`${tickets(site)}?status=closed&cursor=${cursor}`, f.sk.live],
    ] as const;
    for (const [path, key] of refused) {
      const r = await call(t.base, 'GET', path, { key });
      expect([r.status, r.json.error?.code, path]).toEqual([400, 'invalid_request', path]);
      expect(r.json.error.issues).toEqual([{ path: 'cursor', message: 'is not a cursor returned by this list' }]);
    }
    // A cursor of one filter pages that filter.
    const open = await call(t.base, 'GET', `${tickets(site)}?status=open&limit=1`, { key: f.sk.live });
    expect((await call(t.base, 'GET', `${tickets(site)}?status=open&cursor=${open.json.next_cursor}`, { key: f.sk.live })).status).toBe(200);
    expect((await call(t.base, 'GET', `${tickets(site)}?cursor=${open.json.next_cursor}`, { key: f.sk.live })).status).toBe(400);
    // A cursor of /v1/keys does not page /v1/sites either.
    const keys = await call(t.base, 'GET', '/v1/keys?limit=1', { key: f.sk.live });
    expect(keys.json.next_cursor).toEqual(expect.any(String));
    expect((await call(t.base, 'GET', `/v1/sites?cursor=${keys.json.next_cursor}`, { key: f.sk.live })).status).toBe(400);
  });

  it("refuses a deleted site's cursor on the site that gets its internal id next", async () => {
    const make = async (id: string) => (await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: id, name: 'R', allowed_origins: [] } })).json.site.service_id as string;
    const first = await make(`reuse-a-${process.pid}`);
    for (let i = 0; i < 3; i++) addTicket(t.ctx.db, first, 'live');
    const cursor = (await call(t.base, 'GET', `${tickets(first)}?limit=1`, { key: f.sk.live })).json.next_cursor;
    const id = findSiteByServiceId(t.ctx.db, first)!.id;
    expect((await call(t.base, 'DELETE', `/v1/sites/${first}`, { key: f.sk.live })).status).toBe(204);
    t.clock.advance(1);
    const second = await make(`reuse-b-${process.pid}`);
    expect(findSiteByServiceId(t.ctx.db, second)!.id).toBe(id); // SQLite gave the freed id out again
    const r = await call(t.base, 'GET', `${tickets(second)}?cursor=${cursor}`, { key: f.sk.live });
    expect([r.status, r.json.error?.code]).toEqual([400, 'invalid_request']);
  });

  it('filters by status, across pages', async () => {
    const closed = Array.from({ length: 5 }, () => addTicket(t.ctx.db, site, 'live', { status: 'closed' }));
    addTicket(t.ctx.db, site, 'live');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await call(t.base, 'GET', `${tickets(site)}?status=closed&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { key: f.sk.live });
      expect(r.json.tickets.every((x: Json) => x.status === 'closed')).toBe(true);
      seen.push(...r.json.tickets.map((x: Json) => x.id));
      cursor = r.json.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...closed].reverse());
  });

  it.each([
    ['limit=0'], ['limit=101'], ['limit=abc'], ['limit=1.5'], ['status=pending'], ['cursor=bm90LWEtY3Vyc29y'], ['cursor='],
    ['colour=red'], ['limit=1&limit=2'],
    // Numbers only in plain decimal: these would read as 10, 16, 5, 5 and 0.
    ['limit=1e1'], ['limit=0x10'], ['limit=%205'], ['limit=5.0'], ['limit='], ['limit=05'],
  ])('400 invalid_request for ?%s', async (qs) => {
    expectError(await call(t.base, 'GET', `${tickets(site)}?${qs}`, { key: f.sk.live }), 400, 'invalid_request');
  });

  it('pages over a list that grows meanwhile: no duplicates, no gaps', async () => {
    const { service_id: s } = (await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: `grow-${process.pid}`, name: 'G', allowed_origins: [] } })).json.site;
    const before = Array.from({ length: 30 }, () => addTicket(t.ctx.db, s, 'live'));
    // A second server on the same database file adds tickets through its own connection while we page.
    const writer = await startTestServer({ dbPath: t.dbPath, dir: t.dir, startAt: t.clock.now });
    try {
      const seen: string[] = [];
      const added: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const [r]: [CallResult, void] = await Promise.all([
          call(t.base, 'GET', `${tickets(s)}?limit=4${cursor ? `&cursor=${cursor}` : ''}`, { key: f.sk.live }),
          (async () => {
            for (let i = 0; i < 3; i++) added.push(addTicket(writer.ctx.db, s, 'live'));
          })(),
        ]);
        expect(r.status).toBe(200);
        if (pages === 0) {
          // The first page may or may not include tickets added while it was served; later pages never do.
          const firstOld = r.json.tickets.findIndex((x: Json) => !added.includes(x.id));
          seen.push(...r.json.tickets.slice(firstOld).map((x: Json) => x.id));
        } else {
          seen.push(...r.json.tickets.map((x: Json) => x.id));
        }
        cursor = r.json.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBeGreaterThan(5);
      expect(added.length).toBeGreaterThan(15);
      expect(seen).toEqual([...before].reverse());
    } finally {
      await writer.close();
    }
  });
});

describe('GET /v1/sites/:sid/tickets/:id', () => {
  it('returns the ticket with all its messages, oldest first (beyond one internal page)', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live', { messages: 1203 });
    const r = await call(t.base, 'GET', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live });
    expect(r.status).toBe(200);
    expect(Object.keys(r.json).sort()).toEqual(['messages', 'ticket']);
    expect(r.json.ticket.id).toBe(id);
    expect(r.json.messages).toHaveLength(1203);
    expect(r.json.messages.map((m: Json) => m.body)).toEqual(Array.from({ length: 1203 }, (_, i) => `m${i}`));
    expect(r.json.messages[0]).toEqual({
      id: expect.stringMatching(/^msg_/), ticket_id: id, author: 'visitor', author_name: null, body: 'm0', created_at: expect.any(String),
    });
  });

  it('is 404 for an unknown id, a ticket of another site, and another site in the path', async () => {
    const mine = addTicket(t.ctx.db, f.serviceId, 'live');
    const theirs = addTicket(t.ctx.db, sibling.serviceId, 'live');
    expectError(await call(t.base, 'GET', `${tickets(f.serviceId)}/tkt_nope`, { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'GET', `${tickets(f.serviceId)}/${theirs}`, { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'GET', `${tickets(sibling.serviceId)}/${theirs}`, { key: f.sk.live }), 404, 'not_found');
    expectError(await call(t.base, 'GET', `${tickets(sibling.serviceId)}/${mine}`, { key: sibling.sk.live }), 404, 'not_found');
  });
});

describe('environments', () => {
  it('a test key never sees or changes live tickets, and the reverse', async () => {
    const live = addTicket(t.ctx.db, f.serviceId, 'live');
    const test = addTicket(t.ctx.db, f.serviceId, 'test');
    const listTest = await call(t.base, 'GET', `${tickets(f.serviceId)}?limit=100`, { key: f.sk.test });
    expect(listTest.json.tickets.every((x: Json) => x.environment === 'test')).toBe(true);
    expect(listTest.json.tickets.map((x: Json) => x.id)).toContain(test);
    const listLive = await call(t.base, 'GET', `${tickets(f.serviceId)}?limit=100`, { key: f.sk.live });
    expect(listLive.json.tickets.map((x: Json) => x.id)).not.toContain(test);
    for (const [key, id] of [[f.sk.test, live], [f.sk.live, test]] as const) {
      expectError(await call(t.base, 'GET', `${tickets(f.serviceId)}/${id}`, { key }), 404, 'not_found');
      expectError(await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key, body: { message: 'x' } }), 404, 'not_found');
      expectError(await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key, body: { status: 'closed' } }), 404, 'not_found');
    }
    expect(findTicketById(t.ctx.db, live)!.status).toBe('open');
    expect((t.ctx.db.prepare('SELECT COUNT(*) AS n FROM messages m JOIN tickets k ON k.seq = m.ticket_seq WHERE k.id IN (?, ?)').get(live, test) as Json).n).toBe(2);
  });
});

describe('POST /v1/sites/:sid/tickets/:id/messages', () => {
  it('adds an agent reply, delivered to live streams, not charged', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    const ticket = findTicketById(t.ctx.db, id)!;
    const got: FeedEvent[] = [];
    const unsubscribe = t.ctx.events.subscribe(ticket.seq, (e) => got.push(e));
    try {
      // Let the feed's first timed poll pass: from then on only notify() wakes it for local writes.
      await new Promise((res) => setTimeout(res, 400));
      t.clock.advance(1000);
      const r = await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: f.sk.live, body: { message: '  We are on it.  ', author_name: 'Sam' } });
      expect(r.status, r.text).toBe(201);
      expect(r.json).toEqual({
        message: { id: expect.stringMatching(/^msg_/), ticket_id: id, author: 'agent', author_name: 'Sam', body: 'We are on it.', created_at: new Date(t.clock.now).toISOString() },
      });
      const deadline = Date.now() + 1000;
      while (!got.some((e) => e.kind === 'message' && e.message.id === r.json.message.id) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      expect(got.some((e) => e.kind === 'message' && e.message.id === r.json.message.id)).toBe(true);
      const full = await call(t.base, 'GET', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live });
      expect(full.json.messages.map((m: Json) => m.author)).toEqual(['visitor', 'agent']);
      expect(full.json.ticket.updated_at).toBe(new Date(t.clock.now).toISOString());
      const usage = await call(t.base, 'GET', `/v1/sites/${f.serviceId}/usage?days=1`, { key: f.sk.live });
      expect(usage.json.usage[0]).toMatchObject({ spend_micros: 0, messages: 0 });
    } finally {
      unsubscribe();
    }
  });

  it('leaves a closed ticket closed and takes author_name as optional', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live', { status: 'closed' });
    const r = await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: f.sk.live, body: { message: 'Closing note' } });
    expect(r.json.message.author_name).toBeNull();
    expect(findTicketById(t.ctx.db, id)!.status).toBe('closed');
  });

  it.each([
    ['an empty message', { message: '   ' }, 'message'],
    ['a message over 5,000 characters', { message: 'x'.repeat(5001) }, 'message'],
    ['no message', {}, 'message'],
    ['an unknown field', { message: 'x', author: 'visitor' }, 'author'],
    ['a long author name', { message: 'x', author_name: 'a'.repeat(101) }, 'author_name'],
  ])('400 invalid_request for %s', async (_w, body, path) => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    const err = expectError(await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: f.sk.live, body }), 400, 'invalid_request');
    expect(err.issues.map((i: Json) => i.path)).toContain(path);
  });

  it('takes exactly 5,000 characters', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    expect((await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: f.sk.live, body: { message: 'y'.repeat(5000) } })).status).toBe(201);
  });
});

describe('PATCH /v1/sites/:sid/tickets/:id', () => {
  it('closes and reopens, recording one status event per change', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    const seq = findTicketById(t.ctx.db, id)!.seq;
    const events = () => (t.ctx.db.prepare("SELECT COUNT(*) AS n FROM ticket_events WHERE ticket_seq = ? AND kind = 'status'").get(seq) as Json).n;
    t.clock.advance(1000);
    const r = await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live, body: { status: 'closed' } });
    expect(r.status).toBe(200);
    expect(r.json.ticket).toMatchObject({ id, status: 'closed', updated_at: new Date(t.clock.now).toISOString() });
    expect(events()).toBe(1);
    const same = await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live, body: { status: 'closed' } });
    expect(same.json.ticket.status).toBe('closed');
    expect(events()).toBe(1);
    expect((await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live, body: { status: 'open' } })).json.ticket.status).toBe('open');
    expect(events()).toBe(2);
  });

  it('refuses other statuses and fields', async () => {
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    for (const body of [{ status: 'archived' }, {}, { status: 'closed', priority: 'high' }]) {
      expectError(await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: f.sk.live, body }), 400, 'invalid_request');
    }
    expect(findTicketById(t.ctx.db, id)!.status).toBe('open');
  });
});

describe('scopes on ticket routes', () => {
  it('read lists and reads but cannot write; write can reply and close', async () => {
    const mk = async (scopes: string[]) => (await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 's', scopes } })).json.key.secret as string;
    const read = await mk(['read']);
    const write = await mk(['write']);
    const id = addTicket(t.ctx.db, f.serviceId, 'live');
    expect((await call(t.base, 'GET', tickets(f.serviceId), { key: read })).status).toBe(200);
    expect((await call(t.base, 'GET', `${tickets(f.serviceId)}/${id}`, { key: read })).status).toBe(200);
    expect((await call(t.base, 'GET', `/v1/sites/${f.serviceId}/usage`, { key: read })).status).toBe(200);
    expectError(await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: read, body: { message: 'x' } }), 403, 'insufficient_scope');
    expectError(await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: read, body: { status: 'closed' } }), 403, 'insufficient_scope');
    expect((await call(t.base, 'POST', `${tickets(f.serviceId)}/${id}/messages`, { key: write, body: { message: 'x' } })).status).toBe(201);
    expect((await call(t.base, 'PATCH', `${tickets(f.serviceId)}/${id}`, { key: write, body: { status: 'closed' } })).status).toBe(200);
    // Write without read cannot list.
    expectError(await call(t.base, 'GET', tickets(f.serviceId), { key: write }), 403, 'insufficient_scope');
  });
});

describe('GET /v1/sites/:sid/usage', () => {
  it('reports per UTC day, oldest first, in the key environment only', async () => {
    const { service_id: s } = (await call(t.base, 'POST', '/v1/sites', { key: f.sk.live, body: { service_id: `use-${process.pid}`, name: 'U', allowed_origins: [] } })).json.site;
    const siteId = findSiteByServiceId(t.ctx.db, s)!.id;
    const now = t.clock.now;
    const yesterday = now - 86_400_000;
    t.ctx.db.transaction(() => {
      addCharge(t.ctx.db, { siteId, environment: 'live', now: yesterday, micros: 10_000, tickets: 1, messages: 1 });
      addCharge(t.ctx.db, { siteId, environment: 'live', now, micros: 1_000, tickets: 0, messages: 1 });
      addCharge(t.ctx.db, { siteId, environment: 'test', now, micros: 99, tickets: 9, messages: 9 });
      countRefusal(t.ctx.db, siteId, 'live', 'rate_limit_exceeded', now);
      countRefusal(t.ctx.db, siteId, 'live', 'rate_limit_exceeded', now);
      countRefusal(t.ctx.db, siteId, 'live', 'spend_cap_exceeded', now);
    })();
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const r = await call(t.base, 'GET', `/v1/sites/${s}/usage?days=3`, { key: f.sk.live });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      usage: [
        { date: day(now - 2 * 86_400_000), spend_micros: 0, tickets: 0, messages: 0, refused: {} },
        { date: day(yesterday), spend_micros: 10_000, tickets: 1, messages: 1, refused: {} },
        { date: day(now), spend_micros: 1_000, tickets: 0, messages: 1, refused: { rate_limit_exceeded: 2, spend_cap_exceeded: 1 } },
      ],
    });
    const test = await call(t.base, 'GET', `/v1/sites/${s}/usage?days=1`, { key: f.sk.test });
    expect(test.json.usage).toEqual([{ date: day(now), spend_micros: 99, tickets: 9, messages: 9, refused: {} }]);
    expect((await call(t.base, 'GET', `/v1/sites/${s}/usage`, { key: f.sk.live })).json.usage).toHaveLength(30);
    expect((await call(t.base, 'GET', `/v1/sites/${s}/usage?days=90`, { key: f.sk.live })).json.usage).toHaveLength(90);
  });

  it.each([['days=0'], ['days=91'], ['days=x'], ['day=3'], ['days=1e1'], ['days=+7'], ['days=7.0']])('400 invalid_request for ?%s', async (qs) => {
    expectError(await call(t.base, 'GET', `/v1/sites/${f.serviceId}/usage?${qs}`, { key: f.sk.live }), 400, 'invalid_request');
  });

  it('is 404 for a site of another workspace', async () => {
    expectError(await call(t.base, 'GET', `/v1/sites/${sibling.serviceId}/usage`, { key: f.sk.live }), 404, 'not_found');
  });
});
