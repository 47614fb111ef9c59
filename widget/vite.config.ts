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
    terserOptions: { ecma: 2020, compress: { passes: 3, pure_getters: true, negate_iife: false } },
    sourcemap: true,
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
