import type { Redis } from 'ioredis';
import type { LlmTier } from '@brandq/ledger';
import { runIndexKeys, runKeyList, runKeys } from '@brandq/redis';
import type { BrandJobData, BrandSource } from '@brandq/queue';
import { defaultRecipe, deserializeRecipe, recipeFingerprint, serializeRecipe, type Recipe } from '@brandq/recipe';
import { defineRunScripts } from './run-scripts.js';
import type { BrandFailure, BrandResult, RunHistoryEntry, RunMeta, RunStatus, SkippedBrand } from './run-types.js';

const DAY_MS = 86_400_000;
/** How many of a run's newest results stay listed for its page's preview (older ones: the export). */
export const LATEST_RESULTS_KEPT = 1000;
/** Entries a run's history keeps (the newest): a page's worth of actions, and a bound on a run pressed over and over. */
const HISTORY_CAP = 1000;

interface ScriptedRedis extends Redis {
  brandqRecordOutcome(meta: string, results: string, failed: string, timeline: string, latest: string, ...rest: (string | number)[]): Promise<[number, number, number, RunStatus]>;
  brandqReopenBrands(meta: string, failed: string, ...rest: (string | number)[]): Promise<[number, RunStatus]>;
  brandqCreateOrExtendRun(
    meta: string, brands: string, skipped: string, recipe: string, ...rest: (string | number | (string | number)[])[]
  ): Promise<[number, number, number, RunStatus] | [-1, string] | [-2, string, string]>;
  brandqSetRunStatus(meta: string, ...rest: (string | number)[]): Promise<number>;
  brandqMarkBudgetExhausted(meta: string, ledger: string, budgetEpoch: number, reason: string): Promise<number>;
  brandqForgetLatestRun(bySource: string, sourceKey: string, runId: string): Promise<number>;
  brandqDropVanishedRun(meta: string, ...rest: string[]): Promise<number>;
  brandqDeleteEndedRun(meta: string, ...rest: (string | number)[]): Promise<number>;
  brandqAppendHistory(meta: string, history: string, entry: string, cap: number): Promise<number>;
  brandqSetRunFields(meta: string, ...fieldValues: string[]): Promise<number>;
}

export interface RunStoreOptions {
  /**
   * Days an ended run (completed, cancelled) is kept: when it ends, every key of the run
   * expires this long after. 0 (the default here; the config's `RUN_RETENTION_DAYS` is
   * what the apps pass) keeps ended runs forever. Held runs are always kept.
   */
  retentionDays?: number;
}

export interface NewRun {
  id: string;
  source: BrandSource;
  sourceKey: string;
  brands: BrandJobData[];
  skipped: SkippedBrand[];
  /** What the run's workers do per brand (default: the default recipe). */
  recipe?: Recipe;
  /** Replace the recipe of an existing run that follows another one (`--force`); else such a run is refused. */
  replaceRecipe?: boolean;
}

export interface RunWritten {
  kind: 'written';
  meta: RunMeta;
  /** True when this call created the run, false when it extended an existing one. */
  created: boolean;
  /** Brands this call added (brands the run already held are not counted again). */
  added: number;
}

export interface RunOfOtherSource {
  kind: 'other_source';
  /** The source the run belongs to. */
  runSourceKey: string;
}

export interface RunOfOtherRecipe {
  kind: 'other_recipe';
  /** The recipe the run follows. */
  runRecipeName: string;
  runRecipeFingerprint: string;
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
  /** How long an ended run's keys live, in ms (0 = forever). */
  readonly retentionMs: number;

  constructor(redis: Redis, options: RunStoreOptions = {}) {
    const days = options.retentionDays ?? 0;
    if (!Number.isFinite(days) || days < 0) throw new RangeError(`run retention of ${days} days: expected a number of days >= 0`);
    defineRunScripts(redis);
    this.redis = redis as ScriptedRedis;
    this.retentionMs = Math.round(days * DAY_MS);
  }

