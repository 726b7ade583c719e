// Test helper: a real redis-server (Debian's package) on a free loopback
// port, in its own temporary directory, for the redis.ts tests. It runs in
// Deno on the sources and in Node and Bun on the npm build, so it uses
// node: APIs only, and talks raw RESP so it needs no Redis client.
//
// Nothing is left behind: a server dies with the test process even if a
// test forgets stop() or the process is SIGKILLed (_parent_guard.ts: the
// parent-death signal, or a watcher); a normal exit kills every server
// left and removes its directory; and the directories of a test process
// that died without exiting are removed by the next start.
//
// With `tls`, the server speaks only TLS (rediss://), with a throwaway CA
// and server certificate made by `openssl` in its directory; with
// `tls: "mutual"` it also wants a client certificate, which is made too.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  canSetDeathSignal,
  guarded,
  stopWatcher,
  watch,
} from "./_parent_guard.ts";

/** One RESP reply; an error inside an array (a failed command of `EXEC`) is an `Error`. */
export type RespValue = string | number | null | Error | RespValue[];

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Log every write to the append-only file, fsynced before the reply
   * (`--appendonly yes --appendfsync always`), so that what a client was
   * told is written survives {@linkcode RedisServer.kill} and comes back on
   * {@linkcode RedisServer.restart}.
   *
   * @default {false}
   */
  appendonly?: boolean;
  /**
   * A password clients must give (`requirepass`); {@linkcode RedisServer.url}
   * then carries it, for wrong-password tests build a URL from `port`.
   *
   * @default {undefined} (no password)
   */
  requirepass?: string;
  /**
   * Speak TLS only (`--tls-port`, `--port 0`), with a CA and a server
   * certificate for 127.0.0.1 made by `openssl` in the server's directory:
   * {@linkcode RedisServer.url} is then `rediss://…`, and clients must trust
   * {@linkcode RedisServer.ca}. With `"mutual"` clients must also show a
   * certificate of that CA (`--tls-auth-clients yes`):
   * {@linkcode RedisServer.clientCert} and its key.
   *
   * @default {false}
   */
  tls?: boolean | "mutual";
  /**
   * How long {@linkcode RedisServer.stop} waits for a SIGTERMed server to
   * exit before it sends SIGKILL, in ms.
   *
   * @default {10000}
   */
  stopTimeout?: number;
}

/** A running `redis-server` started by {@linkcode startRedis}. */
export interface RedisServer {
  /**
   * `redis://127.0.0.1:PORT` (`rediss://` with `tls`), with `:password@`
   * when `requirepass` was given.
   */
  readonly url: string;
  /** The loopback port it listens on, the same after a restart. */
  readonly port: number;
  /** Its temporary working directory (the append-only file, `redis.log`). */
  readonly dir: string;
  /**
   * With `tls`, the path of the CA certificate (PEM) that signed the
   * server's: what clients must trust (`NODE_EXTRA_CA_CERTS`); otherwise
   * `undefined`.
   */
  readonly ca: string | undefined;
  /**
   * With `tls: "mutual"`, the paths of a client certificate the CA signed
   * and of its key (PEM); otherwise `undefined`.
   */
  readonly clientCert: { cert: string; key: string } | undefined;
  /** The server process's pid; `undefined` once killed or stopped. */
  readonly pid: number | undefined;
  /** Sends one command over a new raw connection; a Redis error rejects. */
  command(...args: string[]): Promise<RespValue>;
  /**
   * Ends it (SIGTERM, then SIGKILL after `stopTimeout`), waits for it to
   * exit and removes its directory; idempotent.
   */
  stop(): Promise<void>;
  /** Kills it (SIGKILL) and waits for it to exit; the directory stays for a restart. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port and directory (stopping it first if it
   * runs), and waits until it answers and has loaded its append-only file.
   */
  restart(): Promise<void>;
  /** The same as {@linkcode RedisServer.stop}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** How long a server may take to answer PING before starting fails. */
const START_MS = 30_000;
/** How long a SIGTERMed server may take to exit before it is killed, by default. */
const STOP_MS = 10_000;
/** How often a starting server is asked whether it is ready. */
const POLL_MS = 20;
/** How many ports are tried when another program takes the free one first. */
const PORT_TRIES = 5;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Servers not stopped yet: at exit, whatever the tests did, their
// processes are killed and their directories removed.
const unstopped = new Set<RedisProcess>();
let exitHookInstalled = false;

// A normal exit kills the servers a test forgot and removes their
// directories; the parent-death signal or the watcher covers the others.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", killUnstopped);
  // Deno.exit() (as scripts/test.ts ends on a failure) fires only "unload".
  if (typeof globalThis.addEventListener === "function") {
    globalThis.addEventListener("unload", killUnstopped);
  }
}

