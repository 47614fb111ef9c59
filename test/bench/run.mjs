#!/usr/bin/env node
// `pnpm bench`: Parley against the ceiling of its own stack (bare Express 5) and the floor of Node
// (raw node:http) on this machine, in one run, with ratios. Every server and the load generator
// run in their own processes; baseline and Parley runs alternate with the same connections and
// duration, each after a warm-up. Prints a table and the targets, writes test/bench/results.json.
//
//   node test/bench/run.mjs [--quick] [--duration S] [--warmup S] [--connections N]
//                           [--sizes 10000,100000,1000000] [--only case1,case4] [--out FILE]
//                           [--profile case2] [--log-level info|warn|...] [--node-args=--flag,--flag]
import { gzipSync, brotliCompressSync } from 'node:zlib';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ORIGIN, ROOT, SERVICE_ID, copyDb, createTicket, makeTemplate, readKeyPool, requireBuild, startParley, widgetHeaders,
} from './lib/parley.mjs';
import { freePort, killAll, measureCpu, runNode, sampleRss, spawned, spawnNode, waitHttp } from './lib/procs.mjs';
import { formatProfile, summarizeProfile } from './lib/profile.mjs';
import { evaluateTargets, fmtCount, formatTable, formatTargets, tableRows, toMB } from './lib/report.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const LOAD = join(HERE, 'lib/load.mjs');
const BASELINE = join(HERE, 'baseline.mjs');
const KEYVERIFY = join(HERE, 'lib/keyverify.mjs');

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    sizes: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'string' },
    'log-level': { type: 'string' },
    'node-args': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 9).join('\n').replace(/^\/\/ ?/gm, '') + '\n');
  process.exit(0);
}

const quick = flags.quick;
const settings = {
  mode: quick ? 'quick' : 'full',
  connections: Number(flags.connections ?? 10),
  warmup: Number(flags.warmup ?? (quick ? 1 : 3)),
  duration: Number(flags.duration ?? (quick ? 1 : 5)),
  rounds: Number(flags.rounds ?? (quick ? 1 : 2)),
  sizes: (flags.sizes ?? (quick ? '10000,100000' : '10000,100000,1000000')).split(',').map(Number),
  fixedRate: 1000,
  /** The server's --log-level; the default (info) writes an access-log line per request, as deployed. */
  serverLogLevel: flags['log-level'] ?? 'info',
  /** Flags for the served node process (and its workers), e.g. --max-semi-space-size=8; none by default, as deployed. */
  serverNodeArgs: (flags['node-args'] ?? '').split(',').filter(Boolean),
};
if (
  ![settings.connections, settings.warmup, settings.duration, settings.rounds, ...settings.sizes].every((v) => Number.isFinite(v) && v >= 0) ||
  settings.duration <= 0 || settings.rounds < 1 || settings.connections < 1
) {
  process.stderr.write('bench: --connections, --warmup, --duration, --rounds and --sizes take positive numbers\n');
  process.exit(2);
}
settings.sizes.sort((a, b) => a - b);
const only = flags.only ? new Set(flags.only.split(',')) : null;
const wanted = (id) => !only || only.has(id) || only.has(id.split('-')[0]);
const outFile = flags.out ?? join(HERE, 'results.json');

/** The widget message body: `[<id>]` becomes a fresh id in every request. */
const MESSAGE_BODY = JSON.stringify({ message: 'Benchmark message [<id>]: is there a discount for yearly plans?' });
const TICKET_BODY = JSON.stringify({ message: 'Benchmark ticket [<id>]: my invoice is wrong', visitor: { name: 'Bench Visitor' } });

/**
 * The Parley cases. `prepare` runs against the started server; `spec` is the load of the case.
 * @type {Record<string, { label: string, method: 'GET' | 'POST', body?: string, prepare?: (s: any, t: any) => Promise<any>, spec: (s: any, t: any, p: any) => any }>}
 */
