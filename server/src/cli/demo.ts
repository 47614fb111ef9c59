// `parley demo` (what `pnpm start` runs): a default database in ./data, a demo workspace and site
// made idempotently, the API on :8787 and a demo host page on :8788 (another origin, as a real
// customer site is), with the script tag in it. The demo's keys are kept in ./data/demo-keys.json
// (a local quick start only; real deployments never store plaintext keys).
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { parseKey } from '@parley/shared';
import { mintKey } from '../auth/keys.js';
import { findKeyByHash } from '../db/keys.js';
import type { DB } from '../db/open.js';
import { findSiteByServiceId, updateSite } from '../db/sites.js';
import { findWorkspaceByName } from '../db/workspaces.js';
import { ALL_SCOPES, createSite, createWorkspace } from '../services/provisioning.js';
import { startServer } from '../server.js';
import { sha256 } from '../util.js';
import { intFlag, printUsage, UsageError, wantsHelp } from './args.js';
import { serveConfig } from './serve.js';

const USAGE = 'parley demo [--port 8787] [--page-port 8788] [--host 127.0.0.1] [--db PATH]';
const WORKSPACE = 'Parley Demo';
const SERVICE_ID = 'demo';

interface DemoKeys {
  secret_live: string;
  publishable_live: string;
}

function usable(db: DB, key: string | undefined): boolean {
  if (!key || !parseKey(key)) return false;
  const row = findKeyByHash(db, sha256(key));
  return Boolean(row && row.revoked_at === null);
}

