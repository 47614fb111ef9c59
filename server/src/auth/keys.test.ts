// The key format of SPEC section 2: known answers for base62 and CRC32, properties over generated keys
// (every one parses; any one-character change is caught), and what minting stores (a hash, never the key).
import { randomBytes } from 'node:crypto';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bodyFromBytes, checksumOf, crc32, formatKey, KEY_LENGTH, parseKey, toBase62 } from '@parley/shared';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.js';
import { createWorkspace } from '../services/provisioning.js';
import { sha256 } from '../util.js';
import { mintKey } from './keys.js';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('CRC32 (IEEE) known answers', () => {
  it('matches the standard check values', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
    expect(crc32('a')).toBe(0xe8b7be43);
    expect(crc32('The quick brown fox jumps over the lazy dog')).toBe(0x414fa339);
  });
});

describe('base62 known answers', () => {
  it('encodes with the 0-9A-Za-z alphabet, left-padded with 0', () => {
    expect(toBase62(0n, 6)).toBe('000000');
    expect(toBase62(61n, 1)).toBe('z');
    expect(toBase62(62n, 1)).toBe('10');
    expect(toBase62(3843n, 0)).toBe('zz');
    expect(toBase62(0xffffffffn, 6)).toBe('4gfFC3');
    expect(toBase62(BigInt(0xcbf43926), 6)).toBe('3jZRME');
  });

  it('decodes back to the same value (round trip against an independent decoder)', () => {
    const decode = (s: string) => [...s].reduce((v, c) => v * 62n + BigInt(ALPHABET.indexOf(c)), 0n);
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }), (v) => decode(toBase62(v, 43)) === v));
  });

  it('a 32-byte body is always 43 characters: all zeros and all ones', () => {
    expect(bodyFromBytes(new Uint8Array(32))).toBe('0'.repeat(43));
    const max = bodyFromBytes(new Uint8Array(32).fill(255));
    expect(max).toHaveLength(43);
    expect(max).toMatch(/^[1-9A-Za-z]/); // 2^256 - 1 needs all 43 digits
  });

  it('the checksum is the CRC32 of the prefix and body, as 6 base62 chars', () => {
    const head = `sk_live_${'0'.repeat(43)}`;
    expect(checksumOf(head)).toBe(toBase62(BigInt(crc32(head)), 6));
    // Computed independently (Python's zlib.crc32 and a hand-written base62).
    expect(checksumOf(head)).toBe('1Vxh1Z');
    expect(formatKey('secret', 'live', new Uint8Array(32))).toBe(`${head}1Vxh1Z`);
  });
});

const keyArb = fc.record({
  type: fc.constantFrom('publishable' as const, 'secret' as const),
  env: fc.constantFrom('live' as const, 'test' as const),
  bytes: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});

describe('key format properties', () => {
  it('every generated key is 57 characters and parses to its type, environment and prefix', () => {
    fc.assert(
      fc.property(keyArb, ({ type, env, bytes }) => {
        const key = formatKey(type, env, bytes);
        const parsed = parseKey(key);
        expect(key).toHaveLength(KEY_LENGTH);
        expect(key).toMatch(/^(pk|sk)_(live|test)_[0-9A-Za-z]{49}$/);
        expect(parsed).toEqual({ type, environment: env, prefix: key.slice(0, 12) });
      }),
      { numRuns: 500 },
    );
  });

  it('any one-character change anywhere in a key is rejected', () => {
    fc.assert(
      fc.property(keyArb, fc.nat(), fc.nat(), ({ type, env, bytes }, at, pick) => {
        const key = formatKey(type, env, bytes);
        const i = at % key.length;
        const pool = (ALPHABET + '_-').replace(key[i]!, '');
        const changed = key.slice(0, i) + pool[pick % pool.length] + key.slice(i + 1);
        expect(parseKey(changed)).toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects wrong lengths, other prefixes and non-strings', () => {
    const key = formatKey('secret', 'live', randomBytes(32));
    for (const bad of [key.slice(1), `${key}0`, key.replace('sk_live_', 'sk_prod_'), key.replace('sk_', 'rk_'), '', null, 42, undefined]) {
      expect(parseKey(bad)).toBeNull();
    }
  });
});

describe('mintKey', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores the SHA-256 and a display prefix, never the plaintext', () => {
    const db = openDatabase(join(dir, 'k.db'));
    const { workspace } = createWorkspace(db, 'W', Date.now());
    const { row, secret } = mintKey(db, {
      type: 'secret', environment: 'test', name: 'n', scopes: ['read'], workspaceId: workspace.id,
      siteId: null, sites: null, expiresAt: null, now: Date.now(),
    });
    expect(parseKey(secret)?.type).toBe('secret');
    expect(row.hash.equals(sha256(secret))).toBe(true);
    expect(row.prefix).toBe(secret.slice(0, 12));
    // Nothing in any table holds the key's body.
    const body = secret.slice(8, 51);
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]) {
      for (const r of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        expect(JSON.stringify(r)).not.toContain(body);
      }
    }
    db.close();
  });
});
