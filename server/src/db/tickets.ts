// Tickets, their messages and the event feed that live streams read.
import type { Message, Ticket } from '@parley/shared';
import { iso } from '../util.js';
import type { DB } from './open.js';
import { perDb } from './prepare.js';

export interface TicketRow {
  seq: number;
  id: string;
  site_id: number;
  environment: 'live' | 'test';
  status: 'open' | 'closed';
  visitor_token_hash: Buffer;
  visitor_name: string | null;
  visitor_email: string | null;
  user_id: string | null;
  user_name: string | null;
  user_email: string | null;
  page_url: string | null;
  metadata: string | null;
  created_at: number;
  updated_at: number;
}

export interface MessageRow {
  seq: number;
  id: string;
  ticket_seq: number;
  author: 'visitor' | 'agent';
  author_name: string | null;
  body: string;
  created_at: number;
}

const s = perDb((db) => ({
  insertTicket: db.prepare(`INSERT INTO tickets (id, site_id, environment, status, visitor_token_hash, visitor_name,
      visitor_email, user_id, user_name, user_email, page_url, metadata, created_at, updated_at)
    VALUES (@id, @site_id, @environment, @status, @visitor_token_hash, @visitor_name, @visitor_email, @user_id,
      @user_name, @user_email, @page_url, @metadata, @created_at, @updated_at)`),
  ticketById: db.prepare('SELECT * FROM tickets WHERE id = ?'),
  ticketBySeq: db.prepare('SELECT * FROM tickets WHERE seq = ?'),
  listAll: db.prepare(`SELECT * FROM tickets WHERE site_id = ? AND environment = ? AND seq < ?
    ORDER BY seq DESC LIMIT ?`),
  listStatus: db.prepare(`SELECT * FROM tickets WHERE site_id = ? AND environment = ? AND status = ? AND seq < ?
    ORDER BY seq DESC LIMIT ?`),
  listUser: db.prepare(`SELECT * FROM tickets WHERE site_id = ? AND environment = ? AND user_id = ? AND seq < ?
    ORDER BY seq DESC LIMIT ?`),
  setStatus: db.prepare('UPDATE tickets SET status = ?, updated_at = ? WHERE seq = ?'),
  touchTicket: db.prepare('UPDATE tickets SET updated_at = ? WHERE seq = ?'),
  insertMessage: db.prepare(`INSERT INTO messages (id, ticket_seq, author, author_name, body, created_at)
    VALUES (@id, @ticket_seq, @author, @author_name, @body, @created_at)`),
  messagesAfter: db.prepare('SELECT * FROM messages WHERE ticket_seq = ? AND seq > ? ORDER BY seq LIMIT ?'),
  messageById: db.prepare('SELECT * FROM messages WHERE id = ?'),
  messageBySeq: db.prepare('SELECT * FROM messages WHERE seq = ?'),
  insertToken: db.prepare('INSERT INTO visitor_tokens (hash, ticket_seq, created_at) VALUES (?, ?, ?)'),
  pruneTokens: db.prepare(`DELETE FROM visitor_tokens WHERE ticket_seq = ? AND hash IN (
    SELECT hash FROM visitor_tokens WHERE ticket_seq = ? ORDER BY created_at DESC, hash LIMIT -1 OFFSET ?)`),
  tokenTicket: db.prepare('SELECT ticket_seq FROM visitor_tokens WHERE hash = ?'),
  insertEvent: db.prepare(`INSERT INTO ticket_events (ticket_seq, kind, message_seq, status, created_at)
    VALUES (?, ?, ?, ?, ?)`),
}));

