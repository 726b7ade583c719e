// A pool's engine on this machine, from the pool's options: what a local
// Pool runs on, and what a Redis worker host feeds from its stream.
import { Dispatcher } from "./_dispatcher.ts";
import { checkPermissions } from "./_permissions.ts";
import { cpuCount } from "./_runtime.ts";
import { shareValues } from "./_share.ts";
import { checkPositive } from "./_submit.ts";
import type { Backend, PoolOptions } from "./_types.ts";
import {
  copyValues,
  describeValue,
  functionSource,
  toModuleUrl,
} from "./_values.ts";
import { checkHeapLimit, startProcess, startThread } from "./_worker_handle.ts";

/** A started engine and the settings it was checked into. */
export interface LocalEngine {
  engine: Dispatcher;
  processes: number;
  backend: Backend;
}

/** The most workers a pool may have, unless there are more CPUs: see {@linkcode maxProcesses}. */
const MAX_PROCESSES = 256;
/** At least this many workers may start at once, and start with the pool. */
const MIN_START_LIMIT = 4;
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

function checkBackend(backend: unknown): Backend {
  if (backend === undefined) return "worker";
  if (backend === "worker" || backend === "process") return backend;
  throw new TypeError(
    `Expected backend to be "worker" or "process", got "${String(backend)}"`,
  );
}

// Every option is checked before the first worker starts.
/**
 * Checks the options and starts the dispatcher and its first workers.
 *
 * @throws {RangeError} or {TypeError} for a bad option; the runtime's error
 * when no worker can start.
 */
export function startLocalEngine(
  module: string | URL | undefined,
  options: PoolOptions,
): LocalEngine {
  const processes = checkProcesses(options.processes);
  const backend = checkBackend(options.backend);
  checkPositive(options.maxTasksPerChild, "maxTasksPerChild");
  checkPositive(options.maxQueue, "maxQueue");
  checkPositive(options.maxHeapMb, "maxHeapMb");
  checkHeapLimit(backend, options.maxHeapMb);
  checkPermissions(options.permissions, backend);
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
  const shared = shareValues(options.initArgs ?? [], backend);
  // Starting a runtime keeps a CPU busy: more at once start no sooner.
  const startLimit = Math.max(MIN_START_LIMIT, cpuCount());
  const engine = new Dispatcher({
    processes,
    eager: Math.min(processes, startLimit),
    startLimit,
    backend,
    start: backend === "worker" ? startThread : startProcess,
    setup: {
      module: module === undefined ? undefined : toModuleUrl(module),
      initializer: typeof initializer === "function"
        ? functionSource(initializer)
        : initializer,
      initializerIsSource: typeof initializer === "function",
      initArgs: copyValues(shared.values, "initializer argument"),
      shared: shared.cores.length > 0,
    },
    initCores: shared.cores,
    maxTasksPerChild: options.maxTasksPerChild,
    maxQueue: options.maxQueue,
    maxHeapMb: options.maxHeapMb,
    permissions: options.permissions,
  });
  return { engine, processes, backend };
}
