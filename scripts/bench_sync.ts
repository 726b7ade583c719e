/**
 * The lock benchmark: acquire+release of an uncontended `Lock` in one
 * thread, and a `Lock` that two worker threads or two worker processes take
 * turns on, for multiproc on Deno (sources) and Node (npm build), beside
 * Python's `multiprocessing.Lock` in one run. Writes the "sync" section of
 * BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno run -A scripts/bench_sync.ts`); `BENCH_ROUNDS` (default 5)
 * tunes it.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildNpm,
  type CaseResult,
  groupOf,
  machineLine,
  runEverywhere,
  table,
  type Unit,
  writeSection,
} from "./_bench_report.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const rounds = Deno.env.get("BENCH_ROUNDS") ?? "5";
Deno.env.set("BENCH_ROUNDS", rounds);
const UNCONTENDED = 1_000_000;
const TURNS = 10_000;

await buildNpm(root);

console.error("Running the lock cases on Deno, Node and Python…");
const all: CaseResult[] = await runEverywhere(root, "sync");

function group(prefix: string): CaseResult[] {
  return groupOf(all, prefix);
}

function rate(count: number): Unit {
  return {
    title: "acquire+release/s",
    convert: (ms: number) => count / (ms / 1000),
    higherIsBetter: true,
  };
}

const HANDOFFS: Unit = {
  title: "handoffs/s",
  convert: (ms: number) => 1000 / ms,
  higherIsBetter: true,
};

/** Pairs/s beside handoffs/s (how often the lock changed hands) for one contended case. */
function contendedTables(cases: CaseResult[], handoffs: CaseResult[]): string {
  return `${table(cases, rate(2 * TURNS), isPython, false)}

Handoffs (the lock went from one worker to the other) in the same rounds:

${table(handoffs, HANDOFFS, isPython, false)}`;
}

function isPython(result: CaseResult): boolean {
  return result.runtime.startsWith("Python");
}

const report = `## Sync

Made by \`deno run -A scripts/bench_sync.ts\` on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved), with min and max; the last column compares
with Python's \`multiprocessing.Lock\` in the same situation (between processes for the thread case too, as
Python's threads share its GIL).

### Uncontended: ${
  UNCONTENDED.toLocaleString("en")
} \`await lock.acquire(); lock.release()\` in one thread

${table(group("uncontended"), rate(UNCONTENDED), isPython, false)}

### Contended: two worker threads share one lock, ${
  TURNS.toLocaleString("en")
} pairs each

${
  contendedTables(
    [...group("thread"), ...group("process").filter(isPython)],
    [
      ...group("handoffs thread"),
      ...group("handoffs process").filter(isPython),
    ],
  )
}

### Contended: two worker processes share one lock, ${
  TURNS.toLocaleString("en")
} pairs each

${contendedTables(group("process"), group("handoffs process"))}

Each worker acquires and releases in a loop and notes the time of each acquire (handoffs are counted by
merging the two workers' times; Python counts them in shared memory under the lock). A worker thread mostly
finds the lock free (a few \`Atomics\` operations on shared memory) and, when not, sleeps in
\`Atomics.waitAsync\` until the release hands it the lock (wake-ups are first in, first out). A process has no
shared memory with its parent, so the parent holds the lock for it: the first acquire is a round trip that
leases the lock to the process, whose next acquires and releases are local until a waiter comes; the parent
then revokes the lease, and the holder hands the lock back at its next release, once its event loop reads the
revocation (or at an acquire more than 2 ms after its release). A worker in a tight loop reads it only when its
loop ends, so the lock changes hands rarely, as with Python's unfair semaphore; pairs/s then measure the local
path, handoffs/s the fairness. The spread between rounds is the other side of first-in-first-out: once both
processes wait at every release (after a revocation, or when the OS paused the holder for over 2 ms), each
release hands the lock to the other process through the parent, a round trip per pair, until one of them
finds nobody waiting and gets the lease again. The machine was shared with other jobs while these ran.
`;
await writeSection(join(root, "BENCHMARKS.md"), "sync", report);
console.log(report);