const CASES = {
  case1: {
    label: 'GET /v1/widget/:sid/config',
    method: 'GET',
    spec: (s, t) => ({ url: `${s.url}/v1/widget/${SERVICE_ID}/config`, headers: { 'x-parley-key': t.publishableKey, origin: ORIGIN } }),
  },
  case2: {
    label: 'POST /v1/widget/:sid/tickets/:id/messages',
    method: 'POST',
    body: MESSAGE_BODY,
    prepare: (s, t) => createTicket(s.url, t.publishableKey),
    spec: (s, t, ticket) => ({
      url: `${s.url}/v1/widget/${SERVICE_ID}/tickets/${ticket.id}/messages`,
      method: 'POST',
      headers: { ...widgetHeaders(t.publishableKey), 'x-visitor-token': ticket.visitorToken },
      body: MESSAGE_BODY,
      fresh: true,
    }),
  },
  case3: {
    label: 'POST /v1/widget/:sid/tickets',
    method: 'POST',
    body: TICKET_BODY,
    spec: (s, t) => ({ url: `${s.url}/v1/widget/${SERVICE_ID}/tickets`, method: 'POST', headers: widgetHeaders(t.publishableKey), body: TICKET_BODY, fresh: true }),
  },
  case4: {
    label: 'GET /v1/sites/:sid/tickets?limit=50',
    method: 'GET',
    // Management rate limits are per key (600/min, fixed): spread the run over enough read keys.
    prepare: (s, t) => readKeyPool(s.url, t.secretKey, keyPoolSize()),
    spec: (s, _t, keys) => ({
      url: `${s.url}/v1/sites/${SERVICE_ID}/tickets?limit=50`,
      rotate: { header: 'authorization', values: keys.map((k) => `Bearer ${k}`) },
    }),
  },
};

/** Keys for case 4: 600 burst + 10/s each must cover a generous 5,000 req/s over the run. */
function keyPoolSize() {
  const secs = settings.warmup + settings.rounds * (settings.duration + 0.5);
  return Math.max(2, Math.ceil((5000 * secs) / (600 + 10 * secs)));
}

/** The load generator: one process of its own for the whole run, fed one spec at a time. */
function startLoadGenerator() {
  const proc = spawnNode([LOAD, '--stdin'], { stdin: 'pipe' });
  const waiting = [];
  let rest = '';
  proc.child.stdout.on('data', (chunk) => {
    rest += chunk.toString('utf8');
    let i;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      waiting.shift()?.resolve(line);
    }
  });
  proc.exited.then(() => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the load generator exited:\n${proc.stderr()}`));
  });
  return {
    proc,
    /** Sends one spec and resolves with its result line. */
    run(spec, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the load generator did not answer in time')), timeoutMs);
        waiting.push({
          resolve: (v) => (clearTimeout(timer), resolve(v)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        });
        proc.child.stdin.write(`${JSON.stringify(spec)}\n`);
      });
    },
  };
}
let loadGen;

/** Runs one measurement in the load generator's process and returns its summary. */
async function load(spec) {
  const full = { connections: settings.connections, duration: settings.duration, warmup: settings.warmup, ...spec };
  loadGen ??= startLoadGenerator();
  const r = JSON.parse(await loadGen.run(full, (full.warmup + full.duration) * 1000 + 60_000));
  if (r.error) throw new Error(`load generator: ${r.error}`);
  return r;
}

/**
 * The rounds of one side of a case as one result: requests over seconds for req/s, the mean p50, and
 * the worst p99 (percentiles of separate runs cannot be merged exactly; this errs on the slow side).
 */
function combine(rounds) {
  const sum = (f) => rounds.reduce((a, r) => a + f(r), 0);
  const requests = sum((r) => r.requests);
  const seconds = sum((r) => r.seconds);
  const statusCodes = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.statusCodes)) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  const mean = (f) => sum(f) / rounds.length;
  return {
    requests,
    ok: sum((r) => r.ok),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    statusCodes,
    seconds,
    rps: seconds > 0 ? requests / seconds : 0,
    latencyMs: {
      p50: mean((r) => r.latencyMs.p50),
      p90: mean((r) => r.latencyMs.p90),
      p99: Math.max(...rounds.map((r) => r.latencyMs.p99)),
      max: Math.max(...rounds.map((r) => r.latencyMs.max)),
      mean: requests > 0 ? sum((r) => r.latencyMs.mean * r.requests) / requests : 0,
    },
    roundsRps: rounds.map((r) => r.rps),
    // Cores busy during the runs (warm-up included): who had the machine's CPUs.
    cpuCores: rounds.every((r) => r.cores)
      ? { server: mean((r) => r.cores.server), loadgen: mean((r) => r.cores.loadgen) }
      : undefined,
  };
}

/** One row of results.json: the combined rounds of one side of a case and its peak memory. */
function runRow(base, r, rss) {
  const bad = r.non2xx + r.errors + r.timeouts;
  return {
    ...base,
    rps: r.rps,
    p50: r.latencyMs.p50,
    p99: r.latencyMs.p99,
    latencyMs: r.latencyMs,
    roundsRps: r.roundsRps,
    cpuCores: r.cpuCores,
    requests: r.requests,
    ok: r.ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: r.statusCodes,
    seconds: r.seconds,
    rssMB: toMB(rss.maxProcess),
    rssMaxProcessMB: toMB(rss.maxProcess),
    rssSumMB: toMB(rss.sum),
    processes: rss.processes,
    pids: rss.pids,
    ...(r.ok === 0 || bad > 0 ? { problem: `${r.ok} ok, ${r.non2xx} non-2xx ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts` } : {}),
  };
}

const runs = [];
const notes = [];
let tmp;
let baselines;

/** Starts both baseline servers (kept for the whole run; each measured run samples its own RSS). */
async function startBaselines() {
  const out = {};
  for (const kind of ['express', 'http']) {
    const port = await freePort();
    const proc = spawnNode([BASELINE, kind, String(port)], { stdout: 'ignore' });
    const url = `http://127.0.0.1:${port}`;
    await waitHttp(`${url}/json`, proc);
    out[kind] = { url, proc };
  }
  return out;
}

