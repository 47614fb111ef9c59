// GCRA over a real SQLite file: a burst admits exactly the per-minute figure and the bucket refills
// at exactly that rate, for every limit the API accepts (1 to 100,000 per minute).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.js';
import { takeTokenNow } from './ratelimit.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-ratelimit-'));
const db = openDatabase(join(dir, 'rl.db'));
afterAll(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** Takes tokens from a fresh bucket at `now` until one is refused; how many were admitted. */
function drain(bucket: string, limit: number, now: number, max = limit + 2): number {
  let admitted = 0;
  while (admitted < max && takeTokenNow(db, bucket, limit, now).allowed) admitted++;
  return admitted;
}

// A clock in the range real ones read (2026 onwards), where a double has only ~0.0002 ms to spare.
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0, 7);

describe('takeToken', () => {
  it.each([1, 7, 120, 7_000, 16_000, 25_000, 40_000, 45_000, 100_000])('admits a burst of exactly the limit, %i per minute', (limit) => {
    const bucket = `burst:${limit}:${++n}`;
    expect(drain(bucket, limit, T0)).toBe(limit);
    const refused = takeTokenNow(db, bucket, limit, T0);
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.retryAfter).toBe(Math.max(1, Math.ceil(60 / limit)));
  });

  it('admits exactly the burst, then exactly limit x t / 60 s more after t ms, for any limit and any wait', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 0, max: 120_000 }), fc.integer({ min: 0, max: 10 ** 9 }), (limit, wait, shift) => {
        const bucket = `refill:${++n}`;
        const now = T0 + shift;
        if (drain(bucket, limit, now) !== limit) return false;
        const expected = Math.min(limit, Math.floor((wait * limit) / 60_000));
        return drain(bucket, limit, now + wait) === expected;
      }),
      { numRuns: 50 },
    );
  });

  it('counts remaining down by one per token, and a refusal changes nothing', () => {
    const bucket = `remaining:${++n}`;
    const seen = Array.from({ length: 5 }, () => takeTokenNow(db, bucket, 5, T0).remaining);
    expect(seen).toEqual([4, 3, 2, 1, 0]);
    expect(takeTokenNow(db, bucket, 5, T0).allowed).toBe(false);
    expect(takeTokenNow(db, bucket, 5, T0 + 12_000)).toMatchObject({ allowed: true, remaining: 0 });
  });
});