  /**
   * Creates the run, or adds to it the brands it does not hold yet, in one script on the
   * run's own keys (one hash tag, one Cluster slot): a run never exists half-written, and
   * two producers on the same run never overwrite each other's counters (its total is the
   * number of its brands). The index keys live outside the run's hash tag and are written
   * after it; jobs are added only after this returns, so every run that can hold a result
   * is listed among its source's runs (see `resultsOfSource`). A crash in between leaves a
   * complete run without jobs or results, which re-enqueueing (or `--resume --run <id>`)
   * indexes. A run is never extended with the brands of another source: nothing is
   * written and the answer names the run's own source.
   */
  async createOrExtendRun(run: NewRun): Promise<RunWritten | RunOfOtherSource | RunOfOtherRecipe> {
    const keys = runKeys(run.id);
    // One array argument (ioredis flattens it): spreading a list of 100k brands into a call overflows the stack.
    const args: (string | number)[] = [run.id, JSON.stringify(run.source), run.sourceKey, this.retentionMs];
    const recipe = run.recipe ?? defaultRecipe();
    args.push(serializeRecipe(recipe), recipeFingerprint(recipe), recipe.name, run.replaceRecipe ? '1' : '0', recipeFingerprint(defaultRecipe()), run.brands.length);
    for (const b of run.brands) args.push(b.key, JSON.stringify(b));
    for (const s of run.skipped) args.push(`row-${s.rowNumber}`, JSON.stringify(s));
    const reply = await this.redis.brandqCreateOrExtendRun(keys.meta, keys.brands, keys.skipped, keys.recipe, ...runKeyList(run.id), args);
    if (reply[0] === -1) return { kind: 'other_source', runSourceKey: String(reply[1]) };
    if (reply[0] === -2) return { kind: 'other_recipe', runRecipeName: String(reply[1]), runRecipeFingerprint: String(reply[2]) };
    const [created, added] = reply as [number, number, number, RunStatus];
    const meta = await this.getRun(run.id);
    if (!meta) throw new Error(`run ${run.id} vanished right after it was written`);
    await this.indexRun(meta);
    return { kind: 'written', meta, created: created === 1, added };
  }

  /**
   * The recipe a run's brands follow: the one stored with it, or the default recipe for a
   * run created before recipes. Checked again on the way in: what a worker follows is
   * always a valid recipe.
   */
  async getRecipe(runId: string): Promise<Recipe> {
    const stored = await this.redis.get(runKeys(runId).recipe);
    return stored === null ? defaultRecipe() : deserializeRecipe(stored, `run ${runId}`);
  }

