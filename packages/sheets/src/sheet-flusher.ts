import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimitedError, isBrandqError } from '@brandq/errors';
import { FleetLease, defineScripts, runKeys, scanKeys, sheetFlusherKeys, within } from '@brandq/redis';
import type { CellWrite } from './sheets-client.js';

const SCRIPTS = [
  { name: 'brandqDropEmptySheetStream', file: new URL('../lua/drop-empty-stream.lua', import.meta.url), numberOfKeys: 1 },
] as const;

interface ScriptedRedis extends Redis {
  brandqDropEmptySheetStream(stream: string): Promise<number>;
}

/** A right to make one Sheets request, from the shared limiter. */
export interface SheetsPermit {
  settle(usage?: { usedTokens?: number }): Promise<unknown>;
  release(): Promise<unknown>;
}

/** The part of the worker's ProviderGate the flusher uses; a test can pass a trivial one. */
export interface SheetsGate {
  acquire(provider: 'sheets', request: { signal?: AbortSignal }): Promise<SheetsPermit>;
  /** Told about a 429 so every worker's limiter holds Sheets calls, not only this flusher. */
  cooldown?(provider: 'sheets', retryAfterMs: number): Promise<void>;
}

/** The one Sheets call the flusher makes (`SheetsClient` has it). */
export interface SheetsWriter {
  writeValues(spreadsheetId: string, writes: readonly CellWrite[]): Promise<number>;
}

export interface FlusherLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SheetFlusherOptions {
  redis: Redis;
  sheets: SheetsWriter;
  gate: SheetsGate;
  /** Flush a run once this many rows wait (`SHEETS_FLUSH_ROWS`). */
  flushRows: number;
  /** ...or once its oldest waiting row is this old (`SHEETS_FLUSH_SECONDS`). */
  flushSeconds: number;
  /** Lease length; the holder renews every third of it, a dead holder is replaced after it. */
  leaseMs?: number;
  /** How often the loop looks at the streams (and, when not the holder, tries the lease). */
  pollMs?: number;
  /**
   * How often the holder looks for streams with rows whose run is not marked pending (an
   * enqueuer that died between its writes), besides when it takes the lease (default 60 s).
   * Bounds how long such a row waits under a lease that never changes hands.
   */
  orphanSweepMs?: number;
  /** Most rows read from a run's stream for one request (a backlog drains in big requests). */
  maxRowsPerRequest?: number;
  /** First wait after a failed write; doubles per consecutive failure up to `maxRetryMs`. */
  retryBaseMs?: number;
  maxRetryMs?: number;
  logger?: FlusherLogger;
}

export interface SheetFlusherStats {
  /** Successful `values.batchUpdate` requests. */
  flushes: number;
  /** Distinct ranges written by them. */
  rowsWritten: number;
  /** Failed write requests (the rows stayed queued). */
  failures: number;
  /** Whether this process holds the lease right now. */
  leader: boolean;
}

interface SheetBatch {
  /** Stream ids acknowledged once the write succeeded (older duplicates of a range included). */
  ids: string[];
  /** Range -> values, the newest entry winning; the same cells always get the same values. */
  ranges: Map<string, string[][]>;
}

const silent: FlusherLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The fleet's one writer of result rows to Google Sheets. Every worker runs a flusher; the
 * one holding the lease in Redis reads the runs' sheet-write streams and writes each run's
 * rows with one `values.batchUpdate` per spreadsheet once `flushRows` rows wait or the
 * oldest waited `flushSeconds`. Entries are deleted only after the write succeeded, so a
 * crash re-sends rows (same cells, same values) rather than losing them.
 */
export class SheetFlusher {
  private readonly redis: ScriptedRedis;
  private readonly sheets: SheetsWriter;
  private readonly gate: SheetsGate;
  private readonly flushRows: number;
  private readonly flushMs: number;
  private readonly pollMs: number;
  private readonly orphanSweepMs: number;
  private readonly maxRows: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryMs: number;
  private readonly log: FlusherLogger;
  /** The pid lets an operator (or a test) see which process flushes. */
  readonly token = `${process.pid}:${randomUUID()}`;

