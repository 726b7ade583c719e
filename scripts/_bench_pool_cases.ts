/**
 * The pool benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case. Run by
 * `scripts/bench_pool.ts` under Deno (sources) and Node (npm build).
 *
 * @module
 */
import process from "node:process";
import { Worker } from "node:worker_threads";
import { Piscina } from "piscina";
import { FixedThreadPool } from "poolifier";
import { Tinypool } from "tinypool";
import workerpool from "workerpool";
import { Pool, Process } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const LATENCY_CALLS = 2_000;
const BURN = 30_000_000;
const TINY = 100_000;
const MAP = 1_000_000;
const IMAP = 100_000;
const STARMAP = 300_000;
const isDeno = "Deno" in globalThis;

/** A hand-written pool of 2 worker_threads: one postMessage per task, round robin. */
class RawPool {
  #workers: Worker[];
  #pending = new Map<number, () => void>();
  #next = 0;
  constructor(size: number) {
    const url = new URL(
      `./_bench_raw_worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`,
      import.meta.url,
    );
    this.#workers = Array.from({ length: size }, () => {
      const worker = new Worker(url);
      worker.on("message", ([id]: [number, number]) => {
        this.#pending.get(id)!();
        this.#pending.delete(id);
      });
      return worker;
    });
  }
  run(x: number): Promise<void> {
    const id = this.#next++;
    const worker = this.#workers[id % this.#workers.length]!;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      worker.postMessage([id, x]);
    });
  }
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

function noop(x: number): number {
  return x;
}

function square(x: number): number {
  return x * x;
}

function add(a: number, b: number): number {
  return a + b;
}

