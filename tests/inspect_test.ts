// Readable objects: what console.log, util.inspect and Deno.inspect show of
// processes, subprocesses, queues and pipes (issue #15).
import { describe, test } from "node:test";
import { equal, ok } from "node:assert/strict";
import { inspect, stripVTControlCharacters } from "node:util";
import {
  JoinableQueue,
  Pipe,
  Popen,
  Process,
  Queue,
  run,
  SimpleQueue,
} from "../mod.ts";
import {
  Barrier,
  Event,
  Lock,
  RLock,
  Semaphore,
  SharedArray,
  Value,
} from "../sync.ts";
import { AsyncResult, Pool } from "../pool.ts";
import { bare, defineInspect, type InspectBody, marker } from "../_inspect.ts";

const isDeno = "Deno" in globalThis;

/**
 * Asserts how `value` prints with util.inspect (node:util in every runtime)
 * and, in Deno, with Deno.inspect, which quotes strings with `"`.
 */
function prints(value: unknown, expected: string): void {
  equal(inspect(value), expected);
  if (isDeno) equal(Deno.inspect(value), expected.replaceAll("'", '"'));
}

/** Prints `value` in every way this runtime has, with `options`. */
function printsAll(
  value: unknown,
  options: { depth?: number; colors?: boolean },
): string[] {
  return [
    inspect(value, options),
    ...(isDeno ? [Deno.inspect(value, options)] : []),
  ];
}

/** A class that shows whatever body it is given, to test the formatter alone. */
class Shown {
  body: InspectBody;
  constructor(body: InspectBody) {
    this.body = body;
  }
  static {
    defineInspect(this, (shown) => shown.body);
  }
}

/** A class whose constructor is private, as some of the package's are. */
class Made {
  readonly id: number;
  private constructor(id: number) {
    this.id = id;
  }
  static make(id: number): Made {
    return new Made(id);
  }
  static {
    defineInspect(this, (made) => ({ id: made.id }));
  }
}

