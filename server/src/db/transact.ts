// The write transactions of the widget (the rate-limit token, and the write that shares its
// transaction): `grouped`, a group commit. The writes that requests queue during one turn of the
// event loop run together, each in a savepoint of its own, in one transaction and one commit, and
// each request hears its outcome only after that commit. A BEGIN and COMMIT (the lock calls, and
// the WAL pages of the rows every request touches: the rate-limit bucket, today's meter) are paid
// once per turn instead of once per request, and the statements are prepared once (where
// db.transaction(fn) builds four wrapper functions per call). While another process
// (`--workers N`) holds the write lock the group waits on later turns of the event loop, never
// in SQLite's busy handler, which would stop this process for up to the whole busy timeout.
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

const isBusy = (err: unknown): boolean => /^SQLITE_BUSY/.test(String((err as { code?: unknown } | null)?.code ?? ''));

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
      outcomes.push({ ok: true, value: savepoint(db, job.fn) });
    } catch (err) {
      outcomes.push({ ok: false, err });
      // SQLite rolled it all back (SQLITE_FULL, an I/O error, a job's own ROLLBACK): the group is lost.
      if (!db.inTransaction) {
        lose(err);
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
