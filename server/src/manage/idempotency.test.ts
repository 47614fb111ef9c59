// Idempotency-Key on the management POSTs: an agent reply, a key, a rotation, a site or a signing key
// retried after a lost response is made once; the same key with another body is 409; the record of
// a response that holds a secret never holds it readable; another secret key gets its own answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket } from '../test-helpers/widget.js';

type Json = Record<string, any>;

let t: TestServer;
let f: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  f = seed(t.ctx, { rate_limit_per_minute: 1000 });
});
afterAll(() => t.close());

const idem = (key: string) => ({ 'Idempotency-Key': key });
const post = (path: string, body: object, key: string, secret = f.sk.live) => call(t.base, 'POST', path, { key: secret, body, headers: idem(key) });
const storedResponses = () => JSON.stringify(t.ctx.db.prepare('SELECT response FROM idempotency').all());

describe('Idempotency-Key on management POSTs', () => {
  it('an agent reply retried with the same key and body is written once and answered the same; another body is 409', async () => {
    const c = await createTicket(t.base, f);
    const path = `/v1/sites/${f.serviceId}/tickets/${c.ticket.id}/messages`;
    const first = await post(path, { message: 'Refund sent', author_name: 'Dana' }, 'reply-1');
    expect(first.status, first.text).toBe(201);
    const again = await Promise.all([0, 1, 2].map(() => post(path, { author_name: 'Dana', message: 'Refund sent' }, 'reply-1')));
    for (const r of again) expect([r.status, r.json]).toEqual([201, first.json]);
    const conflict = await post(path, { message: 'Something else' }, 'reply-1');
    expect([conflict.status, conflict.json.error.code]).toEqual([409, 'idempotency_conflict']);
    const ticket = await call(t.base, 'GET', `/v1/sites/${f.serviceId}/tickets/${c.ticket.id}`, { key: f.sk.live });
    expect(ticket.json.messages.filter((m: Json) => m.author === 'agent').map((m: Json) => m.id)).toEqual([first.json.message.id]);
    // Another key makes another reply; no key at all makes one each time.
    expect((await post(path, { message: 'Refund sent', author_name: 'Dana' }, 'reply-2')).json.message.id).not.toBe(first.json.message.id);
    const plain = await Promise.all([0, 1].map(() => call(t.base, 'POST', path, { key: f.sk.live, body: { message: 'No key' } })));
    expect(new Set(plain.map((r) => r.json.message.id)).size).toBe(2);
  });

  it('a new key, a rotation, a site and a signing key are made once; their secrets are stored sealed', async () => {
    const key = await post('/v1/keys', { type: 'secret', name: 'deploy', scopes: ['read'] }, 'key-1');
    expect(key.status, key.text).toBe(201);
    expect((await post('/v1/keys', { type: 'secret', name: 'deploy', scopes: ['read'] }, 'key-1')).json).toEqual(key.json);
    const keys = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    expect(keys.json.keys.filter((k: Json) => k.name === 'deploy')).toHaveLength(1);

    const rotated = await post(`/v1/keys/${key.json.key.id}/rotate`, {}, 'rot-1');
    expect(rotated.status, rotated.text).toBe(201);
    expect((await post(`/v1/keys/${key.json.key.id}/rotate`, {}, 'rot-1')).json).toEqual(rotated.json);
    const ok = await call(t.base, 'GET', '/v1/sites', { key: rotated.json.key.secret });
    expect(ok.status).toBe(200);

    const siteBody = { service_id: 'idem-site', name: 'Idem', allowed_origins: ['https://idem.example'] };
    const site = await post('/v1/sites', siteBody, 'site-1');
    expect(site.status, site.text).toBe(201);
    expect((await post('/v1/sites', siteBody, 'site-1')).json).toEqual(site.json);
    const other = await post('/v1/sites', { ...siteBody, name: 'Other' }, 'site-1');
    expect([other.status, other.json.error.code]).toEqual([409, 'idempotency_conflict']);

    const sgk = await post('/v1/sites/idem-site/signing-keys', {}, 'sgk-1');
    expect(sgk.status, sgk.text).toBe(201);
    expect(sgk.json.private_key_pem).toMatch(/BEGIN PRIVATE KEY/);
    expect((await post('/v1/sites/idem-site/signing-keys', {}, 'sgk-1')).json).toEqual(sgk.json);
    expect((await call(t.base, 'GET', '/v1/sites/idem-site/signing-keys', { key: f.sk.live })).json.signing_keys).toHaveLength(1);

    const stored = storedResponses();
    for (const secret of [key.json.key.secret, rotated.json.key.secret, site.json.publishable_keys.live, sgk.json.private_key_pem.split('\n')[1]]) {
      expect(stored).not.toContain(secret);
    }
  });

  it("is the calling key's own: another secret key of the workspace with the same Idempotency-Key and body makes its own", async () => {
    const made = await post('/v1/keys', { type: 'secret', name: 'second admin', scopes: ['read', 'write', 'admin'] }, 'mint-a');
    const second = made.json.key.secret as string;
    const mine = await post('/v1/keys', { type: 'secret', name: 'shared words' }, 'same-key');
    const theirs = await post('/v1/keys', { type: 'secret', name: 'shared words' }, 'same-key', second);
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    expect(theirs.json.key.id).not.toBe(mine.json.key.id);
  });

  it('refuses a key of 0 or over 255 characters as 400 invalid_request, before any write', async () => {
    for (const bad of ['', 'k'.repeat(256)]) {
      const r = await call(t.base, 'POST', '/v1/keys', { key: f.sk.live, body: { type: 'secret', name: 'bad-idem' }, headers: idem(bad) });
      expect([r.status, r.json.error.code]).toEqual([400, 'invalid_request']);
    }
    const keys = await call(t.base, 'GET', '/v1/keys?limit=100', { key: f.sk.live });
    expect(keys.json.keys.filter((k: Json) => k.name === 'bad-idem')).toEqual([]);
  });
});
