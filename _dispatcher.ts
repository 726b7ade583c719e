// The engine behind Pool: starts and replaces workers, batches queued tasks
// to them, times tasks out, and turns what workers send back into task
// outcomes. It is given how to start a worker (`start`) rather than importing
// it, so tests can drive it with a fake worker and another engine could sit
// behind the same jobs. Pool (pool.ts) validates and builds jobs; this file
// never throws a user's mistake back, it only runs tasks.
import {
  copyBinary,
  copyBuffers,
  fromBinary,
  isBinary,
  isBinaryFile,
  loadBinary,
  spillBinary,
} from "./_binary.ts";
import { removeSpilledFile, spillDirectory } from "./_spill.ts";
import { setLongTimeout } from "./_deadline.ts";
import { TimeoutError, WorkerExitError } from "./_errors.ts";
import { type CopyMode, isLimit, type Job, Task } from "./_jobs.ts";
import { type AnyCore, shareValues } from "./_share.ts";
import { ArrayTaskQueue, type TaskQueue } from "./_task_queue.ts";
import type { Backend, SubmitOptions, WorkerPermissions } from "./_types.ts";
import {
  copyItems,
  copyValues,
  InlineSources,
  ownViews,
  serializeValues,
} from "./_values.ts";
import {
  APPLY,
  BINARY,
  decodeError,
  DEFINE,
  type FromWorker,
  type FunctionRef,
  INIT,
  INIT_FAILED,
  ONLINE,
  READY,
  RESULTS,
  type ResultsMessage,
  RUN,
  type RunMessage,
  SERIALIZED,
  SHARED,
  STOP,
  type TaskKind,
  type WorkerSetup,
} from "./_wire.ts";
import type {
  WorkerExit,
  WorkerHandle,
  WorkerStartOptions,
} from "./_worker_handle.ts";

/** Starts one worker: `startThread` or `startProcess`, or a fake in tests. */
export type StartWorker = (options: WorkerStartOptions) => WorkerHandle;

/** What the dispatcher is told by the pool. */
export interface DispatcherOptions {
  /** How many workers it keeps at most. */
  processes: number;
  /** Workers that start at once and are kept; the others start on demand. */
  eager: number;
  /** The most workers starting at once. */
  startLimit: number;
  backend: Backend;
  /** How to start a worker of that backend. */
  start: StartWorker;
  /** What each worker is told in INIT, but its name. */
  setup: Omit<WorkerSetup, "name">;
  /** The queues and pipes the initializer's arguments hold. */
  initCores: AnyCore[];
  maxTasksPerChild: number | undefined;
  maxQueue: number | undefined;
  maxHeapMb: number | undefined;
  permissions: WorkerPermissions | undefined;
}

/** The pool's state: running, closed to new tasks, or stopped. */
export type PoolState = "running" | "closed" | "terminated";

/** What the dispatcher counts, for `Pool.stats()`. */
export interface DispatcherCounts {
  workersStarted: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  state: PoolState;
}

/** One worker of the pool and what it has been given. */
class WorkerSlot {
  handle!: WorkerHandle;
  online = false;
  ready = false;
  readonly inFlight: Task<WorkerSlot>[] = [];
  readonly defined = new Set<number>();
  assigned = 0;
  /** Set when we stop it (retire, close, terminate, timeout): its exit is expected. */
  stopping = false;
  // Named as currentProcess() reports it inside the worker.
  constructor(readonly name: string) {}
}

/** Workers that die before they are ready this many times in a row break the pool. */
const MAX_START_FAILURES = 3;
/** A batch should keep a worker busy about this long, so that messaging costs little. */
const TARGET_BATCH_MS = 1;
const MAX_BATCH = 1024;
/** Tasks shorter than this get a second one queued in their worker. */
const PREFETCH_BELOW_MS = 20;

