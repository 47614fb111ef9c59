// Origins and CORS of the widget routes (SPEC section 4). The service id in the path names the
// site; that site's allowlist alone decides whether the `cors` package answers for an Origin.
import { originMatches } from '@parley/shared';
import cors, { type CorsOptions } from 'cors';
import type { Request, RequestHandler, Response } from 'express';
import type { AppContext } from '../context.js';
import { siteByServiceId } from '../db/admission.js';
import { sitePatterns, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';

/** Response headers a page script must be able to read (rate limits, retry hints, request ids). */
export const EXPOSED_HEADERS = [
  'RateLimit', 'RateLimit-Policy', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset',
  'Retry-After', 'X-Request-Id',
];
/** Request headers the widget (and a proxying page) may send. */
export const ALLOWED_HEADERS = [
  'Content-Type', 'X-Parley-Key', 'Authorization', 'X-Visitor-Token', 'X-User-Token', 'Idempotency-Key',
  'Last-Event-ID',
];
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** What the origin stage found for a request: its site (if the service id names one) and its Origin. */
export interface SiteLocals {
  /** The service id of the request's path. */
  serviceId: string;
  site: SiteRow | undefined;
  /** The admission generation `site` is known to be current at (see db/admission.ts); -1 when unknown. */
  generation: number;
  /** True when `site` came from the admission cache rather than from the database. */
  cached: boolean;
  /** True when the request's Origin header is on the site's allowlist. */
  originAllowed: boolean;
}

export function siteLocals(res: Response): SiteLocals {
  return res.locals.widget as SiteLocals;
}

/** True when `origin` (a request's Origin header) is on the site's allowlist; `null` never is. */
export function isOriginAllowed(site: SiteRow | undefined, origin: string | undefined): boolean {
  return site !== undefined && origin !== undefined && originMatches(origin, sitePatterns(site));
}

// The two answers the `cors` package can give: echo the request's Origin (an allowed one), or
// nothing at all. Never `*`, never credentials.
const ALLOWED: CorsOptions = {
  origin: true,
  credentials: false,
  methods: ['GET', 'POST'],
  allowedHeaders: ALLOWED_HEADERS,
  exposedHeaders: EXPOSED_HEADERS,
  maxAge: PREFLIGHT_MAX_AGE_SECONDS,
  optionsSuccessStatus: 204,
  preflightContinue: false,
};
const REFUSED: CorsOptions = { origin: false };

/**
 * The first stage of every `/v1/widget/:serviceId/...` request: reads the site once, and sets the
 * CORS headers when the Origin is allowed for it (on errors too, so the widget can read a 401 or a
 * 429). An allowed preflight is answered here with 204; any other preflight is 403 without CORS
 * headers. Preflights touch nothing else: no key, no rate limit, no charge.
 */
export function siteAndCors(ctx: AppContext): RequestHandler {
  const corsHeaders = cors((req, cb) => cb(null, siteLocals((req as Request).res!).originAllowed ? ALLOWED : REFUSED));
  return (req, res, next) => {
    // Caches vary on Origin whatever the answer, so one origin's response is never served to another.
    res.vary('Origin');
    const serviceId = String(req.params.serviceId);
    const origin = req.headers.origin;
    // The cached site may only say yes: a refusal, and every preflight (which no transaction
    // confirms later), is decided on the site as the database has it now.
    let read = siteByServiceId(ctx.db, serviceId);
    if (read.cached && (req.method === 'OPTIONS' || !isOriginAllowed(read.row, origin))) read = siteByServiceId(ctx.db, serviceId, true);
    const locals: SiteLocals = {
      serviceId, site: read.row, generation: read.generation, cached: read.cached, originAllowed: isOriginAllowed(read.row, origin),
    };
    res.locals.widget = locals;
    corsHeaders(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (req.method === 'OPTIONS') {
        // cors ends allowed preflights itself; reaching here means the site refuses this origin.
        return next(
          origin === undefined
            ? new ApiError('origin_required', 'A preflight needs an Origin header.')
            : new ApiError('origin_not_allowed', 'This origin is not on the site\'s allowlist.'),
        );
      }
      next();
    });
  };
}

/**
 * Reads the request's site again from the database (see db/admission.ts), for checks that must
 * not rest on a cached row. If its Origin is no longer allowed, the CORS headers the first stage
 * set are taken back: the refusal that follows must not be readable by that page.
 */
export function refreshSite(ctx: AppContext, req: Request, res: Response): SiteLocals {
  const locals = siteLocals(res);
  const read = siteByServiceId(ctx.db, locals.serviceId, true);
  const allowed = isOriginAllowed(read.row, req.headers.origin);
  if (locals.originAllowed && !allowed) {
    res.removeHeader('Access-Control-Allow-Origin');
    res.removeHeader('Access-Control-Expose-Headers');
  }
  Object.assign(locals, { site: read.row, generation: read.generation, cached: false, originAllowed: allowed });
  return locals;
}

/** The origin check of the SPEC's order (after key and site): 403 unless allowed or a permitted server call. */
export function checkOrigin(req: Request, site: SiteRow, locals: SiteLocals): void {
  const origin = req.headers.origin;
  if (origin === undefined) {
    if (site.allow_server_requests === 1) return;
    throw new ApiError(
      'origin_required',
      'Requests without an Origin header are refused for this site; enable allow_server_requests to proxy from a backend.',
    );
  }
  if (!locals.originAllowed) {
    throw new ApiError('origin_not_allowed', 'This origin is not on the site\'s allowlist.');
  }
}
