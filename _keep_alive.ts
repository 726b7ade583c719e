// Waiting with `Atomics.waitAsync` does not hold the event loop, yet a
// program awaiting an item must not exit under it: while any wait is
// pending, one referenced timer keeps this thread alive.
let waits = 0;
let timer: ReturnType<typeof setInterval> | undefined;

// setInterval needs a callback; only the timer matters.
function idle(): void {}

// Atomics.waitAsync does not hold the event loop; a pending wait must.
/** Holds the event loop until the matching {@linkcode release}. */
export function hold(): void {
  if (waits++ === 0) timer = setInterval(idle, 1 << 30);
}

// With no wait left pending, the program may exit again.
/** Ends one {@linkcode hold}. */
export function release(): void {
  if (--waits === 0) {
    clearInterval(timer);
    timer = undefined;
  }
}