/** Runs the tasks of one pool on its workers. */
export class Dispatcher {
  #options: DispatcherOptions;
  #workers = new Set<WorkerSlot>();
  #queue: TaskQueue<Task<WorkerSlot>> = new ArrayTaskQueue();
  #waiters: (() => void)[] = [];
  #inline = new InlineSources();
  #state: PoolState = "running";
  #broken: unknown = undefined;
  #startFailures = 0;
  #started = 0;
  #running = 0;
  #completed = 0;
  #failed = 0;
  #avgTaskMs = Number.POSITIVE_INFINITY;
  #dispatchScheduled = false;
  #referenced = false;
  #exited: (() => void) | undefined;

  // Starts the eager workers; a pool that cannot start any throws here.
  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#grow();
    if (this.#broken !== undefined) throw this.#broken;
    this.#updateRef();
  }

  // ---- the pool's side --------------------------------------------------

  // Pool.stats() reports these beside its own settings.
  counts(): DispatcherCounts {
    return {
      workersStarted: this.#started,
      queued: this.#queue.size,
      running: this.#running,
      completed: this.#completed,
      failed: this.#failed,
      state: this.#state,
    };
  }

  // Every submission checks this first, so a closed pool refuses at once.
  /** @throws {Error} when the pool is closed, terminated or broken. */
  checkOpen(): void {
    if (this.#state !== "running") {
      throw new Error(
        `Cannot submit a task: the pool is ${this.#state}: submit before close(), or create a new Pool`,
      );
    }
    if (this.#broken !== undefined) throw this.#broken;
  }

  // An inline function is sent once per worker by id, not with each task.
  /** The id of an inline function's source. */
  inline(code: string): number {
    return this.#inline.id(code);
  }

  // Python's close(): no more tasks, and idle workers may go.
  close(): void {
    if (this.#state !== "running") return;
    this.#state = "closed";
    this.#stopIdleWorkers();
  }

  // join() waits on this; it holds the event loop meanwhile.
  /** Resolves once every worker has exited. */
  async exited(): Promise<void> {
    if (this.#workers.size === 0) return;
    const exited = new Promise<void>((resolve) => {
      const previous = this.#exited;
      this.#exited = () => {
        previous?.();
        resolve();
      };
    });
    // Hold the event loop until the workers are gone.
    this.#updateRef();
    await exited;
  }

  // Python's terminate(): fail what is pending and kill every worker.
  terminate(): void {
    if (this.#state === "terminated") return;
    this.#state = "terminated";
    const error = new Error(
      "The pool was terminated before the task finished",
    );
    this.#failAll(error);
    for (const slot of this.#workers) this.#kill(slot, "SIGKILL");
  }

  // ---- TaskRunner: what jobs call ---------------------------------------

  // Copies at submission, so later changes by the caller are never seen;
  // queues and pipes are swapped for what the worker can use.
  /** Makes a task of `values`, copied as `copy` says. */
  task(
    fn: FunctionRef,
    kind: TaskKind,
    values: unknown[],
    copy: CopyMode,
    job: Job,
    index: number,
    options: SubmitOptions | undefined,
  ): Task<WorkerSlot> {
    const shared = shareValues(values, this.#options.backend);
    if (shared.cores.length === 0) {
      const dir = copy === "transferred" ? undefined : this.#bulkDirectory();
      const binary = copy === "transferred"
        ? undefined
        : (dir === undefined ? undefined : spillBinary(values, dir)) ??
          copyBinary(values);
      if (binary !== undefined) {
        return new Task(fn, kind | BINARY, binary, job, index, options);
      }
      const payload = copy === "transferred"
        ? values
        : copy === "items"
        ? copyItems(values)
        : serializeValues(values, "argument");
      const serialized = payload instanceof Uint8Array ? SERIALIZED : 0;
      return new Task(fn, kind | serialized, payload, job, index, options);
    }
    // Queues shared between threads are shared memory, which structured
    // clone keeps and a serializer refuses.
    const task = new Task<WorkerSlot>(
      fn,
      kind | SHARED,
      copy === "transferred"
        ? shared.values
        : copyValues(shared.values, copy === "items" ? "item" : "argument"),
      job,
      index,
      options,
    );
    task.cores = shared.cores;
    return task;
  }

  // A sandboxed child may not be able to read there.
  /** Where bulk data to and from child processes goes, if anywhere. */
  #bulkDirectory(): string | undefined {
    const { backend, permissions } = this.#options;
    if (backend !== "process") return undefined;
    if (permissions !== undefined && permissions !== "inherit") {
      return undefined;
    }
    return spillDirectory();
  }

  // maxQueue holds submissions back; otherwise a task is queued at once.
  /** Queues a task; a promise when it must first wait for room. */
  submit(task: Task<WorkerSlot>): Promise<void> | undefined {
    if (this.#queueFull()) return this.#submitWhenRoom(task);
    this.#enqueue(task);
    return undefined;
  }

  // Large map chunks leave as they are made.
  flush(): void {
    this.#dispatch();
  }

  // A map that failed or an imap left early drops its unsent tasks.
  cancel(tasks: Iterable<Task>): void {
    for (const task of tasks) {
      if (task.state === "new" || task.state === "queued") {
        this.#end(task as Task<WorkerSlot>, false, undefined, false);
      }
    }
  }

  // A Redis host's tasks carry no signal, which would run each alone: they
  // are batched, and stopped through here.
  /**
   * Stops tasks as a signal would, whether or not they run alone: a queued
   * one is dropped; a running one's worker is replaced, and the tasks sent
   * to it after it run elsewhere; one sent but not started is failed, and
   * its result, when it comes, is ignored.
   */
  stop(tasks: Iterable<Task>, reason: unknown): void {
    for (const task of tasks as Iterable<Task<WorkerSlot>>) {
      if (task.state !== "running") {
        if (task.state !== "done") this.#end(task, false, reason);
        continue;
      }
      const slot = task.worker!;
      if (slot.inFlight[0] !== task) {
        this.#end(task, false, reason);
        continue;
      }
      const notStarted = slot.inFlight.splice(1)
        .filter((other) => other.state === "running");
      this.#running -= notStarted.length;
      for (const other of notStarted) other.worker = undefined;
      this.#queue.push(notStarted, true);
      this.#stopRunning(task, reason);
    }
    this.#scheduleDispatch();
  }

  // ---- submission -------------------------------------------------------

  // Queues the task and watches its signal until it ends.
  #enqueue(task: Task<WorkerSlot>): void {
    // Cancelled while it waited for room.
    if (task.state === "done") return;
    this.#queue.push([task], false);
    const signal = task.options?.signal;
    if (signal) {
      if (signal.aborted) {
        this.#abort(task, signal.reason);
        return;
      }
      // Removed when the task ends: a long-lived signal must not keep every
      // task it ever guarded.
      task.onAbort = () => this.#abort(task, signal.reason);
      signal.addEventListener("abort", task.onAbort, { once: true });
    }
    this.#updateRef();
    this.#scheduleDispatch();
  }

  // maxQueue bounds the tasks waiting for a worker.
  #queueFull(): boolean {
    const maxQueue = this.#options.maxQueue;
    return maxQueue !== undefined && this.#queue.size >= maxQueue;
  }

  // Backpressure: the submission resolves once the queue has room.
  async #submitWhenRoom(task: Task<WorkerSlot>): Promise<void> {
    while (this.#queueFull()) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
      if (this.#state === "terminated") {
        this.#end(task, false, new Error("The pool was terminated"));
        return;
      }
    }
    this.#enqueue(task);
  }

  // Many submissions in one turn make one dispatch, so they batch.
  #scheduleDispatch(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    queueMicrotask(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  // Few for long tasks (even load), many for tiny ones (cheap messaging).
  /** How many tasks a worker may hold. */
  #capacity(): number {
    const avg = this.#avgTaskMs;
    // Medium tasks: one more in flight hides the round trip; long ones go
    // one at a time, so that the load stays even.
    if (!(avg < TARGET_BATCH_MS)) return avg < PREFETCH_BELOW_MS ? 2 : 1;
    const batch = Math.min(MAX_BATCH, Math.floor(TARGET_BATCH_MS / avg));
    return 2 * Math.max(1, batch);
  }

  // Called whenever work or a worker may have become free.
  #dispatch(): void {
    if (this.#state === "terminated") return;
    // Results arrive far more often than work waits: look at the workers
    // only when there is something to give them.
    if (this.#queue.peek() !== undefined) {
      this.#shareQueued();
      if (this.#workers.size < this.#options.processes) this.#grow();
    }
    this.#wakeWaiters();
    if (this.#state === "closed") this.#stopIdleWorkers();
    this.#updateRef();
  }

  // Spreads the queue over the workers with room, least loaded first.
  #shareQueued(): void {
    const capacity = this.#capacity();
    // Least loaded first, so that a trickle of tasks spreads over the pool.
    const open = [...this.#workers]
      .filter((slot) => this.#hasRoom(slot, capacity))
      .sort((a, b) => a.inFlight.length - b.inFlight.length);
    // Workers still starting get their share too: a batch taken while they
    // start would leave them idle once they are up.
    let starting = 0;
    for (const slot of this.#workers) {
      if (!slot.ready && !slot.stopping) starting++;
    }
    for (let i = 0; i < open.length; i++) {
      if (this.#queue.peek() === undefined) break;
      const slot = open[i]!;
      const share = Math.ceil(this.#queue.size / (open.length - i + starting));
      this.#send(slot, Math.min(capacity - slot.inFlight.length, share));
    }
  }

  // An isolated task holds its worker alone; maxTasksPerChild caps the rest.
  #hasRoom(slot: WorkerSlot, capacity: number): boolean {
    if (!slot.ready || slot.stopping) return false;
    if (slot.inFlight.length > 0 && slot.inFlight[0]!.isolated) return false;
    if (slot.inFlight.length >= capacity) return false;
    const max = this.#options.maxTasksPerChild;
    return max === undefined || slot.assigned < max;
  }

  // One message per batch is what makes tiny tasks cheap.
  /** Sends up to `count` queued tasks to `slot` in one message. */
  #send(slot: WorkerSlot, count: number): void {
    const max = this.#options.maxTasksPerChild;
    if (max !== undefined) count = Math.min(count, max - slot.assigned);
    const message: RunMessage = [RUN];
    const transfer: Transferable[] = [];
    for (let sent = 0; sent < count; sent++) {
      const next = this.#queue.peek();
      if (next === undefined) break;
      if (next.isolated && slot.inFlight.length > 0) break;
      const task = this.#queue.shift();
      if (typeof task.fn === "number" && !slot.defined.has(task.fn)) {
        slot.handle.post([
          DEFINE,
          task.fn,
          this.#inline.source(task.fn),
        ]);
        slot.defined.add(task.fn);
      }
      // The payload stays with the task until it ends: a task whose worker
      // dies before starting it is sent again.
      if (task.cores) slot.handle.share(task.cores);
      message.push(task.fn, task.kind, this.#outgoing(task.payload, transfer));
      task.state = "running";
      task.worker = slot;
      slot.inFlight.push(task);
      slot.assigned++;
      this.#running++;
      if (task.options?.transfer) transfer.push(...task.options.transfer);
      if (task.isolated) {
        this.#startTimer(task);
        break;
      }
    }
    if (message.length > 1) {
      slot.handle.post(message, transfer.length > 0 ? transfer : undefined);
    }
  }

  /**
   * What goes in the message for a payload. A thread gets a packed chunk of
   * numbers or serialized values as a transferred copy of its bytes: one
   * memcpy, where Deno copies a typed array in a message about ten times
   * slower, and then its worker_threads visits every element looking for
   * ports (a bare ArrayBuffer has none to visit).
   */
  #outgoing(payload: unknown, transfer: Transferable[]): unknown {
    if (isBinary(payload)) {
      if (this.#options.backend !== "worker") return payload;
      const copies = copyBuffers(payload);
      transfer.push(...copies.buffers);
      return copies;
    }
    const packed = payload instanceof Float64Array ||
      payload instanceof Uint8Array;
    if (!packed || this.#options.backend !== "worker") return payload;
    // A copy, and not `slice()`, which is a view for a Node Buffer: the
    // task keeps its payload to send again if this worker dies.
    const bytes = new Uint8Array(
      payload.buffer,
      payload.byteOffset,
      payload.byteLength,
    ).slice().buffer;
    transfer.push(bytes);
    return bytes;
  }

  // Not setTimeout, which fires at once for 2^31 ms or more.
  #startTimer(task: Task<WorkerSlot>): void {
    const timeout = task.options?.timeout;
    if (!isLimit(timeout)) return;
    task.timer = setLongTimeout(() => {
      this.#stopRunning(
        task,
        new TimeoutError(
          `The task ran longer than its timeout of ${timeout} ms`,
        ),
      );
    }, timeout);
  }

  // A signal drops a waiting task, and stops a running one with its worker.
  #abort(task: Task<WorkerSlot>, reason: unknown): void {
    if (task.state === "running") {
      this.#stopRunning(task, reason);
    } else if (task.state !== "done") {
      this.#end(task, false, reason);
      this.#scheduleDispatch();
    }
  }

  // A running task cannot be interrupted: its worker is replaced.
  /** Fails a running task with `error` and kills its worker. */
  #stopRunning(task: Task<WorkerSlot>, error: unknown): void {
    const slot = task.worker!;
    this.#end(task, false, error);
    slot.inFlight.length = 0;
    this.#kill(slot, "SIGKILL");
  }

  // Submissions held back by maxQueue go on as the queue empties.
  #wakeWaiters(): void {
    const maxQueue = this.#options.maxQueue;
    while (
      this.#waiters.length > 0 &&
      (maxQueue === undefined || this.#queue.size < maxQueue)
    ) {
      this.#waiters.shift()!();
    }
  }

  // ---- outcomes ---------------------------------------------------------

  /**
   * The one way a task ends, whatever its state: it lets go of what it
   * holds, is counted, and (when `notify`) settles its job with the result
   * or the decoded error.
   */
  #end(
    task: Task<WorkerSlot>,
    ok: boolean,
    value: unknown,
    notify = true,
  ): void {
    const state = task.state;
    if (state === "done") return;
    // A dropped task stays in the queue, skipped when it comes up.
    if (state === "queued") this.#queue.drop(task);
    else if (state === "running") this.#running--;
    task.state = "done";
    // Kept until now to be sent again if its worker died first.
    if (isBinaryFile(task.payload)) removeSpilledFile(task.payload.path);
    task.payload = undefined;
    task.timer?.clear();
    if (task.onAbort) {
      task.options!.signal!.removeEventListener("abort", task.onAbort);
    }
    if (!notify) return;
    if (ok) this.#completed++;
    else this.#failed++;
    task.job.settle(task, ok, ok ? value : decodeError(value));
  }

  // RESULTS: outcomes in the order the tasks were sent.
  #onResults(slot: WorkerSlot, message: ResultsMessage): void {
    const count = (message.length - 2) / 2;
    if (count > 0) {
      const perTask = message[1] / count;
      this.#avgTaskMs = this.#avgTaskMs === Number.POSITIVE_INFINITY
        ? perTask
        : this.#avgTaskMs * 0.7 + perTask * 0.3;
    }
    // Views into the message's bytes would expose the rest through `.buffer`.
    const owning = slot.handle.sharesViews;
    for (let i = 2; i < message.length; i += 2) {
      const task = slot.inFlight.shift();
      if (task === undefined) continue;
      const ok = message[i] === 1;
      let value = message[i + 1];
      // A chunk's results may come as bulk data; a single result never does.
      if (ok && (task.kind & 3) !== APPLY) {
        if (isBinary(value)) value = fromBinary(value);
        else if (isBinaryFile(value)) value = loadBinary(value, true);
        // Packed numbers are read one by one, never handed out: no copy.
        else if (owning && !(value instanceof Float64Array)) {
          value = ownViews(value);
        }
      } else if (owning) value = ownViews(value);
      this.#end(task, ok, value);
    }
    const max = this.#options.maxTasksPerChild;
    if (
      max !== undefined && slot.assigned >= max && slot.inFlight.length === 0
    ) {
      this.#retire(slot);
    }
    this.#dispatch();
  }

