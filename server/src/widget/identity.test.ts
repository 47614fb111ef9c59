// Identity verification over HTTP (SPEC section 6a): signing keys through the management API,
// tokens signed by jose from keys made here, each refusal as 401 invalid_user_token that changes
// nothing, require_identity, and a signed-in user's ticket list on a new device.
import { UserTicketsResponse } from '@parley/shared';
import { exportSPKI, generateKeyPair, importPKCS8, SignJWT, type CryptoKey } from 'jose';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EXTRA_VISITOR_TOKENS } from '../db/tickets.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, openStream, streamHeaders, visitor, widgetState } from '../test-helpers/widget.js';
import { sha256 } from '../util.js';

let t: TestServer;
let fx: Fixture;
let other: Fixture;
/** The site's generated signing key: its id and private key. */
let kid: string;
let priv: CryptoKey;

const nowS = () => Math.floor(t.clock.now / 1000);

async function sign(
  claims: Record<string, unknown>,
  o: { kid?: string; key?: CryptoKey; alg?: string; iat?: number; exp?: number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: o.alg ?? 'ES256', kid: o.kid ?? kid })
    .setIssuedAt(o.iat ?? nowS())
    .setExpirationTime(o.exp ?? nowS() + 3600)
    .sign(o.key ?? priv);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const asUser = (token: string) => ({ headers: { 'X-User-Token': token } });

async function makeSigningKey(site: Fixture): Promise<{ id: string; key: CryptoKey }> {
  const r = await call(t.base, 'POST', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live, body: {} });
  expect(r.status, r.text).toBe(201);
  return { id: r.json.signing_key.id, key: await importPKCS8(r.json.private_key_pem, 'ES256') };
}

/** Expects `401 invalid_user_token` whose message names `why`, never the token, and no change at all. */
async function expectRefused(token: string, why: RegExp, site = fx): Promise<void> {
  const before = widgetState(t.ctx.db);
  const r = await visitor(t.base, site, 'POST', '/tickets', { body: { message: 'hi', user_token: token } });
  expect(r.status, r.text).toBe(401);
  expect(r.json.error.code).toBe('invalid_user_token');
  expect(r.json.error.message).toMatch(why);
  expect(r.text).not.toContain(token);
  const after = widgetState(t.ctx.db);
  // Only the rate-limit token and the refusal count move; no ticket, message, charge or token.
  expect({ ...after, rate_limits: null, refusals: null, keys: null }).toEqual({ ...before, rate_limits: null, refusals: null, keys: null });
}

beforeAll(async () => {
  t = await startTestServer();
  fx = seed(t.ctx, { rate_limit_per_minute: 100_000 });
  other = seed(t.ctx, { rate_limit_per_minute: 100_000, allowed_origins: ['https://other.example'] }, 'Other');
  ({ id: kid, key: priv } = await makeSigningKey(fx));
});
afterAll(() => t.close());

