// The test helper that starts a real redis-server for the redis.ts tests:
// it answers, keeps append-only data across kill and restart, gives each
// server its own port, and leaves no process or directory behind, not even
// when a test process forgets to stop it or is SIGKILLed.
import { describe, test } from "node:test";
import { deepEqual, equal, notEqual, ok, rejects } from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { PIPE, Popen, run } from "../mod.ts";
import {
  eventually,
  networkScriptCommand,
  processesMatching,
  processExists,
} from "./_helpers.ts";
import { redisCommands, startRedis } from "./_redis_server.ts";

/** The live processes serving `port`: redis-server names itself after it. */
function serving(port: number): number[] {
  return processesMatching(`redis-server 127.0.0.1:${port}`);
}

/** The argv that runs fixture `redis_forgotten`, with the loopback allowed in Deno. */
function forgottenCommand(mode: "exit" | "exit-now" | "wait"): string[] {
  return networkScriptCommand("./fixtures/redis_forgotten", mode);
}

/** What the fixture printed about its server. */
interface Forgotten {
  pid: number;
  port: number;
  dir: string;
}

/**
 * A PATH where redis-server is found and setpriv is not, so the helper
 * falls back to its watcher, as on a machine without util-linux.
 */
function pathWithoutSetpriv(): string {
  const found = (process.env.PATH ?? "").split(":")
    .map((entry) => join(entry, "redis-server"))
    .find((path) => existsSync(path));
  ok(found, "redis-server is on the PATH");
  const dir = mkdtempSync(join(tmpdir(), "multiproc-nosetpriv-"));
  // Deno allows no symlink under a path-scoped --allow-write.
  writeFileSync(
    join(dir, "redis-server"),
    `#!/bin/sh\nexec ${found} "$@"\n`,
    { mode: 0o755 },
  );
  return dir;
}

