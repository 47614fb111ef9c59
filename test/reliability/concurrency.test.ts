// Limits under real concurrency: rate-limit and spend-cap admission is exact with one process and
// with two workers sharing the database; idempotent retries racing each other store one row; and
// concurrent writes never surface SQLITE_BUSY or a 5xx.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { rawRequest } from '../../server/src/test-helpers/spawn.js';
import { startTestServer, type TestServer } from '../../server/src/test-helpers/harness.js';
import { counters, expectEnvelope, noSecretsInLogsTest, pick, reliabilityFile, rememberSecret, send, watchLogs, type Reply } from './support.js';
import { killAll, seedDb, serve, type SeededSite } from './procs.js';

reliabilityFile();
afterAll(killAll);

/** The two ways of running: an in-process server (a frozen clock), or `serve --workers 2`. */
interface Target {
  name: string;
  base: string;
  dbPath: string;
  /** Every request goes over a new connection, so concurrent ones spread over the workers. */
  fire(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Reply>;
  logs(): string[];
  close(): Promise<void>;
}

async function fireRaw(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Reply> {
  counters.requests++;
  const text = body === undefined ? undefined : JSON.stringify(body);
  const r = await rawRequest(base + path, { method, headers: { ...headers, ...(text ? { 'Content-Type': 'application/json' } : {}) }, body: text });
  let json: unknown = null;
  try {
    json = JSON.parse(r.body);
  } catch {
    json = null;
  }
  const h = new Headers();
  for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
  const reply = { status: r.status, headers: h, json, text: r.body } as Reply;
  if (reply.json && typeof reply.json === 'object' && 'visitor_token' in reply.json) rememberSecret(reply.json.visitor_token);
  return reply;
}

/** Starts a target over a fresh database seeded with one site. */
async function target(kind: '1 process' | '2 workers', site: Parameters<typeof seedDb>[0]): Promise<{ t: Target; s: SeededSite; srv?: TestServer }> {
  if (kind === '1 process') {
    const srv = await startTestServer({ limits: { managementRatePerMinute: 1_000_000 } });
    watchLogs(() => srv.logs);
    const s = seedDb(site, srv.dbPath);
    return {
      s,
      srv,
      t: {
        name: kind, base: srv.base, dbPath: srv.dbPath, logs: () => srv.logs, close: () => srv.close(),
        fire: (m, p, h, b) => fireRaw(srv.base, m, p, h, b),
      },
    };
  }
  const s = seedDb(site);
  const served = await serve(s.dbPath, { workers: 2 });
  return {
    s,
    t: {
      name: kind, base: served.base, dbPath: s.dbPath, logs: () => [...served.proc.out, ...served.proc.err],
      close: async () => {
        served.signal('SIGTERM');
        await served.proc.exited;
      },
      fire: (m, p, h, b) => fireRaw(served.base, m, p, h, b),
    },
  };
}

const count = (rs: Reply[], status: number) => rs.filter((r) => r.status === status).length;
const KINDS = ['1 process', '2 workers'] as const;

function noServerErrors(rs: Reply[], t: Target): void {
  expect(rs.filter((r) => r.status >= 500).map((r) => r.text.slice(0, 200)), `5xx from ${t.name}`).toEqual([]);
  expect(t.logs().filter((l) => /SQLITE_BUSY|database is locked/i.test(l)), `SQLITE_BUSY in the logs of ${t.name}`).toEqual([]);
}

describe.each(KINDS)('with %s', (kind) => {
  test('rate limit: exactly min(N, remaining) concurrent requests are admitted', async () => {
    // One token per 5 s: unless the burst itself takes longer than that, admission must be exact.
    const limit = 12;
    const { t, s } = await target(kind, { rate_limit_per_minute: limit, daily_spend_cap_micros: 1_000_000_000 });
    try {
      const h = { 'X-Parley-Key': s.pk.live, Origin: s.origin };
      const n = pick(40, 80);
      const started = Date.now();
      const rs = await Promise.all(Array.from({ length: n }, () => t.fire('GET', `/v1/widget/${s.serviceId}/config`, h)));
      const refill = Math.floor((Date.now() - started) / (60_000 / limit));
      noServerErrors(rs, t);
      const admitted = count(rs, 200);
      expect(admitted).toBeGreaterThanOrEqual(limit);
      expect(admitted).toBeLessThanOrEqual(limit + refill);
      expect(admitted + count(rs, 429)).toBe(n);
      for (const r of rs.filter((x) => x.status === 429)) {
        expectEnvelope(r);
        expect(r.json.error.code).toBe('rate_limit_exceeded');
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      // The test environment has its own bucket: its burst is whole.
      const tr = await Promise.all(Array.from({ length: 5 }, () => t.fire('GET', `/v1/widget/${s.serviceId}/config`, { ...h, 'X-Parley-Key': s.pk.test })));
      expect(count(tr, 200)).toBe(5);
      // Writes over the limit store nothing.
      const before = ticketCount(t.dbPath);
      const ws = await Promise.all(Array.from({ length: 10 }, () => t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, h, { message: 'over the limit' })));
      expect(ticketCount(t.dbPath) - before).toBe(count(ws, 201));
    } finally {
      await t.close();
    }
  });

  test('spend cap: the cap is never exceeded and stored spend equals the stored actions', async () => {
    // Ticket 10,000 and message 1,000 micros; a cap of 47,000 admits exactly 4 tickets.
    const cap = 47_000;
    const { t, s } = await target(kind, { rate_limit_per_minute: 100_000, daily_spend_cap_micros: cap });
    try {
      const h = { 'X-Parley-Key': s.pk.live, Origin: s.origin };
      const n = pick(30, 60);
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, h, { message: `race ${i}` })));
      noServerErrors(rs, t);
      expect(count(rs, 201)).toBe(4);
      expect(count(rs, 402)).toBe(n - 4);
      for (const r of rs.filter((x) => x.status === 402)) {
        expectEnvelope(r);
        expect(r.json.error.code).toBe('spend_cap_exceeded');
        expect(typeof r.json.error.resets_at).toBe('string');
      }
      let meter = spend(t.dbPath, s);
      expect(meter.spent).toBeLessThanOrEqual(cap);
      expect(meter.spent).toBe(meter.expected);
      // Then messages race for what is left.
      const ticket = rs.find((r) => r.status === 201)!.json;
      const left = cap - meter.spent;
      const m = pick(20, 40);
      const ms = await Promise.all(Array.from({ length: m }, (_, i) =>
        t.fire('POST', `/v1/widget/${s.serviceId}/tickets/${ticket.ticket.id}/messages`, { ...h, 'X-Visitor-Token': ticket.visitor_token }, { message: `more ${i}` })));
      noServerErrors(ms, t);
      expect(count(ms, 201)).toBe(Math.min(m, Math.floor(left / 1_000)));
      expect(count(ms, 201) + count(ms, 402)).toBe(m);
      meter = spend(t.dbPath, s);
      expect(meter.spent).toBeLessThanOrEqual(cap);
      expect(meter.spent).toBe(meter.expected);
      // The test environment has its own meter.
      const tr = await t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, { ...h, 'X-Parley-Key': s.pk.test }, { message: 'test env' });
      expect(tr.status).toBe(201);
    } finally {
      await t.close();
    }
  });

  test('idempotent retries racing each other store one row and charge once', async () => {
    const { t, s } = await target(kind, { rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000 });
    try {
      const h = { 'X-Parley-Key': s.pk.live, Origin: s.origin, 'Idempotency-Key': `race-${Math.random()}` };
      const body = { message: 'exactly once', visitor: { name: 'Ida' } };
      const rs = await Promise.all(Array.from({ length: 20 }, () => t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, h, body)));
      noServerErrors(rs, t);
      expect(rs.map((r) => r.status)).toEqual(rs.map(() => 201));
      const ids = new Set(rs.map((r) => r.json.ticket.id));
      expect(ids.size).toBe(1);
      expect(ticketCount(t.dbPath)).toBe(1);
      let meter = spend(t.dbPath, s);
      expect(meter.spent).toBe(10_000);
      const first = rs[0]!.json;

      // The same for a message, and the same key with different bodies: one wins, the rest 409.
      const mh = { 'X-Parley-Key': s.pk.live, Origin: s.origin, 'X-Visitor-Token': first.visitor_token, 'Idempotency-Key': 'msg-race' };
      const ms = await Promise.all(Array.from({ length: 20 }, () =>
        t.fire('POST', `/v1/widget/${s.serviceId}/tickets/${first.ticket.id}/messages`, mh, { message: 'once only' })));
      noServerErrors(ms, t);
      expect(ms.map((r) => r.status)).toEqual(ms.map(() => 201));
      expect(new Set(ms.map((r) => r.json.message.id)).size).toBe(1);
      const dh = { ...mh, 'Idempotency-Key': 'different-bodies' };
      const ds = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        t.fire('POST', `/v1/widget/${s.serviceId}/tickets/${first.ticket.id}/messages`, dh, { message: `body ${i}` })));
      noServerErrors(ds, t);
      expect(count(ds, 201)).toBe(1);
      expect(count(ds, 409)).toBe(19);
      for (const r of ds.filter((x) => x.status === 409)) expect(r.json.error.code).toBe('idempotency_conflict');
      expect(messageCount(t.dbPath)).toBe(3);
      meter = spend(t.dbPath, s);
      expect(meter.spent).toBe(meter.expected);
      expect(meter.spent).toBe(12_000);
    } finally {
      await t.close();
    }
  });

  test('a storm of concurrent writes of every kind: no 5xx, no SQLITE_BUSY, meters consistent', async () => {
    const { t, s } = await target(kind, { rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000 });
    try {
      const h = { 'X-Parley-Key': s.pk.live, Origin: s.origin };
      const seedTickets = await Promise.all(Array.from({ length: 5 }, (_, i) => t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, h, { message: `seed ${i}` })));
      const open = seedTickets.map((r) => r.json as { ticket: { id: string }; visitor_token: string });
      const n = pick(300, 1200);
      const ops = Array.from({ length: n }, (_, i) => {
        const tk = open[i % open.length]!;
        switch (i % 5) {
          case 0:
            return t.fire('POST', `/v1/widget/${s.serviceId}/tickets`, h, { message: `storm ${i}`, metadata: { i: String(i) } });
          case 1:
          case 2:
            return t.fire('POST', `/v1/widget/${s.serviceId}/tickets/${tk.ticket.id}/messages`, { ...h, 'X-Visitor-Token': tk.visitor_token }, { message: `storm ${i}` });
          case 3:
            return t.fire('POST', `/v1/sites/${s.serviceId}/tickets/${tk.ticket.id}/messages`, { Authorization: `Bearer ${s.sk.live}` }, { message: `agent ${i}` });
          default:
            return t.fire('PATCH', `/v1/sites/${s.serviceId}/tickets/${tk.ticket.id}`, { Authorization: `Bearer ${s.sk.live}` }, { status: i % 2 ? 'closed' : 'open' });
        }
      });
      const rs = await Promise.all(ops);
      noServerErrors(rs, t);
      expect(rs.filter((r) => r.status !== 200 && r.status !== 201).map((r) => `${r.status} ${r.text.slice(0, 120)}`)).toEqual([]);
      const meter = spend(t.dbPath, s);
      expect(meter.spent).toBe(meter.expected);
    } finally {
      await t.close();
    }
  });
});

function ticketCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM tickets').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function messageCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Today's stored spend of the site's live environment and what its stored actions cost. */
function spend(path: string, s: SeededSite): { spent: number; expected: number } {
  const db = new Database(path, { readonly: true });
  try {
    const spent = (db.prepare(`SELECT COALESCE(SUM(spent_micros), 0) AS n FROM spend_meters WHERE site_id = ? AND environment = 'live'`).get(s.siteRowId) as { n: number }).n;
    const tickets = (db.prepare(`SELECT COUNT(*) AS n FROM tickets WHERE site_id = ? AND environment = 'live'`).get(s.siteRowId) as { n: number }).n;
    const visitor = (db.prepare(`SELECT COUNT(*) AS n FROM messages m JOIN tickets t ON t.seq = m.ticket_seq
      WHERE t.site_id = ? AND t.environment = 'live' AND m.author = 'visitor'`).get(s.siteRowId) as { n: number }).n;
    // A ticket costs `ticket.create` with its first message; later visitor messages `message.create`; agents are free.
    return { spent, expected: tickets * 10_000 + (visitor - tickets) * 1_000 };
  } finally {
    db.close();
  }
}
