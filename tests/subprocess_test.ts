import { after, describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import {
  call,
  CalledProcessError,
  checkCall,
  checkOutput,
  CompletedProcess,
  DEVNULL,
  PIPE,
  Popen,
  run,
  STDOUT,
  SubprocessError,
  TimeoutExpiredError,
  UnicodeDecodeError,
} from "../mod.ts";
import { decodeUtf8, invalidUtf8At, readLines } from "../_text.ts";
import { describeErrno } from "../_command_path.ts";
import {
  collect,
  delay,
  eventually,
  killMatching,
  marker,
  processesMatching,
  processExists,
  runScript,
  scriptCommand,
} from "./_helpers.ts";

const unhandled: unknown[] = [];
process.on("unhandledRejection", (reason) => unhandled.push(reason));

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller): void {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe("run, call, checkCall, checkOutput", () => {
  test("run captures text and bytes", async () => {
    const text = await run(["echo", "hi"], { capture: true, text: true });
    ok(text instanceof CompletedProcess);
    deepEqual(text.args, ["echo", "hi"]);
    equal(text.returncode, 0);
    equal(text.stdout, "hi\n");
    equal(text.stderr, "");
    const bytes = await run(["printf", "\\001\\002"], { capture: true });
    ok(bytes.stdout instanceof Uint8Array);
    deepEqual([...bytes.stdout!], [1, 2]);
  });

  test("run leaves output to the parent unless piped", async () => {
    const result = await run(["true"]);
    equal(result.stdout, null);
    equal(result.stderr, null);
    const silent = await run(["echo", "x"], { stdout: DEVNULL });
    equal(silent.stdout, null);
  });

  test("call returns the status, checkCall and check require 0", async () => {
    equal(await call(["sh", "-c", "exit 7"]), 7);
    equal(await checkCall(["true"]), 0);
    await rejects(checkCall(["sh", "-c", "exit 2"]), (error) => {
      ok(error instanceof CalledProcessError);
      equal(error.returncode, 2);
      deepEqual(error.cmd, ["sh", "-c", "exit 2"]);
      match(error.message, /returned non-zero exit status 2/);
      return true;
    });
    const failed = await run(["false"]);
    equal(failed.returncode, 1);
    throws(() => failed.checkReturncode(), CalledProcessError);
  });

  test("checkOutput returns stdout and keeps it on failure", async () => {
    equal(await checkOutput(["echo", "42"], { text: true }), "42\n");
    deepEqual([...await checkOutput(["printf", "A"])], [65]);
    await rejects(
      checkOutput(["sh", "-c", "echo partial; echo why >&2; exit 3"], {
        text: true,
        stderr: PIPE,
      }),
      (error) => {
        ok(error instanceof CalledProcessError);
        equal(error.stdout, "partial\n");
        equal(error.stderr, "why\n");
        match(error.message, /status 3: why$/);
        return true;
      },
    );
  });

  test("input as text, bytes and a stream", async () => {
    const fromText = await run(["cat"], { input: "é\n", capture: true });
    deepEqual([...fromText.stdout!], [...new TextEncoder().encode("é\n")]);
    const fromBytes = await run(["wc", "-c"], {
      input: new Uint8Array(1000),
      capture: true,
      text: true,
    });
    equal(fromBytes.stdout!.trim(), "1000");
    const fromStream = await run(["cat"], {
      input: streamOf([
        new TextEncoder().encode("a"),
        new TextEncoder().encode("b"),
      ]),
      capture: true,
      text: true,
    });
    equal(fromStream.stdout, "ab");
  });

  test("env is merged into the parent's unless clearEnv", async () => {
    const merged = await checkOutput(
      ["sh", "-c", 'echo "$MULTIPROC_TEST_VAR:${HOME:+has-home}"'],
      { env: { MULTIPROC_TEST_VAR: "set" }, text: true },
    );
    equal(merged, "set:has-home\n");
    const cleared = await checkOutput(
      ["/bin/sh", "-c", 'echo "$MULTIPROC_TEST_VAR:${HOME:-no-home}"'],
      { env: { MULTIPROC_TEST_VAR: "only" }, clearEnv: true, text: true },
    );
    equal(cleared, "only:no-home\n");
  });

  test("cwd as a path and as a file URL", async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "multiproc-cwd-")));
    try {
      equal(await checkOutput(["pwd"], { cwd: dir, text: true }), `${dir}\n`);
      equal(
        await checkOutput(["pwd"], { cwd: pathToFileURL(dir), text: true }),
        `${dir}\n`,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("stderr: STDOUT merges both streams in the child's order", async () => {
    const result = await run(
      ["sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2"],
      { stdout: PIPE, stderr: STDOUT, text: true },
    );
    equal(result.stdout, "1\n2\n3\n4\n");
    equal(result.stderr, null);
    const viaPath = await run(["cat", "/no/such/file"], {
      stdout: PIPE,
      stderr: STDOUT,
      text: true,
    });
    equal(viaPath.returncode, 1);
    match(viaPath.stdout!, /No such file/);
  });

  test("an input stream that fails kills the child and rejects run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "multiproc-input-"));
    const file = join(dir, "received");
    const failure = new Error("disk on fire");
    let pid = 0;
    let pulls = 0;
    const input = new ReadableStream<Uint8Array>({
      async pull(controller): Promise<void> {
        if (pulls++ === 0) {
          return controller.enqueue(new TextEncoder().encode("first\n"));
        }
        // Fail only once the child has the first chunk, to show that what
        // came before the failure was written.
        const received = await eventually(() =>
          existsSync(file) && readFileSync(file, "utf8") === "first\n"
        );
        [pid] = processesMatching(file);
        controller.error(received ? failure : new Error("nothing received"));
      },
    });
    try {
      await rejects(
        run(["tee", file], { input, stdout: DEVNULL }),
        (error) => {
          ok(error instanceof SubprocessError);
          equal(error.cause, failure);
          match(
            error.message,
            /^The input stream of "tee \/.*\/received" failed after 6 bytes, so the command was killed: disk on fire$/,
          );
          return true;
        },
      );
      ok(pid > 0, "the child ran");
      ok(!processExists(pid), "the child was killed and reaped");
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("a stdin stream that fails: communicate and wait reject, the child is killed", async () => {
    const failure = new Error("upstream broke");
    const failing = (): ReadableStream<Uint8Array> => {
      let pulls = 0;
      return new ReadableStream({
        pull(controller): void {
          if (pulls++ === 0) controller.enqueue(new Uint8Array([65]));
          else controller.error(failure);
        },
      });
    };
    await using communicating = new Popen(["cat"], {
      stdin: failing(),
      stdout: PIPE,
    });
    await rejects(communicating.communicate(), (error) => {
      ok(error instanceof SubprocessError);
      equal(error.cause, failure);
      match(error.message, /"cat" failed after 1 byte, so/);
      return true;
    });
    equal(communicating.returncode, -9);
    await using waiting = new Popen(["sleep", "10"], { stdin: failing() });
    await rejects(waiting.wait(), (error) => {
      ok(error instanceof SubprocessError);
      equal(error.cause, failure);
      return true;
    });
    equal(waiting.returncode, -9);
    await rejects(
      run(["cat"], {
        input: new ReadableStream({
          start(controller): void {
            controller.enqueue("text" as unknown as Uint8Array);
          },
        }),
      }),
      (error) => {
        ok(error instanceof SubprocessError);
        ok(error.cause instanceof TypeError);
        match(error.message, /got the string "text": encode text first/);
        return true;
      },
    );
    const locked = streamOf([]);
    locked.getReader();
    throws(() => new Popen(["cat"], { stdin: locked }), /locked/);
    await rejects(run(["cat"], { input: locked }), TypeError);
  });

  test("a child that exits without reading its input", async () => {
    const big = new Uint8Array(8 * 1024 * 1024);
    const result = await run(["true"], { input: big, capture: true });
    equal(result.returncode, 0);
    const early = await run(["sh", "-c", "exit 4"], { input: big });
    equal(early.returncode, 4);
    const head = await run(["head", "-c", "5"], {
      input: big.fill(120),
      capture: true,
      text: true,
    });
    equal(head.stdout, "xxxxx");
  });
});

describe("bad input", () => {
  test("the command must be a non-empty array of strings", async () => {
    await rejects(
      run("ls -l" as unknown as string[]),
      (error) => {
        ok(error instanceof TypeError);
        match(error.message, /got "ls -l": .*\["ls","-l"\]/);
        return true;
      },
    );
    await rejects(run([]), TypeError);
    await rejects(run(["echo", 3 as unknown as string]), TypeError);
    throws(() => new Popen(["echo", "a\0b"]), /NUL/);
  });

  test("timeouts must be non-negative numbers", async () => {
    await rejects(run(["true"], { timeout: -1 }), (error) => {
      ok(error instanceof RangeError);
      match(error.message, /got "-1"/);
      return true;
    });
    await rejects(run(["true"], { timeout: Number.NaN }), RangeError);
    await using p = new Popen(["true"]);
    await rejects(p.wait({ timeout: -5 }), RangeError);
  });

  test("conflicting stream options", async () => {
    await rejects(run(["cat"], { input: "x", stdin: PIPE }), /input and stdin/);
    await rejects(
      run(["cat"], { capture: true, stdout: DEVNULL }),
      /capture together with stdout/,
    );
    await using p = new Popen(["cat"], { stdout: PIPE });
    await rejects(p.communicate("x"), /stdin is not a pipe/);
  });

  test("env values must be strings", async () => {
    await rejects(
      run(["true"], { env: { X: 1 as unknown as string } }),
      (error) => {
        ok(error instanceof TypeError);
        equal(
          error.message,
          'Expected env.X to be a string, got "1" (a number): pass every value as a string, e.g. { X: "1" }, or leave the variable out',
        );
        return true;
      },
    );
    throws(
      () => new Popen(["true"], { env: { "MY-VAR": undefined! } }),
      /^TypeError: Expected env\["MY-VAR"\] to be a string, got undefined: .*{ "MY-VAR": "value" }/,
    );
    await rejects(run(["true"], { env: { "A=B": "1" } }), /got "A=B"/);
    await rejects(run(["true"], { env: { X: "a\0b" } }), /NUL/);
    await rejects(
      run(["true"], { env: "X=1" as unknown as Record<string, string> }),
      /Expected env to be an object of strings, got "X=1"/,
    );
  });

  test("stream options name the values they take", async () => {
    await rejects(
      run(["true"], { stdout: STDOUT as unknown as typeof PIPE }),
      (error) => {
        ok(error instanceof TypeError);
        equal(
          error.message,
          'Expected stdout to be PIPE ("pipe"), DEVNULL ("null") or INHERIT ("inherit"), got "stdout": only stderr can be STDOUT, which sends it down stdout\'s pipe',
        );
        return true;
      },
    );
    throws(
      () => new Popen(["true"], { stderr: "bogus" as typeof PIPE }),
      /^TypeError: Expected stderr to be PIPE \("pipe"\), DEVNULL \("null"\), INHERIT \("inherit"\) or STDOUT \("stdout"\), got "bogus": pass one of those constants$/,
    );
    await rejects(
      run(["cat"], { stdin: new Uint8Array(1) as unknown as typeof PIPE }),
      /got a Uint8Array: to send data, pass it as input/,
    );
    await rejects(
      run(["cat"], { stdout: null as unknown as typeof PIPE }),
      /got null: /,
    );
    await rejects(
      run(["cat"], { input: 5 as unknown as string }),
      /^TypeError: Expected input to be a string, a Uint8Array or a ReadableStream of bytes, got "5" \(a number\)/,
    );
    await using p = new Popen(["cat"], { stdin: PIPE, stdout: DEVNULL });
    await rejects(
      p.communicate(new ArrayBuffer(1) as unknown as Uint8Array),
      /got an ArrayBuffer: wrap the bytes as new Uint8Array\(buffer\)/,
    );
    deepEqual(await p.communicate("fine"), [null, null]);
  });

  test("a command that is not found", async () => {
    await rejects(run(["no-such-command-4711", "arg"]), (error) => {
      ok(error instanceof SubprocessError);
      match(error.message, /"no-such-command-4711 arg".*not found in PATH/);
      equal((error.cause as { code?: string }).code, "ENOENT");
      return true;
    });
    throws(() => new Popen(["./missing-here"]), /does not exist/);
    await rejects(
      run(["no-such-command-4711"], { stdout: PIPE, stderr: STDOUT }),
      /not found in PATH/,
    );
  });

  test("a file that is not executable, a directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "multiproc-exec-"));
    const script = join(dir, "script.sh");
    writeFileSync(script, "#!/bin/sh\necho hi\n", { mode: 0o644 });
    try {
      await rejects(run([script]), (error) => {
        ok(error instanceof SubprocessError);
        match(error.message, /is not executable: check its permissions/);
        equal((error.cause as { code?: string }).code, "EACCES");
        return true;
      });
      await rejects(run([dir]), /is a directory/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("running out of file descriptors says so", async () => {
    // No free descriptor at all, and too few for the pipes.
    for (const free of ["0", "2"]) {
      const result = await run(
        [
          "/bin/sh",
          "-c",
          'ulimit -Sn 256 && exec "$@"',
          "sh",
          ...scriptCommand("./fixtures/fd_limit", free),
        ],
        { capture: true, text: true, timeout: 120_000 },
      );
      equal(result.returncode, 0, result.stderr!);
      const outcome = JSON.parse(result.stdout!);
      equal(outcome.name, "SubprocessError", `${free} free: ${result.stdout}`);
      match(
        outcome.message,
        /^Cannot run "true": too many open files in this process \(EMFILE\): .*\(ulimit -n\)$/,
      );
      equal(outcome.code, "EMFILE");
    }
    match(
      describeErrno("ENFILE")!.reason,
      /^too many open files in the system/,
    );
    equal(describeErrno("EIO"), undefined);
  });

  test("a working directory that does not exist", async () => {
    await rejects(run(["ls"], { cwd: "/no/such/dir" }), (error) => {
      ok(error instanceof SubprocessError);
      match(
        error.message,
        /working directory "\/no\/such\/dir" does not exist/,
      );
      ok(error.cause instanceof Error);
      return true;
    });
    await rejects(run(["ls"], { cwd: "/etc/hostname" }), /not a directory/);
  });
});

describe("Popen", () => {
  test("communicate feeds input and returns both outputs", async () => {
    await using p = new Popen(["sort"], {
      stdin: PIPE,
      stdout: PIPE,
      text: true,
    });
    ok(p.pid > 0);
    deepEqual(await p.communicate("b\na\n"), ["a\nb\n", null]);
    equal(p.returncode, 0);
    await using both = new Popen(["sh", "-c", "cat; echo e >&2"], {
      stdin: PIPE,
      stdout: PIPE,
      stderr: PIPE,
    });
    const [out, err] = await both.communicate(new Uint8Array([7, 8]));
    deepEqual([...out!], [7, 8]);
    deepEqual([...err!], [101, 10]);
  });

  test("100 MiB through cat comes back whole, without deadlock", async () => {
    const size = 100 * 1024 * 1024;
    const input = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) input[i] = (i / 4096) % 251;
    input[size - 1] = 42;
    await using p = new Popen(["cat"], { stdin: PIPE, stdout: PIPE });
    const [output] = await p.communicate(input);
    equal(output!.byteLength, size);
    for (let i = 0; i < size; i += 4096) {
      if (output![i] !== input[i]) equal(output![i], input[i], `byte ${i}`);
    }
    equal(output![size - 1], 42);
  });

  test("communicate timeout leaves the child running and loses nothing", async () => {
    await using p = new Popen(
      ["sh", "-c", "echo first; read line; echo got $line; echo err >&2"],
      { stdin: PIPE, stdout: PIPE, stderr: PIPE, text: true },
    );
    const writer = p.stdin!.getWriter();
    await rejects(p.communicate(undefined, { timeout: 50 }), /locked/);
    writer.releaseLock();
    const slow = new Popen(["sh", "-c", "echo a; sleep 0.4; echo b"], {
      stdout: PIPE,
      text: true,
    });
    await rejects(slow.communicate(undefined, { timeout: 50 }), (error) => {
      ok(error instanceof TimeoutExpiredError);
      equal(error.stdout, "a\n");
      equal(error.timeout, 50);
      return true;
    });
    equal(slow.poll(), null, "the child still runs after the timeout");
    await rejects(slow.communicate("late"), /after the communication/);
    deepEqual(await slow.communicate(), ["a\nb\n", null]);
    equal(slow.returncode, 0);
    deepEqual(await p.communicate("x\n"), ["first\ngot x\n", "err\n"]);
  });

  test("wait with a timeout, then without", async () => {
    const p = new Popen(["sleep", "0.3"]);
    await rejects(p.wait({ timeout: 20 }), TimeoutExpiredError);
    equal(p.returncode, null);
    equal(await p.wait(), 0);
    equal(p.poll(), 0);
  });

  test("wait stops waiting on abort; the child runs on", async () => {
    await using p = new Popen(["sleep", "10"]);
    const controller = new AbortController();
    const waiting = p.wait({ signal: controller.signal });
    controller.abort(new Error("enough"));
    await rejects(waiting, /enough/);
    equal(p.poll(), null);
  });

  test("returncode is -N for signal N; signals after exit are no-ops", async () => {
    const killed = new Popen(["sleep", "10"]);
    killed.kill();
    equal(await killed.wait(), -9);
    const terminated = new Popen(["sleep", "10"]);
    terminated.terminate();
    equal(await terminated.wait(), -15);
    const interrupted = new Popen(["sleep", "10"]);
    interrupted.sendSignal("SIGUSR1");
    equal(await interrupted.wait(), -10);
    for (const p of [killed, terminated, interrupted]) {
      p.kill();
      p.terminate();
      p.sendSignal("SIGINT");
    }
    const done = new Popen(["true"]);
    await done.wait();
    done.kill();
    equal(done.returncode, 0);
  });

  test("a signal from outside shows as -N", async () => {
    const p = new Popen(["sleep", "10"]);
    process.kill(p.pid, "SIGTERM");
    equal(await p.wait(), -15);
  });

  test("await using kills a running child and reaps it", async () => {
    let pid = 0;
    let child: Popen | undefined;
    {
      await using p = new Popen(["sleep", "10"], { stdout: PIPE });
      pid = p.pid;
      child = p;
      ok(processExists(pid));
    }
    equal(child.returncode, -9);
    ok(!processExists(pid), "the child was reaped");
  });

  test("lines of stdout and stderr, with and without a final newline", async () => {
    await using p = new Popen(
      ["sh", "-c", "printf 'a\\r\\nb\\n\\nlast'; echo e1 >&2; echo e2 >&2"],
      { stdout: PIPE, stderr: PIPE },
    );
    const [stdout, stderr] = await Promise.all([
      collect(p),
      collect(p.lines({ from: "stderr" })),
    ]);
    deepEqual(stdout, ["a", "b", "", "last"]);
    deepEqual(stderr, ["e1", "e2"]);
    throws(() => new Popen(["true"]).lines(), /not piped/);
  });

  test("leaving the line loop early closes the pipe", async () => {
    const p = new Popen(["seq", "1", "100000000"], {
      stdout: PIPE,
      stderr: DEVNULL,
    });
    const first: string[] = [];
    for await (const line of p) {
      first.push(line);
      if (first.length === 3) break;
    }
    deepEqual(first, ["1", "2", "3"]);
    // Deno's pipes are pipes (SIGPIPE); Node's are socket pairs, where the
    // write fails with ECONNRESET and seq exits with 1.
    const returncode = await p.wait();
    ok(returncode === -13 || returncode === 1, `seq ended: ${returncode}`);
  });

  test("a pipeline: one child's stdout is the next one's stdin", async () => {
    await using producer = new Popen(["printf", "c\\nb\\na\\n"], {
      stdout: PIPE,
    });
    await using sorter = new Popen(["sort"], {
      stdin: producer.stdout!,
      stdout: PIPE,
    });
    await using counter = new Popen(["head", "-n", "2"], {
      stdin: sorter.stdout!,
      stdout: PIPE,
      text: true,
    });
    deepEqual(await counter.communicate(), ["a\nb\n", null]);
    equal(await producer.wait(), 0);
    equal(await sorter.wait(), 0);
  });

  test("an AbortSignal kills the child", async () => {
    const controller = new AbortController();
    const p = new Popen(["sleep", "10"], { signal: controller.signal });
    controller.abort();
    equal(await p.wait(), -9);
    throws(
      () => new Popen(["sleep", "10"], { signal: controller.signal }),
      (error: unknown) => error instanceof Error && error.name === "AbortError",
    );
  });
});

describe("timeouts, aborts and process groups", () => {
  test("run timeout kills, reaps and reports partial output", async () => {
    let pid = 0;
    await rejects(
      run(["sh", "-c", "echo so-far; echo err >&2; exec sleep 10"], {
        capture: true,
        text: true,
        timeout: 300,
      }),
      (error) => {
        ok(error instanceof TimeoutExpiredError);
        equal(error.stdout, "so-far\n");
        equal(error.stderr, "err\n");
        match(error.message, /timed out after 300 ms/);
        return true;
      },
    );
    const p = new Popen(["sleep", "10"]);
    pid = p.pid;
    await rejects(call(["sleep", "10"], { timeout: 10 }), TimeoutExpiredError);
    p.kill();
    await p.wait();
    ok(!processExists(pid));
  });

  test("timeouts of Infinity and of 2^31 ms or more wait as long as they say", async () => {
    // setTimeout clamps such delays to 1 ms: the children would be killed
    // long before their 0.3 s were up.
    for (const timeout of [Infinity, 2 ** 31, 2 ** 40]) {
      await using communicating = new Popen(
        ["sh", "-c", "sleep 0.3; echo late"],
        { stdout: PIPE, text: true },
      );
      const waiting = new Popen(["sleep", "0.3"]);
      const [ran, communicated, waited] = await Promise.all([
        run(["sh", "-c", "sleep 0.3; echo done"], {
          capture: true,
          text: true,
          timeout,
        }),
        communicating.communicate(undefined, { timeout }),
        waiting.wait({ timeout }),
      ]);
      equal(ran.returncode, 0, `run with timeout ${timeout}`);
      equal(ran.stdout, "done\n");
      deepEqual(communicated, ["late\n", null], `communicate ${timeout}`);
      equal(waited, 0, `wait with timeout ${timeout}`);
    }
  });

  test("killTree: a timeout leaves no grandchild behind", async () => {
    const tag = marker();
    await rejects(
      run(["sh", "-c", `sleep ${tag} & sleep ${tag}`], {
        timeout: 200,
        killTree: true,
        capture: true,
      }),
      TimeoutExpiredError,
    );
    // Killed grandchildren go to init, which reaps them in its own time.
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 0));
  });

  test("without killTree a grandchild holding the pipe does not hang run", async () => {
    const tag = marker();
    try {
      await rejects(
        run(["sh", "-c", `echo out; sleep ${tag} & exec sleep ${tag}`], {
          timeout: 200,
          capture: true,
          text: true,
        }),
        (error) => {
          ok(error instanceof TimeoutExpiredError);
          equal(error.stdout, "out\n");
          return true;
        },
      );
      equal(processesMatching(`sleep ${tag}`).length, 1, "the orphan");
    } finally {
      killMatching(`sleep ${tag}`);
    }
  });

  test("killTree signals the whole group", async () => {
    const tag = marker();
    const p = new Popen(["sh", "-c", `sleep ${tag} & sleep ${tag}; wait`], {
      killTree: true,
    });
    for (let i = 0; processesMatching(`sleep ${tag}`).length < 2; i++) {
      ok(i < 200, "both sleeps started");
      await delay(10);
    }
    p.terminate();
    equal(await p.wait(), -15);
    // Killed grandchildren go to init, which reaps them in its own time.
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 0));
  });

  test("run with an AbortSignal kills and rejects with its reason", async () => {
    const tag = marker();
    const controller = new AbortController();
    const reason = new Error("stop it");
    setTimeout(() => controller.abort(reason), 100);
    await rejects(
      run(["sh", "-c", `sleep ${tag}`], {
        signal: controller.signal,
        killTree: true,
      }),
      (error) => error === reason,
    );
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 0));
    await rejects(
      run(["sleep", tag], { signal: controller.signal }),
      (error) => error === reason,
    );
    deepEqual(processesMatching(`sleep ${tag}`), [], "never started");
  });
});

