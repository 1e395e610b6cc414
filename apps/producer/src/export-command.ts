import { EXPORT_FORMATS, checkExportPath, exportFormatOf, exportRun } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import { EXIT } from './exit-codes.js';
import { UsageError } from './usage-error.js';
import { requireRun, withRedis } from './with-redis.js';

/** An export path checked before Redis is even reached: a format brandq does not write is a usage mistake (exit 2), a missing folder an error. */
export async function checkExportTarget(out: string): Promise<void> {
  if (!exportFormatOf(out)) throw new UsageError(`cannot export to ${out}: supported formats are ${EXPORT_FORMATS.join(', ')} (by the file's extension)`);
  await checkExportPath(out);
}

/** `brandq export`: the run's results to a CSV (with a UTF-8 BOM unless --no-bom) or JSONL file. */
export async function exportCommand(flags: { run: string; out: string; bom: boolean }): Promise<number> {
  await checkExportTarget(flags.out);
  return withRedis(async (_config, redis) => {
    const runs = new RunStore(redis);
    const run = await requireRun(runs, flags.run);
    const count = await exportRun(runs, run.id, flags.out, { bom: flags.bom });
    process.stdout.write(`wrote ${count} rows to ${flags.out}\n`);
    return EXIT.ok;
  });
}
