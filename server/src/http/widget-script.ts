// GET /widget.js: the built widget, with an ETag and a short Cache-Control.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RequestHandler } from 'express';
import { ApiError } from '../errors.js';

const DIST = fileURLToPath(new URL('../../../widget/dist/', import.meta.url));

interface Asset {
  body: Buffer;
  etag: string;
  mtimeMs: number;
}

const ASSETS = new Map<string, { file: string; type: string }>([
  ['/widget.js', { file: 'widget.js', type: 'text/javascript; charset=utf-8' }],
  ['/widget.js.map', { file: 'widget.js.map', type: 'application/json; charset=utf-8' }],
]);

/**
 * Serves widget.js and its source map (GET and HEAD), re-reading them only when the file changed.
 * One middleware rather than a router: every other request passes it with one map lookup.
 * OPTIONS gets `Allow: GET, HEAD`, as Express answers it for a route.
 */
export function widgetScript(dir: string = DIST): RequestHandler {
  const cache = new Map<string, Asset>();
  const load = (name: string): Asset | undefined => {
    try {
      const path = dir + name;
      const { mtimeMs } = statSync(path);
      const hit = cache.get(name);
      if (hit && hit.mtimeMs === mtimeMs) return hit;
      const body = readFileSync(path);
      const asset = { body, mtimeMs, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      cache.set(name, asset);
      return asset;
    } catch {
      return undefined;
    }
  };
  return (req, res, next) => {
    // Matched as Express routes match: any case, an optional trailing slash.
    const served = ASSETS.get(req.path.toLowerCase().replace(/(.)\/$/, '$1'));
    if (!served) return next();
    if (req.method === 'OPTIONS') {
      res.setHeader('Allow', 'GET, HEAD');
      res.send('GET, HEAD');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const asset = load(served.file);
    if (!asset) return next(new ApiError('not_found', 'The widget has not been built: run pnpm build.'));
    res.setHeader('ETag', asset.etag);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.headers['if-none-match'] === asset.etag) {
      res.status(304).end();
      return;
    }
    res.type(served.type).send(asset.body);
  };
}