describe('signing keys (management API)', () => {
  it('registers an owner-made P-256 public key, lists it, deletes it at once; at most two at a time', async () => {
    const site = seed(t.ctx, {}, 'Keys');
    const pair = await generateKeyPair('ES256', { extractable: true });
    const pem = await exportSPKI(pair.publicKey);
    const made = await call(t.base, 'POST', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live, body: { public_key_pem: pem } });
    expect(made.status, made.text).toBe(201);
    expect(made.json.signing_key.id).toMatch(/^sgk_/);
    expect(made.json.private_key_pem).toBeUndefined();
    const second = await call(t.base, 'POST', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live, body: {} });
    expect(second.status).toBe(201);
    expect(second.json.private_key_pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // The private key is returned once and never stored.
    const stored = t.ctx.db.prepare('SELECT * FROM signing_keys WHERE id = ?').get(second.json.signing_key.id) as Record<string, unknown>;
    expect(JSON.stringify(stored)).not.toContain('PRIVATE');
    const third = await call(t.base, 'POST', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live, body: {} });
    expect(third.status).toBe(400);
    expect(third.json.error.code).toBe('invalid_request');
    const list = await call(t.base, 'GET', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live });
    expect(list.status).toBe(200);
    expect(list.json.signing_keys.map((k: { id: string }) => k.id)).toEqual([made.json.signing_key.id, second.json.signing_key.id]);
    expect(list.json.next_cursor).toBeNull();
    const del = await call(t.base, 'DELETE', `/v1/sites/${site.serviceId}/signing-keys/${made.json.signing_key.id}`, { key: site.sk.live });
    expect(del.status).toBe(204);
    const again = await call(t.base, 'DELETE', `/v1/sites/${site.serviceId}/signing-keys/${made.json.signing_key.id}`, { key: site.sk.live });
    expect(again.status).toBe(404);
    expect((await call(t.base, 'GET', `/v1/sites/${site.serviceId}/signing-keys`, { key: site.sk.live })).json.signing_keys).toHaveLength(1);
  });

  it('refuses a public key that is not P-256, unknown fields, a read key, a publishable key and another workspace', async () => {
    const site = seed(t.ctx, {}, 'Keys2');
    const path = `/v1/sites/${site.serviceId}/signing-keys`;
    const p384 = await generateKeyPair('ES384', { extractable: true });
    for (const body of [{ public_key_pem: await exportSPKI(p384.publicKey) }, { public_key_pem: 'not a pem' }, { public_key_pem: 5 }, { extra: 1 }]) {
      const r = await call(t.base, 'POST', path, { key: site.sk.live, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
    }
    const read = await call(t.base, 'POST', '/v1/keys', { key: site.sk.live, body: { type: 'secret', name: 'reader', scopes: ['read'] } });
    expect((await call(t.base, 'POST', path, { key: read.json.key.secret, body: {} })).json.error.code).toBe('insufficient_scope');
    expect((await call(t.base, 'GET', path, { key: read.json.key.secret })).status).toBe(200);
    expect((await call(t.base, 'POST', path, { headers: { Authorization: `Bearer ${site.pk.live}` }, body: {} })).json.error.code).toBe('insufficient_scope');
    expect((await call(t.base, 'GET', path, { key: fx.sk.live })).status).toBe(404);
    expect((await call(t.base, 'GET', path, { key: site.sk.live })).json.signing_keys).toEqual([]);
  });

  it('refuses a private key sent as public_key_pem, so it is never stored or listed', async () => {
    const site = seed(t.ctx, {}, 'Keys3');
    const path = `/v1/sites/${site.serviceId}/signing-keys`;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const type of ['pkcs8', 'sec1'] as const) {
      const pem = String(privateKey.export({ format: 'pem', type }));
      const r = await call(t.base, 'POST', path, { key: site.sk.live, body: { public_key_pem: pem } });
      expect(r.status, `${type}: ${r.text}`).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
      expect(r.json.error.message).toMatch(/private key/);
      expect(r.text).not.toContain(pem.split('\n')[1]);
    }
    // A public key with something pasted after it is not one public key either.
    const spki = String(publicKey.export({ format: 'pem', type: 'spki' }));
    expect((await call(t.base, 'POST', path, { key: site.sk.live, body: { public_key_pem: `${spki}${spki}` } })).status).toBe(400);
    expect((await call(t.base, 'GET', path, { key: site.sk.live })).json.signing_keys).toEqual([]);
    expect(JSON.stringify(t.ctx.db.prepare('SELECT * FROM signing_keys').all())).not.toContain('PRIVATE');
    const ok = await call(t.base, 'POST', path, { key: site.sk.live, body: { public_key_pem: `\n${spki}\n` } });
    expect(ok.status, ok.text).toBe(201);
  });
});

