// What drivers and worker hosts of a Redis pool write for each other: the
// keys of a pool, a task's stream entry and a result's. Both ends import
// this file and nothing else of each other's.
import { RecordReader, RecordWriter } from "./_codec.ts";
import { TimeoutError, WorkerExitError } from "./_errors.ts";
import type { RedisConnection, Reply } from "./_redis_client.ts";
import { packNumbers } from "./_values.ts";
import { decodeError, encodeError } from "./_wire.ts";
import { APPLY, type FunctionRef, type TaskKind } from "./_wire.ts";

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

/**
 * The delivery count a host gives a retry entry (a task delivered before,
 * alone) as it starts it: a lost host counts a delivery of such an entry
 * only when it has it, since a host may die between reading a retry and
 * handing it back.
 */
export const STARTED = 2;

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

/** A task as a host reads it from the stream. */
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
  /** The arguments (apply) or items (map chunks; packed when all are numbers). */
  values: unknown[] | Float64Array;
  /** Per-task timeout, in ms. */
  timeout: number | undefined;
}

/** What every task of one stream entry shares. */
export type BundleHeader = Pick<
  TaskEntry,
  "driver" | "visibility" | "resultTtl"
>;

/** A task as a driver adds it: its number, delivery and encoded payload. */
export interface OutgoingTask {
  number: number;
  attempt: number;
  encoded: Uint8Array;
}

// The payload is encoded once, when the task is made: that is its copy. A
// chunk of numbers travels as their bytes, which cost no serializer.
/**
 * A task's function, arguments and timeout as two records.
 *
 * @throws {UncopyableError} when a value cannot be copied.
 */
export function encodeTask(
  task: Pick<TaskEntry, "fn" | "inline" | "kind" | "timeout"> & {
    values: unknown[];
  },
): Uint8Array {
  const packed = packNumbers(task.values);
  const writer = new RecordWriter();
  writer.add([
    task.fn,
    task.inline,
    task.kind,
    task.timeout ?? null,
    packed instanceof Float64Array,
  ]);
  writer.add(
    packed instanceof Float64Array
      ? new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength)
      : task.values,
  );
  return writer.view();
}

