// Parent side of a worker: a worker thread or a child process of the same
// runtime, behind one interface. node:worker_threads and node:child_process
// (with an IPC channel and V8 serialization) behave alike in Deno and Node.
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { Worker } from "node:worker_threads";
import { livenessSeed, markDead } from "./_liveness.ts";
import { isManagerCore, type ManagerOps } from "./_manager_core.ts";
import { ManagerLink } from "./_manager_link.ts";
import { ProxyLink } from "./_queue_link.ts";
import type { AnyCore } from "./_share.ts";
import { isSyncCore, type SyncCore } from "./_sync_core.ts";
import { syncCoreId, SyncLink } from "./_sync_link.ts";
import { withPermissionHint } from "./_permissions.ts";
import { threadEnvironment } from "./_loaders.ts";
import { guardedCommand } from "./_watchdog.ts";
import {
  type FromWorker,
  INIT,
  LOADED,
  QUEUE,
  SYNC_DROPPED,
  type ToWorker,
} from "./_wire.ts";
import type { Backend, WorkerPermissions } from "./_types.ts";
import type { Core } from "./_ring.ts";
import {
  childRuntimeCommand,
  heapLimitUnsupported,
  ipcSharesViews,
  siblingUrl,
} from "./_runtime.ts";

/** How a worker ended. */
export interface WorkerExit {
  /** The exit code, `null` when a signal ended a process. */
  exitCode: number | null;
  /** The signal that ended a process. */
  signal: string | null;
  /** The uncaught error that ended a thread, if any. */
  error: unknown;
  /**
   * Why the worker could not be started at all (a missing permission, no
   * runtime binary): retrying cannot help.
   */
  startError?: unknown;
}

/** Options to start a worker. */
export interface WorkerStartOptions {
  /** V8 heap limit in MiB, for tests of out-of-memory workers and for sandboxing. */
  maxHeapMb: number | undefined;
  /** What a child process may do (Deno). */
  permissions?: WorkerPermissions;
  /** The task module, which a sandboxed child loads as it starts. */
  module?: string;
  onMessage(message: FromWorker): void;
  onExit(exit: WorkerExit): void;
}

/** One worker, whatever it runs on. */
export interface WorkerHandle {
  /** The OS process id: the child's, or this process's for a thread. */
  readonly pid: number;
  /**
   * Whether typed arrays in its messages may be views into the message's
   * bytes (a child process on Node and Bun), for the receiver to copy.
   */
  readonly sharesViews: boolean;
  /** Sends a message; throws when a value in it cannot be copied. */
  post(message: ToWorker, transfer?: Transferable[]): void;
  /** Asks the worker to stop by signal (a thread is simply terminated). */
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** Lets the event loop exit while the worker idles, or holds it again. */
  setRef(ref: boolean): void;
  /** Lets the worker use these queues and locks; call before sending their descriptors. */
  share(cores: readonly AnyCore[]): void;
}

const bootstrap = siblingUrl("_bootstrap");

// Queues go to the queue link, locks and events to the sync link,
// managers to the manager link.
function splitCores(
  cores: readonly AnyCore[],
): [Core[], SyncCore[], ManagerOps[]] {
  const queues: Core[] = [];
  const syncs: SyncCore[] = [];
  const managers: ManagerOps[] = [];
  for (const core of cores) {
    if (isManagerCore(core)) managers.push(core);
    else if (isSyncCore(core)) syncs.push(core as SyncCore);
    else queues.push(core as Core);
  }
  return [queues, syncs, managers];
}

/** How long a kill waits for a thread to finish loading its modules. */
const LOAD_GRACE_MS = 2_000;

/** How long after a child's exit its last messages may still arrive. */
const EXIT_GRACE_MS = 100;

// A limit the runtime cannot enforce fails at creation, not silently.
/**
 * Checks that a worker of this backend can honour a heap limit here.
 *
 * @throws {RangeError} where the runtime cannot (Deno's threads, Bun).
 */
