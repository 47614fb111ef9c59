// The live feed behind event streams. Every ticket change is appended to `ticket_events` in the
// transaction that makes it; one poller per process reads new rows (right away after a local
// write, and every POLL_MS for writes of other processes, detected through PRAGMA data_version)
// and hands them to the streams subscribed to that ticket. Work per poll is bounded by new rows.
// Row ids of a deleted site's tickets and messages can be handed out again (SQLite reuses the
// highest rowid once it is freed), so every event names the ticket's public id as it is now: a
// stream compares it with its own and never shows another ticket's messages.
import type { Logger } from 'pino';
import type { DB } from './db/open.js';
import { findMessageBySeq, type MessageRow } from './db/tickets.js';

/** `ticketId`: the public id of the ticket that holds the event's row id now (null: none does). */
export type FeedEvent =
  | { kind: 'message'; seq: number; ticketId: string | null; message: MessageRow }
  | { kind: 'status'; seq: number; ticketId: string | null; status: 'open' | 'closed' };

type Listener = (e: FeedEvent) => void;

const POLL_MS = 150;
const BATCH = 500;

export class EventFeed {
  private readonly listeners = new Map<number, Set<Listener>>();
  private lastSeq = 0;
  private dataVersion = -1;
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private closed = false;
  private readonly stmts;

  constructor(
    private readonly db: DB,
    private readonly logger: Logger,
  ) {
    this.stmts = {
      max: db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM ticket_events'),
      after: db.prepare(`SELECT e.seq, e.ticket_seq, e.kind, e.message_seq, e.status, t.id AS ticket_id
        FROM ticket_events e LEFT JOIN tickets t ON t.seq = e.ticket_seq
        WHERE e.seq > ? ORDER BY e.seq LIMIT ?`),
    };
    this.lastSeq = (this.stmts.max.get() as { seq: number }).seq;
  }

  /** Number of open subscriptions (streams) in this process. */
  get size(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  subscribe(ticketSeq: number, listener: Listener): () => void {
    let set = this.listeners.get(ticketSeq);
    if (!set) this.listeners.set(ticketSeq, (set = new Set()));
    set.add(listener);
    this.ensureTimer();
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(ticketSeq);
      if (this.listeners.size === 0) this.stopTimer();
    };
  }

  /** Called after a local commit that appended events: delivers them without waiting for the timer. */
  notify(): void {
    if (this.listeners.size === 0 || this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.poll(true);
    });
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
    this.listeners.clear();
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    // Skip what happened before the first subscriber: streams catch up from the messages table.
    this.lastSeq = (this.stmts.max.get() as { seq: number }).seq;
    this.timer = setInterval(() => this.poll(false), POLL_MS);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private poll(local: boolean): void {
    if (this.closed) return;
    try {
      const version = this.db.pragma('data_version', { simple: true }) as number;
      if (!local && version === this.dataVersion) return;
      this.dataVersion = version;
      for (;;) {
        const rows = this.stmts.after.all(this.lastSeq, BATCH) as {
          seq: number; ticket_seq: number; kind: 'message' | 'status'; message_seq: number | null;
          status: 'open' | 'closed' | null; ticket_id: string | null;
        }[];
        for (const r of rows) {
          this.lastSeq = r.seq;
          const set = this.listeners.get(r.ticket_seq);
          if (!set) continue;
          let event: FeedEvent | undefined;
          if (r.kind === 'message' && r.message_seq !== null) {
            const message = findMessageBySeq(this.db, r.message_seq);
            // A message row id freed with its ticket and reused by another ticket's message is not this event's.
            if (message && message.ticket_seq === r.ticket_seq) event = { kind: 'message', seq: r.seq, ticketId: r.ticket_id, message };
          } else if (r.kind === 'status' && r.status) {
            event = { kind: 'status', seq: r.seq, ticketId: r.ticket_id, status: r.status };
          }
          if (event) for (const l of [...set]) l(event);
        }
        if (rows.length < BATCH) break;
      }
    } catch (err) {
      this.logger.error({ err }, 'event feed poll failed');
    }
  }
}
