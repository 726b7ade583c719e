#!/usr/bin/env node
/**
 * `multiproc-worker`: the worker host of a Redis pool as a command. Run it
 * on every machine that does work; it serves the tasks of every
 * `Pool` from `multiproc/redis` with the same `--name`, with a local pool of
 * `--processes` workers, and logs one line per start, stop, lost connection
 * and redelivery. SIGINT or SIGTERM stops it gracefully (tasks not started
 * go to other hosts at once, running ones finish); a second one stops it
 * now.
 *
 * ```sh
 * npx multiproc-worker --redis redis://10.0.0.5:6379 --name render --processes 8 ./tasks.ts
 * deno run -A jsr:@multiproc/multiproc/worker --redis redis://10.0.0.5:6379 --name render ./tasks.ts
 * ```
 *
 * @example Print the usage
 * ```ts
 * import { main } from "@multiproc/multiproc/worker";
 * import { equal } from "node:assert/strict";
 *
 * equal(await main(["--help"]), 0);
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { isMainModule } from "./process.ts";
import type { RedisTlsOptions, ServeOptions, WorkerHost } from "./redis.ts";
import { checkTlsUrl, type PemKind, pemText } from "./_redis_tls.ts";

const USAGE = `Usage: multiproc-worker [options] <task-module>

Serves the tasks of a Redis pool from this machine: a local pool of workers
fed with the tasks of every Pool (from multiproc/redis) with the same name.

Options:
  --redis URL                 Redis server (default: $REDIS_URL, else redis://127.0.0.1:6379);
                              credentials in the URL, rediss:// for TLS
  --tls-ca FILE               with rediss://: trust the CA certificates in FILE (PEM)
                              instead of the runtime's default ones
  --tls-cert FILE             with rediss://: the client certificate (PEM), for a server
                              that asks for one (tls-auth-clients); with --tls-key
  --tls-key FILE              the client certificate's private key (PEM, not encrypted)
  --name NAME                 the pool's name (required)
  --processes N               local workers (default: one per CPU)
  --backend worker|process    worker threads or child processes (default: worker)
  --max-tasks-per-child N     replace a worker after N tasks
  --allow-inline              also run inline functions sent by drivers: anyone
                              who can write to Redis can then run code here
  --help                      show this help

SIGINT or SIGTERM stops the host: tasks not started go back to other hosts,
running tasks finish; a second signal stops it at once.`;

/** Options of {@linkcode main}. */
export interface MainOptions {
  /** Where log lines and errors go. @default {console.error} */
  log?: (line: string) => void;
  /** Where the usage goes. @default {console.log} */
  print?: (text: string) => void;
}

