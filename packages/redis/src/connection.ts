import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export type ConnectionRole =
  /** Blocking consumers (BullMQ Worker, QueueEvents): commands wait for a reconnect. */
  | 'worker'
  /** Producers, CLIs and limiter calls: fail fast when Redis is down instead of queueing. */
  | 'client';

/** A Redis Cluster address: `redis+cluster://[user:password@]host:port[,host:port...]` (or `rediss+cluster://` for TLS). */
export interface ClusterAddress {
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?(?:0)?$/i;

/** True when `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url.trim());
}

/**
 * Parses a cluster URL: one or more seed nodes (the client discovers the others with
 * CLUSTER SLOTS), the same credentials for every node. Throws on anything else.
 */
export function parseClusterUrl(url: string): ClusterAddress {
  const m = CLUSTER_URL.exec(url.trim());
  const hosts = m?.[4];
  if (!m || !hosts) throw new Error('expected redis+cluster://[user:password@]host:port[,host:port...]');
  const nodes = hosts.split(',').map((hostPort) => {
    const hp = /^(\[[^\]]+\]|[^:,]+):(\d{1,5})$/.exec(hostPort.trim());
    const port = Number(hp?.[2]);
    if (!hp?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad cluster node "${hostPort}": expected host:port`);
    return { host: hp[1].replace(/^\[(.*)\]$/, '$1'), port };
  });
  const decode = (s: string | undefined) => (s === undefined || s === '' ? undefined : decodeURIComponent(s));
  const username = decode(m[2]);
  const password = decode(m[3]);
  return { nodes, tls: m[1]?.toLowerCase() === 'rediss', ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** The single-node URL of each seed of a cluster URL (with its credentials), e.g. for a PING. */
export function clusterNodeUrls(url: string): string[] {
  const { nodes, username, password, tls } = parseClusterUrl(url);
  const auth = password !== undefined ? `${encodeURIComponent(username ?? '')}:${encodeURIComponent(password)}@` : '';
  return nodes.map((n) => `${tls ? 'rediss' : 'redis'}://${auth}${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`);
}

const backoff = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5000);

/**
 * One place that decides how brandq talks to Redis. BullMQ requires
 * `maxRetriesPerRequest: null` for workers; everything else fails fast so a Redis outage
 * surfaces as a clear error instead of a silent hang.
 *
 * A `redis+cluster://` URL gives an ioredis `Cluster`. It answers every command brandq
 * uses the way a single `Redis` does (and BullMQ takes it as a connection), so it is
 * returned under the same type; every key a MULTI or a script touches together shares a
 * hash tag (see keys.ts), which is what Cluster requires.
 */
export function createRedis(url: string, role: ConnectionRole = 'client', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 5000 };
  if (!isClusterUrl(url)) {
    return new Redis(url, {
      ...base,
      retryStrategy: backoff,
      ...extra,
    });
  }
  const { nodes, username, password, tls } = parseClusterUrl(url);
  const { enableOfflineQueue, retryStrategy: _ignored, ...redisOptions } = { ...base, ...extra };
  const options: ClusterOptions = {
    clusterRetryStrategy: backoff,
    enableOfflineQueue: enableOfflineQueue ?? true,
    redisOptions: {
      ...redisOptions,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  };
  return new Cluster(nodes, options) as unknown as Redis;
}

/** True when `client` is an ioredis Cluster (see createRedis). */
export function isCluster(client: Redis): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}

/**
 * Every key matching `pattern`, on every master: SCAN on a Cluster connection would only
 * see the keys of one node.
 */
export async function* scanKeys(client: Redis, pattern: string, count = 1000): AsyncGenerator<string> {
  const nodes = isCluster(client) ? (client as unknown as Cluster).nodes('master') : [client];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      yield* keys;
    } while (cursor !== '0');
  }
}
