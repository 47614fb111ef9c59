// Routes of the management API (secret keys): sites, keys, tickets, usage, signing keys. Every route
// passes authorize() (key, rate limit, scope) first; none sends CORS headers.
import { Router } from 'express';
import type { AppContext } from '../context.js';
import { keysRouter } from './keys.js';
import { signingKeysRouter } from './signing-keys.js';
import { sitesRouter } from './sites.js';
import { ticketsRouter } from './tickets.js';
import { usageRouter } from './usage.js';

export function manageRouter(ctx: AppContext): Router {
  const router = Router();
  router.use(sitesRouter(ctx));
  router.use(keysRouter(ctx));
  router.use(ticketsRouter(ctx));
  router.use(usageRouter(ctx));
  router.use(signingKeysRouter(ctx));
  return router;
}
