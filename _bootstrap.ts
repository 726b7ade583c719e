// The bootstrap of every worker: a worker thread or a child process of the
// same runtime. It loads the task module, runs batches of tasks one after
// another (as a Python pool worker does) and sends their results back in
// batches; or, for a Process, runs one target and exits.
import process from "node:process";
import { parentPort, workerData } from "node:worker_threads";
import { setContext } from "./_context.ts";
import { watchParent } from "./_watchdog.ts";
import { adoptLiveness } from "./_liveness.ts";
import {
  connectToParent,
  finishQueues,
  flushQueues,
  receiveFromParent,
  settleQueues,
} from "./_queue_link.ts";
import { findShareable, reviveValues } from "./_share.ts";
import { revivers } from "./_revivers.ts";
import { ipcRejectsUncloneable, ipcSharesViews } from "./_runtime.ts";
import { adoptThreadLoaders, loaderHint } from "./_loaders.ts";
import {
  compileFunction,
  describeValue,
  deserializeValues,
  ownViews,
  packNumbers,
} from "./_values.ts";
import {
  copyBinary,
  fromBinary,
  isBinary,
  isBinaryFile,
  loadBinary,
  spillBinary,
} from "./_binary.ts";
import {
  APPLY,
  BINARY,
  DEFINE,
  encodeError,
  type FromWorker,
  type FunctionRef,
  INIT,
  INIT_FAILED,
  LOADED,
  MAP_CHUNK,
  ONLINE,
  QUEUE,
  READY,
  RESULTS,
  type ResultsMessage,
  RUN,
  SERIALIZED,
  SHARED,
  STOP,
  type TaskKind,
  type ToWorker,
  type WorkerSetup,
} from "./_wire.ts";

type TaskFunction = (...args: unknown[]) => unknown;

/** Send results at least this often while a long run of small tasks goes on. */
const FLUSH_MS = 4;

interface Endpoint {
  post(message: FromWorker, transfer?: ArrayBuffer[]): void;
  listen(handler: (message: ToWorker) => void): void;
}

// The rest of the bootstrap talks to its parent alike, thread or process.
function threadEndpoint(port: NonNullable<typeof parentPort>): Endpoint {
  // Calls on a manager's objects travel the queue channel, as in a child.
  connectToParent((message, sent) => {
    port.postMessage(message);
    sent();
  });
  return {
    post: (message, transfer) => port.postMessage(message, transfer),
    listen: (handler) => port.on("message", handler),
  };
}

// A child must also die with its parent and carry its queues' traffic.
function processEndpoint(): Endpoint {
  // Even busy or still loading, a child ends with its parent (the kernel's
  // parent-death signal or a watchdog thread).
  watchParent();
  // The parent is gone when the channel closes: leave rather than linger as
  // an orphan.
  process.on("disconnect", () => process.exit(0));
  connectToParent((message, sent) =>
    process.send!(message, undefined, {}, sent)
  );
  return {
    // With a callback, a write to a parent that has just gone away fails
    // quietly (then "disconnect" ends the child); without one it throws
    // "Uncaught BrokenPipe" (Deno) or an unhandled EPIPE (Node) onto stderr,
    // which the child shares with its parent's program.
    post: (message) => process.send!(message, undefined, {}, ignore),
    listen: (handler) =>
      process.on(
        "message",
        ipcSharesViews
          ? (message: ToWorker) => handler(ownedViews(message))
          : handler,
      ),
  };
}

/** A message that could not be written: the parent is gone. */
function ignore(_error: unknown): void {}

// Serialized, packed and bulk payloads are already owned (or never reach
// the task); raw arguments and the setup may hold views into the message.
/** `message` with what reaches tasks owning its bytes. */
function ownedViews(message: ToWorker): ToWorker {
  if (message[0] === INIT) ownViews(message[1]);
  else if (message[0] === RUN) {
    for (let i = 3; i < message.length; i += 3) {
      if (Array.isArray(message[i])) ownViews(message[i]);
    }
  }
  return message;
}

if (parentPort) adoptLiveness(workerData.liveness);
// Registering a loader's hooks overlaps with the wait for the setup.
const loaders = parentPort ? adoptThreadLoaders() : undefined;
const endpoint = parentPort ? threadEndpoint(parentPort) : processEndpoint();
let moduleUrl: string | undefined;
let moduleExports: Record<string, unknown> = {};
const inline = new Map<number, TaskFunction>();
const queue: unknown[] = [];
let head = 0;
let running = false;