  private readonly lease: FleetLease;
  /** Local time of the holder's next sweep for orphan streams; 0 right after taking the lease. */
  private nextOrphanSweepAt = 0;
  private loopTimer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private loopErrors = 0;
  /** Serializes passes: the loop and a direct flushOnce() never read the same rows twice. */
  private passChain: Promise<unknown> = Promise.resolve();
  private readonly abort = new AbortController();
  /** After a 429 no Sheets write is made before this local time. */
  private pausedUntil = 0;
  private rateLimitStreak = 0;
  /** Per spreadsheet: consecutive failures and when to try again (one bad sheet does not block others). */
  private readonly backoff = new Map<string, { failures: number; notBefore: number }>();
  private readonly counters = { flushes: 0, rowsWritten: 0, failures: 0 };

  constructor(options: SheetFlusherOptions) {
    defineScripts(options.redis, SCRIPTS);
    this.redis = options.redis as ScriptedRedis;
    this.sheets = options.sheets;
    this.gate = options.gate;
    this.flushRows = Math.max(1, Math.floor(options.flushRows));
    this.flushMs = options.flushSeconds * 1000;
    this.pollMs = options.pollMs ?? 250;
    this.orphanSweepMs = options.orphanSweepMs ?? 60_000;
    this.maxRows = Math.max(this.flushRows, options.maxRowsPerRequest ?? 1000);
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 60_000;
    this.log = options.logger ?? silent;
    this.lease = new FleetLease(options.redis, sheetFlusherKeys.lease, this.token, {
      leaseMs: options.leaseMs ?? 10_000,
      onTaken: () => {
        this.log.info({ leaseHolder: this.token }, 'sheet flusher: took the lease');
        // A holder that died between dropping a run from pendingRuns and re-checking its
        // stream could leave rows no one looks at: the new holder's first pass looks for them.
        this.nextOrphanSweepAt = 0;
      },
      onLost: () => this.log.warn({ leaseHolder: this.token }, 'sheet flusher: lost the lease; another worker flushes now'),
      onRenewalError: (err) => this.log.warn({ err: errorText(err) }, 'sheet flusher: lease renewal failed'),
    });
  }

