// `parley key create|list|revoke|rotate` as a user runs it: real processes over a real database,
// `--json` parsed as exactly one document, bad arguments as one stderr line and exit 2. Keys it makes
// are checked against a running server where it matters (revocation is seen on the next request).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKey } from '@parley/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestServer, type TestServer } from '../test-helpers/harness.js';
import { BIN, requireBuild } from '../test-helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'parley-cli-key-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dbPath = '';
/** Runs the CLI as a child process (asynchronously: the test server shares this event loop). */
function run(...args: string[]): Promise<Run> {
  requireBuild();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, PARLEY_DB: dbPath }, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs with --json and parses stdout as exactly one JSON document. */
async function json(...args: string[]): Promise<any> {
  const r = await run(...args, '--json');
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** A usage error: exit 2, nothing on stdout, exactly one line on stderr. */
async function usageError(...args: string[]): Promise<string> {
  const r = await run(...args);
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l.trim());
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^parley: /);
  return lines[0]!;
}

let t: TestServer;
let admin: { live: string; test: string };
const site = 'cli-site';
beforeAll(async () => {
  dbPath = join(root, 'p.db');
  const ws = await json('workspace', 'create', 'Acme');
  admin = { live: ws.keys.live.secret, test: ws.keys.test.secret };
  await json('site', 'create', site, '--name', 'Site', '--origin', 'https://cli.example');
  await json('site', 'create', 'cli-other', '--name', 'Other', '--origin', 'https://other.example');
  // A server over the same database file sees what the CLI writes.
  t = await startTestServer({ dbPath, dir: root });
});
afterAll(() => t.close());

/** A request to the server, whose clock is moved to real time first: the CLI stamps keys with Date.now(). */
function api(...args: Parameters<typeof call> extends [string, ...infer R] ? R : never) {
  t.clock.set(Date.now());
  return call(t.base, ...args);
}

describe('parley key create', () => {
  it('makes a secret key with scopes, a restriction and an expiry; the plaintext once', async () => {
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const doc = await json('key', 'create', '--type', 'secret', '--name', 'ci', '--scopes', 'read,write', '--sites', site, '--expires-at', expires);
    expect(Object.keys(doc)).toEqual(['key']);
    expect(doc.key).toMatchObject({ type: 'secret', environment: 'live', name: 'ci', scopes: ['read', 'write'], sites: [site], site: null, expires_at: expires, revoked_at: null });
    expect(parseKey(doc.key.secret)?.environment).toBe('live');
    expect((await api('GET', `/v1/sites/${site}/tickets`, { key: doc.key.secret })).status).toBe(200);
    expect((await api('GET', '/v1/sites/cli-other', { key: doc.key.secret })).json.error.code).toBe('site_mismatch');
  });

  it('makes publishable and test keys', async () => {
    const pk = await json('key', 'create', '--type', 'publishable', '--name', 'widget', '--site', site, '--env', 'test');
    expect(pk.key).toMatchObject({ type: 'publishable', environment: 'test', site, scopes: ['widget'] });
    expect(pk.key.secret).toMatch(/^pk_test_/);
    const sk = await json('key', 'create', '--type', 'secret', '--name', 't', '--env', 'test');
    expect(sk.key.secret).toMatch(/^sk_test_/);
    expect(sk.key.scopes).toEqual(['read']);
  });

  it('prints human text without --json, the secret on its own line', async () => {
    const r = await run('key', 'create', '--type', 'secret', '--name', 'human');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Key key_\S+ created/);
    expect(r.stdout).toMatch(/^ {2}sk_live_[0-9A-Za-z]{49}$/m);
  });

  it.each([
    [['key', 'create', '--name', 'x'], /--type/],
    [['key', 'create', '--type', 'secret'], /--name/],
    [['key', 'create', '--type', 'root', '--name', 'x'], /--type/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--scopes', 'read,root'], /--scopes/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--env', 'prod'], /--env/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--expires-at', 'soon'], /--expires-at/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--expires-at', '2001-01-01T00:00:00Z'], /expires_at/],
    [['key', 'create', '--type', 'publishable', '--name', 'x'], /site/],
    [['key', 'create', '--type', 'publishable', '--name', 'x', '--site', 'no-such-site'], /site/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--site', site], /site/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--grace-seconds', '5'], /--grace-seconds/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--workspace', 'ws_nope'], /workspace/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--bogus'], /bogus/],
    [['key', 'create', 'extra', '--type', 'secret', '--name', 'x'], /positional/],
    [['key'], /create, list, revoke or rotate/],
    [['key', 'destroy'], /destroy/],
    [['key', 'revoke'], /key id/],
    [['key', 'revoke', 'key_nope'], /no key/],
    [['key', 'rotate', 'key_nope'], /no key/],
    [['key', 'list', '--env', 'staging'], /--env/],
    [['key', 'create', '--type', 'secret', '--name', 'x', '--name', 'y'], /--name is given more than once/],
    [['key', 'list', '--env', 'live', '--env', 'test'], /--env is given more than once/],
  ])('%j is a usage error naming %s', async (args, named) => {
    const before = (await json('key', 'list')).keys.length;
    expect(await usageError(...(args as string[]))).toMatch(named as RegExp);
    expect((await json('key', 'list')).keys.length).toBe(before);
  });
});

