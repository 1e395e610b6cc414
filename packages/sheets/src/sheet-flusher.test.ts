import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startFakeSheets, type FakeSheetsServer, type LedgerEntry } from '@brandq/fakes';
import { runKeys, sheetFlusherKeys } from '@brandq/redis';
import { testRedisCluster, useTestRedis } from '@brandq/testing';
import { SheetFlusher, type SheetFlusherOptions, type SheetsGate } from './sheet-flusher.js';
import { SheetWriteQueue } from './sheet-write-queue.js';
import { SheetsClient } from './sheets-client.js';

const redis = useTestRedis();
const SHEET = 'sheet-1';
const TAB = 'Brands';

let fake: FakeSheetsServer;
let client: Redis;
let queue: SheetWriteQueue;
let sheets: SheetsClient;
const flushers: SheetFlusher[] = [];

/** A gate that always admits, and remembers what the flusher told it. */
function countingGate() {
  const gate = {
    acquired: 0,
    settled: 0,
    released: 0,
    cooldowns: [] as number[],
    acquire: async () => {
      gate.acquired += 1;
      return {
        settle: async () => void (gate.settled += 1),
        release: async () => void (gate.released += 1),
      };
    },
    cooldown: async (_provider: 'sheets', ms: number) => void gate.cooldowns.push(ms),
  } satisfies SheetsGate & Record<string, unknown>;
  return gate;
}

function flusher(options: Partial<SheetFlusherOptions> = {}): SheetFlusher {
  const f = new SheetFlusher({ redis: client, sheets, gate: countingGate(), flushRows: 5, flushSeconds: 3600, pollMs: 50, retryBaseMs: 50, ...options });
  flushers.push(f);
  return f;
}

function row(n: number, tag = 'v'): { range: string; values: string[][] } {
  return { range: `'${TAB}'!B${n}:C${n}`, values: [[`${tag}-${n}-a`, `${tag}-${n}-b`]] };
}

async function enqueueRows(runId: string, rows: number[], tag = 'v'): Promise<void> {
  for (const n of rows) await queue.enqueue(runId, SHEET, row(n, tag));
}

function writes(): LedgerEntry[] {
  return fake.ledger.filter((e) => e.method === 'POST' && e.path.endsWith('values:batchUpdate'));
}

