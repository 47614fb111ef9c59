// Scope checks and the site access rule of secret keys.
import type { Scope } from '@parley/shared';
import type { AppContext } from '../context.js';
import { findSiteByServiceId, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import type { Auth } from './authenticate.js';

export function requireScope(auth: Auth, scope: Scope): void {
  if (!auth.scopes.has(scope)) {
    throw new ApiError('insufficient_scope', `This key lacks the '${scope}' scope needed for this route.`);
  }
}

/** The site `serviceId` as seen by a secret key: 403 outside its site restriction, 404 outside its workspace. */
export function siteForKey(ctx: AppContext, auth: Auth, serviceId: string): SiteRow {
  const restricted = auth.key.sites ? (JSON.parse(auth.key.sites) as string[]) : null;
  if (restricted && !restricted.includes(serviceId)) {
    throw new ApiError('site_mismatch', 'This key is restricted to other sites.');
  }
  const site = findSiteByServiceId(ctx.db, serviceId);
  if (!site || site.workspace_id !== auth.key.workspace_id) throw new ApiError('not_found', 'No such site.');
  return site;
}
