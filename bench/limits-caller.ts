/**
 * One worker process of `pnpm bench:limits`: PARALLEL loops, each admitting a call through
 * the limiter VARIANT and then making it against the fake LLM (MODE=saturate), or holding
 * the admission for PROBE_CALL_MS without a call (MODE=probe, limits out of the way: the
 * admission latency itself). Prints one `RESULT {...}` line.
 */
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { installCommandCounter } from './support/command-counter.js';
import { awaitStart } from './support/start-line.js';
import { benchMessages } from './support/workload.js';
import { countChatPromptTokens, createLimiter, createRedis, MemoryLimiterStore, type Permit } from './support/workspace.js';

export type Variant = 'brandq' | 'bottleneck' | 'rlf' | 'inproc';

/** The limits every variant is configured with (the fake enforces rpm and tpm). */
export interface CellLimits {
  windowMs: number;
  rpm: number;
  burst: number;
  /** The provider's token limit; every variant keeps `tpmHeadroom` of it free. */
  tpm: number;
  tpmHeadroom: number;
  /** Fleet-wide calls in flight (brandq, Bottleneck; the original design: per process). */
  maxConcurrency: number;
  maxOutputTokens: number;
}

export interface CallerResult {
  variant: Variant;
  pid: number;
  /** Calls the limiter let through (each made one request). */
  calls: number;
  ok: number;
  limited: number;
  errors: number;
  /** Per call: ms from asking the limiter to being admitted. */
  admitMs: number[];
  /** Redis commands this process sent after the start. */
  commands: number;
  firstError?: string;
}

interface Outcome {
  status: number;
  usedTokens: number;
  headers?: Headers;
  retryAfterMs: number;
}

interface Admission {
  done(outcome: Outcome): Promise<void>;
}

interface Gate {
  acquire(tokens: number, signal: AbortSignal): Promise<Admission>;
  close(): Promise<void>;
}

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`limits-caller: ${name} is required`);
  return value;
};

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const effectiveTpm = (l: CellLimits) => Math.floor(l.tpm * (1 - l.tpmHeadroom));

/**
 * (a) brandq's shared limiter; or (d) the original design: the same rules (bucket, request
 * log, token window, concurrency) in this process's memory only, each process configured
 * with the full limits, without header sync or a fleet-wide cooldown.
 */
function brandqGate(redis: Redis, limits: CellLimits, local: boolean): Gate {
  const providerLimits = {
    rpm: limits.rpm,
    burst: limits.burst,
    tpm: limits.tpm,
    tpmHeadroom: limits.tpmHeadroom,
    maxConcurrency: limits.maxConcurrency,
    windowMs: limits.windowMs,
  };
  const limiter = local
    ? createLimiter({ store: new MemoryLimiterStore(), providers: { llm: providerLimits } })
    : createLimiter({ redis, providers: { llm: providerLimits } });
  return {
    async acquire(tokens, signal) {
      const permit: Permit = await limiter.acquire('llm', { tokens, signal });
      return {
        async done(o) {
          // The original design knew nothing of the provider's headers or of other processes' 429s.
          if (local) return void (await permit.settle(o.status === 200 ? { usedTokens: o.usedTokens } : {}));
          if (o.headers) await limiter.syncFromHeaders('llm', o.headers);
          if (o.status === 429) {
            await limiter.cooldown('llm', { retryAfterMs: o.retryAfterMs });
            await permit.settle();
          } else {
            await permit.settle({ usedTokens: o.usedTokens });
          }
        },
      };
    },
    close: () => limiter.close(),
  };
}

/**
 * (b) Bottleneck in clustering mode: one limiter for requests (reservoir refreshed every
 * window, minTime spacing, maxConcurrent), one for tokens (reservoir of the token limit,
 * job weight = reserved tokens, the unused part given back with incrementReservoir).
 */
async function bottleneckGate(redisUrl: string, limits: CellLimits): Promise<Gate> {
  const { hostname, port } = new URL(redisUrl);
  const connection = new Bottleneck.IORedisConnection({ clientOptions: { host: hostname, port: Number(port) }, Redis });
  const requests = new Bottleneck({
    id: 'bench-requests',
    datastore: 'ioredis',
    connection,
    reservoir: limits.rpm,
    reservoirRefreshAmount: limits.rpm,
    reservoirRefreshInterval: limits.windowMs,
    maxConcurrent: limits.maxConcurrency,
    // Launch spacing of an even pace (off when the probe sets the limits out of the way).
    minTime: limits.windowMs / limits.rpm >= 1 ? Math.ceil(limits.windowMs / limits.rpm) : 0,
  });
  const tokens = new Bottleneck({
    id: 'bench-tokens',
    datastore: 'ioredis',
    connection,
    reservoir: effectiveTpm(limits),
    reservoirRefreshAmount: effectiveTpm(limits),
    reservoirRefreshInterval: limits.windowMs,
  });
  for (const l of [requests, tokens]) l.on('error', (err: Error) => process.stderr.write(`bottleneck error: ${err.message}\n`));
  await Promise.all([requests.ready(), tokens.ready()]);
  let stopped = false;
  return {
    async acquire(reserve, signal) {
      const stop = () => {
        if (stopped) return;
        stopped = true;
        void requests.stop({ dropWaitingJobs: true }).catch(() => undefined);
        void tokens.stop({ dropWaitingJobs: true }).catch(() => undefined);
      };
      signal.addEventListener('abort', stop, { once: true });
      try {
        await tokens.schedule({ weight: reserve }, async () => undefined);
        // The request job runs from admission until the call is done: it holds a maxConcurrent slot.
        const finish = await new Promise<() => void>((admitted, refused) => {
          requests.schedule({ weight: 1 }, () => new Promise<void>((done) => admitted(done))).catch(refused);
        });
        return {
          async done(o) {
            finish();
            if (o.status === 200 && o.usedTokens < reserve) await tokens.incrementReservoir(reserve - o.usedTokens);
          },
        };
      } finally {
        signal.removeEventListener('abort', stop);
      }
    },
    async close() {
      await connection.disconnect(false).catch(() => undefined);
    },
  };
}

