// Periodic clean-up of rows that only matter for a while: old stream events, expired
// idempotency records and full rate-limit buckets. Each pass deletes a bounded batch.
import type { AppContext } from './context.js';

const EVERY_MS = 60_000;
const BATCH = 2000;

/** Runs one bounded clean-up pass; returns the number of rows deleted. */
export function runMaintenance(ctx: AppContext): number {
  const now = ctx.clock();
  const db = ctx.db;
  return db.transaction(() => {
    let n = 0;
    // The newest event always stays: were the table emptied, SQLite would number the next event 1
    // again, below the last seq each process's feed has read, and live streams would miss events.
    n += db.prepare(`DELETE FROM ticket_events WHERE seq IN (SELECT seq FROM ticket_events WHERE created_at < ?
        AND seq < (SELECT MAX(seq) FROM ticket_events) LIMIT ?)`)
      .run(now - 60 * 60_000, BATCH).changes;
    n += db.prepare('DELETE FROM idempotency WHERE (scope, key) IN (SELECT scope, key FROM idempotency WHERE created_at < ? LIMIT ?)')
      .run(now - 24 * 60 * 60_000, BATCH).changes;
    n += db.prepare('DELETE FROM rate_limits WHERE bucket IN (SELECT bucket FROM rate_limits WHERE tat < ? LIMIT ?)')
      .run(now, BATCH).changes;
    return n;
  }).immediate();
}

/** Starts the periodic pass; returns a stop function. */
export function startMaintenance(ctx: AppContext): () => void {
  const timer = setInterval(() => {
    try {
      runMaintenance(ctx);
    } catch (err) {
      ctx.logger.warn({ err }, 'maintenance pass skipped');
    }
  }, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
