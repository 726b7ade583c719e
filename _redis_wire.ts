// What drivers and worker hosts of a Redis pool write for each other: the
// keys of a pool, a task's stream entry and a result's. Both ends import
// this file and nothing else of each other's.
import { encodeOne, RecordReader } from "./_codec.ts";
import { TimeoutError, WorkerExitError } from "./_errors.ts";
import type { RedisConnection, Reply } from "./_redis_client.ts";
import { decodeError, encodeError } from "./_wire.ts";
import type { FunctionRef, TaskKind } from "./_wire.ts";

/** The keys of one pool: all share one hash tag, so a Redis Cluster keeps them on one node. */
export interface PoolKeys {
  /** The stream of tasks, read by the hosts' consumer group. */
  tasks: string;
  /** A hash: host id → its last heartbeat (JSON). */
  hosts: string;
  /** A hash of counters (`redelivered`). */
  stats: string;
  /** The channel that tells hosts to stop a task. */
  cancel: string;
  /** The stream a driver reads its results from. */
  results(driver: string): string;
  /** A key that exists while its driver lives. */
  driver(driver: string): string;
}

/** The consumer group of the hosts on a pool's task stream. */
export const GROUP = "hosts";

// Drivers and hosts start in any order, and a Redis that lost its data has
// no group: whoever comes makes it, reading the stream from its start.
/** Makes the hosts' group on a pool's task stream unless it exists. */
export async function ensureGroup(
  commands: RedisConnection,
  keys: PoolKeys,
): Promise<void> {
  try {
    await commands.call([
      "XGROUP",
      "CREATE",
      keys.tasks,
      GROUP,
      "0",
      "MKSTREAM",
    ]);
  } catch (error) {
    if (!String((error as Error).message).includes("BUSYGROUP")) throw error;
  }
}

// Names become keys; a brace would break the hash tag.
/**
 * Checks the name of a pool or queue (`what`).
 *
 * @throws {TypeError} when `name` is not a non-empty string without braces.
 */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name === "" || /[{}]/.test(name)) {
    throw new TypeError(
      `Expected name to be a non-empty string without braces, got ${
        JSON.stringify(name) ?? String(name)
      }: name the ${what} as every other handle of it does, e.g. { name: "jobs" }`,
    );
  }
  return name;
}

/** @throws {TypeError} when `name` is not a non-empty string without braces. */
export function poolKeys(name: unknown): PoolKeys {
  checkName(name, "pool");
  const tag = `{multiproc:${name}}`;
  return {
    tasks: `${tag}:tasks`,
    hosts: `${tag}:hosts`,
    stats: `${tag}:stats`,
    cancel: `${tag}:cancel`,
    results: (driver) => `${tag}:results:${driver}`,
    driver: (driver) => `${tag}:driver:${driver}`,
  };
}

/** A task as it travels in the stream. */
export interface TaskEntry {
  /** The driver that waits for it. */
  driver: string;
  /** Its number in that driver. */
  task: number;
  /** How often it was handed to a host before, plus one. */
  attempt: number;
  /** How long a host may hold it without extending its claim, in ms. */
  visibility: number;
  /** How long its result waits for a driver that went away, in ms. */
  resultTtl: number;
  /** An export name, or the source of an inline function. */
  fn: FunctionRef;
  /** Whether `fn` is source. */
  inline: boolean;
  kind: TaskKind;
  /** The arguments (apply) or items (map chunks). */
  values: unknown[];
  /** Per-task timeout, in ms. */
  timeout: number | undefined;
}

/** Where a task goes and how it is held: the fields beside its payload. */
export type TaskHeader = Pick<
  TaskEntry,
  "driver" | "task" | "attempt" | "visibility" | "resultTtl"
>;

// The payload is encoded once, when the task is made: that is its copy.
/**
 * A task's function, arguments and timeout as one record.
 *
 * @throws {UncopyableError} when a value cannot be copied.
 */
export function encodeTask(
  entry: Omit<TaskEntry, keyof TaskHeader>,
): Uint8Array {
  return encodeOne([
    entry.fn,
    entry.inline,
    entry.kind,
    entry.values,
    entry.timeout ?? null,
  ]);
}

