import { createBrandQueue } from '@brandq/queue';
import { checkEnqueueFlags, enqueueFromFlags, type EnqueueFlags } from './enqueue-command.js';
import { EXIT, exitCodeForRun } from './exit-codes.js';
import { followRun } from './follow.js';
import { withRedis } from './with-redis.js';

/** `brandq enqueue`: create or continue a run, then follow it (on a terminal, or with --follow) to its outcome. */
export async function enqueueCommand(flags: EnqueueFlags & { follow?: boolean }): Promise<number> {
  checkEnqueueFlags(flags);
  return withRedis(async (config, redis) => {
    const queue = createBrandQueue(redis);
    try {
      const { runId } = await enqueueFromFlags({ config, redis, queue }, flags);
      if (!runId) return EXIT.ok;
      if (!(flags.follow ?? process.stdout.isTTY === true)) {
        process.stdout.write(`start workers with: pnpm worker    watch with: pnpm status --run ${runId} --follow\n`);
        return EXIT.ok;
      }
      const followed = await followRun(redis, runId, config);
      return followed.detached ? EXIT.ok : exitCodeForRun(followed.run);
    } finally {
      await queue.close();
    }
  });
}
