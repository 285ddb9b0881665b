/**
 * The node's policy for mount options from PersistentVolumes and
 * StorageClasses, over the option table of `s3csi mount`
 * (`internal/mount/options.ts`).
 *
 * Kubernetes passes `mountOptions` to the node as `mount_flags`, one string
 * each, written by users in three forms: `key`, `key=value` and `key value`
 * (a leading `--` is accepted too). They are parsed, normalised (lowercase,
 * `_` → `-`), de-duplicated, checked against the policy, and turned back
 * into `s3csi mount` flags.
 *
 * Policy: options that would let a volume escape the administrator's
 * control are refused with an error that names the option and gives the
 * table's reason, never silently dropped (the few the table marks ignored,
 * such as mount-s3's `force-path-style`, are dropped with a warning): the endpoint and how it is reached
 * are the driver's, credentials sources are the driver's or the volume's
 * secret, cache paths must stay inside the driver's cache area, logs and the
 * process are the driver's, and anything unknown is refused. The same key
 * with two different values is ambiguous and refused.
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { InvalidArgumentError } from "../errors/mod.ts";
import {
  findOption,
  mountArgs,
  type OptionName,
  parseOption,
  type VolumeOptions,
  volumeOptions,
} from "../mount/options.ts";
import { log as rootLog } from "../log/mod.ts";
import { isInside, normalisePath } from "../util/path.ts";

const log = rootLog.with({ component: "mount-options" });

/** The validated options of one volume publish. */
export type MountOptions = VolumeOptions;

const CREDENTIALS = "credentials come from the driver or the volume's node-publish secret";

/** Names users bring from mount-s3 that `s3csi mount` has not: refused with a reason. */
const NOT_MOUNT_OPTIONS: Record<string, string> = {
  "profile": CREDENTIALS,
  "no-sign-request": CREDENTIALS,
  "log-directory": "mount logs are managed by the driver",
  "version": "not a mount option",
  "cache-xz": "S3 Express One Zone caches are not supported",
  "incremental-upload": "appends need S3 Express One Zone, which is not supported",
  "o": "fstab-style -o lists are not supported: give each option on its own",
};

export interface ParseContext {
  /** Directory a `cache` option must stay inside. */
  cacheRoot: string;
}

/** Splits one mount flag into key and optional value: `k`, `k=v`, `k v`, `--k=v`. */
function splitOption(raw: string): { key: string; value?: string } {
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

/** Parses, normalises, de-duplicates and polices `flags`. */
export function parseMountOptions(flags: string[], ctx: ParseContext): MountOptions {
  const seen = new Map<OptionName, { raw: string; value?: string }>();
  for (const raw of flags) {
    if (raw.trim() === "") continue;
    // "-o a,b" lists and bare comma lists are refused by name rather than guessed at.
    const { key, value } = splitOption(raw);
    if (NOT_MOUNT_OPTIONS[key] !== undefined) {
      fail(key, `refused by policy: ${NOT_MOUNT_OPTIONS[key]}`);
    }
    const found = findOption(key);
    if (!found) fail(key, "unknown option");
    const { name, row } = found;
    if (typeof row.volume === "string") fail(key, `refused by policy: ${row.volume}`);
    const isFlag = row.type === "boolean";
    if (isFlag && value !== undefined && value !== "" && value !== "true") {
      fail(key, "takes no value");
    }
    if (typeof row.volume === "object") {
      log.warn("mount option ignored", { option: key, reason: row.volume.ignored });
      continue;
    }
    if (!isFlag && (value === undefined || value === "")) fail(key, "needs a value");
    const prev = seen.get(name);
    const kept = isFlag ? undefined : value;
    if (prev && prev.value !== kept) {
      fail(key, `given twice with different values ("${prev.raw}" and "${raw.trim()}")`);
    }
    seen.set(name, { raw: raw.trim(), value: kept });
  }
  const values: Record<string, unknown> = {};
  for (const [name, { value }] of seen) {
    values[name] = value === undefined ? true : parseOption(name, value, fail);
  }
  const out = volumeOptions(values, fail);
  if (out.cache !== undefined) {
    const root = normalisePath(ctx.cacheRoot);
    const abs = normalisePath(out.cache.startsWith("/") ? out.cache : `${root}/${out.cache}`);
    if (!isInside(abs, root)) {
      fail("cache", `"${out.cache}" is outside the driver's cache area "${root}"`);
    }
    out.cache = abs;
  }
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

/**
 * `s3csi mount` flags for a volume's options on the driver's S3 connection
 * (the volume's region and attempts win over the driver's).
 */
export function toMountArgs(opts: MountOptions, driver: S3Connection): string[] {
  return mountArgs({
    ...opts,
    region: opts.region ?? driver.region,
    awsMaxAttempts: opts.awsMaxAttempts ?? driver.maxAttempts,
    endpointUrl: driver.endpointUrl,
    forcePathStyle: driver.forcePathStyle,
    virtualHostedStyle: !driver.forcePathStyle,
    caBundle: driver.caBundlePath,
  });
}
