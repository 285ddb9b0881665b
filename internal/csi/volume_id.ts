/**
 * Volume identities.
 *
 * A dynamic volume's uuid is a name-based UUID (RFC 9562 version 5, SHA-1)
 * of the CreateVolume `name` in a namespace fixed for s3csi. The same name
 * therefore always maps to the same bucket or prefix: a retried or
 * concurrent CreateVolume can never create a second bucket, and the
 * controller needs no state besides S3 itself.
 *
 * Volume ID formats:
 * - dedicated: `csi-s3-{uuid}` (also the bucket name);
 * - shared:    `{bucket}/csi-s3-{uuid}` (bucket names cannot contain "/", so
 *   the first "/" splits bucket from the prefix `csi-s3-{uuid}/`).
 *
 * @module
 */

/** Namespace for s3csi volume names (a fixed random UUID). */
const VOLUME_NAMESPACE = "8f4c2a6e-93d1-4b7e-a5f0-2c91d7e4b3a8";

const VOLUME_PREFIX = "csi-s3-";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function formatUuid(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}

/** UUID version 5 of `name` in s3csi's namespace. */
export async function nameUuid(name: string): Promise<string> {
  const ns = uuidBytes(VOLUME_NAMESPACE);
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(ns.length + nameBytes.length);
  input.set(ns);
  input.set(nameBytes, ns.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", input));
  const b = digest.slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50; // version 5
  b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
  return formatUuid(b);
}

export type VolumeRef =
  | { mode: "dedicated"; id: string; bucket: string; prefix: "" }
  | { mode: "shared"; id: string; bucket: string; prefix: string };

export function dedicatedVolume(uuid: string): VolumeRef {
  const id = `${VOLUME_PREFIX}${uuid}`;
  return { mode: "dedicated", id, bucket: id, prefix: "" };
}

export function sharedVolume(bucket: string, uuid: string): VolumeRef {
  return {
    mode: "shared",
    id: `${bucket}/${VOLUME_PREFIX}${uuid}`,
    bucket,
    prefix: `${VOLUME_PREFIX}${uuid}/`,
  };
}

/**
 * Recovers bucket and prefix from a volume ID created by this driver, or
 * returns undefined for anything else (DeleteVolume treats that as already
 * gone; ValidateVolumeCapabilities as NOT_FOUND).
 */
export function parseVolumeId(id: string): VolumeRef | undefined {
  const slash = id.indexOf("/");
  if (slash < 0) {
    if (!id.startsWith(VOLUME_PREFIX)) return undefined;
    const uuid = id.slice(VOLUME_PREFIX.length);
    return UUID_RE.test(uuid) ? dedicatedVolume(uuid) : undefined;
  }
  const bucket = id.slice(0, slash);
  const rest = id.slice(slash + 1);
  if (!rest.startsWith(VOLUME_PREFIX) || validateBucketName(bucket) !== undefined) return undefined;
  const uuid = rest.slice(VOLUME_PREFIX.length);
  return UUID_RE.test(uuid) ? sharedVolume(bucket, uuid) : undefined;
}

/** S3 bucket naming rules; returns the reason a name is invalid, or undefined. */
export function validateBucketName(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return "must use lowercase letters, digits, dots and hyphens, and start and end with a letter or digit";
  }
  if (name.includes("..")) return "must not contain two adjacent dots";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "must not be formatted as an IP address";
  if (name.startsWith("xn--") || name.endsWith("-s3alias") || name.endsWith("--ol-s3")) {
    return "must not use a reserved prefix or suffix";
  }
  return undefined;
}
