// Key format of SPEC section 2: prefix, 43-char base62 body, 6-char base62 CRC32 check.
// Pure functions with no Node APIs, so the widget, the server and secret scanners agree.

export const KEY_LENGTH = 57;
export const BODY_LENGTH = 43;
export const CHECK_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_SHAPE = /^(pk|sk)_(live|test)_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

export type KeyType = 'publishable' | 'secret';
export type Environment = 'live' | 'test';
export interface ParsedKey {
  type: KeyType;
  environment: Environment;
  /** `sk_live_` + the first four body characters: safe to show. */
  prefix: string;
}

let table: Uint32Array | undefined;
/** CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of an ASCII string. */
export function crc32(text: string): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = table[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Base62 of a non-negative integer, left-padded with '0' to `width`. */
export function toBase62(value: bigint, width: number): string {
  let out = '';
  let v = value;
  while (v > 0n) {
    out = ALPHABET[Number(v % 62n)] + out;
    v /= 62n;
  }
  return out.padStart(width, '0');
}

/** Base62 body of 32 random bytes (43 chars). */
export function bodyFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 32) throw new Error('a key body needs exactly 32 bytes');
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return toBase62(v, BODY_LENGTH);
}

export function checksumOf(prefixAndBody: string): string {
  return toBase62(BigInt(crc32(prefixAndBody)), CHECK_LENGTH);
}

/** Builds a full key from its type, environment and 32 random bytes. */
export function formatKey(type: KeyType, environment: Environment, bytes: Uint8Array): string {
  const head = `${type === 'publishable' ? 'pk' : 'sk'}_${environment}_${bodyFromBytes(bytes)}`;
  return head + checksumOf(head);
}

/** Parses a key offline: its shape and checksum. Returns null for anything that is not a valid key. */
export function parseKey(key: unknown): ParsedKey | null {
  if (typeof key !== 'string' || key.length !== KEY_LENGTH) return null;
  const m = KEY_SHAPE.exec(key);
  if (!m) return null;
  const [, kind, env, body, check] = m as unknown as [string, string, string, string, string];
  if (checksumOf(key.slice(0, KEY_LENGTH - CHECK_LENGTH)) !== check) return null;
  return {
    type: kind === 'pk' ? 'publishable' : 'secret',
    environment: env as Environment,
    prefix: `${kind}_${env}_${body.slice(0, 4)}`,
  };
}
