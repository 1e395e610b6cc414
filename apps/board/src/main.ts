import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { ConfigError } from '@brandq/errors';
import { createLogger } from '@brandq/logger';
import { createBrandQueue } from '@brandq/queue';
import { createRedis, pings } from '@brandq/redis';
import { redactUrl } from '@brandq/redact';
import { createBoardApp } from './board-app.js';
import { createRun } from './create-run.js';
import { llmLabelFor } from '@brandq/ledger';
import { runControls } from '@brandq/run-service';
import { isLoopback } from './basic-auth.js';
import { boardHosts } from './allowed-hosts.js';
import { createBoardMetrics } from './board-metrics.js';
import { createLimiterStats } from './limiter-stats.js';

const USAGE = `usage: brandq board   (or: pnpm board)

Serves Bull Board (/admin/queues), the runs page (/runs) and the fleet's metrics (/metrics)
on BOARD_HOST:BOARD_PORT (default 127.0.0.1:3000), from the Redis in REDIS_URL.
BOARD_USER and BOARD_PASSWORD add basic auth (required off loopback); BOARD_READ_ONLY=true
refuses every write. Every setting is an environment variable: see .env.example.`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadConfig();
  const logger = createLogger({ name: 'board', level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const credentials = config.BOARD_USER && config.BOARD_PASSWORD ? { user: config.BOARD_USER, password: config.BOARD_PASSWORD } : undefined;
  if (!isLoopback(config.BOARD_HOST) && !credentials) {
    // Whoever reaches Bull Board effectively holds the Redis: never serve it openly.
    throw new ConfigError(`BOARD_HOST=${config.BOARD_HOST} is not loopback: set BOARD_USER and BOARD_PASSWORD to serve the board there`);
  }
  if (!(await pings(config.REDIS_URL, 3000))) throw new ConfigError(`cannot reach Redis at ${redactUrl(config.REDIS_URL)}: start redis-server or set REDIS_URL`);
  const redis = createRedis(config.REDIS_URL, 'client');
  const queue = createBrandQueue(redis);
  const limiterStats = createLimiterStats(redis, config);
  // Known once the socket is bound (BOARD_PORT=0 picks a port); no request arrives before.
  let allowedHosts = new Set<string>();
  const app = createBoardApp({
    redis,
    queue,
    readOnly: config.BOARD_READ_ONLY,
    credentials,
    isAllowedHost: (host) => allowedHosts.has(host),
    reportError: (error) => logger.error({ err: error }, 'board request failed'),
    limiterStats,
    metrics: createBoardMetrics(redis, queue, limiterStats),
    createRun: (body) => createRun({ redis, queue, config }, body),
    runControls: runControls({ redis, queue, config }),
    llmLabel: llmLabelFor(config.OPENAI_BASE_URL),
    pricing: { table: config.LLM_PRICING, defaultModel: config.OPENAI_MODEL },
  });
  const server = app.listen(config.BOARD_PORT, config.BOARD_HOST, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.BOARD_PORT;
    allowedHosts = boardHosts(config.BOARD_HOST, port, config.BOARD_ALLOWED_HOSTS);
    logger.info({ url: `http://${config.BOARD_HOST}:${port}/runs`, auth: Boolean(credentials), readOnly: config.BOARD_READ_ONLY }, 'board listening');
    process.stdout.write(`board: http://${config.BOARD_HOST}:${port}/runs  (Bull Board at /admin/queues)\n`);
  });
  const stop = () => {
    server.close();
    // An open run page's event stream would otherwise keep the process alive.
    server.closeAllConnections();
    void queue.close().then(() => redis.disconnect());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
