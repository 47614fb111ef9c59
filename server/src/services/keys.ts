// The key lifecycle (SPEC sections 2 and 7): create, list, revoke and rotate keys on behalf of a
// caller, shared by the management API (the caller is a secret key) and the CLI (full rights).
// Every rule against escalation lives here: a key grants only scopes it has, only in its own
// environment, and only for sites within its own restriction.
import type { CreateKeyBody, Environment, ErrorIssue } from '@parley/shared';
import type { Auth } from '../auth/authenticate.js';
import { mintKey, type MintedKey } from '../auth/keys.js';
import { findKeyById, listKeys, revokeKey, type KeyWithSite } from '../db/keys.js';
import type { DB } from '../db/open.js';
import { findSiteByServiceId, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { ALL_SCOPES } from './provisioning.js';

export const MAX_GRACE_SECONDS = 604_800;

/** Who acts on keys: a workspace, one environment, a set of scopes and an optional site restriction. */
export interface KeyCaller {
  workspaceId: string;
  environment: Environment;
  scopes: ReadonlySet<string>;
  /** Service ids the caller is restricted to; null means every site of the workspace. */
  sites: readonly string[] | null;
}

/** The caller behind an authenticated secret key. */
export function callerFromAuth(auth: Auth): KeyCaller {
  return {
    workspaceId: auth.key.workspace_id,
    environment: auth.environment,
    scopes: auth.scopes,
    sites: auth.key.sites ? (JSON.parse(auth.key.sites) as string[]) : null,
  };
}

/** The operator at the CLI: every scope, every site of the workspace, in one environment. */
export function fullRights(workspaceId: string, environment: Environment): KeyCaller {
  return { workspaceId, environment, scopes: new Set(ALL_SCOPES), sites: null };
}

function badRequest(issues: ErrorIssue[]): ApiError {
  const [first] = issues;
  return new ApiError('invalid_request', `The request is invalid: ${first!.path}: ${first!.message}.`, { issues });
}

function parseSites(row: KeyWithSite): string[] | null {
  return row.sites ? (JSON.parse(row.sites) as string[]) : null;
}

/** Whether a key is visible to the caller: same workspace and environment, and within its restriction. */
function inReach(caller: KeyCaller, row: KeyWithSite): boolean {
  if (row.workspace_id !== caller.workspaceId || row.environment !== caller.environment) return false;
  if (!caller.sites) return true;
  if (row.type === 'publishable') return row.site_service_id !== null && caller.sites.includes(row.site_service_id);
  const sites = parseSites(row);
  return sites !== null && sites.every((s) => caller.sites!.includes(s));
}

function findReachableKey(db: DB, caller: KeyCaller, id: string): KeyWithSite {
  const row = findKeyById(db, id);
  if (!row || !inReach(caller, row)) throw new ApiError('not_found', 'No such key.');
  return row;
}

/** Refuses scopes the caller does not hold itself. */
function requireGrantable(caller: KeyCaller, scopes: readonly string[]): void {
  const missing = scopes.filter((s) => !caller.scopes.has(s));
  if (missing.length) {
    throw new ApiError('insufficient_scope', `A key can grant only scopes it has; this key lacks ${missing.map((s) => `'${s}'`).join(', ')}.`);
  }
}

/** A site of the caller's workspace for a publishable key: 403 outside its restriction, 400 if unknown. */
function grantableSite(db: DB, caller: KeyCaller, serviceId: string): SiteRow {
  if (caller.sites && !caller.sites.includes(serviceId)) {
    throw new ApiError('site_mismatch', 'This key is restricted to other sites and cannot grant access to this one.');
  }
  const site = findSiteByServiceId(db, serviceId);
  if (!site || site.workspace_id !== caller.workspaceId) throw badRequest([{ path: 'site', message: 'no such site in this workspace' }]);
  return site;
}

/** The site restriction of a new secret key: within the caller's own, each a site of the workspace. */
function grantableRestriction(db: DB, caller: KeyCaller, requested: readonly string[] | undefined): string[] | null {
  if (requested === undefined) return caller.sites ? [...caller.sites] : null;
  const sites = [...new Set(requested)];
  if (caller.sites && sites.some((s) => !caller.sites!.includes(s))) {
    throw new ApiError('site_mismatch', 'This key is restricted to other sites; a new key can only be restricted to sites within its own restriction.');
  }
  const issues: ErrorIssue[] = [];
  sites.forEach((s, i) => {
    const site = findSiteByServiceId(db, s);
    if (!site || site.workspace_id !== caller.workspaceId) issues.push({ path: `sites.${i}`, message: 'no such site in this workspace' });
  });
  if (issues.length) throw badRequest(issues);
  return sites;
}

function parseExpiry(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const at = Date.parse(value);
  if (!Number.isFinite(at) || at <= now) throw badRequest([{ path: 'expires_at', message: 'must be a time in the future' }]);
  return at;
}

/** Creates a key in the caller's environment; the plaintext is in the result, once. */
export function createKey(db: DB, caller: KeyCaller, body: CreateKeyBody, now: number): MintedKey {
  return db.transaction(() => {
    const issues: ErrorIssue[] = [];
    if (body.type === 'publishable') {
      if (body.site === undefined) issues.push({ path: 'site', message: 'is required for a publishable key' });
      if (body.sites !== undefined) issues.push({ path: 'sites', message: 'is only for secret keys; a publishable key belongs to one site' });
      if (body.scopes !== undefined && !(body.scopes.length === 1 && body.scopes[0] === 'widget')) {
        issues.push({ path: 'scopes', message: 'a publishable key has the single scope "widget"' });
      }
    } else {
      if (body.site !== undefined) issues.push({ path: 'site', message: 'is only for publishable keys; restrict a secret key with "sites"' });
      if (body.scopes?.includes('widget')) issues.push({ path: 'scopes', message: '"widget" is the scope of publishable keys; secret keys take read, write, admin' });
    }
    if (issues.length) throw badRequest(issues);
    const expiresAt = parseExpiry(body.expires_at, now);
    const common = { environment: caller.environment, name: body.name, workspaceId: caller.workspaceId, expiresAt, now };
    if (body.type === 'publishable') {
      const site = grantableSite(db, caller, body.site!);
      return mintKey(db, { ...common, type: 'publishable', scopes: ['widget'], siteId: site.id, sites: null });
    }
    const wanted = new Set<string>(body.scopes ?? ['read']);
    const scopes = ALL_SCOPES.filter((s) => wanted.has(s));
    requireGrantable(caller, scopes);
    const sites = grantableRestriction(db, caller, body.sites);
    return mintKey(db, { ...common, type: 'secret', scopes, siteId: null, sites });
  }).immediate();
}

/** Keys the caller can see, oldest first, after `afterRowid`; `next` is the rowid to continue from. */
export function listKeysFor(db: DB, caller: KeyCaller, afterRowid: number, limit: number): { keys: KeyWithSite[]; next: number | null } {
  const BATCH = 100;
  const keys: (KeyWithSite & { rowid: number })[] = [];
  let after = afterRowid;
  for (;;) {
    const batch = listKeys(db, caller.workspaceId, caller.environment, after, BATCH);
    for (const row of batch) {
      if (!inReach(caller, row)) continue;
      if (keys.length === limit) return { keys, next: keys[keys.length - 1]!.rowid };
      keys.push(row);
    }
    if (batch.length < BATCH) return { keys, next: null };
    after = batch[batch.length - 1]!.rowid;
  }
}

/** Revokes a key now (an earlier revocation, or a rotation's grace ending sooner, stands). */
export function revokeKeyNow(db: DB, caller: KeyCaller, id: string, now: number): KeyWithSite {
  return db.transaction(() => {
    const row = findReachableKey(db, caller, id);
    revokeKey(db, row.id, now);
    return findKeyById(db, row.id)!;
  }).immediate();
}

/**
 * A new key with the old one's name, type, scopes, site(s) and expiry; the old one is revoked now, or
 * after `graceSeconds` so deployments can switch over. Both happen in one transaction.
 */
export function rotateKey(db: DB, caller: KeyCaller, id: string, graceSeconds: number, now: number): { key: MintedKey; old: KeyWithSite } {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
    throw badRequest([{ path: 'grace_seconds', message: `must be a whole number from 0 to ${MAX_GRACE_SECONDS}` }]);
  }
  return db.transaction(() => {
    const row = findReachableKey(db, caller, id);
    if (row.revoked_at !== null) {
      throw badRequest([{ path: 'id', message: 'this key is already revoked or being rotated; rotate its successor instead' }]);
    }
    if (row.expires_at !== null && row.expires_at <= now) {
      throw badRequest([{ path: 'id', message: 'this key has expired; create a new key instead' }]);
    }
    const scopes = JSON.parse(row.scopes) as string[];
    // Rotation hands out a fresh secret with the old key's rights: it must not exceed the caller's.
    if (row.type === 'secret') requireGrantable(caller, scopes);
    const key = mintKey(db, {
      type: row.type, environment: row.environment, name: row.name, scopes, workspaceId: row.workspace_id,
      siteId: row.site_id, sites: parseSites(row), expiresAt: row.expires_at, now,
    });
    revokeKey(db, row.id, now + graceSeconds * 1000);
    return { key, old: findKeyById(db, row.id)! };
  }).immediate();
}
