import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { inspect, stripVTControlCharacters } from "node:util";
import {
  type Backend,
  Lock,
  Manager,
  ManagerShutdownError,
  Pool,
  Process,
  Queue,
} from "../mod.ts";
import { DictProxy, type ValueProxy } from "../manager.ts";
import {
  childPids,
  eventually,
  fixtureUrl,
  processExists,
  runScript,
} from "./_helpers.ts";

import { everyMethod } from "./fixtures/manager_tasks.ts";

type Tasks = typeof import("./fixtures/manager_tasks.ts");
const tasks = fixtureUrl("manager_tasks");

/** What every method returned in `everyMethod`, wherever it ran. */
const EVERY_METHOD = [
  [1, 2],
  undefined,
  [0],
  true,
  false,
  ["xs", "ys"],
  [[1, 2], [4]],
  [["xs", [1, 2]], ["ys", [4]]],
  2,
  [4, 5],
  [6],
  true,
  false,
  0,
  "a",
  "d",
  undefined,
  ["a", "B", "c", "d"],
  ["B", "c"],
  4,
  "d",
  "a",
  "c!",
  ["B", "c!"],
  0,
  "worker",
  2,
  { stage: "worker", n: 2 },
  true,
  undefined,
  { count: 1 },
  { count: 10 },
  { count: 10 },
];

