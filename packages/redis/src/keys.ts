/**
 * Every Redis key brandq uses is built here. Keys that one Lua script touches together
 * share a hash tag (`{...}`), so each script works on Redis Cluster.
 */
export const KEY_PREFIX = 'brandq';

/** BullMQ prefix: the hash tag keeps all of a queue's keys in one Cluster slot. */
export const QUEUE_PREFIX = '{brandq}';

/** Run ids become part of keys and job ids: keep them to a safe alphabet. */
export function assertSafeId(id: string, what = 'id'): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(id)) {
    throw new Error(`invalid ${what} "${id}": use 1-100 letters, digits, '.', '_' or '-'`);
  }
  return id;
}

export function runKeys(runId: string) {
  const base = `${KEY_PREFIX}:{run:${assertSafeId(runId, 'run id')}}`;
  return {
    /** Hash: source, status, totals, timestamps, the recipe's name and fingerprint. */
    meta: `${base}:meta`,
    /** String: the run's recipe (JSON), what its workers follow. */
    recipe: `${base}:recipe`,
    /** Hash: brand key -> result JSON (the source of truth for export). */
    results: `${base}:results`,
    /** List: the brand keys of the newest results, newest first, capped (the run page's preview). */
    latest: `${base}:latest`,
    /** Hash: brand key -> failure JSON. */
    failed: `${base}:failed`,
    /** Hash: brand key -> skip reason JSON (input validation). */
    skipped: `${base}:skipped`,
    /** Hash: brand key -> job payload, the run's full list of brands. */
    brands: `${base}:brands`,
    /** Hash: cost ledger counters (micro-dollars, calls, tokens). */
    ledger: `${base}:ledger`,
    /** Sorted set: budget reservation id -> expiry (server ms). */
    reservations: `${base}:reservations`,
    /** Hash: reservation id -> reserved micro-dollars. */
    reservationAmounts: `${base}:reservation-amounts`,
    /** Hash: reservation id -> provider, while the reservation is live or unconfirmed (an expiry books per provider). */
    reservationProviders: `${base}:reservation-providers`,
    /** Hash: reservation id -> micro-dollars booked as unconfirmed spend (the call may have been billed); a late settle converts it. */
    unconfirmedReservations: `${base}:unconfirmed-reservations`,
    /** Sorted set: booking ids already settled (-> server ms), so a retried booking counts once. */
    settledBookings: `${base}:settled-bookings`,
    /** Stream: result rows waiting to be written to the run's sheet in a batch. */
    sheetWrites: `${base}:sheet-writes`,
    /** Hash: the run's timeline, counters per time bucket at a fixed resolution (see packages/runs/lua/timeline.lua). */
    timeline: `${base}:timeline`,
    /** List: the run's history (who paused, resumed, cancelled, re-budgeted, retried it), JSON entries, newest first, capped. */ history: `${base}:history`,
    /** Hash: batch request id -> 1 once parked, until its outcome is consumed: a request is parked (and paid for) once. */
    batchKnown: `${base}:batch-known`,
    /** Hash: batch request id -> the LLM request a batch-tier step parked, waiting for the run step's next batch. */
    batchPending: `${base}:batch-pending`,
    /** Hash: batch intent id -> the batch as the coordinator tracks it (its requests, file, batch id, state). */
    batchIntents: `${base}:batch-intents`,
    /** Hash: batch request id -> what its batch answered (the completion, or why it failed for good). */
    batchOutcomes: `${base}:batch-outcomes`,
  };
}

/**
 * Fair shares between runs (packages/fair-share). `state` is one fleet-wide hash: the
 * virtual time of the queue and each run's last virtual finish tag; `window(bucketMs)`
 * counts each run's admitted calls and finished brands per time bucket (a few minutes kept).
 */
