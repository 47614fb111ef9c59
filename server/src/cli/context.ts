// Opening the database for a one-shot CLI command.
import { loadConfig } from '../config.js';
import { openDatabase, type DB } from '../db/open.js';

/** Opens the database named by --db or PARLEY_DB (default ./data/parley.db), migrated. */
export function openCliDb(dbFlag: string | undefined): DB {
  const config = loadConfig(process.env, dbFlag !== undefined ? { db: dbFlag } : {});
  return openDatabase(config.db, config.durability);
}
