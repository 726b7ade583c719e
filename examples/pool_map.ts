/**
 * The `multiprocessing` documentation's first example: `Pool(5).map(f,
 * [1, 2, 3])`.
 *
 * Run with `deno run -A examples/pool_map.ts`.
 *
 * @module
 */
import { isMainModule, Pool } from "../mod.ts";

/** Squares its argument. */
export function f(x: number): number {
  return x * x;
}

if (isMainModule(import.meta)) {
  await using p = new Pool<typeof import("./pool_map.ts")>(import.meta.url, {
    processes: 5,
  });
  console.log(await p.map("f", [1, 2, 3]));
}
