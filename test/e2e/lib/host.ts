// The customer's website: a plain node:http server on its own port, so its pages live on an
// origin other than Parley's, reachable by two names (localhost and 127.0.0.1) that browsers
// treat as two different origins: one on a site's allowlist, the other not.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { freePort } from './parley.js';
import type { E2eSite } from './parley.js';

/**
 * The README's page-API stub (the `<script>` a site puts before the tag so it can call Parley
 * early), read from the README itself: the tests run exactly what users copy.
 */
export const PAGE_API_STUB: string = (() => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const stub = /```html\n(<script>\n {2}window\.Parley = window\.Parley \|\| \{ q: \[\] \};[\s\S]*?<\/script>)\n```/.exec(readme)?.[1];
  if (!stub) throw new Error('README.md has no page-API stub (a ```html block starting with window.Parley = ...)');
  return stub;
})();

export interface HostPage {
  body: string;
  type?: string;
  headers?: Record<string, string>;
}

export class HostServer {
  private readonly pages = new Map<string, HostPage>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<HostServer> {
    const port = await freePort();
    let self: HostServer | undefined;
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/favicon.ico') return void res.writeHead(204).end();
      const page = self?.pages.get(path);
      if (!page) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found');
      res.writeHead(200, { 'Content-Type': page.type ?? 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...page.headers });
      res.end(page.body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    self = new HostServer(server, port);
    return self;
  }

  /** The origin put on sites' allowlists. */
  get origin(): string {
    return `http://localhost:${this.port}`;
  }

  /** The same server under another name: an origin no site allows. */
  get otherOrigin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Serves `page` at `path` (replacing what was there); returns the URL on the allowed origin. */
  set(path: string, page: HostPage | string): string {
    this.pages.set(path, typeof page === 'string' ? { body: page } : page);
    return this.origin + path;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The one script tag a site owner pastes (SPEC section 9). */
export function scriptTag(api: string, site: E2eSite, extra = ''): string {
  return `<script src="${api}/widget.js" data-key="${site.key}" data-service-id="${site.serviceId}"${extra ? ` ${extra}` : ''} async></script>`;
}

/** An ordinary shop page around the tag; `head` adds styles or links. */
export function shopPage(tag: string, opts: { title?: string; head?: string; body?: string } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${opts.title ?? 'E2E Shop'}</title>
  ${opts.head ?? ''}
</head>
<body>
  <header><h1>E2E Shop</h1><nav><a href="#products" id="first-link">Products</a></nav></header>
  <main id="products">
    ${opts.body ?? '<p>Everything a test could want to buy.</p>'}
  </main>
  ${tag}
</body>
</html>
`;
}
