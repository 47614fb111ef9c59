// Test support (not shipped): a fake of the widget API behind a mocked fetch, and a booted widget.
// Only the network is faked; everything from the fetch call up is the real widget.
import type { Message, Ticket } from '@parley/shared';
import { formatKey } from '@parley/shared/keyformat';
import { boot, type Widget } from './widget.tsx';

export const KEY = formatKey('publishable', 'test', new Uint8Array(32).fill(7));
export const SERVICE_ID = 'acme-help';
export const API = 'https://parley.example';

export interface Recorded {
  method: string;
  url: URL;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown> | undefined;
}

interface FakeResponse {
  ok: boolean;
  status: number;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
  json(): Promise<unknown>;
}

type Override = (r: Recorded) => FakeResponse | 'network' | Promise<'network'> | undefined;

/** A response of the fake server. */
export const respond = (status: number, data: unknown, headers: Record<string, string> = {}): FakeResponse => ({
  ok: status >= 200 && status < 300,
  status,
  headers: new Headers(headers),
  body: null,
  json: async () => data,
});

/** An error response in the envelope of SPEC section 8. */
export const refusal = (status: number, code: string, headers: Record<string, string> = {}, extra = {}) =>
  respond(status, { error: { code, message: `refused: ${code}`, request_id: 'req_1', ...extra } }, headers);

let seq = 0;
const id = (prefix: string) => `${prefix}_${(++seq).toString(36).padStart(24, '0')}`;

