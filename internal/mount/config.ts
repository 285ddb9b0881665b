/**
 * From `s3csi mount`'s arguments to a `MountConfig`: one translation, used
 * by the command line (`cmd/mount`) and by a Mountpoint Pod, which receives
 * the same arguments over its socket (`internal/podmount/server.ts`), so the
 * two ways of starting a mount can never read an option differently.
 *
 * @module
 */
import { type FlagValues, logLevel, parseFlags, s3Connection, UsageError } from "../cli/mod.ts";
import { MIB } from "../fs/mod.ts";
import { parseMetricsAddress } from "../metrics/mod.ts";
import { MOUNT_OPTIONS, type MountFlags, mountFlags } from "./options.ts";
import type { MountConfig } from "./run.ts";

/** Parsed arguments: the flags by name, the options, and the positionals. */
export interface ParsedMountArgs {
  values: FlagValues;
  flags: MountFlags;
  positionals: string[];
}

/** Parses `s3csi mount` arguments; a bad one is a UsageError naming it. */
export function parseMountArgs(args: string[]): ParsedMountArgs {
  const { values, positionals } = parseFlags(args, MOUNT_OPTIONS, true);
  const flags = mountFlags(values, (name, why) => {
    throw new UsageError(`Invalid --${name}: ${why}`);
  });
  return { values, flags, positionals };
}

/**
 * The configuration of a mount of `bucket` on `mountPoint`. `owner` is the
 * mount's owner: the default of `--uid`/`--gid`, and the user `allow-root`
 * lets in besides root.
 */
export function mountConfig(
  parsed: ParsedMountArgs,
  bucket: string,
  mountPoint: string,
  owner: { uid: number; gid: number },
): MountConfig {
  const { values, flags: o } = parsed;
  const fs = {
    prefix: o.prefix ?? "",
    allowDelete: o.allowDelete,
    allowOverwrite: o.allowOverwrite,
    readOnly: o.readOnly,
    uid: o.uid ?? owner.uid,
    gid: o.gid ?? owner.gid,
    fileMode: o.fileMode!,
    dirMode: o.dirMode!,
    metadataTtl: o.metadataTtl!,
    readPartSize: o.readPartSize!,
    writePartSize: o.writePartSize!,
    maxMemory: o.maxMemory! * MIB,
    ...(o.storageClass ? { storageClass: o.storageClass } : {}),
    ...(o.sse ? { sse: o.sse } : {}),
    ...(o.sseKmsKeyId ? { sseKmsKeyId: o.sseKmsKeyId } : {}),
    ...(o.cache ? { cacheDir: o.cache } : {}),
    ...(o.maxCacheSize !== undefined ? { maxCacheSize: o.maxCacheSize * MIB } : {}),
  };
  if (o.takeOver && (!o.journal || !mountPoint.startsWith("/dev/fd/"))) {
    throw new UsageError(
      "Invalid --take-over: it needs --journal and a /dev/fd/N mount point (the live connection)",
    );
  }
  const maxInFlight = o.maxThreads!;
  // Path-style unless asked otherwise when the endpoint is not AWS: S3-compatible stores need it.
  const s3 = s3Connection(values, o.endpointUrl !== undefined);
  return {
    bucket,
    mountPoint,
    fs,
    s3: {
      ...s3,
      maxConnections: Math.max(16, maxInFlight),
      ...(o.userAgentPrefix ? { userAgentPrefix: o.userAgentPrefix } : {}),
    },
    allowOther: o.allowOther,
    allowRoot: o.allowRoot,
    ownerUid: owner.uid,
    ownerGid: owner.gid,
    logLevel: logLevel(values),
    maxInFlight,
    ...(o.logFile ? { logFile: o.logFile } : {}),
    ...(o.metricsAddress ? { metricsAddress: parseMetricsAddress(o.metricsAddress) } : {}),
    ...(o.metricsSocket ? { metricsSocket: o.metricsSocket } : {}),
    ...(o.journal ? { journal: o.journal } : {}),
    ...(o.keeperDir ? { keeperDir: o.keeperDir } : {}),
    takeOver: o.takeOver,
    handOverWaitMs: o.handOverWait! * 1000,
  };
}
