/**
 * The lock benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case: acquire+release of an
 * uncontended `Lock` in one thread, and a `Lock` that two workers (threads
 * or processes) take turns on. Run by `scripts/bench_sync.ts` under Deno
 * (sources) and Node (npm build).
 *
 * @module
 */
import process from "node:process";
import { Lock, Pool } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
/** Acquire+release pairs: uncontended in one thread; per worker when contended. */
export const UNCONTENDED = 1_000_000;
export const TURNS = 10_000;
const isDeno = "Deno" in globalThis;

/** Runs alone on its worker (a task with a timeout is never batched with others). */
const alone = { timeout: 3_600_000 };

async function turns(lock: Lock, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await lock.acquire();
    lock.release();
  }
}

function contended(pool: Pool, count: number): () => Promise<unknown> {
  return () => {
    const lock = new Lock();
    return Promise.all([
      pool.apply(turns, [lock, count], alone),
      pool.apply(turns, [lock, count], alone),
    ]);
  };
}

const threads = new Pool({ processes: 2 });
const processes = new Pool({ processes: 2, backend: "process" });
const lock = new Lock();

const cases: Record<string, () => Promise<unknown>> = {
  "uncontended: Lock": () => turns(lock, UNCONTENDED),
  "thread: Lock": contended(threads, TURNS),
  "process: Lock": contended(processes, TURNS),
};

const results: Record<string, number[]> = {};
for (const [name, fn] of Object.entries(cases)) {
  await fn(); // warm-up
  results[name] = [];
}
for (let round = 0; round < rounds; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    const started = performance.now();
    await fn();
    results[name]!.push(performance.now() - started);
  }
}
await Promise.all([threads.terminate(), processes.terminate()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
