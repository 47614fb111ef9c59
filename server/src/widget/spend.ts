// Spend caps (SPEC section 5): a billable action is charged in the transaction that performs it,
// and refused with 402 when the day's spend (per site, environment and UTC day) would pass the cap.
import type { DB } from '../db/open.js';
import { chargeWithinCap } from '../db/meters.js';
import type { SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { iso, nextUtcMidnight } from '../util.js';

export type BillableAction = 'ticket.create' | 'message.create';

/** The site's price of an action, in micro-dollars. */
export function priceOf(site: SiteRow, action: BillableAction): number {
  return action === 'ticket.create' ? site.price_ticket_create : site.price_message_create;
}

/**
 * Charges `action` to today's meter or throws `402 spend_cap_exceeded`. Call inside the IMMEDIATE
 * transaction that writes the action: the throw rolls the action back with it.
 */
export function charge(
  db: DB,
  q: { site: SiteRow; environment: string; action: BillableAction; now: number; tickets: number; messages: number },
): void {
  const ok = chargeWithinCap(db, {
    siteId: q.site.id,
    environment: q.environment,
    now: q.now,
    micros: priceOf(q.site, q.action),
    tickets: q.tickets,
    messages: q.messages,
    cap: q.site.daily_spend_cap_micros,
  });
  if (!ok) {
    const resetsAt = iso(nextUtcMidnight(q.now));
    throw new ApiError('spend_cap_exceeded', `This site has reached its daily spend cap; it resets at ${resetsAt}.`, {
      resets_at: resetsAt,
    });
  }
}
