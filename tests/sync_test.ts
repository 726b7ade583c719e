import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Backend,
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  Condition,
  Event,
  Lock,
  Pool,
  Process,
  Queue,
  RLock,
  Semaphore,
  SharedArray,
  TimeoutError,
  Value,
} from "../mod.ts";
import { delay, fixtureUrl, runScript, runtime } from "./_helpers.ts";
import { incrementFileBursts } from "./fixtures/sync_tasks.ts";
import { ACQUIRED, EVENT, LOCK, OWNER_DIED, SyncCore } from "../_sync_core.ts";
import { syncCoreId, SyncLink } from "../_sync_link.ts";

type Tasks = typeof import("./fixtures/sync_tasks.ts");
const tasks = fixtureUrl("sync_tasks");

describe("Lock and RLock in one thread", () => {
  test("acquire, release, locked; a second acquire waits its timeout", async () => {
    const lock = new Lock();
    equal(lock.locked(), false);
    equal(await lock.acquire(), true);
    equal(lock.locked(), true);
    equal(await lock.acquire({ timeout: 0 }), false);
    equal(await lock.acquire({ timeout: 20 }), false);
    lock.release();
    equal(lock.locked(), false);
    // The acquire that timed out left the lock usable.
    equal(await lock.acquire({ timeout: 0 }), true);
    lock.release();
  });

  test("release without acquire throws a clear error", async () => {
    const lock = new Lock();
    throws(() => lock.release(), (error: Error) => {
      match(error.message, /^Cannot release the lock: .*does not hold it/);
      return true;
    });
    const rlock = new RLock();
    await rlock.acquire();
    rlock.release();
    throws(() => rlock.release(), /Cannot release the RLock/);
  });

  test("waiters are served first in, first out", async () => {
    const lock = new Lock();
    await lock.acquire();
    const order: number[] = [];
    const waiters = [0, 1, 2, 3].map(async (i) => {
      await lock.acquire();
      order.push(i);
      await delay(1);
      lock.release();
    });
    await delay(10);
    lock.release();
    await Promise.all(waiters);
    deepEqual(order, [0, 1, 2, 3]);
  });

  test("a signal stops the wait with its reason; the lock stays usable", async () => {
    const lock = new Lock();
    await lock.acquire();
    const controller = new AbortController();
    const waiting = lock.acquire({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error("enough")), 10);
    await rejects(waiting, /enough/);
    await rejects(
      lock.acquire({ signal: AbortSignal.abort(new Error("already")) }),
      /already/,
    );
    lock.release();
    equal(await lock.acquire({ timeout: 0 }), true);
    lock.release();
  });

  test("hold() releases at the end of the block; a timeout is a TimeoutError", async () => {
    const lock = new Lock();
    {
      await using held = await lock.hold();
      equal(held.ownerDied, false);
      equal(lock.locked(), true);
      await rejects(lock.hold({ timeout: 10 }), TimeoutError);
    }
    equal(lock.locked(), false);
  });

  test("an RLock counts its owner's levels", async () => {
    const lock = new RLock();
    await lock.acquire();
    equal(await lock.acquire({ timeout: 0 }), true);
    lock.release();
    equal(lock.locked(), true);
    lock.release();
    equal(lock.locked(), false);
  });

  test("a negative timeout is a RangeError", async () => {
    await rejects(new Lock().acquire({ timeout: -1 }), RangeError);
  });
});

