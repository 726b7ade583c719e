// The pool's errors, in a leaf file: the pool's engine throws them and
// pool.ts re-exports them, and neither may import the other's module.

/**
 * Python's `multiprocessing.TimeoutError`: a wait ran out of time
 * ({@linkcode AsyncResult.get}), or a task ran longer than its `timeout`.
 *
 * @example Catch a timeout
 * ```ts
 * import { Pool, TimeoutError } from "@multiproc/multiproc/pool";
 * import { rejects } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * const slow = pool.applyAsync(() => new Promise((r) => setTimeout(r, 300)));
 * await rejects(slow.get({ timeout: 10 }), TimeoutError);
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Makes the error.
   *
   * @param message What timed out.
   */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** Options of {@linkcode WorkerExitError}. */
export interface WorkerExitErrorOptions extends ErrorOptions {
  /** The worker's exit code, if it exited. @default {null} */
  exitCode?: number | null;
  /** The signal that killed a process worker. @default {null} */
  signal?: string | null;
}

/**
 * A worker died while it ran the task: it exited, crashed, ran out of
 * memory or was killed. The worker is replaced and the other tasks go on.
 *
 * @example Inspect a lost task
 * ```ts
 * import { Pool, WorkerExitError } from "@multiproc/multiproc/pool";
 * import { equal, rejects } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * await rejects(
 *   pool.apply(async () => (await import("node:process")).default.exit(3)),
 *   (error) => error instanceof WorkerExitError && error.exitCode === 3,
 * );
 * equal(await pool.apply((x: number) => x + 1, [1]), 2);
 * ```
 */
export class WorkerExitError extends Error {
  /** The worker's exit code, or `null` when a signal killed it. */
  readonly exitCode: number | null;
  /** The signal that killed a process worker, or `null`. */
  readonly signal: string | null;

  /**
   * Makes the error.
   *
   * @param message What happened.
   * @param options Exit code, signal and cause.
   */
  constructor(message: string, options: WorkerExitErrorOptions = {}) {
    super(message, options);
    this.name = "WorkerExitError";
    this.exitCode = options.exitCode ?? null;
    this.signal = options.signal ?? null;
  }
}
