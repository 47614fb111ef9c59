// Finding and verifying the API key of a request (SPEC section 3).
import type { Request } from 'express';
import { parseKey } from '@parley/shared';
import type { AppContext } from '../context.js';
import { findKeyByHash, markKeyExposed, touchKey, type KeyWithSite } from '../db/keys.js';
import { ApiError } from '../errors.js';
import { sha256 } from '../util.js';

export interface Auth {
  key: KeyWithSite;
  environment: 'live' | 'test';
  scopes: ReadonlySet<string>;
}

/** What one Authorization header carries: its Bearer key, '' when blank, else a value that is no key. */
function bearer(h: string): string {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
  if (m) return m[1]!;
  // A header that is not `Bearer <key>` is a credential we cannot read: it is refused as
  // invalid_api_key (never matched as a key) rather than ignored or taken as a bare key.
  return h.trim() === '' ? '' : `unreadable Authorization header ${h}`;
}

/**
 * Every credential the request carries where its kind of route takes one (SPEC section 3): widget
 * routes read `X-Parley-Key`, `Authorization: Bearer` and the body's `api_key`; management routes
 * `Authorization: Bearer` and `X-API-Key`. Two different ones are `400 conflicting_credentials`,
 * the same one twice is that key. An empty value (header or `api_key`) carries no credential.
 * Headers are read from `rawHeaders`, one pass and every occurrence: Node keeps only the first
 * Authorization header in `req.headers`, so a second one with another key would go unnoticed
 * (and `headersDistinct` builds arrays of every header of the request, on the hot path). A key
 * header sent twice, or with commas, is split at the commas (a key never holds one).
 */
export function findCredential(req: Request, opts: { widget: boolean }): string {
  const found = new Set<string>();
  const add = (v: string | undefined) => {
    const k = v?.trim();
    if (k) found.add(k);
  };
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    // Cheap length checks first: most headers of a request are none of these.
    if (name.length === 13 && name.toLowerCase() === 'authorization') add(bearer(raw[i + 1]!));
    else if (name.length === (opts.widget ? 12 : 9) && name.toLowerCase() === (opts.widget ? 'x-parley-key' : 'x-api-key')) {
      for (const v of raw[i + 1]!.split(',')) add(v);
    }
  }
  if (opts.widget && req.body && typeof req.body === 'object' && !Array.isArray(req.body)) {
    const k = (req.body as Record<string, unknown>).api_key;
    if (k !== undefined) {
      if (typeof k !== 'string') throw new ApiError('invalid_api_key', 'The api_key field must be a string.');
      add(k);
    }
  }
  if (found.size > 1) throw new ApiError('conflicting_credentials', 'The request carries two different API keys; send one.');
  const [key] = found;
  if (!key) {
    throw new ApiError('missing_authorization', opts.widget
      ? "No API key: send the site's publishable key (pk_...) in X-Parley-Key, as Authorization: Bearer, or as api_key in the JSON body."
      : 'No API key: send a secret key (sk_...) as Authorization: Bearer, or in X-API-Key.');
  }
  return key;
}

/** Whether a stored key stopped authenticating by `now`: 'been revoked', 'expired', or null while it works. */
export function keyEnded(key: Pick<KeyWithSite, 'revoked_at' | 'expires_at'>, now: number): 'been revoked' | 'expired' | null {
  if (key.revoked_at !== null && key.revoked_at <= now) return 'been revoked';
  if (key.expires_at !== null && key.expires_at <= now) return 'expired';
  return null;
}

/** Finds a stored key by the SHA-256 of its text. */
export type KeyLookup = (hash: Buffer) => KeyWithSite | undefined;

const scopeSets = new WeakMap<KeyWithSite, ReadonlySet<string>>();
/** The scopes of a key row, parsed once per row object (widget routes reuse cached rows). */
function scopesOf(key: KeyWithSite): ReadonlySet<string> {
  let scopes = scopeSets.get(key);
  if (!scopes) {
    scopes = new Set(JSON.parse(key.scopes) as string[]);
    scopeSets.set(key, scopes);
  }
  return scopes;
}

/** Verifies a key: shape and checksum offline, then one indexed lookup; revoked or expired keys are refused. */
export function verifyKey(ctx: AppContext, raw: string, lookup: KeyLookup = (hash) => findKeyByHash(ctx.db, hash)): Auth {
  if (!parseKey(raw)) throw new ApiError('invalid_api_key', 'The API key is malformed or its checksum is wrong.');
  const key = lookup(sha256(raw));
  const now = ctx.clock();
  if (!key) throw new ApiError('invalid_api_key', 'The API key is not valid.');
  const ended = keyEnded(key, now);
  if (ended) throw new ApiError('invalid_api_key', `The API key has ${ended}.`);
  return { key, environment: key.environment, scopes: scopesOf(key) };
}

/** Records that the key was used, at most once a minute (called once a request is accepted). */
export function recordKeyUse(ctx: AppContext, auth: Auth): void {
  const now = ctx.clock();
  if (auth.key.last_used_at === null || auth.key.last_used_at < now - 60_000) {
    touchKey(ctx.db, auth.key.id, now);
    // The row may be a cached one (db/admission.ts), which last_used_at does not invalidate.
    auth.key.last_used_at = now;
  }
}

/** Widget routes: a publishable key only. A secret key sent from a browser is marked exposed. */
export function authenticatePublishable(ctx: AppContext, req: Request, lookup?: KeyLookup): Auth {
  const auth = verifyKey(ctx, findCredential(req, { widget: true }), lookup);
  if (auth.key.type !== 'publishable') {
    if (req.headers.origin !== undefined) markKeyExposed(ctx.db, auth.key.id, ctx.clock());
    throw new ApiError(
      'publishable_key_required',
      'Widget routes take a publishable key (pk_...). A secret key must never be used in a browser: rotate it if it was.',
    );
  }
  return auth;
}

/** Management routes: a secret key only. */
export function authenticateSecret(ctx: AppContext, req: Request): Auth {
  const auth = verifyKey(ctx, findCredential(req, { widget: false }));
  if (auth.key.type !== 'secret') {
    throw new ApiError('insufficient_scope', 'Management routes take a secret key (sk_...); publishable keys only reach /v1/widget.');
  }
  return auth;
}