/**
 * (c) rate-limiter-flexible: a RateLimiterRedis for requests and one for tokens; a
 * rejection is retried after its msBeforeNext; unused tokens are given back with reward().
 */
function rlfGate(redis: Redis, limits: CellLimits): Gate {
  const duration = limits.windowMs / 1000;
  const requests = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-requests', points: limits.rpm, duration });
  const tokens = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-tokens', points: effectiveTpm(limits), duration });
  const rejection = (err: unknown): RateLimiterRes => {
    if (err instanceof RateLimiterRes) return err;
    throw err;
  };
  return {
    async acquire(reserve, signal) {
      for (;;) {
        signal.throwIfAborted();
        try {
          await requests.consume('llm', 1);
        } catch (err) {
          await sleep(rejection(err).msBeforeNext, signal);
          continue;
        }
        try {
          await tokens.consume('llm', reserve);
        } catch (err) {
          const wait = rejection(err).msBeforeNext;
          await requests.reward('llm', 1);
          await sleep(wait, signal);
          continue;
        }
        return {
          async done(o) {
            if (o.status === 200 && o.usedTokens < reserve) await tokens.reward('llm', reserve - o.usedTokens);
          },
        };
      }
    },
    close: async () => undefined,
  };
}

async function main(): Promise<void> {
  const variant = env('VARIANT') as Variant;
  const mode = env('MODE') as 'saturate' | 'probe';
  const limits = JSON.parse(env('LIMITS')) as CellLimits;
  const redisUrl = env('REDIS_URL');
  const parallel = Number(env('PARALLEL'));
  const target = process.env.TARGET ?? '';
  const probeCallMs = Number(process.env.PROBE_CALL_MS ?? '20');

  const counter = installCommandCounter();
  const redis = createRedis(redisUrl, 'client');
  const gate: Gate =
    variant === 'brandq' || variant === 'inproc'
      ? brandqGate(redis, limits, variant === 'inproc')
      : variant === 'bottleneck'
        ? await bottleneckGate(redisUrl, limits)
        : rlfGate(redis, limits);

  const result: CallerResult = { variant, pid: process.pid, calls: 0, ok: 0, limited: 0, errors: 0, admitMs: [], commands: 0 };
  // A long-running worker has its HTTP connections and code paths warm: open one keep-alive
  // connection per caller (a control route the fake answers without counting) before the start.
  if (target) await Promise.all(Array.from({ length: parallel }, () => fetch(new URL('/__fake/warmup', target)).then((r) => r.arrayBuffer())));
  const start = await awaitStart(redisUrl);
  counter.reset();
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error('deadline')), Math.max(0, start.deadline - Date.now()));
  let seq = 0;

  const loop = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      const n = seq++;
      const messages = benchMessages(process.pid, n);
      const reserve = countChatPromptTokens(messages) + limits.maxOutputTokens;
      const asked = performance.now();
      let admission: Admission;
      try {
        admission = await gate.acquire(reserve, stop.signal);
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
      result.admitMs.push(performance.now() - asked);
      result.calls += 1;
      if (mode === 'probe') {
        await sleep(probeCallMs);
        await admission.done({ status: 200, usedTokens: reserve, retryAfterMs: 0 });
        result.ok += 1;
        continue;
      }
      let outcome: Outcome;
      try {
        const res = await fetch(`${target}/chat/completions`, {
          method: 'POST',
          headers: { authorization: 'Bearer sk-bench', 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages, max_tokens: limits.maxOutputTokens }),
        });
        const body = (await res.json()) as { usage?: { total_tokens?: number } };
        outcome = {
          status: res.status,
          usedTokens: body.usage?.total_tokens ?? 0,
          headers: res.headers,
          retryAfterMs: Number(res.headers.get('retry-after-ms') ?? Number(res.headers.get('retry-after') ?? '1') * 1000),
        };
      } catch (err) {
        result.errors += 1;
        result.firstError ??= String(err);
        outcome = { status: 0, usedTokens: 0, retryAfterMs: 0 };
      }
      await admission.done(outcome);
      if (outcome.status === 200) result.ok += 1;
      else if (outcome.status === 429) {
        result.limited += 1;
        // What a caller of a plain limiter does with a 429: wait as told, then try again.
        // (brandq instead holds the whole fleet through its shared cooldown.)
        if (variant !== 'brandq') await sleep(outcome.retryAfterMs, stop.signal).catch(() => undefined);
      } else {
        result.errors += 1;
        result.firstError ??= `HTTP ${outcome.status}`;
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: parallel }, loop));
  } catch (err) {
    result.errors += 1;
    result.firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    stop.abort(new Error('failed'));
  }
  clearTimeout(timer);
  result.commands = counter.count;
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  await gate.close().catch(() => undefined);
  redis.disconnect();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`limits-caller failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
