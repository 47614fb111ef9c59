// The widget's vitest project (listed in the root vitest.config.ts): component and behaviour tests in happy-dom.
import { defineProject } from 'vitest/config';
import { alias, jsx } from './vite.config.ts';

export default defineProject({
  resolve: { alias },
  oxc: jsx, // the JSX runtime the shipped file uses
  test: {
    name: 'widget',
    root: import.meta.dirname,
    environment: 'happy-dom',
    include: ['src/**/*.test.{ts,tsx}'],
    testTimeout: 30_000,
    environmentOptions: {
      happyDOM: {
        url: 'https://shop.example/products/1',
        // A <script src> added by a test must not be fetched: the tests import the entry themselves.
        settings: { disableJavaScriptFileLoading: true, handleDisabledFileLoadingAsSuccess: true },
      },
    },
  },
});
