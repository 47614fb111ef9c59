// The gate every management route passes, in the SPEC's order: a secret key (401/403), the key's
// rate limit (429, with the headers of SPEC section 5), then the scope the route needs.
import type { Scope } from '@parley/shared';
import type { Request, Response } from 'express';
import { z, type ZodType } from 'zod';
import { authenticateSecret, recordKeyUse, type Auth } from '../auth/authenticate.js';
import { requireScope } from '../auth/scopes.js';
import type { AppContext } from '../context.js';
import { decodeCursor } from '../db/cursors.js';
import { ApiError, parseOr400 } from '../errors.js';
import { setRateLimitHeaders, takeTokenNow } from '../limits/ratelimit.js';

const NoQuery = z.strictObject({});

/**
 * Authenticates a management request, counts it against the key's rate limit and checks `scope`.
 * A route that reads a query string says so (`takesQuery`) and parses it with parseQuery; on every
 * other route any query parameter is unknown, so `400 invalid_request`, as on the lists.
 */
export function authorize(ctx: AppContext, req: Request, res: Response, scope: Scope, opts: { takesQuery?: boolean } = {}): Auth {
  const auth = authenticateSecret(ctx, req);
  const d = takeTokenNow(ctx.db, `key:${auth.key.id}`, ctx.limits.managementRatePerMinute, ctx.clock());
  setRateLimitHeaders(res, d, 'key');
  if (!d.allowed) {
    throw new ApiError('rate_limit_exceeded', `Too many requests for this key; retry in ${d.retryAfter} s.`, {
      headers: { 'Retry-After': String(d.retryAfter) },
    });
  }
  recordKeyUse(ctx, auth);
  requireScope(auth, scope);
  if (!opts.takesQuery) parseQuery(NoQuery, req);
  return auth;
}

/** Parses a query string strictly: unknown or repeated parameters are `400 invalid_request`. */
export function parseQuery<T>(schema: ZodType<T>, req: Request): T {
  return parseOr400(schema, { ...(req.query as Record<string, unknown>) }, 'The query string');
}

/** The position a cursor of the list `scope` stands for (see db/cursors.ts), or `400 invalid_request`. */
export function cursorPosition(ctx: AppContext, scope: string, cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  const at = decodeCursor(ctx.db, scope, cursor);
  if (at === null) {
    throw new ApiError('invalid_request', 'The cursor is not one this list returned.', {
      issues: [{ path: 'cursor', message: 'is not a cursor returned by this list' }],
    });
  }
  return at;
}

const NoBody = z.strictObject({});
/**
 * For routes that take no body (the DELETEs): none, or `{}`, else `400 invalid_request` (a field
 * or a JSON value they do not take), checked before they change anything.
 */
export function takesNoBody(req: Request): void {
  parseOr400(NoBody, req.body === undefined ? {} : req.body);
}
