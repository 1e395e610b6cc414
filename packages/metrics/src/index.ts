export { BrandqMetrics, METRIC_PROVIDERS } from './brandq-metrics.js';
export type { MetricSources } from './brandq-metrics.js';
export { startMetricsServer } from './metrics-server.js';
export { pipelineMetrics, cacheMetrics } from './pipeline-metrics.js';
export { parsePrometheusText, scrapeMetrics } from './prometheus-text.js';
export type { PromSample, PromScrape } from './prometheus-text.js';
