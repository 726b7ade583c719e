/**
 * The same `Pool` on many machines, over Redis (≥ 6.2, or a compatible
 * server): change the import, keep the code, as Ray's
 * `ray.util.multiprocessing.Pool` lets Python users do.
 *
 * Every machine that does work runs a worker host: `multiproc-worker --redis
 * URL --name NAME ./tasks.ts` (or {@linkcode serve} in code), a local pool fed
 * from the pool's Redis stream. A {@linkcode Pool} made with the same `name`
 * sends its tasks there and gets their results back, with the local pool's
 * methods, ordering and errors.
 *
 * Delivery is at least once: a task whose host dies or loses Redis goes to
 * another host after `visibilityTimeout` (a live host extends its claim while
 * a long task runs), and fails with `WorkerExitError` after `maxDeliveries`;
 * the caller gets each result once. Inline functions run only on hosts
 * started with `--allow-inline`. Credentials come from the URL (or
 * `REDIS_URL`); `rediss://` is TLS, with a private CA or a client
 * certificate in the `tls` option. All keys of a pool share the hash tag
 * `{multiproc:<name>}`, so a Redis Cluster works.
 *
 * The client is the `redis` package (node-redis): in Node and Bun install it
 * beside this package (`npm install redis`); Deno fetches it. Deno needs
 * `--allow-net` for the server, plus what a local pool needs.
 *
 * ```ts
 * import { Pool, serve } from "@multiproc/multiproc/redis";
 * import { deepEqual } from "node:assert/strict";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * // A worker host: usually `multiproc-worker` on each machine.
 * await using _host = await serve({ redis, name: "module-doc", processes: 1, allowInline: true });
 * await using pool = new Pool({ redis, name: "module-doc" });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * ```
 *
 * @module
 */
import process from "node:process";
import { defineInspect } from "./_inspect.ts";
import { checkPositive, Submitter } from "./_submit.ts";
import { RedisDriver } from "./_redis_driver.ts";
import { Host } from "./_redis_host.ts";
import { decodeItem, QueueLink, QueueRefusal } from "./_redis_queue.ts";
import { text } from "./_redis_wire.ts";
import { checkTls, checkTlsUrl, type TlsSettings } from "./_redis_tls.ts";
import { QueueClosedError, QueueEmptyError, QueueFullError } from "./queue.ts";
import type { AnyFunction } from "./_values.ts";
import { MAP_CHUNK, STARMAP_CHUNK } from "./_wire.ts";
import {
  type ApplyAsyncOptions,
  type ApplyParams,
  AsyncResult,
  type MapOptions,
  type PoolOptions,
  type SubmitOptions,
  type TaskArgs,
  type TaskName,
  type TaskResult,
  type UntypedTasks,
} from "./pool.ts";

// The local pool's types are this pool's too; its own Pool is shadowed.
export type * from "./pool.ts";
export { TimeoutError, WorkerExitError } from "./_errors.ts";
export { QueueClosedError, QueueEmptyError, QueueFullError } from "./queue.ts";

/**
 * TLS settings of a `rediss://` connection, as node-redis's
 * `socket: { tls: true, … }` and `node:tls` take them. Certificates and
 * keys are PEM text (a string, or bytes such as `await readFile(path)`), not
 * paths: read the files first (`multiproc-worker` reads them for its
 * `--tls-ca`, `--tls-cert` and `--tls-key` flags). A `tls` option with a
 * `redis://` URL is a `TypeError`, as in node-redis: write `rediss://`.
 *
 * @example PEM text, not a path
 * ```ts
 * import { Queue } from "@multiproc/multiproc/redis";
 * import { throws } from "node:assert/strict";
 *
 * const redis = "rediss://redis.internal:6380";
 * // As it should be: tls: { ca: await readFile("ca.pem") }, and for mutual
 * // TLS cert: await readFile("client.pem"), key: await readFile("client.key").
 * throws(
 *   () => new Queue({ redis, name: "jobs", tls: { ca: "ca.pem" } }),
 *   /Expected tls.ca to hold a PEM certificate .* it looks like a path/,
 * );
 * ```
 */
export interface RedisTlsOptions {
  /**
   * The CA certificates (PEM) to trust, instead of the runtime's default
   * ones, e.g. a private CA that signed the server's certificate.
   *
   * @default {undefined} (the runtime's trusted CAs, plus NODE_EXTRA_CA_CERTS)
   */
  ca?: string | Uint8Array;
  /**
   * A client certificate (PEM), for a server that asks for one
   * (`tls-auth-clients yes`); with `key`.
   *
   * @default {undefined} (none)
   */
  cert?: string | Uint8Array;
  /**
   * The client certificate's private key (PEM, not encrypted); with `cert`.
   *
   * @default {undefined} (none)
   */
  key?: string | Uint8Array;
  /**
   * Whether a server certificate that the CAs do not vouch for (or that
   * names another host) fails the connection. `false` is for tests only:
   * anyone on the network could then read and change the traffic.
   *
   * @default {true}
   */
  rejectUnauthorized?: boolean;
  /**
   * The host name the server's certificate must carry (and the TLS SNI), when
   * the URL's host is not on it, e.g. an IP address.
   *
   * @default {the URL's host when it is a name, none for an IP address}
   */
  servername?: string;
}

/** Where a Redis pool or host connects, and which pool it is. */
export interface RedisOptions {
  /**
   * The server's URL, with credentials if it needs them:
   * `redis://user:password@host:6379/0`, or `rediss://…` for TLS.
   *
   * @default {the REDIS_URL environment variable, else "redis://127.0.0.1:6379"}
   */
  redis?: string;
  /**
   * TLS settings for a `rediss://` URL: the CA to trust, a client
   * certificate. A `rediss://` URL without them trusts the runtime's CAs.
   *
   * @default {undefined}
   */
  tls?: RedisTlsOptions;
  /** The pool's name: drivers and hosts with the same name work together. */
  name: string;
}

