// Numbered migrations in an explicit list; applied in order at start-up, each recorded.
import type { Database } from 'better-sqlite3';
import * as m001 from './001-init.js';
import * as m002 from './002-visitor-tokens.js';
import * as m003 from './003-rate-limit-fraction.js';
import * as m004 from './004-admission-generation.js';
import * as m005 from './005-cursor-secret.js';

export interface Migration {
  version: number;
  name: string;
  up: (db: Database) => void;
}

export const migrations: readonly Migration[] = [
  { version: 1, name: '001-init', up: m001.up },
  { version: 2, name: '002-visitor-tokens', up: m002.up },
  { version: 3, name: '003-rate-limit-fraction', up: m003.up },
  { version: 4, name: '004-admission-generation', up: m004.up },
  { version: 5, name: '005-cursor-secret', up: m005.up },
];

/** Applies every pending migration inside one IMMEDIATE transaction; safe when several processes start at once. */
export function migrate(db: Database, now: () => number = Date.now): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const applied: number[] = [];
  db.transaction(() => {
    const done = new Set(
      (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
    );
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      m.up(db);
      record.run(m.version, m.name, now());
      applied.push(m.version);
    }
  }).immediate();
  return applied;
}
