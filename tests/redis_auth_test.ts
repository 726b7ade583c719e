// redis.ts against servers that need credentials: a password given in the
// URL (Pool with a worker host, Queue, serve()), and TLS (rediss://) with a
// throwaway CA passed as the tls option (and --tls-ca to hosts), with and
// without client certificates (mutual TLS). A wrong password or an
// untrusted certificate fails the first call with a message that names the
// server, never the password, and says what to do.
import { after, before, describe, test } from "node:test";
import {
  deepEqual,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Pool, Queue, serve } from "../redis.ts";
import { main } from "../worker.ts";
import { type RedisServer, startRedis } from "./_redis_server.ts";
import {
  HostProcess,
  startHost,
  tasksModule,
  workerCommand,
} from "./_redis_hosts.ts";
import type * as Tasks from "./fixtures/tasks.ts";

type TaskModule = typeof Tasks;

let names = 0;
// Each test has its own pool and queue names.
function uniqueName(): string {
  return `auth-${process.pid}-${++names}`;
}

// Characters that must be escaped in a URL, to show they reach the server.
const PASSWORD = "s3cret:p@ss/w%rd";

describe("redis: a server that requires a password", () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis({ requirepass: PASSWORD });
  });
  after(async () => {
    await server.stop();
  });

  test("Pool with a worker host, Queue and serve() work with the password in the URL", async () => {
    ok(server.url.includes(`:${encodeURIComponent(PASSWORD)}@`), server.url);
    const name = uniqueName();
    await using host = await startHost(server.url, name, { processes: 1 });
    {
      await using pool = new Pool<TaskModule>({ redis: server.url, name });
      deepEqual(await pool.map("square", [1, 2, 3], { chunksize: 1 }), [
        1,
        4,
        9,
      ]);
      equal((await pool.stats()).hosts.length, 1);
    }
    // The host's log names the server, not the password.
    const serving = await host.waitFor(/serving/);
    ok(serving.includes(`127.0.0.1:${server.port}`), serving);
    ok(!serving.includes("s3cret"), serving);

    await using producer = new Queue<string>({ redis: server.url, name });
    await using consumer = new Queue<string>({ redis: server.url, name });
    await producer.put("with a password");
    equal(await consumer.get({ timeout: 30_000 }), "with a password");

    const served = uniqueName();
    await using _host = await serve(tasksModule(), {
      redis: server.url,
      name: served,
      processes: 1,
    });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name: served,
    });
    equal(await pool.apply("add", [20, 22]), 42);
  });

  test("a missing or wrong password fails the first call, naming the server without the password", async () => {
    const name = uniqueName();
    for (
      const url of [
        `redis://127.0.0.1:${server.port}`,
        `redis://:not-the-password@127.0.0.1:${server.port}`,
      ]
    ) {
      // Sentence case, the URL quoted, Redis's reason without its period,
      // then what to do.
      const clear = (error: Error): boolean => {
        ok(!error.message.includes("not-the-password"), error.message);
        match(
          error.message,
          new RegExp(
            `^Cannot connect to Redis at "redis://(:\\*\\*\\*@)?127\\.0\\.0\\.1:${server.port}" \\((NOAUTH|WRONGPASS) [^)]*[^.]\\): give the right password in the URL, e\\.g\\. redis://:password@host:6379`,
          ),
        );
        ok(!/\.\)|\.:|::|\.$/.test(error.message), error.message);
        return true;
      };
      {
        await using pool = new Pool({ redis: url, name });
        await rejects(pool.apply("square", [1]), clear);
      }
      await using queue = new Queue({ redis: url, name });
      await rejects(queue.put(1), clear);
      await rejects(serve(tasksModule(), { redis: url, name }), clear);
    }
  });
});