/** The load of a baseline with the method and body of the Parley case it is compared with. */
function baselineSpec(kind, method, body) {
  return { url: `${baselines[kind].url}/json`, method, ...(body ? { body, headers: { 'content-type': 'application/json' }, fresh: true } : {}) };
}

/** Warm-up before round `i`: the full one first, a short one later (the process is warm; connections are new). */
const warmupOf = (i) => (i === 0 ? settings.warmup : Math.min(0.5, settings.warmup));

/** A measured run of a baseline server, sampling its memory meanwhile (its VmHWM covers earlier runs, so RSS only). */
async function baselineRound(kind, spec, i) {
  const sampler = sampleRss(baselines[kind].proc.pid, { useHwm: false });
  const r = await loadMeasured(baselines[kind].proc.pid, { ...spec, warmup: warmupOf(i) });
  return { r, rss: sampler.stop() };
}

/** A load run that also records how many cores the server (with its workers) and the load generator used. */
async function loadMeasured(serverPid, spec) {
  loadGen ??= startLoadGenerator();
  const { value, cores } = await measureCpu({ server: serverPid, loadgen: loadGen.proc.pid }, () => load(spec));
  return { ...value, cores };
}

function maxRss(list) {
  return {
    maxProcess: Math.max(...list.map((x) => x.maxProcess)),
    sum: Math.max(...list.map((x) => x.sum)),
    processes: Math.max(...list.map((x) => x.processes)),
    pids: [...new Set(list.flatMap((x) => x.pids))],
  };
}

/** The floor: raw node:http on its own, in as many rounds as the cases. */
async function floorRun(method, body) {
  const spec = baselineSpec('http', method, body);
  const rounds = [];
  for (let i = 0; i < settings.rounds; i++) rounds.push(await baselineRound('http', spec, i));
  const row = runRow({ kind: 'http', id: `http-${method}`, label: `http ${method}`, method }, combine(rounds.map((x) => x.r)), maxRss(rounds.map((x) => x.rss)));
  runs.push(row);
  log(`  ${row.label}: ${row.rps.toFixed(0)} req/s, p99 ${row.p99} ms`);
}

/**
 * One Parley case on a fresh server, alternating with bare Express: in each round a bare Express
 * run, then Parley's, both with the same connections, duration and warm-up.
 * @param {{ id: string, caseId: string, label: string, db: string, template: any, workers?: number, durability?: 'full', fixedRate?: boolean }} o
 */
