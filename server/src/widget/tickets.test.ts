// Widget ticket routes (SPEC section 6): config, creating a ticket with its visitor token, reading
// and posting messages; 404 for every ticket that is not this visitor's, in this site and
// environment; bounds of every field; messages stored verbatim; a closed ticket reopened.
import { CreateTicketResponse, MessagesResponse, MessageResponse, WidgetConfigResponse } from '@parley/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTicketById, insertMessage, setTicketStatus } from '../db/tickets.js';
import { call, seed, startTestServer, type Fixture, type TestServer } from '../test-helpers/harness.js';
import { createTicket, visitor, widgetState } from '../test-helpers/widget.js';
import { newId, sha256 } from '../util.js';

let t: TestServer;
let fx: Fixture;
beforeAll(async () => {
  t = await startTestServer();
  fx = seed(t.ctx, { rate_limit_per_minute: 10_000, widget: { greeting: 'Hello there', color: '#112233' } });
});
afterAll(async () => {
  await t.close();
});

const withToken = (token: string) => ({ headers: { 'X-Visitor-Token': token } });

describe('GET /config', () => {
  it('returns the site name and the widget settings', async () => {
    const r = await visitor(t.base, fx, 'GET', '/config');
    expect(r.status).toBe(200);
    expect(WidgetConfigResponse.strict().parse(r.json)).toEqual({
      site: { service_id: fx.serviceId, name: 'Acme Help' },
      widget: { greeting: 'Hello there', color: '#112233', position: 'bottom-right', require_identity: false },
    });
  });
});