export function checkHeapLimit(
  backend: Backend,
  maxHeapMb: number | undefined,
): void {
  const reason = heapLimitUnsupported[backend];
  if (maxHeapMb === undefined || reason === undefined) return;
  const other =
    backend === "worker" && heapLimitUnsupported.process === undefined
      ? ': use backend: "process" for maxHeapMb'
      : ": leave maxHeapMb out in this runtime";
  throw new RangeError(
    `Cannot limit the heap of ${backend} workers to "${maxHeapMb}" MiB: ${reason}${other}`,
  );
}

// backend: "worker": cheap to start, and it shares the queues' memory.
/** Starts the bootstrap in a worker thread. */
export function startThread(options: WorkerStartOptions): WorkerHandle {
  const liveness = livenessSeed();
  let worker: Worker;
  try {
    worker = new Worker(bootstrap, {
      workerData: { liveness },
      // The loader the program runs under (tsx, …) must load the task
      // module here too; a thread without one is spared registering it.
      env: options.module === undefined ? undefined : threadEnvironment(),
      resourceLimits: options.maxHeapMb === undefined
        ? undefined
        : { maxOldGenerationSizeMb: options.maxHeapMb },
    });
  } catch (error) {
    throw withPermissionHint(error);
  }
  let error: unknown;
  // What the thread may hold: released if it dies holding it. Each counts
  // the copies the thread was sent and has not let go of (SYNC_DROPPED).
  const syncs = new Map<number, { core: SyncCore; copies: number }>();
  // Its manager calls come over the queue channel, as a child's do.
  const managers = new ManagerLink((payload) => link.sendManager(payload));
  const link = new ProxyLink(
    (message) => worker.postMessage(message),
    undefined,
    (payload) => managers.receive(payload),
  );
  // Node leaks the file descriptors of the modules a thread is loading when
  // it is terminated then: until the bootstrap's first message, and from
  // INIT to LOADED while it imports the task module, a kill waits.
  let loading = true;
  let killed = false;
  let fallback: ReturnType<typeof setTimeout> | undefined;
  const terminate = (): void => {
    clearTimeout(fallback);
    worker.terminate();
  };
  worker.on("message", (message: FromWorker) => {
    if ((message[0] as number) === SYNC_DROPPED) {
      const [, id, n] = message as unknown as number[];
      const shared = syncs.get(id);
      if (shared === undefined || (shared.copies -= n) > 0) return;
      // One it holds or waits on stays, for its release at death.
      if (!shared.core.involves(liveness.token)) syncs.delete(id);
      return;
    }
    if (message[0] === LOADED || loading) {
      loading = false;
      if (killed) return terminate();
      if (message[0] === LOADED) return;
    }
    if (message[0] === QUEUE) link.receive(message);
    else options.onMessage(message);
  });
  worker.on("error", (uncaught) => error = uncaught);
  worker.once("exit", (exitCode) => {
    clearTimeout(fallback);
    // A thread stopped in the middle of a queue operation left its lock.
    const dead = markDead(liveness.token);
    managers.dispose();
    // Its locks (and those of the workers it started) are released and a
    // barrier it waited at breaks.
    for (const { core } of syncs.values()) {
      for (const token of dead) core.died(token);
    }
    options.onExit({ exitCode, signal: null, error });
  });
  return {
    pid: process.pid,
    sharesViews: false,
    post(message: ToWorker, transfer?: Transferable[]): void {
      if (message[0] === INIT) loading = true;
      // deno-lint-ignore no-explicit-any
      worker.postMessage(message, transfer as any);
    },
    kill(): void {
      if (!loading) return terminate();
      if (killed) return;
      killed = true;
      // A module that never finishes loading (a top-level await that never
      // settles) must not keep the thread forever: a leak beats a hang.
      fallback = setTimeout(terminate, LOAD_GRACE_MS);
      // deno-lint-ignore no-explicit-any
      (fallback as any).unref?.();
    },
    setRef(ref: boolean): void {
      if (ref) worker.ref();
      else worker.unref();
    },
    share(cores: readonly AnyCore[]): void {
      // Threads share the memory itself; locks are noted for their release.
      const [, shared, managed] = splitCores(cores);
      for (const core of shared) {
        const id = syncCoreId(core);
        const held = syncs.get(id) ?? { core, copies: 0 };
        held.copies++;
        syncs.set(id, held);
      }
      managers.share(managed);
    },
  };
}

