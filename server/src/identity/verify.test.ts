// Signed user tokens: every check of SPEC section 6a, with tokens signed by jose from keys made here.
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertSigningKey, deleteSigningKey } from '../db/signing-keys.js';
import { findSiteByServiceId, type SiteRow } from '../db/sites.js';
import { ApiError } from '../errors.js';
import { seed, startTestServer, type TestServer } from '../test-helpers/harness.js';
import { isP256PublicKeyPem, verifyUserToken } from './verify.js';

let srv: TestServer;
let site: SiteRow;
let other: SiteRow;
let priv: CryptoKey;
let pubPem: string;
const KID = 'sgk_test_one';

async function sign(claims: Record<string, unknown>, opts: { kid?: string; key?: CryptoKey; alg?: string; iat?: number; exp?: number } = {}) {
  const now = Math.floor(srv.clock.now / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: opts.kid ?? KID })
    .setIssuedAt(opts.iat ?? now)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(opts.key ?? priv);
}

async function refusal(token: string, s: SiteRow = site): Promise<string> {
  try {
    await verifyUserToken(srv.ctx, s, token);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('invalid_user_token');
    if (token.length > 8) expect((err as ApiError).message).not.toContain(token);
    return (err as ApiError).message;
  }
  throw new Error('token was accepted');
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  srv = await startTestServer();
  site = findSiteByServiceId(srv.ctx.db, seed(srv.ctx).serviceId)!;
  other = findSiteByServiceId(srv.ctx.db, seed(srv.ctx, {}, 'Other').serviceId)!;
  const pair = await generateKeyPair('ES256', { extractable: true });
  priv = pair.privateKey;
  pubPem = await exportSPKI(pair.publicKey);
  insertSigningKey(srv.ctx.db, { id: KID, site_id: site.id, public_key_pem: pubPem, created_at: srv.clock.now });
});
afterAll(() => srv.close());

describe('verifyUserToken', () => {
  it('accepts a valid token and returns sub, name and email', async () => {
    const user = await verifyUserToken(srv.ctx, site, await sign({ sub: 'user-42', name: 'Ada', email: 'ada@example.com' }));
    expect(user).toEqual({ id: 'user-42', name: 'Ada', email: 'ada@example.com' });
  });

  it('refuses an expired token, but allows 60 s of clock skew', async () => {
    const now = Math.floor(srv.clock.now / 1000);
    await verifyUserToken(srv.ctx, site, await sign({ sub: 'u' }, { iat: now - 600, exp: now - 30 }));
    expect(await refusal(await sign({ sub: 'u' }, { iat: now - 600, exp: now - 120 }))).toMatch(/expired/);
  });

  it('refuses a token that is not yet valid (nbf or iat in the future)', async () => {
    const now = Math.floor(srv.clock.now / 1000);
    expect(await refusal(await sign({ sub: 'u', nbf: now + 600 }, { iat: now, exp: now + 900 }))).toMatch(/not yet valid/);
    expect(await refusal(await sign({ sub: 'u' }, { iat: now + 600, exp: now + 900 }))).toMatch(/not yet valid/);
  });

  it('refuses an unknown kid, and a kid of another site', async () => {
    expect(await refusal(await sign({ sub: 'u' }, { kid: 'sgk_nope' }))).toMatch(/unknown kid/);
    expect(await refusal(await sign({ sub: 'u' }), other)).toMatch(/unknown kid/);
  });

  it('refuses a tampered payload', async () => {
    const [h, , s] = (await sign({ sub: 'user-1' })).split('.');
    const now = Math.floor(srv.clock.now / 1000);
    expect(await refusal(`${h}.${b64({ sub: 'admin', iat: now, exp: now + 60 })}.${s}`)).toMatch(/bad signature/);
  });

  it('refuses alg none, HS256 keyed with the public key, and ES384', async () => {
    const now = Math.floor(srv.clock.now / 1000);
    const payload = b64({ sub: 'admin', iat: now, exp: now + 60 });
    expect(await refusal(`${b64({ alg: 'none', kid: KID })}.${payload}.`)).toMatch(/wrong alg/);
    const head = b64({ alg: 'HS256', kid: KID });
    const mac = createHmac('sha256', pubPem).update(`${head}.${payload}`).digest('base64url');
    expect(await refusal(`${head}.${payload}.${mac}`)).toMatch(/wrong alg/);
    const p384 = await generateKeyPair('ES384');
    expect(await refusal(await sign({ sub: 'u' }, { alg: 'ES384', key: p384.privateKey }))).toMatch(/wrong alg/);
  });

  it('refuses a token signed by another key under a known kid', async () => {
    const stranger = await generateKeyPair('ES256');
    expect(await refusal(await sign({ sub: 'u' }, { key: stranger.privateKey }))).toMatch(/bad signature/);
  });

  it('bounds the claims: sub 1..255, lifetime at most 24 h, iat and exp required', async () => {
    const now = Math.floor(srv.clock.now / 1000);
    expect(await refusal(await sign({ sub: 'x'.repeat(256) }))).toMatch(/sub/);
    expect(await refusal(await sign({ sub: '' }))).toMatch(/sub/);
    await verifyUserToken(srv.ctx, site, await sign({ sub: 'x'.repeat(255) }));
    expect(await refusal(await sign({ sub: 'u' }, { iat: now, exp: now + 86_401 }))).toMatch(/24 hours/);
    const noExp = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'ES256', kid: KID }).setIssuedAt(now).sign(priv);
    expect(await refusal(noExp)).toMatch(/exp/);
  });

  it('refuses garbage that is not a compact JWS', async () => {
    for (const junk of ['', 'a.b', 'not a token', 'a.b.c.d', `${b64({ alg: 'ES256' })}.e30.`]) {
      await refusal(junk);
    }
  });

  it('keeps two keys active for rotation, and a deleted key is refused on the next token', async () => {
    const second = await generateKeyPair('ES256', { extractable: true });
    insertSigningKey(srv.ctx.db, { id: 'sgk_test_two', site_id: site.id, public_key_pem: await exportSPKI(second.publicKey), created_at: srv.clock.now });
    await verifyUserToken(srv.ctx, site, await sign({ sub: 'old' }));
    const fresh = await sign({ sub: 'new' }, { kid: 'sgk_test_two', key: second.privateKey });
    expect((await verifyUserToken(srv.ctx, site, fresh)).id).toBe('new');
    deleteSigningKey(srv.ctx.db, 'sgk_test_two', site.id);
    expect(await refusal(fresh)).toMatch(/unknown kid/);
  });
});

describe('isP256PublicKeyPem', () => {
  it('accepts P-256 SPKI and refuses other curves, private keys and junk', async () => {
    expect(isP256PublicKeyPem(pubPem)).toBe(true);
    const p384 = await generateKeyPair('ES384', { extractable: true });
    expect(isP256PublicKeyPem(await exportSPKI(p384.publicKey))).toBe(false);
    expect(isP256PublicKeyPem('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----')).toBe(false);
    expect(isP256PublicKeyPem('hello')).toBe(false);
    // Node derives a public key from a private one: the PEM itself must be a public key.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(isP256PublicKeyPem(String(privateKey.export({ format: 'pem', type: 'pkcs8' })))).toBe(false);
    expect(isP256PublicKeyPem(String(privateKey.export({ format: 'pem', type: 'sec1' })))).toBe(false);
  });
});
