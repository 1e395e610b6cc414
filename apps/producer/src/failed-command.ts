import { RunStore, type BrandFailure } from '@brandq/runs';
import { EXIT } from './exit-codes.js';
import { requireRun, withRedis } from './with-redis.js';

/** `brandq failed`: the run's failed brands with their reasons, as lines or one JSON document. */
export async function failedCommand(flags: { run: string; json?: boolean }): Promise<number> {
  return withRedis(async (_config, redis) => {
    const runs = new RunStore(redis);
    const run = await requireRun(runs, flags.run);
    const failures: BrandFailure[] = [];
    for await (const f of runs.failures(run.id)) failures.push(f);
    failures.sort((a, b) => a.rowNumber - b.rowNumber);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ runId: run.id, failures }, null, 2)}\n`);
      return EXIT.ok;
    }
    for (const f of failures) process.stdout.write(`row ${f.rowNumber}\t${f.brand}\t${f.kind}\tattempts ${f.attempts}\t${f.reason}\n`);
    process.stdout.write(`${failures.length} failed brand(s)${failures.length ? `; retry with: pnpm enqueue --retry-failed --run ${run.id}` : ''}\n`);
    return EXIT.ok;
  });
}
