// redis.ts against servers that need credentials: a password given in the
// URL (Pool with a worker host, Queue, serve()), and TLS (rediss://) with a
// throwaway CA that the processes trust through NODE_EXTRA_CA_CERTS, which
// Node, Deno and Bun read as they start. A wrong password or an untrusted
// certificate fails the first call with a message that names the server,
// never the password.
import { after, before, describe, test } from "node:test";
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import process from "node:process";
import { Pool, Queue, serve } from "../redis.ts";
import { run } from "../subprocess.ts";
import { networkScriptCommand } from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis_server.ts";
import {
  HostProcess,
  startHost,
  tasksModule,
  workerCommand,
} from "./_redis_hosts.ts";
import type * as Tasks from "./fixtures/tasks.ts";

type TaskModule = typeof Tasks;

let names = 0;
// Each test has its own pool and queue names.
function uniqueName(): string {
  return `auth-${process.pid}-${++names}`;
}

// Characters that must be escaped in a URL, to show they reach the server.
const PASSWORD = "s3cret:p@ss/w%rd";

describe("redis: a server that requires a password", () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ requirepass: PASSWORD });
  });
  after(async () => {
    await server.stop();
  });

  test("Pool with a worker host, Queue and serve() work with the password in the URL", async () => {
    ok(server.url.includes(`:${encodeURIComponent(PASSWORD)}@`), server.url);
    const name = uniqueName();
    await using host = await startHost(server.url, name, { processes: 1 });
    {
      await using pool = new Pool<TaskModule>({ redis: server.url, name });
      deepEqual(await pool.map("square", [1, 2, 3], { chunksize: 1 }), [
        1,
        4,
        9,
      ]);
      equal((await pool.stats()).hosts.length, 1);
    }
    // The host's log names the server, not the password.
    const serving = await host.waitFor(/serving/);
    ok(serving.includes(`127.0.0.1:${server.port}`), serving);
    ok(!serving.includes("s3cret"), serving);

    await using producer = new Queue<string>({ redis: server.url, name });
    await using consumer = new Queue<string>({ redis: server.url, name });
    await producer.put("with a password");
    equal(await consumer.get({ timeout: 30_000 }), "with a password");

    const served = uniqueName();
    await using _host = await serve(tasksModule(), {
      redis: server.url,
      name: served,
      processes: 1,
    });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name: served,
    });
    equal(await pool.apply("add", [20, 22]), 42);
  });

  test("a missing or wrong password fails the first call, naming the server without the password", async () => {
    const name = uniqueName();
    for (
      const url of [
        `redis://127.0.0.1:${server.port}`,
        `redis://:not-the-password@127.0.0.1:${server.port}`,
      ]
    ) {
      const clear = (error: Error): boolean => {
        ok(!error.message.includes("not-the-password"), error.message);
        ok(
          error.message.includes(`Cannot connect to Redis at redis://`) &&
            error.message.includes(`127.0.0.1:${server.port}`),
          error.message,
        );
        return true;
      };
      {
        await using pool = new Pool({ redis: url, name });
        await rejects(pool.apply("square", [1]), clear);
      }
      await using queue = new Queue({ redis: url, name });
      await rejects(queue.put(1), clear);
      await rejects(serve(tasksModule(), { redis: url, name }), clear);
    }
  });
});

describe("redis: TLS (rediss://)", () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ tls: true });
  });
  after(async () => {
    await server.stop();
  });

  test("Pool with a worker host, and Queue, over rediss:// with the CA trusted", async () => {
    ok(server.url.startsWith("rediss://"), server.url);
    const name = uniqueName();
    const trust = `NODE_EXTRA_CA_CERTS=${server.ca}`;
    await using host = new HostProcess([
      "env",
      trust,
      ...workerCommand(
        "--redis",
        server.url,
        "--name",
        name,
        "--processes",
        "1",
        tasksModule(),
      ),
    ]);
    await host.waitFor(/serving/);
    const client = await run(
      networkScriptCommand("./fixtures/redis_tls_client", server.url, name),
      {
        env: { NODE_EXTRA_CA_CERTS: server.ca! },
        capture: true,
        text: true,
        timeout: 120_000,
      },
    );
    equal(client.returncode, 0, client.stderr ?? "");
    deepEqual(JSON.parse(client.stdout!), {
      squares: [1, 4, 9, 16],
      hosts: 1,
      item: "over TLS",
    });
  });

  test("a certificate the process does not trust fails the first call, naming the server", async () => {
    const name = uniqueName();
    const untrusted = (error: Error): boolean => {
      ok(
        error.message.includes(
          `Cannot connect to Redis at rediss://127.0.0.1:${server.port}`,
        ) && /certificate/i.test(error.message),
        error.message,
      );
      return true;
    };
    {
      await using pool = new Pool({ redis: server.url, name });
      await rejects(pool.apply("square", [1]), untrusted);
    }
    await using queue = new Queue({ redis: server.url, name });
    await rejects(queue.put(1), untrusted);
  });
});
