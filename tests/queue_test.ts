import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import {
  type Backend,
  Connection,
  EOFError,
  JoinableQueue,
  Pipe,
  Pool,
  Process,
  Queue,
  QueueClosedError,
  QueueEmptyError,
  QueueFullError,
  SimpleQueue,
} from "../mod.ts";
import { markDead, newThreadToken } from "../_liveness.ts";
import { Ring } from "../_ring.ts";
import { spillDirectory } from "../_spill.ts";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  collect,
  delay,
  eventually,
  fixtureUrl,
  runScript,
} from "./_helpers.ts";

type Tasks = typeof import("./fixtures/queue_tasks.ts");
const tasks = fixtureUrl("queue_tasks");

describe("Queue in one thread", () => {
  test("first in, first out; sizes; nowait variants", async () => {
    const q = new Queue<string>({ maxsize: 2 });
    equal(q.empty(), true);
    await q.put("A");
    q.putNowait("B");
    equal(q.qsize(), 2);
    equal(q.full(), true);
    throws(() => q.putNowait("C"), QueueFullError);
    equal(await q.get(), "A");
    equal(q.getNowait(), "B");
    throws(() => q.getNowait(), QueueEmptyError);
    equal(q.empty(), true);
    equal(new Queue().full(), false);
  });

  test("waiting put and get, with timeout and signal", async () => {
    const q = new Queue<number>({ maxsize: 1 });
    await q.put(1);
    await rejects(q.put(2, { timeout: 20 }), QueueFullError);
    const waitingPut = q.put(3);
    equal(await q.get(), 1);
    await waitingPut;
    equal(await q.get(), 3);
    await rejects(q.get({ timeout: 20 }), QueueEmptyError);
    const controller = new AbortController();
    const waitingGet = q.get({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await rejects(waitingGet, { message: "stop" });
    const later = q.get({ timeout: 5_000 });
    setTimeout(() => q.putNowait(7), 20);
    equal(await later, 7);
    // Nothing was lost to the aborted or timed-out waits.
    await q.put(8);
    equal(q.qsize(), 1);
    equal(await q.get(), 8);
  });

  test("close: puts fail, getters drain, then fail; waiters wake", async () => {
    const q = new Queue<number>();
    const waiting = q.get();
    q.close();
    await rejects(waiting, QueueClosedError);
    const r = new Queue<number>();
    r.putNowait(1);
    r.putNowait(2);
    r.close();
    r.close();
    equal(r.closed, true);
    await rejects(r.put(3), QueueClosedError);
    throws(() => r.putNowait(3), QueueClosedError);
    equal(await r.get(), 1);
    equal(r.getNowait(), 2);
    await rejects(r.get(), QueueClosedError);
    throws(() => r.getNowait(), QueueClosedError);
    const full = new Queue<number>({ maxsize: 1 });
    full.putNowait(1);
    const blocked = full.put(2);
    full.close();
    await rejects(blocked, QueueClosedError);
  });

  test("async iteration ends once closed and drained", async () => {
    const q = new Queue<number>();
    setTimeout(async () => {
      for (let i = 0; i < 5; i++) await q.put(i);
      q.close();
    }, 10);
    deepEqual(await collect(q), [0, 1, 2, 3, 4]);
  });

  test("items are copied at put; values of every kind survive", async () => {
    const q = new Queue<unknown>();
    const item = { list: [1, 2], when: new Date(0) };
    await q.put(item);
    item.list.push(3);
    deepEqual(await q.get(), { list: [1, 2], when: new Date(0) });
    const values = [
      0,
      -0,
      NaN,
      2 ** 31,
      -(2 ** 31),
      1.5,
      Infinity,
      "",
      "héllo wörld 🎉",
      "\uFEFFstarts with a byte order mark",
      "x".repeat(100_000),
      true,
      false,
      null,
      undefined,
      12345678901234567890n,
      new Map([[1, { a: 1 }]]),
      new Set(["s"]),
      new Uint8Array([1, 2, 3]),
      new Float64Array([0.5]),
      /re/g,
      [undefined, [null]],
      new Error("boom"),
    ];
    for (const value of values) await q.put(value);
    for (const value of values) {
      const got = await q.get();
      if (value instanceof Error) {
        equal((got as Error).message, "boom");
      } else deepEqual(got, value);
    }
  });

  test("an item that cannot be copied rejects its put; the queue is intact", async () => {
    const q = new Queue<unknown>();
    await q.put(1);
    await rejects(q.put(() => 2), {
      name: "TypeError",
      message: /Cannot put a function into a queue.*put plain data/,
    });
    await rejects(q.put({ nested: Symbol("s") }), TypeError);
    throws(() => q.putNowait(new Queue()), {
      name: "TypeError",
      message: /Cannot put a Queue.*travel in task and Process arguments/,
    });
    // Nested, too: structured clone would make an empty object of each.
    const [end] = Pipe();
    for (const nested of [{ q }, [1, [end]], new Map([[1, q]]), new Set([q])]) {
      await rejects(q.put(nested), {
        name: "TypeError",
        message: /holding a (Queue|Connection).*travel in task and Process/,
      });
    }
    equal(q.qsize(), 1);
    await q.put(3);
    deepEqual([await q.get(), await q.get()], [1, 3]);
  });

  test("large items and a ring that grows while wrapped", async () => {
    const q = new Queue<Uint8Array | number>();
    const expected: (number | number[])[] = [];
    // Fill, half drain, then grow: records wrap around the ring's end.
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 40; i++) {
        const size = (round * 40 + i) * 997 % 70_000;
        const bytes = new Uint8Array(size).fill(i);
        await q.put(bytes);
        expected.push([size, i]);
        await q.put(round * 40 + i);
        expected.push(round * 40 + i);
      }
      for (let i = 0; i < 30; i++) {
        const got = await q.get();
        const want = expected.shift()!;
        if (typeof want === "number") equal(got, want);
        else {
          const bytes = got as Uint8Array;
          deepEqual([bytes.length, bytes[0] ?? want[1]], want);
        }
      }
    }
    await q.put(new Uint8Array(5 * 1024 * 1024).fill(9));
    while (expected.length > 0) {
      const got = await q.get();
      const want = expected.shift()!;
      if (typeof want === "number") equal(got, want);
      else equal((got as Uint8Array).length, want[0]);
    }
    const big = await q.get() as Uint8Array;
    equal(big.length, 5 * 1024 * 1024);
    equal(big[big.length - 1], 9);
  });

  test("bad options say what to pass", () => {
    throws(() => new Queue({ maxsize: -1 }), {
      name: "RangeError",
      message: /Expected maxsize to be a whole number >= 0, got "-1"/,
    });
    throws(() => new Queue({ maxsize: 1.5 }), RangeError);
    const q = new Queue();
    rejects(q.get({ timeout: -5 }), RangeError);
    throws(
      () => new Connection(),
      /Cannot make a Connection directly: call Pipe\(\)/,
    );
  });

  test("JoinableQueue: taskDone and join", async () => {
    const q = new JoinableQueue<number>();
    throws(() => q.taskDone(), {
      name: "RangeError",
      message: /more times than items were put/,
    });
    await q.join();
    await q.put(1);
    await q.put(2);
    let joined = false;
    const join = q.join().then(() => joined = true);
    await q.get();
    q.taskDone();
    await delay(10);
    equal(joined, false);
    await q.get();
    q.taskDone();
    await join;
    throws(() => q.taskDone(), RangeError);
    await q.put(3);
    const controller = new AbortController();
    const waiting = q.join({ signal: controller.signal });
    controller.abort(new Error("enough"));
    await rejects(waiting, { message: "enough" });
  });

  test("SimpleQueue", async () => {
    const q = new SimpleQueue<string>();
    equal(q.empty(), true);
    q.put("A");
    q.put("B");
    equal(q.empty(), false);
    equal(await q.get(), "A");
    q.close();
    throws(() => q.put("C"), QueueClosedError);
    deepEqual(await collect(q), ["B"]);
    await rejects(q.get(), QueueClosedError);
  });

  test("Pipe: duplex, one-way, poll, EOF", async () => {
    const [a, b] = Pipe<string>();
    a.send("to b");
    b.send("to a");
    equal(await b.recv(), "to b");
    equal(await a.recv(), "to a");
    equal(await a.poll(), false);
    setTimeout(() => b.send("later"), 20);
    equal(await a.poll(5_000), true);
    equal(await a.recv(), "later");
    await rejects(a.recv({ timeout: 10 }), QueueEmptyError);
    b.send("last");
    b.close();
    throws(() => a.send("x"), EOFError);
    equal(await a.poll(), true);
    equal(await a.recv(), "last");
    await rejects(a.recv(), EOFError);
    const [reader, writer] = Pipe<number>({ duplex: false });
    throws(() => reader.send(1), /receiving end of a one-way pipe/);
    await rejects(async () => await writer.recv(), /sending end/);
    writer.send(1);
    writer.send(2);
    writer.close();
    deepEqual(await collect(reader), [1, 2]);
  });
});

