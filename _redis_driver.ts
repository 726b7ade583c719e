// The engine of a Redis pool on the caller's side: it adds each task to the
// pool's stream, reads the results its hosts write back, and delivers a task
// again when its host went silent. Jobs (_jobs.ts) see the same TaskRunner
// as a local pool's dispatcher.
import { UncopyableError } from "./_codec.ts";
import { WorkerExitError } from "./_errors.ts";
import { hold as keepAlive, release as letGo } from "./_keep_alive.ts";
import { type CopyMode, type Job, Task } from "./_jobs.ts";
import {
  connectRedis,
  isReplyError,
  type RedisConnection,
  type Reply,
  untilAnswered,
} from "./_redis_client.ts";
import {
  encodeTask,
  ensureGroup,
  fieldsOf,
  GROUP,
  type PoolKeys,
  poolKeys,
  readResult,
  type ResultEntry,
  taskFields,
  text,
} from "./_redis_wire.ts";
import { holdsShareable } from "./_share.ts";
import type { PoolEngine } from "./_submit.ts";
import type { SubmitOptions } from "./_types.ts";
import { copyValues, InlineSources } from "./_values.ts";
import { type FunctionRef, MAP_CHUNK, type TaskKind } from "./_wire.ts";

/** What a driver is told by its pool. */
export interface DriverOptions {
  url: string;
  name: string;
  visibilityTimeout: number;
  maxDeliveries: number;
  maxQueue: number | undefined;
  resultTtl: number;
  /** How to connect (tests put a connection that holds replies in between). */
  connect?: typeof connectRedis;
}

/** A pool's state: running, closed to new tasks, or stopped. */
export type DriverState = "running" | "closed" | "terminated";

/** A task of a Redis pool: its number, its delivery and its stream entry. */
class RemoteTask extends Task<string> {
  attempt = 1;
  encoded: Uint8Array;
  /** "dropped" answers to entries not known yet, while one is being added. */
  early: Set<string> | undefined = undefined;
  /** How often hosts answered "dropped" to it: its redelivery waits longer each time. */
  drops = 0;
  constructor(
    readonly number: number,
    encoded: Uint8Array,
    fn: FunctionRef,
    kind: TaskKind,
    job: Job,
    index: number,
    options: SubmitOptions | undefined,
  ) {
    super(fn, kind, undefined, job, index, options);
    this.encoded = encoded;
  }
}

interface Links {
  commands: RedisConnection;
  reader: RedisConnection;
}

/** How long a stop waits for Redis to take its goodbye. */
const GOODBYE_MS = 1000;
/** Pending entries read per XPENDING call of a scan. */
const SCAN_PAGE = 1000;
/** Lost connections are retried this often while the pool lives. */
const RETRY_MS = 100;
/** A task dropped by a host goes out again after this, doubled at each drop. */
const DROP_BACKOFF_MS = 100;
/** The longest wait before a dropped task goes out again. */
const MAX_DROP_BACKOFF_MS = 2000;

/** The caller's side of a Redis pool. */
export class RedisDriver implements PoolEngine {
  readonly id: string = crypto.randomUUID();
  readonly keys: PoolKeys;
  #options: DriverOptions;
  #links: Promise<Links> | undefined;
  #state: DriverState = "running";
  #broken: unknown = undefined;
  #next = 0;
  #tasks = new Map<number, RemoteTask>();
  /** Tasks by their entry, in the order of their ids while `#ordered`. */
  #byEntry = new Map<string, RemoteTask>();
  #lastEntry = "0-0";
  #ordered = true;
  #beating: Promise<void> | undefined;
  #inline = new InlineSources();
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #timers: ReturnType<typeof setInterval>[] = [];
  #completed = 0;
  #failed = 0;
  #redelivered = 0;
  #shutdown: Promise<void> | undefined;
  #holding = false;
  #beats = 0;

