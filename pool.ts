/**
 * Python's `multiprocessing.Pool` for Deno and Node: a pool of workers —
 * worker threads, or child processes of the same runtime — that run tasks
 * from a module (named by export, type-checked) or self-contained functions.
 *
 * Tasks are batched to the workers and their results batched back, so tiny
 * tasks cost little; long tasks are handed out one at a time, so the load
 * stays even. A worker that dies mid-task fails that task alone and is
 * replaced. Timeouts are in milliseconds.
 *
 * Deno permissions: the worker backend needs `--allow-read` for this
 * package's files and the task module (Deno reads a worker's modules from
 * disk); the process backend needs `--allow-run` and `--allow-env` (it starts
 * `deno` with this process's environment), and no read access: each child
 * gets this process's permissions, or fewer with the `permissions` option,
 * which sandboxes untrusted tasks. A missing permission rejects with Deno's
 * `NotCapable` error naming the flag to add.
 *
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 2 });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * ```
 *
 * @module
 */
import {
  checkTimeout,
  type LongTimer,
  setLongTimeout,
  TIMED_OUT,
  waitAtMost,
} from "./_deadline.ts";
import { checkPermissions } from "./_permissions.ts";
import type { Core } from "./_ring.ts";
import { cpuCount } from "./_runtime.ts";
import { shareValues } from "./_share.ts";
import {
  checkHeapLimit,
  startProcess,
  startThread,
  type WorkerExit,
  type WorkerHandle,
} from "./_worker_handle.ts";
import {
  APPLY,
  decodeError,
  DEFINE,
  type FunctionRef,
  INIT,
  INIT_FAILED,
  MAP_CHUNK,
  ONLINE,
  READY,
  RESULTS,
  RUN,
  SERIALIZED,
  SHARED,
  STARMAP_CHUNK,
  STOP,
  type TaskKind,
  type WorkerSetup,
} from "./_wire.ts";
import {
  type AnyFunction,
  copyItems,
  copyValues,
  describeFunction,
  describeValue,
  functionSource,
  serializeValues,
  toModuleUrl,
} from "./_values.ts";

/**
 * One kind of permission for sandboxed workers, as in Deno's
 * `PermissionOptionsObject`: `"inherit"` takes what this process has,
 * `true` the whole kind (this process must have it all), `false` nothing,
 * a list just those paths, hosts, variables or commands (this process must
 * have each).
 *
 * @example Grants of each form
 * ```ts
 * import type { PermissionGrant } from "@multiproc/multiproc/pool";
 *
 * const grants: PermissionGrant[] = ["inherit", true, false, ["./data", "/tmp"]];
 * ```
 */
export type PermissionGrant = "inherit" | boolean | string[];

/**
 * The permissions of sandboxed workers, kind by kind; a kind left out is
 * denied.
 *
 * @example Read one directory, nothing else
 * ```ts
 * import type { WorkerPermissionsObject } from "@multiproc/multiproc/pool";
 *
 * const readData: WorkerPermissionsObject = { read: ["./data"] };
 * ```
 */
export interface WorkerPermissionsObject {
  /** File system reads (`--allow-read`): paths. @default {false} */
  read?: PermissionGrant;
  /** File system writes (`--allow-write`): paths. @default {false} */
  write?: PermissionGrant;
  /** Network access (`--allow-net`): `host[:port]` entries. @default {false} */
  net?: PermissionGrant;
  /** Environment variables (`--allow-env`): variable names. @default {false} */
  env?: PermissionGrant;
  /** Starting subprocesses (`--allow-run`): commands. @default {false} */
  run?: PermissionGrant;
  /** Native libraries (`--allow-ffi`): paths. @default {false} */
  ffi?: PermissionGrant;
  /** System information (`--allow-sys`): names such as `"hostname"`. @default {false} */
  sys?: PermissionGrant;
  /** Dynamic imports from the network (`--allow-import`): hosts. @default {false} */
  import?: PermissionGrant;
}

/**
 * What workers may do (Deno, `backend: "process"`): `"inherit"` (what this
 * process has), `"none"`, or kind by kind. The task module and its imports
 * always load.
 *
 * @example A task that may not read files
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { rejects } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1, backend: "process", permissions: "none" });
 * await rejects(
 *   pool.apply(async () => (await import("node:fs")).readFileSync("/etc/hostname")),
 *   { name: "NotCapable" },
 * );
 * ```
 */
export type WorkerPermissions = "inherit" | "none" | WorkerPermissionsObject;

/** Any function, as a task or initializer: its source is sent to the worker. */
// deno-lint-ignore no-explicit-any
export type TaskFunction = (...args: any[]) => any;

/** The tasks of a pool without a module type: any name, any arguments. */
export type UntypedTasks = Record<string, TaskFunction>;

/** The export names of `M` that are functions: the task names of a pool. */
export type TaskName<M> =
  & {
    [K in keyof M]: M[K] extends TaskFunction ? K : never;
  }[keyof M]
  & string;

/** The argument tuple of task `K` of `M`. */
export type TaskArgs<M, K extends keyof M> = M[K] extends
  (...args: infer A) => unknown ? A : never;

/** The awaited result of task `K` of `M`. */
export type TaskResult<M, K extends keyof M> = M[K] extends
  (...args: never[]) => infer R ? Awaited<R> : never;

/** Where a pool runs its tasks. */
export type Backend = "worker" | "process";

/** Options of {@linkcode Pool}. */
export interface PoolOptions {
  /**
   * How many workers, at most 256 (or the number of CPUs where that is
   * more): each is a whole JavaScript runtime of 10 to 50 MB. As many as
   * there are CPUs (at least 4) start with the pool and stay; the others
   * start when tasks wait for a worker, a few at a time, so a large pool
   * costs only what its work needs.
   *
   * @default {the number of CPUs}
   */
  processes?: number;
  /**
   * `"worker"`: worker threads (Web Worker semantics, `worker_threads`);
   * `"process"`: a child process of the same runtime per worker, each with
   * its own pid, talking over IPC.
   *
   * @default {"worker"}
   */
  backend?: Backend;
  /** Runs once in each worker before its first task: an export name of the module, or a self-contained function. @default {undefined} */
  initializer?: string | TaskFunction;
  /** Arguments of the initializer. @default {[]} */
  initArgs?: unknown[];
  /** Replace a worker after it has run this many tasks (a chunk counts as one). @default {undefined} */
  maxTasksPerChild?: number;
  /**
   * The most tasks that may wait for a worker. Beyond it, submissions wait
   * (`apply`, `map` and the rest resolve later; `imap` pulls no more input).
   * `imap` and `imapUnordered` keep at most this many chunks in flight.
   *
   * @default {unlimited; imap keeps 128 chunks per worker in flight}
   */
  maxQueue?: number;
  /** V8 heap limit of each worker in MiB: a worker that exceeds it dies with {@linkcode WorkerExitError}. @default {undefined} */
  maxHeapMb?: number;
  /**
   * What the workers may do, for tasks you do not trust (Deno,
   * `backend: "process"`): `"none"`, or kind by kind as in Deno's worker
   * permissions, e.g. `{ read: ["./data"] }`; a kind left out is denied.
   * Each worker process gets those `--allow-*` flags; its task module and
   * that module's imports load all the same (Deno's `--preload`, so they are
   * evaluated as the worker starts). With `"inherit"` a worker process gets
   * each kind this process holds in full; a scoped grant such as
   * `--allow-read=/data` cannot be seen by the program, so list it here
   * (`{ read: ["/data"], env: "inherit", run: "inherit" }`). Elsewhere only
   * `"inherit"` is accepted.
   *
   * @default {"inherit"}
   */
  permissions?: WorkerPermissions;
}

