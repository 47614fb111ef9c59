// Small helpers: ids, hashes, time formatting.
import { createHash, randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/**
 * `n` CSPRNG bytes from a pool filled 4 KiB at a time. One randomBytes() call costs about as much
 * as 4 KiB of them (the benchmark measured ~5 us a call here, two per widget write), the way
 * crypto.randomUUID() batches too. Every byte is handed out once; the pool is replaced, never
 * rewritten, so a returned slice never changes.
 */
export function pooledRandomBytes(n: number): Buffer {
  if (n > POOL_BYTES) return randomBytes(n);
  if (used + n > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  const out = pool.subarray(used, used + n);
  used += n;
  return out;
}

/** base64url's 64 characters in ASCII order, so that encoded numbers sort as the numbers do. */
const SORTED_64 = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

/**
 * `ms` as 8 characters that sort, as SQLite compares text, in time order. The range is 0 to
 * 2^48 - 1 (the year 10889); a time outside it (or NaN) is held to its nearer end, never garbled.
 */
export function sortableTime(ms: number): string {
  let out = '';
  let rest = Number.isNaN(ms) ? 0 : Math.min(Math.max(Math.floor(ms), 0), 2 ** 48 - 1);
  for (let i = 0; i < 8; i++) {
    out = SORTED_64[rest % 64]! + out;
    rest = Math.floor(rest / 64);
  }
  return out;
}

/**
 * An id with a type prefix, the creation time (8 characters, see sortableTime) and 128 random
 * bits (base64url). The time first puts every new id at the end of its table's unique index, so
 * an insert writes the index's last page, one page per commit, instead of a random page anywhere
 * in an index that grows with the table (an index page SQLite must first read, and then write to
 * the WAL, on every insert once the index is bigger than its cache).
 */
export function newId(prefix: 'ws' | 'key' | 'tkt' | 'msg' | 'sgk', now = Date.now()): string {
  return `${prefix}_${sortableTime(now)}${pooledRandomBytes(16).toString('base64url')}`;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function iso(ms: number): string;
export function iso(ms: number | null | undefined): string | null;
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** The UTC day of a timestamp, as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The next 00:00 UTC after `ms`. */
export function nextUtcMidnight(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}
