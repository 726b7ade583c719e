/**
 * Python's `subprocess` for Deno and Node: run commands given as argv arrays
 * (or, with `shell: true`, as one string for `/bin/sh`), capture or stream
 * their output, feed their input without pipe deadlocks, and stop them — or
 * their whole process group — on a timeout or an abort signal.
 * {@linkcode getoutput} and {@linkcode getstatusoutput} are Python's shell
 * helpers.
 *
 * Built on `Deno.Command` in Deno and on `node:child_process` in Node and
 * Bun, with the same behaviour in each. Timeouts are in milliseconds.
 *
 * Deno permissions: `--allow-run` for the commands (`--allow-run=git,sort`
 * narrows it); `shell: true` runs `/bin/sh`, and `stderr: STDOUT` also runs
 * it and looks the command up in `PATH` (`--allow-env`, `--allow-read`),
 * which also explain why a command could not start. A missing permission
 * fails with a `SubprocessError` whose message is Deno's, naming the flag to
 * add.
 *
 * ```ts
 * import { run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const result = await run(["echo", "hi"], { capture: true, text: true });
 * equal(result.stdout, "hi\n");
 * equal(result.returncode, 0);
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Communication } from "./_communicate.ts";
import { checkTimeout, TIMED_OUT, waitAtMost } from "./_deadline.ts";
import { defineInspect } from "./_inspect.ts";
import {
  returncodeOf,
  signalName,
  spawnChild,
  type SpawnedChild,
  SpawnFailure,
} from "./_spawn.ts";
import {
  decodeText,
  decodeUtf8,
  InvalidUtf8Error,
  readLines,
} from "./_text.ts";

/**
 * Connect the stream to a new pipe, readable (or writable) as a web stream.
 *
 * @example Capture stdout
 * ```ts
 * import { PIPE, run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const { stdout } = await run(["echo", "piped"], { stdout: PIPE, text: true });
 * equal(stdout, "piped\n");
 * ```
 */
export const PIPE = "pipe" as const;

/**
 * Connect the stream to `/dev/null`.
 *
 * @example Silence a command
 * ```ts
 * import { DEVNULL, run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const { stdout } = await run(["echo", "lost"], { stdout: DEVNULL });
 * equal(stdout, null);
 * ```
 */
export const DEVNULL = "null" as const;

/**
 * Share the parent's own stream with the child (the default for `run`).
 *
 * @example Let the child print to the terminal
 * ```ts
 * import { INHERIT, run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const { returncode } = await run(["true"], { stdout: INHERIT });
 * equal(returncode, 0);
 * ```
 */
export const INHERIT = "inherit" as const;

/**
 * For `stderr` only: send it down the same pipe (or file) as stdout, in the
 * order the child writes, as Python's `stderr=subprocess.STDOUT` does.
 *
 * @example Merge stderr into stdout
 * ```ts
 * import { PIPE, run, STDOUT } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const { stdout } = await run(["sh", "-c", "echo out; echo err >&2"], {
 *   stdout: PIPE,
 *   stderr: STDOUT,
 *   text: true,
 * });
 * equal(stdout, "out\nerr\n");
 * ```
 */
export const STDOUT = "stdout" as const;

/** Where a child's stdin, stdout or stderr goes: {@linkcode PIPE}, {@linkcode DEVNULL} or {@linkcode INHERIT}. */
export type Stdio = typeof PIPE | typeof DEVNULL | typeof INHERIT;

/** The signals that {@linkcode Popen.sendSignal} can send. */
export type Signal =
  | "SIGABRT"
  | "SIGALRM"
  | "SIGCONT"
  | "SIGHUP"
  | "SIGINT"
  | "SIGKILL"
  | "SIGPIPE"
  | "SIGQUIT"
  | "SIGSTOP"
  | "SIGTERM"
  | "SIGTSTP"
  | "SIGUSR1"
  | "SIGUSR2"
  | "SIGWINCH";

/** What a child's output is decoded to: `string` with `text: true`, else bytes. */
export type Output<TText extends boolean> = TText extends true ? string
  : Uint8Array;

/** Input for a child's stdin: text is sent as UTF-8. */
export type Input = string | Uint8Array;

/** Options of {@linkcode Popen}: how to start the child and wire its streams. */
export interface PopenOptions<TText extends boolean = boolean> {
  /**
   * The child's stdin: a pipe, `/dev/null`, the parent's, or a byte stream
   * to pump into it (for example another `Popen`'s `stdout`, to build a
   * pipeline). When that stream fails while the child runs, the child is
   * killed (it must not act on part of its input as if it were all), and
   * {@linkcode Popen.communicate} and {@linkcode Popen.wait} reject with a
   * {@linkcode SubprocessError} whose `cause` is the stream's error. A child
   * that stops reading early just leaves the rest of the stream cancelled.
   *
   * @default {INHERIT}
   */
  stdin?: Stdio | ReadableStream<Uint8Array>;
  /** The child's stdout. @default {INHERIT} */
  stdout?: Stdio;
  /** The child's stderr, or {@linkcode STDOUT} to merge it into stdout. @default {INHERIT} */
  stderr?: Stdio | typeof STDOUT;
  /**
   * Decode output as UTF-8 text instead of returning bytes. Decoding is done
   * on the whole output, so characters split across reads come out whole.
   * Bytes that are not UTF-8 are dealt with as `errors` says.
   *
   * @default {false}
   */
  text?: TText;
  /**
   * What decoding output as text (`text: true`, {@linkcode Popen.lines})
   * does with bytes that are not UTF-8: `"strict"` rejects with a
   * {@linkcode UnicodeDecodeError} that names the stream and holds the bytes;
   * `"replace"` puts U+FFFD in place of each bad sequence, as `TextDecoder`
   * does by default.
   *
   * Python's option, with Python's default: a replaced byte is data lost
   * without a word, and binary output read as text is a mistake best seen at
   * once, not in a corrupted file later. Choose `"replace"` for output that
   * is for people to read, where a stray byte should not stop anything.
   *
   * The output that a {@linkcode TimeoutExpiredError} carries is decoded
   * with `"replace"` whatever this says, so that the timeout is the error
   * you get.
   *
   * @default {"strict"}
   */
  errors?: "strict" | "replace";
  /** The child's working directory. @default {the parent's} */
  cwd?: string | URL;
  /** Environment variables to set on top of the parent's (or alone with `clearEnv`). @default {undefined} */
  env?: Record<string, string>;
  /** Start from an empty environment rather than the parent's. @default {false} */
  clearEnv?: boolean;
  /**
   * Run `cmd`, which must then be one string, with `/bin/sh -c`, as
   * Python's `shell=True` does: pipes, redirections, globs and `$VAR` work
   * in it. `args` is then `["/bin/sh", "-c", cmd]`.
   *
   * Never build the string from untrusted input (a file name, a form field,
   * a message): the shell acts on `;`, `|`, `$(…)`, backquotes, quotes and
   * globs wherever they appear, so a name such as `x; rm -rf ~` runs a
   * second command. Pass such values as separate arguments of an array
   * command, without a shell, or as the shell's positional parameters:
   * `run(["/bin/sh", "-c", 'wc -l "$1"', "sh", name])`.
   *
   * @default {false}
   */
  shell?: boolean;
  /**
   * Start the child in a new session (`setsid`), as Python's
   * `start_new_session=True` does: it leads its own session and process
   * group and has no controlling terminal, so the terminal's Ctrl-C and
   * hang-up do not reach it. Signals, kills, timeouts and aborts still go to
   * the child alone; `killTree` sends them to its whole group.
   *
   * @default {false}
   */
  startNewSession?: boolean;
  /**
   * Start the child as the leader of its own process group, and send every
   * signal, kill, timeout and abort to the whole group, so that the
   * grandchildren it started go too. The child is in a new session, as with
   * `startNewSession`, so the group also stops receiving the terminal's
   * Ctrl-C.
   *
   * @default {false}
   */
  killTree?: boolean;
  /** Kills the child when aborted. @default {undefined} */
  signal?: AbortSignal;
}

