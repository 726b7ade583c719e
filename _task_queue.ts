// The tasks waiting for a worker, behind a small interface (as piscina's
// task_queue/common.ts), so that the dispatcher does not depend on how they
// are kept. The one kept here is an array with a moving head: taking from
// the front costs nothing, and a task dropped while it waits stays in place
// and is skipped when it comes up.
import type { Task, TaskState } from "./_jobs.ts";

/** Waiting tasks, first in first out; tasks to run again go in front. */
export interface TaskQueue<T extends { state: TaskState } = Task> {
  /** The live tasks waiting (dropped ones no longer count). */
  readonly size: number;
  /** The next live task, left in place. */
  peek(): T | undefined;
  /** Takes the task {@linkcode TaskQueue.peek} returned. */
  shift(): T;
  /** Adds tasks at the back, or at the front (tasks to run again). */
  push(tasks: T[], front: boolean): void;
  /** Stops counting a task that left the queue state while in it. */
  drop(task: T): void;
}

/** A {@linkcode TaskQueue} in an array with a moving head. */
export class ArrayTaskQueue<T extends { state: TaskState } = Task>
  implements TaskQueue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #size = 0;

  // Counted apart from the array, which still holds dropped tasks.
  get size(): number {
    return this.#size;
  }

  // Skips (and lets go of) the tasks that ended while they waited.
  peek(): T | undefined {
    while (this.#head < this.#items.length) {
      const task = this.#items[this.#head]!;
      if (task.state === "queued") return task;
      this.#items[this.#head++] = undefined;
    }
    return undefined;
  }

  // Only after peek(): the head is then a live task.
  shift(): T {
    const task = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined;
    this.#size--;
    // The array would otherwise only grow: compact once mostly taken.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return task;
  }

  // Marks the tasks queued, which is what peek() looks for.
  push(tasks: T[], front: boolean): void {
    for (const task of tasks) task.state = "queued";
    this.#size += tasks.length;
    if (front) this.#items.splice(this.#head, 0, ...tasks);
    else this.#items.push(...tasks);
  }

  // The task stays in the array and is skipped when it comes up.
  drop(_task: T): void {
    this.#size--;
  }
}
