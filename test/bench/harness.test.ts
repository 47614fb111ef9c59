// The benchmark harness itself, run on a tiny duration so it cannot rot: every case must produce
// successful requests and no refusals, the table and results.json must keep their shape, and no
// process it started may outlive it. Figures are not judged here (a shared machine decides them).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN = join(ROOT, 'test/bench/run.mjs');

interface Run {
  kind: 'parley' | 'express' | 'http';
  id: string;
  label: string;
  error?: string;
  problem?: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  rssMB: number;
  cpuCores: { server: number; loadgen: number };
  processes: number;
  pids: number[];
  ratio?: number;
  offered?: number;
}

function node(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Those of `pids` still alive as one of the benchmark's processes (a reused pid is someone else's). */
function stillRunning(pids: number[]): string[] {
  const found: string[] = [];
  for (const pid of new Set(pids)) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/test\/bench\/|parley\.js serve/.test(cmd)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone, as it should be
    }
  }
  return found;
}

describe('pnpm bench --quick harness (tiny durations)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-test-'));
  const out = join(dir, 'results.json');
  let result: { code: number; stdout: string; stderr: string };
  let doc: {
    settings: { mode: string; sizes: number[]; workDir: string };
    table: { label: string; rps?: number; error?: string }[];
    targets: { name: string; want: string; pass: boolean | null }[];
    runs: Run[];
    keyVerification: { verifyKey: number; parts: Record<string, number>; rateLimitTransaction: number; error?: string };
    widget: { rawBytes?: number; gzipBytes?: number; error?: string };
    seeding: { tickets: number; ms: number }[];
    machine: { cpu: string; node: string };
    spawnedPids: number[];
  };

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'server/dist/cli/index.js'))) {
      throw new Error('server/dist is missing: run `pnpm --filter @parley/shared --filter @parley/server build` first');
    }
    result = await node([RUN, '--quick', '--duration', '1', '--warmup', '0.2', '--connections', '2', '--sizes', '1000,3000', '--out', out], 110_000);
    if (existsSync(out)) doc = JSON.parse(readFileSync(out, 'utf8'));
  }, 115_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finishes with exit code 0 and writes results.json', () => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(doc).toBeDefined();
    expect(doc.settings.mode).toBe('quick');
    expect(doc.settings.sizes).toEqual([1000, 3000]);
  });

  it('measures every case, each with successful requests and no refusals or errors', () => {
    const ids = doc.runs.filter((r) => r.kind === 'parley').map((r) => r.id);
    expect(ids).toEqual(['case1', 'case2', 'case2-1000', 'case3', 'case4-1000', 'case4-3000', 'case1-w2', 'case2-w2', 'case2-full']);
    for (const r of doc.runs) {
      expect(r.error, r.label).toBeUndefined();
      expect(r.problem, r.label).toBeUndefined();
      expect(r.ok, r.label).toBeGreaterThan(0);
      expect(r.non2xx + r.errors, r.label).toBe(0);
      expect(r.rps, r.label).toBeGreaterThan(0);
      expect(r.p99, r.label).toBeGreaterThanOrEqual(r.p50);
      expect(r.rssMB, r.label).toBeGreaterThan(10);
      // Both sides did work while measured (a server whose CPU we failed to read shows 0).
      expect(r.cpuCores.server, r.label).toBeGreaterThan(0);
      expect(r.cpuCores.loadgen, r.label).toBeGreaterThan(0);
    }
    // Baselines alternate with Parley: one bare Express run before each Parley case.
    const kinds = doc.runs.filter((r) => r.offered === undefined).map((r) => r.kind);
    expect(kinds.slice(0, 2)).toEqual(['http', 'http']);
    for (let i = 2; i < kinds.length; i += 2) expect(kinds.slice(i, i + 2)).toEqual(['express', 'parley']);
    for (const r of doc.runs.filter((x) => x.kind === 'parley' && x.offered === undefined)) expect(r.ratio, r.label).toBeGreaterThan(0);
    // The fixed-rate case is open loop, at the offered rate, after bare Express at the same rate.
    const paced = doc.runs.filter((r) => r.offered !== undefined);
    expect(paced.map((r) => [r.kind, r.id])).toEqual([['express', 'express-POST-1000'], ['parley', 'case2-1000']]);
    for (const r of paced) expect(r.offered).toBe(1000);
    // Two workers are two processes under their primary, all sampled.
    expect(doc.runs.find((r) => r.id === 'case1-w2')!.processes).toBe(3);
    expect(doc.runs.find((r) => r.id === 'case1')!.processes).toBe(1);
  });

  it('reports key verification, widget size and seeding', () => {
    expect(doc.keyVerification.error).toBeUndefined();
    expect(doc.keyVerification.verifyKey).toBeGreaterThan(0);
    expect(Object.keys(doc.keyVerification.parts).sort()).toEqual(['findKeyByHash', 'parseKey', 'sha256']);
    expect(doc.keyVerification.rateLimitTransaction).toBeGreaterThan(0);
    if (existsSync(join(ROOT, 'widget/dist/widget.js'))) {
      expect(doc.widget.rawBytes).toBeGreaterThan(doc.widget.gzipBytes!);
      expect(doc.widget.gzipBytes).toBeGreaterThan(0);
    } else {
      expect(doc.widget.error).toMatch(/not built/);
    }
    expect(doc.seeding.map((s) => s.tickets)).toEqual([1000, 3000]);
  });

  it('prints the table with a ratio per case and a verdict per target', () => {
    const lines = result.stdout.split('\n');
    expect(lines.some((l) => /^case\s+req\/s\s+p50 ms\s+p99 ms\s+peak RSS MB\s+x Express/.test(l))).toBe(true);
    for (const row of doc.table) {
      expect(row.error, row.label).toBeUndefined();
      expect(lines.some((l) => l.startsWith(row.label)), row.label).toBe(true);
    }
    expect(doc.targets).toHaveLength(6);
    for (const t of doc.targets) {
      expect(t.pass, t.name).not.toBeNull();
      expect(lines.some((l) => new RegExp(`^(PASS|MISS) +${t.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`).test(l)), t.name).toBe(true);
    }
    expect(result.stdout).toMatch(/quick mode: case 4 ran at 1k, 3k tickets, not 1M/);
  });

  it('profiles one case with --profile and summarises where the time went', async () => {
    const r = await node([RUN, '--profile', 'case1', '--duration', '1', '--warmup', '0.2', '--connections', '2'], 60_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^GET \/v1\/widget\/:sid\/config: \d+ req\/s, p99 [\d.]+ ms, [1-9]\d* ok, 0 non-2xx$/m);
    expect(r.stdout).toMatch(/by area:\n +[\d.]+% /);
    expect(r.stdout).toMatch(/by function:\n +[\d.]+% /);
    expect(existsSync(join(ROOT, 'test/artifacts/bench-case1.cpuprofile'))).toBe(true);
  }, 65_000);

  it('leaves no process or work directory behind', () => {
    expect(doc.settings.workDir).toContain('parley-bench-');
    expect(existsSync(doc.settings.workDir)).toBe(false);
    // Servers, their workers, baselines, the load generator and the CLI setup commands.
    const pids = [...doc.spawnedPids, ...doc.runs.flatMap((r) => r.pids)];
    expect(pids.length).toBeGreaterThan(15);
    expect(stillRunning(pids)).toEqual([]);
  });
});