describe("readable objects", () => {
  test("a Process shows its name, pid and exit code as it starts and ends", async () => {
    const p = new Process({ target: () => {}, name: "inspected" });
    prints(p, "Process { name: 'inspected', pid: null, exitCode: null }");
    p.start();
    prints(p, `Process { name: 'inspected', pid: ${p.pid}, exitCode: null }`);
    await p.join();
    prints(p, `Process { name: 'inspected', pid: ${p.pid}, exitCode: 0 }`);
  });

  test("a Queue shows its size, bound and whether it is closed; subclasses their own name", async () => {
    const q = new Queue<number>({ maxsize: 10 });
    for (const item of [1, 2, 3]) await q.put(item);
    prints(q, "Queue { qsize: 3, maxsize: 10, closed: false }");
    q.close();
    prints(q, "Queue { qsize: 3, maxsize: 10, closed: true }");
    const joinable = new JoinableQueue<string>();
    joinable.putNowait("a");
    prints(joinable, "JoinableQueue { qsize: 1, maxsize: 0, closed: false }");
    const simple = new SimpleQueue<string>();
    simple.put("a");
    simple.put("b");
    prints(simple, "SimpleQueue { qsize: 2, closed: false }");
  });

  test("a pipe's ends show which way they go and whether either end closed the pipe", async () => {
    const [a, b] = Pipe<string>();
    a.send("ping");
    prints(
      b,
      "Connection { readable: true, writable: true, closed: false }",
    );
    equal(await b.recv(), "ping");
    a.close();
    prints(
      b,
      "Connection { readable: true, writable: true, closed: true }",
    );
    const [reader, writer] = Pipe({ duplex: false });
    prints(
      reader,
      "Connection { readable: true, writable: false, closed: false }",
    );
    prints(
      writer,
      "Connection { readable: false, writable: true, closed: false }",
    );
  });

  test("a Popen shows its command, pid and returncode; a CompletedProcess its output", async () => {
    {
      await using p = new Popen(["sleep", "10"]);
      prints(
        p,
        `Popen { args: [ 'sleep', '10' ], pid: ${p.pid}, returncode: null }`,
      );
      p.kill();
      await p.wait();
      prints(
        p,
        `Popen { args: [ 'sleep', '10' ], pid: ${p.pid}, returncode: -9 }`,
      );
    }
    const result = await run(["echo", "hi"], { capture: true, text: true });
    prints(
      result,
      // One field a line, as Node prints it: it does not fit in 80 columns.
      "CompletedProcess {\n  args: [ 'echo', 'hi' ],\n  returncode: 0,\n  stdout: 'hi\\n',\n  stderr: ''\n}",
    );
  });

  test("nested objects print as Node prints a class instance, down to the depth asked", () => {
    const q = new Queue({ maxsize: 2 });
    prints(
      { jobs: { q } },
      "{ jobs: { q: Queue { qsize: 0, maxsize: 2, closed: false } } }",
    );
    for (const printed of printsAll({ a: { b: { c: q } } }, { depth: 2 })) {
      equal(printed, "{ a: { b: { c: [Queue] } } }");
    }
    for (const printed of printsAll({ q }, { depth: 0 })) {
      equal(printed, "{ q: [Queue] }");
    }
    // The depth left goes on to the fields' own values.
    const deep = new Shown({ inner: { deeper: { deepest: 1 } } });
    for (const printed of printsAll(deep, { depth: 1 })) {
      equal(printed, "Shown { inner: { deeper: [Object] } }");
    }
  });

  test("a long object goes one field a line, indented with the object around it", () => {
    const long = new Shown({ first: "x".repeat(40), second: "y".repeat(40) });
    prints(
      { long },
      `{\n  long: Shown {\n    first: '${"x".repeat(40)}',\n    second: '${
        "y".repeat(40)
      }'\n  }\n}`,
    );
  });

  test("colours follow the caller's option, and never change where lines break", () => {
    const q = new Queue({ maxsize: 3 });
    for (const printed of printsAll(q, { colors: true })) {
      ok(printed.includes("\x1b[33m3\x1b[39m"), printed);
      equal(
        stripVTControlCharacters(printed),
        "Queue { qsize: 0, maxsize: 3, closed: false }",
      );
    }
    for (const printed of printsAll(q, { colors: false })) {
      ok(!printed.includes("\x1b"), printed);
    }
  });

  test("locks, semaphores, events, barriers and shared memory show their state", async () => {
    const lock = new Lock();
    await lock.acquire();
    prints(lock, "Lock { locked: true }");
    lock.release();
    prints(lock, "Lock { locked: false }");
    prints(new RLock(), "RLock { locked: false }");
    prints(new Semaphore(3), "Semaphore { value: 3 }");
    const event = new Event();
    event.set();
    prints(event, "Event { isSet: true }");
    prints(
      new Barrier(2),
      "Barrier { parties: 2, nWaiting: 0, broken: false }",
    );
    prints(new Value("i32", 5), "Value { type: 'i32', value: 5 }");
    prints(new SharedArray("f64", 4), "SharedArray { type: 'f64', length: 4 }");
  });

  test("an AsyncResult shows its result as a promise does; a Pool its counts", async () => {
    await using pool = new Pool({ processes: 1 });
    prints(
      pool,
      "Pool {\n  backend: 'worker',\n  processes: 1,\n  state: 'running',\n  running: 0,\n  queued: 0\n}",
    );
    const result = pool.applyAsync((x: number) => x * x, [4]);
    ok(result instanceof AsyncResult);
    prints(result, "AsyncResult { <pending> }");
    await result;
    prints(result, "AsyncResult { 16 }");
    const failed = pool.applyAsync(() => {
      throw new RangeError("no");
    });
    await failed.wait();
    ok(
      inspect(failed).startsWith("AsyncResult {\n  <rejected> RangeError: no"),
    );
  });

  test("a body without keys prints as a promise's does", () => {
    prints(new Shown(marker("<pending>")), "Shown { <pending> }");
    prints(new Shown(bare(16)), "Shown { 16 }");
    prints(new Shown(bare("sixteen")), "Shown { 'sixteen' }");
    const rejected = inspect(
      new Shown(marker("<rejected>", new RangeError("no"))),
    );
    ok(
      rejected.startsWith(
        "Shown {\n  <rejected> RangeError: no\n      at ",
      ),
      rejected,
    );
    for (
      const printed of printsAll(new Shown(marker("<pending>")), {
        colors: true,
      })
    ) {
      equal(printed, "Shown { \x1b[36m<pending>\x1b[39m }");
    }
    prints(new Shown({}), "Shown {}");
  });

  test("a class with a private constructor prints too", () => {
    prints(Made.make(7), "Made { id: 7 }");
  });

  test("the hooks are hidden: keys and JSON are unchanged", () => {
    const q = new Queue({ maxsize: 1 });
    equal(Object.keys(q).length, 0);
    equal(JSON.stringify(new Shown({ a: 1 })), '{"body":{"a":1}}');
    const symbols = Object.getOwnPropertySymbols(Object.getPrototypeOf(q));
    ok(
      symbols.every((symbol) =>
        !Object.getOwnPropertyDescriptor(Object.getPrototypeOf(q), symbol)!
          .enumerable
      ),
    );
  });
});
