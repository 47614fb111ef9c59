// Cursors of the paged lists (SPEC 7: an opaque next_cursor). A cursor names a position in one list
// (`scope`: the list and whose it is, e.g. one site's tickets in one environment) and carries an
// HMAC-SHA256 of both under the database's own secret (migration 005). So a cursor only works on
// the list that returned it: one made up, edited, or taken from another list, site, workspace or
// environment is refused, instead of paging from wherever its number happens to point.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

const TAG_BYTES = 12;

const secret = perDb((db) => (db.prepare("SELECT value FROM server_secrets WHERE name = 'cursor'").pluck().get() as Buffer));

const tag = (db: DB, scope: string, position: number): Buffer =>
  createHmac('sha256', secret(db)).update(`${scope}\n${position}`).digest().subarray(0, TAG_BYTES);

/** The cursor of `position` in the list `scope`. */
export function encodeCursor(db: DB, scope: string, position: number): string {
  return `${position.toString(36)}.${tag(db, scope, position).toString('base64url')}`;
}

/** The position a cursor of the list `scope` stands for, or null when it is not one. */
export function decodeCursor(db: DB, scope: string, cursor: string): number | null {
  const m = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{16})$/.exec(cursor);
  if (!m) return null;
  const position = parseInt(m[1]!, 36);
  // Only the one spelling encodeCursor writes: `0a.<tag>` is an edited cursor, not another name for `a`.
  if (!Number.isSafeInteger(position) || position.toString(36) !== m[1]) return null;
  const given = Buffer.from(m[2]!, 'base64url');
  return given.length === TAG_BYTES && timingSafeEqual(given, tag(db, scope, position)) ? position : null;
}
