// The one error middleware, on a tiny app of its own: known errors keep their code, anything else
// becomes a generic 500 that echoes nothing, and its log line carries no key material or stack.
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AppContext } from './context.js';
import { ApiError, errorHandler, parseOr400 } from './errors.js';
import { jsonBody, requestContext } from './http/middleware.js';
import { createLogger } from './logger.js';

const KEY = 'pk_live_4xLR8qYw2VbN7sKd1PzTq9HcE3mJ6uAa5Fg0Wr2Ys8Ti1Ok4Ne7Lb';
const SECRET = 'sk_test_0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX2yZ3aB4cD5eF6gH7iJ';

let server: Server;
let base: string;
const logs: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = createLogger('info', sink);
  const app = express();
  app.use(requestContext({ logger } as unknown as AppContext));
  app.use(jsonBody());
  app.get('/boom', () => {
    throw new Error(`SELECT secret FROM x WHERE key = '${KEY}'`);
  });
  app.get('/async-boom', async () => {
    await new Promise((r) => setTimeout(r, 1));
    throw Object.assign(new Error(`UNIQUE constraint failed for ${SECRET}`), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
  });
  app.get('/thrown-string', () => {
    throw `plain string with ${KEY}`; // eslint-disable-line no-throw-literal
  });
  app.get('/api-error', () => {
    throw new ApiError('rate_limit_exceeded', 'Slow down.', { headers: { 'Retry-After': '7' } });
  });
  app.post('/validate', (req, res) => {
    const body = parseOr400(z.object({ message: z.string().min(1), email: z.email().optional() }), req.body);
    res.json(body);
  });
  app.get('/zod', () => {
    z.object({ n: z.number() }).parse({ n: 'x' });
  });
  app.get('/late', (_req, res) => {
    res.status(200).write('partial');
    throw new Error('after the headers');
  });
  app.use(errorHandler((err, requestId) => logger.error({ err, request_id: requestId }, 'unhandled error')));
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.close();
});

async function get(path: string, init?: RequestInit) {
  const r = await fetch(base + path, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: JSON.parse(text) as { error: Record<string, unknown> } };
}

async function logLine(requestId: string, msg: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const line = logs.find((l) => l.includes(requestId) && l.includes(`"msg":"${msg}"`));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no "${msg}" log line for ${requestId}`);
}

describe('errorHandler', () => {
  for (const path of ['/boom', '/async-boom', '/thrown-string']) {
    it(`answers ${path} with a generic 500 internal_error that echoes nothing`, async () => {
      const r = await get(path);
      expect(r.status).toBe(500);
      const id = r.headers.get('x-request-id')!;
      expect(r.json).toEqual({
        error: { code: 'internal_error', message: expect.any(String), request_id: id },
      });
      expect(r.text).not.toMatch(/SELECT|UNIQUE|constraint|plain string|pk_live_|sk_test_|\.ts:\d+|\.js:\d+|node_modules/);
    });
  }

  it('logs the 500 with its request id, scrubbed of key material and without a stack', async () => {
    const r = await get('/boom');
    const id = r.headers.get('x-request-id')!;
    const line = await logLine(id, 'unhandled error');
    const doc = JSON.parse(line) as { level: number; request_id: string; err: { type: string; message: string; at: string } };
    expect(doc.level).toBe(50);
    expect(doc.request_id).toBe(id);
    expect(doc.err.type).toBe('Error');
    expect(doc.err.message).toContain('[REDACTED]'); // the message stays useful, the key does not
    expect(doc.err.at).toMatch(/errors\.test\.ts:\d+/);
    expect(line).not.toContain(KEY);
    expect(line).not.toMatch(/pk_live_[0-9A-Za-z]/);
    expect(line).not.toMatch(/\\n\s+at /); // no stack trace
    expect(line).not.toContain('"stack"');
  });

  it('keeps the code of a database error in the log and scrubs its message', async () => {
    const r = await get('/async-boom');
    const line = await logLine(r.headers.get('x-request-id')!, 'unhandled error');
    expect(JSON.parse(line).err).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(line).not.toContain(SECRET);
    expect(line).not.toMatch(/sk_test_[0-9A-Za-z]/);
  });

  it('scrubs a thrown non-Error value in the log', async () => {
    const r = await get('/thrown-string');
    const line = await logLine(r.headers.get('x-request-id')!, 'unhandled error');
    expect(line).not.toContain(KEY);
  });

  it('renders an ApiError with its status, code, message and headers', async () => {
    const r = await get('/api-error');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(r.json).toEqual({ error: { code: 'rate_limit_exceeded', message: 'Slow down.', request_id: r.headers.get('x-request-id') } });
  });

  it('turns validation failures into 400 invalid_request with issues per field', async () => {
    const r = await get('/validate', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ message: '', email: 'nope' }) });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid_request', request_id: r.headers.get('x-request-id') });
    const issues = r.json.error.issues as { path: string; message: string }[];
    expect(issues.map((i) => i.path).sort()).toEqual(['email', 'message']);
    for (const i of issues) expect(typeof i.message).toBe('string');
  });

  it('maps a stray ZodError to 400 invalid_request', async () => {
    const r = await get('/zod');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid_request', issues: [{ path: 'n', message: expect.any(String) }] });
  });

  it('cuts the connection when the error comes after the headers were sent', async () => {
    await expect(fetch(`${base}/late`).then((r) => r.text())).rejects.toThrow();
  });
});
