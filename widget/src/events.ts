// The events the page can listen to through Parley.on(event, fn).

export type EventName = 'ready' | 'open' | 'close' | 'message' | 'error' | 'token-expired';
export const EVENT_NAMES: readonly EventName[] = ['ready', 'open', 'close', 'message', 'error', 'token-expired'];
export type Listener = (payload?: unknown) => void;

export interface Emitter {
  on(name: EventName, fn: Listener): () => void;
  emit(name: EventName, payload?: unknown): void;
}

/** An emitter whose listeners cannot break the widget: a throwing page handler is reported, not propagated. */
export function createEmitter(): Emitter {
  const listeners = new Map<EventName, Set<Listener>>();
  return {
    on(name, fn) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(fn);
      return () => set.delete(fn);
    },
    emit(name, payload) {
      for (const fn of [...(listeners.get(name) ?? [])]) {
        try {
          fn(payload);
        } catch (err) {
          console.error(`Parley: a "${name}" listener threw`, err);
        }
      }
    },
  };
}
