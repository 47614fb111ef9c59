// Widget requests admit on sites and keys cached in memory (db/admission.ts). Whoever changes one
// (the management API on the server's own connection, another connection to the same file as a
// second worker or the CLI has, the CLI itself in its own process), the very next request must
// see the change. Each test warms the cache with a request first, so a stale row would be used.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openDatabase, type DB } from '../db/open.js';
import { findSiteByServiceId, updateSite } from '../db/sites.js';
import { findKeyByHash, revokeKey } from '../db/keys.js';
import { createSite } from '../services/provisioning.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { exitWithin, parley, requireBuild } from '../test-helpers/spawn.js';
import { createTicket, visitor } from '../test-helpers/widget.js';
import { sha256 } from '../util.js';

let t: TestServer;
let fx: Fixture;
/** A second connection to the server's database file: what another worker or the CLI holds. */
let other: DB;

beforeEach(async () => {
  t = await startTestServer();
  fx = seed(t.ctx);
  other = openDatabase(t.dbPath);
});
afterEach(async () => {
  other.close();
  await t.close();
});

const config = () => visitor(t.base, fx, 'GET', '/config');
async function warm(): Promise<void> {
  // Twice: the first request may read the rows, the second surely runs on cached ones.
  for (let i = 0; i < 2; i++) expect((await config()).status).toBe(200);
}
function changeSite(db: DB, change: (row: ReturnType<typeof findSiteByServiceId> & object) => void): void {
  const row = findSiteByServiceId(db, fx.serviceId)!;
  change(row);
  updateSite(db, row);
}
const generation = (db: Database.Database) => (db.prepare('SELECT n FROM admission_generation').get() as { n: number }).n;

