// The event-stream reader: parsing, reconnecting with Last-Event-ID, and falling back to polling.
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api.ts';
import { createSseParser, follow, type SseEvent } from './sse.ts';

const enc = new TextEncoder();

/** A stream that sends `chunks` and then ends (or stays open when `hang`). */
function streamOf(chunks: string[], hang = false, signal?: AbortSignal): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(enc.encode(chunk));
      if (!hang) c.close();
      signal?.addEventListener('abort', () => c.error(new DOMException('aborted', 'AbortError')));
    },
  });
}

const fast = { baseDelay: 1, maxDelay: 5, pollInterval: 1, silence: 1_000, pollAfterFailures: 3, pollsBetweenTries: 2 };

describe('createSseParser', () => {
  it('parses events split anywhere across chunks, with CRLF, comments and multi-line data', () => {
    const seen: SseEvent[] = [];
    const feed = createSseParser((e) => seen.push(e));
    const text = ': heartbeat\r\n\r\nevent: message\r\nid: msg_1\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent:status\ndata:{"status":"closed"}\n\ndata: plain\n\n';
    for (const ch of text) feed(ch); // one character at a time
    expect(seen).toEqual([
      { event: 'message', data: '{"a":\n1}', id: 'msg_1' },
      { event: 'status', data: '{"status":"closed"}', id: 'msg_1' },
      { event: 'message', data: 'plain', id: 'msg_1' },
    ]);
  });

  it('reads a field without a colon as empty, keeps later colons and one space only, and any character in a value', () => {
    const seen: SseEvent[] = [];
    const feed = createSseParser((e) => seen.push(e));
    feed('data\ndata:  two: spaces\u2028\ndata:x\nunknown: field\n\n');
    expect(seen).toEqual([{ event: 'message', data: '\n two: spaces\u2028\nx', id: undefined }]);
  });

  it('does not dispatch an event before its blank line', () => {
    const seen: SseEvent[] = [];
    const feed = createSseParser((e) => seen.push(e));
    feed('event: message\ndata: x\n');
    expect(seen).toEqual([]);
    feed('\n');
    expect(seen).toHaveLength(1);
  });
});

describe('follow', () => {
  it('reconnects after the stream ends, sending Last-Event-ID, and catches up after a reconnect', async () => {
    const opens: (string | undefined)[] = [];
    const poll = vi.fn(async () => undefined);
    const events: string[] = [];
    let stop = () => {};
    await new Promise<void>((done) => {
      stop = follow({
        open: async (last, signal) => {
          opens.push(last);
          if (opens.length === 1) return streamOf(['event: message\nid: msg_7\ndata: {}\n\n']);
          return streamOf([], true, signal);
        },
        poll,
        onOpen: (first) => {
          if (first) return;
          void poll();
          done();
        },
        onEvent: (e) => events.push(e.id!),
        onFatal: () => {},
        timing: fast,
      });
    });
    stop();
    expect(opens).toEqual([undefined, 'msg_7']);
    expect(events).toEqual(['msg_7']);
    await vi.waitFor(() => expect(poll).toHaveBeenCalledTimes(1));
  });

  it('polls instead after repeated stream failures, and tries the stream again later', async () => {
    const log: string[] = [];
    const stop = follow({
      open: async () => {
        log.push('open');
        throw new ApiError('network', 'down');
      },
      poll: async () => void log.push('poll'),
      onEvent: () => {},
      onFatal: () => {},
      timing: fast,
    });
    await vi.waitFor(() => expect(log.length).toBeGreaterThanOrEqual(6));
    stop();
    expect(log.slice(0, 6)).toEqual(['open', 'open', 'open', 'poll', 'poll', 'open']);
  });

  it('stops on a refusal that retrying cannot fix', async () => {
    const open = vi.fn(async () => {
      throw new ApiError('not_found', 'gone', 404);
    });
    const onFatal = vi.fn();
    follow({ open, poll: async () => {}, onEvent: () => {}, onFatal, timing: fast });
    await vi.waitFor(() => expect(onFatal).toHaveBeenCalledTimes(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(open).toHaveBeenCalledTimes(1);
    expect(onFatal.mock.calls[0]![0].status).toBe(404);
  });

  it('treats a silent stream as dead and reconnects', async () => {
    let opens = 0;
    const stop = follow({
      open: async (_, signal) => {
        opens++;
        return streamOf([], true, signal);
      },
      poll: async () => {},
      onEvent: () => {},
      onFatal: () => {},
      timing: { ...fast, silence: 10 },
    });
    await vi.waitFor(() => expect(opens).toBeGreaterThanOrEqual(2));
    stop();
  });
});
