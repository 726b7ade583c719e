/**
 * The README's compatibility table, made from the JUnit reports the test
 * command's runs write: one row per runtime, one column per feature and
 * backend, each cell the tests that passed there, and under the table what
 * each runtime refuses with a clear error (tests named with
 * `limitedTest` in `tests/_helpers.ts`).
 *
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";

/** One test run: the runtime's label and its JUnit report. */
export interface Report {
  runtime: string;
  path: string;
}

interface Outcome {
  /** Suite names and the test's own, outermost first. */
  path: string[];
  passed: boolean;
}

const columns: [title: string, suite: RegExp][] = [
  [
    "subprocess",
    /^(run, call|bad input|Popen|timeouts|text decoding|nothing left behind)/,
  ],
  ["Pool · worker", /^Pool, worker backend/],
  ["Pool · process", /^Pool(, process backend|: process workers)/],
  ["Process · worker", /^Process, worker backend/],
  ["Process · process", /^(Process, process backend|currentProcess)/],
  ["queues · one thread", /^Queue in one thread/],
  ["queues · worker", /^Queues with the worker backend/],
  ["queues · process", /^Queues with the process backend/],
  [
    "sync · one thread",
    /^(Lock and RLock|Semaphore and|Event$|Condition$|Barrier$|Value and)/,
  ],
  [
    "sync · worker",
    /^(Sync primitives with the worker backend|Shared memory with the worker)/,
  ],
  ["sync · process", /^Sync primitives with the process backend/],
  ["permissions", /^Permissions/],
  ["tour examples", /^examples/],
];

const REFUSED = / \[refused here: (.*)\]$/;

function unescapeXml(text: string): string {
  return text.replaceAll("&lt;", "<").replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"').replaceAll("&apos;", "'")
    .replaceAll("&amp;", "&");
}

/** The attribute `name` of tag text `tag`. */
function attribute(tag: string, name: string): string {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return match ? unescapeXml(match[1]!) : "";
}

/**
 * Every test case of a JUnit report, however the runner nests it: Node and
 * Bun nest suites, Deno writes "suite > step" names and lists each suite as
 * a case too (dropped here), and files are suites of their own (skipped).
 */
function outcomes(xml: string): Outcome[] {
  const found: Outcome[] = [];
  const suites: string[] = [];
  const tags = xml.matchAll(
    /<(\/?)(testsuite|testcase|failure|error)\b([^>]*?)(\/?)>/g,
  );
  let current: Outcome | undefined;
  for (const [, closing, kind, rest, selfClosing] of tags) {
    if (kind === "testsuite") {
      if (closing) suites.pop();
      else if (!selfClosing) suites.push(attribute(rest!, "name"));
    } else if (kind === "testcase" && !closing) {
      const scope = suites.filter((name) => !/\.(ts|js|mjs)$/.test(name));
      current = {
        path: [...scope, ...attribute(rest!, "name").split(" > ")],
        passed: true,
      };
      found.push(current);
      if (selfClosing) current = undefined;
    } else if (kind === "testcase") {
      current = undefined;
    } else if (current !== undefined) {
      current.passed = false;
    }
  }
  const names = new Set(found.map((outcome) => outcome.path.join(" > ")));
  return found.filter((outcome) => {
    const name = outcome.path.join(" > ");
    return ![...names].some((other) => other.startsWith(`${name} > `));
  });
}

interface Cell {
  passed: number;
  total: number;
  refused: string[];
}

function cellsOf(report: Report): Cell[] {
  const cells = columns.map((): Cell => ({ passed: 0, total: 0, refused: [] }));
  for (const outcome of outcomes(readFileSync(report.path, "utf8"))) {
    const column = columns.findIndex(([, suite]) =>
      suite.test(outcome.path[0]!)
    );
    if (column < 0) continue;
    const cell = cells[column]!;
    cell.total++;
    if (outcome.passed) cell.passed++;
    const refused = outcome.path.at(-1)!.match(REFUSED);
    if (refused && !cell.refused.includes(refused[1]!)) {
      cell.refused.push(refused[1]!);
    }
  }
  return cells;
}

/** The table and its notes, as Markdown. */
export function compatTable(reports: readonly Report[]): string {
  const header = `| runtime | ${columns.map(([title]) => title).join(" | ")} |`;
  const rule = `| --- | ${columns.map(() => "---").join(" | ")} |`;
  const rows: string[] = [];
  /** Each refusal, by column and reason, with the runtimes that refuse. */
  const notes = new Map<string, string[]>();
  for (const report of reports) {
    const cells = cellsOf(report);
    rows.push(`| ${report.runtime} | ${
      cells.map((cell, i) => {
        if (cell.total === 0) return "—";
        const mark = cell.passed === cell.total ? "✓" : "✗";
        const note = cell.refused.length > 0 ? " ¹" : "";
        for (const refused of cell.refused) {
          const key = `${columns[i]![0]}: ${refused}`;
          notes.set(key, [...notes.get(key) ?? [], report.runtime]);
        }
        return `${mark} ${cell.passed}/${cell.total}${note}`;
      }).join(" | ")
    } |`);
  }
  const refusals = notes.size === 0 ? [] : [
    "",
    "¹ Refused with a clear error, which the test asserts:",
    "",
    ...[...notes].map(([note, where]) => `- ${where.join(", ")}: ${note}`),
  ];
  return [header, rule, ...rows, ...refusals].join("\n");
}

const BEGIN = "<!-- compat table: made by scripts/test.ts -->";
const END = "<!-- end of compat table -->";

/** Replaces the table between its markers in `readme`. */
export function writeCompatTable(
  readme: string,
  reports: readonly Report[],
): void {
  const text = readFileSync(readme, "utf8");
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(
      `Cannot find the compat table markers in "${readme}": put ${BEGIN} and ${END} where it goes`,
    );
  }
  writeFileSync(
    readme,
    `${text.slice(0, start + BEGIN.length)}\n\n${compatTable(reports)}\n\n${
      text.slice(end)
    }`,
  );
}