  /**
   * Lists the run in the index of runs, among its source's runs, and as its source's
   * latest run. Idempotent; single-key commands, because the index keys live outside the
   * run's hash tag.
   */
  async indexRun(meta: Pick<RunMeta, 'id' | 'sourceKey' | 'createdAt'>): Promise<void> {
    await this.redis.zadd(runIndexKeys.ofSource(meta.sourceKey), 'NX', meta.createdAt, meta.id);
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

  /**
   * The newest `limit` runs. A run whose keys are gone (expired by its retention, or
   * deleted) is skipped and dropped from the index (see `dropVanishedRun`).
   */
  async listRuns(limit = 20): Promise<RunMeta[]> {
    const listed: RunMeta[] = [];
    let start = 0;
    while (listed.length < limit) {
      const ids = await this.redis.zrevrange(runIndexKeys.all, start, start + limit - listed.length - 1);
      if (ids.length === 0) break;
      const metas = await Promise.all(ids.map((id) => this.getRun(id)));
      let vanished = 0;
      for (const [i, meta] of metas.entries()) {
        if (meta) listed.push(meta);
        else if (await this.dropVanishedRun(ids[i] as string)) vanished++;
      }
      start += ids.length - vanished;
    }
    return listed;
  }

  /** The source's latest run; a pointer to a run that is gone is removed and not returned. */
  async latestRunForSource(sourceKey: string): Promise<string | undefined> {
    const runId = await this.redis.hget(runIndexKeys.bySource, sourceKey);
    if (runId === null) return undefined;
    if (await this.runExists(runId)) return runId;
    await this.redis.brandqForgetLatestRun(runIndexKeys.bySource, sourceKey, runId);
    return undefined;
  }

  /** Every run of the source, newest first; runs that are gone are dropped from its list. */
  async runsOfSource(sourceKey: string): Promise<string[]> {
    const key = runIndexKeys.ofSource(sourceKey);
    const listed = await this.existingRunsOf(key);
    if (listed.length > 0 || (await this.latestRunForSource(sourceKey)) === undefined) return listed;
    // A source whose runs were all indexed before this list existed: list them once, from the index of all runs.
    const all = await this.redis.zrange(runIndexKeys.all, 0, -1, 'WITHSCORES');
    for (let i = 0; i < all.length; i += 2) {
      const runId = all[i] as string;
      if ((await this.redis.hget(runKeys(runId).meta, 'sourceKey')) === sourceKey) await this.redis.zadd(key, 'NX', all[i + 1] as string, runId);
    }
    return this.redis.zrevrange(key, 0, -1);
  }

  /** When the run's keys expire (server ms), or undefined while they are kept (or the run is gone). */
  async expiresAt(runId: string): Promise<number | undefined> {
    const ttl = await this.redis.pttl(runKeys(runId).meta);
    if (ttl < 0) return undefined;
    return (await this.serverTimeMs()) + ttl;
  }

  /**
   * Deletes every key of the run, but only while it is ended (completed, cancelled) no
   * later than `endedBy` (server ms), checked in the same step: a run resumed meanwhile is
   * kept. Its index entries go after its keys, so a crash in between leaves only entries
   * the readers drop. True when the run was deleted.
   */
  async deleteEndedRun(meta: Pick<RunMeta, 'id' | 'sourceKey'>, endedBy: number): Promise<boolean> {
    const keys = runKeys(meta.id);
    const deleted = await this.redis.brandqDeleteEndedRun(keys.meta, ...runKeyList(meta.id), endedBy);
    if (deleted < 0) return false;
    await this.unindexRun(meta.id, meta.sourceKey);
    return true;
  }

  /** Ids listed in the sorted-set index `key` (newest first) whose run still exists; the others are removed from it. */
  private async existingRunsOf(key: string): Promise<string[]> {
    const listed = await this.redis.zrevrange(key, 0, -1);
    const exists = await Promise.all(listed.map((id) => this.runExists(id)));
    const gone = listed.filter((_, i) => !exists[i]);
    if (gone.length > 0) await this.redis.zrem(key, ...gone);
    return listed.filter((_, i) => exists[i]);
  }

  /**
   * A run listed in the index of all runs whose meta is gone: what is left of its keys is
   * deleted (checked in one step with the meta's absence) and it leaves the index. Its
   * entries in its source's indexes are dropped when those are read (its source is no
   * longer known). False when the run exists after all (re-created under the same id).
   */
  private async dropVanishedRun(runId: string): Promise<boolean> {
    const keys = runKeys(runId);
    if ((await this.redis.brandqDropVanishedRun(keys.meta, ...runKeyList(runId))) < 0) return false;
    await this.redis.zrem(runIndexKeys.all, runId);
    // A run re-created under this id between the two steps is listed again.
    const meta = await this.getRun(runId);
    if (meta) await this.indexRun(meta);
    return meta === undefined;
  }

  private async unindexRun(runId: string, sourceKey: string): Promise<void> {
    await this.redis.zrem(runIndexKeys.ofSource(sourceKey), runId);
    await this.redis.brandqForgetLatestRun(runIndexKeys.bySource, sourceKey, runId);
    await this.redis.zrem(runIndexKeys.all, runId);
  }

  private async runExists(runId: string): Promise<boolean> {
    return (await this.redis.hexists(runKeys(runId).meta, 'id')) === 1;
  }

  /**
   * Which of `brandKeys` have a result in any run of the source, each with the newest run
   * that holds it (entries in the order of those runs, newest first). It reads the runs'
   * result hashes themselves, which record-outcome.lua writes atomically with the outcome,
   * rather than a per-source index of results: such an index would live in another
   * Cluster slot, so it could only be written in a second step that a crash can skip, and
   * a skipped write would make the next run pay again.
   * The list of the source's runs cannot lag behind its results (see createOrExtendRun).
   * The cost is one HMGET per 1,000 brands per run, and only for brands not found yet.
   */
  async resultsOfSource(sourceKey: string, brandKeys: readonly string[]): Promise<Map<string, string>> {
    const heldBy = new Map<string, string>();
    let open = [...new Set(brandKeys)];
    for (const runId of await this.runsOfSource(sourceKey)) {
      if (open.length === 0) break;
      const found = await this.keysWithResults(runId, open);
      for (const key of found) heldBy.set(key, runId);
      open = open.filter((key) => !found.has(key));
    }
    return heldBy;
  }

  /**
   * Sets the run's status, and its retention in the same step: a run that ends here
   * (cancelled, completed) gets `finishedAt` and an expiry on its keys, a held or running
   * one is kept. A run that does not exist is left alone.
   */
  async setStatus(runId: string, status: RunStatus, reason?: string): Promise<void> {
    const keys = runKeys(runId);
    await this.redis.brandqSetRunStatus(keys.meta, ...runKeyList(runId), status, reason ?? '', this.retentionMs);
  }

  /**
   * Sets the run's status as `setStatus` does, but only while the run is in one of `from`,
   * checked in the same step: a run that a worker completed or held between a control's
   * read and its write stays as the worker left it. False when the run does not exist or
   * was in another status.
   */
  async transitionStatus(runId: string, from: readonly RunStatus[], status: RunStatus, reason?: string): Promise<boolean> {
    const keys = runKeys(runId);
    return (await this.redis.brandqSetRunStatus(keys.meta, ...runKeyList(runId), status, reason ?? '', this.retentionMs, from.join(','))) === 1;
  }

  /**
   * Sets the run's weight and its own ceiling (`maxRpm: null` lifts it; a field left out is
   * left as it is). False when the run does not exist.
   */
  async setShare(runId: string, share: { weight?: number; maxRpm?: number | null }): Promise<boolean> {
    return this.setFields(runId, { weight: share.weight, maxRpm: share.maxRpm });
  }

  /** Sets the run's LLM tier and how long a flex call may be refused for capacity before it goes standard (0: never). */
  async setLlmTier(runId: string, tier: LlmTier, flexFallbackAfterMs: number): Promise<boolean> {
    return this.setFields(runId, { llmTier: tier === 'standard' ? null : tier, flexFallbackAfterMs: flexFallbackAfterMs > 0 ? flexFallbackAfterMs : null });
  }

  /** Sets run meta fields if the run exists: undefined leaves a field, null removes it. */
  private async setFields(runId: string, fields: Record<string, string | number | null | undefined>): Promise<boolean> {
    const args = Object.entries(fields).flatMap(([name, value]) => (value === undefined ? [] : [name, value === null ? '' : String(value)]));
    return (await this.redis.brandqSetRunFields(runKeys(runId).meta, ...args)) === 1;
  }

  /** The run's brands still without a result or a failure, in row order: what its queued jobs are. */
  async pendingKeys(runId: string): Promise<string[]> {
    const keys = runKeys(runId);
    const [brands, results, failed] = await Promise.all([this.redis.hgetall(keys.brands), this.redis.hkeys(keys.results), this.redis.hkeys(keys.failed)]);
    const finished = new Set([...results, ...failed]);
    return Object.entries(brands)
      .filter(([key]) => !finished.has(key))
      .map(([key, raw]) => ({ key, row: Number((JSON.parse(raw) as { rowNumber?: number }).rowNumber ?? 0) }))
      .sort((a, b) => a.row - b.row)
      .map((b) => b.key);
  }

  /**
   * Adds `entry` to the run's history (newest first, the latest 1,000 kept), living as long
   * as the run's other keys. False when the run does not exist: a history is never the
   * only key of a run.
   */
  async appendHistory(runId: string, entry: RunHistoryEntry): Promise<boolean> {
    const keys = runKeys(runId);
    return (await this.redis.brandqAppendHistory(keys.meta, keys.history, JSON.stringify(entry), HISTORY_CAP)) === 1;
  }

  /** The run's latest `limit` history entries, newest first. */
  async history(runId: string, limit = 50): Promise<RunHistoryEntry[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`history limit ${limit}: expected a whole number >= 1`);
    const raw = await this.redis.lrange(runKeys(runId).history, 0, limit - 1);
    return raw.map((entry) => JSON.parse(entry) as RunHistoryEntry);
  }

