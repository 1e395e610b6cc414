import { writeFile } from 'node:fs/promises';
import { CostLedger } from '@brandq/ledger';
import { RunStore } from '@brandq/runs';
import { checkpointDocument } from './checkpoint-document.js';
import { EXIT } from './exit-codes.js';
import { requireRun, withRedis } from './with-redis.js';

/** `brandq checkpoint`: the run in the original tool's checkpoint format. */
export async function checkpointCommand(flags: { run: string; out: string }): Promise<number> {
  return withRedis(async (_config, redis) => {
    const runs = new RunStore(redis);
    const run = await requireRun(runs, flags.run);
    const doc = await checkpointDocument(runs, run.id, await new CostLedger(redis).snapshot(run.id), 'manual');
    await writeFile(flags.out, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`wrote checkpoint of run ${run.id} (${doc.processed_count}/${doc.total} processed) to ${flags.out}\n`);
    return EXIT.ok;
  });
}
