/**
 * The tour's lesson on copies: each task gets a copy of `ls` and sets
 * `ls[i] = i` on it; the caller's `ls` never changes.
 *
 * Run with `deno run -A examples/pool_copy_semantics.ts`.
 *
 * @module
 */
import { isMainModule, Pool } from "../mod.ts";

/** Changes its own copy of the list. */
export function func(ls: number[], i: number): number[] {
  console.log("before", ls);
  ls[i] = i;
  console.log("after", ls);
  return ls;
}

if (isMainModule(import.meta)) {
  const ls = [0, 0, 0, 0, 0];
  const p = new Pool<typeof import("./pool_copy_semantics.ts")>(
    import.meta.url,
  );
  const res = [];
  for (let i = 0; i < 5; i++) res.push(p.applyAsync("func", [ls, i]));
  p.close();
  await p.join();
  console.log("\nAfter all", ls);
  console.log(await Promise.all(res.map((x) => x.get())));
}
