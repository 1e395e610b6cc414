export { startTestRedis, useTestRedis, testRedisCluster } from './test-redis.js';
export { startRedisCluster } from './redis-cluster.js';
export type { RedisClusterHandle, StartRedisClusterOptions } from './redis-cluster.js';
export type { TestRedis } from './test-redis.js';
export { spawnTs, waitForExit } from './processes.js';
export type { SpawnedProcess } from './processes.js';
export { tcpConnectionsOf } from './sockets.js';
export type { TcpConnection } from './sockets.js';
