import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type LabelValues = Record<string, string>;

/** Figures read from shared state (Redis) each time Prometheus scrapes. */
export interface MetricSources {
  /** Per provider: active leases, next launch slot (epoch seconds). */
  limiter?: () => Promise<Record<string, { activeConcurrency: number; nextSlotEpochSeconds: number }>>;
  /** Jobs per BullMQ state. */
  queueDepth?: () => Promise<Record<string, number>>;
  /** Budget remaining per recent run that has a budget, in dollars. */
  budgets?: () => Promise<Record<string, number>>;
}

/** Providers whose counters are exported at 0 from the start, so `rate()` and alerts see them before the first event. */
export const METRIC_PROVIDERS = ['llm', 'tavily', 'sheets'] as const;

/**
 * The metrics a worker exposes, under the `brandq_` prefix: the original system's set
 * (active concurrency, next slot, stagger delays, TPM deferrals, 429 events) plus jobs,
 * latencies, tokens, cost, budget and queue depth. One registry per process.
 */
export class BrandqMetrics {
  readonly registry = new Registry();
  readonly jobsCompleted: Counter<'outcome'>;
  readonly jobsFailed: Counter<'reason'>;
  readonly jobDuration: Histogram<'outcome'>;
  readonly providerLatency: Histogram<'provider' | 'outcome'>;
  readonly tokens: Counter<'provider' | 'direction'>;
  readonly costDollars: Counter<'provider' | 'run'>;
  readonly overrunDollars: Counter<'provider' | 'run'>;
  readonly unconfirmedDollars: Counter<'provider' | 'run'>;
  readonly rateLimitEvents: Counter<'provider'>;
  readonly staggerDelays: Counter<'provider'>;
  readonly tpmDeferrals: Counter<'provider'>;
  readonly limiterDeferrals: Counter<'provider' | 'reason'>;
  readonly runAdmittedCalls: Counter<'provider' | 'run'>;
  readonly retries: Counter<'provider' | 'kind'>;
  readonly cacheHits: Counter<'provider'>;
  readonly cacheTrouble: Counter<'provider' | 'event'>;
  readonly redisRetries: Counter<'what'>;

  constructor(sources: MetricSources = {}) {
    const registers = [this.registry];
    // Both limiter gauges collect in parallel within one scrape: they share one read of Redis.
    let limiterRead: ReturnType<NonNullable<MetricSources['limiter']>> | undefined;
    const limiterSnapshot = async () => {
      if (!sources.limiter) return undefined;
      limiterRead ??= sources.limiter().finally(() => {
        limiterRead = undefined;
      });
      return limiterRead.catch(() => undefined);
    };
    collectDefaultMetrics({ register: this.registry, prefix: 'brandq_' });
    this.jobsCompleted = new Counter({ name: 'brandq_jobs_completed_total', help: 'Brand jobs completed (fresh: calls made; existing: result already stored)', labelNames: ['outcome'], registers });
    this.jobsFailed = new Counter({ name: 'brandq_jobs_failed_total', help: 'Brand jobs failed for good, by failure class', labelNames: ['reason'], registers });
    this.jobDuration = new Histogram({ name: 'brandq_job_duration_seconds', help: 'Time a worker spent on one brand attempt', labelNames: ['outcome'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120], registers });
    this.providerLatency = new Histogram({ name: 'brandq_provider_call_duration_seconds', help: 'Provider call latency, without limiter waits', labelNames: ['provider', 'outcome'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers });
    this.tokens = new Counter({ name: 'brandq_llm_tokens_total', help: 'LLM tokens billed, by direction (input, output)', labelNames: ['provider', 'direction'], registers });
    this.costDollars = new Counter({ name: 'brandq_cost_dollars_total', help: 'Dollars spent on provider calls', labelNames: ['provider', 'run'], registers });
    this.overrunDollars = new Counter({ name: 'brandq_cost_overrun_dollars_total', help: 'Dollars billed above the reserved worst case (the configured price is below the provider\'s)', labelNames: ['provider', 'run'], registers });
    this.unconfirmedDollars = new Counter({ name: 'brandq_unconfirmed_cost_dollars_total', help: 'Worst-case dollars of calls that may have been billed without an answer (timeouts, dropped connections)', labelNames: ['provider', 'run'], registers });
    this.rateLimitEvents = new Counter({ name: 'brandq_rate_limit_events_total', help: '429 answers received, by provider', labelNames: ['provider'], registers });
    this.staggerDelays = new Counter({ name: 'brandq_stagger_delays_total', help: 'Launches delayed to keep the fleet-wide stagger spacing', labelNames: ['provider'], registers });
    this.tpmDeferrals = new Counter({ name: 'brandq_tpm_window_deferrals_total', help: 'Calls deferred because the tokens-per-minute window was full', labelNames: ['provider'], registers });
    this.limiterDeferrals = new Counter({ name: 'brandq_limiter_deferrals_total', help: 'Limiter waits by provider and reason (requests, tokens, concurrency, stagger, cooldown)', labelNames: ['provider', 'reason'], registers });
    this.cacheHits = new Counter({ name: 'brandq_cache_hits_total', help: 'Provider answers served from the cache (no call, no cost)', labelNames: ['provider'], registers });
    this.cacheTrouble = new Counter({ name: 'brandq_cache_trouble_total', help: 'Cache fills that did not go to plan: fill lock lost, answer not stored (oom, unavailable, error), store fenced, waiter deadline', labelNames: ['provider', 'event'], registers });
    this.redisRetries = new Counter({ name: 'brandq_redis_write_retries_total', help: 'Writes that must not be lost (money booked, a paid result stored) retried while Redis was full (OOM) or unreachable', labelNames: ['what'], registers });
    this.runAdmittedCalls = new Counter({ name: 'brandq_run_admitted_calls_total', help: 'Provider calls the shared limiter admitted, per run (its share of the fleet)', labelNames: ['provider', 'run'], registers });
    this.retries = new Counter({ name: 'brandq_retries_total', help: 'Attempts that will be retried, by provider and failure class', labelNames: ['provider', 'kind'], registers });
    for (const provider of METRIC_PROVIDERS) {
      for (const counter of [this.rateLimitEvents, this.staggerDelays, this.tpmDeferrals, this.cacheHits]) counter.inc({ provider }, 0);
    }
    for (const outcome of ['fresh', 'existing']) this.jobsCompleted.inc({ outcome }, 0);

    new Gauge({
      name: 'brandq_active_concurrency',
      help: 'Concurrency leases held fleet-wide, per provider',
      labelNames: ['provider'],
      registers,
      async collect() {
        const stats = await limiterSnapshot();
        for (const [provider, s] of Object.entries(stats ?? {})) this.set({ provider }, s.activeConcurrency);
      },
    });
    new Gauge({
      name: 'brandq_next_slot_epoch',
      help: 'Next fleet-wide launch slot (epoch seconds), per provider',
      labelNames: ['provider'],
      registers,
      async collect() {
        const stats = await limiterSnapshot();
        for (const [provider, s] of Object.entries(stats ?? {})) this.set({ provider }, s.nextSlotEpochSeconds);
      },
    });
    new Gauge({
      name: 'brandq_queue_jobs',
      help: 'Brand jobs in the queue, by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await sources.queueDepth?.().catch(() => undefined);
        for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'brandq_budget_remaining_dollars',
      help: 'Budget left per run with a budget',
      labelNames: ['run'],
      registers,
      async collect() {
        const budgets = await sources.budgets?.().catch(() => undefined);
        this.reset();
        for (const [run, dollars] of Object.entries(budgets ?? {})) this.set({ run }, dollars);
      },
    });
  }
}