/** Makes sure the demo workspace, site and keys exist; returns the keys to print. */
export function ensureDemo(db: DB, keysFile: string, pagePort: number, now = Date.now()): DemoKeys {
  let saved: Partial<DemoKeys> = {};
  try {
    saved = JSON.parse(readFileSync(keysFile, 'utf8')) as Partial<DemoKeys>;
  } catch {
    saved = {};
  }
  let workspace = findWorkspaceByName(db, WORKSPACE);
  if (!workspace) {
    const made = createWorkspace(db, WORKSPACE, now);
    workspace = made.workspace;
    saved.secret_live = made.keys.live.secret;
  }
  const pageOrigins = [`http://localhost:${pagePort}`, `http://127.0.0.1:${pagePort}`];
  let site = findSiteByServiceId(db, SERVICE_ID);
  if (site) {
    // A later run with another --page-port must still be allowed to load the widget.
    const origins = JSON.parse(site.allowed_origins) as string[];
    const missing = pageOrigins.filter((o) => !origins.includes(o));
    if (missing.length) updateSite(db, (site = { ...site, allowed_origins: JSON.stringify([...origins, ...missing]) }));
  } else {
    const made = createSite(db, workspace.id, {
      service_id: SERVICE_ID,
      name: 'Parley Demo',
      allowed_origins: pageOrigins,
      widget: { greeting: 'Hi! This is the Parley demo. Ask us anything.' },
    }, now);
    site = made.site;
    saved.publishable_live = made.keys.live.secret;
  }
  // Keys lost from the file (or revoked) are replaced, so the demo always prints working keys.
  if (!usable(db, saved.secret_live)) {
    saved.secret_live = mintKey(db, {
      type: 'secret', environment: 'live', name: 'demo admin key', scopes: ALL_SCOPES,
      workspaceId: workspace.id, siteId: null, sites: null, expiresAt: null, now,
    }).secret;
  }
  if (!usable(db, saved.publishable_live)) {
    saved.publishable_live = mintKey(db, {
      type: 'publishable', environment: 'live', name: 'demo widget key', scopes: ['widget'],
      workspaceId: workspace.id, siteId: site.id, sites: null, expiresAt: null, now,
    }).secret;
  }
  const keys = saved as DemoKeys;
  writeFileSync(keysFile, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  chmodSync(keysFile, 0o600);
  return keys;
}

/** The demo host page: an ordinary page on another origin with the one script tag. */
export function demoPage(apiBase: string, key: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Acme Store: a Parley demo page</title>
  <link rel="stylesheet" href="/demo.css">
</head>
<body>
  <header><h1>Acme Store</h1><p>This page stands for your website. The chat launcher in the corner is Parley.</p></header>
  <main>
    <p>Open the launcher, send a message, then answer it as an agent, with the secret key the
    terminal printed (<code>export PARLEY_SECRET_KEY=sk_live_...</code>, as it shows) and the
    ticket's id from <code>GET /v1/sites/${SERVICE_ID}/tickets</code>:</p>
    <pre>curl -X POST ${apiBase}/v1/sites/${SERVICE_ID}/tickets/TICKET_ID/messages \\
  -H "Authorization: Bearer $PARLEY_SECRET_KEY" -H "Content-Type: application/json" \\
  -d '{"message":"Hello from support!"}'</pre>
  </main>
  <script src="${apiBase}/widget.js" data-key="${key}" data-service-id="${SERVICE_ID}" async></script>
</body>
</html>
`;
}

const CSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1f2937;background:#f9fafb}
header,main{max-width:760px;margin:0 auto;padding:24px}h1{margin:0 0 8px}
pre{background:#111827;color:#f9fafb;padding:16px;border-radius:8px;overflow:auto;font-size:13px}`;

export async function demoCommand(argv: string[]): Promise<number | undefined> {
  if (wantsHelp(argv)) return printUsage(USAGE);
  const pageIndex = argv.findIndex((a) => a === '--page-port' || a.startsWith('--page-port='));
  let pagePortText: string | undefined;
  if (pageIndex >= 0) {
    const inline = argv[pageIndex]!.startsWith('--page-port=');
    pagePortText = inline ? argv[pageIndex]!.slice('--page-port='.length) : argv[pageIndex + 1];
    if (pagePortText === undefined) throw new UsageError('--page-port needs a value', USAGE);
    argv = [...argv.slice(0, pageIndex), ...argv.slice(pageIndex + (inline ? 1 : 2))];
  }
  const pagePort = intFlag('page-port', pagePortText ?? '8788', 1, 65535)!;
  const { config, positionals } = serveConfig(argv, USAGE);
  if (positionals.length) throw new UsageError('demo takes no arguments', USAGE);
  const running = await startServer({ config });
  const keysFile = join(dirname(config.db === ':memory:' ? './data/x' : config.db), 'demo-keys.json');
  const keys = ensureDemo(running.ctx.db, keysFile, pagePort);
  const apiBase = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${running.port}`;
  const pageHost = config.host === '127.0.0.1' ? 'localhost' : config.host;
  const page = createServer((req, res) => {
    if (req.url === '/demo.css') {
      res.writeHead(200, { 'Content-Type': 'text/css' }).end(CSS);
      return;
    }
    if (req.url !== '/' && !req.url?.startsWith('/?')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      // The demo page itself runs under a strict policy: the widget needs nothing more.
      'Content-Security-Policy': `default-src 'none'; script-src ${apiBase}; connect-src ${apiBase}; style-src 'self'; img-src 'self' data:`,
    }).end(demoPage(apiBase, keys.publishable_live));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      page.once('error', reject);
      page.listen(pagePort, config.host, () => resolve());
    });
  } catch (err) {
    // The API is already listening: stop it, or the process would hang on after the error.
    await running.close(1000);
    throw new Error(`cannot serve the demo page on port ${pagePort}: ${(err as Error).message}`);
  }
  // Handlers before the banner: whoever waits for the banner may send SIGTERM at once.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    page.close();
    page.closeAllConnections();
    void running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(
    [
      '',
      'Parley is running.',
      `  API:        ${apiBase}  (health: ${apiBase}/healthz)`,
      `  Demo page:  http://${pageHost}:${pagePort}/`,
      `  Database:   ${config.db}`,
      '',
      'Demo keys (also in ' + keysFile + '):',
      `  publishable (widget):  ${keys.publishable_live}`,
      `  secret (management):   ${keys.secret_live}`,
      '',
      `Try: export PARLEY_SECRET_KEY=${keys.secret_live}  # the demo page's curl uses it`,
      `     curl -H "Authorization: Bearer $PARLEY_SECRET_KEY" ${apiBase}/v1/sites/${SERVICE_ID}/tickets`,
      'Press Ctrl+C to stop.',
      '',
    ].join('\n'),
  );
  return undefined;
}
