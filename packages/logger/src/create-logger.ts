import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { REDACTED, SECRET_LOG_PATHS, redactText, redactValue } from '@brandq/redact';

export type { Logger } from 'pino';

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
    redact: { paths: [...SECRET_LOG_PATHS], censor: REDACTED },
    formatters: {
      log(object) {
        // Fields named like secrets at any depth, and keys an SDK echoed back into messages,
        // URLs with passwords and PEM blocks inside any string (errors keep message and stack).
        return redactValue(object) as Record<string, unknown>;
      },
    },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as Parameters<typeof method>,
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
