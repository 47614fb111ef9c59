// Spend meters and refusal counters per site, environment and UTC day.
import type { UsageDay } from '@parley/shared';
import { utcDay } from '../util.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

const s = perDb((db) => ({
  spent: db.prepare('SELECT spent_micros FROM spend_meters WHERE site_id = ? AND environment = ? AND day = ?'),
  charge: db.prepare(`INSERT INTO spend_meters (site_id, environment, day, spent_micros, tickets, messages)
    VALUES (@site_id, @environment, @day, @micros, @tickets, @messages)
    ON CONFLICT (site_id, environment, day) DO UPDATE SET spent_micros = spent_micros + @micros,
      tickets = tickets + @tickets, messages = messages + @messages`),
  // The cap is checked by the statement that charges: no row changes when the charge would exceed it.
  chargeCapped: db.prepare(`INSERT INTO spend_meters (site_id, environment, day, spent_micros, tickets, messages)
    VALUES (@site_id, @environment, @day, @micros, @tickets, @messages)
    ON CONFLICT (site_id, environment, day) DO UPDATE SET spent_micros = spent_micros + @micros,
      tickets = tickets + @tickets, messages = messages + @messages
    WHERE spent_micros + @micros <= @cap`),
  refusal: db.prepare(`INSERT INTO refusals (site_id, environment, day, code, count) VALUES (?, ?, ?, ?, 1)
    ON CONFLICT (site_id, environment, day, code) DO UPDATE SET count = count + 1`),
  usage: db.prepare(`SELECT day, spent_micros, tickets, messages FROM spend_meters
    WHERE site_id = ? AND environment = ? AND day >= ? ORDER BY day`),
  refusals: db.prepare(`SELECT day, code, count FROM refusals WHERE site_id = ? AND environment = ? AND day >= ?`),
}));

export function spentToday(db: DB, siteId: number, environment: string, now: number): number {
  const row = s(db).spent.get(siteId, environment, utcDay(now)) as { spent_micros: number } | undefined;
  return row?.spent_micros ?? 0;
}

/** Adds a charge to today's meter. Call inside the transaction that performs the action. */
export function addCharge(
  db: DB,
  q: { siteId: number; environment: string; now: number; micros: number; tickets: number; messages: number },
): void {
  s(db).charge.run({
    site_id: q.siteId,
    environment: q.environment,
    day: utcDay(q.now),
    micros: q.micros,
    tickets: q.tickets,
    messages: q.messages,
  });
}

/**
 * Adds a charge to today's meter unless it would take the day's spend over `cap`; returns whether it
 * did. One statement, to be called inside the IMMEDIATE transaction that performs the action.
 */
export function chargeWithinCap(
  db: DB,
  q: { siteId: number; environment: string; now: number; micros: number; tickets: number; messages: number; cap: number },
): boolean {
  if (q.micros > q.cap) return false;
  const info = s(db).chargeCapped.run({
    site_id: q.siteId,
    environment: q.environment,
    day: utcDay(q.now),
    micros: q.micros,
    tickets: q.tickets,
    messages: q.messages,
    cap: q.cap,
  });
  return info.changes === 1;
}

export function countRefusal(db: DB, siteId: number, environment: string, code: string, now: number): void {
  s(db).refusal.run(siteId, environment, utcDay(now), code);
}

/** Usage per day for the last `days` UTC days (today included), oldest first; days without activity are zeros. */
export function usageByDay(db: DB, siteId: number, environment: string, days: number, now: number): UsageDay[] {
  const start = now - (days - 1) * 86_400_000;
  const from = utcDay(start);
  const out = new Map<string, UsageDay>();
  for (let i = 0; i < days; i++) {
    const d = utcDay(start + i * 86_400_000);
    out.set(d, { date: d, spend_micros: 0, tickets: 0, messages: 0, refused: {} });
  }
  for (const r of s(db).usage.all(siteId, environment, from) as { day: string; spent_micros: number; tickets: number; messages: number }[]) {
    const d = out.get(r.day);
    if (d) Object.assign(d, { spend_micros: r.spent_micros, tickets: r.tickets, messages: r.messages });
  }
  for (const r of s(db).refusals.all(siteId, environment, from) as { day: string; code: string; count: number }[]) {
    const d = out.get(r.day);
    if (d) d.refused[r.code] = r.count;
  }
  return [...out.values()];
}
