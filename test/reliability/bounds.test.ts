// Resource bounds of a real server process: oversized bodies are refused before they are read,
// event streams are capped per site while memory stays bounded, and slow clients cannot hold it.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { counters, expectEnvelope, FULL, noSecretsInLogsTest, pick, reliabilityFile, send, type Reply } from './support.js';
import { killAll, seedDb, serve, type SeededSite, type Served } from './procs.js';

reliabilityFile();
afterAll(killAll);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STREAMS = pick(300, 2000);
const SLOW_CLIENTS = pick(200, 1000);
const MB = 1024 * 1024;

/** Resident memory of a process in MB, from /proc. */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Raw {
  status: number;
  body: string;
  /** Body bytes the client had written when the response began. */
  sentBeforeResponse: number;
  ms: number;
}

/**
 * A POST declaring (or streaming) a 10 MB body. Only the first `initial` bytes go out at once; the
 * rest trickles in 64 KiB pieces while no response has come. The server must answer 413 long before.
 */
function hugePost(port: number, path: string, headers: Record<string, string>, chunked: boolean, initial = 64 * 1024): Promise<Raw> {
  counters.requests++;
  counters.badInputs++;
  const total = 10 * MB;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request({
      host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: { ...headers, 'Content-Type': 'application/json', ...(chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(total) }) },
    });
    const piece = Buffer.alloc(64 * 1024, 'a');
    const first = Buffer.concat([Buffer.from('{"message":"'), Buffer.alloc(initial - 12, 'a')]);
    req.write(first);
    sent += first.length;
    const timer = setInterval(() => {
      if (answered || sent >= total - piece.length) return;
      req.write(piece);
      sent += piece.length;
    }, 50);
    // No answer within 15 s: the server waited for the body; report it as no refusal at all.
    const giveUp = setTimeout(() => {
      if (answered) return;
      answered = true;
      clearInterval(timer);
      req.destroy();
      resolve({ status: 0, body: '{}', sentBeforeResponse: sent, ms: Date.now() - started });
    }, 15_000);
    req.on('response', (res) => {
      if (answered) return;
      answered = true;
      const at = sent;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearInterval(timer);
        clearTimeout(giveUp);
        req.destroy();
        resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), sentBeforeResponse: at, ms: Date.now() - started });
      });
    });
    req.on('error', (err) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      if (!answered) reject(err);
    });
  });
}

interface StreamResult {
  status: number;
  body: string;
  req?: ReturnType<typeof request>;
}

