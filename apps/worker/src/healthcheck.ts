/**
 * The Docker image's HEALTHCHECK: exit 0 when this container's process can do its work.
 * With METRICS_PORT set (the compose workers), the worker's own /metrics must answer: that
 * proves the process is up and its event loop turning, and a scrape reads the queue from
 * Redis, so it fails while Redis is away. Without it (the board, a CLI container), Redis
 * must answer a PING, since nothing in brandq works without it.
 */
import { loadConfig } from '@brandq/config';
import { pings } from '@brandq/redis';

const TIMEOUT_MS = 4000;

async function healthy(): Promise<boolean> {
  const config = loadConfig();
  if (config.METRICS_PORT > 0) {
    const host = ['0.0.0.0', '::', ''].includes(config.METRICS_HOST) ? '127.0.0.1' : config.METRICS_HOST;
    try {
      const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${config.METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      return res.ok;
    } catch {
      return false;
    }
  }
  return pings(config.REDIS_URL, TIMEOUT_MS);
}

healthy().then(
  (ok) => {
    if (!ok) process.stderr.write('unhealthy\n');
    process.exit(ok ? 0 : 1);
  },
  (error: unknown) => {
    process.stderr.write(`unhealthy: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
