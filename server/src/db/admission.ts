// The sites and keys that admit widget requests, kept in memory between requests. Every widget
// request reads its site (for CORS) and its key before its transaction; as two reads of their own
// they were a large part of the hot path (`pnpm bench`, case 2). Here both come from a per-process
// cache that stays valid while `admission_generation` holds still: migration 004's triggers move
// it on any change to a site or to what verification reads of a key, whoever makes the change
// (another worker, the CLI). A row read from the database carries the generation it was read at,
// in the same statement; a request admitted from cached rows reads the generation again inside
// the IMMEDIATE transaction that takes its rate-limit token (`generationHolds`) and, if it moved,
// re-reads its rows there and checks them again. So no change is missed by a request that
// commits anything, and a refusal is never decided on cached rows alone (see guard.ts).
import type { KeyWithSite } from './keys.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';
import type { SiteRow } from './sites.js';

/** Entries of each map past which it starts over (rows are only cached for sites and keys that exist). */
const MAX_ENTRIES = 10_000;

interface Cache {
  generation: number;
  sites: Map<string, SiteRow>;
  keys: Map<string, KeyWithSite>;
}

const s = perDb((db) => ({
  generation: db.prepare('SELECT n FROM admission_generation WHERE id = 1').pluck(),
  site: db.prepare('SELECT s.*, (SELECT n FROM admission_generation WHERE id = 1) AS generation FROM sites s WHERE s.service_id = ?'),
  key: db.prepare(`SELECT k.*, s.service_id AS site_service_id, (SELECT n FROM admission_generation WHERE id = 1) AS generation
    FROM api_keys k LEFT JOIN sites s ON s.id = k.site_id WHERE k.hash = ?`),
  cache: { generation: -1, sites: new Map(), keys: new Map() } as Cache,
}));

/** A row and the generation it is known to be current at (-1: unknown). */
export interface Read<T> {
  row: T | undefined;
  generation: number;
  /** True when the row came from memory rather than from this read. */
  cached: boolean;
}

/** Empties the cache when the database is at another generation than the cached rows. */
function moveTo(cache: Cache, generation: number): void {
  if (cache.generation === generation) return;
  cache.generation = generation;
  cache.sites.clear();
  cache.keys.clear();
}

function remember<T>(map: Map<string, T>, id: string, row: T): void {
  if (map.size >= MAX_ENTRIES) map.clear();
  map.set(id, row);
}

function read<T extends { generation: number }>(
  db: DB, map: (c: Cache) => Map<string, T>, id: string, fromDb: () => T | undefined, fresh: boolean, keep: (row: T) => boolean = () => true,
): Read<T> {
  const cache = s(db).cache;
  if (!fresh) {
    const row = map(cache).get(id);
    if (row) return { row, generation: cache.generation, cached: true };
  }
  const row = fromDb();
  // An unknown site or key is not remembered: it may be created at any moment, and a flood of
  // made-up ones must not fill memory. Its read tells no generation (no row, no column).
  if (!row) return { row: undefined, generation: -1, cached: false };
  moveTo(cache, row.generation);
  if (keep(row)) remember(map(cache), id, row);
  return { row, generation: row.generation, cached: false };
}

/** The site with `serviceId`: from memory unless `fresh`, else read (and remembered). */
export function siteByServiceId(db: DB, serviceId: string, fresh = false): Read<SiteRow> {
  return read(db, (c) => c.sites as Map<string, SiteRow & { generation: number }>, serviceId,
    () => s(db).site.get(serviceId) as (SiteRow & { generation: number }) | undefined, fresh);
}

/**
 * The key whose SHA-256 is `hash`: from memory unless `fresh`, else read (and remembered). Only
 * publishable keys are remembered: a secret key on a widget route is refused and marked exposed,
 * which must be decided on its row as it is now (a revoked one is 401, and stays unmarked).
 */
export function keyByHash(db: DB, hash: Buffer, fresh = false): Read<KeyWithSite> {
  return read(db, (c) => c.keys as Map<string, KeyWithSite & { generation: number }>, hash.toString('base64'),
    () => s(db).key.get(hash) as (KeyWithSite & { generation: number }) | undefined, fresh, (row) => row.type === 'publishable');
}

/**
 * Whether the database is still at `generation`, read inside the caller's transaction. When it is
 * not, the cache is emptied, and the caller must read its rows again (inside that transaction).
 */
export function generationHolds(db: DB, generation: number): boolean {
  const st = s(db);
  const now = st.generation.get() as number;
  if (now === generation && generation >= 0) return true;
  moveTo(st.cache, now);
  return false;
}