describe("redis: TLS (rediss://) with the tls option", () => {
  // One server's CA is the other's wrong CA.
  let server: RedisServer;
  let mutual: RedisServer;
  let ca: Uint8Array;
  let otherCa: string;
  before(async () => {
    server = await startRedis({ tls: true });
    mutual = await startRedis({ tls: "mutual" });
    ca = readFileSync(server.ca!);
    otherCa = readFileSync(mutual.ca!, "utf8");
  });
  after(async () => {
    await server?.stop();
    await mutual?.stop();
  });

  test("Pool with a worker host (--tls-ca), Queue and serve() over rediss:// with the CA passed as an option, or rejectUnauthorized: false", async () => {
    ok(server.url.startsWith("rediss://"), server.url);
    // The process does not trust the CA (the next test shows it fails).
    ok(process.env.NODE_EXTRA_CA_CERTS !== server.ca);
    const name = uniqueName();
    await using _host = await startHost(server.url, name, {
      processes: 1,
      args: ["--tls-ca", server.ca!],
    });
    const tls = { ca };
    {
      await using pool = new Pool<TaskModule>({ redis: server.url, name, tls });
      deepEqual(await pool.map("square", [1, 2, 3, 4], { chunksize: 1 }), [
        1,
        4,
        9,
        16,
      ]);
      equal((await pool.stats()).hosts.length, 1);
    }
    await using producer = new Queue<string>({ redis: server.url, name, tls });
    await using consumer = new Queue<string>({ redis: server.url, name, tls });
    await producer.put("over TLS");
    equal(await consumer.get({ timeout: 30_000 }), "over TLS");
    // Without the CA, only by not checking the certificate.
    await using unchecked = new Queue<string>({
      redis: server.url,
      name,
      tls: { rejectUnauthorized: false },
    });
    await unchecked.put("unchecked");
    equal(await consumer.get({ timeout: 30_000 }), "unchecked");

    const served = uniqueName();
    await using _served = await serve(tasksModule(), {
      redis: server.url,
      name: served,
      processes: 1,
      tls: { ca: new TextDecoder().decode(ca), servername: "localhost" },
    });
    await using pool = new Pool<TaskModule>({
      redis: server.url,
      name: served,
      tls,
    });
    equal(await pool.apply("add", [20, 22]), 42);
  });

  test("mutual TLS: a client certificate and key (options and --tls-cert/--tls-key) get in, none is refused clearly", async () => {
    const client = mutual.clientCert!;
    const tls = {
      ca: readFileSync(mutual.ca!),
      cert: readFileSync(client.cert),
      key: readFileSync(client.key),
    };
    const name = uniqueName();
    await using _host = await startHost(mutual.url, name, {
      processes: 1,
      args: [
        "--tls-ca",
        mutual.ca!,
        "--tls-cert",
        client.cert,
        "--tls-key",
        client.key,
      ],
    });
    {
      await using pool = new Pool<TaskModule>({ redis: mutual.url, name, tls });
      deepEqual(await pool.map("square", [5, 6], { chunksize: 1 }), [25, 36]);
    }
    await using producer = new Queue<number>({ redis: mutual.url, name, tls });
    await using consumer = new Queue<number>({ redis: mutual.url, name, tls });
    await producer.put(7);
    equal(await consumer.get({ timeout: 30_000 }), 7);

    const refused = (error: Error): boolean => {
      ok(
        error.message.startsWith(
          `Cannot connect to Redis at "rediss://127.0.0.1:${mutual.port}" (`,
        ),
        error.message,
      );
      ok(!/[.:]\)|\.\.|\.$/.test(error.message), error.message);
      return true;
    };
    const withoutCert = { ca: tls.ca };
    {
      await using pool = new Pool({
        redis: mutual.url,
        name,
        tls: withoutCert,
      });
      await rejects(pool.apply("square", [1]), refused);
    }
    await using queue = new Queue({
      redis: mutual.url,
      name,
      tls: withoutCert,
    });
    await rejects(queue.put(1), refused);
  });

  test("a CA that did not sign the server's certificate, or none, fails the first call naming the server and the tls option's ca", async () => {
    const name = uniqueName();
    const untrusted = (error: Error): boolean => {
      ok(
        error.message.startsWith(
          `Cannot connect to Redis at "rediss://127.0.0.1:${server.port}" (`,
        ) && /certificate/i.test(error.message) &&
          error.message.includes(
            "pass the CA that signed the server's certificate as the tls option's ca (--tls-ca FILE",
          ),
        error.message,
      );
      return true;
    };
    for (const tls of [undefined, { ca: otherCa }]) {
      {
        await using pool = new Pool({ redis: server.url, name, tls });
        await rejects(pool.apply("square", [1]), untrusted);
      }
      await using queue = new Queue({ redis: server.url, name, tls });
      await rejects(queue.put(1), untrusted);
      await rejects(
        serve(tasksModule(), { redis: server.url, name, processes: 1, tls }),
        untrusted,
      );
    }
    // A host started with the wrong CA says why and exits 1.
    const host = new HostProcess(workerCommand(
      "--redis",
      server.url,
      "--tls-ca",
      mutual.ca!,
      "--name",
      name,
      "--processes",
      "1",
      tasksModule(),
    ));
    equal(await host.exited, 1);
    ok(
      host.lines.some((line) =>
        /Cannot connect to Redis at "rediss:/.test(line)
      ),
      host.lines.join("\n"),
    );
  });

  test("tls with a redis:// URL, a path for PEM text, or a certificate without its key is refused at once", async () => {
    const name = uniqueName();
    throws(
      () => new Pool({ redis: "redis://127.0.0.1:6379", name, tls: { ca } }),
      {
        name: "TypeError",
        message:
          'Expected a rediss:// URL with the tls option, got "redis://127.0.0.1:6379": write rediss:// to connect over TLS, or leave the tls option out',
      },
    );
    throws(
      () => new Queue({ redis: server.url, name, tls: { ca: server.ca! } }),
      {
        name: "TypeError",
        message:
          `Expected tls.ca to hold a PEM certificate (-----BEGIN CERTIFICATE-----), got ${
            JSON.stringify(server.ca)
          }: it looks like a path: pass the file's contents, e.g. await readFile(${
            JSON.stringify(server.ca)
          })`,
      },
    );
    throws(
      () =>
        new Pool({
          redis: mutual.url,
          name,
          tls: { cert: readFileSync(mutual.clientCert!.cert) },
        }),
      /Expected tls.cert and tls.key together, got only tls.cert/,
    );
    throws(
      () => new Pool({ redis: mutual.url, name, tls: { key: ca } }),
      /Expected tls.key to hold a PEM private key \(-----BEGIN PRIVATE KEY-----\), got \d+ bytes without one/,
    );
    await rejects(
      serve(tasksModule(), {
        redis: server.url,
        name,
        tls: { cafile: server.ca } as never,
      }),
      /Unknown tls option "cafile"/,
    );
  });

  test("multiproc-worker: --tls-* flags are listed, and a bad file or URL exits 2 naming the flag", async () => {
    const printed: string[] = [];
    equal(await main(["--help"], { print: (text) => printed.push(text) }), 0);
    for (const flag of ["--tls-ca FILE", "--tls-cert FILE", "--tls-key FILE"]) {
      ok(printed[0]!.includes(flag), printed[0]);
    }
    const dir = mkdtempSync(join(tmpdir(), "multiproc-tls-flags-"));
    try {
      const notPem = join(dir, "ca.der");
      writeFileSync(notPem, new Uint8Array([0x30, 0x82, 0x01, 0x0a]));
      const missing = join(dir, "missing.pem");
      const cases: [string[], string][] = [
        [
          ["--tls-ca", missing],
          `multiproc-worker: Cannot read --tls-ca ${JSON.stringify(missing)} (`,
        ],
        [
          ["--tls-ca", notPem],
          `multiproc-worker: Expected --tls-ca ${
            JSON.stringify(notPem)
          } to hold a PEM certificate (-----BEGIN CERTIFICATE-----), got 4 bytes without one: give PEM text; convert DER with e.g. openssl x509 -inform der`,
        ],
        [
          ["--tls-cert", mutual.clientCert!.cert],
          "multiproc-worker: Expected --tls-cert and --tls-key together, got only --tls-cert",
        ],
        [
          ["--tls-key", mutual.ca!, "--tls-cert", mutual.clientCert!.cert],
          `multiproc-worker: Expected --tls-key ${
            JSON.stringify(mutual.ca)
          } to hold a PEM private key`,
        ],
        [
          ["--tls-ca", mutual.ca!, "--redis", "redis://127.0.0.1:6379"],
          'multiproc-worker: Expected a rediss:// URL with --tls-ca, got "redis://127.0.0.1:6379"',
        ],
      ];
      for (const [flags, start] of cases) {
        const logged: string[] = [];
        const args = [
          "--redis",
          mutual.url,
          ...flags,
          "--name",
          "x",
          tasksModule(),
        ];
        equal(await main(args, { log: (line) => logged.push(line) }), 2);
        equal(logged.length, 1);
        ok(logged[0]!.startsWith(start), `${logged[0]}\n${start}`);
        ok(logged[0]!.endsWith(" (see --help)"), logged[0]);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
