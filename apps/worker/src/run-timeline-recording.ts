import { AsyncLocalStorage } from 'node:async_hooks';
import type { DeferralReason } from '@brandq/limiter';
import type { Logger } from '@brandq/logger';
import { silentObserver, type PipelineObserver } from '@brandq/pipeline';
import type { RunTimeline, TimelineIncrement } from '@brandq/runs';

/**
 * What a worker adds to each run's timeline: the money booked, the 429s and the limiter's
 * waits by reason (the RunStore counts brands done and failed itself, with their outcome).
 *
 * The limiter's deferral callback and the pipeline's 429 hook name no run. Each job is
 * processed inside `processorFor`, which holds the job's run id in an AsyncLocalStorage;
 * both hooks are called from within the job's own calls (the limiter calls back inside
 * `acquire`, awaited by the job), so the run they read is exactly the job's, with no change
 * to the pipeline or the limiter. Calls outside any job (the sheet flusher) count for no run.
 *
 * Best-effort: a write that fails is logged at debug and never reaches the job.
 */
export class RunTimelineRecorder {
  private readonly jobRun = new AsyncLocalStorage<string>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly timeline: RunTimeline,
    private readonly logger: Logger,
  ) {}

  /** The processor, each job run with its run id known to the hooks below. */
  processorFor<J extends { data: { runId: string } }, A extends unknown[], R>(processor: (job: J, ...rest: A) => Promise<R>): (job: J, ...rest: A) => Promise<R> {
    return (job, ...rest) => this.jobRun.run(job.data.runId, () => processor(job, ...rest));
  }

  /** The limiter's `onDeferral`: the current job's run was told to wait. */
  deferred(reason: DeferralReason): void {
    const runId = this.jobRun.getStore();
    if (runId !== undefined) this.record(runId, { waits: { [reason]: 1 } });
  }

  /** The pipeline's hooks the timeline counts (the others do nothing). */
  readonly observer: PipelineObserver = {
    ...silentObserver,
    booked: (runId, _provider, usage) => this.record(runId, { spentMicros: usage.costMicros }),
    rateLimited: () => {
      const runId = this.jobRun.getStore();
      if (runId !== undefined) this.record(runId, { rateLimited: 1 });
    },
  };

  /** Resolves once every write started so far has ended. */
  async idle(): Promise<void> {
    await Promise.all(this.pending);
  }

  private record(runId: string, increment: TimelineIncrement): void {
    const write = this.timeline
      .record(runId, increment)
      .catch((err: unknown) => this.logger.debug({ runId, err: String(err) }, 'run timeline not recorded'))
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }
}

/** One observer calling each hook of every observer given, in order. */
export function allObservers(...observers: PipelineObserver[]): PipelineObserver {
  const each =
    <K extends keyof PipelineObserver>(hook: K) =>
    (...args: Parameters<PipelineObserver[K]>): void => {
      for (const observer of observers) (observer[hook] as (...a: Parameters<PipelineObserver[K]>) => void)(...args);
    };
  return {
    providerCall: each('providerCall'),
    booked: each('booked'),
    rateLimited: each('rateLimited'),
    cacheHit: each('cacheHit'),
    overrun: each('overrun'),
    unconfirmed: each('unconfirmed'),
    redisRetry: each('redisRetry'),
  };
}
