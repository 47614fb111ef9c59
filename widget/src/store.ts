// The widget's state in one place, and every action that changes it: start-up, sending with
// retries that reuse their Idempotency-Key, live replies, unread count, identity and reset.
import type { Message } from '@parley/shared';
import { countChars } from '@parley/shared/chars';
import { type Api, ApiError, newIdempotencyKey } from './api.ts';
import type { Emitter } from './events.ts';
import { follow, type FollowOptions } from './sse.ts';
import type { Saved, Unsent as Outgoing, VisitorStorage } from './storage.ts';

/** SPEC 6, in characters as the server counts them (countChars), not UTF-16 units. */
export const MAX_MESSAGE = 5000;
/**
 * The request body is at most 32 KiB of UTF-8 (SPEC 6): 5,000 emoji of 4 to 8 bytes do not fit.
 * The message's JSON text may take 28,000 bytes, which leaves room for the rest of a first message's
 * body (name, email, page_url, a user token of a usual size); beyond it the server would answer 413.
 */
export const tooLong = (message: string) => countChars(message) > MAX_MESSAGE || new Blob([JSON.stringify(message)]).size > 28e3;
export const MAX_NAME = 100;
/** The most messages one GET of a ticket's messages returns (SPEC 6: oldest first, at most 100). */
export const MESSAGES_PAGE = 100;
/** Start-up attempts in a row with no answer before the widget gives up (see start()). */
export const NO_ANSWER_TRIES = 8;
/** Replies kept in the live region: each is read out once when added; a catch-up flood is cut to the newest. */
export const ANNOUNCED = 5;
/**
 * How long after its first send a kept message may be replayed by itself (see merge): the server
 * remembers an Idempotency-Key for 24 hours, after which a replay would store a second copy.
 */
export const REPLAY_WITHIN = 23 * 3_600_000;

export interface Item {
  /** The message id once the server has it; the local id while it is being sent. */
  key: string;
  author: 'visitor' | 'agent';
  authorName: string | null;
  body: string;
  /** Set while the message is only local; `covered`: not shown, the server's copy of it is (see merge). */
  state?: 'sending' | 'failed' | 'waiting' | 'covered';
}

export interface State {
  /** `identify`: the site requires identity and no user token is known yet, so nothing is shown. */
  phase: 'starting' | 'ready' | 'identify' | 'off';
  open: boolean;
  siteName: string;
  greeting: string;
  color: string;
  position: 'bottom-right' | 'bottom-left';
  items: Item[];
  unread: number;
  /** A refusal in plain words, shown above the composer. */
  notice: string;
  /** The notice is a countdown already read out: its seconds change without a new alert. */
  ticking: boolean;
  hasTicket: boolean;
  closed: boolean;
  /** The latest announcements for the aria-live region, [message id, text], oldest first (at most ANNOUNCED). */
  announcements: [string, string][];
}


export interface StoreDeps {
  api: Api;
  storage: VisitorStorage;
  emitter: Emitter;
  serviceId: string;
  apiBase: string;
  userToken?: string;
  win?: Window;
  streamTiming?: FollowOptions['timing'];
}

export type Store = ReturnType<typeof createStore>;

/** What the visitor typed: kept outside the panel, which unmounts on close, so closing it loses nothing while the page lives. */
export interface Draft {
  text: string;
  who: { name: string; email: string };
}

const newDraft = (): Draft => ({ text: '', who: { name: '', email: '' } });

export const TEXT = {
  rateLimited: (s: number) => `Too many messages. Try again in ${s} ${s === 1 ? 'second' : 'seconds'}.`,
  unavailable: 'Chat is unavailable right now.',
  signIn: 'Please sign in to send messages.',
  expired: 'Your session has expired. Please sign in again to send messages.',
  offline: 'Message not sent. Check your connection and try again.',
  /** No readable answer, but the API host is up: most likely it refuses this page's origin (CORS). */
  refusedHere: 'Chat is unavailable on this page right now.',
  /** The site's daily spend cap (402): it resets at midnight UTC, a time of day that differs per visitor. */
  capped: 'Chat has reached its limit for today. Please try again later.',
  /** Any other refusal, a 5xx included: the message stays, with Retry. */
  failed: 'Message not sent. Please try again.',
};

