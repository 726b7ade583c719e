// Least permissions per API, errors that name the missing flag, and
// sandboxed workers (Deno's --allow-* flags on the process backend).
import { describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Manager, Pool, Process, Queue } from "../mod.ts";
import { fixtureUrl, limitedTest, runScriptWith, runtime } from "./_helpers.ts";

/** The package's own files (the sources, or the npm build's esm/). */
const root = fileURLToPath(new URL("../", import.meta.url));

/** What the probe printed: its result or its error. */
async function probe(
  name: string,
  flags: readonly string[],
): Promise<{ ok?: unknown; error?: string; message?: string }> {
  const result = await runScriptWith(
    "./fixtures/permission_probe",
    flags,
    name,
  );
  const last = result.stdout!.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(
      `The probe "${name}" printed no result (exit ${result.returncode}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/** Each case: the probe, the least flags it runs with, and the flag it names when one is taken away. */
type Case = [
  name: string,
  flags: string[],
  ok: unknown,
  missing: [string[], RegExp][],
];

function denoCases(): Case[] {
  const spawn = ["--allow-run", "--allow-env"];
  return [
    ["queue", [], 1, []],
    ["pool-worker", [`--allow-read=${root}`], [1, 4, 9], [[
      [],
      /--allow-read/,
    ]]],
    ["pool-process", spawn, [1, 4, 9], [
      [["--allow-env"], /--allow-run/],
      [["--allow-run"], /--allow-env/],
    ]],
    ["process", spawn, 0, [[["--allow-env"], /--allow-run/]]],
    ["subprocess", ["--allow-run=echo"], "hi\n", [[[], /--allow-run/]]],
  ];
}

function nodeCases(): Case[] {
  const base = [
    Number(process.versions.node.split(".")[0]) >= 22
      ? "--permission"
      : "--experimental-permission",
    `--allow-fs-read=${root}*`,
  ];
  const child = [...base, "--allow-child-process"];
  return [
    ["queue", base, 1, []],
    ["pool-worker", [...base, "--allow-worker"], [1, 4, 9], [[
      base,
      /--allow-worker/,
    ]]],
    ["pool-process", child, [1, 4, 9], [[base, /--allow-child-process/]]],
    ["process", child, 0, [[base, /--allow-child-process/]]],
    ["subprocess", child, "hi\n", [[base, /--allow-child-process/]]],
  ];
}

// Bun has no permission model: nothing to take away.
const cases = runtime === "deno"
  ? denoCases()
  : runtime === "node"
  ? nodeCases()
  : [];

describe(`Permissions (${runtime})`, () => {
  for (const [name, flags, expected, missing] of cases) {
    test(`${name} runs with ${flags.join(" ") || "no permissions"}; a missing one is named`, async () => {
      deepEqual(await probe(name, flags), { ok: expected });
      for (const [fewer, named] of missing) {
        const refused = await probe(name, fewer);
        ok(refused.error, `${name} with ${fewer.join(" ")} should fail`);
        match(refused.message!, named);
      }
    });
  }

  if (runtime === "deno") {
    test("workers cannot be given more than this process has", async () => {
      const refused = await probe("escalate", ["--allow-run", "--allow-env"]);
      equal(refused.error, "RangeError");
      match(
        refused.message!,
        /Cannot give workers all of "net" access.*--allow-net/,
      );
      const path = await probe("escalate-path", [
        "--allow-run",
        "--allow-env",
        `--allow-read=${root}`,
      ]);
      equal(path.error, "RangeError");
      match(path.message!, /"read" access to "\/etc".*--allow-read=\/etc/);
    });

    test("a sandboxed task reads only what it was given, and no network or environment", async () => {
      const allowed = join(tmpdir(), `multiproc-sandbox-${process.pid}.txt`);
      writeFileSync(allowed, "granted");
      await using pool = new Pool<typeof import("./fixtures/sandbox_tasks.ts")>(
        fixtureUrl("sandbox_tasks"),
        { processes: 1, backend: "process", permissions: { read: [allowed] } },
      );
      equal(await pool.apply("readText", [allowed]), "granted");
      equal(await pool.apply("double", [21]), 42);
      await rejects(pool.apply("readText", [fileURLToPath(import.meta.url)]), {
        name: "NotCapable",
        message: /Requires read access.*--allow-read/,
      });
      await rejects(pool.apply("fetchStatus", ["http://127.0.0.1:8999/"]), {
        name: "NotCapable",
        message: /Requires net access.*--allow-net/,
      });
      await rejects(pool.apply("envValue", ["HOME"]), {
        name: "NotCapable",
        message: /Requires env access.*--allow-env/,
      });
    });

    test("a sandboxed task cannot run an update function in the manager's process", async () => {
      await using manager = new Manager();
      const d = manager.dict<string, string>({ k: "a" });
      await using pool = new Pool<typeof import("./fixtures/sandbox_tasks.ts")>(
        fixtureUrl("sandbox_tasks"),
        { processes: 1, backend: "process", permissions: "none" },
      );
      const [name, message] = await pool.apply("updateOutside", [d]);
      equal(name, "TypeError");
      match(
        message,
        /^Cannot run an update function sent from a worker started with a permissions option: it would run in the manager's process.*get\(\).*set\(\) while holding a Lock/,
      );
      // Nothing ran: the value is as it was; reads and writes still work.
      equal(await d.get("k"), "a!");
    });

    test('a Process with permissions "none" cannot read files; its exit code says so', async () => {
      const child = new Process({
        module: fixtureUrl("sandbox_tasks"),
        target: "readText",
        args: [fileURLToPath(import.meta.url)],
        permissions: "none",
      });
      child.start();
      await child.join();
      equal(child.exitCode, 1);
      const allowed = new Process({
        module: fixtureUrl("sandbox_tasks"),
        target: "double",
        args: [1],
        permissions: "none",
      });
      allowed.start();
      await allowed.join();
      equal(allowed.exitCode, 0);
    });

    test("a sandboxed consumer gets large items from other processes through its parent", async () => {
      const q = new Queue<Uint8Array>();
      // Put by a child: each goes through a file.
      await using producers = new Pool({ processes: 1, backend: "process" });
      await producers.apply(async (q: Queue<Uint8Array>) => {
        for (let i = 1; i <= 3; i++) {
          await q.put(new Uint8Array(100_000).fill(i));
        }
      }, [q]);
      await using sandboxed = new Pool({
        processes: 1,
        backend: "process",
        permissions: "none",
      });
      deepEqual(
        await sandboxed.apply(async (q: Queue<Uint8Array>) => {
          const got: number[][] = [];
          for (let i = 0; i < 3; i++) {
            const item = await q.get();
            got.push([item.length, item[0], item[99_999]]);
          }
          return got;
        }, [q]),
        [[100_000, 1, 1], [100_000, 2, 2], [100_000, 3, 3]],
      );
    });

    test("bad permissions: clear errors", () => {
      throws(() => new Pool({ permissions: "none" }), {
        name: "TypeError",
        message: /Cannot sandbox worker threads.*use backend: "process"/,
      });
      throws(
        () =>
          new Pool({
            backend: "process",
            permissions: { disk: true } as never,
          }),
        { name: "TypeError", message: /Expected permissions.disk to be/ },
      );
      throws(
        () => new Pool({ backend: "process", permissions: "all" as never }),
        {
          name: "TypeError",
          message: /Expected permissions to be "inherit", "none" or an object/,
        },
      );
    });
  } else {
    test(
      limitedTest(
        "sandboxing: a clear error, and inherit is accepted",
        "sandboxed workers",
        "needs Deno's --allow-* flags",
      ),
      async () => {
        throws(
          () => new Pool({ backend: "process", permissions: "none" }),
          {
            name: "TypeError",
            message:
              /Cannot sandbox workers in this runtime: permissions needs Deno/,
          },
        );
        throws(
          () => new Process({ target: () => {}, permissions: { read: true } }),
          { name: "TypeError", message: /permissions needs Deno/ },
        );
        await using pool = new Pool({ processes: 1, permissions: "inherit" });
        equal(await pool.apply(() => 2), 2);
      },
    );
  }
});
