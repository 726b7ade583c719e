// redis.ts and the multiproc-worker command against a real redis-server,
// with worker hosts as separate OS processes: the local Pool's results,
// ordering and errors; at-least-once delivery when a host is SIGKILLed or
// Redis restarts; withdrawal, cancellation and clear connection errors.
import { after, before, describe, test } from "node:test";
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { Pool, serve, TimeoutError, WorkerExitError } from "../redis.ts";
import { main } from "../worker.ts";
import { Queue as LocalQueue } from "../queue.ts";
import process from "node:process";
import { collect, delay, networkScriptCommand } from "./_helpers.ts";
import { PIPE, Popen } from "../subprocess.ts";
import { type RedisServer, startRedis } from "./_redis_server.ts";
import { startHost, tasksModule } from "./_redis_hosts.ts";
import type * as Tasks from "./fixtures/tasks.ts";
import { RedisDriver } from "../_redis_driver.ts";
import {
  connectRedis,
  type RedisConnection,
  type Reply,
} from "../_redis_client.ts";
import {
  ensureGroup,
  fieldsOf,
  GROUP,
  type Outcome,
  poolKeys,
  resultFields,
  text,
} from "../_redis_wire.ts";
import { SingleJob } from "../_jobs.ts";
import { APPLY } from "../_wire.ts";

type TaskModule = typeof Tasks;

let server: RedisServer;
let names = 0;
// Each test has its own pool name, so no task of one reaches another.
function poolName(): string {
  return `test-${process.pid}-${++names}`;
}

before(async () => {
  server = await startRedis({ appendonly: true });
});
after(async () => {
  await server.stop();
});

describe("redis Pool: the local Pool's results on hosts of other processes", () => {
  test("map, starmap, apply, imap and imapUnordered give the local results in order", async () => {
    const name = poolName();
    await using _a = await startHost(server.url, name);
    await using _b = await startHost(server.url, name);
    await using pool = new Pool<TaskModule>({ redis: server.url, name });
    const items = Array.from({ length: 500 }, (_, i) => i);
    deepEqual(
      await pool.map("square", items, { chunksize: 7 }),
      items.map((x) => x * x),
    );
    deepEqual(await pool.starmap("add", [[1, 2], [3, 4]]), [3, 7]);
    equal(await pool.apply("add", [20, 22]), 42);
    equal(await pool.applyAsync("square", [9]).get({ timeout: 30_000 }), 81);
    deepEqual(
      await collect(pool.imap("square", items)),
      items.map((x) => x * x),
    );
    deepEqual(
      (await collect(pool.imapUnordered("square", items, { chunksize: 3 })))
        .sort((a, b) => a - b),
      items.map((x) => x * x),
    );
    const stats = await pool.stats();
    equal(stats.pending, 0);
    equal(stats.hosts.length, 2);
    ok(stats.completed > 0);
  });

  test("imap pulls an endless input lazily, a bounded number in Redis; leaving withdraws the rest", async () => {
    const name = poolName();
    await using _host = await startHost(server.url, name);
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      maxQueue: 8,
    });
    let pulled = 0;
    function* naturals(): Generator<number> {
      for (let i = 0;; i++) {
        pulled++;
        yield i;
      }
    }
    const seen: number[] = [];
    for await (const y of pool.imap("square", naturals())) {
      seen.push(y);
      if (seen.length === 50) break;
    }
    deepEqual(seen, Array.from({ length: 50 }, (_, i) => i * i));
    ok(pulled <= 50 + 8 + 1, `${pulled} items pulled`);
    const tasks = `{multiproc:${name}}:tasks`;
    ok(await until(async () => await server.command("XLEN", tasks) === 0));
  });

  test("both hosts take part, each task runs once", async () => {
    const name = poolName();
    await using a = await startHost(server.url, name);
    await using b = await startHost(server.url, name);
    await using pool = new Pool<TaskModule>({ redis: server.url, name });
    const pids = await pool.map("getpid", Array.from({ length: 40 }), {
      chunksize: 1,
    });
    // Threads report their host's pid: only the two hosts ran tasks.
    deepEqual(new Set(pids), new Set([a.pid, b.pid]));
  });

  test("errors keep their class, name, message, cause and properties", async () => {
    const name = poolName();
    await using _host = await startHost(server.url, name);
    await using pool = new Pool<TaskModule>({ redis: server.url, name });
    await rejects(pool.apply("fail", ["type"]), (error: Error) => {
      ok(error instanceof TypeError);
      equal(error.message, "bad type");
      ok(error.cause instanceof RangeError);
      ok(error.stack?.includes("fail"));
      return true;
    });
    await rejects(pool.apply("fail", ["custom"]), (error: Error) => {
      equal(error.name, "ValidationError");
      equal((error as Error & { field: string }).field, "email");
      return true;
    });
    await rejects(pool.map("fail", ["plain", "plain"]), /plain/);
    await rejects(
      pool.apply("sleep", [10_000], { timeout: 100 }),
      (error) => error instanceof TimeoutError,
    );
    await rejects(
      pool.apply("exitWith", [3]),
      (error) => error instanceof WorkerExitError && error.exitCode === 3,
    );
    // The host replaced its workers and goes on.
    equal(await pool.apply("square", [5]), 25);
  });

  test("inline functions run only on hosts started with --allow-inline", async () => {
    const refusing = poolName();
    {
      await using _host = await startHost(server.url, refusing);
      await using pool = new Pool({ redis: server.url, name: refusing });
      await rejects(
        pool.apply((x: number) => x + 1, [1]),
        /does not run inline functions.*--allow-inline/,
      );
    }
    const allowing = poolName();
    await using _host = await startHost(server.url, allowing, {
      allowInline: true,
    });
    await using pool = new Pool({ redis: server.url, name: allowing });
    deepEqual(await pool.map((x: number) => x * 3, [1, 2, 3]), [3, 6, 9]);
  });
});

