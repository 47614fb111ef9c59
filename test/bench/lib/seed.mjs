// Bulk seeding for the list case: tickets (each with its first message) written straight into the
// database file while no server runs, in one transaction with prepared statements.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { sortableTime } from '../../../server/dist/util.js';

const BATCH = 10_000;

/**
 * Adds `count` tickets, each with one visitor message, to the live environment of `serviceId`.
 * Columns follow server/src/db/migrations/001-init.ts. Returns the milliseconds it took.
 * @param {string} file @param {string} serviceId @param {number} count
 */
export function addTickets(file, serviceId, count) {
  const started = performance.now();
  const db = new Database(file);
  try {
    // Nothing depends on the seed surviving a crash (it is rebuilt on every run): no journal, no
    // fsync, and the WAL mode the server expects is put back at the end.
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    // Ids are the server's shape (newId: the time, then random bits); the cache covers the indexes.
    db.pragma('cache_size = -262144');
    const site = db.prepare('SELECT id FROM sites WHERE service_id = ?').get(serviceId);
    if (!site) throw new Error(`no site ${serviceId} in ${file}`);
    const ticket = db.prepare(`INSERT INTO tickets (id, site_id, environment, status, visitor_token_hash, visitor_name,
        visitor_email, user_id, user_name, user_email, page_url, metadata, created_at, updated_at)
      VALUES (?, ?, 'live', ?, ?, ?, NULL, NULL, NULL, NULL, ?, NULL, ?, ?)`);
    const message = db.prepare(`INSERT INTO messages (id, ticket_seq, author, author_name, body, created_at)
      VALUES (?, ?, 'visitor', NULL, ?, ?)`);
    const { n: before } = db.prepare('SELECT count(*) AS n FROM tickets').get();
    // Spread over the last 30 days, oldest first, as real tickets would be.
    const start = Date.now() - 30 * 86_400_000;
    const step = Math.max(1, Math.floor((30 * 86_400_000) / Math.max(1, before + count)));
    db.transaction(() => {
      for (let done = 0; done < count; done += BATCH) {
        const n = Math.min(BATCH, count - done);
        const rnd = randomBytes(n * 64);
        for (let i = 0; i < n; i++) {
          const k = before + done + i;
          const o = i * 64;
          const at = start + k * step;
          const info = ticket.run(
            `tkt_${sortableTime(at)}${rnd.subarray(o, o + 16).toString('base64url')}`,
            site.id,
            k % 5 === 0 ? 'closed' : 'open',
            rnd.subarray(o + 16, o + 48),
            `Visitor ${k}`,
            'https://bench.example/pricing',
            at,
            at,
          );
          message.run(`msg_${sortableTime(at)}${rnd.subarray(o + 48, o + 64).toString('base64url')}`, info.lastInsertRowid, `Question number ${k}: how do I change my plan?`, at);
        }
      }
    })();
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  return performance.now() - started;
}
