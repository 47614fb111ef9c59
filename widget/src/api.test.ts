// The HTTP client: headers, the error envelope, Retry-After and the timeout.
import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApi } from './api.ts';

const reply = (status: number, data: unknown, headers: Record<string, string> = {}) =>
  ({ ok: status < 300, status, headers: new Headers(headers), json: async () => data }) as unknown as Response;

const client = (fetch: unknown, extra = {}) =>
  createApi({ base: 'https://api.example', serviceId: 'acme-help', key: 'pk_test_x', userToken: () => 'u.t', fetch: fetch as typeof globalThis.fetch, ...extra });

describe('createApi', () => {
  it('sends the key, the user token and the Idempotency-Key as headers, and the body as JSON', async () => {
    const fetch = vi.fn(async () => reply(201, { message: { id: 'msg_1' } }));
    await client(fetch).postMessage('tkt_1', 'vt_1', 'hi', 'idem-1');
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('https://api.example/v1/widget/acme-help/tickets/tkt_1/messages');
    expect(init.method).toBe('POST');
    expect(init.credentials).toBe('omit');
    expect(init.headers).toEqual({
      'X-Parley-Key': 'pk_test_x',
      'Content-Type': 'application/json',
      'X-Visitor-Token': 'vt_1',
      'Idempotency-Key': 'idem-1',
      'X-User-Token': 'u.t',
    });
    expect(init.body).toBe('{"message":"hi"}');
  });

  it("lists the signed-in user's newest ticket with X-User-Token, and asks /config without it", async () => {
    const fetch = vi.fn(async () => reply(200, { tickets: [], next_cursor: null }));
    const api = client(fetch);
    expect(await api.userTickets()).toEqual({ tickets: [], next_cursor: null });
    await api.config();
    const [[url, init], [, config]] = fetch.mock.calls as unknown as [[string, RequestInit], [string, RequestInit]];
    expect([url, init.method]).toEqual(['https://api.example/v1/widget/acme-help/tickets?limit=1', 'GET']);
    expect(init.headers).toEqual({ 'X-Parley-Key': 'pk_test_x', 'X-User-Token': 'u.t' });
    // An expired token in a cached page must not stop the widget from starting.
    expect(config.headers).toEqual({ 'X-Parley-Key': 'pk_test_x' });
  });

  it('turns the error envelope and Retry-After into an ApiError', async () => {
    const fetch = async () =>
      reply(429, { error: { code: 'rate_limit_exceeded', message: 'slow down', request_id: 'r' } }, { 'Retry-After': '9' });
    const err = (await client(fetch).config().catch((e) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect([err.code, err.status, err.retryAfter, err.message, err.transient]).toEqual(['rate_limit_exceeded', 429, 9, 'slow down', true]);
  });

  it('reports a network failure as code network, status 0', async () => {
    const err = (await client(async () => Promise.reject(new TypeError('Failed to fetch'))).config().catch((e) => e)) as ApiError;
    expect([err.code, err.status, err.transient]).toEqual(['network', 0, true]);
  });

  it('gives up after the timeout and aborts the request', async () => {
    let signal: AbortSignal | undefined;
    const hang = (_: string, init: RequestInit) =>
      new Promise((_, reject) => {
        signal = init.signal!;
        signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
      });
    const err = (await client(hang, { timeoutMs: 20 }).createTicket({ message: 'x' }, 'k').catch((e) => e)) as ApiError;
    expect(err.code).toBe('timeout');
    expect(signal!.aborted).toBe(true);
  });

  it('reads a 4xx without an envelope as bad_response', async () => {
    const err = (await client(async () => reply(418, 'teapot')).config().catch((e) => e)) as ApiError;
    expect([err.code, err.status, err.transient]).toEqual(['bad_response', 418, false]);
  });
});
