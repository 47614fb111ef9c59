// The live event stream (SPEC section 6): agent replies and status changes reach an open stream
// within a second, whichever connection wrote them; Last-Event-ID resumes with no gap and no
// repeat; heartbeats; a per-site cap on open streams; streams end when the server drains.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.js';
import { findTicketById, insertMessage } from '../db/tickets.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, openStream, streamHeaders, visitor, type SseEvent } from '../test-helpers/widget.js';
import { newId } from '../util.js';

let t: TestServer;
let fx: Fixture;
beforeAll(async () => {
  t = await startTestServer({ limits: { heartbeatMs: 100, streamsPerSite: 3 } });
  fx = seed(t.ctx, { rate_limit_per_minute: 10_000 });
});
afterAll(async () => {
  await t.close();
});

const eventsUrl = (f: Fixture, id: string, q = '') => `${t.base}/v1/widget/${f.serviceId}/tickets/${id}/events${q}`;
const messages = (events: SseEvent[]) => events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as { id: string; body: string; author: string });
const reply = (f: Fixture, id: string, message: string) =>
  call(t.base, 'POST', `/v1/sites/${f.serviceId}/tickets/${id}/messages`, { key: f.sk.live, body: { message } });

describe('a stream', () => {
  it('is text/event-stream, uncached and unbuffered, with CORS for the allowed origin and a retry hint first', async () => {
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    try {
      expect(s.status).toBe(200);
      expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(s.headers.get('cache-control')).toBe('no-store');
      expect(s.headers.get('x-accel-buffering')).toBe('no');
      expect(s.headers.get('access-control-allow-origin')).toBe(fx.origin);
      expect(s.headers.get('ratelimit-policy')).toMatch(/^"site";/);
      const until = Date.now() + 3000;
      while (s.lines.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(s.lines[0]).toMatch(/^retry: \d+$/);
    } finally {
      s.close();
    }
  });

  it('delivers an agent reply from the management API within one second, as a message event with its id', async () => {
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    try {
      const started = Date.now();
      const r = await reply(fx, c.ticket.id, 'Hello from support');
      expect(r.status, r.text).toBe(201);
      await s.until((e) => messages(e).some((m) => m.body === 'Hello from support'), 'the reply', 1000);
      expect(Date.now() - started).toBeLessThan(1000);
      const ev = s.events.find((e) => e.event === 'message')!;
      expect(ev.id).toBe(r.json.message.id);
      expect(JSON.parse(ev.data)).toEqual(r.json.message);
    } finally {
      s.close();
    }
  });

  it('delivers a reply written by another database connection (another process) within one second', async () => {
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    const other = openDatabase(t.dbPath);
    try {
      const seq = findTicketById(other, c.ticket.id)!.seq;
      const started = Date.now();
      other.transaction(() => insertMessage(other, {
        id: newId('msg'), ticket_seq: seq, author: 'agent', author_name: 'Elsewhere', body: 'written elsewhere', created_at: Date.now(),
      })).immediate();
      await s.until((e) => messages(e).some((m) => m.body === 'written elsewhere'), 'the reply', 1000);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      other.close();
      s.close();
    }
  });

  it("sends status events, and the visitor's own messages", async () => {
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    try {
      const closed = await call(t.base, 'PATCH', `/v1/sites/${fx.serviceId}/tickets/${c.ticket.id}`, { key: fx.sk.live, body: { status: 'closed' } });
      expect(closed.status, closed.text).toBe(200);
      await s.until((e) => e.some((x) => x.event === 'status'), 'the status event');
      expect(JSON.parse(s.events.find((x) => x.event === 'status')!.data)).toEqual({ status: 'closed' });
      await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: 'reopen please' }, headers: { 'X-Visitor-Token': c.visitor_token } });
      await s.until((e) => messages(e).some((m) => m.body === 'reopen please'), 'the visitor message');
      const statuses = s.events.filter((x) => x.event === 'status').map((x) => JSON.parse(x.data).status);
      expect(statuses).toEqual(['closed', 'open']);
    } finally {
      s.close();
    }
  });

  it('sends a heartbeat comment every heartbeatMs', async () => {
    const c = await createTicket(t.base, fx);
    const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    try {
      const until = Date.now() + 3000;
      while (s.lines.filter((l) => l === ': heartbeat').length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(s.lines.filter((l) => l === ': heartbeat').length).toBeGreaterThanOrEqual(2);
      expect(s.events).toEqual([]);
    } finally {
      s.close();
    }
  });
});