/** Options of a Redis {@linkcode Pool}. */
export interface RedisPoolOptions extends RedisOptions {
  /**
   * How long a host may hold a task without a word before it is delivered
   * to another host, in ms. A live host extends its claim every third of
   * this, however long the task runs.
   *
   * @default {30000}
   */
  visibilityTimeout?: number;
  /**
   * How many times a task is handed to a host before it fails with
   * `WorkerExitError` (each time its host died or lost Redis).
   *
   * @default {3}
   */
  maxDeliveries?: number;
  /**
   * The most tasks (calls or chunks) this pool has in Redis at once;
   * beyond it, submissions wait. `imap` keeps at most this many chunks in
   * flight.
   *
   * @default {unlimited; imap keeps 256 chunks in flight}
   */
  maxQueue?: number;
  /**
   * How long results wait in Redis for a pool that went away, in ms. (Hosts
   * drop the tasks of a pool silent for twice its `visibilityTimeout`, from
   * 2 s to a minute; a pool that comes back sends them again.)
   *
   * @default {3600000}
   */
  resultTtl?: number;
}

/** Options of {@linkcode serve}: a local pool's options, and where to serve. */
export interface ServeOptions extends RedisOptions, PoolOptions {
  /**
   * Run inline functions sent by drivers (their source). Anyone who can
   * write to the Redis server could then run code on this machine: allow it
   * only where every writer is trusted.
   *
   * @default {false}
   */
  allowInline?: boolean;
  /**
   * Where the host's log lines go (one per start, stop, lost connection and
   * redelivery), or `false` for none.
   *
   * @default {false}
   */
  log?: ((line: string) => void) | false;
}

/** A worker host as {@linkcode RedisPoolStats} lists it. */
export interface HostInfo {
  /** The host's id: machine name, pid and a random suffix. */
  id: string;
  /** The machine's name. */
  host: string;
  /** The host process's id on its machine. */
  pid: number;
  /** Its local pool's size. */
  processes: number;
  /** Its local pool's backend: `"worker"` or `"process"`. */
  backend: string;
  /** Tasks it holds now. */
  running: number;
  /** Tasks it has finished since it started. */
  completed: number;
  /** When it last said it lives. */
  lastHeartbeat: Date;
}

/** What {@linkcode Pool.stats} reports. */
export interface RedisPoolStats {
  /** The pool's name. */
  name: string;
  /** This pool's state: running, closed to new tasks, or stopped. */
  state: "running" | "closed" | "terminated";
  /** This pool's tasks that wait for a result. */
  pending: number;
  /** This pool's tasks that succeeded. */
  completed: number;
  /** This pool's tasks that failed. */
  failed: number;
  /** Stream entries of every driver of this name not yet taken by a host (tasks submitted together share one). */
  queued: number;
  /** Stream entries of every driver of this name that hosts hold now. */
  inFlight: number;
  /** Tasks delivered again, by every driver of this name, ever. */
  redelivered: number;
  /** The hosts that said they live in the last 10 s, with their last heartbeat. */
  hosts: HostInfo[];
}

/** imap's window when neither maxQueue nor the hosts say otherwise. */
const DEFAULT_WINDOW = 256;
/** Chunks of a map are sized for this many workers until hosts report theirs. */
const DEFAULT_WORKERS = 4;
/** Hosts silent for longer are left out of the default chunk size. */
const LIVE_HOST_MS = 10_000;

// The URL comes from the options, the environment, or the default port.
function redisUrl(url: unknown): string {
  if (url === undefined) {
    return process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  }
  if (
    typeof url !== "string" || !/^rediss?:\/\//.test(url) || !URL.canParse(url)
  ) {
    throw new TypeError(
      `Expected redis to be a redis:// or rediss:// URL, got ${
        JSON.stringify(url) ?? String(url)
      }: pass e.g. "redis://127.0.0.1:6379", or leave it out to use REDIS_URL`,
    );
  }
  return url;
}

// TLS settings go with a rediss:// URL only, as node-redis has them.
function tlsFor(tls: unknown, url: string): TlsSettings | undefined {
  const settings = checkTls(tls);
  if (settings !== undefined) checkTlsUrl(url, "the tls option");
  return settings;
}

/**
 * A pool whose workers are on other machines: Python's `multiprocessing.Pool`
 * over Redis, with the local {@linkcode import("./pool.ts").Pool}'s methods,
 * results, ordering and errors. Tasks run on the worker hosts serving the
 * same `name` (`multiproc-worker`, or {@linkcode serve}); they are the exports
 * of the hosts' task module (typed with `Pool<typeof import("./tasks.ts")>`)
 * or inline functions, which hosts run only with `--allow-inline`.
 *
 * The pool connects in the background; an unreachable server or a wrong
 * password fails the first call with a message that says which. While tasks
 * are pending it keeps the program alive; close or terminate it (or use
 * `await using`) to let go of Redis.
 *
 * @typeParam M The task module's type: `typeof import("./tasks.ts")`.
 *
 * @example Map over the hosts
 * ```ts
 * import { Pool, serve } from "@multiproc/multiproc/redis";
 * import { deepEqual } from "node:assert/strict";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * await using _host = await serve({ redis, name: "pool-doc", processes: 2, allowInline: true });
 * await using pool = new Pool({ redis, name: "pool-doc" });
 * deepEqual(await pool.map((x: number) => x * x, [1, 2, 3]), [1, 4, 9]);
 * deepEqual(await pool.starmap((a: number, b: number) => a + b, [[1, 2], [3, 4]]), [3, 7]);
 * ```
 */
