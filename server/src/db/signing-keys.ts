// Site signing keys: the owner's P-256 public keys that verify signed user tokens.
import { iso } from '../util.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface SigningKeyRow {
  id: string;
  site_id: number;
  public_key_pem: string;
  created_at: number;
}

const s = perDb((db) => ({
  insert: db.prepare('INSERT INTO signing_keys (id, site_id, public_key_pem, created_at) VALUES (@id, @site_id, @public_key_pem, @created_at)'),
  bySite: db.prepare('SELECT * FROM signing_keys WHERE site_id = ? ORDER BY created_at, rowid LIMIT 10'),
  count: db.prepare('SELECT COUNT(*) AS n FROM signing_keys WHERE site_id = ?'),
  byId: db.prepare('SELECT * FROM signing_keys WHERE id = ? AND site_id = ?'),
  delete: db.prepare('DELETE FROM signing_keys WHERE id = ? AND site_id = ?'),
}));

export function insertSigningKey(db: DB, row: SigningKeyRow): void {
  s(db).insert.run(row);
}
export function listSigningKeys(db: DB, siteId: number): SigningKeyRow[] {
  return s(db).bySite.all(siteId) as SigningKeyRow[];
}
export function countSigningKeys(db: DB, siteId: number): number {
  return (s(db).count.get(siteId) as { n: number }).n;
}
export function findSigningKey(db: DB, id: string, siteId: number): SigningKeyRow | undefined {
  return s(db).byId.get(id, siteId) as SigningKeyRow | undefined;
}
export function deleteSigningKey(db: DB, id: string, siteId: number): boolean {
  return s(db).delete.run(id, siteId).changes > 0;
}
export function signingKeyToApi(row: SigningKeyRow): { id: string; created_at: string; public_key_pem: string } {
  return { id: row.id, created_at: iso(row.created_at), public_key_pem: row.public_key_pem };
}
