// A worker host of a Redis pool: a local pool (the same engine as pool.ts)
// fed from the pool's stream. It reads entries (each a bundle of tasks
// submitted together) as its workers have room, extends its claim on them
// while they run, writes the results that finish together in one
// transaction, acknowledging each entry with its last result, and hands
// back what it has not started when it stops.
import { hostname } from "node:os";
import process from "node:process";
import type { Dispatcher } from "./_dispatcher.ts";
import type { Job, Task } from "./_jobs.ts";
import { startLocalEngine } from "./_local_engine.ts";
import {
  type Command,
  connectRedis,
  isReplyError,
  redactUrl,
  type RedisConnection,
  type Reply,
  untilAnswered,
} from "./_redis_client.ts";
import type { TlsSettings } from "./_redis_tls.ts";
import {
  type Answer,
  ensureGroup,
  fieldsOf,
  GROUP,
  type Outcome,
  type PoolKeys,
  poolKeys,
  readTasks,
  resultFields,
  STARTED,
  type TaskEntry,
  text,
} from "./_redis_wire.ts";
import type { PoolOptions } from "./_types.ts";
import { APPLY } from "./_wire.ts";

/** What a host is told by `serve()`. */
export interface HostOptions extends PoolOptions {
  url: string;
  tls?: TlsSettings;
  name: string;
  allowInline: boolean;
  log: (line: string) => void;
}

/** An entry this host took from the stream, until its last result is written. */
interface Held {
  entry: string;
  driver: string;
  resultTtl: number;
  visibility: number;
  tasks: HeldTask[];
  /** Its tasks not answered yet. */
  left: number;
  /** Its tasks were handed to the local pool: its claim is extended. */
  started: boolean;
  /** Its task was delivered before: it is held only to start at once. */
  retry: boolean;
  claimedAt: number;
  /** It left the stream: its tasks went out again, or ended. */
  withdrawn: boolean;
  /** Redis refused some of its results: it is left to its driver's redelivery. */
  unwritten: boolean;
}

/** A task of a held entry. */
interface HeldTask {
  held: Held;
  task: TaskEntry & { unreadable?: unknown };
  local: Task | undefined;
  takenAt: number;
  answered: boolean;
}

/** A result waiting to be written, unless nobody wants it. */
interface Pending {
  held: Held;
  answer: Answer;
  wanted: boolean;
}

interface Links {
  commands: RedisConnection;
  reader: RedisConnection;
  subscriber: RedisConnection;
}

/** Tasks that take less than this on average are read ahead, one more per worker. */
const READ_AHEAD_BELOW_MS = 50;
/** Tasks that take less than this on average are read ahead far more. */
const TINY_TASK_MS = 1;
/** Tasks held per worker when they are tiny. */
const TINY_READ_AHEAD = 16;
/** How long a host that handed back a retry reads no more than its workers run. */
const RETRY_ROOM_MS = 5000;
/** How often a host waits to see a retry it took start. */
const RETRY_START_POLL_MS = 10;
/** How often a host looks for tasks nobody will send again. */
const SWEEP_MS = 30_000;
/** Pending this long, a task whose driver is gone is nobody's (drivers count as gone after at most a minute). */
const ABANDONED_MS = 120_000;
/** How long a stop waits for a read in flight, and for Redis to say goodbye. */
const READ_STOP_MS = 1500;
/** Lost connections are retried this often. */
const RETRY_MS = 100;
/** How often a host says it lives. */
const HEARTBEAT_MS = 2000;
/** Hosts silent this long leave the list; their consumers, once idle and empty, the group. */
const FORGET_HOST_MS = 10 * 60_000;
/** How long a cancellation is kept for a task still on its way. */
const CANCEL_MEMORY_MS = 60_000;
/** How long a driver is taken as alive after its key was seen. */
const DRIVER_CHECK_MS = 5000;
/** How long a driver is taken as gone after its key was missed: it may write it again once Redis is back. */
const DRIVER_GONE_CHECK_MS = 1000;

