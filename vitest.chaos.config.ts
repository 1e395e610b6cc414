import { defineConfig } from 'vitest/config';

/**
 * `pnpm test:chaos`: the long fault-injection runs (`*.chaos.ts`), one file at a time so
 * the chaos run has the machine to itself; `pnpm test` does not pick them up.
 */
export default defineConfig({
  resolve: { conditions: ['@brandq/source'] },
  ssr: { resolve: { conditions: ['@brandq/source'] } },
  test: {
    include: ['apps/*/src/**/*.chaos.ts', 'packages/*/src/**/*.chaos.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
