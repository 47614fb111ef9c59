// A real Parley for one e2e test file: the built CLI serving on a free port over a fresh SQLite
// file, a workspace made by the CLI, and helpers that speak the management API and read the
// database (read-only) so every scenario can check what was stored, not only what was shown.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'server/bin/parley.js');

/** Fails fast, with the fix, when the server or the widget has not been built. */
export function assertBuilt(): void {
  const missing = ['server/dist/cli/index.js', 'widget/dist/widget.js'].filter((p) => !existsSync(join(ROOT, p)));
  if (missing.length) throw new Error(`e2e tests need a build (missing ${missing.join(', ')}): run \`pnpm build\` first`);
}

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface SiteOptions {
  name?: string;
  origins: string[];
  rate_limit_per_minute?: number;
  daily_spend_cap_micros?: number;
  widget?: Record<string, unknown>;
}

export interface E2eSite {
  serviceId: string;
  /** The live publishable key (the one in the script tag). */
  key: string;
}

export interface StoredMessage {
  ticket_id: string;
  author: 'visitor' | 'agent';
  body: string;
}

let siteCounter = 0;

export class Parley {
  private constructor(
    readonly base: string,
    readonly dbPath: string,
    readonly logPath: string,
    readonly secretKey: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts `parley serve` on a free port over a new database and makes a workspace with the CLI. */
  static async start(): Promise<Parley> {
    assertBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
    const dbPath = join(dir, 'parley.db');
    const logPath = join(dir, 'server.log');
    const port = await freePort();
    const log = createWriteStream(logPath);
    const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--db', dbPath], {
      cwd: ROOT,
      env: { ...process.env, PARLEY_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`parley serve exited (${child.exitCode}):\n${tail(logPath)}`);
      const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`parley serve did not answer /healthz within 20 s:\n${tail(logPath)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const ws = JSON.parse(cli(['workspace', 'create', 'E2E', '--db', dbPath, '--json'])) as {
      keys: { live: { secret: string } };
    };
    return new Parley(base, dbPath, logPath, ws.keys.live.secret, dir, child);
  }

  /** Drains the server with SIGTERM (SIGKILL after 5 s) and removes its files. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines the server logged, for failure reports. */
  logTail(lines = 60): string {
    return tail(this.logPath, lines);
  }

  /** The management API with the workspace's live secret key (or another key). */
  async api<T = any>(method: string, path: string, body?: unknown, key = this.secretKey): Promise<ApiResponse<T>> {
    const res = await fetch(this.base + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as T };
  }

  /** A widget route as a browser on `origin` would call it (for burning rate-limit tokens). */
  async widget<T = any>(site: E2eSite, method: string, path: string, origin: string, body?: unknown): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.base}/v1/widget/${site.serviceId}${path}`, {
      method,
      headers: {
        Origin: origin,
        'X-Parley-Key': site.key,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json().catch(() => null)) as T };
  }

  /** A site made through `POST /v1/sites`, with a unique service id. */
  async createSite(opts: SiteOptions): Promise<E2eSite> {
    const serviceId = `e2e-${process.pid}-${++siteCounter}`;
    const res = await this.api('POST', '/v1/sites', {
      service_id: serviceId,
      name: opts.name ?? 'E2E Shop',
      allowed_origins: opts.origins,
      ...(opts.rate_limit_per_minute !== undefined && { rate_limit_per_minute: opts.rate_limit_per_minute }),
      ...(opts.daily_spend_cap_micros !== undefined && { daily_spend_cap_micros: opts.daily_spend_cap_micros }),
      ...(opts.widget && { widget: opts.widget }),
    });
    if (res.status !== 201) throw new Error(`POST /v1/sites answered ${res.status}: ${JSON.stringify(res.body)}`);
    return { serviceId, key: res.body.publishable_keys.live as string };
  }

  /** A site made through the CLI (`parley site create ... --json`), as an owner would. */
  createSiteWithCli(name: string, origin: string): E2eSite {
    const serviceId = `e2e-cli-${process.pid}-${++siteCounter}`;
    const out = JSON.parse(cli(['site', 'create', serviceId, '--name', name, '--origin', origin, '--db', this.dbPath, '--json'])) as {
      site: { service_id: string };
      publishable_keys: { live: string };
    };
    return { serviceId: out.site.service_id, key: out.publishable_keys.live };
  }

  async patchSite(site: E2eSite, patch: Record<string, unknown>): Promise<void> {
    const res = await this.api('PATCH', `/v1/sites/${site.serviceId}`, patch);
    if (res.status !== 200) throw new Error(`PATCH /v1/sites/${site.serviceId} answered ${res.status}: ${JSON.stringify(res.body)}`);
  }

  /** An agent reply through `POST /v1/sites/:sid/tickets/:id/messages`. */
  async reply(site: E2eSite, ticketId: string, message: string): Promise<{ id: string }> {
    const res = await this.api('POST', `/v1/sites/${site.serviceId}/tickets/${ticketId}/messages`, { message, author_name: 'Sam' });
    if (res.status !== 201) throw new Error(`agent reply answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body.message as { id: string };
  }

  /** Runs one read-only query on the server's database file (a fresh connection each time). */
  query<T>(sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.dbPath, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  /** Ids of the site's stored tickets (any environment), oldest first. */
  storedTickets(site: E2eSite): { id: string; status: string; environment: string }[] {
    return this.query(
      `SELECT t.id, t.status, t.environment FROM tickets t JOIN sites s ON s.id = t.site_id
       WHERE s.service_id = ? ORDER BY t.seq`,
      site.serviceId,
    );
  }

  /** Every stored message of the site, in order. */
  storedMessages(site: E2eSite): StoredMessage[] {
    return this.query(
      `SELECT t.id AS ticket_id, m.author, m.body FROM messages m
       JOIN tickets t ON t.seq = m.ticket_seq JOIN sites s ON s.id = t.site_id
       WHERE s.service_id = ? ORDER BY m.seq`,
      site.serviceId,
    );
  }

  /** Micro-dollars charged to the site, all days and environments. */
  storedSpend(site: E2eSite): number {
    const [row] = this.query<{ spent: number }>(
      `SELECT COALESCE(SUM(m.spent_micros), 0) AS spent FROM spend_meters m JOIN sites s ON s.id = m.site_id
       WHERE s.service_id = ?`,
      site.serviceId,
    );
    return row?.spent ?? 0;
  }
}

function cli(args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tail(path: string, lines = 60): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}
