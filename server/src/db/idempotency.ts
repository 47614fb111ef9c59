// Idempotency records of widget and management POSTs: the first response to a key within a scope, kept 24 hours.
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface IdempotencyRow {
  scope: string;
  key: string;
  request_hash: Buffer;
  status: number;
  response: string;
  created_at: number;
}

const s = perDb((db) => ({
  find: db.prepare('SELECT * FROM idempotency WHERE scope = ? AND key = ?'),
  // An expired record of the same key is replaced (the maintenance pass may not have pruned it yet).
  put: db.prepare(`INSERT INTO idempotency (scope, key, request_hash, status, response, created_at)
    VALUES (@scope, @key, @request_hash, @status, @response, @created_at)
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
      response = excluded.response, created_at = excluded.created_at`),
}));

export function findIdempotency(db: DB, scope: string, key: string): IdempotencyRow | undefined {
  return s(db).find.get(scope, key) as IdempotencyRow | undefined;
}
export function putIdempotency(db: DB, row: IdempotencyRow): void {
  s(db).put.run(row);
}
