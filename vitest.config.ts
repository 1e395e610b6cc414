import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@brandq/source'] },
  ssr: { resolve: { conditions: ['@brandq/source'] } },
  test: {
    include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
