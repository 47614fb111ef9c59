// Building a context and running one HTTP server process with a graceful drain.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { startCheckpointer } from './db/checkpoint.js';
import { openDatabase } from './db/open.js';
import { EventFeed } from './events.js';
import { createLogger } from './logger.js';
import { startMaintenance } from './maintenance.js';

export interface Running {
  ctx: AppContext;
  server: Server;
  port: number;
  /** Stops accepting, lets in-flight requests finish (streams end), closes the database. */
  close: (graceMs?: number) => Promise<void>;
}

export interface StartOptions {
  config: Config;
  logger?: Logger;
  clock?: () => number;
  limits?: Partial<AppContext['limits']>;
}

/** Builds the context for `config` (opening and migrating the database). */
export function buildContext(opts: StartOptions & { closing: AbortSignal }): AppContext {
  const logger = opts.logger ?? createLogger(opts.config.logLevel);
  const db = openDatabase(opts.config.db, opts.config.durability);
  return {
    db,
    config: opts.config,
    clock: opts.clock ?? Date.now,
    logger,
    events: new EventFeed(db, logger),
    closing: opts.closing,
    limits: { streamsPerSite: 100, streamsPerTicket: 5, heartbeatMs: 25_000, managementRatePerMinute: 600, ...opts.limits },
  };
}

/**
 * A request Node's HTTP parser refused (bytes that are not HTTP, a control character in a header,
 * headers over 16 KiB) never reaches the app. Node would answer a bare `400` or `431` with no body;
 * answer `400 invalid_request` in the SPEC's envelope with a request id instead. Timeouts and
 * resets keep Node's handling.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const written = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable || written) {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable && !written) {
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    } else socket.destroy(err);
    return;
  }
  const id = `req_${randomBytes(12).toString('base64url')}`;
  const message = err.code === 'HPE_HEADER_OVERFLOW' ? 'The request line and headers must fit in 16 KiB.' : 'The request is not valid HTTP.';
  const body = JSON.stringify({ error: { code: 'invalid_request', message, request_id: id } });
  socket.end(
    'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
      `X-Request-Id: ${id}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Starts one server process on config.host:config.port (0 picks a free port). */
export async function startServer(opts: StartOptions): Promise<Running> {
  const closing = new AbortController();
  const ctx = buildContext({ ...opts, closing: closing.signal });
  const app = createApp(ctx);
  const server = createServer(app);
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.on('clientError', answerClientError);
  const stopMaintenance = startMaintenance(ctx);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.config.port, opts.config.host, () => resolve());
  });
  const checkpointer = startCheckpointer(ctx.db, ctx.logger);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.config.port;
  let closed: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      stopMaintenance();
      closing.abort();
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      const idle = setInterval(() => server.closeIdleConnections(), 100);
      server.close(() => {
        clearTimeout(force);
        clearInterval(idle);
        ctx.events.close();
        // The thread's connection closes first, so this one (the last) checkpoints and removes the WAL.
        void (checkpointer?.stop() ?? Promise.resolve()).then(() => {
          ctx.db.close();
          resolve();
        });
      });
      server.closeIdleConnections();
    });
    return closed;
  };
  return { ctx, server, port, close };
}
