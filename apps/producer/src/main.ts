import { CommanderError } from 'commander';
import { isBrandqError } from '@brandq/errors';
import { RunControlRefused } from '@brandq/run-service';
import { EXIT } from './exit-codes.js';
import { buildProgram, type ActionResult } from './program.js';
import { UsageError } from './usage-error.js';

/** The exit code for what an action threw: one readable line, never a stack, except for a bug. */
function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed the message (or the help, or the version).
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n(add --help for usage)\n`);
    return EXIT.usage;
  }
  // A run control refused (no such run, a run that ended): nothing changed, and it says why.
  if (isBrandqError(error) || error instanceof RunControlRefused || (error instanceof Error && error.name === 'RedisServerUnavailableError')) {
    process.stderr.write(`error: ${error.message}\n`);
    return EXIT.error;
  }
  process.stderr.write(`unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT.error;
}

/** Runs `brandq <args>` and exits with the command's code; a worker or board keeps the process until it stops itself. */
export function runBrandq(args: string[]): void {
  let result: ActionResult = EXIT.ok;
  buildProgram((r) => {
    result = r;
  })
    .parseAsync(args, { from: 'user' })
    .then(
      () => {
        if (result !== 'running') process.exit(result);
      },
      (error: unknown) => process.exit(exitCodeFor(error)),
    );
}
