// Readable objects: how a class prints its state in console.log and
// util.inspect (Node, Bun) and in Deno.inspect, without importing node:util.
// Use: `static { defineInspect(this, (self) => ({ qsize: self.qsize() })); }`
// in the class body (the static block may read #private fields), or
// `defineInspect(Klass, …)` after it; `bare(value)` and `marker(label, value?)`
// print a body without keys, as a promise's: `AsyncResult { 16 }`,
// `AsyncResult { <pending> }`, `AsyncResult { <rejected> Error: … }`.

/** Node's and Bun's hook (`util.inspect.custom`), a registry symbol. */
const NODE_INSPECT = Symbol.for("nodejs.util.inspect.custom");
/** Deno's hook (`Deno.customInspect`), a registry symbol. */
const DENO_INSPECT = Symbol.for("Deno.customInspect");

/** A body without keys: a bare value, a marker such as `<pending>`, or both. */
export class Unkeyed {
  /** The marker printed first, e.g. `<rejected>`, in the runtime's "special" style. */
  readonly label: string | undefined;
  /** Whether there is a value to print after the marker. */
  readonly hasValue: boolean;
  /** The value, printed as the runtime prints values. */
  readonly value: unknown;

  // Made by bare() and marker(), which say which of the three it is.
  constructor(label: string | undefined, hasValue: boolean, value: unknown) {
    this.label = label;
    this.hasValue = hasValue;
    this.value = value;
  }
}

/** What a class shows of itself: named fields, or a body without keys. */
export type InspectBody = Readonly<Record<string, unknown>> | Unkeyed;

// A settled result shows just its value, as Node's `Promise { 16 }`.
/** A body that is one value without a key: `AsyncResult { 16 }`. */
export function bare(value: unknown): Unkeyed {
  return new Unkeyed(undefined, true, value);
}

// A state that is not a value, as Node's `Promise { <pending> }`.
/**
 * A body that is a marker, then a value if given: `AsyncResult { <pending> }`,
 * `AsyncResult { <rejected> Error: … }`.
 */
export function marker(label: string, ...value: [] | [unknown]): Unkeyed {
  return new Unkeyed(label, value.length > 0, value[0]);
}

/** What the formatter needs from the runtime that is printing. */
interface Printer {
  /** Levels left below this object; below 0 it prints as `[Name]`. */
  depth: number;
  /** Prints a value that is `depth` levels down, as lines starting at column 0. */
  inspect(value: unknown, depth: number): string;
  /** Colours `text` as the runtime colours that kind of token, when colours are on. */
  stylize(text: string, style: string): string;
  /** The width beyond which fields go on lines of their own. */
  breakLength: number;
  /** How far in the runtime has already indented this object. */
  indentation: number;
}

/** How a runtime prints values inside ours. */
type InspectFunction = (value: unknown, options: object) => string;

/** Node's `util.inspect.custom` method. */
type NodeHook<T> = (
  this: T,
  depth: number,
  options: NodeInspectOptions,
  inspect: InspectFunction,
) => string;

/** Deno's `Deno.customInspect` method. */
type DenoHook<T> = (
  this: T,
  inspect: InspectFunction,
  options: DenoInspectOptions,
) => string;

/** Node's options for a custom inspect function, the part we read. */
interface NodeInspectOptions {
  depth?: number | null;
  breakLength?: number;
  stylize?: (text: string, style: string) => string;
}

/** Deno's options for a custom inspect function, the part we read. */
interface DenoInspectOptions {
  depth?: number;
  currentDepth?: number;
  indentationLvl?: number;
  breakLength?: number;
  stylize?: (text: string, style: string) => string;
}

// Node's own layout: `Name { a: 1, b: 'x' }` on one line when it fits,
// else one field a line, indented by two.
function format(name: string, body: InspectBody, printer: Printer): string {
  if (printer.depth < 0) return printer.stylize(`[${name}]`, "special");
  const inner = (value: unknown): string =>
    printer.inspect(value, printer.depth - 1);
  let parts: string[];
  if (body instanceof Unkeyed) {
    const label = body.label === undefined
      ? []
      : [printer.stylize(body.label, "special")];
    parts = [[...label, ...(body.hasValue ? [inner(body.value)] : [])]
      .join(" ")];
  } else {
    parts = Object.entries(body).map(([key, value]) =>
      `${key}: ${inner(value)}`
    );
  }
  if (parts.length === 0) return `${name} {}`;
  const line = `${name} { ${parts.join(", ")} }`;
  if (!line.includes("\n") && fitsOnOneLine(name, parts, printer)) return line;
  return `${name} {\n${
    parts.map((part) => `  ${part.replaceAll("\n", "\n  ")}`).join(",\n")
  }\n}`;
}

/** Colour codes, which take no room on the screen. */
// deno-lint-ignore no-control-regex
const ANSI_CODES = /\x1b\[[0-9;]*m/g;

// Node's own rule (isBelowBreakLength): the fields, twice their count, the
// indentation, the name and brace, and 10 more, within breakLength.
function fitsOnOneLine(
  name: string,
  parts: readonly string[],
  printer: Printer,
): boolean {
  const width = parts.reduce(
    (sum, part) => sum + part.replace(ANSI_CODES, "").length,
    0,
  );
  const start = printer.indentation + `${name} {`.length + 10;
  return width + 2 * parts.length + start <= printer.breakLength;
}

// Without colours, Node's and Deno's stylize is the identity.
function plain(text: string): string {
  return text;
}

// Node and Bun indent our lines themselves; depth is what is left below us.
function nodeHook<T extends object>(
  describe: (self: T) => InspectBody,
): NodeHook<T> {
  return function (this: T, depth, options, inspect): string {
    return format(this.constructor.name, describe(this), {
      depth: depth ?? Infinity,
      inspect: (value, left) => inspect(value, { ...options, depth: left }),
      stylize: options.stylize ?? plain,
      breakLength: options.breakLength ?? 80,
      indentation: 0,
    });
  };
}

// Deno counts depth from the top and leaves the indentation of our lines to
// us: values are printed from column 0 and the whole is indented at the end.
function denoHook<T extends object>(
  describe: (self: T) => InspectBody,
): DenoHook<T> {
  return function (this: T, inspect, options): string {
    const indent = " ".repeat(options.indentationLvl ?? 0);
    const text = format(this.constructor.name, describe(this), {
      depth: (options.depth ?? 4) - (options.currentDepth ?? 0),
      inspect: (value, left) =>
        inspect(value, {
          ...options,
          depth: left,
          currentDepth: 0,
          indentationLvl: 0,
        }),
      stylize: options.stylize ?? plain,
      breakLength: options.breakLength ?? 80,
      indentation: indent.length,
    });
    return text.replaceAll("\n", `\n${indent}`);
  };
}

// Both hooks go on the prototype, not enumerable, so subclasses print their
// own name and nothing else about the object changes.
/**
 * Makes instances of `target` (and of its subclasses) print as
 * `Name { ...describe(instance) }` in `console.log`, `util.inspect` and
 * `Deno.inspect`, respecting the caller's depth and colours.
 */
export function defineInspect<T extends object>(
  // deno-lint-ignore no-explicit-any
  target: abstract new (...args: any[]) => T,
  describe: (self: T) => InspectBody,
): void {
  Object.defineProperty(target.prototype, NODE_INSPECT, {
    value: nodeHook(describe),
    configurable: true,
    writable: true,
  });
  Object.defineProperty(target.prototype, DENO_INSPECT, {
    value: denoHook(describe),
    configurable: true,
    writable: true,
  });
}