export class Pool<M extends object = UntypedTasks> implements AsyncDisposable {
  #name: string;
  #driver: RedisDriver;
  #submitter: Submitter;
  #hostWorkers = DEFAULT_WORKERS;

  /**
   * Connects to Redis in the background.
   *
   * @param options Where, which pool, and how deliveries are retried.
   * @throws {TypeError} when `name`, `redis` or `tls` is not valid.
   * @throws {RangeError} when a count or duration is not a whole number >= 1.
   */
  constructor(options: RedisPoolOptions) {
    const name = options?.name;
    const url = redisUrl(options?.redis);
    const tls = tlsFor(options.tls, url);
    checkPositive(options.visibilityTimeout, "visibilityTimeout");
    checkPositive(options.maxDeliveries, "maxDeliveries");
    checkPositive(options.maxQueue, "maxQueue");
    checkPositive(options.resultTtl, "resultTtl");
    this.#driver = new RedisDriver({
      url,
      tls,
      name,
      visibilityTimeout: options.visibilityTimeout ?? 30_000,
      maxDeliveries: options.maxDeliveries ?? 3,
      maxQueue: options.maxQueue,
      resultTtl: options.resultTtl ?? 3_600_000,
    });
    this.#name = name;
    const window = options.maxQueue ?? DEFAULT_WINDOW;
    this.#submitter = new Submitter(this.#driver, {
      // A map is chunked for the hosts that live now.
      workers: () =>
        this.stats().then(() => this.#hostWorkers, () => this.#hostWorkers),
      window: () => window,
    });
  }

  /**
   * Runs one task on a host and waits for its result: Python's `apply`.
   *
   * @param task An export name of the hosts' module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options.
   * @returns The task's result.
   * @throws The task's error (same built-in class, or an `Error` with its name), {@linkcode TimeoutError}, {@linkcode WorkerExitError}, the signal's reason, or the reason Redis cannot be reached.
   * @throws {TypeError} when an argument cannot be copied.
   *
   * @example Apply
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "apply-doc", processes: 1, allowInline: true });
   * await using pool = new Pool({ redis, name: "apply-doc" });
   * equal(await pool.apply((a: number, b: number) => a * b, [6, 7]), 42);
   * ```
   */
  apply<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<TaskArgs<M, K>, SubmitOptions>
  ): Promise<TaskResult<M, K>>;
  /**
   * Runs a self-contained function (sent by its source) on a host: see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options.
   * @returns The function's result.
   */
  apply<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, SubmitOptions>
  ): Promise<Awaited<R>>;
  apply(
    task: string | AnyFunction,
    args: unknown[] = [],
    options?: SubmitOptions,
  ): Promise<unknown> {
    try {
      return this.#submitter.apply(task, args, options).promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits one task and returns at once: Python's `apply_async`.
   *
   * @param task An export name of the hosts' module, or a self-contained function.
   * @param params The arguments (an array; optional for tasks without any), then options with `callback` and `errorCallback`.
   * @returns The pending result.
   * @throws {TypeError} when an argument cannot be copied.
   * @throws {Error} when the pool is closed or terminated.
   *
   * @example Submit, then wait at most ten seconds
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "apply-async-doc", processes: 1, allowInline: true });
   * await using pool = new Pool({ redis, name: "apply-async-doc" });
   * const result = pool.applyAsync((x: number) => x * 2, [21]);
   * equal(await result.get({ timeout: 10_000 }), 42);
   * ```
   */
  applyAsync<K extends TaskName<M>>(
    task: K,
    ...params: ApplyParams<
      TaskArgs<M, K>,
      ApplyAsyncOptions<TaskResult<M, K>>
    >
  ): AsyncResult<TaskResult<M, K>>;
  /**
   * Submits a self-contained function (sent by its source): see the overload above.
   *
   * @param task A function that uses only its parameters and globals.
   * @param params The arguments, then options with `callback` and `errorCallback`.
   * @returns The pending result.
   */
  applyAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    ...params: ApplyParams<A, ApplyAsyncOptions<Awaited<R>>>
  ): AsyncResult<Awaited<R>>;
  applyAsync(
    task: string | AnyFunction,
    args: unknown[] = [],
    // deno-lint-ignore no-explicit-any
    options?: ApplyAsyncOptions<any>,
  ): AsyncResult<unknown> {
    return new AsyncResult(this.#submitter.apply(task, args, options).promise);
  }

  /**
   * Applies `task` to every item on the hosts and returns the results in
   * order: Python's `map`. The items go in chunks (by default about four
   * per worker of the live hosts); the first error fails the map and
   * withdraws the chunks no host has taken.
   *
   * @param task An export name of the hosts' module, or a self-contained function of one argument.
   * @param items The items: any iterable or async iterable (read whole first).
   * @param options `chunksize`, `timeout` and `signal` (per chunk).
   * @returns The results, in the order of the items.
   * @throws The first task error, {@linkcode TimeoutError}, {@linkcode WorkerExitError}, or the signal's reason.
   *
   * @example Map
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "map-doc", processes: 2, allowInline: true });
   * await using pool = new Pool({ redis, name: "map-doc" });
   * deepEqual(await pool.map((x: number) => x + 1, [1, 2, 3], { chunksize: 2 }), [2, 3, 4]);
   * ```
   */
  map<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * Applies a self-contained function to every item: see the overload above.
   *
   * @param task A function of one argument that uses only it and globals.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  map<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  map(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#submitter.mapAll(task, items, MAP_CHUNK, options);
  }

  /**
   * {@linkcode Pool.map}, returning at once: Python's `map_async`.
   *
   * @param task An export name of the hosts' module, or a self-contained function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending results.
   *
   * @example Map in the background
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "map-async-doc", processes: 1, allowInline: true });
   * await using pool = new Pool({ redis, name: "map-async-doc" });
   * const result = pool.mapAsync((x: number) => x * 10, [1, 2]);
   * deepEqual(await result.get(), [10, 20]);
   * ```
   */
  mapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * {@linkcode Pool.map} of a self-contained function, returning at once.
   *
   * @param task A function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending results.
   */
  mapAsync<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  mapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(
      this.#submitter.mapAll(task, items, MAP_CHUNK, options),
    );
  }

  /**
   * Like {@linkcode Pool.map}, with each item spread into the task's
   * arguments: Python's `starmap`.
   *
   * @param task An export name of the hosts' module, or a self-contained function.
   * @param items Argument arrays.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   *
   * @example Starmap
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "starmap-doc", processes: 1, allowInline: true });
   * await using pool = new Pool({ redis, name: "starmap-doc" });
   * deepEqual(await pool.starmap(Math.max, [[1, 5], [7, 2]]), [5, 7]);
   * ```
   */
  starmap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): Promise<TaskResult<M, K>[]>;
  /**
   * {@linkcode Pool.starmap} of a self-contained function.
   *
   * @param task A function.
   * @param items Argument arrays.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  starmap<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]>;
  starmap(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): Promise<unknown[]> {
    return this.#submitter.mapAll(task, items, STARMAP_CHUNK, options);
  }

  /**
   * {@linkcode Pool.starmap}, returning at once: Python's `starmap_async`.
   *
   * @param task An export name of the hosts' module, or a self-contained function.
   * @param items Argument arrays.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending results.
   *
   * @example Starmap in the background
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "starmap-async-doc", processes: 1, allowInline: true });
   * await using pool = new Pool({ redis, name: "starmap-async-doc" });
   * deepEqual(await pool.starmapAsync((a: number, b: number) => a - b, [[5, 1]]), [4]);
   * ```
   */
  starmapAsync<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>> | AsyncIterable<TaskArgs<M, K>>,
    options?: MapOptions,
  ): AsyncResult<TaskResult<M, K>[]>;
  /**
   * {@linkcode Pool.starmapAsync} of a self-contained function.
   *
   * @param task A function.
   * @param items Argument arrays.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The pending results.
   */
  starmapAsync<A extends unknown[], R>(
    task: (...args: A) => R,
    items: Iterable<A> | AsyncIterable<A>,
    options?: MapOptions,
  ): AsyncResult<Awaited<R>[]>;
  starmapAsync(
    task: string | AnyFunction,
    items: Iterable<unknown[]> | AsyncIterable<unknown[]>,
    options?: MapOptions,
  ): AsyncResult<unknown[]> {
    return new AsyncResult(
      this.#submitter.mapAll(task, items, STARMAP_CHUNK, options),
    );
  }

  /**
   * Yields the results in the order of the items, pulling the items lazily
   * with a bounded number of chunks in Redis at once (backpressure across
   * the network): Python's `imap`. Leaving the loop withdraws the chunks no
   * host has taken.
   *
   * @param task An export name of the hosts' module, or a self-contained function of one argument.
   * @param items Any iterable or async iterable, possibly endless.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns The results, in order.
   *
   * @example Stream the results
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "imap-doc", processes: 2, allowInline: true });
   * await using pool = new Pool({ redis, name: "imap-doc" });
   * const squares = [];
   * for await (const y of pool.imap((x: number) => x * x, [1, 2, 3])) squares.push(y);
   * deepEqual(squares, [1, 4, 9]);
   * ```
   */
  imap<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * {@linkcode Pool.imap} of a self-contained function.
   *
   * @param task A function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, in order.
   */
  imap<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imap(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#submitter.stream(task, items, true, options);
  }

  /**
   * {@linkcode Pool.imap}, yielding each result as soon as it arrives:
   * Python's `imap_unordered`.
   *
   * @param task An export name of the hosts' module, or a self-contained function of one argument.
   * @param items Any iterable or async iterable, possibly endless.
   * @param options `chunksize` (default 1), `timeout` and `signal`.
   * @returns The results, as they come.
   *
   * @example Results as they come
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "imap-unordered-doc", processes: 2, allowInline: true });
   * await using pool = new Pool({ redis, name: "imap-unordered-doc" });
   * const seen = [];
   * for await (const y of pool.imapUnordered((x: number) => x * 2, [1, 2, 3])) seen.push(y);
   * deepEqual(seen.sort(), [2, 4, 6]);
   * ```
   */
  imapUnordered<K extends TaskName<M>>(
    task: K,
    items: Iterable<TaskArgs<M, K>[0]> | AsyncIterable<TaskArgs<M, K>[0]>,
    options?: MapOptions,
  ): AsyncGenerator<TaskResult<M, K>, void, undefined>;
  /**
   * {@linkcode Pool.imapUnordered} of a self-contained function.
   *
   * @param task A function of one argument.
   * @param items The items.
   * @param options `chunksize`, `timeout` and `signal`.
   * @returns The results, as they come.
   */
  imapUnordered<T, R>(
    task: (item: T) => R,
    items: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined>;
  imapUnordered(
    task: string | AnyFunction,
    items: Iterable<unknown> | AsyncIterable<unknown>,
    options?: MapOptions,
  ): AsyncGenerator<unknown, void, undefined> {
    return this.#submitter.stream(task, items, false, options);
  }

  /**
   * Takes no more tasks: Python's `close`. What was submitted still runs.
   *
   * @example Close, then join
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "close-doc", processes: 1, allowInline: true });
   * const pool = new Pool({ redis, name: "close-doc" });
   * const result = pool.applyAsync(() => "done");
   * pool.close();
   * await pool.join();
   * equal(await result, "done");
   * ```
   */
  close(): void {
    this.#driver.close();
  }

  /**
   * Waits for every submitted task's result, then lets go of Redis:
   * Python's `join`. Call {@linkcode Pool.close} or
   * {@linkcode Pool.terminate} first.
   *
   * @throws {Error} when the pool is still running.
   *
   * @example Join after close
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "join-doc", processes: 1 });
   * const pool = new Pool({ redis, name: "join-doc" });
   * pool.close();
   * await pool.join();
   * ```
   */
  async join(): Promise<void> {
    if (this.#driver.state === "running") {
      throw new Error(
        "Cannot join a running pool: call close() or terminate() first",
      );
    }
    await this.#driver.finished();
  }

  /**
   * Stops now: Python's `terminate`. Pending calls reject, tasks no host
   * has taken are withdrawn from Redis, and hosts stop the ones they run.
   *
   * @example Terminate
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { rejects } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "terminate-doc", processes: 1, allowInline: true });
   * const pool = new Pool({ redis, name: "terminate-doc" });
   * const slow = pool.apply(() => new Promise((resolve) => setTimeout(resolve, 60_000)));
   * await pool.terminate();
   * await rejects(slow, /terminated/);
   * ```
   */
  async terminate(): Promise<void> {
    await this.#driver.terminate();
  }

  /**
   * Terminates the pool: `await using pool = new Pool(…)`, like Python's
   * `with Pool() as pool:`.
   *
   * @example Dispose
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "dispose-doc", processes: 1, allowInline: true });
   * {
   *   await using pool = new Pool({ redis, name: "dispose-doc" });
   *   equal(await pool.apply(() => 1), 1);
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.terminate();
  }

  /**
   * What this pool and the hosts of its name are doing, read from Redis.
   *
   * @returns This pool's counts, the queued, in-flight and redelivered tasks
   * of every driver of the name, and each live host with its last heartbeat.
   * @throws {Error} when Redis cannot be reached.
   *
   * @example Hosts and counts
   * ```ts
   * import { Pool, serve } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using _host = await serve({ redis, name: "stats-doc", processes: 2, allowInline: true });
   * await using pool = new Pool({ redis, name: "stats-doc" });
   * await pool.apply(() => 1);
   * const stats = await pool.stats();
   * equal(stats.completed, 1);
   * equal(stats.hosts.length, 1);
   * equal(stats.hosts[0]!.processes, 2);
   * ```
   */
  async stats(): Promise<RedisPoolStats> {
    const commands = await this.#driver.connection();
    const keys = this.#driver.keys;
    const [hosts, length, pending, redelivered] = await Promise.all([
      commands.call(["HGETALL", keys.hosts]),
      commands.call(["XLEN", keys.tasks]),
      commands.call(["XPENDING", keys.tasks, "hosts"]),
      commands.call(["HGET", keys.stats, "redelivered"]),
    ]);
    const list: HostInfo[] = [];
    const now = Date.now();
    let liveWorkers = 0;
    if (Array.isArray(hosts)) {
      for (let i = 0; i + 1 < hosts.length; i += 2) {
        const beat = JSON.parse(text(hosts[i + 1])) as
          & Omit<
            HostInfo,
            "id" | "lastHeartbeat"
          >
          & { at: number };
        // Hosts that stopped saying they live are not listed.
        if (now - beat.at > LIVE_HOST_MS) continue;
        liveWorkers += beat.processes;
        list.push({
          id: text(hosts[i]),
          host: beat.host,
          pid: beat.pid,
          processes: beat.processes,
          backend: beat.backend,
          running: beat.running,
          completed: beat.completed,
          lastHeartbeat: new Date(beat.at),
        });
      }
    }
    if (liveWorkers > 0) this.#hostWorkers = liveWorkers;
    const inFlight = Array.isArray(pending) ? Number(pending[0] ?? 0) : 0;
    const counts = this.#driver.counts();
    return {
      name: this.#name,
      state: this.#driver.state,
      pending: counts.pending,
      completed: counts.completed,
      failed: counts.failed,
      queued: Math.max(0, Number(length) - inFlight),
      inFlight,
      redelivered: Number(text(redelivered) || 0),
      hosts: list,
    };
  }

  // Printed with what it knows without asking Redis.
  static {
    defineInspect(this, (pool) => ({
      name: pool.#name,
      state: pool.#driver.state,
      pending: pool.#driver.counts().pending,
    }));
  }
}

