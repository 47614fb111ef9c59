// Request-wide middleware: request ids, access logs, and the JSON body rules of SPEC section 6.
import { isUtf8 } from 'node:buffer';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';
import { pooledRandomBytes } from '../util.js';

export const BODY_LIMIT_BYTES = 32 * 1024;

/** Gives every request an id (echoed in `X-Request-Id` and error bodies) and logs it when done. */
export function requestContext(ctx: AppContext): RequestHandler {
  return (req, res, next) => {
    const id = `req_${pooledRandomBytes(12).toString('base64url')}`;
    const started = process.hrtime.bigint();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.on('finish', () => {
      if (!ctx.logger.isLevelEnabled('info')) return;
      ctx.logger.info({
        request_id: id,
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        // The client's address: the socket's, or with PARLEY_TRUST_PROXY the one the trusted proxies forwarded.
        ip: req.ip,
      }, 'request');
    });
    next();
  };
}

function isJsonType(contentType: string): boolean {
  const [type] = contentType.split(';');
  return type!.trim().toLowerCase() === 'application/json';
}

/** Bytes that are not UTF-8 would be decoded to U+FFFD and stored: they are invalid_json instead. */
function requireUtf8(_req: unknown, _res: unknown, buf: Buffer): void {
  if (!isUtf8(buf)) throw Object.assign(new Error('not UTF-8'), { type: 'entity.parse.failed' });
}

// Not `strict`: `null`, `3` or `"text"` parse, and their route's schema refuses them as
// 400 invalid_request (a body of the wrong shape), as it does `[]`; invalid_json is for bodies that
// do not parse (SPEC 8).
const parseJson = express.json({ limit: BODY_LIMIT_BYTES, inflate: false, strict: false, type: () => true, verify: requireUtf8 });

/**
 * A string (or member name) with a lone UTF-16 surrogate: valid JSON grammar, but I-JSON (RFC
 * 7493) refuses it, since UTF-8 cannot carry it: SQLite would store bytes that are not UTF-8 and
 * every read would return three U+FFFD where the 201 echoed one character. Such a body is
 * invalid_json (the body stage, before the key). Walked without recursion: 32 KiB of `[` nests deep.
 */
function hasLoneSurrogate(value: unknown): boolean {
  const todo: unknown[] = [value];
  while (todo.length) {
    const v = todo.pop();
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return true;
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (!k.isWellFormed()) return true;
        todo.push(child);
      }
    }
  }
  return false;
}

const LONE_SURROGATE = 'The request body is not valid JSON: a string holds a lone UTF-16 surrogate (an unpaired \\uD800 to \\uDFFF escape), which UTF-8 cannot carry.';

/** body-parser's express.json, and then the lone-surrogate check. */
const parseJsonChecked: RequestHandler = (req, res, next) =>
  parseJson(req, res, (err?: unknown) => {
    if (err) return next(err);
    next(hasLoneSurrogate(req.body) ? new ApiError('invalid_json', LONE_SURROGATE) : undefined);
  });

/**
 * A chunked body has no length to judge up front, and body-parser reads a body to its very end
 * before it reports that the body was too large: a client streaming 10 MB (or forever) would hold
 * the request until it stopped. So chunked bodies are read here, with body-parser's rules (UTF-8,
 * no content coding, any JSON value), and refused the moment they pass 32 KiB; the
 * connection is closed after the 413 so the rest is never read.
 */
function readChunkedJson(req: Request, res: Response, next: NextFunction): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const settle = (err?: ApiError, body?: unknown) => {
    if (settled) return;
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    if (err) return next(err);
    req.body = body;
    next();
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > BODY_LIMIT_BYTES) {
      req.pause();
      res.setHeader('Connection', 'close');
      return settle(new ApiError('payload_too_large', 'The request body is larger than 32 KiB.'));
    }
    chunks.push(chunk);
  };
  const onEnd = () => {
    const bytes = Buffer.concat(chunks);
    if (!isUtf8(bytes)) return settle(new ApiError('invalid_json', 'The request body is not valid JSON.'));
    const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
    if (text === '') return settle(undefined, {});
    try {
      const body = JSON.parse(text) as unknown;
      settle(hasLoneSurrogate(body) ? new ApiError('invalid_json', LONE_SURROGATE) : undefined, body);
    } catch {
      settle(new ApiError('invalid_json', 'The request body is not valid JSON.'));
    }
  };
  const onError = () => settle(new ApiError('invalid_json', 'The request body was cut short.'));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

/**
 * Bodies are JSON of at most 32 KiB. A request without a body gets `{}`; one with a body of another
 * type is 415; an oversized one is 413 before it is read (by Content-Length) or while it streams.
 */
export function jsonBody(): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') {
      req.body = undefined;
      return next();
    }
    const length = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (!chunked && (length === undefined || length === '0')) {
      req.body = {};
      return next();
    }
    if (length !== undefined && Number(length) > BODY_LIMIT_BYTES) {
      return next(new ApiError('payload_too_large', 'The request body is larger than 32 KiB.'));
    }
    const type = req.headers['content-type'];
    if (!type || !isJsonType(type)) {
      return next(new ApiError('unsupported_media_type', 'The request body must be JSON (Content-Type: application/json).'));
    }
    // Only uncompressed UTF-8, on both paths: body-parser would otherwise decode the bytes as the
    // declared charset (utf-16 turns a UTF-8 body into noise, reported as invalid_json, not 415).
    const coding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1]?.toLowerCase();
    if (coding !== 'identity' || (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')) {
      return next(new ApiError('unsupported_media_type', 'The request body must be uncompressed UTF-8 JSON.'));
    }
    if (chunked && length === undefined) return readChunkedJson(req, res, next);
    parseJsonChecked(req, res, next);
  };
}

/** The last route: anything unmatched is `404 not_found`. */
export const notFound: RequestHandler = (_req, _res, next) => {
  next(new ApiError('not_found', 'No such route.'));
};
