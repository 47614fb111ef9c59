// immediate(db, fn): the semantics of db.transaction(fn).immediate() (and of a nested
// db.transaction(fn)() inside another transaction), and a wait for another connection's write lock.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS, openDatabase, type DB } from './open.js';
import { immediate } from './transact.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-transact-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function fresh(): { db: DB; path: string } {
  const path = join(dir, `db-${++n}.db`);
  const db = openDatabase(path);
  db.exec('CREATE TABLE t (v TEXT NOT NULL)');
  return { db, path };
}
const values = (db: DB) => (db.prepare('SELECT v FROM t ORDER BY rowid').all() as { v: string }[]).map((r) => r.v);

describe('immediate', () => {
  it('commits what fn wrote and returns its value', () => {
    const { db } = fresh();
    expect(immediate(db, () => (db.prepare("INSERT INTO t VALUES ('a')").run(), 42))).toBe(42);
    expect(db.inTransaction).toBe(false);
    expect(values(db)).toEqual(['a']);
    db.close();
  });

  it('rolls everything back when fn throws, and rethrows', () => {
    const { db } = fresh();
    const boom = new Error('boom');
    expect(() =>
      immediate(db, () => {
        db.prepare("INSERT INTO t VALUES ('a')").run();
        throw boom;
      }),
    ).toThrow(boom);
    expect(db.inTransaction).toBe(false);
    expect(values(db)).toEqual([]);
    db.close();
  });

  it('inside a transaction is a savepoint: an inner throw undoes only the inner writes', () => {
    const { db } = fresh();
    immediate(db, () => {
      db.prepare("INSERT INTO t VALUES ('outer')").run();
      expect(() =>
        immediate(db, () => {
          db.prepare("INSERT INTO t VALUES ('inner')").run();
          throw new Error('inner');
        }),
      ).toThrow('inner');
      immediate(db, () => db.prepare("INSERT INTO t VALUES ('kept')").run());
      expect(db.inTransaction).toBe(true);
    });
    expect(values(db)).toEqual(['outer', 'kept']);
    // And nested in better-sqlite3's own transactions too.
    db.transaction(() => immediate(db, () => db.prepare("INSERT INTO t VALUES ('bs3')").run())).immediate();
    expect(values(db)).toEqual(['outer', 'kept', 'bs3']);
    db.close();
  });

  it('takes an IMMEDIATE lock: a write elsewhere waits for the commit', () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    other.pragma('busy_timeout = 0');
    immediate(db, () => {
      expect(() => other.prepare("INSERT INTO t VALUES ('other')").run()).toThrow(/database is locked/);
    });
    other.prepare("INSERT INTO t VALUES ('other')").run();
    expect(values(db)).toEqual(['other']);
    other.close();
    db.close();
  });

  it('waits while another connection holds the write lock, then commits; the busy timeout is restored', async () => {
    const { db, path } = fresh();
    // A thread takes the write lock, says so, and commits its row a little later.
    const holder = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require(workerData.driver);
       const db = new Database(workerData.path);
       db.prepare('BEGIN IMMEDIATE').run();
       db.prepare("INSERT INTO t VALUES ('holder')").run();
       parentPort.postMessage('locked');
       setTimeout(() => { db.prepare('COMMIT').run(); db.close(); parentPort.close(); }, 100);`,
      { eval: true, workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), path } },
    );
    await new Promise<void>((resolve, reject) => {
      holder.once('message', () => resolve());
      holder.once('error', reject);
    });
    // Blocks this thread until the holder commits (it runs on its own thread meanwhile).
    immediate(db, () => db.prepare("INSERT INTO t VALUES ('waiter')").run());
    expect(values(db)).toEqual(['holder', 'waiter']);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
    await new Promise((r) => holder.once('exit', r));
    db.close();
  });
});
