export { startTestRedis, useTestRedis } from './test-redis.js';
export type { TestRedis } from './test-redis.js';
export { spawnTs, waitForExit } from './processes.js';
export type { SpawnedProcess } from './processes.js';
