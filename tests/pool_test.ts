import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  notEqual,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { getEventListeners } from "node:events";
import { availableParallelism } from "node:os";
import process from "node:process";
import {
  type Backend,
  PIPE,
  Pool,
  Popen,
  Process,
  Queue,
  TimeoutError,
  WorkerExitError,
} from "../mod.ts";
import {
  childRuntimeCommand,
  heapLimitUnsupported,
  siblingUrl,
} from "../_runtime.ts";
import { INIT, ONLINE, type WorkerSetup } from "../_wire.ts";
import { spillDirectory } from "../_spill.ts";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  childPids,
  collect,
  delay,
  eventually,
  fixtureUrl,
  limitedTest,
  processExists,
  runScript,
  scriptCommand,
} from "./_helpers.ts";

type Tasks = typeof import("./fixtures/tasks.ts");

/** Files of bulk data between this process and its children. */
function bulkFiles(): string[] {
  const dir = spillDirectory();
  if (dir === undefined) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
const tasks = fixtureUrl("tasks");

for (const backend of ["worker", "process"] as Backend[]) {
  describe(`Pool, ${backend} backend`, () => {
    function pool(options: ConstructorParameters<typeof Pool>[1] = {}) {
      return new Pool<Tasks>(tasks, { processes: 2, backend, ...options });
    }

    test("map, starmap, apply and applyAsync", async () => {
      await using p = pool();
      deepEqual(await p.map("square", [1, 2, 3]), [1, 4, 9]);
      deepEqual(await p.map("square", []), []);
      deepEqual(
        await p.map("square", Array.from({ length: 100 }, (_, i) => i), {
          chunksize: 7,
        }),
        Array.from({ length: 100 }, (_, i) => i * i),
      );
      deepEqual(await p.starmap("add", [[1, 2], [3, 4]]), [3, 7]);
      equal(await p.apply("add", [20, 22]), 42);
      equal(await p.applyAsync("square", [20]).get({ timeout: 10_000 }), 400);
      deepEqual(await p.mapAsync("square", new Set([4, 5])), [16, 25]);
      deepEqual(await p.starmapAsync("add", [[1, 1]]).get(), [2]);
      equal(typeof await p.apply("getpid"), "number");
    });

    test("inline functions, async results, async iterables for map", async () => {
      await using p = pool();
      deepEqual(await p.map((x: number) => x * 10, [1, 2]), [10, 20]);
      deepEqual(
        await p.map(
          async (x: number) => {
            await new Promise((resolve) => setTimeout(resolve, 1));
            return x + 1;
          },
          [1, 2, 3],
          { chunksize: 2 },
        ),
        [2, 3, 4],
      );
      async function* numbers() {
        yield 1;
        yield 2;
      }
      deepEqual(await p.map((x: number) => -x, numbers()), [-1, -2]);
      deepEqual(await p.starmap(Math.max, [[1, 9], [8, 2]]), [9, 8]);
    });

    test("transfer moves buffers to worker threads; processes get copies", async () => {
      await using p = pool();
      const buffer = new Uint8Array([1, 2, 3]).buffer;
      const sum = await p.apply(
        (data: ArrayBuffer) => new Uint8Array(data).reduce((a, b) => a + b, 0),
        [buffer],
        { transfer: [buffer] },
      );
      equal(sum, 6);
      equal(buffer.byteLength, backend === "worker" ? 0 : 3);
    });

    test("numbers cross packed, every value intact", async () => {
      await using p = pool();
      const special = [NaN, -0, 0, Infinity, -Infinity, 2 ** 53 + 2, 5e-324];
      const items = Array.from({ length: 40 }, (_, i) => special[i % 7]!);
      const same = await p.map((x: number) => x, items, { chunksize: 20 });
      ok(same.every((value, i) => Object.is(value, items[i])));
      const mixed = await p.map(
        (x: number) => (x === 3 ? "three" : x),
        Array.from({ length: 20 }, (_, i) => i),
      );
      equal(mixed[3], "three");
      equal(mixed[19], 19);
      const streamed: number[] = [];
      for await (
        const y of p.imap((x: number) => -x, items, { chunksize: 20 })
      ) {
        streamed.push(y);
      }
      ok(streamed.every((value, i) => Object.is(value, -items[i]!)));
    });

    test("applyAsync callbacks and AsyncResult state", async () => {
      await using p = pool();
      const seen: unknown[] = [];
      const good = p.applyAsync("square", [3], {
        callback: (value) => seen.push(value),
      });
      const bad = p.applyAsync("fail", ["nope"], {
        errorCallback: (error) => seen.push((error as Error).message),
      });
      throws(() => good.successful(), /not ready/);
      await good.wait();
      await bad.wait();
      await delay(0);
      deepEqual(seen.sort(), [9, "nope"].sort());
      ok(good.ready() && good.successful());
      ok(bad.ready() && !bad.successful());
      await rejects(bad.get(), /nope/);
    });

    test("get({ timeout }) times out while the task runs on; the pool stays usable", async () => {
      await using p = pool();
      const slow = p.applyAsync("sleep", [400, "finally"]);
      await rejects(slow.get({ timeout: 50 }), (error) => {
        ok(error instanceof TimeoutError);
        match(error.message, /50 ms/);
        return true;
      });
      equal(slow.ready(), false);
      equal(await p.apply("square", [5]), 25, "the pool remains available");
      equal(await slow.get(), "finally");
    });

    test("imap pulls lazily from sync, async and infinite iterables", async () => {
      await using p = pool();
      let pulled = 0;
      function* naturals() {
        for (let i = 0;; i++) {
          pulled++;
          yield i;
        }
      }
      const first: number[] = [];
      for await (const y of p.imap("square", naturals())) {
        first.push(y);
        if (first.length === 10) break;
      }
      deepEqual(first, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
      ok(pulled < 1000, `pulled ${pulled} items, a bounded number`);
      equal(p.stats().queued, 0, "breaking out dropped what was queued");
      ok(await eventually(() => p.stats().running === 0));

      async function* slowly() {
        for (let i = 1; i <= 5; i++) {
          await delay(1);
          yield i;
        }
      }
      deepEqual(await collect(p.imap("square", slowly())), [1, 4, 9, 16, 25]);
      deepEqual(
        await collect(p.imap("square", [1, 2, 3, 4, 5], { chunksize: 2 })),
        [1, 4, 9, 16, 25],
      );
      // The slow task is slow enough for the second worker to be up even on
      // a loaded machine: then the quick ones overtake it.
      const unordered = await collect(
        p.imapUnordered("sleep", [1500, 1, 20, 10]),
      );
      deepEqual(
        [...unordered].sort((a, b) => Number(a) - Number(b)),
        [1, 10, 20, 1500],
      );
      notEqual(unordered[0], 1500, "the slow one does not come first");
    });

    test("imap raises a task's error at its position", async () => {
      await using p = pool();
      const seen: unknown[] = [];
      await rejects(async () => {
        for await (
          const y of p.imap((x: number) => {
            if (x === 3) throw new RangeError("three");
            return x;
          }, [1, 2, 3, 4])
        ) seen.push(y);
      }, RangeError);
      deepEqual(seen, [1, 2]);
    });

    test("per-task timeout stops the task and replaces its worker", async () => {
      await using p = pool();
      const before = p.stats().workersStarted;
      const others = p.map("square", [1, 2, 3]);
      await rejects(p.apply("sleep", [10_000], { timeout: 100 }), (error) => {
        ok(error instanceof TimeoutError);
        match(error.message, /timeout of 100 ms/);
        return true;
      });
      deepEqual(await others, [1, 4, 9]);
      ok(await eventually(() => p.stats().workersStarted === before + 1));
      equal(await p.apply("square", [6]), 36);
    });

    test("timeouts of Infinity and 2^31 ms or more wait as long as they say", async () => {
      await using p = pool({ processes: 1 });
      // setTimeout fires at once for these: the task would be killed, the
      // wait cut short.
      for (const timeout of [Infinity, 2 ** 31, 2 ** 32 + 5, 1e15]) {
        equal(await p.apply("sleep", [30, "slept"], { timeout }), "slept");
        deepEqual(
          await p.map("sleep", [20, 10], { timeout, chunksize: 1 }),
          [20, 10],
        );
        equal(
          await p.applyAsync("sleep", [30, "got"]).get({ timeout }),
          "got",
        );
        const waited = p.applyAsync("sleep", [30]);
        await waited.wait({ timeout });
        equal(waited.ready(), true);
      }
      equal(p.stats().workersStarted, 1, "no task was stopped");
      equal(p.stats().failed, 0);
    });

    test("an AbortSignal drops a queued task and stops a running one", async () => {
      await using p = pool({ processes: 1 });
      const controller = new AbortController();
      const running = p.apply("sleep", [10_000], { signal: controller.signal });
      const queued = p.apply("square", [2], { signal: controller.signal });
      await delay(100);
      controller.abort(new Error("changed my mind"));
      await rejects(running, /changed my mind/);
      await rejects(queued, /changed my mind/);
      equal(await p.apply("square", [3]), 9);
      const already = AbortSignal.abort(new Error("too late"));
      await rejects(p.apply("square", [1], { signal: already }), /too late/);
      const longLived = new AbortController();
      await p.map("square", [1, 2, 3], {
        chunksize: 1,
        signal: longLived.signal,
      });
      equal(
        getEventListeners(longLived.signal, "abort").length,
        0,
        "settled tasks let go of the signal",
      );
    });

    test("a worker that dies mid-task fails that task alone", async () => {
      await using p = pool();
      const others = p.map("sleep", [50, 50, 50, 50], { chunksize: 1 });
      // Serialized payloads, which a task keeps to send again elsewhere.
      const objects = p.starmap(
        "sleep",
        [1, 2, 3, 4].map((k) => [50, { k }] as [number, unknown]),
        { chunksize: 1 },
      );
      await rejects(p.apply("exitWith", [3]), (error) => {
        ok(error instanceof WorkerExitError);
        equal(error.exitCode, 3);
        return true;
      });
      await rejects(p.apply("crashLater"), (error) => {
        ok(error instanceof WorkerExitError);
        match(error.message, /boom while awaiting|exit code/);
        return true;
      });
      deepEqual(await others, [50, 50, 50, 50]);
      deepEqual(await objects, [{ k: 1 }, { k: 2 }, { k: 3 }, { k: 4 }]);
      equal(await p.apply("square", [7]), 49);
    });

    test("an uncaught error in a timer kills the worker; nothing hangs", async () => {
      await using p = pool({ processes: 1 });
      const outcome = await p.apply("crashInTimer").then(
        (value) => value,
        (error) => error,
      );
      ok(
        outcome === "returned before the crash" ||
          outcome instanceof WorkerExitError,
      );
      // The timer may fire before or after the next task reaches the worker.
      const after = await p.apply("square", [2]).catch((error) => error);
      ok(after === 4 || after instanceof WorkerExitError, String(after));
      ok(await eventually(() => p.stats().workersStarted === 2));
      equal(await p.apply("square", [3]), 9);
    });

    test("a result that cannot be copied fails its own task only, batched or not", async () => {
      await using p = pool({ processes: 1 });
      const uncopyable =
        /returned a value that cannot be copied to the caller \(a symbol/;
      const outcomes = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          p.apply((i: number) => (i === 2 ? Symbol("two") : i), [i]).catch((
            error,
          ) => error)
        ),
      );
      deepEqual(outcomes.slice(0, 2), [0, 1]);
      ok(outcomes[2] instanceof TypeError);
      match(outcomes[2].message, uncopyable);
      equal(outcomes[3], 3);
      // Tiny tasks submitted at once come back in batches of results.
      const many = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          p.apply(
            (i: number) =>
              i % 7 === 3
                ? Symbol()
                : i % 11 === 5
                ? (function* () {})()
                : { i },
            [i],
          ).catch((error) => error)),
      );
      many.forEach((outcome, i) => {
        if (i % 7 === 3) match(outcome.message, uncopyable);
        else if (i % 11 === 5) match(outcome.message, /\(a Generator\)/);
        else deepEqual(outcome, { i });
      });
      // A map chunk fails as a whole, naming the item; the rest are unharmed.
      const items = Array.from({ length: 40 }, (_, i) => i);
      await rejects(
        p.map((i: number) => (i === 13 ? Symbol() : i), items, {
          chunksize: 10,
        }),
        (error) => {
          ok(error instanceof TypeError);
          match(error.message, /\(a symbol for item 3 of its chunk\)/);
          return true;
        },
      );
      const streamed = await collect(
        p.imap((i: number) => (i === 13 ? Symbol() : i), items, {
          chunksize: 10,
        }),
      ).catch((error) => error);
      match(streamed.message, uncopyable);
      deepEqual(await p.map((i: number) => i, items, { chunksize: 10 }), items);
      equal(p.stats().workersStarted, 1, "the worker was never replaced");
    });

    test("a stray rejection from one task is logged; the worker and the next task go on", async () => {
      const result = await runScript("./fixtures/stray_rejection", backend);
      equal(result.stdout, "a b c 1\n");
      match(
        result.stderr!,
        /Unhandled rejection in a task of worker PoolWorker-1 \(the worker goes on\):.*stray from task A/s,
      );
      equal(result.returncode, 0);
    });

    const unsupported = heapLimitUnsupported[backend];
    test(
      limitedTest(
        "a worker out of memory fails its task with WorkerExitError",
        "maxHeapMb",
        unsupported,
      ),
      async () => {
        if (unsupported !== undefined) {
          // The runtime cannot: the user gets a clear error instead.
          throws(
            () => pool({ maxHeapMb: 64 }),
            (error: unknown) =>
              error instanceof RangeError &&
              error.message.includes(unsupported) &&
              /Cannot limit the heap of \w+ workers to "64" MiB/.test(
                error.message,
              ),
          );
          return;
        }
        await using p = pool({ processes: 1, maxHeapMb: 64 });
        await rejects(p.apply("allocate"), (error: unknown) => {
          ok(error instanceof WorkerExitError);
          // A thread says so itself; a process is aborted by a signal.
          match(error.message, /memory/i);
          return true;
        });
        equal(await p.apply("square", [4]), 16);
      },
    );

    test("errors keep their class, name, message, cause, properties and stack", async () => {
      await using p = pool();
      await rejects(p.apply("fail", ["type"]), (error) => {
        ok(error instanceof TypeError);
        equal(error.message, "bad type");
        ok(error.cause instanceof RangeError);
        equal((error.cause as Error).message, "the cause");
        match(error.stack!, /fixtures\/tasks\.(ts|js)/);
        return true;
      });
      await rejects(p.apply("fail", ["custom"]), (error) => {
        ok(error instanceof Error);
        equal(error.name, "ValidationError");
        equal((error as Error & { field: string }).field, "email");
        return true;
      });
      await rejects(p.apply("fail", ["string"]), (error) => {
        equal(error, "a plain string");
        return true;
      });
    });

    test("typed arrays and ArrayBuffers in bulk arrive whole, and go back whole", async () => {
      await using p = pool();
      const items = [
        new Float64Array(20_000).fill(1.5),
        new Uint8Array(70_000).fill(7),
        new Int32Array(new ArrayBuffer(40_000), 8, 1_000).fill(-3),
        new BigInt64Array(10).fill(5n),
        new ArrayBuffer(30_000),
      ];
      const describe = (x: unknown) =>
        x instanceof ArrayBuffer ? ["ArrayBuffer", x.byteLength] : [
          (x as object).constructor.name,
          (x as Uint8Array).length,
          String((x as Uint8Array)[0]),
          (x as Uint8Array).buffer.byteLength,
        ];
      // A view comes with its whole buffer, as structured clone has it.
      deepEqual(await p.map(describe, items, { chunksize: 5 }), [
        ["Float64Array", 20_000, "1.5", 160_000],
        ["Uint8Array", 70_000, "7", 70_000],
        ["Int32Array", 1_000, "-3", 40_000],
        ["BigInt64Array", 10, "5", 80],
        ["ArrayBuffer", 30_000],
      ]);
      // Changed after submission: the worker sees the values as they were.
      const first = items[0] as Float64Array;
      const third = items[2] as Int32Array;
      const sum = p.apply(
        (a: Float64Array, b: Int32Array) => a[0] + a.length + b.byteOffset,
        [first, third],
      );
      first[0] = 9;
      equal(await sum, 20_009.5);
      const results = await p.map(
        (n: number) =>
          n === 3 ? new ArrayBuffer(n) : new Float32Array(50_000).fill(n),
        [1, 2, 3],
      );
      deepEqual(results.map(describe), [
        ["Float32Array", 50_000, "1", 200_000],
        ["Float32Array", 50_000, "2", 200_000],
        ["ArrayBuffer", 3],
      ]);
    });

    test("arguments are copied: the classic ls[i] = i leaves ls unchanged", async () => {
      await using p = pool();
      const ls = [0, 0, 0, 0, 0];
      const results = ls.map((_, i) => p.applyAsync("func", [ls, i]));
      ls[0] = 99; // after submission: the tasks must not see it
      const values = await Promise.all(results);
      deepEqual(ls, [99, 0, 0, 0, 0]);
      deepEqual(values, [
        [0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 2, 0, 0],
        [0, 0, 0, 3, 0],
        [0, 0, 0, 0, 4],
      ]);
    });

    test("maxTasksPerChild recycles workers; initializer runs once per worker", async () => {
      await using p = pool({
        processes: 1,
        maxTasksPerChild: 2,
        initializer: "setup",
        initArgs: [{ greeting: "hi" }],
      });
      const names = await p.map("who", [1, 2, 3, 4, 5], { chunksize: 1 });
      deepEqual(
        names.map((info) => info.name),
        [
          "PoolWorker-1",
          "PoolWorker-1",
          "PoolWorker-2",
          "PoolWorker-2",
          "PoolWorker-3",
        ],
      );
      deepEqual(await p.apply("readSetup"), [{ greeting: "hi" }, 1]);
      await using inline = new Pool({
        processes: 1,
        backend,
        initializer: (value: number) => {
          (globalThis as Record<string, unknown>).seed = value;
        },
        initArgs: [7],
      });
      equal(
        await inline.apply(() => (globalThis as Record<string, unknown>).seed),
        7,
      );
    });

    test("maxQueue applies backpressure", async () => {
      await using p = pool({ processes: 1, maxQueue: 2 });
      let maxQueued = 0;
      const watch = setInterval(() => {
        maxQueued = Math.max(maxQueued, p.stats().queued);
      }, 1);
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => p.apply("sleep", [10, i])),
      );
      clearInterval(watch);
      deepEqual(results, [0, 1, 2, 3, 4, 5, 6, 7]);
      ok(maxQueued <= 2, `queued at most ${maxQueued}`);
      deepEqual(
        await collect(p.imap("square", [1, 2, 3, 4, 5, 6])),
        [1, 4, 9, 16, 25, 36],
      );
    });

    test("stats counts tasks and workers", async () => {
      await using p = pool();
      await p.map("square", [1, 2, 3], { chunksize: 1 });
      await p.apply("fail", ["x"]).catch(() => {});
      const stats = p.stats();
      equal(stats.backend, backend);
      equal(stats.processes, 2);
      equal(stats.completed, 3);
      equal(stats.failed, 1);
      equal(stats.queued, 0);
      equal(stats.running, 0);
      equal(stats.state, "running");
    });

    test("close, join and terminate", async () => {
      const p = pool();
      const pending = p.applyAsync("sleep", [100, "done"]);
      await rejects(p.join(), /Cannot join a running pool/);
      p.close();
      equal(p.stats().state, "closed");
      await rejects(p.apply("square", [1]), /pool is closed/);
      throws(() => p.applyAsync("square", [1]), /pool is closed/);
      await p.join();
      equal(await pending, "done", "queued work finished before join");

      const fresh = pool();
      fresh.close(); // while its workers are still starting
      await fresh.join();
      equal(fresh.stats().state, "closed");

      const q = pool();
      const slow = q.apply("sleep", [10_000]);
      await delay(50);
      await q.terminate();
      await rejects(slow, /terminated/);
      equal(q.stats().state, "terminated");
    });

    test("bad input: clear errors, the pool unaffected", async () => {
      await using p = pool();
      await rejects(
        p.apply("func", [[() => 1], 0] as unknown as [number[], number]),
        (error) => {
          ok(error instanceof TypeError);
          match(error.message, /Cannot send argument 0 \(an Array\)/);
          return true;
        },
      );
      await rejects(
        p.apply((f: unknown) => f, [Symbol("s")]),
        /Cannot send argument 0 \(a symbol\)/,
      );
      await rejects(p.apply("nope" as "square", [1]), (error) => {
        ok(error instanceof TypeError);
        match(error.message, /Unknown task "nope".*square/);
        match(error.message, /add/);
        return true;
      });
      await rejects(
        p.apply("notAFunction" as "square", [1]),
        /Unknown task "notAFunction"/,
      );
      const outer = 5;
      await rejects(p.apply((x: number) => x + outer, [1]), (error) => {
        ok(error instanceof ReferenceError);
        match(error.message, /outer is not defined: an inline task function/);
        match(error.message, /move the function into a module/);
        return true;
      });
      await rejects(p.apply("returnFunction"), /cannot be copied/);
      equal(await p.apply("square", [9]), 81, "the pool is unaffected");
    });

    test("clear errors for items that are not iterable and tasks that are not sendable functions", async () => {
      await using p = pool();
      const square = (x: number) => x * x;
      for (const items of [5, null, undefined, {}]) {
        const notIterable = (error: unknown) => {
          ok(error instanceof TypeError);
          match(
            error.message,
            /^Expected the items as an iterable or async iterable \(an array, a Set, a generator…\), got (number 5|null|undefined|an Object): pass the items in an array or another iterable/,
          );
          return true;
        };
        const bad = items as unknown as number[];
        await rejects(p.map(square, bad), notIterable);
        await rejects(p.mapAsync(square, bad).get(), notIterable);
        await rejects(
          p.starmap(square, bad as unknown as [number][]),
          notIterable,
        );
        await rejects(collect(p.imap(square, bad)), notIterable);
        await rejects(collect(p.imapUnordered(square, bad)), notIterable);
      }
      await rejects(p.map(square, 5 as unknown as number[]), /e\.g\. \[5\]/);
      await rejects(
        p.starmap(Math.max, [[1, 2], 3] as unknown as [number, number][]),
        (error) => {
          ok(error instanceof TypeError);
          match(
            error.message,
            /^Expected each item of starmap to be an array of arguments, got number 3 at index 1: pass \[\[1, 2\], \[3, 4\]\]/,
          );
          return true;
        },
      );

      function* numbers(n: number) {
        for (let i = 0; i < n; i++) yield i;
      }
      async function* later(n: number) {
        yield n;
      }
      // A generator object where the function was meant.
      await rejects(
        p.apply(numbers(3) as unknown as () => number),
        (error) => {
          ok(error instanceof TypeError);
          match(
            error.message,
            /^Expected the task to be an export name of the task module or a function, got a Generator: pass the function itself, not what calling it returned/,
          );
          return true;
        },
      );
      await rejects(
        p.map(later(1) as unknown as () => number, [1]),
        /got an AsyncGenerator: pass the function itself/,
      );
      await rejects(
        p.apply(42 as unknown as () => number),
        /got number 42: pass the name of an exported function, e\.g\. "square", or a self-contained function/,
      );
      // Generator functions, whose generators cannot come back.
      await rejects(p.apply(numbers, [3]), (error) => {
        ok(error instanceof TypeError);
        match(
          error.message,
          /^Cannot run a generator function \("numbers"\) as a task: the generator it returns cannot be copied to the caller: return an array/,
        );
        return true;
      });
      await rejects(
        p.map(later, [1]),
        /^TypeError: Cannot run an async generator function \("later"\)/,
      );
      // Bound and native functions, whose source is not available.
      await rejects(p.apply(square.bind(null), [2]), (error) => {
        ok(error instanceof TypeError);
        match(
          error.message,
          /^Cannot send the bound function "square" to a worker: neither its source nor its bound values can be copied: pass the function itself, with the bound values as arguments/,
        );
        return true;
      });
      await rejects(
        p.apply(((x: number) => x).bind(null), [2]),
        /^TypeError: Cannot send an anonymous bound function to a worker/,
      );
      await rejects(
        p.apply(Math.random),
        /^TypeError: Cannot send the native function "random" to a worker: its source is not available: pass a function that calls it by its global name/,
      );
      for (
        const error of await Promise.all([
          p.apply(square.bind(null), [2]).catch((e) => e),
          p.apply(numbers(1) as unknown as () => number).catch((e) => e),
        ])
      ) {
        ok(!/\(a \)|"bound /.test(error.message), error.message);
      }
      equal(await p.apply(square, [9]), 81, "the pool is unaffected");
    });

    test("a large pool is bounded and starts its workers as work comes", async () => {
      throws(
        () => new Pool({ processes: 10_000, backend }),
        (error: unknown) =>
          error instanceof RangeError &&
          /Expected processes to be at most \d+, got "10000": each worker is a whole JavaScript runtime/
            .test(error.message),
      );
      const max = Math.max(256, availableParallelism());
      await using p = pool({ processes: max });
      // Those that can start at once start with the pool, no more.
      const eager = Math.min(max, Math.max(4, availableParallelism()));
      equal(p.stats().workersStarted, eager);
      equal(p.stats().processes, max);
      for (let i = 0; i < 3; i++) equal(await p.apply("square", [i]), i * i);
      equal(p.stats().workersStarted, eager, "idle workers took the work");
      // Tasks that wait for a worker start more of them, no more than needed.
      const burst = eager + 3;
      deepEqual(
        await p.map("sleep", Array(burst).fill(300), { chunksize: 1 }),
        Array(burst).fill(300),
      );
      const started = p.stats().workersStarted;
      ok(started > eager && started <= burst, `${started} workers started`);
    });

    test("bad options and a module that fails to load", async () => {
      for (const processes of [0, -1, 1.5, "2"]) {
        throws(
          () => new Pool({ processes: processes as number, backend }),
          (error: unknown) =>
            error instanceof RangeError &&
            /Expected processes to be a whole number of workers >= 1/.test(
              error.message,
            ),
        );
      }
      throws(
        () => new Pool({ backend: "thread" as Backend }),
        /Expected backend to be "worker" or "process"/,
      );
      await using broken = new Pool(fixtureUrl("broken_module"), {
        processes: 1,
        backend,
      });
      await rejects(broken.apply("anything"), (error) => {
        ok(error instanceof Error);
        match(error.message, /Cannot load the task module ".*broken_module/);
        match(error.message, /this module cannot be loaded/);
        return true;
      });
      await rejects(broken.apply("anything"), /Cannot load the task module/);
      await using failing = pool({ initializer: "failingInitializer" });
      await rejects(failing.apply("square", [1]), /initializer exploded/);
    });
  });
}

