// Creating workspaces and sites with their keys: shared by the management API and the CLI.
import type { CreateSiteBody, Environment, WidgetSettings } from '@parley/shared';
import { mintKey, type MintedKey } from '../auth/keys.js';
import type { DB } from '../db/open.js';
import { findSiteByServiceId, insertSite, SITE_DEFAULTS, type SiteRow } from '../db/sites.js';
import { insertWorkspace, type WorkspaceRow } from '../db/workspaces.js';
import { ApiError } from '../errors.js';
import { newId } from '../util.js';

export const ALL_SCOPES = ['read', 'write', 'admin'];

/** A workspace and its two secret keys with every scope, one live and one test. */
export function createWorkspace(db: DB, name: string, now: number): { workspace: WorkspaceRow; keys: { live: MintedKey; test: MintedKey } } {
  return db.transaction(() => {
    const workspace = { id: newId('ws'), name, created_at: now };
    insertWorkspace(db, workspace);
    const mint = (environment: 'live' | 'test') =>
      mintKey(db, {
        type: 'secret', environment, name: `${name} ${environment} admin key`, scopes: ALL_SCOPES,
        workspaceId: workspace.id, siteId: null, sites: null, expiresAt: null, now,
      });
    return { workspace, keys: { live: mint('live'), test: mint('test') } };
  }).immediate();
}

/**
 * A site and its two publishable keys. `body` is already validated and its origins normalised.
 * `environments` limits which keys are minted (a test key creating a site must not mint a live key).
 */
export function createSite(db: DB, workspaceId: string, body: CreateSiteBody, now: number): { site: SiteRow; keys: { live: MintedKey; test: MintedKey } };
export function createSite(
  db: DB, workspaceId: string, body: CreateSiteBody, now: number, environments: readonly Environment[],
): { site: SiteRow; keys: { live: MintedKey | null; test: MintedKey | null } };
export function createSite(
  db: DB, workspaceId: string, body: CreateSiteBody, now: number, environments: readonly Environment[] = ['live', 'test'],
): { site: SiteRow; keys: { live: MintedKey | null; test: MintedKey | null } } {
  return db.transaction(() => {
    if (findSiteByServiceId(db, body.service_id)) {
      throw new ApiError('invalid_request', `The service id '${body.service_id}' is already taken.`, {
        issues: [{ path: 'service_id', message: 'is already taken' }],
      });
    }
    const widget: WidgetSettings = { ...SITE_DEFAULTS.widget };
    for (const [k, v] of Object.entries(body.widget ?? {})) if (v !== undefined) (widget as unknown as Record<string, unknown>)[k] = v;
    const site = insertSite(db, {
      service_id: body.service_id,
      workspace_id: workspaceId,
      name: body.name,
      allowed_origins: JSON.stringify([...new Set(body.allowed_origins)]),
      allow_server_requests: body.allow_server_requests ? 1 : 0,
      rate_limit_per_minute: body.rate_limit_per_minute ?? SITE_DEFAULTS.rate_limit_per_minute,
      daily_spend_cap_micros: body.daily_spend_cap_micros ?? SITE_DEFAULTS.daily_spend_cap_micros,
      price_ticket_create: body.prices?.['ticket.create'] ?? SITE_DEFAULTS.price_ticket_create,
      price_message_create: body.prices?.['message.create'] ?? SITE_DEFAULTS.price_message_create,
      widget: JSON.stringify(widget),
      created_at: now,
    });
    const mint = (environment: 'live' | 'test') =>
      mintKey(db, {
        type: 'publishable', environment, name: `${body.service_id} ${environment} widget key`, scopes: ['widget'],
        workspaceId, siteId: site.id, sites: null, expiresAt: null, now,
      });
    const wanted = (environment: Environment) => (environments.includes(environment) ? mint(environment) : null);
    return { site, keys: { live: wanted('live'), test: wanted('test') } };
  }).immediate();
}
