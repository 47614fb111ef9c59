// GET /tickets/:id/events: a server-sent-event stream of a ticket's new messages and status changes
// (SPEC section 6). `Last-Event-ID` (a message id) resumes: the stream subscribes to the live feed
// first, then sends what the messages table holds after that id, then live events, skipping any
// message it already sent, so a reconnect neither loses nor doubles a message.
import { z } from 'zod';
import type { Request, Response, Router } from 'express';
import { keyEnded } from '../auth/authenticate.js';
import type { AppContext } from '../context.js';
import { findKeyById } from '../db/keys.js';
import { findSiteById } from '../db/sites.js';
import { findMessageById, findTicketBySeq, listMessages, messageToApi, type MessageRow, type TicketRow } from '../db/tickets.js';
import { ApiError, parseOr400 } from '../errors.js';
import type { FeedEvent } from '../events.js';
import { admit, type Admitted } from './guard.js';
import { isOriginAllowed } from './origins.js';
import { checkTicketUser, queryOf, visitorTicket, visitorTokenHash } from './tickets.js';

/** Reconnect delay suggested to EventSource-style clients, in ms. */
export const RETRY_HINT_MS = 2_000;
/** A client that stops reading is cut off once this much is queued; it resumes with Last-Event-ID. */
const MAX_QUEUED_BYTES = 1024 * 1024;
const CATCH_UP_PAGE = 500;

const EventsQuery = z.strictObject({ last_event_id: z.string().min(1).max(100).optional() });
const LastEventId = z.string().max(100);

/** The message id to resume after: the Last-Event-ID header, else `?last_event_id=`; 400 when malformed. */
function lastEventIdOf(req: Request): string | undefined {
  const q = parseOr400(EventsQuery, queryOf(req), 'The query string');
  const header = req.headers['last-event-id'];
  if (header === undefined) return q.last_event_id;
  const parsed = LastEventId.safeParse(header);
  if (!parsed.success) {
    throw new ApiError('invalid_request', 'The Last-Event-ID header must be a message id of at most 100 characters.', {
      issues: [{ path: 'Last-Event-ID', message: 'must be at most 100 characters' }],
    });
  }
  return parsed.data || undefined;
}

export function messageEvent(m: MessageRow, ticketId: string): string {
  return `event: message\nid: ${m.id}\ndata: ${JSON.stringify(messageToApi(m, ticketId))}\n\n`;
}
export function statusEvent(status: string): string {
  return `event: status\ndata: ${JSON.stringify({ status })}\n\n`;
}

/** Adds the live-events route to `router`. */
export function eventsRoutes(ctx: AppContext, router: Router): void {
  // Open streams per site and environment in this process: a flood of streams for one site cannot
  // exhaust the server, and one made with the (public) test key cannot take the live visitors' slots.
  const openBySite = new Map<string, number>();
  // And per ticket: without it one visitor token (or one stolen copy of it) could take every slot
  // of its site, and every other visitor of that site would lose live replies.
  const openByTicket = new Map<number, number>();

  router.get('/:serviceId/tickets/:id/events', async (req, res) => {
    const a = await admit(ctx, req, res);
    const lastEventId = lastEventIdOf(req);
    const ticket = visitorTicket(ctx, a, req.params.id, visitorTokenHash(req));
    let afterSeq: number | null = null;
    if (lastEventId !== undefined) {
      const m = findMessageById(ctx.db, lastEventId);
      if (!m || m.ticket_seq !== ticket.seq) {
        throw new ApiError('invalid_request', 'The Last-Event-ID is not a message of this ticket.', {
          issues: [{ path: 'Last-Event-ID', message: 'is not a message of this ticket' }],
        });
      }
      afterSeq = m.seq;
    }
    await checkTicketUser(ctx, a, req, ticket);
    // The client may have left while the token was verified: then no stream is opened (its close
    // event has passed, so nothing would release the slot).
    if (req.socket.destroyed) return;
    const slot = `${a.site.id}:${a.environment}`;
    const open = openBySite.get(slot) ?? 0;
    const openHere = openByTicket.get(ticket.seq) ?? 0;
    if (openHere >= ctx.limits.streamsPerTicket) {
      throw new ApiError('rate_limit_exceeded', 'Too many open event streams for this conversation (one per open tab); close one or retry shortly.', {
        headers: { 'Retry-After': '5' },
      });
    }
    if (open >= ctx.limits.streamsPerSite) {
      throw new ApiError('rate_limit_exceeded', 'Too many open event streams for this site; retry shortly.', {
        headers: { 'Retry-After': '5' },
      });
    }
    if (req.method === 'HEAD') {
      res.status(200).type('text/event-stream').end();
      return;
    }
    openBySite.set(slot, open + 1);
    openByTicket.set(ticket.seq, openHere + 1);
    const release = () => {
      decrement(openBySite, slot);
      decrement(openByTicket, ticket.seq);
    };
    stream(ctx, res, ticket, stillAdmitted(ctx, a, req.headers.origin), afterSeq, release);
  });
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const n = (counts.get(key) ?? 1) - 1;
  if (n <= 0) counts.delete(key);
  else counts.set(key, n);
}