// Synchronously, at exit: no event loop is left to wait on.
function killUnstopped(): void {
  for (const server of unstopped) server.killNow();
}

// The tests run wherever `redis-server` is on the PATH; say how to get it.
function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir === "") continue;
    try {
      if (statSync(join(dir, command)).isFile()) return join(dir, command);
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

// RESP's request form: an array of bulk strings.
function encodeCommand(args: string[]): Uint8Array {
  let text = `*${args.length}\r\n`;
  for (const arg of args) {
    text += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  }
  return encoder.encode(text);
}

// One reply at `offset` and where the next begins, or undefined while incomplete.
function parseReply(
  buffer: Uint8Array,
  offset: number,
): [RespValue, number] | undefined {
  const lineEnd = buffer.indexOf(0x0d, offset);
  if (lineEnd === -1 || lineEnd + 1 >= buffer.length) return undefined;
  const kind = String.fromCharCode(buffer[offset]!);
  const line = decoder.decode(buffer.subarray(offset + 1, lineEnd));
  const next = lineEnd + 2;
  switch (kind) {
    case "+":
      return [line, next];
    case "-":
      return [new Error(line), next];
    case ":":
      return [Number(line), next];
    case "$": {
      const length = Number(line);
      if (length < 0) return [null, next];
      if (buffer.length < next + length + 2) return undefined;
      return [
        decoder.decode(buffer.subarray(next, next + length)),
        next + length + 2,
      ];
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, at);
        if (item === undefined) return undefined;
        items.push(item[0]);
        at = item[1];
      }
      return [items, at];
    }
    default:
      throw new Error(`Unexpected RESP reply type ${JSON.stringify(kind)}`);
  }
}

/**
 * Sends `commands` to the Redis server on 127.0.0.1:`port` over one new raw
 * connection (no client library), after `AUTH password` when a password is
 * given, and returns the reply of each command. A Redis error reply
 * rejects with an `Error` carrying Redis's message, as do a refused or
 * dropped connection and a server that does not answer in `timeout` ms.
 *
 * @param port The server's loopback port.
 * @param commands The commands, each as its words: `[["SET", "k", "v"]]`.
 * @param options `password` to authenticate with; `timeout` in ms (default
 * 10 000); `ca`, the PEM text of the CA to trust, to speak TLS, with
 * `cert` and `key` (PEM text) for a server that wants a client certificate.
 * @returns The replies, in order.
 * @throws {Error} Redis's error reply, or the connection's error.
 */
export function redisCommands(
  port: number,
  commands: string[][],
  options: {
    password?: string;
    timeout?: number;
    ca?: string;
    cert?: string;
    key?: string;
  } = {},
): Promise<RespValue[]> {
  const { password, timeout = 10_000, ca, cert, key } = options;
  const all = password === undefined
    ? commands
    : [["AUTH", password], ...commands];
  return new Promise((resolve, reject) => {
    let buffer = new Uint8Array(0);
    const replies: RespValue[] = [];
    const socket: Socket = ca === undefined
      ? createConnection({ host: "127.0.0.1", port })
      : connectTls({ host: "127.0.0.1", port, ca, cert, key });
    // Ends the exchange once: the socket is always closed.
    const finish = (error?: Error): void => {
      socket.destroy();
      if (error) reject(error);
      else resolve(password === undefined ? replies : replies.slice(1));
    };
    socket.setTimeout(timeout, () =>
      finish(
        new Error(
          `Redis on 127.0.0.1:${port} did not answer within ${timeout} ms`,
        ),
      ));
    socket.on("error", finish);
    socket.on("close", () =>
      finish(
        new Error(`Redis on 127.0.0.1:${port} closed the connection`),
      ));
    socket.on("data", (chunk: Uint8Array) => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      let offset = 0;
      for (;;) {
        let parsed: [RespValue, number] | undefined;
        try {
          parsed = parseReply(buffer, offset);
        } catch (error) {
          return finish(error as Error);
        }
        if (parsed === undefined) break;
        if (parsed[0] instanceof Error) return finish(parsed[0]);
        replies.push(parsed[0]);
        offset = parsed[1];
      }
      buffer = buffer.slice(offset);
      if (replies.length === all.length) finish();
    });
    for (const command of all) socket.write(encodeCommand(command));
  });
}

