// Global setup of the reliability project: a shared folder where each test file leaves its counters,
// the secrets it minted and the server log lines it saw; the teardown sums them into the one summary
// line `pnpm test:reliability` ends with, and checks every secret against every log line of the run.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SUMMARY_FILE = fileURLToPath(new URL('../artifacts/reliability-summary.txt', import.meta.url));

interface Counters {
  requests: number;
  badInputs: number;
  crashes: number;
  lost: number;
  crossReads: number;
}

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'parley-reliability-'));
  process.env.PARLEY_RELIABILITY_DIR = dir;
  return () => {
    const total: Counters = { requests: 0, badInputs: 0, crashes: 0, lost: 0, crossReads: 0 };
    const secrets = new Set<string>();
    const logFiles: string[] = [];
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.startsWith('counters-')) {
        const c = JSON.parse(readFileSync(path, 'utf8')) as Counters;
        for (const k of Object.keys(total) as (keyof Counters)[]) total[k] += c[k] ?? 0;
      } else if (name.startsWith('secrets-')) {
        for (const s of readFileSync(path, 'utf8').split('\n')) if (s.length >= 16) secrets.add(s);
      } else if (name.startsWith('logs-')) logFiles.push(path);
    }
    // Every secret of every file against every log line of every file: a leak across files counts too.
    let leaks = 0;
    let lines = 0;
    for (const file of logFiles) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        lines++;
        for (const s of secrets) {
          if (line.includes(s)) {
            leaks++;
            console.error(`reliability: a minted secret (${s.slice(0, 12)}...) appears in a log line: ${line.slice(0, 200)}`);
          }
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
    const summary =
      `requests tried ${total.requests}, bad inputs tried ${total.badInputs}, crashes survived ${total.crashes}, ` +
      `acknowledged writes lost ${total.lost}, cross-party reads that succeeded ${total.crossReads}`;
    const secretsLine = `secrets checked ${secrets.size} against ${lines} log lines: ${leaks} found in logs`;
    mkdirSync(join(SUMMARY_FILE, '..'), { recursive: true });
    writeFileSync(SUMMARY_FILE, `${secretsLine}\n${summary}\n`);
    console.log(`\n${secretsLine}`);
    console.log(summary);
    if (leaks > 0 || total.lost > 0 || total.crossReads > 0) process.exitCode = 1;
  };
}
