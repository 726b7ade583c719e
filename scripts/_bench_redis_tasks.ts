// The tasks of the Redis benchmark: what the multiproc-worker hosts serve
// (and the local pool runs as the ceiling), each returning at once.

/** Returns its argument: a task that costs nothing but its round trip. */
export function noop(x: number): number {
  return x;
}

/** The map case's task. */
export function square(x: number): number {
  return x * x;
}
