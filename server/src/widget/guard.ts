// The checks every widget request passes before its route does any work, in the SPEC's order
// (section 3): key, site, origin, rate limit. Refusals after the origin check are counted per code
// for the usage route; nothing before it leaves a trace (a refused origin changes no row at all).
import type { ErrorRequestHandler, Request, Response } from 'express';
import { authenticatePublishable, recordKeyUse, type Auth } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { countRefusal } from '../db/meters.js';
import type { SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { setRateLimitHeaders, takeToken } from '../limits/ratelimit.js';
import { checkOrigin, siteLocals } from './origins.js';

export interface Admitted {
  auth: Auth;
  site: SiteRow;
  environment: 'live' | 'test';
}

/** Where refusals of a request are counted, once it passed the origin check. */
interface RefusalScope {
  siteId: number;
  environment: 'live' | 'test';
  /** Set when the refusal was already counted in the transaction that decided it. */
  counted: boolean;
}

/** The rate-limit bucket of a site in one environment: test traffic never eats live tokens. */
export function siteBucket(siteId: number, environment: string): string {
  return `site:${siteId}:${environment}`;
}

/**
 * Key → site → origin → rate limit. Throws the first refusal; on success the response already
 * carries the rate-limit headers. The token, the key's last use and (for a 429) the refusal count
 * are one IMMEDIATE transaction.
 */
export function admit(ctx: AppContext, req: Request, res: Response): Admitted {
  const locals = siteLocals(res);
  const auth = authenticatePublishable(ctx, req);
  const site = locals.site;
  if (!site || auth.key.site_id !== site.id) {
    throw new ApiError('site_mismatch', 'This publishable key belongs to another site than the one in the path.');
  }
  checkOrigin(req, site, locals);

  const environment = auth.environment;
  const scope: RefusalScope = { siteId: site.id, environment, counted: false };
  res.locals.refusals = scope;
  const now = ctx.clock();
  const decision = ctx.db.transaction(() => {
    const d = takeToken(ctx.db, siteBucket(site.id, environment), site.rate_limit_per_minute, now);
    recordKeyUse(ctx, auth);
    if (!d.allowed) countRefusal(ctx.db, site.id, environment, 'rate_limit_exceeded', now);
    return d;
  }).immediate();
  setRateLimitHeaders(res, decision, 'site');
  if (!decision.allowed) {
    scope.counted = true;
    throw new ApiError('rate_limit_exceeded', `Too many requests for this site; retry in ${decision.retryAfter} s.`, {
      headers: { 'Retry-After': String(decision.retryAfter) },
    });
  }
  return { auth, site, environment };
}

/**
 * Counts a refusal that happened after the origin check (400, 402, 403, 404, 409, 429) for the
 * usage route, then hands the error on. Best effort: a failure to count never changes the answer.
 */
export function countRefusals(ctx: AppContext): ErrorRequestHandler {
  return (err, _req, res, next) => {
    const scope = res.locals.refusals as RefusalScope | undefined;
    if (scope && !scope.counted && err instanceof ApiError && err.status < 500) {
      scope.counted = true;
      try {
        countRefusal(ctx.db, scope.siteId, scope.environment, err.code, ctx.clock());
      } catch (e) {
        ctx.logger.warn({ err: e, request_id: res.locals.requestId }, 'refusal not counted');
      }
    }
    next(err);
  };
}