describe("Manager in one thread", () => {
  test("every method of every proxy", async () => {
    await using manager = new Manager();
    const results = await everyMethod(
      manager.dict(),
      manager.list(),
      manager.namespace<{ stage: string; n: number }>({ n: 1 }),
      manager.value({ count: 1 }),
    );
    deepEqual(results, EVERY_METHOD);
  });

  test("initial contents are copies; dict takes a Map, pairs or an object", async () => {
    await using manager = new Manager();
    const xs = [1];
    const list = manager.list([xs]);
    xs.push(2);
    deepEqual(await list.slice(), [[1]]);
    deepEqual(await manager.dict(new Map([[1, "a"]])).entries(), [[1, "a"]]);
    deepEqual(await manager.dict([["k", 2]]).entries(), [["k", 2]]);
    deepEqual(await manager.dict({ a: 3 }).entries(), [["a", 3]]);
    const got = await list.at(0);
    got!.push(9); // a copy out, too
    deepEqual(await list.at(0), [1]);
  });

  test("update is atomic: concurrent updates lose nothing", async () => {
    await using manager = new Manager();
    const n = manager.value(0);
    await Promise.all(
      Array.from({ length: 100 }, () => n.update((n) => n + 1)),
    );
    equal(await n.get(), 100);
  });

  test("bad arguments: clear errors, nothing changed", async () => {
    await using manager = new Manager();
    const d = manager.dict<string, unknown>({ kept: 1 });
    await rejects(d.set({} as string, 1), (error: Error) => {
      ok(error instanceof TypeError);
      match(error.message, /^Cannot use an Object as a key of a manager dict/);
      return true;
    });
    await rejects(d.set("f", () => 1), (error: Error) => {
      ok(error instanceof TypeError);
      match(error.message, /^Cannot copy a function into or out of a manager/);
      return true;
    });
    await rejects(
      d.update("kept", 5 as unknown as () => number),
      /^TypeError: Cannot update with number 5: pass a function/,
    );
    await rejects(
      d.update("kept", Math.random as () => number),
      /^TypeError: Cannot update with the built-in or bound function "random": an update function travels to the manager as its source/,
    );
    await rejects(
      d.update("kept", () => Promise.resolve(2)),
      /^TypeError: Cannot update with an async function or one that returned a promise/,
    );
    // An async function is refused before its body runs.
    const ran = "multiprocAsyncUpdateRan";
    await rejects(
      d.update("kept", async () => {
        (globalThis as Record<string, unknown>)["multiprocAsyncUpdateRan"] =
          true;
        return await 2;
      }),
      /^TypeError: Cannot update with an async function/,
    );
    equal(ran in globalThis, false);
    const outside = 5;
    await rejects(d.update("kept", () => outside), (error: Error) => {
      ok(error instanceof ReferenceError);
      match(error.message, /outside is not defined: an update function runs/);
      return true;
    });
    await rejects(
      d.update("kept", (n) => {
        (n as number[]).push?.(1);
        throw new RangeError("no thanks");
      }),
      /^RangeError: no thanks$/,
    );
    deepEqual(await d.entries(), [["kept", 1]]);
    const queue = new Queue();
    await rejects(
      d.set("q", { queue }),
      /^TypeError: Cannot store a queue, lock or manager proxy in a manager dict/,
    );
    const list = manager.list([1]);
    await rejects(
      list.at("0" as unknown as number),
      /^TypeError: Cannot use a string \("0"\) as a manager list index: pass an integer$/,
    );
    await rejects(
      list.at(0.5),
      /^RangeError: Cannot use "0.5" as a manager list index/,
    );
    await rejects(
      list.set(1, 2),
      /^RangeError: Cannot set index "1" of a manager list of length 1: use an index from -1 to 0$/,
    );
    await rejects(
      list.update(-2, (n) => n),
      /^RangeError: Cannot update index "-2"/,
    );
    await rejects(
      list.extend(5 as unknown as number[]),
      /^TypeError: Cannot extend a manager list with number 5/,
    );
    await rejects(
      list.slice(undefined, 1.5),
      /^RangeError: Cannot use "1.5" as the end of a slice/,
    );
    const ns = manager.namespace();
    await rejects(
      ns.get(1 as unknown as string),
      /^TypeError: Cannot use number 1 as the name of a manager namespace's attribute/,
    );
    throws(
      () => manager.dict(5 as unknown as Record<string, number>),
      /^TypeError: Cannot make a manager dict from number 5/,
    );
    throws(
      () => new DictProxy(),
      /^TypeError: Cannot make a manager proxy with new: call manager.dict\(\)/,
    );
    deepEqual(await list.slice(), [1]);
  });

  test("values that a copy would change are refused; defaults stay local", async () => {
    await using manager = new Manager();
    const d = manager.dict<string, unknown>();
    const lock = new Lock();
    await rejects(
      d.set("e", new Error("x", { cause: { lock } })),
      /^TypeError: Cannot store a queue, lock or manager proxy in a manager dict/,
    );
    await rejects(
      d.set("m", { inner: manager }),
      /^TypeError: Cannot store a Manager in a manager dict/,
    );
    await rejects(
      d.set("s", [new Int32Array(new SharedArrayBuffer(4))]),
      /^TypeError: Cannot store a SharedArrayBuffer or a view on one in a manager dict: a manager copies values/,
    );
    await rejects(
      d.set("b", new Blob(["x"])),
      /^TypeError: Cannot store a Blob in a manager dict/,
    );
    deepEqual(await d.keys(), []);
    // The default is not copied: a lock or a function comes back as given.
    equal(await d.get("none", lock), lock);
    const fn = (): number => 1;
    equal(await d.get("none", fn), fn);
    await d.set("there", undefined);
    equal(await d.get("there", 5), undefined);
    throws(
      () => manager.namespace(new Map([[1, "one"]]) as never),
      /^TypeError: Cannot use number 1 as the name of a manager namespace's attribute/,
    );
    throws(
      () => manager.list(null as never),
      /^TypeError: Cannot make a manager list from null: pass an array or another iterable$/,
    );
    const list = manager.list("ab");
    await list.extend("cd" as Iterable<string>);
    deepEqual(await list.slice(), ["a", "b", "c", "d"]);
    await list.clear();
    await rejects(
      list.pop(),
      /^RangeError: Cannot pop from an empty manager list$/,
    );
    await rejects(
      manager.value("7").update(parseInt as never),
      /^TypeError: Cannot update with the built-in or bound function "parseInt"/,
    );
  });

  test("a proxy used after shutdown gives a clear error", async () => {
    const manager = new Manager();
    const d = manager.dict({ a: 1 });
    const list = manager.list([1]);
    equal(manager.ended, false);
    equal(
      stripVTControlCharacters(inspect(manager)),
      "Manager { ended: false }",
    );
    {
      await using scoped = manager;
      void scoped;
    }
    equal(manager.ended, true);
    equal(
      stripVTControlCharacters(inspect(manager)),
      "Manager { ended: true }",
    );
    await rejects(d.get("a"), (error: Error) => {
      ok(error instanceof ManagerShutdownError);
      match(
        error.message,
        /^Cannot use a manager's dict, list, namespace or value after the manager was shut down/,
      );
      return true;
    });
    await rejects(list.append(2), ManagerShutdownError);
    throws(() => manager.value(1), ManagerShutdownError);
    manager.shutdown(); // again: nothing happens
  });
});