/** A function that cannot be compiled fails the tasks that use it, not the worker. */
function compileOrThrower(source: string): TaskFunction {
  try {
    return compileFunction(source) as TaskFunction;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

// An unknown task name fails with what the module does export.
function exportedFunction(name: string): TaskFunction {
  const value = moduleExports[name];
  if (typeof value === "function") return value as TaskFunction;
  const functions = Object.keys(moduleExports).filter((key) =>
    typeof moduleExports[key] === "function"
  );
  const where = moduleUrl === undefined
    ? "the pool has no task module: pass its URL as the first argument of new Pool(), or pass a function"
    : `the module "${moduleUrl}" exports ${
      functions.length > 0
        ? `these functions: ${functions.join(", ")}`
        : "no functions"
    }`;
  throw new TypeError(`Unknown task "${name}": ${where}`);
}

// A task names a module export by string, an inline function by id.
function resolveFunction(ref: FunctionRef): TaskFunction {
  if (typeof ref === "string") return exportedFunction(ref);
  return inline.get(ref)!;
}

// A closure's variables do not travel with its source: say so.
function explainInline(error: unknown, ref: FunctionRef): unknown {
  if (typeof ref !== "number" || !(error instanceof ReferenceError)) {
    return error;
  }
  return new ReferenceError(
    `${error.message}: an inline task function runs in a worker and cannot use variables from the scope it was written in: pass the values as arguments, or move the function into a module and pass its URL to new Pool()`,
    { cause: error },
  );
}

// Awaiting only thenables keeps synchronous tasks off the microtask queue.
function isThenable(value: unknown): value is PromiseLike<unknown> {
  // The typeof test first keeps the common case (plain values) cheap.
  return (typeof value === "object" || typeof value === "function") &&
    value !== null && typeof (value as { then?: unknown }).then === "function";
}

// The rest of a chunk once an item has turned asynchronous.
async function runChunk(
  fn: TaskFunction,
  items: unknown[],
  spread: boolean,
): Promise<unknown[]> {
  const results = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const result = spread ? fn(...(items[i] as unknown[])) : fn(items[i]);
    results[i] = isThenable(result) ? await result : result;
  }
  return results;
}

// Synchronous tasks must not pay a microtask per item.
/** Calls a task; returns its value, or a promise when it is asynchronous. */
function call(fn: TaskFunction, kind: TaskKind, payload: unknown): unknown {
  if (kind === APPLY) return fn(...(payload as unknown[]));
  const items = payload as unknown[];
  const spread = kind !== MAP_CHUNK;
  // Stay synchronous until an item returns a promise.
  const results = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const result = spread ? fn(...(items[i] as unknown[])) : fn(items[i]);
    if (isThenable(result)) {
      return result.then(async (first) => {
        results[i] = first;
        const rest = await runChunk(fn, items.slice(i + 1), spread);
        for (let j = 0; j < rest.length; j++) results[i + 1 + j] = rest[j];
        return results;
      });
    }
    results[i] = result;
  }
  return results;
}

// The caller learns which value failed, not just that a copy did.
/** The error of a task whose result cannot be copied: for a chunk, the first item's that cannot. */
function uncopyable(value: unknown, kind: TaskKind): unknown {
  let what = describeValue(value);
  if (kind !== APPLY && Array.isArray(value)) {
    const index = value.findIndex((item) => !isCopyable(item));
    if (index >= 0) {
      what = `${describeValue(value[index])} for item ${index} of its chunk`;
    }
  }
  return encodeError(
    new TypeError(
      `The task returned a value that cannot be copied to the caller (${what}): return plain data (structured-cloneable values)`,
    ),
  );
}

