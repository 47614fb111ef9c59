// `parley serve` as a real process: SIGTERM drains in-flight requests and exits 0, `--workers 2`
// serves one port from two processes, a killed worker is replaced, and SIGTERM to the process
// group stops everything without a respawn.
import { request, type ClientRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { exitWithin, parley, rawRequest, type Proc } from './test-helpers/spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-main-'));
const procs: Proc[] = [];
afterEach(() => {
  // A failed test must not leave servers behind.
  for (const p of procs) if (!p.done() && !keep.has(p)) p.cleanup();
});
afterAll(() => {
  for (const p of procs) p.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
const keep = new Set<Proc>();

let n = 0;
function serve(args: string[], detached = false): Proc {
  const p = parley(['serve', '--port', '0', '--db', join(dir, `main-${++n}.db`), ...args], { detached });
  procs.push(p);
  return p;
}

type Log = { msg?: string; pid?: number; url?: string; status?: number; path?: string };
const logsOf = (p: Proc) => p.logs() as Log[];
const listening = (p: Proc) => logsOf(p).filter((l) => l.msg === 'Parley listening');

interface Slow {
  req: ClientRequest;
  /** Resolves once the server has read the headers (it answered `100 Continue`). */
  started: Promise<void>;
  /** Sends the rest of the body; resolves with the whole response. */
  finish(): Promise<{ status: number; body: string }>;
}

/** A POST whose body is held back: in flight on the server until `finish` is called. */
function slowPost(base: string, path: string, body: string): Slow {
  let response!: Promise<{ status: number; body: string }>;
  const req = request(`${base}${path}`, {
    method: 'POST',
    agent: false,
    headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Expect: '100-continue', Connection: 'close' },
  });
  response = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  const started = new Promise<void>((resolve, reject) => {
    req.once('continue', () => resolve());
    req.once('error', reject);
  });
  req.flushHeaders();
  return {
    req,
    started,
    finish() {
      const half = Math.floor(body.length / 2);
      req.write(body.slice(0, half));
      req.end(body.slice(half));
      return response;
    },
  };
}

async function refused(url: string): Promise<boolean> {
  try {
    await rawRequest(url);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
}

/** Sends `count` requests, `concurrency` at a time, each on a new connection. */
async function hammer(url: string, count: number, concurrency = 8): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        statuses.push((await rawRequest(url)).status);
      }
    }),
  );
  return statuses;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('parley serve (one process)', { timeout: 60_000 }, () => {
  it('drains in-flight requests on SIGTERM, refuses new connections and exits 0', async () => {
    const p = serve([]);
    const url = (await p.waitFor(() => listening(p)[0]?.url, '"Parley listening"')) as string;

    const warm = await Promise.all(Array.from({ length: 30 }, () => rawRequest(`${url}/healthz`)));
    expect(warm.map((r) => r.status)).toEqual(warm.map(() => 200));

    // Five requests the server is in the middle of (headers read, body still coming), one of them large.
    const bodies = [JSON.stringify({ message: 'x'.repeat(30_000) }), ...Array.from({ length: 4 }, (_, i) => JSON.stringify({ i }))];
    const slow = bodies.map((b) => slowPost(url, '/drain-probe', b));
    await Promise.all(slow.map((s) => s.started));

    p.child.kill('SIGTERM');
    await p.waitFor(() => logsOf(p).some((l) => l.msg === 'draining'), '"draining"');
    // Still running (five requests in flight), but no longer accepting connections.
    const refusedWhileDraining = await (async () => {
      for (let i = 0; i < 100; i++) {
        if (await refused(`${url}/healthz`)) return true;
        await new Promise((r) => setTimeout(r, 20));
      }
      return false;
    })();
    expect(refusedWhileDraining).toBe(true);
    expect(p.done()).toBe(false);

    const answers = await Promise.all(slow.map((s) => s.finish()));
    for (const a of answers) {
      expect(a.status).toBe(404); // a complete answer from the app, after the signal
      expect(JSON.parse(a.body).error.code).toBe('not_found');
    }

    const exit = await exitWithin(p, 10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(logsOf(p).some((l) => l.msg === 'stopped')).toBe(true);
    expect(await refused(`${url}/healthz`)).toBe(true);
    expect(p.err.filter(Boolean)).toEqual([]);
  });

  it('exits 0 at once on SIGTERM when idle', async () => {
    const p = serve([]);
    await p.waitFor(() => listening(p)[0], '"Parley listening"');
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    expect(await exitWithin(p, 10_000)).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe('parley serve --workers 2', { timeout: 60_000 }, () => {
  let p: Proc;
  let url: string;
  let workerPids: number[];

  it('starts two worker processes on one port', async () => {
    p = serve(['--workers', '2'], true);
    keep.add(p); // the next tests go on with the same server
    await p.waitFor(() => listening(p).length >= 2, 'two "Parley listening" lines');
    const lines = listening(p);
    expect(lines).toHaveLength(2);
    workerPids = lines.map((l) => l.pid!);
    expect(new Set(workerPids).size).toBe(2);
    expect(workerPids).not.toContain(p.pid);
    expect(lines[0]!.url).toBe(lines[1]!.url);
    url = lines[0]!.url!;
  });

  it('answers from both workers', async () => {
    const statuses = await hammer(`${url}/healthz`, 200);
    expect(statuses.filter((s) => s === 200)).toHaveLength(200);
    const served = () => new Set(logsOf(p).filter((l) => l.msg === 'request' && l.path === '/healthz').map((l) => l.pid));
    await p.waitFor(() => logsOf(p).filter((l) => l.msg === 'request').length >= 200, '200 request log lines');
    expect([...served()].sort()).toEqual([...workerPids].sort());
  });

  it('replaces a worker killed with SIGKILL and keeps serving the port', async () => {
    const [victim, survivor] = workerPids as [number, number];
    process.kill(victim, 'SIGKILL');
    await p.waitFor(() => logsOf(p).some((l) => l.msg?.startsWith('worker died')), '"worker died"');
    // With one worker down the port still answers, every time.
    const during = await hammer(`${url}/healthz`, 20, 2);
    expect(during).toEqual(during.map(() => 200));

    await p.waitFor(() => listening(p).length >= 3, 'a replacement worker');
    const replacement = listening(p)[2]!;
    expect(replacement.url).toBe(url);
    expect([victim, survivor, p.pid]).not.toContain(replacement.pid);
    expect(alive(victim)).toBe(false);

    const before = logsOf(p).length;
    const after = await hammer(`${url}/healthz`, 60);
    expect(after).toEqual(after.map(() => 200));
    await p.waitFor(
      () => logsOf(p).slice(before).some((l) => l.msg === 'request' && l.pid === replacement.pid),
      'a request served by the replacement',
    );
    workerPids = [survivor, replacement.pid!];
  });

  it('on SIGTERM to the process group: finishes in-flight work, exits 0, respawns nothing', async () => {
    const slow = slowPost(url, '/drain-probe', JSON.stringify({ message: 'y'.repeat(20_000) }));
    await slow.started;
    const listeningBefore = listening(p).length;

    process.kill(-p.pid, 'SIGTERM');
    await p.waitFor(() => logsOf(p).some((l) => l.msg === 'draining workers'), '"draining workers"');
    const answer = await slow.finish();
    expect(answer.status).toBe(404);

    expect(await exitWithin(p, 15_000)).toEqual({ code: 0, signal: null });
    keep.delete(p);
    expect(listening(p).length).toBe(listeningBefore);
    expect(logsOf(p).filter((l) => l.msg?.startsWith('worker died'))).toHaveLength(1); // only the SIGKILL above
    for (const pid of workerPids) await p.waitFor(() => !alive(pid), `worker ${pid} to be gone`, 5_000);
    expect(await refused(`${url}/healthz`)).toBe(true);
  });

  it('on SIGTERM to the primary alone: stops the workers and exits 0', async () => {
    const q = serve(['--workers', '2']);
    await q.waitFor(() => listening(q).length >= 2, 'two "Parley listening" lines');
    const pids = listening(q).map((l) => l.pid!);
    const qUrl = listening(q)[0]!.url!;
    expect((await rawRequest(`${qUrl}/healthz`)).status).toBe(200);

    q.child.kill('SIGTERM');
    expect(await exitWithin(q, 15_000)).toEqual({ code: 0, signal: null });
    expect(logsOf(q).some((l) => l.msg === 'all workers stopped')).toBe(true);
    expect(logsOf(q).some((l) => l.msg?.startsWith('worker died'))).toBe(false);
    expect(listening(q)).toHaveLength(2);
    for (const pid of pids) await q.waitFor(() => !alive(pid), `worker ${pid} to be gone`, 5_000);
  });
});
