// Test harness: a real server on port 0 over a real SQLite file in a temp folder, spoken to over
// HTTP with fetch. Each call makes its own database and cleans up after itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CreateSiteBody } from '@parley/shared';
import { loadConfig } from '../config.js';
import type { AppContext } from '../context.js';
import { createLogger } from '../logger.js';
import { createSite, createWorkspace } from '../services/provisioning.js';
import { startServer, type Running } from '../server.js';

export interface TestServer {
  base: string;
  dir: string;
  dbPath: string;
  ctx: AppContext;
  running: Running;
  /** Every log line the server wrote, for the secrets tests. */
  logs: string[];
  /** The clock the server reads; tests move it with `advance`/`set`. */
  clock: { now: number; advance(ms: number): void; set(ms: number): void };
  close(): Promise<void>;
}

export interface TestServerOptions {
  startAt?: number;
  limits?: Partial<AppContext['limits']>;
  dir?: string;
  dbPath?: string;
  /** PARLEY_TRUST_PROXY's value (default: false). */
  trustProxy?: string;
}

/** Starts Parley on 127.0.0.1:0 over a fresh database file. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const dbPath = opts.dbPath ?? join(dir, 'parley.db');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const clock = {
    now: opts.startAt ?? Date.now(),
    advance(ms: number) {
      this.now += ms;
    },
    set(ms: number) {
      this.now = ms;
    },
  };
  const config = loadConfig({}, { db: dbPath, port: '0', host: '127.0.0.1', logLevel: 'info', ...(opts.trustProxy !== undefined && { trustProxy: opts.trustProxy }) });
  const running = await startServer({ config, logger: createLogger('info', sink), clock: () => clock.now, limits: opts.limits });
  const base = `http://127.0.0.1:${running.port}`;
  return {
    base,
    dir,
    dbPath,
    ctx: running.ctx,
    running,
    logs,
    clock,
    async close() {
      await running.close(1000);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Fixture {
  workspaceId: string;
  sk: { live: string; test: string };
  pk: { live: string; test: string };
  serviceId: string;
  origin: string;
}

let counter = 0;
/** A workspace with a site (origin https://shop.example by default) and all four keys. */
export function seed(ctx: AppContext, site: Partial<CreateSiteBody> = {}, workspaceName = 'Acme'): Fixture {
  const now = ctx.clock();
  const ws = createWorkspace(ctx.db, workspaceName, now);
  const serviceId = site.service_id ?? `site-${process.pid}-${++counter}`;
  const origin = site.allowed_origins?.[0] ?? 'https://shop.example';
  const made = createSite(ctx.db, ws.workspace.id, {
    service_id: serviceId,
    name: 'Acme Help',
    allowed_origins: [origin],
    ...site,
  }, now);
  return {
    workspaceId: ws.workspace.id,
    sk: { live: ws.keys.live.secret, test: ws.keys.test.secret },
    pk: { live: made.keys.live.secret, test: made.keys.test.secret },
    serviceId,
    origin,
  };
}

export interface CallOptions {
  key?: string;
  origin?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

/** One HTTP call: a pk_ key goes in X-Parley-Key, an sk_ key in Authorization: Bearer. */
export async function call(base: string, method: string, path: string, o: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.key) {
    if (o.key.startsWith('pk_')) headers['X-Parley-Key'] = o.key;
    else headers.Authorization = `Bearer ${o.key}`;
  }
  if (o.origin) headers.Origin = o.origin;
  let body: string | undefined;
  if (o.rawBody !== undefined) body = o.rawBody;
  else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const r = await fetch(base + path, { method, headers, body });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: r.status, headers: r.headers, json, text };
}
