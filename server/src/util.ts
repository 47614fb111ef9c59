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

/** An id with a type prefix and 128 random bits (base62-ish via base64url). */
export function newId(prefix: 'ws' | 'key' | 'tkt' | 'msg' | 'sgk'): string {
  return `${prefix}_${pooledRandomBytes(16).toString('base64url')}`;
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
