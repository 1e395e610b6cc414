/**
 * Paths pino censors: the well-known places a credential sits. A second line only: the
 * logger's log-method hook masks every field named like a secret at any depth (redactValue),
 * and so does its `child` for bindings, before these apply. No path has a wildcard in the middle
 * (`*.*.apiKey`): pino's redaction walks such a path through every getter of a Buffer or a URL
 * in the record and throws, so the log call itself would fail.
 */
export const SECRET_LOG_PATHS: readonly string[] = [
  'apiKey',
  '*.apiKey',
  'password',
  '*.password',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["x-api-key"]',
  'OPENAI_API_KEY',
  'TAVILY_API_KEY',
  'GOOGLE_SHEETS_ACCESS_TOKEN',
  'BOARD_PASSWORD',
  '*.OPENAI_API_KEY',
  '*.TAVILY_API_KEY',
  '*.GOOGLE_SHEETS_ACCESS_TOKEN',
  '*.BOARD_PASSWORD',
];
