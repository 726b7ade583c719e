import { describe, test } from "node:test";
import {
  equal,
  match,
  notEqual,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import process from "node:process";
import { currentProcess, Process } from "../mod.ts";
import { childPids, eventually, fixtureUrl, runScript } from "./_helpers.ts";

const tasks = fixtureUrl("tasks");

for (const backend of ["process", "worker"] as const) {
  describe(`Process, ${backend} backend`, () => {
    test("start, join, exitCode, pid, name, currentProcess inside", async () => {
      const result = await runScript("./fixtures/process_report", backend);
      equal(result.returncode, 0);
      const lines = result.stdout!.trim().split("\n");
      const named = lines[0]!.match(/^named Reporter (\d+) (.*)$/);
      ok(named, lines[0]);
      equal(named[2], '{"items":[1,2]}', "args were copied at start()");
      equal(lines[1], "inline 42");
      const last = lines[2]!.match(
        /^parent (\d+) codes 0 0 1 names Reporter Process-(\d+)$/,
      );
      ok(last, lines[2]);
      if (backend === "process") notEqual(named[1], last[1]);
      else equal(named[1], last[1]);
      match(result.stderr!, /TypeError: target exploded/);
    });

    test("terminate, kill, isAlive, join with a timeout", async () => {
      const forever = {
        module: tasks,
        target: "sleep",
        args: [60_000],
        backend,
      };
      const p = new Process(forever);
      equal(p.isAlive(), false);
      equal(p.pid, null);
      p.start();
      equal(p.isAlive(), true);
      ok(p.pid! > 0);
      if (backend === "process") {
        notEqual(p.pid, process.pid);
        ok(childPids().includes(p.pid!));
      } else {
        equal(p.pid, process.pid);
      }
      await p.join({ timeout: 50 });
      equal(p.isAlive(), true);
      equal(p.exitCode, null);
      p.terminate();
      await p.join();
      equal(p.exitCode, -15);
      equal(p.isAlive(), false);
      p.kill(); // a no-op once ended
      const k = new Process(forever);
      k.start();
      k.kill();
      await k.join();
      equal(k.exitCode, -9);
    });

    test("join with a timeout of Infinity or 2^31 ms or more waits for the end", async () => {
      for (const timeout of [Infinity, 2 ** 31, 1e15]) {
        const p = new Process({
          module: tasks,
          target: "sleep",
          args: [50],
          backend,
        });
        p.start();
        // setTimeout would fire at once for these and join return early.
        await p.join({ timeout });
        equal(p.isAlive(), false);
        equal(p.exitCode, 0);
      }
    });

    test("exit codes of the target", async () => {
      const exits = new Process({
        module: tasks,
        target: "exitWith",
        args: [7],
        backend,
      });
      exits.start();
      await exits.join();
      equal(exits.exitCode, 7);
      const fine = new Process({ target: () => {}, backend });
      fine.start();
      await fine.join();
      equal(fine.exitCode, 0);
    });

    test("await using kills a running process and leaves nothing behind", async () => {
      let pid = 0;
      let proc: Process;
      {
        await using p = new Process({
          module: tasks,
          target: "sleep",
          args: [60_000],
          backend,
        });
        p.start();
        pid = p.pid!;
        proc = p;
      }
      equal(proc.exitCode, -9);
      if (backend === "process") {
        ok(await eventually(() => !childPids().includes(pid)));
      }
    });

    test("bad input", async () => {
      throws(
        () => new Process({ target: 42 as unknown as string, backend }),
        /Expected target to be an export name or a function, got number/,
      );
      throws(
        () => new Process({ target: "runProc", backend }),
        /pass the module that exports it as module/,
      );
      throws(
        () => new Process({ target: () => {}, backend: "thread" as "worker" }),
        /Expected backend to be "process" or "worker"/,
      );
      const p = new Process({ target: () => {}, backend });
      await rejects(p.join(), /it was not started: call start\(\) first/);
      p.start();
      throws(() => p.start(), /Cannot start Process-\d+ twice/);
      await p.join();
      const unclonable = new Process({
        target: (f: unknown) => f,
        args: [() => 1],
        backend,
      });
      throws(() => unclonable.start(), /Cannot send argument 0 \(a function\)/);
    });
  });
}

describe("currentProcess", () => {
  test("is MainProcess in the main program", () => {
    equal(currentProcess().name, "MainProcess");
    equal(currentProcess().pid, process.pid);
  });
});
