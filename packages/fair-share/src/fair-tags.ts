/**
 * Start-time fair queueing over BullMQ priorities. Every job carries a virtual tag: the
 * jobs of a run of weight w are spaced 1/w apart from the run's start, and a run starts
 * at the queue's virtual time (the tag at its front) or after its own last tag, whichever
 * is later. BullMQ serves the lowest priority first (ties in insertion order), so free
 * worker slots take the runs' jobs in proportion to their weights, a late run is served
 * from its first job on, and a run with nothing queued simply has no tags in the way.
 */

/** BullMQ's largest priority (2^21 - 1). Tags past it are served last, in insertion order. */
export const PRIORITY_LIMIT = 2 ** 21 - 1;

/** The priority a tag is queued at: priority 0 would put a job ahead of every prioritized one, so tags start at 1. */
export function priorityOfTag(tag: number): number {
  return Math.min(PRIORITY_LIMIT, 1 + Math.floor(tag));
}

/** The virtual time a queued priority stands for (the inverse of `priorityOfTag`, to a whole unit). */
export function tagOfPriority(priority: number): number {
  return Math.max(0, priority - 1);
}

/** The priorities of `count` jobs of a run of `weight` that starts at virtual time `start`. */
export function prioritiesFrom(start: number, count: number, weight: number): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = priorityOfTag(start + (i + 1) / weight);
  return out;
}
