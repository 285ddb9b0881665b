/**
 * Mount options from PersistentVolumes and StorageClasses.
 *
 * Kubernetes passes `mountOptions` to the node as `mount_flags`, one string
 * each, written by users in three forms: `key`, `key=value` and `key value`
 * (a leading `--` is accepted too). They are parsed, normalised (lowercase,
 * `_` → `-`), de-duplicated, checked against a policy, and mapped onto
 * `s3csi mount` flags.
 *
 * Policy: options that would let a volume escape the administrator's
 * control are refused with an error that names the option, never silently
 * dropped: the endpoint (`endpoint-url`) and credentials source (`profile`,
 * `no-sign-request`) are the driver's, cache paths must stay inside the
 * driver's cache area, log files are the driver's, and anything unknown is
 * refused. The same key with two different values is ambiguous and refused.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors/mod.ts";
import { isInside, normalisePath } from "../util/path.ts";

type Kind = "flag" | "uint" | "octal" | "string" | "ttl" | "path";

interface OptionSpec {
  kind: Kind;
  /** Canonical name when this key is an alias. */
  alias?: string;
}

/** Options a volume may set, with the kind of value each takes. */
const ALLOWED: Record<string, OptionSpec> = {
  "allow-delete": { kind: "flag" },
  "allow-overwrite": { kind: "flag" },
  "allow-other": { kind: "flag" },
  "allow-root": { kind: "flag" },
  "read-only": { kind: "flag" },
  "ro": { kind: "flag", alias: "read-only" },
  "debug": { kind: "flag" },
  "debug-crt": { kind: "flag", alias: "debug" },
  "force-path-style": { kind: "flag" },
  "uid": { kind: "uint" },
  "gid": { kind: "uint" },
  "file-mode": { kind: "octal" },
  "dir-mode": { kind: "octal" },
  "region": { kind: "string" },
  "prefix": { kind: "string" },
  "metadata-ttl": { kind: "ttl" },
  "cache": { kind: "path" },
  "max-cache-size": { kind: "uint" },
  "read-part-size": { kind: "uint" },
  "write-part-size": { kind: "uint" },
  "max-threads": { kind: "uint" },
  "max-memory": { kind: "uint" },
  "storage-class": { kind: "string" },
  "sse": { kind: "string" },
  "sse-kms-key-id": { kind: "string" },
  "aws-max-attempts": { kind: "uint" },
  "user-agent-prefix": { kind: "string" },
};

/** Options refused by policy, with the reason shown to the user. */
const REFUSED: Record<string, string> = {
  "endpoint-url": "the S3 endpoint is set by the cluster administrator on the driver",
  "profile": "credentials come from the driver or the volume's node-publish secret",
  "no-sign-request": "credentials come from the driver or the volume's node-publish secret",
  "log-file": "mount logs are managed by the driver",
  "log-directory": "mount logs are managed by the driver",
  "foreground": "the driver manages the mount process",
  "f": "the driver manages the mount process",
  "help": "not a mount option",
  "version": "not a mount option",
  "cache-xz": "S3 Express One Zone caches are not supported",
  "incremental-upload": "appends need S3 Express One Zone, which is not supported",
  "o": "fstab-style -o lists are not supported: give each option on its own",
};

const SSE_VALUES = new Set(["AES256", "aws:kms", "aws:kms:dsse"]);

export type TtlValue = { kind: "minimal" } | { kind: "indefinite" } | {
  kind: "seconds";
  s: number;
};

/** The validated options of one volume publish. */
export interface MountOptions {
  allowDelete: boolean;
  allowOverwrite: boolean;
  allowOther: boolean;
  allowRoot: boolean;
  readOnly: boolean;
  debug: boolean;
  uid?: number;
  gid?: number;
  fileMode?: number;
  dirMode?: number;
  region?: string;
  prefix?: string;
  metadataTtl?: TtlValue;
  cache?: string;
  maxCacheSize?: number;
  readPartSize?: number;
  writePartSize?: number;
  maxThreads?: number;
  maxMemory?: number;
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  awsMaxAttempts?: number;
  userAgentPrefix?: string;
}

export interface ParseContext {
  /** Directory a `cache` option must stay inside. */
  cacheRoot: string;
}

