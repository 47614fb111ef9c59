// Widget routes that read and write tickets (SPEC section 6): config, create a ticket, read and post
// messages. A ticket is only ever found with its visitor token, in its own site and environment;
// anything else is 404. Writes, their charge and their idempotency record commit together.
import { timingSafeEqual } from 'node:crypto';
import { CreateTicketBody, MessagesQuery, PostMessageBody, UserTicketsQuery, VisitorToken } from '@parley/shared';
import type { Request, Response, Router } from 'express';
import { newVisitorToken } from '../auth/keys.js';
import type { AppContext } from '../context.js';
import { siteWidget } from '../db/sites.js';
import {
  addVisitorToken, findMessageById, findTicketById, insertMessage, insertTicket, listMessages, listTickets,
  messageToApi, setTicketStatus, ticketSeqOfVisitorToken, ticketToApi, type TicketRow,
} from '../db/tickets.js';
import { encodeCursor } from '../db/cursors.js';
import { grouped } from '../db/transact.js';
import { ApiError, parseOr400 } from '../errors.js';
import { cursorPosition } from '../manage/access.js';
import { newId, sha256 } from '../util.js';
import { admit, admitAndWrite, type Admitted } from './guard.js';
import {
  anonymousVisitor, checkUserTokenHeader, identifyVisitor, requireUser, userTokenHeader, type VisitorIdentity,
} from './identity.js';
import { findReplay, idempotencyOf, rememberResponse, type Idempotency, type StoredResponse } from '../http/idempotency.js';
import { charge } from './spend.js';

export const MESSAGES_PAGE = 100;

const notFound = (): ApiError => new ApiError('not_found', 'No such ticket for this key and visitor token.');

/** The SHA-256 of the request's X-Visitor-Token, or null when it is missing or malformed (both 404). */
export function visitorTokenHash(req: Request): Buffer | null {
  const parsed = VisitorToken.safeParse(req.headers['x-visitor-token']);
  return parsed.success ? sha256(parsed.data) : null;
}

/**
 * The ticket `id` when it belongs to the admitted site and environment and `tokenHash` is one of
 * its visitor tokens (the one made with the ticket, or one minted by a signed-in user's ticket
 * list); otherwise 404, the same answer whichever of these failed.
 */
export function visitorTicket(ctx: AppContext, a: Admitted, id: string, tokenHash: Buffer | null): TicketRow {
  if (tokenHash === null) throw notFound();
  const ticket = findTicketById(ctx.db, id);
  if (!ticket || ticket.site_id !== a.site.id || ticket.environment !== a.environment) throw notFound();
  if (!timingSafeEqual(ticket.visitor_token_hash, tokenHash) && ticketSeqOfVisitorToken(ctx.db, tokenHash) !== ticket.seq) {
    throw notFound();
  }
  return ticket;
}

/**
 * Verifies the request's X-User-Token (401 when it fails) on a call about `ticket`. A ticket tied to
 * another user than the token's is 404 like any ticket that is not the caller's: a visitor token
 * left on a shared device never shows one user's conversation to the next signed-in user.
 */
export async function checkTicketUser(ctx: AppContext, a: Admitted, req: Request, ticket: TicketRow): Promise<void> {
  const user = await checkUserTokenHeader(ctx, a.site, req);
  if (user && ticket.user_id !== null && ticket.user_id !== user.id) throw notFound();
}

/** Sends a JSON body that is already text (a fresh or a replayed response). */
function sendStored(res: Response, r: StoredResponse): void {
  res.status(r.status).setHeader('Content-Type', 'application/json; charset=utf-8');
  res.send(r.body);
}

/** Parses a query string strictly: unknown or repeated parameters are `400 invalid_request`. */
export function queryOf(req: Request): Record<string, unknown> {
  return { ...(req.query as Record<string, unknown>) };
}

