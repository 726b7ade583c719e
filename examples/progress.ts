/**
 * Progress on long work, as Python users wrap `imap` in tqdm: a pool counts
 * the primes below each of many limits with `imapUnordered`, and a line on
 * stderr says how many tasks are done, their rate and the time left, with
 * no dependency. On a terminal the line is redrawn in place, at most ten
 * times a second; when stderr is a file or a pipe (a CI log), a plain line
 * is printed at every tenth of the work instead, with no control characters.
 *
 * Run with `deno run -A examples/progress.ts [tasks]` (200 by default).
 *
 * @module
 */
import process from "node:process";
import { isMainModule, Pool } from "../mod.ts";

/** Counts the primes below `limit`: a task that keeps a CPU busy for a while. */
export function countPrimes(limit: number): number {
  let count = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

/** Where a progress line goes: `process.stderr`, or anything like it. */
export interface ProgressStream {
  /** Whether it is a terminal, which can redraw a line in place. */
  isTTY?: boolean;
  /** Writes text. */
  write(text: string): unknown;
}

/** Options of {@linkcode ProgressLine}. */
export interface ProgressOptions {
  /** What the line is about. @default {"tasks"} */
  unit?: string;
  /** Where the line goes. @default {process.stderr} */
  stream?: ProgressStream;
  /** Off a terminal, a line every this many percent. @default {10} */
  everyPercent?: number;
}

/** Seconds as `4.2 s` or `3 min 05 s`. */
function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${
    String(whole % 60).padStart(2, "0")
  } s`;
}

/**
 * A progress line for `total` steps: call `tick()` as each is done and
 * `finish()` at the end.
 */
export class ProgressLine {
  #total: number;
  #unit: string;
  #stream: ProgressStream;
  #everyPercent: number;
  #done = 0;
  #started = performance.now();
  #drawn = -Infinity;
  #printedStep = 0;

  /** Starts the clock for `total` steps. */
  constructor(total: number, options: ProgressOptions = {}) {
    this.#total = total;
    this.#unit = options.unit ?? "tasks";
    this.#stream = options.stream ?? process.stderr;
    this.#everyPercent = options.everyPercent ?? 10;
  }

  /** The line as it reads now: done/total, percent, rate and time left. */
  get text(): string {
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const percent = this.#total > 0
      ? Math.floor((this.#done / this.#total) * 100)
      : 100;
    const head = `${this.#done}/${this.#total} ${this.#unit} (${percent}%)`;
    if (this.#done >= this.#total) {
      return `${head} in ${duration(seconds)}, ${rate.toFixed(1)}/s`;
    }
    const left = rate > 0 ? (this.#total - this.#done) / rate : Infinity;
    return `${head}, ${rate.toFixed(1)}/s, ETA ${duration(left)}`;
  }

  /** Counts `steps` more done, and shows it when it is time to. */
  tick(steps = 1): void {
    this.#done += steps;
    if (this.#stream.isTTY) {
      // Redrawing more often than the eye reads costs the work's time.
      const now = performance.now();
      if (now - this.#drawn < 100) return;
      this.#drawn = now;
      this.#stream.write(`\r${this.text}\x1b[K`);
      return;
    }
    const step = Math.floor(
      (this.#done / this.#total) * (100 / this.#everyPercent),
    );
    if (step > this.#printedStep && this.#done < this.#total) {
      this.#printedStep = step;
      this.#stream.write(`${this.text}\n`);
    }
  }

  /** Shows the final line: how long it all took. */
  finish(): void {
    this.#stream.write(
      this.#stream.isTTY ? `\r${this.text}\x1b[K\n` : `${this.text}\n`,
    );
  }
}

if (isMainModule(import.meta)) {
  const total = Number(process.argv[2] ?? 200);
  const limits = Array.from({ length: total }, (_, i) => 300_000 + 1_009 * i);
  await using pool = new Pool<typeof import("./progress.ts")>(
    import.meta.url,
  );
  const progress = new ProgressLine(total);
  let primes = 0;
  for await (const count of pool.imapUnordered("countPrimes", limits)) {
    primes += count;
    progress.tick();
  }
  progress.finish();
  console.log(`${primes} primes below the ${total} limits, counted apiece`);
}
