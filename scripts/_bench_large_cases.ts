/**
 * The large-item benchmark cases for one runtime: prints `{ runtime, cases }`
 * as JSON, with the milliseconds of each round per case. Items of 100 KiB
 * and 10 MiB go from one process to another through a `Queue` and a `Pipe`
 * (a producer task and a consumer task, each alone on one of two process
 * workers), beside the raw floor (the same bytes through one OS pipe from a
 * child process); `Pool.map` sends 200 `Float64Array`s of 1 MiB to be summed,
 * and gets 200 results of 1 MiB, on both backends. Run by
 * `scripts/bench_large.ts` under Deno (sources) and Node (npm build).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { type Connection, Pipe, Pool, Queue } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
/** How many items of each size make one round (200 MiB either way). */
export const SIZES: Record<string, [count: number, size: number]> = {
  "100 KiB": [2_000, 100 * 1024],
  "10 MiB": [20, 10 * 1024 * 1024],
};
/** Tasks of the Pool cases, and the bytes each sends or returns. */
export const TASKS = 200;
export const TASK_BYTES = 1024 * 1024;
const isDeno = "Deno" in globalThis;

/** Runs alone on its worker (a task with a timeout is never batched with others). */
const alone = { timeout: 3_600_000 };

type Channel = "Queue" | "Pipe";
type End = Queue<Uint8Array> | Connection<Uint8Array>;

async function produce(into: End, count: number, size: number): Promise<void> {
  const item = new Uint8Array(size);
  if ("send" in into) { for (let i = 0; i < count; i++) into.send(item); }
  else for (let i = 0; i < count; i++) await into.put(item);
}

async function consume(from: End, count: number): Promise<number> {
  let bytes = 0;
  if ("recv" in from) {
    for (let i = 0; i < count; i++) bytes += (await from.recv()).length;
  } else {
    for (let i = 0; i < count; i++) bytes += (await from.get()).length;
  }
  return bytes;
}

function passThrough(
  pool: Pool,
  kind: Channel,
  count: number,
  size: number,
): () => Promise<unknown> {
  return async () => {
    let sending: End, receiving: End;
    if (kind === "Pipe") {
      [receiving, sending] = Pipe<Uint8Array>({ duplex: false });
    } else sending = receiving = new Queue<Uint8Array>();
    const [, bytes] = await Promise.all([
      pool.apply(produce, [sending, count, size], alone),
      pool.apply(consume, [receiving, count], alone),
    ]);
    if (bytes !== count * size) throw new Error(`Got ${bytes} bytes`);
  };
}

/** The same bytes through one OS pipe: a child started before timing writes them. */
function rawPipe(count: number, size: number): () => Promise<unknown> {
  const writer = new URL(
    `./_bench_large_writer${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`,
    import.meta.url,
  );
  const [command, args] = isDeno
    ? [Deno.execPath(), ["run", "-A", writer.href]]
    : [process.execPath, [writer.pathname]];
  let next = start();
  function start(): { go(): Promise<void> } {
    const child = spawn(command, [...args, String(count), String(size)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const done = new Promise<void>((resolve, reject) => {
      let bytes = 0;
      child.stdout!.on("data", (chunk: Uint8Array) => bytes += chunk.length);
      child.once("close", () => {
        if (bytes === count * size) resolve();
        else reject(new Error(`Got ${bytes} bytes`));
      });
    });
    return {
      go: () => {
        child.stdin!.end("x");
        return done;
      },
    };
  }
  return async () => {
    const current = next;
    await current.go();
    next = start();
  };
}

function sum(values: Float64Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total;
}

function megabyte(i: number): Uint8Array {
  const bytes = new Uint8Array(1024 * 1024);
  bytes[0] = i;
  return bytes;
}

const processes = new Pool({ processes: 2, backend: "process" });
const threads = new Pool({ processes: 2 });
const arrays = Array.from(
  { length: TASKS },
  (_, i) => new Float64Array(TASK_BYTES / 8).fill(i),
);
const indices = Array.from({ length: TASKS }, (_, i) => i);

const cases: Record<string, () => Promise<unknown>> = {};
for (const [label, [count, size]] of Object.entries(SIZES)) {
  for (const kind of ["Queue", "Pipe"] as Channel[]) {
    cases[`${label}: ${kind}`] = passThrough(processes, kind, count, size);
  }
  cases[`${label}: raw pipe`] = rawPipe(count, size);
}
cases["sums: process"] = () => processes.map(sum, arrays);
cases["sums: worker"] = () => threads.map(sum, arrays);
cases["results: process"] = () => processes.map(megabyte, indices);
cases["results: worker"] = () => threads.map(megabyte, indices);

const results: Record<string, number[]> = {};
for (const [name, fn] of Object.entries(cases)) {
  await fn(); // warm-up
  results[name] = [];
}
for (let round = 0; round < rounds; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    const started = performance.now();
    await fn();
    results[name]!.push(performance.now() - started);
  }
}
await Promise.all([processes.terminate(), threads.terminate()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
// The raw pipe's last writer, started for a round that never came.
process.exit(0);
