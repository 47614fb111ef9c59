// API keys: stored as SHA-256 hashes with metadata; the plaintext is never stored.
import type { Key } from '@parley/shared';
import { iso } from '../util.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface KeyRow {
  id: string;
  hash: Buffer;
  prefix: string;
  name: string;
  type: 'publishable' | 'secret';
  environment: 'live' | 'test';
  scopes: string;
  workspace_id: string;
  site_id: number | null;
  sites: string | null;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
  exposed_at: number | null;
}

/** A key row joined with its site's service id (publishable keys). */
export interface KeyWithSite extends KeyRow {
  site_service_id: string | null;
}

const s = perDb((db) => ({
  insert: db.prepare(`INSERT INTO api_keys (id, hash, prefix, name, type, environment, scopes, workspace_id,
      site_id, sites, created_at, last_used_at, expires_at, revoked_at, exposed_at)
    VALUES (@id, @hash, @prefix, @name, @type, @environment, @scopes, @workspace_id, @site_id, @sites,
      @created_at, @last_used_at, @expires_at, @revoked_at, @exposed_at)`),
  byHash: db.prepare(`SELECT k.*, s.service_id AS site_service_id FROM api_keys k
    LEFT JOIN sites s ON s.id = k.site_id WHERE k.hash = ?`),
  byId: db.prepare(`SELECT k.*, s.service_id AS site_service_id FROM api_keys k
    LEFT JOIN sites s ON s.id = k.site_id WHERE k.id = ?`),
  list: db.prepare(`SELECT k.rowid AS rowid, k.*, s.service_id AS site_service_id FROM api_keys k
    LEFT JOIN sites s ON s.id = k.site_id
    WHERE k.workspace_id = ? AND k.environment = ? AND k.rowid > ? ORDER BY k.rowid LIMIT ?`),
  rowid: db.prepare('SELECT rowid FROM api_keys WHERE id = ?'),
  revoke: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?)'),
  touch: db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)'),
  exposed: db.prepare('UPDATE api_keys SET exposed_at = ? WHERE id = ? AND exposed_at IS NULL'),
}));

export function insertKey(db: DB, row: KeyRow): void {
  s(db).insert.run(row);
}
export function findKeyByHash(db: DB, hash: Buffer): KeyWithSite | undefined {
  return s(db).byHash.get(hash) as KeyWithSite | undefined;
}
export function findKeyById(db: DB, id: string): KeyWithSite | undefined {
  return s(db).byId.get(id) as KeyWithSite | undefined;
}
/** Keys of one workspace and environment, in creation order, after the key with rowid `afterRowid`. */
export function listKeys(db: DB, workspaceId: string, environment: string, afterRowid: number, limit: number): (KeyWithSite & { rowid: number })[] {
  return s(db).list.all(workspaceId, environment, afterRowid, limit) as (KeyWithSite & { rowid: number })[];
}
export function keyRowid(db: DB, id: string): number | undefined {
  return (s(db).rowid.get(id) as { rowid: number } | undefined)?.rowid;
}
/** Revokes at `at` (now, or later for a rotation's grace period); an earlier revocation stands. */
export function revokeKey(db: DB, id: string, at: number): void {
  s(db).revoke.run(at, id, at);
}
/** Records use at most once a minute per key. */
export function touchKey(db: DB, id: string, now: number): void {
  s(db).touch.run(now, id, now - 60_000);
}
export function markKeyExposed(db: DB, id: string, now: number): void {
  s(db).exposed.run(now, id);
}

export function keyToApi(row: KeyWithSite, secret?: string): Key {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    type: row.type,
    environment: row.environment,
    scopes: JSON.parse(row.scopes) as string[],
    site: row.site_service_id,
    sites: row.sites ? (JSON.parse(row.sites) as string[]) : null,
    created_at: iso(row.created_at),
    last_used_at: iso(row.last_used_at),
    expires_at: iso(row.expires_at),
    revoked_at: iso(row.revoked_at),
    exposed_at: iso(row.exposed_at),
    ...(secret ? { secret } : {}),
  };
}
