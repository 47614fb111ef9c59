// Opens the SQLite database with the pragmas every process relies on, and migrates it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrate } from './migrations/index.js';

export type Durability = 'normal' | 'full';
export type DB = Database.Database;

/** How long a connection waits for another one's lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/** The database file cannot be opened as one (no such place, no permission, not a database). */
export class DatabaseOpenError extends Error {}

/** Opens (creating it and its folder if needed) and migrates the database at `path`. */
export function openDatabase(path: string, durability: Durability = 'normal'): DB {
  let db: DB | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    // The first read of the file: a file that is no database fails here.
    db.pragma('journal_mode = WAL');
  } catch (err) {
    db?.close();
    throw new DatabaseOpenError(`cannot open the database ${JSON.stringify(path)} (PARLEY_DB or --db): ${(err as Error).message}`);
  }
  // NORMAL in WAL survives process crashes; FULL also survives power loss (an fsync per commit).
  db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  migrate(db);
  return db;
}
