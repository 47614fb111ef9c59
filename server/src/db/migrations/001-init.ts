// The initial schema. Times are integer milliseconds since the epoch (UTC); the API formats them.
import type { Database } from 'better-sqlite3';

export function up(db: Database): void {
  db.exec(`
    CREATE TABLE workspaces (
      id          TEXT PRIMARY KEY,
      name        TEXT NOT NULL,
      created_at  INTEGER NOT NULL
    );

    CREATE TABLE sites (
      id                      INTEGER PRIMARY KEY,
      service_id              TEXT NOT NULL UNIQUE,
      workspace_id            TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      name                    TEXT NOT NULL,
      allowed_origins         TEXT NOT NULL,          -- JSON array of normalised entries
      allow_server_requests   INTEGER NOT NULL DEFAULT 0,
      rate_limit_per_minute   INTEGER NOT NULL,
      daily_spend_cap_micros  INTEGER NOT NULL,
      price_ticket_create     INTEGER NOT NULL,
      price_message_create    INTEGER NOT NULL,
      widget                  TEXT NOT NULL,          -- JSON {greeting, color, position, require_identity}
      created_at              INTEGER NOT NULL
    );
    CREATE INDEX sites_by_workspace ON sites(workspace_id, id);

    CREATE TABLE api_keys (
      id            TEXT PRIMARY KEY,
      hash          BLOB NOT NULL UNIQUE,             -- SHA-256 of the whole key
      prefix        TEXT NOT NULL,
      name          TEXT NOT NULL,
      type          TEXT NOT NULL CHECK (type IN ('publishable', 'secret')),
      environment   TEXT NOT NULL CHECK (environment IN ('live', 'test')),
      scopes        TEXT NOT NULL,                    -- JSON array
      workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      site_id       INTEGER REFERENCES sites(id) ON DELETE CASCADE,   -- publishable keys
      sites         TEXT,                             -- JSON array of service ids (secret key restriction)
      created_at    INTEGER NOT NULL,
      last_used_at  INTEGER,
      expires_at    INTEGER,
      revoked_at    INTEGER,
      exposed_at    INTEGER
    );
    CREATE INDEX api_keys_by_workspace ON api_keys(workspace_id, created_at);
    CREATE INDEX api_keys_by_site ON api_keys(site_id);

    CREATE TABLE tickets (
      seq                 INTEGER PRIMARY KEY,        -- insertion order: cursors and newest-first lists
      id                  TEXT NOT NULL UNIQUE,
      site_id             INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
      environment         TEXT NOT NULL,
      status              TEXT NOT NULL CHECK (status IN ('open', 'closed')),
      visitor_token_hash  BLOB NOT NULL,
      visitor_name        TEXT,
      visitor_email       TEXT,
      user_id             TEXT,
      user_name           TEXT,
      user_email          TEXT,
      page_url            TEXT,
      metadata            TEXT,                       -- JSON object or NULL
      created_at          INTEGER NOT NULL,
      updated_at          INTEGER NOT NULL
    );
    CREATE INDEX tickets_by_site ON tickets(site_id, environment, seq);
    CREATE INDEX tickets_by_site_status ON tickets(site_id, environment, status, seq);
    CREATE INDEX tickets_by_user ON tickets(site_id, environment, user_id, seq) WHERE user_id IS NOT NULL;

    CREATE TABLE messages (
      seq          INTEGER PRIMARY KEY,
      id           TEXT NOT NULL UNIQUE,
      ticket_seq   INTEGER NOT NULL REFERENCES tickets(seq) ON DELETE CASCADE,
      author       TEXT NOT NULL CHECK (author IN ('visitor', 'agent')),
      author_name  TEXT,
      body         TEXT NOT NULL,
      created_at   INTEGER NOT NULL
    );
    CREATE INDEX messages_by_ticket ON messages(ticket_seq, seq);

    -- Append-only feed of ticket changes for live streams across processes; pruned by age.
    CREATE TABLE ticket_events (
      seq          INTEGER PRIMARY KEY,
      ticket_seq   INTEGER NOT NULL,
      kind         TEXT NOT NULL CHECK (kind IN ('message', 'status')),
      message_seq  INTEGER,
      status       TEXT,
      created_at   INTEGER NOT NULL
    );
    CREATE INDEX ticket_events_by_time ON ticket_events(created_at);

    -- Spend and activity per site, environment and UTC day.
    CREATE TABLE spend_meters (
      site_id       INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
      environment   TEXT NOT NULL,
      day           TEXT NOT NULL,                    -- YYYY-MM-DD (UTC)
      spent_micros  INTEGER NOT NULL DEFAULT 0,
      tickets       INTEGER NOT NULL DEFAULT 0,
      messages      INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (site_id, environment, day)
    ) WITHOUT ROWID;

    -- Refused widget requests per code (only those that passed the origin check).
    CREATE TABLE refusals (
      site_id      INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
      environment  TEXT NOT NULL,
      day          TEXT NOT NULL,
      code         TEXT NOT NULL,
      count        INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (site_id, environment, day, code)
    ) WITHOUT ROWID;

    -- GCRA state: the theoretical arrival time of each bucket, in ms.
    CREATE TABLE rate_limits (
      bucket  TEXT PRIMARY KEY,
      tat     INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE idempotency (
      scope         TEXT NOT NULL,                    -- site, environment, method and path
      key           TEXT NOT NULL,
      request_hash  BLOB NOT NULL,
      status        INTEGER NOT NULL,
      response      TEXT NOT NULL,
      created_at    INTEGER NOT NULL,
      PRIMARY KEY (scope, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_by_time ON idempotency(created_at);

    CREATE TABLE signing_keys (
      id              TEXT PRIMARY KEY,
      site_id         INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
      public_key_pem  TEXT NOT NULL,
      created_at      INTEGER NOT NULL
    );
    CREATE INDEX signing_keys_by_site ON signing_keys(site_id, created_at);
  `);
}
