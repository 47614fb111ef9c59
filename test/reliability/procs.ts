// Real server processes for the crash, concurrency and resource tests: `node server/bin/parley.js
// serve` over a database file that the test seeds directly and inspects afterwards.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CreateSiteBody } from '@parley/shared';
import { openDatabase } from '../../server/src/db/open.js';
import { createSite, createWorkspace } from '../../server/src/services/provisioning.js';
import { freePort, parley, waitForHttp, type Proc } from '../../server/src/test-helpers/spawn.js';
import { rememberSecret, watchLogs } from './support.js';
import { newServiceId, type Env } from './world.js';

export interface Served {
  proc: Proc;
  base: string;
  port: number;
  /** Sends a signal to the whole process group (the primary and its workers). */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILLs whatever is left and waits for the exit. */
  kill(): Promise<void>;
}

const running = new Set<Served>();

/** Starts `parley serve` on a free port over `db` and waits for /healthz. */
export async function serve(db: string, opts: { workers?: number; env?: Record<string, string> } = {}): Promise<Served> {
  const port = await freePort();
  const args = ['serve', '--port', String(port), '--db', db, '--log-level', 'info'];
  if (opts.workers && opts.workers > 1) args.push('--workers', String(opts.workers));
  const proc = parley(args, { detached: true, env: opts.env });
  watchLogs(() => [...proc.out, ...proc.err]);
  const base = `http://127.0.0.1:${port}`;
  const served: Served = {
    proc,
    base,
    port,
    signal(sig) {
      try {
        process.kill(-proc.pid, sig);
      } catch {
        // already gone
      }
    },
    async kill() {
      served.signal('SIGKILL');
      await proc.exited;
      running.delete(served);
    },
  };
  running.add(served);
  try {
    await waitForHttp(`${base}/healthz`, 30_000);
  } catch (err) {
    await served.kill();
    throw new Error(`${(err as Error).message}\nstdout:\n${proc.out.slice(-20).join('\n')}\nstderr:\n${proc.err.slice(-20).join('\n')}`);
  }
  return served;
}

/** Kills every server this file started (for afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.kill()));
}

export interface SeededSite {
  dbPath: string;
  serviceId: string;
  siteRowId: number;
  origin: string;
  pk: Record<Env, string>;
  sk: Record<Env, string>;
}

/** A fresh database file (in its own temp folder) holding one workspace and one site. */
export function seedDb(site: Partial<CreateSiteBody> = {}, dbPath?: string): SeededSite {
  const path = dbPath ?? join(mkdtempSync(join(tmpdir(), 'parley-rel-')), 'parley.db');
  const db = openDatabase(path);
  try {
    const now = Date.now();
    const ws = createWorkspace(db, 'Reliability', now);
    const serviceId = site.service_id ?? newServiceId('proc');
    const origin = site.allowed_origins?.[0] ?? `https://${serviceId}.example`;
    const made = createSite(db, ws.workspace.id, { service_id: serviceId, name: 'Reliability site', allowed_origins: [origin], ...site }, now);
    const out: SeededSite = {
      dbPath: path,
      serviceId,
      siteRowId: made.site.id,
      origin,
      pk: { live: made.keys.live.secret, test: made.keys.test.secret },
      sk: { live: ws.keys.live.secret, test: ws.keys.test.secret },
    };
    for (const k of [...Object.values(out.pk), ...Object.values(out.sk)]) rememberSecret(k);
    return out;
  } finally {
    db.close();
  }
}
