import { createHash } from 'node:crypto';
import type { FleetShares } from '@brandq/fair-share';
import { microsToUsd, type CostLedger, type LedgerSnapshot, type ModelPrice } from '@brandq/ledger';
import type { DeferralReason, LimiterStats } from '@brandq/limiter';
import { fieldText, resultFields, type Recipe } from '@brandq/recipe';
import { LATEST_RESULTS_KEPT, type RunHistoryEntry, type RunMeta, type RunStore, type RunTimelineData } from '@brandq/runs';
import { runCostSummary, runFairShare, type RunFairShare } from './run-report.js';

/** What holds a run back now: its state, its money, or the shared limiter rule that made calls wait. */
export type BindingReason = 'ended' | 'paused' | 'budget' | 'none' | DeferralReason;

export interface Binding {
  reason: BindingReason;
  /** The same, for a person: what binds, and what it takes to lift it. */
  words: string;
}

export interface RunEta {
  /** Seconds until every brand is processed at `ratePerMinute`; null when the run does not advance (held, ended with brands left, no rate yet). */
  seconds: number | null;
  ratePerMinute: number;
}

export interface FailureExample {
  brand: string;
  rowNumber: number;
  reason: string;
  failedAt: string;
}

/**
 * The id of a failure group: kind and raw reason, hashed. The page shows reasons redacted,
 * so "retry these" names the group by this id, never by the text it was shown.
 */
export function failureGroupId(kind: string, reason: string): string {
  return createHash('sha256').update(`${kind}\n${reason}`).digest('hex').slice(0, 24);
}

/** Failed brands that failed the same way: one kind and one reason, the unit "retry these" acts on. */
export interface FailureGroup {
  id: string;
  kind: string;
  reason: string;
  count: number;
  /** The most recent failures of the group, newest first. */
  latest: FailureExample[];
}

export interface ResultRow {
  row: number;
  brand: string;
  /** Each field of the run's recipe, in its order, as the CSV export writes it. */
  fields: Record<string, string>;
}

export interface ResultsPage {
  page: number;
  pageSize: number;
  /** Brands with a result. */
  total: number;
  /** The recipe's result fields: the columns of `rows[].fields`. */
  columns: string[];
  /** Newest first. */
  rows: ResultRow[];
}

export interface RunDetail {
  run: RunMeta;
  recipe: { name: string; steps: { id: string; type: string }[] };
  ledger: LedgerSnapshot;
  costSummary: string;
  eta: RunEta;
  /** Its weight and ceiling among the fleet's runs, its share of the calls over the last minute and the ETA at that share. */
  fairShare: RunFairShare;
  binding: Binding;
  failures: { groups: FailureGroup[] };
  results: ResultsPage;
  /** The latest controls applied to the run, newest first. */
  history: RunHistoryEntry[];
}

/** The shared limiter's statistics per provider now, and at the previous look (the waits in between are what binds now). */
export interface LimiterLook {
  now: Record<string, LimiterStats>;
  before?: Record<string, LimiterStats> | undefined;
}

export interface RunDetailOptions {
  /** 1-based page of the latest results (default 1). */
  page?: number;
  /** Results per page, 1..100 (default 20). */
  pageSize?: number;
  /** Brands processed per minute lately (`recentRatePerMinute` of the run's timeline); default: the average since the run began. */
  ratePerMinute?: number | undefined;
  limiter?: LimiterLook | undefined;
  /** The fleet's shares over the last minute (`RunShares.measure()`). */
  fleet: FleetShares;
  /** The LLM provider's name in the cost summary (`OpenAI`, `OpenRouter`). */
  llmLabel: string;
  /** Standard prices (LLM_PRICING) and the default model: a cheaper tier's saving is measured against them. */
  pricing?: { table: Readonly<Record<string, ModelPrice>>; defaultModel: string };
  nowMs?: number;
}

