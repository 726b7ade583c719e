// Unit tests of the private core, where the public API cannot reach
// precisely: how errors cross to and from workers, the permission flags of a
// Deno child, the record codec of queues, and the pool's dispatcher driven by
// a fake worker instead of a real thread or process.
import { describe, test } from "node:test";
import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import {
  encodeOne,
  RecordReader,
  RecordWriter,
  splitRecords,
  UncopyableError,
} from "../_codec.ts";
import { Dispatcher, type DispatcherOptions } from "../_dispatcher.ts";
import { TimeoutError, WorkerExitError } from "../_errors.ts";
import { MapJob, SingleJob, StreamJob } from "../_jobs.ts";
import { childPermissionFlags } from "../_permissions.ts";
import { inheritableNodeFlags } from "../_runtime.ts";
import type { WorkerPermissions } from "../_types.ts";
import {
  APPLY,
  decodeError,
  encodeError,
  INIT,
  MAP_CHUNK,
  ONLINE,
  READY,
  RESULTS,
  RUN,
  STOP,
} from "../_wire.ts";
import type {
  WorkerExit,
  WorkerHandle,
  WorkerStartOptions,
} from "../_worker_handle.ts";

/** What a worker would receive: the error encoded, then cloned. */
function roundTrip(error: unknown): unknown {
  return decodeError(structuredClone(encodeError(error)));
}

describe("errors across the wire", () => {
  test("a built-in class stays that class, with message and stack", () => {
    const original = new RangeError("too big");
    const decoded = roundTrip(original);
    ok(decoded instanceof RangeError);
    equal(decoded.message, "too big");
    equal(decoded.stack, original.stack);
  });

  test("another class becomes an Error with its name and own data", () => {
    class QuotaError extends Error {
      code = "E_QUOTA";
      limit = 10;
      constructor(message: string) {
        super(message);
        this.name = "QuotaError";
      }
    }
    const decoded = roundTrip(new QuotaError("over")) as Error & {
      code: string;
      limit: number;
    };
    equal(Object.getPrototypeOf(decoded), Error.prototype);
    equal(decoded.name, "QuotaError");
    equal(decoded.code, "E_QUOTA");
    equal(decoded.limit, 10);
  });

  test("causes are kept at any depth, an undefined cause too", () => {
    const decoded = roundTrip(
      new TypeError("outer", {
        cause: new SyntaxError("middle", { cause: "root" }),
      }),
    ) as Error;
    ok(decoded instanceof TypeError);
    const middle = decoded.cause as Error;
    ok(middle instanceof SyntaxError);
    equal(middle.message, "middle");
    equal(middle.cause, "root");
    const bare = roundTrip(new Error("x", { cause: undefined })) as Error;
    ok("cause" in bare);
    equal(bare.cause, undefined);
    ok(!("cause" in (roundTrip(new Error("y")) as Error)));
  });

  test("AggregateError keeps its errors and its cause", () => {
    const decoded = roundTrip(
      new AggregateError(
        [new TypeError("first"), "second"],
        "both failed",
        { cause: new Error("why") },
      ),
    );
    ok(decoded instanceof AggregateError);
    equal(decoded.message, "both failed");
    ok(decoded.errors[0] instanceof TypeError);
    equal(decoded.errors[0].message, "first");
    equal(decoded.errors[1], "second");
    equal((decoded.cause as Error).message, "why");
  });

  test("values that are not errors, and properties that cannot be copied", () => {
    equal(roundTrip(42), 42);
    deepEqual(roundTrip({ reason: "plain" }), { reason: "plain" });
    equal(roundTrip(Symbol.for("s")), "Symbol(s)");
    const error = Object.assign(new Error("with a function"), {
      callback: () => 1,
    });
    equal(
      typeof (roundTrip(error) as { callback: unknown }).callback,
      "string",
    );
  });
});