for (const backend of ["worker", "process"] as Backend[]) {
  describe(`Queues with the ${backend} backend`, () => {
    function pool(options: ConstructorParameters<typeof Pool>[1] = {}) {
      return new Pool<Tasks>(tasks, { processes: 2, backend, ...options });
    }

    test("typed arrays from a worker own exactly their bytes", async () => {
      const q = new Queue<unknown>();
      await using workers = pool({ processes: 1 });
      await workers.apply("putTyped", [q]);
      await q.get();
      const words = await q.get() as Uint16Array;
      deepEqual([...words], [1, 2]);
      equal(words.buffer.byteLength, 4);
      const { bytes } = await q.get() as { bytes: Uint8Array };
      equal(bytes.buffer.byteLength, 1);
      equal((await q.get() as DataView).buffer.byteLength, 3);
    });

    test("the tour's writer and reader, each a Process", async () => {
      const q = new Queue<string>();
      const write = new Process({
        target: "writer",
        module: tasks,
        args: [q, ["A", "B", "C"]],
        backend,
      });
      const got = new Queue<string[]>();
      const read = new Process({
        target: async (q: Queue<string>, out: Queue<string[]>) => {
          const seen: string[] = [];
          for (let i = 0; i < 3; i++) seen.push(await q.get());
          await out.put(seen);
        },
        args: [q, got],
        backend,
      });
      write.start();
      read.start();
      await write.join();
      deepEqual(await got.get({ timeout: 30_000 }), ["A", "B", "C"]);
      await read.join();
      equal(read.exitCode, 0);
      equal(write.exitCode, 0);
    });

    test("queues in task args, initArgs and inline functions", async () => {
      const q = new Queue<string>();
      await using p = pool({ initializer: "keepQueue", initArgs: [q] });
      await p.map("greetIntoKept", ["x", "y"]);
      const greetings = [await q.get(), await q.get()].sort();
      deepEqual(greetings, ["hello x", "hello y"]);
      await p.apply("writer", [q, ["w"]]);
      equal(await q.get(), "w");
      // Items a task puts are in the queue when its result arrives.
      await p.apply(
        async (args: { queue: Queue<number> }[]) => {
          for (let i = 0; i < 100; i++) await args[0].queue.put(i);
        },
        [[{ queue: q as unknown as Queue<number> }]],
      );
      equal(q.qsize(), 100);
      deepEqual(await p.apply("reader", [q, 3]), [0, 1, 2]);
      equal(q.qsize(), 97);
      equal(await q.get(), 3 as unknown as string);
    });

    test("queues inside maps and sets in task args arrive working", async () => {
      const q = new Queue<string>();
      await using p = pool();
      await p.apply(
        async (
          queues: Map<string, Queue<string>>,
          more: Set<Queue<string>>,
        ) => {
          await queues.get("q")!.put("from a map");
          for (const queue of more) await queue.put("from a set");
        },
        [new Map([["q", q]]), new Set([q])],
      );
      deepEqual([await q.get(), await q.get()], ["from a map", "from a set"]);
      // A queue cannot come back in a result: a clear error, not `{}`.
      await rejects(p.apply((queue: Queue<string>) => queue, [q]), {
        name: "TypeError",
        message:
          /returned a Queue, which cannot travel back.*return plain data/,
      });
      const [end] = Pipe();
      await rejects(p.apply((conn: unknown) => ({ conn }), [end]), TypeError);
      class Holder {
        constructor(readonly queue: Queue<string>) {}
      }
      await rejects(p.apply((h: Holder) => h, [new Holder(q)]), {
        name: "TypeError",
        message: /queue or pipe end inside a "Holder".*plain object/,
      });
      equal(q.qsize(), 0);
    });

    test("an item a worker cannot copy fails that put only", async () => {
      const q = new Queue<unknown>();
      await using p = pool();
      equal(await p.apply("putUncopyable", [q]), "TypeError");
      equal(await q.get(), "still works");
    });

    test("pipes: both ends work in a worker", async () => {
      const [here, there] = Pipe<number>();
      const echo = new Process({
        target: "echoDouble",
        module: tasks,
        args: [there],
        backend,
      });
      echo.start();
      for (let i = 0; i < 50; i++) here.send(i);
      const answers: number[] = [];
      for (let i = 0; i < 50; i++) answers.push(await here.recv());
      deepEqual(answers, Array.from({ length: 50 }, (_, i) => i * 2));
      here.close();
      await echo.join();
      equal(echo.exitCode, 0);
    });

    test("a worker closes the queue: the reader drains, then stops", async () => {
      const q = new Queue<number>();
      await using p = pool();
      const reading = p.apply("consumeAll", [q]) as Promise<number[]>;
      await p.apply("putThenClose", [q, 1000]);
      deepEqual(
        await reading,
        Array.from({ length: 1000 }, (_, i) => i),
      );
      equal(q.closed, true);
    });

    test("a close waits for no busy worker that is done putting", async () => {
      const q = new Queue<number>();
      const started = new Queue<string>();
      await using p = pool({ processes: 1 });
      await p.apply(async (queue: Queue<number>) => await queue.put(1), [q]);
      // The same worker, busy in synchronous code; it still holds q.
      const busy = p.applyAsync(async (flag: Queue<string>) => {
        await flag.put("started");
        // A child's puts leave in a batch once its event loop turns.
        await new Promise((resolve) => setTimeout(resolve, 50));
        const end = Date.now() + 3_000;
        while (Date.now() < end) { /* busy */ }
        return "done";
      }, [started]);
      equal(await started.get(), "started");
      q.close();
      deepEqual(await collect(q), [1]);
      equal(busy.ready(), false, "drained while the worker was busy");
      equal(await busy, "done");
      // A Process that put, then went on to other work, likewise.
      const r = new Queue<number>();
      const proc = new Process({
        target: async (queue: Queue<number>) => {
          await queue.put(2);
          await new Promise((resolve) => setTimeout(resolve, 100));
          const end = Date.now() + 3_000;
          while (Date.now() < end) { /* busy */ }
        },
        args: [r],
        backend,
      });
      proc.start();
      equal(await r.get(), 2);
      await delay(300);
      r.close();
      deepEqual(await collect(r), []);
      equal(proc.isAlive(), true, "drained while the Process was busy");
      await proc.join();
    });

    test("a producer that never yields delivers as it goes", async () => {
      const q = new Queue<number>();
      const producer = new Process({
        target: async (queue: Queue<number>) => {
          for (let i = 0;; i++) await queue.put(i);
        },
        args: [q],
        backend,
      });
      producer.start();
      equal(await q.get({ timeout: 20_000 }), 0);
      equal(await q.get({ timeout: 20_000 }), 1);
      producer.kill();
      await producer.join();
    });

    test("putNowait on a full queue succeeds once others took items", async () => {
      const q = new Queue<number>({ maxsize: 2 });
      const producer = new Process({
        target: async (queue: Queue<number>) => {
          for (let i = 0; i < 10; i++) {
            for (;;) {
              try {
                queue.putNowait(i);
                break;
              } catch {
                await new Promise((resolve) => setTimeout(resolve, 5));
              }
            }
          }
        },
        args: [q],
        backend,
      });
      producer.start();
      const got: number[] = [];
      for (let i = 0; i < 10; i++) got.push(await q.get({ timeout: 20_000 }));
      deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await producer.join();
      equal(producer.exitCode, 0);
    });

    test("a bounded queue holds its size across workers", async () => {
      const q = new Queue<number>({ maxsize: 3 });
      await using p = pool();
      const putting = p.apply("putBounded", [q, 50]);
      const got: number[] = [];
      let largest = 0;
      for (let i = 0; i < 50; i++) {
        await delay(i % 10 === 0 ? 5 : 0);
        largest = Math.max(largest, q.qsize());
        got.push(await q.get());
      }
      await putting;
      deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
      ok(largest <= 3, `qsize reached ${largest}`);
    });

    test("JoinableQueue: workers mark items done, join waits for them", async () => {
      const q = new JoinableQueue<number>();
      const results = new Queue<number>();
      await using p = pool();
      for (let i = 1; i <= 100; i++) await q.put(i);
      const work = [
        p.apply("sumAndMarkDone", [q, results, 50]),
        p.apply("sumAndMarkDone", [q, results, 50]),
      ];
      await q.join();
      await Promise.all(work);
      equal(await results.get() + await results.get(), 5050);
    });

    test("many to many: every item once, each producer's order kept", async () => {
      const q = new Queue<[number, number]>();
      const count = 10_000;
      const other = backend === "worker" ? "process" : "worker";
      await using producers = pool();
      await using mixed = new Pool<Tasks>(tasks, {
        processes: 2,
        backend: other,
      });
      const consumers = [
        producers.apply("consumeAll", [q]),
        mixed.apply("consumeAll", [q]),
      ] as Promise<[number, number][]>[];
      await Promise.all([
        producers.apply("produce", [q, 0, count]),
        producers.apply("produce", [q, 1, count]),
        mixed.apply("produce", [q, 2, count]),
        mixed.apply("produce", [q, 3, count]),
      ]);
      q.close();
      const received = await Promise.all(consumers);
      const next = [0, 0, 0, 0];
      let total = 0;
      for (const items of received) {
        const last = [-1, -1, -1, -1];
        for (const [producer, i] of items) {
          ok(
            i > last[producer],
            `producer ${producer}: ${i} after ${last[producer]}`,
          );
          last[producer] = i;
          next[producer]++;
          total++;
        }
      }
      deepEqual(next, [count, count, count, count]);
      equal(total, 4 * count);
    });

    test("a consumer that dies loses nothing it had not received", async () => {
      const q = new Queue<number>();
      const seen = new Queue<number>();
      const count = 2_000;
      for (let i = 0; i < count; i++) await q.put(i);
      const consumer = new Process({
        target: "consumeForever",
        module: tasks,
        args: [q, seen],
        backend,
      });
      consumer.start();
      ok(await eventually(() => seen.qsize() >= 20), "the consumer got going");
      consumer.kill();
      await consumer.join();
      const consumed: number[] = [];
      while (!seen.empty()) consumed.push(seen.getNowait());
      const left: number[] = [];
      while (!q.empty()) left.push(q.getNowait());
      // What the consumer had received is gone; everything else is still
      // there, in order. A thread killed between its get and its report
      // may take one item with it.
      deepEqual(consumed, consumed.toSorted((a, b) => a - b));
      deepEqual(left, left.toSorted((a, b) => a - b));
      const all = new Set([...consumed, ...left]);
      equal(all.size, consumed.length + left.length, "nothing twice");
      const lost = count - all.size;
      ok(lost <= (backend === "worker" ? 1 : 0), `${lost} items lost`);
      // The queue still works for others.
      await q.put(-1);
      equal(q.getNowait(), -1);
    });

    test("a consumer busy in synchronous code holds no item it has not read", async () => {
      const q = new Queue<number>();
      const seen = new Queue<number>();
      for (let i = 0; i < 1_000; i++) await q.put(i);
      const consumer = new Process({
        target: "consumeThenIdle",
        module: tasks,
        args: [q, seen, 2, 30],
        backend,
      });
      consumer.start();
      ok(await eventually(() => seen.qsize() === 2), "the consumer read two");
      ok(
        await eventually(() => q.qsize() === 998),
        `${q.qsize()} items left, expected 998`,
      );
      consumer.kill();
      await consumer.join();
      await settled(q);
      const left: number[] = [];
      while (!q.empty()) left.push(q.getNowait());
      deepEqual(left, Array.from({ length: 998 }, (_, i) => i + 2));
    });

    test("a consumer killed while it works on an item loses nothing", async () => {
      for (let run = 0; run < 3; run++) {
        const q = new Queue<number>();
        const seen = new Queue<number>();
        const count = 300;
        for (let i = 0; i < count; i++) await q.put(i);
        const consumer = new Process({
          target: "consumeBusily",
          module: tasks,
          args: [q, seen, 4],
          backend,
        });
        consumer.start();
        ok(await eventually(() => seen.qsize() >= 3 + run * 5), "it got going");
        consumer.kill();
        await consumer.join();
        await settled(q);
        const consumed: number[] = [];
        while (!seen.empty()) consumed.push(seen.getNowait());
        const left: number[] = [];
        while (!q.empty()) left.push(q.getNowait());
        // One consumer: what it reported is a prefix, what is left the rest,
        // in order. A thread killed between its get and its report may take
        // one item with it; a process reports and acknowledges together.
        const skipped = backend === "worker" && left[0] === consumed.length + 1
          ? 1
          : 0;
        deepEqual(consumed, Array.from(consumed, (_, i) => i));
        deepEqual(
          left,
          Array.from(
            { length: count - consumed.length - skipped },
            (_, i) => i + consumed.length + skipped,
          ),
        );
      }
    });

    test("a producer killed mid-put leaves the queue sound", async () => {
      for (const size of [0, 100_000]) {
        const q = new Queue<number | Uint8Array>();
        const producer = new Process({
          target: "produceForever",
          module: tasks,
          args: [q, size],
          backend,
        });
        producer.start();
        ok(await eventually(() => q.qsize() >= 50), "the producer got going");
        producer.kill();
        await producer.join();
        await settled(q);
        let got = 0;
        while (!q.empty()) {
          const item = q.getNowait();
          if (size === 0) equal(item, got);
          else equal((item as Uint8Array)[0], got & 255);
          got++;
        }
        ok(got >= 50);
        // A put the producer was killed in the middle of may still show up
        // (whole, and in order) once the next put repairs the counts.
        await q.put(-1);
        for (;;) {
          const item = await q.get({ timeout: 1_000 });
          if (item === -1) break;
          if (size === 0) equal(item, got);
          else equal((item as Uint8Array)[0], got & 255);
          got++;
        }
        await rejects(q.get({ timeout: 10 }), QueueEmptyError);
      }
    });
  });
}

