// The test helper that starts worker hosts (tests/_redis_hosts.ts): a host
// and its local workers die with the test process that started them, even
// when it is SIGKILLed, as the test's redis-server does.
import { after, before, describe, test } from "node:test";
import { deepEqual, equal, ok } from "node:assert/strict";
import process from "node:process";
import { PIPE, Popen } from "../mod.ts";
import {
  childPids,
  eventually,
  networkScriptCommand,
  processesMatching,
  processExists,
} from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis_server.ts";

let names = 0;

describe("startHost: worker hosts for the Redis tests", () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  // An empty PATH hides setpriv: the helper falls back to its watcher.
  for (
    const [guard, env] of [
      ["", {}],
      [", without setpriv (a watcher)", { PATH: "" }],
    ] as const
  ) {
    test(`a SIGKILLed test process leaves no host nor host worker${guard}`, async () => {
      const name = `orphan-${process.pid}-${++names}`;
      await using parent = new Popen(
        networkScriptCommand(
          "./fixtures/redis_host_forgotten",
          server.url,
          name,
        ),
        { stdout: PIPE, stderr: PIPE, text: true, env },
      );
      const { value } = await parent.lines().next();
      if (value === undefined) {
        throw new Error(
          `The fixture failed: ${await new Response(parent.stderr).text()}`,
        );
      }
      const { pid } = JSON.parse(value) as { pid: number };
      // The host (named by its --name in /proc) and its two worker processes.
      deepEqual(processesMatching(`--name ${name}`), [pid]);
      ok(
        await eventually(() => childPids(pid).length === 2),
        `host ${pid} did not start its 2 workers: ${childPids(pid)}`,
      );
      const workers = childPids(pid);
      parent.kill();
      equal(await parent.wait(), -9);
      ok(
        await eventually(() =>
          processesMatching(`--name ${name}`).length === 0 &&
          [pid, ...workers].every((child) => !processExists(child))
        ),
        `host ${pid} or its workers ${workers} outlived their SIGKILLed test process`,
      );
    });
  }
});