  get stats(): SheetFlusherStats {
    return { ...this.counters, leader: this.holdsLease() };
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops the loop; if this process holds the lease it first writes every row still
   * queued (within `timeoutMs`; what is left stays in Redis for the next holder), then
   * gives the lease back so another worker takes over at once.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    clearTimeout(this.loopTimer);
    const deadline = setTimeout(() => this.abort.abort(new Error(`sheet flusher stop timed out after ${timeoutMs} ms`)), timeoutMs);
    deadline.unref();
    // Every wait of stop() ends at the deadline: a Redis that no longer answers must not
    // hold up a worker's shutdown (the lease then expires by itself).
    const deadlineAt = Date.now() + timeoutMs;
    const bounded = <T>(work: Promise<T>) => within(work, Math.max(0, deadlineAt - Date.now()));
    try {
      await bounded(this.passChain);
      // Drain in passes: one pass writes at most maxRowsPerRequest rows per run.
      while (this.holdsLease() && !this.abort.signal.aborted) {
        const written = await bounded(this.serialized(() => this.pass(true)));
        if (written === 0) break;
      }
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'sheet flusher: final flush incomplete; the next lease holder writes the rest');
    }
    clearTimeout(deadline);
    try {
      // Its own short bound: a drain cut off by a slow Sheets API still hands the lease over.
      await this.lease.release();
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'sheet flusher: could not release the lease; it expires by itself');
    }
  }

  /**
   * One iteration of the loop: takes the lease if it is free, then, as the holder, writes
   * every run whose rows are due. Returns the number of rows written (0 when another
   * worker holds the lease).
   */
  async flushOnce(): Promise<number> {
    return this.serialized(async () => {
      if (this.stopped) return 0;
      if (!this.holdsLease() && !(await this.lease.claim())) return 0;
      if (Date.now() >= this.nextOrphanSweepAt) {
        await this.adoptOrphanStreams();
        this.nextOrphanSweepAt = Date.now() + this.orphanSweepMs;
      }
      return this.pass(false);
    });
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.passChain.then(fn, fn);
    this.passChain = next.catch(() => undefined);
    return next;
  }

  private schedule(delayMs: number): void {
    this.loopTimer = setTimeout(() => {
      this.flushOnce().then(
        () => {
          this.loopErrors = 0;
        },
        (err: unknown) => {
          this.loopErrors += 1;
          // Redis down: say so once in a while, not every poll.
          if (this.loopErrors === 1 || this.loopErrors % 20 === 0) {
            this.log.warn({ err: errorText(err), errors: this.loopErrors }, 'sheet flusher: pass failed; retrying');
          }
        },
      ).finally(() => {
        if (this.running) this.schedule(Math.min(this.pollMs * 2 ** Math.min(this.loopErrors, 5), 5000));
      });
    }, delayMs);
    this.loopTimer.unref();
  }

  private holdsLease(): boolean {
    return this.lease.holds();
  }

  private async adoptOrphanStreams(): Promise<void> {
    const marker = 'x';
    const [prefix = '', suffix = ''] = runKeys(marker).sheetWrites.split(`{run:${marker}}`);
    const pattern = `${prefix}{run:*}${suffix}`;
    // Every master on a Cluster: the runs' streams are spread over all the slots.
    for await (const key of scanKeys(this.redis, pattern)) {
      const runId = key.slice(prefix.length + '{run:'.length, key.length - suffix.length - 1);
      if (!isRunStream(runId, key)) continue;
      if ((await this.redis.xlen(key)) > 0 && (await this.redis.sadd(sheetFlusherKeys.pendingRuns, runId)) === 1) {
        this.log.warn({ runId }, 'sheet flusher: found queued rows of a run not marked pending; flushing them');
      }
    }
  }

  /** Writes every due run (every run with rows when `force`); returns the rows written. */
  private async pass(force: boolean): Promise<number> {
    const runIds = await this.redis.smembers(sheetFlusherKeys.pendingRuns);
    if (runIds.length === 0) return 0;
    const now = await this.serverTimeMs();
    let written = 0;
    for (const runId of runIds) {
      if (!this.holdsLease() || this.pausedUntil > Date.now() || this.abort.signal.aborted) break;
      let stream: string;
      try {
        stream = runKeys(runId).sheetWrites;
      } catch {
        await this.redis.srem(sheetFlusherKeys.pendingRuns, runId);
        this.log.error({ runId }, 'sheet flusher: dropped an invalid run id from the pending runs');
        continue;
      }
      const [length, firstEntries] = replies(await this.redis.multi().xlen(stream).xrange(stream, '-', '+', 'COUNT', 1).exec()) as [number, [string, string[]][]];
      const first = firstEntries[0];
      if (length === 0 || !first) {
        await this.dropIfEmpty(runId, stream);
        continue;
      }
      // Stream ids start with the Redis server's ms at XADD, compared with its TIME: no clock skew between workers.
      const oldestAgeMs = now - Number(first[0].split('-')[0]);
      if (!force && length < this.flushRows && oldestAgeMs < this.flushMs) continue;
      const entries = await this.redis.xrange(stream, '-', '+', 'COUNT', this.maxRows);
      written += await this.flushEntries(runId, stream, entries);
    }
    return written;
  }

  private async flushEntries(runId: string, stream: string, entries: [string, string[]][]): Promise<number> {
    const bySheet = new Map<string, SheetBatch>();
    const poison: string[] = [];
    for (const [id, fields] of entries) {
      const entry = parseEntry(fields);
      if (!entry) {
        poison.push(id);
        continue;
      }
      let batch = bySheet.get(entry.spreadsheetId);
      if (!batch) bySheet.set(entry.spreadsheetId, (batch = { ids: [], ranges: new Map() }));
      batch.ids.push(id);
      batch.ranges.delete(entry.range);
      batch.ranges.set(entry.range, entry.values);
    }
    if (poison.length > 0) {
      // Not something SheetWriteQueue writes, and it can never be written: kept, it would be retried forever.
      this.log.error({ runId, ids: poison }, 'sheet flusher: dropped malformed sheet-write entries');
      await this.redis.xdel(stream, ...poison);
    }

    let written = 0;
    for (const [spreadsheetId, batch] of bySheet) {
      const wait = this.backoff.get(spreadsheetId);
      if (wait && wait.notBefore > Date.now()) continue;
      if (this.pausedUntil > Date.now()) break;
      let permit: SheetsPermit;
      try {
        permit = await this.gate.acquire('sheets', { signal: this.abort.signal });
      } catch (err) {
        if (this.abort.signal.aborted) return written;
        this.pausedUntil = Date.now() + this.retryBaseMs;
        this.log.warn({ err: errorText(err) }, 'sheet flusher: no Sheets permit; retrying later');
        return written;
      }
      if (!this.holdsLease()) {
        await permit.release().catch(() => undefined);
        return written;
      }
      const writes: CellWrite[] = [...batch.ranges].map(([range, values]) => ({ range, values }));
      try {
        await this.sheets.writeValues(spreadsheetId, writes);
      } catch (err) {
        // The request reached Google (or may have): it counts against the quota.
        await permit.settle().catch(() => undefined);
        await this.failed(err, runId, spreadsheetId, writes.length);
        continue;
      }
      await permit.settle().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'sheet flusher: could not settle the Sheets permit'));
      this.backoff.delete(spreadsheetId);
      this.rateLimitStreak = 0;
      this.counters.flushes += 1;
      this.counters.rowsWritten += writes.length;
      written += writes.length;
      // Acknowledged only now: if this XDEL is lost, the rows are written again, unchanged.
      await this.redis.xdel(stream, ...batch.ids);
    }
    return written;
  }

  private async failed(err: unknown, runId: string, spreadsheetId: string, rows: number): Promise<void> {
    this.counters.failures += 1;
    const details = { runId, spreadsheetId, rows, err: isBrandqError(err) ? err.toJSON() : errorText(err) };
    if (err instanceof RateLimitedError) {
      this.rateLimitStreak += 1;
      const waitMs = err.retryAfterMs ?? this.backoffMs(this.rateLimitStreak);
      this.pausedUntil = Date.now() + waitMs;
      this.log.warn({ ...details, waitMs }, 'sheet flusher: Sheets rate limit; rows stay queued');
      await this.gate.cooldown?.('sheets', waitMs).catch(() => undefined);
      return;
    }
    const failures = (this.backoff.get(spreadsheetId)?.failures ?? 0) + 1;
    const waitMs = this.backoffMs(failures);
    this.backoff.set(spreadsheetId, { failures, notBefore: Date.now() + waitMs });
    this.log.warn({ ...details, failures, waitMs }, 'sheet flusher: sheet write failed; rows stay queued and are retried');
  }

  private backoffMs(failures: number): number {
    const base = Math.min(this.retryBaseMs * 2 ** (failures - 1), this.maxRetryMs);
    // Jitter so a fleet restarted together does not retry in step.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /**
   * Forgets a run whose stream is empty. SREM first, then re-check: an enqueue landing
   * before the SREM is seen by the re-check, one landing after it adds the run back itself.
   */
  private async dropIfEmpty(runId: string, stream: string): Promise<void> {
    await this.redis.srem(sheetFlusherKeys.pendingRuns, runId);
    if ((await this.redis.brandqDropEmptySheetStream(stream)) > 0) await this.redis.sadd(sheetFlusherKeys.pendingRuns, runId);
  }

  private async serverTimeMs(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }
}

function parseEntry(fields: string[]): { spreadsheetId: string; range: string; values: string[][] } | undefined {
  const record = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i] as string, fields[i + 1] as string);
  const spreadsheetId = record.get('spreadsheetId');
  const range = record.get('range');
  const raw = record.get('values');
  if (!spreadsheetId || !range || raw === undefined) return undefined;
  try {
    const values: unknown = JSON.parse(raw);
    if (!Array.isArray(values) || !values.every((row) => Array.isArray(row) && row.every((c) => typeof c === 'string'))) return undefined;
    return { spreadsheetId, range, values: values as string[][] };
  } catch {
    return undefined;
  }
}

function isRunStream(runId: string, key: string): boolean {
  try {
    return runKeys(runId).sheetWrites === key;
  } catch {
    return false;
  }
}

/** The replies of a MULTI, throwing the first command error (ioredis reports them per command). */
function replies(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('Redis transaction aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How long stop() waits to hand the lease back before leaving it to expire. */

