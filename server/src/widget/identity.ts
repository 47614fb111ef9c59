// The identity stage of the SPEC's order (section 3, 6a): who the visitor is, from a signed user
// token. The hook for issue 9: today a `user_token` is accepted but not verified, and a site that
// requires identity refuses a ticket sent without one.
import type { AppContext } from '../context.js';
import { siteWidget, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';

export interface VisitorIdentity {
  id: string;
  name: string | null;
  email: string | null;
}

/**
 * The verified user behind `userToken` for `site`, or null for an anonymous visitor. Issue 9
 * replaces the body with `verifyUserToken` (401 invalid_user_token on a bad token) and returns
 * the user, whose id, name and email are then stored on the ticket.
 */
export async function identifyVisitor(ctx: AppContext, site: SiteRow, userToken: string | undefined): Promise<VisitorIdentity | null> {
  void ctx;
  if (userToken === undefined && siteWidget(site).require_identity) {
    throw new ApiError('identity_required', 'This site requires a signed user token (user_token) to start a conversation.');
  }
  return null;
}
