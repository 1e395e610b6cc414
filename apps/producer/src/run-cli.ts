import { isBrandqError } from '@brandq/errors';

/** Usage mistakes: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

/**
 * Runs a CLI entry point: known errors become one readable line and an exit code, never a
 * stack trace; anything unexpected keeps its stack for a bug report.
 */
export function runCli(usage: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (error: unknown) => {
      if (error instanceof UsageError) {
        process.stderr.write(`error: ${error.message}\n\n${usage}\n`);
        process.exit(2);
      }
      if (isBrandqError(error)) {
        process.stderr.write(`error: ${error.message}\n`);
        process.exit(1);
      }
      if (error instanceof Error && error.name === 'RedisServerUnavailableError') {
        process.stderr.write(`error: ${error.message}\n`);
        process.exit(1);
      }
      process.stderr.write(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
