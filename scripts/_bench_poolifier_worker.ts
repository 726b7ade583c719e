// The worker script of poolifier in the pool benchmark.
import { ThreadWorker } from "poolifier";

function noop(x?: number): number {
  return x ?? 0;
}

export const worker: ThreadWorker<number, number> = new ThreadWorker(noop);
