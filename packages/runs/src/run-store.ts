import type { Redis } from 'ioredis';
import { defineScripts, runIndexKeys, runKeys } from '@brandq/redis';
import type { BrandJobData, BrandSource } from '@brandq/queue';
import type { BrandFailure, BrandResult, RunMeta, RunStatus, SkippedBrand } from './run-types.js';

const SCRIPTS = [
  { name: 'brandqRecordOutcome', file: new URL('../lua/record-outcome.lua', import.meta.url), numberOfKeys: 3 },
  { name: 'brandqReopenBrands', file: new URL('../lua/reopen-brands.lua', import.meta.url), numberOfKeys: 2 },
] as const;

interface ScriptedRedis extends Redis {
  brandqRecordOutcome(meta: string, results: string, failed: string, outcome: 'success' | 'failure', key: string, payload: string): Promise<[number, number, number, RunStatus]>;
  brandqReopenBrands(meta: string, failed: string, ...keys: string[]): Promise<[number, RunStatus]>;
}

export interface NewRun {
  id: string;
  source: BrandSource;
  sourceKey: string;
  brands: BrandJobData[];
  skipped: SkippedBrand[];
}

export interface OutcomeRecorded {
  /** False when the brand already had a final result (a duplicate delivery). */
  recorded: boolean;
  succeeded: number;
  failed: number;
  status: RunStatus;
}

/**
 * A run's state lives in Redis and is updated per brand, so a crash at any moment loses
 * nothing: the meta hash (status, counters, timestamps), the brands of the run, their
 * results, failures and skipped rows.
 */
export class RunStore {
  private readonly redis: ScriptedRedis;