describe('user tokens on POST /tickets', () => {
  it('ties the ticket to sub and copies name and email', async () => {
    const token = await sign({ sub: 'user-1', name: 'Ada Lovelace', email: 'ada@example.com' });
    const made = await createTicket(t.base, fx, { message: 'Signed in', user_token: token });
    expect((made.ticket as unknown as { user: unknown }).user).toEqual({ id: 'user-1', name: 'Ada Lovelace', email: 'ada@example.com' });
    const agent = await call(t.base, 'GET', `/v1/sites/${fx.serviceId}/tickets/${made.ticket.id}`, { key: fx.sk.live });
    expect(agent.json.ticket.user).toEqual({ id: 'user-1', name: 'Ada Lovelace', email: 'ada@example.com' });
    expect(t.logs.join('\n')).not.toContain(token);
  });

  it('reads a null or empty name and email as none, counts claims as characters, and trims them', async () => {
    // A backend signs what its user row holds: SignJWT({ name: user.name, email: user.email }) with nulls.
    const nulls = await createTicket(t.base, fx, { message: 'nulls', user_token: await sign({ sub: 'user-null', name: null, email: null }) });
    expect((nulls.ticket as unknown as { user: unknown }).user).toEqual({ id: 'user-null', name: null, email: null });
    const empty = await createTicket(t.base, fx, { message: 'empty', user_token: await sign({ sub: 'user-empty', name: '  ', email: '' }) });
    expect((empty.ticket as unknown as { user: unknown }).user).toEqual({ id: 'user-empty', name: null, email: null });
    const trimmed = await createTicket(t.base, fx, { message: 'trim', user_token: await sign({ sub: 'u-t', name: ' Ada ', email: 'ada@example.com ' }) });
    expect((trimmed.ticket as unknown as { user: unknown }).user).toEqual({ id: 'u-t', name: 'Ada', email: 'ada@example.com' });
    // 255 emoji are 255 characters (510 UTF-16 units); 256 are too many.
    const emoji = '\u{1F600}'.repeat(255);
    const wide = await createTicket(t.base, fx, { message: 'wide', user_token: await sign({ sub: emoji, name: '\u{1F469}\u{200D}\u{1F4BB}'.repeat(255) }) });
    expect((wide.ticket as unknown as { user: { id: string } }).user.id).toBe(emoji);
    await expectRefused(await sign({ sub: `${emoji}\u{1F600}` }), /sub out of bounds/);
    await expectRefused(await sign({ sub: 'u', name: 'n'.repeat(256) }), /claim name is longer than 255/);
    await expectRefused(await sign({ sub: 'u', email: 7 }), /claim email must be a string or null/);
  });

  it('refuses two different user tokens (body and header) as conflicting_credentials, and accepts the same one twice', async () => {
    const before = widgetState(t.ctx.db);
    const alice = await sign({ sub: 'alice' });
    const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'who am I', user_token: alice }, ...asUser(await sign({ sub: 'bob' })) });
    expect([r.status, r.json.error?.code], r.text).toEqual([400, 'conflicting_credentials']);
    expect(r.text).not.toContain(alice);
    expect(widgetState(t.ctx.db).tickets).toEqual(before.tickets);
    const same = await createTicket(t.base, fx, { message: 'same', user_token: alice }, asUser(alice));
    expect((same.ticket as unknown as { user: { id: string } }).user.id).toBe('alice');
  });

  it('says why a token is no compact JWS: too long, or not three base64url parts', async () => {
    const token = await sign({ sub: 'u' });
    const long = await visitor(t.base, fx, 'GET', '/config', asUser(`${token}${'A'.repeat(9000)}`));
    expect([long.status, long.json.error?.code], long.text).toEqual([401, 'invalid_user_token']);
    expect(long.json.error.message).toMatch(/longer than 8192 characters/);
    await expectRefused(` ${token} `, /not a compact JWS/);
    await expectRefused(`${token}.x`, /not a compact JWS/);
  });

  it('takes the token from X-User-Token when the body has none', async () => {
    const made = await createTicket(t.base, fx, { message: 'Header' }, asUser(await sign({ sub: 'user-header' })));
    expect((made.ticket as unknown as { user: { id: string } }).user.id).toBe('user-header');
  });

  it('accepts 60 s of clock skew either way, and no more', async () => {
    await createTicket(t.base, fx, { message: 'skew', user_token: await sign({ sub: 'u' }, { iat: nowS() - 3600, exp: nowS() - 50 }) });
    await createTicket(t.base, fx, { message: 'skew', user_token: await sign({ sub: 'u' }, { iat: nowS() + 50, exp: nowS() + 600 }) });
    await expectRefused(await sign({ sub: 'u' }, { iat: nowS() - 3600, exp: nowS() - 70 }), /expired/);
    await expectRefused(await sign({ sub: 'u' }, { iat: nowS() + 120, exp: nowS() + 600 }), /not yet valid/);
  });

  it('refuses a token whose nbf is ahead', async () => {
    await expectRefused(await sign({ sub: 'u', nbf: nowS() + 600 }), /not yet valid/);
  });

  it('refuses an unknown kid, another site\'s kid and a tampered payload', async () => {
    await expectRefused(await sign({ sub: 'u' }, { kid: 'sgk_nope' }), /unknown kid/);
    const theirs = await makeSigningKey(other);
    await expectRefused(await sign({ sub: 'u' }, { kid: theirs.id, key: theirs.key }), /unknown kid/);
    const [h, , s] = (await sign({ sub: 'user-1' })).split('.');
    await expectRefused(`${h}.${b64({ sub: 'admin', iat: nowS(), exp: nowS() + 60 })}.${s}`, /bad signature/);
  });

  it('refuses alg none, HS256 keyed with the public key, ES384 and a missing kid', async () => {
    const claims = { sub: 'u', iat: nowS(), exp: nowS() + 60 };
    await expectRefused(`${b64({ alg: 'none', kid })}.${b64(claims)}.`, /wrong alg/);
    const pem = (t.ctx.db.prepare('SELECT public_key_pem FROM signing_keys WHERE id = ?').get(kid) as { public_key_pem: string }).public_key_pem;
    const signingInput = `${b64({ alg: 'HS256', kid, typ: 'JWT' })}.${b64(claims)}`;
    await expectRefused(`${signingInput}.${createHmac('sha256', pem).update(signingInput).digest('base64url')}`, /wrong alg/);
    const p384 = await generateKeyPair('ES384');
    await expectRefused(await sign({ sub: 'u' }, { alg: 'ES384', key: p384.privateKey }), /wrong alg/);
    await expectRefused(`${b64({ alg: 'ES256' })}.${b64(claims)}.c2ln`, /no kid/);
  });

  it('refuses claims out of bounds: sub empty or over 255, a lifetime over 24 h, missing exp', async () => {
    await expectRefused(await sign({ sub: 'x'.repeat(256) }), /sub out of bounds/);
    await expectRefused(await sign({ sub: '' }), /sub/);
    await expectRefused(await sign({ sub: 'u' }, { iat: nowS(), exp: nowS() + 24 * 3600 + 1 }), /lifetime over 24 hours/);
    await createTicket(t.base, fx, { message: 'ok', user_token: await sign({ sub: 'x'.repeat(255) }, { exp: nowS() + 24 * 3600 }) });
    const noExp = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuedAt(nowS()).sign(priv);
    await expectRefused(noExp, /exp/);
    await expectRefused('not.a.jws', /.+/);
  });

  it('verifies with either of two active keys during rotation, and refuses a deleted key on the next request', async () => {
    const second = await makeSigningKey(fx);
    await createTicket(t.base, fx, { message: 'old key', user_token: await sign({ sub: 'rot' }) });
    await createTicket(t.base, fx, { message: 'new key', user_token: await sign({ sub: 'rot' }, { kid: second.id, key: second.key }) });
    const token = await sign({ sub: 'rot' }, { kid: second.id, key: second.key });
    const del = await call(t.base, 'DELETE', `/v1/sites/${fx.serviceId}/signing-keys/${second.id}`, { key: fx.sk.live });
    expect(del.status).toBe(204);
    await expectRefused(token, /unknown kid/);
    await createTicket(t.base, fx, { message: 'old key still', user_token: await sign({ sub: 'rot' }) });
  });
});

