import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BrandqMetrics, parsePrometheusText } from '@brandq/metrics';
import { createBrandQueue } from '@brandq/queue';
import { useTestRedis } from '@brandq/testing';
import { createBoardMetrics } from './board-metrics.js';

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const redis = useTestRedis();

interface Panel {
  title: string;
  type: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

describe('deploy/: the Grafana dashboard and Prometheus config match the metrics brandq serves', () => {
  it('every brandq_ series a panel queries is exported by a worker or by the board', async () => {
    const worker = parsePrometheusText(await new BrandqMetrics().registry.metrics());
    const queue = createBrandQueue(redis.client());
    const board = parsePrometheusText((await createBoardMetrics(redis.client(), queue, async () => ({}))()).body);
    await queue.close();
    const exported = new Set([...worker.types.keys(), ...board.types.keys()]);

    const dashboard = JSON.parse(await readFile(repo('deploy/grafana/dashboards/brandq.json'), 'utf8')) as { uid: string; panels: Panel[] };
    const datasource = await readFile(repo('deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8');
    const uid = /uid:\s*(\S+)/.exec(datasource)?.[1];
    expect(uid).toBeDefined();

    const queried = new Set<string>();
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe(uid);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets ?? []) {
        for (const [name] of t.expr.matchAll(/\bbrandq_[a-z0-9_]+/g)) queried.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    const missing = [...queried].filter((name) => !exported.has(name));
    expect(missing).toEqual([]);
    // The dashboard covers the list.
    for (const name of [
      'brandq_active_concurrency',
      'brandq_next_slot_epoch',
      'brandq_stagger_delays_total',
      'brandq_tpm_window_deferrals_total',
      'brandq_rate_limit_events_total',
      'brandq_jobs_completed_total',
      'brandq_jobs_failed_total',
      'brandq_job_duration_seconds',
      'brandq_provider_call_duration_seconds',
      'brandq_llm_tokens_total',
      'brandq_cost_dollars_total',
      'brandq_budget_remaining_dollars',
      'brandq_queue_jobs',
      'brandq_process_cpu_seconds_total',
    ]) {
      expect(queried.has(name), name).toBe(true);
    }
  });

  it('Prometheus finds the workers by Docker DNS on the metrics port and scrapes the board with basic auth', async () => {
    const prom = await readFile(repo('deploy/prometheus/prometheus.yml'), 'utf8');
    const dashboard = await readFile(repo('deploy/grafana/dashboards/brandq.json'), 'utf8');
    expect(prom).toMatch(/job_name: brandq-workers\s+dns_sd_configs:\s+- names: \["worker"\]\s+type: A\s+port: 9464/);
    expect(prom).toMatch(/job_name: brandq-board[\s\S]*username: "__BOARD_USER__"\s+password_file: \/prometheus\/\.board_password[\s\S]*targets: \["board:3000"\]/);
    for (const [, job] of dashboard.matchAll(/job=\\"([^"\\]+)\\"/g)) expect(prom).toContain(`job_name: ${job}`);
    const compose = await readFile(repo('docker-compose.yml'), 'utf8');
    expect(compose).toContain('METRICS_PORT: "9464"');
    expect(compose).toContain('--maxmemory-policy noeviction');
    expect(compose).toContain('--appendonly yes');
    expect(compose).not.toMatch(/^\s*container_name:/m);
  });
});