describe("permission flags of a Deno child process", () => {
  const isDeno = "Deno" in globalThis;
  const module = "file:///tasks/work.ts";
  // Rows need only what the test command grants: read, env and run.
  const rows: [WorkerPermissions, string | undefined, string[]][] = [
    ["none", undefined, ["--deny-net"]],
    ["none", module, ["--deny-net", `--preload=${module}`]],
    [{}, module, ["--deny-net", `--preload=${module}`]],
    [{ read: true }, module, ["--allow-read"]],
    [{ read: false, env: true }, module, [
      "--allow-env",
      `--preload=${module}`,
    ]],
    [{ env: ["HOME", "PATH"] }, undefined, ["--allow-env=HOME,PATH"]],
    [{ env: [] }, undefined, ["--deny-net"]],
    [
      { read: true, env: "inherit", run: true },
      module,
      ["--allow-read", "--allow-env", "--allow-run"],
    ],
  ];
  for (const [permissions, from, flags] of rows) {
    test(`${JSON.stringify(permissions)}${from ? " with a module" : ""}`, {
      skip: !isDeno && "Deno only",
    }, () => {
      deepEqual(childPermissionFlags(permissions, from), flags);
    });
  }

  test("more than this process has is refused", {
    skip: (!isDeno ||
      Deno.permissions.querySync({ name: "net" }).state === "granted") &&
      "needs Deno without --allow-net",
  }, () => {
    throws(() => childPermissionFlags({ net: true }, undefined), RangeError);
    throws(
      () => childPermissionFlags({ net: ["example.com"] }, undefined),
      RangeError,
    );
  });
});

describe("Node flags a child process inherits", () => {
  test("test runner, debugger and watch flags go with their separate values", () => {
    deepEqual(
      inheritableNodeFlags([
        "--test-name-pattern",
        "x",
        "--stack-size=900",
        "--import",
        "./hooks.js",
        "--inspect-port",
        "0",
        "--test",
        "--max-old-space-size=64",
        "--watch-path",
        "src",
      ]),
      ["--stack-size=900", "--import", "./hooks.js", "--max-old-space-size=64"],
    );
  });
});

describe("record codec", () => {
  const values: unknown[] = [
    undefined,
    null,
    true,
    false,
    0,
    -0,
    7,
    -2147483648,
    2147483648,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "",
    "héllo ✓ 😀",
    "lone \ud800 surrogate",
    new Uint8Array([0, 1, 255]),
    10n,
    { nested: [1, "two", { three: 3 }] },
    new Map([["k", new Set([1])]]),
    new Date(0),
    new Float64Array([1.5, -2]),
  ];

  test("every kind of value comes back equal, -0 and NaN included", () => {
    const writer = new RecordWriter();
    for (const value of values) writer.add(value);
    equal(writer.count, values.length);
    const reader = new RecordReader(writer.view().slice());
    for (const value of values) {
      const back = reader.next();
      if (typeof value === "number") ok(Object.is(back, value), String(value));
      else deepEqual(back, value);
    }
    equal(reader.more, false);
  });

  test("one record alone, and a block split after n records", () => {
    equal(new RecordReader(encodeOne("one")).next(), "one");
    const writer = new RecordWriter();
    for (let i = 0; i < 5; i++) writer.add(i * 1000);
    const [head, tail] = splitRecords(writer.view(), 2);
    const first = new RecordReader(head);
    deepEqual([first.next(), first.next(), first.more], [0, 1000, false]);
    const rest = new RecordReader(tail);
    rest.skip();
    deepEqual([rest.next(), rest.next(), rest.more], [3000, 4000, false]);
  });

  test("a value that cannot be copied leaves the writer as it was", () => {
    const writer = new RecordWriter();
    writer.add("kept");
    throws(() => writer.add(() => 1), UncopyableError);
    throws(() => writer.add(Symbol("no")), UncopyableError);
    equal(writer.count, 1);
    const reader = new RecordReader(writer.view());
    equal(reader.next(), "kept");
    equal(reader.more, false);
  });

  test("many records grow the buffer and append copies them", () => {
    const writer = new RecordWriter();
    const long = "x".repeat(5000);
    for (let i = 0; i < 100; i++) writer.add(i % 2 ? long : i);
    const copy = new RecordWriter();
    copy.append(writer.view(), writer.count);
    writer.clear();
    equal(writer.count, 0);
    const reader = new RecordReader(copy.view());
    for (let i = 0; i < 100; i++) equal(reader.next(), i % 2 ? long : i);
  });

  test("a number that grows the buffer is written into the grown one", () => {
    // 1024 bytes hold 113 int records of 9 bytes: the 114th grows it.
    const writer = new RecordWriter();
    for (let i = 0; i < 300; i++) writer.add(i % 3 ? i : i + 0.5);
    const reader = new RecordReader(writer.view());
    for (let i = 0; i < 300; i++) equal(reader.next(), i % 3 ? i : i + 0.5);
  });
});