/** Options of {@linkcode run}, {@linkcode call}, {@linkcode checkCall} and {@linkcode checkOutput}. */
export interface RunOptions<TText extends boolean = boolean>
  extends Omit<PopenOptions<TText>, "stdin"> {
  /**
   * Data to write to the child's stdin, which is then closed. Cannot be used
   * together with `stdin`. A stream that fails kills the child, and the call
   * rejects with a {@linkcode SubprocessError} whose `cause` is the stream's
   * error; what the stream gave before is written first.
   *
   * @default {undefined}
   */
  input?: Input | ReadableStream<Uint8Array>;
  /** The child's stdin, when `input` is not given. @default {INHERIT} */
  stdin?: Stdio;
  /** Capture both stdout and stderr (`stdout: PIPE, stderr: PIPE`). @default {false} */
  capture?: boolean;
  /**
   * Milliseconds to wait for the child. Past it the child (its group with
   * `killTree`) is killed and reaped, and the call throws
   * {@linkcode TimeoutExpiredError} with the output read so far. `Infinity`
   * waits without limit, as leaving it out does; any finite value, however
   * large, is waited for in full.
   *
   * @default {undefined}
   */
  timeout?: number;
  /** Throw {@linkcode CalledProcessError} when the exit status is not 0. @default {false} */
  check?: boolean;
}

/** Options of {@linkcode Popen.communicate} and {@linkcode Popen.wait}. */
export interface WaitOptions {
  /**
   * Milliseconds to wait. Past it the call throws
   * {@linkcode TimeoutExpiredError} and the child keeps running; a later call
   * picks up where this one left off. `Infinity` waits without limit, as
   * leaving it out does.
   *
   * @default {undefined}
   */
  timeout?: number;
  /** Stop waiting when aborted (rejecting with its reason); the child keeps running. @default {undefined} */
  signal?: AbortSignal;
}

/** Options of {@linkcode Popen.lines}. */
export interface LinesOptions {
  /** Which piped output to read. @default {"stdout"} */
  from?: "stdout" | "stderr";
}

/** Options of the errors that carry a child's output. */
export interface OutputErrorOptions<T> extends ErrorOptions {
  /** The child's stdout, as read. @default {null} */
  stdout?: T | null;
  /** The child's stderr, as read. @default {null} */
  stderr?: T | null;
}

/**
 * The base class of this module's errors. Thrown as itself when a command
 * cannot be started (not found, not executable, bad `cwd`): the message
 * names the command and the reason, and the OS error is the `cause`.
 *
 * @example Catch a command that does not exist
 * ```ts
 * import { run, SubprocessError } from "@multiproc/multiproc/subprocess";
 * import { ok, rejects } from "node:assert/strict";
 *
 * await rejects(run(["no-such-command-here"]), (error) => {
 *   ok(error instanceof SubprocessError);
 *   ok(error.message.includes("not found in PATH"));
 *   return true;
 * });
 * ```
 */
export class SubprocessError extends Error {
  /**
   * Makes an error with `message`.
   *
   * @param message What went wrong.
   * @param options The `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A child exited with a status other than 0 where success was required
 * (`check: true`, {@linkcode checkCall}, {@linkcode checkOutput},
 * {@linkcode CompletedProcess.checkReturncode}).
 *
 * @typeParam T The type of the captured output.
 *
 * @example Inspect a failed command
 * ```ts
 * import { CalledProcessError, run } from "@multiproc/multiproc/subprocess";
 * import { equal, ok, rejects } from "node:assert/strict";
 *
 * await rejects(
 *   run(["sh", "-c", "echo oops >&2; exit 3"], { capture: true, text: true, check: true }),
 *   (error) => {
 *     ok(error instanceof CalledProcessError);
 *     equal(error.returncode, 3);
 *     equal(error.stderr, "oops\n");
 *     return true;
 *   },
 * );
 * ```
 */
export class CalledProcessError<T = Input> extends SubprocessError {
  /** The exit status, or `-N` for a child killed by signal N. */
  readonly returncode: number;
  /** The command that ran. */
  readonly cmd: readonly string[];
  /** Its stdout, when captured. */
  readonly stdout: T | null;
  /** Its stderr, when captured. */
  readonly stderr: T | null;

  /**
   * Makes the error for `cmd` having ended with `returncode`.
   *
   * @param returncode The exit status, or `-N` for signal N.
   * @param cmd The command that ran.
   * @param options The captured output.
   */
  constructor(
    returncode: number,
    cmd: readonly string[],
    options: OutputErrorOptions<T> = {},
  ) {
    super(
      `Command ${quoteCommand(cmd)} ${describeReturncode(returncode)}${
        lastLine(options.stderr)
      }`,
      options,
    );
    this.returncode = returncode;
    this.cmd = cmd;
    this.stdout = options.stdout ?? null;
    this.stderr = options.stderr ?? null;
  }
}

/**
 * A wait for a child ran out of time. From {@linkcode run} and its kin the
 * child has been killed and reaped; from {@linkcode Popen.communicate} and
 * {@linkcode Popen.wait} it is still running. `stdout` and `stderr` hold
 * what was read before the time ran out.
 *
 * @typeParam T The type of the captured output.
 *
 * @example A command that takes too long
 * ```ts
 * import { run, TimeoutExpiredError } from "@multiproc/multiproc/subprocess";
 * import { equal, ok, rejects } from "node:assert/strict";
 *
 * await rejects(
 *   run(["sh", "-c", "echo started; sleep 10"], { capture: true, text: true, timeout: 200 }),
 *   (error) => {
 *     ok(error instanceof TimeoutExpiredError);
 *     equal(error.stdout, "started\n");
 *     return true;
 *   },
 * );
 * ```
 */
export class TimeoutExpiredError<T = Input> extends SubprocessError {
  /** The command that was waited for. */
  readonly cmd: readonly string[];
  /** The time limit, in milliseconds. */
  readonly timeout: number;
  /** Stdout read before the time ran out, when piped. */
  readonly stdout: T | null;
  /** Stderr read before the time ran out, when piped. */
  readonly stderr: T | null;