describe('parley key list', () => {
  it('lists both environments, or one with --env; never a secret', async () => {
    const all = await json('key', 'list');
    expect(Object.keys(all).sort()).toEqual(['keys', 'next_cursor']);
    expect(all.keys.some((k: any) => k.environment === 'live')).toBe(true);
    expect(all.keys.some((k: any) => k.environment === 'test')).toBe(true);
    for (const k of all.keys) {
      expect(k.secret).toBeUndefined();
      expect(Object.keys(k)).not.toContain('hash');
    }
    const test = await json('key', 'list', '--env', 'test');
    expect(test.keys.length).toBeGreaterThan(0);
    expect(test.keys.every((k: any) => k.environment === 'test')).toBe(true);
    const text = await run('key', 'list');
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/(sk|pk)_(live|test)_[0-9A-Za-z]{20}/);
    expect(text.stdout.split('\n').filter(Boolean).length).toBe(all.keys.length);
  });
});

describe('parley key revoke and rotate', () => {
  it('revoke: the running server refuses the key on its next request', async () => {
    const { key } = await json('key', 'create', '--type', 'secret', '--name', 'doomed');
    expect((await api('GET', '/v1/sites', { key: key.secret })).status).toBe(200);
    const doc = await json('key', 'revoke', key.id);
    expect(doc.key).toMatchObject({ id: key.id });
    expect(doc.key.revoked_at).not.toBeNull();
    expect(doc.key.secret).toBeUndefined();
    const r = await api('GET', '/v1/sites', { key: key.secret });
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('invalid_api_key');
  });

  it('rotate without grace: a new key with the same settings; the old one is refused now', async () => {
    const { key: old } = await json('key', 'create', '--type', 'secret', '--name', 'deploy', '--scopes', 'read,admin');
    const { key } = await json('key', 'rotate', old.id);
    expect(key).toMatchObject({ name: 'deploy', scopes: ['read', 'admin'], type: 'secret', environment: 'live' });
    expect(key.id).not.toBe(old.id);
    expect((await api('GET', '/v1/sites', { key: old.secret })).status).toBe(401);
    expect((await api('GET', '/v1/keys', { key: key.secret })).status).toBe(200);
  });

  it('rotate with --grace-seconds: the old key keeps working until then', async () => {
    const { key: old } = await json('key', 'create', '--type', 'secret', '--name', 'graceful');
    const { key } = await json('key', 'rotate', old.id, '--grace-seconds', '3600');
    expect((await api('GET', '/v1/sites', { key: old.secret })).status).toBe(200);
    expect((await api('GET', '/v1/sites', { key: key.secret })).status).toBe(200);
    const listed = (await json('key', 'list')).keys.find((k: any) => k.id === old.id);
    const end = Date.parse(listed.revoked_at);
    expect(end).toBeGreaterThan(Date.now() + 3_500_000);
    expect(end).toBeLessThan(Date.now() + 3_700_000);
    // Rotating again is refused (rotate its successor), one line, exit 2.
    expect(await usageError('key', 'rotate', old.id)).toMatch(/successor/);
    for (const bad of ['-1', '604801', 'soon']) expect(await usageError('key', 'rotate', key.id, '--grace-seconds', bad)).toMatch(/--grace-seconds/);
  });

  it('with several workspaces, --workspace is needed to create, list, revoke or rotate, and names whose key it is', async () => {
    const first = (await json('key', 'create', '--type', 'secret', '--name', 'first-ws')).key;
    const second = await json('workspace', 'create', 'Second');
    expect(await usageError('key', 'list')).toMatch(/--workspace/);
    expect(await usageError('key', 'create', '--type', 'secret', '--name', 'x')).toMatch(/--workspace/);
    expect(await usageError('key', 'revoke', first.id)).toMatch(/--workspace/);
    expect(await usageError('key', 'rotate', first.id)).toMatch(/--workspace/);
    // Another workspace's key is no key of this one.
    expect(await usageError('key', 'revoke', first.id, '--workspace', second.workspace.id)).toMatch(/no key/);
    const listed = (await json('key', 'list', '--workspace', second.workspace.id)).keys.map((k: any) => k.id);
    expect(listed).not.toContain(first.id);
    const mine = second.keys.live;
    expect((await json('key', 'revoke', mine.id, '--workspace', second.workspace.id)).key.revoked_at).not.toBeNull();
  });
});
