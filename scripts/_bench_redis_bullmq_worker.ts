// A BullMQ worker process for the Redis benchmark (one of its two "hosts"):
// `<runtime> _bench_redis_bullmq_worker.ts URL QUEUE CONCURRENCY` serves the
// queue's jobs (noop: the data's x; square: its xs squared), says "ready" on
// stderr once connected, and closes on SIGTERM.
import process from "node:process";
import { type Job, Worker } from "bullmq";

const [url = "", queue = "", concurrency = "2"] = process.argv.slice(2);
const { hostname, port } = new URL(url);

// The same work as the multiproc tasks (scripts/_bench_redis_tasks.ts).
function run(job: Job): Promise<number | number[]> {
  return Promise.resolve(
    job.name === "square"
      ? (job.data.xs as number[]).map((x) => x * x)
      : job.data.x as number,
  );
}

const worker = new Worker(queue, run, {
  connection: {
    host: hostname,
    port: Number(port),
    maxRetriesPerRequest: null,
  },
  concurrency: Number(concurrency),
});
await worker.waitUntilReady();
process.on("SIGTERM", () => {
  worker.close().then(() => process.exit(0), () => process.exit(1));
});
console.error("ready");
