/**
 * The Redis benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case (for the latency cases,
 * each round's median round trip). Given the URL of a running Redis server,
 * it starts two `multiproc-worker` hosts (2 local workers each) and two
 * BullMQ worker processes (concurrency 2 each) with this runtime, then runs
 * tiny tasks, a map and one-at-a-time round trips through the multiproc
 * Redis pool, BullMQ and a local multiproc pool of 4 workers (the ceiling),
 * and passes small items between two processes through a multiproc Redis
 * Queue, a plain Redis list (ioredis LPUSH/BRPOP) and a local Queue. Run by
 * `scripts/bench_redis.ts` under Deno (sources) and Node (npm build).
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { Queue as BullQueue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { Pool as LocalPool, Queue as LocalQueue } from "../mod.ts";
import { Pool as RedisPool } from "../redis.ts";
import type * as Tasks from "./_bench_redis_tasks.ts";
import type * as QueueTasks from "./_bench_redis_queue_tasks.ts";

/** Tiny tasks submitted one by one; ints mapped; round trips timed one at a time; queue items. */
export const TINY = 20_000;
export const MAP = 1_000_000;
export const LATENCY_CALLS = 300;
export const QUEUE_ITEMS = 10_000;
/** Hosts (worker processes) and the workers or concurrency of each. */
export const HOSTS = 2;
export const PER_HOST = 2;
/** Python's default chunk size for 4 workers (`ceil(n / (workers * 4))`), used by every library. */
export const CHUNK = Math.ceil(MAP / (HOSTS * PER_HOST * 4));

