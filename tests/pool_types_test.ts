// Type tests: `deno check` and the npm build fail when a line marked as an
// expected error type-checks, or when a line without the mark does not.

import { test } from "node:test";
import { equal } from "node:assert/strict";
import { type AsyncResult, Pool } from "../mod.ts";
import { fixtureUrl } from "./_helpers.ts";

type Tasks = typeof import("./fixtures/tasks.ts");

/** Never called: only its types matter. */
async function typed(pool: Pool<Tasks>): Promise<void> {
  const squares: number[] = await pool.map("square", [1, 2]);
  const sum: number = await pool.apply("add", [1, 2]);
  const slept: AsyncResult<unknown> = pool.applyAsync("sleep", [1]);
  const pid: number = await pool.apply("getpid");
  const sums: number[] = await pool.starmap("add", [[1, 2]]);
  for await (const value of pool.imap("square", [1])) {
    const squared: number = value;
    void squared;
  }
  const inline: string = await pool.apply((a: number, b: string) => b + a, [
    1,
    "x",
  ]);
  void [squares, sum, slept, pid, sums, inline];

  // @ts-expect-error: no such task
  await pool.apply("cube", [1]);
  // @ts-expect-error: wrong argument type
  await pool.apply("square", ["1"]);
  // @ts-expect-error: missing argument
  await pool.apply("add", [1]);
  // @ts-expect-error: the result is a number
  const wrong: string = await pool.apply("square", [2]);
  // @ts-expect-error: map items are the task's first argument
  await pool.map("square", ["a"]);
  // @ts-expect-error: starmap items are argument tuples
  await pool.starmap("add", [[1, "2"]]);
  // @ts-expect-error: not a function export
  await pool.apply("notAFunction");
  // @ts-expect-error: inline arguments are checked too
  await pool.apply((x: number) => x, ["no"]);
  void wrong;
}

test("typed pools check task names, arguments and results", async () => {
  equal(typeof typed, "function");
  await using pool = new Pool<Tasks>(fixtureUrl("tasks"), { processes: 1 });
  const value: number = await pool.apply("square", [3]);
  equal(value, 9);
});
