/**
 * The options of `s3csi mount`, in one table: adding an option is one row.
 *
 * A row is the option's flag name (also its name in a volume's
 * `mountOptions`), its kind (the parser of its value, see
 * `internal/cli/values.ts`; booleans have none), its help line, default and
 * environment variable, and `volume`: `true` when a PersistentVolume or
 * StorageClass may set it, otherwise the reason the node refuses it with.
 * The table feeds, with nothing written twice:
 * - the command line of `s3csi mount` and its `--help` (`cmd/mount`);
 * - the node's policy for volumes' `mountOptions` and the arguments it passes
 *   to the mount process (`internal/mounter/mount_options.ts`).
 *
 * Parsed options are objects whose fields are the rows' names in camelCase
 * (`allow-delete` → `allowDelete`): booleans always present, values only
 * when given. The S3 connection and logging rows are the ones every role
 * shares (`internal/cli/role_flags.ts`); only their defaults and `volume`
 * are the mount's own.
 *
 * @module
 */
import {
  COMMON_FLAGS,
  type FlagSpec,
  type Kind,
  LISTEN_ADDRESS,
  oneOf,
  S3_FLAGS,
  TEXT,
  uint,
  ValueError,
} from "../cli/mod.ts";
import { type MetadataTtl, MIB } from "../fs/mod.ts";

const OCTAL_MODE: Kind<number> = {
  parse(raw) {
    if (!/^0?[0-7]{1,4}$/.test(raw)) {
      throw new ValueError(`"${raw}" is not an octal permission like 0644`);
    }
    return parseInt(raw, 8);
  },
  format: (v) => v.toString(8).padStart(4, "0"),
};

const METADATA_TTL: Kind<MetadataTtl> = {
  parse(raw) {
    if (raw === "minimal" || raw === "0") return { kind: "minimal" };
    if (raw === "indefinite") return { kind: "indefinite" };
    if (/^\d+$/.test(raw)) return { kind: "seconds", s: Number(raw) };
    throw new ValueError(`"${raw}" is not a number of seconds, "minimal" or "indefinite"`);
  },
  format: (v) => v.kind === "seconds" ? String(v.s) : v.kind,
};

/** "" (the whole bucket) or relative key parts, each followed by "/". */
const KEY_PREFIX: Kind<string> = {
  parse(raw) {
    if (raw === "") return raw;
    if (!raw.endsWith("/")) throw new ValueError(`"${raw}" must end with "/"`);
    if (
      raw.startsWith("/") ||
      raw.split("/").slice(0, -1).some((s) => s === "" || s === "." || s === "..")
    ) {
      throw new ValueError(
        `"${raw}" must be a relative key prefix without empty, "." or ".." parts`,
      );
    }
    return raw;
  },
  format: (v) => v,
};

const SSE = oneOf(["AES256", "aws:kms", "aws:kms:dsse"]);

interface MountOption extends FlagSpec {
  /**
   * `true` when a volume's mountOptions may set it; a string: why the node
   * refuses it; `{ ignored }`: accepted from a volume but without effect
   * (with a warning giving the reason), for PVs written for mount-s3.
   */
  volume: true | string | { ignored: string };
}

const OK = true;
const DRIVER_S3 =
  "the S3 endpoint, its addressing and its trusted CAs are set by the cluster administrator on the driver";
const PROCESS = "the driver manages the mount process";
const LOGS = "mount logs are managed by the driver";