// Probes one value, so that a batch's failure is pinned on its task.
function isCopyable(value: unknown): boolean {
  // Symbols are primitives that cannot be copied either.
  if (
    value === null ||
    typeof value !== "object" && typeof value !== "function" &&
      typeof value !== "symbol"
  ) return true;
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

// One uncopyable result must fail its own task, not its whole batch.
/** Replaces each result that cannot be copied with an error of its own. */
function replaceUncopyable(results: unknown[], kinds: TaskKind[]): void {
  for (let i = 2; i < results.length; i += 2) {
    if (results[i] === 1 && !isCopyable(results[i + 1])) {
      results[i + 1] = uncopyable(results[i + 1], kinds[i / 2 - 1]!);
      results[i] = 0;
    }
  }
}

/** Where a bad value would not throw at once, results are checked first. */
const checkBeforePosting = parentPort === null && !ipcRejectsUncloneable;

/**
 * Posts results; a value that cannot be copied fails only its own task.
 * A batch the channel refuses goes again one result per message, so that
 * what structured clone accepts and the channel does not still fails one
 * task, and never the worker.
 */
function post(
  results: ResultsMessage,
  kinds: TaskKind[],
  transfer: ArrayBuffer[],
): void {
  // Items a task put into queues arrive before its result.
  flushQueues();
  if (checkBeforePosting) replaceUncopyable(results, kinds);
  try {
    endpoint.post(results, transfer);
    return;
  } catch {
    // Told apart below.
  }
  replaceUncopyable(results, kinds);
  const ms = (results[1] as number) / kinds.length;
  for (let i = 2; i < results.length; i += 2) {
    const value = results[i + 1];
    try {
      // Serialization fails before anything is transferred.
      endpoint.post(
        [RESULTS, ms, results[i], value],
        value instanceof Float64Array
          ? [value.buffer as ArrayBuffer]
          : undefined,
      );
    } catch {
      endpoint.post([RESULTS, ms, 0, uncopyable(value, kinds[i / 2 - 1]!)]);
    }
  }
}

// Tasks run one at a time, in order, while results leave in batches.
async function drain(): Promise<void> {
  running = true;
  let results: ResultsMessage = [RESULTS, 0];
  let kinds: TaskKind[] = [];
  let transfer: ArrayBuffer[] = [];
  let batchStart = performance.now();
  const flush = (): void => {
    if (results.length === 2) return;
    results[1] = performance.now() - batchStart;
    post(results, kinds, transfer);
    results = [RESULTS, 0];
    kinds = [];
    transfer = [];
    batchStart = performance.now();
  };
  while (head < queue.length) {
    const ref = queue[head] as FunctionRef;
    let kind = queue[head + 1] as TaskKind;
    let payload = queue[head + 2];
    queue[head + 2] = undefined;
    head += 3;
    let ok = 1;
    let value: unknown;
    try {
      // A thread gets packed numbers and serialized values as bare bytes.
      if (payload instanceof ArrayBuffer) {
        payload = kind & SERIALIZED
          ? new Uint8Array(payload)
          : new Float64Array(payload);
      }
      if (kind & SERIALIZED) {
        kind = (kind & ~SERIALIZED) as TaskKind;
        payload = deserializeValues(payload as Uint8Array);
      }
      if (kind & BINARY) {
        kind = (kind & ~BINARY) as TaskKind;
        // A file stays: the parent removes it when the task ends.
        if (isBinary(payload)) payload = fromBinary(payload);
        else if (isBinaryFile(payload)) payload = loadBinary(payload, false);
      }
      if (kind & SHARED) {
        kind = (kind & ~SHARED) as TaskKind;
        payload = reviveValues(payload as unknown[], revivers);
      }
      value = call(resolveFunction(ref), kind, payload);
      if (isThenable(value)) {
        flush();
        value = await value;
      }
      // Structured clone would make an empty object of it.
      const held = findShareable(value);
      if (held !== undefined) {
        const where = held === value ? "" : ` inside ${describeValue(value)}`;
        throw new TypeError(
          `The task returned ${
            describeValue(held)
          }${where}, which cannot travel back to the caller: make queues, locks, events and the other primitives in the caller and pass them to tasks in their arguments; return plain data`,
        );
      }
    } catch (error) {
      ok = 0;
      value = encodeError(explainInline(error, ref));
    }
    // What the task fetched ahead and left unread is for other consumers.
    const settling = settleQueues();
    if (settling) await settling;
    if (ok && kind !== APPLY) {
      value = packNumbers(value as unknown[]);
      if (value instanceof Float64Array) {
        transfer.push(value.buffer as ArrayBuffer);
      } else if (parentPort !== null) {
        // To a thread, bulk results go copied once and transferred.
        const binary = copyBinary(value as unknown[]);
        if (binary !== undefined) {
          value = binary;
          transfer.push(...binary.buffers);
        }
      } else if (bulk !== undefined) {
        // From a process, through a file the parent reads and removes.
        value = spillBinary(value as unknown[], bulk) ?? value;
      }
    }
    results.push(ok, value);
    kinds.push(kind);
    if (performance.now() - batchStart >= FLUSH_MS) flush();
  }
  queue.length = 0;
  head = 0;
  flush();
  running = false;
}

// Initializers and Process targets come as source or as an export's name.
function loadFunction(
  source: string | undefined,
  isSource: boolean,
): TaskFunction | undefined {
  if (source === undefined) return undefined;
  return isSource
    ? compileFunction(source) as TaskFunction
    : exportedFunction(source);
}

// A module that fails names itself, and a kill held back is let go.
async function loadModule(): Promise<void> {
  let loaderError: unknown;
  try {
    if (moduleUrl === undefined) return;
    loaderError = await loaders;
    moduleExports = await import(moduleUrl) as Record<string, unknown>;
  } catch (error) {
    throw new Error(
      `Cannot load the task module "${moduleUrl}": ${String(error)}${
        loaderHint(error, loaderError)
      }`,
      { cause: error },
    );
  } finally {
    // The parent holds back terminating a thread until then.
    if (parentPort) endpoint.post([LOADED]);
  }
}

/**
 * A pool worker outlives the promises its tasks leave rejected with no
 * handler, as a Python pool worker outlives what its tasks leave behind:
 * the rejection is logged and the next task runs as usual. Such a promise
 * rejected after its task ended, so failing the task running now would
 * blame an innocent one. An uncaught exception still ends the worker, as it
 * ends any Node or Deno program: it unwound code halfway through, which may
 * have left the worker's state broken, so the pool replaces the worker and
 * fails the task that was running with a WorkerExitError.
 */
function logStrayRejections(name: string): void {
  process.on("unhandledRejection", (reason) => {
    console.error(
      `Unhandled rejection in a task of worker ${name} (the worker goes on):`,
      reason,
    );
  });
}

// Setup comes as a message after ONLINE: earlier ones could be lost on IPC.
/** The parent's directory for bulk results, when it has one. */
let bulk: string | undefined;

async function init(setup: WorkerSetup): Promise<void> {
  setContext(setup.name);
  moduleUrl = setup.module;
  bulk = setup.bulk;
  if (setup.target) return runTarget(setup.target, setup.shared === true);
  logStrayRejections(setup.name);
  try {
    await loadModule();
    const initializer = loadFunction(
      setup.initializer,
      setup.initializerIsSource,
    );
    try {
      const args = setup.shared
        ? reviveValues(setup.initArgs, revivers)
        : setup.initArgs;
      if (initializer) await initializer(...args);
    } catch (error) {
      throw new Error(`The pool initializer failed: ${String(error)}`, {
        cause: error,
      });
    }
  } catch (error) {
    endpoint.post([INIT_FAILED, encodeError(error)]);
    return;
  }
  endpoint.post([READY]);
}

/**
 * A fault of the worker itself, not of a task: exit, so that the pool
 * replaces the worker, rather than serve no task again.
 */
function crash(error: unknown): void {
  console.error("The pool worker failed:", error);
  process.exit(1);
}

// process.exit would cut off output still buffered in a pipe.
function flushStdio(): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write("", () => process.stderr.write("", () => resolve()));
  });
}

// A child's queue puts and output must leave before it does.
async function exit(code: number): Promise<void> {
  await finishQueues();
  await flushStdio();
  process.exit(code);
}

// A Process's child acts as Python's: its target's error is printed, exit 1.
/** A Process: run the target, print its error like an uncaught one, exit 0 or 1. */
async function runTarget(
  target: NonNullable<WorkerSetup["target"]>,
  shared: boolean,
): Promise<void> {
  try {
    await loadModule();
    const fn = loadFunction(target.fn, target.isSource)!;
    await fn(...(shared ? reviveValues(target.args, revivers) : target.args));
  } catch (error) {
    console.error(explainInline(error, target.isSource ? 0 : target.fn));
    return exit(1);
  }
  return exit(0);
}

endpoint.listen((message) => {
  switch (message[0]) {
    case RUN:
      for (let i = 1; i < message.length; i++) queue.push(message[i]);
      if (!running) drain().catch(crash);
      break;
    case DEFINE:
      inline.set(message[1], compileOrThrower(message[2]));
      break;
    case INIT:
      init(message[1]);
      break;
    case STOP:
      exit(0);
      break;
    case QUEUE:
      receiveFromParent(message);
      break;
  }
});
endpoint.post([ONLINE]);
