// Python's shell helpers in subprocess.ts: shell: true, getoutput,
// getstatusoutput, and startNewSession (issue #15). The expected values of
// getoutput and getstatusoutput are what Python 3.11's give for the same
// command lines.
import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  notEqual,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  call,
  CalledProcessError,
  checkCall,
  checkOutput,
  getoutput,
  getstatusoutput,
  PIPE,
  Popen,
  run,
  TimeoutExpiredError,
  UnicodeDecodeError,
} from "../mod.ts";
import {
  delay,
  eventually,
  killMatching,
  marker,
  processesMatching,
} from "./_helpers.ts";

/** The session id of process `pid`, as `ps` reports it. */
async function sessionOf(pid: number): Promise<number> {
  const sid = await checkOutput(["ps", "-o", "sid=", "-p", String(pid)], {
    text: true,
  });
  return Number(sid.trim());
}

describe("shell: true", () => {
  test("runs one string with /bin/sh -c: pipes, redirections, variables, globs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "multiproc-shell-"));
    try {
      writeFileSync(join(dir, "a.txt"), "1\n2\n");
      writeFileSync(join(dir, "b.txt"), "3\n");
      const result = await run('cat *.txt | wc -l; echo "$GREETING" >&2', {
        shell: true,
        cwd: dir,
        env: { GREETING: "hi there" },
        capture: true,
        text: true,
      });
      equal(result.stdout?.trim(), "3");
      equal(result.stderr, "hi there\n");
      deepEqual(result.args, [
        "/bin/sh",
        "-c",
        'cat *.txt | wc -l; echo "$GREETING" >&2',
      ]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test("works for call, checkCall, checkOutput and Popen", async () => {
    equal(await call("exit 5", { shell: true }), 5);
    equal(await checkCall("true && true", { shell: true }), 0);
    await rejects(checkCall("false || exit 4", { shell: true }), (error) => {
      ok(error instanceof CalledProcessError);
      equal(error.returncode, 4);
      deepEqual(error.cmd, ["/bin/sh", "-c", "false || exit 4"]);
      match(
        error.message,
        /^Command "\/bin\/sh -c 'false \|\| exit 4'" returned non-zero exit status 4$/,
      );
      return true;
    });
    equal(
      await checkOutput("printf '%s\\n' one two | tail -n 1", {
        shell: true,
        text: true,
      }),
      "two\n",
    );
    await using sorter = new Popen("sort -r | head -n 2", {
      shell: true,
      stdin: PIPE,
      stdout: PIPE,
      text: true,
    });
    deepEqual(await sorter.communicate("a\nc\nb\n"), ["c\nb\n", null]);
    equal(sorter.returncode, 0);
    deepEqual(sorter.args, ["/bin/sh", "-c", "sort -r | head -n 2"]);
  });

  test("an empty string is a command that does nothing, as in Python", async () => {
    equal(await call("", { shell: true }), 0);
  });

  test("a string without shell, or an array with it, is a TypeError that says which to use", async () => {
    await rejects(
      run("ls -l | wc -l" as unknown as string[]),
      (error) => {
        ok(error instanceof TypeError);
        equal(
          error.message,
          'Expected a command as an array of strings, got "ls -l | wc -l": pass the program and its arguments as an array, e.g. ["ls","-l","|","wc","-l"], or pass shell: true to run the string with /bin/sh',
        );
        return true;
      },
    );
    const arrayWithShell =
      'Expected a command string with shell: true, got ["ls","-l"]: pass one string for /bin/sh, e.g. "ls -l | wc -l", or leave out shell to run the array without a shell';
    await rejects(run(["ls", "-l"], { shell: true }), {
      name: "TypeError",
      message: arrayWithShell,
    });
    await rejects(call(["ls", "-l"], { shell: true }), {
      message: arrayWithShell,
    });
    await rejects(checkCall(["ls", "-l"], { shell: true }), {
      message: arrayWithShell,
    });
    await rejects(checkOutput(["ls", "-l"], { shell: true }), {
      message: arrayWithShell,
    });
    throws(() => new Popen(["ls", "-l"], { shell: true }), {
      message: arrayWithShell,
    });
    throws(() => new Popen("ls -l"), {
      name: "TypeError",
      message: /or pass shell: true/,
    });
    await rejects(run(42 as unknown as string, { shell: true }), {
      name: "TypeError",
      message:
        'Expected a command string with shell: true, got "42" (a number): pass one string for /bin/sh, e.g. "ls -l | wc -l"',
    });
    await rejects(run("ls", { shell: "bash" as unknown as boolean }), {
      name: "TypeError",
      message:
        'Expected shell to be true or false, got "bash": to run another shell, pass ["bash", "-c", command] without shell',
    });
    await rejects(run("echo a\0b", { shell: true }), {
      name: "TypeError",
      message: /NUL/,
    });
  });

  test("values passed as the shell's positional parameters stay data", async () => {
    const hostile = "x; echo pwned; $(echo also) `echo too`";
    const { stdout } = await run([
      "/bin/sh",
      "-c",
      'printf "%s" "$1"',
      "sh",
      hostile,
    ], {
      capture: true,
      text: true,
    });
    equal(stdout, hostile);
  });

  test("a timeout kills the shell; with killTree its children too", async () => {
    const tag = marker();
    await rejects(
      run(`echo started; sleep ${tag}; echo never`, {
        shell: true,
        timeout: 200,
        killTree: true,
        capture: true,
        text: true,
      }),
      (error) => {
        ok(error instanceof TimeoutExpiredError);
        equal(error.stdout, "started\n");
        return true;
      },
    );
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 0));
  });
});

describe("getoutput and getstatusoutput", () => {
  test("stderr is merged into stdout and one trailing newline is stripped", async () => {
    equal(await getoutput("echo hi; echo err >&2"), "hi\nerr");
    equal(await getoutput('printf "a\\n\\n"'), "a\n");
    equal(await getoutput('printf "no newline"'), "no newline");
    equal(await getoutput(""), "");
    deepEqual(await getstatusoutput('printf "no newline"'), [0, "no newline"]);
  });

  test("the exit status is returned, never thrown; a signal gives -N", async () => {
    deepEqual(await getstatusoutput("echo x; exit 3"), [3, "x"]);
    deepEqual(await getstatusoutput("exit 300"), [44, ""]);
    deepEqual(await getstatusoutput("kill -9 $$"), [-9, ""]);
    deepEqual(await getstatusoutput("kill -TERM $$"), [-15, ""]);
    equal(await getoutput("echo partial; exit 1"), "partial");
    const [status, output] = await getstatusoutput("no-such-command-61");
    equal(status, 127);
    match(output, /no-such-command-61: .*not found$/);
  });

  test("line endings become \\n, as Python's text mode reads them", async () => {
    deepEqual(await getstatusoutput('printf "crlf\\r\\n"'), [0, "crlf"]);
    equal(await getoutput('printf "a\\rb\\r\\n\\r\\n"'), "a\nb\n");
  });

  test("output that is not UTF-8 is an error unless errors: replace", async () => {
    await rejects(getoutput("printf 'ok\\377'"), (error) => {
      ok(error instanceof UnicodeDecodeError);
      equal(error.stream, "stdout");
      deepEqual(error.cmd, ["/bin/sh", "-c", "printf 'ok\\377'"]);
      return true;
    });
    equal(
      await getoutput("printf 'ok\\377'", { errors: "replace" }),
      "ok\uFFFD",
    );
  });

  test("cwd, env, clearEnv, timeout and signal are passed on", async () => {
    const dir = realpathSync(
      mkdtempSync(join(tmpdir(), "multiproc-getoutput-")),
    );
    try {
      equal(await getoutput("pwd", { cwd: dir }), dir);
    } finally {
      rmSync(dir, { recursive: true });
    }
    equal(await getoutput('echo "$X"', { env: { X: "from env" } }), "from env");
    equal(
      await getoutput('echo "${HOME-unset}"', { clearEnv: true }),
      "unset",
    );
    await rejects(
      getoutput("echo before; sleep 10", { timeout: 200 }),
      (error) => {
        ok(error instanceof TimeoutExpiredError);
        equal(error.stdout, "before\n");
        return true;
      },
    );
    const controller = new AbortController();
    const reason = new Error("stop");
    controller.abort(reason);
    await rejects(
      getoutput("sleep 10", { signal: controller.signal }),
      (error) => error === reason,
    );
  });

  test("the command must be one string", async () => {
    await rejects(getoutput(["ls", "-l"] as unknown as string), {
      name: "TypeError",
      message:
        'Expected a command string, got ["ls","-l"]: pass one string for /bin/sh, e.g. "ls -l | wc -l", or run the array with checkOutput(cmd, { stderr: STDOUT, text: true })',
    });
    await rejects(getstatusoutput(undefined as unknown as string), {
      name: "TypeError",
      message:
        'Expected a command string, got undefined: pass one string for /bin/sh, e.g. "ls -l | wc -l"',
    });
  });
});

describe("startNewSession", () => {
  test("the child leads a session of its own; without it, it shares ours", async () => {
    const ours = await sessionOf(process.pid);
    {
      await using alone = new Popen(["sleep", "10"], { startNewSession: true });
      equal(await sessionOf(alone.pid), alone.pid);
      notEqual(alone.pid, ours);
    }
    {
      await using along = new Popen(["sleep", "10"]);
      equal(await sessionOf(along.pid), ours);
    }
    // Seen from inside: the shell is its own session's leader.
    const inside = await run("ps -o sid= -p $$; echo $$", {
      shell: true,
      startNewSession: true,
      capture: true,
      text: true,
    });
    const [sid, pid] = inside.stdout!.trim().split(/\s+/);
    equal(sid, pid);
  });

  test("signals still go to the child alone, as in Python; killTree sends them to the group", async () => {
    const tag = marker();
    // The tag through a variable, so that only the sleep's command line has it.
    const script = `tag=${tag}; sleep $tag & wait`;
    try {
      const parent = new Popen(script, { shell: true, startNewSession: true });
      ok(
        await eventually(() => processesMatching(`sleep ${tag}`).length === 1),
      );
      const [grandchild] = processesMatching(`sleep ${tag}`);
      parent.terminate();
      equal(await parent.wait(), -15);
      // A group-wide signal would be on its way already: give it the time to
      // land, so that a wrong implementation fails here (a right one passes
      // however long this is).
      await delay(100);
      deepEqual(
        processesMatching(`sleep ${tag}`),
        [grandchild],
        "the grandchild outlives its parent",
      );
    } finally {
      killMatching(`sleep ${tag}`);
    }
    const tree = new Popen(script, {
      shell: true,
      startNewSession: true,
      killTree: true,
    });
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 1));
    tree.terminate();
    equal(await tree.wait(), -15);
    ok(await eventually(() => processesMatching(`sleep ${tag}`).length === 0));
  });
});