  /**
   * Makes the error for `cmd` having taken longer than `timeout` ms.
   *
   * @param cmd The command.
   * @param timeout The limit, in milliseconds.
   * @param options The output read so far.
   */
  constructor(
    cmd: readonly string[],
    timeout: number,
    options: OutputErrorOptions<T> = {},
  ) {
    super(
      `Command ${quoteCommand(cmd)} timed out after ${timeout} ms`,
      options,
    );
    this.cmd = cmd;
    this.timeout = timeout;
    this.stdout = options.stdout ?? null;
    this.stderr = options.stderr ?? null;
  }
}

/** Options of {@linkcode UnicodeDecodeError}. */
export interface UnicodeDecodeErrorOptions extends ErrorOptions {
  /** Where `bytes` begin in the stream, for the message. @default {0} */
  offset?: number;
  /** Whether `bytes` are a line read by {@linkcode Popen.lines}, for the advice in the message. @default {false} */
  lines?: boolean;
}

/**
 * A child's output is not UTF-8, and it was to be decoded as text with
 * `errors: "strict"` (the default): Python's `UnicodeDecodeError`. Its own
 * class rather than the `TypeError` that `TextDecoder` throws, because the
 * data is at fault, not the call, and because it keeps the bytes, which a
 * command that has done its work may not give again.
 *
 * @example Binary output read as text
 * ```ts
 * import { run, UnicodeDecodeError } from "@multiproc/multiproc/subprocess";
 * import { deepEqual, equal, ok, rejects } from "node:assert/strict";
 *
 * await rejects(run(["printf", "ok\\377"], { capture: true, text: true }), (error) => {
 *   ok(error instanceof UnicodeDecodeError);
 *   equal(error.stream, "stdout");
 *   deepEqual([...error.bytes], [0x6f, 0x6b, 0xff]);
 *   equal(error.start, 2);
 *   return true;
 * });
 * const { stdout } = await run(["printf", "ok\\377"], { capture: true, text: true, errors: "replace" });
 * equal(stdout, "ok\uFFFD");
 * ```
 */
export class UnicodeDecodeError extends SubprocessError {
  /** The command whose output it is. */
  readonly cmd: readonly string[];
  /** Which output: `"stdout"` or `"stderr"`. */
  readonly stream: "stdout" | "stderr";
  /** The bytes that were being decoded: the whole output, or the line that {@linkcode Popen.lines} was reading. */
  readonly bytes: Uint8Array;
  /** The index in `bytes` of the first byte that is not UTF-8. */
  readonly start: number;

  /**
   * Makes the error for `bytes` of `cmd`'s `stream`, invalid from `start`.
   *
   * @param cmd The command.
   * @param stream Which output.
   * @param bytes The bytes that were being decoded.
   * @param start The index of the first byte that is not UTF-8.
   * @param options Where the bytes are, and the `cause`.
   */
  constructor(
    cmd: readonly string[],
    stream: "stdout" | "stderr",
    bytes: Uint8Array,
    start: number,
    options: UnicodeDecodeErrorOptions = {},
  ) {
    const byte = (bytes[start] ?? 0).toString(16).padStart(2, "0");
    super(
      `Cannot decode the ${stream} of ${
        quoteCommand(cmd)
      } as UTF-8: byte 0x${byte} at offset ${
        (options.offset ?? 0) + start
      } is not valid UTF-8: pass errors: "replace" to put U+FFFD in its place, or ${
        options.lines
          ? `read the bytes of ${stream} instead of lines`
          : "leave out text to get the bytes"
      }`,
      options,
    );
    this.cmd = cmd;
    this.stream = stream;
    this.bytes = bytes;
    this.start = start;
  }
}

/**
 * The result of {@linkcode run}: a child that has exited.
 *
 * @typeParam T The type of the captured output.
 *
 * @example Check the result afterwards
 * ```ts
 * import { run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const result = await run(["echo", "fine"], { capture: true, text: true });
 * equal(result.checkReturncode().stdout, "fine\n");
 * ```
 */
export class CompletedProcess<T = Input> {
  /** The command that ran. */
  readonly args: readonly string[];
  /** The exit status, or `-N` for a child killed by signal N. */
  readonly returncode: number;
  /** Its stdout, when piped. */
  readonly stdout: T | null;
  /** Its stderr, when piped. */
  readonly stderr: T | null;

  /**
   * Records how `args` ended.
   *
   * @param args The command that ran.
   * @param returncode Its exit status.
   * @param options Its captured output.
   */
  constructor(
    args: readonly string[],
    returncode: number,
    options: OutputErrorOptions<T> = {},
  ) {
    this.args = args;
    this.returncode = returncode;
    this.stdout = options.stdout ?? null;
    this.stderr = options.stderr ?? null;
  }

  /**
   * Throws when the exit status is not 0.
   *
   * @returns This result, for chaining.
   * @throws {CalledProcessError} when `returncode` is not 0.
   *
   * @example Fail loudly
   * ```ts
   * import { CalledProcessError, run } from "@multiproc/multiproc/subprocess";
   * import { throws } from "node:assert/strict";
   *
   * const result = await run(["false"]);
   * throws(() => result.checkReturncode(), CalledProcessError);
   * ```
   */
  checkReturncode(): this {
    if (this.returncode !== 0) {
      throw new CalledProcessError(this.returncode, this.args, this);
    }
    return this;
  }

