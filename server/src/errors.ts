// ApiError and the one error middleware: every failure leaves as the SPEC's envelope.
import type { ErrorRequestHandler, Response } from 'express';
import { codeToStatus, type ErrorCode, type ErrorIssue } from '@parley/shared';
import { ZodError } from 'zod';

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { issues?: ErrorIssue[]; resets_at?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = codeToStatus(code);
  }
}

/** Turns a ZodError into `issues`: a dotted path and a message per field. */
export function zodIssues(err: ZodError): ErrorIssue[] {
  return err.issues.flatMap((i) => {
    // An unknown field (a typo like `alowed_origins`) is named by its own path, one issue per field.
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => ({ path: [...i.path, k].map(String).join('.'), message: 'is not a known field' }));
    }
    return [{ path: i.path.map(String).join('.') || '(body)', message: i.message }];
  });
}

export function invalidRequest(err: ZodError, what = 'The request'): ApiError {
  const issues = zodIssues(err);
  const first = issues[0];
  return new ApiError('invalid_request', `${what} is invalid${first ? `: ${first.path}: ${first.message}` : ''}.`, { issues });
}

/** Parses `value` with a zod schema or throws `400 invalid_request` with issues. */
export function parseOr400<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }, value: unknown, what?: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw invalidRequest(r.error, what);
  return r.data;
}

export function sendError(res: Response, err: ApiError): void {
  const requestId = String(res.locals.requestId ?? '');
  for (const [k, v] of Object.entries(err.extra.headers ?? {})) res.setHeader(k, v);
  res.status(err.status).json({
    error: {
      code: err.code,
      message: err.message,
      request_id: requestId,
      ...(err.extra.issues ? { issues: err.extra.issues } : {}),
      ...(err.extra.resets_at ? { resets_at: err.extra.resets_at } : {}),
    },
  });
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Maps body-parser's errors to the SPEC's codes; undefined for anything else. */
function fromBodyParser(err: BodyParserError): ApiError | undefined {
  switch (err.type) {
    case 'entity.too.large':
      return new ApiError('payload_too_large', 'The request body is larger than 32 KiB.');
    case 'entity.parse.failed':
      return new ApiError('invalid_json', 'The request body is not valid JSON.');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new ApiError('unsupported_media_type', 'The request body must be uncompressed UTF-8 JSON.');
    case 'request.size.invalid':
    case 'request.aborted':
      return new ApiError('invalid_json', 'The request body was cut short.');
    default:
      return undefined;
  }
}

/** The error middleware, registered last. Unknown errors become a generic 500 that echoes nothing. */
export function errorHandler(onUnexpected: (err: unknown, requestId: string) => void): ErrorRequestHandler {
  return (err, req, res, _next) => {
    void req;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else if (err instanceof ZodError) api = invalidRequest(err);
    else if (err && typeof err === 'object' && fromBodyParser(err as BodyParserError)) api = fromBodyParser(err as BodyParserError)!;
    // The router could not percent-decode a path segment (`/v1/sites/%E0%A4%A`): the client's URL is bad.
    else if (err instanceof URIError && (err as URIError & { status?: number }).status === 400) {
      api = new ApiError('invalid_request', 'The URL is not valid percent-encoding.', {
        issues: [{ path: '(url)', message: 'is not valid percent-encoding' }],
      });
    }
    else {
      onUnexpected(err, String(res.locals.requestId ?? ''));
      api = new ApiError('internal_error', 'Something went wrong on our side. Quote the request id if you contact support.');
    }
    sendError(res, api);
  };
}
