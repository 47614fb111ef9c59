import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import the shared package from source, so they never wait for a build of it.
const alias = { '@parley/shared': fileURLToPath(new URL('./shared/src/index.ts', import.meta.url)) };
const node = (name: string, include: string[], extra: Record<string, unknown> = {}) => ({
  resolve: { alias },
  test: { name, include, environment: 'node', testTimeout: 30_000, hookTimeout: 60_000, ...extra },
});

export default defineConfig({
  test: {
    projects: [
      node('shared', ['shared/src/**/*.test.ts']),
      node('server', ['server/src/**/*.test.ts']),
      'widget/vitest.config.ts',
      node('e2e', ['test/e2e/**/*.test.ts'], { testTimeout: 60_000, fileParallelism: false }),
      node('reliability', ['test/reliability/**/*.test.ts'], { testTimeout: 300_000, hookTimeout: 120_000, globalSetup: ['test/reliability/global-setup.ts'] }),
      node('bench', ['test/bench/**/*.test.ts'], { testTimeout: 120_000 }),
    ],
  },
});