/** The running host behind `serve()`. */
export class Host {
  readonly consumer: string;
  readonly keys: PoolKeys;
  readonly processes: number;
  readonly backend: string;
  #options: HostOptions;
  #engine: Dispatcher;
  #links!: Links;
  #held = new Map<string, Held>();
  /** Tasks held and not answered. */
  #holding = 0;
  /** Tasks per entry read, on average: how many entries a read asks for. */
  #perEntry = 1;
  #answers: Pending[] = [];
  #writing: Promise<void> | undefined;
  #room: (() => void) | undefined;
  #drivers = new Map<string, { alive: boolean; at: number }>();
  /** Cancellations by "<driver> <task>", oldest first, with when they came. */
  #cancelled = new Map<string, number>();
  /** Drivers that said they were terminated ("<driver> *"), oldest first. */
  #terminated = new Set<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopping = false;
  #reading: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #started = Date.now();
  #done = 0;
  /** No task has finished yet: no read-ahead until tasks show they are short. */
  #averageMs = Number.POSITIVE_INFINITY;
  #forced = false;
  /** A retry was handed back: no read-ahead until then, or until one is taken. */
  #readAheadOffUntil = 0;

  // The local pool starts first: a bad module or option fails serve().
  constructor(module: string | URL | undefined, options: HostOptions) {
    this.#options = options;
    this.keys = poolKeys(options.name);
    const local = startLocalEngine(module, options);
    this.#engine = local.engine;
    this.processes = local.processes;
    this.backend = local.backend;
    this.consumer = `${machineName()}:${process.pid}:${
      crypto.randomUUID().slice(0, 8)
    }`;
  }