/** Opens an event stream and resolves with its status once the headers (or a refusal) arrive. */
function openStream(port: number, path: string, headers: Record<string, string>): Promise<StreamResult> {
  counters.requests++;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers });
    req.setTimeout(20_000, () => req.destroy(new Error('stream headers timed out')));
    req.on('response', (res) => {
      req.setTimeout(0);
      if (res.statusCode === 200) {
        res.on('data', () => {});
        res.on('error', () => {});
        resolve({ status: 200, body: '', req });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('resource bounds', () => {
  let site: SeededSite;
  let srv: Served;
  let ticket: { id: string; token: string };
  beforeAll(async () => {
    site = seedDb({ rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000 });
    srv = await serve(site.dbPath);
    const t = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: { 'X-Parley-Key': site.pk.live, Origin: site.origin }, body: { message: 'bounds' } });
    expect(t.status, t.text).toBe(201);
    ticket = { id: t.json.ticket.id, token: t.json.visitor_token };
  });

  const widgetHeaders = () => ({ 'X-Parley-Key': site.pk.live, Origin: site.origin });
  const healthy = async (): Promise<Reply> => send(srv.base, 'GET', `/v1/widget/${site.serviceId}/config`, { headers: widgetHeaders(), timeoutMs: 5_000 });

  test.each([
    ['widget ticket, declared 10 MB', 'widget', false],
    ['widget ticket, chunked 10 MB', 'widget', true],
    ['management reply, declared 10 MB', 'manage', false],
    ['management reply, chunked 10 MB', 'manage', true],
  ] as const)('%s: 413 before the body is read', async (_name, kind, chunked) => {
    const path = kind === 'widget' ? `/v1/widget/${site.serviceId}/tickets` : `/v1/sites/${site.serviceId}/tickets/${ticket.id}/messages`;
    const headers = kind === 'widget' ? widgetHeaders() : { Authorization: `Bearer ${site.sk.live}` };
    const r = await hugePost(srv.port, path, headers, chunked);
    expect(r.status, r.body).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('payload_too_large');
    // Refused while the client was still near the start of its 10 MB.
    expect(r.sentBeforeResponse).toBeLessThan(2 * MB);
    expect(r.ms).toBeLessThan(10_000);
    expect((await healthy()).status).toBe(200);
  });

  test('a body just over 32 KiB is refused, one just under is read', async () => {
    const over = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(), raw: JSON.stringify({ message: 'a'.repeat(32 * 1024) }), });
    counters.badInputs++;
    expect(over.status).toBe(413);
    expectEnvelope(over);
    const under = await send(srv.base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(), body: { message: 'b'.repeat(4000), metadata: { pad: 'c'.repeat(500) } } });
    expect(under.status).toBe(201);
  });

  test(`${STREAMS} event streams against one site: refused beyond the cap, memory bounded`, async () => {
    const path = `/v1/widget/${site.serviceId}/tickets/${ticket.id}/events`;
    const headers = { ...widgetHeaders(), 'X-Visitor-Token': ticket.token };
    const results: StreamResult[] = [];
    const before = rssMb(srv.proc.pid);
    for (let i = 0; i < STREAMS; i += 100) {
      const batch = Array.from({ length: Math.min(100, STREAMS - i) }, () => openStream(srv.port, path, headers));
      results.push(...(await Promise.all(batch)));
    }
    const open = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    try {
      expect(open.length).toBeGreaterThan(0);
      // The per-site cap (100 by default) holds: everything past it is 429 in the envelope.
      expect(open.length).toBeLessThanOrEqual(100);
      expect(refused.length).toBe(STREAMS - open.length);
      for (const r of refused) {
        expect(r.status, r.body).toBe(429);
        const body = JSON.parse(r.body);
        expect(body.error.code).toBe('rate_limit_exceeded');
      }
      const rss = rssMb(srv.proc.pid);
      expect(rss, `RSS ${rss.toFixed(0)} MB (was ${before.toFixed(0)} MB before the streams)`).toBeLessThan(300);
      // The server still serves others while the streams are open, and live events still flow.
      expect((await healthy()).status).toBe(200);
      const reply = await send(srv.base, 'POST', `/v1/sites/${site.serviceId}/tickets/${ticket.id}/messages`, {
        headers: { Authorization: `Bearer ${site.sk.live}` }, body: { message: 'to every stream' },
      });
      expect(reply.status).toBe(201);
    } finally {
      for (const r of open) r.req?.destroy();
    }
    await sleep(300);
    // Closed streams free their places: a new one opens.
    const again = await openStream(srv.port, path, headers);
    expect(again.status).toBe(200);
    again.req?.destroy();
  });

  test(`${SLOW_CLIENTS} slow clients (headers or body a byte at a time) cannot hold the server`, async () => {
    const sockets: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      const s = connect(srv.port, '127.0.0.1');
      counters.requests++;
      s.on('error', () => {});
      // Read what the server says (its 408), or the socket never sees the server's close.
      s.resume();
      s.on('close', () => closedByServer++);
      s.setNoDelay(true);
      // Half dribble their headers, half declare a body and dribble that.
      if (i % 2 === 0) s.write(`GET /v1/widget/${site.serviceId}/config HTTP/1.1\r\nHost: x\r\nX-Slow: `);
      else s.write(`POST /v1/widget/${site.serviceId}/tickets HTTP/1.1\r\nHost: x\r\nX-Parley-Key: ${site.pk.live}\r\nOrigin: ${site.origin}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"message":"`);
      sockets.push(s);
    }
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write('a');
    }, 1000);
    try {
      // Meanwhile, ordinary requests are served promptly, again and again.
      const until = Date.now() + pick(4_000, 20_000);
      let served = 0;
      while (Date.now() < until) {
        const r = await healthy();
        expect(r.status).toBe(200);
        served++;
        await sleep(100);
      }
      expect(served).toBeGreaterThan(10);
      if (FULL) {
        // The server's header and request timeouts (15 s and 30 s) let go of every slow socket.
        const deadline = Date.now() + 75_000;
        while (closedByServer < SLOW_CLIENTS && Date.now() < deadline) await sleep(500);
        expect(closedByServer).toBe(SLOW_CLIENTS);
      }
    } finally {
      clearInterval(drip);
      for (const s of sockets) s.destroy();
    }
    expect((await healthy()).status).toBe(200);
  });

  test('the server process stays small after all of it', () => {
    expect(rssMb(srv.proc.pid)).toBeLessThan(300);
  });

  noSecretsInLogsTest();
});
