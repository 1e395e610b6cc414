import { z } from 'zod';

/** Env booleans: `true/false/1/0/yes/no`, anything else is an error naming the variable. */
const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
      return z.NEVER;
    });

/** Env numbers with bounds; an empty string means "use the default". */
const num = (fallback: number, opts: { min?: number; max?: number; int?: boolean } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      const problems: string[] = [];
      if (!Number.isFinite(n)) problems.push(`expected a number, got "${v}"`);
      else {
        if (opts.int && !Number.isInteger(n)) problems.push(`expected an integer, got "${v}"`);
        if (opts.min !== undefined && n < opts.min) problems.push(`must be >= ${opts.min}, got ${v}`);
        if (opts.max !== undefined && n > opts.max) problems.push(`must be <= ${opts.max}, got ${v}`);
      }
      if (problems.length > 0) {
        ctx.addIssue({ code: 'custom', message: problems.join('; ') });
        return z.NEVER;
      }
      return n;
    });

const str = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? fallback : v.trim()));

const optionalStr = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const url = (fallback: string) =>
  str(fallback).pipe(z.url({ message: 'expected a URL such as http://127.0.0.1:8080' }));

/**
 * `REDIS_URL`: a single node (`redis://[:password@]host:port[/db]`, `rediss://` for TLS), or
 * a Redis Cluster, `redis+cluster://[:password@]host:port[,host:port...]` (seed nodes; the
 * client finds the rest).
 */
const redisUrl = str('redis://127.0.0.1:6379').superRefine((v, ctx) => {
  const cluster = /^rediss?\+cluster:\/\/(?:[^@/]*@)?([^/?#]+)\/?$/i.exec(v);
  const nodesOk = cluster?.[1]?.split(',').every((n) => /^(\[[^\]]+\]|[^:,]+):\d{1,5}$/.test(n.trim())) === true;
  if (cluster ? nodesOk : z.url().safeParse(v).success) return;
  ctx.addIssue({ code: 'custom', message: 'expected a URL such as redis://127.0.0.1:6379, or redis+cluster://host:port,host:port for a Redis Cluster' });
});

const optionalUrl = optionalStr.pipe(z.url({ message: 'expected a URL such as http://127.0.0.1:8080' }).optional());

const tokenPrice = z.object({
  inputPerMillion: z.number().nonnegative(),
  outputPerMillion: z.number().nonnegative(),
});

/** A model's standard price; `flex` and `batch` where they are not half of it (OpenAI's rule). */
const pricingEntry = tokenPrice.extend({
  tiers: z.object({ flex: tokenPrice.optional(), batch: tokenPrice.optional() }).optional(),
});

/** `LLM_PRICING` is JSON: model -> USD per million input/output tokens. */
const pricing = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return DEFAULT_PRICING;
    try {
      const parsed = z.record(z.string(), pricingEntry).parse(JSON.parse(v));
      return { ...DEFAULT_PRICING, ...parsed };
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `expected JSON like {"gpt-4o-mini":{"inputPerMillion":0.15,"outputPerMillion":0.6}} (${(err as Error).message.split('\n')[0]})`,
      });
      return z.NEVER;
    }
  });

/** OpenAI's models with Flex processing (its pricing page); the rest refuse `service_tier: "flex"`. */
export const DEFAULT_FLEX_MODELS: readonly string[] = ['o3', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'gpt-5.1'];