/** Waits until nothing more arrives: Deno lets a thread run on briefly after its exit is reported. */
async function settled(q: Queue<unknown>): Promise<void> {
  let size = -1;
  while (q.qsize() !== size) {
    size = q.qsize();
    await delay(100);
  }
}

test("a lock left by a thread that died is taken over", () => {
  const ring = Ring.create(0);
  const writer = newThreadToken();
  const reader = newThreadToken();
  // As if those threads had died inside put() and get(), holding the
  // writers' lock (word 0) and the readers' lock (word 16).
  Atomics.store(ring.ctl, 0, writer);
  Atomics.store(ring.ctl, 16, reader);
  markDead(writer);
  markDead(reader);
  const record = new Uint8Array([1, 0, 0, 0, 3]);
  equal(ring.tryPut(record, 1), 0);
  equal(ring.qsize(), 1);
  const taken = ring.tryTake(1, 1024);
  ok(taken !== undefined && taken !== 2);
  deepEqual([...taken.block], [...record]);
  equal(ring.qsize(), 0);
  // A writer that died after moving the tail past its record, before
  // counting it: the next writer recounts, and both records are there.
  equal(ring.tryPut(record, 1), 0);
  Atomics.sub(ring.ctl, 2, 1); // the count
  Atomics.sub(ring.ctl, 4, record.length); // the bytes in use
  const late = newThreadToken();
  Atomics.store(ring.ctl, 0, late);
  markDead(late);
  equal(ring.tryPut(new Uint8Array([1, 0, 0, 0, 4]), 1), 0);
  equal(ring.qsize(), 2);
  const both = ring.tryTake(2, 1024);
  ok(both !== undefined && both !== 2);
  deepEqual([...both.block], [1, 0, 0, 0, 3, 1, 0, 0, 0, 4]);
});