/**
 * A running worker host, as {@linkcode serve} returns it.
 *
 * @example Serve, then stop
 * ```ts
 * import { serve } from "@multiproc/multiproc/redis";
 * import { equal } from "node:assert/strict";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * const host = await serve({ redis, name: "worker-host-doc", processes: 1 });
 * equal(host.processes, 1);
 * await host.close();
 * ```
 */
export class WorkerHost implements AsyncDisposable {
  #host: Host;

  /**
   * Wraps a started host; use {@linkcode serve}.
   *
   * @param host The started host.
   */
  private constructor(host: Host) {
    this.#host = host;
  }

  /**
   * Starts a host: the local pool, then its connections.
   *
   * @param module The task module, or `undefined` for inline functions only.
   * @param options The host's options.
   * @returns The running host.
   */
  static async start(
    module: string | URL | undefined,
    options: ServeOptions,
  ): Promise<WorkerHost> {
    const url = redisUrl(options?.redis);
    const log = options.log === false || options.log === undefined
      ? ignore
      : options.log;
    const host = new Host(module, {
      ...options,
      url,
      tls: tlsFor(options.tls, url),
      name: options.name,
      allowInline: options.allowInline ?? false,
      log,
    });
    await host.start();
    return new WorkerHost(host);
  }

  /** The host's id in Redis: machine name, pid and a random suffix. */
  get id(): string {
    return this.#host.consumer;
  }