/** Options of one submission. */
export interface SubmitOptions {
  /** Stop waiting and abort the task: a queued task is dropped, a running one's worker is replaced. @default {undefined} */
  signal?: AbortSignal;
  /** Milliseconds the task may run: then it is stopped, its worker replaced, and the call rejects with {@linkcode TimeoutError}; `Infinity` sets no limit. @default {undefined} */
  timeout?: number;
  /** Objects to transfer rather than copy (worker backend), as in `postMessage`. @default {undefined} */
  transfer?: Transferable[];
}

/** Options of {@linkcode Pool.applyAsync}. */
export interface ApplyAsyncOptions<T> extends SubmitOptions {
  /** Called with the result when the task succeeds. @default {undefined} */
  callback?: (result: T) => void;
  /** Called with the error when the task fails. @default {undefined} */
  errorCallback?: (error: unknown) => void;
}

/** Options of the `map` family. */
export interface MapOptions extends Omit<SubmitOptions, "transfer"> {
  /**
   * How many items one task carries. `map` defaults to Python's choice (the
   * items split into about four chunks per worker); `imap` to 1.
   *
   * @default {see above}
   */
  chunksize?: number;
}

/** Options of {@linkcode AsyncResult.get} and {@linkcode AsyncResult.wait}. */
export interface GetOptions {
  /** Milliseconds to wait; `Infinity` (or leaving it out) waits without limit. @default {undefined} */
  timeout?: number;
}

/** What {@linkcode Pool.stats} reports. */
export interface PoolStats {
  /** The backend. */
  backend: Backend;
  /** The number of workers the pool keeps. */
  processes: number;
  /** Workers started so far, replacements included. */
  workersStarted: number;
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks sent to workers and not finished. */
  running: number;
  /** Tasks finished successfully. */
  completed: number;
  /** Tasks that failed (threw, timed out, were aborted or lost their worker). */
  failed: number;
  /** `"running"`, `"closed"` or `"terminated"`. */
  state: "running" | "closed" | "terminated";
}

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

/** Receives the outcome of the tasks of one submission. */
interface Job {
  settle(task: Task, ok: boolean, value: unknown): void;
}

class Task {
  worker: WorkerSlot | undefined = undefined;
  /** The queues and pipes its arguments hold, shared with its worker when sent. */
  cores: Core[] | undefined = undefined;
  timer: LongTimer | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  /** In the pool's queue and counted as waiting. */
  queued = false;
  done = false;
  constructor(
    readonly fn: FunctionRef,
    readonly kind: number,
    public payload: unknown,
    readonly job: Job,
    readonly index: number,
    readonly options: SubmitOptions | undefined,
  ) {}

  /** Tasks with a timeout or a signal run alone, so that stopping them stops nothing else. */
  get isolated(): boolean {
    return this.options !== undefined &&
      (isLimit(this.options.timeout) || this.options.signal !== undefined);
  }
}

/**
 * The pending result of {@linkcode Pool.applyAsync} (and `mapAsync`,
 * `starmapAsync`): Python's `AsyncResult`. It is awaitable.
 *
 * @typeParam T The task's result.
 *
 * @example Get with a timeout
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { equal } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 1 });
 * const result = pool.applyAsync((x: number) => x * x, [20]);
 * equal(await result.get({ timeout: 5000 }), 400);
 * equal(result.ready(), true);
 * equal(result.successful(), true);
 * ```
 */
export class AsyncResult<T> implements PromiseLike<T> {
  #promise: Promise<T>;
  #state: "pending" | "fulfilled" | "rejected" = "pending";

  /**
   * Wraps `promise`; made by the pool, not by users.
   *
   * @param promise The outcome.
   */
  constructor(promise: Promise<T>) {
    this.#promise = promise;
    promise.then(
      () => this.#state = "fulfilled",
      () => this.#state = "rejected",
    );
  }

  /**
   * Waits for the result.
   *
   * @param options A `timeout` in milliseconds.
   * @returns The task's result.
   * @throws {TimeoutError} when `timeout` passes first; the task runs on and the pool stays usable.
   * @throws The task's own error when it failed.
   *
   * @example Wait at most ten seconds
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.applyAsync(() => "done").get({ timeout: 10_000 }), "done");
   * ```
   */
  async get(options: GetOptions = {}): Promise<T> {
    checkTimeout(options.timeout);
    const outcome = await waitAtMost(this.#promise, options.timeout);
    if (outcome === TIMED_OUT) {
      throw new TimeoutError(
        `The result was not ready within ${options.timeout} ms`,
      );
    }
    return outcome;
  }

  /**
   * Waits until the result is ready or `timeout` passes, without throwing.
   *
   * @param options A `timeout` in milliseconds.
   *
   * @example Wait, then look
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 1);
   * await result.wait();
   * equal(result.ready(), true);
   * ```
   */
  async wait(options: GetOptions = {}): Promise<void> {
    checkTimeout(options.timeout);
    await waitAtMost(this.#promise.catch(() => {}), options.timeout);
  }

  /**
   * Whether the task has finished.
   *
   * @returns `true` once it succeeded or failed.
   *
   * @example Not yet
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 1);
   * equal(result.ready(), false);
   * await result;
   * ```
   */
  ready(): boolean {
    return this.#state !== "pending";
  }

  /**
   * Whether the task finished without an error.
   *
   * @returns `true` when it succeeded.
   * @throws {Error} when the task has not finished yet, as in Python.
   *
   * @example A failed task
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => { throw new Error("no"); });
   * await result.wait();
   * equal(result.successful(), false);
   * ```
   */
  successful(): boolean {
    if (this.#state === "pending") {
      throw new Error(
        "The result is not ready: check ready() first, or await wait()",
      );
    }
    return this.#state === "fulfilled";
  }

  /**
   * Makes the result awaitable: `await result` is `await result.get()`.
   *
   * @param onfulfilled Called with the result.
   * @param onrejected Called with the error.
   * @returns A promise of what the callback returns.
   *
   * @example Await it
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.applyAsync(() => 42), 42);
   * ```
   */
  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#promise.then(onfulfilled, onrejected);
  }
}

/** A job with one task: `apply`, `applyAsync`. */
class SingleJob<T> implements Job {
  readonly promise: Promise<T>;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  constructor(options?: ApplyAsyncOptions<T>) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The caller may never look at the result, as Python allows.
    this.promise.catch(() => {});
    if (options?.callback || options?.errorCallback) {
      this.promise.then(options.callback, options.errorCallback);
    }
  }
  settle(_task: Task, ok: boolean, value: unknown): void {
    if (ok) this.#resolve(value as T);
    else this.#reject(value);
  }
}

