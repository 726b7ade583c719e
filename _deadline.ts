// Waiting for a promise with a time limit and an abort signal, leaving no timer behind.

/** The longest delay `setTimeout` takes as it is: longer ones fire at once. */
const MAX_DELAY = 2 ** 31 - 1;

/** A timer made by {@linkcode setLongTimeout}. */
export interface LongTimer {
  /** Stops the timer; calling it again does nothing. */
  clear(): void;
  /** Lets the program exit while only this timer is left. */
  unref(): void;
}

// setTimeout clamps a delay of 2^31 ms or more (and Infinity) to 1 ms: a long
// timeout is a chain of shorter timers, and Infinity none at all.
/** Calls `callback` once after `ms` milliseconds, for any `ms` up to Infinity. */
export function setLongTimeout(callback: () => void, ms: number): LongTimer {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cleared = false;
  let unref = false;
  const end = performance.now() + ms;
  function arm(): void {
    const left = end - performance.now();
    if (left <= 0) return callback();
    timer = setTimeout(
      () => left > MAX_DELAY ? arm() : callback(),
      Math.min(left, MAX_DELAY),
    );
    // deno-lint-ignore no-explicit-any
    if (unref) (timer as any).unref?.();
  }
  if (ms !== Infinity) {
    timer = setTimeout(
      () => ms > MAX_DELAY && !cleared ? arm() : callback(),
      Math.min(Math.max(ms, 0), MAX_DELAY),
    );
  }
  return {
    clear(): void {
      cleared = true;
      clearTimeout(timer);
    },
    unref(): void {
      unref = true;
      // deno-lint-ignore no-explicit-any
      (timer as any)?.unref?.();
    },
  };
}

/** What {@linkcode waitAtMost} returns when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

// Every timed wait goes through here, so none leaves a timer or listener behind.
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
      : setLongTimeout(() => settle(() => resolve(TIMED_OUT)), timeout);
    const onAbort = (): void => settle(() => reject(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    function settle(finish: () => void): void {
      timer?.clear();
      signal?.removeEventListener("abort", onAbort);
      finish();
    }
    promise.then(
      (value) => settle(() => resolve(value)),
      (error) => settle(() => reject(error)),
    );
  });
}

// Every timeout option fails alike, before anything starts.
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
