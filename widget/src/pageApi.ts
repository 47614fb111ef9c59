// window.Parley: an allow-list of named functions, and the replay of calls a page queued on the
// stub before this script loaded (see README-snippet.md).
import { EVENT_NAMES, type EventName, type Listener } from './events.ts';

export interface PageApi {
  open(): void;
  close(): void;
  toggle(): void;
  identify(token: string): void;
  reset(): void;
  /** Listens to an event; returns a function that stops listening. */
  on(event: EventName, fn: Listener): () => void;
}

/** Calls that show or hide the panel wait for ready; the others apply at once, so a queued
 * reset() forgets the old visitor before the stored conversation would be loaded. */
const AFTER_READY = ['open', 'close', 'toggle'];

/** Installs `api` as window.Parley and replays the stub's queue. */
export function installPageApi(win: Window, api: PageApi, whenReady: (fn: () => void) => void): void {
  const w = win as Window & { Parley?: unknown };
  const stub = w.Parley as { q?: unknown } | undefined;
  const queue = Array.isArray(stub?.q) ? (stub.q as unknown[]) : [];
  w.Parley = Object.freeze({ ...api });
  for (const call of queue) {
    const [method, ...args] = Array.isArray(call) ? call : [];
    // The allow-list is the api itself: its own named functions, nothing inherited.
    if (!Object.keys(api).includes(method)) continue;
    const run = () => {
      try {
        (api[method as keyof PageApi] as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        console.error(`Parley: the queued call ${method}() failed`, err);
      }
    };
    if (AFTER_READY.includes(method as string)) whenReady(run);
    else run();
  }
}

/** True for the event names Parley.on accepts. */
export const isEventName = (name: unknown): name is EventName => EVENT_NAMES.includes(name as EventName);
