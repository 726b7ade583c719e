/**
 * The queue benchmark: a producer and a consumer pass 1 000 000 small ints
 * between two worker threads, 200 000 between two processes, and 2 000
 * items of 100 KiB either way, through `Queue`, `SimpleQueue` and `Pipe`,
 * for multiproc on Deno (sources) and Node (npm build), beside a raw
 * MessagePort between two threads and Python's `multiprocessing` Queue,
 * SimpleQueue and Pipe between two processes, in one run. Writes the "queue"
 * section of BENCHMARKS.md.
 *
 * Run with `npm run bench` (or `deno task bench`); `BENCH_ROUNDS` (default
 * 5) tunes it.
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
const THREAD_ITEMS = 1_000_000;
const PROCESS_ITEMS = 200_000;
const BIG_ITEMS = 2_000;
const BIG_BYTES = 100 * 1024;

await buildNpm(root);

console.error("Running the queue cases on Deno, Node and Python…");
const all: CaseResult[] = await runEverywhere(root, "queue");

function group(prefix: string): CaseResult[] {
  return groupOf(all, prefix);
}

function rate(count: number): Unit {
  return {
    title: "items/s",
    convert: (ms: number) => count / (ms / 1000),
    higherIsBetter: true,
  };
}

const throughput: Unit = {
  title: "MB/s",
  convert: (ms: number) => BIG_ITEMS * BIG_BYTES / 1e6 / (ms / 1000),
  higherIsBetter: true,
};

function isRaw(result: CaseResult): boolean {
  return result.library.startsWith("raw");
}

function isPythonQueue(result: CaseResult): boolean {
  return result.library === "python3 Queue";
}

const report = `## Queue

Made by \`npm run bench\` (\`scripts/bench_queue.ts\`) on ${machineLine()}.
Each figure is the median of ${rounds} rounds (cases interleaved), with min and max. A producer task and a
consumer task run on the two workers of a pool (created before timing), each alone on its worker; a round ends
when the consumer has every item. Python's processes are started before timing and wait for a signal.

### ${
  THREAD_ITEMS.toLocaleString("en")
} small ints between two worker threads (vs a raw MessagePort, one message per item, same runtime)

${table(group("thread"), rate(THREAD_ITEMS), isRaw)}

### ${
  PROCESS_ITEMS.toLocaleString("en")
} small ints between two processes (vs Python's \`multiprocessing.Queue\`)

${table(group("process"), rate(PROCESS_ITEMS), isPythonQueue, false)}

A process reaches the queue through its parent: puts travel in batches and the consumer fetches ahead, so
each item crosses two IPC channels without a round trip of its own.

### ${
  BIG_ITEMS.toLocaleString("en")
} items of 100 KiB (\`Uint8Array\`, \`bytes\` in Python)

Between two worker threads (vs a raw MessagePort, same runtime):

${table(group("big thread"), throughput, isRaw)}

Between two processes (vs Python's \`multiprocessing.Queue\`):

${table(group("big process"), throughput, isPythonQueue, false)}

Between threads, writers and readers hold separate locks (a two-lock ring), so the producer's copy in and the
consumer's copy out overlap, as a MessagePort's serialisation and copy do. Between processes, an item of
64 KiB or more goes from producer to consumer through a file in \`/dev/shm\`, and only a stub naming it crosses
the parent; see "Large items" (\`scripts/bench_large.ts\`) for 10 MiB items, pipes and a raw pipe beside them.
`;
await writeSection(join(root, "BENCHMARKS.md"), "queue", report);
console.log(report);
