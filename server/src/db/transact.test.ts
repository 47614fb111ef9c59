// grouped(db, fn), the group commit of the widget's writes, and savepoint(db, fn) inside it.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { BUSY_TIMEOUT_MS, openDatabase, type DB } from './open.js';
import { GROUP_MAX, grouped, savepoint } from './transact.js';

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

describe('savepoint', () => {
  it('inside a transaction: an inner throw undoes only the inner writes', async () => {
    const { db } = fresh();
    await grouped(db, () => {
      db.prepare("INSERT INTO t VALUES ('outer')").run();
      expect(() =>
        savepoint(db, () => {
          db.prepare("INSERT INTO t VALUES ('inner')").run();
          throw new Error('inner');
        }),
      ).toThrow('inner');
      savepoint(db, () => db.prepare("INSERT INTO t VALUES ('kept')").run());
      expect(db.inTransaction).toBe(true);
    });
    expect(values(db)).toEqual(['outer', 'kept']);
    // And nested in better-sqlite3's own transactions too.
    db.transaction(() => savepoint(db, () => db.prepare("INSERT INTO t VALUES ('bs3')").run())).immediate();
    expect(values(db)).toEqual(['outer', 'kept', 'bs3']);
    db.close();
  });
});

describe('grouped', () => {
  const insert = (db: DB, v: string) => db.prepare('INSERT INTO t VALUES (?)').run(v);

  it('takes an IMMEDIATE lock: a write elsewhere waits for the commit', async () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    other.pragma('busy_timeout = 0');
    await grouped(db, () => {
      expect(() => other.prepare("INSERT INTO t VALUES ('other')").run()).toThrow(/database is locked/);
    });
    other.prepare("INSERT INTO t VALUES ('other')").run();
    expect(values(db)).toEqual(['other']);
    other.close();
    db.close();
  });

  it('waits while another thread holds the write lock, then commits; the busy timeout is restored', async () => {
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
    // Listened for from the start: the thread can exit before this test's write has committed.
    const exited = new Promise((r) => holder.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      holder.once('message', () => resolve());
      holder.once('error', reject);
    });
    await grouped(db, () => insert(db, 'waiter'));
    expect(values(db)).toEqual(['holder', 'waiter']);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
    await exited;
    db.close();
  });

  it('runs the writes of one turn in one transaction, and settles each only after its commit', async () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    const seenByOther: string[][] = [];
    const settledSeen: string[][] = [];
    const jobs = ['a', 'b', 'c'].map((v) =>
      grouped(db, () => {
        expect(db.inTransaction).toBe(true);
        insert(db, v);
        // The group's earlier writes are not committed yet: another connection sees none of them.
        seenByOther.push(values(other));
        return v.toUpperCase();
      }).then((value) => {
        settledSeen.push(values(other));
        return value;
      }),
    );
    // Nothing runs in the caller's turn.
    expect(values(db)).toEqual([]);
    expect(await Promise.all(jobs)).toEqual(['A', 'B', 'C']);
    expect(seenByOther).toEqual([[], [], []]);
    expect(settledSeen).toEqual([['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'b', 'c']]);
    expect(db.inTransaction).toBe(false);
    other.close();
    db.close();
  });

  it('a write that throws rolls back alone and rejects with its error; the others commit', async () => {
    const { db } = fresh();
    const boom = new Error('boom');
    const results = await Promise.allSettled([
      grouped(db, () => insert(db, 'a')),
      grouped(db, () => {
        insert(db, 'b');
        throw boom;
      }),
      grouped(db, () => insert(db, 'c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(boom);
    expect(values(db)).toEqual(['a', 'c']);
    db.close();
  });

  it('a failed commit rejects every write of the group and keeps none of them', async () => {
    const { db } = fresh();
    // A deferred foreign key is checked at COMMIT: the group's commit fails.
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)');
    const results = await Promise.allSettled([
      grouped(db, () => insert(db, 'a')),
      grouped(db, () => db.prepare('INSERT INTO child VALUES (42)').run()),
      grouped(db, () => insert(db, 'c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect(String((r as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    expect(db.inTransaction).toBe(false);
    expect(values(db)).toEqual([]);
    // The next turn's group commits as usual.
    await grouped(db, () => insert(db, 'd'));
    expect(values(db)).toEqual(['d']);
    db.close();
  });

  it('when the transaction is lost mid-group, the writes before fail with it and the rest commit in a new one', async () => {
    const { db } = fresh();
    const results = await Promise.allSettled([
      grouped(db, () => insert(db, 'a')),
      grouped(db, () => {
        insert(db, 'b');
        db.prepare('ROLLBACK').run(); // as SQLite does on SQLITE_FULL or an I/O error
      }),
      grouped(db, () => insert(db, 'c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(values(db)).toEqual(['c']);
    db.close();
  });

  it(`splits a turn of more than ${GROUP_MAX} writes into commits of at most ${GROUP_MAX}`, async () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    const n = GROUP_MAX * 2 + 5;
    const committedBefore: number[] = [];
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        grouped(db, () => {
          committedBefore.push(values(other).length);
          insert(db, String(i));
        }),
      ),
    );
    expect(values(db)).toHaveLength(n);
    // What another connection saw committed before each write: whole groups only.
    expect(new Set(committedBefore)).toEqual(new Set([0, GROUP_MAX, GROUP_MAX * 2]));
    expect(committedBefore.filter((c) => c === 0)).toHaveLength(GROUP_MAX);
    other.close();
    db.close();
  });

  it('while another connection holds the write lock, the event loop goes on and writes queued meanwhile join the group', async () => {
    const { db, path } = fresh();
    const holder = openDatabase(path);
    const observer = openDatabase(path);
    holder.prepare('BEGIN IMMEDIATE').run();
    holder.prepare("INSERT INTO t VALUES ('holder')").run();
    const settled: string[] = [];
    const seen: string[][] = [];
    const a = grouped(db, () => {
      insert(db, 'a');
      seen.push(values(observer));
    }).then(() => settled.push('a'));
    // Timers still fire while the group waits for the lock: nothing blocks this thread (SQLite's
    // own busy handler would, for the whole busy timeout).
    const before = performance.now();
    await new Promise((r) => setTimeout(r, 30));
    expect(performance.now() - before).toBeLessThan(BUSY_TIMEOUT_MS / 3);
    expect(settled).toEqual([]);
    const b = grouped(db, () => {
      insert(db, 'b');
      seen.push(values(observer));
    }).then(() => settled.push('b'));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toEqual([]);
    holder.prepare('COMMIT').run();
    await Promise.all([a, b]);
    // One group: when b ran, a was not committed yet.
    expect(seen).toEqual([['holder'], ['holder']]);
    expect(values(observer)).toEqual(['holder', 'a', 'b']);
    holder.close();
    observer.close();
    db.close();
  });

  it(`a write gives up with SQLITE_BUSY ${BUSY_TIMEOUT_MS} ms after it was queued; one queued later waits on and commits`, async () => {
    const { db, path } = fresh();
    const holder = openDatabase(path);
    holder.prepare('BEGIN IMMEDIATE').run();
    const started = performance.now();
    const early = grouped(db, () => insert(db, 'early'));
    await new Promise((r) => setTimeout(r, BUSY_TIMEOUT_MS - 1000));
    const late = grouped(db, () => insert(db, 'late'));
    const [e] = await Promise.allSettled([early]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(BUSY_TIMEOUT_MS - 50);
    expect(e!.status).toBe('rejected');
    expect(String(((e as PromiseRejectedResult).reason as { code?: string }).code)).toMatch(/^SQLITE_BUSY/);
    // The later write has waited about 1 s of its 5: the lock comes free, and it commits.
    holder.prepare('ROLLBACK').run();
    await late;
    expect(values(holder)).toEqual(['late']);
    // The connection waits as before for its other statements.
    expect(db.pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
    holder.close();
    db.close();
  }, BUSY_TIMEOUT_MS + 5000);

  it('settles a backlog of 200,000 writes queued in one turn, in order', async () => {
    const { db } = fresh();
    const n = 200_000;
    const order: number[] = [];
    await Promise.all(Array.from({ length: n }, (_, i) => grouped(db, () => order.push(i))));
    expect(order).toHaveLength(n);
    expect(order.every((v, i) => v === i)).toBe(true);
    db.close();
  }, 60_000);

  it('when the busy timeout cannot be restored after BEGIN, the transaction is rolled back', async () => {
    const { db } = fresh();
    await grouped(db, () => insert(db, 'first'));
    const pragma = db.pragma.bind(db);
    let fail = true;
    // A fault injected into better-sqlite3's pragma call (as SQLITE_NOMEM would be).
    (db as { pragma: typeof db.pragma }).pragma = ((source: string, options?: never) => {
      if (fail && source === `busy_timeout = ${BUSY_TIMEOUT_MS}`) {
        fail = false;
        throw new Error('injected');
      }
      return pragma(source, options);
    }) as typeof db.pragma;
    await expect(grouped(db, () => insert(db, 'a'))).rejects.toThrow('injected');
    expect(db.inTransaction).toBe(false);
    await grouped(db, () => insert(db, 'b'));
    expect(values(db)).toEqual(['first', 'b']);
    expect(pragma('busy_timeout', { simple: true })).toBe(BUSY_TIMEOUT_MS);
    db.close();
  });

  it('writes queued from separate callbacks of one turn share the commit', async () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    const seen: string[][] = [];
    const jobs: Promise<unknown>[] = [];
    await new Promise<void>((done) => {
      setImmediate(() => jobs.push(grouped(db, () => insert(db, 'a'))));
      setImmediate(() => {
        jobs.push(grouped(db, () => (seen.push(values(other)), insert(db, 'b'))));
        done();
      });
    });
    await Promise.all(jobs);
    expect(seen).toEqual([[]]);
    expect(values(other)).toEqual(['a', 'b']);
    other.close();
    db.close();
  });

  it('a failed commit fails the writes that had succeeded with its error; one that threw keeps its own', async () => {
    const { db } = fresh();
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)');
    const refused = new Error('refused');
    const results = await Promise.allSettled([
      grouped(db, () => {
        insert(db, 'x');
        throw refused;
      }),
      grouped(db, () => db.prepare('INSERT INTO child VALUES (42)').run()),
    ]);
    expect((results[0] as PromiseRejectedResult).reason).toBe(refused);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    db.close();
  });

  it(`another connection can write between the groups of a turn of more than ${GROUP_MAX} writes`, async () => {
    const { db, path } = fresh();
    const other = openDatabase(path);
    await Promise.all(
      Array.from({ length: GROUP_MAX + 3 }, (_, i) =>
        grouped(db, () => {
          // Asks for the lock while the first group holds it; it gets it before the next group.
          if (i === 0) setImmediate(() => other.prepare("INSERT INTO t VALUES ('other')").run());
          insert(db, String(i));
        }),
      ),
    );
    const rows = values(db);
    expect(rows.indexOf('other')).toBe(GROUP_MAX);
    other.close();
    db.close();
  });

  it('rejects every write when the connection is closed before the group runs (statements prepared earlier)', async () => {
    const { db } = fresh();
    await grouped(db, () => insert(db, 'first'));
    const jobs = [grouped(db, () => insert(db, 'a')), grouped(db, () => insert(db, 'b'))];
    db.close();
    for (const r of await Promise.allSettled(jobs)) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/not open/);
    }
  });

  it('savepoint refuses to run outside a transaction, so its writes never commit alone', () => {
    const { db } = fresh();
    expect(() => savepoint(db, () => insert(db, 'alone'))).toThrow(/no transaction/);
    expect(values(db)).toEqual([]);
    db.close();
  });

  it('rejects every write when the transaction cannot begin', async () => {
    const { db, path } = fresh();
    const jobs = [grouped(db, () => insert(db, 'a')), grouped(db, () => insert(db, 'b'))];
    // Closed before its turn: the group cannot begin (and the process does not crash).
    db.close();
    for (const r of await Promise.allSettled(jobs)) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/not open/);
    }
    const after = openDatabase(path);
    expect(values(after)).toEqual([]);
    after.close();
  });
});
