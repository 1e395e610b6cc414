import type { Redis } from 'ioredis';
import { Gauge, Registry } from 'prom-client';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import type { BrandQueue } from '@brandq/queue';
import { RunStore } from '@brandq/runs';

interface ProviderStats {
  calls: number;
  activeLeases: number;
  tokensInWindow: number;
  nextSlotAtMs: number;
  cooldownUntilMs: number;
  deferrals: Record<string, number>;
}

/**
 * The fleet's aggregate metrics, read from Redis at scrape time: what every worker
 * together did, even workers nobody scrapes (behind NAT, already gone).
 */
export function createBoardMetrics(redis: Redis, queue: BrandQueue, limiterStats: () => Promise<Record<string, unknown>>) {
  const registry = new Registry();
  const registers = [registry];
  const runs = new RunStore(redis);
  const ledger = new CostLedger(redis);
  const queueJobs = new Gauge({ name: 'brandq_fleet_queue_jobs', help: 'Brand jobs by state', labelNames: ['state'], registers });
  const runBrands = new Gauge({ name: 'brandq_fleet_run_brands', help: 'Brands per run by outcome', labelNames: ['run', 'outcome'], registers });
  const runCost = new Gauge({ name: 'brandq_fleet_cost_dollars', help: 'Dollars spent per run and provider', labelNames: ['run', 'provider'], registers });
  const budgetRemaining = new Gauge({ name: 'brandq_fleet_budget_remaining_dollars', help: 'Budget left per run', labelNames: ['run'], registers });
  const active = new Gauge({ name: 'brandq_fleet_active_concurrency', help: 'Concurrency leases held fleet-wide', labelNames: ['provider'], registers });
  const nextSlot = new Gauge({ name: 'brandq_fleet_next_slot_epoch', help: 'Next launch slot (epoch seconds)', labelNames: ['provider'], registers });
  const cooldown = new Gauge({ name: 'brandq_fleet_cooldown_until_epoch', help: 'Provider cooldown end (epoch seconds, 0 = none)', labelNames: ['provider'], registers });
  const calls = new Gauge({ name: 'brandq_fleet_limiter_calls', help: 'Calls admitted by the shared limiter', labelNames: ['provider'], registers });
  const deferrals = new Gauge({ name: 'brandq_fleet_limiter_deferrals', help: 'Limiter deferrals by reason', labelNames: ['provider', 'reason'], registers });

  return async () => {
    registry.resetMetrics();
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children');
    for (const [state, n] of Object.entries(counts)) queueJobs.set({ state }, n);
    for (const run of await runs.listRuns(20)) {
      runBrands.set({ run: run.id, outcome: 'succeeded' }, run.succeeded);
      runBrands.set({ run: run.id, outcome: 'failed' }, run.failed);
      runBrands.set({ run: run.id, outcome: 'total' }, run.total);
      const money = await ledger.snapshot(run.id);
      for (const [provider, totals] of Object.entries(money.providers)) runCost.set({ run: run.id, provider }, microsToUsd(totals.costMicros));
      if (money.budgetMicros > 0) budgetRemaining.set({ run: run.id }, microsToUsd(Math.max(0, money.budgetMicros - money.spentMicros)));
    }
    const stats = (await limiterStats()) as Record<string, ProviderStats>;
    for (const [provider, s] of Object.entries(stats)) {
      active.set({ provider }, s.activeLeases);
      nextSlot.set({ provider }, s.nextSlotAtMs / 1000);
      cooldown.set({ provider }, s.cooldownUntilMs / 1000);
      calls.set({ provider }, s.calls);
      for (const [reason, n] of Object.entries(s.deferrals)) deferrals.set({ provider, reason }, n);
    }
    return { contentType: registry.contentType, body: await registry.metrics() };
  };
}
