// Routes of /v1/widget (publishable keys): origins, rate limits, spend, tickets, live events.
// Every request first meets its site's CORS decision (origins.ts); each route then runs the
// guard (guard.ts) before its own checks; refusals after the origin check are counted last.
import { Router } from 'express';
import type { AppContext } from '../context.js';
import { eventsRouter } from './events.js';
import { countRefusals } from './guard.js';
import { siteAndCors } from './origins.js';
import { ticketsRouter } from './tickets.js';

/**
 * The CORS stage alone, for `createApp` to mount before the JSON body rules: a 413, 415 or
 * invalid_json answer to an allowed origin then carries CORS headers and the widget can read it.
 */
export function widgetCors(ctx: AppContext): Router {
  const router = Router();
  router.use('/:serviceId', siteAndCors(ctx));
  return router;
}

export function widgetRouter(ctx: AppContext): Router {
  const router = Router();
  router.use('/:serviceId', siteAndCors(ctx));
  router.use(ticketsRouter(ctx));
  router.use(eventsRouter(ctx));
  router.use(countRefusals(ctx));
  return router;
}
