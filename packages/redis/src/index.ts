export { createRedis, isClusterUrl, parseClusterUrl, clusterNodeUrls, isCluster, scanKeys } from './connection.js';
export type { ConnectionRole, ClusterAddress } from './connection.js';
export { defineScripts } from './scripts.js';
export type { ScriptDefinition } from './scripts.js';
export { KEY_PREFIX, QUEUE_PREFIX, assertSafeId, runKeys, runIndexKeys, limiterKeys, cacheKeys, sheetFlusherKeys } from './keys.js';
export type { RunKeys, LimiterKeys } from './keys.js';
export { startRedisServer, waitForPing, pings, redactUrl, RedisServerUnavailableError } from './redis-server.js';
export type { RedisServerHandle, StartRedisServerOptions } from './redis-server.js';
export { getFreePort } from './free-port.js';
