/**
 * `s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]`: the FUSE file
 * system over S3, also for local debugging. Option names follow mount-s3's.
 * Wiring only: flags → MountConfig → internal/mount.
 *
 * @module
 */
import {
  bool,
  type FlagSpecs,
  int,
  parseFlags,
  str,
  usage,
  UsageError,
} from "../../internal/cli/mod.ts";
import { MIB } from "../../internal/fs/config.ts";
import { daemonize, runMount } from "../../internal/mount/run.ts";
import type { MetadataTtl } from "../../internal/fs/config.ts";

export const summary = "Mount an S3 bucket as a FUSE file system";

const FLAGS: FlagSpecs = {
  prefix: { type: "string", help: "Serve only keys under this prefix (must end with /)" },
  region: { type: "string", env: "AWS_REGION", default: "us-east-1", help: "S3 region" },
  "endpoint-url": { type: "string", env: "AWS_ENDPOINT_URL", help: "S3 endpoint URL" },
  "force-path-style": {
    type: "boolean",
    help: "Path-style addressing (the default with --endpoint-url)",
  },
  "ca-bundle": { type: "string", env: "AWS_CA_BUNDLE", help: "PEM file of extra trusted CAs" },
  "allow-delete": { type: "boolean", help: "Allow deleting files (unlink)" },
  "allow-overwrite": { type: "boolean", help: "Allow overwriting files opened with O_TRUNC" },
  "allow-other": { type: "boolean", help: "Let other users access the mount" },
  "allow-root": { type: "boolean", help: "Let root access the mount too" },
  uid: { type: "string", help: "Owner of files and directories (default: your uid)" },
  gid: { type: "string", help: "Group of files and directories (default: your gid)" },
  "file-mode": { type: "string", default: "0644", help: "Permission bits of files (octal)" },
  "dir-mode": { type: "string", default: "0755", help: "Permission bits of directories (octal)" },
  "read-only": { type: "boolean", help: "Mount read-only" },
  "metadata-ttl": { type: "string", default: "minimal", help: "Seconds, minimal or indefinite" },
  cache: { type: "string", help: "Directory for a local read cache" },
  "max-cache-size": { type: "string", help: "Read cache size limit in MiB" },
  "read-part-size": { type: "string", default: String(8 * MIB), help: "Bytes per ranged GET" },
  "write-part-size": { type: "string", default: String(8 * MIB), help: "Bytes per upload part" },
  "max-threads": { type: "string", default: "32", help: "FUSE requests handled at once" },
  "max-memory": {
    type: "string",
    default: "512",
    help: "Memory for read and write buffers in MiB",
  },
  "storage-class": { type: "string", help: "Storage class of new objects" },
  sse: { type: "string", help: "Server-side encryption: AES256, aws:kms or aws:kms:dsse" },
  "sse-kms-key-id": { type: "string", help: "KMS key for --sse aws:kms" },
  "aws-max-attempts": {
    type: "string",
    env: "AWS_MAX_ATTEMPTS",
    default: "10",
    help: "Attempts per S3 request",
  },
  "user-agent-prefix": { type: "string", help: "Prefix of the HTTP user agent" },
  foreground: { type: "boolean", short: "f", help: "Stay in the foreground" },
  debug: { type: "boolean", short: "d", help: "Debug logging" },
  "log-file": { type: "string", help: "Write logs to this file instead of stderr" },
  help: { type: "boolean", short: "h", help: "Show this help" },
};

const SYNOPSIS = "s3csi mount <bucket> <mountpoint|/dev/fd/N> [options]";

function octal(name: string, raw: string): number {
  if (!/^0?[0-7]{1,4}$/.test(raw)) {
    throw new UsageError(`Invalid value for --${name}: "${raw}" is not octal`);
  }
  return parseInt(raw, 8);
}

