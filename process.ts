/**
 * Python's `multiprocessing.Process` for Deno and Node: run a function in
 * another OS process of the same runtime (or, with `backend: "worker"`, a
 * worker thread), wait for it, stop it, read its exit code.
 *
 * Deno permissions: the process backend needs `--allow-run` and `--allow-env`
 * (the child gets this process's permissions, or fewer with the
 * `permissions` option); the worker backend needs `--allow-read` for this
 * package's files and the target's module. A missing permission fails with
 * Deno's `NotCapable` error naming the flag to add.
 *
 * ```ts
 * import { Process } from "@multiproc/multiproc/process";
 * import { equal } from "node:assert/strict";
 *
 * const p = new Process({ target: (name: string) => console.log(`Hello ${name}`), args: ["test"] });
 * p.start();
 * await p.join();
 * equal(p.exitCode, 0);
 * ```
 *
 * @module
 */
import { realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getContext } from "./_context.ts";
import { defineInspect } from "./_inspect.ts";
import { checkPermissions } from "./_permissions.ts";
import type { Backend, WorkerPermissions } from "./_types.ts";
import { checkTimeout, waitAtMost } from "./_deadline.ts";
import { shareValues } from "./_share.ts";
import { signalNumber } from "./_spawn.ts";
import {
  type AnyFunction,
  copyValues,
  describeValue,
  functionSource,
  toModuleUrl,
} from "./_values.ts";
import {
  checkHeapLimit,
  startProcess,
  startThread,
  type WorkerExit,
  type WorkerHandle,
} from "./_worker_handle.ts";
import { INIT, ONLINE, type WorkerSetup } from "./_wire.ts";

export type {
  PermissionGrant,
  WorkerPermissions,
  WorkerPermissionsObject,
} from "./_types.ts";

/** Options of {@linkcode Process}. */
export interface ProcessOptions {
  /** What to run: an export name of `module`, or a self-contained function. */
  // deno-lint-ignore no-explicit-any
  target: string | ((...args: any[]) => unknown);
  /** The module whose export `target` names: a URL, a `file:` URL string, or a path. @default {undefined} */
  module?: string | URL;
  /** The target's arguments, copied (structured clone) at `start()`. @default {[]} */
  args?: unknown[];
  /** The name `currentProcess()` reports inside. @default {"Process-N"} */
  name?: string;
  /**
   * `"process"`: a child process of this runtime with its own pid;
   * `"worker"`: a worker thread (same pid).
   *
   * @default {"process"}
   */
  backend?: Backend;
  /** V8 heap limit in MiB. @default {undefined} */
  maxHeapMb?: number;
  /**
   * What the process may do, for code you do not trust (Deno,
   * `backend: "process"`): `"none"`, or kind by kind as in Deno's worker
   * permissions, e.g. `{ read: ["./data"] }`; a kind left out is denied. The
   * child gets those `--allow-*` flags; its module and that module's imports
   * load all the same (Deno's `--preload`). Elsewhere only `"inherit"` is
   * accepted.
   *
   * @default {"inherit"}
   */
  permissions?: WorkerPermissions;
}

/** Options of {@linkcode Process.join}. */
export interface JoinOptions {
  /** Milliseconds to wait at most; then `join` returns and the process may still run. `Infinity` (or leaving it out) waits without limit. @default {undefined} */
  timeout?: number;
}

/** What {@linkcode currentProcess} returns. */
export interface CurrentProcess {
  /** `"MainProcess"`, `"PoolWorker-N"`, `"Process-N"` or the name given. */
  name: string;
  /** The OS process id (a worker thread shares its parent's). */
  pid: number;
}

let created = 0;

/**
 * A function running in another process: Python's
 * `multiprocessing.Process`. Create it, `start()` it, `join()` it. The
 * target's error, if it throws, is printed to the child's stderr and
 * `exitCode` is 1.
 *
 * @example Run an exported function in a child process
 * ```ts
 * import { Process } from "@multiproc/multiproc/process";
 * import { equal, notEqual } from "node:assert/strict";
 *
 * const p = new Process({ target: (x: number) => { if (x !== 1) throw new Error("bad"); }, args: [1] });
 * p.start();
 * notEqual(p.pid, null);
 * await p.join();
 * equal(p.exitCode, 0);
 * ```
 *
 * @example Stop a process
 * ```ts
 * import { Process } from "@multiproc/multiproc/process";
 * import { equal } from "node:assert/strict";
 *
 * const p = new Process({ target: () => new Promise((r) => setTimeout(r, 60_000)) });
 * p.start();
 * p.terminate();
 * await p.join();
 * equal(p.exitCode, -15);
 * ```
 */