  constructor(redis: Redis) {
    defineScripts(redis, SCRIPTS);
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Creates the run with all its brands in one MULTI: a run never exists half-written. The
   * MULTI touches only the run's own keys (one hash tag, one Cluster slot); the global
   * index is written after it, so a crash in between leaves a complete run that
   * `--resume --run <id>` finds (and re-enqueueing it indexes it).
   */
  async createRun(run: NewRun): Promise<RunMeta> {
    const keys = runKeys(run.id);
    const now = await this.serverTimeMs();
    const tx = this.redis.multi();
    tx.hset(keys.meta, {
      id: run.id,
      source: JSON.stringify(run.source),
      sourceKey: run.sourceKey,
      status: run.brands.length === 0 ? 'completed' : 'running',
      total: run.brands.length,
      succeeded: 0,
      failed: 0,
      skipped: run.skipped.length,
      createdAt: now,
      updatedAt: now,
    });
    for (let i = 0; i < run.brands.length; i += 1000) {
      const chunk = run.brands.slice(i, i + 1000);
      tx.hset(keys.brands, Object.fromEntries(chunk.map((b) => [b.key, JSON.stringify(b)])));
    }
    run.skipped.forEach((s) => tx.hset(keys.skipped, `row-${s.rowNumber}`, JSON.stringify(s)));
    throwOnError(await tx.exec());
    const meta = await this.getRun(run.id);
    if (!meta) throw new Error(`run ${run.id} vanished right after creation`);
    await this.indexRun(meta);
    return meta;
  }

  /**
   * Lists the run in the index of runs and as its source's latest run. Idempotent; two
   * single-key commands, because the index keys live outside the run's hash tag.
   */
  async indexRun(meta: Pick<RunMeta, 'id' | 'sourceKey' | 'createdAt'>): Promise<void> {
    const added = await this.redis.zadd(runIndexKeys.all, 'NX', meta.createdAt, meta.id);
    // A run indexed for the first time is its source's latest; a re-index never moves the pointer back.
    if (added === 1) await this.redis.hset(runIndexKeys.bySource, meta.sourceKey, meta.id);
    else await this.redis.hsetnx(runIndexKeys.bySource, meta.sourceKey, meta.id);
  }

  async getRun(runId: string): Promise<RunMeta | undefined> {
    const raw = await this.redis.hgetall(runKeys(runId).meta);
    if (!raw.id) return undefined;
    return parseMeta(raw);
  }

  async listRuns(limit = 20): Promise<RunMeta[]> {
    const ids = await this.redis.zrevrange(runIndexKeys.all, 0, limit - 1);
    const metas = await Promise.all(ids.map((id) => this.getRun(id)));
    return metas.filter((m): m is RunMeta => m !== undefined);
  }

  async latestRunForSource(sourceKey: string): Promise<string | undefined> {
    return (await this.redis.hget(runIndexKeys.bySource, sourceKey)) ?? undefined;
  }

  async setStatus(runId: string, status: RunStatus, reason?: string): Promise<void> {
    const now = await this.serverTimeMs();
    await this.redis.hset(runKeys(runId).meta, { status, updatedAt: now, statusReason: reason ?? '' });
  }

  recordSuccess(result: BrandResult & { runId: string }): Promise<OutcomeRecorded> {
    const { runId, ...stored } = result;
    return this.recordOutcome(runId, 'success', stored.key, JSON.stringify(stored));
  }

  recordFailure(failure: BrandFailure & { runId: string }): Promise<OutcomeRecorded> {
    const { runId, ...stored } = failure;
    return this.recordOutcome(runId, 'failure', stored.key, JSON.stringify(stored));
  }

  /**
   * Failed brands back to pending, and the run back to running while any brand is open
   * (--retry-failed, --resume); a run with every brand processed is completed instead.
   */
  async reopen(runId: string, failedKeys: string[]): Promise<{ reopened: number; status: RunStatus }> {
    const keys = runKeys(runId);
    const [reopened, status] = await this.redis.brandqReopenBrands(keys.meta, keys.failed, ...failedKeys);
    return { reopened, status };
  }

  /** Which of `brandKeys` already have a result in the run (HMGET in chunks, not a call per brand). */
  async keysWithResults(runId: string, brandKeys: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const key = runKeys(runId).results;
    for (let i = 0; i < brandKeys.length; i += 1000) {
      const chunk = brandKeys.slice(i, i + 1000);
      const values = await this.redis.hmget(key, ...chunk);
      values.forEach((v, j) => {
        if (v !== null) found.add(chunk[j] as string);
      });
    }
    return found;
  }

  async getResult(runId: string, key: string): Promise<BrandResult | undefined> {
    const raw = await this.redis.hget(runKeys(runId).results, key);
    return raw === null ? undefined : (JSON.parse(raw) as BrandResult);
  }

  results(runId: string): AsyncGenerator<BrandResult> {
    return this.scanHash<BrandResult>(runKeys(runId).results);
  }

  failures(runId: string): AsyncGenerator<BrandFailure> {
    return this.scanHash<BrandFailure>(runKeys(runId).failed);
  }

  skipped(runId: string): AsyncGenerator<SkippedBrand> {
    return this.scanHash<SkippedBrand>(runKeys(runId).skipped);
  }

  brands(runId: string): AsyncGenerator<BrandJobData> {
    return this.scanHash<BrandJobData>(runKeys(runId).brands);
  }

  private async recordOutcome(runId: string, outcome: 'success' | 'failure', key: string, payload: string): Promise<OutcomeRecorded> {
    const keys = runKeys(runId);
    const [recorded, succeeded, failed, status] = await this.redis.brandqRecordOutcome(keys.meta, keys.results, keys.failed, outcome, key, payload);
    return { recorded: recorded === 1, succeeded, failed, status };
  }

  private async *scanHash<T>(key: string): AsyncGenerator<T> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(key, cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) yield JSON.parse(entries[i] as string) as T;
    } while (cursor !== '0');
  }

  private async serverTimeMs(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }
}

/** The replies of a MULTI, throwing the first command error (ioredis reports them per command). */
function throwOnError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('Redis transaction aborted');
  for (const [err] of results) if (err) throw err;
}

function parseMeta(raw: Record<string, string>): RunMeta {
  const meta: RunMeta = {
    id: raw.id ?? '',
    source: JSON.parse(raw.source ?? '{}') as BrandSource,
    sourceKey: raw.sourceKey ?? '',
    status: (raw.status ?? 'running') as RunStatus,
    total: Number(raw.total ?? 0),
    succeeded: Number(raw.succeeded ?? 0),
    failed: Number(raw.failed ?? 0),
    skipped: Number(raw.skipped ?? 0),
    createdAt: Number(raw.createdAt ?? 0),
    updatedAt: Number(raw.updatedAt ?? 0),
  };
  if (raw.finishedAt) meta.finishedAt = Number(raw.finishedAt);
  if (raw.statusReason) meta.statusReason = raw.statusReason;
  return meta;
}