// The kernel's choice of a free loopback port; it may be taken again
// before the server binds it, which start() retries.
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// Resolves after `ms`: the pause between readiness checks.
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Why a server that exited did so, from the end of its log.
function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, "redis.log"), "utf8").trim().split("\n")
      .slice(-5).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Temporary directories are named after the test process that made them. */
const DIR_PREFIX = "multiproc-redis-";

// Whether process `pid` exists (EPERM: it does, as another user's).
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

// A test process that died (SIGKILL, or a signal with no exit hook) took
// its servers with it but left their directories: the next start removes them.
function removeStaleDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice(DIR_PREFIX.length).split("-")[0]);
    if (!name.startsWith(DIR_PREFIX) || !(pid > 0) || alive(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

// Runs openssl; a failure says what it printed.
function openssl(dir: string, args: string[]): void {
  const result = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(
      `openssl ${args[0]} failed (exit ${result.status}): ${
        result.stderr || result.error
      }`,
    );
  }
}

/** A TLS server's certificate files, and a client's when it wants one. */
interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  client: { cert: string; key: string } | undefined;
}

// A throwaway CA (P-256, two days) and a certificate it signs for
// 127.0.0.1 and localhost, as a TLS client checks them (and, for mutual
// TLS, a client certificate); returns the files.
function makeCertificates(dir: string, mutual: boolean): TlsFiles {
  const days = "2";
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  openssl(dir, [
    "req",
    "-x509",
    ...curve,
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    days,
    "-subj",
    "/CN=multiproc test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  // A certificate of the CA for `name`, with `extensions`.
  const sign = (name: string, subject: string, extensions: string[]): void => {
    openssl(dir, [
      "req",
      "-new",
      ...curve,
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ]);
    writeFileSync(join(dir, `${name}.ext`), [...extensions, ""].join("\n"));
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      days,
      "-extfile",
      `${name}.ext`,
    ]);
  };
  const leaf = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
  ];
  sign("server", "/CN=127.0.0.1", [
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ...leaf,
    "extendedKeyUsage=serverAuth",
  ]);
  if (mutual) {
    sign("client", "/CN=multiproc test client", [
      ...leaf,
      "extendedKeyUsage=clientAuth",
    ]);
  }
  return {
    ca: join(dir, "ca.crt"),
    cert: join(dir, "server.crt"),
    key: join(dir, "server.key"),
    client: mutual
      ? { cert: join(dir, "client.crt"), key: join(dir, "client.key") }
      : undefined,
  };
}

// By pid, not ChildProcess.kill(): in Deno a second kill() of a child (the
// SIGKILL after a SIGTERM) sends nothing. A run that exited is not
// signalled: its pid may belong to another process by now.
function signalRun(child: ChildProcess, signal: "SIGTERM" | "SIGKILL"): void {
  if (child.pid === undefined) return;
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, signal);
  } catch {
    // Gone already.
  }
}

// A port another program holds, which a new port may avoid.
class PortTakenError extends Error {}

// One server: its settings, and the process of the current run.
class RedisProcess implements RedisServer {
  readonly url: string;
  readonly dir: string;
  readonly ca: string | undefined;
  readonly clientCert: { cert: string; key: string } | undefined;
  #port = 0;
  #options: StartRedisOptions;
  #tls: TlsFiles | undefined;
  #caText: string | undefined;
  #clientText: { cert: string; key: string } | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #watcher: ChildProcess | undefined;
  #removed = false;

