/**
 * The manager benchmark cases for one runtime: prints `{ runtime, cases }`
 * as JSON, with the milliseconds of each round per case: `PAIRS` set+get
 * round trips on a `Manager().dict()` from one worker process and from one
 * worker thread (warm workers; a round is one task). Run by
 * `scripts/bench_manager.ts` under Deno (sources) and Node (npm build).
 *
 * @module
 */
import process from "node:process";
import { type DictProxy, Manager, Pool } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
/** set+get pairs per round. */
export const PAIRS = 5_000;
const isDeno = "Deno" in globalThis;

/** Sets a key and reads it back, `count` times: Python's `d[k] = i; d[k]`. */
async function pairs(
  d: DictProxy<string, number>,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    await d.set("k", i);
    if (await d.get("k") !== i) throw new Error("Read a stale value");
  }
}

await using manager = new Manager();
const d = manager.dict<string, number>();
await using threads = new Pool({ processes: 1 });
await using processes = new Pool({ processes: 1, backend: "process" });

const cases: Record<string, () => Promise<unknown>> = {
  "process: Manager().dict()": () => processes.apply(pairs, [d, PAIRS]),
  "thread: Manager().dict()": () => threads.apply(pairs, [d, PAIRS]),
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
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
