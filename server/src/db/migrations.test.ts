import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, migrations } from './migrations/index.js';
import { openDatabase, type DB } from './open.js';
import { requireBuild } from '../test-helpers/spawn.js';

const TABLES = [
  'admission_generation', 'api_keys', 'idempotency', 'messages', 'rate_limits', 'refusals', 'schema_migrations', 'server_secrets', 'signing_keys', 'sites',
  'spend_meters', 'ticket_events', 'tickets', 'visitor_tokens', 'workspaces',
];

const dirs: string[] = [];
const open: DB[] = [];
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-migrations-'));
  dirs.push(dir);
  return join(dir, 'nested', 'parley.db');
}
function track(db: DB): DB {
  open.push(db);
  return db;
}
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const tables = (db: DB) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);

describe('migrations', () => {
  it('gives a fresh database every table and records each migration', () => {
    const db = track(openDatabase(tempDb()));
    expect(tables(db)).toEqual(TABLES);
    const rows = db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
      version: number; name: string; applied_at: number;
    }[];
    expect(rows.map((r) => [r.version, r.name])).toEqual(migrations.map((m) => [m.version, m.name]));
    for (const r of rows) expect(r.applied_at).toBeGreaterThan(Date.UTC(2024, 0, 1));
  });

  it('has an index behind the lookups on a request path', () => {
    const db = track(openDatabase(tempDb()));
    const plan = (sql: string, ...args: unknown[]) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[]).map((r) => r.detail).join(' | ');
    // Every one of these must search an index, never scan the table.
    const lookups = [
      plan('SELECT * FROM api_keys WHERE hash = ?', Buffer.alloc(32)),
      plan('SELECT * FROM sites WHERE service_id = ?', 'x'),
      plan('SELECT * FROM tickets WHERE id = ?', 'x'),
      plan('SELECT * FROM tickets WHERE site_id = ? AND environment = ? ORDER BY seq DESC LIMIT 50', 1, 'live'),
      plan('SELECT * FROM messages WHERE ticket_seq = ? ORDER BY seq LIMIT 100', 1),
      plan('SELECT * FROM spend_meters WHERE site_id = ? AND environment = ? AND day = ?', 1, 'live', '2025-01-01'),
      plan('SELECT * FROM rate_limits WHERE bucket = ?', 'b'),
      plan('SELECT * FROM idempotency WHERE scope = ? AND key = ?', 's', 'k'),
      plan('SELECT ticket_seq FROM visitor_tokens WHERE hash = ?', Buffer.alloc(32)),
      plan('SELECT * FROM tickets WHERE site_id = ? AND environment = ? AND user_id = ? AND seq < ? ORDER BY seq DESC LIMIT 11', 1, 'live', 'u', 9),
      plan('SELECT * FROM signing_keys WHERE id = ? AND site_id = ?', 'sgk_x', 1),
    ];
    for (const p of lookups) {
      expect(p).toMatch(/SEARCH/);
      expect(p).not.toMatch(/SCAN/);
    }
  });

  it('re-running migrate is a no-op that keeps the data', () => {
    const path = tempDb();
    const db = track(openDatabase(path));
    db.prepare('INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)').run('ws_1', 'Acme', 1);
    expect(migrate(db)).toEqual([]);
    expect(migrate(db)).toEqual([]);
    db.close();

    const again = track(openDatabase(path));
    expect(migrate(again)).toEqual([]);
    expect(again.prepare('SELECT name FROM workspaces WHERE id = ?').get('ws_1')).toEqual({ name: 'Acme' });
    expect(again.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: migrations.length });
  });

  it('applies pending migrations to a bare database and reports them', () => {
    const db = track(new Database(':memory:'));
    expect(migrate(db, () => 42)).toEqual(migrations.map((m) => m.version));
    expect(db.prepare('SELECT applied_at FROM schema_migrations').all()).toEqual(migrations.map(() => ({ applied_at: 42 })));
  });

  it('rolls a failed migration back completely', () => {
    const db = track(new Database(':memory:'));
    // A database where the first migration's tables exist already: 001 fails half way, nothing sticks.
    db.exec('CREATE TABLE tickets (x INTEGER)');
    expect(() => migrate(db)).toThrow();
    expect(tables(db)).toEqual(['schema_migrations', 'tickets']);
    expect(db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: 0 });
  });

  it('sets WAL, foreign keys and synchronous=NORMAL by default', () => {
    const db = track(openDatabase(tempDb()));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(1000);
  });

  it('sets synchronous=FULL with durability full', () => {
    const db = track(openDatabase(tempDb(), 'full'));
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('enforces foreign keys', () => {
    const db = track(openDatabase(tempDb()));
    expect(() =>
      db.prepare(`INSERT INTO sites (service_id, workspace_id, name, allowed_origins, rate_limit_per_minute,
        daily_spend_cap_micros, price_ticket_create, price_message_create, widget, created_at)
        VALUES ('s', 'ws_missing', 'n', '[]', 1, 1, 1, 1, '{}', 1)`).run(),
    ).toThrow(/FOREIGN KEY/);
  });

  it('lets several processes open a fresh database at the same moment', async () => {
    requireBuild();
    const openJs = fileURLToPath(new URL('../../dist/db/open.js', import.meta.url));
    const script = `
      const { openDatabase } = await import(${JSON.stringify(openJs)});
      const db = openDatabase(process.argv[1]);
      const n = db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get().n;
      db.close();
      process.stdout.write(String(n));
    `;
    for (let round = 0; round < 3; round++) {
      const path = tempDb();
      const results = await Promise.all(
        Array.from({ length: 4 }, () =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            child.stdout.on('data', (c: Buffer) => (out += c));
            child.stderr.on('data', (c: Buffer) => (err += c));
            child.on('close', (code) => resolve({ code, out, err }));
          }),
        ),
      );
      for (const r of results) expect(r, r.err).toMatchObject({ code: 0, out: String(migrations.length) });
      const db = track(openDatabase(path));
      expect(db.prepare('SELECT version FROM schema_migrations').all()).toEqual(migrations.map((m) => ({ version: m.version })));
    }
  });
});
