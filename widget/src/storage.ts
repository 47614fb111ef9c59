// The one place that touches localStorage. It survives storage that throws (blocked cookies,
// sandboxed iframes, Safari private mode) by keeping the values in memory for this page instead.
import type { CreateTicketRequest } from './api.ts';

/** A message the visitor sent that the server has not confirmed yet, kept so a reload shows it "Not sent" again. */
export interface Unsent {
  /** The message's local id: the Idempotency-Key of its first attempt. */
  key: string;
  message: string;
  visitor?: { name?: string; email?: string };
  idempotencyKey: string;
  /** The exact create body of the first attempt (see store.ts): a retry must repeat it byte for byte. */
  body?: CreateTicketRequest;
  /** When its Idempotency-Key was first sent (Date.now()); an entry without it is never replayed by itself. */
  at?: number;
}

/** What the widget remembers about a visitor: the ticket to continue. */
export interface Saved {
  ticketId: string;
  visitorToken: string;
  /** The newest message the visitor has seen with the chat open: later agent replies are unread. */
  seen?: string;
}

export interface VisitorStorage {
  readonly key: string;
  get(): Saved | null;
  /** Stores the ticket; null forgets it. */
  set(value: Saved | null): void;
  /** The messages still to be confirmed, of every tab, oldest first. */
  unsent(): Unsent[];
  /** Keeps one message to be confirmed, or (a key) forgets it. */
  put(u: Unsent | string): void;
  /** Forgets the ticket and every message to be confirmed. */
  clear(): void;
}

/**
 * Storage for one service id: the ticket under `parley:<serviceId>`, each unsent message under
 * `parley:<serviceId>:u:<its key>`. One entry per message, so a tab that writes its own view (its
 * "seen" marker, its own messages) can never drop another tab's unsent message. Nothing is
 * written until set() or put() is called.
 */
export function createStorage(serviceId: string, win: Window = window): VisitorStorage {
  const key = `parley:${serviceId}`;
  const unsentKey = `${key}:u:`;
  const memory = new Map<string, string>();
  let useMemory = false;
  const local = () => {
    if (useMemory) throw 0;
    return win.localStorage;
  };
  const read = (k: string): string | null => {
    try {
      return local().getItem(k);
    } catch {
      return memory.get(k) ?? null;
    }
  };
  const keys = (): string[] => {
    try {
      return Object.keys(local());
    } catch {
      return [...memory.keys()];
    }
  };
  /** Writes `value` under `k`, or removes `k`; storage that throws (or is missing) turns this page to memory. */
  const write = (k: string, value?: string) => {
    if (value === undefined) memory.delete(k);
    else memory.set(k, value);
    try {
      if (value === undefined) local().removeItem(k);
      else local().setItem(k, value);
    } catch {
      useMemory = true;
    }
  };
  return {
    key,
    get: () => parseSaved(read(key)),
    set: (value) => write(key, value ? JSON.stringify(value) : undefined),
    unsent() {
      return keys()
        .filter((k) => k.startsWith(unsentKey))
        .map((k) => json(read(k)))
        .filter(valid)
        .sort((a, b) => (a.at ?? 0) - (b.at ?? 0));
    },
    put: (u) => (typeof u === 'string' ? write(unsentKey + u) : write(unsentKey + u.key, JSON.stringify(u))),
    clear() {
      for (const k of keys()) if (k === key || k.startsWith(unsentKey)) write(k);
    },
  };
}

const json = (raw: string | null | undefined): unknown => {
  try {
    return JSON.parse(raw!);
  } catch {
    return null;
  }
};

const valid = (u: unknown): u is Unsent =>
  typeof (u as Unsent)?.key === 'string' && typeof (u as Unsent).message === 'string' && typeof (u as Unsent).idempotencyKey === 'string';

/** A stored value, or null when it is absent or not ours. */
export function parseSaved(raw: string | null | undefined): Saved | null {
  const v = json(raw) as Partial<Saved> | null;
  return typeof v?.ticketId === 'string' && typeof v.visitorToken === 'string'
    ? { ticketId: v.ticketId, visitorToken: v.visitorToken, ...(typeof v.seen === 'string' && { seen: v.seen }) }
    : null;
}
