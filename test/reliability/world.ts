// Parties for the isolation and property tests: workspaces with sites, keys of every kind, and
// tickets made by visitors through the widget API, all on one harness server.
import type { CreateSiteBody } from '@parley/shared';
import { importPKCS8, SignJWT } from 'jose';
import { createSite, createWorkspace } from '../../server/src/services/provisioning.js';
import { startTestServer, type TestServer } from '../../server/src/test-helpers/harness.js';
import { rememberSecret, send, type Reply } from './support.js';

export type Env = 'live' | 'test';
export const ENVS: readonly Env[] = ['live', 'test'];

export interface WorkspaceFx {
  name: string;
  id: string;
  /** The two all-scope keys minted with the workspace. */
  sk: Record<Env, string>;
  sites: SiteFx[];
}

export interface SiteFx {
  ws: WorkspaceFx;
  serviceId: string;
  rowId: number;
  origin: string;
  pk: Record<Env, string>;
  /** A signing key of the site and the private key to sign user tokens with. */
  signingKeyId: string;
  privateKeyPem: string;
}

export interface TicketFx {
  site: SiteFx;
  env: Env;
  visitor: 1 | 2;
  id: string;
  token: string;
  /** Visitor 2 is signed in: its ticket belongs to this user id. */
  userId: string | null;
}

let sites = 0;
/** A site id unique across the run (service ids are unique across the server). */
export function newServiceId(tag: string): string {
  return `${tag}-${process.pid}-${++sites}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Site settings that keep limits out of the way of tests about something else. */
export const ROOMY: Partial<CreateSiteBody> = { rate_limit_per_minute: 100_000, daily_spend_cap_micros: 1_000_000_000 };

/** A workspace with `siteCount` sites, made directly in the database (the API is not under test here). */
export function makeWorkspace(srv: TestServer, name: string, siteCount: number, site: Partial<CreateSiteBody> = ROOMY): WorkspaceFx {
  const now = srv.ctx.clock();
  const made = createWorkspace(srv.ctx.db, name, now);
  const ws: WorkspaceFx = { name, id: made.workspace.id, sk: { live: made.keys.live.secret, test: made.keys.test.secret }, sites: [] };
  rememberSecret(ws.sk.live);
  rememberSecret(ws.sk.test);
  for (let i = 0; i < siteCount; i++) {
    const serviceId = newServiceId(name.toLowerCase());
    const origin = `https://${serviceId}.example`;
    const s = createSite(srv.ctx.db, ws.id, { service_id: serviceId, name: `${name} site ${i + 1}`, allowed_origins: [origin], ...site }, now);
    rememberSecret(s.keys.live.secret);
    rememberSecret(s.keys.test.secret);
    ws.sites.push({
      ws, serviceId, rowId: s.site.id, origin, pk: { live: s.keys.live.secret, test: s.keys.test.secret }, signingKeyId: '', privateKeyPem: '',
    });
  }
  return ws;
}

/** Widget headers of a site: its key, its origin, and a visitor token when given. */
export function widgetHeaders(site: SiteFx, env: Env, token?: string): Record<string, string> {
  return { 'X-Parley-Key': site.pk[env], Origin: site.origin, ...(token ? { 'X-Visitor-Token': token } : {}) };
}

/** Creates a ticket through the widget API and fails loudly when that does not work. */
export async function openTicket(base: string, site: SiteFx, env: Env, message: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  const r = await send(base, 'POST', `/v1/widget/${site.serviceId}/tickets`, { headers: widgetHeaders(site, env), body: { message, ...extra } });
  if (r.status !== 201) throw new Error(`creating a ticket on ${site.serviceId} (${env}) answered ${r.status}: ${r.text.slice(0, 300)}`);
  return r;
}

/** Gives the site a server-made signing key (management API) so its visitors can sign in. */
export async function addSigningKey(base: string, site: SiteFx): Promise<void> {
  const r = await send(base, 'POST', `/v1/sites/${site.serviceId}/signing-keys`, { headers: { Authorization: `Bearer ${site.ws.sk.live}` }, body: {} });
  if (r.status !== 201) throw new Error(`making a signing key answered ${r.status}: ${r.text.slice(0, 300)}`);
  site.signingKeyId = r.json.signing_key.id;
  site.privateKeyPem = r.json.private_key_pem;
}

