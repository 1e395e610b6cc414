import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RedisServerUnavailableError, getFreePort, startRedisServer, type RedisServerHandle } from '@brandq/redis';

const run = promisify(execFile);

export interface RedisClusterHandle {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`: what brandq's REDIS_URL takes. */
  url: string;
  /** One single-node URL per master, e.g. to inspect a node directly. */
  nodeUrls: string[];
  nodes: RedisServerHandle[];
  /** Kills every node and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisClusterOptions {
  /** Masters (no replicas); Redis needs at least 3. */
  masters?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: string[];
  /** How long to wait for `cluster_state:ok` on every node (default 30 s). */
  readyTimeoutMs?: number;
}

/** Distinct free loopback ports (the kernel could hand the same one out twice in a row). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await getFreePort());
  return [...ports];
}

/**
 * A throwaway Redis Cluster for tests: `masters` `redis-server --cluster-enabled yes`
 * children on loopback ports, each with its own temp dir and an explicit cluster bus port
 * (so no port + 10000 overflow), joined with `redis-cli --cluster create --cluster-replicas 0`,
 * and returned once every node reports the cluster healthy with all its slots served.
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const ports = await freePorts(masters * 2);
  const nodes: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedisServer({
          port: ports[i * 2] as number,
          args: [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', '5000',
            '--cluster-port', String(ports[i * 2 + 1]),
            ...(options.args ?? []),
          ],
        }),
      );
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    try {
      await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string; code?: string };
      const why = e.code === 'ENOENT' ? 'redis-cli is not on the PATH (install redis-tools)' : `${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`;
      throw new RedisServerUnavailableError(`cannot create the Redis Cluster: ${why}`, { cause: err });
    }
    await waitForClusterOk(nodes.map((n) => n.url), masters, options.readyTimeoutMs ?? 30_000);
    return {
      url: `redis+cluster://${addresses.join(',')}`,
      nodeUrls: nodes.map((n) => n.url),
      nodes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Polls CLUSTER INFO on every node until each sees all masters and all 16384 slots served. */
async function waitForClusterOk(urls: string[], masters: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const clients = urls.map((u) => new Redis(u, { lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    for (;;) {
      const infos = await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO').then(String, () => '')));
      const ok = infos.every(
        (info) =>
          /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(info),
      );
      if (ok) return;
      if (Date.now() > deadline) throw new RedisServerUnavailableError(`Redis Cluster not ready within ${timeoutMs} ms:\n${infos.join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    clients.forEach((c) => c.disconnect());
  }
}
