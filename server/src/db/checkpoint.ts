// WAL checkpoints off the request path. By default SQLite checkpoints inside the commit that
// passes 1,000 WAL frames, and a checkpoint fsyncs the WAL and the database file: with
// synchronous=NORMAL those are the only fsyncs there are, and whichever request happened to commit
// then waited for them (about 75 us per widget write on average, measured in-process on the
// benchmark machine, and the slowest requests). A serving process instead turns automatic
// checkpoints off on its own connection, and a worker thread with a connection of its own
// checkpoints every CHECKPOINT_EVERY_MS. Durability is unchanged: a commit is in the WAL either
// way, and a checkpoint still syncs the WAL before it copies pages out of it.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DB } from './open.js';

export const CHECKPOINT_EVERY_MS = 200;
/**
 * A PASSIVE checkpoint never waits for writers, so under sustained writes it may never catch up
 * with the end of the WAL (and the WAL only starts over once it has). Past this many frames (about
 * 16 MiB of 4 KiB pages) the thread runs a RESTART checkpoint: writers wait for the few frames the
 * last pass left, and the next commit writes the WAL from its start again.
 */
export const RESTART_AFTER_FRAMES = 4096;
/** SQLite's own default, restored on the serving connection if the thread stops unexpectedly. */
const AUTOCHECKPOINT_PAGES = 1000;

/**
 * The thread's whole program (CommonJS, so the same text runs from the TypeScript sources under
 * test and from dist). It only ever checkpoints: it never reads or writes a row.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true, timeout: 5000 });
db.pragma('wal_autocheckpoint = 0');
const pass = () => {
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    if (r.log >= workerData.restartAfter) db.pragma('wal_checkpoint(RESTART)');
  } catch (err) {
    parentPort.postMessage({ failed: String(err && err.code || 'error') });
  }
};
const timer = setInterval(pass, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the thread (it closes its connection); resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Moves the checkpoints of `db` (a file database in WAL mode) to a worker thread. Returns null for
 * databases that have no WAL (`:memory:`), which keep SQLite's behaviour. `opts` are for tests.
 */
export function startCheckpointer(
  db: DB,
  logger: Logger,
  opts: { everyMs?: number; restartAfterFrames?: number } = {},
): Checkpointer | null {
  if (db.memory || String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return null;
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(THREAD, {
    eval: true,
    workerData: {
      driver,
      path: db.name,
      everyMs: opts.everyMs ?? CHECKPOINT_EVERY_MS,
      restartAfter: opts.restartAfterFrames ?? RESTART_AFTER_FRAMES,
    },
    // It holds no data: a small heap keeps the process's resident memory down.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  let stopping = false;
  let fellBack = false;
  db.pragma('wal_autocheckpoint = 0');
  const fallBack = (why: string) => {
    if (stopping || fellBack || !db.open) return;
    fellBack = true;
    // Without the thread the WAL would grow without bound: checkpoint on commit again.
    db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
    logger.warn({ reason: why }, 'checkpoint thread stopped; checkpointing on commit');
  };
  worker.on('message', (m: { failed?: string }) => {
    if (m.failed) logger.warn({ code: m.failed }, 'checkpoint pass failed');
  });
  worker.on('error', (err) => fallBack(err.name));
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      if (code !== 0) fallBack(`exit code ${code}`);
      resolve();
    });
  });
  return {
    async stop() {
      if (stopping) return exited;
      stopping = true;
      worker.postMessage('stop');
      const force = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(force);
    },
  };
}
