// Structured JSON logs (pino). Secrets never reach a log line: known fields are redacted and any
// string that looks like a key or visitor token is scrubbed wherever it appears.
import { pino, type Logger, type DestinationStream } from 'pino';

const SECRET = /\b(?:pk|sk)_(?:live|test)_[0-9A-Za-z]{8,}|\bvt_[0-9A-Za-z_-]{8,}|\beyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*/g;

/** Replaces anything shaped like a key, visitor token or JWT with [REDACTED]. */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.replace(SECRET, '[REDACTED]');
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (value instanceof Error) return { type: value.name, message: scrub(value.message, depth + 1), stack: scrub(value.stack, depth + 1) };
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