describe("startRedis: a real redis-server for the tests", () => {
  test("answers PING on a free loopback port, in its own directory, and stop() removes both", async () => {
    const server = await startRedis();
    const { port, dir, pid } = server;
    try {
      equal(server.url, `redis://127.0.0.1:${port}`);
      ok(pid !== undefined && processExists(pid));
      deepEqual(serving(port), [pid]);
      ok(existsSync(dir));
      equal(await server.command("PING"), "PONG");
      // Raw RESP over node:net, as the helper's own readiness check.
      deepEqual(
        await redisCommands(port, [["PING"], ["CONFIG", "GET", "bind"]]),
        ["PONG", ["bind", "127.0.0.1"]],
      );
      deepEqual(await server.command("CONFIG", "GET", "save"), ["save", ""]);
      deepEqual(await server.command("CONFIG", "GET", "appendonly"), [
        "appendonly",
        "no",
      ]);
      deepEqual(await server.command("CONFIG", "GET", "dir"), ["dir", dir]);
    } finally {
      await server.stop();
    }
    equal(server.pid, undefined);
    ok(!processExists(pid!), `redis-server ${pid} is gone`);
    ok(!existsSync(dir), `${dir} is removed`);
    await server.stop();
    await rejects(
      server.restart(),
      /was stopped and its directory removed: start a new one with startRedis\(\)/,
    );
  });

  test("restart() after kill() brings back an append-only key on the same port", async () => {
    await using server = await startRedis({ appendonly: true });
    const { port } = server;
    const first = server.pid!;
    deepEqual(
      await redisCommands(port, [["SET", "greeting", "hello"], [
        "CONFIG",
        "GET",
        "appendfsync",
      ]]),
      ["OK", ["appendfsync", "always"]],
    );
    await server.kill();
    equal(server.pid, undefined);
    ok(!processExists(first), `redis-server ${first} is gone`);
    await rejects(redisCommands(port, [["PING"]]), /ECONNREFUSED|closed/);
    await server.restart();
    equal(server.port, port);
    notEqual(server.pid, first);
    deepEqual(await redisCommands(port, [["GET", "greeting"]]), ["hello"]);
    // A running server restarts too (SIGTERM, then start again).
    const second = server.pid!;
    await server.restart();
    notEqual(server.pid, second);
    ok(!processExists(second));
    equal(await server.command("GET", "greeting"), "hello");
  });

  test("kill() leaves no process, and stop() afterwards removes the directory", async () => {
    const server = await startRedis();
    const { pid, port, dir } = server;
    await server.kill();
    ok(!processExists(pid!), `redis-server ${pid} is gone, not even a zombie`);
    deepEqual(serving(port), []);
    ok(existsSync(dir), "kill() keeps the directory for a restart");
    await server.stop();
    ok(!existsSync(dir));
  });

  test("stop() kills a server that does not end on SIGTERM (SIGKILL after stopTimeout), leaving no process", async () => {
    const server = await startRedis({ stopTimeout: 200 });
    const { pid, port } = server;
    ok(pid !== undefined && processExists(pid));
    // A stopped process does not act on SIGTERM; SIGKILL still ends it.
    process.kill(pid, "SIGSTOP");
    await server.stop();
    equal(processExists(pid), false);
    deepEqual(serving(port), []);
  });

  test("restart() on a port another program took fails saying so, and leaves no process", async () => {
    await using server = await startRedis();
    const { port } = server;
    await server.kill();
    // It hangs up on every client, as a program that is not Redis would.
    const squatter = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) =>
      squatter.listen(port, "127.0.0.1", resolve)
    );
    try {
      await rejects(
        server.restart(),
        new RegExp(`Port ${port} is taken by another program`),
      );
      equal(server.pid, undefined);
      deepEqual(serving(port), []);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    await server.restart();
    equal(await server.command("PING"), "PONG");
  });

  test("two servers at once get different ports and separate data", async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      notEqual(a.port, b.port);
      notEqual(a.dir, b.dir);
      equal(await a.command("SET", "who", "a"), "OK");
      equal(await b.command("GET", "who"), null);
      deepEqual(serving(a.port), [a.pid]);
      deepEqual(serving(b.port), [b.pid]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("requirepass: the url and command() carry the password, a client without it is refused", async () => {
    await using server = await startRedis({ requirepass: "s3cret/pw" });
    equal(server.url, `redis://:s3cret%2Fpw@127.0.0.1:${server.port}`);
    equal(await server.command("PING"), "PONG");
    await rejects(redisCommands(server.port, [["PING"]]), /^Error: NOAUTH/);
    await rejects(
      redisCommands(server.port, [["PING"]], { password: "wrong" }),
      /WRONGPASS/,
    );
  });

  test("a Redis error reply rejects with Redis's message", async () => {
    await using server = await startRedis();
    await rejects(server.command("NOSUCHCOMMAND"), /unknown command/);
    await server.command("SET", "s", "x");
    await rejects(server.command("INCR", "s"), /not an integer/);
  });

  test("without redis-server on the PATH, an error names Debian's package", async () => {
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await rejects(
        startRedis(),
        /redis-server is not on the PATH.*apt-get install redis-server/,
      );
    } finally {
      process.env.PATH = saved;
    }
  });

  test("a test process that calls exit without stop() leaves no server nor directory", async () => {
    const result = await run(forgottenCommand("exit-now"), {
      capture: true,
      text: true,
      timeout: 60_000,
    });
    equal(result.returncode, 0, result.stderr ?? "");
    const { pid, port, dir } = JSON.parse(result.stdout!) as Forgotten;
    ok(
      await eventually(() => serving(port).length === 0),
      `redis-server ${pid} outlived its test process`,
    );
    ok(!existsSync(dir), `${dir} is removed at exit`);
  });

  for (
    const [guard, env] of [
      ["", {}],
      [", without setpriv (a watcher)", { PATH: "" }],
    ] as const
  ) {
    test(`a test process that forgets stop() leaves no server nor directory${guard}`, async () => {
      const path = env.PATH === undefined ? undefined : pathWithoutSetpriv();
      try {
        const result = await run(forgottenCommand("exit"), {
          capture: true,
          text: true,
          timeout: 60_000,
          env: path === undefined ? {} : { PATH: path },
        });
        equal(result.returncode, 0, result.stderr ?? "");
        const { pid, port, dir } = JSON.parse(result.stdout!) as Forgotten;
        ok(pid > 0);
        ok(
          await eventually(() => serving(port).length === 0),
          `redis-server ${pid} outlived its test process`,
        );
        ok(!existsSync(dir), `${dir} is removed at exit`);
      } finally {
        if (path !== undefined) rmSync(path, { recursive: true });
      }
    });

    test(`a SIGKILLed test process leaves no server${guard}`, async () => {
      const path = env.PATH === undefined ? undefined : pathWithoutSetpriv();
      await using parent = new Popen(forgottenCommand("wait"), {
        stdout: PIPE,
        stderr: PIPE,
        text: true,
        env: path === undefined ? {} : { PATH: path },
      });
      let port = 0;
      let dir = "";
      try {
        const { value } = await parent.lines().next();
        if (value === undefined) {
          throw new Error(
            `The fixture failed: ${await new Response(parent.stderr).text()}`,
          );
        }
        const forgotten = JSON.parse(value) as Forgotten;
        ({ port, dir } = forgotten);
        deepEqual(serving(port), [forgotten.pid]);
        parent.kill();
        equal(await parent.wait(), -9);
        ok(
          await eventually(() => serving(port).length === 0),
          `redis-server ${forgotten.pid} outlived its SIGKILLed test process`,
        );
        // Its directory stays until a start cleans up (any start on this
        // machine: another test process may have done it already).
        await using _next = await startRedis();
        ok(!existsSync(dir), "the next start removes the dead one's directory");
      } finally {
        if (dir !== "") rmSync(dir, { recursive: true, force: true });
        if (path !== undefined) rmSync(path, { recursive: true });
      }
    });
  }
});
