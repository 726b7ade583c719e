/**
 * The tour's Queue example: the parent makes a queue and passes it to two
 * child processes, one writing A, B and C into it, the other reading them
 * out; the reader loops forever, so the parent terminates it once the writer
 * is done.
 *
 * Run with `deno run -A examples/queue_write_read.ts`.
 *
 * @module
 */
import { currentProcess, isMainModule, Process, Queue } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The writer: puts each value, then sleeps a moment. */
export async function write(q: Queue<string>): Promise<void> {
  console.log(`Process to write: ${currentProcess().pid}`);
  for (const value of ["A", "B", "C"]) {
    console.log(`Put ${value} to queue...`);
    await q.put(value);
    // Python sleeps random() seconds; a shorter wait keeps the tour brisk.
    await sleep(100 + Math.random() * 400);
  }
}

/** The reader: gets values forever. */
export async function read(q: Queue<string>): Promise<never> {
  console.log(`Process to read: ${currentProcess().pid}`);
  for (;;) {
    const value = await q.get();
    console.log(`Get ${value} from queue.`);
  }
}

if (isMainModule(import.meta)) {
  // The parent makes the queue and passes it to each child.
  const q = new Queue<string>();
  const pw = new Process({
    module: import.meta.url,
    target: "write",
    args: [q],
  });
  const pr = new Process({
    module: import.meta.url,
    target: "read",
    args: [q],
  });
  // Start the writer, then the reader.
  pw.start();
  pr.start();
  // Wait for the writer to finish.
  await pw.join();
  // The reader loops forever: it cannot be waited for, only terminated.
  pr.terminate();
  await pr.join();
}
