// GET /widget.js: the built widget, with an ETag and a short Cache-Control, brotli- or
// gzip-compressed (once per build, kept in memory) for a client that accepts it.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { RequestHandler } from 'express';
import Negotiator from 'negotiator';
import { ApiError } from '../errors.js';

const DIST = fileURLToPath(new URL('../../../widget/dist/', import.meta.url));

type Coding = 'br' | 'gzip' | 'identity';
interface Asset {
  /** The file as each content coding sends it; a coding that would not make it smaller is left out. */
  bodies: Map<Coding, Buffer>;
  /** One ETag per representation (RFC 9110 8.8.3: a strong validator names one set of bytes). */
  etags: Map<Coding, string>;
  mtimeMs: number;
}

const PREFERRED: Coding[] = ['br', 'gzip', 'identity'];
/** negotiator 1.x takes `{ preferred }` (the order among equal q-values); @types/negotiator predates it. */
type EncodingNegotiator = { encoding(available: string[], opts: { preferred: string[] }): string | undefined };
const negotiate = (req: IncomingMessage, offered: string[]): string | undefined =>
  (new Negotiator(req) as unknown as EncodingNegotiator).encoding(offered, { preferred: PREFERRED });

/**
 * The file in each coding. Done on the request that first asks after a build, so it must be quick:
 * brotli's best quality takes about 30 ms for widget.js (35 KB) but 150 ms for its map (145 KB), a
 * stall of every other request; files over 64 KiB get quality 5 (4 ms, within 10% of the size).
 */
function compressed(body: Buffer): Map<Coding, Buffer> {
  const bodies = new Map<Coding, Buffer>([['identity', body]]);
  const quality = body.length > 64 * 1024 ? 5 : 11;
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  const gz = gzipSync(body, { level: 9 });
  if (br.length < body.length) bodies.set('br', br);
  if (gz.length < body.length) bodies.set('gzip', gz);
  return bodies;
}

const ASSETS = new Map<string, { file: string; type: string; map?: string }>([
  // The bundle names its source map in no comment (the bytes count against its budget): this
  // header does, for devtools; a relative URL resolves against the script's own.
  ['/widget.js', { file: 'widget.js', type: 'text/javascript; charset=utf-8', map: 'widget.js.map' }],
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
      const hash = createHash('sha256').update(body).digest('base64url').slice(0, 27);
      const bodies = compressed(body);
      const etags = new Map([...bodies.keys()].map((c) => [c, c === 'identity' ? `"${hash}"` : `"${hash}-${c}"`] as const));
      const asset: Asset = { bodies, etags, mtimeMs };
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
    // The client's q-values decide; among equals (browsers send `gzip, deflate, br, zstd`) ours:
    // brotli, gzip, as is. Nothing acceptable (identity;q=0 too) still gets the file as is.
    const offered = [...asset.bodies.keys()];
    const coding = (negotiate(req, offered) ?? 'identity') as Coding;
    const etag = asset.etags.get(coding)!;
    res.setHeader('ETag', etag);
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (served.map) res.setHeader('SourceMap', served.map);
    res.vary('Accept-Encoding');
    if (coding !== 'identity') res.setHeader('Content-Encoding', coding);
    const match = req.headers['if-none-match'];
    if (match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
      res.status(304).end();
      return;
    }
    res.type(served.type).send(asset.bodies.get(coding));
  };
}