test("large items kept out of shared memory go into it when the queue goes to a thread", async () => {
  const q = new Queue<Uint8Array | number>();
  await q.put(new Uint8Array(100_000).fill(1));
  await q.put(2);
  await q.put(new Uint8Array(50_000).fill(3));
  // Looked at and put back in front, still whole.
  const [a, b] = Pipe<Uint8Array>();
  a.send(new Uint8Array(70_000).fill(4));
  equal(await b.poll(), true);
  deepEqual((await b.recv()).slice(69_999), new Uint8Array([4]));
  equal((await q.get() as Uint8Array).length, 100_000);
  await q.put(new Uint8Array(100_000).fill(5));
  q.close();
  await using p = new Pool<Tasks>(tasks, { processes: 1 });
  const got = await p.apply("consumeAll", [q]) as (Uint8Array | number)[];
  deepEqual(
    got.map((x) => typeof x === "number" ? x : [x.length, x[0], x.at(-1)]),
    [2, [50_000, 3, 3], [100_000, 5, 5]],
  );
});

test("a queue from another process cannot go on to a worker thread", async () => {
  await using p = new Pool<Tasks>(tasks, { processes: 1, backend: "process" });
  match(
    await p.apply("passToThread", [new Queue<string>()]),
    /^TypeError: Cannot pass a queue or pipe that came from another process on to a worker thread: pass it to a pool or Process with backend: "process"/,
  );
});

