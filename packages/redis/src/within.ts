/** Redis gave no answer in time (the command may still land later). */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
}

/** `work`, or a NoAnswerError once `ms` have passed without an answer (the work itself is not cancelled). */
export function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(`no answer within ${ms} ms`)), Math.max(0, ms));
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
