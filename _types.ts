// The types that several files share, in a file of types only: the public
// files re-export them and the private ones import them from here, so that
// no file has to import a file that imports it back.

/** Where a pool runs its tasks. */
export type Backend = "worker" | "process";

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

/** Options of one submission. */
export interface SubmitOptions {
  /** Stop waiting and abort the task: a queued task is dropped, a running one's worker is replaced. @default {undefined} */
  signal?: AbortSignal;
  /** Milliseconds the task may run: then it is stopped, its worker replaced, and the call rejects with {@linkcode TimeoutError}; `Infinity` sets no limit. @default {undefined} */
  timeout?: number;
  /** Objects to transfer rather than copy (worker backend), as in `postMessage`. @default {undefined} */
  transfer?: Transferable[];
}

/** Any function, as a task or initializer: its source is sent to the worker. */
// deno-lint-ignore no-explicit-any
export type TaskFunction = (...args: any[]) => any;

/** Options of a `Pool`, and of the local pool of a Redis worker host. */
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
  /** V8 heap limit of each worker in MiB: a worker that exceeds it dies with `WorkerExitError`. @default {undefined} */
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
