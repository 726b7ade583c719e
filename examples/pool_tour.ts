/**
 * The `multiprocessing` documentation's tour of a `Pool(processes=4)`: map,
 * imapUnordered, applyAsync with `get({ timeout })`, the pids of the worker
 * processes, a task that outlasts its `get` timeout while the pool stays
 * available, and the pool stopped at the end of the `await using` block.
 *
 * Run with `deno run -A examples/pool_tour.ts`.
 *
 * @module
 */
import process from "node:process";
import { isMainModule, Pool, TimeoutError } from "../mod.ts";

/** Squares its argument. */
export function f(x: number): number {
  return x * x;
}

/** Python's `os.getpid`. */
export function getpid(): number {
  return process.pid;
}

/** The pid, after a fifth of a second: slow enough to spread over hosts. */
export async function slowGetpid(): Promise<number> {
  await sleep(0.2);
  return process.pid;
}

/** Python's `time.sleep`, in seconds. */
export function sleep(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

if (isMainModule(import.meta)) {
  type Tasks = typeof import("./pool_tour.ts");
  {
    // start 4 worker processes
    await using pool = new Pool<Tasks>(import.meta.url, {
      processes: 4,
      backend: "process",
    });

    // print "[0, 1, 4,..., 81]"
    console.log(await pool.map("f", Array.from({ length: 10 }, (_, i) => i)));

    // print same numbers in arbitrary order
    for await (
      const i of pool.imapUnordered(
        "f",
        Array.from({ length: 10 }, (_, i) => i),
      )
    ) {
      console.log(i);
    }

    // evaluate "f(20)" asynchronously
    const res = pool.applyAsync("f", [20]); // runs in *only* one process
    console.log(await res.get({ timeout: 1000 })); // prints "400"

    // evaluate "getpid()" asynchronously
    const pid = pool.applyAsync("getpid"); // runs in *only* one process
    console.log("PID", await pid.get({ timeout: 1000 })); // prints the PID of that process

    // launching multiple evaluations asynchronously *may* use more processes
    const multipleResults = Array.from(
      { length: 4 },
      () => pool.applyAsync("getpid"),
    );
    console.log(
      await Promise.all(multipleResults.map((r) => r.get({ timeout: 1000 }))),
    );

    // make a single worker sleep for 5 secs
    const sleeping = pool.applyAsync("sleep", [5]);
    try {
      console.log(await sleeping.get({ timeout: 4000 }));
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      console.log("We lacked patience and got a TimeoutError");
    }

    console.log("For the moment, the pool remains available for more work");
    console.log(await pool.apply("f", [7]));
  }
  // exiting the block has stopped the pool
  console.log("Now the pool is closed and no longer available");
}