/** Creates the store; nothing happens (no request, no storage access) until start(). */
export function createStore(d: StoreDeps) {
  const win = d.win ?? window;
  let state: State = {
    phase: 'starting',
    open: false,
    siteName: '',
    greeting: '',
    color: '',
    position: 'bottom-right',
    items: [],
    unread: 0,
    notice: '',
    ticking: false,
    hasTicket: false,
    closed: false,
    announcements: [],
  };
  const listeners = new Set<() => void>();
  const outbox = new Map<string, Outgoing>();
  let saved: Saved | null = null;
  let userToken = d.userToken;
  /** The last token the server refused: token-expired is emitted once for it, and identify() ignores it. */
  let dead: string | undefined;
  let requireIdentity = false;
  let lastId: string | undefined;
  let lastAgent: string | undefined;
  let stopStream: (() => void) | undefined;
  let queue: Promise<void> = Promise.resolve();
  let wantOpen = false;
  let epoch = 0; // bumped by reset(): answers to requests from before it are dropped
  let countdown: ReturnType<typeof setTimeout> | undefined;
  let startAgain: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let silent = 0; // GET /config failures in a row that had no answer at all
  let draft = newDraft();

  /** Writes the ticket (the messages not yet confirmed are kept one by one: see deliver). */
  const save = () => d.storage.set(saved);

  function set(patch: Partial<State>): void {
    state = { ...state, ...patch };
    for (const fn of [...listeners]) fn();
  }

  /** Shows `notice`, ending any countdown; a rate limit's `wait` counts down a second at a time, then the notice goes. */
  function notify(notice: string, wait = 0, ticking = false): void {
    clearTimeout(countdown);
    set({ notice: wait ? TEXT.rateLimited(wait) : notice, ticking });
    if (wait) countdown = setTimeout(() => notify('', wait - 1, true), 1_000);
  }

  function patchItem(key: string, patch: Partial<Item> | null): void {
    set({ items: state.items.flatMap((i) => (i.key !== key ? [i] : patch ? [{ ...i, ...patch }] : [])) });
  }

  /**
   * Adds server messages not yet shown, before the local ones; `live` ones count as unread while the panel is closed.
   *
   * A visitor message that is not yet shown but has the text of one still sending or "Not sent"
   * is most likely that one: its POST reached the server and the stream (or a catch-up) brought
   * the stored copy before, or instead of, the answer. The local item is then covered (hidden)
   * rather than shown beside the copy, and confirmed by sending its outbox entry again with its
   * own Idempotency-Key: a replay answers with the id already shown, so nothing changes; if it was
   * another message (the same words from another tab) the replay stores ours and it appears; if
   * the replay fails too, the item shows as "Not sent" again. So a guess never drops a message.
   * Of two items with the same text the oldest is covered first, one per copy. A sending item is
   * confirmed by its own request when that is still to come, else (it was out) by one replay
   * after it failed (deliver). Not for `replacing`: that answer is the item's own. reset() drops
   * the outbox and every item, and the epoch drops replays still out. A message whose key was
   * first sent REPLAY_WITHIN ago or more (a tab left open for a day, a reload the next day) is never
   * taken for the copy: it stays "Not sent" with Retry beside it.
   */
  function merge(messages: Message[], live: boolean, replacing?: string): void {
    let items = state.items;
    let unread = state.unread;
    let announcements = state.announcements;
    const fresh: Message[] = [];
    for (const m of messages) {
      lastId = m.id;
      if (m.author === 'agent') lastAgent = m.id;
      if (items.some((i) => i.key === m.id)) continue;
      const item: Item = { key: m.id, author: m.author, authorName: m.author_name, body: m.body };
      // Server messages in the server's order, then the visitor's not yet confirmed: a message sent
      // (or retried) after replies came is placed after them, where the server and a reload have it.
      const at = items.findIndex((i) => i.state);
      items = at >= 0 ? [...items.slice(0, at), item, ...items.slice(at)] : [...items, item];
      const mine =
        replacing || m.author !== 'visitor'
          ? undefined
          : items.find((i) => (i.state === 'sending' || i.state === 'failed') && i.body === m.body && Date.now() - (outbox.get(i.key)?.at ?? 0) < REPLAY_WITHIN);
      if (mine) {
        items = items.map((i) => (i === mine ? { ...i, state: 'covered' } : i));
        if (mine.state === 'failed') enqueue(mine.key);
      }
      // The page's `message` event is for new messages (a reply as it comes, the visitor's own once
      // sent), not for the history a page load or identify() reads: that would count as unread.
      if (live || replacing) fresh.push(m);
      if (live && m.author === 'agent') {
        if (!state.open) unread++;
        announcements = [...announcements, [m.id, `${m.author_name || state.siteName}: ${m.body}`]].slice(-ANNOUNCED) as State['announcements'];
      }
    }
    if (replacing) items = items.filter((i) => i.key !== replacing);
    set({ items, unread, announcements });
    seen();
    for (const m of fresh) d.emitter.emit('message', m);
  }

  /** Remembers with the ticket the newest reply read with the chat open: later ones count as unread on the next page. */
  function seen(): void {
    if (saved && state.open && lastAgent && saved.seen !== lastAgent) {
      saved.seen = lastAgent; // mutated, not replaced: requests in flight compare `saved` by identity
      save();
    }
  }

  function adopt(next: Saved, write: boolean): void {
    saved = next;
    if (write) save();
    set({ hasTicket: true });
  }

  /** Forgets the ticket (gone or reset): keeps only messages that are still local. */
  function forget(): void {
    stopStream?.();
    stopStream = undefined;
    saved = null;
    lastId = lastAgent = undefined;
    save();
    set({ hasTicket: false, closed: false, items: state.items.filter((i) => i.state) });
  }

  /** Once per refused token, the page is asked for a new one (it answers with Parley.identify). */
  function expired(): void {
    if (dead === userToken) return;
    dead = userToken;
    d.emitter.emit('token-expired');
  }

  /**
   * A refusal of loading, listing or following: a gone ticket is forgotten, a passing failure tried
   * again, and a key revoked while the chat was open is said at once (live replies have stopped).
   */
  function failed(e: unknown, again: () => void): void {
    if (!(e instanceof ApiError)) return;
    if (e.status === 404) forget();
    else if (e.code === 'invalid_user_token') expired();
    else if (e.code === 'invalid_api_key') notify(TEXT.unavailable);
    else if (e.transient) setTimeout(again, 5_000);
  }

  async function catchUp(): Promise<void> {
    if (!saved) return;
    const s = saved;
    const res = await d.api.messages(s.ticketId, s.visitorToken, lastId);
    if (saved !== s) return;
    set({ closed: res.ticket.status === 'closed' });
    merge(res.messages, true);
  }

  function startStream(): void {
    if (!saved || stopStream) return;
    const s = saved;
    stopStream = follow({
      // The first connection resumes after the newest message already shown, so a reply written
      // between that message and the stream's subscription is sent, not lost.
      open: (lastEventId, signal) => d.api.events(s.ticketId, s.visitorToken, lastEventId ?? lastId, signal),
      poll: catchUp,
      onOpen: (first) => {
        if (!first) catchUp().catch(() => undefined);
      },
      onEvent: (e) => {
        if (saved !== s) return;
        try {
          const data = JSON.parse(e.data) as Message & { status?: string };
          if (e.event === 'message') merge([data], true);
          else if (e.event === 'status') set({ closed: data.status === 'closed' });
        } catch {
          // A malformed event is skipped; the next catch-up fills any gap.
        }
      },
      onFatal: (err) => {
        if (saved !== s) return;
        stopStream = undefined;
        failed(err, startStream);
      },
      timing: d.streamTiming,
    });
  }

  /** Loads a stored conversation: its messages, then live updates. */
  async function load(): Promise<void> {
    const s = saved;
    if (!s) return;
    try {
      // A page holds the oldest 100 after `after`: read on to the newest, or the rest would come
      // through the stream's catch-up as if new (counted unread and announced on every load).
      let messages: Message[] = [];
      let res;
      do {
        res = await d.api.messages(s.ticketId, s.visitorToken, messages[messages.length - 1]?.id);
        if (saved !== s) return;
        messages = [...messages, ...res.messages];
      } while (res.messages.length >= MESSAGES_PAGE);
      // Replies after the last one read with the chat open (all of them if none was) came while the visitor was away.
      const read = messages.findIndex((m) => m.id === s.seen);
      merge(messages, false);
      if (!state.open) set({ unread: messages.slice(read + 1).filter((m) => m.author === 'agent').length });
      set({ closed: res.ticket.status === 'closed' });
      startStream();
    } catch (e) {
      if (saved === s) failed(e, load);
    }
  }

  /** A signed-in user without a stored ticket (a new device) continues their newest one. */
  async function resume(): Promise<void> {
    const at = epoch;
    if (saved || !userToken) return;
    try {
      const t = (await d.api.userTickets()).tickets[0];
      if (at !== epoch || saved || !t) return;
      adopt({ ticketId: t.ticket.id, visitorToken: t.visitor_token }, true);
      await load();
    } catch (e) {
      if (at === epoch && !saved) failed(e, () => (queue = queue.then(resume)));
    }
  }

  /** Opens or closes the panel; before it can be shown (starting, waiting for identity), remembers the wish. */
  function setOpen(open: boolean): void {
    wantOpen = open;
    if (state.phase !== 'ready' || open === state.open) return;
    set({ open, unread: open ? 0 : state.unread });
    seen();
    d.emitter.emit(open ? 'open' : 'close');
  }

  function enqueue(key: string): void {
    queue = queue.then(() => deliver(key));
  }

  async function deliver(key: string): Promise<void> {
    const out = outbox.get(key);
    if (!out) return;
    const at = epoch;
    const covered = isCovered(key);
    if (!covered) patchItem(key, { state: 'sending' });
    notify('');
    try {
      const s = saved;
      if (!s)
        out.body ??= {
          message: out.message,
          ...(out.visitor && { visitor: out.visitor }),
          // Without the #fragment: OAuth implicit flows and magic links put tokens there. The query is kept.
          ...(/^https?:/.test(win.location.href) && { page_url: win.location.href.split('#')[0]!.slice(0, 2048) }),
          ...(userToken && { user_token: userToken }),
        };
      d.storage.put(out); // the visitor pressed Send: from now on the message survives a reload
      if (!s) {
        const res = await d.api.createTicket(out.body!, out.idempotencyKey);
        if (at !== epoch) return;
        outbox.delete(key);
        adopt({ ticketId: res.ticket.id, visitorToken: res.visitor_token }, true);
        merge(res.messages, false, key);
        startStream();
      } else {
        const res = await d.api.postMessage(s.ticketId, s.visitorToken, out.message, out.idempotencyKey);
        if (at !== epoch) return;
        outbox.delete(key);
        merge([res.message], false, key);
        if (state.closed) set({ closed: false });
      }
      // Only now, after the ticket: a page closed in between keeps the message, which a reload confirms (see merge).
      d.storage.put(key);
    } catch (e) {
      if (at !== epoch) return;
      // Covered while this request was out (see merge): one replay confirms the copy.
      if (!covered && isCovered(key)) enqueue(key);
      else refused(key, out, e instanceof ApiError ? e : new ApiError('network', String(e)));
    }
  }

  function isCovered(key: string): boolean {
    return state.items.some((i) => i.key === key && i.state === 'covered');
  }

  /** Keeps a message that was not sent, and says why in plain words. */
  function refused(key: string, out: Outgoing, e: ApiError): void {
    d.emitter.emit('error', { code: e.code, message: e.message });
    const renew = () => {
      // The request will differ (another endpoint or token), so it needs its own key, with a new 24 hours.
      out.body = undefined;
      out.idempotencyKey = newIdempotencyKey();
      out.at = Date.now();
      d.storage.put(out);
    };
    let notice = e.status === 0 ? TEXT.offline : e.status === 400 ? `Message not sent: ${e.message}` : TEXT.failed;
    let wait = 0;
    switch (e.code) {
      case 'not_found':
        if (saved) {
          forget();
          renew();
          return enqueue(key);
        }
        break;
      case 'identity_required':
      case 'invalid_user_token':
        renew();
        patchItem(key, { state: 'waiting' });
        if (e.code === 'invalid_user_token') expired();
        return notify(e.code === 'identity_required' ? TEXT.signIn : TEXT.expired);
      case 'rate_limit_exceeded':
        wait = e.retryAfter ?? 60;
        break;
      case 'invalid_api_key':
      case 'origin_not_allowed':
      case 'site_mismatch':
        console.error(ownerHelp(e, d.serviceId, d.apiBase, win));
        notice = TEXT.unavailable;
        break;
      case 'spend_cap_exceeded':
        notice = TEXT.capped;
    }
    patchItem(key, { state: 'failed' });
    notify(notice, wait);
    const at = epoch;
    if (e.code === 'network')
      void d.api.probe().then((up) => up && at === epoch && state.notice === TEXT.offline && notify(TEXT.refusedHere));
  }

  return {
    get: (): State => state,
    subscribe(fn: () => void): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    get userToken(): string | undefined {
      return userToken;
    },
    /** What the visitor typed and has not sent: the panel reads and writes it. */
    get draft(): Draft {
      return draft;
    },

    /**
     * GET /config, then the stored conversation if there is one. Nothing else. A passing failure
     * is tried again after Retry-After, else after 2 s doubling to 5 min, plus up to half again at
     * random so that pages do not all return at once: a 5xx or 429 for as long as it lasts, no
     * answer at all NO_ANSWER_TRIES times in a row (8.5 to 13 min: a deploy), since the CORS refusal
     * of an origin the site does not allow, and a proxy's 502 page without CORS headers, look the
     * same to the page. An answer in between starts the count again. Any other refusal is final. Giving up
     * removes the widget; the owner and the page hear of the first failure and of the last.
     */
    async start(openAtStart: boolean, tries = 0): Promise<void> {
      wantOpen ||= openAtStart;
      let config;
      try {
        config = await d.api.config();
      } catch (e) {
        const err = e as ApiError; // the client's calls reject with nothing else
        silent = err.status ? 0 : silent + 1;
        const again = err.transient && silent <= NO_ANSWER_TRIES;
        if (!tries || !again) {
          console.error(ownerHelp(err, d.serviceId, d.apiBase, win));
          d.emitter.emit('error', { code: err.code, message: err.message });
        }
        if (!again) set({ phase: 'off' });
        else if (!stopped) startAgain = setTimeout(() => this.start(false, tries + 1), 1_000 * (err.retryAfter ?? Math.min(300, 2 ** (tries + 1))) * (1 + Math.random() / 2));
        return;
      }
      requireIdentity = config.widget.require_identity;
      set({
        phase: requireIdentity && !userToken ? 'identify' : 'ready',
        siteName: config.site.name,
        greeting: config.widget.greeting,
        color: config.widget.color,
        position: config.widget.position === 'bottom-left' ? 'bottom-left' : 'bottom-right',
      });
      d.emitter.emit('ready');
      setOpen(wantOpen);
      const stored = d.storage.get();
      // Messages that were not confirmed before the reload: "Not sent", with Retry (their own
      // Idempotency-Key, so a copy the server did store is confirmed, not doubled: see merge).
      for (const u of d.storage.unsent()) {
        if (outbox.has(u.key)) continue;
        outbox.set(u.key, u);
        set({ items: [...state.items, { key: u.key, author: 'visitor', authorName: null, body: u.message, state: 'failed' }] });
      }
      if (stored && !saved) {
        adopt(stored, false);
        await load();
      }
      queue = queue.then(resume);
    },

    setOpen,

    /** Sends a visitor message; false when there is nothing to send. */
    send(text: string, visitor?: { name?: string; email?: string }): boolean {
      const message = text.trim();
      if (!message || tooLong(message) || state.phase !== 'ready') return false;
      const key = newIdempotencyKey();
      const who = visitor && (visitor.name || visitor.email) ? visitor : undefined;
      outbox.set(key, { key, message, visitor: who, idempotencyKey: key, at: Date.now() });
      set({ items: [...state.items, { key, author: 'visitor', authorName: null, body: message, state: 'sending' }] });
      enqueue(key);
      return true;
    },

    /** Sends a kept message again, with the Idempotency-Key of its first attempt. */
    retry(key: string): void {
      if (outbox.has(key)) enqueue(key);
    },

    /**
     * Sets the signed user token: shows the launcher a site requiring identity kept back, continues
     * the user's newest ticket when none is stored, reconnects what a refused token stopped and
     * resends messages that were waiting for it. A conversation already shown is kept (reset() is
     * the way to switch users). The token that was just refused is ignored, so a page answering
     * token-expired with the same token makes no loop.
     */
    identify(token: string | undefined): void {
      if (token && token === dead) return;
      userToken = token || undefined;
      if (!userToken || state.phase === 'starting' || state.phase === 'off') return;
      if (state.phase === 'identify') {
        set({ phase: 'ready' });
        setOpen(wantOpen);
      }
      if (saved && !stopStream) void (lastId ? startStream() : load());
      queue = queue.then(resume);
      const waiting = state.items.filter((i) => i.state === 'waiting');
      if (waiting.length) notify('');
      for (const i of waiting) enqueue(i.key);
    },

    /** Forgets the visitor: storage, ticket, messages, draft and user token (and hides a launcher that needs one). */
    reset(): void {
      epoch++;
      outbox.clear();
      forget();
      d.storage.clear();
      draft = newDraft();
      userToken = undefined;
      notify('');
      set({ items: [], unread: 0, announcements: [] });
      if (requireIdentity && state.phase === 'ready') {
        setOpen(false);
        set({ phase: 'identify' });
      }
    },

    /** Another tab created or forgot the conversation. */
    syncFrom(next: Saved | null): void {
      if (!next) {
        if (saved) forget();
      } else if (next.ticketId !== saved?.ticketId) {
        stopStream?.();
        stopStream = undefined;
        adopt(next, false);
        void load();
      }
    },

    /** Stops background work (tests, and a widget removed from the page). */
    stop(): void {
      stopped = true;
      clearTimeout(countdown);
      clearTimeout(startAgain);
      stopStream?.();
      stopStream = undefined;
    },
  };
}

/** One sentence telling the site owner what to fix when the API refuses the widget itself. */
export function ownerHelp(e: ApiError, serviceId: string, apiBase: string, win: Window): string {
  const origin = win.location.origin;
  const site = `service id "${serviceId}"`;
  switch (e.code) {
    case 'origin_not_allowed':
    case 'origin_required':
      return `Parley: this page's origin ${origin} is not allowed for ${site}; add ${origin} to the site's allowed origins.`;
    case 'invalid_api_key':
      return `Parley: data-key is not a valid, active publishable key for ${site} (seen from ${origin}); copy the current one.`;
    case 'site_mismatch':
      return `Parley: data-key belongs to a different site than ${site} (seen from ${origin}); use its key or fix data-service-id.`;
    case 'network':
    case 'timeout':
      return `Parley: could not reach ${apiBase} for ${site} from ${origin}; if it is up, check data-service-id "${serviceId}" and add ${origin} to the site's allowed origins, or fix data-api.`;
    default:
      return `Parley: the chat for ${site} could not start on ${origin}: ${e.status ? `HTTP ${e.status} ` : ''}${e.code}: ${e.message}`;
  }
}
