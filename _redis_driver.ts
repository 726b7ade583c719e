// The engine of a Redis pool on the caller's side: it adds the tasks
// submitted together to the pool's stream as one entry, reads the results
// its hosts write back, and delivers a task again when its host went silent. Jobs (_jobs.ts) see the same TaskRunner
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
import type { TlsSettings } from "./_redis_tls.ts";
import {
  encodeTask,
  ensureGroup,
  fieldsOf,
  GROUP,
  type PoolKeys,
  poolKeys,
  readResults,
  type ResultEntry,
  STARTED,
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
  tls?: TlsSettings;
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
/** Tasks in one stream entry at most, and their payloads' bytes. */
const MAX_BUNDLE = 256;
const MAX_BUNDLE_BYTES = 1 << 20;
/** Tasks submitted together are spread over this many entries per worker. */
const ENTRIES_PER_WORKER = 4;
/** Workers assumed until hosts say how many they have. */
const DEFAULT_WORKERS = 4;
/** Hosts silent for longer do not count. */
const LIVE_HOST_MS = 10_000;
/** Dropped tasks go out again after this, doubled while drops keep coming. */
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
  /** The tasks of each entry still waited for, in the order of the ids while `#ordered`. */
  #byEntry = new Map<string, Set<RemoteTask>>();
  /** Tasks submitted in this turn, added together once it ends. */
  #outbox: RemoteTask[] = [];
  /** Dropped tasks waiting to go out again, with the entry they were dropped from. */
  #droppedTasks = new Map<RemoteTask, string>();
  #dropStreak = 0;
  #workers = DEFAULT_WORKERS;
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
    // Its signal may have ended it at once.
    if (!this.#tasks.has(remote.number)) return undefined;
    this.#outbox.push(remote);
    if (this.#outbox.length === 1) queueMicrotask(() => this.flush());
    return undefined;
  }

  // The tasks of one turn go in as few entries as spread them over the
  // hosts' workers (about four each, as Python chunks a map), each of at
  // most MAX_BUNDLE tasks and MAX_BUNDLE_BYTES.
  flush(): void {
    const tasks = this.#outbox;
    if (tasks.length === 0) return;
    this.#outbox = [];
    const size = Math.min(
      MAX_BUNDLE,
      Math.ceil(tasks.length / (this.#workers * ENTRIES_PER_WORKER)),
    );
    let bundle: RemoteTask[] = [];
    let bytes = 0;
    for (const task of tasks) {
      if (task.state === "done") continue;
      if (
        bundle.length === size ||
        bundle.length > 0 && bytes + task.encoded.length > MAX_BUNDLE_BYTES
      ) {
        this.#send(bundle);
        bundle = [];
        bytes = 0;
      }
      bundle.push(task);
      bytes += task.encoded.length;
    }
    if (bundle.length > 0) this.#send(bundle);
  }

  // A failed map or a left imap withdraws the chunks no host has finished:
  // their entries, or, where other tasks share an entry, the tasks alone.
  cancel(tasks: Iterable<Task>): void {
    const touched = new Map<string, RemoteTask[]>();
    for (const task of tasks) {
      const remote = task as RemoteTask;
      if (remote.state === "done") continue;
      const entry = remote.worker;
      if (entry !== undefined) {
        const list = touched.get(entry);
        if (list) list.push(remote);
        else touched.set(entry, [remote]);
      }
      this.#forget(remote);
    }
    if (touched.size === 0 || this.#links === undefined) return;
    void this.#links.then((links) =>
      this.#withdrawTasks(links.commands, touched)
    )
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

  // The host running it is told to stop it; its entry is withdrawn when
  // no other task of it is waited for.
  #abort(task: RemoteTask, reason: unknown): void {
    if (task.state === "done") return;
    const entry = task.worker;
    this.#end(task, false, reason);
    void this.#connection().then(async ({ commands }) => {
      if (entry !== undefined && !this.#byEntry.has(entry)) {
        await this.#withdraw(commands, [entry]);
      }
      await this.#tellHosts(commands, [task]);
    }).catch(() => {});
  }

  // A bundle that Redis refuses fails its tasks with the reason.
  #send(bundle: RemoteTask[]): void {
    this.#add(bundle).catch((error) => {
      for (const task of bundle) this.#end(task, false, error);
    });
  }

  // Adds tasks to the stream as one entry, again after a lost connection.
  async #add(tasks: RemoteTask[]): Promise<void> {
    let links: Links;
    try {
      links = await this.#connection();
    } catch (error) {
      for (const task of tasks) this.#end(task, false, error);
      return;
    }
    const live = tasks.filter((task) => task.state !== "done");
    if (live.length === 0) return;
    const fields = this.#fields(live);
    const id = await this.#retry(() =>
      links.commands.call(["XADD", this.keys.tasks, "*", ...fields])
    );
    if (id === undefined) return;
    this.#sent(live, text(id), links.commands);
  }

  // A bundle's stream fields.
  #fields(tasks: RemoteTask[]): (string | Uint8Array)[] {
    return taskFields(
      {
        driver: this.id,
        visibility: this.#options.visibilityTimeout,
        resultTtl: this.#options.resultTtl,
      },
      tasks.map((task) => ({
        number: task.number,
        attempt: task.attempt,
        encoded: task.encoded,
      })),
    );
  }

  // The entry is known: tasks that ended meanwhile are recalled, and an
  // answer that came for it before is acted on now.
  #sent(
    tasks: RemoteTask[],
    entry: string,
    commands: RedisConnection,
  ): void {
    const waited = new Set<RemoteTask>();
    const ended: RemoteTask[] = [];
    for (const task of tasks) {
      if (task.state === "done") ended.push(task);
      else waited.add(task);
    }
    if (waited.size === 0) {
      void this.#recall(commands, entry, ended);
      return;
    }
    if (ended.length > 0) void this.#tellHosts(commands, ended).catch(() => {});
    if (this.#ordered && compareIds(entry, this.#lastEntry) < 0) {
      this.#ordered = false;
    }
    this.#lastEntry = entry;
    this.#byEntry.set(entry, waited);
    for (const task of waited) {
      task.state = "running";
      task.worker = entry;
      const early = task.early;
      task.early = undefined;
      if (early?.has(entry)) this.#dropped(task, commands);
    }
  }

  // A host went silent on an entry, or dropped tasks of it: they go out
  // again in one entry, but those delivered maxDeliveries times, which fail.
  // The old entry is withdrawn once none of its tasks is waited for in it.
  async #redeliver(
    tasks: RemoteTask[],
    old: string,
    commands: RedisConnection,
    counts: boolean,
  ): Promise<void> {
    // Already on their way again, or ended.
    const moving = tasks.filter((task) =>
      task.worker === old && this.#tasks.has(task.number)
    );
    if (moving.length === 0) return;
    const left = this.#byEntry.get(old);
    for (const task of moving) {
      left?.delete(task);
      task.worker = undefined;
    }
    const emptied = left === undefined || left.size === 0;
    if (emptied) this.#byEntry.delete(old);
    const again: RemoteTask[] = [];
    for (const task of moving) {
      const attempt = counts ? task.attempt + 1 : task.attempt;
      if (attempt <= this.#options.maxDeliveries) {
        task.attempt = attempt;
        again.push(task);
        continue;
      }
      this.#end(
        task,
        false,
        new WorkerExitError(
          `The task was delivered ${task.attempt} time${
            task.attempt === 1 ? "" : "s"
          } and each time its worker host stopped or lost Redis before it finished (no word for ${this.#options.visibilityTimeout} ms): it is not tried again: raise maxDeliveries or visibilityTimeout if the hosts are busy rather than gone`,
        ),
      );
    }
    const withdraw = emptied
      ? [
        ["XACK", this.keys.tasks, GROUP, old],
        ["XDEL", this.keys.tasks, old],
      ]
      : [];
    if (again.length === 0) {
      if (emptied) await commands.atomically(withdraw).catch(() => {});
      return;
    }
    const entries = retryEntries(again);
    const replies = await this.#retry(() =>
      commands.atomically([
        ...withdraw,
        ...entries.map((tasks) => [
          "XADD",
          this.keys.tasks,
          "*",
          ...this.#fields(tasks),
        ]),
        ["HINCRBY", this.keys.stats, "redelivered", String(again.length)],
      ])
    );
    if (replies === undefined) return;
    this.#redelivered += again.length;
    entries.forEach((tasks, i) =>
      this.#sent(tasks, text(replies[withdraw.length + i]), commands)
    );
  }

  // Redelivery that Redis refuses fails the tasks with the reason.
  #resend(
    tasks: RemoteTask[],
    old: string,
    commands: RedisConnection,
    counts: boolean,
  ): Promise<void> {
    return this.#redeliver(tasks, old, commands, counts).catch((error) => {
      for (const task of tasks) this.#end(task, false, error);
    });
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
    const entry = task.worker;
    const left = entry === undefined ? undefined : this.#byEntry.get(entry);
    if (left !== undefined) {
      left.delete(task);
      if (left.size === 0) this.#byEntry.delete(entry!);
    }
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
      this.#dropStreak = 0;
      return this.#end(task, result.outcome === "ok", result.value);
    }
    if (task.worker === undefined) {
      (task.early ??= new Set()).add(result.entry);
    } else if (task.worker === result.entry) this.#dropped(task, commands);
  }

  // Hosts drop the tasks of a driver they take for gone (its key expired
  // while Redis was down): dropped tasks go out again once the key is
  // written again, after a pause that doubles while drops keep coming, not
  // at once, which would only have them dropped again.
  #dropped(task: RemoteTask, commands: RedisConnection): void {
    this.#droppedTasks.set(task, task.worker!);
    if (this.#droppedTasks.size > 1) return;
    const wait = Math.min(
      DROP_BACKOFF_MS * 2 ** this.#dropStreak++,
      MAX_DROP_BACKOFF_MS,
    );
    (async () => {
      await this.#beat(commands).catch(() => {});
      await delay(wait);
      const byEntry = new Map<string, RemoteTask[]>();
      for (const [dropped, entry] of this.#droppedTasks) {
        const list = byEntry.get(entry);
        if (list) list.push(dropped);
        else byEntry.set(entry, [dropped]);
      }
      this.#droppedTasks.clear();
      for (const [entry, tasks] of byEntry) {
        await this.#resend(tasks, entry, commands, false);
      }
    })();
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
    const commands = await connect(
      this.#options.url,
      label,
      {},
      this.#options.tls,
    );
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
    const [previous, , hosts] = await commands.atomically([
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
      ["HGETALL", this.keys.hosts],
    ]);
    this.#countWorkers(hosts);
    if (this.#beats++ === 0 || previous !== null) return;
    await ensureGroup(commands, this.keys);
    for (const [entry, tasks] of [...this.#byEntry]) {
      await this.#resend([...tasks], entry, commands, false);
    }
  }

  // Tasks submitted together are spread over the workers that live now.
  #countWorkers(hosts: Reply): void {
    if (!Array.isArray(hosts)) return;
    const now = Date.now();
    let workers = 0;
    for (let i = 1; i < hosts.length; i += 2) {
      try {
        const beat = JSON.parse(text(hosts[i])) as {
          at: number;
          processes: number;
        };
        if (now - beat.at <= LIVE_HOST_MS) workers += beat.processes;
      } catch {
        // Not a host's heartbeat.
      }
    }
    if (workers > 0) this.#workers = workers;
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
        const tasks = this.#byEntry.get(entry);
        if (tasks === undefined) continue;
        // A retry counts only if its host started it.
        const retry = [...tasks].some((task) => task.attempt > 1);
        const started = Number(text((pending as Reply[])[3])) >= STARTED;
        await this.#resend([...tasks], entry, commands, !retry || started);
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
        for (const result of readResults(fieldsOf(fields))) {
          this.#onResult(result, links.commands);
        }
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

  // Entries none of whose tasks is waited for leave the stream; the tasks
  // of entries that others share are stopped by name.
  async #withdrawTasks(
    commands: RedisConnection,
    touched: Map<string, RemoteTask[]>,
  ): Promise<void> {
    const entries: string[] = [];
    const named: RemoteTask[] = [];
    for (const [entry, tasks] of touched) {
      if (this.#byEntry.has(entry)) named.push(...tasks);
      else entries.push(entry);
    }
    if (entries.length > 0) await this.#withdraw(commands, entries);
    if (named.length > 0) await this.#tellHosts(commands, named);
  }

  // "<driver> <task>,<task>…": hosts stop these tasks, or skip them.
  async #tellHosts(
    commands: RedisConnection,
    tasks: RemoteTask[],
  ): Promise<void> {
    await commands.call([
      "PUBLISH",
      this.keys.cancel,
      `${this.id} ${tasks.map((task) => task.number).join(",")}`,
    ]);
  }

  // Tasks that ended while their entry was being added may already be in a
  // host's hands: the entry is withdrawn and the hosts told to stop them.
  async #recall(
    commands: RedisConnection,
    entry: string,
    tasks: RemoteTask[],
  ): Promise<void> {
    try {
      await this.#withdraw(commands, [entry]);
      await this.#tellHosts(commands, tasks);
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

// A task delivered before (attempt > 1) goes out alone: hosts take such an
// entry only to start it at once, so a host that dies holding it ran it,
// and no task of its entry is charged a delivery it never ran in. Tasks
// handed back unrun keep their attempt and go out together.
function retryEntries(tasks: RemoteTask[]): RemoteTask[][] {
  const first = tasks.filter((task) => task.attempt === 1);
  const entries = tasks.filter((task) => task.attempt > 1).map((task) => [
    task,
  ]);
  return first.length > 0 ? [first, ...entries] : entries;
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