// A child that has just died breaks the pipe before its exit is seen: the
// exit reports it, and the write error must not pose as a spawn error.
/** Ignores the failure of a message written to a child that is gone. */
function ignoreWriteError(_error: Error | null): void {}

// backend: "process": its own heap, a heap limit, and in Deno a sandbox.
/** Starts the bootstrap in a child process of this runtime, talking over IPC. */
export function startProcess(options: WorkerStartOptions): WorkerHandle {
  const { command, args } = guardedCommand(childRuntimeCommand(bootstrap, {
    v8Flags: options.maxHeapMb === undefined
      ? []
      : [`--max-old-space-size=${options.maxHeapMb}`],
    permissions: options.permissions,
    module: options.module,
  }));
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
  } catch (error) {
    throw withPermissionHint(error);
  }
  const sync = new SyncLink((payload) => link.sendSync(payload));
  // A sandboxed child's update functions must not run here, unsandboxed.
  const managers = new ManagerLink(
    (payload) => link.sendManager(payload),
    options.permissions !== undefined && options.permissions !== "inherit",
  );
  const link = new ProxyLink(
    (message) => child.send(message, undefined, {}, ignoreWriteError),
    (payload) => sync.receive(payload),
    (payload) => managers.receive(payload),
    child.pid,
  );
  child.on("message", (message: FromWorker) => {
    if (message[0] === QUEUE) link.receive(message);
    else options.onMessage(message);
  });
  // A failed spawn reports through "error" and then "exit"/"close".
  let spawnError: unknown;
  child.on("error", (error) => spawnError = error);
  // "close" comes once the IPC channel has delivered what the child sent
  // before it died; in Deno it sometimes never comes, so "exit" starts a
  // short grace period instead.
  let grace: ReturnType<typeof setTimeout> | undefined;
  let reported = false;
  const report = (exitCode: number | null, signal: string | null): void => {
    if (reported) return;
    reported = true;
    clearTimeout(grace);
    // What the child fetched ahead and did not read goes back first.
    link.dispose();
    // What it held is released; a barrier it waited at breaks.
    sync.dispose();
    managers.dispose();
    options.onExit({
      exitCode,
      signal,
      error: spawnError,
      // Without a pid the process never ran.
      startError: child.pid === undefined ? spawnError : undefined,
    });
    // Deno may keep a dead child's channel open, holding the event loop.
    try {
      if (child.connected) child.disconnect();
    } catch {
      // Already closing.
    }
  };
  child.once("close", report);
  child.once("exit", (exitCode, signal) => {
    grace = setTimeout(() => report(exitCode, signal), EXIT_GRACE_MS);
  });
  return {
    pid: child.pid ?? 0,
    sharesViews: ipcSharesViews,
    post(message: ToWorker): void {
      if (child.connected) child.send(message, undefined, {}, ignoreWriteError);
    },
    kill(signal: "SIGTERM" | "SIGKILL"): void {
      child.kill(signal);
      // Nothing is granted to a child that can no longer take it.
      if (signal === "SIGKILL") sync.stop();
    },
    setRef(ref: boolean): void {
      // A spawn that failed has nothing to hold.
      if (child.pid === undefined) return;
      const channel = child.channel as
        | { ref?: () => void; unref?: () => void }
        | null
        | undefined;
      if (ref) {
        child.ref();
        channel?.ref?.();
      } else {
        child.unref();
        channel?.unref?.();
      }
    },
    share(cores: readonly AnyCore[]): void {
      const [queues, syncs, managed] = splitCores(cores);
      link.share(queues);
      sync.share(syncs);
      managers.share(managed);
    },
  };
}