export function insertTicket(db: DB, row: Omit<TicketRow, 'seq'>): TicketRow {
  const info = s(db).insertTicket.run(row);
  return { ...row, seq: Number(info.lastInsertRowid) };
}
export function findTicketById(db: DB, id: string): TicketRow | undefined {
  return s(db).ticketById.get(id) as TicketRow | undefined;
}
export function findTicketBySeq(db: DB, seq: number): TicketRow | undefined {
  return s(db).ticketBySeq.get(seq) as TicketRow | undefined;
}
/** Newest first, strictly older than `beforeSeq`; one indexed range scan whatever the table's size. */
export function listTickets(
  db: DB,
  q: { siteId: number; environment: string; status?: string; userId?: string; beforeSeq: number; limit: number },
): TicketRow[] {
  const st = s(db);
  if (q.userId !== undefined) return st.listUser.all(q.siteId, q.environment, q.userId, q.beforeSeq, q.limit) as TicketRow[];
  if (q.status) return st.listStatus.all(q.siteId, q.environment, q.status, q.beforeSeq, q.limit) as TicketRow[];
  return st.listAll.all(q.siteId, q.environment, q.beforeSeq, q.limit) as TicketRow[];
}
/** How many extra visitor tokens (from user ticket lists) a ticket keeps; the oldest go first. */
export const MAX_EXTRA_VISITOR_TOKENS = 10;

/**
 * Adds a visitor token (by its hash) to a ticket and drops the ticket's oldest extra tokens beyond
 * MAX_EXTRA_VISITOR_TOKENS: bounded work per ticket. Call inside a transaction.
 */
export function addVisitorToken(db: DB, ticketSeq: number, hash: Buffer, now: number): void {
  const st = s(db);
  st.insertToken.run(hash, ticketSeq, now);
  st.pruneTokens.run(ticketSeq, ticketSeq, MAX_EXTRA_VISITOR_TOKENS);
}
/** The ticket an extra visitor token belongs to, by the token's hash; one primary-key lookup. */
export function ticketSeqOfVisitorToken(db: DB, hash: Buffer): number | undefined {
  return (s(db).tokenTicket.get(hash) as { ticket_seq: number } | undefined)?.ticket_seq;
}
/** Sets the status and records a status event when it changed. Call inside a transaction. */
export function setTicketStatus(db: DB, ticket: TicketRow, status: 'open' | 'closed', now: number): boolean {
  if (ticket.status === status) return false;
  s(db).setStatus.run(status, now, ticket.seq);
  s(db).insertEvent.run(ticket.seq, 'status', null, status, now);
  ticket.status = status;
  ticket.updated_at = now;
  return true;
}
/** Inserts a message, bumps the ticket's updated_at and records the event. Call inside a transaction. */
export function insertMessage(db: DB, row: Omit<MessageRow, 'seq'>): MessageRow {
  const st = s(db);
  const info = st.insertMessage.run(row);
  const seq = Number(info.lastInsertRowid);
  st.touchTicket.run(row.created_at, row.ticket_seq);
  st.insertEvent.run(row.ticket_seq, 'message', seq, null, row.created_at);
  return { ...row, seq };
}
export function listMessages(db: DB, ticketSeq: number, afterSeq: number, limit: number): MessageRow[] {
  return s(db).messagesAfter.all(ticketSeq, afterSeq, limit) as MessageRow[];
}
export function findMessageById(db: DB, id: string): MessageRow | undefined {
  return s(db).messageById.get(id) as MessageRow | undefined;
}
export function findMessageBySeq(db: DB, seq: number): MessageRow | undefined {
  return s(db).messageBySeq.get(seq) as MessageRow | undefined;
}

export function ticketToApi(row: TicketRow): Ticket {
  return {
    id: row.id,
    status: row.status,
    environment: row.environment,
    visitor: { name: row.visitor_name, email: row.visitor_email },
    user: row.user_id ? { id: row.user_id, name: row.user_name, email: row.user_email } : null,
    page_url: row.page_url,
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, string>) : null,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}
export function messageToApi(row: MessageRow, ticketId: string): Message {
  return {
    id: row.id,
    ticket_id: ticketId,
    author: row.author,
    author_name: row.author_name,
    body: row.body,
    created_at: iso(row.created_at),
  };
}
