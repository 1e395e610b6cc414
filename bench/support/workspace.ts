/**
 * The workspace packages the benchmarks drive, in one place. The root package does not
 * depend on them, so they are imported from their sources (the same files the apps load
 * through the `@brandq/source` condition).
 */
export { createLimiter, Limiter, MemoryLimiterStore, RedisLimiterStore } from '../../packages/limiter/src/index.js';
export type { ProviderLimits, Permit, LimiterStats } from '../../packages/limiter/src/index.js';
export { startFakeOpenAI, startFakes, countChatPromptTokens } from '../../packages/fakes/src/index.js';
export type { Fakes, FakeOpenAIServer, LedgerEntry } from '../../packages/fakes/src/index.js';
export { startRedisServer, createRedis, QUEUE_PREFIX } from '../../packages/redis/src/index.js';
export type { RedisServerHandle } from '../../packages/redis/src/index.js';
export { spawnTs, waitForExit } from '../../packages/testing/src/processes.js';
export type { SpawnedProcess } from '../../packages/testing/src/processes.js';
export { RunStore } from '../../packages/runs/src/index.js';
export { BRAND_QUEUE, createBrandQueue } from '../../packages/queue/src/index.js';
