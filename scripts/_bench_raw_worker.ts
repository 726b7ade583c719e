// The worker of the hand-written raw worker_threads pool in the pool
// benchmark: one message per task, echoed back.
import { parentPort } from "node:worker_threads";

parentPort!.on("message", (message: [number, number]) => {
  parentPort!.postMessage(message);
});
