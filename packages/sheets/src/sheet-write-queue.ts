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
    // XADD first, then SADD: the flusher drops a run from pendingRuns before re-checking
    // its stream, so an SADD after a landed XADD is always seen. Two commands, not a MULTI:
    // the keys live in different Cluster slots. If this process dies between them, the
    // flusher's sweep for streams missing from pendingRuns finds the row.
    await this.redis.xadd(keys.sheetWrites, '*', 'spreadsheetId', spreadsheetId, 'range', write.range, 'values', JSON.stringify(write.values));
    await this.redis.sadd(sheetFlusherKeys.pendingRuns, runId);
  }
}
