// Runtime adapter for permissions: which `deno run` flags a child process
// gets, and sandboxing where the runtime has per-process permissions.
// Only Deno has flags that deny a child the network, so only there can a
// worker be given less than its parent.

import { spillScopes } from "./_spill.ts";
import type {
  Backend,
  PermissionGrant,
  WorkerPermissions,
  WorkerPermissionsObject,
} from "./_types.ts";

const isDeno = "Deno" in globalThis;

type Kind = keyof WorkerPermissionsObject;

const kinds: readonly Kind[] = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
];

/** The field of a Deno permission descriptor that scopes each kind. */
const scopeField: Record<Kind, string> = {
  read: "path",
  write: "path",
  net: "host",
  env: "variable",
  run: "command",
  ffi: "path",
  sys: "kind",
  import: "host",
};

// A child may get only what this process has; querying never prompts.
function granted(kind: Kind, scope?: string): boolean {
  const descriptor = scope === undefined
    ? { name: kind }
    : { name: kind, [scopeField[kind]]: scope };
  return Deno.permissions.querySync(descriptor as Deno.PermissionDescriptor)
    .state === "granted";
}

// A refused grant says which flag to add or which scope to drop.
function grantError(kind: Kind, scope?: string): RangeError {
  return new RangeError(
    scope === undefined
      ? `Cannot give workers all of "${kind}" access, which this process does not have: run it with --allow-${kind} or narrow permissions.${kind}`
      : `Cannot give workers "${kind}" access to "${scope}", which this process does not have: run it with --allow-${kind}=${scope} or take "${scope}" out of permissions.${kind}`,
  );
}

// A child that inherits gets at least the directories where large queue
// items travel (see _spill.ts), which this process may use.
/** Scoped read and write flags for those directories, where `flags` lacks them. */
function spillFlags(flags: string[]): string[] {
  const dirs = spillScopes();
  if (dirs.length === 0) return [];
  return (["read", "write"] as const)
    .filter((kind) => !flags.includes(`--allow-${kind}`))
    .map((kind) => `--allow-${kind}=${dirs.join(",")}`);
}

/** The `deno run` flag for one kind, or none; throws where it would escalate. */
function flagOf(kind: Kind, grant: PermissionGrant | undefined): string[] {
  if (grant === undefined || grant === false) return [];
  if (grant === "inherit") return granted(kind) ? [`--allow-${kind}`] : [];
  if (grant === true) {
    if (!granted(kind)) throw grantError(kind);
    return [`--allow-${kind}`];
  }
  if (grant.length === 0) return [];
  for (const scope of grant) {
    if (!granted(kind, scope)) throw grantError(kind, scope);
  }
  return [`--allow-${kind}=${grant.join(",")}`];
}

/**
 * Checks `permissions` when a pool or process is created, so a bad value
 * fails there and not in every worker.
 *
 * @throws {TypeError} when the value is malformed, or asks for a sandbox the
 * runtime or backend cannot give.
 * @throws {RangeError} when it grants more than this process has.
 */
export function checkPermissions(
  permissions: WorkerPermissions | undefined,
  backend: Backend,
): void {
  if (permissions === undefined || permissions === "inherit") return;
  if (
    permissions !== "none" &&
    (typeof permissions !== "object" || permissions === null ||
      Array.isArray(permissions))
  ) {
    throw new TypeError(
      `Expected permissions to be "inherit", "none" or an object such as { read: ["./data"] }, got "${
        String(permissions)
      }"`,
    );
  }
  if (!isDeno) {
    throw new TypeError(
      `Cannot sandbox workers in this runtime: permissions needs Deno, whose --allow-* flags can deny a child process the file system and the network; leave permissions out here`,
    );
  }
  if (backend === "worker") {
    throw new TypeError(
      `Cannot sandbox worker threads: they share this process's permissions; use backend: "process" with permissions`,
    );
  }
  if (permissions === "none") return;
  for (const key of Object.keys(permissions)) {
    const grant = permissions[key as Kind];
    const valid = kinds.includes(key as Kind) &&
      (grant === "inherit" || typeof grant === "boolean" ||
        (Array.isArray(grant) &&
          grant.every((scope) => typeof scope === "string")));
    if (!valid) {
      throw new TypeError(
        `Expected permissions.${key} to be "inherit", true, false or a list of strings for one of ${
          kinds.join(", ")
        }, got "${String(grant)}"`,
      );
    }
  }
  childPermissionFlags(permissions, undefined);
}

/**
 * The permission flags of a Deno child process: what `permissions` grants
 * (by default what this process has), plus `--preload` of the task module,
 * which loads it and its imports without read access.
 */
export function childPermissionFlags(
  permissions: WorkerPermissions | undefined,
  module: string | undefined,
): string[] {
  const grants: WorkerPermissionsObject = permissions === undefined ||
      permissions === "inherit"
    ? Object.fromEntries(kinds.map((kind) => [kind, "inherit"]))
    : permissions === "none"
    ? {}
    : permissions;
  const flags = kinds.flatMap((kind) => flagOf(kind, grants[kind]));
  if (flags.length === kinds.length && !flags.some((f) => f.includes("="))) {
    return ["--allow-all"];
  }
  // A sandbox gets only what it asked for.
  if (permissions === undefined || permissions === "inherit") {
    flags.push(...spillFlags(flags));
  }
  const readsAll = flags.includes("--allow-read");
  // Deno's node:child_process gives a `deno run` with no permission flag
  // -A: a child meant to have nothing must say so.
  if (flags.length === 0) flags.push("--deny-net");
  if (module !== undefined && !readsAll) flags.push(`--preload=${module}`);
  return flags;
}

/** Node's permission-model scopes and the flag that grants each. */
const nodeFlags: Record<string, string> = {
  WorkerThreads: "--allow-worker",
  ChildProcess: "--allow-child-process",
  FileSystemRead: "--allow-fs-read",
  FileSystemWrite: "--allow-fs-write",
  Addon: "--allow-addons",
  WASI: "--allow-wasi",
};

/**
 * Names the flag to add in a refusal by Node's permission model, as Node 22
 * and later do and Node 20 does not; other errors are returned unchanged.
 */
export function withPermissionHint(error: unknown): unknown {
  const { code, permission } = (error ?? {}) as {
    code?: unknown;
    permission?: unknown;
  };
  if (code !== "ERR_ACCESS_DENIED" || !(error instanceof Error)) return error;
  const flag = nodeFlags[String(permission)];
  if (flag !== undefined && !error.message.includes("--allow-")) {
    error.message = `${error.message}: run node with ${flag}`;
  }
  return error;
}
