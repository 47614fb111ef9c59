// Opening the database for a one-shot CLI command.
import { loadConfig } from '../config.js';
import { openDatabase, type DB } from '../db/open.js';

/**
 * Opens the database named by --db or PARLEY_DB (default ./data/parley.db), migrated. Only the
 * variables a one-shot command uses are read: a PARLEY_PORT meant for `serve` that does not parse
 * must not stop `workspace create`.
 */
export function openCliDb(dbFlag: string | undefined): DB {
  const { PARLEY_DB, PARLEY_DURABILITY } = process.env;
  const config = loadConfig({ PARLEY_DB, PARLEY_DURABILITY }, dbFlag !== undefined ? { db: dbFlag } : {});
  return openDatabase(config.db, config.durability);
}
