/**
 * The queue benchmark cases for one runtime: prints `{ runtime, cases }` as
 * JSON, with the milliseconds of each round per case. A producer task and a
 * consumer task run on two workers of one pool (thread or process backend),
 * each alone on its worker, and pass items through a `Queue`, `SimpleQueue`
 * or `Pipe`. Run by `scripts/bench_queue.ts` under Deno (sources) and Node
 * (npm build).
 *
 * @module
 */
import process from "node:process";
import { MessageChannel, Worker } from "node:worker_threads";
import { type Connection, Pipe, Pool, Queue, SimpleQueue } from "../mod.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
/** Small items between threads, between processes; 100 KiB items. */
export const THREAD_ITEMS = 1_000_000;
export const PROCESS_ITEMS = 200_000;
export const BIG_ITEMS = 2_000;
export const BIG_BYTES = 100 * 1024;
const isDeno = "Deno" in globalThis;

/** Runs alone on its worker (a task with a timeout is never batched with others). */
const alone = { timeout: 3_600_000 };

type Channel = "Queue" | "SimpleQueue" | "Pipe";
type End = Queue<unknown> | SimpleQueue<unknown> | Connection<unknown>;

/** The sending and the receiving end of a fresh channel. */
function channel(kind: Channel): [End, End] {
  if (kind === "Pipe") {
    const [receiving, sending] = Pipe({ duplex: false });
    return [sending, receiving];
  }
  const q = kind === "Queue" ? new Queue() : new SimpleQueue();
  return [q, q];
}

async function produce(
  into: End,
  count: number,
  size: number,
): Promise<void> {
  const item = size === 0 ? 0 : new Uint8Array(size);
  if ("send" in into) {
    for (let i = 0; i < count; i++) into.send(size === 0 ? i : item);
  } else {
    for (let i = 0; i < count; i++) await into.put(size === 0 ? i : item);
  }
}

async function consume(
  from: End,
  count: number,
): Promise<void> {
  if ("recv" in from) {
    for (let i = 0; i < count; i++) await from.recv();
  } else {
    for (let i = 0; i < count; i++) await from.get();
  }
}

function passThrough(
  pool: Pool,
  kind: Channel,
  count: number,
  size = 0,
): () => Promise<unknown> {
  return () => {
    const [sending, receiving] = channel(kind);
    return Promise.all([
      pool.apply(produce, [sending, count, size], alone),
      pool.apply(consume, [receiving, count], alone),
    ]);
  };
}

/** Two threads that pass items over a MessagePort, one message per item. */
class RawPorts {
  #workers: [Worker, Worker];
  constructor() {
    const url = new URL(
      `./_bench_raw_port${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`,
      import.meta.url,
    );
    this.#workers = [new Worker(url), new Worker(url)];
  }

  pass(count: number, size = 0): () => Promise<unknown> {
    return () => {
      const [sender, receiver] = this.#workers;
      const { port1, port2 } = new MessageChannel();
      const done = new Promise((resolve) => receiver.once("message", resolve));
      receiver.postMessage({ port: port2, role: "receive", count, size }, [
        port2,
      ]);
      sender.postMessage({ port: port1, role: "send", count, size }, [port1]);
      return done;
    };
  }

  close(): Promise<unknown> {
    return Promise.all(this.#workers.map((worker) => worker.terminate()));
  }
}

const raw = new RawPorts();
const threads = new Pool({ processes: 2 });
const processes = new Pool({ processes: 2, backend: "process" });

const cases: Record<string, () => Promise<unknown>> = {
  "thread: raw MessagePort": raw.pass(THREAD_ITEMS),
  "big thread: raw MessagePort": raw.pass(BIG_ITEMS, BIG_BYTES),
};
for (const kind of ["Queue", "SimpleQueue", "Pipe"] as Channel[]) {
  cases[`thread: ${kind}`] = passThrough(threads, kind, THREAD_ITEMS);
  cases[`process: ${kind}`] = passThrough(processes, kind, PROCESS_ITEMS);
}
cases["big thread: Queue"] = passThrough(
  threads,
  "Queue",
  BIG_ITEMS,
  BIG_BYTES,
);
cases["big process: Queue"] = passThrough(
  processes,
  "Queue",
  BIG_ITEMS,
  BIG_BYTES,
);

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
await Promise.all([threads.terminate(), processes.terminate(), raw.close()]);
console.log(JSON.stringify({
  runtime: isDeno ? `Deno ${Deno.version.deno}` : `Node ${process.version}`,
  cases: results,
}));
