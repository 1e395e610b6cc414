/**
 * Paths pino censors before anything else sees a log record: the well-known places a
 * credential sits. The logger's formatter then masks every field named like a secret at any
 * depth and every credential-looking string (redactValue); these paths are the cheap first net.
 */
export const SECRET_LOG_PATHS: readonly string[] = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
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
