import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from '@brandq/config';
import { RunStore } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { UsageError, runCli } from './run-cli.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface RunCommandContext {
  runId: string;
  values: Record<string, string | boolean | undefined>;
  config: Config;
  redis: Redis;
  runs: RunStore;
}

/**
 * The shape every `--run <id>` command shares: parse flags (usage errors exit 2), load the
 * config, connect, check the run exists, run the body, disconnect.
 */
export function runCommand(usage: string, options: Options, required: readonly string[], body: (ctx: RunCommandContext) => Promise<void>): void {
  runCli(usage, async () => {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({ options: { run: { type: 'string' }, ...options }, strict: true }) as { values: Record<string, string | boolean | undefined> });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const missing = ['run', ...required].filter((name) => values[name] === undefined);
    if (missing.length > 0) throw new UsageError(`${missing.map((m) => `--${m}`).join(' and ')} required`);
    const runId = String(values.run);
    const config = loadConfig();
    const redis = await connectRedis(config);
    try {
      const runs = new RunStore(redis);
      if (!(await runs.getRun(runId))) throw new UsageError(`run ${runId} not found`);
      await body({ runId, values, config, redis, runs });
    } finally {
      redis.disconnect();
    }
  });
}
