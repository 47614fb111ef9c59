// The checks every widget request passes before its route does any work, in the SPEC's order
// (section 3): key, site, origin, rate limit. Refusals after the origin check are counted per code
// for the usage route; nothing before it leaves a trace (a refused origin changes no row at all).
// Sites and keys come from memory (db/admission.ts) and are confirmed inside the transaction that
// takes the request's token.
import type { ErrorRequestHandler, Request, Response } from 'express';
import { authenticatePublishable, findCredential, recordKeyUse, type Auth } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { generationHolds, keyByHash } from '../db/admission.js';
import { countRefusal } from '../db/meters.js';
import { grouped, savepoint } from '../db/transact.js';
import type { SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { peekToken, setRateLimitHeaders, siteBucket, takeToken, type RateDecision } from '../limits/ratelimit.js';
import { checkOrigin, refreshSite, siteLocals, type SiteLocals } from './origins.js';

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

interface Gated extends Admitted {
  refusals: RefusalScope;
  /** The admission generation both rows are known to be current at; -1 when they were read at different ones. */
  generation: number;
}

/** Refusals that rest on the site or key row (the others rest on the request alone). */
const ROW_REFUSALS = new Set(['invalid_api_key', 'publishable_key_required', 'site_mismatch', 'origin_required', 'origin_not_allowed']);

/**
 * Key → site → origin: the checks that only read. After them, refusals are counted. The rows come
 * from the admission cache (db/admission.ts) unless `fresh`; `seen.cached` tells whether one did.
 */
function gate(ctx: AppContext, req: Request, res: Response, fresh: boolean, seen = { cached: false }): Gated {
  const locals = fresh ? refreshSite(ctx, req, res) : siteLocals(res);
  let generation = locals.generation;
  seen.cached = locals.cached;
  const auth = authenticatePublishable(ctx, req, (hash) => {
    const read = keyByHash(ctx.db, hash, fresh);
    if (read.generation !== generation) generation = -1;
    seen.cached ||= read.cached;
    return read.row;
  });
  const site = locals.site;
  if (!site || auth.key.site_id !== site.id) {
    throw new ApiError('site_mismatch', 'This publishable key belongs to another site than the one in the path.');
  }
  checkOrigin(req, site, locals);
  const refusals: RefusalScope = { siteId: site.id, environment: auth.environment, counted: false };
  res.locals.refusals = refusals;
  return { auth, site, environment: auth.environment, refusals, generation };
}

/** `gate` on cached rows; a refusal that rests on a cached row is decided again on the database's. */
function gateCached(ctx: AppContext, req: Request, res: Response): Gated {
  const seen = { cached: false };
  try {
    return gate(ctx, req, res, false, seen);
  } catch (err) {
    if (!(err instanceof ApiError) || !seen.cached || !ROW_REFUSALS.has(err.code)) throw err;
    return gate(ctx, req, res, true);
  }
}

/**
 * Inside the request's IMMEDIATE transaction: `a` as admitted if its rows are still current,
 * else the gate again on the rows as they are now (read inside the transaction).
 */
function confirm(ctx: AppContext, req: Request, res: Response, a: Gated): Gated {
  if (generationHolds(ctx.db, a.generation)) return a;
  // The scope the cached rows gave is not the request's until the fresh rows pass: a key, site or
  // origin refusal decided now must leave no trace, like one decided at the first check.
  res.locals.refusals = undefined;
  return gate(ctx, req, res, true);
}

/** Takes the request's token and records the key's use; counts a 429. Runs inside the caller's IMMEDIATE transaction. */
function takeSiteToken(ctx: AppContext, a: Admitted, now: number): RateDecision {
  const d = takeToken(ctx.db, siteBucket(a.site.id, a.environment), a.site.rate_limit_per_minute, now);
  recordKeyUse(ctx, a.auth);
  if (!d.allowed) countRefusalNow(ctx, a.site.id, a.environment, 'rate_limit_exceeded', now);
  return d;
}

function rateLimited(res: Response, d: RateDecision, refusals: RefusalScope): ApiError | null {
  setRateLimitHeaders(res, d, 'site');
  if (d.allowed) return null;
  refusals.counted = true;
  return new ApiError('rate_limit_exceeded', `Too many requests for this site; retry in ${d.retryAfter} s.`, {
    headers: { 'Retry-After': String(d.retryAfter) },
  });
}

/**
 * Key → site → origin → rate limit. Throws the first refusal; on success the response already
 * carries the rate-limit headers. The token, the key's last use and (for a 429) the refusal count
 * are one savepoint of a grouped commit (db/transact.ts): settled once that has committed.
 */
export async function admit(ctx: AppContext, req: Request, res: Response): Promise<Admitted> {
  let a = gateCached(ctx, req, res);
  const now = ctx.clock();
  const d = await grouped(ctx.db, () => {
    a = confirm(ctx, req, res, a);
    return takeSiteToken(ctx, a, now);
  });
  const refused = rateLimited(res, d, a.refusals);
  if (refused) throw refused;
  return a;
}

/**
 * `admit` and a synchronous write in ONE savepoint of a grouped commit (the hot path: the requests
 * of one event-loop turn share a commit). `work` runs in a savepoint of its own once the token is
 * taken: when it throws a refusal, its writes roll back while the token and the refusal count
 * commit, and the refusal is thrown after.
 */
export async function admitAndWrite<T>(
  ctx: AppContext, req: Request, res: Response, work: (a: Admitted, now: number) => T,
): Promise<T> {
  let a = gateCached(ctx, req, res);
  const now = ctx.clock();
  const outcome = await grouped(ctx.db, (): { d: RateDecision; value?: T; refusal?: ApiError } => {
    a = confirm(ctx, req, res, a);
    const d = takeSiteToken(ctx, a, now);
    if (!d.allowed) return { d };
    try {
      return { d, value: savepoint(ctx.db, () => work(a, now)) };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status >= 500) throw err;
      countRefusalNow(ctx, a.site.id, a.environment, err.code, now);
      return { d, refusal: err };
    }
  });
  const refused = rateLimited(res, outcome.d, a.refusals) ?? outcome.refusal;
  if (refused) {
    a.refusals.counted = true;
    throw refused;
  }
  return outcome.value as T;
}

