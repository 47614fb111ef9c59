// Follows a ticket's event stream (SPEC section 6) over fetch, so the key travels in a header
// instead of the URL: parses text/event-stream, reconnects with backoff and Last-Event-ID, and
// falls back to polling when streaming keeps failing (a proxy that buffers, a corporate filter).
import { ApiError } from './api.ts';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** A push parser for text/event-stream: feed it decoded text, it calls back once per event. */
export function createSseParser(onEvent: (e: SseEvent) => void): (chunk: string) => void {
  let buffer = '';
  let data: string[] = [];
  let event = '';
  let id: string | undefined;
  return (chunk) => {
    buffer += chunk;
    // A lone \r at the very end may be the first half of \r\n: keep it for the next chunk.
    const lines = buffer.split(/\r\n|\n|\r(?!$)/);
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id });
        data = [];
        event = '';
        continue;
      }
      // Field, then after the first colon and one space the value; a comment (":...") is the field "", which none is.
      const [, field, value = ''] = /^([^:]*)(?:: ?([^]*))?$/.exec(line)!;
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  };
}

export interface FollowOptions {
  /** Opens the stream, resolving with its body. */
  open(lastEventId: string | undefined, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  /** Fetches what the stream would have delivered (GET messages?after=). */
  poll(): Promise<void>;
  /** Called after every successful open; `first` is false after a reconnect. */
  onOpen?(first: boolean): void;
  onEvent(e: SseEvent): void;
  /** A refusal that retrying cannot fix (404 gone, 401/403): following stops. */
  onFatal(err: ApiError): void;
  timing?: Partial<typeof TIMING>;
}

export const TIMING = {
  /** First reconnect delay; doubles per failure up to maxDelay. */
  baseDelay: 1_000,
  maxDelay: 30_000,
  /** Silence after which the stream counts as dead (the server sends a heartbeat every 25 s). */
  silence: 60_000,
  /** Failed stream attempts in a row before polling instead. */
  pollAfterFailures: 3,
  pollInterval: 5_000,
  /** While polling, try the stream again after this many polls. */
  pollsBetweenTries: 12,
};

const fatal = (e: unknown): e is ApiError =>
  e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;

/** Follows the stream until the returned stop function is called or a fatal refusal arrives. */
export function follow(o: FollowOptions): () => void {
  const t = { ...TIMING, ...o.timing };
  let stopped = false;
  let controller: AbortController | undefined;
  let wake: (() => void) | undefined;
  let lastEventId: string | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function read(body: ReadableStream<Uint8Array>, abort: AbortController): Promise<boolean> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let alive = false;
    const feed = createSseParser((e) => {
      if (e.id !== undefined) lastEventId = e.id;
      o.onEvent(e);
    });
    let timer = setTimeout(() => abort.abort(), t.silence);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        alive = true;
        clearTimeout(timer);
        timer = setTimeout(() => abort.abort(), t.silence);
        feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // Aborted or cut off: the caller reconnects.
    } finally {
      clearTimeout(timer);
      reader.releaseLock?.();
    }
    return alive;
  }

  async function run(): Promise<void> {
    let failures = 0;
    let polls = 0;
    let opened = false;
    while (!stopped) {
      if (failures >= t.pollAfterFailures && polls < t.pollsBetweenTries) {
        polls++;
        try {
          await o.poll();
        } catch (e) {
          if (fatal(e)) return stopped ? undefined : o.onFatal(e);
        }
        await sleep(t.pollInterval);
        continue;
      }
      polls = 0;
      controller = new AbortController();
      let alive = false;
      try {
        const body = await o.open(lastEventId, controller.signal);
        if (stopped) return;
        o.onOpen?.(!opened);
        opened = true;
        alive = await read(body, controller);
      } catch (e) {
        if (stopped) return;
        if (fatal(e)) return o.onFatal(e);
      }
      if (stopped) return;
      failures = alive ? 0 : failures + 1;
      const delay = Math.min(t.maxDelay, t.baseDelay * 2 ** Math.max(0, failures - 1));
      await sleep(delay * (0.8 + Math.random() * 0.4));
    }
  }

  void run();
  return () => {
    stopped = true;
    controller?.abort();
    wake?.();
  };
}
