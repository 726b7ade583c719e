/**
 * Python's classic shared counter: a `Value` in shared memory, four workers
 * each adding 1 ten thousand times under the value's lock, and not one
 * update lost: 40000. The workers are threads, which share memory; for
 * processes, which share none, use a Manager value.
 *
 * Run with `deno run -A examples/sync_counter.ts`.
 *
 * @module
 */
import { isMainModule, Pool, Value } from "../mod.ts";

/** Adds 1 to the counter `times` times, each under its lock. */
export async function addMany(
  counter: Value<"i32">,
  times: number,
): Promise<void> {
  for (let i = 0; i < times; i++) {
    // Python's `with counter.get_lock(): counter.value += 1`.
    await using _held = await counter.getLock().hold();
    counter.value += 1;
  }
}

if (isMainModule(import.meta)) {
  const counter = new Value("i32", 0);
  await using pool = new Pool<typeof import("./sync_counter.ts")>(
    import.meta.url,
    { processes: 4, backend: "worker" },
  );
  await pool.starmap("addMany", [1, 2, 3, 4].map(() => [counter, 10_000]));
  console.log(counter.value);
}
