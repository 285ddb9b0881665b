/**
 * The record of what a dynamic volume was created with: its name, capacity
 * and parameters, kept in S3 beside the volume so that a repeated
 * CreateVolume can be checked without any controller state.
 *
 * A dedicated bucket carries the record as bucket tags; a prefix in a shared
 * bucket carries it as user metadata on its marker object (header names allow
 * no "/", hence the second key set). Both are checked the same way: the same
 * name with a capacity inside the requested range and the same parameters is
 * the same volume (the call is idempotent), anything else is ALREADY_EXISTS.
 *
 * Values must survive the store unchanged: tag values allow only letters,
 * digits, spaces and `_ . : / = + - @` (256 characters at most), header
 * values only printable ASCII without edge spaces. A name outside those is
 * recorded as its SHA-256 digest.
 *
 * @module
 */
import { AlreadyExistsError } from "../errors/mod.ts";
import { sha256Hex } from "../util/hash.ts";

/** What CreateVolume asks for, as far as the record is concerned. */
export interface VolumeSpec {
  name: string;
  /** The capacity the volume gets (and reports). */
  capacity: number;
  required: number;
  /** 0 = unlimited. */
  limit: number;
  /** The parameters that shape the volume, as one comparable string. */
  paramsKey: string;
}

/** Where the record lives: bucket tags or marker metadata. */
export type RecordKind = "tags" | "metadata";

const KEYS = {
  tags: {
    name: "s3csi/volume-name",
    capacity: "s3csi/capacity-bytes",
    params: "s3csi/parameters",
  },
  metadata: {
    name: "s3csi-volume-name",
    capacity: "s3csi-capacity-bytes",
    params: "s3csi-parameters",
  },
} as const;

const MAX_VALUE = 256;

const SAFE_VALUE: Record<RecordKind, RegExp> = {
  tags: /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u,
  // HTTP trims the edges of a header value.
  metadata: /^(?! )[\x20-\x7e]*(?<! )$/,
};

/** The name as recorded: itself when the store keeps it unchanged, else a digest. */
async function recordedName(kind: RecordKind, name: string): Promise<string> {
  if (name.length <= MAX_VALUE && SAFE_VALUE[kind].test(name)) return name;
  return "sha256:" + await sha256Hex(name);
}

/** The tags or metadata that record `spec`. */
export async function encodeRecord(
  kind: RecordKind,
  spec: VolumeSpec,
): Promise<Record<string, string>> {
  const keys = KEYS[kind];
  return {
    [keys.name]: await recordedName(kind, spec.name),
    [keys.capacity]: String(spec.capacity),
    [keys.params]: spec.paramsKey.slice(0, MAX_VALUE),
  };
}

/**
 * Whether `stored` holds a record at all. A volume without one was made by
 * a version that recorded nothing, or by an attempt that died before it
 * could record; the caller adopts it by writing the record.
 */
export function hasRecord(kind: RecordKind, stored: Record<string, string> | undefined): boolean {
  return stored?.[KEYS[kind].name] !== undefined;
}

/**
 * Throws ALREADY_EXISTS unless the record in `stored` is compatible with
 * `spec`. `where` names the bucket or prefix for the message.
 */
export async function checkRecord(
  kind: RecordKind,
  spec: VolumeSpec,
  stored: Record<string, string>,
  where: string,
): Promise<void> {
  const keys = KEYS[kind];
  const name = stored[keys.name];
  if (name !== await recordedName(kind, spec.name)) {
    throw new AlreadyExistsError(
      `Cannot create volume "${spec.name}": ${where} belongs to volume "${name}"`,
    );
  }
  const capacity = Number(stored[keys.capacity] ?? "0");
  if (capacity < spec.required || (spec.limit > 0 && capacity > spec.limit)) {
    throw new AlreadyExistsError(
      `Cannot create volume "${spec.name}": it already exists with capacity ${capacity} bytes, incompatible with the requested range [${spec.required}, ${
        spec.limit || "unlimited"
      }]`,
    );
  }
  const params = stored[keys.params];
  if (params !== undefined && params !== spec.paramsKey.slice(0, MAX_VALUE)) {
    throw new AlreadyExistsError(
      `Cannot create volume "${spec.name}": it already exists with different parameters (${params})`,
    );
  }
}