async function parleyCase(o) {
  const c = CASES[o.caseId];
  const base = { kind: 'parley', id: o.id, label: o.label, method: c.method, workers: o.workers ?? 1 };
  let server;
  let sampler;
  try {
    // Started (and idle) before the first baseline run, so its start-up does not load that run.
    server = await startParley({
      db: o.db, logFile: join(tmp, `${o.id}.log`), workers: o.workers, durability: o.durability, logLevel: settings.serverLogLevel, nodeArgs: settings.serverNodeArgs,
    });
    sampler = sampleRss(server.pid, { useHwm: true });
    const prepared = c.prepare ? await c.prepare(server, o.template) : undefined;
    const spec = c.spec(server, o.template, prepared);
    const expressSpec = baselineSpec('express', c.method, c.body);
    const ex = [];
    const pa = [];
    for (let i = 0; i < settings.rounds; i++) {
      ex.push(await baselineRound('express', expressSpec, i));
      pa.push(await loadMeasured(server.pid, { ...spec, warmup: warmupOf(i) }));
    }
    // The same open-loop load (see lib/load.mjs) on bare Express first: what this machine and
    // generator give at that rate, against which Parley's p99 can be read.
    let fixed;
    let fixedExpress;
    if (o.fixedRate) {
      const paced = { overallRate: settings.fixedRate, warmup: Math.min(1, settings.warmup), duration: settings.duration * settings.rounds };
      fixedExpress = await baselineRound('express', { ...expressSpec, ...paced }, 1);
      fixed = await loadMeasured(server.pid, { ...spec, ...paced });
    }
    const rss = sampler.stop();
    const express = runRow({ kind: 'express', id: `express-${c.method}`, label: `express ${c.method}`, method: c.method, for: o.id }, combine(ex.map((x) => x.r)), maxRss(ex.map((x) => x.rss)));
    runs.push(express);
    const row = runRow({ ...base, baselineRps: express.rps }, combine(pa), rss);
    row.ratio = row.rps / express.rps;
    if (row.processes > 1) row.note = `${row.processes} processes, ${row.rssSumMB.toFixed(0)} MB in all`;
    runs.push(row);
    log(`  express ${c.method}: ${express.rps.toFixed(0)} req/s, p99 ${express.p99} ms`);
    log(`  ${row.label}: ${row.rps.toFixed(0)} req/s, p99 ${row.p99} ms, ${row.ratio.toFixed(2)}x Express${row.problem ? `  PROBLEM: ${row.problem}` : ''}`);
    if (fixed && fixedExpress) {
      const lag = (r) => `generator late by ${r.sendLagMs?.p99 ?? '-'} ms at p99`;
      const fe = runRow(
        { kind: 'express', id: `express-${c.method}-${settings.fixedRate}`, label: `bare Express 5 ${c.method} at ${settings.fixedRate} req/s offered`, method: c.method, for: `${o.id}-${settings.fixedRate}`, offered: settings.fixedRate },
        combine([fixedExpress.r]),
        fixedExpress.rss,
      );
      fe.note = `open loop, the reference; ${lag(fixedExpress.r)}`;
      runs.push(fe);
      log(`  ${fe.label}: p50 ${fe.p50} ms, p99 ${fe.p99} ms${fe.problem ? `  PROBLEM: ${fe.problem}` : ''}`);
      const f = runRow(
        { ...base, id: `${o.id}-${settings.fixedRate}`, label: `${c.label} at ${settings.fixedRate} req/s offered`, baselineRps: express.rps, offered: settings.fixedRate, baselineP99: fe.p99 },
        combine([fixed]),
        rss,
      );
      f.note = `open loop; ${f.rps.toFixed(0)} req/s achieved; ${lag(fixed)}`;
      runs.push(f);
      log(`  ${f.label}: p50 ${f.p50} ms, p99 ${f.p99} ms${f.problem ? `  PROBLEM: ${f.problem}` : ''}`);
    }
    return row;
  } catch (err) {
    const row = { ...base, error: err instanceof Error ? err.message : String(err) };
    runs.push(row);
    log(`  ${o.label}: ERROR ${row.error.split('\n')[0]}`);
    return row;
  } finally {
    sampler?.stop();
    await server?.stop();
  }
}

function describeSettings() {
  const rounds = settings.rounds > 1 ? `${settings.rounds} alternating rounds of ${settings.duration} s` : `${settings.duration} s`;
  const flags = settings.serverNodeArgs.length ? `; server node flags ${settings.serverNodeArgs.join(' ')}` : '';
  return `${settings.connections} connections, ${settings.warmup} s warm-up, then ${rounds} per side; server log level ${settings.serverLogLevel} (to a file)${flags}`;
}

const t0 = Date.now();
function log(line) {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
}

function machine() {
  const c = cpus();
  return {
    cpu: `${c[0]?.model ?? 'unknown'} x ${c.length}`,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.version,
    loadavgAtStart: loadavg().map((v) => Number(v.toFixed(2))),
  };
}

