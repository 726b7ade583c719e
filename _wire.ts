// The messages between a pool (or Process) and its workers, and how errors
// cross that boundary with their class, name, message, cause, own data
// properties and stack intact.

/** Parent → worker: set up (module, initializer, name). */
export const INIT = 0;
/** Parent → worker: an inline function's source, by id. */
export const DEFINE = 1;
/** Parent → worker: a batch of tasks. */
export const RUN = 2;
/** Worker → parent: set up, ready for tasks. */
export const READY = 4;
/** Worker → parent: setup failed (module load or initializer). */
export const INIT_FAILED = 5;
/** Worker → parent: a batch of results. */
export const RESULTS = 6;
/** Parent → worker: finish and exit. */
export const STOP = 7;
/** Worker → parent: listening; send INIT (messages sent earlier could be lost on IPC). */
export const ONLINE = 8;
/**
 * Worker thread → parent: done loading the module INIT named (or failing
 * to); until then a terminated thread would leak what it was reading.
 */
export const LOADED = 9;
/**
 * Worker thread → parent: `[SYNC_DROPPED, id, n]`, `n` copies of the sync
 * primitive `id` it was sent are garbage now (see `_sync_link.ts`).
 */
export const SYNC_DROPPED = 10;
/**
 * Either way, between a child process and its parent: an operation on a
 * queue (`_queue_link.ts` lays out the rest of the message).
 */
export const QUEUE = 30;

/** How a task calls its function: `fn(...args)`, `items.map(fn)` or `tuples.map((t) => fn(...t))`. */
export const APPLY = 0;
export const MAP_CHUNK = 1;
export const STARMAP_CHUNK = 2;
export type TaskKind = typeof APPLY | typeof MAP_CHUNK | typeof STARMAP_CHUNK;
/** Added to a task's kind when its payload holds queues or pipe ends to revive. */
export const SHARED = 4;
/** Added to a task's kind when its payload is serialized values (`node:v8`). */
export const SERIALIZED = 8;
/** Added to a task's kind when its payload is bulk data (`_binary.ts`). */
export const BINARY = 16;

/** A task function: an export name, or the id of an inline function. */
export type FunctionRef = string | number;

/** Setup of a worker, sent in the INIT message. */
export interface WorkerSetup {
  /** URL of the task module, if any. */
  module: string | undefined;
  /** Name that `currentProcess()` reports inside the worker. */
  name: string;
  /** The initializer: an export name or an inline function's source. */
  initializer: string | undefined;
  initializerIsSource: boolean;
  initArgs: unknown[];
  /** Whether `initArgs` (or the target's args) hold queues or pipe ends. */
  shared?: boolean;
  /** A child process's directory for bulk results (see `_binary.ts`). */
  bulk?: string;
  /** For a Process: the function to run (then exit) instead of serving tasks. */
  target?: { fn: string; isSource: boolean; args: unknown[] };
}

/** Parent → worker: set up (module, initializer, name). */
export type InitMessage = [tag: typeof INIT, setup: WorkerSetup];
/** Parent → worker: an inline function's source, by id. */
export type DefineMessage = [tag: typeof DEFINE, id: number, source: string];
/**
 * Parent → worker: a batch of tasks, three elements each: the function, its
 * kind (a `TaskKind` plus `SHARED` or `SERIALIZED`), the payload (arguments,
 * or a chunk of items).
 */
export type RunMessage = [tag: typeof RUN, ...tasks: unknown[]];
/** Parent → worker: finish and exit. */
export type StopMessage = [tag: typeof STOP];
/** Either way, over IPC: a queue operation, laid out by `_queue_link.ts`. */
export type QueueMessage = [tag: typeof QUEUE, ...operation: unknown[]];

/** Every message a parent sends a worker. */
export type ToWorker =
  | InitMessage
  | DefineMessage
  | RunMessage
  | StopMessage
  | QueueMessage;

/** Worker → parent: listening; send INIT. */
export type OnlineMessage = [tag: typeof ONLINE];
/** Worker thread → parent: done loading the task module. */
export type LoadedMessage = [tag: typeof LOADED];
/** Worker → parent: set up, ready for tasks. */
export type ReadyMessage = [tag: typeof READY];
/** Worker → parent: setup failed, with the error as `encodeError` made it. */
export type InitFailedMessage = [tag: typeof INIT_FAILED, error: unknown];
/**
 * Worker → parent: the outcomes of the tasks of one or more batches, in the
 * order they were sent, two elements each: 1 and the result, or 0 and the
 * encoded error; `ms` is how long they took together.
 */
export type ResultsMessage = [
  tag: typeof RESULTS,
  ms: number,
  ...outcomes: unknown[],
];

/** Every message a worker sends its parent. */
export type FromWorker =
  | OnlineMessage
  | LoadedMessage
  | ReadyMessage
  | InitFailedMessage
  | ResultsMessage
  | QueueMessage;

/** An error as it travels between threads or processes. */
export interface EncodedError {
  readonly $error: true;
  name: string;
  message: string;
  stack: string | undefined;
  cause?: unknown;
  hasCause: boolean;
  props: Record<string, unknown>;
  errors?: unknown[];
}

const builtins: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

// One property that cannot be cloned must not lose the whole error.
function cloneable(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    return String(value);
  }
}

// Structured clone drops an error's own properties and custom name.
/** Turns a thrown value into something that survives structured clone. */
export function encodeError(error: unknown): unknown {
  if (!(error instanceof Error)) return cloneable(error);
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "cause" || key === "errors") continue;
    props[key] = cloneable((error as unknown as Record<string, unknown>)[key]);
  }
  const encoded: EncodedError = {
    $error: true,
    name: error.name,
    message: error.message,
    stack: error.stack,
    hasCause: "cause" in error,
    props,
  };
  if (encoded.hasCause) encoded.cause = encodeError(error.cause);
  if (error instanceof AggregateError) {
    encoded.errors = error.errors.map(encodeError);
  }
  return encoded;
}

// A thrown non-error crosses as it is; only our marked ones are rebuilt.
function isEncodedError(value: unknown): value is EncodedError {
  return typeof value === "object" && value !== null &&
    (value as { $error?: unknown }).$error === true;
}

// Callers catch a worker's error as if thrown here: class, name, stack, props.
/**
 * Rebuilds an error sent by {@linkcode encodeError}: a built-in class stays
 * that class; any other becomes an `Error` with the same `name`.
 */
export function decodeError(value: unknown): unknown {
  if (!isEncodedError(value)) return value;
  const options = value.hasCause
    ? { cause: decodeError(value.cause) }
    : undefined;
  let error: Error;
  if (value.name === "AggregateError" && value.errors) {
    error = new AggregateError(
      value.errors.map(decodeError),
      value.message,
      options,
    );
  } else {
    const Builtin = builtins[value.name] ?? Error;
    error = new Builtin(value.message, options);
    if (!(value.name in builtins)) {
      Object.defineProperty(error, "name", {
        value: value.name,
        writable: true,
        configurable: true,
      });
    }
  }
  Object.assign(error, value.props);
  if (value.stack !== undefined) {
    Object.defineProperty(error, "stack", {
      value: value.stack,
      writable: true,
      configurable: true,
    });
  }
  return error;
}
