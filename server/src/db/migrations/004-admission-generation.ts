// A counter that every change to what admits a widget request moves: any row of `sites`, and
// the columns of `api_keys` that verification reads (not last_used_at or exposed_at, which the
// hot path itself writes). Processes cache sites and keys while the counter holds still, and read
// it inside the transaction that takes the request's rate-limit token (see db/admission.ts), so a
// change made by any process, the CLI included, applies from the next request on.
import type { Database } from 'better-sqlite3';

export function up(db: Database): void {
  const bump = 'BEGIN UPDATE admission_generation SET n = n + 1; END';
  db.exec(`
    CREATE TABLE admission_generation (
      id  INTEGER PRIMARY KEY CHECK (id = 1),
      n   INTEGER NOT NULL
    );
    INSERT INTO admission_generation (id, n) VALUES (1, 0);
    CREATE TRIGGER sites_generation_insert AFTER INSERT ON sites ${bump};
    CREATE TRIGGER sites_generation_update AFTER UPDATE ON sites ${bump};
    CREATE TRIGGER sites_generation_delete AFTER DELETE ON sites ${bump};
    CREATE TRIGGER api_keys_generation_insert AFTER INSERT ON api_keys ${bump};
    CREATE TRIGGER api_keys_generation_update
      AFTER UPDATE OF id, hash, prefix, name, type, environment, scopes, workspace_id, site_id, sites,
        created_at, expires_at, revoked_at ON api_keys ${bump};
    CREATE TRIGGER api_keys_generation_delete AFTER DELETE ON api_keys ${bump};
  `);
}
