/**
 * Flag parsing shared by every subcommand, on
 * `node:util` `parseArgs` with one error type for bad usage (main.ts exits 2 for it),
 * other names of a flag as aliases, environment-variable fallbacks, and values
 * checked by their kind (`values.ts`) so a bad value is refused naming its
 * flag. Each `cmd/<role>/mod.ts` declares its flags as data and turns the
 * parsed values into a typed config.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Kind, ValueError } from "./values.ts";

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
  /** Other names accepted for the same flag (the CSI roles' spellings, mount-s3's). */
  aliases?: readonly string[];
  /** Parses the value of a string flag; the raw text is kept when absent. */
  kind?: Kind<unknown>;
  default?: string;
  /** One line for the usage text. */
  help: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;
/** Parsed flags by canonical name: booleans, raw strings, or what the flag's kind parsed. */
export type FlagValues = Record<string, unknown>;

interface Parsed {
  values: FlagValues;
  positionals: string[];
}

/** Parses `args` against `specs`; throws UsageError naming the bad flag. */
export function parseFlags(args: string[], specs: FlagSpecs, allowPositionals = false): Parsed {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
    for (const alias of spec.aliases ?? []) options[alias] = { type: spec.type };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const given = parsed.values as Record<string, string | boolean | undefined>;
  const values: FlagValues = {};
  for (const [name, spec] of Object.entries(specs)) {
    const names = [name, ...(spec.aliases ?? [])].filter((n) => given[n] !== undefined);
    if (names.length > 1) {
      throw new UsageError(`--${names[0]} and --${names[1]} are the same flag: give it once`);
    }
    let raw = names.length === 1 ? given[names[0]] : undefined;
    const fromEnv = spec.env ? Deno.env.get(spec.env) : undefined;
    if (raw === undefined && fromEnv !== undefined && fromEnv !== "") {
      raw = spec.type === "boolean" ? parseBool(spec.env!, fromEnv) : fromEnv;
    }
    raw ??= spec.default;
    if (raw === undefined) continue;
    values[name] = typeof raw === "string" && spec.kind ? parseValue(name, spec.kind, raw) : raw;
  }
  return { values, positionals: parsed.positionals };
}

function parseValue(name: string, kind: Kind<unknown>, raw: string): unknown {
  try {
    return kind.parse(raw);
  } catch (err) {
    if (err instanceof ValueError) {
      throw new UsageError(`Invalid value for --${name}: ${err.message}`);
    }
    throw err;
  }
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
    const flag = `${spec.short ? `-${spec.short}, ` : ""}--${name}${
      spec.type === "string" ? " <value>" : ""
    }`;
    const extra = [
      spec.default !== undefined ? `default: ${spec.default}` : "",
      spec.env ? `env: ${spec.env}` : "",
      spec.aliases?.length ? `also ${spec.aliases.map((a) => `--${a}`).join(", ")}` : "",
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

/** Reads a flag whose kind parses numbers; undefined when unset. */
export function num(values: FlagValues, name: string): number | undefined {
  const v = values[name];
  return typeof v === "number" ? v : undefined;
}

/** Resolves with the signal's name when SIGINT or SIGTERM arrives: roles then shut down. */
export function shutdownSignal(): Promise<string> {
  return new Promise<string>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve("SIGINT"));
    Deno.addSignalListener("SIGTERM", () => resolve("SIGTERM"));
  });
}

/**
 * The argv prefix that runs this very program again: the binary itself when
 * compiled with `deno compile`; the image's `s3csi` script itself when run
 * through it (a main module without an extension: its shebang carries the
 * config and `--cached-only`, which a bare `deno run` of it would lose, and
 * with them the import map); or `deno run -A <main.ts>` in development.
 */
export function selfCommand(
  exe = Deno.execPath(),
  mainModule = Deno.mainModule,
): string[] {
  const isDenoCli = /(^|\/)deno$/.test(exe);
  if (isDenoCli && mainModule.startsWith("file:")) {
    const main = new URL(mainModule).pathname;
    if (!/\.[cm]?[jt]sx?$/.test(main)) return [main];
    return [exe, "run", "-A", main];
  }
  return [exe];
}