describe("Semaphore and BoundedSemaphore", () => {
  test("a value of units; acquire waits at zero; release(n)", async () => {
    const s = new Semaphore(2);
    equal(s.getValue(), 2);
    equal(await s.acquire(), true);
    equal(await s.acquire(), true);
    equal(await s.acquire({ timeout: 10 }), false);
    const waiting = s.acquire();
    s.release(2);
    equal(await waiting, true);
    equal(s.getValue(), 1);
    {
      await using _held = await s.hold();
      equal(s.getValue(), 0);
    }
    equal(s.getValue(), 1);
  });

  test("20,000 jobs throttled by a semaphore of 10 all run, in order", async () => {
    const semaphore = new Semaphore(10);
    const order: number[] = [];
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20_000 }, async (_, i) => {
        await using _slot = await semaphore.hold();
        order.push(i);
        most = Math.max(most, ++running);
        await Promise.resolve();
        running--;
      }),
    );
    equal(most, 10);
    deepEqual(order, Array.from({ length: 20_000 }, (_, i) => i));
    equal(semaphore.getValue(), 10);
  });

  test("waiters that time out among others leave the rest first in, first out", async () => {
    const lock = new Lock();
    await lock.acquire();
    const served: number[] = [];
    const timed: Promise<boolean>[] = [];
    const waits = Array.from({ length: 300 }, async (_, i) => {
      if (i % 3 === 0) {
        timed.push(lock.acquire({ timeout: 1 }));
        return;
      }
      equal(await lock.acquire(), true);
      served.push(i);
      lock.release();
    });
    // Released once every timed waiter gave up: none can be granted.
    deepEqual(new Set(await Promise.all(timed)), new Set([false]));
    lock.release();
    await Promise.all(waits);
    deepEqual(
      served,
      Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 3 !== 0),
    );
  });

  test("a signal stops the wait", async () => {
    const s = new Semaphore(0);
    const controller = new AbortController();
    const waiting = s.acquire({ signal: controller.signal });
    controller.abort(new Error("no more"));
    await rejects(waiting, /no more/);
    s.release();
    equal(await s.acquire({ timeout: 0 }), true);
  });

  test("a bounded semaphore refuses a release past its start value", async () => {
    const s = new BoundedSemaphore(1);
    await s.acquire();
    s.release();
    throws(() => s.release(), (error: Error) => {
      ok(error instanceof RangeError);
      match(error.message, /past its start value "1"/);
      return true;
    });
  });

  test("a release past the largest value is a RangeError; the value stays", () => {
    const semaphore = new Semaphore(0x7fffffff);
    throws(() => semaphore.release(), {
      name: "RangeError",
      message:
        'Cannot release the semaphore by "1": its value "2147483647" would pass the largest one, "2147483647"; release fewer units',
    });
    equal(semaphore.getValue(), 0x7fffffff);
    const near = new Semaphore(0x7ffffff0);
    throws(() => near.release(0x20), RangeError);
    near.release(0xf);
    equal(near.getValue(), 0x7fffffff);
  });

  test("bad values are RangeErrors that quote the value", () => {
    throws(
      () => new Semaphore(-1),
      /Cannot make a semaphore with value "-1": pass a whole number >= 0/,
    );
    throws(() => new Semaphore(1.5), RangeError);
    throws(() => new Semaphore(1).release(0), /release of "0"/);
  });
});

describe("Event", () => {
  test("set, clear, isSet; wait returns at once when set, false on timeout", async () => {
    const e = new Event();
    equal(e.isSet(), false);
    equal(await e.wait({ timeout: 10 }), false);
    const waiting = [e.wait(), e.wait()];
    e.set();
    deepEqual(await Promise.all(waiting), [true, true]);
    equal(await e.wait(), true);
    e.clear();
    equal(e.isSet(), false);
    const controller = new AbortController();
    const aborted = e.wait({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await rejects(aborted, /stop/);
  });
});

describe("Condition", () => {
  test("wait gives up the lock until notified; notify wakes the longest waiter", async () => {
    const c = new Condition(new Lock());
    const woke: number[] = [];
    const waiters = [0, 1].map(async (i) => {
      await using _held = await c.hold();
      equal(await c.wait(), true);
      woke.push(i);
    });
    await delay(10);
    {
      await using _held = await c.hold();
      c.notify();
    }
    await delay(10);
    deepEqual(woke, [0]);
    {
      await using _held = await c.hold();
      c.notifyAll();
    }
    await Promise.all(waiters);
    deepEqual(woke, [0, 1]);
  });

  test("waitFor checks its predicate; wait times out; the lock is held again after", async () => {
    const c = new Condition();
    let ready = false;
    setTimeout(async () => {
      await using _held = await c.hold();
      ready = true;
      c.notifyAll();
    }, 10);
    await using _held = await c.hold();
    equal(await c.waitFor(() => ready), true);
    equal(await c.wait({ timeout: 10 }), false);
    equal(await c.waitFor(() => false, { timeout: 10 }), false);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("cancelled")), 10);
    await rejects(c.wait({ signal: controller.signal }), /cancelled/);
    // Still held after every way out of wait: notify needs it.
    c.notify();
  });

  test("waitFor refuses a predicate that returns a promise", async () => {
    const c = new Condition();
    await using _held = await c.hold();
    await rejects(
      // @ts-expect-error: the predicate must be synchronous.
      c.waitFor(() => Promise.reject(new Error("not ours")), { timeout: 10 }),
      {
        name: "TypeError",
        message:
          "Cannot use a waitFor predicate that returned a promise: pass a synchronous function",
      },
    );
  });

  test("over an RLock, the levels another async function took meanwhile are kept", async () => {
    const lock = new RLock();
    const condition = new Condition(lock);
    const a = (async () => {
      await condition.acquire();
      await condition.acquire();
      equal(await condition.wait({ timeout: 20_000 }), true);
      condition.release();
      condition.release();
    })();
    await delay(10);
    await condition.acquire();
    condition.notify();
    await a;
    // This function still holds its level: another owner cannot take it.
    await using pool = new Pool<Tasks>(tasks, { processes: 1 });
    equal(await pool.apply("tryAcquire", [lock, 50]), false);
    condition.release();
    equal(lock.locked(), false);
  });

  test("wait and notify without the lock are errors", async () => {
    const c = new Condition();
    await rejects(c.wait(), /does not hold its lock/);
    throws(() => c.notify(), /does not hold its lock/);
    throws(() => new Condition("lock" as unknown as Lock), TypeError);
  });
});

