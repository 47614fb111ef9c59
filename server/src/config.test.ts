import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { BIN, requireBuild } from './test-helpers/spawn.js';

describe('loadConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    expect(loadConfig({})).toEqual({
      db: './data/parley.db',
      port: 8787,
      host: '127.0.0.1',
      trustProxy: false,
      logLevel: 'info',
      durability: 'normal',
      workers: 1,
    });
  });

  it('reads every PARLEY_* variable', () => {
    const config = loadConfig({
      PARLEY_DB: '/tmp/x.db',
      PARLEY_PORT: '9000',
      PARLEY_HOST: '0.0.0.0',
      PARLEY_TRUST_PROXY: '1',
      PARLEY_LOG_LEVEL: 'warn',
      PARLEY_DURABILITY: 'full',
      PARLEY_WORKERS: '3',
    });
    expect(config).toEqual({
      db: '/tmp/x.db', port: 9000, host: '0.0.0.0', trustProxy: 1, logLevel: 'warn', durability: 'full', workers: 3,
    });
  });

  it('lets flags beat the environment', () => {
    const config = loadConfig(
      { PARLEY_PORT: '9000', PARLEY_DB: '/env.db', PARLEY_LOG_LEVEL: 'warn', PARLEY_DURABILITY: 'full' },
      { port: '9001', db: '/flag.db', logLevel: 'debug' },
    );
    expect(config.port).toBe(9001);
    expect(config.db).toBe('/flag.db');
    expect(config.logLevel).toBe('debug');
    expect(config.durability).toBe('full'); // no flag: the environment still counts
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PARLEY_PORT: '' }).port).toBe(8787);
  });

  it('parses trust proxy as a boolean, a hop count or an address list', () => {
    expect(loadConfig({ PARLEY_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ PARLEY_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ PARLEY_TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ PARLEY_TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toBe('loopback, 10.0.0.0/8');
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  const bad: [string, string][] = [
    ['PARLEY_PORT', 'abc'],
    ['PARLEY_PORT', '70000'],
    ['PARLEY_PORT', '1e3'],
    ['PARLEY_PORT', ' 80'],
    ['PARLEY_DURABILITY', 'maybe'],
    ['PARLEY_LOG_LEVEL', 'loud'],
    ['PARLEY_WORKERS', '0'],
    ['PARLEY_WORKERS', '2.5'],
    // Express would throw on these when the app is built: `invalid IP address: yes`, naming nothing.
    ['PARLEY_TRUST_PROXY', 'yes'],
    ['PARLEY_TRUST_PROXY', '10.0.0.0/99'],
    ['PARLEY_TRUST_PROXY', 'loopback, nonsense'],
  ];
  it.each(bad)('refuses %s=%j with a ConfigError naming the variable', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`${name}=${JSON.stringify(value)}`);
    expect(message).toMatch(/expected /);
    expect(message).not.toContain('\n');
  });

  it('names the flag, not the variable, when the flag is the bad value', () => {
    expect(() => loadConfig({ PARLEY_PORT: '9000' }, { port: 'nope' })).toThrow(/--port="nope"/);
    expect(() => loadConfig({}, { workers: '0' })).toThrow(/--workers="0": expected a whole number from 1 to 64/);
    // A good flag hides a bad variable: flags beat the environment.
    expect(loadConfig({ PARLEY_PORT: 'abc' }, { port: '1234' }).port).toBe(1234);
  });

  it('lists the accepted values in the message', () => {
    expect(() => loadConfig({ PARLEY_DURABILITY: 'maybe' })).toThrow(/expected normal or full/);
    expect(() => loadConfig({ PARLEY_LOG_LEVEL: 'loud' })).toThrow(/expected one of fatal, error, warn, info, debug, trace, silent/);
  });
});

describe('parley serve with a bad configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ PARLEY_PORT: 'abc' }, [], /^parley: invalid PARLEY_PORT="abc": expected a whole number from 0 to 65535$/],
    [{ PARLEY_DURABILITY: 'maybe' }, [], /^parley: invalid PARLEY_DURABILITY="maybe"/],
    [{ PARLEY_LOG_LEVEL: 'loud' }, [], /^parley: invalid PARLEY_LOG_LEVEL="loud"/],
    [{ PARLEY_WORKERS: '0' }, [], /^parley: invalid PARLEY_WORKERS="0"/],
    [{ PARLEY_TRUST_PROXY: 'yes' }, [], /^parley: invalid PARLEY_TRUST_PROXY="yes": expected true, false, a hop count or a list of addresses$/],
    [{}, ['--trust-proxy', '10.0.0.0/99'], /^parley: invalid --trust-proxy="10.0.0.0\/99"/],
    [{}, ['--port', 'abc'], /^parley: invalid --port="abc"/],
  ];
  it.each(cases)('env %j flags %j: exit 2 with one stderr line naming it', (env, flags, line) => {
    requireBuild();
    const r = spawnSync(process.execPath, [BIN, 'serve', '--db', join(dir, 'p.db'), ...flags], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });
});
