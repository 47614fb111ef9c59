// Extra visitor tokens of a ticket: each time a signed-in user lists their tickets on a new device
// (SPEC section 6a), every listed ticket gets a fresh token, stored only as its SHA-256 like the
// first one on the ticket row. A ticket keeps at most a few of them (see db/tickets.ts).
import type { Database } from 'better-sqlite3';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE visitor_tokens (
      hash        BLOB PRIMARY KEY,                 -- SHA-256 of the token
      ticket_seq  INTEGER NOT NULL REFERENCES tickets(seq) ON DELETE CASCADE,
      created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX visitor_tokens_by_ticket ON visitor_tokens(ticket_seq, created_at);
  `);
}