describe("Barrier", () => {
  test("parties wait for each other and get distinct indexes; the action runs once per generation", async () => {
    let actions = 0;
    const b = new Barrier(3, { action: () => actions++ });
    equal(b.parties, 3);
    for (let round = 0; round < 2; round++) {
      const first = b.wait();
      await delay(1);
      equal(b.nWaiting, 1);
      const indexes = await Promise.all([first, b.wait(), b.wait()]);
      deepEqual(indexes.sort(), [0, 1, 2]);
    }
    equal(actions, 2);
    equal(b.nWaiting, 0);
  });

  test("a timeout breaks the barrier for everyone; reset mends it", async () => {
    const b = new Barrier(3);
    const other = b.wait();
    await rejects(b.wait({ timeout: 10 }), BrokenBarrierError);
    await rejects(other, BrokenBarrierError);
    equal(b.broken, true);
    await rejects(b.wait(), BrokenBarrierError);
    b.reset();
    equal(b.broken, false);
    const waiting = b.wait();
    b.abort();
    await rejects(waiting, BrokenBarrierError);
  });

  test("a failing action breaks the barrier; a signal stops a wait", async () => {
    const b = new Barrier(1, {
      action: () => {
        throw new Error("action failed");
      },
    });
    await rejects(b.wait(), BrokenBarrierError);
    const c = new Barrier(2);
    await rejects(
      c.wait({ signal: AbortSignal.abort(new Error("aborted")) }),
      /aborted/,
    );
  });

  test("an async action is a TypeError; a promise an action returns breaks the barrier", async () => {
    throws(
      () =>
        // @ts-expect-error: the action must be synchronous.
        new Barrier(1, { action: async () => {} }),
      {
        name: "TypeError",
        message:
          "Cannot use an async function as the barrier action: it runs before the others pass, so pass a synchronous function",
      },
    );
    const b = new Barrier(1, {
      // @ts-expect-error: the action must be synchronous.
      action: () => Promise.reject(new Error("action failed")),
    });
    await rejects(
      b.wait(),
      (error) =>
        error instanceof BrokenBarrierError && error.cause instanceof TypeError,
    );
    equal(b.broken, true);
  });

  test("wait({ timeout: undefined }) uses the barrier's own timeout", async () => {
    const b = new Barrier(2, { timeout: 10 });
    // The signal only keeps a regression from hanging.
    const signal = AbortSignal.timeout(20_000);
    await rejects(b.wait({ timeout: undefined, signal }), BrokenBarrierError);
    equal(b.broken, true);
  });

  test("bad parties are RangeErrors; a barrier with an action stays here", async () => {
    throws(
      () => new Barrier(0),
      /Cannot make a barrier for parties numbering "0": pass a whole number >= 1/,
    );
    throws(() => new Barrier(-2), RangeError);
    await using pool = new Pool({ processes: 1, backend: "worker" });
    await rejects(
      pool.apply((b: Barrier) => b.parties, [new Barrier(2, { action() {} })]),
      /Cannot pass a barrier with an action to a worker/,
    );
  });
});

describe("Value and SharedArray", () => {
  test("typed values, with bigints for 64 bits", () => {
    const v = new Value("f64", 1.5);
    v.value *= 2;
    equal(v.value, 3);
    equal(new Value("u8", 300).value, 44);
    equal(new Value("i64", -5n).value, -5n);
    equal(new Value("i32").value, 0);
    const xs = new SharedArray("i16", [1, 2, 3]);
    equal(xs.length, 3);
    deepEqual([...xs], [1, 2, 3]);
    deepEqual(new SharedArray("u64", 2).toArray(), [0n, 0n]);
  });

  test("bad input: unknown type code, wrong kind of init, bad length", () => {
    throws(
      () => new Value("int" as "i32", 0),
      /Unknown type code "int": use one of "i8", "u8"/,
    );
    throws(
      () => new Value("i64", 5 as unknown as bigint),
      /pass a bigint, such as 5n/,
    );
    throws(() => new Value("i32", 5n as unknown as number), TypeError);
    throws(() => new SharedArray("f64", -1), /length "-1"/);
    throws(() => new SharedArray("f64", 2.5), RangeError);
    throws(
      () => new SharedArray("i32", [1, "2" as unknown as number]),
      TypeError,
    );
  });

  test("a value cannot go to a process worker: the error names the alternatives", async () => {
    await using pool = new Pool({ processes: 1, backend: "process" });
    await rejects(
      pool.apply((v: Value<"i32">) => v.value, [new Value("i32", 1)]),
      (error: Error) => {
        ok(error instanceof TypeError);
        match(error.message, /backend: "worker", or a Manager value/);
        return true;
      },
    );
    throws(
      () =>
        new Process({
          target: (xs: SharedArray<"f64">) => xs.length,
          args: [new SharedArray("f64", 1)],
          backend: "process",
        }).start(),
      /A SharedArray cannot be passed to a process worker/,
    );
  });
});

