// Crash safety: a load of ticket and message creations against a real server process, SIGKILL at a
// random moment, restart, repeat. Whatever was answered 201 must be in the database with its charge;
// the database must pass integrity_check; no ticket may exist without its first message. And a
// graceful SIGTERM under load answers every request the server had accepted.
import { request } from 'node:http';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { counters, FULL, noSecretsInLogsTest, pick, reliabilityFile, send } from './support.js';
import { killAll, seedDb, serve, type SeededSite } from './procs.js';

reliabilityFile();
afterAll(killAll);

const ROUNDS = pick(3, 20);
const LOOPS = pick(12, 24);

interface Acked {
  tickets: Map<string, { token: string; messages: Set<string> }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates tickets and messages from `LOOPS` concurrent clients until `stop()` returns true. */
async function load(base: string, site: SeededSite, acked: Acked, stop: () => boolean): Promise<{ sent: number; ok: number }> {
  let sent = 0;
  let ok = 0;
  const headers = { 'X-Parley-Key': site.pk.live, Origin: site.origin };
  const loop = async (n: number) => {
    for (let i = 0; !stop(); i++) {
      sent++;
      try {
        const known = [...acked.tickets.keys()];
        if (known.length < 5 || Math.random() < 0.3) {
          const r = await send(base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers, body: { message: `crash test ${n}.${i}` }, timeoutMs: 10_000 });
          if (r.status === 201) {
            ok++;
            acked.tickets.set(r.json.ticket.id, { token: r.json.visitor_token, messages: new Set(r.json.messages.map((m: { id: string }) => m.id)) });
          } else if (r.status >= 500) throw new Error(`ticket create answered ${r.status}: ${r.text}`);
        } else {
          const id = known[Math.floor(Math.random() * known.length)]!;
          const t = acked.tickets.get(id)!;
          const r = await send(base, 'POST', `/v1/widget/${site.serviceId}/tickets/${id}/messages`, {
            headers: { ...headers, 'X-Visitor-Token': t.token }, body: { message: `follow-up ${n}.${i}` }, timeoutMs: 10_000,
          });
          if (r.status === 201) {
            ok++;
            t.messages.add(r.json.message.id);
          } else if (r.status >= 500) throw new Error(`message create answered ${r.status}: ${r.text}`);
        }
      } catch (err) {
        // The server was killed under this request: no answer, so nothing was acknowledged.
        if (!stop()) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, (_, n) => loop(n)));
  return { sent, ok };
}

interface Check {
  integrity: string;
  lost: string[];
  orphans: number;
  spent: number;
  expected: number;
  meterTickets: number;
  tickets: number;
}

/** Opens the database as a restart would (recovering the WAL) and checks it against what was acknowledged. */
function check(site: SeededSite, acked: Acked): Check {
  const db = new Database(site.dbPath);
  try {
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    const ticket = db.prepare('SELECT seq FROM tickets WHERE id = ?');
    const message = db.prepare('SELECT ticket_seq FROM messages WHERE id = ?');
    const lost: string[] = [];
    for (const [id, t] of acked.tickets) {
      const row = ticket.get(id) as { seq: number } | undefined;
      if (!row) lost.push(`ticket ${id}`);
      for (const m of t.messages) {
        const mrow = message.get(m) as { ticket_seq: number } | undefined;
        if (!mrow || (row && mrow.ticket_seq !== row.seq)) lost.push(`message ${m} of ${id}`);
      }
    }
    const orphans = (db.prepare(`SELECT COUNT(*) AS n FROM tickets t WHERE NOT EXISTS
      (SELECT 1 FROM messages m WHERE m.ticket_seq = t.seq AND m.author = 'visitor'
        AND m.seq = (SELECT MIN(seq) FROM messages WHERE ticket_seq = t.seq))`).get() as { n: number }).n;
    const site_ = db.prepare('SELECT price_ticket_create AS pt, price_message_create AS pm FROM sites WHERE id = ?').get(site.siteRowId) as { pt: number; pm: number };
    const tickets = (db.prepare(`SELECT COUNT(*) AS n FROM tickets WHERE site_id = ? AND environment = 'live'`).get(site.siteRowId) as { n: number }).n;
    const visitorMessages = (db.prepare(`SELECT COUNT(*) AS n FROM messages m JOIN tickets t ON t.seq = m.ticket_seq
      WHERE t.site_id = ? AND t.environment = 'live' AND m.author = 'visitor'`).get(site.siteRowId) as { n: number }).n;
    const meter = db.prepare(`SELECT COALESCE(SUM(spent_micros), 0) AS spent, COALESCE(SUM(tickets), 0) AS tickets
      FROM spend_meters WHERE site_id = ? AND environment = 'live'`).get(site.siteRowId) as { spent: number; tickets: number };
    // A ticket is charged `ticket.create` (its first message included); every later visitor message `message.create`.
    const expected = tickets * site_.pt + (visitorMessages - tickets) * site_.pm;
    return { integrity, lost, orphans, spent: meter.spent, expected, meterTickets: meter.tickets, tickets };
  } finally {
    db.close();
  }
}

describe('crash safety', () => {
  test(`SIGKILL at random moments under load, ${ROUNDS} times: nothing acknowledged is lost`, async () => {
    const site = seedDb({ rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000_000 });
    const acked: Acked = { tickets: new Map() };
    let totalOk = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate one process and two workers sharing the database.
      const srv = await serve(site.dbPath, { workers: round % 2 === 1 ? 2 : 1 });
      // After a restart, a few acknowledged tickets read back through the API with all their messages.
      for (const [id, t] of [...acked.tickets].slice(-3)) {
        const r = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets/${id}/messages`, {
          headers: { 'X-Parley-Key': site.pk.live, Origin: site.origin, 'X-Visitor-Token': t.token },
        });
        expect(r.status).toBe(200);
        const seen = new Set((r.json.messages as { id: string }[]).map((m) => m.id));
        for (const m of t.messages) if (t.messages.size <= 100) expect(seen.has(m), `message ${m} after restart ${round}`).toBe(true);
      }
      let killed = false;
      const running = load(srv.base, site, acked, () => killed);
      await sleep(150 + Math.random() * pick(900, 1500));
      srv.signal('SIGKILL');
      killed = true;
      const { ok } = await running;
      await srv.proc.exited;
      totalOk += ok;
      const c = check(site, acked);
      counters.crashes++;
      counters.lost += c.lost.length;
      expect(c.integrity, `integrity_check after crash ${round + 1}`).toBe('ok');
      expect(c.lost, `acknowledged writes missing after crash ${round + 1}`).toEqual([]);
      expect(c.orphans, `tickets without their first visitor message after crash ${round + 1}`).toBe(0);
      expect(c.meterTickets, 'tickets counted by the meter').toBe(c.tickets);
      expect(c.spent, `spend after crash ${round + 1} equals the stored actions times their prices`).toBe(c.expected);
    }
    // The load really ran: many writes were acknowledged across the rounds.
    expect(totalOk).toBeGreaterThan(ROUNDS * 5);
  });

  test('SIGTERM under load: every accepted request is answered in full, then the process exits 0', async () => {
    const site = seedDb({ rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000_000 });
    for (const workers of FULL ? [1, 2] : [1]) {
      const srv = await serve(site.dbPath, { workers });
      const headers = { 'X-Parley-Key': site.pk.live, Origin: site.origin };
      const first = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers, body: { message: 'before the drain' } });
      expect(first.status).toBe(201);
      // Requests whose body is still on its way when the signal lands: the server has accepted them.
      const slow = Array.from({ length: 5 }, (_, i) => slowPost(srv.port, `/v1/widget/${site.serviceId}/tickets`, headers, { message: `slow ${i}` }));
      // An open event stream must not hold the drain.
      const stream = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets/${first.json.ticket.id}/events`, {
        headers: { ...headers, 'X-Visitor-Token': first.json.visitor_token },
      });
      expect(stream.status).toBe(200);
      const streamOpen = openStream(srv.port, `/v1/widget/${site.serviceId}/tickets/${first.json.ticket.id}/events`, {
        ...headers, 'X-Visitor-Token': first.json.visitor_token,
      });
      let signalled = 0;
      const outcomes: { started: number; status?: number; error?: string; ticket?: string }[] = [];
      const loops = Array.from({ length: 12 }, async () => {
        while (!signalled || Date.now() - signalled < 300) {
          const o: (typeof outcomes)[number] = { started: Date.now() };
          outcomes.push(o);
          try {
            const r = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers, body: { message: 'under drain' }, timeoutMs: 15_000 });
            o.status = r.status;
            if (r.status === 201) o.ticket = r.json.ticket.id;
          } catch (err) {
            o.error = String((err as Error).cause ?? err);
            if (signalled) break;
          }
        }
      });
      await sleep(400);
      await Promise.all(slow.map((s) => s.headersSent));
      await sleep(200);
      signalled = Date.now();
      srv.signal('SIGTERM');
      await sleep(150);
      for (const s of slow) s.finish();
      const answers = await Promise.all(slow.map((s) => s.response));
      await Promise.all(loops);
      const exit = await Promise.race([srv.proc.exited, sleep(20_000).then(() => null)]);
      expect(exit, 'the process exits within 20 s of SIGTERM').not.toBeNull();
      expect(exit!.code, `exit of serve with ${workers} worker(s)`).toBe(0);
      expect((await streamOpen).ended, 'the event stream was ended by the drain').toBe(true);
      for (const a of answers) {
        expect(a.status, `a request accepted before SIGTERM: ${a.body.slice(0, 200)}`).toBe(201);
        expect(() => JSON.parse(a.body)).not.toThrow();
      }
      // Requests started well before the signal were accepted, and must have been answered.
      const early = outcomes.filter((o) => o.started < signalled - 200);
      expect(early.length).toBeGreaterThan(10);
      expect(early.filter((o) => o.status === undefined).map((o) => o.error)).toEqual([]);
      expect(outcomes.filter((o) => o.status !== undefined && o.status >= 500)).toEqual([]);
      // Every 201 is stored.
      const db = new Database(site.dbPath, { readonly: true });
      const find = db.prepare('SELECT 1 FROM tickets WHERE id = ?');
      const acked = [...outcomes.filter((o) => o.ticket).map((o) => o.ticket!), ...answers.map((a) => JSON.parse(a.body).ticket.id as string)];
      const missing = acked.filter((id) => !find.get(id));
      db.close();
      counters.lost += missing.length;
      expect(missing).toEqual([]);
    }
  });

  noSecretsInLogsTest();
});

interface SlowPost {
  headersSent: Promise<void>;
  finish(): void;
  response: Promise<{ status: number; body: string }>;
}

/** A POST whose headers and half its body go now, the rest when `finish()` is called. */
function slowPost(port: number, path: string, headers: Record<string, string>, body: unknown): SlowPost {
  const text = Buffer.from(JSON.stringify(body));
  counters.requests++;
  let sentHeaders!: () => void;
  const headersSent = new Promise<void>((r) => (sentHeaders = r));
  const req = request({
    host: '127.0.0.1', port, path, method: 'POST', agent: false,
    headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(text.length), Connection: 'close' },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  req.write(text.subarray(0, Math.floor(text.length / 2)), () => sentHeaders());
  return { headersSent, finish: () => req.end(text.subarray(Math.floor(text.length / 2))), response };
}

/** Opens an event stream and resolves once the server ends it (or after 25 s). */
function openStream(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; ended: boolean }> {
  counters.requests++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ status: 0, ended: false });
    }, 25_000);
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers }, (res) => {
      res.resume();
      const done = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode!, ended: true });
      };
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ status: 0, ended: true });
    });
    req.end();
  });
}
