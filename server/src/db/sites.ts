// Sites: one embedding website each, with its allowlist, limits, prices and widget settings.
import type { Site, WidgetSettings } from '@parley/shared';
import { parseOriginEntry, type OriginPattern } from '@parley/shared';
import { siteBucket } from '../limits/ratelimit.js';
import { iso } from '../util.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface SiteRow {
  id: number;
  service_id: string;
  workspace_id: string;
  name: string;
  allowed_origins: string;
  allow_server_requests: number;
  rate_limit_per_minute: number;
  daily_spend_cap_micros: number;
  price_ticket_create: number;
  price_message_create: number;
  widget: string;
  created_at: number;
}

export const SITE_DEFAULTS = {
  rate_limit_per_minute: 120,
  daily_spend_cap_micros: 5_000_000,
  price_ticket_create: 10_000,
  price_message_create: 1_000,
  widget: { greeting: 'Hi! How can we help?', color: '#2563eb', position: 'bottom-right', require_identity: false } as WidgetSettings,
};

const s = perDb((db) => ({
  insert: db.prepare(`INSERT INTO sites (service_id, workspace_id, name, allowed_origins, allow_server_requests,
      rate_limit_per_minute, daily_spend_cap_micros, price_ticket_create, price_message_create, widget, created_at)
    VALUES (@service_id, @workspace_id, @name, @allowed_origins, @allow_server_requests, @rate_limit_per_minute,
      @daily_spend_cap_micros, @price_ticket_create, @price_message_create, @widget, @created_at)`),
  byServiceId: db.prepare('SELECT * FROM sites WHERE service_id = ?'),
  byId: db.prepare('SELECT * FROM sites WHERE id = ?'),
  list: db.prepare('SELECT * FROM sites WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?'),
  update: db.prepare(`UPDATE sites SET name = @name, allowed_origins = @allowed_origins,
      allow_server_requests = @allow_server_requests, rate_limit_per_minute = @rate_limit_per_minute,
      daily_spend_cap_micros = @daily_spend_cap_micros, price_ticket_create = @price_ticket_create,
      price_message_create = @price_message_create, widget = @widget WHERE id = @id`),
  delete: db.prepare('DELETE FROM sites WHERE id = ?'),
  // State keyed by the site's row id without a foreign key: its rate-limit buckets (siteBucket) and
  // idempotency records (scope `<id>:<env>:...`, see widget/tickets.ts; ';' sorts right after ':',
  // so `>= '<id>:' AND < '<id>;'` is that prefix as an index range).
  deleteBuckets: db.prepare('DELETE FROM rate_limits WHERE bucket IN (?, ?)'),
  deleteIdempotency: db.prepare('DELETE FROM idempotency WHERE scope >= ? AND scope < ?'),
  liveData: db.prepare(`SELECT EXISTS (SELECT 1 FROM tickets WHERE site_id = @id AND environment = 'live')
    OR EXISTS (SELECT 1 FROM api_keys WHERE site_id = @id AND environment = 'live') AS yes`),
}));

export function insertSite(db: DB, row: Omit<SiteRow, 'id'>): SiteRow {
  const info = s(db).insert.run(row);
  return { ...row, id: Number(info.lastInsertRowid) };
}
export function findSiteByServiceId(db: DB, serviceId: string): SiteRow | undefined {
  return s(db).byServiceId.get(serviceId) as SiteRow | undefined;
}
export function findSiteById(db: DB, id: number): SiteRow | undefined {
  return s(db).byId.get(id) as SiteRow | undefined;
}
export function listSites(db: DB, workspaceId: string, afterId: number, limit: number): SiteRow[] {
  return s(db).list.all(workspaceId, afterId, limit) as SiteRow[];
}
export function updateSite(db: DB, row: SiteRow): void {
  s(db).update.run(row);
}
/**
 * Deletes a site; its keys, tickets, meters and signing keys go with it (foreign keys), and so do its
 * rate-limit buckets and idempotency records. SQLite hands a freed row id out again, so anything
 * left behind would belong to the next site created: a spent rate limit, a replayed ticket.
 * Call inside a transaction.
 */
export function deleteSite(db: DB, id: number): void {
  s(db).deleteBuckets.run(siteBucket(id, 'live'), siteBucket(id, 'test'));
  s(db).deleteIdempotency.run(`${id}:`, `${id};`);
  s(db).delete.run(id);
}

/** Whether the site holds anything of the live environment (tickets or publishable keys). */
export function siteHasLiveData(db: DB, id: number): boolean {
  return (s(db).liveData.get({ id }) as { yes: number }).yes === 1;
}

export function siteWidget(row: SiteRow): WidgetSettings {
  return { ...SITE_DEFAULTS.widget, ...(JSON.parse(row.widget) as Partial<WidgetSettings>) };
}

const patternCache = new Map<string, OriginPattern[]>();
/** The parsed allowlist of a site row (entries were validated when saved); parsed once per distinct list. */
export function sitePatterns(row: SiteRow): OriginPattern[] {
  let patterns = patternCache.get(row.allowed_origins);
  if (!patterns) {
    patterns = (JSON.parse(row.allowed_origins) as string[])
      .map((e) => parseOriginEntry(e))
      .filter((p): p is OriginPattern => p !== null);
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(row.allowed_origins, patterns);
  }
  return patterns;
}

export function siteToApi(row: SiteRow): Site {
  return {
    service_id: row.service_id,
    name: row.name,
    allowed_origins: JSON.parse(row.allowed_origins) as string[],
    allow_server_requests: row.allow_server_requests === 1,
    rate_limit_per_minute: row.rate_limit_per_minute,
    daily_spend_cap_micros: row.daily_spend_cap_micros,
    prices: { 'ticket.create': row.price_ticket_create, 'message.create': row.price_message_create },
    widget: siteWidget(row),
    created_at: iso(row.created_at),
  };
}
