// The identity stage of the SPEC's order (sections 3 and 6a): who the visitor is, from a signed user
// token. It runs after the visitor token and ticket checks (404) and before spend (402): the token
// comes as `user_token` in POST /tickets and as `X-User-Token` on every other widget call.
import type { Request } from 'express';
import type { AppContext } from '../context.js';
import { siteWidget, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { verifyUserToken, type VerifiedUser } from '../identity/verify.js';

export type VisitorIdentity = VerifiedUser;

/** The request's `X-User-Token`, or undefined when it is absent or empty. */
export function userTokenHeader(req: Request): string | undefined {
  const h = req.headers['x-user-token'];
  if (h === undefined || h === '') return undefined;
  // A repeated header arrives joined by Node; it is no JWS and fails verification as such.
  return Array.isArray(h) ? h.join(', ') : h;
}

/**
 * The verified user behind a ticket creation, or null for an anonymous visitor: `user_token` of
 * the body, else the `X-User-Token` header (both, and different: 400 conflicting_credentials). A token that fails verification is 401
 * invalid_user_token; none at all on a site that requires identity is 403 identity_required.
 */
export async function identifyVisitor(ctx: AppContext, site: SiteRow, bodyToken: string | undefined, req: Request): Promise<VisitorIdentity | null> {
  const header = userTokenHeader(req);
  // As with two keys (SPEC 3): which user the ticket belongs to must not depend on which copy wins.
  if (bodyToken !== undefined && header !== undefined && bodyToken !== header) {
    throw new ApiError('conflicting_credentials', 'The request carries two different user tokens (user_token in the body and X-User-Token); send one.');
  }
  const token = bodyToken ?? header;
  if (token === undefined) return anonymousVisitor(site);
  return verifyUserToken(ctx, site, token);
}

/** A visitor without a user token: null, or 403 identity_required on a site that requires identity. */
export function anonymousVisitor(site: SiteRow): null {
  if (siteWidget(site).require_identity) {
    throw new ApiError('identity_required', 'This site requires a signed user token (user_token) to start a conversation.');
  }
  return null;
}

/** Verifies `X-User-Token` when the request carries one (401 invalid_user_token when it fails). */
export async function checkUserTokenHeader(ctx: AppContext, site: SiteRow, req: Request): Promise<VisitorIdentity | null> {
  const token = userTokenHeader(req);
  return token === undefined ? null : verifyUserToken(ctx, site, token);
}

/** The user of a request that must be signed in (the user's ticket list): a missing token is 401. */
export async function requireUser(ctx: AppContext, site: SiteRow, req: Request): Promise<VisitorIdentity> {
  const token = userTokenHeader(req);
  if (token === undefined) {
    throw new ApiError('invalid_user_token', 'The user token was refused: this call needs a signed user token in X-User-Token.');
  }
  return verifyUserToken(ctx, site, token);
}