describe('admission cache: a change made elsewhere applies to the next request', () => {
  it('a key revoked on another connection is refused at once', async () => {
    await warm();
    // The server reads its own clock (the harness's, which stands still): revoke by that one.
    revokeKey(other, findKeyByHash(other, sha256(fx.pk.live))!.id, t.clock.now - 1);
    const r = await config();
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('invalid_api_key');
    // Writes are refused too, and nothing is written.
    const w = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'after revoke' } });
    expect(w.status).toBe(401);
    expect((other.prepare('SELECT COUNT(*) AS n FROM tickets').get() as { n: number }).n).toBe(0);
  });

  it('an origin removed on another connection is 403 without CORS headers, and its preflight too', async () => {
    const { visitor_token, ticket } = await createTicket(t.base, fx);
    await warm();
    changeSite(other, (row) => (row.allowed_origins = JSON.stringify(['https://elsewhere.example'])));
    for (const r of [
      await config(),
      await visitor(t.base, fx, 'POST', `/tickets/${ticket.id}/messages`, { body: { message: 'hi' }, headers: { 'X-Visitor-Token': visitor_token } }),
    ]) {
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe('origin_not_allowed');
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      expect(r.headers.get('access-control-expose-headers')).toBeNull();
    }
    const pre = await call(t.base, 'OPTIONS', `/v1/widget/${fx.serviceId}/config`, {
      origin: fx.origin, headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-parley-key' },
    });
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect((other.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n).toBe(1);
  });

  it('an origin added on another connection is allowed at once, preflight included', async () => {
    const added = 'https://new.example';
    const before = await visitor(t.base, fx, 'GET', '/config', { origin: added });
    expect(before.status).toBe(403);
    await warm();
    changeSite(other, (row) => (row.allowed_origins = JSON.stringify([fx.origin, added])));
    const pre = await call(t.base, 'OPTIONS', `/v1/widget/${fx.serviceId}/config`, {
      origin: added, headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-parley-key' },
    });
    expect(pre.status).toBe(204);
    const r = await visitor(t.base, fx, 'GET', '/config', { origin: added });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(added);
  });

  it('a new rate limit set on another connection governs the next requests', async () => {
    await warm();
    changeSite(other, (row) => (row.rate_limit_per_minute = 3));
    const first = await config();
    expect(first.headers.get('x-ratelimit-limit')).toBe('3');
    const codes = [first.status];
    for (let i = 0; i < 4; i++) codes.push((await config()).status);
    // At the old 120 a minute all five pass; at 3 a minute the burst is spent within them.
    expect(codes).toContain(429);
  });

  it('widget settings changed on another connection show in the next config', async () => {
    await warm();
    changeSite(other, (row) => (row.widget = JSON.stringify({ ...JSON.parse(row.widget), greeting: 'Changed elsewhere' })));
    expect((await config()).json.widget.greeting).toBe('Changed elsewhere');
  });

  it('a site deleted and made again with the same service id: the old key is refused, the new one works', async () => {
    await warm();
    const row = findSiteByServiceId(other, fx.serviceId)!;
    other.prepare('DELETE FROM sites WHERE id = ?').run(row.id);
    const again = createSite(other, fx.workspaceId, { service_id: fx.serviceId, name: 'Again', allowed_origins: [fx.origin] }, Date.now());
    const old = await config();
    expect(old.status).toBe(401);
    const fresh = await visitor(t.base, fx, 'GET', '/config', { key: again.keys.live.secret });
    expect(fresh.status).toBe(200);
    expect(fresh.json.site.name).toBe('Again');
  });

  it('changes through the management API apply to the next widget request', async () => {
    await warm();
    const p = await call(t.base, 'PATCH', `/v1/sites/${fx.serviceId}`, { key: fx.sk.live, body: { widget: { greeting: 'Via API' } } });
    expect(p.status).toBe(200);
    expect((await config()).json.widget.greeting).toBe('Via API');
    const id = findKeyByHash(t.ctx.db, sha256(fx.pk.live))!.id;
    expect((await call(t.base, 'DELETE', `/v1/keys/${id}`, { key: fx.sk.live })).status).toBe(200);
    expect((await config()).status).toBe(401);
  });

  it('a key revoked by the CLI in its own process is refused at once', async () => {
    requireBuild();
    await warm();
    const id = findKeyByHash(t.ctx.db, sha256(fx.pk.live))!.id;
    const cli = parley(['key', 'revoke', id, '--workspace', fx.workspaceId, '--db', t.dbPath, '--json']);
    const exit = await exitWithin(cli, 20_000);
    expect(exit.code, exit.stderr).toBe(0);
    // The CLI revokes at the real time, which the server's standing clock has not reached yet.
    t.clock.set(Date.now() + 1000);
    expect((await config()).status).toBe(401);
  });
});

