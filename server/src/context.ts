// AppContext: the explicit dependencies every router is built from. No module-level state.
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { DB } from './db/open.js';
import type { EventFeed } from './events.js';

export interface AppContext {
  db: DB;
  config: Config;
  /** Milliseconds since the epoch; injected so tests can cross midnight. */
  clock: () => number;
  logger: Logger;
  events: EventFeed;
  /** Aborted when the process starts draining: long-lived streams end so shutdown can finish. */
  closing: AbortSignal;
  /** Limits that tests may lower. */
  limits: { streamsPerSite: number; streamsPerTicket: number; heartbeatMs: number; managementRatePerMinute: number };
}