  /** The size of its local pool. */
  get processes(): number {
    return this.#host.processes;
  }

  /**
   * Stops taking tasks, hands back those not started (they go to other
   * hosts at once), waits for the running ones, then stops the workers and
   * lets go of Redis. What a host does on SIGINT or SIGTERM.
   *
   * @example Stop gracefully
   * ```ts
   * import { serve } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * const host = await serve({ redis, name: "host-close-doc", processes: 1 });
   * await host.close();
   * ```
   */
  close(): Promise<void> {
    return this.#host.stop(false);
  }

  /**
   * Stops at once: every task it holds is handed back (and runs elsewhere)
   * and the workers are killed.
   *
   * @example Stop now
   * ```ts
   * import { serve } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * const host = await serve({ redis, name: "host-terminate-doc", processes: 1 });
   * await host.terminate();
   * ```
   */
  terminate(): Promise<void> {
    return this.#host.stop(true);
  }

  /**
   * Closes the host: `await using host = await serve(…)`.
   *
   * @example Dispose
   * ```ts
   * import { serve } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * {
   *   await using _host = await serve({ redis, name: "host-dispose-doc", processes: 1 });
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // Printed with its id and what it holds.
  static {
    defineInspect(this, (host) => ({
      id: host.id,
      processes: host.processes,
      ...host.#host.counts(),
    }));
  }
}

// A host without a log writes nothing.
function ignore(): void {}

/**
 * Serves a Redis pool from this machine: a local pool of `processes`
 * workers fed with the tasks of every {@linkcode Pool} of the same `name`.
 * The same as the `multiproc-worker` command, in code.
 *
 * @param module The task module (URL or path) whose exports are the tasks,
 * or the options first for inline functions only (with `allowInline`).
 * @param options Where to connect, the pool's name, and the local pool's options.
 * @returns The running host; close it to stop.
 * @throws {Error} when Redis cannot be reached or refuses the credentials.
 * @throws {TypeError} or {RangeError} for a bad option, as `new Pool` does.
 *
 * @example A host for a module's tasks
 * ```ts
 * import { Pool, serve } from "@multiproc/multiproc/redis";
 * import { equal } from "node:assert/strict";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * const tasks = `data:text/javascript,export function cube(x) { return x ** 3; }`;
 * await using _host = await serve(tasks, { redis, name: "serve-doc", processes: 1 });
 * await using pool = new Pool<{ cube(x: number): number }>({ redis, name: "serve-doc" });
 * equal(await pool.apply("cube", [3]), 27);
 * ```
 */
export function serve(
  module: string | URL | ServeOptions,
  options?: ServeOptions,
): Promise<WorkerHost> {
  if (typeof module === "object" && !(module instanceof URL)) {
    return WorkerHost.start(undefined, module);
  }
  if (options === undefined) {
    return Promise.reject(
      new TypeError(
        `Expected options with the pool's name after the module: pass serve(module, { name: "render" })`,
      ),
    );
  }
  return WorkerHost.start(module, options);
}

/** Options of a Redis {@linkcode Queue} or {@linkcode JoinableQueue}. */
export interface RedisQueueOptions extends RedisOptions {
  /**
   * The most items the queue holds; `put` waits while it is full. `0`
   * means no limit. The first handle of a name sets it for all.
   *
   * @default {0}
   */
  maxsize?: number;
}

/** Options of a waiting put or get on a Redis queue. */
export interface RedisWaitingOptions {
  /**
   * How long to wait, in milliseconds, before giving up with
   * `QueueFullError` or `QueueEmptyError`.
   *
   * @default {undefined} (wait as long as it takes)
   */
  timeout?: number;
  /** Stops waiting; the call rejects with the signal's reason. @default {undefined} */
  signal?: AbortSignal;
}

// JoinableQueue reaches its queue's link here, keeping it off the API.
const links = new WeakMap<Queue, QueueLink>();

// A timeout in ms becomes a point in time; none waits forever.
function deadlineOf(timeout: unknown): number {
  checkTimeoutOption(timeout);
  return timeout === undefined || timeout === Number.POSITIVE_INFINITY
    ? Number.POSITIVE_INFINITY
    : Date.now() + (timeout as number);
}

function checkTimeoutOption(timeout: unknown): void {
  if (timeout === undefined) return;
  if (typeof timeout !== "number" || Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(
      `Expected timeout to be a number of milliseconds >= 0, got "${
        String(timeout)
      }": pass e.g. 1000, or leave it out to wait as long as it takes`,
    );
  }
}

/**
 * A queue kept in Redis under a name: the local `Queue`'s API from any
 * process on any machine that names it. Items are copied when put and
 * encoded as local queues encode them. Each item goes to one getter: a
 * `get` that returned took its item exactly once, even if its connection
 * dies right after, and an item whose getter died before its `get`
 * returned goes back to the head of the queue. A handle connects at its
 * first use; what only reads Redis state (`qsize`, `empty`, `full`) is
 * async here. `disconnect()` (or `await using`) lets go of the connections;
 * the queue stays in Redis until deleted.
 *
 * @typeParam T The items.
 *
 * @example Producer and consumer by name
 * ```ts
 * import { Queue } from "@multiproc/multiproc/redis";
 * import { deepEqual } from "node:assert/strict";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * const name = `queue-doc-${crypto.randomUUID()}`;
 * await using producer = new Queue<string>({ redis, name });
 * await using consumer = new Queue<string>({ redis, name });
 * await producer.put("A");
 * await producer.put("B");
 * await producer.close();
 * deepEqual(await Array.fromAsync(consumer), ["A", "B"]);
 * ```
 */
export class Queue<T = unknown> implements AsyncIterable<T>, AsyncDisposable {
  readonly #link: QueueLink;

