/**
 * The pool benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case. Run by
 * `scripts/bench_pool.ts` under Deno (sources) and Node (npm build).
 *
 * @module
 */
import process from "node:process";
import { Worker } from "node:worker_threads";
import { Pool } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const TINY = 100_000;
const MAP = 1_000_000;
const IMAP = 100_000;
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

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

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

const cases: Record<string, () => Promise<unknown>> = {
  "tiny: multiproc worker": () =>
    Promise.all(range(TINY).map((i) => threads.applyAsync(noop, [i]))),
  "tiny: multiproc process": () =>
    Promise.all(range(TINY).map((i) => processes.applyAsync(noop, [i]))),
  "tiny: raw worker_threads": () =>
    Promise.all(range(TINY).map((i) => raw.run(i))),
  "map: multiproc worker": () => threads.map(square, mapInput),
  "map: multiproc process": () => processes.map(square, mapInput),
  "imap: multiproc worker": async () => {
    for await (const _ of threads.imap(square, imapInput)) { /* drain */ }
  },
  "imap: multiproc process": async () => {
    for await (const _ of processes.imap(square, imapInput)) { /* drain */ }
  },
};

const results: Record<string, number[]> = {};
for (const [name, fn] of Object.entries(cases)) {
  await fn(); // warm-up
  results[name] = [];
}
for (let round = 0; round < rounds; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    results[name]!.push(await timed(fn));
  }
}
await Promise.all([threads.terminate(), processes.terminate(), raw.close()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
