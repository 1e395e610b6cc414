import { describe, expect, it } from 'vitest';
import { BrandqMetrics } from './brandq-metrics.js';
import { startMetricsServer } from './metrics-server.js';
import { pipelineMetrics } from './pipeline-metrics.js';
import { parsePrometheusText, scrapeMetrics } from './prometheus-text.js';

describe('parsePrometheusText', () => {
  it('reads families, labels (with escapes), special values and timestamps', () => {
    const s = parsePrometheusText(
      [
        '# HELP a_total A counter',
        '# TYPE a_total counter',
        'a_total{provider="llm",note="say \\"hi\\"\\nthere"} 3',
        'a_total{provider="tavily"} 1.5e0 1700000000000',
        '# TYPE h histogram',
        'h_bucket{le="+Inf"} 7',
        'g NaN',
        '',
      ].join('\n'),
    );
    expect(s.has('a_total')).toBe(true);
    expect(s.types.get('h')).toBe('histogram');
    expect(s.find('a_total', { provider: 'llm' })[0]?.labels.note).toBe('say "hi"\nthere');
    expect(s.sum('a_total')).toBe(4.5);
    expect(s.sum('h_bucket', { le: '+Inf' })).toBe(7);
    expect(Number.isNaN(s.find('g')[0]?.value)).toBe(true);
    expect(s.sum('missing')).toBe(0);
  });
});

describe('BrandqMetrics', () => {
  it('serves the brandq_ series over HTTP; limiter gauges share one read per scrape; budgets drop runs that left', async () => {
    let limiterReads = 0;
    let budgets: Record<string, number> = { 'run-a': 1.5, 'run-b': 0 };
    const metrics = new BrandqMetrics({
      limiter: async () => {
        limiterReads += 1;
        return { llm: { activeConcurrency: 2, nextSlotEpochSeconds: 1_700_000_000.5 } };
      },
      queueDepth: async () => ({ waiting: 3, active: 1 }),
      budgets: async () => budgets,
    });
    const server = await startMetricsServer(metrics.registry, 0, '127.0.0.1');
    try {
      const observer = pipelineMetrics(metrics);
      observer.booked('run-a', 'llm', { costMicros: 2500, inputTokens: 100, outputTokens: 20 });
      observer.providerCall('llm', 0.2, 'ok');
      observer.rateLimited('llm');

      const s = await scrapeMetrics(`http://127.0.0.1:${server.port}/metrics`);
      expect(limiterReads).toBe(1);
      expect(s.sum('brandq_active_concurrency', { provider: 'llm' })).toBe(2);
      expect(s.sum('brandq_next_slot_epoch', { provider: 'llm' })).toBe(1_700_000_000.5);
      expect(s.sum('brandq_queue_jobs', { state: 'waiting' })).toBe(3);
      expect(s.sum('brandq_cost_dollars_total', { run: 'run-a', provider: 'llm' })).toBeCloseTo(0.0025, 12);
      expect(s.sum('brandq_llm_tokens_total', { direction: 'input' })).toBe(100);
      expect(s.sum('brandq_provider_call_duration_seconds_count', { provider: 'llm', outcome: 'ok' })).toBe(1);
      expect(s.sum('brandq_rate_limit_events_total', { provider: 'llm' })).toBe(1);
      expect(s.find('brandq_rate_limit_events_total', { provider: 'sheets' })).toEqual([{ name: 'brandq_rate_limit_events_total', labels: { provider: 'sheets' }, value: 0 }]);
      expect(s.find('brandq_jobs_completed_total').map((x) => x.labels.outcome).sort()).toEqual(['existing', 'fresh']);
      expect(s.sum('brandq_budget_remaining_dollars', { run: 'run-a' })).toBe(1.5);
      expect(s.has('brandq_process_cpu_user_seconds_total')).toBe(true);

      budgets = { 'run-b': 0 };
      const again = await scrapeMetrics(`http://127.0.0.1:${server.port}/metrics`);
      expect(limiterReads).toBe(2);
      expect(again.find('brandq_budget_remaining_dollars').map((x) => x.labels.run)).toEqual(['run-b']);

      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('keeps serving when a shared-state source fails (Redis down): the other series still answer', async () => {
    const metrics = new BrandqMetrics({
      limiter: () => Promise.reject(new Error('redis down')),
      queueDepth: () => Promise.reject(new Error('redis down')),
      budgets: () => Promise.reject(new Error('redis down')),
    });
    metrics.jobsCompleted.inc({ outcome: 'fresh' });
    const s = parsePrometheusText(await metrics.registry.metrics());
    expect(s.sum('brandq_jobs_completed_total', { outcome: 'fresh' })).toBe(1);
    expect(s.find('brandq_active_concurrency')).toEqual([]);
  });
});
