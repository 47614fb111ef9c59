// Parley under test: a template database made through the public CLI, servers started with
// `node server/bin/parley.js serve` on copies of it, and the setup calls a case needs over HTTP.
import { closeSync, copyFileSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { freePort, processTree, runNode, sleep, spawnNode, waitHttp } from './procs.mjs';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'server/bin/parley.js');
export const SERVICE_ID = 'bench-site';
export const ORIGIN = 'https://bench.example';

/** Fails with the fix when the server has not been built. */
export function requireBuild() {
  if (!existsSync(join(ROOT, 'server/dist/cli/index.js'))) {
    throw new Error('server/dist is missing: run `pnpm build` (or `pnpm bench`, which builds first)');
  }
}

/** The site's rate limit in the benchmark: far beyond any case's rate (the API's own maximum is 100,000). */
export const BENCH_RATE_PER_MINUTE = 1e9;

/**
 * A database with one workspace and one site whose rate limit and spend cap are raised out of the
 * way, made with the CLI as a user would. The CLI's (and the API's) largest rate limit, 100,000 a
 * minute, is a burst of 100,000 and 1,667 a second after it: a case of 13 s at 10,000 requests a
 * second passes that (seen: 3,290 answers of 429 in case 1 with --workers 2), so the benchmark sets
 * the site's row beyond it, as no user can.
 * @param {string} dir
 * @returns {Promise<{ db: string, secretKey: string, publishableKey: string }>}
 */
export async function makeTemplate(dir) {
  const db = join(dir, 'template.db');
  const ws = JSON.parse(await runNode([BIN, 'workspace', 'create', 'bench', '--db', db, '--json']));
  const site = JSON.parse(
    await runNode([
      BIN, 'site', 'create', SERVICE_ID, '--name', 'Bench', '--origin', ORIGIN,
      '--rate-limit', '100000', '--daily-cap-micros', '1000000000000', '--db', db, '--json',
    ]),
  );
  const conn = new Database(db);
  try {
    conn.prepare('UPDATE sites SET rate_limit_per_minute = ? WHERE service_id = ?').run(BENCH_RATE_PER_MINUTE, SERVICE_ID);
  } finally {
    conn.close();
  }
  return { db, secretKey: ws.keys.live.secret, publishableKey: site.publishable_keys.live };
}

/** A fresh copy of the template database (so every case starts from the same state). */
export function copyDb(template, to) {
  copyFileSync(template, to);
  return to;
}

/**
 * Starts `parley serve` on `db` and waits until every worker listens. Its log goes to `logFile`.
 * @param {{ db: string, logFile: string, workers?: number, durability?: 'normal' | 'full', nodeArgs?: string[], logLevel?: string }} o
 */
export async function startParley(o) {
  const port = await freePort();
  const args = [...(o.nodeArgs ?? []), BIN, 'serve', '--port', String(port), '--db', o.db];
  if (o.workers && o.workers > 1) args.push('--workers', String(o.workers));
  if (o.durability) args.push('--durability', o.durability);
  if (o.logLevel) args.push('--log-level', o.logLevel);
  const spawnedAt = performance.now();
  const fd = openSync(o.logFile, 'a');
  const proc = spawnNode(args, { stdout: fd });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/healthz`, proc);
    const want = o.workers ?? 1;
    const deadline = Date.now() + 20_000;
    // /healthz answers once one worker listens; the rest must be up before load starts.
    // Below info the "Parley listening" lines are not written: count the workers instead, then give
    // them a moment (the warm-up that follows covers a late one).
    const logsListening = ['info', 'debug', 'trace'].includes(o.logLevel ?? 'info');
    const ready = () => (logsListening ? countListening(o.logFile) : want > 1 ? processTree(proc.pid).length - 1 : 1);
    while (ready() < want) {
      if (Date.now() > deadline) throw new Error(`only ${ready()} of ${want} workers listen`);
      await sleep(50);
    }
    if (!logsListening && want > 1) await sleep(500);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return { url, port, pid: proc.pid, proc, readyMs: performance.now() - spawnedAt, stop: () => proc.stop() };
}

/** How many "Parley listening" lines the server (or its workers) wrote to the log. */
function countListening(logFile) {
  let n = 0;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.includes('"Parley listening"')) n++;
  }
  return n;
}

/** Headers of a widget request from the allowed origin. */
export function widgetHeaders(publishableKey) {
  return { 'x-parley-key': publishableKey, origin: ORIGIN, 'content-type': 'application/json' };
}

async function call(url, init, expect) {
  const r = await fetch(url, init);
  const text = await r.text();
  if (r.status !== expect) throw new Error(`${init.method ?? 'GET'} ${url} answered ${r.status}, expected ${expect}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Creates one ticket through the widget API; returns its id and visitor token. */
export async function createTicket(base, publishableKey) {
  const doc = await call(
    `${base}/v1/widget/${SERVICE_ID}/tickets`,
    { method: 'POST', headers: widgetHeaders(publishableKey), body: JSON.stringify({ message: 'Hello from the benchmark' }) },
    201,
  );
  return { id: doc.ticket.id, visitorToken: doc.visitor_token };
}

/**
 * `n` secret keys with the read scope, made through the management API. Management rate limits
 * are per key (600 a minute, fixed), so a sustained run spreads its requests over a pool.
 */
export async function readKeyPool(base, adminKey, n) {
  const keys = [];
  for (let i = 0; i < n; i++) {
    const doc = await call(
      `${base}/v1/keys`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'secret', name: `bench read ${i}`, scopes: ['read'] }),
      },
      201,
    );
    keys.push(doc.key.secret);
  }
  return keys;
}