function field(record: { a: number }): number {
  return record.a;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** A sibling script of this file, `.ts` in the sources, `.js` in the npm build. */
function sibling(name: string): URL {
  return new URL(
    `./${name}${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`,
    import.meta.url,
  );
}

/** A peer pool of 2 workers: how to run one no-op task, how to close it. */
interface Peer {
  run(x: number): PromiseLike<unknown>;
  close(): PromiseLike<unknown>;
}

function tinypoolPeer(runtime: "worker_threads" | "child_process"): Peer {
  const pool = new Tinypool({
    filename: sibling("_bench_peer_tasks").href,
    runtime,
    minThreads: 2,
    maxThreads: 2,
  });
  return {
    run: (x) => pool.run(x, { name: "noop" }),
    close: () => pool.destroy(),
  };
}

function workerpoolPeer(workerType: "thread" | "process"): Peer {
  const pool = workerpool.pool(sibling("_bench_workerpool_worker").pathname, {
    minWorkers: 2,
    maxWorkers: 2,
    workerType,
  });
  return {
    // workerpool's own promise class: wrapped in a standard one.
    run: (x) =>
      new Promise((resolve, reject) => {
        pool.exec("noop", [x]).then(resolve, reject);
      }),
    close: () =>
      new Promise((resolve) => {
        pool.terminate().then(resolve, resolve);
      }),
  };
}

/** The peers this runtime can start; one that cannot is left out of the report. */
function peers(): Record<string, () => Peer> {
  return {
    "piscina": () => {
      const pool = new Piscina({
        filename: sibling("_bench_peer_tasks").href,
        minThreads: 2,
        maxThreads: 2,
      });
      return {
        run: (x) => pool.run(x, { name: "noop" }),
        close: () => pool.destroy(),
      };
    },
    "tinypool": () => tinypoolPeer("worker_threads"),
    "workerpool": () => workerpoolPeer("thread"),
    "poolifier": () => {
      const pool = new FixedThreadPool<number, number>(
        2,
        sibling("_bench_poolifier_worker").pathname,
      );
      return {
        run: (x) => pool.execute(x),
        close: () => pool.destroy(),
      };
    },
    "tinypool child_process": () => tinypoolPeer("child_process"),
    "workerpool process": () => workerpoolPeer("process"),
  };
}

/** Starts each peer and checks that it answers; a peer that fails here is skipped. */
async function startPeers(): Promise<Record<string, Peer>> {
  const started: Record<string, Peer> = {};
  for (const [name, start] of Object.entries(peers())) {
    try {
      const peer = start();
      const answer = await Promise.race([
        peer.run(7),
        new Promise((resolve) => setTimeout(resolve, 10_000, "no answer")),
      ]);
      if (answer !== 7) throw new Error(`answered ${String(answer)}`);
      started[name] = peer;
    } catch (error) {
      console.error(`Skipping ${name} here: ${String(error)}`);
    }
  }
  return started;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

const threads = new Pool({ processes: 2 });
const processes = new Pool({ processes: 2, backend: "process" });
const raw = new RawPool(2);
const mapInput = range(MAP);
const imapInput = range(IMAP);
const pairs = range(STARMAP).map((i): [number, number] => [i, i]);
const records = range(STARMAP).map((i) => ({ a: i, b: `x${i}` }));

const started = await startPeers();
const peerCases: Record<string, () => Promise<unknown>> = {};
for (const [name, peer] of Object.entries(started)) {
  const group = /process/.test(name) ? "tiny process" : "tiny";
  peerCases[`${group}: ${name}`] = () =>
    Promise.all(range(TINY).map((i) => peer.run(i)));
}

/** Round trip of one task at a time: the median and the 99th percentile. */
async function latencies(
  run: (x: number) => PromiseLike<unknown>,
): Promise<[number, number]> {
  const times: number[] = [];
  for (let i = 0; i < LATENCY_CALLS; i++) {
    const started = performance.now();
    await run(i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return [
    times[Math.floor(times.length / 2)]!,
    times[Math.floor(times.length * 0.99)]!,
  ];
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fixed amount of pure compute, split in 8 tasks. */
function burn(n: number): number {
  let x = 0;
  for (let i = 0; i < n; i++) x = (x + i * i) % 1_000_003;
  return x;
}

/** Peak RSS (MiB) of this process while `count` tasks stream through `imap`. */
async function imapPeakRss(pool: Pool, count: number): Promise<number> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  function* numbers(): Generator<number> {
    for (let i = 0; i < count; i++) yield i;
  }
  for await (const _ of pool.imap(noop, numbers(), { chunksize: 64 })) {
    // drain
  }
  clearInterval(sampler);
  return Math.max(peak, process.memoryUsage().rss) / 2 ** 20;
}

const cases: Record<string, () => Promise<unknown>> = {
  "tiny process: multiproc process": () =>
    Promise.all(range(TINY).map((i) => processes.applyAsync(noop, [i]))),
  "tiny: multiproc worker": () =>
    Promise.all(range(TINY).map((i) => threads.applyAsync(noop, [i]))),
  "tiny: raw worker_threads": () =>
    Promise.all(range(TINY).map((i) => raw.run(i))),
  "map: multiproc worker": () => threads.map(square, mapInput),
  "map: multiproc process": () => processes.map(square, mapInput),
  "starmap: multiproc worker": () => threads.starmap(add, pairs),
  "starmap: multiproc process": () => processes.starmap(add, pairs),
  "records: multiproc worker": () => threads.map(field, records),
  "records: multiproc process": () => processes.map(field, records),
  "imap: multiproc worker": async () => {
    for await (const _ of threads.imap(square, imapInput)) { /* drain */ }
  },
  "imap: multiproc process": async () => {
    for await (const _ of processes.imap(square, imapInput)) { /* drain */ }
  },
};

/** Cases that measure something else than their own duration: named values per round. */
/** The p50 and p99 round trip of each of `runs`, as named values. */
async function latencyValues(
  runs: Record<string, (x: number) => PromiseLike<unknown>>,
): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  for (const [name, run] of Object.entries(runs)) {
    const [p50, p99] = await latencies(run);
    values[`p50: ${name}`] = p50;
    values[`p99: ${name}`] = p99;
  }
  return values;
}

const peerMeasured: Record<string, () => Promise<Record<string, number>>> = {
  latency: () =>
    latencyValues(
      Object.fromEntries(
        Object.entries(started).map(([name, peer]) => [name, peer.run]),
      ),
    ),
};

const measured: Record<string, () => Promise<Record<string, number>>> = {
  latency: () =>
    latencyValues({
      "multiproc worker": (x) => threads.apply(noop, [x]),
      "multiproc process": (x) => processes.apply(noop, [x]),
      "raw worker_threads": (x) => raw.run(x),
    }),
  startup: async () => {
    const values: Record<string, number> = {};
    for (const backend of ["worker", "process"] as const) {
      let started = performance.now();
      const pool = new Pool({ processes: 2, backend });
      await pool.apply(noop, [1]);
      values[`startup: Pool, ${backend} backend`] = performance.now() - started;
      await pool.terminate();
      started = performance.now();
      const child = new Process({ target: noop, args: [1], backend });
      child.start();
      await child.join();
      values[`startup: Process, ${backend} backend`] = performance.now() -
        started;
    }
    return values;
  },
  cpu: async () => {
    const values: Record<string, number> = {};
    const work = Array.from({ length: 8 }, () => BURN / 8);
    for (const processes of [1, 2]) {
      const pool = new Pool({ processes });
      // Every worker up before timing: each gets one of these.
      await pool.map(pause, Array.from({ length: processes }, () => 20));
      values[`cpu: ${processes}`] = await timed(() => pool.map(burn, work));
      await pool.terminate();
    }
    return values;
  },
  rss: async () => ({
    "rss: 10000": await imapPeakRss(threads, 10_000),
    "rss: 1000000": await imapPeakRss(threads, 1_000_000),
  }),
};

const results: Record<string, number[]> = {};

/** Runs every case and measure `rounds` times, interleaved, after a warm-up. */
async function runAll(
  timedCases: Record<string, () => Promise<unknown>>,
  measures: Record<string, () => Promise<Record<string, number>>>,
): Promise<void> {
  for (const [name, fn] of Object.entries(timedCases)) {
    await fn(); // warm-up
    results[name] = [];
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, fn] of Object.entries(timedCases)) {
      if (process.env.BENCH_TRACE) console.error("case", name);
      results[name]!.push(await timed(fn));
    }
    for (const [measureName, measure] of Object.entries(measures)) {
      if (process.env.BENCH_TRACE) console.error("measure", measureName);
      for (const [name, value] of Object.entries(await measure())) {
        (results[name] ??= []).push(value);
      }
    }
  }
}

// The peers run first and are closed before multiproc's cases: no library's
// idle pools run beside another's measurements.
await runAll(peerCases, peerMeasured);
// A peer's shutdown can hang in Deno: give it a few seconds, then go on.
await Promise.all(
  Object.values(started).map((peer) =>
    Promise.race([peer.close(), pause(5_000)])
  ),
);
await runAll(cases, measured);
await Promise.all([threads.terminate(), processes.terminate(), raw.close()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
// A peer left running (see above) must not keep this script alive.
process.exit(0);
