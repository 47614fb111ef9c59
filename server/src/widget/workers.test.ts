// The widget API across processes: `serve --workers 2` over one database file. Rate limits and
// spend caps stay exact when concurrent requests land on different processes, and a reply written
// by one process reaches a stream held open by another within a second.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.js';
import { findTicketById, insertMessage } from '../db/tickets.js';
import { BIN, freePort, parley, rawRequest, requireBuild, waitForHttp, type Proc } from '../test-helpers/spawn.js';
import { openStream, readOnly, spendLedger } from '../test-helpers/widget.js';
import { newId } from '../util.js';

const ORIGIN = 'https://shop.example';
const dir = mkdtempSync(join(tmpdir(), 'parley-workers-'));
const dbPath = join(dir, 'workers.db');
let server: Proc;
let base: string;
let sk: string;

/** Runs the CLI against the test database and returns its JSON output. */
function cli(...args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, [BIN, ...args, '--json'], {
    env: { ...process.env, PARLEY_DB: dbPath }, encoding: 'utf8', timeout: 60_000,
  });
  return JSON.parse(out) as Record<string, unknown>;
}
const strings = (v: unknown, re: RegExp): string[] =>
  typeof v === 'string' ? (re.test(v) ? [v] : []) : v && typeof v === 'object' ? Object.values(v).flatMap((x) => strings(x, re)) : [];

/** A site made by `parley site create`; returns its live publishable key. */
function site(serviceId: string, ...flags: string[]): string {
  const out = cli('site', 'create', serviceId, '--name', serviceId, '--origin', ORIGIN, ...flags);
  const [pk] = strings(out, /^pk_live_\w{49}$/);
  if (!pk) throw new Error(`no pk_live_ key in ${JSON.stringify(out)}`);
  return pk;
}

/** One request over a new connection, so consecutive requests spread over the workers. */
async function widget(serviceId: string, pk: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const r = await rawRequest(`${base}/v1/widget/${serviceId}${path}`, {
    method,
    headers: { 'X-Parley-Key': pk, Origin: ORIGIN, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: JSON.parse(r.body || 'null') as any }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Process ids that logged a request for `path`, once both workers have: an access line reaches
 * stdout shortly after its answer (the log is written asynchronously, at least every 100 ms).
 */
function servedBy(pathPart: string): Promise<Set<number>> {
  const pids = () => {
    const found = new Set<number>();
    for (const l of server.logs() as { msg?: string; path?: string; pid?: number }[]) {
      if (l.msg === 'request' && l.path?.includes(pathPart) && l.pid) found.add(l.pid);
    }
    return found;
  };
  return server.waitFor(() => (pids().size >= 2 ? pids() : undefined), `request lines for ${pathPart} from both workers`);
}

beforeAll(async () => {
  requireBuild();
  const ws = cli('workspace', 'create', 'Workers Inc');
  [sk] = strings(ws, /^sk_live_\w{49}$/);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = parley(['serve', '--port', String(port), '--db', dbPath, '--workers', '2'], { detached: true });
  await waitForHttp(`${base}/healthz`);
  await server.waitFor(() => server.logs().filter((l) => l.msg === 'Parley listening').length >= 2, 'two workers listening');
});
afterAll(async () => {
  if (server && !server.done()) {
    process.kill(-server.pid, 'SIGTERM');
    await Promise.race([server.exited, new Promise((r) => setTimeout(r, 15_000))]);
    server.cleanup();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('serve --workers 2', () => {
  it('admits exactly min(N, R) requests over both processes (limit 20, 50 concurrent)', async () => {
    const pk = site('rate-workers', '--rate-limit', '20');
    const all = await Promise.all(Array.from({ length: 50 }, () => widget('rate-workers', pk, 'GET', '/config')));
    expect(all.filter((r) => r.status === 200)).toHaveLength(20);
    expect(all.filter((r) => r.status === 429)).toHaveLength(30);
    expect((await servedBy('/v1/widget/rate-workers/')).size).toBe(2);
  });

  it('500 concurrent ticket creations against a cap allowing 100 create exactly 100; spend equals the actions', async () => {
    const pk = site('cap-workers', '--daily-cap-micros', String(100 * 10_000), '--rate-limit', '100000');
    const all = await Promise.all(
      Array.from({ length: 500 }, (_, i) => widget('cap-workers', pk, 'POST', '/tickets', { message: `race ${i}` })),
    );
    expect(all.filter((r) => r.status === 201)).toHaveLength(100);
    expect(all.filter((r) => r.status === 402)).toHaveLength(400);
    expect((await servedBy('/v1/widget/cap-workers/')).size).toBe(2);
    const db = readOnly(dbPath);
    try {
      const ledger = spendLedger(db, 'cap-workers');
      expect(ledger.tickets).toBe(100);
      expect(ledger.spent).toBe(1_000_000);
      expect(ledger.spent).toBe(ledger.tickets * ledger.ticketPrice + (ledger.visitorMessages - ledger.tickets) * ledger.messagePrice);
    } finally {
      db.close();
    }
  });

  it('a reply written by another process reaches an open stream within one second', async () => {
    const pk = site('live-workers', '--rate-limit', '10000');
    const created = await widget('live-workers', pk, 'POST', '/tickets', { message: 'anyone?' });
    expect(created.status).toBe(201);
    const id = created.json.ticket.id as string;
    const stream = await openStream(`${base}/v1/widget/live-workers/tickets/${id}/events`, {
      'X-Parley-Key': pk, Origin: ORIGIN, 'X-Visitor-Token': created.json.visitor_token,
    });
    try {
      expect(stream.status).toBe(200);
      const bodies = () => stream.events.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { body: string }).body);
      // Replies through the management API, each on a new connection: the workers take turns.
      for (let i = 0; i < 6; i++) {
        const started = Date.now();
        const r = await rawRequest(`${base}/v1/sites/live-workers/tickets/${id}/messages`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${sk}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ message: `reply ${i}` }),
        });
        expect(r.status, r.body).toBe(201);
        await stream.until(() => bodies().includes(`reply ${i}`), `reply ${i}`, 1000);
        expect(Date.now() - started).toBeLessThan(1000);
      }
      expect((await servedBy(`/v1/sites/live-workers/tickets/${id}/messages`)).size).toBe(2);
      // And a write by a third process (this one) through the repositories.
      const db = openDatabase(dbPath);
      try {
        const seq = findTicketById(db, id)!.seq;
        const started = Date.now();
        db.transaction(() => insertMessage(db, {
          id: newId('msg'), ticket_seq: seq, author: 'agent', author_name: null, body: 'from a third process', created_at: Date.now(),
        })).immediate();
        await stream.until(() => bodies().includes('from a third process'), 'the third process reply', 1000);
        expect(Date.now() - started).toBeLessThan(1000);
      } finally {
        db.close();
      }
      expect(bodies()).toEqual([...Array.from({ length: 6 }, (_, i) => `reply ${i}`), 'from a third process']);
    } finally {
      stream.close();
    }
  });
});