  /**
   * Makes a handle of the queue `name`; nothing connects until its first use.
   *
   * @param options Where, which queue, and its bound.
   * @throws {TypeError} when `name`, `redis` or `tls` is not valid.
   * @throws {RangeError} when `maxsize` is not a whole number >= 0.
   */
  constructor(options: RedisQueueOptions) {
    const maxsize = options?.maxsize ?? 0;
    if (!Number.isInteger(maxsize) || maxsize < 0) {
      throw new RangeError(
        `Expected maxsize to be a whole number >= 0, got "${
          String(maxsize)
        }": pass 0 (no limit) or more`,
      );
    }
    const url = redisUrl(options?.redis);
    this.#link = new QueueLink(
      url,
      options?.name,
      maxsize,
      tlsFor(options.tls, url),
    );
    links.set(this, this.#link);
  }

  /**
   * Puts an item, waiting while the queue is full.
   *
   * @param item The item; it is copied now.
   * @param options `timeout` (ms) and `signal`.
   * @throws {QueueFullError} when `timeout` passes while the queue is full.
   * @throws {QueueClosedError} when the queue was closed.
   * @throws {TypeError} when the item cannot be copied.
   *
   * @example Put and get
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue<number>({ redis, name: `put-doc-${crypto.randomUUID()}` });
   * await q.put(42, { timeout: 1000 });
   * equal(await q.get(), 42);
   * ```
   */
  async put(item: T, options: RedisWaitingOptions = {}): Promise<void> {
    const deadline = deadlineOf(options.timeout);
    const bytes = this.#link.encode(item);
    await this.#refusing(
      this.#link.put(bytes, deadline, options.signal, false),
      `within ${options.timeout} ms`,
    );
  }