export const RESULTS_PAGE_SIZE = { default: 20, max: 100 } as const;
/** Examples kept per failure group. */
const LATEST_FAILURES = 3;
/** History entries the detail carries. */
const HISTORY_SHOWN = 20;
/** The recent rate is measured over the latest minute, or six buckets once buckets are wider than 10 s. */
const RECENT_MS = 60_000;
const RECENT_BUCKETS = 6;

/** Everything the page of one run shows, read from Redis; undefined when there is no such run. */
export async function runDetail(deps: { runs: RunStore; ledger: CostLedger }, runId: string, options: RunDetailOptions): Promise<RunDetail | undefined> {
  const run = await deps.runs.getRun(runId);
  if (!run) return undefined;
  const nowMs = options.nowMs ?? Date.now();
  const recipe = await deps.runs.getRecipe(runId);
  const [ledger, groups, results, history] = await Promise.all([
    deps.ledger.snapshot(runId),
    failureGroups(deps.runs, runId),
    latestResults(deps.runs, run, recipe, options),
    deps.runs.history(runId, HISTORY_SHOWN),
  ]);
  const ratePerMinute = options.ratePerMinute ?? rateSinceStart(run, nowMs);
  return {
    run,
    recipe: { name: recipe.name, steps: recipe.steps.map((s) => ({ id: s.id, type: s.type })) },
    ledger,
    costSummary: runCostSummary({ ledger, recipe, run }, options.llmLabel, options.pricing),
    eta: runEta(run, ratePerMinute),
    fairShare: runFairShare(run, options.fleet),
    binding: bindingNow(run, ledger, options.limiter),
    failures: { groups },
    results,
    history,
  };
}

/** Brands processed per minute, averaged from the run's start to its end (or now). */
export function rateSinceStart(run: RunMeta, nowMs: number): number {
  const minutes = ((run.finishedAt ?? nowMs) - run.createdAt) / 60_000;
  return minutes > 0 ? (run.succeeded + run.failed) / minutes : 0;
}

/**
 * Brands processed per minute over the run's latest minute (or six buckets, when buckets are
 * wider), from its timeline; undefined when the timeline holds nothing yet. Buckets that
 * began before the window are left out whole, so a wide bucket never counts for a sliver.
 */
export function recentRatePerMinute(timeline: Pick<RunTimelineData, 'bucketMs' | 'points'>, nowMs: number): number | undefined {
  const first = timeline.points[0];
  if (!first || timeline.bucketMs <= 0) return undefined;
  const since = Math.max(first.t, nowMs - Math.max(RECENT_MS, RECENT_BUCKETS * timeline.bucketMs));
  const brands = timeline.points.filter((p) => p.t >= since).reduce((n, p) => n + p.done + p.failed, 0);
  const minutes = (nowMs - since) / 60_000;
  return minutes > 0 ? brands / minutes : undefined;
}

/** When the run's open brands will be done at the given rate. */
export function runEta(run: RunMeta, ratePerMinute: number): RunEta {
  const open = Math.max(0, run.total - run.succeeded - run.failed);
  if (open === 0) return { seconds: 0, ratePerMinute };
  if (run.status !== 'running' || ratePerMinute <= 0) return { seconds: null, ratePerMinute };
  return { seconds: Math.round((open / ratePerMinute) * 60), ratePerMinute };
}

const usd = (micros: number) => `$${microsToUsd(micros).toFixed(2)}`;

const DEFERRAL_WORDS: Record<DeferralReason, string> = {
  requests: 'the request rate',
  tokens: 'the tokens-per-minute window',
  concurrency: 'the concurrency cap',
  stagger: 'the launch stagger',
  cooldown: 'a 429 cooldown',
};

/**
 * What holds the run back now, in words: its own state first (paused, out of budget, ended),
 * then a provider cooling down after a 429, then the limiter rule that made calls wait most
 * since the previous look (the counters are cumulative: their growth is what binds now).
 */
