import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redactUrl } from '@brandq/redact';
import { clusterNodeUrls, isClusterUrl } from './connection.js';
import { getFreePort } from './free-port.js';

/** URLs are printed through the one redactor: a password holding `@` or `:` is hidden whole. */
export { redactUrl };

export interface RedisServerHandle {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** Kills the server and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisServerOptions {
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--appendonly', 'yes']`. */
  args?: string[];
  binary?: string;
  /** Keep the data directory on stop, e.g. to restart a server on the same AOF. */
  keepDir?: boolean;
  dir?: string;
}

export class RedisServerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisServerUnavailableError';
  }
}

/**
 * Starts a throwaway `redis-server` from PATH on a free loopback port with its own
 * temporary directory, for tests and the demo. Nothing is persisted unless asked.
 */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServerHandle> {
  const port = options.port ?? (await getFreePort());
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'brandq-redis-')));
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'no',
    '--maxmemory-policy', 'noeviction',
    ...(options.args ?? []),
  ];
  const child = spawn(options.binary ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    if (output.length < 8192) output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (output.length < 8192) output += chunk.toString();
  });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(new RedisServerUnavailableError(`cannot start redis-server (${err.message}); install Redis or set REDIS_URL`, { cause: err })),
    );
    child.once('exit', (code) => reject(new RedisServerUnavailableError(`redis-server exited with code ${code}: ${output.trim()}`)));
  });
  spawnError.catch(() => undefined);

  const url = `redis://127.0.0.1:${port}`;
  await Promise.race([waitForPing(url, 10_000), spawnError]);

  let stopped = false;
  return {
    url,
    port,
    dir,
    process: child,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }
      if (!options.keepDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once a PING to `url` answers, rejects after `timeoutMs`. */
export async function waitForPing(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (await pings(url, Math.min(1000, deadline - Date.now())).catch((err: unknown) => ((lastError = err), false))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new RedisServerUnavailableError(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms`, { cause: lastError });
}

/**
 * One PING with a short timeout and no reconnection: true if Redis answered. For a cluster
 * URL, true when a seed node answers and reports the cluster healthy (`cluster_state:ok`).
 */
export async function pings(url: string, timeoutMs = 1000): Promise<boolean> {
  if (isClusterUrl(url)) {
    let nodes: string[];
    try {
      nodes = clusterNodeUrls(url);
    } catch {
      return false;
    }
    for (const node of nodes) if (await pingNode(node, timeoutMs, true)) return true;
    return false;
  }
  return pingNode(url, timeoutMs, false);
}

async function pingNode(url: string, timeoutMs: number, clusterState: boolean): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    if ((await client.ping()) !== 'PONG') return false;
    return !clusterState || /cluster_state:ok/.test(String(await client.call('CLUSTER', 'INFO')));
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