describe('POST /tickets', () => {
  it('creates the ticket and its first message and returns a visitor token stored only as a hash', async () => {
    const r = await visitor(t.base, fx, 'POST', '/tickets', {
      body: {
        message: '  My order is late  ',
        visitor: { name: 'Ann', email: 'ann@example.org' },
        page_url: 'https://shop.example/orders/7',
        metadata: { plan: 'pro', cart: '3 items' },
      },
    });
    expect(r.status, r.text).toBe(201);
    const body = CreateTicketResponse.parse(r.json);
    expect(body.ticket).toMatchObject({
      status: 'open', environment: 'live', visitor: { name: 'Ann', email: 'ann@example.org' }, user: null,
      page_url: 'https://shop.example/orders/7', metadata: { plan: 'pro', cart: '3 items' },
    });
    expect(body.ticket.id).toMatch(/^tkt_[A-Za-z0-9_-]{22,}$/);
    expect(body.messages).toHaveLength(1);
    expect(body.messages[0]).toMatchObject({ ticket_id: body.ticket.id, author: 'visitor', author_name: null, body: 'My order is late' });
    expect(body.messages[0]!.id).toMatch(/^msg_[A-Za-z0-9_-]{22,}$/);
    expect(body.visitor_token).toMatch(/^vt_[A-Za-z0-9_-]{43}$/);
    const row = findTicketById(t.ctx.db, body.ticket.id)!;
    expect(row.visitor_token_hash.equals(sha256(body.visitor_token))).toBe(true);
    const dump = JSON.stringify(t.ctx.db.prepare('SELECT * FROM tickets').all()) + JSON.stringify(t.ctx.db.prepare('SELECT * FROM idempotency').all());
    expect(dump).not.toContain(body.visitor_token);
  });

  it('fields left out are null, never missing', async () => {
    const { ticket } = await createTicket(t.base, fx, { message: 'hi' });
    expect(ticket).toMatchObject({ visitor: { name: null, email: null }, user: null, page_url: null, metadata: null });
  });

  it('takes null for an optional field as left out, so a proxy may echo the response shape back', async () => {
    const echoed = { message: 'hi', visitor: { name: null, email: null }, page_url: null, metadata: null };
    const { ticket } = await createTicket(t.base, fx, echoed);
    expect(ticket).toMatchObject({ visitor: { name: null, email: null }, page_url: null, metadata: null });
    const bare = await createTicket(t.base, fx, { message: 'hi', visitor: null });
    expect(bare.ticket.visitor).toEqual({ name: null, email: null });
    const some = await createTicket(t.base, fx, { message: 'hi', visitor: { name: 'Ada', email: null } });
    expect(some.ticket.visitor).toEqual({ name: 'Ada', email: null });
    // null is no value, not a value of another type: the message itself is still required.
    expect((await visitor(t.base, fx, 'POST', '/tickets', { body: { message: null } })).status).toBe(400);
  });

  it('stores and returns message bodies verbatim: no HTML processing', async () => {
    const hostile = '<img src=x onerror=alert(1)> &amp; <script>alert("x")</script>\n\u2028 «ünïcødé» 🎉';
    const created = await createTicket(t.base, fx, { message: hostile });
    expect(created.messages[0]!.body).toBe(hostile);
    const read = await visitor(t.base, fx, 'GET', `/tickets/${created.ticket.id}/messages`, withToken(created.visitor_token));
    expect(read.json.messages[0].body).toBe(hostile);
    expect(read.headers.get('content-type')).toMatch(/^application\/json/);
  });

  const cases: [string, Record<string, unknown>, string][] = [
    ['no message', {}, 'message'],
    ['an empty message', { message: '' }, 'message'],
    ['a message of spaces', { message: '   \n\t ' }, 'message'],
    ['a message of invisible characters only', { message: '\u200B\u200F\uFEFF\u2060\u0000 \u00AD' }, 'message'],
    ['a message over 5,000 characters', { message: 'x'.repeat(5001) }, 'message'],
    ['a message that is not a string', { message: 42 }, 'message'],
    ['a visitor name over 100', { message: 'x', visitor: { name: 'n'.repeat(101) } }, 'visitor.name'],
    ['a bad email', { message: 'x', visitor: { email: 'not-an-email' } }, 'visitor.email'],
    ['an email over 254', { message: 'x', visitor: { email: `${'a'.repeat(250)}@example.org` } }, 'visitor.email'],
    ['a page_url that is not http(s)', { message: 'x', page_url: 'javascript:alert(1)' }, 'page_url'],
    ['a page_url over 2,048', { message: 'x', page_url: `https://a.example/${'p'.repeat(2040)}` }, 'page_url'],
    ['21 metadata keys', { message: 'x', metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, 'metadata'],
    ['a metadata key over 40', { message: 'x', metadata: { ['k'.repeat(41)]: 'v' } }, 'metadata'],
    ['a metadata value over 500', { message: 'x', metadata: { k: 'v'.repeat(501) } }, 'metadata.k'],
    ['a metadata value that is not a string', { message: 'x', metadata: { k: 1 } }, 'metadata.k'],
    ['an unknown field', { message: 'x', admin: true }, ''],
    ['an array body', [], ''],
  ];
  it.each(cases)('%s is 400 invalid_request with issues', async (_name, body, path) => {
    const r = await visitor(t.base, fx, 'POST', '/tickets', { body });
    expect(r.status, r.text).toBe(400);
    expect(r.json.error.code).toBe('invalid_request');
    expect(r.json.error.issues.length).toBeGreaterThan(0);
    if (path) expect(r.json.error.issues.some((i: { path: string }) => i.path === path || i.path.startsWith(`${path}.`)), r.text).toBe(true);
  });

  it('accepts the bounds themselves', async () => {
    const r = await visitor(t.base, fx, 'POST', '/tickets', {
      body: {
        message: 'x'.repeat(5000),
        visitor: { name: 'n'.repeat(100) },
        page_url: `https://a.example/${'p'.repeat(2048 - 'https://a.example/'.length)}`,
        metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${'k'.repeat(38)}${String(i).padStart(2, '0')}`, 'v'.repeat(500)])),
      },
    });
    expect(r.status, r.text).toBe(201);
  });

  it('refuses a metadata key __proto__ by name instead of silently storing the metadata without it', async () => {
    const before = widgetState(t.ctx.db);
    for (const value of ['"v"', '5']) {
      const r = await visitor(t.base, fx, 'POST', '/tickets', {
        rawBody: `{"message":"x","metadata":{"plan":"pro","__proto__":${value}}}`, headers: { 'Content-Type': 'application/json' },
      });
      expect(r.status, r.text).toBe(400);
      expect(r.json.error.issues[0]).toMatchObject({ path: 'metadata.__proto__' });
    }
    expect(widgetState(t.ctx.db).tickets).toEqual(before.tickets);
  });

  it('counts characters as a reader does: an accented letter or an emoji with its modifiers is one', async () => {
    const decomposed = 'e\u0301'; // é as e + combining acute: two code points, one character
    const thumb = '👍🏽'; // four UTF-16 units
    const family = '👩‍👩‍👧‍👦'; // seven code points joined by ZWJ
    const ok = await visitor(t.base, fx, 'POST', '/tickets', {
      body: { message: decomposed.repeat(5000), visitor: { name: family.repeat(100) } },
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.json.messages[0].body).toBe(decomposed.repeat(5000));
    expect((await visitor(t.base, fx, 'POST', '/tickets', { body: { message: thumb.repeat(3000) } })).status).toBe(201);
    const over = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: decomposed.repeat(5001) } });
    expect(over.status).toBe(400);
    expect(over.json.error.issues[0]).toMatchObject({ path: 'message', message: 'must be at most 5000 characters' });
    const name = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x', visitor: { name: family.repeat(101) } } });
    expect(name.status).toBe(400);
    expect(name.json.error.issues[0].path).toBe('visitor.name');
    // Metadata keys and values count the same way.
    const meta = await visitor(t.base, fx, 'POST', '/tickets', {
      body: { message: 'x', metadata: { [decomposed.repeat(40)]: thumb.repeat(500), [thumb.repeat(40)]: family.repeat(100) } },
    });
    expect(meta.status, meta.text).toBe(201);
    expect(meta.json.ticket.metadata).toEqual({ [decomposed.repeat(40)]: thumb.repeat(500), [thumb.repeat(40)]: family.repeat(100) });
    for (const [metadata, path] of [
      [{ [decomposed.repeat(41)]: 'v' }, 'metadata'],
      [{ k: thumb.repeat(501) }, 'metadata.k'],
    ] as const) {
      const r = await visitor(t.base, fx, 'POST', '/tickets', { body: { message: 'x', metadata } });
      expect(r.status, r.text).toBe(400);
      expect(r.json.error.issues.some((i: { path: string }) => i.path.startsWith(path)), r.text).toBe(true);
    }
  });

  it('refuses a site requiring identity without a user token (403 identity_required) and stores nothing', async () => {
    const strict = seed(t.ctx, { widget: { require_identity: true } });
    const before = t.ctx.db.prepare('SELECT COUNT(*) AS n FROM tickets').get();
    const r = await visitor(t.base, strict, 'POST', '/tickets', { body: { message: 'hi' } });
    expect([r.status, r.json.error.code]).toEqual([403, 'identity_required']);
    expect(t.ctx.db.prepare('SELECT COUNT(*) AS n FROM tickets').get()).toEqual(before);
    expect((await visitor(t.base, strict, 'GET', '/config')).json.widget.require_identity).toBe(true);
  });
});

describe('a ticket is found only with its visitor token, in its site and environment', () => {
  let mine: Awaited<ReturnType<typeof createTicket>>;
  let other: Fixture;
  beforeAll(async () => {
    mine = await createTicket(t.base, fx, { message: 'mine' });
    other = seed(t.ctx, { allowed_origins: [fx.origin] });
  });

  const refusals = () => {
    const id = mine.ticket.id;
    return [
      ['no X-Visitor-Token', fx, fx.pk.live, id, {}],
      ['an empty X-Visitor-Token', fx, fx.pk.live, id, { 'X-Visitor-Token': '' }],
      ['another visitor token', fx, fx.pk.live, id, { 'X-Visitor-Token': `vt_${'A'.repeat(43)}` }],
      ['an oversized token', fx, fx.pk.live, id, { 'X-Visitor-Token': 'x'.repeat(5000) }],
      ['an unknown ticket', fx, fx.pk.live, `tkt_${'A'.repeat(22)}`, { 'X-Visitor-Token': mine.visitor_token }],
      ['the test environment', fx, fx.pk.test, id, { 'X-Visitor-Token': mine.visitor_token }],
      ['another site', other, other.pk.live, id, { 'X-Visitor-Token': mine.visitor_token }],
    ] as const;
  };

  it('reads, posts and streams of anything else are 404 not_found, never 403', async () => {
    for (const [what, site, key, id, headers] of refusals()) {
      for (const [method, path, body] of [
        ['GET', `/tickets/${id}/messages`, undefined],
        ['POST', `/tickets/${id}/messages`, { message: 'sneaky' }],
        ['GET', `/tickets/${id}/events`, undefined],
      ] as const) {
        const r = await visitor(t.base, site, method, path, { key, body, headers: { ...headers } });
        expect([r.status, r.json?.error?.code], `${what}: ${method} ${path}`).toEqual([404, 'not_found']);
      }
    }
    const stored = t.ctx.db.prepare("SELECT COUNT(*) AS n FROM messages WHERE body = 'sneaky'").get() as { n: number };
    expect(stored.n).toBe(0);
  });

  it('the right token reads the ticket', async () => {
    const r = await visitor(t.base, fx, 'GET', `/tickets/${mine.ticket.id}/messages`, withToken(mine.visitor_token));
    expect(r.status).toBe(200);
    expect(MessagesResponse.parse(r.json).ticket.id).toBe(mine.ticket.id);
  });
});

describe('messages', () => {
  it('posts a visitor message (201 {message}) and reads them oldest first', async () => {
    const c = await createTicket(t.base, fx, { message: 'first' });
    const p = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: ' second ' }, ...withToken(c.visitor_token) });
    expect(p.status, p.text).toBe(201);
    const { message } = MessageResponse.parse(p.json);
    expect(message).toMatchObject({ ticket_id: c.ticket.id, author: 'visitor', body: 'second' });
    const r = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages`, withToken(c.visitor_token));
    expect(r.json.messages.map((m: { body: string }) => m.body)).toEqual(['first', 'second']);
  });

  it('pages with ?after= at most 100 at a time, with no gaps or repeats', async () => {
    const c = await createTicket(t.base, fx, { message: 'm0' });
    const seq = findTicketById(t.ctx.db, c.ticket.id)!.seq;
    t.ctx.db.transaction(() => {
      for (let i = 1; i < 250; i++) {
        insertMessage(t.ctx.db, { id: newId('msg'), ticket_seq: seq, author: i % 2 ? 'agent' : 'visitor', author_name: null, body: `m${i}`, created_at: t.clock.now });
      }
    })();
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages${after ? `?after=${after}` : ''}`, withToken(c.visitor_token));
      expect(r.status).toBe(200);
      expect(r.json.messages.length).toBeLessThanOrEqual(100);
      if (r.json.messages.length === 0) break;
      seen.push(...r.json.messages.map((m: { body: string }) => m.body));
      after = r.json.messages.at(-1).id;
    }
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => `m${i}`));
  });

  it('?after= must be a message of this ticket; unknown query parameters are refused', async () => {
    const a = await createTicket(t.base, fx);
    const b = await createTicket(t.base, fx);
    for (const q of [`?after=${b.messages[0]!.id}`, '?after=msg_nope', '?after=', '?limit=5', `?after=${a.messages[0]!.id}&after=x`]) {
      const r = await visitor(t.base, fx, 'GET', `/tickets/${a.ticket.id}/messages${q}`, withToken(a.visitor_token));
      expect([r.status, r.json.error.code], q).toEqual([400, 'invalid_request']);
    }
  });

  it('refuses bad message bodies with 400', async () => {
    const c = await createTicket(t.base, fx);
    for (const body of [{}, { message: '' }, { message: 'x'.repeat(5001) }, { message: 'ok', extra: 1 }]) {
      const r = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body, ...withToken(c.visitor_token) });
      expect([r.status, r.json.error.code]).toEqual([400, 'invalid_request']);
    }
  });

  it('a visitor message reopens a closed ticket', async () => {
    const c = await createTicket(t.base, fx);
    const row = findTicketById(t.ctx.db, c.ticket.id)!;
    t.ctx.db.transaction(() => setTicketStatus(t.ctx.db, row, 'closed', t.clock.now))();
    const closed = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages`, withToken(c.visitor_token));
    expect(closed.json.ticket.status).toBe('closed');
    const p = await visitor(t.base, fx, 'POST', `/tickets/${c.ticket.id}/messages`, { body: { message: 'still there?' }, ...withToken(c.visitor_token) });
    expect(p.status).toBe(201);
    expect(findTicketById(t.ctx.db, c.ticket.id)!.status).toBe('open');
  });

  it('a test key writes test tickets, invisible to the live key', async () => {
    const c = await createTicket(t.base, fx, { message: 'test mode' }, { key: fx.pk.test });
    expect(c.ticket.environment).toBe('test');
    const live = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages`, withToken(c.visitor_token));
    expect(live.status).toBe(404);
    const test = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages`, { key: fx.pk.test, ...withToken(c.visitor_token) });
    expect(test.status).toBe(200);
  });

  it('an agent reply through the management API is readable by the visitor', async () => {
    const c = await createTicket(t.base, fx);
    const reply = await call(t.base, 'POST', `/v1/sites/${fx.serviceId}/tickets/${c.ticket.id}/messages`, {
      key: fx.sk.live, body: { message: 'An agent here', author_name: 'Sam' },
    });
    expect(reply.status, reply.text).toBe(201);
    const r = await visitor(t.base, fx, 'GET', `/tickets/${c.ticket.id}/messages`, withToken(c.visitor_token));
    expect(r.json.messages.at(-1)).toMatchObject({ author: 'agent', author_name: 'Sam', body: 'An agent here' });
  });
});