/** How many file descriptors this process has open (a shell looks: Deno lets only --allow-all read /proc). */
function openFds(): number {
  return Number(
    execFileSync("/bin/sh", ["-c", `ls /proc/${process.pid}/fd | wc -l`], {
      encoding: "utf8",
    }),
  );
}

/**
 * The file descriptors that stay open: the fewest of a few looks, 50 ms
 * apart. One look sees up to three more for a moment, the `ls` child's own
 * (/dev/null and its pipes' ends, which this process closes as the child
 * runs), and in Deno a terminated thread closes its event loop's (an epoll
 * and an eventfd) just after the exit the pool waits for: under load, a
 * single look counted eleven more than stayed open.
 */
async function steadyFds(): Promise<number> {
  let fewest = openFds();
  for (let i = 0; i < 4; i++) {
    await delay(50);
    fewest = Math.min(fewest, openFds());
  }
  return fewest;
}

describe("Pool: worker threads and the program's resources", () => {
  test("pools terminated soon after use leave no file descriptors open", async () => {
    // Node leaks the files a thread is still loading when it is terminated:
    // about two per pool here, before threads were left to finish loading.
    async function cycle(i: number): Promise<void> {
      const p = i % 2 === 0
        ? new Pool({ processes: 2 })
        : new Pool<Tasks>(tasks, { processes: 2 });
      // Some pools are terminated as they start, others once one worker has
      // run a task while the other may still be loading.
      if (i % 3 !== 0) equal(await p.apply((x: number) => x + 1, [i]), i + 1);
      await p.terminate();
    }
    // What the runtime opens once (caches) is open before counting.
    for (let i = 0; i < 3; i++) await cycle(i);
    const before = await steadyFds();
    for (let i = 0; i < 50; i++) await cycle(i);
    // The last pools' threads may still be closing theirs: a leak stays.
    let after = await steadyFds();
    const deadline = Date.now() + 5_000;
    while (after - before > 10 && Date.now() < deadline) {
      after = await steadyFds();
    }
    ok(after - before <= 10, `${before} file descriptors open, then ${after}`);
  });
  test("a worker still loading its module is stopped all the same", async () => {
    // Its kill waits for the module to load, but not forever.
    const p = new Pool(fixtureUrl("never_loads"), { processes: 1 });
    const pending = p.apply("never");
    await delay(100);
    await p.terminate();
    await rejects(pending, /terminated/);
  });
});

