// Ids and random bytes: CSPRNG bytes from a pool, each handed out once and never changed after.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openDatabase } from './db/open.js';
import { newId, pooledRandomBytes, sortableTime } from './util.js';

describe('pooledRandomBytes', () => {
  it('returns the requested length, across pool refills and beyond the pool size', () => {
    for (const n of [0, 1, 12, 16, 32, 4095, 4096, 4097, 10_000]) expect(pooledRandomBytes(n)).toHaveLength(n);
  });

  it('never hands out the same bytes twice, and a slice keeps its bytes after the pool is refilled', () => {
    const first = pooledRandomBytes(16);
    const copy = Buffer.from(first);
    const seen = new Set<string>([copy.toString('hex')]);
    // 20,000 x 16 bytes: many refills of the 4 KiB pool.
    for (let i = 0; i < 20_000; i++) {
      const hex = pooledRandomBytes(16).toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    expect(first.equals(copy)).toBe(true);
  });

  it('gives ids of a sortable time and 128 random bits in base64url after their prefix', () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 5000 }, () => newId('msg', now)));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(new RegExp(`^msg_${sortableTime(now)}[A-Za-z0-9_-]{22}$`));
  });
});

describe('sortableTime', () => {
  it('is 8 base64url characters that compare as the times do, over the whole 48-bit range', () => {
    const ms = fc.integer({ min: 0, max: 2 ** 48 - 1 });
    fc.assert(
      fc.property(ms, ms, (a, b) => {
        const [x, y] = [sortableTime(a), sortableTime(b)];
        expect(x).toMatch(/^[A-Za-z0-9_-]{8}$/);
        expect(Math.sign(x < y ? -1 : x > y ? 1 : 0)).toBe(Math.sign(a - b));
      }),
      { numRuns: 2000 },
    );
    expect(sortableTime(0)).toBe('--------');
    expect(sortableTime(2 ** 48 - 1)).toBe('zzzzzzzz');
    // Out of range: held to the nearer end, still 8 characters of the alphabet.
    for (const [ms, want] of [[-1, '--------'], [NaN, '--------'], [2 ** 48, 'zzzzzzzz'], [Infinity, 'zzzzzzzz'], [-Infinity, '--------']] as const) {
      expect(sortableTime(ms)).toBe(want);
    }
  });

  it('puts a later id after an earlier one in SQLite\'s own order (the order of a TEXT unique index)', () => {
    const db = openDatabase(':memory:');
    try {
      const times = [0, 1, 63, 64, 65, 4095, 4096, 1.7e12, 1.7e12 + 1, Date.now(), 2 ** 48 - 1];
      const ids = times.map((t) => newId('msg', t));
      const shuffled = [...ids].sort(() => Math.random() - 0.5);
      const sorted = db.prepare(`SELECT value FROM json_each(?) ORDER BY value`).pluck().all(JSON.stringify(shuffled));
      expect(sorted).toEqual(ids);
    } finally {
      db.close();
    }
  });
});