  // Connections, group, subscription, then the read loop.
  async start(): Promise<void> {
    await this.#firstWorker();
    const events = {
      onLost: (error: Error) =>
        this.#log(
          `lost the connection to Redis (${error.message}): reconnecting`,
        ),
      onBack: () => this.#log("reconnected to Redis"),
    };
    const label = `multiproc-host:${this.#options.name}`;
    let commands: RedisConnection | undefined;
    const opened: RedisConnection[] = [];
    try {
      const { url, tls } = this.#options;
      commands = await connectRedis(url, label, events, tls);
      opened.push(commands);
      const reader = await connectRedis(url, label, {}, tls);
      opened.push(reader);
      const subscriber = await connectRedis(url, label, {}, tls);
      opened.push(subscriber);
      this.#links = { commands, reader, subscriber };
      await ensureGroup(this.#links.commands, this.keys);
      await subscriber.subscribe(
        this.keys.cancel,
        (message) => this.#onCancel(message),
      );
      await this.#heartbeat();
    } catch (error) {
      for (const link of opened) link.destroy();
      this.#engine.terminate();
      throw error;
    }
    this.#every(HEARTBEAT_MS, () => this.#heartbeat());
    this.#every(SWEEP_MS, () => this.#sweep());
    this.#every(250, () => this.#extendClaims());
    this.#reading = this.#read();
    this.#log(
      `serving "${this.#options.name}" from ${
        redactUrl(this.#options.url)
      } with ${this.processes} ${this.backend} workers`,
    );
  }

  // A host whose task module cannot load must not say it serves: a first
  // worker runs a no-op, which fails with the module's error.
  async #firstWorker(): Promise<void> {
    let settle!: (ok: boolean, value: unknown) => void;
    const outcome = new Promise<void>((resolve, reject) => {
      settle = (ok, value) => ok ? resolve() : reject(value);
    });
    const job: Job = {
      settle: (_task: Task, ok: boolean, value: unknown) => settle(ok, value),
    };
    try {
      this.#engine.submit(
        this.#engine.task(
          this.#engine.inline("() => 0"),
          APPLY,
          [],
          "arguments",
          job,
          0,
          undefined,
        ),
      );
      await outcome;
    } catch (error) {
      this.#engine.terminate();
      throw error;
    }
  }

  /** What the host holds and has done. */
  counts(): { running: number; completed: number } {
    return { running: this.#holding, completed: this.#done };
  }

  // A graceful stop finishes what runs and hands back what waits; a
  // forced one hands back everything and kills the workers.
  /** Stops reading, hands back or finishes held tasks, then closes. */
  stop(force: boolean): Promise<void> {
    if (force) {
      this.#forced = true;
      // A second stop, forced, hands back what runs too.
      if (this.#stopped !== undefined) void this.#handBackAll();
    }
    this.#stopped ??= this.#shutdown();
    return this.#stopped;
  }

  // ---- reading ----------------------------------------------------------

  // Short tasks are read ahead, one more per worker, and tiny ones many
  // more, so that workers do not wait for Redis between them; long ones are
  // not, so that a host does not hold tasks that idle hosts could run now.
  async #read(): Promise<void> {
    const reader = this.#links.reader;
    while (!this.#stopping) {
      if (this.#retryWaiting()) {
        await delay(RETRY_START_POLL_MS);
        continue;
      }
      const readAhead = Date.now() >= this.#readAheadOffUntil;
      const capacity = this.processes * (
        !readAhead
          ? 1
          : this.#averageMs < TINY_TASK_MS
          ? TINY_READ_AHEAD
          : this.#averageMs < READ_AHEAD_BELOW_MS
          ? 2
          : 1
      );
      // Tiny tasks come in bundles: the next is read while one runs.
      const room = Math.max(
        capacity,
        readAhead && this.#averageMs < TINY_TASK_MS ? 2 * this.#perEntry : 0,
      ) - this.#holding;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.#room = resolve);
        continue;
      }
      let reply: Reply;
      try {
        reply = await reader.call([
          "XREADGROUP",
          "GROUP",
          GROUP,
          this.consumer,
          "COUNT",
          String(Math.max(1, Math.floor(room / this.#perEntry))),
          "BLOCK",
          "1000",
          "STREAMS",
          this.keys.tasks,
          ">",
        ], true);
      } catch (error) {
        if (this.#stopping) return;
        if (isReplyError(error) && /NOGROUP/.test(String(error))) {
          await ensureGroup(this.#links.commands, this.keys).catch(() => {});
        } else await delay(RETRY_MS);
        continue;
      }
      if (!Array.isArray(reply) || reply.length === 0) continue;
      const entries = (reply[0] as Reply[])[1] as Reply[];
      await this.#take(entries).catch((error) =>
        this.#log(`could not take ${entries.length} entries: ${error}`)
      );
    }
  }

  // The entries of one read are taken together: their tasks reach the
  // local pool in one turn, which batches them to its workers.
  async #take(entries: Reply[]): Promise<void> {
    const taken: Held[] = [];
    for (const reply of entries) {
      const [id, fields] = reply as [Reply, Reply];
      const entry = text(id);
      let tasks: ReturnType<typeof readTasks> = [];
      try {
        tasks = readTasks(fieldsOf(fields));
      } catch (error) {
        this.#log(`dropped entry ${entry}: it cannot be read (${error})`);
      }
      if (tasks.length === 0) {
        await this.#acknowledge(entry);
        continue;
      }
      this.#perEntry = this.#perEntry * 0.8 + tasks.length * 0.2;
      const held: Held = {
        entry,
        driver: tasks[0]!.driver,
        resultTtl: tasks[0]!.resultTtl,
        visibility: tasks[0]!.visibility,
        tasks: [],
        left: tasks.length,
        started: false,
        retry: tasks.some((task) => task.attempt > 1),
        claimedAt: Date.now(),
        withdrawn: false,
        unwritten: false,
      };
      const now = Date.now();
      held.tasks = tasks.map((task) => ({
        held,
        task,
        local: undefined,
        takenAt: now,
        answered: false,
      }));
      this.#held.set(entry, held);
      this.#holding += tasks.length;
      taken.push(held);
    }
    // Retries first: they need a worker free now, not one after the others.
    taken.sort((a, b) => Number(b.retry) - Number(a.retry));
    const alive = new Map<string, boolean>();
    for (const held of taken) {
      if (!alive.has(held.driver)) {
        alive.set(held.driver, await this.#driverAlive(held.driver));
      }
    }
    for (const held of taken) {
      if (alive.get(held.driver) && held.retry && !this.#roomForRetry()) {
        // Handed back uncounted; no read-ahead for a while, so that this
        // host soon has a free worker to take it.
        this.#readAheadOffUntil = Date.now() + RETRY_ROOM_MS;
        for (const task of held.tasks) this.#finish(task, "dropped", undefined);
        continue;
      }
      if (alive.get(held.driver)) {
        if (held.retry) {
          this.#readAheadOffUntil = 0;
          await this.#markStarted(held.entry);
        }
        held.started = true;
        held.claimedAt = Date.now();
        for (const task of held.tasks) this.#run(task);
        continue;
      }
      const more = held.tasks.length - 1;
      this.#log(
        `dropped task ${
          held.tasks[0]!.task.task
        } of driver ${held.driver}: the driver is gone${
          more > 0 ? ` (and ${more} more of its entry)` : ""
        }`,
      );
      for (const task of held.tasks) this.#finish(task, "dropped", undefined);
    }
  }

  // A retry is taken only where a worker is free and no task waits, so
  // that a host that dies holding it ran it: its delivery counts, and no
  // unstarted task beside it is charged one.
  #roomForRetry(): boolean {
    let held = 0;
    for (const entry of this.#held.values()) {
      if (!entry.started) continue;
      for (const task of entry.tasks) {
        if (task.answered) continue;
        if (!startedLocally(task)) return false;
        held++;
      }
    }
    return held < this.processes;
  }

  // The mark that has a lost host count this delivery of a retry; it lands
  // before the retry starts. JUSTID claims elsewhere keep it.
  async #markStarted(entry: string): Promise<void> {
    await this.#retry(() =>
      this.#links.commands.call([
        "XCLAIM",
        this.keys.tasks,
        GROUP,
        this.consumer,
        "0",
        entry,
        "RETRYCOUNT",
        String(STARTED),
        "JUSTID",
      ])
    );
  }

  // A retry taken is started before anything more is read.
  #retryWaiting(): boolean {
    for (const entry of this.#held.values()) {
      if (!entry.retry || !entry.started) continue;
      for (const task of entry.tasks) {
        if (!task.answered && !startedLocally(task)) return true;
      }
    }
    return false;
  }

  // One task: checked, then run by the local pool. Without a signal, which
  // would have it run alone: a cancellation stops it through the pool.
  #run(held: HeldTask): void {
    const task = held.task;
    if (task.unreadable !== undefined) {
      return this.#finish(
        held,
        "error",
        new Error(
          `The worker host cannot read the task (${task.unreadable}): run the same version of multiproc on callers and hosts`,
        ),
      );
    }
    if (this.#cancelled.has(`${task.driver} ${task.task}`)) {
      return this.#finish(
        held,
        "error",
        new Error("The caller cancelled the task"),
      );
    }
    if (task.attempt > 1) {
      this.#log(
        `redelivered task ${task.task} of driver ${task.driver} (attempt ${task.attempt})`,
      );
    }
    if (task.inline && !this.#options.allowInline) {
      return this.#finish(
        held,
        "error",
        new Error(
          `This worker host does not run inline functions: anyone who can write to Redis could run code on it: export the function from the task module and call it by name, or start the host with --allow-inline (serve's allowInline: true) where you trust every writer`,
        ),
      );
    }
    const job: Job = {
      settle: (_task: Task, ok: boolean, value: unknown) =>
        this.#finish(held, ok ? "ok" : "error", value),
    };
    try {
      // A local pool that cannot work (its module fails to load) says why.
      this.#engine.checkOpen();
      const fn = task.inline ? this.#engine.inline(task.fn as string) : task.fn;
      // Packed numbers are already the local pool's copy of a chunk.
      const packed = task.values instanceof Float64Array;
      const local = this.#engine.task(
        fn,
        task.kind,
        task.values as unknown[],
        packed ? "transferred" : task.kind === APPLY ? "arguments" : "items",
        job,
        0,
        task.timeout === undefined ? undefined : { timeout: task.timeout },
      );
      held.local = local;
      this.#engine.submit(local);
    } catch (error) {
      this.#finish(held, "error", error);
    }
  }

  // A task's outcome joins the others of this turn: they are written
  // together, once the write before has been answered.
  #finish(held: HeldTask, outcome: Outcome, value: unknown): void {
    if (held.answered) return;
    held.answered = true;
    held.held.left--;
    this.#holding--;
    const entry = held.held;
    // Only a result someone waits for is written: not the failure of a
    // withdrawn entry (its task went out again, and the new delivery's
    // result counts), nor anything for a driver that was terminated (its
    // results stream, deleted, would be made again for resultTtl).
    const wanted = !(entry.withdrawn && outcome !== "ok") &&
      !this.#terminated.has(entry.driver);
    this.#answers.push({
      held: entry,
      answer: { task: held.task.task, outcome, value },
      wanted,
    });
    if (outcome !== "dropped") {
      this.#done++;
      // A moving average of the time from read to result.
      const ms = Date.now() - held.takenAt;
      this.#averageMs = this.#done === 1
        ? ms
        : this.#averageMs * 0.8 + ms * 0.2;
    }
    this.#writing ??= this.#write();
  }

  // One transaction for the results of a turn: one XADD per entry they
  // answer, and the acknowledgement of the entries they complete, so that
  // an entry is either done (every result written, entry gone) or still
  // pending. Redis refusing the write (out of memory, say) is logged: the
  // entry stays pending, and its driver delivers its tasks again.
  async #write(): Promise<void> {
    await Promise.resolve();
    while (this.#answers.length > 0) {
      const batch = this.#answers;
      this.#answers = [];
      const byEntry = new Map<Held, Answer[]>();
      const ttls = new Map<string, number>();
      const complete = new Set<Held>();
      for (const { held, answer, wanted } of batch) {
        if (held.left === 0) complete.add(held);
        if (!wanted) continue;
        const answers = byEntry.get(held);
        if (answers) answers.push(answer);
        else byEntry.set(held, [answer]);
        ttls.set(this.keys.results(held.driver), held.resultTtl);
      }
      const commands: Command[] = [];
      for (const [held, answers] of byEntry) {
        commands.push([
          "XADD",
          this.keys.results(held.driver),
          "*",
          ...resultFields(held.entry, answers, this.consumer),
        ]);
      }
      for (const [key, ttl] of ttls) {
        commands.push(["PEXPIRE", key, String(ttl)]);
      }
      const done = [...complete].filter((held) => !held.unwritten)
        .map((held) => held.entry);
      if (done.length > 0) {
        commands.push(
          ["XACK", this.keys.tasks, GROUP, ...done],
          ["XDEL", this.keys.tasks, ...done],
        );
      }
      try {
        await this.#retry(() => this.#links.commands.atomically(commands));
      } catch (error) {
        for (const held of byEntry.keys()) held.unwritten = true;
        this.#log(
          `could not write the results of ${batch.length} tasks of ${byEntry.size} entries: ${error}`,
        );
      }
      for (const held of complete) this.#held.delete(held.entry);
      this.#room?.();
      this.#room = undefined;
    }
    this.#writing = undefined;
  }

  // An entry that is no task (deleted by its driver) is just acknowledged.
  async #acknowledge(entry: string): Promise<void> {
    await this.#retry(() =>
      this.#links.commands.atomically([
        ["XACK", this.keys.tasks, GROUP, entry],
        ["XDEL", this.keys.tasks, entry],
      ])
    );
  }

  // A driver's key lives while it does; checked at most every few seconds.
  async #driverAlive(driver: string): Promise<boolean> {
    const known = this.#drivers.get(driver);
    const now = Date.now();
    if (
      known &&
      now - known.at < (known.alive ? DRIVER_CHECK_MS : DRIVER_GONE_CHECK_MS)
    ) return known.alive;
    const exists = await this.#retry(() =>
      this.#links.commands.call(["EXISTS", this.keys.driver(driver)])
    );
    const alive = exists !== 0;
    this.#drivers.set(driver, { alive, at: now });
    if (this.#drivers.size > 1000) this.#drivers.clear();
    return alive;
  }

  // ---- while tasks run --------------------------------------------------

  // A live host keeps its tasks: their idle time restarts well before the
  // driver's visibility timeout. Tasks no longer pending were withdrawn.
  async #extendClaims(): Promise<void> {
    const now = Date.now();
    const due = [...this.#held.values()].filter((held) =>
      held.started && !held.unwritten && held.left > 0 &&
      now - held.claimedAt >= held.visibility / 3
    );
    if (due.length === 0) return;
    const reply = await this.#links.commands.call([
      "XCLAIM",
      this.keys.tasks,
      GROUP,
      this.consumer,
      "0",
      ...due.map((held) => held.entry),
      "JUSTID",
    ]);
    const kept = new Set(
      Array.isArray(reply) ? reply.map((id) => text(id)) : [],
    );
    for (const held of due) {
      held.claimedAt = now;
      if (!kept.has(held.entry)) {
        held.withdrawn = true;
        this.#stopTasks(
          held.tasks,
          new Error("The driver withdrew the task"),
        );
      }
    }
  }

  // "<driver> <task>,<task>…" stops those tasks; "<driver> *" all of that
  // driver's. A cancellation may overtake the task it names, still being
  // read: it is remembered for a while, and a whole driver's marks the
  // driver gone.
  #onCancel(message: string): void {
    const [driver, list] = message.split(" ") as [string, string];
    const all = list === "*";
    const named = new Set(all ? [] : list.split(",").map(Number));
    if (all) {
      this.#drivers.set(driver, { alive: false, at: Date.now() });
      this.#terminated.add(driver);
      if (this.#terminated.size > 1000) {
        this.#terminated.delete(this.#terminated.values().next().value!);
      }
    } else {
      const now = Date.now();
      for (const task of named) this.#cancelled.set(`${driver} ${task}`, now);
      for (const [key, at] of this.#cancelled) {
        if (now - at < CANCEL_MEMORY_MS) break;
        this.#cancelled.delete(key);
      }
    }
    for (const held of this.#held.values()) {
      if (held.driver !== driver) continue;
      this.#stopTasks(
        all ? held.tasks : held.tasks.filter((t) => named.has(t.task.task)),
        new Error("The caller cancelled the task"),
      );
    }
  }

  // Tasks the local pool has are stopped there, and answered through their
  // job; the others are answered here.
  #stopTasks(tasks: HeldTask[], reason: Error): void {
    const local: Task[] = [];
    for (const task of tasks) {
      if (task.answered) continue;
      if (task.local === undefined) this.#finish(task, "error", reason);
      else local.push(task.local);
    }
    if (local.length > 0) this.#engine.stop(local, reason);
  }

  // ---- upkeep -----------------------------------------------------------

  // The host list shows who lives; long-silent hosts are forgotten.
  async #heartbeat(): Promise<void> {
    const now = Date.now();
    const commands = this.#links.commands;
    await commands.call([
      "HSET",
      this.keys.hosts,
      this.consumer,
      JSON.stringify({
        host: machineName(),
        pid: process.pid,
        processes: this.processes,
        backend: this.backend,
        running: this.#holding,
        completed: this.#done,
        started: this.#started,
        at: now,
      }),
    ]);
    const hosts = await commands.call(["HGETALL", this.keys.hosts]);
    if (!Array.isArray(hosts)) return;
    for (let i = 0; i + 1 < hosts.length; i += 2) {
      const beat = JSON.parse(text(hosts[i + 1])) as { at: number };
      if (now - beat.at > FORGET_HOST_MS) {
        await this.#forgetHost(text(hosts[i]));
      }
    }
  }

  // Tasks held by hosts that died for drivers that died too are nobody's:
  // no driver will send them again. They are removed, a page at a time.
  async #sweep(): Promise<void> {
    const commands = this.#links.commands;
    const stale = await commands.call([
      "XPENDING",
      this.keys.tasks,
      GROUP,
      "IDLE",
      String(ABANDONED_MS),
      "-",
      "+",
      "100",
    ]);
    if (!Array.isArray(stale)) return;
    for (const pending of stale) {
      const entry = text((pending as Reply[])[0]);
      const found = await commands.call([
        "XRANGE",
        this.keys.tasks,
        entry,
        entry,
      ]);
      const fields = Array.isArray(found) && found.length > 0
        ? fieldsOf((found[0] as Reply[])[1]!)
        : undefined;
      const driver = fields === undefined ? undefined : text(fields.get("d"));
      if (driver !== undefined && await this.#driverAlive(driver)) continue;
      await this.#acknowledge(entry);
    }
  }

  // A consumer with tasks still pending stays, so its tasks go out again.
  async #forgetHost(consumer: string): Promise<void> {
    const commands = this.#links.commands;
    await commands.call(["HDEL", this.keys.hosts, consumer]);
    const pending = await commands.call([
      "XPENDING",
      this.keys.tasks,
      GROUP,
      "-",
      "+",
      "1",
      consumer,
    ]);
    if (Array.isArray(pending) && pending.length === 0) {
      await commands.call([
        "XGROUP",
        "DELCONSUMER",
        this.keys.tasks,
        GROUP,
        consumer,
      ]);
    }
  }

  // Hands back the waiting tasks, then finishes or stops the running ones.
  async #shutdown(): Promise<void> {
    this.#stopping = true;
    this.#room?.();
    // A read blocked on a lost connection would hold the stop forever.
    await Promise.race([this.#reading, delay(READ_STOP_MS)]);
    this.#links.reader.destroy();
    if (this.#forced) this.#handBackAll();
    else {
      for (const held of [...this.#held.values()]) {
        for (const task of held.tasks) {
          if (task.answered) continue;
          if (task.local === undefined || task.local.state === "queued") {
            if (task.local) this.#engine.cancel([task.local]);
            this.#finish(task, "dropped", undefined);
          }
        }
      }
    }
    while (this.#held.size > 0) {
      await new Promise<void>((resolve) => this.#room = resolve);
    }
    for (const timer of this.#timers) clearInterval(timer);
    this.#engine.close();
    if (this.#forced) this.#engine.terminate();
    await this.#engine.exited();
    await Promise.race([this.#leave(), delay(READ_STOP_MS)]);
    this.#links.subscriber.destroy();
    this.#links.commands.destroy();
    this.#log(`stopped after ${this.#done} tasks`);
  }

  // Every held task goes back to its driver, running ones too; the workers
  // running them are stopped, and what they finish later is not written.
  #handBackAll(): void {
    for (const held of [...this.#held.values()]) {
      for (const task of held.tasks) this.#finish(task, "dropped", undefined);
    }
    this.#engine.terminate();
  }

  // The host leaves the host list, and the group when it holds nothing.
  async #leave(): Promise<void> {
    try {
      await this.#forgetHost(this.consumer);
    } catch {
      // Redis is gone: the host list forgets this host on its own.
    }
  }

  // A command lost with its connection is sent again once it is back.
  async #retry<T>(send: () => Promise<T>): Promise<T> {
    return (await untilAnswered(send))!;
  }

  // Periodic upkeep; a failed round is tried at the next.
  #every(ms: number, work: () => Promise<void>): void {
    let running = false;
    this.#timers.push(setInterval(() => {
      if (running) return;
      running = true;
      work().catch(() => {}).finally(() => running = false);
    }, ms));
  }

  #log(line: string): void {
    this.#options.log(`${this.consumer} ${line}`);
  }
}

// Handed to a worker: a local task sent to a worker that was free runs now.
function startedLocally(task: HeldTask): boolean {
  return task.local !== undefined &&
    (task.local.state === "running" || task.local.state === "done");
}

// Deno asks for --allow-sys to read the host name; the pid still tells
// hosts apart without it.
function machineName(): string {
  try {
    return hostname();
  } catch {
    return "host";
  }
}

// The retry loops' pause.
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