  constructor(
    dir: string,
    port: number,
    options: StartRedisOptions,
    tls: TlsFiles | undefined,
  ) {
    this.dir = dir;
    this.#port = port;
    this.#options = options;
    this.#tls = tls;
    this.ca = tls?.ca;
    this.clientCert = tls?.client;
    this.#caText = tls && readFileSync(tls.ca, "utf8");
    this.#clientText = tls?.client && {
      cert: readFileSync(tls.client.cert, "utf8"),
      key: readFileSync(tls.client.key, "utf8"),
    };
    const auth = options.requirepass === undefined
      ? ""
      : `:${encodeURIComponent(options.requirepass)}@`;
    this.url = `${tls ? "rediss" : "redis"}://${auth}127.0.0.1:${port}`;
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  // The command line of a run; the same at every restart.
  #argv(): string[] {
    const { appendonly = false, requirepass } = this.#options;
    const tls = this.#tls;
    return [
      "redis-server",
      ...(tls === undefined ? ["--port", String(this.#port)] : [
        "--port",
        "0",
        "--tls-port",
        String(this.#port),
        "--tls-cert-file",
        tls.cert,
        "--tls-key-file",
        tls.key,
        "--tls-ca-cert-file",
        tls.ca,
        "--tls-auth-clients",
        tls.client === undefined ? "no" : "yes",
      ]),
      "--bind",
      "127.0.0.1",
      "--protected-mode",
      "yes",
      "--dir",
      this.dir,
      "--logfile",
      join(this.dir, "redis.log"),
      "--daemonize",
      "no",
      "--save",
      "",
      "--appendonly",
      appendonly ? "yes" : "no",
      ...(appendonly ? ["--appendfsync", "always"] : []),
      ...(requirepass === undefined ? [] : ["--requirepass", requirepass]),
      // Fault tests may need DEBUG (SLEEP, …); only local clients get it.
      "--enable-debug-command",
      "local",
    ];
  }

  // Starts a run and waits until it answers with its data loaded.
  async start(): Promise<void> {
    const argv = canSetDeathSignal() ? guarded(this.#argv()) : this.#argv();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
    let exited = false;
    let spawnError: Error | undefined;
    this.#exited = new Promise((resolve) => {
      child.once("exit", () => {
        exited = true;
        resolve();
      });
      child.once("error", (error) => {
        spawnError = error;
        exited = true;
        resolve();
      });
    });
    this.#child = child;
    unstopped.add(this);
    installExitHook();
    if (!canSetDeathSignal() && child.pid !== undefined) {
      this.#watcher = watch(child.pid);
    }
    const deadline = Date.now() + START_MS;
    try {
      for (;;) {
        if (exited) {
          const log = logTail(this.dir);
          if (log.includes("Address already in use")) {
            throw new PortTakenError(
              `Port ${this.#port} is taken by another program:\n${log}`,
            );
          }
          throw new Error(
            `redis-server exited as it started (exit code ${child.exitCode}, signal ${child.signalCode}):\n${log}`,
            { cause: spawnError },
          );
        }
        if (await this.#ready(child.pid)) break;
        if (Date.now() > deadline) {
          throw new Error(
            `redis-server did not answer PING on port ${this.#port} within ${START_MS} ms:\n${
              logTail(this.dir)
            }`,
          );
        }
        await sleep(POLL_MS);
      }
    } catch (error) {
      await this.kill();
      throw error;
    }
    // Only stop(), kill() and the exit hook end it: a forgotten server must
    // not keep the test process alive (it dies with the process).
    child.unref();
  }

  // PONG from this run's process (not a server that took the port first),
  // with the append-only file loaded (PING answers LOADING until then).
  async #ready(pid: number | undefined): Promise<boolean> {
    try {
      const [pong, info] = await redisCommands(
        this.#port,
        [["PING"], ["INFO", "server", "persistence"]],
        {
          password: this.#options.requirepass,
          timeout: 2_000,
          ca: this.#caText,
          ...this.#clientText,
        },
      );
      const text = String(info);
      return pong === "PONG" &&
        new RegExp(`^process_id:${pid}\r?$`, "m").test(text) &&
        /^loading:0\r?$/m.test(text) && !/^async_loading:1\r?$/m.test(text);
    } catch {
      return false;
    }
  }

