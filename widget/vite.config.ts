// Builds the one file a site owner embeds: dist/widget.js, a self-contained minified IIFE.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Shared by the build and the widget's vitest project. */
export const alias = {
  // Single zod-free modules: importing the package index would drag zod into the bundle.
  '@parley/shared/keyformat': here('../shared/src/keyformat.ts'),
  '@parley/shared/email': here('../shared/src/email.ts'),
  '@parley/shared/chars': here('../shared/src/chars.ts'),
  '@parley/shared': here('../shared/src/index.ts'),
};

/**
 * JSX compiled to preact's h() (the classic runtime) rather than jsx() of preact/jsx-runtime:
 * the same vnodes (h() is the createElement that render() needs anyway), without a second vnode
 * factory and a `children:` key per element, which is about 150 gzipped bytes of the budget.
 * This is all @preact/preset-vite did for a production build (its dev server extras, refresh
 * and devtools, are not used: the widget is only ever built).
 */
export const jsx = {
  // Injected under names of its own, so that a file may import h or Fragment itself.
  jsx: { runtime: 'classic', pragma: 'jsxH', pragmaFrag: 'JsxFragment' },
  jsxInject: "import { h as jsxH, Fragment as JsxFragment } from 'preact'",
} as const;

/** The internal property names terser shortens (see terserOptions). */
const INTERNAL_PROPS = [
  // State, Item and Draft
  'phase', 'siteName', 'unread', 'notice', 'ticking', 'hasTicket', 'announcements', 'authorName', 'draft', 'who',
  // store options and methods
  'api', 'storage', 'emitter', 'serviceId', 'apiBase', 'userToken', 'win', 'doc', 'streamTiming', 'subscribe', 'setOpen', 'syncFrom',
  // api.ts, sse.ts, storage.ts, host.ts, tag.ts
  'probe', 'userTickets', 'createTicket', 'retryAfter', 'transient', 'timeoutMs',
  'poll', 'onOpen', 'onEvent', 'onFatal', 'timing', 'baseDelay', 'maxDelay', 'silence', 'pollAfterFailures', 'pollInterval', 'pollsBetweenTries',
  'unsent', 'put', 'setVars', 'shadow', 'problems',
  // component props and fields
  'buttonRef', 'onToggle', 'onRetry', 'onSend', 'textRef', 'launcher', 'refocus', 'keep',
  // also names of DOM or built-in properties, which this bundle uses on its own objects only
  'store', 'retry', 'send', 'start', 'stop', 'emit', 'events', 'config', 'host', 'list', 'off', 'script', 'items', 'closed',
  'zIndex', 'fetch', 'text', 'event', 'postMessage', 'onChange', 'submit',
  // preact's component methods and options, which only this bundle's preact calls
  'componentWillMount', 'componentDidMount', 'componentWillReceiveProps', 'shouldComponentUpdate', 'componentWillUpdate',
  'getSnapshotBeforeUpdate', 'componentDidUpdate', 'componentWillUnmount', 'componentDidCatch', 'getDerivedStateFromProps',
  'getDerivedStateFromError', 'getChildContext', 'contextType', 'defaultProps', 'forceUpdate', 'setState', 'debounceRendering',
  // and its component fields, also set and read by this bundle only
  'props', 'state', 'base', 'current', 'vnode', 'diffed', 'unmount',
  // and its own already-short private fields (__k, __e, _sb...): no preact add-on is bundled to read them
  '__[a-zA-Z]', '_sb',
];

export default defineConfig({
  root: here('.'),
  oxc: jsx,
  // The injected preact import lands in shared/src files too (email.ts): resolved from here, not from shared/.
  resolve: { alias, dedupe: ['preact'] },
  // No `process.env.NODE_ENV` may survive into a script that runs on other people's pages.
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2020',
    // terser with three compress passes: about 60 gzipped bytes under oxc's minifier, measured on
    // this bundle (the budget is 15,000, bundle.test.ts). Its mangler is the one both use.
    minify: 'terser',
    terserOptions: {
      ecma: 2020,
      compress: { passes: 3, pure_getters: true, negate_iife: false },
      // Property names terser shortens, about 460 gzipped bytes: exactly the names in INTERNAL_PROPS,
      // wherever they appear as a property, so each must be a name of the widget's own objects only
      // (state, props, options, methods). Never one that leaves the bundle or comes into it: a field of
      // the API's JSON (greeting, messages, author...), of what is stored (ticketId, visitorToken,
      // seen, key, message, visitor, idempotencyKey, body, at), of window.Parley (open, identify,
      // reset...) or of an event payload, nor a DOM attribute given in JSX, nor one the bundle also
      // reads on a DOM or built-in object (get, set, state, current...). bundle.test.ts checks the
      // shared names survive; the e2e tests run this build.
      mangle: { properties: { builtins: true, regex: new RegExp(`^(${INTERNAL_PROPS.join('|')})$`) } },
    },
    // The map is written, but the bundle names it in no comment (29 gzipped bytes of the budget):
    // the server's SourceMap header on widget.js points devtools to it.
    sourcemap: 'hidden',
    copyPublicDir: false,
    lib: {
      entry: here('./src/main.tsx'),
      // The entry exports nothing, so the IIFE declares no global: window.Parley is set explicitly.
      formats: ['iife'],
      name: 'ParleyWidget',
      fileName: () => 'widget.js',
    },
  },
});
