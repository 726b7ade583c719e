// Queue and JoinableQueue of redis.ts against a real redis-server: the local
// queue's API by name, producers and consumers in separate processes, each
// item taken exactly once when a getter dies or Redis restarts.
import { after, before, describe, test } from "node:test";
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import process from "node:process";
import {
  JoinableQueue,
  Queue,
  QueueClosedError,
  QueueEmptyError,
  QueueFullError,
} from "../redis.ts";
import { QueueLink } from "../_redis_queue.ts";
import { run } from "../subprocess.ts";
import { collect, delay, networkScriptCommand } from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis_server.ts";

let server: RedisServer;
let names = 0;
// Each test has its own queue name.
function queueName(): string {
  return `queue-${process.pid}-${++names}`;
}

before(async () => {
  server = await startRedis({ appendonly: true });
});
after(async () => {
  await server.stop();
});

/** Runs fixture redis_queue_client in a separate process. */
function client(...args: string[]): Promise<string> {
  const argv = networkScriptCommand("./fixtures/redis_queue_client", ...args);
  return run(argv, { capture: true, text: true, timeout: 120_000, check: true })
    .then((result) => result.stdout ?? "");
}

describe("redis Queue: the local queue's API by name", () => {
  test("items come out in order, from another handle of the same name", async () => {
    const name = queueName();
    await using a = new Queue<unknown>({ redis: server.url, name });
    await using b = new Queue<unknown>({ redis: server.url, name });
    const items = [
      1,
      "two",
      { three: [3] },
      new Map([[4, 4]]),
      null,
      2n ** 70n,
    ];
    for (const item of items) await a.put(item);
    equal(await b.qsize(), items.length);
    const got = [];
    for (let i = 0; i < items.length; i++) got.push(await b.get());
    deepEqual(got, items);
    equal(await b.empty(), true);
  });

  test("many gets at once on one handle: each item to one get", async () => {
    const name = queueName();
    await using producer = new Queue<number>({ redis: server.url, name });
    await using consumer = new Queue<number>({ redis: server.url, name });
    const gets = Array.from({ length: 300 }, () => consumer.get());
    for (let i = 0; i < 300; i++) await producer.put(i);
    const got = await Promise.all(gets);
    deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
    equal(await consumer.qsize(), 0);
    // A get waiting for its turn keeps its own timeout and signal.
    const blocked = consumer.get();
    await rejects(consumer.get({ timeout: 50 }), QueueEmptyError);
    const controller = new AbortController();
    const aborted = consumer.get({ signal: controller.signal });
    controller.abort(new Error("no more"));
    await rejects(aborted, /no more/);
    await producer.put(7);
    equal(await blocked, 7);
  });

  test("items are copied when put", async () => {
    await using q = new Queue<number[]>({
      redis: server.url,
      name: queueName(),
    });
    const item = [1];
    await q.put(item);
    item.push(2);
    deepEqual(await q.get(), [1]);
    await rejects(q.put((() => 1) as unknown as number[]), TypeError);
  });

  test("timeouts, nowait forms and maxsize", async () => {
    const name = queueName();
    await using q = new Queue<number>({ redis: server.url, name, maxsize: 2 });
    await rejects(q.getNowait(), QueueEmptyError);
    await rejects(q.get({ timeout: 50 }), QueueEmptyError);
    await q.putNowait(1);
    await q.put(2);
    equal(await q.full(), true);
    await rejects(q.putNowait(3), QueueFullError);
    await rejects(q.put(3, { timeout: 50 }), QueueFullError);
    // A waiting put goes on once a getter makes room.
    const waiting = q.put(3);
    await delay(100);
    equal(await q.getNowait(), 1);
    await waiting;
    deepEqual([await q.get(), await q.get()], [2, 3]);
    // Another handle of the name keeps the first one's bound.
    await using other = new Queue<number>({ redis: server.url, name });
    await other.put(4);
    await other.put(5);
    await rejects(other.putNowait(6), QueueFullError);
  });

  test("close: puts fail, getters drain what is left, then fail", async () => {
    const name = queueName();
    await using q = new Queue<number>({ redis: server.url, name });
    await using reader = new Queue<number>({ redis: server.url, name });
    const blocked = reader.get();
    await q.put(1);
    equal(await blocked, 1);
    await q.put(2);
    const waiting = reader.get({ timeout: 60_000 });
    await q.close();
    equal(await waiting, 2);
    await rejects(q.put(3), QueueClosedError);
    await rejects(reader.get(), QueueClosedError);
    equal(await reader.isClosed(), true);
    deepEqual(await collect(reader), []);
  });

  test("a signal stops a get and loses no item", async () => {
    await using q = new Queue<string>({ redis: server.url, name: queueName() });
    const controller = new AbortController();
    const pending = q.get({ signal: controller.signal });
    await delay(50);
    controller.abort(new Error("stop waiting"));
    await rejects(pending, /stop waiting/);
    await q.put("kept");
    equal(await q.get({ timeout: 5000 }), "kept");
  });

  test("JoinableQueue: join waits for every taskDone; one too many is a RangeError", async () => {
    const name = queueName();
    await using q = new JoinableQueue<number>({ redis: server.url, name });
    await using worker = new JoinableQueue<number>({ redis: server.url, name });
    await q.put(1);
    await q.put(2);
    let joined = false;
    const joining = q.join().then(() => joined = true);
    await worker.get();
    await worker.taskDone();
    await delay(200);
    equal(joined, false);
    await worker.get();
    await worker.taskDone();
    await joining;
    await rejects(worker.taskDone(), RangeError);
  });

  test("disconnect while a get, a put or a join waits: each rejects and says why", async () => {
    const q = new JoinableQueue<number>({
      redis: server.url,
      name: queueName(),
      maxsize: 1,
    });
    const empty = new Queue<number>({ redis: server.url, name: queueName() });
    await q.put(1);
    const waiting = [q.put(2), empty.get(), q.join()].map((call) =>
      rejects(call, /disconnected while the call waited/)
    );
    await delay(200);
    await Promise.all([q.disconnect(), empty.disconnect()]);
    await Promise.all(waiting);
    await rejects(q.put(3), /after it was disconnected/);
  });

  test("bad options are refused with what to do", () => {
    for (
      const [options, pattern] of [
        [{ name: "" }, /non-empty string/],
        [{ name: "a{b" }, /without braces/],
        [{ name: "a", maxsize: -1 }, /maxsize/],
        [{ name: "a", redis: "localhost:6379" }, /redis:\/\//],
      ] as const
    ) {
      try {
        new Queue({ redis: server.url, ...options });
      } catch (error) {
        ok(pattern.test(String(error)), String(error));
        continue;
      }
      throw new Error(`${JSON.stringify(options)} was accepted`);
    }
  });
});

describe("redis Queue: processes, dead getters and restarts", () => {
  test("3 producer and 2 consumer processes: every item taken exactly once", async () => {
    const name = queueName();
    const consumers = [
      client(server.url, name, "get"),
      client(server.url, name, "get"),
    ];
    await Promise.all(
      ["a", "b", "c"].map((tag) => client(server.url, name, "put", "300", tag)),
    );
    await using closer = new Queue({ redis: server.url, name });
    await closer.close();
    const taken = (await Promise.all(consumers)).flatMap((out) =>
      JSON.parse(out) as string[]
    );
    equal(taken.length, 900);
    equal(new Set(taken).size, 900);
    // Each producer's items arrive in its order within each consumer.
    for (const out of await Promise.all(consumers)) {
      const items = JSON.parse(out) as string[];
      for (const tag of ["a", "b", "c"]) {
        const mine = items.filter((item) => item.startsWith(`${tag}:`))
          .map((item) => Number(item.slice(2)));
        deepEqual(mine, [...mine].sort((x, y) => x - y));
      }
    }
  });

  test("an item taken by a getter that died goes back to the head of the queue", async () => {
    const name = queueName();
    await using q = new Queue<string>({ redis: server.url, name });
    await q.put("first");
    await q.put("second");
    // A getter that moved "first" to its taking list and died before its
    // get returned: no liveness key.
    const tag = `{multiproc:queue:${name}}`;
    await server.command("SADD", `${tag}:getters`, "dead-getter");
    await server.command(
      "LMOVE",
      `${tag}:items`,
      `${tag}:taking:dead-getter`,
      "LEFT",
      "RIGHT",
    );
    await using later = new Queue<string>({ redis: server.url, name });
    equal(await later.get(), "first");
    equal(await later.get(), "second");
  });

  test("an item moved for a get whose reply was lost is that get's", async () => {
    const name = queueName();
    const link = new QueueLink(server.url, name, 0);
    try {
      await link.put(
        link.encode("x"),
        Number.POSITIVE_INFINITY,
        undefined,
        false,
      );
      // As if BLMOVE ran but its reply was lost with the connection: the
      // item is in the taking list, and the get's connection drops.
      await server.command(
        "LMOVE",
        link.keys.items,
        link.keys.taking(link.getter),
        "LEFT",
        "RIGHT",
      );
      const getting = link.get(Date.now() + 20_000, undefined, false);
      await delay(200);
      await server.command("CLIENT", "KILL", "TYPE", "normal");
      const bytes = await getting;
      equal(new TextDecoder().decode(bytes.subarray(5)), "x");
      equal(await link.qsize(), 0);
      equal(
        await server.command("LLEN", link.keys.taking(link.getter)),
        0,
      );
    } finally {
      await link.end();
    }
  });

  test("Redis down: a get with a timeout gives up in time and says Redis could not be reached; a handle whose first connection failed connects later", async () => {
    await using down = await startRedis();
    const name = queueName();
    {
      await using q = new Queue<number>({ redis: down.url, name });
      await q.put(1);
      await down.kill();
      await rejects(
        q.get({ timeout: 300 }).then(() => q.get({ timeout: 300 })),
        (error: Error) => {
          ok(error instanceof QueueEmptyError, String(error));
          return /Redis could not be reached/.test(error.message);
        },
      );
    }
    const late = new Queue<number>({ redis: down.url, name: queueName() });
    await rejects(late.put(1), /Cannot connect to Redis/);
    await down.restart();
    await late.put(7);
    equal(await late.get(), 7);
    await late.disconnect();
  });

  test("Redis killed and restarted during queue traffic: nothing lost, nothing twice", async () => {
    const name = queueName();
    await using producer = new Queue<number>({ redis: server.url, name });
    await using consumer = new Queue<number>({ redis: server.url, name });
    // Both connected before the fault: a first connection that fails is an
    // error (a wrong URL looks the same), later losses are waited out.
    await producer.qsize();
    await consumer.qsize();
    const taken: number[] = [];
    const consuming = (async () => {
      while (taken.length < 400) taken.push(await consumer.get());
    })();
    const producing = (async () => {
      for (let i = 0; i < 400; i++) await producer.put(i);
    })();
    await delay(100);
    await server.kill();
    await delay(200);
    await server.restart();
    await Promise.all([producing, consuming]);
    deepEqual(taken, Array.from({ length: 400 }, (_, i) => i));
    equal(await consumer.qsize(), 0);
  });
});