/**
 * Runs the command with `args` (without the runtime and script): serves
 * until SIGINT or SIGTERM, then resolves with the exit code.
 *
 * @param args The command-line arguments, e.g. `["--name", "render", "./tasks.ts"]`.
 * @param options Where its output goes.
 * @returns 0 after a clean stop or `--help`, 2 for bad arguments, 1 when the
 * host cannot start.
 *
 * @example Bad arguments
 * ```ts
 * import { main } from "@multiproc/multiproc/worker";
 * import { equal } from "node:assert/strict";
 *
 * const lines: string[] = [];
 * equal(await main(["./tasks.ts"], { log: (line) => lines.push(line) }), 2);
 * equal(lines[0], "multiproc-worker: --name is required: pass the name the pools use, e.g. --name render (see --help)");
 * ```
 */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const log = options.log ?? console.error;
  const print = options.print ?? console.log;
  let parsed: { module: string | undefined; serve: ServeOptions } | "help";
  try {
    parsed = parse(args, log);
  } catch (error) {
    log(`multiproc-worker: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (parsed === "help") {
    print(USAGE);
    return 0;
  }
  let host: WorkerHost;
  try {
    // Loaded once the arguments are good: --help works without the client.
    const { serve } = await import("./redis.ts").catch(clientMissing);
    host = parsed.module === undefined
      ? await serve(parsed.serve)
      : await serve(parsed.module, parsed.serve);
  } catch (error) {
    log(`multiproc-worker: ${(error as Error).message}`);
    return 1;
  }
  await stopOnSignal(
    host,
    (line) => log(`${new Date().toISOString()} ${line}`),
  );
  return 0;
}

// Node's error for a missing package names it; this says what to do.
function clientMissing(error: unknown): never {
  if (/Cannot find (package|module) 'redis'/.test(String(error))) {
    throw new Error(
      "The Redis client is not installed: run npm install redis (the redis package, node-redis) next to multiproc",
      { cause: error },
    );
  }
  throw error;
}

// The first signal stops gently, a second at once.
function stopOnSignal(
  host: WorkerHost,
  log: (line: string) => void,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: string): void => {
      signals++;
      if (signals === 1) {
        log(
          `${host.id} ${signal}: stopping; tasks not started go to other hosts, running ones finish (send it again to stop now)`,
        );
        host.close().then(done, done);
      } else {
        log(`${host.id} ${signal}: stopping now`);
        host.terminate().then(done, done);
      }
    };
    const done = (): void => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

// Flags as the usage lists them; anything else is an error that says so.
function parse(
  args: string[],
  log: (line: string) => void,
): { module: string | undefined; serve: ServeOptions } | "help" {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      redis: { type: "string" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      name: { type: "string" },
      processes: { type: "string" },
      backend: { type: "string" },
      "max-tasks-per-child": { type: "string" },
      "allow-inline": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (values.name === undefined) {
    throw new TypeError(
      "--name is required: pass the name the pools use, e.g. --name render",
    );
  }
  if (positionals.length > 1) {
    throw new TypeError(
      `Expected one task module, got ${positionals.length} (${
        positionals.join(", ")
      }): pass the module last, e.g. multiproc-worker --name render ./tasks.ts`,
    );
  }
  if (positionals.length === 0 && !values["allow-inline"]) {
    throw new TypeError(
      "Expected a task module: pass its path last, e.g. ./tasks.ts (or --allow-inline to serve inline functions only)",
    );
  }
  const backend = values.backend;
  if (backend !== undefined && backend !== "worker" && backend !== "process") {
    throw new TypeError(
      `Expected --backend to be worker or process, got "${backend}"`,
    );
  }
  return {
    module: positionals[0],
    serve: {
      redis: values.redis,
      tls: tlsFiles(values),
      name: values.name,
      processes: count(values.processes, "--processes"),
      backend,
      maxTasksPerChild: count(
        values["max-tasks-per-child"],
        "--max-tasks-per-child",
      ),
      allowInline: values["allow-inline"] ?? false,
      log: (line: string) => log(`${new Date().toISOString()} ${line}`),
    },
  };
}

// The --tls-* files are read here, so that a bad one is named by its flag.
function tlsFiles(
  values: {
    redis?: string;
    "tls-ca"?: string;
    "tls-cert"?: string;
    "tls-key"?: string;
  },
): RedisTlsOptions | undefined {
  const flags = (["tls-ca", "tls-cert", "tls-key"] as const)
    .filter((flag) => values[flag] !== undefined);
  if (flags.length === 0) return undefined;
  checkTlsUrl(
    values.redis ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    `--${flags[0]}`,
  );
  if (
    (values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)
  ) {
    throw new TypeError(
      `Expected --tls-cert and --tls-key together, got only ${
        values["tls-cert"] === undefined ? "--tls-key" : "--tls-cert"
      }: a client certificate needs its private key`,
    );
  }
  return {
    ca: pemFile(values["tls-ca"], "--tls-ca", "certificate"),
    cert: pemFile(values["tls-cert"], "--tls-cert", "certificate"),
    key: pemFile(values["tls-key"], "--tls-key", "private key"),
  };
}

// A file that cannot be read or holds no PEM says which flag gave it.
function pemFile(
  path: string | undefined,
  flag: string,
  kind: PemKind,
): string | undefined {
  if (path === undefined) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(
      `Cannot read ${flag} ${JSON.stringify(path)} (${
        (error as Error).message.replace(/[.\s]+$/, "")
      }): pass the path of a readable PEM file with the ${kind}`,
      { cause: error },
    );
  }
  return pemText(bytes, `${flag} ${JSON.stringify(path)}`, kind);
}

// Counts arrive as text and must be whole and positive.
function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Expected ${flag} to be a whole number >= 1, got "${text}"`,
    );
  }
  return value;
}

// Exits when done: a signal listener removed in Deno would otherwise leave
// the signal's default action to end the process.
if (isMainModule(import.meta)) process.exit(await main(process.argv.slice(2)));