  // Sends `signal` to the current run and waits for it to exit; a SIGTERM
  // it does not heed in time is followed by SIGKILL.
  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    // Waiting must keep the process alive until the exit is seen.
    child.ref();
    signalRun(child, signal);
    if (signal === "SIGTERM") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(
          () => resolve("late"),
          this.#options.stopTimeout ?? STOP_MS,
        );
      });
      const outcome = await Promise.race([this.#exited, late]);
      clearTimeout(timer);
      if (outcome === "late") signalRun(child, "SIGKILL");
    }
    await this.#exited;
    this.#child = undefined;
    this.#stopWatcher();
  }

  // The watcher's whole process group: the shell and its sleep.
  #stopWatcher(): void {
    stopWatcher(this.#watcher);
    this.#watcher = undefined;
  }

  command(...args: string[]): Promise<RespValue> {
    return redisCommands(this.#port, [args], {
      password: this.#options.requirepass,
      ca: this.#caText,
      ...this.#clientText,
    }).then((replies) => replies[0]!);
  }

  async stop(): Promise<void> {
    await this.#end("SIGTERM");
    if (!this.#removed) {
      this.#removed = true;
      unstopped.delete(this);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  kill(): Promise<void> {
    return this.#end("SIGKILL");
  }

  async restart(): Promise<void> {
    if (this.#removed) {
      throw new Error(
        `The redis-server on port ${this.#port} was stopped and its directory removed: start a new one with startRedis()`,
      );
    }
    await this.#end("SIGTERM");
    // The port was just released; a client of the old run may not have
    // noticed yet, but a listening socket binds again at once (Redis sets
    // SO_REUSEADDR), so only a program that took the port stops this.
    await this.start();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  // At exit, synchronously: no event loop is left to wait on.
  killNow(): void {
    if (this.#child !== undefined) signalRun(this.#child, "SIGKILL");
    this.#stopWatcher();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Starts a real `redis-server` for a test: on a free port of 127.0.0.1
 * (`--bind 127.0.0.1 --protected-mode yes`), in a new temporary directory,
 * without RDB snapshots (`--save ""`), with the append-only file when
 * `appendonly` is set, over TLS only with `tls`, and returns once it
 * answers PING. Call `stop()` at the end (or `await using`); a server a
 * test forgets still dies with the test process.
 *
 * @example
 * ```ts
 * await using server = await startRedis({ appendonly: true });
 * await server.command("SET", "k", "v");
 * await server.kill();
 * await server.restart();
 * await server.command("GET", "k"); // "v"
 * ```
 *
 * @param options `appendonly`, `requirepass`, `tls`.
 * @returns The running server.
 * @throws {Error} When `redis-server` (or, with `tls`, `openssl`) is not on
 * the PATH (the message names Debian's package), or it cannot start (the
 * message has its log).
 */
export async function startRedis(
  options: StartRedisOptions = {},
): Promise<RedisServer> {
  if (findOnPath("redis-server") === undefined) {
    throw new Error(
      `redis-server is not on the PATH (${process.env.PATH}): the Redis tests need a real server; install Debian's package with \`apt-get install redis-server\` (npm test does it when run as root)`,
    );
  }
  if (options.tls && findOnPath("openssl") === undefined) {
    throw new Error(
      `openssl is not on the PATH (${process.env.PATH}): the TLS tests make a throwaway CA and server certificate with it; install Debian's package with \`apt-get install openssl\``,
    );
  }
  removeStaleDirs();
  for (let attempt = 1;; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    let server: RedisProcess | undefined;
    try {
      const tls = options.tls
        ? makeCertificates(dir, options.tls === "mutual")
        : undefined;
      server = new RedisProcess(dir, await freePort(), options, tls);
      await server.start();
      return server;
    } catch (error) {
      if (server) await server.stop();
      else rmSync(dir, { recursive: true, force: true });
      if (!(error instanceof PortTakenError) || attempt === PORT_TRIES) {
        throw error;
      }
    }
  }
}
