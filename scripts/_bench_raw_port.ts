// A raw worker_threads baseline for the queue benchmark: one thread posts
// `count` items to another over a MessagePort, one message per item.
import { parentPort } from "node:worker_threads";

interface Job {
  port: MessagePort;
  role: "send" | "receive";
  count: number;
  size: number;
}

parentPort!.on("message", ({ port, role, count, size }: Job) => {
  if (role === "send") {
    const item = size === 0 ? 0 : new Uint8Array(size);
    for (let i = 0; i < count; i++) port.postMessage(size === 0 ? i : item);
    return;
  }
  let received = 0;
  port.onmessage = () => {
    if (++received === count) {
      port.close();
      parentPort!.postMessage("done");
    }
  };
});