  static {
    defineInspect(this, (result) => ({
      args: result.args,
      returncode: result.returncode,
      stdout: result.stdout,
      stderr: result.stderr,
    }));
  }
}

/** What {@linkcode Popen} has read from its child so far, decoded as error output is; for run(), set by the class itself. */
let outputSoFar: <TText extends boolean>(
  process: Popen<TText>,
) => [Output<TText> | null, Output<TText> | null];

/**
 * A running child process: Python's `subprocess.Popen`. It starts in the
 * constructor; its piped streams are web streams. Use
 * {@linkcode Popen.communicate} to exchange data without deadlocks, and
 * `await using` so that a child still running at the end of the scope is
 * killed and reaped.
 *
 * @typeParam TText `true` when created with `text: true`.
 *
 * @example Feed input to an interactive program
 * ```ts
 * import { PIPE, Popen } from "@multiproc/multiproc/subprocess";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using p = new Popen(["sort"], { stdin: PIPE, stdout: PIPE, text: true });
 * deepEqual(await p.communicate("b\na\n"), ["a\nb\n", null]);
 * ```
 *
 * @example Read output line by line as it comes
 * ```ts
 * import { PIPE, Popen } from "@multiproc/multiproc/subprocess";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * await using p = new Popen(["printf", "one\ntwo\n"], { stdout: PIPE });
 * const lines: string[] = [];
 * for await (const line of p) lines.push(line);
 * deepEqual(lines, ["one", "two"]);
 * equal(await p.wait(), 0);
 * ```
 *
 * @example A pipeline: `printf … | sort`
 * ```ts
 * import { PIPE, Popen } from "@multiproc/multiproc/subprocess";
 * import { deepEqual } from "node:assert/strict";
 *
 * await using producer = new Popen(["printf", "b\na\n"], { stdout: PIPE });
 * await using sorter = new Popen(["sort"], { stdin: producer.stdout!, stdout: PIPE, text: true });
 * deepEqual(await sorter.communicate(), ["a\nb\n", null]);
 * ```
 */
export class Popen<TText extends boolean = false> implements AsyncDisposable {
  /** The command, as given. */
  readonly args: readonly string[];
  /** The child's process id. */
  readonly pid: number;
  /** The child's stdin, when `stdin: PIPE`. */
  readonly stdin: WritableStream<Uint8Array> | null;
  #child: SpawnedChild;
  #exited: Promise<number>;
  #returncode: number | null = null;
  #text: boolean;
  #errors: "strict" | "replace";
  #killTree: boolean;
  #communication: Communication | undefined;
  /** The reader of the stream given as stdin, while it is pumped. */
  #pumpReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** Why the stream given as stdin failed while the child ran. */
  #inputFailure: SubprocessError | undefined;
  /** Rejects with {@linkcode Popen.#inputFailure} once the child has exited; pending otherwise. */
  #inputFailed: Promise<never> | undefined;

