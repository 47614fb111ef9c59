// `--help` on every command and subcommand: the usage on stdout, nothing on stderr, exit 0, and
// nothing touched (no database created), whatever else the command line holds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, requireBuild } from '../test-helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'parley-cli-help-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  requireBuild();
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('parley <command> --help', () => {
  const cases: [string[], RegExp][] = [
    [['serve'], /^usage: parley serve \[--port 8787\]/],
    [['demo'], /^usage: parley demo /],
    [['workspace'], /^usage: parley workspace create <name>/],
    [['workspace', 'create'], /^usage: parley workspace create <name>/],
    [['site'], /^usage: parley site create <service-id> --name N --origin O/],
    [['site', 'create'], /^usage: parley site create <service-id> --name N --origin O/],
    [['key'], /^usage: parley key create .*\| key list .*\| key revoke <id> \| key rotate <id>/],
    ...(['create', 'list', 'revoke', 'rotate'].map((sub): [string[], RegExp] => [['key', sub], /^usage: parley key create /])),
  ];

  for (const [args, usage] of cases) {
    for (const flag of ['--help', '-h']) {
      it(`${args.join(' ')} ${flag} prints the usage and exits 0`, () => {
        const db = join(root, `${args.join('-')}${flag}`, 'parley.db');
        const r = run([...args, flag, '--db', db]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(usage);
        expect(r.stdout.trim().split('\n')).toHaveLength(1);
        expect(existsSync(db)).toBe(false);
      });
    }
  }

  it('wins over missing required flags, unknown flags and a bad environment', () => {
    const db = join(root, 'mixed', 'parley.db');
    const site = run(['site', 'create', '--colour', 'red', '--help', '--db', db]);
    expect(site.stderr).toBe('');
    expect(site.code).toBe(0);
    expect(site.stdout).toMatch(/^usage: parley site create /);
    const serve = run(['serve', '--help'], { PARLEY_PORT: 'not-a-port' });
    expect(serve.stderr).toBe('');
    expect(serve.code).toBe(0);
    expect(serve.stdout).toMatch(/^usage: parley serve /);
    expect(existsSync(db)).toBe(false);
  });

  it('after `--` is an argument, not a request for help', () => {
    const r = run(['workspace', 'create', '--db', join(root, 'dashdash', 'parley.db'), '--json', '--', '--help']);
    // `--help` is the workspace's name here: created, not a usage.
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).workspace.name).toBe('--help');
  });
});
