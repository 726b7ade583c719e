// The task of the pool benchmark's peers that load a module by file name
// (piscina, tinypool): a named export, called with one number.

/** Returns its argument: the cheapest task there is. */
export function noop(x: number): number {
  return x;
}