describe('Last-Event-ID', () => {
  it('resumes after the given message: the missed ones in order, none twice, then live ones', async () => {
    const c = await createTicket(t.base, fx);
    const s1 = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token));
    await reply(fx, c.ticket.id, 'a1');
    await s1.until((e) => messages(e).length === 1, 'a1');
    s1.close();
    const last = s1.events.at(-1)!.id!;
    for (const m of ['a2', 'a3', 'a4']) await reply(fx, c.ticket.id, m);
    const s2 = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token, { 'Last-Event-ID': last }));
    try {
      await s2.until((e) => messages(e).length === 3, 'the missed replies');
      await reply(fx, c.ticket.id, 'a5');
      await s2.until((e) => messages(e).length === 4, 'the live reply');
      expect(messages(s2.events).map((m) => m.body)).toEqual(['a2', 'a3', 'a4', 'a5']);
      // A resume starts with the current status (it may have changed meanwhile).
      expect(s2.events[0]).toMatchObject({ event: 'status', data: '{"status":"open"}' });
    } finally {
      s2.close();
    }
    const q = await openStream(eventsUrl(fx, c.ticket.id, `?last_event_id=${last}`), streamHeaders(fx, c.visitor_token));
    try {
      await q.until((e) => messages(e).length === 4, 'the replies after the query id');
      expect(messages(q.events).map((m) => m.body)).toEqual(['a2', 'a3', 'a4', 'a5']);
    } finally {
      q.close();
    }
  });

  it('reconnecting while replies keep arriving loses none and repeats none', async () => {
    const c = await createTicket(t.base, fx);
    const total = 60;
    const seen: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < total; i++) {
        expect((await reply(fx, c.ticket.id, `r${i}`)).status).toBe(201);
        if (i % 7 === 0) await new Promise((r) => setTimeout(r, 3));
      }
      writing = false;
    })();
    let last: string | undefined;
    for (let round = 0; round < 50 && (writing || !seen.includes(`r${total - 1}`)); round++) {
      const s = await openStream(eventsUrl(fx, c.ticket.id), streamHeaders(fx, c.visitor_token, last ? { 'Last-Event-ID': last } : {}));
      // Read a few events, then drop the connection mid-flow.
      await s.until((e) => messages(e).length >= 3 || (!writing && messages(e).some((m) => m.body === `r${total - 1}`)), 'some replies', 5000).catch(() => undefined);
      s.close();
      for (const e of s.events) if (e.event === 'message') {
        seen.push(JSON.parse(e.data).body);
        last = e.id;
      }
      if (round === 0 && last === undefined) throw new Error('the first stream saw nothing');
    }
    await writer;
    // The first stream started live (no Last-Event-ID), after some replies may have been written.
    const firstSeen = Number(seen[0]!.slice(1));
    expect(seen).toEqual(Array.from({ length: total - firstSeen }, (_, i) => `r${i + firstSeen}`));
  });

  it('an id that is not a message of this ticket is 400', async () => {
    const a = await createTicket(t.base, fx);
    const b = await createTicket(t.base, fx);
    for (const id of [b.messages[0]!.id, 'msg_nope', 'x'.repeat(101)]) {
      const r = await visitor(t.base, fx, 'GET', `/tickets/${a.ticket.id}/events`, { headers: { 'X-Visitor-Token': a.visitor_token, 'Last-Event-ID': id } });
      expect([r.status, r.json.error.code], id).toEqual([400, 'invalid_request']);
      // The issue names the header, not the body.
      expect(r.json.error.issues.map((i: { path: string }) => i.path), id).toEqual(['Last-Event-ID']);
    }
  });
});