test("a queue passes on from a child process to its own children", async () => {
  const q = new Queue<string>();
  await using p = new Pool<Tasks>(tasks, { processes: 1, backend: "process" });
  await q.put("first");
  // The child's child puts into the parent's queue; the child then gets the
  // oldest item, which was put here.
  equal(await p.apply("passToProcess", [q]), "first");
  equal(await q.get({ timeout: 5_000 }), "from a grandchild");
});

describe("large items between processes", () => {
  test("go through files, also via a child's child, and leave none", async () => {
    const q = new Queue<Uint8Array>();
    await using p = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    await p.apply("putLarge", [q, 300_000, 2]);
    // The grandchild gets the oldest item (through its parent) and puts one
    // of its own (through its parent too).
    deepEqual(await p.apply("relayLarge", [q]), [300_000, 0, 255]);
    const second = await q.get({ timeout: 5_000 });
    deepEqual([second.length, second[0], second.at(-1)], [300_000, 1, 254]);
    const back = await q.get({ timeout: 5_000 });
    deepEqual([back.length, back[0], back.at(-1)], [200_000, 7, 7]);
    deepEqual(spilledFiles(), []);
  });

  test("a consumer killed while it works on one loses nothing", async () => {
    await using producers = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    for (let run = 0; run < 3; run++) {
      const q = new Queue<Uint8Array>();
      const seen = new Queue<number>();
      const count = 200;
      await producers.apply("putLarge", [q, 100_000, count]);
      const consumer = new Process({
        target: "consumeLargeBusily",
        module: tasks,
        args: [q, seen, 4],
      });
      consumer.start();
      ok(await eventually(() => seen.qsize() >= 3 + run * 5), "it got going");
      consumer.kill();
      await consumer.join();
      await settled(q);
      // Each item left waits in a file of its own.
      equal(spilledFiles().length, q.qsize());
      const consumed: number[] = [];
      while (!seen.empty()) consumed.push(seen.getNowait());
      const left: number[] = [];
      while (!q.empty()) {
        const item = q.getNowait();
        equal(item.length, 100_000);
        equal(item[99_999], 255 - (item[0]));
        left.push(item[0] + item[1] * 256);
      }
      // What it reported is a prefix, what is left the rest, in order.
      deepEqual(consumed, Array.from(consumed, (_, i) => i));
      deepEqual(
        left,
        Array.from(
          { length: count - consumed.length },
          (_, i) => i + consumed.length,
        ),
      );
      deepEqual(spilledFiles(), []);
    }
  });

  test("a producer killed while it writes one leaves no file behind", async () => {
    for (let run = 0; run < 3; run++) {
      const q = new Queue<number | Uint8Array>();
      const producer = new Process({
        target: "produceForever",
        module: tasks,
        args: [q, 1_000_000],
      });
      producer.start();
      ok(await eventually(() => q.qsize() >= 5), "the producer got going");
      producer.kill();
      await producer.join();
      await settled(q);
      let got = 0;
      while (!q.empty()) {
        const item = q.getNowait() as Uint8Array;
        equal(item.length, 1_000_000);
        equal(item[0], got & 255);
        got++;
      }
      ok(got >= 5);
      deepEqual(spilledFiles(), []);
    }
  });
});

test("a program's directory for large items goes when it exits, and a dead program's at the next start", async () => {
  const own = spillDirectory();
  if (own === undefined) return;
  // A program that died without removing its directory (no process has
  // such a pid: it is above Linux's pid_max).
  const dead = 0x3ffffff0;
  const stale = join(dirname(own), `multiproc-${dead}`);
  mkdirSync(stale, { recursive: true });
  writeFileSync(join(stale, "1-1"), "left behind");
  const result = await runScript("fixtures/spill_exits");
  equal(result.stderr, "");
  equal(result.returncode, 0);
  const dir = result.stdout!.trim();
  ok(dir.startsWith(join(dirname(own), "multiproc-")), dir);
  equal(existsSync(dir), false, "its own directory is gone");
  equal(existsSync(stale), false, "the dead program's directory is gone");
});

/** The files of large items that children put into this process's queues. */
function spilledFiles(): string[] {
  const dir = spillDirectory();
  if (dir === undefined) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

test("programs that use queues and pipes exit on their own", async () => {
  const result = await runScript("fixtures/queue_exits");
  equal(result.stderr, "");
  equal(result.stdout, "done\n");
  equal(result.returncode, 0);
});
