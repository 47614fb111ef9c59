// Builds the one file a site owner embeds: dist/widget.js, a self-contained minified IIFE.
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Shared by the build and the widget's vitest project. */
export const alias = {
  // Only the key-format module: importing the package index would drag zod into the bundle.
  '@parley/shared/keyformat': here('../shared/src/keyformat.ts'),
  '@parley/shared': here('../shared/src/index.ts'),
};

export default defineConfig({
  plugins: [preact({ prerender: { enabled: false }, devtoolsInProd: false })],
  resolve: { alias },
  // No `process.env.NODE_ENV` may survive into a script that runs on other people's pages.
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: here('./dist'),
    emptyOutDir: true,
    target: 'es2020',
    minify: true,
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