/**
 * Whether what admitted a stream still holds: its key authenticates (not revoked, expired or past
 * its rotation grace) and its site still takes its Origin (or, without one, server requests).
 * Two reads by primary key.
 */
function stillAdmitted(ctx: AppContext, a: Admitted, origin: string | undefined): () => boolean {
  return () => {
    const key = findKeyById(ctx.db, a.auth.key.id);
    const site = findSiteById(ctx.db, a.site.id);
    if (!key || keyEnded(key, ctx.clock()) !== null || !site) return false;
    return origin === undefined ? site.allow_server_requests === 1 : isOriginAllowed(site, origin);
  };
}

/** Runs one stream until the client leaves, the server drains, or what admitted it no longer holds. */
function stream(ctx: AppContext, res: Response, ticket: TicketRow, admitted: () => boolean, afterSeq: number | null, release: () => void): void {
  const req = res.req;
  req.setTimeout(0);
  res.setTimeout(0);
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();

  let ended = false;
  // The highest message seq sent: live events at or below it were already sent by the catch-up.
  let sentSeq = afterSeq ?? 0;
  const end = () => {
    if (!ended) res.end();
    cleanup();
  };
  const send = (text: string) => {
    if (ended || res.writableEnded) return;
    res.write(text);
    if (res.writableLength > MAX_QUEUED_BYTES) end();
  };
  /** Whether what admitted the stream still holds (see stillAdmitted). */
  const stillHolds = (): boolean => {
    try {
      return admitted();
    } catch {
      // The database is closing: the drain ends the stream.
      return true;
    }
  };
  const onEvent = (e: FeedEvent) => {
    // The ticket was deleted (with its site) and its row id now belongs to another ticket: this
    // stream's conversation is gone, and nothing of the other one may reach it.
    if (e.ticketId !== ticket.id) return end();
    // Nothing written after a key was revoked (or expired) or an origin removed reaches a stream
    // that key or origin opened: checked before every event, not only at the next heartbeat.
    if (!stillHolds()) return end();
    if (e.kind === 'message') {
      if (e.message.seq <= sentSeq) return;
      sentSeq = e.message.seq;
      send(messageEvent(e.message, ticket.id));
    } else {
      send(statusEvent(e.status));
    }
  };

  // Subscribe before reading the catch-up, so a message committed in between is not lost.
  const unsubscribe = ctx.events.subscribe(ticket.seq, onEvent);
  // A stream is admitted when it opens; each heartbeat checks that still holds (three reads by
  // primary key). A ticket deleted with its site gets no more events, and a key revoked or an
  // origin taken off the allowlist must not keep a stolen copy listening: the stream ends (and
  // frees its slot) instead of idling until the client leaves. A reconnect meets the 4xx.
  const beat = () => {
    let gone = false;
    try {
      gone = findTicketBySeq(ctx.db, ticket.seq)?.id !== ticket.id;
    } catch {
      // The database is closing: the drain ends the stream.
    }
    if (gone || !stillHolds()) end();
    else send(': heartbeat\n\n');
  };
  const heartbeat = setInterval(beat, ctx.limits.heartbeatMs);
  heartbeat.unref();
  ctx.closing.addEventListener('abort', end);
  function cleanup(): void {
    if (ended) return;
    ended = true;
    unsubscribe();
    clearInterval(heartbeat);
    ctx.closing.removeEventListener('abort', end);
    release();
  }
  res.on('close', cleanup);

  send(`retry: ${RETRY_HINT_MS}\n\n`);
  if (afterSeq !== null) {
    // A resume: the status may have changed while the client was away, then every missed message.
    send(statusEvent(ticket.status));
    for (;;) {
      const page = listMessages(ctx.db, ticket.seq, sentSeq, CATCH_UP_PAGE);
      for (const m of page) {
        sentSeq = m.seq;
        send(messageEvent(m, ticket.id));
      }
      if (page.length < CATCH_UP_PAGE || ended) break;
    }
  }
  if (ctx.closing.aborted) end();
}
