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
}));

const FIRST_PAUSE_US = 20;
const MAX_PAUSE_US = 1000;
const pauser = new Int32Array(new SharedArrayBuffer(4));

const isBusy = (err: unknown): boolean => /^SQLITE_BUSY/.test(String((err as { code?: unknown } | null)?.code ?? ''));

/** BEGIN IMMEDIATE, retried with short pauses while another connection holds the write lock. */
function beginImmediate(db: DB): void {
  const deadline = performance.now() + BUSY_TIMEOUT_MS;
  for (let pause = FIRST_PAUSE_US; ; pause = Math.min(pause * 2, MAX_PAUSE_US)) {
    const busy = tryBegin(db);
    if (busy === undefined) return;
    if (performance.now() + pause / 1000 > deadline) throw busy;
    Atomics.wait(pauser, 0, 0, pause / 1000);
  }
}

/**
 * BEGIN IMMEDIATE without waiting: undefined once begun, the SQLITE_BUSY error while another
 * connection writes. SQLite applies `PRAGMA busy_timeout = N` when the statement is prepared, not
 * when it runs, so the two settings are prepared afresh on every call (a prepared one set once
 * would leave BEGIN in SQLite's own busy handler, sleeping up to the whole timeout).
 */
function tryBegin(db: DB): unknown {
  const st = s(db);
  db.pragma('busy_timeout = 0');
  let failed: unknown;
  try {
    st.begin.run();
  } catch (err) {
    failed = err;
  }
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (err) {
    // Never leave a transaction open behind a connection that no longer waits for locks.
    if (db.inTransaction) st.rollback.run();
    throw err;
  }
  if (failed !== undefined && !isBusy(failed)) throw failed;
  return failed;
}

/**
 * Runs `fn` in a transaction of its own, like db.transaction(fn).immediate(): committed when it
 * returns, rolled back when it throws. Inside another transaction it is a savepoint instead, like
 * a nested db.transaction(fn)(). `fn` must be synchronous.
 */
export function immediate<T>(db: DB, fn: () => T): T {
  if (db.inTransaction) return savepoint(db, fn);
  const st = s(db);
  beginImmediate(db);
  try {
    const result = fn();
    st.commit.run();
    return result;
  } catch (err) {
    // SQLite may have rolled back already (a failed COMMIT, SQLITE_FULL): only undo what is open.
    if (db.inTransaction) st.rollback.run();
    throw err;
  }
}

/**
 * Runs `fn` in a savepoint of the transaction that is open (and throws if none is: a write meant
 * to be part of a bigger one must never commit on its own). When `fn` throws, its writes are
 * undone and the transaction goes on.
 */
export function savepoint<T>(db: DB, fn: () => T): T {
  if (!db.inTransaction) throw new Error('savepoint: no transaction is open');
  const st = s(db);
  st.savepoint.run();
  try {
    const result = fn();
    st.release.run();
    return result;
  } catch (err) {
    if (db.inTransaction) {
      st.rollbackTo.run();
      st.release.run();
    }
    throw err;
  }
}

/**
 * Most writes one grouped commit holds: bounds how long one commit holds the lock. The rest of the
 * turn's writes go to a group of the next turn, so another process's writer can take the lock in between.
 */
export const GROUP_MAX = 64;

interface Job {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** performance.now() when it was queued: each write waits for the lock up to the busy timeout from then. */
  queuedAt: number;
}
type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

interface Queue {
  /** Writes in order; those before `head` are settled. */
  jobs: Job[];
  head: number;
  /** BEGIN attempts that found the lock taken since the last group ran. */
  attempts: number;
}
const queues = new WeakMap<DB, Queue>();

/**
 * Runs `fn` (synchronous) in a savepoint of a transaction shared with the other writes queued in
 * this turn of the event loop, and settles once that transaction has committed: with `fn`'s value,
 * or with what `fn` threw (its own writes rolled back, the others' kept). When the commit itself
 * fails, every write that had succeeded fails with that error (one that threw keeps its own).
 * Nothing else runs on the connection while the group's transaction is open: the group runs in
 * one callback. While another process holds the write lock, the event loop is not blocked: the
 * group tries again on a later turn (the writes queued meanwhile join it); a write that has waited
 * the connection's busy timeout since it was queued fails with SQLITE_BUSY.
 */
export function grouped<T>(db: DB, fn: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    queueOf(db).jobs.push({ fn, resolve: resolve as (value: unknown) => void, reject, queuedAt: performance.now() });
  });
}

function queueOf(db: DB): Queue {
  let q = queues.get(db);
  if (!q) {
    const fresh: Queue = { jobs: [], head: 0, attempts: 0 };
    queues.set(db, (q = fresh));
    setImmediate(() => runQueue(db, fresh));
  }
  return q;
}

function runQueue(db: DB, q: Queue): void {
  let busy: unknown;
  try {
    // Never inside someone else's transaction: the group must own its commit.
    if (db.inTransaction) throw new Error('grouped: the connection is already in a transaction');
    busy = tryBegin(db);
  } catch (err) {
    queues.delete(db);
    const rest = q.jobs.slice(q.head);
    settle(rest, rest.map(() => ({ ok: false, err })));
    return;
  }
  if (busy !== undefined) {
    // The writes that have waited the whole busy timeout fail (the oldest come first); the rest wait on.
    const now = performance.now();
    const from = q.head;
    while (q.head < q.jobs.length && now - q.jobs[q.head]!.queuedAt >= BUSY_TIMEOUT_MS) q.head++;
    const expired = q.jobs.slice(from, q.head);
    settle(expired, expired.map(() => ({ ok: false, err: busy })));
    if (q.head === q.jobs.length) {
      queues.delete(db);
      return;
    }
    // A few turns right away (another process's group commits within a millisecond or so), then
    // timers of 1, 2, 4 ms.
    const retry = () => runQueue(db, q);
    if (++q.attempts <= 4) setImmediate(retry);
    else setTimeout(retry, Math.min(2 ** (q.attempts - 5), 4));
    return;
  }
  // Writes queued from inside a job join this queue, behind the rest.
  q.head += runGroup(db, q.jobs.slice(q.head, q.head + GROUP_MAX));
  q.attempts = 0;
  if (q.head === q.jobs.length) {
    queues.delete(db);
    return;
  }
  // Beyond GROUP_MAX, or after a transaction lost mid-group: the rest are the next turn's group,
  // so another process's writer can take the lock in between.
  if (q.head >= 4096) {
    q.jobs = q.jobs.slice(q.head);
    q.head = 0;
  }
  setImmediate(() => runQueue(db, q));
}

/**
 * Runs jobs in the transaction just begun and settles them. Returns how many it settled: all of
 * them, or up to the one during which the transaction was lost.
 */
function runGroup(db: DB, jobs: Job[]): number {
  const st = s(db);
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
