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
