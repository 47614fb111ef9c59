// A random secret per database, made once, that list cursors are signed with (db/cursors.ts): every
// process sharing the file signs and checks with the same one, and it survives restarts.
import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';

export function up(db: Database): void {
  db.exec('CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)');
  db.prepare('INSERT INTO server_secrets (name, value) VALUES (?, ?)').run('cursor', randomBytes(32));
}