/** A worker that only records what it is sent; the test answers for it. */
class FakeWorker implements WorkerHandle {
  readonly pid = 1;
  readonly sharesViews = false;
  readonly posted: unknown[][] = [];
  killed: string | undefined;
  ref = false;
  constructor(readonly options: WorkerStartOptions) {}
  post(message: unknown[]): void {
    this.posted.push(message);
  }
  kill(signal: "SIGTERM" | "SIGKILL"): void {
    this.killed = signal;
    queueMicrotask(() =>
      this.exit({ exitCode: null, signal, error: undefined })
    );
  }
  setRef(ref: boolean): void {
    this.ref = ref;
  }
  share(): void {}
  /** Comes online, is told INIT, says READY. */
  start(): void {
    this.options.onMessage([ONLINE]);
    equal(this.posted.at(-1)![0], INIT);
    this.options.onMessage([READY]);
  }
  /** The RUN messages so far, as [fn, kind, payload] triples per message. */
  runs(): unknown[][][] {
    return this.posted.filter((message) => message[0] === RUN).map(
      (message) => {
        const tasks: unknown[][] = [];
        for (let i = 1; i < message.length; i += 3) {
          tasks.push(message.slice(i, i + 3));
        }
        return tasks;
      },
    );
  }
  /** Answers `results` for the oldest tasks in flight. */
  answer(...results: [ok: boolean, value: unknown][]): void {
    this.options.onMessage([
      RESULTS,
      0.001,
      ...results.flatMap(([ok, value]) => [ok ? 1 : 0, value]),
    ]);
  }
  exit(exit: WorkerExit): void {
    this.options.onExit(exit);
  }
}

/** A dispatcher whose workers are fakes, kept in `workers` as they start. */
function fakePool(
  options: Partial<DispatcherOptions> = {},
): { engine: Dispatcher; workers: FakeWorker[] } {
  const workers: FakeWorker[] = [];
  const engine = new Dispatcher({
    processes: 1,
    eager: 1,
    startLimit: 4,
    backend: "process",
    start: (start) => {
      const worker = new FakeWorker(start);
      workers.push(worker);
      return worker;
    },
    setup: {
      module: undefined,
      initializer: undefined,
      initializerIsSource: false,
      initArgs: [],
    },
    initCores: [],
    maxTasksPerChild: undefined,
    maxQueue: undefined,
    maxHeapMb: undefined,
    permissions: undefined,
    ...options,
  });
  return { engine, workers };
}

/** Submits one `apply` of export `fn` and returns its promise. */
function apply(
  engine: Dispatcher,
  fn: string,
  args: unknown[],
  options?: { timeout?: number; signal?: AbortSignal },
): Promise<unknown> {
  const job = new SingleJob();
  engine.submit(engine.task(fn, APPLY, args, "arguments", job, 0, options));
  return job.promise;
}