/** Every range written by successful requests, one item per time it was written. */
function writtenRanges(): string[] {
  return writes()
    .filter((e) => e.status === 200)
    .flatMap((e) => (e.writes ?? []).map((w) => w.range));
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

beforeAll(async () => {
  fake = await startFakeSheets();
  client = redis.client();
  queue = new SheetWriteQueue(client);
  sheets = new SheetsClient({ rootUrl: fake.url, accessToken: 'test' });
});

afterAll(async () => {
  await fake?.close();
});

beforeEach(async () => {
  await redis.flush();
  fake.reset();
  fake.clearSheets();
  fake.setSheet(SHEET, TAB, [['brand'], ...Array.from({ length: 60 }, (_, i) => [`Brand ${i + 2}`])]);
});

afterEach(async () => {
  await Promise.all(flushers.splice(0).map((f) => f.stop(2000)));
});

describe('SheetWriteQueue', () => {
  it('appends the row to the run stream and marks the run pending', async () => {
    await queue.enqueue('run-q', SHEET, row(2));
    const entries = await client.xrange(runKeys('run-q').sheetWrites, '-', '+');
    expect(entries).toHaveLength(1);
    expect(entries[0]?.[1]).toEqual(['spreadsheetId', SHEET, 'range', `'${TAB}'!B2:C2`, 'values', JSON.stringify([['v-2-a', 'v-2-b']])]);
    expect(await client.smembers(sheetFlusherKeys.pendingRuns)).toEqual(['run-q']);
  });
});

describe('SheetFlusher', () => {
  it('writes flushRows rows once, in one batchUpdate, and only then forgets them', async () => {
    const f = flusher({ flushRows: 5 });
    await enqueueRows('run-a', [2, 3, 4, 5]);
    expect(await f.flushOnce()).toBe(0); // 4 < flushRows, young
    expect(writes()).toHaveLength(0);

    await enqueueRows('run-a', [6]);
    expect(await f.flushOnce()).toBe(5);
    expect(writes()).toHaveLength(1);
    expect(writtenRanges().sort()).toEqual([2, 3, 4, 5, 6].map((n) => row(n).range).sort());
    expect(await client.xlen(runKeys('run-a').sheetWrites)).toBe(0);
    expect(fake.getValues(SHEET, TAB)?.slice(1, 6).map((r) => r.slice(1, 3))).toEqual([2, 3, 4, 5, 6].map((n) => row(n).values[0]));

    // Next pass: nothing more is written and the run is no longer pending.
    expect(await f.flushOnce()).toBe(0);
    expect(writes()).toHaveLength(1);
    expect(await client.smembers(sheetFlusherKeys.pendingRuns)).toEqual([]);
    expect(await client.exists(runKeys('run-a').sheetWrites)).toBe(0);
    expect(f.stats).toMatchObject({ flushes: 1, rowsWritten: 5, failures: 0, leader: true });
  });

  it('writes a partial batch once its oldest row is flushSeconds old', async () => {
    const f = flusher({ flushRows: 50, flushSeconds: 0.4 });
    await enqueueRows('run-b', [2, 3, 4]);
    expect(await f.flushOnce()).toBe(0);
    await sleep(450);
    expect(await f.flushOnce()).toBe(3);
    expect(writes()).toHaveLength(1);
  });

  it('sends one request per spreadsheet, the latest values of a range winning', async () => {
    fake.setSheet('sheet-2', TAB, [['brand'], ['x'], ['y']]);
    const f = flusher({ flushRows: 4 });
    await queue.enqueue('run-c', SHEET, row(2, 'old'));
    await queue.enqueue('run-c', 'sheet-2', row(2, 'other'));
    await queue.enqueue('run-c', SHEET, row(3));
    await queue.enqueue('run-c', SHEET, row(2, 'new'));
    expect(await f.flushOnce()).toBe(3);
    expect(writes().map((e) => e.spreadsheetId).sort()).toEqual([SHEET, 'sheet-2']);
    expect(writes().find((e) => e.spreadsheetId === SHEET)?.writes?.map((w) => w.range)).toEqual([row(3).range, row(2).range]);
    expect(fake.getValues(SHEET, TAB)?.[1]?.slice(1, 3)).toEqual(['new-2-a', 'new-2-b']);
    expect(fake.getValues('sheet-2', TAB)?.[1]?.slice(1, 3)).toEqual(['other-2-a', 'other-2-b']);
    expect(await client.xlen(runKeys('run-c').sheetWrites)).toBe(0);
  });

  it('always writes RAW: formula-like text is stored as text', async () => {
    const f = flusher({ flushRows: 1 });
    const values = [['=HYPERLINK("x")', '+1', '@me', '-2']];
    await queue.enqueue('run-d', SHEET, { range: `'${TAB}'!B2:E2`, values });
    expect(await f.flushOnce()).toBe(1);
    const [entry] = writes();
    expect(entry?.valueInputOption).toBe('RAW');
    expect(entry?.formulaWritten).toBe(false);
    expect(entry?.writes?.every((w) => w.valueInputOption === 'RAW' && !w.formulaWritten)).toBe(true);
    expect(fake.getValues(SHEET, TAB)?.[1]?.slice(1, 5)).toEqual(values[0]);
    expect(fake.formulaCells(SHEET, TAB)).toEqual([]);
  });

  it('keeps the rows of a failed write and writes them on a later flush', async () => {
    const gate = countingGate();
    const f = flusher({ flushRows: 3, gate });
    await enqueueRows('run-e', [2, 3, 4]);
    fake.injectFaults([{ status: 500 }]);
    expect(await f.flushOnce()).toBe(0);
    expect(f.stats.failures).toBe(1);
    expect(await client.xlen(runKeys('run-e').sheetWrites)).toBe(3);
    expect(gate.settled).toBe(1); // the failed request still counted against the quota

    await sleep(80); // retryBaseMs 50 (+20% jitter)
    expect(await f.flushOnce()).toBe(3);
    expect(writes().map((e) => e.status)).toEqual([500, 200]);
    expect(await client.xlen(runKeys('run-e').sheetWrites)).toBe(0);
    expect(fake.getValues(SHEET, TAB)?.[3]?.slice(1, 3)).toEqual(row(4).values[0]);
  });

  it('on a 429 waits the announced time, tells the gate, then writes', async () => {
    const gate = countingGate();
    const f = flusher({ flushRows: 2, gate });
    await enqueueRows('run-f', [2, 3]);
    fake.injectFaults([{ status: 429, retryAfterMs: 400 }]);
    expect(await f.flushOnce()).toBe(0);
    expect(gate.cooldowns).toEqual([400]);
    expect(await f.flushOnce()).toBe(0); // still cooling down: no request
    expect(writes()).toHaveLength(1);
    await sleep(420);
    expect(await f.flushOnce()).toBe(2);
    expect(writes().map((e) => e.status)).toEqual([429, 200]);
  });

  it('lets only the lease holder write when two flushers run', async () => {
    const other = redis.client();
    const a = flusher({ flushRows: 5, flushSeconds: 0.2 });
    const b = flusher({ redis: other, flushRows: 5, flushSeconds: 0.2 });
    a.start();
    b.start();
    const rows = Array.from({ length: 40 }, (_, i) => i + 2);
    for (const n of rows) {
      await queue.enqueue('run-g', SHEET, row(n));
      if (n % 7 === 0) await sleep(30);
    }
    await until(async () => (await client.scard(sheetFlusherKeys.pendingRuns)) === 0 && writtenRanges().length >= 40);
    expect(writtenRanges().sort()).toEqual(rows.map((n) => row(n).range).sort());
    const flushes = [a.stats.flushes, b.stats.flushes];
    expect(flushes.filter((n) => n > 0)).toHaveLength(1);
    expect(a.stats.flushes + b.stats.flushes).toBe(writes().length);
    expect([a.stats.leader, b.stats.leader].filter(Boolean)).toHaveLength(1);
  });

  it('hands over when the holder dies (even between the write and the ack) and loses nothing', async () => {
    const doomed = redis.client();
    // The holder writes to Sheets, then "dies" before it can delete the entries.
    const dying = new SheetFlusher({
      redis: doomed,
      gate: countingGate(),
      flushRows: 3,
      flushSeconds: 3600,
      leaseMs: 600,
      sheets: {
        writeValues: async (id, w) => {
          const cells = await sheets.writeValues(id, w);
          doomed.disconnect();
          return cells;
        },
      },
    });
    flushers.push(dying);
    await enqueueRows('run-h', [2, 3, 4]);
    await expect(dying.flushOnce()).rejects.toThrow(); // the XDEL never reached Redis
    expect(writes()).toHaveLength(1);
    expect(await client.xlen(runKeys('run-h').sheetWrites)).toBe(3);
    const holder = await client.get(sheetFlusherKeys.lease);
    expect(holder).toBe(dying.token);
    expect(holder?.split(':')[0]).toBe(String(process.pid));

    await enqueueRows('run-h', [5, 6]);
    const heir = flusher({ flushRows: 3, leaseMs: 600 });
    expect(await heir.flushOnce()).toBe(0); // the dead holder's lease has not expired yet
    await until(async () => (await client.exists(sheetFlusherKeys.lease)) === 0, 2000);
    expect(await heir.flushOnce()).toBe(5);
    expect(await client.get(sheetFlusherKeys.lease)).toBe(heir.token);
    // Rows 2-4 were sent twice (re-sent, not lost), with the same values.
    expect(writtenRanges().sort()).toEqual([2, 3, 4, 2, 3, 4, 5, 6].map((n) => row(n).range).sort());
    expect(fake.getValues(SHEET, TAB)?.slice(1, 6).map((r) => r.slice(1, 3))).toEqual([2, 3, 4, 5, 6].map((n) => row(n).values[0]));
    expect(await client.xlen(runKeys('run-h').sheetWrites)).toBe(0);
  });

  it('a running holder renews its lease past leaseMs and keeps it', async () => {
    const a = flusher({ leaseMs: 300 });
    const b = flusher({ redis: redis.client(), leaseMs: 300 });
    a.start();
    await until(() => a.stats.leader);
    b.start();
    await sleep(1000);
    expect(a.stats.leader).toBe(true);
    expect(b.stats.leader).toBe(false);
    expect(await client.get(sheetFlusherKeys.lease)).toBe(a.token);
  });

  it.skipIf(testRedisCluster())('stop() returns by its deadline when Redis stops answering, and no row is lost', async () => {
    const a = flusher({ redis: redis.client(), leaseMs: 5000 });
    await enqueueRows('run-p', [2]);
    expect(await a.flushOnce()).toBe(0);
    await enqueueRows('run-p', [3]);
    // Every client of this Redis now waits for 6 s; a shutdown must not wait with them.
    await client.call('CLIENT', 'PAUSE', '6000', 'ALL');
    const started = performance.now();
    await a.stop(300);
    expect(performance.now() - started).toBeLessThan(4000);
    // Once Redis answers again nothing is lost: the next holder writes both rows.
    const heir = flusher({ flushRows: 1 });
    await until(async () => (await heir.flushOnce(), writtenRanges().includes(row(3).range)), 15_000);
    expect(writtenRanges()).toContain(row(2).range);
    expect(await client.xlen(runKeys('run-p').sheetWrites)).toBe(0);
  });

  it('stop() flushes what is queued, even if not due, and hands the lease over', async () => {
    const a = flusher({ flushRows: 50 });
    const b = flusher({ redis: redis.client(), flushRows: 50 });
    expect(await a.flushOnce()).toBe(0);
    await enqueueRows('run-i', [2, 3]);
    await a.stop();
    expect(writtenRanges().sort()).toEqual([row(2).range, row(3).range].sort());
    expect(await client.exists(sheetFlusherKeys.lease)).toBe(0);
    expect(await b.flushOnce()).toBe(0);
    expect(b.stats.leader).toBe(true);
  });

  it('finds rows of a run that is not marked pending when it takes the lease', async () => {
    await client.xadd(runKeys('run-j').sheetWrites, '*', 'spreadsheetId', SHEET, 'range', row(2).range, 'values', JSON.stringify(row(2).values));
    const f = flusher({ flushRows: 1 });
    expect(await f.flushOnce()).toBe(1);
    expect(writtenRanges()).toEqual([row(2).range]);
  });

  it('writes a row whose enqueuer died between XADD and SADD, while one holder keeps the lease', async () => {
    const f = flusher({ flushRows: 1, orphanSweepMs: 300 });
    expect(await f.flushOnce()).toBe(0); // takes the lease and does its take-over sweep first
    f.start();
    // What an enqueuer that died right after its XADD leaves: a row in a stream of a run not marked pending.
    await client.xadd(runKeys('run-o').sheetWrites, '*', 'spreadsheetId', SHEET, 'range', row(2).range, 'values', JSON.stringify(row(2).values));
    // Found by the holder's periodic sweep, within a sweep interval and a poll, not at the next lease change.
    await until(() => writtenRanges().includes(row(2).range), 1500);
    expect(f.stats.leader).toBe(true);
    expect(writtenRanges()).toEqual([row(2).range]);
  });

  it('loses no row when enqueues race with flushes and empty-run cleanup', async () => {
    const f = flusher({ flushRows: 7, flushSeconds: 0.05, pollMs: 5 });
    f.start();
    const producers = [new SheetWriteQueue(redis.client()), new SheetWriteQueue(redis.client())];
    const rows = Array.from({ length: 50 }, (_, i) => i + 2);
    await Promise.all(
      rows.map(async (n, i) => {
        await sleep((i % 10) * 15);
        await producers[i % 2]?.enqueue('run-k', SHEET, row(n));
      }),
    );
    await until(async () => (await client.scard(sheetFlusherKeys.pendingRuns)) === 0);
    expect(new Set(writtenRanges())).toEqual(new Set(rows.map((n) => row(n).range)));
    expect(await client.exists(runKeys('run-k').sheetWrites)).toBe(0);
  });
});
