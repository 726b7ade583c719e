// Waiting for a promise with a time limit and an abort signal, leaving no timer behind.

/** What {@linkcode waitAtMost} returns when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * Waits for `promise`, for at most `timeout` ms (none when undefined).
 * Rejects with the signal's reason when `signal` aborts first. The promise
 * itself is left running either way.
 */
export function waitAtMost<T>(
  promise: Promise<T>,
  timeout: number | undefined,
  signal?: AbortSignal,
): Promise<T | typeof TIMED_OUT> {
  if (timeout === undefined && signal === undefined) return promise;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T | typeof TIMED_OUT>((resolve, reject) => {
    const timer = timeout === undefined
      ? undefined
      : setTimeout(() => settle(() => resolve(TIMED_OUT)), timeout);
    const onAbort = (): void => settle(() => reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    function settle(finish: () => void): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      finish();
    }
    promise.then(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error)),
    );
  });
}

/**
 * Checks a timeout option: a finite number of milliseconds, 0 or more.
 *
 * @throws {RangeError} when it is negative, NaN or not a number.
 */
export function checkTimeout(timeout: unknown, name = "timeout"): void {
  if (timeout === undefined) return;
  if (
    typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0
  ) {
    throw new RangeError(
      `Expected ${name} to be a number of milliseconds >= 0, got "${
        String(timeout)
      }": pass a non-negative number, or leave it out to wait without limit`,
    );
  }
}
