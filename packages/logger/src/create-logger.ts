import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a log record: API keys, auth headers and
 * anything else that would hand over an account if a log leaked.
 */
export const REDACTED_PATHS = [
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

/** Values that look like provider secrets are masked even where no path names them. */
const SECRET_PATTERN = /\b(sk-[A-Za-z0-9_-]{8,}|sk-or-[A-Za-z0-9_-]{8,}|tvly-[A-Za-z0-9_-]{6,}|ya29\.[A-Za-z0-9_.-]{10,}|Bearer\s+[A-Za-z0-9._~+/=-]{8,})/g;

export function maskSecrets(text: string): string {
  return text.replace(SECRET_PATTERN, (m) => (m.startsWith('Bearer') ? 'Bearer [REDACTED]' : `${m.slice(0, 4)}[REDACTED]`));
}

export interface CreateLoggerOptions {
  name: string;
  level?: string;
  /** `auto` is pretty on a TTY and JSON otherwise. */
  format?: 'auto' | 'json' | 'pretty';
  destination?: DestinationStream;
}

export function createLogger(options: CreateLoggerOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format !== 'json' && process.stdout.isTTY === true);
  const base: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    formatters: {
      log(object) {
        // Messages and error texts can carry a key an SDK echoed back; mask those too.
        return JSON.parse(maskSecrets(JSON.stringify(object))) as Record<string, unknown>;
      },
    },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a)) as Parameters<typeof method>,
        );
      },
    },
  };
  if (options.destination) return pino(base, options.destination);
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return pino(base);
}