const url = process.argv[2];
if (url === undefined) {
  console.error("usage: _bench_redis_cases URL");
  process.exit(2);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const isDeno = "Deno" in globalThis;
const tag = isDeno ? "deno" : "node";
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const { hostname, port } = new URL(url);
const connection = {
  host: hostname,
  port: Number(port),
  maxRetriesPerRequest: null,
};

/** A file beside this one (`.ts` in the sources, `.js` in the npm build). */
function sibling(name: string): string {
  return new URL(`${name}${ext}`, import.meta.url).pathname;
}

/** Whether util-linux's `setpriv --pdeathsig` is here to tie children to this process. */
const deathSignal =
  spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"]).status === 0;

/** A process that runs a script with this runtime, its stderr read by line. */
class Child {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #child: ChildProcess;
  #ended = false;

  constructor(script: string, args: string[]) {
    const runtimeArgs = isDeno ? ["run", "-A", script, ...args] : [
      script,
      ...args,
    ];
    // The kernel ends it if this process dies without stopping it (Linux).
    const argv = deathSignal
      ? ["setpriv", "--pdeathsig", "KILL", "--", process.execPath]
      : [process.execPath];
    this.#child = spawn(argv[0]!, [...argv.slice(1), ...runtimeArgs], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let partial = "";
    this.#child.stderr!.setEncoding("utf8");
    this.#child.stderr!.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code) => {
        this.#ended = true;
        resolve(code);
      });
    });
    children.add(this);
  }

  /** Resolves once a line matches `pattern`; rejects if the child exits first or 60 s pass. */
  async waitFor(pattern: RegExp): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!this.lines.some((line) => pattern.test(line))) {
      if (this.#ended || Date.now() > deadline) {
        throw new Error(
          `A benchmark process did not log ${pattern}:\n${
            this.lines.join("\n")
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    children.delete(this);
    if (this.#ended) return;
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** At exit, synchronously. */
  killNow(): void {
    if (!this.#ended) this.#child.kill("SIGKILL");
  }
}

const children = new Set<Child>();
process.on("exit", () => {
  for (const child of children) child.killNow();
});

/** Results of BullMQ jobs by id, as QueueEvents reports them. */
class BullMQ {
  readonly queue: BullQueue;
  readonly events: QueueEvents;
  #done = new Map<string, unknown>();
  #waiting = new Map<string, (value: unknown) => void>();

  constructor(name: string) {
    // Events of 10 000 jobs (several each) must not be trimmed before they are read.
    this.queue = new BullQueue(name, {
      connection,
      streams: { events: { maxLen: 200_000 } },
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });
    this.events = new QueueEvents(name, { connection });
    this.events.on("completed", ({ jobId, returnvalue }) => {
      const resolve = this.#waiting.get(jobId);
      if (resolve) {
        this.#waiting.delete(jobId);
        resolve(returnvalue);
      } else this.#done.set(jobId, returnvalue);
    });
  }

  /** The result of job `id`, whether it completed already or not. */
  result(id: string): Promise<unknown> {
    if (this.#done.has(id)) {
      const value = this.#done.get(id);
      this.#done.delete(id);
      return Promise.resolve(value);
    }
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }

  async ready(): Promise<void> {
    await this.queue.waitUntilReady();
    await this.events.waitUntilReady();
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.obliterate({ force: true });
    await this.queue.close();
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const items = range(MAP);
const chunks: number[][] = [];
for (let i = 0; i < MAP; i += CHUNK) chunks.push(items.slice(i, i + CHUNK));
const expectedSquares = items.reduce((sum, x) => sum + x * x, 0);

function sum(values: readonly unknown[]): number {
  return values.reduce((total: number, value) => total + Number(value), 0);
}

/** Throws unless the results are what the tasks return: a wrong result is a failed benchmark. */
function check(actual: number, expected: number, what: string): void {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${expected}, got ${actual}`);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The median round trip of `calls` one-at-a-time calls, in ms. */
async function p50(call: (i: number) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < LATENCY_CALLS; i++) {
    const started = performance.now();
    await call(i);
    times.push(performance.now() - started);
  }
  return median(times);
}

// ---- set-up (not timed) ---------------------------------------------------

const poolName = `bench-${tag}-${process.pid}`;
const bullName = `bench-${tag}-${process.pid}`;
const hosts = range(HOSTS).map(() =>
  new Child(sibling("../worker"), [
    "--redis",
    url,
    "--name",
    poolName,
    "--processes",
    String(PER_HOST),
    sibling("./_bench_redis_tasks"),
  ])
);
const bullWorkers = range(HOSTS).map(() =>
  new Child(sibling("./_bench_redis_bullmq_worker"), [
    url,
    bullName,
    String(PER_HOST),
  ])
);
await Promise.all([
  ...hosts.map((host) => host.waitFor(/serving/)),
  ...bullWorkers.map((worker) => worker.waitFor(/^ready$/)),
]);
const remote = new RedisPool<typeof Tasks>({ redis: url, name: poolName });
const bull = new BullMQ(bullName);
await bull.ready();
const local = new LocalPool<typeof Tasks>(
  sibling("./_bench_redis_tasks"),
  { processes: HOSTS * PER_HOST },
);
const queueWorkers = new LocalPool<typeof QueueTasks>(
  sibling("./_bench_redis_queue_tasks"),
  { processes: 2, backend: "process" },
);
/** Runs alone on its worker (a task with a timeout is never batched with others). */
const alone = { timeout: 3_600_000 };

// ---- the cases --------------------------------------------------------------

/** Each case runs one round and returns its milliseconds. */
type Case = () => Promise<number>;

/** A throughput round: the time `work` takes. */
function timed(work: () => Promise<void>): Case {
  return async () => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
}

const expectedTiny = (TINY * (TINY - 1)) / 2;
const cases: Record<string, Case> = {
  "tiny: multiproc Redis Pool": timed(async () => {
    const results = range(TINY).map((i) =>
      remote.applyAsync("noop", [i]).get()
    );
    check(sum(await Promise.all(results)), expectedTiny, "tiny, Redis Pool");
  }),
  "tiny: BullMQ": timed(async () => {
    const jobs = range(TINY).map((i) => bull.queue.add("noop", { x: i }));
    const results = (await Promise.all(jobs)).map((job) =>
      bull.result(job.id!)
    );
    check(sum(await Promise.all(results)), expectedTiny, "tiny, BullMQ");
  }),
  "tiny: multiproc local Pool": timed(async () => {
    const results = range(TINY).map((i) => local.applyAsync("noop", [i]).get());
    check(sum(await Promise.all(results)), expectedTiny, "tiny, local Pool");
  }),
  "map: multiproc Redis Pool": timed(async () => {
    const squares = await remote.map("square", items, { chunksize: CHUNK });
    check(sum(squares), expectedSquares, "map, Redis Pool");
  }),
  "map: BullMQ": timed(async () => {
    const jobs = await bull.queue.addBulk(
      chunks.map((xs) => ({ name: "square", data: { xs } })),
    );
    const parts = await Promise.all(jobs.map((job) => bull.result(job.id!)));
    check(sum((parts as number[][]).flat()), expectedSquares, "map, BullMQ");
  }),
  "map: multiproc local Pool": timed(async () => {
    const squares = await local.map("square", items, { chunksize: CHUNK });
    check(sum(squares), expectedSquares, "map, local Pool");
  }),
  "p50: multiproc Redis Pool": () => p50((i) => remote.apply("noop", [i])),
  "p50: BullMQ": () =>
    p50(async (i) => {
      const job = await bull.queue.add("noop", { x: i });
      return bull.result(job.id!);
    }),
  "p50: multiproc local Pool": () => p50((i) => local.apply("noop", [i])),
  "queue: multiproc Redis Queue": timed(async () => {
    const name = `bench-queue-${tag}-${process.pid}`;
    const [, got] = await Promise.all([
      queueWorkers.apply("putRedisQueue", [url, name, QUEUE_ITEMS], alone),
      queueWorkers.apply("getRedisQueue", [url, name, QUEUE_ITEMS], alone),
    ]);
    check(got, (QUEUE_ITEMS * (QUEUE_ITEMS - 1)) / 2, "queue, Redis Queue");
  }),
  "queue: ioredis LPUSH/BRPOP": timed(async () => {
    const key = `bench-list-${tag}-${process.pid}`;
    const [, got] = await Promise.all([
      queueWorkers.apply("pushList", [url, key, QUEUE_ITEMS], alone),
      queueWorkers.apply("popList", [url, key, QUEUE_ITEMS], alone),
    ]);
    check(got, (QUEUE_ITEMS * (QUEUE_ITEMS - 1)) / 2, "queue, Redis list");
  }),
  "queue: multiproc local Queue": timed(async () => {
    const queue = new LocalQueue<number>();
    const [, got] = await Promise.all([
      queueWorkers.apply("putLocal", [queue, QUEUE_ITEMS], alone),
      queueWorkers.apply("getLocal", [queue, QUEUE_ITEMS], alone),
    ]);
    check(got, (QUEUE_ITEMS * (QUEUE_ITEMS - 1)) / 2, "queue, local Queue");
  }),
};

/** What one round of each case counts as an item, for Redis commands per item. */
function itemsOf(name: string): number {
  if (name.startsWith("tiny")) return TINY;
  if (name.startsWith("map")) return chunks.length;
  if (name.startsWith("p50")) return LATENCY_CALLS;
  return QUEUE_ITEMS;
}

/** Commands Redis ran since the last reset, by name (without these counting calls). */
async function commandStats(admin: Redis): Promise<Record<string, number>> {
  const text = await admin.info("commandstats");
  const counts: Record<string, number> = {};
  for (const [, name, calls] of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
    if (name !== "info" && name !== "config|resetstat") {
      counts[name!] = Number(calls);
    }
  }
  return counts;
}

const only = new RegExp(process.env.BENCH_ONLY ?? "");
const trace = process.env.BENCH_TRACE === "1";
const admin = new Redis(url);
const results: Record<string, number[]> = {};
const commands: Record<string, Record<string, number>> = {};
const chosen = Object.entries(cases).filter(([name]) => only.test(name));
for (const [name, run] of chosen) {
  if (trace) console.error(`${tag} warm-up: ${name}`);
  await run(); // warm-up: connections, JIT, the hosts' workers
  results[name] = [];
}
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of chosen) {
    if (trace) console.error(`${tag} round ${round + 1}: ${name}`);
    // The last round also counts the commands Redis ran for it, per item.
    const counting = round === rounds - 1 && !name.includes("local");
    if (counting) await admin.config("RESETSTAT");
    results[name]!.push(await run());
    if (counting) {
      const counts = await commandStats(admin);
      commands[name] = Object.fromEntries(
        Object.entries(counts).map(([command, calls]) => [
          command,
          calls / itemsOf(name),
        ]),
      );
    }
  }
}
admin.disconnect();

await Promise.all([
  remote.close(),
  bull.close(),
  local.close(),
  queueWorkers.terminate(),
]);
await Promise.all([...hosts, ...bullWorkers].map((child) => child.stop()));
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
  commands,
}));
