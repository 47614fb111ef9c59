// Idempotency-Key on POSTs, of the widget (SPEC section 6) and of the management API (see
// manage/idempotent.ts): within 24 hours the same key and body replay the first response (no second
// row, no second charge); the same key with another body is 409. The lookup, the write, the charge
// and the stored response are one IMMEDIATE transaction (the caller's).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { IdempotencyKey } from '@parley/shared';
import type { Request } from 'express';
import type { DB } from '../db/open.js';
import { findIdempotency, putIdempotency } from '../db/idempotency.js';
import { ApiError } from '../errors.js';
import { sha256 } from '../util.js';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface Idempotency {
  /** Site, environment, method and path (the ticket id is in the path of message posts). */
  scope: string;
  /** The client's key as sent; only its hash is stored. */
  key: string;
  /** SHA-256 of the canonical JSON body without `api_key` and `user_token` (a retry may bring a fresh one). */
  requestHash: Buffer;
}

export interface StoredResponse {
  status: number;
  /** The JSON text of the response body. */
  body: string;
}

/** JSON with object keys sorted, so the same body in another key order is the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Reads the request's Idempotency-Key (null when absent; 400 when out of bounds). Call after the
 * body passed its schema, so the body hashed here is a small, shallow object.
 */
export function idempotencyOf(req: Request, scope: string): Idempotency | null {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return null;
  const parsed = IdempotencyKey.safeParse(raw);
  if (!parsed.success) {
    throw new ApiError('invalid_request', 'The Idempotency-Key header must be 1 to 255 characters.', {
      issues: [{ path: 'Idempotency-Key', message: 'must be 1 to 255 characters' }],
    });
  }
  // The credentials are not the request: a retry may carry the key elsewhere or a renewed user
  // token (the user it names is part of the scope, see POST /tickets).
  const { api_key: _key, user_token: _user, ...body } = (req.body ?? {}) as Record<string, unknown>;
  return { scope, key: parsed.data, requestHash: sha256(canonicalJson(body)) };
}

const keyId = (key: string): string => sha256(key).toString('base64url');

/**
 * The stored first response for this key, or null when there is none (or it expired). Throws
 * `409 idempotency_conflict` when the key was used with another body. Call inside the transaction.
 */
export function findReplay(db: DB, idem: Idempotency, now: number): StoredResponse | null {
  const row = findIdempotency(db, idem.scope, keyId(idem.key));
  if (!row || row.created_at <= now - IDEMPOTENCY_TTL_MS) return null;
  if (!row.request_hash.equals(idem.requestHash)) {
    throw new ApiError('idempotency_conflict', 'This Idempotency-Key was already used with a different request body.');
  }
  return { status: row.status, body: unseal(row.response, idem) };
}

/**
 * Stores the response for replays, in the transaction that made it. `sealed` responses hold a
 * secret (a new ticket's visitor token): they are encrypted with a key derived from the client's
 * Idempotency-Key, which is itself stored only hashed, so the table never holds a usable token.
 */
export function rememberResponse(db: DB, idem: Idempotency, response: StoredResponse, now: number, sealed = false): void {
  putIdempotency(db, {
    scope: idem.scope,
    key: keyId(idem.key),
    request_hash: idem.requestHash,
    status: response.status,
    response: sealed ? seal(response.body, idem) : response.body,
    created_at: now,
  });
}

const SEALED = 'sealed:v1:';

function sealKey(idem: Idempotency): Buffer {
  return Buffer.from(hkdfSync('sha256', idem.key, idem.scope, 'parley idempotent response v1', 32));
}

function seal(text: string, idem: Idempotency): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(idem), iv);
  const ct = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
  return SEALED + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url');
}

function unseal(stored: string, idem: Idempotency): string {
  if (!stored.startsWith(SEALED)) return stored;
  const raw = Buffer.from(stored.slice(SEALED.length), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', sealKey(idem), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
}