/** A user token of SPEC 6a signed with the site's signing key. */
export async function userToken(site: SiteFx, sub: string): Promise<string> {
  const key = await importPKCS8(site.privateKeyPem, 'ES256');
  const token = await new SignJWT({ name: `User ${sub}` })
    .setProtectedHeader({ alg: 'ES256', kid: site.signingKeyId })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(key);
  rememberSecret(token);
  return token;
}

export interface World {
  srv: TestServer;
  workspaces: WorkspaceFx[];
  sites: SiteFx[];
  tickets: TicketFx[];
  /** Per workspace: a live key with only `read`, and live/test keys restricted to the first site. */
  readKey: Map<WorkspaceFx, string>;
  restrictedKey: Map<WorkspaceFx, Record<Env, string>>;
  /** Ids of keys by owner, for the key routes. */
  keyIds: { ws: WorkspaceFx; env: Env; id: string }[];
}

async function mintByApi(base: string, sk: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const r = await send(base, 'POST', '/v1/keys', { headers: { Authorization: `Bearer ${sk}` }, body });
  if (r.status !== 201) throw new Error(`POST /v1/keys ${JSON.stringify(body)} answered ${r.status}: ${r.text.slice(0, 300)}`);
  return { id: r.json.key.id, secret: r.json.key.secret };
}

/** Two workspaces, two sites each, both environments, two visitors per site and environment. */
export async function buildWorld(srv: TestServer): Promise<World> {
  const workspaces = [makeWorkspace(srv, 'Alpha', 2), makeWorkspace(srv, 'Bravo', 2)];
  const world: World = { srv, workspaces, sites: workspaces.flatMap((w) => w.sites), tickets: [], readKey: new Map(), restrictedKey: new Map(), keyIds: [] };
  for (const site of world.sites) await addSigningKey(srv.base, site);
  for (const ws of workspaces) {
    world.readKey.set(ws, (await mintByApi(srv.base, ws.sk.live, { type: 'secret', name: 'reader', scopes: ['read'] })).secret);
    const first = ws.sites[0]!.serviceId;
    const live = await mintByApi(srv.base, ws.sk.live, { type: 'secret', name: 'one site', scopes: ['read', 'write', 'admin'], sites: [first] });
    const test = await mintByApi(srv.base, ws.sk.test, { type: 'secret', name: 'one site', scopes: ['read', 'write', 'admin'], sites: [first] });
    world.restrictedKey.set(ws, { live: live.secret, test: test.secret });
    // Spare keys that attackers try to revoke and rotate.
    for (const env of ENVS) world.keyIds.push({ ws, env, id: (await mintByApi(srv.base, ws.sk[env], { type: 'secret', name: 'spare', scopes: ['read'] })).id });
  }
  for (const site of world.sites) {
    for (const env of ENVS) {
      const one = await openTicket(srv.base, site, env, `Hello from visitor 1 of ${site.serviceId} (${env})`);
      world.tickets.push({ site, env, visitor: 1, id: one.json.ticket.id, token: one.json.visitor_token, userId: null });
      const userId = `user-${site.serviceId}-${env}`;
      const two = await openTicket(srv.base, site, env, `Hello from visitor 2 of ${site.serviceId} (${env})`, {
        user_token: await userToken(site, userId),
      });
      world.tickets.push({ site, env, visitor: 2, id: two.json.ticket.id, token: two.json.visitor_token, userId });
      // An agent has answered each ticket, so reads have something to leak.
      const reply = await send(srv.base, 'POST', `/v1/sites/${site.serviceId}/tickets/${two.json.ticket.id}/messages`, {
        headers: { Authorization: `Bearer ${site.ws.sk[env]}` },
        body: { message: `Agent answer on ${site.serviceId} (${env})` },
      });
      if (reply.status !== 201) throw new Error(`agent reply answered ${reply.status}: ${reply.text.slice(0, 300)}`);
    }
  }
  return world;
}

/** A harness server with limits lifted out of the way of isolation and property tests. */
export function roomyServer(): Promise<TestServer> {
  return startTestServer({ limits: { managementRatePerMinute: 1_000_000 } });
}
