export { createLogger, maskSecrets, REDACTED_PATHS } from './create-logger.js';
export type { Logger, CreateLoggerOptions } from './create-logger.js';