describe("redis Pool: hosts that die, stop and restart", () => {
  test("a host SIGKILLed mid-map: every result arrives once, the redelivery is logged", async () => {
    const name = poolName();
    await using a = await startHost(server.url, name, { processes: 2 });
    await using b = await startHost(server.url, name, { processes: 2 });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 1500,
    });
    const items = Array.from({ length: 24 }, (_, i) => i);
    const pending = pool.map("sleep", items.map(() => 500), { chunksize: 1 });
    // Killed while it holds tasks (its heartbeat says so), so that they
    // must go out again.
    ok(
      await until(async () =>
        (await pool.stats()).hosts.some((h) => h.pid === a.pid && h.running > 0)
      ),
    );
    a.signal("SIGKILL");
    const results = await pending;
    equal(results.length, 24);
    ok(results.every((r) => r === 500));
    await b.waitFor(/redelivered task \d+/);
    ok((await pool.stats()).redelivered >= 1);
    // Nothing is left in the stream.
    equal(await server.command("XLEN", `{multiproc:${name}}:tasks`), 0);
  });

  test("after maxDeliveries lost hosts a task fails with WorkerExitError", async () => {
    const name = poolName();
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 500,
      maxDeliveries: 1,
    });
    const pending = pool.apply("sleep", [60_000]);
    const host = await startHost(server.url, name, { processes: 1 });
    await host.waitFor(/serving/);
    ok(await until(async () => (await pool.stats()).inFlight === 1));
    host.signal("SIGKILL");
    await host.exited;
    await rejects(
      pending,
      (error) =>
        error instanceof WorkerExitError &&
        /delivered 1 time/.test(error.message),
    );
  });

  test("a task that kills its host fails alone: the tasks queued beside it never count a delivery", async () => {
    const name = poolName();
    // Two hosts of one process worker each; a fresh one replaces each that dies.
    let done = false;
    const hosts: Promise<void>[] = [];
    const live = new Set<{ signal(s: "SIGKILL"): void }>();
    for (let i = 0; i < 2; i++) {
      hosts.push((async () => {
        while (!done) {
          const host = await startHost(server.url, name, {
            processes: 1,
            args: ["--backend", "process"],
          });
          live.add(host);
          if (done) host.signal("SIGKILL");
          await host.exited;
          live.delete(host);
        }
      })());
    }
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 500,
      maxDeliveries: 2,
    });
    try {
      ok(await until(async () => (await pool.stats()).hosts.length >= 2));
      // Submitted in one turn: the poison shares an entry with tasks 0 and 1.
      const items = [-1, ...Array.from({ length: 20 }, (_, i) => i)];
      const outcomes = await Promise.allSettled(
        items.map((x) => pool.apply("killHost", [x])),
      );
      const poison = outcomes[0]!;
      ok(
        poison.status === "rejected" &&
          poison.reason instanceof WorkerExitError &&
          /delivered 2 times/.test(poison.reason.message),
      );
      deepEqual(
        outcomes.slice(1).map((o) =>
          o.status === "fulfilled" ? o.value : String(o.reason)
        ),
        items.slice(1),
      );
      equal((await pool.stats()).completed, 20);
    } finally {
      done = true;
      for (const host of live) host.signal("SIGKILL");
      await Promise.all(hosts);
    }
  });

  test("a task longer than visibilityTimeout is not delivered again while its host lives", async () => {
    const name = poolName();
    await using host = await startHost(server.url, name, { processes: 1 });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 600,
    });
    equal(await pool.apply("sleep", [2500, "slow"]), "slow");
    equal((await pool.stats()).redelivered, 0);
    ok(host.lines.every((line) => !/redelivered/.test(line)));
  });

  test("a driver SIGKILLed mid-map: hosts drop its tasks, its results expire", async () => {
    const name = poolName();
    await using host = await startHost(server.url, name, { processes: 1 });
    const driver = new Popen(
      networkScriptCommand("./fixtures/redis_driver", server.url, name),
      { stdout: PIPE },
    );
    const reader = driver.stdout!.getReader();
    const { value } = await reader.read();
    equal(new TextDecoder().decode(value).trim(), "submitted");
    driver.kill();
    await driver.wait();
    await host.waitFor(/dropped task \d+ of driver .*: the driver is gone/);
    const tasks = `{multiproc:${name}}:tasks`;
    ok(await until(async () => await server.command("XLEN", tasks) === 0));
    const results = await server.command(
      "KEYS",
      `{multiproc:${name}}:results:*`,
    ) as string[];
    for (const key of results) {
      const ttl = await server.command("PTTL", key) as number;
      ok(ttl > 0, `${key} expires (PTTL ${ttl})`);
    }
  });

  test("SIGTERM: the host hands back what it has not started and finishes what runs", async () => {
    const name = poolName();
    await using a = await startHost(server.url, name, { processes: 1 });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      // Far longer than the test: a hand-back must not wait for it.
      visibilityTimeout: 600_000,
    });
    const pending = pool.map("sleep", [400, 400, 400], { chunksize: 1 });
    await delay(150);
    a.signal("SIGTERM");
    await using _b = await startHost(server.url, name, { processes: 1 });
    deepEqual(await pending, [400, 400, 400]);
    equal(await a.exited, 0);
    await a.waitFor(/stopped after 1 tasks/);
  });

  test("a second SIGTERM stops at once and hands back the running tasks too", async () => {
    const name = poolName();
    await using a = await startHost(server.url, name, { processes: 2 });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 600_000,
    });
    const pending = pool.map("sleep", [3000, 3000], { chunksize: 1 });
    ok(await until(async () => (await pool.stats()).inFlight === 2));
    a.signal("SIGTERM");
    await a.waitFor(/SIGTERM: stopping;/);
    a.signal("SIGTERM");
    await a.waitFor(/stopping now/);
    equal(await a.exited, 0);
    await using _b = await startHost(server.url, name, { processes: 2 });
    deepEqual(await pending, [3000, 3000]);
  });

  test("a host whose task module cannot load does not start", async () => {
    const name = poolName();
    await rejects(
      serve("./no-such-module.ts", { redis: server.url, name, processes: 1 }),
      /Cannot load the task module .*no-such-module/,
    );
    const logged: string[] = [];
    equal(
      await main(
        ["--redis", server.url, "--name", name, "./no-such-module.ts"],
        { log: (line) => logged.push(line) },
      ),
      1,
    );
    ok(
      /Cannot load the task module/.test(logged.join("\n")),
      logged.join("\n"),
    );
    await using pool = new Pool({ redis: server.url, name });
    deepEqual((await pool.stats()).hosts, []);
  });

  test("Redis restarted without its data during a map: the driver sends its tasks again", async () => {
    await using volatile = await startRedis();
    const name = poolName();
    await using host = await startHost(volatile.url, name, { processes: 2 });
    await using pool = new Pool<TaskModule>({
      redis: volatile.url,
      name,
      visibilityTimeout: 1000,
    });
    const items = Array.from({ length: 20 }, (_, i) => i);
    const pending = pool.map("square", items, { chunksize: 1 });
    await pending;
    const again = pool.map("sleep", items.map(() => 100), { chunksize: 1 });
    await delay(300);
    await volatile.kill();
    await delay(200);
    await volatile.restart();
    deepEqual(await again, items.map(() => 100));
    await host.waitFor(/reconnected/);
  });

  test("Redis killed and restarted during a map: nothing lost, everyone reconnects", async () => {
    const name = poolName();
    await using host = await startHost(server.url, name, { processes: 2 });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name,
      visibilityTimeout: 5000,
    });
    const items = Array.from({ length: 60 }, () => 50);
    const pending = pool.map("sleep", items, { chunksize: 1 });
    await delay(300);
    await server.kill();
    await delay(300);
    await server.restart();
    deepEqual(await pending, items);
    await host.waitFor(/lost the connection/);
    await host.waitFor(/reconnected/);
    equal(await pool.apply("square", [4]), 16);
  });
});

