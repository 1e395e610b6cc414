import { RunStore } from '@brandq/runs';
import { EXIT } from './exit-codes.js';
import { checkExportPath, exportRun } from './export-run.js';
import { requireRun, withRedis } from './with-redis.js';

/** `brandq export`: the run's results to a CSV (with a UTF-8 BOM unless --no-bom) or JSONL file. */
export async function exportCommand(flags: { run: string; out: string; bom: boolean }): Promise<number> {
  // A wrong format or folder is refused before Redis is even reached.
  await checkExportPath(flags.out);
  return withRedis(async (_config, redis) => {
    const runs = new RunStore(redis);
    const run = await requireRun(runs, flags.run);
    const count = await exportRun(runs, run.id, flags.out, { bom: flags.bom });
    process.stdout.write(`wrote ${count} rows to ${flags.out}\n`);
    return EXIT.ok;
  });
}