// Each field is one stream field; the payload was encoded before.
/** The stream fields of a task (XADD's field-value list). */
export function taskFields(
  header: TaskHeader,
  payload: Uint8Array,
): (string | Uint8Array)[] {
  return [
    "d",
    header.driver,
    "i",
    String(header.task),
    "n",
    String(header.attempt),
    "v",
    String(header.visibility),
    "t",
    String(header.resultTtl),
    "p",
    payload,
  ];
}

// A stream entry's fields come as a flat list of names and values.
/** The fields of an entry by name. */
export function fieldsOf(reply: Reply): Map<string, Uint8Array | string> {
  const fields = new Map<string, Uint8Array | string>();
  if (!Array.isArray(reply)) return fields;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    fields.set(text(reply[i]!), reply[i + 1] as Uint8Array);
  }
  return fields;
}

const decoder = new TextDecoder();

/** A bulk string reply as text. */
export function text(reply: Reply | undefined): string {
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  return reply === null || reply === undefined ? "" : String(reply);
}

// The header fields are read before the payload, which may not be needed.
/** The task in an entry's fields; `undefined` when they are not one. */
export function readTask(
  fields: Map<string, Uint8Array | string>,
): TaskEntry | undefined {
  const payload = fields.get("p");
  if (!(payload instanceof Uint8Array)) return undefined;
  const [fn, inline, kind, values, timeout] = new RecordReader(payload)
    .next() as [FunctionRef, boolean, TaskKind, unknown[], number | null];
  return {
    driver: text(fields.get("d")),
    task: Number(text(fields.get("i"))),
    attempt: Number(text(fields.get("n"))),
    visibility: Number(text(fields.get("v"))),
    resultTtl: Number(text(fields.get("t"))),
    fn,
    inline,
    kind,
    values,
    timeout: timeout ?? undefined,
  };
}

/** How a task ended, as a host reports it. */
export type Outcome = "ok" | "error" | "dropped";

// An error crosses as the pool's own error encoding, inside one record.
// A result names the stream entry it answers: a driver that sent its task
// again acts only on the answer to the entry it sent last.
/** The stream fields of a result (XADD's field-value list). */
export function resultFields(
  task: number,
  entry: string,
  outcome: Outcome,
  value: unknown,
  host: string,
): (string | Uint8Array)[] {
  let payload: Uint8Array;
  try {
    payload = encodeOne(outcome === "error" ? encodeError(value) : value);
  } catch (error) {
    // A result that cannot be copied fails its task, as in a local pool.
    return resultFields(
      task,
      entry,
      "error",
      new TypeError(
        `Cannot copy the task's result back to the caller: ${
          (error as Error).message
        }: return plain data (objects, arrays, strings, numbers, typed arrays)`,
      ),
      host,
    );
  }
  return ["i", String(task), "e", entry, "o", outcome, "h", host, "r", payload];
}

/** A result read back by its driver. */
export interface ResultEntry {
  task: number;
  /** The stream entry of the task it answers. */
  entry: string;
  outcome: Outcome;
  value: unknown;
  host: string;
}

// The pool's own error classes come back as themselves, not as look-alikes.
/** The result in an entry's fields. */
export function readResult(
  fields: Map<string, Uint8Array | string>,
): ResultEntry {
  const outcome = text(fields.get("o")) as Outcome;
  const payload = fields.get("r");
  let value = payload instanceof Uint8Array
    ? new RecordReader(payload).next()
    : undefined;
  if (outcome === "error") value = reviveError(decodeError(value));
  return {
    task: Number(text(fields.get("i"))),
    entry: text(fields.get("e")),
    outcome,
    value,
    host: text(fields.get("h")),
  };
}

// decodeError rebuilds built-in classes only; these two are ours.
function reviveError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  let revived: Error | undefined;
  if (error.name === "TimeoutError") revived = new TimeoutError(error.message);
  if (error.name === "WorkerExitError") {
    const data = error as unknown as {
      exitCode?: number | null;
      signal?: string | null;
    };
    revived = new WorkerExitError(error.message, {
      exitCode: data.exitCode ?? null,
      signal: data.signal ?? null,
      cause: error.cause,
    });
  }
  if (revived === undefined) return error;
  revived.stack = error.stack;
  return revived;
}
