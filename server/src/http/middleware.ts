// Request-wide middleware: request ids, access logs, and the JSON body rules of SPEC section 6.
import { randomBytes } from 'node:crypto';
import express, { type RequestHandler } from 'express';
import type { AppContext } from '../context.js';
import { ApiError } from '../errors.js';

export const BODY_LIMIT_BYTES = 32 * 1024;

/** Gives every request an id (echoed in `X-Request-Id` and error bodies) and logs it when done. */
export function requestContext(ctx: AppContext): RequestHandler {
  return (req, res, next) => {
    const id = `req_${randomBytes(12).toString('base64url')}`;
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
      }, 'request');
    });
    next();
  };
}

function isJsonType(contentType: string): boolean {
  const [type] = contentType.split(';');
  return type!.trim().toLowerCase() === 'application/json';
}

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, inflate: false, strict: true, type: () => true });

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
    parseJson(req, res, next);
  };
}

/** The last route: anything unmatched is `404 not_found`. */
export const notFound: RequestHandler = (_req, _res, next) => {
  next(new ApiError('not_found', 'No such route.'));
};
