// Runtime adapter for workers and child runtimes: what differs between Deno
// and Node (or Bun) when starting another copy of ourselves.
import { availableParallelism } from "node:os";
import process from "node:process";
import { childPermissionFlags } from "./_permissions.ts";
import type { Backend, WorkerPermissions } from "./_types.ts";

const isDeno = "Deno" in globalThis;
const isTypeScriptSource = import.meta.url.endsWith(".ts");

/**
 * The URL of a sibling module of this package by its base name: `.ts` in the
 * sources (Deno, JSR), `.js` in the npm build, where `tsc` rewrites import
 * specifiers but not URL strings.
 */
export function siblingUrl(name: string): URL {
  return new URL(
    `./${name}${isTypeScriptSource ? ".ts" : ".js"}`,
    import.meta.url,
  );
}

const isBun = "Bun" in globalThis;

/**
 * Why this runtime cannot give a worker of each backend a heap limit that
 * ends it with an exit we can see, or `undefined` where it can. Deno's worker
 * threads stop silently instead; Bun (JavaScriptCore) has no V8 heap flags.
 */
export const heapLimitUnsupported: Record<
  Backend,
  string | undefined
> = {
  worker: isDeno
    ? "Deno's worker threads stop without a trace when they run out of memory"
    : isBun
    ? "Bun's workers have no heap limit"
    : undefined,
  process: isBun ? "Bun has no V8 heap flags" : undefined,
};

/**
 * Whether `process.send` throws at once on a value it cannot serialize. In
 * Deno it sends something the other side cannot read, which crashes the
 * reader, so values must be checked before they are sent.
 */
export const ipcRejectsUncloneable: boolean = !isDeno;

/** How many workers a pool gets by default: the number of CPUs. */
export function cpuCount(): number {
  return availableParallelism();
}

// Node's execArgv holds options only, so an element without a dash is the
// value of the option before it (`--test-name-pattern x`) and goes with it.
/** This process's Node flags minus test runners, debuggers and watchers. */
export function inheritableNodeFlags(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  let dropping = false;
  for (const arg of execArgv) {
    if (arg.startsWith("-")) {
      dropping = /^--(test|inspect|debug|watch|experimental-test)/.test(arg);
    }
    if (!dropping) kept.push(arg);
  }
  return kept;
}

/** How to start a child runtime. */
export interface ChildRuntimeOptions {
  /** V8 flags beside those this process was started with. */
  v8Flags: readonly string[];
  /** What the child may do (Deno); checked by `checkPermissions`. */
  permissions: WorkerPermissions | undefined;
  /** The task module the child will load, if any. */
  module: string | undefined;
}

// A worker process must run under the same runtime, flags and permissions.
/**
 * The command that runs `script` in a new process of this same runtime, with
 * the permissions asked for (Deno) or this process's V8 and loader flags
 * (Node).
 */
export function childRuntimeCommand(
  script: URL,
  options: ChildRuntimeOptions,
): { command: string; args: string[] } {
  if (isDeno) {
    const v8 = options.v8Flags.length > 0
      ? [`--v8-flags=${options.v8Flags.join(",")}`]
      : [];
    return {
      command: Deno.execPath(),
      args: [
        "run",
        "--no-prompt",
        ...childPermissionFlags(options.permissions, options.module),
        ...v8,
        script.href,
      ],
    };
  }
  return {
    command: process.execPath,
    args: [
      ...inheritableNodeFlags(process.execArgv),
      ...options.v8Flags,
      script.pathname,
    ],
  };
}

/**
 * Whether a typed array that came over a child process's IPC channel is a
 * view into the message's bytes (Node, Bun) rather than a copy (Deno).
 */
export const ipcSharesViews: boolean = !isDeno;
