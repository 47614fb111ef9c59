// The checkpoint thread: the serving connection's commits never checkpoint, the thread copies
// committed pages into the database file, the WAL stays bounded, and a clean stop leaves no WAL
// behind.
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.js';
import { startCheckpointer } from './checkpoint.js';
import { openDatabase, type DB } from './open.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const logs: string[] = [];
const logger = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
let n = 0;
const PAGE = 4096;

/** Polls `check` until it holds; the test's own timeout bounds the wait. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

/** Commits about `pages` pages of new rows, one transaction. */
function writePages(db: DB, pages: number): void {
  const insert = db.prepare('INSERT INTO blobs (data) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < pages; i++) insert.run(Buffer.alloc(PAGE - 200, i % 251));
  })();
}

function fresh(): { db: DB; path: string } {
  const path = join(dir, `db-${++n}.db`);
  const db = openDatabase(path);
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  return { db, path };
}

const size = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/**
 * Whether a checkpoint has copied every committed WAL frame into the database file, read from the
 * WAL-index header in `-shm` (SQLite's walformat: `mxFrame` at byte 16, `nBackfill` at byte 96,
 * native byte order). The file growing is not enough: a pass writes pages before it syncs and
 * records them as copied, and a commit in between appends to the WAL instead of restarting it.
 */
function backfilled(path: string): boolean {
  const header = Buffer.alloc(100);
  const fd = openSync(`${path}-shm`, 'r');
  try {
    if (readSync(fd, header, 0, header.length, 0) < header.length) return false;
  } finally {
    closeSync(fd);
  }
  const u32 = (at: number) => (endianness() === 'LE' ? header.readUInt32LE(at) : header.readUInt32BE(at));
  const mxFrame = u32(16);
  return mxFrame > 0 && u32(96) === mxFrame;
}

describe('startCheckpointer', () => {
  it('turns off checkpoints on commit and copies committed pages into the database file', async () => {
    const { db, path } = fresh();
    const before = size(path);
    const ckpt = startCheckpointer(db, logger, { everyMs: 20 })!;
    try {
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      writePages(db, 300);
      expect(size(`${path}-wal`)).toBeGreaterThan(300 * PAGE);
      await until(() => size(path) >= before + 300 * PAGE);
      expect(db.prepare('SELECT count(*) AS n FROM blobs').get()).toEqual({ n: 300 });
    } finally {
      await ckpt.stop();
      db.close();
    }
    // The last connection to close checkpointed and removed the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(logs.filter((l) => l.includes('checkpoint'))).toEqual([]);
  });

  it('keeps the WAL bounded: once its pages are copied, the next commit writes it from the start', async () => {
    const { db, path } = fresh();
    const ckpt = startCheckpointer(db, logger, { everyMs: 20, restartAfterFrames: 100 })!;
    try {
      let written = 0;
      for (let round = 0; round < 5; round++) {
        writePages(db, 150);
        written += 150;
        // Every frame copied into the file: the next commit starts the WAL over.
        await until(() => backfilled(path));
        expect(size(path)).toBeGreaterThanOrEqual(written * PAGE);
      }
      // Never checkpointed, the WAL would hold all 750 pages.
      expect(size(`${path}-wal`)).toBeLessThan(2 * 160 * PAGE);
      expect(db.prepare('SELECT count(*) AS n FROM blobs').get()).toEqual({ n: written });
    } finally {
      await ckpt.stop();
      db.close();
    }
  });

  it('leaves a database without a WAL alone', () => {
    const db = openDatabase(':memory:');
    try {
      expect(startCheckpointer(db, logger)).toBeNull();
    } finally {
      db.close();
    }
  });

  it('a server stops its thread before it closes the database', async () => {
    const { startServer } = await import('../server.js');
    const { loadConfig } = await import('../config.js');
    const path = join(dir, 'served.db');
    const running = await startServer({ config: loadConfig({}, { db: path, port: '0', host: '127.0.0.1', logLevel: 'silent' }) });
    expect(running.ctx.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await running.close();
    expect(running.ctx.db.open).toBe(false);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});
