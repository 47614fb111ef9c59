// Rate limits as GCRA over SQLite: one row per bucket holding its theoretical arrival time (TAT).
// The check and the update are one statement pair inside the caller's IMMEDIATE transaction, so
// admission is exact under concurrency and across processes sharing the database.
import type { Response } from 'express';
import type { DB } from '../db/open.js';
import { perDb } from '../db/prepare.js';

const WINDOW_MS = 60_000;

/** The rate-limit bucket of a site in one environment: test traffic never eats live tokens. */
export function siteBucket(siteId: number, environment: 'live' | 'test'): string {
  return `site:${siteId}:${environment}`;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds to wait before a retry can succeed (only when refused); at least 1. */
  retryAfter: number;
  now: number;
}

const s = perDb((db) => ({
  get: db.prepare('SELECT tat, tat_frac FROM rate_limits WHERE bucket = ?'),
  put: db.prepare(`INSERT INTO rate_limits (bucket, tat, tat_frac) VALUES (?, ?, ?)
    ON CONFLICT (bucket) DO UPDATE SET tat = excluded.tat, tat_frac = excluded.tat_frac`),
}));

/**
 * A TAT as whole ms plus a fraction in [0, 1). Held as one double, a TAT near 1.7e12 ms keeps only
 * about 0.0002 ms of precision, and a burst of 100,000 additions would drift by milliseconds; the
 * split keeps every sum below 1e5 ms, where a double is exact to far under 1e-9 ms.
 */
interface Tat {
  ms: number;
  frac: number;
}

/** `t` minus `now` in ms (small: the TAT is at most a window ahead of now, or long past). */
const ahead = (t: Tat, now: number) => t.ms - now + t.frac;

function decide(tat: Tat, now: number, limit: number): { allowed: boolean; newTat: Tat } & Omit<RateDecision, 'limit' | 'now' | 'allowed'> {
  const interval = WINDOW_MS / limit;
  const start = ahead(tat, now) > 0 ? tat : { ms: now, frac: 0 };
  const sum = start.frac + interval;
  const newTat = { ms: start.ms + Math.floor(sum), frac: sum - Math.floor(sum) };
  const wait = ahead(newTat, now);
  if (wait <= WINDOW_MS + 1e-6) {
    return {
      allowed: true,
      newTat,
      remaining: Math.max(0, Math.floor((WINDOW_MS - wait) / interval + 1e-9)),
      resetSeconds: Math.max(0, Math.ceil(wait / 1000)),
      retryAfter: 0,
    };
  }
  return {
    allowed: false,
    newTat: tat,
    remaining: 0,
    resetSeconds: Math.max(0, Math.ceil(ahead(tat, now) / 1000)),
    retryAfter: Math.max(1, Math.ceil((wait - WINDOW_MS) / 1000)),
  };
}

/** Takes one token from `bucket` if one is left. Must run inside an IMMEDIATE transaction. */
export function takeToken(db: DB, bucket: string, limit: number, now: number): RateDecision {
  const row = s(db).get.get(bucket) as { tat: number; tat_frac: number } | undefined;
  const d = decide(row ? { ms: row.tat, frac: row.tat_frac } : { ms: now, frac: 0 }, now, limit);
  if (d.allowed) s(db).put.run(bucket, d.newTat.ms, d.newTat.frac);
  return { allowed: d.allowed, limit, remaining: d.remaining, resetSeconds: d.resetSeconds, retryAfter: d.retryAfter, now };
}

/**
 * The bucket as it stands, taking nothing: for the headers of a refusal decided before the rate
 * check (SPEC 5: every widget response carries them). `remaining` is what a request could take now.
 */
export function peekToken(db: DB, bucket: string, limit: number, now: number): RateDecision {
  const row = s(db).get.get(bucket) as { tat: number; tat_frac: number } | undefined;
  const wait = Math.max(0, row ? ahead({ ms: row.tat, frac: row.tat_frac }, now) : 0);
  const interval = WINDOW_MS / limit;
  return {
    allowed: true,
    limit,
    remaining: Math.min(limit, Math.max(0, Math.floor((WINDOW_MS - wait) / interval + 1e-9))),
    resetSeconds: Math.ceil(wait / 1000),
    retryAfter: 0,
    now,
  };
}

/** Takes a token in its own IMMEDIATE transaction. */
export function takeTokenNow(db: DB, bucket: string, limit: number, now: number): RateDecision {
  return db.transaction(() => takeToken(db, bucket, limit, now)).immediate();
}

/** Writes the IETF draft and legacy rate-limit headers of SPEC section 5. */
export function setRateLimitHeaders(res: Response, d: RateDecision, policy: string): void {
  res.setHeader('RateLimit-Policy', `"${policy}";q=${d.limit};w=60`);
  res.setHeader('RateLimit', `"${policy}";r=${d.remaining};t=${d.resetSeconds}`);
  res.setHeader('X-RateLimit-Limit', String(d.limit));
  res.setHeader('X-RateLimit-Remaining', String(d.remaining));
  res.setHeader('X-RateLimit-Reset', String(Math.ceil(d.now / 1000) + d.resetSeconds));
  if (!d.allowed) res.setHeader('Retry-After', String(d.retryAfter));
}