  // Everything a worker says goes through here.
  #onMessage(slot: WorkerSlot, message: FromWorker): void {
    switch (message[0]) {
      case RESULTS:
        this.#onResults(slot, message);
        break;
      case ONLINE:
        slot.online = true;
        // A worker asked to stop while it started stops now.
        if (!slot.stopping) slot.handle.share(this.#options.initCores);
        slot.handle.post(
          slot.stopping ? [STOP] : [INIT, {
            ...this.#options.setup,
            name: slot.name,
            bulk: this.#bulkDirectory(),
          }],
        );
        break;
      case READY:
        slot.ready = true;
        this.#startFailures = 0;
        this.#dispatch();
        break;
      case INIT_FAILED:
        this.#break(
          decodeError(
            slot.handle.sharesViews ? ownViews(message[1]) : message[1],
          ),
        );
        break;
    }
  }

  // ---- workers ----------------------------------------------------------

  // One more worker, named for currentProcess().
  #spawn(): void {
    const slot = new WorkerSlot(`PoolWorker-${++this.#started}`);
    try {
      slot.handle = this.#options.start({
        maxHeapMb: this.#options.maxHeapMb,
        permissions: this.#options.permissions,
        module: this.#options.setup.module,
        onMessage: (message) => this.#onMessage(slot, message),
        onExit: (exit) => this.#onExit(slot, exit),
      });
    } catch (error) {
      // Deno refuses some starts at once (a missing permission).
      this.#break(error);
      return;
    }
    slot.handle.setRef(this.#referenced);
    this.#workers.add(slot);
  }

  /**
   * Starts workers up to the eager ones, and more while tasks wait that
   * the workers starting will not take (queued, or queued in a busy worker
   * behind its running task), up to `processes`, with at most `startLimit`
   * starting at once: a large pool costs only what its work needs, and
   * never starts hundreds of runtimes in one go.
   */
  #grow(): void {
    if (this.#broken !== undefined || this.#state === "terminated") return;
    const { processes, startLimit, eager } = this.#options;
    let active = 0;
    let starting = 0;
    let backlog = this.#queue.size;
    for (const slot of this.#workers) {
      if (slot.stopping) continue;
      active++;
      if (!slot.ready) starting++;
      else if (slot.inFlight.length > 1) backlog += slot.inFlight.length - 1;
    }
    while (
      active < processes && starting < startLimit &&
      (this.#state === "running" && active < eager || backlog > starting)
    ) {
      this.#spawn();
      if (this.#broken !== undefined) return;
      active++;
      starting++;
    }
  }

  // maxTasksPerChild: the worker finishes and a fresh one takes its place.
  #retire(slot: WorkerSlot): void {
    slot.stopping = true;
    slot.handle.post([STOP]);
    this.#grow();
  }

  // Its exit is expected: no task is blamed for it beyond those it held.
  #kill(slot: WorkerSlot, signal: "SIGTERM" | "SIGKILL"): void {
    slot.stopping = true;
    slot.handle.kill(signal);
  }

  // A closed pool lets its workers go as they run out of work.
  #stopIdleWorkers(): void {
    if (this.#state !== "closed" || this.#queue.peek() !== undefined) return;
    for (const slot of this.#workers) {
      if (!slot.stopping && slot.inFlight.length === 0) {
        slot.stopping = true;
        // Before ONLINE a message could be lost on IPC: ONLINE sends STOP.
        if (slot.online) slot.handle.post([STOP]);
      }
    }
  }

  // A worker is gone: fail its running task, run the rest again elsewhere,
  // replace it, and break the pool when workers cannot start at all.
  #onExit(slot: WorkerSlot, exit: WorkerExit): void {
    this.#workers.delete(slot);
    const lost = slot.inFlight.splice(0);
    if (exit.startError !== undefined) this.#break(exit.startError);
    // Killed from outside while starting is not the module's fault.
    const failedToStart = !slot.ready && !slot.stopping &&
      exit.signal === null && this.#state === "running";
    if (failedToStart) {
      if (++this.#startFailures >= MAX_START_FAILURES) {
        this.#break(
          new WorkerExitError(
            `Workers keep exiting before they are ready (exit code ${exit.exitCode}${
              exit.signal ? `, ${exit.signal}` : ""
            }): check the task module and the initializer`,
            { ...exit, cause: exit.error },
          ),
        );
      }
    }
    if (lost.length > 0) this.#recover(lost, exit);
    this.#grow();
    if (this.#workers.size === 0) {
      const exited = this.#exited;
      this.#exited = undefined;
      exited?.();
    }
    this.#dispatch();
  }

  // The first lost task was running and fails; the others had not started.
  #recover(lost: Task<WorkerSlot>[], exit: WorkerExit): void {
    const [culprit, ...notStarted] = lost;
    const how = `${
      exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`
    }${exit.error ? `: ${String(exit.error)}` : ""}${
      this.#outOfMemoryHint(exit)
    }`;
    const details = {
      exitCode: exit.exitCode,
      signal: exit.signal,
      cause: exit.error,
    };
    // Tasks it had not started run again elsewhere, unless their data was
    // transferred to it and went with it.
    const retry: Task<WorkerSlot>[] = [];
    for (const task of notStarted) {
      if (!task.options?.transfer) {
        retry.push(task);
        continue;
      }
      this.#end(
        task,
        false,
        new WorkerExitError(
          `The worker holding the task's transferred data exited (${how})`,
          details,
        ),
      );
    }
    this.#running -= retry.length;
    for (const task of retry) task.worker = undefined;
    this.#queue.push(retry, true);
    this.#end(
      culprit!,
      false,
      new WorkerExitError(
        `The worker running the task exited (${how})`,
        details,
      ),
    );
  }

  // V8 aborts a process that runs out of heap (Deno by SIGTRAP, Node by
  // SIGABRT) and prints its reason on stderr only: say what it most likely was.
  /** A hint for an exit that looks like running out of memory, else "". */
  #outOfMemoryHint(exit: WorkerExit): string {
    if (exit.signal !== "SIGTRAP" && exit.signal !== "SIGABRT") return "";
    const limit = this.#options.maxHeapMb;
    return `: the runtime aborted, most likely out of memory${
      limit === undefined ? "" : ` (maxHeapMb: ${limit})`
    }; give the worker more (maxHeapMb) or the task less to hold at once`;
  }

  /** A worker cannot start: fail what is pending and every later submission. */
  #break(error: unknown): void {
    if (this.#broken !== undefined) return;
    this.#broken = error;
    this.#failAll(error);
    for (const slot of this.#workers) this.#kill(slot, "SIGKILL");
  }

  // terminate() and a broken pool fail everything pending at once.
  #failAll(error: unknown): void {
    for (const slot of this.#workers) {
      for (const task of slot.inFlight.splice(0)) {
        this.#end(task, false, error);
      }
    }
    for (let task = this.#queue.peek(); task; task = this.#queue.peek()) {
      this.#end(task, false, error);
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Holds the event loop while there is work or a join; lets it go when idle. */
  #updateRef(): void {
    const busy = this.#running > 0 || this.#queue.size > 0 ||
      this.#waiters.length > 0 || this.#exited !== undefined;
    if (busy === this.#referenced) return;
    this.#referenced = busy;
    for (const slot of this.#workers) slot.handle.setRef(busy);
  }
}