/** Adds the ticket and message routes to `router`. */
export function ticketsRoutes(ctx: AppContext, router: Router): void {
  const db = ctx.db;

  router.get('/:serviceId/config', async (req, res) => {
    const { site } = await admit(ctx, req, res);
    // SPEC 6a: a user token sent on any widget call is verified (401 when it fails), this one too.
    await checkUserTokenHeader(ctx, site, req);
    res.json({ site: { service_id: site.service_id, name: site.name }, widget: siteWidget(site) });
  });

  /**
   * Replay, charge and insert of a new ticket and its first message; runs inside the caller's
   * transaction. `written` is true only for a new ticket (a replay announces nothing).
   */
  const createTicket = (
    a: Admitted, now: number, body: CreateTicketBody, idem: Idempotency | null, user: VisitorIdentity | null,
  ): { out: StoredResponse; written: boolean } => {
    const replay = idem && findReplay(db, idem, now);
    if (replay) return { out: replay, written: false };
    charge(db, { site: a.site, environment: a.environment, action: 'ticket.create', now, tickets: 1, messages: 1 });
    const visitorToken = newVisitorToken();
    const ticket = insertTicket(db, {
      id: newId('tkt'),
      site_id: a.site.id,
      environment: a.environment,
      status: 'open',
      visitor_token_hash: sha256(visitorToken),
      visitor_name: body.visitor?.name || null,
      visitor_email: body.visitor?.email ?? null,
      user_id: user?.id ?? null,
      user_name: user?.name ?? null,
      user_email: user?.email ?? null,
      page_url: body.page_url ?? null,
      metadata: body.metadata ? JSON.stringify(body.metadata) : null,
      created_at: now,
      updated_at: now,
    });
    const message = insertMessage(db, {
      id: newId('msg'), ticket_seq: ticket.seq, author: 'visitor', author_name: null, body: body.message, created_at: now,
    });
    const response: StoredResponse = {
      status: 201,
      body: JSON.stringify({ ticket: ticketToApi(ticket), visitor_token: visitorToken, messages: [messageToApi(message, ticket.id)] }),
    };
    // The response holds the visitor token: it is stored sealed (see idempotency.ts).
    if (idem) rememberResponse(db, idem, response, now, true);
    return { out: response, written: true };
  };

  router.post('/:serviceId/tickets', async (req, res) => {
    let done: { out: StoredResponse; written: boolean };
    if ((req.body as { user_token?: unknown } | null | undefined)?.user_token === undefined && userTokenHeader(req) === undefined) {
      // An anonymous visitor (the common case): the rate limit, body, identity rule, replay, charge
      // and insert are one transaction and one commit (see admitAndWrite).
      done = await admitAndWrite(ctx, req, res, (a, now) => {
        const body = parseOr400(CreateTicketBody, req.body);
        const idem = idempotencyOf(req, `${a.site.id}:${a.environment}:POST /tickets`);
        anonymousVisitor(a.site);
        return createTicket(a, now, body, idem, null);
      });
    } else {
      const a = await admit(ctx, req, res);
      const body = parseOr400(CreateTicketBody, req.body);
      const idem = idempotencyOf(req, `${a.site.id}:${a.environment}:POST /tickets`);
      const user = await identifyVisitor(ctx, a.site, body.user_token, req);
      // A signed-in user's key is theirs alone: another user's request with the same key and body
      // makes its own ticket instead of receiving this one and its visitor token.
      if (idem && user) idem.scope += ` user:${user.id}`;
      const now = ctx.clock();
      done = await grouped(db, () => createTicket(a, now, body, idem, user));
    }
    if (done.written) ctx.events.notify();
    sendStored(res, done.out);
  });

  // A signed-in user's tickets on this site and environment, newest first, each with a fresh visitor
  // token (tokens are stored only hashed, so the one made with the ticket cannot be shown again).
  router.get('/:serviceId/tickets', async (req, res) => {
    const a = await admit(ctx, req, res);
    const q = parseOr400(UserTicketsQuery, queryOf(req), 'The query string');
    // A field, checked before identity (SPEC 3's order); each user's list is filtered by the user anyway.
    const scope = `user-tickets:${a.site.id}:${a.site.created_at}:${a.environment}`;
    const before = cursorPosition(ctx, scope, q.cursor) ?? Number.MAX_SAFE_INTEGER;
    const user = await requireUser(ctx, a.site, req);
    const limit = q.limit ?? 10;
    const now = ctx.clock();
    const page = await grouped(db, () => {
      const rows = listTickets(db, { siteId: a.site.id, environment: a.environment, userId: user.id, beforeSeq: before, limit: limit + 1 });
      const items = rows.slice(0, limit).map((ticket) => {
        const visitorToken = newVisitorToken();
        addVisitorToken(db, ticket.seq, sha256(visitorToken), now);
        return { ticket: ticketToApi(ticket), visitor_token: visitorToken };
      });
      return { tickets: items, next_cursor: rows.length > limit ? encodeCursor(db, scope, rows[limit - 1]!.seq) : null };
    });
    res.setHeader('Cache-Control', 'no-store');
    res.json(page);
  });

  router.get('/:serviceId/tickets/:id/messages', async (req, res) => {
    const a = await admit(ctx, req, res);
    const q = parseOr400(MessagesQuery, queryOf(req), 'The query string');
    const ticket = visitorTicket(ctx, a, req.params.id, visitorTokenHash(req));
    let afterSeq = 0;
    if (q.after !== undefined) {
      const after = findMessageById(db, q.after);
      if (!after || after.ticket_seq !== ticket.seq) {
        throw new ApiError('invalid_request', 'The query string is invalid: after: is not a message of this ticket.', {
          issues: [{ path: 'after', message: 'is not a message of this ticket' }],
        });
      }
      afterSeq = after.seq;
    }
    await checkTicketUser(ctx, a, req, ticket);
    const messages = listMessages(db, ticket.seq, afterSeq, MESSAGES_PAGE);
    res.json({ ticket: ticketToApi(ticket), messages: messages.map((m) => messageToApi(m, ticket.id)) });
  });

  /**
   * Replay, charge, reopen and insert of a visitor message; runs inside the caller's transaction.
   * `written` is true only for a new message (a replay announces nothing to live streams).
   */
  const postMessage = (
    a: Admitted, now: number, id: string, tokenHash: Buffer | null, body: { message: string }, idem: Idempotency | null,
  ): { out: StoredResponse; written: boolean } => {
    const ticket = visitorTicket(ctx, a, id, tokenHash);
    const replay = idem && findReplay(db, idem, now);
    if (replay) return { out: replay, written: false };
    charge(db, { site: a.site, environment: a.environment, action: 'message.create', now, tickets: 0, messages: 1 });
    if (ticket.status === 'closed') setTicketStatus(db, ticket, 'open', now);
    const message = insertMessage(db, {
      id: newId('msg'), ticket_seq: ticket.seq, author: 'visitor', author_name: null, body: body.message, created_at: now,
    });
    const response: StoredResponse = { status: 201, body: JSON.stringify({ message: messageToApi(message, ticket.id) }) };
    if (idem) rememberResponse(db, idem, response, now);
    return { out: response, written: true };
  };

  router.post('/:serviceId/tickets/:id/messages', async (req, res) => {
    const id = req.params.id;
    const tokenHash = visitorTokenHash(req);
    let done: { out: StoredResponse; written: boolean };
    if (userTokenHeader(req) === undefined) {
      // The hot path: the rate limit, the ticket check, replay, charge, reopen and insert are one
      // IMMEDIATE transaction (see admitAndWrite), a handful of prepared statements and one commit.
      done = await admitAndWrite(ctx, req, res, (a, now) => {
        const body = parseOr400(PostMessageBody, req.body);
        const idem = idempotencyOf(req, `${a.site.id}:${a.environment}:POST /tickets/${id}/messages`);
        return postMessage(a, now, id, tokenHash, body, idem);
      });
    } else {
      // A signed-in visitor: the user token is verified (asynchronously) between the ticket check
      // and the write, so this path takes the rate limit and the write in two transactions.
      const a = await admit(ctx, req, res);
      const body = parseOr400(PostMessageBody, req.body);
      const idem = idempotencyOf(req, `${a.site.id}:${a.environment}:POST /tickets/${id}/messages`);
      await checkTicketUser(ctx, a, req, visitorTicket(ctx, a, id, tokenHash));
      const now = ctx.clock();
      done = await grouped(db, () => postMessage(a, now, id, tokenHash, body, idem));
    }
    if (done.written) ctx.events.notify();
    sendStored(res, done.out);
  });
}
