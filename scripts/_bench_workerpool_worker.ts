// The worker script of workerpool in the pool benchmark.
import workerpool from "workerpool";

function noop(x: number): number {
  return x;
}

workerpool.worker({ noop });