  /**
   * Holds the run as `budget_exhausted`, only while it is running and only if `budgetEpoch`
   * (the ledger's `budget_epoch` the refusal was computed under; missing = 0) is still the
   * budget in force. False when nothing changed: a refusal computed before a
   * `--resume --budget` never undoes it.
   */
  async markBudgetExhausted(runId: string, budgetEpoch: number, reason: string): Promise<boolean> {
    const keys = runKeys(runId);
    return (await this.redis.brandqMarkBudgetExhausted(keys.meta, keys.ledger, budgetEpoch, reason)) === 1;
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
  /**
   * Reopens the failed brands given and resumes the run. With `from`, only a run in one of
   * those statuses is reopened (checked in the same step): else nothing is written and the
   * answer is `{ refused: true, status }` with the status it is in.
   */
  async reopen(runId: string, failedKeys: string[], from: readonly RunStatus[] = []): Promise<{ reopened: number; status: RunStatus; refused?: true }> {
    const keys = runKeys(runId);
    const [reopened, status] = await this.redis.brandqReopenBrands(keys.meta, keys.failed, ...runKeyList(runId), this.retentionMs, from.join(','), ...failedKeys);
    return reopened < 0 ? { reopened: 0, status, refused: true } : { reopened, status };
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
    return raw === null ? undefined : parseResult(raw);
  }

  /** The newest results of a run, newest first: `count` of them from `offset`, among the LATEST_RESULTS_KEPT newest. */
  async latestResults(runId: string, offset: number, count: number): Promise<BrandResult[]> {
    if (count <= 0 || offset >= LATEST_RESULTS_KEPT) return [];
    const keys = await this.redis.lrange(runKeys(runId).latest, offset, Math.min(LATEST_RESULTS_KEPT, offset + count) - 1);
    return (await this.getResults(runId, keys)).filter((r): r is BrandResult => r !== undefined);
  }

  /** The results of these brands of a run, in order (undefined where a brand has none), in one round trip per thousand. */
  async getResults(runId: string, keys: readonly string[]): Promise<(BrandResult | undefined)[]> {
    const found: (BrandResult | undefined)[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const raw = await this.redis.hmget(runKeys(runId).results, ...keys.slice(i, i + 1000));
      for (const value of raw) found.push(value === null ? undefined : parseResult(value));
    }
    return found;
  }

  results(runId: string): AsyncGenerator<BrandResult> {
    return this.scanHash(runKeys(runId).results, parseResult);
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
    const [recorded, succeeded, failed, status] = await this.redis.brandqRecordOutcome(
      keys.meta, keys.results, keys.failed, keys.timeline, keys.latest, ...runKeyList(runId), outcome, key, payload, this.retentionMs, LATEST_RESULTS_KEPT,
    );
    return { recorded: recorded === 1, succeeded, failed, status };
  }

  private async *scanHash<T>(key: string, parse: (raw: string) => T = (raw) => JSON.parse(raw) as T): AsyncGenerator<T> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(key, cursor, 'COUNT', 500);
      cursor = next;
      for (let i = 1; i < entries.length; i += 2) yield parse(entries[i] as string);
    } while (cursor !== '0');
  }

  private async serverTimeMs(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }
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
  if (raw.recipeName) meta.recipeName = raw.recipeName;
  if (raw.recipeFingerprint) meta.recipeFingerprint = raw.recipeFingerprint;
  if (raw.weight) meta.weight = Number(raw.weight);
  if (raw.maxRpm) meta.maxRpm = Number(raw.maxRpm);
  if (raw.llmTier === 'flex' || raw.llmTier === 'batch') meta.llmTier = raw.llmTier;
  if (raw.flexFallbackAfterMs) meta.flexFallbackAfterMs = Number(raw.flexFallbackAfterMs);
  return meta;
}

/** The brand-facts fields results stored before recipes held at their top level. */
const RESULT_META = new Set(['key', 'brand', 'rowNumber', 'processedAt', 'runId']);

/** A stored result; one written before recipes (its fields at the top level) reads the same. */
function parseResult(raw: string): BrandResult {
  const stored = JSON.parse(raw) as BrandResult & Record<string, unknown>;
  if (stored.fields) return stored;
  const fields = Object.fromEntries(Object.entries(stored).filter(([name]) => !RESULT_META.has(name))) as BrandResult['fields'];
  return { key: stored.key, brand: stored.brand, rowNumber: stored.rowNumber, processedAt: stored.processedAt, fields };
}