export class Process implements AsyncDisposable {
  /** The name `currentProcess()` reports inside the process. */
  readonly name: string;
  #setup: WorkerSetup;
  #backend: Backend;
  #maxHeapMb: number | undefined;
  #permissions: WorkerPermissions | undefined;
  #startError: unknown = undefined;
  #handle: WorkerHandle | undefined;
  #exitCode: number | null = null;
  #exited: Promise<void> | undefined;
  #stopSignal: "SIGTERM" | "SIGKILL" | undefined;

  /**
   * Describes the process; {@linkcode Process.start} starts it.
   *
   * @param options The target, its module and arguments, name and backend.
   * @throws {TypeError} when `target` is neither a name nor a function,
   * `backend` is unknown, or `permissions` is invalid or asks for a sandbox
   * this runtime or backend cannot give.
   * @throws {RangeError} when `permissions` grants more than this process has.
   */
  constructor(options: ProcessOptions) {
    const target = options?.target;
    if (typeof target !== "string" && typeof target !== "function") {
      throw new TypeError(
        `Expected target to be an export name or a function, got ${
          describeValue(target)
        }`,
      );
    }
    if (typeof target === "string" && options.module === undefined) {
      throw new TypeError(
        `Cannot find the target "${target}": pass the module that exports it as module, e.g. { module: import.meta.url, target: "${target}" }`,
      );
    }
    const backend = options.backend ?? "process";
    if (backend !== "process" && backend !== "worker") {
      throw new TypeError(
        `Expected backend to be "process" or "worker", got "${
          String(backend)
        }"`,
      );
    }
    this.#backend = backend;
    checkHeapLimit(backend, options.maxHeapMb);
    this.#maxHeapMb = options.maxHeapMb;
    checkPermissions(options.permissions, backend);
    this.#permissions = options.permissions;
    this.name = options.name ?? `Process-${++created}`;
    this.#setup = {
      module: options.module === undefined
        ? undefined
        : toModuleUrl(options.module),
      name: this.name,
      initializer: undefined,
      initializerIsSource: false,
      initArgs: [],
      target: {
        fn: typeof target === "string"
          ? target
          : functionSource(target as AnyFunction),
        isSource: typeof target === "function",
        args: options.args ?? [],
      },
    };
  }

  /**
   * Starts the process.
   *
   * @throws {Error} when it was started before, or the process cannot be
   * started at all (Deno's `NotCapable` names the `--allow-*` flag missing).
   * @throws {TypeError} when an argument cannot be copied.
   *
   * @example Start
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Process({ target: () => {}, backend: "worker" });
   * p.start();
   * await p.join();
   * equal(p.exitCode, 0);
   * ```
   */
  start(): void {
    if (this.#handle !== undefined) {
      throw new Error(
        `Cannot start ${this.name} twice: create a new Process to run it again`,
      );
    }
    const target = this.#setup.target!;
    const shared = shareValues(target.args, this.#backend);
    const setup: WorkerSetup = {
      ...this.#setup,
      target: { ...target, args: copyValues(shared.values, "argument") },
      shared: shared.cores.length > 0,
    };
    const start = this.#backend === "process" ? startProcess : startThread;
    let onExit!: () => void;
    this.#exited = new Promise((resolve) => onExit = resolve);
    this.#handle = start({
      maxHeapMb: this.#maxHeapMb,
      permissions: this.#permissions,
      module: this.#setup.module,
      onMessage: (message) => {
        if (message[0] !== ONLINE) return;
        this.#handle!.share(shared.cores);
        this.#handle!.post([INIT, setup]);
      },
      onExit: (exit) => {
        if (exit.startError !== undefined) this.#startError = exit.startError;
        else this.#exitCode = this.#codeOf(exit);
        onExit();
      },
    });
  }

  #codeOf(exit: WorkerExit): number {
    if (exit.signal !== null) return -signalNumber(exit.signal);
    // A terminated thread reports 1: show it as the signal we meant.
    if (this.#stopSignal !== undefined && this.#backend === "worker") {
      return -signalNumber(this.#stopSignal);
    }
    return exit.exitCode ?? 1;
  }

  /**
   * Waits for the process to end: Python's `join`. With a `timeout` it
   * returns after that long even if the process still runs (check
   * {@linkcode Process.isAlive}).
   *
   * @param options A `timeout` in milliseconds.
   * @throws {Error} when the process was never started, or could not start
   * (the reason, e.g. Deno's `NotCapable` naming the flag missing).
   *
   * @example Join with a timeout
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * await using p = new Process({ target: () => new Promise((r) => setTimeout(r, 60_000)) });
   * p.start();
   * await p.join({ timeout: 50 });
   * equal(p.isAlive(), true);
   * ```
   */
  async join(options: JoinOptions = {}): Promise<void> {
    checkTimeout(options.timeout);
    if (this.#exited === undefined) {
      throw new Error(
        `Cannot join ${this.name}: it was not started: call start() first`,
      );
    }
    await waitAtMost(this.#exited, options.timeout);
    if (this.#startError !== undefined) throw this.#startError;
  }

  /**
   * Whether the process has started and not yet ended.
   *
   * @returns `true` while it runs.
   *
   * @example Alive until joined
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Process({ target: () => {} });
   * equal(p.isAlive(), false);
   * p.start();
   * equal(p.isAlive(), true);
   * await p.join();
   * equal(p.isAlive(), false);
   * ```
   */
  isAlive(): boolean {
    return this.#handle !== undefined && this.#exitCode === null &&
      this.#startError === undefined;
  }

  /**
   * The OS process id: the child's with the process backend, this
   * process's with the worker backend; `null` before `start()`.
   *
   * @example The child's pid
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { notEqual } from "node:assert/strict";
   *
   * await using p = new Process({ target: () => {} });
   * p.start();
   * notEqual(p.pid, Deno.pid);
   * ```
   */
  get pid(): number | null {
    return this.#handle?.pid ?? null;
  }

  /**
   * `null` while running (or before start), 0 on success, 1 when the target
   * threw, `-N` when signal N ended it — as in Python.
   *
   * @example A target that throws
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Process({ target: () => { throw new Error("expected in this example"); }, backend: "worker" });
   * p.start();
   * await p.join();
   * equal(p.exitCode, 1);
   * ```
   */
  get exitCode(): number | null {
    return this.#exitCode;
  }

  /**
   * Asks the process to stop with SIGTERM (a worker thread is terminated).
   * Does nothing unless it runs.
   *
   * @example Terminate
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Process({ target: () => new Promise((r) => setTimeout(r, 60_000)) });
   * p.start();
   * p.terminate();
   * await p.join();
   * equal(p.exitCode, -15);
   * ```
   */
  terminate(): void {
    this.#stop("SIGTERM");
  }

  /**
   * Kills the process with SIGKILL (a worker thread is terminated). Does
   * nothing unless it runs.
   *
   * @example Kill
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Process({ target: () => new Promise((r) => setTimeout(r, 60_000)) });
   * p.start();
   * p.kill();
   * await p.join();
   * equal(p.exitCode, -9);
   * ```
   */
  kill(): void {
    this.#stop("SIGKILL");
  }

  #stop(signal: "SIGTERM" | "SIGKILL"): void {
    if (!this.isAlive()) return;
    this.#stopSignal ??= signal;
    this.#handle!.kill(signal);
  }

  /**
   * Kills the process if it still runs and waits for it: nothing is left
   * behind at the end of an `await using` scope.
   *
   * @example Scoped process
   * ```ts
   * import { Process } from "@multiproc/multiproc/process";
   * import { equal } from "node:assert/strict";
   *
   * let p: Process;
   * {
   *   await using scoped = new Process({ target: () => new Promise((r) => setTimeout(r, 60_000)) });
   *   scoped.start();
   *   p = scoped;
   * }
   * equal(p.exitCode, -9);
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#exited === undefined) return;
    this.kill();
    await this.#exited;
  }

  static {
    defineInspect(this, (process) => ({
      name: process.name,
      pid: process.pid,
      exitCode: process.exitCode,
    }));
  }
}

/**
 * Who is running this code: Python's `multiprocessing.current_process()`.
 *
 * @returns `{ name, pid }`: `"MainProcess"` in the main program, the worker's
 * name (`"PoolWorker-3"`, `"Process-1"`, …) inside pool workers and processes.
 *
 * @example In the main program
 * ```ts
 * import { currentProcess } from "@multiproc/multiproc/process";
 * import { equal } from "node:assert/strict";
 *
 * equal(currentProcess().name, "MainProcess");
 * ```
 */
export function currentProcess(): CurrentProcess {
  return { ...getContext() };
}

/**
 * Whether the module with this `import.meta` is the program's entry point
 * (and not being imported by a pool worker or a Process for its tasks): the
 * guard for a file that is both the main script and the task module, like
 * Python's `if __name__ == "__main__":`. Works in Deno, Node and Bun; in
 * Deno alone, `import.meta.main` is the same.
 *
 * @param meta The module's `import.meta`.
 * @returns `true` in the main program's entry module.
 *
 * @example The main guard
 * ```ts
 * import { isMainModule } from "@multiproc/multiproc/process";
 *
 * export function square(x: number): number {
 *   return x * x;
 * }
 *
 * if (isMainModule(import.meta)) {
 *   // Runs when started as a program, not when a worker imports the tasks.
 * }
 * ```
 */
export function isMainModule(meta: ImportMeta): boolean {
  const main = (meta as ImportMeta & { main?: unknown }).main;
  if (typeof main === "boolean") return main;
  const entry = process.argv[1];
  if (entry === undefined || !meta.url.startsWith("file:")) return false;
  try {
    return realpathSync(fileURLToPath(meta.url)) === realpathSync(entry);
  } catch {
    return false;
  }
}
