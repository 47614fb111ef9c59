// Routes of the management API (secret keys): sites, keys, tickets, usage, signing keys. Every route
// passes authorize() (key, rate limit, scope) first; none sends CORS headers.
import { Router } from 'express';
import type { AppContext } from '../context.js';
import { keysRoutes } from './keys.js';
import { signingKeysRoutes } from './signing-keys.js';
import { sitesRoutes } from './sites.js';
import { ticketsRoutes } from './tickets.js';
import { usageRoutes } from './usage.js';

export function manageRouter(ctx: AppContext): Router {
  const router = Router();
  // One router for all of them: every nested router costs each request a pass of its own.
  sitesRoutes(ctx, router);
  keysRoutes(ctx, router);
  ticketsRoutes(ctx, router);
  usageRoutes(ctx, router);
  signingKeysRoutes(ctx, router);
  return router;
}
