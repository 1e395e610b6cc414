export { REDACTED, URL_PASSWORD_MASK, redactText, isSecretName } from './redact-text.js';
export { redactValue } from './redact-value.js';
export { redactUrl } from './redact-url.js';
export { SECRET_LOG_PATHS } from './log-paths.js';
