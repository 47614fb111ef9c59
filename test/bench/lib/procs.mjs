// Child processes of the benchmark: each in its own process group, all killed when the run ends
// (normally, on error, or on Ctrl-C), plus the peak-RSS sampler that reads /proc.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();
/** Every pid this run spawned, for the record (and for the test that none outlives the run). */
export const spawned = [];

/** Kills the process group of `child` (SIGKILL) if it still runs. Safe to call twice. */
function killGroup(child, signal = 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Kills every process this run started that is still alive. */
export function killAll() {
  for (const child of live) killGroup(child);
  live.clear();
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Spawns `node ...args` detached (its own process group, so workers die with it).
 * @param {string[]} args arguments after the node binary
 * @param {{ env?: Record<string, string>, stdin?: 'pipe' | 'ignore', stdout?: 'pipe' | 'ignore' | number, cwd?: string }} [opts]
 */
export function spawnNode(args, opts = {}) {
  hookExit();
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true,
    stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe'],
  });
  live.add(child);
  if (child.pid !== undefined) spawned.push(child.pid);
  let stderr = '';
  child.stderr?.on('data', (c) => {
    stderr = (stderr + c.toString('utf8')).slice(-8000);
  });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid: /** @type {number} */ (child.pid),
    exited,
    stderr: () => stderr,
    /** SIGTERM (graceful drain), then SIGKILL of the whole group after `graceMs`. */
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // gone already
      }
      const timer = setTimeout(() => killGroup(child), graceMs);
      const r = await exited;
      clearTimeout(timer);
      // Workers of a cluster primary share its group; make sure none outlive it.
      killGroup(child);
      return r;
    },
  };
}

/**
 * Runs `node ...args` to completion and returns its stdout (throws with stderr on failure).
 * @param {string[]} args
 * @param {{ env?: Record<string, string>, timeoutMs?: number }} [opts]
 */
export async function runNode(args, opts = {}) {
  const p = spawnNode(args, { env: opts.env });
  let out = '';
  p.child.stdout?.on('data', (c) => {
    out += c.toString('utf8');
  });
  const timer = setTimeout(() => killGroup(p.child), opts.timeoutMs ?? 120_000);
  const { code, signal } = await p.exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`node ${args.join(' ')} failed (${signal ?? code}):\n${p.stderr().trim()}\n${out.trim().slice(-2000)}`);
  }
  return out;
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls GET `url` until it answers 200 or `timeoutMs` passes.
 * @param {string} url
 * @param {{ exited?: Promise<unknown>, stderr?: () => string }} proc the process that should answer
 */
export async function waitHttp(url, proc, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  proc.exited?.then(() => {
    dead = true;
  });
  for (;;) {
    if (dead) throw new Error(`the server exited before answering ${url}:\n${proc.stderr?.() ?? ''}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs} ms:\n${proc.stderr?.() ?? ''}`);
    await sleep(50);
  }
}

/** The pid and its child pids (cluster workers), from /proc. */
export function processTree(pid) {
  const pids = [pid];
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (kids) pids.push(...kids.split(/\s+/).map(Number));
  } catch {
    // gone, or no /proc (not Linux)
  }
  return pids;
}

/** `VmRSS` and `VmHWM` (peak) of a process in bytes, or null when it is gone. */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * Samples the resident memory of `pid` and its children every `everyMs` until stopped.
 * The result holds the peak per process (the larger of the sampled RSS and the kernel's
 * high-water mark `VmHWM` when `useHwm`) and the peak of the sum over the processes.
 * Use `useHwm` only for processes started for this one measurement: VmHWM covers a process's whole life.
 */
export function sampleRss(pid, { everyMs = 100, useHwm = true } = {}) {
  /** @type {Map<number, number>} */
  const peak = new Map();
  let peakSum = 0;
  const sample = () => {
    let sum = 0;
    for (const p of processTree(pid)) {
      const m = memoryOf(p);
      if (!m) continue;
      const v = useHwm ? Math.max(m.rss, m.hwm) : m.rss;
      peak.set(p, Math.max(peak.get(p) ?? 0, v));
      sum += m.rss;
    }
    peakSum = Math.max(peakSum, sum);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    /** Stops sampling; returns bytes: the largest single process, the sum, and each process. */
    stop() {
      sample();
      clearInterval(timer);
      const perProcess = [...peak.values()];
      return { maxProcess: Math.max(0, ...perProcess), sum: Math.max(peakSum, 0), perProcess, processes: perProcess.length, pids: [...peak.keys()] };
    },
  };
}

let ticksPerSecond;
/** CPU time (user + system) of `pids` so far, in seconds; processes that are gone count 0. */
export function cpuSeconds(pids) {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  let ticks = 0;
  for (const pid of pids) {
    try {
      // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks / ticksPerSecond;
}

/**
 * How many cores the process trees of `roots` used while `fn` ran (their children included, as
 * found when it started), so a report can show who had the machine's CPUs.
 * @template T
 * @param {Record<string, number>} roots name -> pid
 * @param {() => Promise<T>} fn
 * @returns {Promise<{ value: T, cores: Record<string, number> }>}
 */
export async function measureCpu(roots, fn) {
  const trees = Object.fromEntries(Object.entries(roots).map(([k, pid]) => [k, processTree(pid)]));
  const before = Object.fromEntries(Object.entries(trees).map(([k, pids]) => [k, cpuSeconds(pids)]));
  const t = performance.now();
  const value = await fn();
  const wall = (performance.now() - t) / 1000;
  const cores = Object.fromEntries(Object.entries(trees).map(([k, pids]) => [k, wall > 0 ? (cpuSeconds(pids) - before[k]) / wall : 0]));
  return { value, cores };
}
