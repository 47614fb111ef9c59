// The widget's HTTP client for the widget routes of SPEC section 6: key in a header, JSON bodies,
// the error envelope of section 8 turned into one ApiError, a timeout on every call.
import type {
  CreateTicketResponse,
  ErrorCode,
  MessageResponse,
  MessagesResponse,
  UserTicketsResponse,
  WidgetConfigResponse,
} from '@parley/shared';

export const TIMEOUT_MS = 15_000;

/** What went wrong: a server error code, or `network` (fetch threw) / `timeout` / `bad_response`. */
export type FailureCode = ErrorCode | 'network' | 'timeout' | 'bad_response';

export class ApiError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    /** HTTP status, 0 when no response arrived. */
    readonly status = 0,
    /** Seconds from Retry-After, when sent. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
  /** Worth trying again later with the same Idempotency-Key. */
  get transient(): boolean {
    return this.status === 0 || this.status >= 500 || this.code === 'rate_limit_exceeded';
  }
}

export interface CreateTicketRequest {
  message: string;
  visitor?: { name?: string; email?: string };
  page_url?: string;
  user_token?: string;
}

export interface ApiOptions {
  base: string;
  serviceId: string;
  key: string;
  /** The signed user token of Parley.identify, read on every call. */
  userToken: () => string | undefined;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export type Api = ReturnType<typeof createApi>;

/** A client bound to one site; every method resolves with the parsed body or rejects with ApiError. */
export function createApi(o: ApiOptions) {
  const root = `${o.base}/v1/widget/${encodeURIComponent(o.serviceId)}`;
  const doFetch = (...a: Parameters<typeof fetch>) => (o.fetch ?? fetch)(...a);

  function headers(visitorToken?: string, idempotencyKey?: string, json?: boolean): Record<string, string> {
    const h: Record<string, string> = { 'X-Parley-Key': o.key };
    if (json) h['Content-Type'] = 'application/json';
    if (visitorToken) h['X-Visitor-Token'] = visitorToken;
    if (idempotencyKey) h['Idempotency-Key'] = idempotencyKey;
    const user = o.userToken();
    if (user) h['X-User-Token'] = user;
    return h;
  }

  /** One request; with `stream` (the caller's signal, no timeout) it resolves with the open body instead of parsed JSON. */
  async function call<T>(method: string, path: string, h: Record<string, string>, body?: unknown, stream?: AbortSignal): Promise<T> {
    const abort = new AbortController();
    const timer = stream ? undefined : setTimeout(() => abort.abort(), o.timeoutMs ?? TIMEOUT_MS);
    let res: Response;
    try {
      res = await doFetch(root + path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: stream ?? abort.signal,
        credentials: 'omit',
        ...(stream && { cache: 'no-store' }),
      });
      if (stream && res.ok && res.body) return res.body as T;
      const data: unknown = await res.json().catch(() => undefined);
      if (!stream && res.ok && data && typeof data === 'object') return data as T;
      throw toError(res, data);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (abort.signal.aborted) throw new ApiError('timeout', 'The request timed out.');
      throw unreachable();
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    /**
     * True when the API host answers at all: widget.js is served to any origin (ACAO *), without a
     * key or a preflight, so after a request with no readable answer it tells a page the API
     * refuses (its CORS refusal looks like no answer) from a connection that is down. Never from
     * the HTTP cache, which holds the widget.js this page loaded and answers even offline.
     */
    probe: () =>
      doFetch(`${o.base}/widget.js`, { method: 'HEAD', credentials: 'omit', cache: 'no-store' }).then(
        (r) => r.ok,
        () => false,
      ),
    // Without X-User-Token: an expired token in a cached page must not keep the widget from starting.
    config: () => call<WidgetConfigResponse>('GET', '/config', { 'X-Parley-Key': o.key }),
    /** The signed-in user's newest ticket on this site, with a visitor token for it (X-User-Token). */
    userTickets: () => call<UserTicketsResponse>('GET', '/tickets?limit=1', headers()),
    createTicket: (body: CreateTicketRequest, idempotencyKey: string) =>
      call<CreateTicketResponse>('POST', '/tickets', headers(undefined, idempotencyKey, true), body),
    messages: (ticketId: string, visitorToken: string, after?: string) =>
      call<MessagesResponse>(
        'GET',
        `/tickets/${encodeURIComponent(ticketId)}/messages${after ? `?after=${encodeURIComponent(after)}` : ''}`,
        headers(visitorToken),
      ),
    postMessage: (ticketId: string, visitorToken: string, message: string, idempotencyKey: string) =>
      call<MessageResponse>(
        'POST',
        `/tickets/${encodeURIComponent(ticketId)}/messages`,
        headers(visitorToken, idempotencyKey, true),
        { message },
      ),
    /** Opens the event stream; the caller reads the body and owns the signal. */
    events: (ticketId: string, visitorToken: string, lastEventId: string | undefined, signal: AbortSignal) => {
      const h = headers(visitorToken);
      h.Accept = 'text/event-stream';
      if (lastEventId) h['Last-Event-ID'] = lastEventId;
      return call<ReadableStream<Uint8Array>>('GET', `/tickets/${encodeURIComponent(ticketId)}/events`, h, undefined, signal);
    },
  };
}

const unreachable = () => new ApiError('network', 'The Parley API could not be reached.');

function toError(res: Response, data: unknown): ApiError {
  const e = (data as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const retry = Number(res.headers.get('Retry-After'));
  return new ApiError(
    typeof e?.code === 'string' ? (e.code as ErrorCode) : res.status >= 500 ? 'internal_error' : 'bad_response',
    typeof e?.message === 'string' ? e.message : `HTTP ${res.status}`,
    res.status,
    retry > 0 ? Math.ceil(retry) : undefined,
  );
}

/**
 * A fresh Idempotency-Key, 128 random bits in hex: generated once per outgoing message, reused by
 * its retries. getRandomValues, not randomUUID, which pages served over plain http do not have.
 */
export function newIdempotencyKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
