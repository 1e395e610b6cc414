import type { Redis } from 'ioredis';
import { runKeys, sheetFlusherKeys } from '@brandq/redis';
import type { CellWrite } from './sheets-client.js';

/**
 * Where workers put result rows instead of calling the Sheets API per brand: the run's
 * sheet-write stream, read and written in batches by the fleet's one `SheetFlusher`.
 */
export class SheetWriteQueue {
  constructor(private readonly redis: Redis) {}

  async enqueue(runId: string, spreadsheetId: string, write: CellWrite): Promise<void> {
    const keys = runKeys(runId);
    // One MULTI so a row never sits in a stream the flusher does not know about. XADD comes
    // first: the flusher drops a run from pendingRuns before re-checking its stream, so an
    // SADD after a landed XADD is always seen (the keys are in different Cluster slots, so
    // a Lua script cannot cover both).
    const replies = await this.redis
      .multi()
      .xadd(keys.sheetWrites, '*', 'spreadsheetId', spreadsheetId, 'range', write.range, 'values', JSON.stringify(write.values))
      .sadd(sheetFlusherKeys.pendingRuns, runId)
      .exec();
    if (!replies) throw new Error(`sheet write for run ${runId} was not queued: the transaction was aborted`);
    for (const [err] of replies) if (err) throw err;
  }
}
