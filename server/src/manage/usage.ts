// Usage of a site per UTC day in the key's environment: spend, tickets, messages, refusals by code.
import { UsageQuery } from '@parley/shared';
import type { Router } from 'express';
import { siteForKey } from '../auth/scopes.js';
import type { AppContext } from '../context.js';
import { usageByDay } from '../db/meters.js';
import { authorize, parseQuery } from './access.js';

const DEFAULT_DAYS = 30;

export function usageRoutes(ctx: AppContext, router: Router): void {
  router.get('/sites/:sid/usage', (req, res) => {
    const auth = authorize(ctx, req, res, 'read', { takesQuery: true });
    const site = siteForKey(ctx, auth, req.params.sid);
    const q = parseQuery(UsageQuery, req);
    res.json({ usage: usageByDay(ctx.db, site.id, auth.environment, q.days ?? DEFAULT_DAYS, ctx.clock()) });
  });
}
