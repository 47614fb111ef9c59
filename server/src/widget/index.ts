// Routes of /v1/widget (publishable keys): origins, rate limits, spend, tickets, live events.
import { Router } from 'express';
import type { AppContext } from '../context.js';

export function widgetRouter(ctx: AppContext): Router {
  void ctx;
  const router = Router();
  return router;
}
