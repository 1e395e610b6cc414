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
    // Separate commands, not one script or MULTI: the stream is in its run's Cluster slot,
    // the pending set is global. SADD before the XADD, so a process dying after the XADD
    // leaves its row in a run already marked pending (a death before it leaves an empty
    // pending entry, which the flusher drops). SADD again after the XADD: the flusher drops
    // an empty run from pendingRuns and then re-checks its stream, so a drop that slipped
    // between our first SADD and the XADD is undone. Only a death right after the XADD *and*
    // such a drop in that gap leaves a row unmarked: the holder's periodic orphan sweep
    // (SheetFlusher `orphanSweepMs`) finds it.
    await this.redis.sadd(sheetFlusherKeys.pendingRuns, runId);
    await this.redis.xadd(keys.sheetWrites, '*', 'spreadsheetId', spreadsheetId, 'range', write.range, 'values', JSON.stringify(write.values));
    await this.redis.sadd(sheetFlusherKeys.pendingRuns, runId);
  }
}
