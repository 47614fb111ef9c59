// Helpers for tests of the widget routes: a visitor's calls from an allowed origin, a reader of
// server-sent events over fetch, and snapshots of every row a widget request could change.
import Database from 'better-sqlite3';
import { call, type CallOptions, type CallResult, type Fixture } from './harness.js';

/** A widget call with the fixture's live publishable key and allowed origin unless overridden. */
export function visitor(base: string, fx: Fixture, method: string, path: string, o: CallOptions = {}): Promise<CallResult> {
  return call(base, method, `/v1/widget/${fx.serviceId}${path}`, { key: fx.pk.live, origin: fx.origin, ...o });
}

/** Creates a ticket and returns the parsed 201 body; fails loudly on anything else. */
export async function createTicket(
  base: string,
  fx: Fixture,
  body: Record<string, unknown> = { message: 'Hello' },
  o: CallOptions = {},
): Promise<{ ticket: { id: string; status: string }; visitor_token: string; messages: { id: string; body: string }[] }> {
  const r = await visitor(base, fx, 'POST', '/tickets', { body, ...o });
  if (r.status !== 201) throw new Error(`ticket not created: ${r.status} ${r.text}`);
  return r.json;
}

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** Events parsed so far (comments excluded). */
  events: SseEvent[];
  /** Every raw line received so far, comments and `retry:` included. */
  lines: string[];
  /** Resolves once `check` holds over the events, or fails after `timeoutMs`. */
  until(check: (events: SseEvent[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens an event stream with fetch (headers such as the key cannot go through EventSource). */
export async function openStream(url: string, headers: Record<string, string>): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const lines: string[] = [];
  let done = false;
  let ended: Promise<void> = Promise.resolve();
  if (res.body && res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    ended = (async () => {
      let buffer = '';
      let cur: { event: string; data: string[]; id?: string } = { event: '', data: [] };
      try {
        for (;;) {
          const { done: finished, value } = await reader.read();
          if (finished) break;
          buffer += decoder.decode(value, { stream: true });
          const parts = buffer.split('\n');
          buffer = parts.pop()!;
          for (const line of parts) {
            lines.push(line);
            if (line === '') {
              if (cur.data.length) events.push({ event: cur.event || 'message', data: cur.data.join('\n'), id: cur.id });
              cur = { event: '', data: [] };
            } else if (!line.startsWith(':')) {
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'event') cur.event = value;
              else if (field === 'data') cur.data.push(value);
              else if (field === 'id') cur.id = value;
            }
          }
        }
      } catch {
        // aborted by close()
      } finally {
        done = true;
      }
    })();
  } else {
    await res.text();
    done = true;
  }
  return {
    status: res.status,
    headers: res.headers,
    events,
    lines,
    ended,
    async until(check, what, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      while (!check(events)) {
        if (Date.now() > until || done) {
          if (check(events)) return;
          throw new Error(`stream: timed out waiting for ${what}; got ${JSON.stringify(events)}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => abort.abort(),
  };
}

/** Headers of a visitor's stream request. */
export function streamHeaders(fx: Fixture, visitorToken: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'X-Parley-Key': fx.pk.live, Origin: fx.origin, 'X-Visitor-Token': visitorToken, Accept: 'text/event-stream', ...extra };
}

/** Opens a database file read-only (the servers under test keep writing to it). */
export function readOnly(path: string): Database.Database {
  return new Database(path, { readonly: true, fileMustExist: true });
}

/** Every row a widget request can add or change, as one comparable value. */
export function widgetState(db: Database.Database): Record<string, unknown> {
  const all = (sql: string) => db.prepare(sql).all();
  return {
    tickets: all('SELECT * FROM tickets ORDER BY seq'),
    messages: all('SELECT * FROM messages ORDER BY seq'),
    ticket_events: all('SELECT * FROM ticket_events ORDER BY seq'),
    spend_meters: all('SELECT * FROM spend_meters ORDER BY site_id, environment, day'),
    refusals: all('SELECT * FROM refusals ORDER BY site_id, environment, day, code'),
    rate_limits: all('SELECT * FROM rate_limits ORDER BY bucket'),
    idempotency: all('SELECT * FROM idempotency ORDER BY scope, key'),
    keys: all('SELECT id, last_used_at, exposed_at, revoked_at FROM api_keys ORDER BY id'),
    visitor_tokens: all('SELECT * FROM visitor_tokens ORDER BY hash'),
  };
}

/** Spend stored for a site and what its stored actions cost: the two must always be equal. */
export function spendLedger(db: Database.Database, serviceId: string): {
  spent: number; tickets: number; visitorMessages: number; meterTickets: number; meterMessages: number;
  ticketPrice: number; messagePrice: number;
} {
  const site = db.prepare('SELECT * FROM sites WHERE service_id = ?').get(serviceId) as {
    id: number; price_ticket_create: number; price_message_create: number;
  };
  const meter = db.prepare(`SELECT COALESCE(SUM(spent_micros), 0) AS spent, COALESCE(SUM(tickets), 0) AS tickets,
    COALESCE(SUM(messages), 0) AS messages FROM spend_meters WHERE site_id = ?`).get(site.id) as { spent: number; tickets: number; messages: number };
  const tickets = (db.prepare('SELECT COUNT(*) AS n FROM tickets WHERE site_id = ?').get(site.id) as { n: number }).n;
  const visitorMessages = (db.prepare(`SELECT COUNT(*) AS n FROM messages m JOIN tickets t ON t.seq = m.ticket_seq
    WHERE t.site_id = ? AND m.author = 'visitor'`).get(site.id) as { n: number }).n;
  return {
    spent: meter.spent, tickets, visitorMessages, meterTickets: meter.tickets, meterMessages: meter.messages,
    ticketPrice: site.price_ticket_create, messagePrice: site.price_message_create,
  };
}