describe('the per-site stream cap', () => {
  it('refuses streams beyond the cap with 429 and Retry-After, per site and environment, and admits again once one closes', async () => {
    const site = seed(t.ctx, { rate_limit_per_minute: 10_000 });
    const other = seed(t.ctx, { rate_limit_per_minute: 10_000 });
    const c = await createTicket(t.base, site);
    const o = await createTicket(t.base, other);
    const open = await Promise.all([0, 1, 2].map(() => openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token))));
    try {
      expect(open.map((s) => s.status)).toEqual([200, 200, 200]);
      const refused = await visitor(t.base, site, 'GET', `/tickets/${c.ticket.id}/events`, { headers: { 'X-Visitor-Token': c.visitor_token } });
      expect([refused.status, refused.json.error.code]).toEqual([429, 'rate_limit_exceeded']);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const elsewhere = await openStream(eventsUrl(other, o.ticket.id), streamHeaders(other, o.visitor_token));
      expect(elsewhere.status).toBe(200);
      elsewhere.close();
      // The test key is published with the site: its streams must not take the live visitors' slots.
      const testSide = { ...site, pk: { ...site.pk, live: site.pk.test } };
      const ct = await createTicket(t.base, testSide);
      const tests = await Promise.all([0, 1, 2].map(() => openStream(eventsUrl(site, ct.ticket.id), streamHeaders(testSide, ct.visitor_token))));
      expect(tests.map((s) => s.status)).toEqual([200, 200, 200]);
      for (const s of tests) s.close();
      open.pop()!.close();
      let again = 0;
      for (let i = 0; i < 100 && again !== 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const s = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token));
        again = s.status;
        if (again === 200) open.push(s);
      }
      expect(again).toBe(200);
    } finally {
      for (const s of open) s.close();
    }
  });
});

describe('a deleted site', () => {
  it("ends its tickets' open streams by the next heartbeat (no event would ever end them); other sites' streams go on", async () => {
    const doomed = seed(t.ctx, { rate_limit_per_minute: 10_000 });
    const other = seed(t.ctx, { rate_limit_per_minute: 10_000 });
    const c = await createTicket(t.base, doomed);
    const o = await createTicket(t.base, other);
    const streams = await Promise.all([0, 1, 2].map(() => openStream(eventsUrl(doomed, c.ticket.id), streamHeaders(doomed, c.visitor_token))));
    const kept = await openStream(eventsUrl(other, o.ticket.id), streamHeaders(other, o.visitor_token));
    try {
      expect([...streams, kept].map((s) => s.status)).toEqual([200, 200, 200, 200]);
      const del = await call(t.base, 'DELETE', `/v1/sites/${doomed.serviceId}`, { key: doomed.sk.live });
      expect(del.status, del.text).toBeLessThan(300);
      const ended = await Promise.race([Promise.all(streams.map((s) => s.ended)).then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]);
      expect(ended, 'the streams of the deleted ticket ended').toBe(true);
      const beats = kept.lines.filter((l) => l === ': heartbeat').length;
      const until = Date.now() + 2000;
      while (kept.lines.filter((l) => l === ': heartbeat').length <= beats && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(kept.lines.filter((l) => l === ': heartbeat').length).toBeGreaterThan(beats);
    } finally {
      for (const s of streams) s.close();
      kept.close();
    }
  });
});

describe('a stream whose admission no longer holds', () => {
  /** A new publishable key of `f`'s site, and `f` with it as the live key. */
  async function ownKey(f: Fixture) {
    const r = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'publishable', name: 'widget', site: f.serviceId } });
    expect(r.status, r.text).toBe(201);
    return { id: r.json.key.id as string, f: { ...f, pk: { ...f.pk, live: r.json.key.secret as string } } };
  }
  const endedWithin = (s: { ended: Promise<void> }, ms: number) =>
    Promise.race([s.ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it('ends the streams it opened by the next heartbeat, and a reconnect gets 401; streams of other keys go on', async () => {
    const site = seed(t.ctx, { rate_limit_per_minute: 10_000 });
    const stolen = await ownKey(site);
    const c = await createTicket(t.base, stolen.f);
    const streams = await Promise.all([0, 1].map(() => openStream(eventsUrl(site, c.ticket.id), streamHeaders(stolen.f, c.visitor_token))));
    const kept = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token)); // the site's other key, same ticket
    try {
      expect([...streams, kept].map((s) => s.status)).toEqual([200, 200, 200]);
      expect(await endedWithin(streams[0]!, 500), 'still open before the revocation').toBe(false);
      const del = await call(t.base, 'DELETE', `/v1/keys/${stolen.id}`, { key: site.sk.live });
      expect(del.status, del.text).toBeLessThan(300);
      expect(await Promise.all(streams.map((s) => endedWithin(s, 2_000)))).toEqual([true, true]);
      const again = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(stolen.f, c.visitor_token));
      again.close();
      expect(again.status).toBe(401);
      const beats = kept.lines.filter((l) => l === ': heartbeat').length;
      await kept.until(() => kept.lines.filter((l) => l === ': heartbeat').length > beats, 'a heartbeat on the other key', 2_000);
      await reply(site, c.ticket.id, 'Still here');
      await kept.until((e) => messages(e).some((m) => m.body === 'Still here'), 'the reply on the other key');
    } finally {
      for (const s of streams) s.close();
      kept.close();
    }
  });

  it('ends once its origin is taken off the allowlist; a stream from an origin still on it goes on', async () => {
    const site = seed(t.ctx, { rate_limit_per_minute: 10_000, allowed_origins: ['https://shop.example', 'https://old.example'] });
    const c = await createTicket(t.base, site);
    const old = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token, { Origin: 'https://old.example' }));
    const kept = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token));
    try {
      expect([old.status, kept.status]).toEqual([200, 200]);
      expect(await endedWithin(old, 300)).toBe(false);
      const r = await call(t.base, 'PATCH', `/v1/sites/${site.serviceId}`, { key: site.sk.live, body: { allowed_origins: ['https://shop.example'] } });
      expect(r.status, r.text).toBe(200);
      expect(await endedWithin(old, 2_000), 'the stream of the removed origin ended').toBe(true);
      await reply(site, c.ticket.id, 'Only for the shop');
      await kept.until((e) => messages(e).some((m) => m.body === 'Only for the shop'), 'the reply on the allowed origin');
      expect(messages(old.events).map((m) => m.body)).not.toContain('Only for the shop');
      const again = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(site, c.visitor_token, { Origin: 'https://old.example' }));
      again.close();
      expect(again.status).toBe(403);
    } finally {
      old.close();
      kept.close();
    }
  });

  it.each(['rotated with a grace period', 'created to expire'] as const)(
    'keeps a key %s streaming until its time is up, and ends the stream by the heartbeat after',
    async (how) => {
      const site = seed(t.ctx, { rate_limit_per_minute: 10_000 });
      let key = await ownKey(site);
      if (how === 'created to expire') {
        const r = await call(t.base, 'POST', '/v1/keys', {
          key: site.sk.live,
          body: { type: 'publishable', name: 'short-lived', site: site.serviceId, expires_at: new Date(t.clock.now + 60_000).toISOString() },
        });
        expect(r.status, r.text).toBe(201);
        key = { id: r.json.key.id, f: { ...site, pk: { ...site.pk, live: r.json.key.secret } } };
      }
      const c = await createTicket(t.base, key.f);
      const s = await openStream(eventsUrl(site, c.ticket.id), streamHeaders(key.f, c.visitor_token));
      try {
        expect(s.status).toBe(200);
        if (how === 'rotated with a grace period') {
          const rot = await call(t.base, 'POST', `/v1/keys/${key.id}/rotate`, { key: site.sk.live, body: { grace_seconds: 60 } });
          expect(rot.status, rot.text).toBe(201);
        }
        // The server's clock stands still here: several heartbeats pass within the 60 s.
        const beats = s.lines.filter((l) => l === ': heartbeat').length;
        await s.until(() => s.lines.filter((l) => l === ': heartbeat').length >= beats + 3, 'heartbeats while the key still works', 2_000);
        expect(await endedWithin(s, 300)).toBe(false);
        t.clock.advance(59_000);
        expect(await endedWithin(s, 300), 'a second before the end').toBe(false);
        t.clock.advance(1_000);
        expect(await endedWithin(s, 2_000), 'ended once the key stopped working').toBe(true);
      } finally {
        s.close();
      }
    },
  );
});