/** Every option of `s3csi mount`, in the order of its --help and of the arguments the node passes. */
export const MOUNT_OPTIONS = {
  "allow-delete": { type: "boolean", help: "Allow deleting files (unlink)", volume: OK },
  "allow-overwrite": {
    type: "boolean",
    help: "Allow overwriting files opened with O_TRUNC",
    volume: OK,
  },
  "allow-other": { type: "boolean", help: "Let other users access the mount", volume: OK },
  "allow-root": { type: "boolean", help: "Let root access the mount too", volume: OK },
  "read-only": { type: "boolean", aliases: ["ro"], help: "Mount read-only", volume: OK },
  uid: { type: "string", kind: uint(), help: "Owner of files (default: your uid)", volume: OK },
  gid: { type: "string", kind: uint(), help: "Group of files (default: your gid)", volume: OK },
  "file-mode": {
    type: "string",
    kind: OCTAL_MODE,
    default: "0644",
    help: "Permission bits of files (octal)",
    volume: OK,
  },
  "dir-mode": {
    type: "string",
    kind: OCTAL_MODE,
    default: "0755",
    help: "Permission bits of directories (octal)",
    volume: OK,
  },
  region: { ...S3_FLAGS.region, help: "S3 region", volume: OK },
  "endpoint-url": {
    ...S3_FLAGS["endpoint-url"],
    help: "S3 endpoint URL (path-style addressing unless --virtual-hosted-style)",
    volume: DRIVER_S3,
  },
  "force-path-style": {
    ...S3_FLAGS["force-path-style"],
    // Common in PVs written for mount-s3; refusing it would break them on upgrade.
    volume: { ignored: "the addressing is set by the cluster administrator on the driver" },
  },
  "virtual-hosted-style": { ...S3_FLAGS["virtual-hosted-style"], volume: DRIVER_S3 },
  "ca-bundle": { ...S3_FLAGS["ca-bundle"], volume: DRIVER_S3 },
  "aws-max-attempts": { ...S3_FLAGS["aws-max-attempts"], default: "10", volume: OK },
  "s3-timeout": { ...S3_FLAGS["s3-timeout"], volume: OK },
  prefix: {
    type: "string",
    kind: KEY_PREFIX,
    help: "Serve only keys under this prefix (must end with /)",
    volume: OK,
  },
  "metadata-ttl": {
    type: "string",
    kind: METADATA_TTL,
    default: "minimal",
    help: "Seconds, minimal or indefinite",
    volume: OK,
  },
  // A volume's cache directory is further confined to the driver's cache area by the node.
  cache: { type: "string", kind: TEXT, help: "Directory for a local read cache", volume: OK },
  "max-cache-size": {
    type: "string",
    kind: uint(),
    help: "Read cache size limit in MiB",
    volume: OK,
  },
  "read-part-size": {
    type: "string",
    kind: uint({ min: 64 * 1024, max: 5 * 1024 * MIB }),
    default: String(8 * MIB),
    help: "Bytes per ranged GET",
    volume: OK,
  },
  "write-part-size": {
    type: "string",
    kind: uint({ min: 5 * MIB, max: 5 * 1024 * MIB }),
    default: String(8 * MIB),
    help: "Bytes per upload part",
    volume: OK,
  },
  "max-threads": {
    type: "string",
    kind: uint({ min: 1, max: 1024 }),
    default: "32",
    help: "FUSE requests handled at once",
    volume: OK,
  },
  "max-memory": {
    type: "string",
    kind: uint({ min: 64 }),
    default: "256",
    help: "Memory of the mount process in MiB, its read and write buffers within it",
    volume: OK,
  },
  "storage-class": { type: "string", kind: TEXT, help: "Storage class of new objects", volume: OK },
  sse: {
    type: "string",
    kind: SSE,
    help: "Server-side encryption: AES256, aws:kms or aws:kms:dsse",
    volume: OK,
  },
  "sse-kms-key-id": { type: "string", kind: TEXT, help: "KMS key for --sse aws:kms", volume: OK },
  "user-agent-prefix": {
    type: "string",
    kind: TEXT,
    help: "Prefix of the HTTP user agent",
    volume: OK,
  },
  foreground: { type: "boolean", short: "f", help: "Stay in the foreground", volume: PROCESS },
  "from-socket": {
    type: "string",
    kind: TEXT,
    help:
      "Mountpoint Pod: serve the mount a node sends over this Unix socket (bucket and options come with it)",
    volume: PROCESS,
  },
  "accept-timeout": {
    type: "string",
    kind: uint(),
    default: "300",
    help:
      "With --from-socket: seconds to wait for the node to connect before exiting 0 (0: wait forever)",
    volume: PROCESS,
  },
  debug: { ...COMMON_FLAGS.debug, aliases: ["debug-crt"], volume: OK },
  "log-level": {
    ...COMMON_FLAGS["log-level"],
    volume: `${LOGS} ("debug" turns on debug logging)`,
  },
  "log-file": {
    type: "string",
    kind: TEXT,
    help: "Write logs to this file instead of stderr",
    volume: LOGS,
  },
  "metrics-address": {
    type: "string",
    kind: LISTEN_ADDRESS,
    help: "Serve Prometheus metrics on host:port (off by default)",
    volume: PROCESS,
  },
  "metrics-socket": {
    type: "string",
    kind: TEXT,
    help: "Serve this mount's metrics as JSON on a Unix socket (for the node to gather)",
    volume: PROCESS,
  },
  journal: {
    type: "string",
    kind: TEXT,
    help:
      "Keep a takeover journal in this file (0600): what the kernel holds, so that a replacement server can continue the mount",
    volume: PROCESS,
  },
  "keeper-dir": {
    type: "string",
    kind: TEXT,
    help:
      "Hand a clone of the FUSE connection to whoever connects to keeper.sock in this root-only directory (how a restarted CSI node keeps the mount alive)",
    volume: PROCESS,
  },
  "take-over": {
    type: "boolean",
    help:
      "The /dev/fd/N connection is live, left by a server that died: continue it from --journal (no INIT comes)",
    volume: PROCESS,
  },
  "hand-over-wait": {
    type: "string",
    kind: uint(),
    default: "20",
    help:
      "With --journal on a /dev/fd/N connection, SIGTERM hands the mount over to a successor: seconds to wait for open files being written to close first (those still open then fail with EIO)",
    volume: PROCESS,
  },
  help: { ...COMMON_FLAGS.help, volume: "not a mount option" },
} as const satisfies Record<string, MountOption>;

