// Routes of the management API (secret keys): sites, keys, tickets, usage.
import { Router } from 'express';
import type { AppContext } from '../context.js';

export function manageRouter(ctx: AppContext): Router {
  void ctx;
  const router = Router();
  return router;
}
