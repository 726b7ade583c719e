import { describe, test } from "node:test";
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import {
  denoTestFlags,
  runScript,
  runScriptWith,
  runtime,
} from "./_helpers.ts";
import { countPrimes, ProgressLine } from "../examples/progress.ts";

async function runExample(name: string): Promise<string> {
  const result = await runScript(`../examples/${name}`);
  equal(result.stderr, "", `${name} printed nothing to stderr`);
  equal(result.returncode, 0);
  return result.stdout!;
}

describe("examples: the classic tour", () => {
  test("Process runs runProc in a child process with its own pid", async () => {
    const out = await runExample("process_run_proc");
    const match_ = out.match(
      /^Parent process (\d+)\.\nChild process will start\.\nRun child process test \((\d+)\)\.\.\.\nChild process end\.\n$/,
    );
    ok(match_, out);
    notEqual(match_[1], match_[2]);
  });

  test("a writer and a reader process share a queue", async () => {
    const out = await runExample("queue_write_read");
    // The two children start together: either may speak first.
    const writer = out.match(/^Process to write: (\d+)$/m);
    const reader = out.match(/^Process to read: (\d+)$/m);
    ok(writer && reader, out);
    notEqual(writer[1], reader[1]);
    const lines = out.split("\n").filter((line) => /^(Put|Get)/.test(line));
    deepEqual(lines.filter((line) => line.startsWith("Put")), [
      "Put A to queue...",
      "Put B to queue...",
      "Put C to queue...",
    ]);
    deepEqual(lines.filter((line) => line.startsWith("Get")), [
      "Get A from queue.",
      "Get B from queue.",
      "Get C from queue.",
    ]);
    // Each value is read after it was put.
    for (const value of ["A", "B", "C"]) {
      ok(
        lines.indexOf(`Put ${value} to queue...`) <
          lines.indexOf(`Get ${value} from queue.`),
        out,
      );
    }
  });

  test("13 long tasks on a default pool, then their results", async () => {
    const out = await runExample("pool_long_tasks");
    for (let i = 0; i < 13; i++) {
      match(out, new RegExp(`Run task ${i} \\(\\d+\\)\\.\\.\\.`));
      match(out, new RegExp(`Task ${i} runs \\d\\.\\d\\d seconds\\.`));
    }
    const pids = new Set(
      [...out.matchAll(/Run task \d+ \((\d+)\)/g)].map((m) => m[1]),
    );
    ok(pids.size >= 1);
    ok(
      out.indexOf("Waiting for all subprocesses done...") <
        out.indexOf("All subprocesses done."),
    );
    match(out, /All subprocesses done\.\n\[[\s\d,]+\]\n$/);
    deepEqual(
      JSON.parse(out.slice(out.lastIndexOf("[")).replace(/\s+/g, "")),
      [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24],
    );
  });

  test("arguments are copies: ls stays all zeros", async () => {
    const out = await runExample("pool_copy_semantics");
    match(out, /After all \[ 0, 0, 0, 0, 0 \]/);
    equal((out.match(/^before \[ 0, 0, 0, 0, 0 \]$/gm) ?? []).length, 5);
    match(out, /\[ 0, 0, 0, 0, 4 \]\n\]\n$/);
  });

  test("Pool(5).map", async () => {
    equal(await runExample("pool_map"), "[ 1, 4, 9 ]\n");
  });

  test("the Pool(processes=4) tour", async () => {
    const out = await runExample("pool_tour");
    const lines = out.trim().split("\n");
    // imapUnordered's ten lines come right before f(20); runtimes print
    // the map's array above them on one line or several.
    const fAt20 = lines.indexOf("400");
    const unordered = lines.slice(fAt20 - 10, fAt20).map(Number);
    deepEqual(
      unordered.sort((a, b) => a - b),
      [0, 1, 4, 9, 16, 25, 36, 49, 64, 81],
    );
    match(lines.slice(0, fAt20 - 10).join(" "), /^\[\s*0,\s+1,.*81\s*\]$/);
    match(out, /^PID \d+$/m);
    match(
      out,
      /We lacked patience and got a TimeoutError\nFor the moment, the pool remains available for more work\n49\nNow the pool is closed and no longer available\n$/,
    );
  });

  test("subprocess.call prints the command's output and exit code", async () => {
    const out = await runExample("subprocess_call");
    match(out, /^\$ uname -a\n\S+ .*\nExit code: 0\n$/);
  });

  test("Popen + communicate drives an interactive sh", async () => {
    const out = await runExample("subprocess_communicate");
    equal(
      out,
      "$ sh\nHello from sh\n42\n\nStderr: oops\nExit code: 0\n",
    );
  });

  test("the tour runs every section in order", async () => {
    const out = await runExample("tour");
    const titles = [...out.matchAll(/^=== (.*) \(examples\//gm)].map((m) =>
      m[1]
    );
    deepEqual(titles, [
      "Process: run_proc in a child process",
      "Pool: 13 long tasks with applyAsync",
      "Subprocess: call a command",
      "Subprocess: Popen and communicate()",
      "Queue: a writer and a reader process",
      "Arguments are copies: ls[i] = i",
      "Pool(5).map(f, [1, 2, 3])",
      "with Pool(processes=4) as pool",
      "Manager: a dict filled by a process pool",
      "Many machines: the Pool tour on two hosts over Redis",
    ]);
    match(out, /Now the pool is closed and the hosts have stopped\n$/);
  });

  test("the Pool tour on two Redis hosts: the same results, both hosts at work", async () => {
    const flags = runtime === "deno"
      ? [...denoTestFlags, "--allow-net=127.0.0.1"]
      : [];
    const result = await runScriptWith("../examples/redis_pool", flags);
    equal(result.returncode, 0, result.stderr ?? "");
    const out = result.stdout!;
    match(out, /^\[\s*0,\s+1,.*81\s*\]$/ms);
    match(out, /^400$/m);
    const pids = out.match(/^PIDs of the hosts: \[ (\d+), (\d+) \]$/m);
    ok(pids, out);
    notEqual(pids[1], pids[2]);
    match(
      out,
      /We lacked patience and got a TimeoutError\nFor the moment, the pool remains available for more work\n49\n2 hosts\n/,
    );
    match(out, /stopped after \d+ tasks/);
    match(out, /Now the pool is closed and the hosts have stopped\n$/);
  });
});

describe("examples: locks, events and shared memory", () => {
  test("4 threads × 10,000 increments of a Value under its lock: 40000", async () => {
    equal(await runExample("sync_counter"), "40000\n");
  });

  test("a Lock keeps each process's two lines together", async () => {
    const lines = (await runExample("sync_print_lock")).trimEnd().split("\n");
    equal(lines.length, 20);
    const seen = new Set<string>();
    for (let i = 0; i < lines.length; i += 2) {
      const id = lines[i].match(/^hello world (\d)$/)?.[1];
      ok(id !== undefined, lines.join("\n"));
      equal(lines[i + 1], `goodbye world ${id}`);
      seen.add(id);
    }
    equal(seen.size, 10);
  });

  test("an Event stops two worker loops", async () => {
    const out = await runExample("sync_event_stop");
    match(
      out,
      /^setting the event\nworker 1 stopped after \d+ rounds\nworker 2 stopped after \d+ rounds\n$/,
    );
  });
});

describe("examples: managers", () => {
  test("a Manager dict filled by a process pool; Python's docs' Process edits a dict and a list", async () => {
    equal(
      await runExample("manager_dict"),
      [
        "0: 0, 1: 1, 2: 4, 3: 9, 4: 16, 5: 25, 6: 36, 7: 49, 8: 64, 9: 81",
        "10 tasks",
        "computed elsewhere",
        '[[1,"1"],["2",2],[0.25,null]]',
        "[9,8,7,6,5,4,3,2,1,0]",
        "",
      ].join("\n"),
    );
  });
});

describe("examples: progress on long work", () => {
  test("off a terminal, a plain line at every tenth of imapUnordered's tasks", async () => {
    const result = await runScript("../examples/progress", "10");
    equal(result.returncode, 0);
    const limits = Array.from({ length: 10 }, (_, i) => 300_000 + 1_009 * i);
    const primes = limits.reduce((sum, limit) => sum + countPrimes(limit), 0);
    equal(
      result.stdout,
      `${primes} primes below the 10 limits, counted apiece\n`,
    );
    // No carriage returns or escape sequences in a log file.
    const stderr = result.stderr!;
    ok(!stderr.includes("\r") && !stderr.includes("\u001b"), stderr);
    const lines = stderr.trimEnd().split("\n");
    equal(lines.length, 10, stderr);
    lines.slice(0, 9).forEach((line, i) =>
      match(
        line,
        new RegExp(
          `^${i + 1}/10 tasks \\(${
            (i + 1) * 10
          }%\\), \\d+\\.\\d/s, ETA (\\d+\\.\\d s|\\d+ min \\d\\d s)$`,
        ),
      )
    );
    match(lines[9]!, /^10\/10 tasks \(100%\) in \d+\.\d s, \d+\.\d\/s$/);
  });

  test("on a terminal, the line is redrawn in place and ends with a newline", () => {
    const writes: string[] = [];
    const progress = new ProgressLine(3, {
      unit: "files",
      stream: { isTTY: true, write: (text: string) => writes.push(text) },
    });
    for (let i = 0; i < 3; i++) progress.tick();
    progress.finish();
    // The first tick draws at once; later ones only 100 ms after a draw.
    const clear = "\u001b[K";
    for (const text of writes.slice(0, -1)) {
      ok(text.startsWith("\r") && text.endsWith(clear), JSON.stringify(text));
      match(
        text.slice(1, -clear.length),
        /^\d\/3 files \(\d+%\), \d+\.\d\/s, ETA /,
      );
    }
    equal(writes[0]!.slice(1, 17), "1/3 files (33%),");
    const last = writes.at(-1)!;
    ok(
      last.startsWith("\r") && last.endsWith(`${clear}\n`),
      JSON.stringify(last),
    );
    match(
      last.slice(1, -clear.length - 1),
      /^3\/3 files \(100%\) in \d+\.\d s, \d+\.\d\/s$/,
    );
  });
});