describe('Idempotency-Key with user tokens', () => {
  it("is the user's own: another user's same key and body make their own ticket; a retry with a renewed token replays", async () => {
    const body = { message: 'same words' };
    const key = { 'Idempotency-Key': 'client-counter-1' };
    const first = await visitor(t.base, fx, 'POST', '/tickets', { body: { ...body, user_token: await sign({ sub: 'ida' }) }, headers: key });
    expect(first.status, first.text).toBe(201);
    // The token was renewed between the attempts: the same request, so the same answer.
    const renewed = await sign({ sub: 'ida' }, { iat: nowS() + 1, exp: nowS() + 7200 });
    const retry = await visitor(t.base, fx, 'POST', '/tickets', { body: { ...body, user_token: renewed }, headers: key });
    expect(retry.status, retry.text).toBe(201);
    expect(retry.json).toEqual(first.json);
    const viaHeader = await visitor(t.base, fx, 'POST', '/tickets', { body, headers: { ...key, 'X-User-Token': renewed } });
    expect(viaHeader.json).toEqual(first.json);
    // Another user never receives Ida's ticket and visitor token.
    const other = await visitor(t.base, fx, 'POST', '/tickets', { body, headers: { ...key, 'X-User-Token': await sign({ sub: 'ivo' }) } });
    expect(other.status, other.text).toBe(201);
    expect(other.json.ticket.id).not.toBe(first.json.ticket.id);
    expect(other.json.visitor_token).not.toBe(first.json.visitor_token);
    expect(other.json.ticket.user.id).toBe('ivo');
  });
});