describe("redis Pool: withdrawal, cancellation and errors", () => {
  test("terminate() fails pending calls and withdraws what no host took", async () => {
    const name = poolName();
    const pool = new Pool<TaskModule>({ redis: server.url, name });
    const pending = pool.map("square", [1, 2, 3], { chunksize: 1 });
    ok(
      await until(async () =>
        await server.command("XLEN", `{multiproc:${name}}:tasks`) === 3
      ),
    );
    const failed = rejects(pending, /terminated/);
    await pool.terminate();
    await failed;
    equal(await server.command("XLEN", `{multiproc:${name}}:tasks`), 0);
    deepEqual(
      await server.command("KEYS", `{multiproc:${name}}:results:*`),
      [],
    );
  });

  test("a signal stops the task on its host", async () => {
    const name = poolName();
    await using host = await startHost(server.url, name, { processes: 1 });
    await using pool = new Pool<TaskModule>({ redis: server.url, name });
    const controller = new AbortController();
    const pending = pool.apply("sleep", [60_000], {
      signal: controller.signal,
    });
    ok(await until(async () => (await pool.stats()).inFlight === 1));
    controller.abort(new Error("changed my mind"));
    await rejects(pending, /changed my mind/);
    // The host's only worker was replaced: the next task runs at once.
    equal(await pool.apply("square", [3], { timeout: 20_000 }), 9);
    ok(host.lines.every((line) => !/redelivered/.test(line)));
  });

  test("an unreachable server or a wrong password fails the first call clearly", async () => {
    const name = poolName();
    {
      await using pool = new Pool({ redis: "redis://127.0.0.1:1", name });
      await rejects(
        pool.apply("square", [1]),
        /Cannot connect to Redis at "redis:\/\/127\.0\.0\.1:1" \(.*ECONNREFUSED.*\): check that the server runs/,
      );
    }
    {
      const url = `redis://:wrong-password@127.0.0.1:${server.port}`;
      await using pool = new Pool({ redis: url, name });
      await rejects(pool.apply("square", [1]), (error: Error) => {
        ok(!error.message.includes("wrong-password"), error.message);
        return /Cannot connect to Redis/.test(error.message);
      });
    }
    await rejects(
      serve(tasksModule(), { redis: "redis://127.0.0.1:1", name }),
      /Cannot connect/,
    );
  });

  test("bad options and local queues are refused with what to do", async () => {
    throws(
      () => new Pool({ redis: server.url, name: "a{b}" }),
      /without braces/,
    );
    throws(() => new Pool({ redis: "http://x", name: "a" }), /redis:\/\//);
    throws(
      () => new Pool({ redis: server.url, name: "a", maxDeliveries: 0 }),
      /maxDeliveries/,
    );
    await using pool = new Pool({ redis: server.url, name: poolName() });
    await rejects(
      pool.apply("square", [new LocalQueue()]),
      /Queue from "multiproc\/redis"/,
    );
  });
});

describe("redis Pool: a result answers one delivery of its task", () => {
  // The test is the host: it reads the driver's entries and writes the
  // answers, and holds the driver's XADD replies back when it wants to.
  async function fakeHost(name: string): Promise<{
    host: RedisConnection;
    driver: RedisDriver;
    /** Holds the next replies to the driver's task XADDs until released. */
    hold(): () => void;
    /** The next entry of the stream, or undefined after a blocking second. */
    take(): Promise<
      { entry: string; driver: string; task: number } | undefined
    >;
    answer(
      to: { entry: string; driver: string; task: number },
      outcome: Outcome,
      value: unknown,
    ): Promise<void>;
    resultsRead(driver: string): Promise<boolean>;
  }> {
    const keys = poolKeys(name);
    const host = await connectRedis(server.url, "fake-host");
    await ensureGroup(host, keys);
    let gate: Promise<void> | undefined;
    const driver = new RedisDriver({
      url: server.url,
      name,
      visibilityTimeout: 60_000,
      maxDeliveries: 3,
      maxQueue: undefined,
      resultTtl: 60_000,
      async connect(url, label) {
        const real = await connectRedis(url, label);
        return {
          ...real,
          async call(command, background) {
            const reply = await real.call(command, background);
            if (command[0] === "XADD" && command[1] === keys.tasks) await gate;
            return reply;
          },
        };
      },
    });
    return {
      host,
      driver,
      hold() {
        let release!: () => void;
        gate = new Promise((resolve) => release = resolve);
        return () => {
          gate = undefined;
          release();
        };
      },
      async take() {
        const reply = await host.call([
          "XREADGROUP",
          "GROUP",
          GROUP,
          "fake",
          "COUNT",
          "1",
          "BLOCK",
          "1000",
          "STREAMS",
          keys.tasks,
          ">",
        ]);
        if (!Array.isArray(reply) || reply.length === 0) return undefined;
        const [id, fields] = ((reply[0] as Reply[])[1] as Reply[])[0] as [
          Reply,
          Reply,
        ];
        const map = fieldsOf(fields);
        return {
          entry: text(id),
          driver: text(map.get("d")),
          task: Number(text(map.get("i"))),
        };
      },
      async answer(to, outcome, value) {
        const results = keys.results(to.driver);
        await host.atomically([
          ["XACK", keys.tasks, GROUP, to.entry],
          ["XDEL", keys.tasks, to.entry],
          [
            "XADD",
            results,
            "*",
            ...resultFields(
              to.entry,
              [{ task: to.task, outcome, value }],
              "fake",
            ),
          ],
        ]);
      },
      // The driver deletes the results it has read.
      resultsRead: (driverId) =>
        until(async () =>
          await host.call(["XLEN", keys.results(driverId)]) === 0
        ),
    };
  }

  test("'dropped' for an entry whose XADD reply is still on its way: the task goes out again", async () => {
    const fake = await fakeHost(poolName());
    try {
      const release = fake.hold();
      const job = new SingleJob<number>();
      fake.driver.submit(
        fake.driver.task("square", APPLY, [7], "arguments", job, 0, undefined),
      );
      const first = await fake.take();
      ok(first !== undefined, "the task was added");
      // The host took the driver for gone: its answer is read before the
      // driver knows the id of the entry it answers.
      await fake.answer(first, "dropped", undefined);
      ok(await fake.resultsRead(first.driver));
      release();
      const again = await fake.take();
      ok(again !== undefined, "the dropped task was not sent again");
      ok(again.entry !== first.entry);
      equal(again.task, first.task);
      await fake.answer(again, "ok", 49);
      equal(await job.promise, 49);
      equal(fake.driver.counts().pending, 0);
    } finally {
      await fake.driver.terminate();
      fake.host.destroy();
    }
  });

  test("a stale 'dropped' for an older entry of a task that went out again is ignored", async () => {
    const name = poolName();
    const fake = await fakeHost(name);
    try {
      const job = new SingleJob<number>();
      fake.driver.submit(
        fake.driver.task("square", APPLY, [8], "arguments", job, 0, undefined),
      );
      const first = (await fake.take())!;
      await fake.answer(first, "dropped", undefined);
      const second = await fake.take();
      ok(second !== undefined, "the dropped task was not sent again");
      // The same answer again (a second host's, or one read late) is about
      // the entry the driver replaced: the entry the host holds now stays.
      await fake.answer(first, "dropped", undefined);
      ok(await fake.resultsRead(first.driver));
      await fake.answer(second, "ok", 64);
      equal(await job.promise, 64);
      await fake.driver.terminate();
      // Commands of one connection run in order: any redelivery the stale
      // answer made was counted before terminate() was answered.
      equal(
        text(
          await fake.host.call(["HGET", poolKeys(name).stats, "redelivered"]),
        ),
        "1",
      );
      equal(await fake.take(), undefined);
    } finally {
      await fake.driver.terminate();
      fake.host.destroy();
    }
  });
});

describe("multiproc-worker command line", () => {
  test("--help prints the usage; bad arguments exit 2 with the reason", async () => {
    const printed: string[] = [];
    equal(await main(["--help"], { print: (text) => printed.push(text) }), 0);
    ok(printed[0]!.includes("--allow-inline"));
    const logged: string[] = [];
    const log = (line: string) => logged.push(line);
    equal(await main(["--name", "x"], { log }), 2);
    equal(await main(["--name", "x", "--processes", "0", "m.ts"], { log }), 2);
    equal(await main(["--name", "x", "--backend", "fork", "m.ts"], { log }), 2);
    equal(await main(["--bogus"], { log }), 2);
    equal(logged.length, 4);
    ok(logged[1]!.includes('--processes to be a whole number >= 1, got "0"'));
  });
});

// Polls an asynchronous condition every 50 ms for up to 20 s.
async function until(condition: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await delay(50);
  }
  return false;
}

// node:assert/strict's throws, for constructors.
function throws(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (error) {
    ok(pattern.test(String(error)), String(error));
    return;
  }
  throw new Error(`Expected ${pattern} to be thrown`);
}
