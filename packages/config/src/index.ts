export { loadConfig, readEnv } from './load-config.js';
export type { Config } from './load-config.js';
export { envSchema, DEFAULT_PRICING } from './schema.js';
export type { Env } from './schema.js';