// Node's IPC decodes a typed array as a view into the message's bytes or a
// pooled 8 KiB buffer, which `.buffer` would expose to the caller.
describe("Pool and Process: typed arrays that cross a process's channel own their bytes", () => {
  /** Whether `view` is over a buffer of exactly its bytes. */
  function owns(view: ArrayBufferView): boolean {
    return view.byteOffset === 0 &&
      view.buffer.byteLength === view.byteLength;
  }

  test("results: bare, in objects, arrays, Maps and Sets, from map and imap", async () => {
    await using p = new Pool({ processes: 1, backend: "process" });
    const bare = await p.apply(() => new Float64Array([1, 2]));
    deepEqual([...bare], [1, 2]);
    ok(owns(bare));
    ok(owns(await p.apply(() => new Uint8Array([1, 2, 3]))));
    ok(owns(await p.apply(() => new DataView(new ArrayBuffer(5)))));
    const nested = await p.apply(() => {
      const shared = new Int16Array([7, 8, 9]);
      return {
        object: { deep: new Uint8Array([4, 5]) },
        array: [1, "a", shared, shared],
        map: new Map<unknown, unknown>([["k", new Uint32Array(2)]]),
        set: new Set([new Uint8Array(1)]),
      };
    });
    deepEqual([...nested.object.deep], [4, 5]);
    ok(owns(nested.object.deep));
    ok(owns(nested.array[2] as Int16Array));
    deepEqual(nested.array.slice(0, 2), [1, "a"]);
    // One view found twice is one copy, as structured clone keeps it.
    equal(nested.array[2], nested.array[3]);
    ok(owns(nested.map.get("k") as Uint32Array));
    ok(owns([...nested.set][0]!));
    const mapped = await p.map((x: number) => new Uint8Array([x]), [1, 2, 3]);
    deepEqual(mapped.map((view) => [view[0], owns(view)]), [
      [1, true],
      [2, true],
      [3, true],
    ]);
    const streamed = await collect(
      p.imap((x: number) => ({ x: new Float32Array([x]) }), [1, 2, 3]),
    );
    deepEqual(streamed.map(({ x }) => [x[0], owns(x)]), [
      [1, true],
      [2, true],
      [3, true],
    ]);
  });

  test("an error's cause", async () => {
    await using p = new Pool({ processes: 1, backend: "process" });
    const error = await p.apply(() => {
      throw new Error("failed", { cause: new Uint8Array([1, 2, 3]) });
    }).catch((error: Error) => error);
    ok(error instanceof Error);
    deepEqual([...(error.cause as Uint8Array)], [1, 2, 3]);
    ok(owns(error.cause as Uint8Array));
  });

  test("what a child gets: task arguments beside a queue, initArgs, a Process's args", async () => {
    const queue = new Queue();
    try {
      await using p = new Pool({
        processes: 1,
        backend: "process",
        initializer: (view: Uint8Array) => {
          (globalThis as Record<string, unknown>).initView = view;
        },
        initArgs: [new Uint8Array([1, 2, 3])],
      });
      deepEqual(
        await p.apply(
          (view: Uint8Array, _queue: Queue) => [
            view.byteOffset,
            view.buffer.byteLength,
            view.byteLength,
          ],
          [new Uint8Array([4, 5, 6]), queue],
        ),
        [0, 3, 3],
      );
      deepEqual(
        await p.apply(() => {
          const view = (globalThis as Record<string, unknown>)
            .initView as Uint8Array;
          return [view.byteOffset, view.buffer.byteLength, view.byteLength];
        }),
        [0, 3, 3],
      );
      const child = new Process({
        backend: "process",
        target: (view: Uint8Array) => {
          if (view.byteOffset !== 0 || view.buffer.byteLength !== 3) {
            throw new Error(`A view into ${view.buffer.byteLength} bytes`);
          }
        },
        args: [new Uint8Array([7, 8, 9])],
      });
      child.start();
      await child.join();
      equal(child.exitCode, 0);
    } finally {
      queue.close();
    }
  });
});

