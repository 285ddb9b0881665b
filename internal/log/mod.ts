/**
 * Structured logging for every s3csi role.
 *
 * One JSON object per line on stderr (or a file), with `time`, `level`, `msg`
 * and the fields given. Secrets never reach a log line: field names that look
 * like credentials are replaced by "[redacted]" wherever they appear (nested
 * objects included), and any value registered with `registerSecret()` is
 * masked inside every string that is written. The second guard is what makes
 * "no secret in any log" hold even when a secret ends up inside an error
 * message coming from a library.
 *
 * @module
 */

export type Level = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are always redacted, compared case-insensitively without `_`/`-`. */
const SECRET_FIELD_NAMES = new Set([
  "secrets",
  "secret",
  "secretaccesskey",
  "awssecretaccesskey",
  "sessiontoken",
  "awssessiontoken",
  "password",
  "token",
  "authorization",
  "credentials",
]);

/** Values shorter than this are not masked inside strings: too likely to collide with normal text. */
const MIN_MASKED_SECRET_LENGTH = 6;

export type Fields = Record<string, unknown>;

export interface Sink {
  write(line: string): void;
}

const stderrSink: Sink = {
  write(line: string) {
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
    } catch {
      // stderr is gone (a daemonised mount whose parent exited): logging must never crash.
    }
  },
};

const secretValues = new Set<string>();
let minLevel: Level = "info";
let sink: Sink = stderrSink;

/** Masks `value` in every future log line (credentials, tokens). */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= MIN_MASKED_SECRET_LENGTH) secretValues.add(value);
}

export function setLevel(level: Level): void {
  minLevel = level;
}

/** Redirects log output; returns the previous sink so tests can restore it. */
export function setSink(next: Sink): Sink {
  const prev = sink;
  sink = next;
  return prev;
}

/** Opens `path` for appending and sends every log line there. */
export function logToFile(path: string): void {
  const file = Deno.openSync(path, { append: true, create: true, write: true });
  const enc = new TextEncoder();
  sink = { write: (line) => file.writeSync(enc.encode(line + "\n")) };
}

function isSecretField(name: string): boolean {
  return SECRET_FIELD_NAMES.has(name.toLowerCase().replace(/[_-]/g, ""));
}

/** `s` with every registered secret replaced by "[redacted]": for output that is not a log line (the doctor's report). */
export function maskSecrets(s: string): string {
  return maskString(s);
}

function maskString(s: string): string {
  let out = s;
  for (const secret of secretValues) {
    if (out.includes(secret)) out = out.split(secret).join("[redacted]");
  }
  return out;
}

/** Returns a copy of `value` that is safe to log. Exported for the gRPC logging interceptor. */
function sanitize(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[depth]";
  if (typeof value === "string") return maskString(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (value instanceof Error) {
    const out: Fields = { name: value.name, message: maskString(value.message) };
    if (value.cause !== undefined) out.cause = sanitize(value.cause, depth + 1);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  if (value && typeof value === "object") {
    const out: Fields = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretField(k) ? "[redacted]" : sanitize(v, depth + 1);
    }
    return out;
  }
  return value;
}

export class Logger {
  readonly #fields: Fields;

  constructor(fields: Fields = {}) {
    this.#fields = fields;
  }

  /** A logger that adds `fields` to every line. */
  with(fields: Fields): Logger {
    return new Logger({ ...this.#fields, ...fields });
  }

  enabled(level: Level): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[minLevel];
  }

  debug(msg: string, fields?: Fields): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.#log("error", msg, fields);
  }

  #log(level: Level, msg: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const record = sanitize({
      time: new Date().toISOString(),
      level,
      msg,
      ...this.#fields,
      ...fields,
    });
    sink.write(JSON.stringify(record));
  }
}

/** The root logger. Roles derive their own with `log.with({ role })`. */
export const log: Logger = new Logger();
