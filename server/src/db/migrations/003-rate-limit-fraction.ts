// The fraction of a millisecond of each bucket's theoretical arrival time. A token's interval is
// 60,000 / limit ms, rarely a whole number: rounding the TAT to whole ms on every token drifted,
// so a burst admitted 60,000 tokens at a limit of 100,000 and 59,999 at 45,000. The whole ms stay
// in `tat` (what maintenance compares), the rest, always in [0, 1), in `tat_frac`.
import type { Database } from 'better-sqlite3';

export function up(db: Database): void {
  db.exec('ALTER TABLE rate_limits ADD COLUMN tat_frac REAL NOT NULL DEFAULT 0');
}
