#!/usr/bin/env node
// The whole test suite in one command (`pnpm test`): every vitest project, then the contract smoke
// test kept beside the SPEC when it is there. Ends with one plain line: `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'parley-vitest-')), 'results.json');
const extra = process.argv.slice(2);

const vitest = spawnSync(
  process.execPath,
  [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...extra],
  { cwd: root, stdio: 'inherit', env: process.env },
);

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(out)) {
  const r = JSON.parse(readFileSync(out, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A file that failed to load has no tests but still failed.
  failed += (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
  rmSync(out, { force: true });
} else {
  failed += 1;
  console.error('vitest wrote no results');
}
if (vitest.status !== 0 && failed === 0) failed += 1;

const smoke = join(root, '..', 'shared', 'conformance', 'smoke.mjs');
if (extra.length === 0 && existsSync(smoke)) {
  console.log('\nContract smoke test (../shared/conformance/smoke.mjs):');
  const s = spawnSync(process.execPath, [smoke], { cwd: root, encoding: 'utf8', env: process.env });
  process.stdout.write(s.stdout.replace(/^(\d+) passed, (\d+) failed\s*$/m, 'smoke: $1 passed, $2 failed'));
  process.stderr.write(s.stderr);
  const m = /(\d+) passed, (\d+) failed/.exec(s.stdout);
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (!m || s.status !== 0) failed += m && Number(m[2]) > 0 ? 0 : 1;
}

console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
