/**
 * An `Event` to stop workers: two processes work in a loop until the parent
 * sets the event, then report how many rounds they did.
 *
 * Run with `deno run -A examples/sync_event_stop.ts`.
 *
 * @module
 */
import { Event, isMainModule, Pool } from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Works in rounds until `stop` is set; returns how many it did. */
export async function work(stop: Event, name: string): Promise<string> {
  let rounds = 0;
  // wait() doubles as the pause between rounds: it returns true once set.
  while (!await stop.wait({ timeout: 10 })) rounds++;
  return `${name} stopped after ${rounds} rounds`;
}

if (isMainModule(import.meta)) {
  const stop = new Event();
  await using pool = new Pool<typeof import("./sync_event_stop.ts")>(
    import.meta.url,
    { processes: 2, backend: "process" },
  );
  const workers = pool.starmap("work", [[stop, "worker 1"], [
    stop,
    "worker 2",
  ]]);
  await sleep(300);
  console.log("setting the event");
  stop.set();
  for (const line of await workers) console.log(line);
}
