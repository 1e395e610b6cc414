/**
 * `pnpm bench:limits`: the same workload, side by side in one run, through
 *   brandq       brandq's shared Redis limiter (@brandq/limiter)
 *   bottleneck   Bottleneck in Redis clustering mode
 *   rlf          rate-limiter-flexible's RateLimiterRedis, retrying after msBeforeNext
 *   inproc       an in-process limiter per worker process holding the full limit (the
 *                original single-instance design; brandq's rules in memory)
 * with 1, 4 and 8 worker processes against one strict fake LLM (sliding windows on its
 * own clock, 429 on any excess). Then the admission latency of each with limits out of the
 * way. Prints Markdown tables and writes bench/results/limits.json.
 *
 * Options (env): BENCH_WINDOW_MS (default 8000), BENCH_PROCESSES (default "1,4,8"),
 * BENCH_VARIANTS (default all), BENCH_WINDOWS (measured windows per cell, default 2).
 */
import { ALL_VARIANTS, cellLimits, LABEL, LATENCY, PARALLEL, PROBE_CALL_MS, PROBE_MS, PROBE_PARALLEL, runCell, type Cell, type Variant } from './support/limit-cells.js';
import { redisVersion } from './support/redis-info.js';
import { fixed, machine, note, out, pct, table, writeResult } from './support/report.js';
import { createRedis, startRedisServer } from './support/workspace.js';

const windowMs = Number(process.env.BENCH_WINDOW_MS ?? '8000');
const processCounts = (process.env.BENCH_PROCESSES ?? '1,4,8').split(',').map(Number);
const variants = (process.env.BENCH_VARIANTS?.split(',') as Variant[] | undefined) ?? ALL_VARIANTS;
const measuredWindows = Number(process.env.BENCH_WINDOWS ?? '2');
const PROBE_PROCESSES = 8;

async function main(): Promise<void> {
  const started = Date.now();
  const redisServer = await startRedisServer();
  const admin = createRedis(redisServer.url, 'client');
  const limits = cellLimits(windowMs);
  const info = machine();
  info.redis = await redisVersion(admin);
  note(`bench:limits on ${String(info.cpus)} cpus (${String(info.cpuModel)}), window ${windowMs} ms, ${limits.rpm} requests and ${limits.tpm} tokens per window`);
  const cells: Cell[] = [];
  try {
    for (const processes of processCounts) {
      for (const variant of variants) {
        note(`  ${variant} x ${processes} processes ...`);
        cells.push(await runCell(admin, redisServer.url, limits, variant, processes, 'saturate', measuredWindows));
      }
    }
    for (const variant of variants) {
      note(`  ${variant} admission latency, ${PROBE_PROCESSES} processes ...`);
      cells.push(await runCell(admin, redisServer.url, limits, variant, PROBE_PROCESSES, 'probe'));
    }
  } finally {
    admin.disconnect();
    await redisServer.stop();
  }

  const saturated = cells.filter((c) => c.mode === 'saturate');
  const probes = cells.filter((c) => c.mode === 'probe');
  const effTpm = Math.floor(limits.tpm * (1 - limits.tpmHeadroom));
  out(`## pnpm bench:limits`);
  out();
  out(
    `Strict fake LLM: ${limits.rpm} requests and ${limits.tpm} tokens per ${windowMs / 1000} s sliding window, latency ${LATENCY.min}-${LATENCY.max} ms. ` +
      `Every limiter gets ${limits.rpm} requests (burst ${limits.burst}) and ${effTpm} tokens (tpm less ${limits.tpmHeadroom * 100}% headroom) per window, ` +
      `${limits.maxConcurrency} in flight where it has a concurrency cap; ${PARALLEL} callers per process; each call reserves prompt + ${limits.maxOutputTokens} max output tokens. ` +
      `Achieved = accepted requests per window after a ${windowMs / 2000} s warm-up, over ${measuredWindows} windows. Requests are the binding limit.`,
  );
  out();
  out(
    table(
      ['procs', 'limiter', 'req/window', 'of limit', 'tokens/window', 'of limit', '429s', 'worst window req (sent)', 'worst window tokens', 'wait p50 / p99 ms', 'Redis cmds/call (client / server)', 'note'],
      saturated.map((c) => [
        String(c.processes),
        LABEL[c.variant],
        fixed(c.requestsPerWindow),
        pct(c.requestShare),
        fixed(c.tokensPerWindow, 0),
        pct(c.tokenShare),
        String(c.limited),
        `${fixed(c.worstWindowRequests, 0)} / ${limits.rpm}`,
        `${fixed(c.worstWindowTokens, 0)} / ${limits.tpm}`,
        `${fixed(c.admitP50Ms, 0)} / ${fixed(c.admitP99Ms, 0)}`,
        `${fixed(c.clientCommandsPerCall)} / ${fixed(c.serverCommandsPerCall)}`,
        c.error ?? '',
      ]),
    ),
  );
  out();
  out(
    `Admission latency with limits out of the way: ${PROBE_PROCESSES} processes x ${PROBE_PARALLEL} callers, each holding its admission ${PROBE_CALL_MS} ms, for ${PROBE_MS / 1000} s ` +
      `(client = commands sent per admitted call, server = commands Redis executed per call including those inside Lua scripts).`,
  );
  out();
  out(
    table(
      ['limiter', 'admissions/s', 'admit p50 ms', 'admit p99 ms', 'Redis cmds/call (client / server)', 'note'],
      probes.map((c) => [LABEL[c.variant], fixed(c.admissionsPerSecond, 0), fixed(c.admitP50Ms, 2), fixed(c.admitP99Ms, 2), `${fixed(c.clientCommandsPerCall)} / ${fixed(c.serverCommandsPerCall)}`, c.error ?? '']),
    ),
  );
  out();
  const at8 = saturated.find((c) => c.variant === 'brandq' && c.processes === Math.max(...processCounts));
  const probe = probes.find((c) => c.variant === 'brandq');
  if (at8) {
    // The binding limit is whichever rule the limiter may fill: requests, or the tokens it may
    // admit (the provider's TPM less the headroom, counted at admission as the provider counts).
    const tokenShareOfAdmissible = at8.tokensPerWindow / effTpm;
    const [binding, share] = tokenShareOfAdmissible > at8.requestShare ? ['token (tpm less headroom)', tokenShareOfAdmissible] : ['request', at8.requestShare];
    const met = share >= 0.97 && at8.limited === 0;
    out(
      `Target (>= 97% of the binding limit, zero 429s at ${at8.processes} processes): ${met ? 'met' : 'MISSED'} - brandq reached ${pct(share)} of the ${binding} limit with ${at8.limited} 429s` +
        (share < 0.97 ? ` (${fixed((0.97 - share) * 100)} points short)` : '') +
        '.',
    );
  }
  if (probe) out(`Target (admission p50 < 1 ms on loopback): ${probe.admitP50Ms < 1 ? 'met' : 'MISSED'} - p50 ${fixed(probe.admitP50Ms, 2)} ms, p99 ${fixed(probe.admitP99Ms, 2)} ms.`);
  const path = writeResult('limits', { command: 'pnpm bench:limits', machine: info, windowMs, limits, effectiveTpm: effTpm, parallel: PARALLEL, latencyMs: LATENCY, measuredWindows, cells, totalSeconds: (Date.now() - started) / 1000 });
  note(`wrote ${path} (${Math.round((Date.now() - started) / 1000)} s)`);
}

main().catch((err: unknown) => {
  note(`bench:limits failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