for (const backend of ["worker", "process"] as const satisfies Backend[]) {
  describe(`Manager proxies with the ${backend} backend`, () => {
    test("every method of every proxy, from a worker", async () => {
      await using manager = new Manager();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const [d, list, ns, v] = [
        manager.dict<string, number[]>(),
        manager.list<string>(),
        manager.namespace<{ stage: string; n: number }>({ n: 1 }),
        manager.value({ count: 1 }),
      ];
      deepEqual(
        await pool.apply("everyMethod", [d, list, ns, v]),
        EVERY_METHOD,
      );
      // The objects live here: this thread sees what the worker left.
      equal(await d.size(), 0);
      deepEqual(await ns.toObject(), { n: 2 });
      deepEqual(await v.get(), { count: 10 });
    });

    test("a dict filled by a pool, proxies in initArgs and in Process args", async () => {
      await using manager = new Manager();
      const squares = manager.dict<number, number>();
      const inits = manager.value(0);
      await using pool = new Pool<Tasks>(tasks, {
        processes: 2,
        backend,
        initializer: (inits: ValueProxy<number>) => inits.update((n) => n + 1),
        initArgs: [inits],
      });
      const keys = Array.from({ length: 20 }, (_, i) => i);
      await pool.starmap("square", keys.map((k) => [squares, k]));
      deepEqual(
        new Map(await squares.entries()),
        new Map(keys.map((k) => [k, k * k])),
      );
      const started = await inits.get();
      ok(started >= 1 && started <= 2);
      const count = manager.value(0);
      const p = new Process({
        target: "incrementByUpdate",
        module: tasks,
        args: [count, 10],
        backend,
      });
      p.start();
      await p.join();
      equal(p.exitCode, 0);
      equal(await count.get(), 10);
    });

    test("bad calls from a worker: clear errors, the dict intact", async () => {
      await using manager = new Manager();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const d = manager.dict<string, unknown>();
      const [fn, key, promised, unclonable, thrown, entries] = await pool.apply(
        "badCalls",
        [d],
      ) as [string[], string[], string[], string[], string[], unknown];
      equal(fn[0], "TypeError");
      match(fn[1], /^Cannot copy a function into a manager/);
      equal(key[0], "TypeError");
      match(key[1], /^Cannot use an Object as a key of a manager dict/);
      equal(promised[0], "TypeError");
      match(
        promised[1],
        /^Cannot update with an async function or one that returned a promise/,
      );
      equal(unclonable[0], "TypeError");
      match(unclonable[1], /^Cannot copy a function into or out of a manager/);
      deepEqual(thrown, ["RangeError", "no thanks"]);
      deepEqual(entries, [["kept", 1]]);
      deepEqual(await d.entries(), [["kept", 1]]);
    });

    test("typed arrays own exactly their bytes, both ways", async () => {
      await using manager = new Manager();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const d = manager.dict<string, unknown>();
      deepEqual(await pool.apply("typedRoundTrip", [d]), [3, 16, 5]);
      const t = await d.get("t") as { bytes: Uint8Array };
      deepEqual([...t.bytes], [1, 2, 3]);
      equal(t.bytes.buffer.byteLength, 3);
      equal((await d.get("f") as Float64Array).buffer.byteLength, 16);
      equal((await d.get("v") as DataView).buffer.byteLength, 5);
    });

    test("a proxy cannot be passed on by the worker that received it", async () => {
      await using manager = new Manager();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      equal(
        await pool.apply("passOn", [manager.dict()]),
        "TypeError: Cannot pass a manager proxy that came from another thread or process on to another worker: pass it to every worker from the process that made the manager",
      );
    });

    test("shutdown rejects a worker's calls on their way, clearly", async () => {
      const manager = new Manager();
      const d = manager.dict<string, number>();
      const started = new Queue<string>();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const result = pool.apply("callUntilShutdown", [d, started]);
      equal(await started.get(), "started");
      manager.shutdown();
      const [name, message] = await result;
      equal(name, "ManagerShutdownError");
      match(message, /after the manager was shut down/);
      // A write rejects too: it waits for its reply.
      const [set, get] = await pool.apply("setThenGet", [d]);
      equal(set[0], "ManagerShutdownError");
      equal(get[0], "ManagerShutdownError");
    });

    test("a write that resolved is kept when the worker exits right after", async () => {
      await using manager = new Manager();
      const d = manager.dict<string, number>();
      for (let i = 0; i < 3; i++) {
        const p = new Process({
          target: "setThenExit",
          module: tasks,
          args: [d, `k${i}`],
          backend,
        });
        p.start();
        await p.join();
        equal(p.exitCode, 0);
        equal(await d.get(`k${i}`), 1);
        equal(await d.get(`k${i}+`), 2);
      }
    });

    test("writes that resolved survive a task timeout that kills the worker", async () => {
      await using manager = new Manager();
      const d = manager.dict<number, number>();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      await rejects(
        pool.apply("setThenHang", [d, 50], { timeout: 1000 }),
        { name: "TimeoutError" },
      );
      equal(await d.size(), 50);
    });

    test("writes with busy work between reach the manager as they resolve", async () => {
      const manager = new Manager();
      const d = manager.dict<string, number>();
      const started = new Queue<string>();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const result = pool.apply("setWhileBusy", [d, started]);
      equal(await started.get(), "setting");
      let last = 0;
      for (let tries = 0; tries < 1000 && last < 3; tries++) {
        last = await d.get("last", 0);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      ok(last >= 3, `last set seen: ${last}`);
      manager.shutdown();
      equal(await result, "ManagerShutdownError");
    });

    test("a worker killed mid-call loses nothing; the manager stays usable", async () => {
      await using manager = new Manager();
      const list = manager.list<number>();
      const started = new Queue<string>();
      const p = new Process({
        target: "appendForever",
        module: tasks,
        args: [list, started],
        backend,
      });
      p.start();
      equal(await started.get(), "appending");
      p.kill();
      await p.join();
      const items = await list.slice();
      ok(items.length > 100);
      deepEqual(items, items.map((_, i) => i));
      await list.append(-1);
      equal(await list.at(-1), -1);
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const count = manager.value(0);
      await pool.apply("incrementByUpdate", [count, 3]);
      equal(await count.get(), 3);
    });
  });
}

describe("Manager proxies in threads and processes at once", () => {
  test("4 threads + 4 processes increment one value under one Lock: exact count", async () => {
    await using manager = new Manager();
    const value = manager.value(0);
    const lock = new Lock();
    await using threads = new Pool<Tasks>(tasks, { processes: 4 });
    await using processes = new Pool<Tasks>(tasks, {
      processes: 4,
      backend: "process",
    });
    const args = [0, 1, 2, 3].map((): [Lock, ValueProxy<number>, number] => [
      lock,
      value,
      25,
    ]);
    await Promise.all([
      threads.starmap("incrementUnderLock", args),
      processes.starmap("incrementUnderLock", args),
    ]);
    equal(await value.get(), 200);
    equal(lock.locked(), false);
  });

  test("4 threads + 4 processes increment with update(fn), no lock: exact count", async () => {
    await using manager = new Manager();
    const value = manager.value(0);
    await using threads = new Pool<Tasks>(tasks, { processes: 4 });
    await using processes = new Pool<Tasks>(tasks, {
      processes: 4,
      backend: "process",
    });
    const args = [0, 1, 2, 3].map((): [ValueProxy<number>, number] => [
      value,
      100,
    ]);
    await Promise.all([
      threads.starmap("incrementByUpdate", args),
      processes.starmap("incrementByUpdate", args),
    ]);
    equal(await value.get(), 800);
  });
});

test("a program that uses a manager exits on its own, leaving no process", async () => {
  const result = await runScript("fixtures/manager_exits");
  equal(result.stderr, "");
  const stdout = result.stdout ?? "";
  match(stdout, /^done( \d+)+\n$/);
  equal(result.returncode, 0);
  const pids = stdout.trim().split(" ").slice(1).map(Number);
  ok(await eventually(() => pids.every((pid) => !processExists(pid))));
  ok(await eventually(() => childPids().length === 0));
});