describe('require_identity', () => {
  it('refuses ticket creation without a token (403) and with a bad one (401), and accepts a valid one', async () => {
    const site = seed(t.ctx, { rate_limit_per_minute: 1000, widget: { require_identity: true } }, 'Strict');
    const key = await makeSigningKey(site);
    const before = widgetState(t.ctx.db);
    const none = await visitor(t.base, site, 'POST', '/tickets', { body: { message: 'hi' } });
    expect(none.status).toBe(403);
    expect(none.json.error.code).toBe('identity_required');
    const bad = await visitor(t.base, site, 'POST', '/tickets', { body: { message: 'hi', user_token: await sign({ sub: 'u' }) } });
    expect(bad.status).toBe(401);
    expect(bad.json.error.code).toBe('invalid_user_token');
    expect(widgetState(t.ctx.db).tickets).toEqual(before.tickets);
    expect(widgetState(t.ctx.db).spend_meters).toEqual(before.spend_meters);
    const ok = await createTicket(t.base, site, { message: 'hi', user_token: await sign({ sub: 'member' }, { kid: key.id, key: key.key }) });
    expect((ok.ticket as unknown as { user: { id: string } }).user.id).toBe('member');
    // Turning it off through PATCH lets anonymous visitors in again.
    const patch = await call(t.base, 'PATCH', `/v1/sites/${site.serviceId}`, { key: site.sk.live, body: { widget: { require_identity: false } } });
    expect(patch.status).toBe(200);
    const anon = await createTicket(t.base, site, { message: 'anonymous' });
    expect((anon.ticket as unknown as { user: unknown }).user).toBeNull();
  });

  it('checks the 404 of a ticket before identity and identity before spend, as SPEC section 3 orders them', async () => {
    const site = seed(t.ctx, { rate_limit_per_minute: 1000, daily_spend_cap_micros: 0, widget: { require_identity: true } }, 'Order');
    // Spend cap 0: identity is refused first.
    const r = await visitor(t.base, site, 'POST', '/tickets', { body: { message: 'hi' } });
    expect(r.json.error.code).toBe('identity_required');
    // A bad user token on another visitor's ticket: 404 first.
    const made = await createTicket(t.base, fx, { message: 'mine' });
    const post = await visitor(t.base, fx, 'POST', `/tickets/${made.ticket.id}/messages`, {
      body: { message: 'x' }, headers: { 'X-Visitor-Token': 'vt_wrong', 'X-User-Token': 'garbage' },
    });
    expect(post.status).toBe(404);
  });
});