// The option types are derived from the table, so that a new row needs no other edit.
type Rows = typeof MOUNT_OPTIONS;
/** The name of a row of the table. */
export type OptionName = keyof Rows & string;
type Name = OptionName;
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}`
  : S;
type ValueOf<R> = R extends { kind: Kind<infer T> } ? T : string;
type Options<N extends Name> =
  & { [K in N as Rows[K] extends { type: "boolean" } ? Camel<K> : never]: boolean }
  & { [K in N as Rows[K] extends { type: "string" } ? Camel<K> : never]?: ValueOf<Rows[K]> };
type VolumeName = { [K in Name]: Rows[K]["volume"] extends true ? K : never }[Name];

/** Everything `s3csi mount` was given. */
export type MountFlags = Options<Name>;
/** What a volume's mountOptions may set. */
export type VolumeOptions = Options<VolumeName>;

/** Refuses an option, naming it; each caller throws its own error type. */
export type Fail = (name: string, why: string) => never;

const NAMES = Object.keys(MOUNT_OPTIONS) as Name[];
const VOLUME_NAMES = NAMES.filter((n) => MOUNT_OPTIONS[n].volume === true) as VolumeName[];

/** The row of `name` as a volume may write it: the flag, an alias, or the short letter. */
export function findOption(name: string): { name: Name; row: MountOption } | undefined {
  const hit = NAMES.find((n) => {
    const row: MountOption = MOUNT_OPTIONS[n];
    return n === name || row.short === name || row.aliases?.includes(name);
  });
  return hit && { name: hit, row: MOUNT_OPTIONS[hit] };
}

/** Parses the text of option `name` with its row's kind. */
export function parseOption(name: Name, raw: string, fail: Fail): unknown {
  const kind: Kind<unknown> | undefined = (MOUNT_OPTIONS[name] as MountOption).kind;
  try {
    return kind ? kind.parse(raw) : raw;
  } catch (err) {
    if (err instanceof ValueError) fail(name, err.message);
    throw err;
  }
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function read(names: readonly Name[], values: Record<string, unknown>, fail: Fail) {
  const out: Record<string, unknown> = {};
  for (const n of names) {
    if (MOUNT_OPTIONS[n].type === "boolean") out[camel(n)] = values[n] === true;
    else if (values[n] !== undefined) out[camel(n)] = values[n];
  }
  const o = out as Partial<MountFlags>;
  if (o.allowOther && o.allowRoot) fail("allow-root", `conflicts with "allow-other"`);
  if (o.sseKmsKeyId !== undefined && !o.sse?.startsWith("aws:kms")) {
    fail("sse-kms-key-id", `needs "sse aws:kms" or "sse aws:kms:dsse"`);
  }
  return out;
}

/** `s3csi mount`'s options from its parsed flags (by flag name). */
export function mountFlags(values: Record<string, unknown>, fail: Fail): MountFlags {
  return read(NAMES, values, fail) as MountFlags;
}

/** A volume's options from its parsed mountOptions (by flag name); refused ones must be gone. */
export function volumeOptions(values: Record<string, unknown>, fail: Fail): VolumeOptions {
  return read(VOLUME_NAMES, values, fail) as VolumeOptions;
}

/** The `s3csi mount` arguments that give `flags`, in the table's order. */
export function mountArgs(flags: Partial<MountFlags>): string[] {
  const args: string[] = [];
  const given = flags as Record<string, unknown>;
  for (const n of NAMES) {
    const v = given[camel(n)];
    const kind: Kind<unknown> | undefined = (MOUNT_OPTIONS[n] as MountOption).kind;
    if (v === true) args.push(`--${n}`);
    else if (v !== undefined && v !== false) args.push(`--${n}`, kind ? kind.format(v) : String(v));
  }
  return args;
}
