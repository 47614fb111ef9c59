// The write transactions of the widget hot path (the rate-limit token, and the message write that
// shares its transaction), with the semantics of better-sqlite3's db.transaction(fn).immediate()
// and nested db.transaction(fn)() but two costs removed, both measured by `pnpm bench`:
// - db.transaction(fn) builds four wrapper functions per call; these statements are prepared once.
// - Waiting for the write lock. SQLite's own busy handler sleeps at least 1 ms, then 2, 5, 10 ms...
//   while another process (`--workers N`) holds the lock for a tenth of that, so a second worker
//   mostly slept. BEGIN IMMEDIATE here fails fast and is retried after 20 us, doubling to 1 ms,
//   until the same 5 s deadline as the connection's busy timeout.
// And `grouped`, a group commit for the hot path: the writes that requests queue during one turn of
// the event loop run together, each in a savepoint of its own, in one transaction and one commit,
// and each request hears its outcome only after that commit. A BEGIN and COMMIT (the lock calls,
// and the WAL pages of the rows every request touches: the rate-limit bucket, today's meter) are
// paid once per turn instead of once per request.
import { BUSY_TIMEOUT_MS, type DB } from './open.js';
import { perDb } from './prepare.js';

const s = perDb((db) => ({
  begin: db.prepare('BEGIN IMMEDIATE'),
  commit: db.prepare('COMMIT'),
  rollback: db.prepare('ROLLBACK'),
  savepoint: db.prepare('SAVEPOINT parley_hot'),
  release: db.prepare('RELEASE parley_hot'),
  rollbackTo: db.prepare('ROLLBACK TO parley_hot'),
  noWait: db.prepare('PRAGMA busy_timeout = 0'),
  wait: db.prepare(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`),
}));

const FIRST_PAUSE_US = 20;
const MAX_PAUSE_US = 1000;
const pauser = new Int32Array(new SharedArrayBuffer(4));

const isBusy = (err: unknown): boolean => /^SQLITE_BUSY/.test(String((err as { code?: unknown } | null)?.code ?? ''));

/** BEGIN IMMEDIATE, retried with short pauses while another connection holds the write lock. */
function beginImmediate(db: DB): void {
  const st = s(db);
  st.noWait.get();
  try {
    const deadline = performance.now() + BUSY_TIMEOUT_MS;
    for (let pause = FIRST_PAUSE_US; ; pause = Math.min(pause * 2, MAX_PAUSE_US)) {
      try {
        st.begin.run();
        return;
      } catch (err) {
        if (!isBusy(err) || performance.now() + pause / 1000 > deadline) throw err;
      }
      Atomics.wait(pauser, 0, 0, pause / 1000);
    }
  } finally {
    st.wait.get();
  }
}

/**
 * Runs `fn` in a transaction of its own, like db.transaction(fn).immediate(): committed when it
 * returns, rolled back when it throws. Inside another transaction it is a savepoint instead, like
 * a nested db.transaction(fn)(). `fn` must be synchronous.
 */
export function immediate<T>(db: DB, fn: () => T): T {
  const st = s(db);
  const nested = db.inTransaction;
  if (nested) st.savepoint.run();
  else beginImmediate(db);
  try {
    const result = fn();
    (nested ? st.release : st.commit).run();
    return result;
  } catch (err) {
    // SQLite may have rolled back already (a failed COMMIT, SQLITE_FULL): only undo what is open.
    if (db.inTransaction) {
      if (nested) {
        st.rollbackTo.run();
        st.release.run();
      } else st.rollback.run();
    }
    throw err;
  }
}

/** Most writes one grouped commit holds: bounds how long another process waits for the lock. */
export const GROUP_MAX = 64;

interface Job {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}
type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

const queues = new WeakMap<DB, Job[]>();

/**
 * Runs `fn` (synchronous) in a savepoint of a transaction shared with the other writes queued in
 * this turn of the event loop, and settles once that transaction has committed: with `fn`'s value,
 * or with what `fn` threw (its own writes rolled back, the others' kept), or, when the commit
 * itself fails, with that error for every write in the group. Nothing else runs on the connection
 * while the group's transaction is open: the group runs in one callback (setImmediate).
 */
export function grouped<T>(db: DB, fn: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let queue = queues.get(db);
    if (!queue) {
      queues.set(db, (queue = []));
      setImmediate(() => runQueue(db));
    }
    queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
  });
}

function runQueue(db: DB): void {
  const jobs = queues.get(db) ?? [];
  queues.delete(db);
  for (let i = 0; i < jobs.length; ) i += runGroup(db, jobs.slice(i, i + GROUP_MAX));
}

/**
 * Runs jobs in one transaction and settles them. Returns how many it settled: all of them, or up to
 * the one during which the transaction was lost (the rest go to a new group).
 */
function runGroup(db: DB, jobs: Job[]): number {
  let st: ReturnType<typeof s>;
  try {
    st = s(db);
    // Never inside someone else's transaction: the group must own its commit.
    if (db.inTransaction) throw new Error('grouped: the connection is already in a transaction');
    beginImmediate(db);
  } catch (err) {
    settle(jobs, jobs.map(() => ({ ok: false, err })));
    return jobs.length;
  }
  const outcomes: Outcome[] = [];
  /** The transaction is gone (or must go): every write so far fails with `err`. */
  const lose = (err: unknown): void => {
    try {
      if (db.inTransaction) st.rollback.run();
    } catch {
      // nothing more to undo from here; the connection reports its own state on the next use
    }
    for (let i = 0; i < outcomes.length; i++) if (outcomes[i]!.ok) outcomes[i] = { ok: false, err };
  };
  for (const job of jobs) {
    try {
      st.savepoint.run();
    } catch (err) {
      outcomes.push({ ok: false, err });
      lose(err);
      break;
    }
    try {
      const value = job.fn();
      st.release.run();
      outcomes.push({ ok: true, value });
    } catch (err) {
      outcomes.push({ ok: false, err });
      try {
        if (!db.inTransaction) throw err; // SQLite rolled it all back (SQLITE_FULL, an I/O error)
        st.rollbackTo.run();
        st.release.run();
      } catch (lost) {
        lose(lost);
        break;
      }
    }
  }
  if (outcomes.length === jobs.length) {
    try {
      st.commit.run();
    } catch (err) {
      lose(err);
    }
  }
  settle(jobs, outcomes);
  return outcomes.length;
}

function settle(jobs: Job[], outcomes: Outcome[]): void {
  outcomes.forEach((o, i) => (o.ok ? jobs[i]!.resolve(o.value) : jobs[i]!.reject(o.err)));
}