  /**
   * Puts an item if there is room, without waiting.
   *
   * @param item The item; it is copied now.
   * @throws {QueueFullError} when the queue is full.
   * @throws {QueueClosedError} when the queue was closed.
   *
   * @example Put without waiting
   * ```ts
   * import { Queue, QueueFullError } from "@multiproc/multiproc/redis";
   * import { rejects } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `put-nowait-doc-${crypto.randomUUID()}`, maxsize: 1 });
   * await q.putNowait(1);
   * await rejects(q.putNowait(2), QueueFullError);
   * ```
   */
  async putNowait(item: T): Promise<void> {
    const bytes = this.#link.encode(item);
    await this.#refusing(this.#link.put(bytes, 0, undefined, true), "now");
  }

  /**
   * Takes the next item, waiting while the queue is empty.
   *
   * @param options `timeout` (ms) and `signal`.
   * @returns The item.
   * @throws {QueueEmptyError} when `timeout` passes while the queue is empty.
   * @throws {QueueClosedError} when the queue was closed and is drained.
   *
   * @example Get with a timeout
   * ```ts
   * import { Queue, QueueEmptyError } from "@multiproc/multiproc/redis";
   * import { rejects } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `get-doc-${crypto.randomUUID()}` });
   * await rejects(q.get({ timeout: 50 }), QueueEmptyError);
   * ```
   */
  async get(options: RedisWaitingOptions = {}): Promise<T> {
    const deadline = deadlineOf(options.timeout);
    const bytes = await this.#refusing(
      this.#link.get(deadline, options.signal, false),
      `within ${options.timeout} ms`,
    );
    return decodeItem(bytes) as T;
  }

  /**
   * Takes the next item if there is one, without waiting.
   *
   * @returns The item.
   * @throws {QueueEmptyError} when the queue is empty.
   * @throws {QueueClosedError} when the queue was closed and is drained.
   *
   * @example Get without waiting
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue<string>({ redis, name: `get-nowait-doc-${crypto.randomUUID()}` });
   * await q.put("x");
   * equal(await q.getNowait(), "x");
   * ```
   */
  async getNowait(): Promise<T> {
    const bytes = await this.#refusing(
      this.#link.get(0, undefined, true),
      "now",
    );
    return decodeItem(bytes) as T;
  }

  /**
   * How many items the queue holds now.
   *
   * @returns The number of items.
   *
   * @example Count
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `qsize-doc-${crypto.randomUUID()}` });
   * await q.put(1);
   * equal(await q.qsize(), 1);
   * ```
   */
  qsize(): Promise<number> {
    return this.#link.qsize();
  }

  /**
   * Whether the queue holds no items now.
   *
   * @returns `true` when empty.
   *
   * @example Empty
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `empty-doc-${crypto.randomUUID()}` });
   * equal(await q.empty(), true);
   * ```
   */
  async empty(): Promise<boolean> {
    return await this.#link.qsize() === 0;
  }

  /**
   * Whether the queue holds `maxsize` items now.
   *
   * @returns `true` when full.
   *
   * @example Full
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `full-doc-${crypto.randomUUID()}`, maxsize: 1 });
   * await q.put(1);
   * equal(await q.full(), true);
   * ```
   */
  async full(): Promise<boolean> {
    const [size, max] = await Promise.all([
      this.#link.qsize(),
      this.#link.maxsize(),
    ]);
    return max > 0 && size >= max;
  }

  /**
   * Closes the queue for every handle: puts then fail with
   * `QueueClosedError`; getters drain what is left, then fail with it.
   *
   * @example Close
   * ```ts
   * import { Queue, QueueClosedError } from "@multiproc/multiproc/redis";
   * import { rejects } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `close-doc-${crypto.randomUUID()}` });
   * await q.close();
   * await rejects(q.put(1), QueueClosedError);
   * ```
   */
  close(): Promise<void> {
    return this.#link.close();
  }

  /**
   * Whether any handle closed the queue.
   *
   * @returns `true` once closed.
   *
   * @example Closed
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { equal } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue({ redis, name: `closed-doc-${crypto.randomUUID()}` });
   * equal(await q.isClosed(), false);
   * ```
   */
  isClosed(): Promise<boolean> {
    return this.#link.closed();
  }

  /**
   * Lets go of this handle's connections; the queue and its items stay.
   *
   * @example Disconnect
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * const q = new Queue({ redis, name: `disconnect-doc-${crypto.randomUUID()}` });
   * await q.put(1);
   * await q.disconnect();
   * ```
   */
  disconnect(): Promise<void> {
    return this.#link.end();
  }

  /**
   * Disconnects: `await using q = new Queue(…)`.
   *
   * @example Dispose
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * {
   *   await using q = new Queue({ redis, name: `dispose-doc-${crypto.randomUUID()}` });
   *   await q.put(1);
   * }
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.disconnect();
  }

  /**
   * Yields items as they come until the queue is closed and drained.
   *
   * @returns An async iterator over the items.
   *
   * @example Iterate
   * ```ts
   * import { Queue } from "@multiproc/multiproc/redis";
   * import { deepEqual } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new Queue<number>({ redis, name: `iterate-doc-${crypto.randomUUID()}` });
   * await q.put(1);
   * await q.put(2);
   * await q.close();
   * deepEqual(await Array.fromAsync(q), [1, 2]);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      try {
        yield await this.get();
      } catch (error) {
        if (error instanceof QueueClosedError) return;
        throw error;
      }
    }
  }

  // A refusal becomes the local queue's error of the same meaning.
  async #refusing<R>(operation: Promise<R>, when: string): Promise<R> {
    try {
      return await operation;
    } catch (error) {
      if (!(error instanceof QueueRefusal)) throw error;
      const name = JSON.stringify(this.#link.name);
      if (error.reason === "closed") {
        throw new QueueClosedError(`The queue ${name} is closed`);
      }
      // A wait that ran out while Redis could not be reached says so.
      const lost = error.cause === undefined
        ? ""
        : ` (Redis could not be reached: ${
          (error.cause as Error).message || String(error.cause)
        })`;
      const refusal = error.reason === "full"
        ? new QueueFullError(`The queue ${name} stayed full ${when}${lost}`)
        : new QueueEmptyError(`The queue ${name} stayed empty ${when}${lost}`);
      if (error.cause !== undefined) {
        Object.defineProperty(refusal, "cause", {
          value: error.cause,
          configurable: true,
          writable: true,
        });
      }
      throw refusal;
    }
  }

  // Printed with its name; its state lives in Redis.
  static {
    defineInspect(this, (queue) => ({ name: queue.#link.name }));
  }
}

/**
 * A Redis {@linkcode Queue} that counts unfinished items: Python's
 * `JoinableQueue`, across machines. Every put adds one; a consumer calls
 * {@linkcode JoinableQueue.taskDone} when it has dealt with an item, and
 * {@linkcode JoinableQueue.join} waits until all are done.
 *
 * @typeParam T The items.
 *
 * @example Wait until every item is dealt with
 * ```ts
 * import { JoinableQueue } from "@multiproc/multiproc/redis";
 * import process from "node:process";
 *
 * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
 * await using q = new JoinableQueue<number>({ redis, name: `joinable-doc-${crypto.randomUUID()}` });
 * await q.put(1);
 * await q.get();
 * await q.taskDone();
 * await q.join();
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /**
   * Says that an item taken from the queue has been dealt with.
   *
   * @throws {RangeError} when called more times than items were put.
   *
   * @example One too many
   * ```ts
   * import { JoinableQueue } from "@multiproc/multiproc/redis";
   * import { rejects } from "node:assert/strict";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new JoinableQueue({ redis, name: `task-done-doc-${crypto.randomUUID()}` });
   * await rejects(q.taskDone(), RangeError);
   * ```
   */
  async taskDone(): Promise<void> {
    const link = links.get(this)!;
    if (await link.taskDone() < 0) {
      throw new RangeError(
        `Called taskDone() on queue ${
          JSON.stringify(link.name)
        } more times than items were put: call it once per item taken`,
      );
    }
  }

  /**
   * Waits until every item put has been dealt with ({@linkcode JoinableQueue.taskDone}).
   *
   * @param options A `signal` to stop waiting.
   *
   * @example Join an empty queue
   * ```ts
   * import { JoinableQueue } from "@multiproc/multiproc/redis";
   * import process from "node:process";
   *
   * const redis = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
   * await using q = new JoinableQueue({ redis, name: `join-doc-${crypto.randomUUID()}` });
   * await q.join();
   * ```
   */
  join(options: { signal?: AbortSignal } = {}): Promise<void> {
    return links.get(this)!.join(options.signal);
  }
}
