// The TLS settings of a Redis connection, checked where they are given (the
// `tls` option, or the files of multiproc-worker's --tls-* flags) so that a
// path passed for PEM text, a missing key or a typo fails at once, naming
// the option, rather than as a handshake error on the first call.
import { Buffer } from "node:buffer";

/** TLS settings as node:tls takes them: PEM text, checked. */
export interface TlsSettings {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
}

/** What a PEM value must hold: the label of its first block. */
export type PemKind = "certificate" | "private key";

const BLOCK: Record<PemKind, RegExp> = {
  certificate: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/,
  "private key":
    /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----[\s\S]+?-----END ([A-Z]+ )?PRIVATE KEY-----/,
};

const KEYS = ["ca", "cert", "key", "rejectUnauthorized", "servername"];

// A value is shown by its start: a PEM text or a binary file is long.
function shown(text: string): string {
  const line = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return JSON.stringify(line);
}

// PEM is ASCII: bytes (a Buffer read from a file) are decoded as text.
/**
 * The PEM text of `value` (a string or bytes), which must hold a `kind`
 * block.
 *
 * @param option Names the value in the error, e.g. `tls.ca`.
 * @throws {TypeError} when it is not text or bytes, or holds no such block.
 */
export function pemText(value: unknown, option: string, kind: PemKind): string {
  if (typeof value !== "string" && !(value instanceof Uint8Array)) {
    throw new TypeError(
      `Expected ${option} to be PEM text (a string or Uint8Array), got ${
        value === null ? "null" : typeof value
      }: pass the file's contents, e.g. await readFile(path)`,
    );
  }
  const text = typeof value === "string"
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      .toString("latin1");
  if (BLOCK[kind].test(text)) return text;
  const expected =
    `Expected ${option} to hold a PEM ${kind} (-----BEGIN ${kind.toUpperCase()}-----)`;
  if (typeof value === "string" && /^[^\n]{1,4096}$/.test(value)) {
    throw new TypeError(
      `${expected}, got ${
        shown(value)
      }: it looks like a path: pass the file's contents, e.g. await readFile(${
        JSON.stringify(value)
      })`,
    );
  }
  const convert = kind === "certificate"
    ? "openssl x509 -inform der -in cert.der -out cert.pem"
    : "openssl pkey -inform der -in key.der -out key.pem";
  throw new TypeError(
    `${expected}, got ${
      typeof value === "string"
        ? shown(value)
        : `${value.byteLength} bytes without one`
    }: give PEM text; convert DER with e.g. ${convert}`,
  );
}

/**
 * Checks the `tls` option: known keys, PEM text, a certificate and its key
 * together.
 *
 * @returns The settings, or `undefined` when `tls` is `undefined`.
 * @throws {TypeError} naming the bad field and what to pass instead.
 */
export function checkTls(tls: unknown): TlsSettings | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    throw new TypeError(
      `Expected tls to be an object, got ${
        JSON.stringify(tls) ?? String(tls)
      }: pass e.g. { ca: await readFile("ca.pem") }, or leave it out`,
    );
  }
  const given = tls as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KEYS.includes(key)) {
      throw new TypeError(
        `Unknown tls option "${key}": expected ${
          KEYS.join(", ")
        } (PEM text for ca, cert and key, not paths)`,
      );
    }
  }
  const settings: TlsSettings = {};
  if (given.ca !== undefined) {
    settings.ca = pemText(given.ca, "tls.ca", "certificate");
  }
  if (given.cert !== undefined) {
    settings.cert = pemText(given.cert, "tls.cert", "certificate");
  }
  if (given.key !== undefined) {
    settings.key = pemText(given.key, "tls.key", "private key");
  }
  if ((settings.cert === undefined) !== (settings.key === undefined)) {
    throw new TypeError(
      `Expected tls.cert and tls.key together, got only tls.${
        settings.cert === undefined ? "key" : "cert"
      }: a client certificate needs its private key`,
    );
  }
  const { rejectUnauthorized, servername } = given;
  if (rejectUnauthorized !== undefined) {
    if (typeof rejectUnauthorized !== "boolean") {
      throw new TypeError(
        `Expected tls.rejectUnauthorized to be a boolean, got ${
          JSON.stringify(rejectUnauthorized) ?? String(rejectUnauthorized)
        }`,
      );
    }
    settings.rejectUnauthorized = rejectUnauthorized;
  }
  if (servername !== undefined) {
    if (typeof servername !== "string" || servername === "") {
      throw new TypeError(
        `Expected tls.servername to be a host name, got ${
          JSON.stringify(servername) ?? String(servername)
        }: pass the name on the server's certificate, e.g. "redis.example.com"`,
      );
    }
    settings.servername = servername;
  }
  return settings;
}

// node-redis refuses TLS settings with a redis:// URL too; this says why
// and names the server without its credentials.
/**
 * Checks that `url` is `rediss://` when TLS settings (named by `option`)
 * are given.
 *
 * @throws {TypeError} for another scheme.
 */
export function checkTlsUrl(url: string, option: string): void {
  if (url.startsWith("rediss://")) return;
  let server = url;
  try {
    const parsed = new URL(url);
    server = `${parsed.protocol}//${parsed.host}`;
  } catch {
    // Shown as given: it has no credentials to hide if it does not parse.
  }
  throw new TypeError(
    `Expected a rediss:// URL with ${option}, got "${server}": write rediss:// to connect over TLS, or leave ${option} out`,
  );
}