/** Splits one mount flag into key and optional value: `k`, `k=v`, `k v`, `--k=v`. */
export function splitOption(raw: string): { key: string; value?: string } {
  let s = raw.trim();
  if (s.startsWith("--")) s = s.slice(2);
  else if (s.startsWith("-") && s.length > 1) s = s.slice(1);
  const eq = s.indexOf("=");
  const sp = s.search(/\s/);
  const cut = eq < 0 ? sp : sp < 0 ? eq : Math.min(eq, sp);
  const key = (cut < 0 ? s : s.slice(0, cut)).toLowerCase().replace(/_/g, "-");
  if (cut < 0) return { key };
  return { key, value: s.slice(cut + 1).trim() };
}

function fail(option: string, why: string): never {
  throw new InvalidArgumentError(
    `volume_capability.mount.mount_flags`,
    `Invalid mount option "${option}": ${why}`,
  );
}

function parseUint(key: string, v: string): number {
  if (!/^\d+$/.test(v)) fail(key, `"${v}" is not a non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) fail(key, `"${v}" is too large`);
  return n;
}

function parseOctal(key: string, v: string): number {
  if (!/^0?[0-7]{1,4}$/.test(v)) fail(key, `"${v}" is not an octal permission like 0644`);
  return parseInt(v, 8);
}

function parseTtl(key: string, v: string): TtlValue {
  if (v === "minimal" || v === "0") return { kind: "minimal" };
  if (v === "indefinite") return { kind: "indefinite" };
  if (/^\d+$/.test(v)) return { kind: "seconds", s: Number(v) };
  fail(key, `"${v}" is not a number of seconds, "minimal" or "indefinite"`);
}

/** Parses, normalises, de-duplicates and polices `flags`. */
export function parseMountOptions(flags: string[], ctx: ParseContext): MountOptions {
  const seen = new Map<string, { raw: string; value?: string }>();
  for (const raw of flags) {
    if (raw.trim() === "") continue;
    // "-o a,b" lists and bare comma lists are refused by name rather than guessed at.
    const { key: rawKey, value } = splitOption(raw);
    if (REFUSED[rawKey] !== undefined) fail(rawKey, `refused by policy: ${REFUSED[rawKey]}`);
    const spec = ALLOWED[rawKey];
    if (!spec) fail(rawKey, "unknown option");
    const key = spec.alias ?? rawKey;
    if (spec.kind === "flag" && value !== undefined && value !== "" && value !== "true") {
      fail(rawKey, "takes no value");
    }
    if (spec.kind !== "flag" && (value === undefined || value === "")) {
      fail(rawKey, "needs a value");
    }
    const prev = seen.get(key);
    if (prev && prev.value !== (spec.kind === "flag" ? undefined : value)) {
      fail(rawKey, `given twice with different values ("${prev.raw}" and "${raw.trim()}")`);
    }
    seen.set(key, { raw: raw.trim(), value: spec.kind === "flag" ? undefined : value });
  }
  const out: MountOptions = {
    allowDelete: seen.has("allow-delete"),
    allowOverwrite: seen.has("allow-overwrite"),
    allowOther: seen.has("allow-other"),
    allowRoot: seen.has("allow-root"),
    readOnly: seen.has("read-only"),
    debug: seen.has("debug"),
  };
  if (out.allowOther && out.allowRoot) fail("allow-root", `conflicts with "allow-other"`);
  const v = (k: string) => seen.get(k)?.value;
  if (v("uid") !== undefined) out.uid = parseUint("uid", v("uid")!);
  if (v("gid") !== undefined) out.gid = parseUint("gid", v("gid")!);
  if (v("file-mode") !== undefined) out.fileMode = parseOctal("file-mode", v("file-mode")!);
  if (v("dir-mode") !== undefined) out.dirMode = parseOctal("dir-mode", v("dir-mode")!);
  if (v("region") !== undefined) {
    if (!/^[a-z0-9-]{1,64}$/.test(v("region")!)) {
      fail("region", `"${v("region")}" is not a region name`);
    }
    out.region = v("region");
  }
  if (v("prefix") !== undefined) {
    const p = v("prefix")!;
    if (!p.endsWith("/")) fail("prefix", `"${p}" must end with "/"`);
    if (
      p.startsWith("/") ||
      p.split("/").slice(0, -1).some((s) => s === "" || s === "." || s === "..")
    ) {
      fail("prefix", `"${p}" must be a relative key prefix without empty, "." or ".." parts`);
    }
    out.prefix = p;
  }
  if (v("metadata-ttl") !== undefined) {
    out.metadataTtl = parseTtl("metadata-ttl", v("metadata-ttl")!);
  }
  if (v("cache") !== undefined) {
    const root = normalisePath(ctx.cacheRoot);
    const p = v("cache")!;
    const abs = normalisePath(p.startsWith("/") ? p : `${root}/${p}`);
    if (!isInside(abs, root)) {
      fail("cache", `"${p}" is outside the driver's cache area "${root}"`);
    }
    out.cache = abs;
  }
  for (
    const [key, field] of [
      ["max-cache-size", "maxCacheSize"],
      ["read-part-size", "readPartSize"],
      ["write-part-size", "writePartSize"],
      ["max-threads", "maxThreads"],
      ["max-memory", "maxMemory"],
      ["aws-max-attempts", "awsMaxAttempts"],
    ] as const
  ) {
    if (v(key) !== undefined) out[field] = parseUint(key, v(key)!);
  }
  if (v("storage-class") !== undefined) out.storageClass = v("storage-class");
  if (v("sse") !== undefined) {
    if (!SSE_VALUES.has(v("sse")!)) {
      fail("sse", `"${v("sse")}" is not one of ${[...SSE_VALUES].join(", ")}`);
    }
    out.sse = v("sse");
  }
  if (v("sse-kms-key-id") !== undefined) {
    if (out.sse === undefined || !out.sse.startsWith("aws:kms")) {
      fail("sse-kms-key-id", `needs "sse aws:kms" or "sse aws:kms:dsse"`);
    }
    out.sseKmsKeyId = v("sse-kms-key-id");
  }
  if (v("user-agent-prefix") !== undefined) out.userAgentPrefix = v("user-agent-prefix");
  return out;
}

