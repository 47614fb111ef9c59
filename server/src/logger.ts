// Structured JSON logs (pino). Secrets never reach a log line: known fields are redacted and any
// string that looks like a key or visitor token is scrubbed wherever it appears.
import { pino, type Logger, type DestinationStream } from 'pino';

// No \b before keys: `%20sk_live_...` or `my_sk_live_...` must be caught too; the shape is specific enough.
const SECRET = /(?:pk|sk)_(?:live|test)_[0-9A-Za-z]{8,}|\bvt_[0-9A-Za-z_-]{8,}|\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*/g;

function topFrame(err: Error): string | null {
  const frame = err.stack?.split('\n').find((l) => l.trimStart().startsWith('at '));
  return frame ? frame.trim().slice(3) : null;
}

/** Replaces anything shaped like a key, visitor token or JWT with [REDACTED]. */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(SECRET, '[REDACTED]');
  if (value === null || typeof value !== 'object') return value;
  // Returning a deeper object as it is would let a key nested in it through unscrubbed.
  if (depth > 6) return '[Truncated]';
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  // SPEC 8: no stack trace in a log line; the innermost frame is enough to find the bug.
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return {
      type: value.name,
      ...(typeof code === 'string' ? { code } : {}),
      message: scrub(value.message, depth + 1),
      at: scrub(topFrame(value), depth + 1),
    };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'key', 'secret', 'api_key', 'token', 'visitor_token', 'user_token', 'private_key_pem',
          '*.key', '*.secret', '*.api_key', '*.visitor_token', '*.user_token', '*.private_key_pem',
          'headers.authorization', 'headers["x-parley-key"]', 'headers["x-api-key"]',
          'headers["x-visitor-token"]', 'headers["x-user-token"]', 'headers.cookie',
        ],
        censor: '[REDACTED]',
      },
      // pino's own err serializer would put the stack back (and call the scrubbed copy "Object").
      serializers: { err: (err: unknown) => scrub(err) },
      formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => scrub(a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}