function ttl(raw: string): MetadataTtl {
  if (raw === "minimal" || raw === "0") return { kind: "minimal" };
  if (raw === "indefinite") return { kind: "indefinite" };
  if (/^\d+$/.test(raw)) return { kind: "seconds", s: Number(raw) };
  throw new UsageError(`Invalid value for --metadata-ttl: "${raw}"`);
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS, true);
  if (bool(values, "help")) {
    console.log(usage(SYNOPSIS, FLAGS));
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UsageError(
      `Expected a bucket and a mount point, got ${positionals.length} arguments`,
    );
  }
  const [bucket, mountPoint] = positionals;
  const prefix = str(values, "prefix") ?? "";
  if (prefix !== "" && !prefix.endsWith("/")) {
    throw new UsageError(`Invalid value for --prefix: "${prefix}" must end with "/"`);
  }
  if (bool(values, "allow-other") && bool(values, "allow-root")) {
    throw new UsageError("--allow-other and --allow-root cannot be used together");
  }
  const sse = str(values, "sse");
  if (sse && !["AES256", "aws:kms", "aws:kms:dsse"].includes(sse)) {
    throw new UsageError(`Invalid value for --sse: "${sse}"`);
  }
  const uid = int(values, "uid", { min: 0 }) ?? Deno.uid() ?? 0;
  const gid = int(values, "gid", { min: 0 }) ?? Deno.gid() ?? 0;
  const endpointUrl = str(values, "endpoint-url");
  const cacheMiB = int(values, "max-cache-size", { min: 0 });
  const fs = {
    prefix,
    allowDelete: bool(values, "allow-delete"),
    allowOverwrite: bool(values, "allow-overwrite"),
    readOnly: bool(values, "read-only"),
    uid,
    gid,
    fileMode: octal("file-mode", str(values, "file-mode")!),
    dirMode: octal("dir-mode", str(values, "dir-mode")!),
    metadataTtl: ttl(str(values, "metadata-ttl")!),
    readPartSize: int(values, "read-part-size", { min: 64 * 1024, max: 5 * 1024 * MIB })!,
    writePartSize: int(values, "write-part-size", { min: 5 * MIB, max: 5 * 1024 * MIB })!,
    maxMemory: int(values, "max-memory", { min: 64 })! * MIB,
    ...(str(values, "storage-class") ? { storageClass: str(values, "storage-class") } : {}),
    ...(sse ? { sse } : {}),
    ...(str(values, "sse-kms-key-id") ? { sseKmsKeyId: str(values, "sse-kms-key-id") } : {}),
    ...(str(values, "cache") ? { cacheDir: str(values, "cache") } : {}),
    ...(cacheMiB !== undefined ? { maxCacheSize: cacheMiB * MIB } : {}),
  };
  const maxInFlight = int(values, "max-threads", { min: 1, max: 1024 })!;
  if (!bool(values, "foreground")) return await daemonize(args);
  return await runMount({
    bucket,
    mountPoint,
    fs,
    s3: {
      region: str(values, "region")!,
      // Path-style unless asked otherwise: S3-compatible stores need it with custom endpoints.
      forcePathStyle: bool(values, "force-path-style") || endpointUrl !== undefined,
      maxAttempts: int(values, "aws-max-attempts", { min: 1, max: 100 })!,
      maxConnections: Math.max(16, maxInFlight),
      ...(endpointUrl ? { endpointUrl } : {}),
      ...(str(values, "ca-bundle") ? { caBundlePath: str(values, "ca-bundle") } : {}),
      ...(str(values, "user-agent-prefix")
        ? { userAgentPrefix: str(values, "user-agent-prefix") }
        : {}),
    },
    allowOther: bool(values, "allow-other"),
    allowRoot: bool(values, "allow-root"),
    ownerUid: Deno.uid() ?? 0,
    ownerGid: Deno.gid() ?? 0,
    debug: bool(values, "debug"),
    maxInFlight,
    ...(str(values, "log-file") ? { logFile: str(values, "log-file") } : {}),
  });
}
