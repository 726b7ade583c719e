/**
 * Python's `Manager().dict()` filled by a process pool: four worker
 * processes each store what they computed in one dict that lives in this
 * process, and count their tasks in a Manager value with an atomic
 * `update`. Then, as in Python's docs, a `Process` edits a Manager dict and
 * list that it got as arguments.
 *
 * Run with `deno run -A examples/manager_dict.ts`.
 *
 * @module
 */
import process from "node:process";
import {
  type DictProxy,
  isMainModule,
  type ListProxy,
  Manager,
  Pool,
  Process,
  type ValueProxy,
} from "../mod.ts";

/** Stores `n`'s square and which process computed it; counts the task. */
export async function square(
  squares: DictProxy<number, number>,
  workers: DictProxy<number, number>,
  tasks: ValueProxy<number>,
  n: number,
): Promise<void> {
  await squares.set(n, n * n);
  await workers.set(n, process.pid);
  await tasks.update((count) => count + 1);
}

/** Python's docs: `d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse()`. */
export async function f(
  d: DictProxy<number | string, string | number | null>,
  l: ListProxy<number>,
): Promise<void> {
  await d.set(1, "1");
  await d.set("2", 2);
  await d.set(0.25, null);
  const items = await l.slice();
  for (const [i, item] of items.reverse().entries()) await l.set(i, item);
}

if (isMainModule(import.meta)) {
  await using manager = new Manager();
  const squares = manager.dict<number, number>();
  const workers = manager.dict<number, number>();
  const tasks = manager.value(0);
  {
    await using pool = new Pool<typeof import("./manager_dict.ts")>(
      import.meta.url,
      { processes: 4, backend: "process" },
    );
    const numbers = Array.from({ length: 10 }, (_, i) => i);
    await pool.starmap(
      "square",
      numbers.map((n) => [squares, workers, tasks, n]),
    );
  }
  const sorted = (await squares.entries()).sort(([a], [b]) => a - b);
  console.log(sorted.map(([n, square]) => `${n}: ${square}`).join(", "));
  console.log(`${await tasks.get()} tasks`);
  const pids = new Set(await workers.values());
  console.log(pids.has(process.pid) ? "computed here" : "computed elsewhere");

  const d = manager.dict<number | string, string | number | null>();
  const l = manager.list(Array.from({ length: 10 }, (_, i) => i));
  const p = new Process({ module: import.meta.url, target: "f", args: [d, l] });
  p.start();
  await p.join();
  console.log(JSON.stringify(await d.entries())); // Python: {1: '1', '2': 2, 0.25: None}
  console.log(JSON.stringify(await l.slice())); // Python: [9, 8, 7, …, 0]
}