/** Lets queued microtasks (the batched dispatch) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

describe("dispatcher with a fake worker", () => {
  test("tasks wait for the worker; once tasks are known to be short they go in batches", async () => {
    const { engine, workers } = fakePool();
    equal(workers.length, 1);
    const results = [1, 2, 3].map((x) => apply(engine, "f", [x]));
    await settle();
    deepEqual(workers[0]!.runs(), []);
    workers[0]!.start();
    // The first task goes alone: how long tasks take is not known yet.
    deepEqual(workers[0]!.runs(), [[["f", APPLY, [1]]]]);
    workers[0]!.answer([true, "one"]);
    deepEqual(workers[0]!.runs().at(-1), [["f", APPLY, [2]], ["f", APPLY, [
      3,
    ]]]);
    workers[0]!.answer([true, "two"], [true, "three"]);
    deepEqual(await Promise.all(results), ["one", "two", "three"]);
    equal(engine.counts().completed, 3);
    engine.terminate();
  });

  test("a failed task rejects with its decoded error", async () => {
    const { engine, workers } = fakePool();
    workers[0]!.start();
    const result = apply(engine, "f", []);
    await settle();
    workers[0]!.answer([false, encodeError(new RangeError("bad"))]);
    await rejects(result, RangeError);
    equal(engine.counts().failed, 1);
    engine.terminate();
  });

  test("a worker that dies fails its running task; the next runs elsewhere", async () => {
    const { engine, workers } = fakePool();
    workers[0]!.start();
    const warmUp = apply(engine, "f", [0]);
    await settle();
    workers[0]!.answer([true, 0]);
    await warmUp;
    const first = apply(engine, "f", [1]);
    const second = apply(engine, "f", [2]);
    await settle();
    equal(workers[0]!.runs().at(-1)!.length, 2);
    workers[0]!.exit({ exitCode: 3, signal: null, error: undefined });
    await rejects(
      first,
      (error) => error instanceof WorkerExitError && error.exitCode === 3,
    );
    equal(workers.length, 2);
    workers[1]!.start();
    deepEqual(workers[1]!.runs(), [[["f", APPLY, [2]]]]);
    workers[1]!.answer([true, 4]);
    equal(await second, 4);
    engine.terminate();
  });

  test("a timeout kills the worker and rejects with TimeoutError", async () => {
    const { engine, workers } = fakePool();
    workers[0]!.start();
    const result = apply(engine, "slow", [], { timeout: 5 });
    await rejects(result, TimeoutError);
    equal(workers[0]!.killed, "SIGKILL");
    await settle();
    equal(workers.length, 2);
    engine.terminate();
  });

  test("an abort drops a queued task without sending it", async () => {
    const { engine, workers } = fakePool();
    const controller = new AbortController();
    const result = apply(engine, "f", [], { signal: controller.signal });
    controller.abort(new Error("stop"));
    await rejects(result, /stop/);
    workers[0]!.start();
    deepEqual(workers[0]!.runs(), []);
    equal(engine.counts().queued, 0);
    engine.terminate();
  });

  test("maxTasksPerChild: the worker is told to stop and replaced", async () => {
    const { engine, workers } = fakePool({ maxTasksPerChild: 1 });
    workers[0]!.start();
    const result = apply(engine, "f", []);
    await settle();
    workers[0]!.answer([true, "done"]);
    equal(await result, "done");
    deepEqual(workers[0]!.posted.at(-1), [STOP]);
    equal(workers.length, 2);
    engine.terminate();
  });

  test("a map fails whole and drops its unsent chunks", async () => {
    const { engine, workers } = fakePool({ maxTasksPerChild: undefined });
    const job = new MapJob(engine);
    const done = job.run("f", MAP_CHUNK, [1, 2, 3, 4], 1, undefined);
    workers[0]!.start();
    await settle();
    const sent = workers[0]!.runs().flat().length;
    ok(sent >= 1);
    workers[0]!.answer([false, encodeError(new TypeError("chunk"))]);
    await rejects(done, TypeError);
    equal(engine.counts().queued, 0);
    engine.terminate();
  });

  test("an imap left early cancels what it had submitted", async () => {
    const { engine, workers } = fakePool();
    workers[0]!.start();
    const stream = new StreamJob(engine).results(
      () => "f",
      [1, 2, 3],
      1,
      8,
      true,
      undefined,
    );
    const first = stream.next();
    await settle();
    workers[0]!.answer([true, [10]]);
    deepEqual(await first, { value: 10, done: false });
    await stream.return();
    equal(engine.counts().queued, 0);
    engine.terminate();
  });

  test("terminate fails what is queued and running", async () => {
    const { engine, workers } = fakePool();
    workers[0]!.start();
    const running = apply(engine, "f", []);
    await settle();
    engine.terminate();
    await rejects(running, /terminated/);
    equal(workers[0]!.killed, "SIGKILL");
    throws(() => engine.checkOpen(), /terminated/);
    await engine.exited();
  });
});