/** An in-memory Parley: config, tickets, messages and live event streams. */
export function fakeParley() {
  const requests: Recorded[] = [];
  const overrides: Override[] = [];
  const tickets = new Map<string, { token: string; ticket: Ticket; messages: Message[]; user?: string }>();
  const streams = new Set<{ ticketId: string; push(text: string): void; end(): void }>();
  /** User tokens the fake refuses with 401 invalid_user_token, as the server does an expired one. */
  const expiredTokens = new Set<string>();
  /** A fake user token is `<user id>.<anything>`: several tokens of one user share the part before the dot. */
  const userOf = (token: unknown) => (typeof token === 'string' ? token.split('.')[0] : undefined);
  let config = {
    site: { service_id: SERVICE_ID, name: 'Acme Help' },
    widget: { greeting: 'Hi! How can we help?', color: '#2563eb', position: 'bottom-right', require_identity: false },
  };

  const message = (ticketId: string, author: 'visitor' | 'agent', body: string): Message => ({
    id: id('msg'),
    ticket_id: ticketId,
    author,
    author_name: author === 'agent' ? 'Sam' : null,
    body,
    created_at: new Date().toISOString(),
  });

  function route(r: Recorded): FakeResponse {
    const m = /^\/v1\/widget\/([^/]+)(\/.*)$/.exec(r.path);
    if (!m || m[1] !== SERVICE_ID) return refusal(404, 'not_found');
    const rest = m[2]!;
    if (r.method === 'GET' && rest === '/config') return respond(200, config);
    const userToken = r.headers['x-user-token'] ?? r.body?.user_token;
    if (expiredTokens.has(userToken as string)) return refusal(401, 'invalid_user_token');
    if (r.method === 'GET' && rest === '/tickets') {
      if (!userToken) return refusal(401, 'invalid_user_token');
      const mine = [...tickets.values()].filter((t) => t.user === userOf(userToken)).reverse();
      const limit = Number(r.url.searchParams.get('limit') ?? 10);
      return respond(200, { tickets: mine.slice(0, limit).map((t) => ({ ticket: t.ticket, visitor_token: t.token })), next_cursor: null });
    }
    if (r.method === 'POST' && rest === '/tickets') {
      if (config.widget.require_identity && !userToken) return refusal(403, 'identity_required');
      const ticketId = id('tkt');
      const user = userOf(userToken);
      const ticket = { id: ticketId, status: 'open', environment: 'test', user: user ? { id: user, name: null, email: null } : null } as Ticket;
      const first = message(ticketId, 'visitor', String(r.body?.message ?? '').trim());
      const token = `vt_${ticketId}`;
      tickets.set(ticketId, { token, ticket, messages: [first], user });
      return respond(201, { ticket, visitor_token: token, messages: [first] });
    }
    const t = /^\/tickets\/([^/]+)\/(messages|events)$/.exec(rest);
    const found = t && tickets.get(decodeURIComponent(t[1]!));
    if (!t || !found || found.token !== r.headers['x-visitor-token']) return refusal(404, 'not_found');
    if (t[2] === 'messages' && r.method === 'GET') {
      const after = r.url.searchParams.get('after');
      const at = after ? found.messages.findIndex((x) => x.id === after) + 1 : 0;
      // Like the server: oldest first, at most 100 a page.
      return respond(200, { ticket: found.ticket, messages: found.messages.slice(at, at + 100) });
    }
    if (t[2] === 'messages' && r.method === 'POST') {
      const msg = message(found.ticket.id, 'visitor', String(r.body?.message ?? '').trim());
      found.messages.push(msg);
      return respond(201, { message: msg });
    }
    return refusal(404, 'not_found');
  }

  function publish(msg: Message): void {
    for (const s of streams) if (s.ticketId === msg.ticket_id) s.push(`event: message\nid: ${msg.id}\ndata: ${JSON.stringify(msg)}\n\n`);
  }

  function write(ticketId: string, author: 'visitor' | 'agent', body: string, authorName?: string | null): Message {
    const msg = { ...message(ticketId, author, body), ...(authorName !== undefined && { author_name: authorName }) };
    tickets.get(ticketId)!.messages.push(msg);
    publish(msg);
    return msg;
  }

  /** Like the server, a POST with an Idempotency-Key already answered gets that answer again (nothing new is stored). */
  const answered = new Map<string, FakeResponse>();
  function serve(r: Recorded): FakeResponse {
    const key = r.method === 'POST' ? r.headers['idempotency-key'] : undefined;
    const seen = key && answered.get(key);
    if (seen) return seen;
    const res = route(r);
    if (key && res.ok) answered.set(key, res);
    return res;
  }

  function openStream(r: Recorded, signal: AbortSignal | undefined): FakeResponse {
    const ticketId = decodeURIComponent(/\/tickets\/([^/]+)\/events$/.exec(r.path)![1]!);
    const encoder = new TextEncoder();
    let entry: { ticketId: string; push(text: string): void; end(): void };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        entry = {
          ticketId,
          push: (text) => controller.enqueue(encoder.encode(text)),
          end: () => {
            streams.delete(entry);
            controller.close();
          },
        };
        streams.add(entry);
        signal?.addEventListener('abort', () => {
          streams.delete(entry);
          try {
            controller.error(new DOMException('aborted', 'AbortError'));
          } catch {
            // already closed
          }
        });
        controller.enqueue(encoder.encode(': connected\n\n'));
        // Like the server, Last-Event-ID (a message id) replays the messages written after it.
        const all = tickets.get(ticketId)?.messages ?? [];
        const after = all.findIndex((x) => x.id === r.headers['last-event-id']);
        if (after >= 0) for (const msg of all.slice(after + 1)) entry.push(`event: message\nid: ${msg.id}\ndata: ${JSON.stringify(msg)}\n\n`);
      },
      cancel() {
        streams.delete(entry);
      },
    });
    return { ok: true, status: 200, headers: new Headers({ 'content-type': 'text/event-stream' }), body, json: async () => ({}) };
  }

  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k.toLowerCase()] = v));
    const r: Recorded = {
      method: init.method ?? 'GET',
      url,
      path: url.pathname,
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    requests.push(r);
    await Promise.resolve();
    for (const o of [...overrides]) {
      const res = await o(r);
      if (res === undefined) continue;
      overrides.splice(overrides.indexOf(o), 1);
      if (res === 'network') throw new TypeError('Failed to fetch');
      return res as unknown as Response;
    }
    if (r.method === 'GET' && r.path.endsWith('/events') && route({ ...r, method: 'GET', path: r.path.replace(/events$/, 'messages') }).ok) {
      return openStream(r, init.signal ?? undefined) as unknown as Response;
    }
    return serve(r) as unknown as Response;
  };

  return {
    fetch: fetch as typeof globalThis.fetch,
    requests,
    tickets,
    /** Requests other than the event stream. */
    calls: () => requests.filter((r) => !r.path.endsWith('/events')),
    setConfig(widget: Partial<typeof config.widget>) {
      config = { ...config, widget: { ...config.widget, ...widget } };
    },
    /** The next request matching `when` gets `res` instead (once). */
    failNext(when: (r: Recorded) => boolean, res: FakeResponse | 'network') {
      overrides.push((r) => (when(r) ? res : undefined));
    },
    /** A ticket made as another tab (or, with `user`, that user on another device) would make it; returns what that tab stores. */
    createTicketDirectly(body: string, user?: string) {
      const ticketId = id('tkt');
      const ticket = { id: ticketId, status: 'open', environment: 'test', user: user ? { id: user, name: null, email: null } : null } as Ticket;
      tickets.set(ticketId, { token: `vt_${ticketId}`, ticket, messages: [message(ticketId, 'visitor', body)], user });
      return { ticketId, visitorToken: `vt_${ticketId}` };
    },
    /** An agent (Sam, or `authorName`) writes a reply; open streams of that ticket receive it as a `message` event. */
    agentReply(ticketId: string, body: string, authorName?: string | null): Message {
      return write(ticketId, 'agent', body, authorName);
    },
    /** The visitor writes from another tab: stored, and sent on the ticket's open streams. */
    otherTabWrites(ticketId: string, body: string): Message {
      return write(ticketId, 'visitor', body);
    },
    /**
     * The next request matching `when` reaches the server, which stores it and (as the real server
     * does) sends the new message on the ticket's open streams; its answer is then lost (network).
     * `copy` orders the two: the stream brings the stored copy 30 ms before, or 30 ms after, the failure.
     */
    loseAnswer(when: (r: Recorded) => boolean, copy: 'before the failure' | 'after the failure') {
      overrides.push((r) => {
        if (!when(r)) return undefined;
        const res = serve(r);
        const ticketId = /\/tickets\/([^/]+)\/messages$/.exec(r.path)?.[1];
        const stored = res.ok && ticketId ? tickets.get(decodeURIComponent(ticketId))?.messages.at(-1) : undefined;
        const later = (fn: () => void) => new Promise<void>((resolve) => setTimeout(resolve, 30)).then(fn);
        if (copy === 'after the failure') {
          void later(() => stored && publish(stored));
          return 'network';
        }
        if (stored) publish(stored);
        return later(() => undefined).then(() => 'network' as const);
      });
    },
    openStreams: () => streams.size,
    /** The server ends every open stream (a deploy, a proxy timeout); the widget reconnects. */
    endStreams() {
      for (const s of [...streams]) s.end();
    },
    /** From now on the server refuses `token` with 401 invalid_user_token (it expired). */
    expire(token: string) {
      expiredTokens.add(token);
    },
  };
}

export type FakeParley = ReturnType<typeof fakeParley>;

/** A script tag as a site owner would paste it (not inserted into the document). */
export function scriptTag(attrs: Record<string, string> = {}): HTMLScriptElement {
  const s = document.createElement('script');
  s.src = `${API}/widget.js`;
  s.async = true;
  const all = { 'data-key': KEY, 'data-service-id': SERVICE_ID, ...attrs };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) s.setAttribute(k, v);
  return s;
}

/** Boots a widget against `fake` with fast stream timings. */
export function start(fake: FakeParley, attrs: Record<string, string> = {}): Widget {
  const w = boot({
    script: scriptTag(attrs),
    fetch: fake.fetch,
    streamTiming: { baseDelay: 5, maxDelay: 20, pollInterval: 10, silence: 5_000 },
  });
  if (!w) throw new Error('the widget did not boot');
  return w;
}

/** The widget's shadow root, typed for testing-library's within(). */
export const shadowOf = (w: Widget) => w.host.shadowRoot as unknown as HTMLElement;
