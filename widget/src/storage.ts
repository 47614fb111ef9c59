// The one place that touches localStorage. It survives storage that throws (blocked cookies,
// sandboxed iframes, Safari private mode) by keeping the value in memory for this page instead.
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
  /** The messages still to be confirmed, oldest first. */
  unsent(): Unsent[];
  /** Stores the ticket and the unsent messages; with neither, clears. */
  set(value: Saved | null, unsent?: Unsent[]): void;
  clear(): void;
}

/** Storage for one service id, under `parley:<serviceId>`, in one entry. Nothing is written until set() is called. */
export function createStorage(serviceId: string, win: Window = window): VisitorStorage {
  const key = `parley:${serviceId}`;
  let memory: string | null = null;
  let useMemory = false;
  const local = (): Storage | null => {
    try {
      return useMemory ? null : win.localStorage;
    } catch {
      return null;
    }
  };
  const read = () => {
    let raw = memory;
    try {
      if (!useMemory) raw = local()?.getItem(key) ?? null;
    } catch {
      // A getItem that throws leaves raw at the in-memory value.
    }
    return raw;
  };
  return {
    key,
    get: () => parseSaved(read()),
    unsent() {
      try {
        const o = (JSON.parse(read()!) as { outbox?: Unsent[] }).outbox;
        return Array.isArray(o) ? o.filter((u) => typeof u?.key === 'string' && typeof u.message === 'string' && typeof u.idempotencyKey === 'string') : [];
      } catch {
        return [];
      }
    },
    set(value, unsent = []) {
      if (!value && !unsent.length) return this.clear();
      memory = JSON.stringify({ ...value, ...(unsent.length && { outbox: unsent }) });
      try {
        // No storage (null) throws here as well as a full or blocked one: either way, memory it is.
        local()!.setItem(key, memory);
      } catch {
        useMemory = true;
      }
    },
    clear() {
      memory = null;
      try {
        local()?.removeItem(key);
      } catch {
        // Nothing was stored there.
      }
    },
  };
}

/** A stored value, or null when it is absent or not ours. */
export function parseSaved(raw: string | null | undefined): Saved | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<Saved>;
    return typeof v.ticketId === 'string' && typeof v.visitorToken === 'string'
      ? { ticketId: v.ticketId, visitorToken: v.visitorToken, ...(typeof v.seen === 'string' && { seen: v.seen }) }
      : null;
  } catch {
    return null;
  }
}