/** A job with many chunks whose results form one array: `map`, `starmap`. */
class MapJob implements Job {
  readonly promise: Promise<unknown[]>;
  readonly tasks: Task[] = [];
  #chunks: unknown[][];
  #left: number;
  #resolve!: (value: unknown[]) => void;
  #reject!: (error: unknown) => void;
  #cancel: (tasks: Task[]) => void;
  constructor(chunkCount: number, cancel: (tasks: Task[]) => void) {
    this.#chunks = new Array(chunkCount);
    this.#left = chunkCount;
    this.#cancel = cancel;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => {});
    if (chunkCount === 0) this.#resolve([]);
  }
  settle(task: Task, ok: boolean, value: unknown): void {
    if (this.#left === 0) return;
    if (!ok) {
      this.#left = 0;
      this.#cancel(this.tasks);
      this.#reject(value);
      return;
    }
    this.#chunks[task.index] = value as unknown[];
    if (--this.#left === 0) this.#resolve(concat(this.#chunks));
  }
}

/** Joins chunk results; much faster than `flat()` on large inputs. */
function concat(chunks: unknown[][]): unknown[] {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const all = new Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) all[offset + i] = chunk[i];
    offset += chunk.length;
  }
  return all;
}

/** A job that streams chunk results to an iterator: `imap`, `imapUnordered`. */
class StreamJob implements Job {
  readonly pending = new Set<Task>();
  /** Settled chunks: by index (ordered) or in arrival order (unordered). */
  readonly settled = new Map<number, { ok: boolean; value: unknown }>();
  readonly arrivals: number[] = [];
  #wake: (() => void) | undefined;
  settle(task: Task, ok: boolean, value: unknown): void {
    this.pending.delete(task);
    this.settled.set(task.index, { ok, value });
    this.arrivals.push(task.index);
    this.#wake?.();
  }
  /** Resolves at the next settlement. */
  next(): Promise<void> {
    return new Promise((resolve) => this.#wake = resolve);
  }
}

/** One worker of the pool and what it has been given. */
class WorkerSlot {
  handle!: WorkerHandle;
  online = false;
  ready = false;
  readonly inFlight: Task[] = [];
  readonly defined = new Set<number>();
  assigned = 0;
  /** Set when we stop it (retire, close, terminate, timeout): its exit is expected. */
  stopping = false;
  constructor(readonly name: string) {}
}

/** The most workers a pool may have, unless there are more CPUs: see {@linkcode maxProcesses}. */
const MAX_PROCESSES = 256;
/** At least this many workers may start at once, and start with the pool. */
const MIN_START_LIMIT = 4;
/** Workers that die before they are ready this many times in a row break the pool. */
const MAX_START_FAILURES = 3;
/** `map` chunks of at least this many items are sent as soon as they are made. */
const EAGER_CHUNK = 256;
/** A batch should keep a worker busy about this long, so that messaging costs little. */
const TARGET_BATCH_MS = 1;
const MAX_BATCH = 1024;
/** Tasks shorter than this get a second one queued in their worker. */
const PREFETCH_BELOW_MS = 20;
/** imap keeps this many chunks per worker in flight unless maxQueue says otherwise. */
const IMAP_WINDOW_PER_WORKER = 128;

/** Whether a `timeout` option limits anything: `Infinity` means no limit. */
function isLimit(timeout: number | undefined): timeout is number {
  return timeout !== undefined && timeout !== Number.POSITIVE_INFINITY;
}

function copyArguments(args: unknown[]): unknown[] | Uint8Array {
  return serializeValues(args, "argument");
}

function copyNothing(args: unknown[]): unknown[] {
  return args;
}

/**
 * The most workers a pool may have: 256, or the number of CPUs where that is
 * more. Each worker is a whole JavaScript runtime (about 10 MB for a thread,
 * 45 MB for a Deno process), so 256 busy ones already take 3 to 12 GB; more
 * would run the machine out of memory before they add speed, which only
 * CPUs give.
 */
function maxProcesses(): number {
  return Math.max(MAX_PROCESSES, cpuCount());
}

function checkProcesses(processes: unknown): number {
  if (processes === undefined) return cpuCount();
  if (
    typeof processes !== "number" || !Number.isInteger(processes) ||
    processes < 1
  ) {
    throw new RangeError(
      `Expected processes to be a whole number of workers >= 1, got "${
        String(processes)
      }": pass 1 or more, or leave it out for one per CPU`,
    );
  }
  const max = maxProcesses();
  if (processes > max) {
    throw new RangeError(
      `Expected processes to be at most ${max}, got "${processes}": each worker is a whole JavaScript runtime of 10 to 50 MB, so more would exhaust the memory before they add speed: pass ${max} or fewer, and to have more operations in flight, let each task await many of them together`,
    );
  }
  return processes;
}

function checkPositive(value: unknown, name: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Expected ${name} to be a whole number >= 1, got "${
        String(value)
      }": pass 1 or more, or leave it out`,
    );
  }
}

function checkBackend(backend: unknown): Backend {
  if (backend === undefined) return "worker";
  if (backend === "worker" || backend === "process") return backend;
  throw new TypeError(
    `Expected backend to be "worker" or "process", got "${String(backend)}"`,
  );
}

/** The parameters of a task call: its arguments (optional when it takes none), then options. */
export type ApplyParams<A extends unknown[], O> = [] extends A
  ? [args?: A, options?: O]
  : [args: A, options?: O];

/**
 * A pool of workers: Python's `multiprocessing.Pool`.
 *
 * Tasks are the exports of a module given by URL (typed with
 * `Pool<typeof import("./tasks.ts")>`), or self-contained functions, sent by
 * their source. Arguments and results are copied (structured clone).
 * `await using` terminates the pool at the end of the scope, like Python's
 * `with Pool() as pool:`. An idle pool does not keep the program alive.
 *
 * What a task leaves behind: a promise it left rejected with no handler is
 * logged to stderr ("Unhandled rejection in a task of worker PoolWorker-N")
 * and the worker goes on, as a Python pool worker does; no task fails for
 * it. An exception thrown outside any task's call, from a timer or an event
 * handler a task set up, ends its worker as it ends any Node or Deno
 * program (piscina does the same), since it may have left the worker's
 * state half-changed: the task running on that worker then fails with
 * {@linkcode WorkerExitError}, the tasks waiting for it run elsewhere, and
 * the worker is replaced.
 *
 * The module can be the main program itself: guard the main code with
 * `isMainModule(import.meta)` (from `process.ts`) so that workers, which
 * import it for its tasks, do not run it again.
 *
 * @typeParam M The task module's type: `typeof import("./tasks.ts")`.
 *
 * @example Inline functions
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using pool = new Pool({ processes: 2 });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * deepEqual(await pool.starmap((a: number, b: number) => a + b, [[1, 2], [3, 4]]), [3, 7]);
 * ```
 *
 * @example Close, then join
 * ```ts
 * import { Pool } from "@multiproc/multiproc/pool";
 * import { deepEqual } from "node:assert/strict";
 *
 * const pool = new Pool({ processes: 2, backend: "process" });
 * const results = [1, 2, 3].map((i) => pool.applyAsync((x: number) => x * 2, [i]));
 * pool.close();
 * await pool.join();
 * deepEqual(await Promise.all(results), [2, 4, 6]);
 * ```
 */
