// Ids and random bytes: CSPRNG bytes from a pool, each handed out once and never changed after.
import { describe, expect, it } from 'vitest';
import { newId, pooledRandomBytes } from './util.js';

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

  it('gives ids of 128 random bits in base64url after their prefix', () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newId('msg')));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
  });
});
