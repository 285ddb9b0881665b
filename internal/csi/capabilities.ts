/**
 * Volume capabilities S3 can serve: every access mode, for access type mount
 * only. A FUSE file system over S3 has no block device to offer.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors/mod.ts";

export interface VolumeCapabilityMsg {
  access_type?: "mount" | "block" | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  block?: Record<string, never> | null;
  access_mode?: { mode?: string } | null;
}

const SUPPORTED_ACCESS_MODES = new Set([
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "MULTI_NODE_READER_ONLY",
  "MULTI_NODE_SINGLE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
  "SINGLE_NODE_SINGLE_WRITER",
  "SINGLE_NODE_MULTI_WRITER",
]);

export const READER_ONLY_MODES = new Set(["SINGLE_NODE_READER_ONLY", "MULTI_NODE_READER_ONLY"]);

/** Why `cap` cannot be served, or undefined when it can. */
export function unsupportedReason(cap: VolumeCapabilityMsg): string | undefined {
  const type = cap.access_type ?? (cap.mount ? "mount" : cap.block ? "block" : undefined);
  if (type === "block") return "block access is not supported: S3 volumes are file systems";
  if (type !== "mount") return "access type is missing: expected mount";
  const fsType = cap.mount?.fs_type ?? "";
  if (fsType !== "" && fsType !== "fuse" && fsType !== "s3") {
    return `file system type "${fsType}" is not supported`;
  }
  const mode = cap.access_mode?.mode ?? "UNKNOWN";
  if (!SUPPORTED_ACCESS_MODES.has(mode)) return `access mode "${mode}" is not supported`;
  return undefined;
}

/** Throws INVALID_ARGUMENT naming `field` if any capability is missing or unsupported. */
export function requireSupported(caps: VolumeCapabilityMsg[] | undefined, field: string): void {
  if (!caps || caps.length === 0) {
    throw new InvalidArgumentError(field, `Missing ${field}: at least one capability is required`);
  }
  caps.forEach((cap, i) => {
    const reason = unsupportedReason(cap);
    if (reason) {
      throw new InvalidArgumentError(`${field}[${i}]`, `Invalid ${field}[${i}]: ${reason}`);
    }
  });
}
