// Tickets of the management API: list newest first with opaque cursors, read with all messages,
// answer as an agent, open and close. Only tickets of the key's environment and the named site exist
// here; anything else is 404. Agent replies are not charged.
import { AgentReplyBody, ListTicketsQuery, PatchTicketBody } from '@parley/shared';
import type { Request, Router } from 'express';
import type { Auth } from '../auth/authenticate.js';
import { siteForKey } from '../auth/scopes.js';
import type { AppContext } from '../context.js';
import {
  findTicketById, insertMessage, listMessages, listTickets, messageToApi, setTicketStatus,
  ticketToApi, type MessageRow, type TicketRow,
} from '../db/tickets.js';
import { ApiError, parseOr400 } from '../errors.js';
import { newId } from '../util.js';
import { encodeCursor } from '../db/cursors.js';
import { authorize, cursorPosition, parseQuery } from './access.js';
import { idempotentCreate } from './idempotent.js';

const MESSAGE_PAGE = 500;

/** The ticket `:id` of the site `:sid` in the key's environment, or 404. */
function ticketFor(ctx: AppContext, auth: Auth, req: Request<{ sid: string; id: string }>): TicketRow {
  const site = siteForKey(ctx, auth, req.params.sid);
  const ticket = findTicketById(ctx.db, req.params.id);
  if (!ticket || ticket.site_id !== site.id || ticket.environment !== auth.environment) {
    throw new ApiError('not_found', 'No such ticket.');
  }
  return ticket;
}

function allMessages(ctx: AppContext, ticket: TicketRow): MessageRow[] {
  const out: MessageRow[] = [];
  for (let after = 0; ; ) {
    const page = listMessages(ctx.db, ticket.seq, after, MESSAGE_PAGE);
    out.push(...page);
    if (page.length < MESSAGE_PAGE) return out;
    after = page[page.length - 1]!.seq;
  }
}

export function ticketsRoutes(ctx: AppContext, router: Router): void {

  router.get('/sites/:sid/tickets', (req, res) => {
    const auth = authorize(ctx, req, res, 'read', { takesQuery: true });
    const site = siteForKey(ctx, auth, req.params.sid);
    const q = parseQuery(ListTicketsQuery, req);
    const limit = q.limit ?? 50;
    // SQLite hands a deleted site's id out again: its creation time tells the two apart. The status
    // filter is part of the list: a cursor of the open tickets does not page the closed ones.
    const scope = `tickets:${site.id}:${site.created_at}:${auth.environment}:${q.status ?? 'all'}`;
    // One more than asked tells whether another page exists; the cursor is the last seq returned.
    const rows = listTickets(ctx.db, {
      siteId: site.id, environment: auth.environment, status: q.status,
      beforeSeq: cursorPosition(ctx, scope, q.cursor) ?? Number.MAX_SAFE_INTEGER, limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    res.json({ tickets: page.map(ticketToApi), next_cursor: more ? encodeCursor(ctx.db, scope, page[page.length - 1]!.seq) : null });
  });

  router.get('/sites/:sid/tickets/:id', (req, res) => {
    const auth = authorize(ctx, req, res, 'read');
    const ticket = ticketFor(ctx, auth, req);
    res.json({ ticket: ticketToApi(ticket), messages: allMessages(ctx, ticket).map((m) => messageToApi(m, ticket.id)) });
  });

  router.post('/sites/:sid/tickets/:id/messages', (req, res) => {
    const auth = authorize(ctx, req, res, 'write');
    const ticket = ticketFor(ctx, auth, req);
    const body = parseOr400(AgentReplyBody, req.body);
    // A reply retried after a lost response must not reach the visitor twice: Idempotency-Key.
    const written = idempotentCreate(ctx, req, res, auth, `POST /tickets/${ticket.id}/messages`, () => {
      // The ticket may have gone (site deleted) between the lookup and this write.
      if (!findTicketById(ctx.db, ticket.id)) throw new ApiError('not_found', 'No such ticket.');
      const message = insertMessage(ctx.db, {
        id: newId('msg'), ticket_seq: ticket.seq, author: 'agent', author_name: body.author_name ?? null,
        body: body.message, created_at: ctx.clock(),
      });
      return { message: messageToApi(message, ticket.id) };
    }, { sealed: false });
    if (written) ctx.events.notify();
  });

  router.patch('/sites/:sid/tickets/:id', (req, res) => {
    const auth = authorize(ctx, req, res, 'write');
    const found = ticketFor(ctx, auth, req);
    const body = parseOr400(PatchTicketBody, req.body);
    const { ticket, changed } = ctx.db.transaction(() => {
      // Re-read inside the write lock: another process may have changed the status meanwhile.
      const current = findTicketById(ctx.db, found.id);
      if (!current) throw new ApiError('not_found', 'No such ticket.');
      return { ticket: current, changed: setTicketStatus(ctx.db, current, body.status, ctx.clock()) };
    }).immediate();
    if (changed) ctx.events.notify();
    res.json({ ticket: ticketToApi(ticket) });
  });

}