describe("Pool: process workers and the program's life", () => {
  test("bulk data through files: none left by a worker killed mid-task or a terminate", async () => {
    const p = new Pool<Tasks>(tasks, { processes: 2, backend: "process" });
    const arrays = Array.from(
      { length: 6 },
      (_, i) => new Float64Array(20_000).fill(i),
    );
    const doubled = await p.starmap(
      "doubleOrDie",
      arrays.map((a) => [a, -1] as [Float64Array, number]),
    );
    deepEqual(
      doubled.map((a) => [a.length, a[0]]),
      arrays.map((_, i) => [20_000, i * 2]),
    );
    // The worker given the fourth dies; others may fail with it (a batch).
    const results = await Promise.allSettled(
      arrays.map((a) => p.apply("doubleOrDie", [a, 3])),
    );
    for (const [i, result] of results.entries()) {
      if (result.status === "fulfilled") equal(result.value[0], i * 2);
      else ok(result.reason instanceof WorkerExitError);
    }
    equal(results[3]!.status, "rejected");
    const pending = arrays.map((a) => p.apply("doubleOrDie", [a, -1]));
    await p.terminate();
    await Promise.allSettled(pending);
    deepEqual(bulkFiles(), []);
  });

  test("workers are real child processes, gone after terminate", async () => {
    const p = new Pool<Tasks>(tasks, { processes: 2, backend: "process" });
    const pids = new Set(await p.map("getpid", [1, 2, 3, 4], { chunksize: 1 }));
    ok(!pids.has(process.pid));
    for (const pid of pids) ok(childPids().includes(pid));
    await p.terminate();
    ok(
      await eventually(() =>
        [...pids].every((pid) => !childPids().includes(pid))
      ),
    );
  });

  test("workers killed at random under load: every task settles", async () => {
    await using p = new Pool<Tasks>(tasks, {
      processes: 2,
      backend: "process",
    });
    const count = 200;
    const results = Array.from(
      { length: count },
      (_, i) => p.apply("sleep", [5, { i }]).then((v) => v, (e) => e),
    );
    let kills = 0;
    const killer = setInterval(() => {
      const victims = childPids();
      const victim = victims[kills % Math.max(1, victims.length)];
      if (victim !== undefined && kills < 5) {
        process.kill(victim, "SIGKILL");
        kills++;
      }
    }, 40);
    const settled = await Promise.all(results);
    clearInterval(killer);
    let lost = 0;
    settled.forEach((value, i) => {
      if (value instanceof WorkerExitError) {
        lost++;
        equal(value.signal, "SIGKILL");
      } else deepEqual(value, { i });
    });
    ok(lost <= kills, `${lost} tasks lost to ${kills} kills`);
    equal(await p.apply("square", [12]), 144);
  });

  test("the event loop exits with idle pools left open; children go too", async () => {
    const result = await runScript("./fixtures/idle_pools");
    equal(result.stderr, "");
    equal(result.returncode, 0);
    const [line, pidsLine] = result.stdout!.trim().split("\n");
    equal(line, "results 4 9");
    const pids = JSON.parse(pidsLine!) as number[];
    ok(
      await eventually(() => pids.every((pid) => !processExists(pid))),
      "the process workers exited with their parent",
    );
  });

  test("a process worker whose parent goes away as it writes exits quietly", async () => {
    // The parent closes the channel while the worker loads its module; the
    // worker's next message (READY) then meets a broken pipe. Unguarded, it
    // printed "Uncaught BrokenPipe" (Deno) or an unhandled EPIPE (Node) onto
    // the stderr it shares with the program, which had exited while its idle
    // pool's workers still started.
    const dir = mkdtempSync(join(tmpdir(), "multiproc-test-"));
    const release = join(dir, "release");
    const module = fixtureUrl("loads_until_released").href;
    const { command, args } = childRuntimeCommand(siblingUrl("_bootstrap"), {
      v8Flags: [],
      permissions: undefined,
      module,
    });
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "advanced",
      env: { ...process.env, MULTIPROC_TEST_RELEASE: release },
    });
    try {
      const exited = once(child, "exit");
      const ended = once(child.stderr!, "end");
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (text) => stderr += text);
      const [online] = await once(child, "message");
      deepEqual(online, [ONLINE]);
      const setup: WorkerSetup = {
        module,
        name: "PoolWorker-1",
        initializer: undefined,
        initializerIsSource: false,
        initArgs: [],
      };
      child.send([INIT, setup]);
      // It says so when it has begun loading.
      await once(child.stdout!, "data");
      child.disconnect();
      writeFileSync(release, "");
      const [code, signal] = await exited;
      await ended;
      equal(stderr, "");
      deepEqual([code, signal], [0, null]);
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("process workers of a SIGKILLed parent exit on their own", async () => {
    const child = scriptCommand("./fixtures/orphan_parent");
    await using parent = new Popen(child, { stdout: PIPE, text: true });
    const lines = parent.lines();
    const first = await lines.next();
    const pids = JSON.parse(first.value as string) as number[];
    equal(pids.length, 2);
    parent.kill();
    await parent.wait();
    const started = Date.now();
    ok(
      await eventually(() => pids.every((pid) => !processExists(pid))),
      "orphaned workers exited",
    );
    ok(Date.now() - started < 10_000);
  });

  test("a file that is both the main script and the task module", async () => {
    const result = await runScript("./fixtures/main_and_tasks");
    equal(result.stderr, "");
    equal(result.stdout, "main runs once: [1,4,9] [1,8,27]\n");
  });
});
