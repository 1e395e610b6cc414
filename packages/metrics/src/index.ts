export { BrandqMetrics } from './brandq-metrics.js';
export type { MetricSources } from './brandq-metrics.js';
export { startMetricsServer } from './metrics-server.js';
export { pipelineMetrics } from './pipeline-metrics.js';