// Tasks submitted together travel in one entry: their numbers and
// deliveries as lists, their payloads one after another.
/** The stream fields of a bundle of tasks (XADD's field-value list). */
export function taskFields(
  header: BundleHeader,
  tasks: readonly OutgoingTask[],
): (string | Uint8Array)[] {
  let size = 0;
  for (const task of tasks) size += task.encoded.length;
  const payload = new Uint8Array(size);
  let offset = 0;
  for (const task of tasks) {
    payload.set(task.encoded, offset);
    offset += task.encoded.length;
  }
  return [
    "d",
    header.driver,
    "i",
    tasks.map((task) => task.number).join(","),
    "n",
    tasks.map((task) => task.attempt).join(","),
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

// Bytes of a record may sit anywhere in a reply: numbers need 8-byte
// alignment, so they are copied out (not by slice(), a view for a Buffer).
function unpack(bytes: Uint8Array): Float64Array {
  return new Float64Array(new Uint8Array(bytes).buffer);
}

/**
 * The tasks in an entry's fields; empty when they are none. A payload that
 * cannot be read leaves `fn` empty and `unreadable` set, so that each task
 * can be failed with the reason.
 */
export function readTasks(
  fields: Map<string, Uint8Array | string>,
): (TaskEntry & { unreadable?: unknown })[] {
  const payload = fields.get("p");
  if (!(payload instanceof Uint8Array)) return [];
  const driver = text(fields.get("d"));
  const visibility = Number(text(fields.get("v")));
  const resultTtl = Number(text(fields.get("t")));
  const numbers = text(fields.get("i")).split(",");
  const attempts = text(fields.get("n")).split(",");
  const reader = new RecordReader(payload);
  let unreadable: unknown;
  return numbers.map((number, i) => {
    const header = {
      driver,
      task: Number(number),
      attempt: Number(attempts[i]),
      visibility,
      resultTtl,
    };
    if (unreadable === undefined) {
      try {
        return { ...header, ...readPayload(reader) };
      } catch (error) {
        unreadable = error;
      }
    }
    return {
      ...header,
      fn: "",
      inline: false,
      kind: APPLY,
      values: [],
      timeout: undefined,
      unreadable,
    };
  });
}

// A task's two records: what to call, and its values.
function readPayload(
  reader: RecordReader,
): Pick<TaskEntry, "fn" | "inline" | "kind" | "values" | "timeout"> {
  const [fn, inline, kind, timeout, packed] = reader.next() as [
    FunctionRef,
    boolean,
    TaskKind,
    number | null,
    boolean,
  ];
  const values = reader.next();
  return {
    fn,
    inline,
    kind,
    values: packed ? unpack(values as Uint8Array) : values as unknown[],
    timeout: timeout ?? undefined,
  };
}

/** How a task ended, as a host reports it. */
export type Outcome = "ok" | "error" | "dropped";

/** One task's outcome, as a host writes it. */
export interface Answer {
  task: number;
  outcome: Outcome;
  value: unknown;
}

// Outcomes travel as one letter each; "n" is "ok" with numbers packed.
const LETTERS = { ok: "k", error: "e", dropped: "d" } as const;
const OUTCOMES: Record<string, Outcome> = {
  k: "ok",
  n: "ok",
  e: "error",
  d: "dropped",
};

// A result that cannot be copied fails its task, as in a local pool.
function encodeAnswer(answer: Answer, writer: RecordWriter): string {
  if (answer.outcome === "error") {
    writer.add(encodeError(answer.value));
    return LETTERS.error;
  }
  const packed = answer.outcome === "ok" && Array.isArray(answer.value)
    ? packNumbers(answer.value)
    : undefined;
  if (packed instanceof Float64Array) {
    writer.add(
      new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength),
    );
    return "n";
  }
  try {
    writer.add(answer.value);
  } catch (error) {
    return encodeAnswer({
      task: answer.task,
      outcome: "error",
      value: new TypeError(
        `Cannot copy the task's result back to the caller: ${
          (error as Error).message
        }: return plain data (objects, arrays, strings, numbers, typed arrays)`,
      ),
    }, writer);
  }
  return LETTERS[answer.outcome];
}

// The answers for one entry travel together, each naming its task; the
// entry they answer is named once: a driver that sent a task again acts
// only on the answer to the entry it sent last.
/** The stream fields of the answers to tasks of one entry (XADD's field-value list). */
export function resultFields(
  entry: string,
  answers: readonly Answer[],
  host: string,
): (string | Uint8Array)[] {
  const writer = new RecordWriter();
  let outcomes = "";
  for (const answer of answers) outcomes += encodeAnswer(answer, writer);
  return [
    "e",
    entry,
    "i",
    answers.map((answer) => answer.task).join(","),
    "o",
    outcomes,
    "h",
    host,
    "r",
    writer.view().slice(),
  ];
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
/** The results in an entry's fields. */
export function readResults(
  fields: Map<string, Uint8Array | string>,
): ResultEntry[] {
  const entry = text(fields.get("e"));
  const host = text(fields.get("h"));
  const outcomes = text(fields.get("o"));
  const payload = fields.get("r");
  const reader = payload instanceof Uint8Array
    ? new RecordReader(payload)
    : undefined;
  return text(fields.get("i")).split(",").map((task, i) => {
    const letter = outcomes[i]!;
    let value = reader?.more ? reader.next() : undefined;
    if (letter === "e") value = reviveError(decodeError(value));
    if (letter === "n") value = Array.from(unpack(value as Uint8Array));
    return {
      task: Number(task),
      entry,
      outcome: OUTCOMES[letter] ?? "error",
      value,
      host,
    };
  });
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
