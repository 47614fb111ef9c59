// The app over real HTTP: health, the widget script, and the error envelope of SPEC section 8 for
// everything that is refused before a router runs (body rules, unknown routes).
import { get as httpGet, request } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler } from './errors.js';
import { requestContext } from './http/middleware.js';
import { widgetScript } from './http/widget-script.js';
import { call, seed, startTestServer, type TestServer } from './test-helpers/harness.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.close();
});

// A widget route: the body rules answer before the key is even looked at (SPEC 3, order of checks).
const POST_PATH = '/v1/widget/acme-help/tickets';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** A request over node:http, so the test controls Content-Length and chunked bodies exactly. */
function raw(method: string, path: string, headers: Record<string, string>, chunks: (string | Buffer)[]): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.base}${path}`, { method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
    });
    // The server may answer and close before the whole body is sent: that is the point of a 413.
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

/** The SPEC 8 envelope, with X-Request-Id matching, and nothing internal in it. */
function expectEnvelope(r: { status: number; text: string; header: string | null | undefined }, status: number, code: string) {
  expect(r.status, r.text).toBe(status);
  const body = JSON.parse(r.text) as { error: { code: string; message: string; request_id: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.request_id).toMatch(/^req_[A-Za-z0-9_-]{8,}$/);
  expect(r.header).toBe(body.error.request_id);
  expect(r.text).not.toMatch(/\bat .*\.(?:ts|js):\d+|node_modules|SELECT|INSERT|stack|SyntaxError/i);
  return body.error;
}

/** The code of a refusal by the body rules, if the response is one (later checks answer otherwise). */
function bodyRuleCode(text: string): string | undefined {
  const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  return code === 'invalid_json' || code === 'payload_too_large' || code === 'unsupported_media_type' ? code : undefined;
}

describe('GET /healthz', () => {
  it('answers 200 {"status":"ok"} with a request id', async () => {
    const r = await call(t.base, 'GET', '/healthz');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'ok' });
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('gives every response its own request id', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => call(t.base, 'GET', '/healthz').then((r) => r.headers.get('x-request-id'))));
    expect(new Set(ids).size).toBe(20);
  });
});

describe('the error envelope', () => {
  it('400 invalid_json for a body that does not parse', async () => {
    const r = await call(t.base, 'POST', POST_PATH, { rawBody: '{"message": "hi",', headers: { 'Content-Type': 'application/json' } });
    const error = expectEnvelope({ ...r, header: r.headers.get('x-request-id') }, 400, 'invalid_json');
    expect(error.message).not.toContain('"message": "hi"'); // the body is not echoed
  });

  it('a JSON value that is not an object parses: its route refuses it as 400 invalid_request, after the key', async () => {
    // SPEC 8: invalid_json is an unparsable body; `null` or `3` parse, and are a body of the wrong shape.
    const fx = seed(t.ctx);
    const json = { 'Content-Type': 'application/json' };
    for (const rawBody of ['"just a string"', 'null', '3', 'true', ' [] ']) {
      const widget = await call(t.base, 'POST', `/v1/widget/${fx.serviceId}/tickets`, { key: fx.pk.live, origin: fx.origin, rawBody, headers: json });
      const error = expectEnvelope({ ...widget, header: widget.headers.get('x-request-id') }, 400, 'invalid_request');
      expect(error.message, rawBody).toMatch(/body/i);
      const manage = await call(t.base, 'POST', '/v1/sites', { key: fx.sk.live, rawBody, headers: json });
      expectEnvelope({ ...manage, header: manage.headers.get('x-request-id') }, 400, 'invalid_request');
      // Chunked, read by our own reader: the same answer.
      const chunked = await raw('POST', `/v1/widget/${fx.serviceId}/tickets`, { ...json, 'X-Parley-Key': fx.pk.live, Origin: fx.origin, 'Transfer-Encoding': 'chunked' }, [rawBody]);
      expectEnvelope({ ...chunked, header: chunked.headers['x-request-id'] as string }, 400, 'invalid_request');
      // The body rules pass it, so without a key the key check answers first.
      expect((await call(t.base, 'POST', POST_PATH, { rawBody, headers: json })).json.error.code).toBe('missing_authorization');
    }
    expect((t.ctx.db.prepare('SELECT COUNT(*) AS n FROM tickets').get() as { n: number }).n).toBe(0);
  });

  it('413 payload_too_large for a body over 32 KiB announced by Content-Length', async () => {
    const body = JSON.stringify({ message: 'x'.repeat(33 * 1024) });
    const r = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }, [body]);
    expectEnvelope({ ...r, header: r.headers['x-request-id'] as string }, 413, 'payload_too_large');
  });

  it('413 payload_too_large for a chunked body with no Content-Length', async () => {
    const piece = 'x'.repeat(8 * 1024);
    const chunks = ['{"message":"', ...Array.from({ length: 6 }, () => piece), '"}'];
    const r = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, chunks);
    expect(r.headers['content-length']).toBeDefined();
    expectEnvelope({ ...r, header: r.headers['x-request-id'] as string }, 413, 'payload_too_large');
  });

  it('accepts a body of exactly 32 KiB (the limit is inclusive) and judges it on its content', async () => {
    const prefix = '{"message":"';
    const body = prefix + 'x'.repeat(32 * 1024 - prefix.length - 2) + '"}';
    expect(Buffer.byteLength(body)).toBe(32 * 1024);
    const r = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, [body]);
    expect(bodyRuleCode(r.text)).toBeUndefined();
  });

  it('415 unsupported_media_type for a text/plain body', async () => {
    const r = await call(t.base, 'POST', POST_PATH, { rawBody: 'hello', headers: { 'Content-Type': 'text/plain' } });
    expectEnvelope({ ...r, header: r.headers.get('x-request-id') }, 415, 'unsupported_media_type');
  });

  it('415 for a form body and for a body with no Content-Type', async () => {
    const form = await call(t.base, 'POST', POST_PATH, { rawBody: 'a=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expectEnvelope({ ...form, header: form.headers.get('x-request-id') }, 415, 'unsupported_media_type');
    const none = await raw('POST', POST_PATH, { 'Content-Length': '2' }, ['{}']);
    expectEnvelope({ ...none, header: none.headers['x-request-id'] as string }, 415, 'unsupported_media_type');
  });

  it('415 for JSON declared in another charset, with or without a Content-Length', async () => {
    for (const charset of ['utf-16', 'UTF-16LE', 'utf-32', 'latin1']) {
      const type = `application/json; charset=${charset}`;
      const sized = await call(t.base, 'POST', POST_PATH, { rawBody: '{"message":"x"}', headers: { 'Content-Type': type } });
      expectEnvelope({ ...sized, header: sized.headers.get('x-request-id') }, 415, 'unsupported_media_type');
      const chunked = await raw('POST', POST_PATH, { 'Content-Type': type, 'Transfer-Encoding': 'chunked' }, ['{"message":"x"}']);
      expectEnvelope({ ...chunked, header: chunked.headers['x-request-id'] as string }, 415, 'unsupported_media_type');
    }
  });

  it('400 invalid_json for bytes that are not UTF-8, with or without a Content-Length', async () => {
    const bad = Buffer.concat([Buffer.from('{"message":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    const sized = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Content-Length': String(bad.length) }, [bad]);
    expectEnvelope({ ...sized, header: sized.headers['x-request-id'] as string }, 400, 'invalid_json');
    const chunked = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, [bad]);
    expectEnvelope({ ...chunked, header: chunked.headers['x-request-id'] as string }, 400, 'invalid_json');
  });

  it('400 invalid_json for a lone UTF-16 surrogate in a string or a member name, however deep; a pair is fine', async () => {
    const lone = [
      String.raw`{"message":"hi\ud800"}`,
      String.raw`{"message":"\udc00 at the start"}`,
      String.raw`{"message":"x","visitor":{"name":"Bob\uDBFF"}}`,
      String.raw`{"message":"x","metadata":{"\ud83d":"key"}}`,
      `${'['.repeat(5000)}${String.raw`"\ud800"`}${']'.repeat(5000)}`,
      String.raw`{"message":"backwards \udc4d\ud83d"}`,
    ];
    for (const body of lone) {
      const sized = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, [body]);
      expectEnvelope({ ...sized, header: sized.headers['x-request-id'] as string }, 400, 'invalid_json');
      expect(JSON.parse(sized.text).error.message).toMatch(/lone UTF-16 surrogate/);
      const chunked = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, [body]);
      expectEnvelope({ ...chunked, header: chunked.headers['x-request-id'] as string }, 400, 'invalid_json');
    }
    for (const body of [String.raw`{"message":"\ud83d\udc4d"}`, '{"message":"👍"}', String.raw`{"message":"\\ud800 is only text"}`]) {
      const r = await raw('POST', POST_PATH, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }, [body]);
      expect(bodyRuleCode(r.text), `${body}: ${r.text}`).toBeUndefined();
    }
  });

  it('accepts application/json with a charset parameter', async () => {
    const r = await call(t.base, 'POST', POST_PATH, { rawBody: '{}', headers: { 'Content-Type': 'Application/JSON; charset=utf-8' } });
    expect(bodyRuleCode(r.text)).toBeUndefined();
  });

  it('404 not_found for an unknown route, whatever the method', async () => {
    for (const [method, path] of [['GET', '/nope'], ['DELETE', '/nope/deeper'], ['GET', '/widget.jsx']] as const) {
      const r = await call(t.base, method, path);
      expectEnvelope({ ...r, header: r.headers.get('x-request-id') }, 404, 'not_found');
    }
  });

  it('logs each request with its id and status, without the body', async () => {
    const r = await call(t.base, 'POST', POST_PATH, { rawBody: '{"api_key":"pk_live_', headers: { 'Content-Type': 'application/json' } });
    const id = r.headers.get('x-request-id')!;
    let line: string | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = t.logs.find((l) => l.includes(id));
      if (!line) await new Promise((res) => setTimeout(res, 10));
    }
    expect(JSON.parse(line!)).toMatchObject({ request_id: id, method: 'POST', path: POST_PATH, status: 400, msg: 'request' });
    expect(line).not.toContain('pk_live_');
  });

  it("logs the client's address: the socket's, and X-Forwarded-For's only behind PARLEY_TRUST_PROXY", async () => {
    const logged = async (server: TestServer): Promise<Record<string, unknown>> => {
      const r = await fetch(`${server.base}/healthz`, { headers: { 'X-Forwarded-For': '203.0.113.7' } });
      const id = r.headers.get('x-request-id')!;
      for (let i = 0; i < 100; i++) {
        const line = server.logs.find((l) => l.includes(id));
        if (line) return JSON.parse(line) as Record<string, unknown>;
        await new Promise((res) => setTimeout(res, 10));
      }
      throw new Error('no access log line');
    };
    expect((await logged(t)).ip).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    const proxied = await startTestServer({ trustProxy: 'loopback' });
    try {
      expect((await logged(proxied)).ip).toBe('203.0.113.7');
    } finally {
      await proxied.close();
    }
  });
});

describe('GET /widget.js', () => {
  const dist = fileURLToPath(new URL('../../widget/dist/widget.js', import.meta.url));

  it.skipIf(!existsSync(dist))('serves the built widget with an ETag and a short Cache-Control', async () => {
    const r = await fetch(`${t.base}/widget.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(r.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(r.headers.get('cache-control')).toMatch(/max-age=\d+/);
    // The bundle names its map in no comment; this header does, relative to the script.
    expect(r.headers.get('sourcemap')).toBe('widget.js.map');
    expect((await fetch(`${t.base}/widget.js.map`)).status).toBe(200);
    expect((await r.text()).length).toBeGreaterThan(100);
    const again = await fetch(`${t.base}/widget.js`, { headers: { 'If-None-Match': r.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it.skipIf(!existsSync(dist))('sends it brotli or gzip compressed to a client that accepts it, each coding with its own ETag', async () => {
    const raw = readFileSync(dist);
    const get = (headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
        httpGet(`${t.base}/widget.js`, { headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        }).on('error', reject);
      });
    const plain = await get({});
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(raw)).toBe(true);
    const br = await get({ 'Accept-Encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toMatch(/Accept-Encoding/);
    expect(brotliDecompressSync(br.body).equals(raw)).toBe(true);
    expect(br.body.length).toBeLessThan(raw.length / 2);
    const gz = await get({ 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(raw)).toBe(true);
    // The client's q-values win; identity;q=1 with the rest at 0 is the file as is.
    expect((await get({ 'Accept-Encoding': 'br;q=0.5, gzip;q=0.9' })).headers['content-encoding']).toBe('gzip');
    expect((await get({ 'Accept-Encoding': 'br;q=0, gzip;q=0' })).headers['content-encoding']).toBeUndefined();
    const etags = new Set([plain, br, gz].map((r) => r.headers.etag));
    expect(etags.size).toBe(3);
    // A validator of one representation revalidates that one, also in a list or weak.
    expect((await get({ 'Accept-Encoding': 'br', 'If-None-Match': String(br.headers.etag) })).status).toBe(304);
    expect((await get({ 'Accept-Encoding': 'br', 'If-None-Match': `"x", W/${br.headers.etag}` })).status).toBe(304);
    expect((await get({ 'Accept-Encoding': 'gzip', 'If-None-Match': String(br.headers.etag) })).status).toBe(200);
  });

  describe('over a folder with a stand-in widget.js', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-widget-'));
    let base: string;
    let close: () => void;
    beforeAll(async () => {
      writeFileSync(join(dir, 'widget.js'), 'console.log("widget v1");');
      const app = express();
      app.use(requestContext(t.ctx));
      app.use(widgetScript(`${dir}/`));
      app.use(errorHandler(() => undefined));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      close = () => server.close();
    });
    afterAll(() => {
      close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers 200 with ETag and Cache-Control, then 304 for a matching If-None-Match', async () => {
      const r = await fetch(`${base}/widget.js`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('console.log("widget v1");');
      const etag = r.headers.get('etag')!;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      expect(r.headers.get('cache-control')).toMatch(/max-age=([1-9]\d{0,3})\b/);
      expect(r.headers.get('content-type')).toMatch(/^text\/javascript/);

      const same = await fetch(`${base}/widget.js`, { headers: { 'If-None-Match': etag } });
      expect(same.status).toBe(304);
      expect(await same.text()).toBe('');
      expect(same.headers.get('etag')).toBe(etag);

      const stale = await fetch(`${base}/widget.js`, { headers: { 'If-None-Match': '"something-else"' } });
      expect(stale.status).toBe(200);
    });

    it('matches its paths as Express routes do (any case, a trailing slash) and answers OPTIONS with Allow', async () => {
      for (const path of ['/Widget.js', '/WIDGET.JS', '/widget.js/', '/widget.js?v=2']) {
        const r = await fetch(`${base}${path}`);
        expect(r.status, path).toBe(200);
        expect(await r.text()).toBe('console.log("widget v1");');
      }
      const head = await fetch(`${base}/widget.js`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('etag')).toMatch(/^"/);
      const options = await fetch(`${base}/widget.js`, { method: 'OPTIONS' });
      expect(options.status).toBe(200);
      expect(options.headers.get('allow')).toBe('GET, HEAD');
      expect((await fetch(`${base}/widget.js`, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${base}/widget.jsx`)).status).toBe(404);
    });

    it('serves a rebuilt widget under a new ETag', async () => {
      const before = (await fetch(`${base}/widget.js`)).headers.get('etag');
      writeFileSync(join(dir, 'widget.js'), 'console.log("widget v2, longer");');
      const later = new Date(Date.now() + 5_000);
      utimesSync(join(dir, 'widget.js'), later, later);
      const r = await fetch(`${base}/widget.js`);
      expect(await r.text()).toBe('console.log("widget v2, longer");');
      expect(r.headers.get('etag')).not.toBe(before);
    });

    it('is 404 not_found in the envelope when the widget is not built', async () => {
      const r = await fetch(`${base}/widget.js.map`);
      expect(r.status).toBe(404);
      const body = (await r.json()) as { error: { code: string; request_id: string } };
      expect(body.error.code).toBe('not_found');
      expect(r.headers.get('x-request-id')).toBe(body.error.request_id);
    });
  });
});
