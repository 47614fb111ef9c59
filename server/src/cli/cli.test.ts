// The CLI as a user runs it: `node server/bin/parley.js ...` in a real process over a real database.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseKey } from '@parley/shared';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../util.js';
import { BIN, exitWithin, freePort, parley, rawRequest, requireBuild, type Proc } from '../test-helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'parley-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
const freshDb = () => join(root, `db-${++n}`, 'parley.db');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Non-empty stderr lines. */
  lines: string[];
}

function run(args: string[], env: Record<string, string> = {}): Run {
  requireBuild();
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.split('\n').filter((l) => l.trim()) };
}

/** Reads the database the CLI wrote, read-only. */
function query<T>(dbPath: string, sql: string, ...args: unknown[]): T[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

/** A key works when its hash is stored and it is not revoked. */
function works(dbPath: string, key: string): boolean {
  return query<{ revoked_at: number | null }>(dbPath, 'SELECT revoked_at FROM api_keys WHERE hash = ?', sha256(key)).some((r) => r.revoked_at === null);
}

function expectKey(key: unknown, prefix: string) {
  expect(typeof key).toBe('string');
  expect(key).toHaveLength(57);
  expect((key as string).startsWith(prefix)).toBe(true);
  expect(parseKey(key)).not.toBeNull(); // shape and checksum
}

function createWorkspace(db: string, name = 'Acme'): { id: string; live: string; test: string } {
  const r = run(['workspace', 'create', name, '--db', db, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout);
  return { id: doc.workspace.id, live: doc.keys.live.secret, test: doc.keys.test.secret };
}

describe('parley workspace create', () => {
  it('--json prints exactly one JSON document with the workspace and its two secret keys', () => {
    const db = freshDb();
    const r = run(['workspace', 'create', 'Acme', '--db', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout); // throws if anything else were printed
    expect(Object.keys(doc).sort()).toEqual(['keys', 'workspace']);
    expect(doc.workspace).toEqual({ id: expect.stringMatching(/^ws_/), name: 'Acme', created_at: expect.any(String) });
    expect(new Date(doc.workspace.created_at).toISOString()).toBe(doc.workspace.created_at);
    for (const env of ['live', 'test'] as const) {
      const key = doc.keys[env];
      expectKey(key.secret, `sk_${env}_`);
      expect(key).toMatchObject({ type: 'secret', environment: env, scopes: ['read', 'write', 'admin'], revoked_at: null, prefix: key.secret.slice(0, 12) });
      expect(works(db, key.secret)).toBe(true);
    }
    expect(doc.keys.live.secret).not.toBe(doc.keys.test.secret);
    // Stored hashed, never in plaintext.
    const stored = JSON.stringify(query(db, 'SELECT * FROM api_keys'));
    expect(stored).not.toContain(doc.keys.live.secret);
  });

  it('without --json prints the keys for a human', () => {
    const db = freshDb();
    const r = run(['workspace', 'create', 'Acme Inc', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Workspace ws_\S+ \(Acme Inc\) created/);
    expect(r.stdout).toMatch(/live: sk_live_[0-9A-Za-z]{49}\n/);
    expect(r.stdout).toMatch(/test: sk_test_[0-9A-Za-z]{49}\n/);
  });

  it('takes a name of 100 characters as a reader counts them (emoji with their parts), not 101', () => {
    const family = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}';
    const db = freshDb();
    const ok = run(['workspace', 'create', family.repeat(100), '--db', db, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).workspace.name).toBe(family.repeat(100));
    for (const bad of [family.repeat(101), '\u200B\u200E']) {
      const over = run(['workspace', 'create', bad, '--db', db, '--json']);
      expect([over.code, over.stderr]).toEqual([2, expect.stringContaining('1 to 100 characters')]);
    }
  });

  it('does not read the variables of serve: a bad PARLEY_PORT or PARLEY_WORKERS stops no one-shot command', () => {
    const db = freshDb();
    const env = { PARLEY_PORT: 'abc', PARLEY_WORKERS: 'many', PARLEY_HOST: '', PARLEY_TRUST_PROXY: 'yes', PARLEY_LOG_LEVEL: 'loud' };
    const r = run(['workspace', 'create', 'Env', '--db', db, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(run(['site', 'create', 'env-site', '--name', 'E', '--origin', 'https://e.example', '--db', db, '--json'], env).code).toBe(0);
    expect(run(['key', 'list', '--db', db, '--json'], env).code).toBe(0);
    // What they do read is still checked.
    const bad = run(['key', 'list', '--db', db], { PARLEY_DURABILITY: 'sometimes' });
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('PARLEY_DURABILITY')]);
  });

  it('honours PARLEY_DB', () => {
    const db = freshDb();
    const r = run(['workspace', 'create', 'Env', '--json'], { PARLEY_DB: db });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(db)).toBe(true);
  });

  it.each([
    [['workspace', 'create'], /exactly one name/],
    [['workspace', 'create', 'a', 'b'], /exactly one name/],
    [['workspace', 'delete', 'x'], /unknown workspace command "delete"/],
    [['workspace', 'create', 'Acme', '--bogus'], /unknown option '--bogus'/i],
    [['workspace', 'create', ' '], /1 to 100 characters/],
  ])('%j: exit 2 with one line on stderr', (args, message) => {
    const db = freshDb();
    const r = run([...args, '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^parley: /);
    expect(r.lines[0]).toMatch(message);
  });
});

describe('parley site create', () => {
  it('--json prints the site and its two publishable keys', () => {
    const db = freshDb();
    const ws = createWorkspace(db);
    const r = run(['site', 'create', 'acme-help', '--name', 'Acme', '--origin', 'https://acme.example', '--db', db, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(['publishable_keys', 'site']);
    expect(doc.site).toMatchObject({
      service_id: 'acme-help',
      name: 'Acme',
      allowed_origins: ['https://acme.example'],
      allow_server_requests: false,
      rate_limit_per_minute: 120,
      daily_spend_cap_micros: 5_000_000,
      prices: { 'ticket.create': 10_000, 'message.create': 1_000 },
      widget: { greeting: expect.any(String), color: expect.any(String), position: expect.any(String), require_identity: false },
    });
    expect(Object.keys(doc.publishable_keys).sort()).toEqual(['live', 'test']);
    expectKey(doc.publishable_keys.live, 'pk_live_');
    expectKey(doc.publishable_keys.test, 'pk_test_');
    expect(works(db, doc.publishable_keys.live)).toBe(true);
    expect(works(db, doc.publishable_keys.test)).toBe(true);
    const rows = query<{ workspace_id: string }>(db, 'SELECT workspace_id FROM sites');
    expect(rows).toEqual([{ workspace_id: ws.id }]);
  });

  it('takes every option and normalises origins', () => {
    const db = freshDb();
    createWorkspace(db);
    const r = run([
      'site', 'create', 'shop', '--name', 'Shop', '--origin', 'HTTPS://Shop.Example:443/', '--origin', 'https://*.shop.example',
      '--allow-server-requests', '--rate-limit', '30', '--daily-cap-micros', '0', '--db', db, '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).site).toMatchObject({
      allowed_origins: ['https://shop.example', 'https://*.shop.example'],
      allow_server_requests: true,
      rate_limit_per_minute: 30,
      daily_spend_cap_micros: 0,
    });
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown flag', ['acme-help', '--name', 'A', '--origin', 'https://a.example', '--colour', 'red'], /unknown option '--colour'/i],
    ['a missing --name', ['acme-help', '--origin', 'https://a.example'], /--name is required/],
    ['a flag without its value', ['acme-help', '--origin', 'https://a.example', '--name'], /--name needs a value/],
    ['a missing --origin', ['acme-help', '--name', 'A'], /--origin is required/],
    ['an invalid origin', ['acme-help', '--name', 'A', '--origin', 'ftp://x'], /invalid --origin "ftp:\/\/x"/],
    ['an origin with a path', ['acme-help', '--name', 'A', '--origin', 'https://a.example/shop'], /invalid --origin/],
    ['an invalid service id', ['A!', '--name', 'A', '--origin', 'https://a.example'], /invalid service id/],
    ['a non-numeric --rate-limit', ['acme-help', '--name', 'A', '--origin', 'https://a.example', '--rate-limit', 'abc'], /--rate-limit must be a whole number/],
    ['a zero --rate-limit', ['acme-help', '--name', 'A', '--origin', 'https://a.example', '--rate-limit', '0'], /--rate-limit/],
    ['a negative --daily-cap-micros', ['acme-help', '--name', 'A', '--origin', 'https://a.example', '--daily-cap-micros=-5'], /--daily-cap-micros must be a whole number/],
    ['no service id', ['--name', 'A', '--origin', 'https://a.example'], /exactly one service id/],
    ['an unknown workspace', ['acme-help', '--name', 'A', '--origin', 'https://a.example', '--workspace', 'ws_nope'], /no workspace "ws_nope"/],
  ];
  let badDb: string | undefined;
  it.each(bad)('refuses %s: exit 2, one line on stderr, nothing created', (_what, args, message) => {
    const db = (badDb ??= freshDb());
    if (!existsSync(db)) createWorkspace(db);
    const r = run(['site', 'create', ...args, '--db', db]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/^parley: /);
    expect(r.lines[0]).toMatch(message);
    expect(query(db, 'SELECT service_id FROM sites')).toEqual([]);
  });

  it('refuses a service id that is taken', () => {
    const db = freshDb();
    createWorkspace(db);
    const args = ['site', 'create', 'acme-help', '--name', 'A', '--origin', 'https://a.example', '--db', db];
    expect(run(args).code).toBe(0);
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/already taken/);
    expect(query(db, 'SELECT COUNT(*) AS n FROM api_keys WHERE type = ?', 'publishable')).toEqual([{ n: 2 }]);
  });

  it('needs --workspace when several workspaces exist, and uses it when given', () => {
    const db = freshDb();
    const one = createWorkspace(db, 'One');
    const two = createWorkspace(db, 'Two');
    const args = ['site', 'create', 'acme-help', '--name', 'A', '--origin', 'https://a.example', '--db', db];
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/--workspace/);
    // It names the workspaces to choose from: nothing else lists them.
    expect(r.lines[0]).toContain(`${one.id} ("One")`);
    expect(r.lines[0]).toContain(`${two.id} ("Two")`);

    const ok = run([...args, '--workspace', two.id, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(query(db, 'SELECT workspace_id FROM sites')).toEqual([{ workspace_id: two.id }]);
  });

  it('explains that a workspace is needed first', () => {
    const r = run(['site', 'create', 'acme-help', '--name', 'A', '--origin', 'https://a.example', '--db', freshDb()]);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([expect.stringMatching(/workspace create/)]);
  });
});

describe('parley (dispatch)', () => {
  it('an unknown command: exit 2, one line', () => {
    const r = run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual(['parley: unknown command "frobnicate"; run `parley --help`']);
  });

  it('no command at all: exit 2, one line on stderr, nothing on stdout', () => {
    const r = run([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.lines).toEqual(['parley: a command is needed: serve, demo, workspace, site or key; run `parley --help`']);
  });

  it('--help prints the commands and exits 0', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'demo', 'workspace create', 'site create']) expect(r.stdout).toContain(c);
  });

  it('serve with an unknown flag: exit 2, one line', () => {
    const r = run(['serve', '--port', '0', '--db', freshDb(), '--wrokers', '2']);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/--wrokers/);
  });

  it('a database that cannot be opened: exit 2, one line naming PARLEY_DB and the path, for serve and the one-shot commands', () => {
    const notADb = join(mkdtempSync(join(tmpdir(), 'parley-notdb-')), 'notes.txt');
    writeFileSync(notADb, 'this is not a database, just some text that is long enough to have a header'.repeat(20));
    for (const path of ['/proc/parley-cannot-be-here.db', notADb]) {
      for (const args of [['serve', '--port', '0'], ['serve', '--port', '0', '--workers', '2'], ['workspace', 'create', 'X']]) {
        const r = run(args, { PARLEY_DB: path });
        expect(r.code, `${args.join(' ')} on ${path}: ${r.stderr}`).toBe(2);
        expect(r.lines).toHaveLength(1);
        expect(r.lines[0]).toContain('PARLEY_DB or --db');
        expect(r.lines[0]).toContain(path);
      }
    }
  });
});

describe('parley demo', { timeout: 90_000 }, () => {
  const procs: Proc[] = [];
  afterEach(() => {
    for (const p of procs.splice(0)) p.cleanup();
  });

  interface Printed {
    api: string;
    page: string;
    pk: string;
    sk: string;
  }

  async function startDemo(db: string, pagePort: number): Promise<{ p: Proc; printed: Printed }> {
    const p = parley(['demo', '--port', '0', '--page-port', String(pagePort), '--db', db]);
    procs.push(p);
    await p.waitFor(() => p.out.some((l) => l.startsWith('Press Ctrl+C')), 'the demo banner');
    const text = p.out.join('\n');
    const grab = (re: RegExp) => {
      const m = re.exec(text);
      expect(m, `${re} in:\n${text}`).not.toBeNull();
      return m![1]!;
    };
    return {
      p,
      printed: {
        api: grab(/API:\s+(http:\/\/\S+)/),
        page: grab(/Demo page:\s+(http:\/\/\S+)/),
        pk: grab(/publishable \(widget\):\s+(pk_live_\S+)/),
        sk: grab(/secret \(management\):\s+(sk_live_\S+)/),
      },
    };
  }

  async function stop(p: Proc) {
    p.child.kill('SIGTERM');
    expect(await exitWithin(p, 15_000)).toEqual({ code: 0, signal: null });
  }

  it('serves the API and a demo page with the script tag, idempotently, and stops on SIGTERM', async () => {
    const db = freshDb();
    const pagePort = await freePort();

    const first = await startDemo(db, pagePort);
    const { api, page, pk, sk } = first.printed;
    expectKey(pk, 'pk_live_');
    expectKey(sk, 'sk_live_');
    expect(page).toBe(`http://localhost:${pagePort}/`);

    const health = await rawRequest(`${api}/healthz`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });

    const html = await rawRequest(`http://127.0.0.1:${pagePort}/`);
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.body).toContain(`<script src="${api}/widget.js" data-key="${pk}" data-service-id="demo" async></script>`);
    expect(html.headers['content-security-policy']).toContain(`script-src ${api}`);

    expect(works(db, pk)).toBe(true);
    expect(works(db, sk)).toBe(true);
    // The page's origins are on the site's allowlist.
    const [site] = query<{ allowed_origins: string }>(db, 'SELECT allowed_origins FROM sites WHERE service_id = ?', 'demo');
    expect(JSON.parse(site!.allowed_origins)).toEqual(expect.arrayContaining([`http://localhost:${pagePort}`, `http://127.0.0.1:${pagePort}`]));
    const keysFile = join(db, '..', 'demo-keys.json');
    expect(statSync(keysFile).mode & 0o077).toBe(0); // private to the user
    await stop(first.p);

    // Second start on the same database: the same workspace, site and keys.
    const second = await startDemo(db, pagePort);
    expect(second.printed.pk).toBe(pk);
    expect(second.printed.sk).toBe(sk);
    expect((await rawRequest(`${second.printed.api}/healthz`)).status).toBe(200);
    expect(query(db, 'SELECT name FROM workspaces')).toEqual([{ name: 'Parley Demo' }]);
    expect(query(db, 'SELECT service_id FROM sites')).toEqual([{ service_id: 'demo' }]);
    await stop(second.p);

    // Keys file lost: the demo mints working keys again, still on the one workspace and site.
    rmSync(keysFile);
    const third = await startDemo(db, pagePort);
    expect(third.printed.pk).not.toBe(pk);
    expect(works(db, third.printed.pk)).toBe(true);
    expect(works(db, third.printed.sk)).toBe(true);
    expect(query(db, 'SELECT COUNT(*) AS n FROM workspaces')).toEqual([{ n: 1 }]);
    expect(query(db, 'SELECT COUNT(*) AS n FROM sites')).toEqual([{ n: 1 }]);
    await stop(third.p);
  });

  it('adds a new --page-port origin to the demo site on a later start', async () => {
    const db = freshDb();
    const first = await startDemo(db, await freePort());
    await stop(first.p);
    const port2 = await freePort();
    const second = await startDemo(db, port2);
    const [site] = query<{ allowed_origins: string }>(db, 'SELECT allowed_origins FROM sites');
    expect(JSON.parse(site!.allowed_origins)).toContain(`http://localhost:${port2}`);
    await stop(second.p);
  });

  it('exits 1 with one line, not hanging, when the page port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = parley(['demo', '--port', '0', '--page-port', String(port), '--db', freshDb()]);
      procs.push(p);
      const exit = await exitWithin(p, 15_000);
      expect(exit.code).toBe(1);
      expect(p.err.filter(Boolean)).toHaveLength(1);
      expect(p.err[0]).toMatch(new RegExp(`port ${port}`));
    } finally {
      blocker.close();
    }
  });
});