/**
 * Applies fsGroup (CSI `volume_mount_group`): unless the options already set
 * a gid, files belong to the group, other users may enter the mount, and
 * files and directories are group-writable.
 */
export function applyFsGroup(opts: MountOptions, fsGroup: string | undefined): MountOptions {
  if (!fsGroup) return opts;
  if (!/^\d+$/.test(fsGroup)) {
    throw new InvalidArgumentError(
      "volume_capability.mount.volume_mount_group",
      `Invalid volume_mount_group "${fsGroup}": not a numeric group ID`,
    );
  }
  if (opts.gid !== undefined) return opts;
  return {
    ...opts,
    gid: Number(fsGroup),
    allowOther: opts.allowRoot ? false : true,
    fileMode: opts.fileMode ?? 0o660,
    dirMode: opts.dirMode ?? 0o770,
  };
}

/** `s3csi mount` command-line flags for `opts` (credentials and endpoint are added by the mounter). */
export function toMountArgs(opts: MountOptions): string[] {
  const args: string[] = [];
  const flag = (on: boolean, name: string) => on && args.push(`--${name}`);
  flag(opts.allowDelete, "allow-delete");
  flag(opts.allowOverwrite, "allow-overwrite");
  flag(opts.allowOther, "allow-other");
  flag(opts.allowRoot, "allow-root");
  flag(opts.readOnly, "read-only");
  flag(opts.debug, "debug");
  const val = (name: string, v: string | number | undefined) => {
    if (v !== undefined) args.push(`--${name}`, String(v));
  };
  val("uid", opts.uid);
  val("gid", opts.gid);
  val("file-mode", opts.fileMode?.toString(8).padStart(4, "0"));
  val("dir-mode", opts.dirMode?.toString(8).padStart(4, "0"));
  val("region", opts.region);
  val("prefix", opts.prefix);
  if (opts.metadataTtl) {
    val(
      "metadata-ttl",
      opts.metadataTtl.kind === "seconds" ? opts.metadataTtl.s : opts.metadataTtl.kind,
    );
  }
  val("cache", opts.cache);
  val("max-cache-size", opts.maxCacheSize);
  val("read-part-size", opts.readPartSize);
  val("write-part-size", opts.writePartSize);
  val("max-threads", opts.maxThreads);
  val("max-memory", opts.maxMemory);
  val("storage-class", opts.storageClass);
  val("sse", opts.sse);
  val("sse-kms-key-id", opts.sseKmsKeyId);
  val("aws-max-attempts", opts.awsMaxAttempts);
  val("user-agent-prefix", opts.userAgentPrefix);
  return args;
}
