// Sites of the management API: list, get, create (with its publishable keys, shown once), patch
// (a merge: fields left out keep their value, also inside `widget` and `prices`), delete.
import { CreateSiteBody, PageQuery, PatchSiteBody } from '@parley/shared';
import type { Router } from 'express';
import type { Auth } from '../auth/authenticate.js';
import { siteForKey } from '../auth/scopes.js';
import type { AppContext } from '../context.js';
import { deleteSite, findSiteById, listSites, siteHasLiveData, siteToApi, siteWidget, updateSite, type SiteRow } from '../db/sites.js';
import { encodeCursor } from '../db/cursors.js';
import { ApiError, parseOr400 } from '../errors.js';
import { createSite } from '../services/provisioning.js';
import { authorize, cursorPosition, parseQuery, takesNoBody } from './access.js';
import { idempotentCreate } from './idempotent.js';

function restriction(auth: Auth): string[] | null {
  return auth.key.sites ? (JSON.parse(auth.key.sites) as string[]) : null;
}

/** Sites of the key's workspace within its restriction, by id, after `afterId`; `next` continues. */
function visibleSites(ctx: AppContext, auth: Auth, afterId: number, limit: number): { sites: SiteRow[]; next: number | null } {
  const allowed = restriction(auth);
  const BATCH = 100;
  const sites: SiteRow[] = [];
  let after = afterId;
  for (;;) {
    const batch = listSites(ctx.db, auth.key.workspace_id, after, BATCH);
    for (const row of batch) {
      if (allowed && !allowed.includes(row.service_id)) continue;
      if (sites.length === limit) return { sites, next: sites[sites.length - 1]!.id };
      sites.push(row);
    }
    if (batch.length < BATCH) return { sites, next: null };
    after = batch[batch.length - 1]!.id;
  }
}

export function sitesRoutes(ctx: AppContext, router: Router): void {

  router.get('/sites', (req, res) => {
    const auth = authorize(ctx, req, res, 'read', { takesQuery: true });
    const q = parseQuery(PageQuery, req);
    const scope = `sites:${auth.key.workspace_id}`;
    const { sites, next } = visibleSites(ctx, auth, cursorPosition(ctx, scope, q.cursor) ?? 0, q.limit ?? 50);
    res.json({ sites: sites.map(siteToApi), next_cursor: next === null ? null : encodeCursor(ctx.db, scope, next) });
  });

  router.get('/sites/:sid', (req, res) => {
    const auth = authorize(ctx, req, res, 'read');
    res.json({ site: siteToApi(siteForKey(ctx, auth, req.params.sid)) });
  });

  router.post('/sites', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    const body = parseOr400(CreateSiteBody, req.body);
    const allowed = restriction(auth);
    if (allowed && !allowed.includes(body.service_id)) {
      throw new ApiError('site_mismatch', 'This key is restricted to other sites; it can create only sites named in its restriction.');
    }
    // A test key never mints a live key: it gets the test publishable key only (live is null).
    const environments = auth.environment === 'live' ? (['live', 'test'] as const) : (['test'] as const);
    idempotentCreate(ctx, req, res, auth, 'POST /sites', () => {
      const { site, keys } = createSite(ctx.db, auth.key.workspace_id, body, ctx.clock(), environments);
      return { site: siteToApi(site), publishable_keys: { live: keys.live?.secret ?? null, test: keys.test?.secret ?? null } };
    }, { sealed: true });
  });

  router.patch('/sites/:sid', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    const site = siteForKey(ctx, auth, req.params.sid);
    const body = parseOr400(PatchSiteBody, req.body);
    // Read, merge and write in one IMMEDIATE transaction so concurrent patches of other fields are not lost.
    const updated = ctx.db.transaction(() => {
      const row = findSiteById(ctx.db, site.id);
      if (!row) throw new ApiError('not_found', 'No such site.');
      const widget = { ...siteWidget(row) };
      for (const [k, v] of Object.entries(body.widget ?? {})) if (v !== undefined) (widget as Record<string, unknown>)[k] = v;
      const next: SiteRow = {
        ...row,
        name: body.name ?? row.name,
        allowed_origins: body.allowed_origins ? JSON.stringify([...new Set(body.allowed_origins)]) : row.allowed_origins,
        allow_server_requests: body.allow_server_requests === undefined ? row.allow_server_requests : body.allow_server_requests ? 1 : 0,
        rate_limit_per_minute: body.rate_limit_per_minute ?? row.rate_limit_per_minute,
        daily_spend_cap_micros: body.daily_spend_cap_micros ?? row.daily_spend_cap_micros,
        price_ticket_create: body.prices?.['ticket.create'] ?? row.price_ticket_create,
        price_message_create: body.prices?.['message.create'] ?? row.price_message_create,
        widget: JSON.stringify(widget),
      };
      updateSite(ctx.db, next);
      return next;
    }).immediate();
    res.json({ site: siteToApi(updated) });
  });

  router.delete('/sites/:sid', (req, res) => {
    const auth = authorize(ctx, req, res, 'admin');
    takesNoBody(req);
    const site = siteForKey(ctx, auth, req.params.sid);
    ctx.db.transaction(() => {
      // Deleting a site deletes its live tickets and keys too: a test key must not change live data.
      if (auth.environment === 'test' && siteHasLiveData(ctx.db, site.id)) {
        throw new ApiError('insufficient_scope', 'A test key cannot delete a site that holds live tickets or keys; use a live key.');
      }
      deleteSite(ctx.db, site.id);
    }).immediate();
    res.status(204).end();
  });

}
