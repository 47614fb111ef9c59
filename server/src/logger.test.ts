import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { mintKey, newVisitorToken } from './auth/keys.js';
import { createLogger, scrub } from './logger.js';
import { openDatabase } from './db/open.js';

const PK = 'pk_live_4xLR8qYw2VbN7sKd1PzTq9HcE3mJ6uAa5Fg0Wr2Ys8Ti1Ok4Ne7Lb';
const PK_TEST = 'pk_test_4xLR8qYw2VbN7sKd1PzTq9HcE3mJ6uAa5Fg0Wr2Ys8Ti1Ok4Ne7Lb';
const SK = 'sk_live_0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3aB4cD5eF6gH7iJ';
const SK_TEST = 'sk_test_0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3aB4cD5eF6gH7iJ';
const VT = 'vt_Qm9v-YmFy_QmF6cXV4LXF1dXgtY29yZ2UtZ3JhdWx0';
const JWT = 'eyJhbGciOiJFUzI1NiIsImtpZCI6InNna18xIn0.eyJzdWIiOiJ1c2VyXzEiLCJleHAiOjE3MDAwMDAwMDB9.MEUCIQDx1y2z3-_abc';
const ALL = [PK, PK_TEST, SK, SK_TEST, VT, JWT];

const leaks = (text: string) => ALL.filter((s) => text.includes(s) || text.includes(s.slice(0, 20)));

describe('scrub', () => {
  it('redacts every kind of secret inside a string, keeping the rest', () => {
    const text = `keys ${PK} and ${SK_TEST}, token=${VT}; jwt "${JWT}" end`;
    const out = scrub(text) as string;
    expect(leaks(out)).toEqual([]);
    expect(out).toBe('keys [REDACTED] and [REDACTED], token=[REDACTED]; jwt "[REDACTED]" end');
  });

  it('redacts keys glued to other text', () => {
    const out = scrub(`Bearer%20${SK} my_${PK_TEST} /path/${PK}?x=1`) as string;
    expect(leaks(out)).toEqual([]);
    expect(out).toBe('Bearer%20[REDACTED] my_[REDACTED] /path/[REDACTED]?x=1');
  });

  it('walks objects, arrays and errors at any position', () => {
    const input = {
      a: PK,
      nested: { list: [1, SK, { deep: [VT] }], jwt: JWT, ok: 'plain text', n: 5, yes: true, none: null },
      err: new Error(`failed for ${SK_TEST}`),
    };
    const out = scrub(input);
    const text = JSON.stringify(out);
    expect(leaks(text)).toEqual([]);
    expect(out).toMatchObject({
      a: '[REDACTED]',
      nested: { list: [1, '[REDACTED]', { deep: ['[REDACTED]'] }], jwt: '[REDACTED]', ok: 'plain text', n: 5, yes: true, none: null },
      err: { type: 'Error', message: 'failed for [REDACTED]' },
    });
    expect(text).not.toMatch(/\n\s+at /);
  });

  it('never lets a secret through below its depth limit', () => {
    let deep: unknown = { secret: SK };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(leaks(JSON.stringify(scrub(deep)))).toEqual([]);
  });

  it('redacts fields named like secrets at any depth and in any case, whatever their value', () => {
    const out = scrub({
      token: 'plain-looking',
      req: { headers: { Authorization: 'Basic dXNlcjpwYXNz', Cookie: 'sid=abc', 'X-Parley-Key': 'whatever', accept: '*/*' } },
      deep: { a: { b: { private_key_pem: 'PEM', key: { nested: 'object' }, user_token: 'u', name: 'kept' } } },
      none: { secret: null },
    });
    expect(out).toEqual({
      token: '[REDACTED]',
      req: { headers: { Authorization: '[REDACTED]', Cookie: '[REDACTED]', 'X-Parley-Key': '[REDACTED]', accept: '*/*' } },
      deep: { a: { b: { private_key_pem: '[REDACTED]', key: '[REDACTED]', user_token: '[REDACTED]', name: 'kept' } } },
      none: { secret: null },
    });
  });

  it('leaves look-alikes that are not secrets alone', () => {
    const text = 'pk_live_ alone, sk_prod_abcdefghijkl, vt_short, eyJ-not-a-jwt, key_abc123, tkt_XYZ';
    expect(scrub(text)).toBe(text);
  });

  it('redacts real minted keys and visitor tokens', () => {
    const db = openDatabase(':memory:');
    db.prepare('INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)').run('ws_1', 'Acme', 1);
    const { secret } = mintKey(db, {
      type: 'secret', environment: 'live', name: 'k', scopes: ['read'], workspaceId: 'ws_1', siteId: null, sites: null, expiresAt: null, now: 1,
    });
    db.close();
    expect(secret).toHaveLength(57);
    expect(scrub(`got ${secret}!`)).toBe('got [REDACTED]!');
    for (let i = 0; i < 50; i++) expect(scrub(`t=${newVisitorToken()};`)).toBe('t=[REDACTED];');
  });
});

describe('createLogger', () => {
  function capture() {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    return { lines, logger: createLogger('debug', sink) };
  }

  it('writes JSON lines with level, time, pid and message', () => {
    const { lines, logger } = capture();
    logger.info({ request_id: 'req_1' }, 'hello');
    const doc = JSON.parse(lines[0]!);
    expect(doc).toMatchObject({ level: 30, pid: process.pid, request_id: 'req_1', msg: 'hello' });
    expect(new Date(doc.time).toISOString()).toBe(doc.time);
  });

  it('scrubs secrets from messages, fields, headers and errors', () => {
    const { lines, logger } = capture();
    logger.info(`message mentions ${PK}`);
    logger.info({ headers: { authorization: `Bearer ${SK}`, 'x-parley-key': PK, 'x-visitor-token': VT, 'x-user-token': JWT, 'user-agent': 'curl' } }, 'req');
    logger.warn({ body: { api_key: PK_TEST, visitor_token: VT, message: `see ${SK_TEST}` } }, 'body');
    logger.error({ err: new Error(`boom ${JWT}`) }, 'failed');
    logger.debug({ key: 'k', secret: 'not-shaped-like-a-key', private_key_pem: '-----BEGIN PRIVATE KEY-----' }, 'fields');
    logger.info('format %s', SK);
    const text = lines.join('\n');
    expect(lines).toHaveLength(6);
    expect(leaks(text)).toEqual([]);
    expect(text).not.toContain('not-shaped-like-a-key'); // redacted by field name
    expect(text).not.toContain('BEGIN PRIVATE KEY');
    expect(text).toContain('curl'); // harmless fields stay
    expect(text).not.toMatch(/"stack"/);
  });

  it('respects the level', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const logger = createLogger('warn', sink);
    logger.info('quiet');
    logger.warn('loud');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('loud');
  });
});