describe('admission cache: refusals decided before any transaction confirmed the cached rows', () => {
  const headersOf = (r: { headers: Headers }) => ({
    acao: r.headers.get('access-control-allow-origin'),
    policy: r.headers.get('ratelimit-policy'),
  });

  it('an origin removed elsewhere: a refusal of the body rules, the key or the route has no CORS headers, and the new limit', async () => {
    await warm();
    changeSite(other, (row) => {
      row.allowed_origins = JSON.stringify(['https://elsewhere.example']);
      row.rate_limit_per_minute = 7;
    });
    const json = { 'Content-Type': 'application/json' };
    const refusals = [
      () => call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: fx.origin }), // no key
      () => visitor(t.base, fx, 'POST', '/tickets', { rawBody: 'x', headers: { 'Content-Type': 'text/plain' } }), // 415
      () => visitor(t.base, fx, 'POST', '/tickets', { rawBody: '{', headers: json }), // invalid_json
      () => visitor(t.base, fx, 'GET', '/config', { headers: { Authorization: `Bearer ${fx.pk.test}` } }), // two keys
      () => visitor(t.base, fx, 'GET', '/nothing'), // no such route
    ];
    for (const refuse of refusals) {
      const r = await refuse();
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(headersOf(r), `${r.status} ${r.text}`).toEqual({ acao: null, policy: '"site";q=7;w=60' });
    }
  });

  it('a site deleted elsewhere gets no rate-limit or CORS headers; made again, the new one speaks', async () => {
    await warm();
    other.prepare('DELETE FROM sites WHERE service_id = ?').run(fx.serviceId);
    const gone = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: fx.origin });
    expect([gone.status, headersOf(gone)]).toEqual([401, { acao: null, policy: null }]);
    createSite(other, fx.workspaceId, { service_id: fx.serviceId, name: 'Again', allowed_origins: ['https://c.example'], rate_limit_per_minute: 11 }, Date.now());
    const again = await call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: fx.origin });
    expect(headersOf(again)).toEqual({ acao: null, policy: '"site";q=11;w=60' });
  });

  it('a secret key revoked after it was refused once is 401 the next time, and not marked exposed after its revocation', async () => {
    const secret = () => call(t.base, 'GET', `/v1/widget/${fx.serviceId}/config`, { origin: fx.origin, headers: { Authorization: `Bearer ${fx.sk.live}` } });
    expect((await secret()).json.error.code).toBe('publishable_key_required');
    const id = findKeyByHash(other, sha256(fx.sk.live))!.id;
    other.prepare('UPDATE api_keys SET exposed_at = NULL WHERE id = ?').run(id);
    revokeKey(other, id, t.clock.now - 1);
    const r = await secret();
    expect([r.status, r.json.error.code]).toEqual([401, 'invalid_api_key']);
    expect(findKeyByHash(other, sha256(fx.sk.live))!.exposed_at).toBeNull();
  });

  it('a key, site or origin refusal decided on the re-check inside the transaction is not counted', async () => {
    const { visitor_token, ticket } = await createTicket(t.base, fx);
    await warm();
    changeSite(other, (row) => (row.allowed_origins = JSON.stringify(['https://elsewhere.example'])));
    const r = await visitor(t.base, fx, 'POST', `/tickets/${ticket.id}/messages`, { body: { message: 'hi' }, headers: { 'X-Visitor-Token': visitor_token } });
    expect(r.json.error.code).toBe('origin_not_allowed');
    changeSite(other, (row) => (row.allowed_origins = JSON.stringify([fx.origin])));
    await warm();
    revokeKey(other, findKeyByHash(other, sha256(fx.pk.live))!.id, t.clock.now - 1);
    expect((await config()).json.error.code).toBe('invalid_api_key');
    expect(other.prepare('SELECT code, count FROM refusals').all()).toEqual([]);
  });
});

describe('admission generation', () => {
  it('moves on every change to a site and to what verifies a key, not on key use', () => {
    const db = other;
    const key = findKeyByHash(db, sha256(fx.pk.live))!;
    let g = generation(db);
    const moved = (sql: string, ...args: unknown[]) => {
      db.prepare(sql).run(...args);
      const now = generation(db);
      const did = now !== g;
      g = now;
      return did;
    };
    expect(moved('UPDATE api_keys SET last_used_at = ? WHERE id = ?', Date.now(), key.id)).toBe(false);
    expect(moved('UPDATE api_keys SET exposed_at = ? WHERE id = ?', Date.now(), key.id)).toBe(false);
    expect(moved('UPDATE api_keys SET expires_at = ? WHERE id = ?', Date.now() + 1e9, key.id)).toBe(true);
    expect(moved('UPDATE api_keys SET scopes = ? WHERE id = ?', '["write"]', key.id)).toBe(true);
    expect(moved('UPDATE api_keys SET revoked_at = ? WHERE id = ?', Date.now() + 1e9, key.id)).toBe(true);
    expect(moved('UPDATE sites SET name = ? WHERE service_id = ?', 'Renamed', fx.serviceId)).toBe(true);
    expect(moved('UPDATE sites SET allow_server_requests = 1 WHERE service_id = ?', fx.serviceId)).toBe(true);
    expect(moved('DELETE FROM api_keys WHERE id = ?', key.id)).toBe(true);
    seed(t.ctx);
    expect(generation(db)).not.toBe(g);
  });
});