describe("Shared memory with the worker backend", () => {
  test("4 threads × 10,000 increments of a Value under its lock: exactly 40,000", async () => {
    const counter = new Value("i32", 0);
    await using pool = new Pool<Tasks>(tasks, {
      processes: 4,
      backend: "worker",
    });
    await pool.starmap("increment", [0, 1, 2, 3].map(() => [counter, 10_000]));
    equal(counter.value, 40_000);
  });

  test("a shared array is the same memory in every thread", async () => {
    const xs = new SharedArray("f64", 4);
    await using pool = new Pool({ processes: 2, backend: "worker" });
    await pool.starmap((xs: SharedArray<"f64">, i: number) => {
      xs.array[i] = i * 10;
    }, [0, 1, 2, 3].map((i) => [xs, i]));
    deepEqual(xs.toArray(), [0, 10, 20, 30]);
  });
});

for (const backend of ["worker", "process"] as const satisfies Backend[]) {
  describe(`Sync primitives with the ${backend} backend`, () => {
    test("4 workers under one Lock: no update lost", async () => {
      const dir = mkdtempSync(join(tmpdir(), "multiproc-sync-"));
      try {
        const path = join(dir, "count");
        writeFileSync(path, "0");
        const lock = new Lock();
        await using pool = new Pool<Tasks>(tasks, {
          processes: 4,
          backend,
          // Deno's children get a partial grant only when named.
          permissions: runtime === "deno" && backend === "process"
            ? { read: [dir], write: [dir] }
            : undefined,
        });
        await pool.starmap(
          "incrementFile",
          [0, 1, 2, 3].map(() => [lock, path, 50]),
        );
        equal(readFileSync(path, "utf8"), "200");
        equal(lock.locked(), false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test("timeouts and signals on acquire in a worker; the lock stays usable", async () => {
      const lock = new Lock();
      const semaphore = new Semaphore(0);
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      await lock.acquire();
      equal(await pool.apply("tryAcquire", [lock, 20]), false);
      equal(await pool.apply("acquireAborted", [lock, 20]), "stop waiting");
      equal(await pool.apply("tryAcquire", [semaphore, 20]), false);
      equal(
        await pool.apply("acquireAborted", [semaphore, 20]),
        "stop waiting",
      );
      lock.release();
      equal(await pool.apply("tryAcquire", [lock, 5_000]), true);
      equal(lock.locked(), false);
      equal(
        await pool.apply("releaseUnheld", [lock]),
        "Cannot release the lock: this thread or process does not hold it; call release() once for each acquire() that resolved true",
      );
    });

    test("an RLock re-enters in a worker; a bounded semaphore's over-release is caught", async () => {
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const lock = new RLock();
      equal(await pool.apply("reenter", [lock, 3]), true);
      equal(await lock.acquire({ timeout: 5_000 }), true);
      lock.release();
      equal(
        await pool.apply("overRelease", [new BoundedSemaphore(1)]),
        "RangeError",
      );
    });

    test("a bounded semaphore's over-release throws where it happens; later pairs work", async () => {
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const semaphore = new BoundedSemaphore(1);
      deepEqual(await pool.apply("overReleaseFirst", [semaphore]), [
        "RangeError",
        "true",
        "released",
      ]);
      equal(await semaphore.acquire({ timeout: 20_000 }), true);
      equal(semaphore.getValue(), 0);
      semaphore.release();
    });

    test("an Event stops a worker's loop; a worker's set wakes waiters here", async () => {
      const stop = new Event();
      const started = new Queue<string>();
      await using pool = new Pool<Tasks>(tasks, { processes: 2, backend });
      const rounds = pool.apply("loopUntil", [stop, started]);
      equal(await started.get(), "looping");
      stop.set();
      ok(await rounds >= 1);
      const ready = new Event();
      const waiting = ready.wait({ timeout: 20_000 });
      equal(await pool.apply("waitEvent", [ready, 10]), false);
      await pool.apply("setEvent", [ready]);
      equal(await waiting, true);
      equal(await pool.apply("waitEvent", [ready]), true);
    });

    test("a Condition's waiter in a worker is notified from here", async () => {
      const condition = new Condition();
      const flag = new Event();
      const started = new Queue<string>();
      await using pool = new Pool<Tasks>(tasks, { processes: 2, backend });
      const waiter = pool.apply("waitForFlag", [condition, flag, started]);
      equal(await started.get(), "waiting");
      await pool.apply("notifyAll", [condition, flag]);
      equal(await waiter, true);
      equal(await pool.apply("waitNotified", [condition, 10]), false);
    });

    test("a Barrier across workers and this thread", async () => {
      const barrier = new Barrier(3);
      await using pool = new Pool<Tasks>(tasks, { processes: 2, backend });
      const parties = pool.map("arrive", [barrier, barrier]);
      const mine = await barrier.wait();
      const theirs = await parties;
      deepEqual([mine, ...theirs].sort(), [0, 1, 2]);
      equal(await pool.apply("arrive", [barrier, 10]), "BrokenBarrierError");
      equal(barrier.broken, true);
    });

    test("a holder killed while holding: the next acquirer gets the lock and learns the owner died", async () => {
      const lock = new Lock();
      const started = new Queue<string>();
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const held = pool.apply("holdForever", [lock, started], { timeout: 300 });
      equal(await started.get(), "holding");
      equal(lock.locked(), true);
      equal(await lock.acquire({ timeout: 20 }), false);
      // The task's timeout kills its worker while a waiter waits here.
      const next = lock.acquire({ timeout: 20_000 });
      await rejects(held, TimeoutError);
      equal(await next, true);
      equal(lock.ownerDied, true);
      lock.release();
      equal(await lock.acquire(), true);
      equal(lock.ownerDied, false);
      lock.release();
    });

    test("a semaphore unit of a killed Process comes back, flagged", async () => {
      const semaphore = new Semaphore(1);
      const started = new Queue<string>();
      const p = new Process({
        target: "holdForever",
        module: tasks,
        args: [semaphore, started],
        backend,
      });
      p.start();
      equal(await started.get(), "holding");
      equal(semaphore.getValue(), 0);
      p.kill();
      await p.join();
      // Nobody waited: the next acquirer learns it.
      equal(await semaphore.acquire({ timeout: 20_000 }), true);
      equal(semaphore.ownerDied, true);
    });

    test("a barrier with a party killed while waiting breaks for the rest", async () => {
      const barrier = new Barrier(4);
      await using pool = new Pool<Tasks>(tasks, { processes: 2, backend });
      const waiter = pool.apply("arrive", [barrier]);
      const doomed = pool.apply("arrive", [barrier], { timeout: 300 });
      await rejects(barrier.wait({ timeout: 20_000 }), BrokenBarrierError);
      equal(await waiter, "BrokenBarrierError");
      await rejects(doomed, TimeoutError);
    });

    test("a barrier given to workers that end without waiting at it stays whole", async () => {
      const barrier = new Barrier(2);
      const started = new Queue<string>();
      {
        // A task killed by its timeout, one that returns, then the pool ends.
        await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
        const doomed = pool.apply("hang", [started, barrier], { timeout: 300 });
        equal(await started.get(), "started");
        await rejects(doomed, TimeoutError);
        equal(await pool.apply("parties", [barrier]), 2);
      }
      await delay(100);
      equal(barrier.broken, false);
      await using pool = new Pool<Tasks>(tasks, { processes: 1, backend });
      const theirs = pool.apply("arrive", [barrier]);
      const mine = await barrier.wait({ timeout: 20_000 });
      deepEqual([mine, await theirs].sort(), [0, 1]);
    });
  });
}

describe("Lock leases of process workers", () => {
  // Deno's children get a partial grant only when named.
  function filePermissions(dir: string) {
    return runtime === "deno" ? { read: [dir], write: [dir] } : undefined;
  }

  for (const processes of [2, 4]) {
    test(`${processes} processes, 2 threads and this thread under one Lock: no update lost`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "multiproc-lease-"));
      try {
        const path = join(dir, "count");
        writeFileSync(path, "0");
        const lock = new Lock();
        const times = 200;
        await using children = new Pool<Tasks>(tasks, {
          processes,
          backend: "process",
          permissions: filePermissions(dir),
        });
        await using threads = new Pool<Tasks>(tasks, {
          processes: 2,
          backend: "worker",
        });
        const each = (n: number): [Lock, string, number][] =>
          Array.from({ length: n }, () => [lock, path, times]);
        await Promise.all([
          children.starmap("incrementFileBursts", each(processes), {
            chunksize: 1,
          }),
          threads.starmap("incrementFileBursts", each(2), { chunksize: 1 }),
          incrementFileBursts(lock, path, times),
        ]);
        equal(readFileSync(path, "utf8"), String((processes + 3) * times));
        // The children handed their leases back when their tasks ended.
        equal(lock.locked(), false);
        equal(await lock.acquire({ timeout: 0 }), true);
        equal(lock.ownerDied, false);
        lock.release();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("a lease holder killed while holding: the next acquirer learns the owner died", async () => {
    const lock = new Lock();
    const started = new Queue<string>();
    await using pool = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    const held = pool.apply("burstThenHold", [lock, started], {
      timeout: 300,
    });
    equal(await started.get(), "holding");
    equal(lock.locked(), true);
    const next = lock.acquire({ timeout: 20_000 });
    await rejects(held, TimeoutError);
    equal(await next, true);
    equal(lock.ownerDied, true);
    lock.release();
  });

  test("a process killed after its release and a turn of its event loop: the lock is free, no owner died", async () => {
    const lock = new Lock();
    const started = new Queue<string>();
    const p = new Process({
      target: "burstThenIdle",
      module: tasks,
      args: [lock, started],
      backend: "process",
    });
    p.start();
    equal(await started.get(), "released");
    equal(lock.locked(), false);
    p.kill();
    await p.join();
    equal(await lock.acquire({ timeout: 0 }), true);
    equal(lock.ownerDied, false);
    lock.release();
  });

  test("a waiter here while a process holds the lease: the lease goes back at its release, waiters first in, first out", async () => {
    const lock = new Lock();
    const started = new Queue<string>();
    const go = new Event();
    await using pool = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    const task = pool.apply("holdUntil", [lock, started, go]);
    equal(await started.get(), "holding");
    const order: string[] = [];
    const waiters = ["A", "B"].map((name) =>
      lock.acquire().then(() => {
        order.push(name);
        lock.release();
      })
    );
    go.set();
    // The child released and asked again: it queued behind A and B.
    equal(await started.get(), "again");
    deepEqual(order, ["A", "B"]);
    equal(await task, "done");
    await Promise.all(waiters);
    equal(lock.locked(), false);
  });

  test("a worker thread's wait revokes the lease of a process that never lets the lock go idle", async () => {
    const lock = new Lock();
    const stop = new Event();
    const started = new Queue<string>();
    await using children = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    await using threads = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "worker",
    });
    const rounds = children.apply("churn", [lock, stop, started]);
    equal(await started.get(), "churning");
    equal(await threads.apply("acquireThenStop", [lock, stop]), true);
    ok(await rounds >= 1);
    equal(lock.locked(), false);
  });

  test("a Condition on a Lock: a process's wait gives the lease up and takes the lock back", async () => {
    const condition = new Condition(new Lock());
    const flag = new Event();
    const started = new Queue<string>();
    await using pool = new Pool<Tasks>(tasks, {
      processes: 2,
      backend: "process",
    });
    const waiter = pool.apply("waitForFlag", [condition, flag, started]);
    equal(await started.get(), "waiting");
    await pool.apply("notifyAll", [condition, flag]);
    equal(await waiter, true);
    equal(await pool.apply("waitNotified", [condition, 10]), false);
    equal(await condition.acquire({ timeout: 20_000 }), true);
    condition.notifyAll();
    condition.release();
  });

  test("a process that computes between its releases hands the lease back: a waiter here does not starve", async () => {
    const lock = new Lock();
    const stop = new Event();
    const started = new Queue<string>();
    await using pool = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    const round = pool.apply("computeBetween", [lock, stop, started]);
    equal(await started.get(), "computing");
    equal(await lock.acquire({ timeout: 20_000 }), true);
    stop.set();
    lock.release();
    ok(await round >= 1);
  });

  test("waiters that time out or abort while the lease is revoked: the holder goes on, the lock ends free", async () => {
    const lock = new Lock();
    const started = new Queue<string>();
    const go = new Event();
    await using pool = new Pool<Tasks>(tasks, {
      processes: 1,
      backend: "process",
    });
    const task = pool.apply("holdUntil", [lock, started, go]);
    equal(await started.get(), "holding");
    equal(await lock.acquire({ timeout: 20 }), false);
    const controller = new AbortController();
    const aborted = lock.acquire({ signal: controller.signal });
    await delay(20);
    controller.abort(new Error("stop waiting"));
    await rejects(aborted, /stop waiting/);
    go.set();
    equal(await started.get(), "again");
    equal(await task, "done");
    equal(lock.locked(), false);
    equal(await lock.acquire({ timeout: 0 }), true);
    equal(lock.ownerDied, false);
    lock.release();
  });

  test("a lease holder killed in a busy loop after its release: the lock is free at once, flagged", async () => {
    const lock = new Lock();
    const started = new Queue<string>();
    const go = new Event();
    const p = new Process({
      target: "holdThenSpin",
      module: tasks,
      args: [lock, started, go],
      backend: "process",
    });
    p.start();
    equal(await started.get(), "holding");
    go.set();
    await delay(50);
    p.kill();
    await p.join();
    // Killed holding the lock, or its lease only (in the turn of its
    // release, before the lease could go back): the same to the parent.
    equal(await lock.acquire({ timeout: 0 }), true);
    equal(lock.ownerDied, true);
    lock.release();
  });
});

describe("Primitives where they cannot travel", () => {
  test("a task that returns a Lock, and an Event put in a queue, are named in the error", async () => {
    await using pool = new Pool<Tasks>(tasks, { processes: 1 });
    await rejects(pool.apply("makeLock", []), {
      name: "TypeError",
      message:
        "The task returned a Lock, which cannot travel back to the caller: make queues, locks, events and the other primitives in the caller and pass them to tasks in their arguments; return plain data",
    });
    const q = new Queue<unknown>();
    await rejects(q.put({ stop: new Event() }), {
      name: "TypeError",
      message:
        "Cannot put an Object holding an Event into a queue or pipe: queues, pipe ends, locks, events and the other primitives travel in task and Process arguments (and initArgs), not inside items; pass it to the worker that needs it as an argument",
    });
    await rejects(q.put(new Lock()), { message: /^Cannot put a Lock into/ });
  });
});

describe("Workers that die inside a primitive's wait (process backend)", () => {
  for (const predicate of [false, true]) {
    test(`a killed waiter in Condition.${predicate ? "waitFor" : "wait"}() does not take the lock back`, async () => {
      const lock = new Lock();
      const condition = new Condition(lock);
      const started = new Queue<string>();
      const pool = new Pool<Tasks>(tasks, { processes: 1, backend: "process" });
      const waiter = pool.apply("waitNotifiedForever", [
        condition,
        started,
        predicate,
      ]);
      equal(await started.get(), "waiting");
      await pool.terminate();
      await rejects(waiter);
      // A dead waiter retaking the lock did so as soon as its wait ended.
      await delay(100);
      equal(lock.locked(), false);
      equal(await lock.acquire({ timeout: 0 }), true);
      lock.release();
      await delay(100);
      equal(lock.locked(), false);
    });
  }
});

describe("A process worker stopped while it only waits for a lock", () => {
  for (const how of ["terminate", "timeout"] as const) {
    test(`(${how}) leaves no owner death behind`, async () => {
      const lock = new Lock();
      await lock.acquire();
      const started = new Queue<string>();
      const pool = new Pool<Tasks>(tasks, { processes: 1, backend: "process" });
      // Started first: the task's timeout counts from its start.
      await pool.apply("tryAcquire", [new Lock(), 0]);
      const waiter = pool.apply(
        "sayAndAcquire",
        [lock, started, 20_000],
        how === "timeout" ? { timeout: 500 } : {},
      );
      equal(await started.get(), "acquiring");
      if (how === "terminate") {
        await delay(100);
        const stopped = pool.terminate();
        await rejects(waiter);
        // Released before the worker's exit was seen: nobody may get it.
        lock.release();
        await stopped;
      } else {
        await rejects(waiter, TimeoutError);
        lock.release();
        await pool.terminate();
      }
      equal(await lock.acquire({ timeout: 20_000 }), true);
      equal(lock.ownerDied, false);
      lock.release();
    });
  }
});

test("a process worker's timed waits end on time while this thread is busy; late grants come back", async () => {
  const lock = new Lock();
  const semaphore = new Semaphore(0);
  const event = new Event();
  const barrier = new Barrier(2);
  const started = new Queue<string>();
  await lock.acquire();
  await using pool = new Pool<Tasks>(tasks, {
    processes: 1,
    backend: "process",
  });
  const waits = pool.apply("timedWaits", [
    lock,
    semaphore,
    event,
    barrier,
    started,
  ]);
  equal(await started.get(), "started");
  // Synchronous work: the worker's requests wait for this thread.
  const end = Date.now() + 3_000;
  while (Date.now() < end) { /* busy */ }
  const busyEnd = Date.now();
  // Granted to the worker's timed-out waits, which give them back.
  lock.release();
  semaphore.release();
  const [results, waitsEnd] = await waits;
  deepEqual(results, [
    false,
    false,
    false,
    "BrokenBarrierError",
    "TimeoutError",
  ]);
  ok(waitsEnd < busyEnd, `${waitsEnd} < ${busyEnd}`);
  equal(await lock.acquire({ timeout: 20_000 }), true);
  equal(lock.ownerDied, false);
  lock.release();
  equal(await semaphore.acquire({ timeout: 20_000 }), true);
  equal(barrier.broken, true);
});

test("a process worker's try (timeout 0) of a free Lock and Semaphore succeeds: the parent answers it", async () => {
  await using pool = new Pool<Tasks>(tasks, {
    processes: 1,
    backend: "process",
  });
  for (let i = 0; i < 3; i++) {
    equal(await pool.apply("tryAcquire", [new Lock(), 0]), true);
    equal(await pool.apply("tryAcquire", [new Semaphore(1), 0]), true);
  }
});

test("a process worker's timed acquire that gave up before a leased grant came hands back the lock and its lease", async () => {
  const lock = new Lock();
  const started = new Queue<string>();
  const held = new Queue<string>();
  await using pool = new Pool<Tasks>(tasks, {
    processes: 1,
    backend: "process",
  });
  const late = pool.apply("acquireLateThenTry", [lock, started, held]);
  equal(await started.get(), "started");
  // The worker's acquire reaches this thread only after it gave up: the lock
  // is free and nobody waits, so it is granted with the lease, too late.
  const end = Date.now() + 1_000;
  while (Date.now() < end) { /* busy */ }
  await delay(100);
  // The late grant came back whole: this thread gets the lock, cleanly.
  equal(await lock.acquire({ timeout: 20_000 }), true);
  equal(lock.ownerDied, false);
  await held.put("held");
  // The worker took no lease from it: its next try asks, and is refused.
  // (Its first acquire is false unless this thread read it before the loop.)
  const [, again, locked] = await late;
  deepEqual([again, locked], [false, true]);
  lock.release();
  // Leases work again afterwards, and the pool's end leaves no owner death.
  equal(await pool.apply("tryAcquire", [lock, 20_000]), true);
  equal(await pool.apply("tryAcquire", [lock, 20_000]), true);
  await pool.terminate();
  equal(await lock.acquire({ timeout: 20_000 }), true);
  equal(lock.ownerDied, false);
  lock.release();
});

describe("What a process worker lets go of, its parent forgets", () => {
  // The child's notice that its copies are garbage: [DROPPED, req, id, n].
  const dropped = (core: SyncCore, n: number): unknown[] => [
    11,
    0,
    syncCoreId(core),
    n,
  ];

  test("an event the child dropped is no longer watched for it", async () => {
    const sent: unknown[][] = [];
    const link = new SyncLink((payload) => sent.push(payload));
    const event = SyncCore.create(EVENT);
    link.share([event]);
    link.share([event]);
    link.receive(dropped(event, 1));
    event.set();
    await delay(20);
    equal(sent.length, 1, "still watched while a copy is left");
    link.receive(dropped(event, 1));
    await delay(20);
    event.clear();
    await delay(20);
    equal(sent.length, 1);
    link.dispose();
  });

  test("a Lock leased to the child, handed back, then dropped: its death flags nothing", async () => {
    const sent: unknown[][] = [];
    const link = new SyncLink((payload) => sent.push(payload));
    const lock = SyncCore.create(LOCK);
    link.share([lock]);
    const id = syncCoreId(lock);
    // [ACQUIRE, req, id, no timeout]: nobody waits, so it comes with the lease.
    link.receive([0, 1, id, -1]);
    await delay(20);
    const reply = sent.at(-1)!;
    deepEqual([reply[0], reply[1], reply[2], reply.at(-1)], [20, 1, 1, 1]);
    equal(lock.held(link.token), true);
    // [RELEASE, 0, id, 1]: the lease and the lock go back together.
    link.receive([1, 0, id, 1]);
    equal(lock.held(undefined), false);
    link.receive(dropped(lock, 1));
    link.dispose();
    equal(lock.tryAcquire(1), ACQUIRED);
  });

  test("a lock the child dropped while holding it is still released at its death", () => {
    const link = new SyncLink(() => {});
    const lock = SyncCore.create(LOCK);
    link.share([lock]);
    equal(lock.tryAcquire(link.token), ACQUIRED);
    link.receive(dropped(lock, 1));
    link.dispose();
    equal(lock.tryAcquire(1), OWNER_DIED);
    const free = SyncCore.create(LOCK);
    const other = new SyncLink(() => {});
    other.share([free]);
    other.receive(dropped(free, 1));
    other.dispose();
    equal(free.tryAcquire(1), ACQUIRED);
  });
});

describe("A lock held by a nested worker", () => {
  for (const inner of ["worker", "process"] as const) {
    test(`is released when the thread that started its ${inner} is killed`, async () => {
      const lock = new Lock();
      const started = new Queue<string>();
      const pool = new Pool<Tasks>(tasks, { processes: 1, backend: "worker" });
      const middle = pool.apply("holdNested", [lock, started, inner]);
      equal(await started.get(), "holding");
      equal(lock.locked(), true);
      await pool.terminate();
      await rejects(middle);
      equal(await lock.acquire({ timeout: 20_000 }), true);
      equal(lock.ownerDied, true);
      lock.release();
    });
  }
});

test("programs that use every primitive exit on their own", async () => {
  const result = await runScript("fixtures/sync_exits");
  equal(result.stderr, "");
  equal(result.stdout, "done\n");
  equal(result.returncode, 0);
});
