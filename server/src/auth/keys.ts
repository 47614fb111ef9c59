// Minting keys: CSPRNG bytes in the SPEC's format; only the SHA-256 is kept.
import { randomBytes } from 'node:crypto';
import { formatKey, parseKey, type Environment, type KeyType } from '@parley/shared';
import type { DB } from '../db/open.js';
import { insertKey, findKeyById, type KeyRow, type KeyWithSite } from '../db/keys.js';
import { newId, pooledRandomBytes, sha256 } from '../util.js';

export interface MintedKey {
  row: KeyWithSite;
  /** The plaintext: returned once to the caller, never stored or logged. */
  secret: string;
}

export interface MintRequest {
  type: KeyType;
  environment: Environment;
  name: string;
  scopes: string[];
  workspaceId: string;
  siteId: number | null;
  sites: string[] | null;
  expiresAt: number | null;
  now: number;
}

/** Creates and stores a new key; returns its row and the plaintext. */
export function mintKey(db: DB, req: MintRequest): MintedKey {
  const secret = formatKey(req.type, req.environment, randomBytes(32));
  const parsed = parseKey(secret)!;
  const row: KeyRow = {
    id: newId('key'),
    hash: sha256(secret),
    prefix: parsed.prefix,
    name: req.name,
    type: req.type,
    environment: req.environment,
    scopes: JSON.stringify(req.scopes),
    workspace_id: req.workspaceId,
    site_id: req.siteId,
    sites: req.sites ? JSON.stringify(req.sites) : null,
    created_at: req.now,
    last_used_at: null,
    expires_at: req.expiresAt,
    revoked_at: null,
    exposed_at: null,
  };
  insertKey(db, row);
  return { row: findKeyById(db, row.id)!, secret };
}

/** A visitor token: 32 random bytes; the `vt_` prefix lets log scrubbing recognise it. */
export function newVisitorToken(): string {
  return `vt_${pooledRandomBytes(32).toString('base64url')}`;
}