/** Counts a refusal; never throws (a failed count must not turn a 4xx into a 5xx). */
function countRefusalNow(ctx: AppContext, siteId: number, environment: string, code: string, now: number): void {
  try {
    countRefusal(ctx.db, siteId, environment, code, now);
  } catch (e) {
    ctx.logger.warn({ err: e }, 'refusal not counted');
  }
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
      countRefusalNow(ctx, scope.siteId, scope.environment, err.code, ctx.clock());
    }
    next(err);
  };
}

/**
 * SPEC 5: every widget response carries the rate-limit headers. A refusal decided before the rate
 * check (the body rules, key, site, origin, an unknown widget route) gets its site's bucket as it
 * stands, nothing taken: the environment is the admitted key's, else the one its key names
 * (`pk_test_...`), else live. A service id that names no site has no bucket and gets none.
 */
export function rateHeadersOnRefusals(ctx: AppContext): ErrorRequestHandler {
  return (err, req, res, next) => {
    const locals = res.locals.widget as SiteLocals | undefined;
    if (locals && !res.headersSent && !res.hasHeader('RateLimit')) {
      try {
        // Refused before any transaction confirmed it: a cached site is read again, so neither
        // these headers nor the CORS headers it allowed come from a site that changed or is gone.
        const site = (locals.cached ? refreshSite(ctx, req, res) : locals).site;
        if (!site) return next(err);
        const scope = res.locals.refusals as RefusalScope | undefined;
        let environment: 'live' | 'test' = 'live';
        try {
          if (scope) environment = scope.environment;
          else if (findCredential(req, { widget: true }).startsWith('pk_test_')) environment = 'test';
        } catch {
          // no key, or two: live
        }
        const d = peekToken(ctx.db, siteBucket(site.id, environment), site.rate_limit_per_minute, ctx.clock());
        setRateLimitHeaders(res, d, 'site');
      } catch (e) {
        ctx.logger.warn({ err: e }, 'rate-limit headers not set');
      }
    }
    next(err);
  };
}
