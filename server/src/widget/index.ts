// Routes of /v1/widget (publishable keys): origins, rate limits, spend, tickets, live events.
// Every request first meets its site's CORS decision (origins.ts); each route then runs the
// guard (guard.ts) before its own checks; refusals after the origin check are counted last.
import { Router } from 'express';
import type { AppContext } from '../context.js';
import { eventsRoutes } from './events.js';
import { countRefusals } from './guard.js';
import { siteAndCors } from './origins.js';
import { ticketsRoutes } from './tickets.js';

/**
 * The CORS stage, for `createApp` to mount at /v1/widget/:serviceId before the JSON body rules: a
 * 413, 415 or invalid_json answer to an allowed origin then carries CORS headers and the widget
 * can read it.
 */
export const widgetCors = siteAndCors;

/** The widget's routes, in one router (every nested router costs each request a pass of its own). */
export function widgetRouter(ctx: AppContext): Router {
  const router = Router();
  ticketsRoutes(ctx, router);
  eventsRoutes(ctx, router);
  router.use(countRefusals(ctx));
  return router;
}