  /**
   * Starts `cmd`.
   *
   * @param cmd The program and its arguments, e.g. `["ls", "-l"]`; with
   * `shell: true`, one string for `/bin/sh -c`, e.g. `"ls -l | wc -l"`.
   * @param options How to start it and wire its streams.
   * @throws {TypeError} when `cmd` is not a non-empty array of strings (one
   * string with `shell: true`), an option is invalid, or the `stdin` stream
   * is locked.
   * @throws {SubprocessError} when the command cannot be started.
   */
  constructor(
    cmd: readonly string[] | string,
    options: PopenOptions<TText> = {},
  ) {
    const argv = commandArgv(cmd, options.shell);
    checkOptions(options);
    options.signal?.throwIfAborted();
    const pump = isStream(options.stdin) ? options.stdin : undefined;
    if (pump?.locked) {
      throw new TypeError(
        "Cannot read the input stream: it is locked by another reader: release its lock, or pass a stream nobody else reads",
      );
    }
    this.args = argv;
    this.#text = options.text === true;
    this.#errors = options.errors ?? "strict";
    this.#killTree = options.killTree === true;
    this.#child = startChild(
      this.args,
      options,
      pump ? PIPE : options.stdin as Stdio | undefined,
    );
    this.pid = this.#child.pid;
    this.stdin = pump ? null : this.#child.stdin;
    this.#exited = this.#child.exited.then((status) =>
      this.#returncode = returncodeOf(status)
    );
    if (pump) {
      this.#pumpReader = pump.getReader();
      this.#inputFailed = this.#pump(this.#pumpReader, this.#child.stdin!);
      this.#inputFailed.catch(() => {});
    }
    if (options.signal) this.#killOnAbort(options.signal);
  }

  /** The child's stdout, when `stdout: PIPE`. */
  get stdout(): ReadableStream<Uint8Array> | null {
    return this.#child.stdout?.stream ?? null;
  }

  /** The child's stderr, when `stderr: PIPE`. */
  get stderr(): ReadableStream<Uint8Array> | null {
    return this.#child.stderr?.stream ?? null;
  }

  /** The exit status once the child has exited, `-N` if signal N killed it; `null` while it runs. */
  get returncode(): number | null {
    return this.#returncode;
  }

  /**
   * Sends `input` to stdin and closes it, reads stdout and stderr to their
   * end, and waits for the child to exit — all at once, so that no pipe
   * fills up and blocks. On timeout the child keeps running and nothing read
   * is lost: call again (without input) to go on.
   *
   * @param input Data for stdin, which must be `PIPE`.
   * @param options A `timeout` and an abort `signal` for this call.
   * @returns `[stdout, stderr]`, each `null` where not piped.
   * @throws {TimeoutExpiredError} when `timeout` passes first, with the output so far.
   * @throws {UnicodeDecodeError} with `text` and `errors: "strict"` (the
   * default) when an output is not UTF-8.
   * @throws {SubprocessError} when the stream given as `stdin` failed, which
   * killed the child.
   * @throws {TypeError} when `input` is not a string or a Uint8Array, or is
   * given but stdin is not a pipe, or
   * after the communication has started, or when a stream is locked.
   *
   * @example With a timeout, then again
   * ```ts
   * import { PIPE, Popen, TimeoutExpiredError } from "@multiproc/multiproc/subprocess";
   * import { deepEqual, rejects } from "node:assert/strict";
   *
   * await using p = new Popen(["sh", "-c", "echo a; sleep 0.5; echo b"], { stdout: PIPE, text: true });
   * await rejects(p.communicate(undefined, { timeout: 100 }), TimeoutExpiredError);
   * deepEqual(await p.communicate(), ["a\nb\n", null]);
   * ```
   */
  async communicate(
    input?: Input,
    options: WaitOptions = {},
  ): Promise<[Output<TText> | null, Output<TText> | null]> {
    checkTimeout(options.timeout);
    checkInput(input, false);
    const communication = this.#communicationFor(
      input,
      options.timeout !== undefined || options.signal !== undefined,
    );
    const outcome = await waitAtMost(
      this.#inputFailed
        ? Promise.race([communication.done, this.#inputFailed])
        : communication.done,
      options.timeout,
      options.signal,
    );
    if (outcome === TIMED_OUT) {
      const [stdout, stderr] = communication.output();
      throw new TimeoutExpiredError(this.args, options.timeout!, {
        stdout: this.#decodeSoFar(stdout),
        stderr: this.#decodeSoFar(stderr),
      });
    }
    if (this.#inputFailure) throw this.#inputFailure;
    const [stdout, stderr] = communication.output();
    return [this.#decode(stdout, "stdout"), this.#decode(stderr, "stderr")];
  }

  #communicationFor(input: Input | undefined, live: boolean): Communication {
    if (this.#communication) {
      if (input !== undefined) {
        throw new TypeError(
          "Cannot send input after the communication has started: call communicate() again without input",
        );
      }
      return this.#communication;
    }
    if (input !== undefined && this.stdin === null) {
      throw new TypeError(
        "Cannot send input: stdin is not a pipe: create the Popen with { stdin: PIPE }",
      );
    }
    this.#communication = new Communication(
      {
        stdin: this.stdin,
        stdout: this.#child.stdout,
        stderr: this.#child.stderr,
        exited: this.#exited,
      },
      typeof input === "string" ? new TextEncoder().encode(input) : input,
      live,
    );
    return this.#communication;
  }

  #decode(
    bytes: Uint8Array | null,
    stream: "stdout" | "stderr",
  ): Output<TText> | null {
    if (bytes === null || !this.#text) return bytes as Output<TText> | null;
    try {
      return decodeText(bytes, this.#errors) as Output<TText>;
    } catch (error) {
      if (!(error instanceof InvalidUtf8Error)) throw error;
      throw new UnicodeDecodeError(this.args, stream, bytes, error.start, {
        cause: error.cause,
      });
    }
  }

  /** Output for an error: never fails, leaves out a character cut off at the end. */
  #decodeSoFar(bytes: Uint8Array | null): Output<TText> | null {
    if (bytes === null || !this.#text) return bytes as Output<TText> | null;
    return decodeUtf8(bytes, true) as Output<TText>;
  }

  static {
    outputSoFar = (process) => {
      const [stdout, stderr] = process.#communication?.output() ??
        [null, null];
      return [process.#decodeSoFar(stdout), process.#decodeSoFar(stderr)];
    };
    defineInspect(this, (process) => ({
      args: process.args,
      pid: process.pid,
      returncode: process.returncode,
    }));
  }

  /**
   * Waits for the child to exit. With piped output, read it meanwhile (or
   * use {@linkcode Popen.communicate}): a child blocked on a full pipe never
   * exits.
   *
   * @param options A `timeout` and an abort `signal` for this call.
   * @returns The returncode.
   * @throws {TimeoutExpiredError} when `timeout` passes first; the child keeps running.
   * @throws {SubprocessError} when the stream given as `stdin` failed, which
   * killed the child.
   *
   * @example Wait for exit
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Popen(["sh", "-c", "exit 4"]);
   * equal(await p.wait(), 4);
   * equal(p.returncode, 4);
   * ```
   */
  async wait(options: WaitOptions = {}): Promise<number> {
    checkTimeout(options.timeout);
    const outcome = await waitAtMost(
      this.#exited,
      options.timeout,
      options.signal,
    );
    if (outcome === TIMED_OUT) {
      throw new TimeoutExpiredError(this.args, options.timeout!);
    }
    if (this.#inputFailure) throw this.#inputFailure;
    return outcome;
  }

  /**
   * Checks whether the child has exited, without waiting.
   *
   * @returns The returncode, or `null` while it runs.
   *
   * @example Poll a running child
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * await using p = new Popen(["sleep", "10"]);
   * equal(p.poll(), null);
   * ```
   */
  poll(): number | null {
    return this.#returncode;
  }

  /**
   * Sends `signal` to the child (to its process group with `killTree`). Does
   * nothing once the child has exited.
   *
   * @param signal The signal's name, e.g. `"SIGINT"`.
   *
   * @example Interrupt a child
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Popen(["sleep", "10"]);
   * p.sendSignal("SIGINT");
   * equal(await p.wait(), -2);
   * ```
   */
  sendSignal(signal: Signal): void {
    if (this.#returncode !== null) return;
    this.#child.kill(signal, this.#killTree);
  }

  /**
   * Asks the child to stop with SIGTERM. Does nothing once it has exited.
   *
   * @example Terminate a child
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Popen(["sleep", "10"]);
   * p.terminate();
   * equal(await p.wait(), -15);
   * ```
   */
  terminate(): void {
    this.sendSignal("SIGTERM");
  }

  /**
   * Kills the child with SIGKILL. Does nothing once it has exited.
   *
   * @example Kill a child
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * const p = new Popen(["sleep", "10"]);
   * p.kill();
   * equal(await p.wait(), -9);
   * ```
   */
  kill(): void {
    this.sendSignal("SIGKILL");
  }

  /**
   * Reads a piped output as UTF-8 lines, without their line endings, as they
   * arrive. Leaving the loop early closes that pipe, so the child's next
   * write to it fails: SIGPIPE in Deno; in Node and Bun, whose child pipes
   * are socket pairs, a write error (`ECONNRESET`).
   *
   * @param options Which output to read.
   * @returns An async iterator of lines.
   * @throws {TypeError} when that output is not piped.
   * @throws {UnicodeDecodeError} with `errors: "strict"` (the default) when
   * a line is not UTF-8, after the lines before it.
   *
   * @example Lines of stderr
   * ```ts
   * import { PIPE, Popen } from "@multiproc/multiproc/subprocess";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using p = new Popen(["sh", "-c", "echo warn >&2"], { stderr: PIPE });
   * const lines: string[] = [];
   * for await (const line of p.lines({ from: "stderr" })) lines.push(line);
   * deepEqual(lines, ["warn"]);
   * ```
   */
  lines(options: LinesOptions = {}): AsyncGenerator<string, void, undefined> {
    const from = options.from ?? "stdout";
    const stream = this[from];
    if (stream === null) {
      throw new TypeError(
        `Cannot read lines of ${from}: it is not piped: create the Popen with { ${from}: PIPE }`,
      );
    }
    return readLines(
      stream,
      this.#errors,
      (bad) =>
        new UnicodeDecodeError(this.args, from, bad.bytes, bad.start, {
          offset: bad.offset,
          lines: true,
          cause: bad.cause,
        }),
    );
  }

  /**
   * Iterates over the lines of stdout: the same as {@linkcode Popen.lines}.
   *
   * @returns An async iterator of lines.
   *
   * @example Loop over output lines
   * ```ts
   * import { PIPE, Popen } from "@multiproc/multiproc/subprocess";
   * import { deepEqual } from "node:assert/strict";
   *
   * await using p = new Popen(["echo", "only"], { stdout: PIPE });
   * const lines: string[] = [];
   * for await (const line of p) lines.push(line);
   * deepEqual(lines, ["only"]);
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<string, void, undefined> {
    return this.lines();
  }

  /**
   * Kills the child if it still runs, reaps it, and closes the pipes nobody
   * reads, so that nothing is left behind. Called by `await using`.
   *
   * @example Scope a child
   * ```ts
   * import { Popen } from "@multiproc/multiproc/subprocess";
   * import { equal } from "node:assert/strict";
   *
   * let child: Popen;
   * {
   *   await using p = new Popen(["sleep", "10"]);
   *   child = p;
   * }
   * equal(child.returncode, -9);
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill();
    await this.#exited;
    // A stream given as stdin may wait for data that nobody needs now.
    this.#pumpReader?.cancel().catch(() => {});
    await Promise.all([
      this.#communication?.stopReading() ??
        Promise.all([
          this.#child.stdout?.cancel(),
          this.#child.stderr?.cancel(),
        ]),
      this.stdin && !this.stdin.locked
        ? this.stdin.abort().catch(() => {})
        : undefined,
    ]);
  }

  /**
   * Copies the stream given as stdin into the child, a chunk at a time:
   * each is written before the next is read, so that whatever the stream
   * gave before failing has reached the pipe. Never resolves when all goes
   * well; rejects with the failure once the child it killed has exited.
   */
  async #pump(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    stdin: WritableStream<Uint8Array>,
  ): Promise<never> {
    const writer = stdin.getWriter();
    let written = 0;
    while (true) {
      let chunk: Uint8Array;
      try {
        const { done, value } = await reader.read();
        if (done) break;
        chunk = checkChunk(value);
      } catch (error) {
        // After the child has exited its input no longer matters.
        if (this.#returncode !== null) break;
        this.#inputFailure = new SubprocessError(
          `The input stream of ${
            quoteCommand(this.args)
          } failed after ${written} byte${
            written === 1 ? "" : "s"
          }, so the command was killed: ${
            error instanceof Error ? error.message : String(error)
          }`,
          { cause: error },
        );
        // Killed before its stdin closes, so that it never takes the end of
        // the stream for the end of its input.
        this.kill();
        writer.abort(error).catch(() => {});
        reader.cancel(error).catch(() => {});
        await this.#exited;
        throw this.#inputFailure;
      }
      try {
        await writer.write(chunk);
        written += chunk.byteLength;
      } catch {
        // A child that exits without reading all its input is no error: the
        // rest of the stream is cancelled, as a shell pipeline would do.
        reader.cancel().catch(() => {});
        return new Promise<never>(() => {});
      }
    }
    this.#pumpReader = undefined;
    await writer.close().catch(() => {});
    return new Promise<never>(() => {});
  }

  #killOnAbort(signal: AbortSignal): void {
    const onAbort = (): void => this.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#exited.then(() => signal.removeEventListener("abort", onAbort));
  }
}

/**
 * Runs `cmd`, waits for it, and returns how it ended: Python's
 * `subprocess.run`. Output goes to the parent's unless piped; `capture`
 * pipes both.
 *
 * @typeParam TText `true` with `text: true`, for string output.
 * @param cmd The program and its arguments; with `shell: true`, one string
 * for `/bin/sh -c`.
 * @param options Input, stream wiring, `timeout`, `check`, environment.
 * @returns The finished process.
 * @throws {SubprocessError} when the command cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the child is killed and reaped).
 * @throws {UnicodeDecodeError} with `text` and `errors: "strict"` (the
 * default) when the output is not UTF-8.
 * @throws {CalledProcessError} with `check` when the status is not 0.
 * @throws {TypeError} when `cmd` or an option is invalid: a string without
 * `shell: true`, an array with it.
 * @throws The signal's reason when `signal` aborts (the child is killed and reaped).
 *
 * @example Capture text output
 * ```ts
 * import { run } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * const { stdout } = await run(["tr", "a-z", "A-Z"], { input: "shout\n", capture: true, text: true });
 * equal(stdout, "SHOUT\n");
 * ```
 *
 * @example A shell pipeline (never with untrusted input in the string)
 * ```ts
 * import { run } from "@multiproc/multiproc/subprocess";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const result = await run("printf 'b\\na\\n' | sort", { shell: true, capture: true, text: true });
 * equal(result.stdout, "a\nb\n");
 * deepEqual(result.args, ["/bin/sh", "-c", "printf 'b\\na\\n' | sort"]);
 * ```
 */
export async function run<TText extends boolean = false>(
  cmd: readonly string[] | string,
  options: RunOptions<TText> = {},
): Promise<CompletedProcess<Output<TText>>> {
  checkTimeout(options.timeout);
  checkRunStreams(options);
  options.signal?.throwIfAborted();
  const { input, stdin, capture, timeout, check, signal, ...rest } = options;
  const stream = isStream(input) ? input : undefined;
  const process = new Popen<TText>(cmd, {
    ...rest,
    stdin: stream ?? (input === undefined ? stdin : PIPE),
    stdout: capture ? PIPE : options.stdout,
    stderr: capture ? PIPE : options.stderr,
  });
  const [stdout, stderr] = await collect(
    process,
    stream ? undefined : input as Input | undefined,
    timeout,
    signal,
  );
  const result = new CompletedProcess(process.args, process.returncode!, {
    stdout,
    stderr,
  });
  return check ? result.checkReturncode() : result;
}

async function collect<TText extends boolean>(
  process: Popen<TText>,
  input: Input | undefined,
  timeout: number | undefined,
  signal: AbortSignal | undefined,
): Promise<[Output<TText> | null, Output<TText> | null]> {
  try {
    return await process.communicate(input, { timeout, signal });
  } catch (error) {
    if (!(error instanceof TimeoutExpiredError)) {
      await process[Symbol.asyncDispose]();
      throw error;
    }
    const [stdout, stderr] = await killAndDrain(process);
    throw new TimeoutExpiredError(process.args, timeout!, { stdout, stderr });
  }
}

/** How long a killed child's pipes may stay open, held by its own children, before we stop reading. */
const DRAIN_GRACE_MS = 50;

async function killAndDrain<TText extends boolean>(
  process: Popen<TText>,
): Promise<[Output<TText> | null, Output<TText> | null]> {
  process.kill();
  try {
    await process.wait();
    await process.communicate(undefined, { timeout: DRAIN_GRACE_MS });
  } catch (error) {
    // Output that is not UTF-8 must not hide the timeout.
    if (!(error instanceof UnicodeDecodeError)) {
      await process[Symbol.asyncDispose]();
      // The input stream failed before the kill: that is the error to report.
      if (!(error instanceof TimeoutExpiredError)) throw error;
    }
  }
  return outputSoFar(process);
}

/**
 * Runs `cmd` and returns its exit status: Python's `subprocess.call`.
 *
 * @param cmd The program and its arguments; with `shell: true`, one string
 * for `/bin/sh -c`.
 * @param options As for {@linkcode run}.
 * @returns The returncode (`-N` when killed by signal N).
 * @throws {SubprocessError} when the command cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the child is killed and reaped).
 *
 * @example Exit status of a command
 * ```ts
 * import { call } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * equal(await call(["sh", "-c", "exit 7"]), 7);
 * ```
 */
export async function call(
  cmd: readonly string[] | string,
  options: RunOptions = {},
): Promise<number> {
  return (await run(cmd, { ...options, check: false })).returncode;
}

/**
 * Runs `cmd` and requires it to succeed: Python's `subprocess.check_call`.
 *
 * @param cmd The program and its arguments; with `shell: true`, one string
 * for `/bin/sh -c`.
 * @param options As for {@linkcode run}.
 * @returns 0.
 * @throws {CalledProcessError} when the status is not 0.
 * @throws {SubprocessError} when the command cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the child is killed and reaped).
 *
 * @example Require success
 * ```ts
 * import { CalledProcessError, checkCall } from "@multiproc/multiproc/subprocess";
 * import { equal, rejects } from "node:assert/strict";
 *
 * equal(await checkCall(["true"]), 0);
 * await rejects(checkCall(["false"]), CalledProcessError);
 * ```
 */
export async function checkCall(
  cmd: readonly string[] | string,
  options: RunOptions = {},
): Promise<0> {
  await run(cmd, { ...options, check: true });
  return 0;
}

/**
 * Runs `cmd`, requires it to succeed, and returns its stdout: Python's
 * `subprocess.check_output`. Stderr goes to the parent's unless redirected.
 *
 * @typeParam TText `true` with `text: true`, for a string.
 * @param cmd The program and its arguments; with `shell: true`, one string
 * for `/bin/sh -c`.
 * @param options As for {@linkcode run}; `stdout` is always piped.
 * @returns The command's stdout.
 * @throws {CalledProcessError} when the status is not 0, with the output.
 * @throws {SubprocessError} when the command cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the child is killed and reaped).
 * @throws {UnicodeDecodeError} with `text` and `errors: "strict"` (the
 * default) when the output is not UTF-8.
 *
 * @example Read a command's answer
 * ```ts
 * import { checkOutput } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * equal(await checkOutput(["echo", "42"], { text: true }), "42\n");
 * ```
 */
export async function checkOutput<TText extends boolean = false>(
  cmd: readonly string[] | string,
  options: Omit<RunOptions<TText>, "stdout" | "capture"> = {},
): Promise<Output<TText>> {
  const result = await run<TText>(cmd, {
    ...options,
    stdout: PIPE,
    check: true,
  });
  return result.stdout!;
}

/** Options of {@linkcode getoutput} and {@linkcode getstatusoutput}. */
export type GetoutputOptions = Pick<
  RunOptions<true>,
  "cwd" | "env" | "clearEnv" | "errors" | "timeout" | "signal"
>;

/**
 * Runs `cmd` with `/bin/sh -c`, stderr merged into stdout, and returns its
 * exit status and output as text: Python's `subprocess.getstatusoutput`.
 * As in Python, line endings `\r\n` and `\r` become `\n` and one trailing
 * newline is stripped; a command killed by signal N gives `-N`. The exit
 * status is returned, never thrown.
 *
 * The string goes to the shell as it is: never build it from untrusted input
 * (see the `shell` option of {@linkcode run}).
 *
 * @param cmd The shell command line, e.g. `"ls -l | wc -l"`.
 * @param options `cwd`, `env`, `clearEnv`, `errors`, `timeout`, `signal`.
 * @returns `[returncode, output]`.
 * @throws {SubprocessError} when `/bin/sh` cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the shell is killed and reaped).
 * @throws {UnicodeDecodeError} with `errors: "strict"` (the default) when
 * the output is not UTF-8.
 * @throws {TypeError} when `cmd` is not a string or an option is invalid.
 * @throws The signal's reason when `signal` aborts (the shell is killed and reaped).
 *
 * @example Status and output together
 * ```ts
 * import { getstatusoutput } from "@multiproc/multiproc/subprocess";
 * import { deepEqual } from "node:assert/strict";
 *
 * deepEqual(await getstatusoutput("echo out; echo err >&2; exit 3"), [3, "out\nerr"]);
 * deepEqual(await getstatusoutput("kill -9 $$"), [-9, ""]);
 * ```
 */
export async function getstatusoutput(
  cmd: string,
  options: GetoutputOptions = {},
): Promise<[number, string]> {
  if (typeof cmd !== "string") {
    throw new TypeError(
      `Expected a command string, got ${
        Array.isArray(cmd) ? JSON.stringify(cmd) : describeValue(cmd)
      }: pass one string for /bin/sh, e.g. "ls -l | wc -l"${
        Array.isArray(cmd)
          ? `, or run the array with checkOutput(cmd, { stderr: STDOUT, text: true })`
          : ""
      }`,
    );
  }
  const { cwd, env, clearEnv, errors, timeout, signal } = options;
  const result = await run<true>(cmd, {
    shell: true,
    stdout: PIPE,
    stderr: STDOUT,
    text: true,
    cwd,
    env,
    clearEnv,
    errors,
    timeout,
    signal,
  });
  // Python reads the output with universal newlines, then drops one "\n".
  const output = result.stdout!.replace(/\r\n?/g, "\n");
  return [
    result.returncode,
    output.endsWith("\n") ? output.slice(0, -1) : output,
  ];
}

/**
 * Runs `cmd` with `/bin/sh -c`, stderr merged into stdout, and returns the
 * output as text whatever the exit status: Python's `subprocess.getoutput`.
 * Line endings become `\n` and one trailing newline is stripped, as with
 * {@linkcode getstatusoutput}.
 *
 * The string goes to the shell as it is: never build it from untrusted input
 * (see the `shell` option of {@linkcode run}).
 *
 * @param cmd The shell command line, e.g. `"ls -l | wc -l"`.
 * @param options `cwd`, `env`, `clearEnv`, `errors`, `timeout`, `signal`.
 * @returns The output.
 * @throws {SubprocessError} when `/bin/sh` cannot be started.
 * @throws {TimeoutExpiredError} when `timeout` passes (the shell is killed and reaped).
 * @throws {UnicodeDecodeError} with `errors: "strict"` (the default) when
 * the output is not UTF-8.
 * @throws {TypeError} when `cmd` is not a string or an option is invalid.
 * @throws The signal's reason when `signal` aborts (the shell is killed and reaped).
 *
 * @example One line of output
 * ```ts
 * import { getoutput } from "@multiproc/multiproc/subprocess";
 * import { equal } from "node:assert/strict";
 *
 * equal(await getoutput("echo hello | tr a-z A-Z"), "HELLO");
 * equal(await getoutput("echo oops >&2; exit 1"), "oops");
 * ```
 */
export async function getoutput(
  cmd: string,
  options: GetoutputOptions = {},
): Promise<string> {
  return (await getstatusoutput(cmd, options))[1];
}

function isStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof ReadableStream !== "undefined" &&
    value instanceof ReadableStream;
}

/** The shell that `shell: true` runs, as Python's `shell=True` does on POSIX. */
const SHELL = "/bin/sh";

/** The argv to start: `cmd` itself, or the shell running it with `shell: true`. */
function commandArgv(cmd: unknown, shell: unknown): string[] {
  if (shell !== undefined && typeof shell !== "boolean") {
    throw new TypeError(
      `Expected shell to be true or false, got ${describeValue(shell)}: ${
        typeof shell === "string"
          ? `to run another shell, pass ["${shell}", "-c", command] without shell`
          : "pass true to run a command string with /bin/sh"
      }`,
    );
  }
  if (shell === true) {
    if (typeof cmd !== "string") {
      throw new TypeError(
        `Expected a command string with shell: true, got ${
          Array.isArray(cmd) ? JSON.stringify(cmd) : describeValue(cmd)
        }: pass one string for /bin/sh, e.g. "ls -l | wc -l"${
          Array.isArray(cmd)
            ? ", or leave out shell to run the array without a shell"
            : ""
        }`,
      );
    }
    checkNoNul([cmd]);
    return [SHELL, "-c", cmd];
  }
  if (
    !Array.isArray(cmd) || cmd.length === 0 ||
    !cmd.every((arg) => typeof arg === "string")
  ) {
    const got = typeof cmd === "string"
      ? `"${cmd}": pass the program and its arguments as an array, e.g. ${
        JSON.stringify(cmd.split(" ").filter(Boolean))
      }, or pass shell: true to run the string with /bin/sh`
      : `"${
        Array.isArray(cmd) ? JSON.stringify(cmd) : String(cmd)
      }": pass the program and its arguments as a non-empty array of strings, e.g. ["ls", "-l"]`;
    throw new TypeError(
      `Expected a command as an array of strings, got ${got}`,
    );
  }
  checkNoNul(cmd);
  return [...cmd];
}

function checkNoNul(args: readonly string[]): void {
  const withNul = args.find((arg) => arg.includes("\0"));
  if (withNul !== undefined) {
    throw new TypeError(
      `Command arguments cannot contain NUL characters, got "${
        withNul.replaceAll("\0", "\\0")
      }": remove them`,
    );
  }
}

const STDIO_CHOICES = {
  stdin:
    'PIPE ("pipe"), DEVNULL ("null"), INHERIT ("inherit") or a ReadableStream of bytes',
  stdout: 'PIPE ("pipe"), DEVNULL ("null") or INHERIT ("inherit")',
  stderr:
    'PIPE ("pipe"), DEVNULL ("null"), INHERIT ("inherit") or STDOUT ("stdout")',
};

function checkStdio(name: "stdin" | "stdout" | "stderr", value: unknown): void {
  if (
    value === undefined || value === PIPE || value === DEVNULL ||
    value === INHERIT || (name === "stderr" && value === STDOUT) ||
    (name === "stdin" && isStream(value))
  ) {
    return;
  }
  const hint = value === STDOUT
    ? "only stderr can be STDOUT, which sends it down stdout's pipe"
    : name === "stdin" && (typeof value === "string" || isBytes(value))
    ? "to send data, pass it as input to run() or to communicate() with stdin: PIPE"
    : "pass one of those constants";
  throw new TypeError(
    `Expected ${name} to be ${STDIO_CHOICES[name]}, got ${
      describeValue(value)
    }: ${hint}`,
  );
}

function checkEnv(env: unknown): void {
  if (env === undefined) return;
  if (env === null || typeof env !== "object" || Array.isArray(env)) {
    throw new TypeError(
      `Expected env to be an object of strings, got ${
        describeValue(env)
      }: pass the variables as { NAME: "value" }`,
    );
  }
  for (const [key, value] of Object.entries(env)) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(key);
    const name = plain ? `env.${key}` : `env[${JSON.stringify(key)}]`;
    if (key === "" || key.includes("=") || key.includes("\0")) {
      throw new TypeError(
        `Expected environment variable names without "=" or NUL characters, got ${
          JSON.stringify(key)
        }: rename the variable`,
      );
    }
    if (typeof value !== "string") {
      throw new TypeError(
        `Expected ${name} to be a string, got ${
          describeValue(value)
        }: pass every value as a string, e.g. { ${
          plain ? key : JSON.stringify(key)
        }: "${
          ["number", "boolean", "bigint"].includes(typeof value)
            ? String(value)
            : "value"
        }" }, or leave the variable out`,
      );
    }
    if (value.includes("\0")) {
      throw new TypeError(
        `Expected ${name} without NUL characters, got "${
          value.replaceAll("\0", "\\0")
        }": remove them`,
      );
    }
  }
}

