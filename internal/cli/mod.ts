/**
 * Command-line plumbing shared by every subcommand: flag parsing on
 * `node:util` `parseArgs` with one error type for bad usage (exit code 2),
 * and environment-variable fallbacks. Each `cmd/<role>/mod.ts` declares its
 * flags as data and turns the parsed values into a typed config.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Bad usage: unknown flag, missing argument, malformed value. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** One line for the usage text. */
  help: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: FlagValues;
  positionals: string[];
}

/** Parses `args` against `specs`; throws UsageError naming the bad flag. */
export function parseFlags(args: string[], specs: FlagSpecs, allowPositionals = false): Parsed {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type };
    if (spec.short) options[name].short = spec.short;
    if (spec.multiple) options[name].multiple = true;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const values = { ...parsed.values } as FlagValues;
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] !== undefined) continue;
    const fromEnv = spec.env ? Deno.env.get(spec.env) : undefined;
    if (fromEnv !== undefined && fromEnv !== "") {
      values[name] = spec.type === "boolean" ? parseBool(name, fromEnv) : fromEnv;
    } else if (spec.default !== undefined) {
      values[name] = spec.default;
    }
  }
  return { values, positionals: parsed.positionals };
}

function parseBool(name: string, raw: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new UsageError(`Cannot parse "${name}": "${raw}" is not a boolean`);
}

/** Usage text for a subcommand. */
export function usage(synopsis: string, specs: FlagSpecs): string {
  const lines = [`Usage: ${synopsis}`, "", "Options:"];
  for (const [name, spec] of Object.entries(specs)) {
    const flag = `--${name}${spec.type === "string" ? " <value>" : ""}`;
    const extra = [
      spec.default !== undefined ? `default: ${spec.default}` : "",
      spec.env ? `env: ${spec.env}` : "",
    ].filter(Boolean).join(", ");
    lines.push(`  ${flag.padEnd(32)} ${spec.help}${extra ? ` (${extra})` : ""}`);
  }
  return lines.join("\n");
}

/** Reads a string flag; undefined when unset. */
export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function bool(values: FlagValues, name: string): boolean {
  return values[name] === true;
}

/** Parses an integer flag in [min, max]; UsageError naming the flag otherwise. */
export function int(
  values: FlagValues,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new UsageError(`Invalid value for --${name}: "${raw}" is not an integer`);
  }
  const n = Number(raw);
  if (range.min !== undefined && n < range.min) {
    throw new UsageError(`Invalid value for --${name}: ${n} is below the minimum ${range.min}`);
  }
  if (range.max !== undefined && n > range.max) {
    throw new UsageError(`Invalid value for --${name}: ${n} is above the maximum ${range.max}`);
  }
  return n;
}

/**
 * Resolves when SIGINT or SIGTERM arrives; the returned AbortSignal fires at
 * the same moment. Roles use it for graceful shutdown.
 */
export function shutdownSignal(): { signal: AbortSignal; done: Promise<string> } {
  const ctl = new AbortController();
  const done = new Promise<string>((resolve) => {
    const handler = (name: string) => () => {
      if (!ctl.signal.aborted) {
        ctl.abort(name);
        resolve(name);
      }
    };
    Deno.addSignalListener("SIGINT", handler("SIGINT"));
    Deno.addSignalListener("SIGTERM", handler("SIGTERM"));
  });
  return { signal: ctl.signal, done };
}

/**
 * The argv prefix that runs this very program again: the binary itself when
 * compiled with `deno compile`, or `deno run -A <main.ts>` in development.
 */
export function selfCommand(): string[] {
  const exe = Deno.execPath();
  const isDenoCli = /(^|\/)deno$/.test(exe);
  if (isDenoCli && Deno.mainModule.startsWith("file:")) {
    return [exe, "run", "-A", new URL(Deno.mainModule).pathname];
  }
  return [exe];
}

/** Flags every CSI role shares: its socket, how to reach S3, and logging. */
export const CSI_ROLE_FLAGS: FlagSpecs = {
  endpoint: {
    type: "string",
    default: "unix:///csi/csi.sock",
    env: "CSI_ENDPOINT",
    help: "CSI socket to listen on",
  },
  "s3-endpoint-url": {
    type: "string",
    env: "AWS_ENDPOINT_URL",
    help: "S3 endpoint URL (AWS endpoints when unset)",
  },
  region: { type: "string", default: "us-east-1", env: "AWS_REGION", help: "Default S3 region" },
  "virtual-hosted-style": {
    type: "boolean",
    help: "Use virtual-hosted-style addressing instead of path-style",
  },
  "ca-bundle": { type: "string", env: "AWS_CA_BUNDLE", help: "PEM file of extra trusted CAs" },
  "log-level": {
    type: "string",
    default: "info",
    env: "S3CSI_LOG_LEVEL",
    help: "debug, info, warn or error",
  },
  help: { type: "boolean", short: "h", help: "Show this help" },
};

/** Validates --log-level and returns it. */
export function logLevel(values: FlagValues): "debug" | "info" | "warn" | "error" {
  const level = str(values, "log-level") ?? "info";
  if (level !== "debug" && level !== "info" && level !== "warn" && level !== "error") {
    throw new UsageError(`Invalid value for --log-level: "${level}"`);
  }
  return level;
}
