/**
 * The tour's `Pool` of long tasks: 13 `applyAsync` calls on a default pool
 * (one worker process per CPU), each sleeping up to 3 s; then `close()`,
 * `join()`, and each result's `get()`.
 *
 * Run with `deno run -A examples/pool_long_tasks.ts`.
 *
 * @module
 */
import process from "node:process";
import { currentProcess, isMainModule, Pool } from "../mod.ts";

/** Sleeps a random time and returns its argument doubled. */
export async function longTimeTask(name: number): Promise<number> {
  console.log(`Run task ${name} (${currentProcess().pid})...`);
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 3000));
  const end = performance.now();
  console.log(
    `Task ${name} runs ${((end - start) / 1000).toFixed(2)} seconds.`,
  );
  return name * 2;
}

if (isMainModule(import.meta)) {
  console.log(`Parent process ${process.pid}.`);
  const p = new Pool<typeof import("./pool_long_tasks.ts")>(import.meta.url, {
    backend: "process",
  });
  const res = [];
  for (let i = 0; i < 13; i++) res.push(p.applyAsync("longTimeTask", [i]));
  console.log("Waiting for all subprocesses done...");
  p.close();
  await p.join();
  console.log("All subprocesses done.");
  const realres = await Promise.all(res.map((x) => x.get()));
  console.log(realres);
}
