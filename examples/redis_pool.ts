/**
 * The tour's `Pool(processes=4)` example on many machines: the same calls
 * on a Redis pool served by two worker hosts (`multiproc-worker`), each a
 * separate process as on a separate machine, with two workers each. The
 * hosts serve the tasks of `pool_tour.ts`.
 *
 * It uses the Redis server that `REDIS_URL` names, or starts a temporary
 * `redis-server` on a free loopback port (Debian's package `redis-server`)
 * and stops it at the end.
 *
 * Run with `deno run -A examples/redis_pool.ts`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Pool, TimeoutError } from "../redis.ts";

type Tasks = typeof import("./pool_tour.ts");
const typescript = import.meta.url.endsWith(".ts");
const extension = typescript ? ".ts" : ".js";

/** A free loopback port, from the kernel. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The argv that runs `file` (next to this one) in this runtime. */
function command(file: string, ...args: string[]): string[] {
  const path = new URL(file, import.meta.url).pathname;
  return typescript
    ? [process.execPath, "run", "-A", path, ...args]
    : [process.execPath, path, ...args];
}

/** A started program and a promise of its exit. */
interface Started {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Starts a program whose stderr lines are shown with `label`. */
function start(argv: string[], label: string): Started {
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve())
  );
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    for (const line of text.trimEnd().split("\n")) {
      console.log(`  [${label}] ${line}`);
    }
  });
  return { child, exited };
}

/** Waits until the server at `port` answers, for up to ten seconds. */
async function waitForServer(port: number): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const answered = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (answered) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server did not answer on port ${port}`);
}

let server: Started | undefined;
let dir: string | undefined;
let redis = process.env.REDIS_URL;
if (redis === undefined) {
  const port = await freePort();
  dir = mkdtempSync(join(tmpdir(), "multiproc-demo-redis-"));
  const child = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
  ], { stdio: "ignore" });
  server = {
    child,
    exited: new Promise((resolve) => child.once("exit", () => resolve())),
  };
  child.on("error", (error) => {
    console.error(
      `Cannot start redis-server (${error.message}): install Debian's package redis-server, or set REDIS_URL`,
    );
    process.exit(1);
  });
  await waitForServer(port);
  redis = `redis://127.0.0.1:${port}`;
}

const name = `tour-${process.pid}`;
const hosts = ["host-a", "host-b"].map((label) =>
  start(
    command(
      `../worker${extension}`,
      "--redis",
      redis!,
      "--name",
      name,
      "--processes",
      "2",
      new URL(`./pool_tour${extension}`, import.meta.url).pathname,
    ),
    label,
  )
);

try {
  // two hosts of two workers each, fed from Redis
  await using pool = new Pool<Tasks>({ redis, name });
  while ((await pool.stats()).hosts.length < 2) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  // print "[0, 1, 4,..., 81]"
  console.log(await pool.map("f", Array.from({ length: 10 }, (_, i) => i)));

  // print same numbers in arbitrary order
  for await (
    const i of pool.imapUnordered("f", Array.from({ length: 10 }, (_, i) => i))
  ) {
    console.log(i);
  }

  // evaluate "f(20)" asynchronously, on one host
  const res = pool.applyAsync("f", [20]);
  console.log(await res.get({ timeout: 10_000 })); // prints "400"

  // the PIDs of the hosts that ran 8 slow calls: both take part
  const pids = await pool.map("slowGetpid", Array.from({ length: 8 }), {
    chunksize: 1,
  });
  console.log("PIDs of the hosts:", [...new Set(pids)].sort());

  // make a single worker sleep for 5 secs
  const sleeping = pool.applyAsync("sleep", [5]);
  try {
    console.log(await sleeping.get({ timeout: 4000 }));
  } catch (error) {
    if (!(error instanceof TimeoutError)) throw error;
    console.log("We lacked patience and got a TimeoutError");
  }
  console.log("For the moment, the pool remains available for more work");
  console.log(await pool.apply("f", [7]));
  console.log(await pool.stats().then((stats) => stats.hosts.length), "hosts");
} finally {
  // exiting the block has stopped the pool; the hosts stop on SIGTERM
  for (const host of hosts) host.child.kill("SIGTERM");
  await Promise.all(hosts.map((host) => host.exited));
  server?.child.kill("SIGTERM");
  await server?.exited;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
console.log("Now the pool is closed and the hosts have stopped");
