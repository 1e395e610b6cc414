/**
 * The worker process of `pnpm bench`: apps/worker/src/main.ts as shipped (same argv and
 * env), loaded after bench-only adjustments made through the limiter's exported classes:
 *
 *   BENCH_WINDOW_MS=<ms>   the limiter's "minute" is this long (the fakes use the same
 *                          window), so a saturation cell spans whole windows in seconds.
 *   BENCH_LOCAL_LIMITER=1  the original single-instance design: this process limits only
 *                          itself, in memory, with the full configured limits, and ignores
 *                          the providers' rate-limit headers (its cooldowns stay local).
 *
 * It also counts the Redis commands the process sends and prints `BENCH_COMMANDS <n>` at
 * exit, and with BENCH_CPU_PROFILE=<dir> writes a CPU profile there.
 */
import { writeFileSync, writeSync } from 'node:fs';
import { Session } from 'node:inspector';
import { commandLine, installCommandCounter } from './support/command-counter.js';
import { Limiter, MemoryLimiterStore, RedisLimiterStore } from '../packages/limiter/src/index.js';
import type { ResolvedLimits } from '../packages/limiter/src/index.js';

const counter = installCommandCounter();
process.on('exit', () => writeSync(2, commandLine(counter)));

// BENCH_CPU_PROFILE=<dir>: write a .cpuprofile of this worker at exit (--cpu-prof is refused in NODE_OPTIONS).
const profileDir = process.env.BENCH_CPU_PROFILE;
if (profileDir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${profileDir}/worker-${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}

const windowMs = Number(process.env.BENCH_WINDOW_MS ?? '0');
if (windowMs > 0) {
  const limitsOf = Limiter.prototype.limitsOf;
  const shortened = new WeakMap<ResolvedLimits, ResolvedLimits>();
  Limiter.prototype.limitsOf = function (this: Limiter, provider: string): ResolvedLimits {
    const limits = limitsOf.call(this, provider);
    let short = shortened.get(limits);
    if (!short) {
      short = { ...limits, windowMs };
      shortened.set(limits, short);
    }
    return short;
  };
}

if (process.env.BENCH_LOCAL_LIMITER === '1') {
  const local = new MemoryLimiterStore();
  const store = RedisLimiterStore.prototype;
  store.acquire = local.acquire.bind(local);
  store.settle = local.settle.bind(local);
  store.release = local.release.bind(local);
  store.renew = local.renew.bind(local);
  store.cooldown = local.cooldown.bind(local);
  store.stats = local.stats.bind(local);
  store.syncHeaders = async () => undefined;
}

await import('../apps/worker/src/main.js');
