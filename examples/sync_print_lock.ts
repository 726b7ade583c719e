/**
 * Python's `Lock` around printing: each of ten processes writes its two
 * lines while it holds the lock, so no other process's lines come between
 * them.
 *
 * Run with `deno run -A examples/sync_print_lock.ts`.
 *
 * @module
 */
import { isMainModule, Lock, Process } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints two lines about `i`, with a pause between them, under the lock. */
export async function greet(lock: Lock, i: number): Promise<void> {
  await using _held = await lock.hold();
  console.log(`hello world ${i}`);
  await sleep(5);
  console.log(`goodbye world ${i}`);
}

if (isMainModule(import.meta)) {
  const lock = new Lock();
  const processes = Array.from(
    { length: 10 },
    (_, i) =>
      new Process({
        module: import.meta.url,
        target: "greet",
        args: [lock, i],
      }),
  );
  for (const p of processes) p.start();
  for (const p of processes) await p.join();
}