function widgetSize() {
  const file = join(ROOT, 'widget/dist/widget.js');
  if (!existsSync(file)) return { error: 'widget/dist/widget.js is not built' };
  const raw = readFileSync(file);
  return { file: 'widget/dist/widget.js', rawBytes: raw.length, gzipBytes: gzipSync(raw, { level: 9 }).length, brotliBytes: brotliCompressSync(raw).length };
}

async function profileCase(caseId, template) {
  const c = CASES[caseId];
  if (!c) throw new Error(`--profile takes one of ${Object.keys(CASES).join(', ')}`);
  const dir = join(tmp, 'profile');
  const db = copyDb(template.db, join(tmp, 'profile.db'));
  // The seeder makes ids with the server's own code (server/dist), so it loads after requireBuild().
  if (caseId === 'case4') (await import('./lib/seed.mjs')).addTickets(db, SERVICE_ID, settings.sizes[settings.sizes.length - 1]);
  const server = await startParley({ db, logFile: join(tmp, 'profile.log'), nodeArgs: [...settings.serverNodeArgs, '--cpu-prof', '--cpu-prof-dir', dir], logLevel: settings.serverLogLevel });
  let r;
  try {
    const prepared = c.prepare ? await c.prepare(server, template) : undefined;
    r = await load(c.spec(server, template, prepared));
  } finally {
    await server.stop();
  }
  const { readdirSync, copyFileSync } = await import('node:fs');
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('the server wrote no profile (did it exit on SIGTERM?)');
  // test/artifacts/ is ignored by git.
  mkdirSync(join(ROOT, 'test/artifacts'), { recursive: true });
  const kept = join(ROOT, 'test/artifacts', `bench-${caseId}.cpuprofile`);
  copyFileSync(join(dir, file), kept);
  process.stdout.write(`${c.label}: ${r.rps.toFixed(0)} req/s, p99 ${r.latencyMs.p99} ms, ${r.ok} ok, ${r.non2xx} non-2xx\n`);
  // Start-up (module loading) is not what a request costs: leave it out.
  const summary = summarizeProfile(kept, { skipMs: server.readyMs + 200 });
  process.stdout.write(`profile: ${kept} (open in Chrome DevTools > Performance)\n\n${formatProfile(summary)}\n`);
}

