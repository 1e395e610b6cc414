import type { Redis } from 'ioredis';
import type { Config } from '@brandq/config';
import { CostLedger, llmLabelFor, microsToUsd, type LedgerSnapshot } from '@brandq/ledger';
import { runCostSummary, type RunReport } from '@brandq/run-service';
import { RunStore, type RunMeta } from '@brandq/runs';
import { requireRun } from './with-redis.js';

const BAR_WIDTH = 28;

function money(micros: number): string {
  return `$${microsToUsd(micros).toFixed(2)}`;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '--:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return `${h > 0 ? `${h}:` : ''}${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

/** One progress line from the fleet's shared state: the same figures on every machine. */
export function renderProgress(run: RunMeta, ledger: LedgerSnapshot, nowMs: number): string {
  const done = run.succeeded + run.failed;
  const ratio = run.total === 0 ? 1 : done / run.total;
  const filled = Math.round(ratio * BAR_WIDTH);
  const elapsedMs = (run.finishedAt ?? nowMs) - run.createdAt;
  const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
  const etaMs = rate > 0 ? ((run.total - done) / rate) * 1000 : Number.NaN;
  const budget = ledger.budgetMicros > 0 ? `/${money(ledger.budgetMicros)}` : '';
  return (
    `${String(Math.floor(ratio * 100)).padStart(3)}%|${'█'.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}| ${done}/${run.total} ` +
    `[${duration(elapsedMs)}<${duration(etaMs)}, ${rate.toFixed(2)} brands/s] ` +
    `Success: ${run.succeeded} | Failed: ${run.failed} | ${money(ledger.spentMicros)}${budget}`
  );
}

/**
 * What a run that still has brands to do asks of the fleet and what it got over the last
 * minute: `weight 2, at most 60 calls/min; 33% of the fleet's calls, ETA 04:10 at that share`.
 * Undefined for a run that ended.
 */
export function renderFairShare(run: RunMeta, share: RunReport['fairShare']): string | undefined {
  if (run.status === 'completed' || run.status === 'cancelled') return undefined;
  const asked = `weight ${share.weight}${share.maxRpm === null ? '' : `, at most ${share.maxRpm} calls/min`}`;
  const got = `${Math.round(share.measuredShare * 100)}% of the fleet's calls over the last minute`;
  if (run.status !== 'running') return `${asked}; ${got}`;
  const eta = share.etaSeconds === null ? 'no ETA yet (no brand finished in the last minute)' : `ETA ${duration(share.etaSeconds * 1000)} at that share`;
  return `${asked}; ${got}, ${eta}`;
}

/** The line that says why a run is not running, with the figures. */
export function statusLine(run: RunMeta, ledger: LedgerSnapshot): string | undefined {
  if (run.status === 'budget_exhausted') {
    return `[BUDGET] Budget limit reached: ${money(ledger.spentMicros + ledger.reservedMicros)} / ${money(ledger.budgetMicros)}`;
  }
  if (run.status === 'paused') return `[PAUSED] ${run.statusReason ?? 'run paused'}`;
  if (run.status === 'cancelled') return '[CANCELLED] run cancelled';
  return undefined;
}

export interface Followed {
  /** The run as it stopped running, or as it was when Ctrl+C detached. */
  run: RunMeta;
  /** Ctrl+C ended the following before the run stopped. */
  detached: boolean;
}

export interface FollowOptions {
  out?: NodeJS.WriteStream;
  /** What to print when Ctrl+C (or `signal`) ends the following: what happens to the workers is the caller's. */
  detachedNote?: string;
  /** Ends the following like Ctrl+C does. */
  signal?: AbortSignal;
}

/**
 * Shows a run's progress until it stops running. Ctrl+C only detaches. On a TTY the line
 * redraws in place; otherwise a line is printed every few seconds.
 */
export async function followRun(redis: Redis, runId: string, config: Config, options: FollowOptions = {}): Promise<Followed> {
  const out = options.out ?? process.stdout;
  const detachedNote = options.detachedNote ?? `detached; workers continue. Watch again with: pnpm status --run ${runId} --follow`;
  const runs = new RunStore(redis);
  const ledger = new CostLedger(redis);
  const tty = out.isTTY === true;
  let detached = false;
  const onSigint = () => {
    detached = true;
  };
  process.once('SIGINT', onSigint);
  let lastPrinted = 0;
  let run: RunMeta | undefined;
  try {
    for (;;) {
      if (options.signal?.aborted) detached = true;
      run = await requireRun(runs, runId);
      const snapshot = await ledger.snapshot(runId);
      const now = Date.now();
      const line = renderProgress(run, snapshot, now);
      const finished = run.status !== 'running';
      if (tty) out.write(`\r${line}\x1b[K`);
      else if (finished || detached || now - lastPrinted >= 5000) {
        out.write(`${line}\n`);
        lastPrinted = now;
      }
      if (finished || detached) {
        if (tty) out.write('\n');
        const status = statusLine(run, snapshot);
        if (status) out.write(`${status}\n`);
        if (detached) out.write(`${detachedNote}\n`);
        out.write(`${runCostSummary({ ledger: snapshot, recipe: await runs.getRecipe(runId), run }, llmLabelFor(config.OPENAI_BASE_URL), { table: config.LLM_PRICING, defaultModel: config.OPENAI_MODEL })}\n`);
        return { run, detached };
      }
      await new Promise((r) => setTimeout(r, tty ? 250 : 500));
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
