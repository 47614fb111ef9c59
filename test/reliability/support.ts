// Shared machinery of the reliability suite: the fast/full switch, the counters behind the summary
// line, the registry of minted secrets checked against every log line, HTTP helpers that count
// what they send, and a digest of the business tables to prove that a refused request changed nothing.
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { codeToStatus, ErrorEnvelope } from '@parley/shared';
import Database from 'better-sqlite3';
import { afterAll, expect, test } from 'vitest';

/** `pnpm test:reliability` sets PARLEY_RELIABILITY=full; the default test run takes a fast slice. */
export const FULL = process.env.PARLEY_RELIABILITY === 'full';
export const pick = <T>(fast: T, full: T): T => (FULL ? full : fast);

/** The figures of the summary line, for this test file; written to the shared folder after it. */
export const counters = { requests: 0, badInputs: 0, crashes: 0, lost: 0, crossReads: 0 };

const secrets = new Set<string>();
const logSources: (() => string[])[] = [];

/** A key, visitor token or private key minted during the run: it must never reach a log line. */
export function rememberSecret(secret: unknown): void {
  if (typeof secret === 'string' && secret.length >= 16) secrets.add(secret);
}

/** A source of server log lines (harness `srv.logs`, a spawned server's stdout and stderr). */
export function watchLogs(source: () => string[]): void {
  logSources.push(source);
}

function sharedDir(): string {
  const dir = process.env.PARLEY_RELIABILITY_DIR ?? join(tmpdir(), 'parley-reliability-adhoc');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Secrets found in log lines: [secret prefix, line start] pairs (never the whole secret). */
export function leaksIn(lines: Iterable<string>, candidates: Iterable<string>): string[] {
  const list = [...candidates];
  const found: string[] = [];
  for (const line of lines) {
    for (const s of list) if (line.includes(s)) found.push(`${s.slice(0, 12)}... in: ${line.slice(0, 160)}`);
  }
  return found;
}

/**
 * Call once at the top of every test file: declares the file's last test (no minted secret in any
 * log line) and, after the file, hands its counters, secrets and logs to the global teardown.
 */
export function reliabilityFile(): void {
  const id = randomUUID();
  afterAll(() => {
    const dir = sharedDir();
    writeFileSync(join(dir, `counters-${id}.json`), JSON.stringify(counters));
    writeFileSync(join(dir, `secrets-${id}.txt`), [...secrets].join('\n'));
    for (const source of logSources) appendFileSync(join(dir, `logs-${id}.txt`), source().map((l) => `${l}\n`).join(''));
  });
}

/** The last test of a file: declared by each file after its other tests so it runs after them. */
export function noSecretsInLogsTest(): void {
  test('no minted key, visitor token or private key appears in any log line', () => {
    const lines = logSources.flatMap((s) => s());
    expect(lines.length).toBeGreaterThan(0);
    expect(secrets.size).toBeGreaterThan(0);
    expect(leaksIn(lines, secrets)).toEqual([]);
  });
}

/** Pulls every secret out of a response body: visitor tokens, key plaintexts, private keys. */
function harvest(value: unknown, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'string' && (k === 'visitor_token' || k === 'secret' || k === 'private_key_pem' || k === 'live' || k === 'test')) {
      rememberSecret(v);
    } else harvest(v, depth + 1);
  }
}

