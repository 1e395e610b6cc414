import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { ConfigError } from '@brandq/errors';
import { REDACTED, isSecretName, redactText } from '@brandq/redact';
import { envSchema, type Env } from './schema.js';

export type Config = Readonly<Env>;

/**
 * Reads the `.env` file (when present) under the real environment: variables already set
 * in the environment win, as users expect from dotenv.
 */
export function readEnv(env: NodeJS.ProcessEnv = process.env, envFile = '.env'): Record<string, string | undefined> {
  if (!existsSync(envFile)) return { ...env };
  const fromFile = parseEnv(readFileSync(envFile, 'utf8')) as Record<string, string>;
  return { ...fromFile, ...env };
}

/**
 * Validates the environment once at startup. Every problem is reported at once, each
 * line naming the variable, so a user fixes their `.env` in one pass.
 */
export function loadConfig(env: Record<string, string | undefined> = readEnv()): Config {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return Object.freeze(parsed.data);
  const lines = parsed.error.issues.map((issue) => {
    const variable = issue.path.join('.') || '(environment)';
    const given = env[variable];
    // A secret variable's value is never shown; every line goes through the redactor, since
    // messages quote values and a URL's password (REDIS_URL=redis://:secret@host) is a secret.
    const secret = isSecretName(variable);
    const message = secret && given?.trim() ? issue.message.split(given.trim()).join(REDACTED) : issue.message;
    // The schema's own messages already quote what they were given ("expected a number, got \"abc\""): say it once.
    const quoted = given !== undefined && / got /.test(issue.message);
    const shown = given === undefined || quoted ? '' : ` (got "${secret ? REDACTED : given}")`;
    return redactText(`  ${variable}: ${message}${shown}`);
  });
  throw new ConfigError(`Invalid configuration:\n${[...new Set(lines)].join('\n')}`, {
    details: { variables: parsed.error.issues.map((i) => i.path.join('.')) },
  });
}