export class Pool<M extends object = UntypedTasks> implements AsyncDisposable {
  #processes: number;
  /** Workers that start with the pool and are kept; the others start on demand. */
  #eager: number;
  /** The most workers starting at once. */
  #startLimit: number;
  #backend: Backend;
  #setup: Omit<WorkerSetup, "name">;
  #initCores: Core[] = [];
  #maxTasksPerChild: number | undefined;
  #maxQueue: number | undefined;
  #maxHeapMb: number | undefined;
  #permissions: WorkerPermissions | undefined;
  #workers = new Set<WorkerSlot>();
  #queue: Task[] = [];
  #queueHead = 0;
  /** Live tasks in the queue: those dropped while queued still sit in it. */
  #waiting = 0;
  #waiters: (() => void)[] = [];
  #inline = new Map<string, number>();
  #sources: string[] = [];
  #state: "running" | "closed" | "terminated" = "running";
  #broken: unknown = undefined;
  #startFailures = 0;
  #started = 0;
  #running = 0;
  #completed = 0;
  #failed = 0;
  #avgTaskMs = Number.POSITIVE_INFINITY;
  #dispatchScheduled = false;
  #referenced = false;
  #exited: (() => void) | undefined;

  /**
   * Starts the workers.
   *
   * @param module The task module: a URL, a `file:` URL string, or a path.
   * Leave it out (or pass the options first) for inline functions only.
   * @param options The pool's options.
   * @throws {RangeError} when `processes`, `maxTasksPerChild` or `maxQueue` is not a whole number >= 1, or `processes` is over 256 and the number of CPUs.
   * @throws {RangeError} when `permissions` grants more than this process has.
   * @throws {TypeError} when `backend`, the initializer or `permissions` is
   * invalid, or `permissions` asks for a sandbox this runtime or backend
   * cannot give.
   * @throws {Error} when a worker cannot be started at all, e.g. Deno's
   * `NotCapable` naming the `--allow-*` flag this process lacks.
   */
  constructor(module?: string | URL | PoolOptions, options: PoolOptions = {}) {
    if (typeof module === "object" && !(module instanceof URL)) {
      options = module;
      module = undefined;
    }
    this.#processes = checkProcesses(options.processes);
    // Starting a runtime keeps a CPU busy: more at once start no sooner.
    this.#startLimit = Math.max(MIN_START_LIMIT, cpuCount());
    this.#eager = Math.min(this.#processes, this.#startLimit);
    this.#backend = checkBackend(options.backend);
    checkPositive(options.maxTasksPerChild, "maxTasksPerChild");
    checkPositive(options.maxQueue, "maxQueue");
    checkPositive(options.maxHeapMb, "maxHeapMb");
    this.#maxTasksPerChild = options.maxTasksPerChild;
    this.#maxQueue = options.maxQueue;
    checkHeapLimit(this.#backend, options.maxHeapMb);
    this.#maxHeapMb = options.maxHeapMb;
    checkPermissions(options.permissions, this.#backend);
    this.#permissions = options.permissions;
    const initializer = options.initializer;
    if (
      initializer !== undefined && typeof initializer !== "string" &&
      typeof initializer !== "function"
    ) {
      throw new TypeError(
        `Expected initializer to be an export name or a function, got ${
          describeValue(initializer)
        }`,
      );
    }
    const shared = shareValues(options.initArgs ?? [], this.#backend);
    this.#setup = {
      module: module === undefined ? undefined : toModuleUrl(module),
      initializer: typeof initializer === "function"
        ? functionSource(initializer)
        : initializer,
      initializerIsSource: typeof initializer === "function",
      initArgs: copyValues(shared.values, "initializer argument"),
      shared: shared.cores.length > 0,
    };
    this.#initCores = shared.cores;
    this.#grow();
    if (this.#broken !== undefined) throw this.#broken;
    this.#updateRef();
  }

  /**
   * Runs one task and waits for its result: Python's `apply`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options.
   * @returns The task's result.
   * @throws The task's error (same built-in class, or an `Error` with its name), {@linkcode TimeoutError}, {@linkcode WorkerExitError}, or the signal's reason.
   * @throws {TypeError} when an argument cannot be copied.
   *
   * @example Apply
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 1 });
   * equal(await pool.apply((a: number, b: number) => a * b, [6, 7]), 42);
   * ```
   */
  apply<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<TaskArgs<M, K>, SubmitOptions>
  ): Promise<TaskResult<M, K>>;
  /**
   * Runs a self-contained function (sent by its source) as one task: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options.
   * @returns The function's result.
   */
  apply<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, SubmitOptions>
  ): Promise<Awaited<R>>;
  apply(
    task: string | AnyFunction,
    args: unknown[] = [],
    options?: SubmitOptions,
  ): Promise<unknown> {
    try {
      return this.#applyJob(task, args, options).promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits one task and returns at once: Python's `apply_async`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options with `callback` and `errorCallback`.
   * @returns The pending result.
   * @throws {TypeError} when an argument cannot be copied.
   * @throws {Error} when the pool is closed or terminated.
   *
   * @example Thirteen tasks, then their results
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const results = Array.from({ length: 13 }, (_, i) => pool.applyAsync((n: number) => n * 2, [i]));
   * deepEqual(await Promise.all(results.map((r) => r.get())), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]);
   * ```
   */
  applyAsync<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<
      TaskArgs<M, K>,
      ApplyAsyncOptions<TaskResult<M, K>>
    >
  ): AsyncResult<TaskResult<M, K>>;
  /**
   * Submits a self-contained function (sent by its source) as one task: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options with `callback` and `errorCallback`.
   * @returns The pending result.
   */
  applyAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, ApplyAsyncOptions<Awaited<R>>>
  ): AsyncResult<Awaited<R>>;
  applyAsync(
    task: string | AnyFunction,
    args: unknown[] = [],
    // deno-lint-ignore no-explicit-any
    options?: ApplyAsyncOptions<any>,
  ): AsyncResult<unknown> {
    return new AsyncResult(this.#applyJob(task, args, options).promise);
  }

  #applyJob<T>(
    task: string | AnyFunction,
    args: unknown[],
    options: ApplyAsyncOptions<T> | undefined,
  ): SingleJob<T> {
    this.#checkOpen();
    const fn = this.#functionRef(task);
    if (!Array.isArray(args)) {
      throw new TypeError(
        `Expected the task's arguments as an array, got ${
          describeValue(args)
        }: pass [${typeof args === "string" ? JSON.stringify(args) : "arg"}]`,
      );
    }
    checkTimeout(options?.timeout);
    const job = new SingleJob<T>(options);
    const submission = this.#task(
      fn,
      APPLY,
      args,
      options?.transfer ? copyNothing : copyArguments,
      job,
      0,
      options,
    );
    if (this.#queueFull()) this.#submitWhenRoom(submission);
    else this.#submit(submission);
    return job;
  }

  /**
   * Applies `task` to every item and returns the results in order: Python's
   * `map`. Fails with the first error; the chunks not yet started are dropped.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items: any iterable or async iterable (read whole first).
   * @param options `chunksize`, `timeout` and `signal` (per chunk).
   * @returns The results, in the order of the items.
   * @throws The first task error, {@linkcode TimeoutError}, {@linkcode WorkerExitError}, or the signal's reason.
   *
   * @example Map
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
   * ```
   */
  map<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every item: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  map<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  map(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#mapAll(task, items, MAP_CHUNK, options);
  }

  /**
   * Like {@linkcode Pool.map}, but returns at once: Python's `map_async`.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   *
   * @example Map in the background
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const result = pool.mapAsync((x: number) => x + 1, [1, 2]);
   * deepEqual(await result.get(), [2, 3]);
   * ```
   */
  mapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every item, returning at once: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   */
  mapAsync<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  mapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(this.#mapAll(task, items, MAP_CHUNK, options));
  }

  /**
   * Like {@linkcode Pool.map}, with each item an argument tuple: Python's
   * `starmap`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   *
   * @example Starmap
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.starmap(Math.max, [[1, 5], [7, 2]]), [5, 7]);
   * ```
   */
  starmap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every argument tuple: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  starmap<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  starmap(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#mapAll(task, items, STARMAP_CHUNK, options);
  }

  /**
   * Like {@linkcode Pool.starmap}, but returns at once: Python's
   * `starmap_async`.
   *
   * @param task An export name of the module, or a self-contained function.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   *
   * @example Starmap in the background
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * deepEqual(await pool.starmapAsync((a: number, b: number) => a - b, [[3, 1]]), [2]);
   * ```
   */
  starmapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every argument tuple, returning at once: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The argument tuples.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending list of results.
   */
  starmapAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  starmapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(this.#mapAll(task, items, STARMAP_CHUNK, options));
  }

  async #mapAll(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    kind: TaskKind,
    options: MapOptions | undefined,
  ): Promise<unknown[]> {
    this.#checkOpen();
    const fn = this.#functionRef(task);
    checkTimeout(options?.timeout);
    checkPositive(options?.chunksize, "chunksize");
    const all = await collect(items);
    if (kind === STARMAP_CHUNK) checkTuples(all);
    const chunksize = options?.chunksize ??
      Math.max(1, Math.ceil(all.length / (this.#processes * 4)));
    const chunkCount = Math.ceil(all.length / chunksize);
    const job = new MapJob(chunkCount, (tasks) => this.#cancel(tasks));
    for (let index = 0; index < chunkCount; index++) {
      const chunk = all.slice(index * chunksize, (index + 1) * chunksize);
      const task = this.#task(fn, kind, chunk, copyItems, job, index, options);
      job.tasks.push(task);
      if (this.#queueFull()) await this.#submitWhenRoom(task);
      else this.#submit(task);
      // Large chunks leave as they are made, so that workers compute while
      // the rest are copied; small ones go in batches.
      if (chunk.length >= EAGER_CHUNK) this.#dispatch();
    }
    return job.promise;
  }

  /**
   * Applies `task` to every item, yielding results in order as they come:
   * Python's `imap`. Input is pulled lazily (sync, async, even infinite
   * iterables), with a bounded number of chunks in flight; leaving the loop
   * early drops what is pending.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns An async iterator of results.
   * @throws The task error at the position of the failed item.
   *
   * @example Ordered results from an infinite input
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * function* naturals() { for (let i = 0; ; i++) yield i; }
   * await using pool = new Pool({ processes: 2 });
   * const squares: number[] = [];
   * for await (const y of pool.imap((x: number) => x * x, naturals())) {
   *   squares.push(y);
   *   if (squares.length === 5) break;
   * }
   * deepEqual(squares, [0, 1, 4, 9, 16]);
   * ```
   */
  imap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * Streams a self-contained function over the items, in order: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns An async iterator of results.
   */
  imap<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imap(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#stream(task, items, true, options);
  }

  /**
   * Like {@linkcode Pool.imap}, but yields results as they finish, in any
   * order: Python's `imap_unordered`.
   *
   * @param task An export name of the module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns An async iterator of results.
   *
   * @example As they finish
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * const results: number[] = [];
   * for await (const y of pool.imapUnordered((x: number) => x * x, [1, 2, 3])) results.push(y);
   * deepEqual(results.sort((a, b) => a - b), [1, 4, 9]);
   * ```
   */
  imapUnordered<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * Streams a self-contained function over the items, as they finish: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns An async iterator of results.
   */
  imapUnordered<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imapUnordered(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#stream(task, items, false, options);
  }

  async *#stream(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    ordered: boolean,
    options: MapOptions | undefined,
  ): AsyncGenerator<unknown, void, undefined> {
    this.#checkOpen();
    const fn = this.#functionRef(task);
    checkTimeout(options?.timeout);
    checkPositive(options?.chunksize, "chunksize");
    const chunksize = options?.chunksize ?? 1;
    const window = this.#maxQueue ?? this.#processes * IMAP_WINDOW_PER_WORKER;
    const source = iteratorOf(items);
    const job = new StreamJob();
    let submitted = 0;
    let yielded = 0;
    let exhausted = false;
    try {
      while (true) {
        while (!exhausted && job.pending.size < window) {
          const pulled = pull(source, chunksize);
          const chunk = Array.isArray(pulled) ? pulled : await pulled;
          if (chunk.length < chunksize) exhausted = true;
          if (chunk.length === 0) break;
          const next = this.#task(
            fn,
            MAP_CHUNK,
            chunk,
            copyItems,
            job,
            submitted++,
            options,
          );
          job.pending.add(next);
          if (this.#queueFull()) await this.#submitWhenRoom(next);
          else this.#submit(next);
        }
        if (yielded === submitted && exhausted) return;
        const key = ordered ? yielded : job.arrivals[0];
        const outcome = key === undefined ? undefined : job.settled.get(key);
        if (outcome === undefined) {
          await job.next();
          continue;
        }
        job.settled.delete(key!);
        if (!ordered) job.arrivals.shift();
        yielded++;
        if (!outcome.ok) throw outcome.value;
        yield* outcome.value as unknown[];
      }
    } finally {
      this.#cancel([...job.pending]);
      if (!exhausted) await source.iterator.return?.();
    }
  }

  /**
   * Stops taking tasks; the queued ones still run. Then {@linkcode Pool.join}
   * waits for them.
   *
   * @example Close and join
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { rejects } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * pool.close();
   * await pool.join();
   * await rejects(pool.apply(() => 1), /closed/);
   * ```
   */
  close(): void {
    if (this.#state !== "running") return;
    this.#state = "closed";
    this.#stopIdleWorkers();
  }

  /**
   * Waits for the queued tasks to finish and every worker to exit. Call
   * {@linkcode Pool.close} or {@linkcode Pool.terminate} first.
   *
   * @throws {Error} when the pool is still running.
   *
   * @example Join after close
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * const result = pool.applyAsync(() => 5);
   * pool.close();
   * await pool.join();
   * equal(await result, 5);
   * ```
   */
  async join(): Promise<void> {
    if (this.#state === "running") {
      throw new Error(
        "Cannot join a running pool: call close() or terminate() first",
      );
    }
    if (this.#workers.size === 0) return;
    const exited = new Promise<void>((resolve) => {
      const previous = this.#exited;
      this.#exited = () => {
        previous?.();
        resolve();
      };
    });
    // Hold the event loop until the workers are gone.
    this.#updateRef();
    await exited;
  }

  /**
   * Stops every worker now; what is queued or running rejects. Resolves
   * once the workers are gone.
   *
   * @example Terminate
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { rejects } from "node:assert/strict";
   *
   * const pool = new Pool({ processes: 1 });
   * const slow = pool.apply(() => new Promise((r) => setTimeout(r, 10_000)));
   * await pool.terminate();
   * await rejects(slow, /terminated/);
   * ```
   */
  async terminate(): Promise<void> {
    if (this.#state !== "terminated") {
      this.#state = "terminated";
      const error = new Error(
        "The pool was terminated before the task finished",
      );
      this.#failAll(error);
      for (const slot of this.#workers) this.#kill(slot, "SIGKILL");
    }
    await this.join();
  }

  /**
   * Terminates the pool, as Python's `with Pool() as pool:` does on exit.
   *
   * @example Scoped pool
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * {
   *   await using pool = new Pool({ processes: 1 });
   *   equal(await pool.apply(() => 1), 1);
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }

  /**
   * What the pool is doing.
   *
   * @returns Counts of workers and tasks.
   *
   * @example Count completed tasks
   * ```ts
   * import { Pool } from "@multiproc/multiproc/pool";
   * import { equal } from "node:assert/strict";
   *
   * await using pool = new Pool({ processes: 2 });
   * await pool.map((x: number) => x, [1, 2, 3], { chunksize: 1 });
   * equal(pool.stats().completed, 3);
   * ```
   */
  stats(): PoolStats {
    return {
      backend: this.#backend,
      processes: this.#processes,
      workersStarted: this.#started,
      queued: this.#waiting,
      running: this.#running,
      completed: this.#completed,
      failed: this.#failed,
      state: this.#state,
    };
  }

  // ---- submission ------------------------------------------------------

  #checkOpen(): void {
    if (this.#state !== "running") {
      throw new Error(
        `Cannot submit a task: the pool is ${this.#state}: submit before close(), or create a new Pool`,
      );
    }
    if (this.#broken !== undefined) throw this.#broken;
  }

  #functionRef(task: unknown): FunctionRef {
    if (typeof task === "string") return task;
    if (typeof task !== "function") {
      const iterable = typeof task === "object" && task !== null &&
        (Symbol.iterator in task || Symbol.asyncIterator in task);
      throw new TypeError(
        `Expected the task to be an export name of the task module or a function, got ${
          describeValue(task)
        }: ${
          iterable
            ? "pass the function itself, not what calling it returned; items go in the items argument of map or imap"
            : 'pass the name of an exported function, e.g. "square", or a self-contained function, e.g. (x) => x * x'
        }`,
      );
    }
    const kind = describeFunction(task as AnyFunction);
    if (kind.endsWith("generator function")) {
      throw new TypeError(
        `Cannot run ${kind}${
          (task as AnyFunction).name ? ` ("${(task as AnyFunction).name}")` : ""
        } as a task: the generator it returns cannot be copied to the caller: return an array of the items instead (Array.from(...)), or make each item a task of imap`,
      );
    }
    const code = functionSource(task as AnyFunction);
    let id = this.#inline.get(code);
    if (id === undefined) {
      id = this.#sources.length;
      this.#sources.push(code);
      this.#inline.set(code, id);
    }
    return id;
  }

  #queued(): number {
    return this.#waiting;
  }

  #submit(task: Task): void {
    this.#enqueue([task], false);
    const signal = task.options?.signal;
    if (signal) {
      if (signal.aborted) {
        this.#abort(task, signal.reason);
        return;
      }
      // Removed when the task settles: a long-lived signal must not keep
      // every task it ever guarded.
      task.onAbort = () => this.#abort(task, signal.reason);
      signal.addEventListener("abort", task.onAbort, { once: true });
    }
    this.#updateRef();
    this.#scheduleDispatch();
  }

  #queueFull(): boolean {
    return this.#maxQueue !== undefined && this.#queued() >= this.#maxQueue;
  }

  /** Submits, first waiting while the queue is at `maxQueue`. */
  async #submitWhenRoom(task: Task): Promise<void> {
    while (this.#queueFull()) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
      if (this.#state === "terminated") {
        task.job.settle(task, false, new Error("The pool was terminated"));
        return;
      }
    }
    this.#submit(task);
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    queueMicrotask(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  /** How many tasks a worker may hold: few for long tasks, many for tiny ones. */
  #capacity(): number {
    const avg = this.#avgTaskMs;
    // Medium tasks: one more in flight hides the round trip; long ones go
    // one at a time, so that the load stays even.
    if (!(avg < TARGET_BATCH_MS)) return avg < PREFETCH_BELOW_MS ? 2 : 1;
    const batch = Math.min(MAX_BATCH, Math.floor(TARGET_BATCH_MS / avg));
    return 2 * Math.max(1, batch);
  }

  #nextTask(): Task | undefined {
    while (this.#queueHead < this.#queue.length) {
      const task = this.#queue[this.#queueHead]!;
      if (!task.done) return task;
      this.#queue[this.#queueHead++] = undefined as unknown as Task;
    }
    return undefined;
  }

  /** Adds tasks at the back, or at the front (tasks to run again). */
  #enqueue(tasks: Task[], front: boolean): void {
    for (const task of tasks) task.queued = true;
    this.#waiting += tasks.length;
    if (front) this.#queue.splice(this.#queueHead, 0, ...tasks);
    else this.#queue.push(...tasks);
  }

