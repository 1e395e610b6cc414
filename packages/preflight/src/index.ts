export { estimateRun } from './estimate-run.js';
export type { RunEstimate, PreflightBrand, BindingLimit, EstimateDeps } from './estimate-run.js';
export { formatEstimate } from './format-estimate.js';