function checkOptions(options: PopenOptions<boolean>): void {
  checkStdio("stdin", options.stdin);
  checkStdio("stdout", options.stdout);
  checkStdio("stderr", options.stderr);
  checkEnv(options.env);
  const { errors } = options;
  if (errors !== undefined && errors !== "strict" && errors !== "replace") {
    throw new TypeError(
      `Expected errors to be "strict" or "replace", got ${
        describeValue(errors)
      }: pass one of those, or leave it out for "strict"`,
    );
  }
}

function isBytes(value: unknown): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer;
}

/** A value for an error message: quoted, with its type where the text hides it. */
function describeValue(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  // Unquoted, so that null is not taken for DEVNULL's "null".
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const name = (value as object).constructor?.name;
    if (name === undefined || name === "Object") return "an object";
    return `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;
  }
  return `"${String(value)}" (a ${typeof value})`;
}

function checkInput(input: unknown, streamToo: boolean): void {
  if (
    input === undefined || typeof input === "string" ||
    input instanceof Uint8Array || (streamToo && isStream(input))
  ) {
    return;
  }
  throw new TypeError(
    `Expected input to be ${
      streamToo
        ? "a string, a Uint8Array or a ReadableStream of bytes"
        : "a string or a Uint8Array"
    }, got ${describeValue(input)}: ${
      isBytes(input)
        ? "wrap the bytes as new Uint8Array(buffer)"
        : "convert it to text or bytes first"
    }`,
  );
}

function checkRunStreams(options: RunOptions<boolean>): void {
  checkInput(options.input, true);
  if (options.input !== undefined && options.stdin !== undefined) {
    throw new TypeError(
      "Cannot use both input and stdin: pass the data as input, or wire stdin yourself",
    );
  }
  if (
    options.capture &&
    (options.stdout !== undefined || options.stderr !== undefined)
  ) {
    throw new TypeError(
      "Cannot use capture together with stdout or stderr: capture pipes both; set stdout and stderr yourself instead",
    );
  }
}

function startChild(
  cmd: readonly string[],
  options: PopenOptions<boolean>,
  stdin: Stdio | undefined,
): SpawnedChild {
  const cwd = options.cwd instanceof URL
    ? fileURLToPath(options.cwd)
    : options.cwd;
  try {
    return spawnChild({
      command: cmd[0]!,
      args: cmd.slice(1),
      cwd,
      env: options.env,
      clearEnv: options.clearEnv === true,
      stdin: stdin ?? INHERIT,
      stdout: options.stdout ?? INHERIT,
      stderr: options.stderr ?? INHERIT,
      // A new session either way; killTree also signals the whole group.
      group: options.killTree === true || options.startNewSession === true,
    });
  } catch (error) {
    if (!(error instanceof SpawnFailure)) throw error;
    throw new SubprocessError(
      `Cannot run ${quoteCommand(cmd)}: ${error.problem.reason}`,
      { cause: error.cause ?? error },
    );
  }
}

function checkChunk(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  throw new TypeError(
    `Expected the input stream to yield Uint8Array chunks, got ${
      typeof chunk === "string"
        ? `the string "${chunk.slice(0, 40)}"`
        : `"${String(chunk)}"`
    }: encode text first, e.g. with stream.pipeThrough(new TextEncoderStream())`,
  );
}

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg)
    ? arg
    : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function quoteCommand(cmd: readonly string[]): string {
  return `"${cmd.map(quoteArg).join(" ")}"`;
}

function describeReturncode(returncode: number): string {
  return returncode < 0
    ? `died with signal ${signalName(-returncode)}`
    : `returned non-zero exit status ${returncode}`;
}

function lastLine(stderr: unknown): string {
  if (typeof stderr !== "string") return "";
  const line = stderr.trimEnd().split("\n").pop()?.trim();
  return line ? `: ${line}` : "";
}
