import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { RunStore } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { UsageError, runCli } from './run-cli.js';

const USAGE = 'usage: pnpm failed --run <id>';

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({ options: { run: { type: 'string' } }, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.run) throw new UsageError('--run is required');
  const redis = await connectRedis(loadConfig());
  try {
    const runs = new RunStore(redis);
    if (!(await runs.getRun(values.run))) throw new UsageError(`run ${values.run} not found`);
    const failures = [];
    for await (const f of runs.failures(values.run)) failures.push(f);
    failures.sort((a, b) => a.rowNumber - b.rowNumber);
    for (const f of failures) process.stdout.write(`row ${f.rowNumber}\t${f.brand}\t${f.kind}\tattempts ${f.attempts}\t${f.reason}\n`);
    process.stdout.write(`${failures.length} failed brand(s)${failures.length ? `; retry with: pnpm enqueue --retry-failed --run ${values.run}` : ''}\n`);
  } finally {
    redis.disconnect();
  }
});