export const DEFAULT_PRICING: Record<string, z.infer<typeof pricingEntry>> = {
  'gpt-4o-mini': { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  'gpt-4.1-mini': { inputPerMillion: 0.4, outputPerMillion: 1.6 },
  'gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 },
  'google/gemini-flash-1.5': { inputPerMillion: 0.075, outputPerMillion: 0.3 },
};

/**
 * Every environment variable brandq reads, with its default. `.env.example` documents the
 * same list; a test keeps the two in step.
 */
export const envSchema = z.object({
  REDIS_URL: redisUrl,
  REDIS_CONNECT_TIMEOUT_SECONDS: num(30, { min: 0, max: 3600 }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),

  OPENAI_API_KEY: optionalStr,
  OPENAI_BASE_URL: url('https://api.openai.com/v1'),
  OPENAI_MODEL: str('gpt-4o-mini'),
  OPENAI_MAX_OUTPUT_TOKENS: num(600, { min: 16, max: 100_000, int: true }),
  OPENAI_TIMEOUT_SECONDS: num(60, { min: 1, max: 600 }),
  OPENROUTER_REFERER: optionalStr,
  OPENROUTER_TITLE: optionalStr,

  TAVILY_API_KEY: optionalStr,
  TAVILY_BASE_URL: url('https://api.tavily.com'),
  TAVILY_SEARCH_DEPTH: z.enum(['basic', 'advanced', 'fast', 'ultra-fast']).default('basic'),
  TAVILY_MAX_RESULTS: num(5, { min: 1, max: 20, int: true }),
  TAVILY_TIMEOUT_SECONDS: num(30, { min: 1, max: 600 }),

  GOOGLE_APPLICATION_CREDENTIALS: optionalStr,
  GOOGLE_SHEETS_ACCESS_TOKEN: optionalStr,
  GOOGLE_SHEETS_ROOT_URL: optionalUrl,

  WORKER_CONCURRENCY: num(4, { min: 1, max: 1000, int: true }),
  JOB_ATTEMPTS: num(4, { min: 1, max: 50, int: true }),
  JOB_BACKOFF_BASE_SECONDS: num(2, { min: 0, max: 3600 }),
  JOB_KEEP_COMPLETED: num(1000, { min: 0, int: true }),
  JOB_KEEP_FAILED: num(10_000, { min: 0, int: true }),
  SHUTDOWN_GRACE_SECONDS: num(25, { min: 0, max: 3600 }),
  JOB_LOCK_SECONDS: num(30, { min: 1, max: 3600 }),

  OPENAI_MAX_CONCURRENCY: num(3, { min: 1, max: 10_000, int: true }),
  FINALIZE_LOWERS_CONCURRENCY: bool(true),
  OPENAI_STAGGER_SECONDS: num(0, { min: 0, max: 3600 }),
  OPENAI_TPM_LIMIT: num(30_000, { min: 1, int: true }),
  OPENAI_TPM_HEADROOM: num(0.15, { min: 0, max: 0.95 }),
  OPENAI_EST_TOKENS_PER_RUN: num(7000, { min: 1, int: true }),
  OPENAI_RPM_LIMIT: num(60, { min: 1 }),
  OPENAI_RPM_BURST: num(10, { min: 1, int: true }),
  /** How OpenAI counts a call against TPM: 'admission' (prompt estimate + max output, failed calls too) or 'usage'. */
  OPENAI_TOKEN_COUNTING: z.enum(['admission', 'usage']).default('admission'),
  OPENAI_RETRY_MAX_ATTEMPTS: num(5, { min: 1, max: 50, int: true }),
  OPENAI_BACKOFF_BASE_SECONDS: num(2, { min: 0, max: 3600 }),
  TAVILY_RPM_LIMIT: num(100, { min: 1 }),
  TAVILY_RPM_BURST: num(20, { min: 1, int: true }),
  TAVILY_MAX_CONCURRENCY: num(10, { min: 1, max: 10_000, int: true }),
  SHEETS_RPM_LIMIT: num(60, { min: 1 }),
  SHEETS_RPM_BURST: num(10, { min: 1, int: true }),
  SHEETS_FLUSH_ROWS: num(50, { min: 1, max: 10_000, int: true }),
  SHEETS_FLUSH_SECONDS: num(5, { min: 0.1, max: 3600 }),
  LIMITER_LEASE_SECONDS: num(30, { min: 1, max: 3600 }),
  /** Slice over which providers also enforce their per-minute limits; every provider is paced to it (0 = off). */
  LIMITER_PACE_SLICE_SECONDS: num(0.5, { min: 0, max: 60 }),
  STAGGER_JITTER_CAP_SECONDS: num(3, { min: 0, max: 60 }),

  TAVILY_COST_PER_CREDIT: num(0.008, { min: 0 }),
  LLM_PRICING: pricing,
  LLM_RESERVE_FACTOR: num(1.2, { min: 1, max: 10 }),
  BUDGET_USD: num(0, { min: 0 }),
  /** A Flex request's timeout: Flex answers more slowly; OpenAI suggests 15 minutes. */
  FLEX_TIMEOUT_SECONDS: num(900, { min: 1, max: 86_400 }),
  /** Default for a flex run's `--flex-fallback-after`: seconds a brand's call keeps meeting "resource unavailable" before it goes at the standard tier (0 = never). */
  FLEX_FALLBACK_AFTER_SECONDS: num(0, { min: 0, max: 30 * 86_400 }),
  /** Models OpenAI offers Flex for, comma-separated; a flex run of any other model is refused. */
  LLM_FLEX_MODELS: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? DEFAULT_FLEX_MODELS : v.split(',').map((m) => m.trim()).filter((m) => m !== ''))),
  /** A batch file goes out when it holds this many requests (OpenAI's limit per file: 50,000)... */
  BATCH_MAX_REQUESTS: num(50_000, { min: 1, max: 50_000, int: true }),
  /** ...or this many bytes (OpenAI's limit per file: 200 MB)... */
  BATCH_MAX_BYTES: num(200 * 1024 * 1024, { min: 1024, max: 200 * 1024 * 1024, int: true }),
  /** ...or when its oldest request has waited this long. */
  BATCH_GATHER_SECONDS: num(30, { min: 0, max: 86_400 }),
  /** How often the batch coordinator asks the provider about the batches it submitted. */
  BATCH_POLL_SECONDS: num(30, { min: 0.1, max: 3600 }),
  /** The batch coordinator's lease: a dead coordinator is replaced after this long. */
  BATCH_LEASE_SECONDS: num(30, { min: 1, max: 3600 }),
  /** The provider's batch queue limit: tokens (prompt + output cap) per model in batches not yet finished. */
  BATCH_QUEUE_TOKENS: num(2_000_000, { min: 1 }),
  /** Batches a request may go through (failed or expired lines are sent again) before its brand fails. */
  BATCH_REQUEST_ATTEMPTS: num(3, { min: 1, max: 20, int: true }),
  CACHE_TTL_HOURS: num(168, { min: 0, max: 24 * 365 }),
  /** Days an ended run (completed, cancelled) is kept in Redis before its keys expire (0 = forever). */
  RUN_RETENTION_DAYS: num(30, { min: 0, max: 3650 }),

  METRICS_PORT: num(0, { min: 0, max: 65535, int: true }),
  /** Interface a worker's /metrics binds: loopback unless a scraper elsewhere needs it (compose: 0.0.0.0). */
  METRICS_HOST: str('127.0.0.1'),

  BOARD_HOST: str('127.0.0.1'),
  BOARD_PORT: num(3000, { min: 0, max: 65535, int: true }),
  BOARD_USER: optionalStr,
  BOARD_PASSWORD: optionalStr,
  BOARD_READ_ONLY: bool(false),
  /**
   * Extra `Host` values the board answers to, comma-separated (`board.example.com,board:3000`),
   * beyond its bound address, `localhost` and `127.0.0.1` with its port: anything else is a
   * DNS-rebinding attempt and gets 421.
   */
  BOARD_ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')),
});

export type Env = z.infer<typeof envSchema>;
