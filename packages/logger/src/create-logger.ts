import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { REDACTED, SECRET_LOG_PATHS, redactValue } from '@brandq/redact';

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
    hooks: {
      logMethod(args, method) {
        // Every argument, the record first: fields named like secrets at any depth, keys an SDK
        // echoed back into messages, URLs with passwords and PEM blocks inside any string
        // (errors keep class, message and stack). Done here and not in a formatter: pino takes
        // the message of `log.error(err)` and `log.error({ err })` from the error before any
        // formatter runs.
        method.apply(this, args.map((a) => redactValue(a)) as Parameters<typeof method>);
      },
    },
  };
  const logger = options.destination
    ? pino(base, options.destination)
    : pretty
      ? pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } })
      : pino(base);
  return redactingChildBindings(logger);
}

/**
 * A child's bindings are serialized once, when it is made, and pass through neither the log
 * method hook nor (pino resets it for children) a bindings formatter: they are redacted here.
 * Children inherit from their parent, so every generation gets this `child`.
 */
function redactingChildBindings(logger: Logger): Logger {
  const pinoChild = logger.child;
  logger.child = function child(this: Logger, bindings, childOptions) {
    return pinoChild.call(this, redactValue(bindings) as typeof bindings, childOptions);
  } as typeof logger.child;
  return logger;
}
