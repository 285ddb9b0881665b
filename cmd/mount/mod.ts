/**
 * `s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]`: the FUSE file
 * system over S3, also for local debugging. Its options are the table in
 * internal/mount/options.ts (names follow mount-s3's).
 * Wiring only: flags → MountConfig → internal/mount.
 *
 * @module
 */
import { logLevel, parseFlags, s3Connection, usage, UsageError } from "../../internal/cli/mod.ts";
import { MIB } from "../../internal/fs/mod.ts";
import { MOUNT_OPTIONS, mountFlags } from "../../internal/mount/options.ts";
import { daemonize, runMount } from "../../internal/mount/run.ts";

export const summary = "Mount an S3 bucket as a FUSE file system";

const SYNOPSIS = "s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]";

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, MOUNT_OPTIONS, true);
  const o = mountFlags(values, (name, why) => {
    throw new UsageError(`Invalid --${name}: ${why}`);
  });
  if (o.help) {
    console.log(usage(SYNOPSIS, MOUNT_OPTIONS));
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UsageError(
      `Expected a bucket and a mount point, got ${positionals.length} arguments`,
    );
  }
  const [bucket, mountPoint] = positionals;
  const fs = {
    prefix: o.prefix ?? "",
    allowDelete: o.allowDelete,
    allowOverwrite: o.allowOverwrite,
    readOnly: o.readOnly,
    uid: o.uid ?? Deno.uid() ?? 0,
    gid: o.gid ?? Deno.gid() ?? 0,
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
  const maxInFlight = o.maxThreads!;
  // Path-style unless asked otherwise when the endpoint is not AWS: S3-compatible stores need it.
  const s3 = s3Connection(values, o.endpointUrl !== undefined);
  if (!o.foreground) return await daemonize(args);
  return await runMount({
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
    ownerUid: Deno.uid() ?? 0,
    ownerGid: Deno.gid() ?? 0,
    logLevel: logLevel(values),
    maxInFlight,
    ...(o.logFile ? { logFile: o.logFile } : {}),
  });
}