describe('X-User-Token on the other widget calls', () => {
  it('is verified when sent: a bad or expired one is 401 and stores nothing, a valid one works', async () => {
    const token = await sign({ sub: 'reader' });
    const made = await createTicket(t.base, fx, { message: 'first', user_token: token });
    const vt = { 'X-Visitor-Token': made.visitor_token };
    const expired = await sign({ sub: 'reader' }, { iat: nowS() - 7200, exp: nowS() - 3600 });
    const before = widgetState(t.ctx.db);
    const post = await visitor(t.base, fx, 'POST', `/tickets/${made.ticket.id}/messages`, { body: { message: 'x' }, headers: { ...vt, 'X-User-Token': expired } });
    expect(post.status).toBe(401);
    expect(post.json.error.message).toMatch(/expired/);
    expect(widgetState(t.ctx.db).messages).toEqual(before.messages);
    expect(widgetState(t.ctx.db).spend_meters).toEqual(before.spend_meters);
    const read = await visitor(t.base, fx, 'GET', `/tickets/${made.ticket.id}/messages`, { headers: { ...vt, 'X-User-Token': expired } });
    expect(read.status).toBe(401);
    const stream = await openStream(`${t.base}/v1/widget/${fx.serviceId}/tickets/${made.ticket.id}/events`, streamHeaders(fx, made.visitor_token, { 'X-User-Token': expired }));
    expect(stream.status).toBe(401);
    stream.close();
    const config = await visitor(t.base, fx, 'GET', '/config', asUser(expired));
    expect(config.status, config.text).toBe(401);
    expect(config.json.error.code).toBe('invalid_user_token');
    expect((await visitor(t.base, fx, 'GET', '/config', asUser(token))).status).toBe(200);

    const ok = await visitor(t.base, fx, 'POST', `/tickets/${made.ticket.id}/messages`, {
      body: { message: 'second' }, headers: { ...vt, 'X-User-Token': token, 'Idempotency-Key': 'signed-1' },
    });
    expect(ok.status, ok.text).toBe(201);
    // The same Idempotency-Key replays on this path too.
    const replay = await visitor(t.base, fx, 'POST', `/tickets/${made.ticket.id}/messages`, {
      body: { message: 'second' }, headers: { ...vt, 'X-User-Token': token, 'Idempotency-Key': 'signed-1' },
    });
    expect(replay.json).toEqual(ok.json);
    const msgs = await visitor(t.base, fx, 'GET', `/tickets/${made.ticket.id}/messages`, { headers: { ...vt, 'X-User-Token': token } });
    expect(msgs.json.messages.map((m: { body: string }) => m.body)).toEqual(['first', 'second']);
  });

  it("a valid token of another user on a user's ticket is 404, as if it did not exist, and writes nothing", async () => {
    // A shared computer: Alice's visitor token is still stored when Bob signs in.
    const alice = await createTicket(t.base, fx, { message: 'private', user_token: await sign({ sub: 'alice' }) });
    const bob = { 'X-Visitor-Token': alice.visitor_token, 'X-User-Token': await sign({ sub: 'bob' }) };
    const path = `/tickets/${alice.ticket.id}`;
    const before = widgetState(t.ctx.db);
    const read = await visitor(t.base, fx, 'GET', `${path}/messages`, { headers: bob });
    expect(read.status, read.text).toBe(404);
    expect(read.json.error.code).toBe('not_found');
    expect(read.text).not.toContain('private');
    const post = await visitor(t.base, fx, 'POST', `${path}/messages`, { body: { message: 'hi' }, headers: bob });
    expect(post.status, post.text).toBe(404);
    const stream = await openStream(`${t.base}/v1/widget/${fx.serviceId}${path}/events`, streamHeaders(fx, alice.visitor_token, bob));
    expect(stream.status).toBe(404);
    stream.close();
    const after = widgetState(t.ctx.db);
    expect(after.messages).toEqual(before.messages);
    expect(after.spend_meters).toEqual(before.spend_meters);

    // Alice's own token still works, and an anonymous ticket may be continued after signing in.
    const own = await visitor(t.base, fx, 'GET', `${path}/messages`, {
      headers: { 'X-Visitor-Token': alice.visitor_token, 'X-User-Token': await sign({ sub: 'alice' }) },
    });
    expect(own.status, own.text).toBe(200);
    const anon = await createTicket(t.base, fx, { message: 'before signing in' });
    const later = await visitor(t.base, fx, 'POST', `/tickets/${anon.ticket.id}/messages`, {
      body: { message: 'signed in now' }, headers: { 'X-Visitor-Token': anon.visitor_token, 'X-User-Token': bob['X-User-Token'] },
    });
    expect(later.status, later.text).toBe(201);
  });
});

