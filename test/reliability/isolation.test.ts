// The isolation matrix: every route that takes an id, called with every other party's ids and keys.
// Each attempt must get the SPEC's code, never a 2xx, and leave the business tables as they were.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TestServer } from '../../server/src/test-helpers/harness.js';
import { counters, digest, expectEnvelope, noSecretsInLogsTest, reliabilityFile, send, watchLogs } from './support.js';
import { buildWorld, ENVS, roomyServer, userToken, type Env, type SiteFx, type TicketFx, type World, type WorkspaceFx } from './world.js';

reliabilityFile();

interface Attempt {
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  status: number;
  code: string;
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** The management routes that name something, aimed at `site` and its `ticket`, with a key id and a signing key id. */
function managementRoutes(site: SiteFx, ticket: TicketFx, keyId: string): Omit<Attempt, 'label' | 'headers' | 'status' | 'code'>[] {
  const s = `/v1/sites/${site.serviceId}`;
  return [
    { method: 'GET', path: s },
    { method: 'PATCH', path: s, body: { name: 'Taken over' } },
    { method: 'DELETE', path: s },
    { method: 'GET', path: `${s}/tickets` },
    { method: 'GET', path: `${s}/tickets?status=open` },
    { method: 'GET', path: `${s}/tickets/${ticket.id}` },
    { method: 'POST', path: `${s}/tickets/${ticket.id}/messages`, body: { message: 'Injected agent reply' } },
    { method: 'PATCH', path: `${s}/tickets/${ticket.id}`, body: { status: 'closed' } },
    { method: 'GET', path: `${s}/usage` },
    { method: 'GET', path: `${s}/signing-keys` },
    { method: 'POST', path: `${s}/signing-keys`, body: {} },
    { method: 'DELETE', path: `${s}/signing-keys/${site.signingKeyId}` },
    { method: 'DELETE', path: `/v1/keys/${keyId}` },
    { method: 'POST', path: `/v1/keys/${keyId}/rotate`, body: {} },
  ];
}

/** Management routes that name nothing (the caller's own workspace is implied). */
const OWN_MANAGEMENT_ROUTES: Omit<Attempt, 'label' | 'headers' | 'status' | 'code'>[] = [
  { method: 'GET', path: '/v1/sites' },
  { method: 'POST', path: '/v1/sites', body: { service_id: 'never-created-by-a-pk', name: 'X', allowed_origins: ['https://x.example'] } },
  { method: 'GET', path: '/v1/keys' },
  { method: 'POST', path: '/v1/keys', body: { type: 'secret', name: 'escalate', scopes: ['admin'] } },
];

/** The widget routes aimed at `site` and `ticket` (with `token` as the visitor token). */
function widgetRoutes(serviceId: string, ticketId: string, token: string | undefined): Omit<Attempt, 'label' | 'status' | 'code'>[] {
  const w = `/v1/widget/${serviceId}`;
  const vt: Record<string, string> = token ? { 'X-Visitor-Token': token } : {};
  return [
    { method: 'GET', path: `${w}/config`, headers: {} },
    { method: 'POST', path: `${w}/tickets`, headers: {}, body: { message: 'Planted ticket' } },
    { method: 'GET', path: `${w}/tickets/${ticketId}/messages`, headers: vt },
    { method: 'POST', path: `${w}/tickets/${ticketId}/messages`, headers: vt, body: { message: 'Planted message' } },
    { method: 'GET', path: `${w}/tickets/${ticketId}/events`, headers: vt },
  ];
}

const ticketRoutesOnly = (routes: ReturnType<typeof widgetRoutes>) => routes.filter((r) => r.path.includes('/tickets/'));

function buildAttempts(world: World): Attempt[] {
  const out: Attempt[] = [];
  const { sites, tickets, workspaces } = world;
  const ticketOf = (site: SiteFx, env: Env, visitor: 1 | 2 = 1) => tickets.find((t) => t.site === site && t.env === env && t.visitor === visitor)!;
  const keyOf = (ws: WorkspaceFx, env: Env) => world.keyIds.find((k) => k.ws === ws && k.env === env)!.id;

  // 1. A publishable key on management routes, aimed at its own site and at every other one.
  for (const attacker of sites) {
    for (const env of ENVS) {
      const pk = attacker.pk[env];
      for (const header of [bearer(pk), { 'X-API-Key': pk }]) {
        for (const r of OWN_MANAGEMENT_ROUTES) out.push({ ...r, label: `pk ${attacker.serviceId}/${env} on ${r.method} ${r.path}`, headers: header, status: 403, code: 'insufficient_scope' });
      }
      for (const target of sites) {
        for (const r of managementRoutes(target, ticketOf(target, env), keyOf(target.ws, env))) {
          out.push({ ...r, label: `pk ${attacker.serviceId}/${env} on ${r.method} ${r.path}`, headers: bearer(pk), status: 403, code: 'insufficient_scope' });
        }
      }
    }
  }

  // 2. Secret keys of every kind on widget routes, aimed at every site's tickets with a valid visitor token and origin.
  for (const ws of workspaces) {
    for (const env of ENVS) {
      const sks = [ws.sk[env], world.restrictedKey.get(ws)![env], ...(env === 'live' ? [world.readKey.get(ws)!] : [])];
      for (const sk of sks) {
        for (const target of sites) {
          const t = ticketOf(target, env);
          for (const [i, r] of widgetRoutes(target.serviceId, t.id, t.token).entries()) {
            // Alternate where the key travels: each place a widget route reads a key from.
            const inBody = i % 3 === 2 && r.method === 'POST';
            const place: Record<string, string> = inBody ? {} : i % 3 === 1 ? bearer(sk) : { 'X-Parley-Key': sk };
            const body = inBody ? { ...(r.body as object), api_key: sk } : r.body;
            const headers = { ...r.headers, ...place, Origin: target.origin };
            out.push({ ...r, body, headers, label: `sk ${ws.name}/${env} on ${r.method} ${r.path}`, status: 403, code: 'publishable_key_required' });
          }
        }
      }
    }
  }

  // 3. Site A's publishable key with site B's service id (and B's ticket, token and origin).
  for (const attacker of sites) {
    for (const env of ENVS) {
      for (const target of sites) {
        if (target === attacker) continue;
        for (const tenv of ENVS) {
          const t = ticketOf(target, tenv);
          for (const r of widgetRoutes(target.serviceId, t.id, t.token)) {
            out.push({
              ...r, headers: { ...r.headers, 'X-Parley-Key': attacker.pk[env], Origin: target.origin },
              label: `pk ${attacker.serviceId}/${env} on ${r.method} ${r.path}`, status: 403, code: 'site_mismatch',
            });
          }
        }
      }
    }
  }

  // 4. Site A's key and path with site B's ticket ids (B's visitor token, or A's own), same environment.
  for (const attacker of sites) {
    for (const env of ENVS) {
      const own = ticketOf(attacker, env);
      for (const t of tickets) {
        if (t.site === attacker || t.env !== env) continue;
        for (const token of [t.token, own.token]) {
          for (const r of ticketRoutesOnly(widgetRoutes(attacker.serviceId, t.id, token))) {
            out.push({
              ...r, headers: { ...r.headers, 'X-Parley-Key': attacker.pk[env], Origin: attacker.origin },
              label: `pk ${attacker.serviceId}/${env} on foreign ticket ${r.method} ${r.path}`, status: 404, code: 'not_found',
            });
          }
        }
      }
    }
  }

  // 5. Test keys on live tickets, and live keys on test tickets, of the same site with the right token.
  for (const site of sites) {
    for (const env of ENVS) {
      const other: Env = env === 'live' ? 'test' : 'live';
      for (const t of tickets.filter((x) => x.site === site && x.env === other)) {
        for (const r of ticketRoutesOnly(widgetRoutes(site.serviceId, t.id, t.token))) {
          out.push({
            ...r, headers: { ...r.headers, 'X-Parley-Key': site.pk[env], Origin: site.origin },
            label: `pk ${env} on ${other} ticket ${r.method} ${r.path}`, status: 404, code: 'not_found',
          });
        }
        // The secret key of the other environment on the management side too.
        for (const r of managementRoutes(site, t, keyOf(site.ws, other)).filter((m) => m.path.includes('/tickets/') || m.path.startsWith('/v1/keys/'))) {
          out.push({ ...r, headers: bearer(site.ws.sk[env]), label: `sk ${env} on ${other} ${r.method} ${r.path}`, status: 404, code: 'not_found' });
        }
      }
    }
  }

  // 6. Visitor 1's token on visitor 2's ticket and the reverse; no token at all.
  for (const site of sites) {
    for (const env of ENVS) {
      const one = ticketOf(site, env, 1);
      const two = ticketOf(site, env, 2);
      for (const [ticket, token] of [[two, one.token], [one, two.token], [one, undefined], [two, undefined]] as const) {
        for (const r of ticketRoutesOnly(widgetRoutes(site.serviceId, ticket.id, token))) {
          out.push({
            ...r, headers: { ...r.headers, 'X-Parley-Key': site.pk[env], Origin: site.origin },
            label: `visitor ${token ? 'token of the other visitor' : 'without token'} on ${r.method} ${r.path}`, status: 404, code: 'not_found',
          });
        }
      }
    }
  }

  // 8. A secret key restricted to the first site of its workspace, on every other site.
  for (const ws of workspaces) {
    for (const env of ENVS) {
      const key = world.restrictedKey.get(ws)![env];
      for (const target of sites) {
        if (target === ws.sites[0]) continue;
        for (const r of managementRoutes(target, ticketOf(target, env), keyOf(target.ws, env)).filter((m) => m.path.startsWith('/v1/sites/'))) {
          out.push({ ...r, headers: bearer(key), label: `restricted ${ws.name}/${env} on ${r.method} ${r.path}`, status: 403, code: 'site_mismatch' });
        }
        out.push({
          method: 'POST', path: '/v1/keys', headers: bearer(key), body: { type: 'publishable', name: 'escape', site: target.serviceId },
          label: `restricted ${ws.name}/${env} minting a key for ${target.serviceId}`, status: 403, code: 'site_mismatch',
        });
        out.push({
          method: 'POST', path: '/v1/keys', headers: bearer(key), body: { type: 'secret', name: 'escape', sites: [target.serviceId] },
          label: `restricted ${ws.name}/${env} minting a secret key for ${target.serviceId}`, status: 403, code: 'site_mismatch',
        });
      }
    }
  }

  // 9. A read key on every write, aimed at its own workspace.
  for (const ws of workspaces) {
    const key = world.readKey.get(ws)!;
    for (const target of ws.sites) {
      const writes = managementRoutes(target, ticketOf(target, 'live'), keyOf(ws, 'live')).filter((m) => m.method !== 'GET');
      for (const r of [...writes, ...OWN_MANAGEMENT_ROUTES.filter((m) => m.method !== 'GET' || m.path === '/v1/keys')]) {
        out.push({ ...r, headers: bearer(key), label: `read key on ${r.method} ${r.path}`, status: 403, code: 'insufficient_scope' });
      }
    }
  }

  // 10. A workspace's secret keys on the other workspace's sites, tickets, keys and signing keys.
  for (const ws of workspaces) {
    for (const env of ENVS) {
      for (const target of sites.filter((s) => s.ws !== ws)) {
        for (const r of managementRoutes(target, ticketOf(target, env), keyOf(target.ws, env))) {
          out.push({ ...r, headers: bearer(ws.sk[env]), label: `sk ${ws.name}/${env} on ${r.method} ${r.path}`, status: 404, code: 'not_found' });
        }
      }
      // Its own site in the path, but another site's ticket or signing key.
      const mine = ws.sites[0]!;
      for (const t of tickets.filter((x) => x.site !== mine && x.env === env)) {
        for (const r of managementRoutes(mine, t, keyOf(ws, env)).filter((m) => m.path.includes('/tickets/'))) {
          out.push({ ...r, headers: bearer(ws.sk[env]), label: `sk ${ws.name}/${env} via own site on ${r.method} ${r.path}`, status: 404, code: 'not_found' });
        }
      }
      for (const other of sites.filter((s) => s !== mine)) {
        out.push({
          method: 'DELETE', path: `/v1/sites/${mine.serviceId}/signing-keys/${other.signingKeyId}`, headers: bearer(ws.sk[env]),
          label: `sk ${ws.name}/${env} deleting ${other.serviceId}'s signing key via own site`, status: 404, code: 'not_found',
        });
      }
    }
  }
  return out;
}

describe('isolation matrix', () => {
  let srv: TestServer;
  let world: World;
  beforeAll(async () => {
    srv = await roomyServer();
    watchLogs(() => srv.logs);
    world = await buildWorld(srv);
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('every cross-party attempt gets the SPEC code, never a 2xx, and changes no row', async () => {
    const attempts = buildAttempts(world);
    expect(attempts.length).toBeGreaterThan(1000);
    const wrong: string[] = [];
    let before = digest(srv.ctx.db);
    let digestMs = 0;
    const started = Date.now();
    for (const a of attempts) {
      const r = await send(srv.base, a.method, a.path, { headers: a.headers, body: a.body });
      const t0 = performance.now();
      const after = digest(srv.ctx.db);
      digestMs += performance.now() - t0;
      if (r.status >= 200 && r.status < 300) counters.crossReads++;
      const code = r.json?.error?.code;
      if (r.status !== a.status || code !== a.code) wrong.push(`${a.label}: expected ${a.status} ${a.code}, got ${r.status} ${code ?? r.text.slice(0, 80)}`);
      else expectEnvelope(r, a.label);
      if (before !== after) wrong.push(`${a.label}: changed the database (answered ${r.status})`);
      before = after;
    }
    console.log(`isolation: ${attempts.length} attempts in ${Date.now() - started} ms (digests ${digestMs.toFixed(0)} ms)`);
    expect(wrong.slice(0, 40), `${wrong.length} of ${attempts.length} attempts went wrong`).toEqual([]);
  });

  test('lists show only the caller\'s own workspace, environment, site and user', async () => {
    const leaks: string[] = [];
    for (const ws of world.workspaces) {
      const own = new Set(ws.sites.map((s) => s.serviceId));
      for (const env of ENVS) {
        const sitesList = await send(srv.base, 'GET', '/v1/sites?limit=100', { headers: bearer(ws.sk[env]) });
        expect(sitesList.status).toBe(200);
        for (const s of sitesList.json.sites as { service_id: string }[]) if (!own.has(s.service_id)) leaks.push(`${ws.name} lists site ${s.service_id}`);
        const keys = await send(srv.base, 'GET', '/v1/keys?limit=100', { headers: bearer(ws.sk[env]) });
        expect(keys.status).toBe(200);
        for (const k of keys.json.keys as { environment: string; site: string | null; secret?: string }[]) {
          if (k.environment !== env) leaks.push(`${ws.name}/${env} lists a ${k.environment} key`);
          if (k.site && !own.has(k.site)) leaks.push(`${ws.name} lists a key of ${k.site}`);
          if (k.secret !== undefined) leaks.push(`${ws.name} key listing shows a plaintext`);
        }
        // The restricted key sees its one site only.
        const restricted = await send(srv.base, 'GET', '/v1/sites?limit=100', { headers: bearer(world.restrictedKey.get(ws)![env]) });
        expect(restricted.status).toBe(200);
        const seen = (restricted.json.sites as { service_id: string }[]).map((s) => s.service_id);
        if (seen.some((s) => s !== ws.sites[0]!.serviceId)) leaks.push(`restricted key of ${ws.name} lists ${seen.join(', ')}`);
        for (const site of ws.sites) {
          const list = await send(srv.base, 'GET', `/v1/sites/${site.serviceId}/tickets?limit=100`, { headers: bearer(ws.sk[env]) });
          expect(list.status).toBe(200);
          const expected = new Set(world.tickets.filter((t) => t.site === site && t.env === env).map((t) => t.id));
          for (const t of list.json.tickets as { id: string; environment: string }[]) {
            if (!expected.has(t.id)) leaks.push(`${site.serviceId}/${env} lists ticket ${t.id} of someone else`);
          }
        }
      }
    }
    counters.crossReads += leaks.length;
    expect(leaks).toEqual([]);
  });


  // Signed-in users (SPEC 6a): depends on user-token verification and the user ticket list.
  test('signed-in users see only their own tickets; a user token works on its own site only', async () => {
    const wrong: string[] = [];
    for (const site of world.sites) {
      for (const other of world.sites) {
        if (other === site) continue;
        for (const env of ENVS) {
          const tok = await userToken(other, `user-${other.serviceId}-${env}`);
          // Another site's user on this site's list, with this site's key: the token is not this site's.
          const r = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets`, { headers: { 'X-Parley-Key': site.pk[env], Origin: site.origin, 'X-User-Token': tok } });
          if (r.status >= 200 && r.status < 300) counters.crossReads++;
          if (r.status !== 401 || r.json?.error?.code !== 'invalid_user_token') wrong.push(`user of ${other.serviceId} on ${site.serviceId}/${env}: ${r.status} ${r.text.slice(0, 100)}`);
          // This site's user token with another site's key and path: the key decides (site_mismatch).
          const m = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets`, {
            headers: { 'X-Parley-Key': other.pk[env], Origin: site.origin, 'X-User-Token': await userToken(site, `user-${site.serviceId}-${env}`) },
          });
          if (m.status >= 200 && m.status < 300) counters.crossReads++;
          if (m.status !== 403 || m.json?.error?.code !== 'site_mismatch') wrong.push(`key of ${other.serviceId} on ${site.serviceId}'s user list: ${m.status}`);
        }
      }
    }
    const leaks: string[] = [];
    for (const site of world.sites) {
      for (const env of ENVS) {
        // A signed-in user's list: their own tickets of this site and environment only.
        for (const t of world.tickets.filter((x) => x.site === site && x.visitor === 2)) {
          const mine = await send(srv.base, 'GET', `/v1/widget/${site.serviceId}/tickets`, {
            headers: { 'X-Parley-Key': site.pk[env], Origin: site.origin, 'X-User-Token': await userToken(site, t.userId!) },
          });
          expect(mine.status).toBe(200);
          const items = mine.json.tickets as { ticket: { id: string } }[];
          for (const item of items) {
            if (item.ticket.id !== t.id || t.env !== env) leaks.push(`user ${t.userId} with the ${env} key sees ticket ${item.ticket.id}`);
          }
          if (t.env === env && !items.some((i) => i.ticket.id === t.id)) wrong.push(`user ${t.userId} does not see their own ticket`);
        }
      }
    }
    counters.crossReads += leaks.length;
    expect(wrong.slice(0, 40)).toEqual([]);
    expect(leaks).toEqual([]);
  });

  test('a guessed ticket id (right shape, never issued) is 404 on every ticket route', async () => {
    const site = world.sites[0]!;
    const t = world.tickets.find((x) => x.site === site && x.env === 'live')!;
    const guess = `tkt_${Buffer.from(t.id.slice(4), 'base64url').reverse().toString('base64url')}`;
    for (const r of ticketRoutesOnly(widgetRoutes(site.serviceId, guess, t.token))) {
      const res = await send(srv.base, r.method, r.path, { headers: { ...r.headers, 'X-Parley-Key': site.pk.live, Origin: site.origin }, body: r.body });
      expect(res.status, `${r.method} ${r.path}`).toBe(404);
      expectEnvelope(res);
    }
    const res = await send(srv.base, 'GET', `/v1/sites/${site.serviceId}/tickets/${guess}`, { headers: bearer(site.ws.sk.live) });
    expect(res.status).toBe(404);
  });

  noSecretsInLogsTest();
});
