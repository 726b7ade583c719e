/**
 * The lock benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case: acquire+release of an
 * uncontended `Lock` in one thread, and a `Lock` that two workers (threads
 * or processes) take turns on. Run by `scripts/bench_sync.ts` under Deno
 * (sources) and Node (npm build). A contended case also reports its
 * handoffs (how often the lock went from one worker to the other) as the
 * case `handoffs <name>`, in milliseconds per handoff.
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

// Each acquire's time (one clock for every process) tells who had the lock when.
async function turns(lock: Lock, count: number): Promise<Float64Array> {
  const times = new Float64Array(count);
  const origin = performance.timeOrigin;
  for (let i = 0; i < count; i++) {
    await lock.acquire();
    times[i] = origin + performance.now();
    lock.release();
  }
  return times;
}

/** How often the lock changed hands: the two workers' acquires merged in time order. */
function handoffs(a: Float64Array, b: Float64Array): number {
  let changes = 0;
  let i = 0;
  let j = 0;
  let last = -1;
  while (i < a.length || j < b.length) {
    const fromA = j >= b.length || (i < a.length && a[i]! <= b[j]!);
    const who = fromA ? 0 : 1;
    if (fromA) i++;
    else j++;
    if (last !== -1 && who !== last) changes++;
    last = who;
  }
  return changes;
}

/** Handoffs of the round that just ran, per case. */
const lastHandoffs: Record<string, number> = {};

function contended(
  name: string,
  pool: Pool,
  count: number,
): () => Promise<unknown> {
  return async () => {
    const lock = new Lock();
    const [a, b] = await Promise.all([
      pool.apply(turns, [lock, count], alone),
      pool.apply(turns, [lock, count], alone),
    ]);
    lastHandoffs[name] = handoffs(a, b);
  };
}

const threads = new Pool({ processes: 2 });
const processes = new Pool({ processes: 2, backend: "process" });
const lock = new Lock();

const cases: Record<string, () => Promise<unknown>> = {
  "uncontended: Lock": () => turns(lock, UNCONTENDED),
  "thread: Lock": contended("thread: Lock", threads, TURNS),
  "process: Lock": contended("process: Lock", processes, TURNS),
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
    const ms = performance.now() - started;
    results[name]!.push(ms);
    const changes = lastHandoffs[name];
    // Never 0 handoffs: an infinite time would not survive JSON.
    if (changes !== undefined) {
      (results[`handoffs ${name}`] ??= []).push(ms / Math.max(changes, 1));
    }
  }
}
await Promise.all([threads.terminate(), processes.terminate()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