describe('GET /tickets (a signed-in user on another device)', () => {
  it('lists the user\'s tickets newest first with visitor tokens that read, post and stream', async () => {
    const sub = 'device-user';
    const first = await createTicket(t.base, fx, { message: 'older', user_token: await sign({ sub }) });
    const second = await createTicket(t.base, fx, { message: 'newer', user_token: await sign({ sub }) });
    await createTicket(t.base, fx, { message: 'someone else', user_token: await sign({ sub: 'another-user' }) });
    await createTicket(t.base, fx, { message: 'anonymous' });
    const token = await sign({ sub });
    const r = await visitor(t.base, fx, 'GET', '/tickets', asUser(token));
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const list = UserTicketsResponse.parse(r.json);
    expect(list.tickets.map((i) => i.ticket.id)).toEqual([second.ticket.id, first.ticket.id]);
    expect(list.next_cursor).toBeNull();
    for (const item of list.tickets) {
      expect(item.visitor_token).not.toBe(first.visitor_token);
      expect(item.visitor_token).not.toBe(second.visitor_token);
    }
    // The new device's token works everywhere the first one does, and the first one still works.
    const newest = list.tickets[0]!;
    const read = await visitor(t.base, fx, 'GET', `/tickets/${newest.ticket.id}/messages`, { headers: { 'X-Visitor-Token': newest.visitor_token } });
    expect(read.json.messages.map((m: { body: string }) => m.body)).toEqual(['newer']);
    const post = await visitor(t.base, fx, 'POST', `/tickets/${newest.ticket.id}/messages`, { body: { message: 'from my phone' }, headers: { 'X-Visitor-Token': newest.visitor_token } });
    expect(post.status).toBe(201);
    expect((await visitor(t.base, fx, 'GET', `/tickets/${second.ticket.id}/messages`, { headers: { 'X-Visitor-Token': second.visitor_token } })).json.messages).toHaveLength(2);
    const stream = await openStream(`${t.base}/v1/widget/${fx.serviceId}/tickets/${newest.ticket.id}/events`, streamHeaders(fx, newest.visitor_token));
    expect(stream.status).toBe(200);
    await call(t.base, 'POST', `/v1/sites/${fx.serviceId}/tickets/${newest.ticket.id}/messages`, { key: fx.sk.live, body: { message: 'Agent here' } });
    await stream.until((ev) => ev.some((e) => e.data.includes('Agent here')), 'the agent reply');
    stream.close();
    // A token minted for one ticket opens no other ticket.
    const cross = await visitor(t.base, fx, 'GET', `/tickets/${first.ticket.id}/messages`, { headers: { 'X-Visitor-Token': newest.visitor_token } });
    expect(cross.status).toBe(404);
    // Tokens are stored only as hashes: the SHA-256 is there, the plaintext is in no file of the database.
    const stored = t.ctx.db.prepare('SELECT ticket_seq FROM visitor_tokens WHERE hash = ?').get(sha256(newest.visitor_token));
    expect(stored).toBeDefined();
    t.ctx.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const file of [t.dbPath, `${t.dbPath}-wal`]) {
      if (existsSync(file)) expect(readFileSync(file).includes(newest.visitor_token), file).toBe(false);
    }
    expect(t.logs.join('\n')).not.toContain(newest.visitor_token);
  });

  it('pages with limit and cursor', async () => {
    const sub = 'pager';
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift((await createTicket(t.base, fx, { message: `t${i}`, user_token: await sign({ sub }) })).ticket.id);
    const token = await sign({ sub });
    const p1 = await visitor(t.base, fx, 'GET', '/tickets?limit=2', asUser(token));
    const p2 = await visitor(t.base, fx, 'GET', `/tickets?limit=2&cursor=${p1.json.next_cursor}`, asUser(token));
    const p3 = await visitor(t.base, fx, 'GET', `/tickets?limit=2&cursor=${p2.json.next_cursor}`, asUser(token));
    expect([...p1.json.tickets, ...p2.json.tickets, ...p3.json.tickets].map((i: { ticket: { id: string } }) => i.ticket.id)).toEqual(ids);
    expect(p3.json.next_cursor).toBeNull();
    for (const q of ['limit=0', 'limit=21', 'limit=x', 'limit=1e1', 'limit=0x5', 'cursor=bogus', 'other=1']) {
      const r = await visitor(t.base, fx, 'GET', `/tickets?${q}`, asUser(token));
      expect(r.status, q).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
    }
  });

  it('needs a valid token: none or a bad one is 401 and mints nothing', async () => {
    const before = widgetState(t.ctx.db).visitor_tokens;
    const none = await visitor(t.base, fx, 'GET', '/tickets');
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe('invalid_user_token');
    const expired = await visitor(t.base, fx, 'GET', '/tickets', asUser(await sign({ sub: 'device-user' }, { iat: nowS() - 7200, exp: nowS() - 3600 })));
    expect(expired.status).toBe(401);
    expect(widgetState(t.ctx.db).visitor_tokens).toEqual(before);
  });

  it('never lists another site\'s or environment\'s tickets', async () => {
    const theirs = await makeSigningKey(other);
    await createTicket(t.base, other, { message: 'on the other site', user_token: await sign({ sub: 'shared-id' }, { kid: theirs.id, key: theirs.key }) });
    await createTicket(t.base, fx, { message: 'test env', user_token: await sign({ sub: 'shared-id' }) }, { key: fx.pk.test });
    // The other site's token on this site: its kid is unknown here.
    const cross = await visitor(t.base, fx, 'GET', '/tickets', asUser(await sign({ sub: 'shared-id' }, { kid: theirs.id, key: theirs.key })));
    expect(cross.status).toBe(401);
    expect(cross.json.error.message).toMatch(/unknown kid/);
    // This site's token, same sub: only this site's tickets, of the key's environment.
    const live = await visitor(t.base, fx, 'GET', '/tickets', asUser(await sign({ sub: 'shared-id' })));
    expect(live.json.tickets).toEqual([]);
    const test = await visitor(t.base, fx, 'GET', '/tickets', { key: fx.pk.test, ...asUser(await sign({ sub: 'shared-id' })) });
    expect(test.json.tickets.map((i: { ticket: { environment: string } }) => i.ticket.environment)).toEqual(['test']);
    // Another site's key on this site's path.
    const mismatch = await visitor(t.base, fx, 'GET', '/tickets', { key: other.pk.live, ...asUser(await sign({ sub: 'shared-id' })) });
    expect(mismatch.status).toBe(403);
    expect(mismatch.json.error.code).toBe('site_mismatch');
  });

  it(`keeps at most ${MAX_EXTRA_VISITOR_TOKENS} listed tokens per ticket, dropping the oldest`, async () => {
    const sub = 'many-devices';
    const made = await createTicket(t.base, fx, { message: 'x', user_token: await sign({ sub }) });
    const tokens: string[] = [];
    for (let i = 0; i < MAX_EXTRA_VISITOR_TOKENS + 2; i++) {
      t.clock.advance(1);
      const r = await visitor(t.base, fx, 'GET', '/tickets', asUser(await sign({ sub })));
      tokens.push(r.json.tickets[0].visitor_token);
    }
    const seq = (t.ctx.db.prepare('SELECT seq FROM tickets WHERE id = ?').get(made.ticket.id) as { seq: number }).seq;
    expect(t.ctx.db.prepare('SELECT COUNT(*) AS n FROM visitor_tokens WHERE ticket_seq = ?').get(seq)).toEqual({ n: MAX_EXTRA_VISITOR_TOKENS });
    const read = (vt: string) => visitor(t.base, fx, 'GET', `/tickets/${made.ticket.id}/messages`, { headers: { 'X-Visitor-Token': vt } });
    expect((await read(tokens[0]!)).status).toBe(404);
    expect((await read(tokens[1]!)).status).toBe(404);
    expect((await read(tokens[2]!)).status).toBe(200);
    expect((await read(tokens.at(-1)!)).status).toBe(200);
    expect((await read(made.visitor_token)).status).toBe(200);
  });
});