  #takeTask(): Task {
    const task = this.#queue[this.#queueHead]!;
    this.#queue[this.#queueHead++] = undefined as unknown as Task;
    task.queued = false;
    this.#waiting--;
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    return task;
  }

  #dispatch(): void {
    if (this.#state === "terminated") return;
    // Results arrive far more often than work waits: look at the workers
    // only when there is something to give them.
    if (this.#nextTask() !== undefined) {
      this.#shareQueued();
      if (this.#workers.size < this.#processes) this.#grow();
    }
    this.#wakeWaiters();
    if (this.#state === "closed") this.#stopIdleWorkers();
    this.#updateRef();
  }

  #shareQueued(): void {
    const capacity = this.#capacity();
    // Least loaded first, so that a trickle of tasks spreads over the pool.
    const open = [...this.#workers]
      .filter((slot) => this.#hasRoom(slot, capacity))
      .sort((a, b) => a.inFlight.length - b.inFlight.length);
    // Workers still starting get their share too: a batch taken while they
    // start would leave them idle once they are up.
    let starting = 0;
    for (const slot of this.#workers) {
      if (!slot.ready && !slot.stopping) starting++;
    }
    for (let i = 0; i < open.length; i++) {
      if (this.#nextTask() === undefined) break;
      const slot = open[i]!;
      const share = Math.ceil(this.#queued() / (open.length - i + starting));
      this.#send(slot, Math.min(capacity - slot.inFlight.length, share));
    }
  }

  #hasRoom(slot: WorkerSlot, capacity: number): boolean {
    if (!slot.ready || slot.stopping) return false;
    if (slot.inFlight.length > 0 && slot.inFlight[0]!.isolated) return false;
    if (slot.inFlight.length >= capacity) return false;
    return this.#maxTasksPerChild === undefined ||
      slot.assigned < this.#maxTasksPerChild;
  }

  /** Makes a task, its queues and pipes swapped for what its worker can use. */
  #task(
    fn: FunctionRef,
    kind: TaskKind,
    values: unknown[],
    copy: (values: unknown[]) => unknown,
    job: Job,
    index: number,
    options: SubmitOptions | undefined,
  ): Task {
    const shared = shareValues(values, this.#backend);
    if (shared.cores.length === 0) {
      const payload = copy(values);
      const serialized = payload instanceof Uint8Array ? SERIALIZED : 0;
      return new Task(fn, kind | serialized, payload, job, index, options);
    }
    // Queues shared between threads are shared memory, which structured
    // clone keeps and a serializer refuses.
    const task = new Task(
      fn,
      kind | SHARED,
      copy === copyNothing
        ? shared.values
        : copyValues(shared.values, copy === copyItems ? "item" : "argument"),
      job,
      index,
      options,
    );
    task.cores = shared.cores;
    return task;
  }

  /** Sends up to `count` queued tasks to `slot` in one message. */
  #send(slot: WorkerSlot, count: number): void {
    if (this.#maxTasksPerChild !== undefined) {
      count = Math.min(count, this.#maxTasksPerChild - slot.assigned);
    }
    const message: unknown[] = [RUN];
    const transfer: Transferable[] = [];
    for (let sent = 0; sent < count; sent++) {
      const next = this.#nextTask();
      if (next === undefined) break;
      if (next.isolated && slot.inFlight.length > 0) break;
      const task = this.#takeTask();
      if (typeof task.fn === "number" && !slot.defined.has(task.fn)) {
        slot.handle.post([DEFINE, task.fn, this.#sources[task.fn]]);
        slot.defined.add(task.fn);
      }
      // The payload stays with the task until it settles: a task whose
      // worker dies before starting it is sent again.
      if (task.cores) slot.handle.share(task.cores);
      message.push(task.fn, task.kind, this.#outgoing(task.payload, transfer));
      task.worker = slot;
      slot.inFlight.push(task);
      slot.assigned++;
      this.#running++;
      if (task.options?.transfer) transfer.push(...task.options.transfer);
      if (task.isolated) {
        this.#startTimer(task);
        break;
      }
    }
    if (message.length > 1) {
      slot.handle.post(message, transfer.length > 0 ? transfer : undefined);
    }
  }

  /**
   * What goes in the message for a payload. A thread gets a packed chunk of
   * numbers or serialized values as a transferred copy of its bytes: one
   * memcpy, where Deno copies a typed array in a message about ten times
   * slower, and then its worker_threads visits every element looking for
   * ports (a bare ArrayBuffer has none to visit).
   */
  #outgoing(payload: unknown, transfer: Transferable[]): unknown {
    const packed = payload instanceof Float64Array ||
      payload instanceof Uint8Array;
    if (!packed || this.#backend !== "worker") return payload;
    // A copy, and not `slice()`, which is a view for a Node Buffer: the
    // task keeps its payload to send again if this worker dies.
    const bytes = new Uint8Array(
      payload.buffer,
      payload.byteOffset,
      payload.byteLength,
    ).slice().buffer;
    transfer.push(bytes);
    return bytes;
  }

  #startTimer(task: Task): void {
    const timeout = task.options?.timeout;
    if (!isLimit(timeout)) return;
    // Not setTimeout, which fires at once for 2^31 ms or more.
    task.timer = setLongTimeout(() => {
      this.#stopRunning(
        task,
        new TimeoutError(
          `The task ran longer than its timeout of ${timeout} ms`,
        ),
      );
    }, timeout);
  }

  #abort(task: Task, reason: unknown): void {
    if (task.done) return;
    if (task.worker) {
      this.#stopRunning(task, reason);
      return;
    }
    this.#finish(task, false, reason);
    this.#scheduleDispatch();
  }

  /** Stops a running task by replacing its worker, and fails it with `error`. */
  #stopRunning(task: Task, error: unknown): void {
    const slot = task.worker!;
    this.#finish(task, false, error);
    slot.inFlight.length = 0;
    this.#kill(slot, "SIGKILL");
  }

  #cancel(tasks: Task[]): void {
    for (const task of tasks) {
      if (!task.done && task.worker === undefined) this.#release(task);
    }
  }

  #wakeWaiters(): void {
    while (
      this.#waiters.length > 0 &&
      (this.#maxQueue === undefined || this.#queued() < this.#maxQueue)
    ) {
      this.#waiters.shift()!();
    }
  }

  // ---- results ---------------------------------------------------------

  /** Marks a task done and lets go of what it holds. */
  #release(task: Task): void {
    task.done = true;
    if (task.queued) {
      // Left in the queue, skipped when it comes up; no longer counted.
      task.queued = false;
      this.#waiting--;
    }
    task.payload = undefined;
    task.timer?.clear();
    if (task.onAbort) {
      task.options!.signal!.removeEventListener("abort", task.onAbort);
    }
  }

  #finish(task: Task, ok: boolean, value: unknown): void {
    if (task.done) return;
    this.#release(task);
    if (task.worker !== undefined) this.#running--;
    if (ok) this.#completed++;
    else this.#failed++;
    task.job.settle(task, ok, ok ? value : decodeError(value));
  }

  #onResults(slot: WorkerSlot, message: unknown[]): void {
    const count = (message.length - 2) / 2;
    if (count > 0) {
      const perTask = (message[1] as number) / count;
      this.#avgTaskMs = this.#avgTaskMs === Number.POSITIVE_INFINITY
        ? perTask
        : this.#avgTaskMs * 0.7 + perTask * 0.3;
    }
    for (let i = 2; i < message.length; i += 2) {
      const task = slot.inFlight.shift();
      if (task) this.#finish(task, message[i] === 1, message[i + 1]);
    }
    if (
      this.#maxTasksPerChild !== undefined &&
      slot.assigned >= this.#maxTasksPerChild && slot.inFlight.length === 0
    ) {
      this.#retire(slot);
    }
    this.#dispatch();
  }

  #onMessage(slot: WorkerSlot, message: unknown[]): void {
    switch (message[0]) {
      case RESULTS:
        this.#onResults(slot, message);
        break;
      case ONLINE:
        slot.online = true;
        // A worker asked to stop while it started stops now.
        if (!slot.stopping) slot.handle.share(this.#initCores);
        slot.handle.post(
          slot.stopping ? [STOP] : [INIT, { ...this.#setup, name: slot.name }],
        );
        break;
      case READY:
        slot.ready = true;
        this.#startFailures = 0;
        this.#dispatch();
        break;
      case INIT_FAILED:
        this.#break(decodeError(message[1]));
        break;
    }
  }

  // ---- workers ---------------------------------------------------------

  #spawn(): void {
    const slot = new WorkerSlot(`PoolWorker-${++this.#started}`);
    const start = this.#backend === "worker" ? startThread : startProcess;
    try {
      slot.handle = start({
        maxHeapMb: this.#maxHeapMb,
        permissions: this.#permissions,
        module: this.#setup.module,
        onMessage: (message) => this.#onMessage(slot, message),
        onExit: (exit) => this.#onExit(slot, exit),
      });
    } catch (error) {
      // Deno refuses some starts at once (a missing permission).
      this.#break(error);
      return;
    }
    slot.handle.setRef(this.#referenced);
    this.#workers.add(slot);
  }

  /**
   * Starts workers up to the eager ones, and more while tasks wait that
   * the workers starting will not take (queued, or queued in a busy worker
   * behind its running task), up to `processes`, with at most
   * `#startLimit` starting at once: a large pool costs only what its work
   * needs, and never starts hundreds of runtimes in one go.
   */
  #grow(): void {
    if (this.#broken !== undefined || this.#state === "terminated") return;
    let active = 0;
    let starting = 0;
    let backlog = this.#waiting;
    for (const slot of this.#workers) {
      if (slot.stopping) continue;
      active++;
      if (!slot.ready) starting++;
      else if (slot.inFlight.length > 1) backlog += slot.inFlight.length - 1;
    }
    while (
      active < this.#processes && starting < this.#startLimit &&
      (this.#state === "running" && active < this.#eager || backlog > starting)
    ) {
      this.#spawn();
      if (this.#broken !== undefined) return;
      active++;
      starting++;
    }
  }

  #retire(slot: WorkerSlot): void {
    slot.stopping = true;
    slot.handle.post([STOP]);
    this.#grow();
  }

  #kill(slot: WorkerSlot, signal: "SIGTERM" | "SIGKILL"): void {
    slot.stopping = true;
    slot.handle.kill(signal);
  }

  #stopIdleWorkers(): void {
    if (this.#state !== "closed" || this.#nextTask() !== undefined) return;
    for (const slot of this.#workers) {
      if (!slot.stopping && slot.inFlight.length === 0) {
        slot.stopping = true;
        // Before ONLINE a message could be lost on IPC: ONLINE sends STOP.
        if (slot.online) slot.handle.post([STOP]);
      }
    }
  }

  #onExit(slot: WorkerSlot, exit: WorkerExit): void {
    this.#workers.delete(slot);
    const lost = slot.inFlight.splice(0);
    if (exit.startError !== undefined) this.#break(exit.startError);
    // Killed from outside while starting is not the module's fault.
    const failedToStart = !slot.ready && !slot.stopping &&
      exit.signal === null && this.#state === "running";
    if (failedToStart) {
      if (++this.#startFailures >= MAX_START_FAILURES) {
        this.#break(
          new WorkerExitError(
            `Workers keep exiting before they are ready (exit code ${exit.exitCode}${
              exit.signal ? `, ${exit.signal}` : ""
            }): check the task module and the initializer`,
            { ...exit, cause: exit.error },
          ),
        );
      }
    }
    if (lost.length > 0) {
      const [culprit, ...notStarted] = lost;
      const how = `${
        exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`
      }${exit.error ? `: ${String(exit.error)}` : ""}`;
      const details = {
        exitCode: exit.exitCode,
        signal: exit.signal,
        cause: exit.error,
      };
      // Tasks it had not started run again elsewhere, unless their data was
      // transferred to it and went with it.
      const retry = notStarted.filter((task) => !task.options?.transfer);
      for (const task of notStarted) {
        if (task.options?.transfer) {
          this.#finish(
            task,
            false,
            new WorkerExitError(
              `The worker holding the task's transferred data exited (${how})`,
              details,
            ),
          );
        }
      }
      this.#running -= retry.length;
      for (const task of retry) task.worker = undefined;
      this.#enqueue(retry, true);
      this.#finish(
        culprit!,
        false,
        new WorkerExitError(
          `The worker running the task exited (${how})`,
          details,
        ),
      );
    }
    this.#grow();
    if (this.#workers.size === 0) {
      const exited = this.#exited;
      this.#exited = undefined;
      exited?.();
    }
    this.#dispatch();
  }

  /** A worker cannot start: fail what is pending and every later submission. */
  #break(error: unknown): void {
    if (this.#broken !== undefined) return;
    this.#broken = error;
    this.#failAll(error);
    for (const slot of this.#workers) this.#kill(slot, "SIGKILL");
  }

  #failAll(error: unknown): void {
    for (const slot of this.#workers) {
      for (const task of slot.inFlight.splice(0)) {
        this.#finish(task, false, error);
      }
    }
    while (this.#nextTask() !== undefined) {
      this.#finish(this.#takeTask(), false, error);
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Holds the event loop while there is work or a join; lets it go when idle. */
  #updateRef(): void {
    const busy = this.#running > 0 || this.#queued() > 0 ||
      this.#waiters.length > 0 || this.#exited !== undefined;
    if (busy === this.#referenced) return;
    this.#referenced = busy;
    for (const slot of this.#workers) slot.handle.setRef(busy);
  }
}

async function collect(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<unknown[]> {
  if (Array.isArray(items)) return items;
  const all = pull(iteratorOf(items), Number.POSITIVE_INFINITY);
  return Array.isArray(all) ? all : await all;
}

/** Each item of `starmap` is spread into the task's arguments. */
function checkTuples(items: unknown[]): void {
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Partial<Iterable<unknown>> | null | undefined;
    if (typeof item?.[Symbol.iterator] === "function") continue;
    throw new TypeError(
      `Expected each item of starmap to be an array of arguments, got ${
        describeValue(items[i])
      } at index ${i}: pass [[1, 2], [3, 4]] for f(1, 2) and f(3, 4), or use map for one argument per item`,
    );
  }
}

type AnyIterator =
  | { sync: true; iterator: Iterator<unknown> }
  | { sync: false; iterator: AsyncIterator<unknown> };

function iteratorOf(
  items: Iterable<unknown> | AsyncIterable<unknown>,
): AnyIterator {
  // Primitives other than null and undefined have properties to look up.
  const candidate = items as
    | Partial<
      AsyncIterable<unknown> & Iterable<unknown>
    >
    | null
    | undefined;
  const asyncIterator = candidate?.[Symbol.asyncIterator];
  if (typeof asyncIterator === "function") {
    return { sync: false, iterator: asyncIterator.call(items) };
  }
  const iterator = candidate?.[Symbol.iterator];
  if (typeof iterator === "function") {
    return { sync: true, iterator: iterator.call(items) };
  }
  throw new TypeError(
    `Expected the items as an iterable or async iterable (an array, a Set, a generator…), got ${
      describeValue(items)
    }: pass the items in an array or another iterable${
      typeof items === "number" ? `, e.g. [${items}]` : ""
    }`,
  );
}

/** Pulls up to `count` items: at once from a sync iterator, else as a promise. */
function pull(
  source: AnyIterator,
  count: number,
): unknown[] | Promise<unknown[]> {
  const chunk: unknown[] = [];
  if (source.sync) {
    while (chunk.length < count) {
      const next = source.iterator.next();
      if (next.done) break;
      chunk.push(next.value);
    }
    return chunk;
  }
  const iterator = source.iterator;
  return (async () => {
    while (chunk.length < count) {
      const next = await iterator.next();
      if (next.done) break;
      chunk.push(next.value);
    }
    return chunk;
  })();
}