export interface Reply {
  status: number;
  headers: Headers;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export interface SendOptions {
  headers?: Record<string, string>;
  /** Sent as JSON with Content-Type application/json unless `raw` is given. */
  body?: unknown;
  raw?: string | Buffer;
  timeoutMs?: number;
}

/** One HTTP request with fetch, counted. Event streams are cut after their headers. */
export async function send(base: string, method: string, path: string, o: SendOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  let body: string | Buffer | undefined = o.raw;
  if (body === undefined && o.body !== undefined) {
    body = JSON.stringify(o.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  counters.requests++;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.timeoutMs ?? 20_000);
  try {
    const r = await fetch(base + path, { method, headers, body: Buffer.isBuffer(body) ? new Uint8Array(body) : body, signal: abort.signal });
    if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await r.body?.cancel();
      return { status: r.status, headers: r.headers, json: null, text: '' };
    }
    const text = await r.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    harvest(json);
    return { status: r.status, headers: r.headers, json, text };
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts the SPEC's error envelope: a listed code, its status, a request id matching the header. */
export function expectEnvelope(r: Reply, what = ''): void {
  const parsed = ErrorEnvelope.safeParse(r.json);
  expect(parsed.success, `${what} ${r.status} is not the error envelope: ${r.text.slice(0, 300)}`).toBe(true);
  if (!parsed.success) return;
  expect(codeToStatus(parsed.data.error.code), `${what} code ${parsed.data.error.code} under status ${r.status}`).toBe(r.status);
  expect(r.headers.get('x-request-id'), `${what} X-Request-Id`).toBe(parsed.data.error.request_id);
}

/** Whether an envelope problem exists, for property tests that must return booleans or throw. */
export function envelopeProblem(r: Reply): string | null {
  const parsed = ErrorEnvelope.safeParse(r.json);
  if (!parsed.success) return `not the error envelope: ${r.text.slice(0, 200)}`;
  if (codeToStatus(parsed.data.error.code) !== r.status) return `code ${parsed.data.error.code} under status ${r.status}`;
  if (r.headers.get('x-request-id') !== parsed.data.error.request_id) return 'X-Request-Id differs from error.request_id';
  return null;
}

// ---- the database digest ----

/**
 * The business tables, each in a fixed order, with the columns that make up the product's state.
 * Left out on purpose, because a refused request may (and per the SPEC should) touch them:
 * - `refusals`: the per-day counts of refused requests by code, shown in usage;
 * - `rate_limits`: token-bucket state; a request refused after the origin check spends a token;
 * - `api_keys.last_used_at` and `exposed_at`: key bookkeeping; a secret key sent to a widget route
 *   with an Origin is marked exposed by the SPEC even though the request is refused;
 * - `idempotency`: the replay cache of responses, not business state;
 * - `ticket_events` is kept: a refused write must not announce anything to live streams.
 */
const DIGEST_TABLES: { table: string; columns: string; order: string }[] = [
  { table: 'workspaces', columns: '*', order: 'id' },
  { table: 'sites', columns: '*', order: 'id' },
  {
    table: 'api_keys',
    columns: 'id, hash, prefix, name, type, environment, scopes, workspace_id, site_id, sites, created_at, expires_at, revoked_at',
    order: 'id',
  },
  { table: 'tickets', columns: '*', order: 'seq' },
  { table: 'messages', columns: '*', order: 'seq' },
  { table: 'ticket_events', columns: '*', order: 'seq' },
  { table: 'spend_meters', columns: '*', order: 'site_id, environment, day' },
  { table: 'signing_keys', columns: '*', order: 'id' },
  { table: 'visitor_tokens', columns: '*', order: 'hash' },
];

const digestStatements = new WeakMap<Database.Database, Database.Statement[]>();

/** SHA-256 over the business tables (see DIGEST_TABLES for what is left out and why). */
export function digest(db: Database.Database): string {
  let stmts = digestStatements.get(db);
  if (!stmts) {
    stmts = DIGEST_TABLES.map((t) => db.prepare(`SELECT ${t.columns} FROM ${t.table} ORDER BY ${t.order}`).raw(true));
    digestStatements.set(db, stmts);
  }
  const h = createHash('sha256');
  for (const [i, stmt] of stmts.entries()) {
    h.update(`#${DIGEST_TABLES[i]!.table}\n`);
    for (const row of stmt.all() as unknown[][]) {
      for (const v of row) h.update(Buffer.isBuffer(v) ? v.toString('hex') : `${typeof v}:${String(v)}`).update('\u0001');
      h.update('\n');
    }
  }
  return h.digest('hex');
}

/** A digest of a database file that a server process holds open (WAL lets us read alongside it). */
export function digestFile(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return digest(db);
  } finally {
    db.close();
  }
}

/** Test keys and paths of the suite's artefacts. */
export const ARTIFACTS = new URL('../artifacts/', import.meta.url);