export const fairShareKeys = {
  state: `${KEY_PREFIX}:fair-share:state`,
  window: (bucketStartMs: number) => `${KEY_PREFIX}:fair-share:window:${bucketStartMs}`,
};

/** A run's own ceiling at one provider (`--max-rpm`): when its next call may start, and the latest slot told to a waiting caller. Expires on its own. */
export function runCeilingKey(runId: string, provider: string): string {
  return `${KEY_PREFIX}:{run:${assertSafeId(runId, 'run id')}}:ceiling:${assertSafeId(provider, 'provider')}`;
}

/**
 * The fleet's one batch coordinator: its lease, the run steps with parked requests
 * (`runId|stepId` -> when the oldest was parked) and the batches not yet collected
 * (`runId|intentId` -> when claimed).
 */
export const batchKeys = {
  lease: `${KEY_PREFIX}:batch-coordinator:lease`,
  groups: `${KEY_PREFIX}:batch:groups`,
  open: `${KEY_PREFIX}:batch:open`,
};

/** The one sheet flusher of the fleet: its lease, and the runs with rows waiting. */
export const sheetFlusherKeys = {
  lease: `${KEY_PREFIX}:sheet-flusher:lease`,
  pendingRuns: `${KEY_PREFIX}:sheet-flusher:pending-runs`,
};

export type RunKeys = ReturnType<typeof runKeys>;

/**
 * Every key of a run, derived from `runKeys` so a key added there is expired, persisted and
 * pruned with the rest. They share the run's hash tag: one script or DEL may take them all.
 */
export function runKeyList(runId: string): string[] {
  return Object.values(runKeys(runId));
}

/**
 * Index of runs: sorted set of run ids by creation time, source -> latest run id, and per
 * source a sorted set of all its runs by creation time (where its results are looked up).
 */
export const runIndexKeys = {
  all: `${KEY_PREFIX}:runs`,
  bySource: `${KEY_PREFIX}:runs:by-source`,
  ofSource: (sourceKey: string) => `${KEY_PREFIX}:runs:of-source:${sourceKey}`,
};

/** A cached provider answer and the lock that makes one worker fill it. */
export function cacheKeys(namespace: string, hash: string) {
  const base = `${KEY_PREFIX}:cache:{${assertSafeId(namespace, 'cache namespace')}:${hash}}`;
  return { value: `${base}:value`, lock: `${base}:lock` };
}

export function limiterKeys(provider: string) {
  const base = `${KEY_PREFIX}:{limiter:${assertSafeId(provider, 'provider')}}`;
  return {
    /** Hash: request token bucket (level, ts = server ms of level, holdUntil from header sync, last = id of the latest admission). */
    bucket: `${base}:bucket`,
    /** Sorted set: request log (permit id -> expiry server ms), caps requests in any sliding window. */
    requests: `${base}:requests`,
    /** Sorted set: token-window entries (permit or sync id -> expiry server ms). */
    window: `${base}:window`,
    /** Hash: token-window entry id -> tokens it holds (reserved, then settled). */
    windowTokens: `${base}:window-tokens`,
    /** String: running sum of `windowTokens`, so admission does not sum the window each time. */
    windowSum: `${base}:window-sum`,
    /** Sorted set: concurrency leases (permit id -> expiry server ms). */
    leases: `${base}:leases`,
    /** String: next launch slot (server ms) for staggering. */
    stagger: `${base}:stagger`,
    /** String: fleet-wide cooldown until (server ms). */
    cooldown: `${base}:cooldown`,
    /** String: the latest wake-up slot (server ms) handed to a waiting caller; the next waiter gets a later one. */
    waitSlots: `${base}:wait-slots`,
    /** Hash: token pacing schedule (tat = theoretical arrival time, server ms; last = id of the latest paced admission). */
    pace: `${base}:pace`,
    /** Hash: counters for statistics. */
    stats: `${base}:stats`,
  };
}

export type LimiterKeys = ReturnType<typeof limiterKeys>;
