// The write transactions of the widget hot path (the rate-limit token, and the message write that
// shares its transaction), with the semantics of better-sqlite3's db.transaction(fn).immediate()
// and nested db.transaction(fn)() but two costs removed, both measured by `pnpm bench`:
// - db.transaction(fn) builds four wrapper functions per call; these statements are prepared once.
// - Waiting for the write lock. SQLite's own busy handler sleeps at least 1 ms, then 2, 5, 10 ms...
//   while another process (`--workers N`) holds the lock for a tenth of that, so a second worker
//   mostly slept. BEGIN IMMEDIATE here fails fast and is retried after 20 us, doubling to 1 ms,
//   until the same 5 s deadline as the connection's busy timeout.
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