async function main() {
  requireBuild();
  tmp = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const started = Date.now();
  const info = machine();
  try {
    log(`Parley benchmark (${settings.mode}): ${describeSettings()}`);
    log(`machine: ${info.cpu}, ${info.memoryGB} GB, ${info.os}, Node ${info.node}, load average ${info.loadavgAtStart.join(' ')}`);
    if (flags.profile) return await profileCase(flags.profile, await makeTemplate(tmp));
    // Setup only, nothing measured yet: the template, the baselines and the load generator start together.
    loadGen = startLoadGenerator();
    const [template] = await Promise.all([makeTemplate(tmp), startBaselines().then((b) => (baselines = b))]);
    log('floor: raw node:http');
    await floorRun('GET');
    await floorRun('POST', MESSAGE_BODY);

    const fresh = (id) => copyDb(template.db, join(tmp, `${id}.db`));
    const plan = [
      { id: 'case1', caseId: 'case1', label: CASES.case1.label },
      { id: 'case2', caseId: 'case2', label: CASES.case2.label, fixedRate: true },
      { id: 'case3', caseId: 'case3', label: CASES.case3.label },
    ];
    for (const p of plan) {
      if (!wanted(p.id)) continue;
      log(`${p.id}: ${p.label}`);
      await parleyCase({ ...p, db: fresh(p.id), template });
    }

    const seeding = [];
    if (wanted('case4')) {
      const db = fresh('case4');
      const { addTickets } = await import('./lib/seed.mjs');
      let have = 0;
      for (const size of settings.sizes) {
        const ms = addTickets(db, SERVICE_ID, size - have);
        seeding.push({ tickets: size, added: size - have, ms: Math.round(ms) });
        log(`case4: seeded ${fmtCount(size)} tickets (+${size - have} in ${(ms / 1000).toFixed(1)} s)`);
        have = size;
        await parleyCase({ id: `case4-${size}`, caseId: 'case4', label: `${CASES.case4.label} (${fmtCount(size)} tickets)`, db, template });
      }
      if (quick) notes.push(`quick mode: case 4 ran at ${settings.sizes.map(fmtCount).join(', ')} tickets, not 1M`);
    }

    for (const caseId of ['case1', 'case2']) {
      const id = `${caseId}-w2`;
      if (!wanted(id) && !(only?.has('case5'))) continue;
      log(`case5: ${caseId} with --workers 2`);
      const one = runs.find((r) => r.id === caseId && !r.error);
      await parleyCase({ id, caseId, label: `${CASES[caseId].label} --workers 2`, db: fresh(id), template, workers: 2 });
      const two = runs.find((r) => r.id === id && !r.error);
      if (one && two) two.note = `${(two.rps / one.rps).toFixed(2)}x 1 worker; ${two.note}`;
    }

    if (wanted('case2-full')) {
      log('case2 with PARLEY_DURABILITY=full');
      await parleyCase({ id: 'case2-full', caseId: 'case2', label: `${CASES.case2.label} durability=full`, db: fresh('case2-full'), template, durability: 'full' });
      const normal = runs.find((r) => r.id === 'case2' && !r.error);
      const full = runs.find((r) => r.id === 'case2-full' && !r.error);
      if (normal && full) full.note = `${(full.rps / normal.rps).toFixed(2)}x durability=normal (fsync per commit)`;
    }

    log('key verification, in-process');
    let keyVerification;
    try {
      keyVerification = JSON.parse(await runNode([KEYVERIFY, fresh('keys'), template.publishableKey, String(quick ? 0.5 : 2)]));
    } catch (err) {
      keyVerification = { error: err instanceof Error ? err.message : String(err) };
    }

    const widget = widgetSize();
    const targets = evaluateTargets(runs, settings);
    const rows = tableRows(runs);
    const results = {
      when: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      machine: { ...info, loadavgAtEnd: loadavg().map((v) => Number(v.toFixed(2))) },
      settings: { ...settings, keyPoolForCase4: keyPoolSize(), workDir: tmp },
      spawnedPids: spawned,
      table: rows,
      targets,
      keyVerification,
      widget,
      seeding,
      notes,
      runs,
    };
    writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);

    const out = [];
    out.push(`Parley benchmark, ${settings.mode} mode: ${describeSettings()}; load generator (autocannon) in its own process`);
    out.push(`machine: ${info.cpu}, ${info.memoryGB} GB RAM, ${info.os}, Node ${info.node}; load average ${info.loadavgAtStart.join(' ')} at start`);
    out.push('');
    out.push(formatTable(rows));
    out.push('');
    if (keyVerification.error) out.push(`key verification: ERROR ${keyVerification.error.split('\n')[0]}`);
    else {
      const p = keyVerification.parts;
      out.push(
        `key verification in-process: ${Math.round(keyVerification.verifyKey)} calls/s (${(1e6 / keyVerification.verifyKey).toFixed(1)} us); ` +
          `parts: parseKey ${Math.round(p.parseKey)}/s, sha256 ${Math.round(p.sha256)}/s, findKeyByHash ${Math.round(p.findKeyByHash)}/s`,
      );
      out.push(`rate-limit token in its own IMMEDIATE transaction, in-process: ${Math.round(keyVerification.rateLimitTransaction)} calls/s (${(1e6 / keyVerification.rateLimitTransaction).toFixed(1)} us)`);
    }
    out.push(widget.error ? `widget size: ${widget.error}` : `widget size: ${(widget.rawBytes / 1024).toFixed(1)} KiB raw, ${(widget.gzipBytes / 1024).toFixed(1)} KiB gzip -9, ${(widget.brotliBytes / 1024).toFixed(1)} KiB brotli`);
    if (seeding.length) out.push(`case 4 seeding: ${seeding.map((s) => `${fmtCount(s.tickets)} in ${(s.ms / 1000).toFixed(1)} s`).join(', ')} (tickets with one message each, one transaction per step)`);
    for (const n of notes) out.push(`note: ${n}`);
    out.push('');
    out.push('targets:');
    out.push(formatTargets(targets));
    const broken = runs.filter((r) => r.error || r.problem);
    out.push('');
    out.push(`${runs.length} runs, ${broken.length} with errors; ${results.seconds} s; results in ${outFile}`);
    for (const r of broken) out.push(`  ${r.label}: ${r.error ? r.error.split('\n')[0] : r.problem}`);
    process.stdout.write(`${out.join('\n')}\n`);
    // A broken benchmark fails; a missed target is reported, not failed.
    process.exitCode = broken.length ? 1 : 0;
  } finally {
    for (const b of Object.values(baselines ?? {})) await b.proc.stop(2000);
    loadGen?.proc.child.stdin.end();
    await loadGen?.proc.stop(2000);
    killAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  killAll();
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
