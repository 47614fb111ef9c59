// Process entry for `serve`: one process, or a primary forking N workers on one port and one
// database. The only file that touches process signals and exit codes for the server.
import cluster from 'node:cluster';
import type { Config } from './config.js';
import { openDatabase } from './db/open.js';
import { tuneHeap } from './heap.js';
import { createLogger } from './logger.js';
import { startServer } from './server.js';

/** Runs the server until SIGTERM/SIGINT, then drains and exits 0. */
export async function serve(config: Config): Promise<void> {
  tuneHeap();
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  const logger = createLogger(config.logLevel);
  const running = await startServer({ config, logger });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    void running.close().then(() => {
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (cluster.isWorker) process.on('disconnect', () => stop('disconnect'));
  // Announced only once the signal handlers are in place: a supervisor may send SIGTERM right after.
  logger.info({ url: `http://${config.host}:${running.port}`, worker: cluster.isWorker ? cluster.worker?.id : undefined }, 'Parley listening');
  // Supervisors and tests wait for this line: out now, not with the next 4 KiB of log.
  logger.flush();
}

async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  // Migrate once before any worker opens the database.
  openDatabase(config.db, config.durability).close();
  let stopping = false;
  const restarts: number[] = [];
  // A worker that exited stays in cluster.workers until its IPC channel closes too, so count the living.
  const alive = () => Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead()).length;
  // A respawn scheduled just before SIGTERM arrived must not start a worker nobody will stop.
  const fork = () => {
    if (!stopping) cluster.fork();
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (alive() === 0) {
        logger.info('all workers stopped');
        logger.flush();
        process.exit(0);
      }
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting a new one');
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0]! < now - 60_000) restarts.shift();
    setTimeout(fork, restarts.length > 5 ? 5_000 : 100);
  });
  for (let i = 0; i < config.workers; i++) fork();
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    if (alive() === 0) process.exit(0);
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      process.exit(1);
    }, 20_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