  // Connects in the background: the first call reports a failure.
  constructor(options: DriverOptions) {
    this.#options = options;
    this.keys = poolKeys(options.name);
  }

  // ---- the pool's side --------------------------------------------------

  /** @throws {Error} when the pool is closed, terminated or cannot reach Redis. */
  checkOpen(): void {
    if (this.#state !== "running") {
      throw new Error(
        `Cannot submit a task: the pool is ${this.#state}: submit before close(), or create a new Pool`,
      );
    }
    if (this.#broken !== undefined) throw this.#broken;
  }

  // Hosts get an inline function's source with every task.
  inline(code: string): number {
    return this.#inline.id(code);
  }

  get state(): DriverState {
    return this.#state;
  }

  /** Tasks waiting for a result, and what became of the others. */
  counts(): {
    pending: number;
    completed: number;
    failed: number;
    redelivered: number;
  } {
    return {
      pending: this.#tasks.size,
      completed: this.#completed,
      failed: this.#failed,
      redelivered: this.#redelivered,
    };
  }

  // The pool's stats ask Redis for what every driver and host shares.
  /** The commands connection, once connected. */
  connection(): Promise<RedisConnection> {
    return this.#connection().then((links) => links.commands);
  }

  // Python's close(): no new tasks; what was submitted still runs.
  close(): void {
    if (this.#state === "running") this.#state = "closed";
  }

  // join() waits for every result, then lets go of Redis.
  /** Resolves once every task has its outcome and the connections are closed. */
  async finished(): Promise<void> {
    while (this.#tasks.size > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    await this.#stop();
  }

  // Python's terminate(): fail what is pending, withdraw it from the
  // stream, and tell hosts to stop what they run of ours.
  async terminate(): Promise<void> {
    if (this.#state === "terminated") return this.#stop();
    this.#state = "terminated";
    const withdrawn = [...this.#byEntry.keys()];
    const error = new Error("The pool was terminated before the task finished");
    for (const task of [...this.#tasks.values()]) this.#end(task, false, error);
    if (this.#links !== undefined) {
      try {
        const { commands } = await this.#links;
        await Promise.race([
          (async () => {
            if (withdrawn.length > 0) await this.#withdraw(commands, withdrawn);
            await commands.call(["PUBLISH", this.keys.cancel, `${this.id} *`]);
          })(),
          delay(GOODBYE_MS),
        ]);
      } catch {
        // Redis is gone: hosts drop the tasks of a driver that is gone.
      }
    }
    await this.#stop();
  }

  // ---- TaskRunner: what jobs call ---------------------------------------

  // Encoding at submission is the copy; local queues cannot cross machines.
  task(
    fn: FunctionRef,
    kind: TaskKind,
    values: unknown[],
    _copy: CopyMode,
    job: Job,
    index: number,
    options: SubmitOptions | undefined,
  ): Task {
    const what = kind === MAP_CHUNK ? "item" : "argument";
    if (holdsShareable(values)) {
      throw new TypeError(
        `Cannot send a queue, pipe or lock of this machine to the hosts of a Redis pool: they run on other machines: pass a Queue from "multiproc/redis" instead, or keep the work in a local Pool`,
      );
    }
    if (options?.transfer !== undefined) {
      throw new TypeError(
        `Cannot transfer values to the hosts of a Redis pool: they are copied over the network: leave out the transfer option`,
      );
    }
    const inline = typeof fn === "number";
    let encoded: Uint8Array;
    try {
      encoded = encodeTask({
        fn: inline ? this.#inline.source(fn) : fn,
        inline,
        kind,
        values,
        timeout: options?.timeout === Number.POSITIVE_INFINITY
          ? undefined
          : options?.timeout,
      });
    } catch (error) {
      if (!(error instanceof UncopyableError)) throw error;
      copyValues(values, what);
      throw new TypeError(`Cannot copy the task's ${what}s: ${error.message}`);
    }
    return new RemoteTask(
      this.#next++,
      encoded,
      fn,
      kind,
      job,
      index,
      options,
    );
  }

  // maxQueue bounds the tasks a driver has in Redis at once.
  submit(task: Task): Promise<void> | undefined {
    const remote = task as RemoteTask;
    const max = this.#options.maxQueue;
    if (max !== undefined && this.#tasks.size >= max) {
      return new Promise<void>((resolve) => this.#roomWaiters.push(resolve))
        .then(() => this.submit(task));
    }
    this.#track(remote);
    this.#add(remote).catch((error) => this.#end(remote, false, error));
    return undefined;
  }

  // Commands sent in one turn already travel together.
  flush(): void {}

  // A failed map or a left imap withdraws the chunks no host has finished.
  cancel(tasks: Iterable<Task>): void {
    const withdrawn: string[] = [];
    for (const task of tasks) {
      const remote = task as RemoteTask;
      if (remote.state === "done") continue;
      if (remote.worker !== undefined) withdrawn.push(remote.worker);
      this.#forget(remote);
    }
    if (withdrawn.length === 0 || this.#links === undefined) return;
    void this.#links.then((links) => this.#withdraw(links.commands, withdrawn))
      .catch(() => {});
  }

  // ---- tasks ------------------------------------------------------------

  // A task is tracked from submission, whatever its signal does after.
  #track(task: RemoteTask): void {
    task.state = "queued";
    this.#tasks.set(task.number, task);
    this.#holdProgram(true);
    const signal = task.options?.signal;
    if (signal === undefined) return;
    if (signal.aborted) return this.#abort(task, signal.reason);
    task.onAbort = () => this.#abort(task, signal.reason);
    signal.addEventListener("abort", task.onAbort, { once: true });
  }

  // The host running it is told to stop it; its entry is withdrawn.
  #abort(task: RemoteTask, reason: unknown): void {
    if (task.state === "done") return;
    const entry = task.worker;
    this.#end(task, false, reason);
    void this.#connection().then(async ({ commands }) => {
      if (entry !== undefined) await this.#withdraw(commands, [entry]);
      await commands.call([
        "PUBLISH",
        this.keys.cancel,
        `${this.id} ${task.number}`,
      ]);
    }).catch(() => {});
  }

  // Adds the task to the stream, again after a lost connection.
  async #add(task: RemoteTask): Promise<void> {
    let links: Links;
    try {
      links = await this.#connection();
    } catch (error) {
      return this.#end(task, false, error);
    }
    const fields = taskFields({
      driver: this.id,
      task: task.number,
      attempt: task.attempt,
      visibility: this.#options.visibilityTimeout,
      resultTtl: this.#options.resultTtl,
    }, task.encoded);
    const id = await this.#retry(() =>
      links.commands.call(["XADD", this.keys.tasks, "*", ...fields])
    );
    if (id === undefined) return;
    const entry = text(id);
    if (task.state === "done") {
      await this.#recall(links.commands, task, entry);
      return;
    }
    task.state = "running";
    this.#sent(task, entry, links.commands);
  }

  // The entry is known: an answer that came for it before is acted on now.
  #sent(task: RemoteTask, entry: string, commands: RedisConnection): void {
    task.worker = entry;
    if (this.#ordered && compareIds(entry, this.#lastEntry) < 0) {
      this.#ordered = false;
    }
    this.#lastEntry = entry;
    this.#byEntry.set(entry, task);
    const early = task.early;
    task.early = undefined;
    if (early?.has(entry)) this.#dropped(task, commands);
  }

  // A host went silent on it: deliver it again, or give up on it.
  async #redeliver(
    task: RemoteTask,
    commands: RedisConnection,
    counts: boolean,
  ): Promise<void> {
    // Already on its way again, or ended.
    if (task.worker === undefined || !this.#tasks.has(task.number)) return;
    const old = task.worker;
    this.#byEntry.delete(old);
    task.worker = undefined;
    const attempt = counts ? task.attempt + 1 : task.attempt;
    if (attempt > this.#options.maxDeliveries) {
      await this.#withdraw(commands, [old]).catch(() => {});
      this.#end(
        task,
        false,
        new WorkerExitError(
          `The task was delivered ${task.attempt} time${
            task.attempt === 1 ? "" : "s"
          } and each time its worker host stopped or lost Redis before it finished (no word for ${this.#options.visibilityTimeout} ms): it is not tried again: raise maxDeliveries or visibilityTimeout if the hosts are busy rather than gone`,
        ),
      );
      return;
    }
    task.attempt = attempt;
    const fields = taskFields({
      driver: this.id,
      task: task.number,
      attempt,
      visibility: this.#options.visibilityTimeout,
      resultTtl: this.#options.resultTtl,
    }, task.encoded);
    const replies = await this.#retry(() =>
      commands.atomically([
        ["XACK", this.keys.tasks, GROUP, old],
        ["XDEL", this.keys.tasks, old],
        ["XADD", this.keys.tasks, "*", ...fields],
        ["HINCRBY", this.keys.stats, "redelivered", "1"],
      ])
    );
    if (replies === undefined) return;
    this.#redelivered++;
    const entry = text(replies[2]);
    if (task.state === "done") {
      await this.#recall(commands, task, entry);
      return;
    }
    this.#sent(task, entry, commands);
  }