export function bindingNow(run: RunMeta, ledger: LedgerSnapshot, limiter: LimiterLook | undefined): Binding {
  if (run.status === 'paused') {
    return { reason: 'paused', words: `paused${run.statusReason ? ` (${run.statusReason})` : ''}: workers take none of its brands until it is resumed` };
  }
  if (run.status === 'budget_exhausted') {
    const used = ledger.spentMicros + ledger.unconfirmedMicros;
    return { reason: 'budget', words: `the budget: ${usd(used)} of ${usd(ledger.budgetMicros)} used, the next call cannot be covered; raise the budget to continue` };
  }
  if (run.status !== 'running') return { reason: 'ended', words: `nothing: the run has ended (${run.status})` };
  const providers = Object.entries(limiter?.now ?? {});
  for (const [provider, stats] of providers) {
    if (stats.cooldownUntilMs > stats.nowMs) {
      return { reason: 'cooldown', words: `a 429 cooldown: ${provider} answered 429, every worker waits ${Math.ceil((stats.cooldownUntilMs - stats.nowMs) / 1000)} s more` };
    }
  }
  let worst: { provider: string; reason: DeferralReason; waits: number; leases: number } | undefined;
  for (const [provider, stats] of providers) {
    const before = limiter?.before?.[provider]?.deferrals;
    for (const [reason, count] of Object.entries(stats.deferrals) as [DeferralReason, number][]) {
      const waits = count - (before?.[reason] ?? 0);
      if (waits > 0 && waits > (worst?.waits ?? 0)) worst = { provider, reason, waits, leases: stats.activeLeases };
    }
  }
  if (!worst) return { reason: 'none', words: 'nothing: no limit made a call wait lately; the run goes as fast as its workers' };
  const since = limiter?.before ? 'since the last look' : 'so far';
  const inFlight = worst.reason === 'concurrency' ? `, ${worst.leases} calls in flight` : '';
  return { reason: worst.reason, words: `${DEFERRAL_WORDS[worst.reason]} of ${worst.provider}: ${worst.waits} waits ${since}${inFlight}` };
}

/** The run's failed brands grouped by kind and reason, largest group first. */
export async function failureGroups(runs: RunStore, runId: string): Promise<FailureGroup[]> {
  const groups = new Map<string, FailureGroup>();
  for await (const f of runs.failures(runId)) {
    const id = failureGroupId(f.kind, f.reason);
    const group = groups.get(id) ?? { id, kind: f.kind, reason: f.reason, count: 0, latest: [] };
    group.count += 1;
    group.latest.push({ brand: f.brand, rowNumber: f.rowNumber, reason: f.reason, failedAt: f.failedAt });
    group.latest.sort((a, b) => b.failedAt.localeCompare(a.failedAt));
    group.latest.length = Math.min(group.latest.length, LATEST_FAILURES);
    groups.set(id, group);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/**
 * One page of the run's results, newest first. The results are a hash with no order, so
 * this reads all of them (HSCAN in chunks) and keeps only what the page needs.
 */
async function latestResults(runs: RunStore, run: RunMeta, recipe: Recipe, options: Pick<RunDetailOptions, 'page' | 'pageSize'>): Promise<ResultsPage> {
  const pageSize = Math.min(RESULTS_PAGE_SIZE.max, Math.max(1, Math.floor(options.pageSize ?? RESULTS_PAGE_SIZE.default)));
  // Only the newest results are listed (a bounded read per poll); the export has them all.
  const lastPage = Math.max(1, Math.ceil(Math.min(run.succeeded, LATEST_RESULTS_KEPT) / pageSize));
  const page = Math.min(lastPage, Math.max(1, Math.floor(options.page ?? 1)));
  const newest = await runs.latestResults(run.id, (page - 1) * pageSize, pageSize);
  const fields = resultFields(recipe);
  const rows = newest.map((r) => ({
    row: r.rowNumber,
    brand: r.brand,
    fields: Object.fromEntries(fields.map((f) => [f.name, fieldText(f, r.fields[f.name])])),
  }));
  return { page, pageSize, total: run.succeeded, columns: fields.map((f) => f.name), rows };
}

