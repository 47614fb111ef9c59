// Starts one widget from its script tag: checks the tag, builds the parts, mounts into a shadow root.
import { render } from 'preact';
import { createApi } from './api.ts';
import { themeColor, textOn } from './color.ts';
import { App } from './components/App.tsx';
import { createEmitter, type Listener } from './events.ts';
import { createHost, HOST_TAG } from './host.ts';
import { installPageApi, isEventName, type PageApi } from './pageApi.ts';
import { createStorage, parseSaved } from './storage.ts';
import { createStore, type Store } from './store.ts';
import { readTag } from './tag.ts';

/** Marks window.Parley as a running widget's, and leads to that widget's host element. */
const MARK = Symbol.for('parley.host');
type Marked = Window & { Parley?: { [MARK]?: HTMLElement } };
/** The host remembers the <body> it was mounted beside, to tell a second tag from a swapped body. */
type Mounted = HTMLElement & { [MARK]?: HTMLElement | null };

export interface BootOptions {
  script: HTMLScriptElement | null;
  doc?: Document;
  win?: Window;
  fetch?: typeof fetch;
  streamTiming?: Parameters<typeof createStore>[0]['streamTiming'];
}

export interface Widget {
  store: Store;
  host: HTMLElement;
  /** Removes the widget and stops its background work. */
  destroy(): void;
}

/** Boots the widget; null (after one console.error) when the tag is unusable. Never throws. */
export function boot(o: BootOptions): Widget | null {
  const doc = o.doc ?? document;
  const win = o.win ?? window;
  if (!o.script) {
    console.error('Parley: could not find the widget\'s <script> tag (with data-key and data-service-id).');
    return null;
  }
  // The host alone misses a first copy still waiting for <body> (two tags in <head>).
  const first = doc.querySelector(HOST_TAG) ?? (win as Marked).Parley?.[MARK];
  if (first) {
    // A page that swapped its <body> (Turbo-style navigation) and ran the tag again keeps the first
    // widget, which lives outside <body>; one that removed it gets it back.
    if (!doc.body || (first.isConnected && (first as Mounted)[MARK] === doc.body)) console.error('Parley: the widget script is included twice; keep one tag.');
    else {
      (first as Mounted)[MARK] = doc.body;
      if (!first.isConnected) doc.documentElement.appendChild(first);
    }
    return null;
  }
  const tag = readTag(o.script);
  if ('problems' in tag) {
    console.error(`Parley: the chat is not shown; fix its script tag: ${tag.problems.join('; ')}.`);
    return null;
  }
  if (typeof (win as unknown as typeof globalThis).CSSStyleSheet !== 'function' || !('adoptedStyleSheets' in ShadowRoot.prototype)) {
    console.error('Parley: the chat is not shown: this browser lacks constructable stylesheets.');
    return null;
  }

  const emitter = createEmitter();
  const storage = createStorage(tag.serviceId, win);
  let store: Store;
  const api = createApi({
    base: tag.api,
    serviceId: tag.serviceId,
    key: tag.key,
    userToken: () => store.userToken,
    fetch: o.fetch,
  });
  store = createStore({
    api,
    storage,
    emitter,
    serviceId: tag.serviceId,
    apiBase: tag.api,
    userToken: tag.userToken,
    win,
    streamTiming: o.streamTiming,
  });

  const { host, shadow, setVars } = createHost(doc);
  if (tag.zIndex !== undefined) setVars({ '--pz': String(tag.zIndex) });
  let color = '';
  const viewport = () => {
    const vv = win.visualViewport;
    setVars({ '--pvh': `${Math.round(vv?.height ?? win.innerHeight)}px`, '--pvt': `${Math.round(vv?.offsetTop ?? 0)}px` });
  };
  let following = false;
  const onState = () => {
    const s = store.get();
    if (s.phase === 'off') return host.remove();
    if (s.color !== color) {
      color = s.color;
      const c = themeColor(color);
      setVars({ '--pc': c, '--pf': textOn(c) });
    }
    // On phones the open panel tracks the visual viewport, so the keyboard never hides the composer.
    if (s.open !== following && win.visualViewport) {
      following = s.open;
      const method = following ? 'addEventListener' : 'removeEventListener';
      win.visualViewport[method]('resize', viewport);
      win.visualViewport[method]('scroll', viewport);
    }
    if (s.open) viewport();
  };
  store.subscribe(onState);

  // A second tab that starts or forgets the conversation.
  const onStorage = (e: StorageEvent) => {
    if (e.key === storage.key) store.syncFrom(parseSaved(e.newValue));
  };
  win.addEventListener('storage', onStorage);

  const readyQueue: (() => void)[] = [];
  let ready = false;
  installPageApi(
    win,
    {
      open: () => store.setOpen(true),
      close: () => store.setOpen(false),
      // Only a shown panel is ever open (setOpen), so before ready a toggle opens, once ready.
      toggle: () => store.setOpen(!store.get().open),
      identify: (token) => store.identify(typeof token === 'string' ? token : undefined),
      reset: () => store.reset(),
      [MARK]: host,
      on: (event, fn) => {
        if (!isEventName(event) || typeof fn !== 'function') return () => undefined;
        const off = emitter.on(event, fn as Listener);
        if (event === 'ready' && ready) queueMicrotask(() => (fn as Listener)()); // a late listener still hears it
        return off;
      },
    } as PageApi,
    (fn) => (ready ? fn() : readyQueue.push(fn)),
  );
  // Registered after the queued on('ready') calls, so the page hears "ready" before a queued open().
  emitter.on('ready', () => {
    ready = true;
    for (const fn of readyQueue.splice(0)) fn();
  });

  // A child of <html>, not of <body>: a body with transform, filter, contain or perspective would
  // be the containing block of position:fixed, and the launcher would sit at the document's end.
  const mount = () => {
    (host as Mounted)[MARK] = doc.body;
    doc.documentElement.appendChild(host);
    render(<App store={store} shadow={shadow} />, shadow);
  };
  if (doc.body) mount();
  else doc.addEventListener('DOMContentLoaded', mount, { once: true });
  void store.start(tag.open);

  return {
    store,
    host,
    destroy() {
      store.stop();
      win.removeEventListener('storage', onStorage);
      render(null, shadow);
      host.remove();
      if ((win as Marked).Parley?.[MARK] === host) delete (win as Marked).Parley;
    },
  };
}