describe("text decoding", () => {
  const sample = "aé€😀b";
  const bytes = new TextEncoder().encode(sample);

  test("lines decode characters split at every byte offset", async () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      const lines = await collect(
        readLines(streamOf([bytes.slice(0, cut), bytes.slice(cut)])),
      );
      deepEqual(lines, [sample], `split at byte ${cut}`);
    }
    const oneByteChunks = [...bytes].map((byte) => new Uint8Array([byte]));
    deepEqual(await collect(readLines(streamOf(oneByteChunks))), [
      sample,
    ]);
  });

  test("lines of several MB come out whole, split anywhere", async () => {
    const long = sample.repeat(400_000); // 5.6 MB, 2.4 M characters
    const text = `first\n${long}\r\n\n${long}é`;
    const encoded = new TextEncoder().encode(text);
    // 65_537 bytes cut through the 2-, 3- and 4-byte characters in turn.
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < encoded.length; at += 65_537) {
      chunks.push(encoded.slice(at, at + 65_537));
    }
    const lines = await collect(readLines(streamOf(chunks)));
    equal(lines.length, 4);
    equal(lines[0], "first");
    ok(lines[1] === long, "the first long line");
    equal(lines[2], "");
    ok(lines[3] === `${long}é`, "the last long line, without a newline");
    await using p = new Popen(["cat"], {
      stdin: streamOf([encoded]),
      stdout: PIPE,
    });
    const piped = await collect(p);
    equal(piped.length, 4);
    ok(piped[1] === long && piped[3] === `${long}é`, "through a pipe");
  });

  test("a leading byte order mark is kept, as Python's utf-8 codec keeps it", async () => {
    const text = "\uFEFFfirst\nsecond\n";
    for (const errors of ["strict", "replace"] as const) {
      const r = await run(["cat"], {
        input: text,
        capture: true,
        text: true,
        errors,
      });
      equal(r.stdout, text);
      await using p = new Popen(["cat"], {
        stdin: streamOf([new TextEncoder().encode(text)]),
        stdout: PIPE,
        errors,
      });
      deepEqual(await collect(p), ["\uFEFFfirst", "second"]);
    }
  });

  test("partial output ends on a character boundary", () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const text = decodeUtf8(bytes.slice(0, cut), true);
      ok(sample.startsWith(text), `cut at ${cut}: ${JSON.stringify(text)}`);
      ok(!text.includes("\uFFFD"));
    }
  });

  test("output that is not UTF-8 fails text decoding unless errors is replace", async () => {
    const command = [
      "sh",
      "-c",
      "printf 'ok\\n\\342\\202('; printf 'e\\377' >&2",
    ];
    await rejects(run(command, { capture: true, text: true }), (error) => {
      ok(error instanceof UnicodeDecodeError);
      equal(error.stream, "stdout");
      deepEqual([...error.bytes], [0x6f, 0x6b, 0x0a, 0xe2, 0x82, 0x28]);
      equal(error.start, 3);
      ok(error.cause instanceof TypeError);
      equal(
        error.message,
        `Cannot decode the stdout of "sh -c 'printf '\\''ok\\n\\342\\202('\\''; printf '\\''e\\377'\\'' >&2'" as UTF-8: byte 0xe2 at offset 3 is not valid UTF-8: pass errors: "replace" to put U+FFFD in its place, or leave out text to get the bytes`,
      );
      return true;
    });
    const replaced = await run(command, {
      capture: true,
      text: true,
      errors: "replace",
    });
    equal(replaced.stdout, "ok\n\uFFFD(");
    equal(replaced.stderr, "e\uFFFD");
    const bytes = await run(command, { capture: true });
    deepEqual([...bytes.stderr!], [0x65, 0xff]);
    await using p = new Popen([
      "sh",
      "-c",
      "echo fine; printf '\\300\\200' >&2",
    ], {
      stdout: PIPE,
      stderr: PIPE,
      text: true,
    });
    await rejects(p.communicate(), (error) => {
      ok(error instanceof UnicodeDecodeError);
      equal(error.stream, "stderr");
      equal(error.start, 0);
      match(
        error.message,
        /^Cannot decode the stderr of .*: byte 0xc0 at offset 0/,
      );
      return true;
    });
    await rejects(
      checkOutput(["printf", "\\360\\237\\230"], { text: true }),
      (error) => error instanceof UnicodeDecodeError && error.start === 0,
      "a character cut off at the end",
    );
    await rejects(
      run(["true"], { errors: "ignore" as "strict" }),
      /^TypeError: Expected errors to be "strict" or "replace", got "ignore"/,
    );
  });

  test("lines that are not UTF-8: the good ones first, then the error", async () => {
    const script = "printf 'one\\ntwo\\nb\\377d\\nafter\\n'";
    await using strict = new Popen(["sh", "-c", script], { stdout: PIPE });
    const lines: string[] = [];
    await rejects(
      (async () => {
        for await (const line of strict) lines.push(line);
      })(),
      (error) => {
        ok(error instanceof UnicodeDecodeError);
        deepEqual([...error.bytes], [0x62, 0xff, 0x64]);
        equal(error.start, 1);
        match(
          error.message,
          /byte 0xff at offset 9 is not valid UTF-8: .* or read the bytes of stdout instead of lines$/,
        );
        return true;
      },
    );
    deepEqual(lines, ["one", "two"]);
    await using lenient = new Popen(["sh", "-c", script], {
      stdout: PIPE,
      errors: "replace",
    });
    deepEqual(await collect(lenient), ["one", "two", "b\uFFFDd", "after"]);
    // One byte at a time: the bad line is still found whole, at its offset.
    const bytes = new Uint8Array([0xc3, 0xa9, 0x0a, 0x78, 0xff]); // é\nx, 0xff
    const got: string[] = [];
    await rejects(
      (async () => {
        const chunks = [...bytes].map((byte) => new Uint8Array([byte]));
        for await (const line of readLines(streamOf(chunks), "strict")) {
          got.push(line);
        }
      })(),
      (error: { offset: number; start: number; bytes: Uint8Array }) => {
        equal(error.offset, 3);
        equal(error.start, 1);
        deepEqual([...error.bytes], [0x78, 0xff]);
        return true;
      },
    );
    deepEqual(got, ["é"]);
  });

  test("a timeout's output is decoded leniently, so the timeout is what you see", async () => {
    await rejects(
      run(["sh", "-c", "printf 'a\\377'; exec sleep 10"], {
        capture: true,
        text: true,
        timeout: 300,
      }),
      (error) => {
        ok(error instanceof TimeoutExpiredError);
        equal(error.stdout, "a\uFFFD");
        return true;
      },
    );
  });

  test("invalidUtf8At and partial decoding agree with TextDecoder", () => {
    const strict = new TextDecoder("utf-8", { fatal: true });
    const lenient = new TextDecoder();
    // A fixed pseudo-random sequence, over bytes that make UTF-8 edge cases.
    const interesting = [
      0x00,
      0x41,
      0x7f,
      0x80,
      0x8f,
      0x90,
      0x9f,
      0xa0,
      0xbf,
      0xc0,
      0xc1,
      0xc2,
      0xdf,
      0xe0,
      0xe1,
      0xec,
      0xed,
      0xee,
      0xef,
      0xf0,
      0xf1,
      0xf3,
      0xf4,
      0xf5,
      0xff,
    ];
    let seed = 42;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let round = 0; round < 20_000; round++) {
      const bytes = Uint8Array.from(
        { length: 1 + (next() % 6) },
        () => interesting[next() % interesting.length]!,
      );
      const at = invalidUtf8At(bytes);
      let valid = true;
      try {
        strict.decode(bytes);
      } catch {
        valid = false;
      }
      const hex = [...bytes].map((byte) => byte.toString(16)).join(" ");
      equal(at === -1, valid, `valid or not: ${hex}`);
      // Partial output holds back just what a streaming decoder would.
      equal(
        decodeUtf8(bytes, true),
        new TextDecoder().decode(bytes, { stream: true }),
        `partial: ${hex}`,
      );
      if (at === -1) continue;
      strict.decode(bytes.subarray(0, at));
      ok(lenient.decode(bytes.subarray(at)).startsWith("\uFFFD"), hex);
    }
  });

  test("a child writing one byte at a time", async () => {
    const octal = [...bytes].map((byte) => `\\${byte.toString(8)}`);
    const script = octal.map((code) => `printf '${code}'; sleep 0.01`)
      .join("; ");
    const { stdout } = await run(["sh", "-c", script], {
      capture: true,
      text: true,
    });
    equal(stdout, sample);
    await using p = new Popen(["sh", "-c", script], { stdout: PIPE });
    deepEqual(await collect(p), [sample]);
  });
});

describe("nothing left behind", () => {
  test("a script using every feature exits on its own", async () => {
    const result = await runScript("./fixtures/loop_exits");
    equal(result.stderr, "");
    equal(result.stdout, "done\n");
    equal(result.returncode, 0);
  });

  after(() => {
    deepEqual(unhandled, [], "no unhandled rejections");
  });
});