describe('draining', () => {
  it('ends open streams when the server closes', async () => {
    const own = await startTestServer();
    const f = seed(own.ctx);
    const c = await createTicket(own.base, f);
    const s = await openStream(`${own.base}/v1/widget/${f.serviceId}/tickets/${c.ticket.id}/events`, streamHeaders(f, c.visitor_token));
    expect(s.status).toBe(200);
    const started = Date.now();
    await own.close();
    await s.ended;
    expect(Date.now() - started).toBeLessThan(900);
  });
});

describe('with heartbeats far apart', () => {
  // The heartbeat is a minute away: what these tests see cannot come from it.
  let u: TestServer;
  beforeAll(async () => {
    u = await startTestServer({ limits: { heartbeatMs: 60_000, streamsPerSite: 4, streamsPerTicket: 2 } });
  });
  afterAll(async () => {
    await u.close();
  });
  const url = (f: Fixture, id: string) => `${u.base}/v1/widget/${f.serviceId}/tickets/${id}/events`;
  const agentReply = (f: Fixture, id: string, message: string) =>
    call(u.base, 'POST', `/v1/sites/${f.serviceId}/tickets/${id}/messages`, { key: f.sk.live, body: { message } });
  const endedWithin = (s: { ended: Promise<void> }, ms: number) =>
    Promise.race([s.ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it('caps open streams per ticket, so one visitor token cannot take the site\'s slots from other visitors', async () => {
    const site = seed(u.ctx, { rate_limit_per_minute: 10_000 });
    const mine = await createTicket(u.base, site);
    const theirs = await createTicket(u.base, site);
    const open = await Promise.all([0, 1].map(() => openStream(url(site, mine.ticket.id), streamHeaders(site, mine.visitor_token))));
    try {
      expect(open.map((s) => s.status)).toEqual([200, 200]);
      for (let i = 0; i < 3; i++) {
        const refused = await openStream(url(site, mine.ticket.id), streamHeaders(site, mine.visitor_token));
        refused.close();
        expect(refused.status).toBe(429);
      }
      const r = await fetch(url(site, mine.ticket.id), { headers: streamHeaders(site, mine.visitor_token) });
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect([r.status, body.error.code]).toEqual([429, 'rate_limit_exceeded']);
      expect(body.error.message).toMatch(/this conversation/);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Another visitor of the same site still gets a live stream.
      const other = await openStream(url(site, theirs.ticket.id), streamHeaders(site, theirs.visitor_token));
      expect(other.status).toBe(200);
      other.close();
      open.pop()!.close();
      let again = 0;
      for (let i = 0; i < 100 && again !== 200; i++) {
        await new Promise((res) => setTimeout(res, 20));
        const s = await openStream(url(site, mine.ticket.id), streamHeaders(site, mine.visitor_token));
        again = s.status;
        if (again === 200) open.push(s);
        else s.close();
      }
      expect(again, 'a slot of the ticket is free again once a stream closed').toBe(200);
    } finally {
      for (const s of open) s.close();
    }
  });

  it('delivers nothing written after its key was revoked: the stream ends at the next event, another key\'s stream gets it', async () => {
    const site = seed(u.ctx, { rate_limit_per_minute: 10_000 });
    const made = await call(u.base, 'POST', '/v1/keys', { key: site.sk.live, body: { type: 'publishable', name: 'stolen', site: site.serviceId } });
    expect(made.status, made.text).toBe(201);
    const stolen = { ...site, pk: { ...site.pk, live: made.json.key.secret as string } };
    const c = await createTicket(u.base, site);
    const s = await openStream(url(site, c.ticket.id), streamHeaders(stolen, c.visitor_token));
    const kept = await openStream(url(site, c.ticket.id), streamHeaders(site, c.visitor_token));
    try {
      expect([s.status, kept.status]).toEqual([200, 200]);
      await agentReply(site, c.ticket.id, 'Before the revocation');
      await s.until((e) => messages(e).some((m) => m.body === 'Before the revocation'), 'the reply before');
      const del = await call(u.base, 'DELETE', `/v1/keys/${made.json.key.id}`, { key: site.sk.live });
      expect(del.status, del.text).toBeLessThan(300);
      await agentReply(site, c.ticket.id, 'After the revocation');
      await kept.until((e) => messages(e).some((m) => m.body === 'After the revocation'), 'the reply on the other key');
      expect(await endedWithin(s, 2_000), 'the revoked key\'s stream ended').toBe(true);
      expect(messages(s.events).map((m) => m.body)).toEqual(['Before the revocation']);
    } finally {
      s.close();
      kept.close();
    }
  });

  it('delivers nothing written after its origin left the allowlist', async () => {
    const site = seed(u.ctx, { rate_limit_per_minute: 10_000, allowed_origins: ['https://shop.example', 'https://old.example'] });
    const c = await createTicket(u.base, site);
    const old = await openStream(url(site, c.ticket.id), streamHeaders(site, c.visitor_token, { Origin: 'https://old.example' }));
    const kept = await openStream(url(site, c.ticket.id), streamHeaders(site, c.visitor_token));
    try {
      expect([old.status, kept.status]).toEqual([200, 200]);
      const r = await call(u.base, 'PATCH', `/v1/sites/${site.serviceId}`, { key: site.sk.live, body: { allowed_origins: ['https://shop.example'] } });
      expect(r.status, r.text).toBe(200);
      await agentReply(site, c.ticket.id, 'Only for the shop');
      await kept.until((e) => messages(e).some((m) => m.body === 'Only for the shop'), 'the reply on the allowed origin');
      expect(await endedWithin(old, 2_000), 'the removed origin\'s stream ended').toBe(true);
      expect(messages(old.events)).toEqual([]);
    } finally {
      old.close();
      kept.close();
    }
  });
});