  // Every task ends here, once: later results for it are duplicates.
  #end(task: RemoteTask, ok: boolean, value: unknown): void {
    if (task.state === "done") return;
    this.#forget(task);
    if (ok) this.#completed++;
    else this.#failed++;
    task.job.settle(task, ok, value);
  }

  // Drops a task from every index, and wakes whoever waits for room.
  #forget(task: RemoteTask): void {
    task.state = "done";
    this.#tasks.delete(task.number);
    if (task.worker !== undefined) this.#byEntry.delete(task.worker);
    if (task.onAbort) {
      task.options?.signal?.removeEventListener("abort", task.onAbort);
    }
    this.#roomWaiters.shift()?.();
    if (this.#tasks.size === 0) {
      this.#holdProgram(false);
      for (const wake of this.#idleWaiters.splice(0)) wake();
    }
  }

  // A result settles its task, whichever delivery ran it. "dropped" counts
  // only for the entry the task was sent in last: an older delivery's is
  // stale, and one for an entry still being added waits for its id.
  #onResult(result: ResultEntry, commands: RedisConnection): void {
    const task = this.#tasks.get(result.task);
    if (task === undefined || task.state === "done") return;
    if (result.outcome !== "dropped") {
      return this.#end(task, result.outcome === "ok", result.value);
    }
    if (task.worker === undefined) {
      (task.early ??= new Set()).add(result.entry);
    } else if (task.worker === result.entry) this.#dropped(task, commands);
  }

  // Hosts drop the tasks of a driver they take for gone (its key expired
  // while Redis was down): the task goes out again once the key is written
  // again, after a pause that doubles with each drop, not at once, which
  // would only be dropped again.
  #dropped(task: RemoteTask, commands: RedisConnection): void {
    const entry = task.worker;
    const wait = Math.min(
      DROP_BACKOFF_MS * 2 ** task.drops++,
      MAX_DROP_BACKOFF_MS,
    );
    (async () => {
      await this.#beat(commands);
      await delay(wait);
      // Sent again meanwhile (its key was found missing), or ended.
      if (task.worker !== entry) return;
      await this.#redeliver(task, commands, false);
    })().catch((error) => this.#end(task, false, error));
  }

  // ---- connections ------------------------------------------------------

  // Connects at the first call; a failed connection fails the calls that
  // waited for it, and the next call tries again.
  #connection(): Promise<Links> {
    if (this.#shutdown !== undefined) {
      return Promise.reject(new Error("The pool has let go of Redis"));
    }
    return this.#links ??= this.#connect().catch((error) => {
      this.#links = undefined;
      throw error;
    });
  }

  // The driver's key exists before its first task, so hosts keep its work.
  async #connect(): Promise<Links> {
    const label = `multiproc-driver:${this.#options.name}`;
    const connect = this.#options.connect ?? connectRedis;
    const commands = await connect(this.#options.url, label);
    let reader: RedisConnection;
    try {
      reader = await commands.duplicate();
    } catch (error) {
      commands.destroy();
      throw error;
    }
    const links = { commands, reader };
    try {
      await ensureGroup(commands, this.keys);
      await this.#heartbeat(commands);
    } catch (error) {
      commands.destroy();
      reader.destroy();
      throw error;
    }
    void this.#readResults(links);
    this.#every(this.#liveness() / 4, () => this.#beat(commands));
    const scan = Math.max(
      25,
      Math.min(1000, this.#options.visibilityTimeout / 4),
    );
    this.#every(scan, () => this.#scan(commands));
    return links;
  }

  // Hosts drop the tasks of a driver silent this long (and tell it, should
  // it come back): twice the visibility timeout, within 2 s to a minute.
  #liveness(): number {
    return Math.min(
      60_000,
      Math.max(2000, 2 * this.#options.visibilityTimeout),
    );
  }

  // While the driver lives, its key and results stay; after, they expire.
  // A key found missing means Redis lost data (a restart without
  // persistence, a failover) or hosts took this driver for gone and dropped
  // its tasks: every task in Redis is sent again (their results, if they
  // come twice, count once).
  async #heartbeat(commands: RedisConnection): Promise<void> {
    const [previous] = await commands.atomically([
      [
        "SET",
        this.keys.driver(this.id),
        "1",
        "PX",
        String(this.#liveness()),
        "GET",
      ],
      [
        "PEXPIRE",
        this.keys.results(this.id),
        String(this.#options.resultTtl),
      ],
    ]);
    if (this.#beats++ === 0 || previous !== null) return;
    await ensureGroup(commands, this.keys);
    for (const task of [...this.#byEntry.values()]) {
      await this.#redeliver(task, commands, false);
    }
  }

  // One heartbeat at a time, whoever asks: the timer, or a dropped task.
  #beat(commands: RedisConnection): Promise<void> {
    return this.#beating ??= this.#heartbeat(commands).finally(() =>
      this.#beating = undefined
    );
  }

  // Only the range of this driver's entries is read, page by page: entries
  // other drivers left behind must not hide this one's.
  // Entries are recorded as Redis numbers them, in order, but for a
  // command resent after a lost connection: only then are they sorted.
  async #scan(commands: RedisConnection): Promise<void> {
    if (this.#byEntry.size === 0) return;
    if (!this.#ordered) {
      const sorted = [...this.#byEntry].sort(([a], [b]) => compareIds(a, b));
      this.#byEntry = new Map(sorted);
      this.#lastEntry = sorted[sorted.length - 1]![0];
      this.#ordered = true;
    }
    let start = this.#byEntry.keys().next().value!;
    const end = this.#lastEntry;
    while (true) {
      const reply = await commands.call([
        "XPENDING",
        this.keys.tasks,
        GROUP,
        "IDLE",
        String(this.#options.visibilityTimeout),
        start,
        end,
        String(SCAN_PAGE),
      ]);
      if (!Array.isArray(reply) || reply.length === 0) return;
      for (const pending of reply) {
        const entry = text((pending as Reply[])[0]);
        const task = this.#byEntry.get(entry);
        if (task !== undefined) await this.#redeliver(task, commands, true);
      }
      if (reply.length < SCAN_PAGE) return;
      start = `(${text((reply[reply.length - 1] as Reply[])[0])}`;
    }
  }

  // The results stream is read from its start: nothing is missed.
  async #readResults(links: Links): Promise<void> {
    const key = this.keys.results(this.id);
    let last = "0-0";
    while (this.#shutdown === undefined) {
      let reply: Reply;
      try {
        reply = await links.reader.call([
          "XREAD",
          "COUNT",
          "1000",
          "BLOCK",
          "1000",
          "STREAMS",
          key,
          last,
        ], true);
      } catch (error) {
        if (this.#shutdown !== undefined) return;
        if (isReplyError(error)) this.#break(error);
        await delay(RETRY_MS);
        continue;
      }
      if (!Array.isArray(reply) || reply.length === 0) continue;
      const entries = (reply[0] as Reply[])[1] as Reply[];
      const ids: string[] = [];
      for (const entry of entries) {
        const [id, fields] = entry as [Reply, Reply];
        last = text(id);
        ids.push(last);
        this.#onResult(readResult(fieldsOf(fields)), links.commands);
      }
      void links.commands.call(["XDEL", key, ...ids]).catch(() => {});
    }
  }

  // Withdrawn entries leave the stream and any host's pending list.
  async #withdraw(
    commands: RedisConnection,
    entries: string[],
  ): Promise<void> {
    await commands.atomically([
      ["XACK", this.keys.tasks, GROUP, ...entries],
      ["XDEL", this.keys.tasks, ...entries],
    ]);
  }

  // A task that ended while its entry was being added may already be in a
  // host's hands: the entry is withdrawn and the host told to stop it.
  async #recall(
    commands: RedisConnection,
    task: RemoteTask,
    entry: string,
  ): Promise<void> {
    try {
      await this.#withdraw(commands, [entry]);
      await commands.call([
        "PUBLISH",
        this.keys.cancel,
        `${this.id} ${task.number}`,
      ]);
    } catch {
      // Redis is gone: hosts drop the tasks of a driver that is gone.
    }
  }

  // A command lost with its connection is sent again once it is back,
  // while the driver lives.
  #retry<T>(send: () => Promise<T>): Promise<T | undefined> {
    return untilAnswered(send, () => this.#shutdown !== undefined);
  }

  // A pool that cannot reach Redis fails every task with the reason.
  #break(error: unknown): void {
    if (this.#broken !== undefined) return;
    this.#broken = error;
    for (const task of [...this.#tasks.values()]) this.#end(task, false, error);
  }

  // Like a local pool, a Redis pool keeps the program alive only while
  // tasks are pending: its connections never do.
  #holdProgram(hold: boolean): void {
    if (hold === this.#holding) return;
    this.#holding = hold;
    if (hold) keepAlive();
    else letGo();
  }

  // Periodic work that never keeps the program alive by itself.
  #every(ms: number, work: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      work().catch(() => {}).finally(() => running = false);
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    this.#timers.push(timer);
  }

  // The driver's key and results go with it, unless Redis is gone: then
  // they expire on their own.
  #stop(): Promise<void> {
    this.#shutdown ??= (async () => {
      for (const timer of this.#timers) clearInterval(timer);
      let links: Links | undefined;
      try {
        links = await this.#links;
      } catch {
        return;
      }
      if (links === undefined) return;
      links.reader.destroy();
      await Promise.race([
        links.commands.call([
          "DEL",
          this.keys.driver(this.id),
          this.keys.results(this.id),
        ]).catch(() => {}),
        delay(GOODBYE_MS),
      ]);
      links.commands.destroy();
    })();
    return this.#shutdown;
  }
}

// Timers of the retry loops; unref'd so they never hold the program.
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    (timer as { unref?: () => void }).unref?.();
  });
}

// Stream ids are "milliseconds-sequence": numbers, not strings, in order.
function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number) as [number, number];
  const [bm, bs] = b.split("-").map(Number) as [number, number];
  return am - bm || as - bs;
}
