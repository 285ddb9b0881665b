/**
 * CSI Controller service: dynamic provisioning of S3 volumes.
 *
 * Every RPC has the same shape: validate the request (INVALID_ARGUMENT naming
 * the field), resolve credentials, take the per-volume lock (identical
 * concurrent calls share one execution, different ones get ABORTED), then do
 * idempotent work against S3.
 *
 * Modes (StorageClass parameter `bucketNaming`):
 * - `dedicated` (default): one bucket per volume, named like the volume ID
 *   `csi-s3-{uuid}`. The uuid is derived from the request name, so retries
 *   never make a second bucket.
 * - `shared` with `bucketName`: the volume is the prefix `csi-s3-{uuid}/` in
 *   an existing bucket, marked by a zero-byte object at the prefix itself
 *   (invisible inside the mounted volume). The bucket is never created or
 *   deleted by the driver.
 *
 * Either way the volume's name, capacity and parameters are recorded beside
 * it (bucket tags, or the marker's metadata: `volume_record.ts`); a later
 * CreateVolume with the same name but an incompatible capacity or parameters
 * is ALREADY_EXISTS.
 *
 * Deletion never removes user data: a bucket (or prefix) that still holds
 * objects is kept, a warning with the object count is logged, and the call
 * succeeds so the PersistentVolume can go. Transient S3 failures and access
 * errors are returned so the provisioner retries instead of leaking buckets.
 *
 * @module
 */
import type { ServiceImpl } from "./server.ts";
import {
  AbortedError,
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  S3csiError,
  withContext,
} from "../errors/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { sha256Hex } from "../util/hash.ts";
import { type Credentials, isS3Error, type ObjectClient } from "../s3/object_client.ts";
import { requireSupported, unsupportedReason, type VolumeCapabilityMsg } from "./capabilities.ts";
import { credentialsFromSecrets } from "./credentials.ts";
import {
  dedicatedVolume,
  nameUuid,
  parseVolumeId,
  sharedVolume,
  validateBucketName,
  type VolumeRef,
} from "./volume_id.ts";
import { fingerprint, VolumeLocks } from "./volume_locks.ts";
import { checkRecord, encodeRecord, hasRecord, type VolumeSpec } from "./volume_record.ts";
import { type AuthenticationSource, Ctx, Param, RESERVED_PARAM_PREFIX } from "./volume_context.ts";

const log = rootLog.with({ component: "controller" });

/** Creates an S3 client for a credential set (undefined = driver-level) and region. */
export type ClientFactory = (creds: Credentials | undefined, region: string) => ObjectClient;

export interface ControllerConfig {
  /** Default region for buckets and clients. */
  region: string;
  clientFactory: ClientFactory;
}

interface CreateVolumeRequest {
  name?: string;
  capacity_range?: { required_bytes?: number; limit_bytes?: number } | null;
  volume_capabilities?: VolumeCapabilityMsg[];
  parameters?: Record<string, string>;
  secrets?: Record<string, string>;
  volume_content_source?: unknown;
  mutable_parameters?: Record<string, string>;
}

interface StorageParams {
  mode: "dedicated" | "shared";
  bucketName?: string;
  region?: string;
}

/** Parses StorageClass parameters; unknown keys are INVALID_ARGUMENT naming the key. */
export function parseStorageParams(params: Record<string, string> = {}): StorageParams {
  const out: StorageParams = { mode: "dedicated" };
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith(RESERVED_PARAM_PREFIX)) continue;
    switch (key) {
      case Param.bucketNaming:
        if (value !== "dedicated" && value !== "shared") {
          throw new InvalidArgumentError(
            `parameters.${key}`,
            `Invalid parameter "${key}": "${value}" is not one of "dedicated", "shared"`,
          );
        }
        out.mode = value;
        break;
      case Param.bucketName:
        out.bucketName = value;
        break;
      case Param.s3Region:
        if (!/^[a-z0-9-]{1,64}$/.test(value)) {
          throw new InvalidArgumentError(
            `parameters.${key}`,
            `Invalid parameter "${key}": "${value}" is not a region name`,
          );
        }
        out.region = value;
        break;
      default:
        throw new InvalidArgumentError(
          `parameters.${key}`,
          `Unknown parameter "${key}": supported parameters are "${Param.bucketNaming}", "${Param.bucketName}", "${Param.s3Region}" and the "${RESERVED_PARAM_PREFIX}*" keys`,
        );
    }
  }
  if (out.mode === "shared") {
    if (!out.bucketName) {
      throw new InvalidArgumentError(
        `parameters.${Param.bucketName}`,
        `Missing parameter "${Param.bucketName}": it is required with "${Param.bucketNaming}: shared"`,
      );
    }
    const reason = validateBucketName(out.bucketName);
    if (reason) {
      throw new InvalidArgumentError(
        `parameters.${Param.bucketName}`,
        `Invalid parameter "${Param.bucketName}": "${out.bucketName}" ${reason}`,
      );
    }
  } else if (out.bucketName !== undefined) {
    throw new InvalidArgumentError(
      `parameters.${Param.bucketName}`,
      `Invalid parameter "${Param.bucketName}": it is only valid with "${Param.bucketNaming}: shared" (dedicated volumes get their own bucket)`,
    );
  }
  return out;
}

function capacityOf(req: CreateVolumeRequest): { required: number; limit: number } {
  const required = Number(req.capacity_range?.required_bytes ?? 0);
  const limit = Number(req.capacity_range?.limit_bytes ?? 0);
  if (required < 0 || limit < 0) {
    throw new InvalidArgumentError(
      "capacity_range",
      "Invalid capacity_range: byte counts must not be negative",
    );
  }
  if (limit > 0 && required > limit) {
    throw new InvalidArgumentError(
      "capacity_range",
      `Invalid capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`,
    );
  }
  return { required, limit };
}

/**
 * Says what the controller was doing when an S3 call failed outside the
 * expected flow. The status stays the S3 code's (one table, in
 * object_client.ts): AccessDenied is PERMISSION_DENIED, transient failures
 * UNAVAILABLE so the provisioner retries, and what S3 refused for reasons the
 * driver does not classify is INTERNAL, its HTTP status and S3 code in the
 * message.
 */
function s3Failure(action: string, err: unknown): unknown {
  return err instanceof S3csiError ? withContext(`Cannot ${action}`, err) : err;
}

export class ControllerServer {
  readonly #config: ControllerConfig;
  readonly #locks = new VolumeLocks();

  constructor(config: ControllerConfig) {
    this.#config = config;
  }

  /** Handlers keyed by RPC name, for `CsiServer`. */
  handlers(): ServiceImpl {
    return {
      CreateVolume: (req: CreateVolumeRequest) => this.createVolume(req),
      DeleteVolume: (req: { volume_id?: string; secrets?: Record<string, string> }) =>
        this.deleteVolume(req),
      ValidateVolumeCapabilities: (req: ValidateRequest) => this.validateVolumeCapabilities(req),
      ControllerGetCapabilities: () => Promise.resolve(this.getCapabilities()),
    };
  }

  getCapabilities() {
    return { capabilities: [{ rpc: { type: "CREATE_DELETE_VOLUME" } }] };
  }

  async createVolume(req: CreateVolumeRequest) {
    const name = req.name ?? "";
    if (name === "") {
      throw new InvalidArgumentError("name", "Missing name: a volume name is required");
    }
    requireSupported(req.volume_capabilities, "volume_capabilities");
    if (req.volume_content_source && Object.keys(req.volume_content_source).length > 0) {
      const src = req.volume_content_source as { type?: string | null };
      if (src.type) {
        throw new InvalidArgumentError(
          "volume_content_source",
          "Invalid volume_content_source: cloning and snapshots are not supported",
        );
      }
    }
    const params = parseStorageParams(req.parameters);
    const { required, limit } = capacityOf(req);
    const creds = credentialsFromSecrets(req.secrets, "provisioner");
    const region = params.region ?? this.#config.region;
    const uuid = await nameUuid(name);
    const vol = params.mode === "dedicated"
      ? dedicatedVolume(uuid)
      : sharedVolume(params.bucketName!, uuid);
    const capacity = required > 0 ? required : limit;
    // Tag values allow only letters, digits, spaces and _ . : / = + - @.
    const paramsKey = `bucketNaming=${params.mode} s3Region=${params.region ?? ""}`;
    const fp = fingerprint({
      name,
      required,
      limit,
      paramsKey,
      bucket: vol.bucket,
      secret: creds ? await hashCredentials(creds) : "",
    });
    return await this.#locks.run(vol.id, "create", fp, async () => {
      const client = this.#config.clientFactory(creds, region);
      const clog = log.with({ volume: vol.id, name });
      const spec: VolumeSpec = { name, capacity, required, limit, paramsKey };
      if (vol.mode === "dedicated") await this.#createBucket(client, vol, spec, region, clog);
      else await this.#createPrefix(client, vol, spec, clog);
      const context: Record<string, string> = {
        [Ctx.bucketName]: vol.bucket,
        [Ctx.dynamicProvisioning]: "true",
        [Ctx.bucketNaming]: vol.mode,
        [Ctx.authenticationSource]: (creds ? "secret" : "driver") satisfies AuthenticationSource,
      };
      if (vol.prefix) context[Ctx.prefix] = vol.prefix;
      if (params.region) context[Ctx.region] = params.region;
      return { volume: { volume_id: vol.id, capacity_bytes: capacity, volume_context: context } };
    });
  }

  async #createBucket(
    client: ObjectClient,
    vol: VolumeRef,
    want: VolumeSpec,
    region: string,
    clog: typeof log,
  ): Promise<void> {
    let created = false;
    try {
      await client.createBucket(vol.bucket, { region });
      created = true;
      clog.info("bucket created", { bucket: vol.bucket, region });
    } catch (err) {
      if (isS3Error(err, "BucketAlreadyOwnedByYou")) {
        clog.info("bucket already exists", { bucket: vol.bucket });
      } else if (isS3Error(err, "BucketAlreadyExists")) {
        throw new AlreadyExistsError(
          `Cannot create volume "${want.name}": bucket "${vol.bucket}" exists and belongs to another account`,
          { cause: err },
        );
      } else {
        throw s3Failure(`create bucket "${vol.bucket}" for volume "${want.name}"`, err);
      }
    }
    if (!client.putBucketTagging || !client.getBucketTagging) return;
    const tags = await encodeRecord("tags", want);
    if (!created) {
      let existing: Record<string, string>;
      try {
        existing = await client.getBucketTagging(vol.bucket);
      } catch (err) {
        throw s3Failure(`read the tags of bucket "${vol.bucket}"`, err);
      }
      if (hasRecord("tags", existing)) {
        await checkRecord("tags", want, existing, `bucket "${vol.bucket}"`);
        return;
      }
      // A bucket without tags: an earlier attempt died between the two calls. Adopt it.
    }
    try {
      await client.putBucketTagging(vol.bucket, tags);
    } catch (err) {
      if (isS3Error(err) && err.httpStatus === 501) {
        clog.warn(
          "bucket tagging is not supported by this S3 store: compatibility checks disabled",
          {
            bucket: vol.bucket,
          },
        );
        return;
      }
      throw s3Failure(`tag bucket "${vol.bucket}"`, err);
    }
  }

  /**
   * The marker is written with If-None-Match, so of two controllers racing
   * on one name exactly one creates it and the other checks its record.
   * Looking first keeps the check right on stores that ignore the condition.
   */
  async #createPrefix(
    client: ObjectClient,
    vol: VolumeRef,
    want: VolumeSpec,
    clog: typeof log,
  ): Promise<void> {
    try {
      await client.headBucket(vol.bucket);
    } catch (err) {
      if (isS3Error(err, "NoSuchBucket")) {
        throw new InvalidArgumentError(
          `parameters.${Param.bucketName}`,
          `Invalid parameter "${Param.bucketName}": bucket "${vol.bucket}" does not exist (shared mode needs an existing bucket)`,
          { cause: err },
        );
      }
      throw s3Failure(`access bucket "${vol.bucket}"`, err);
    }
    const where = `prefix "${vol.prefix}" in bucket "${vol.bucket}"`;
    const at = { bucket: vol.bucket, prefix: vol.prefix };
    const metadata = await encodeRecord("metadata", want);
    let marker = await this.#headMarker(client, vol, where);
    if (!marker) {
      try {
        await client.putObject(vol.bucket, vol.prefix, new Uint8Array(0), {
          ifNoneMatch: true,
          metadata,
        });
        clog.info("prefix created", at);
        return;
      } catch (err) {
        if (!isS3Error(err, "PreconditionFailed")) throw s3Failure(`create ${where}`, err);
      }
      marker = await this.#headMarker(client, vol, where);
      if (!marker) {
        throw new AbortedError(
          `Cannot create volume "${want.name}": ${where} was created and deleted concurrently, retry`,
        );
      }
    }
    if (hasRecord("metadata", marker.metadata)) {
      await checkRecord("metadata", want, marker.metadata!, where);
      clog.info("prefix already exists", at);
      return;
    }
    if (marker.size > 0) {
      clog.warn("prefix marker holds data: left as is, compatibility checks disabled", at);
      return;
    }
    // A bare marker, from a version that recorded nothing: adopt it.
    try {
      await client.putObject(vol.bucket, vol.prefix, new Uint8Array(0), { metadata });
      clog.info("prefix adopted: its marker now records the volume", at);
    } catch (err) {
      throw s3Failure(`record volume "${want.name}" on ${where}`, err);
    }
  }

  async #headMarker(client: ObjectClient, vol: VolumeRef, where: string) {
    try {
      return await client.headObject(vol.bucket, vol.prefix);
    } catch (err) {
      throw s3Failure(`look up the marker of ${where}`, err);
    }
  }

  async deleteVolume(req: { volume_id?: string; secrets?: Record<string, string> }) {
    const id = req.volume_id ?? "";
    if (id === "") throw new InvalidArgumentError("volume_id", "Missing volume_id");
    const creds = credentialsFromSecrets(req.secrets, "provisioner");
    const vol = parseVolumeId(id);
    if (!vol) {
      log.info("volume ID was not created by this driver: nothing to delete", { volume: id });
      return {};
    }
    const fp = fingerprint({ id, secret: creds ? await hashCredentials(creds) : "" });
    return await this.#locks.run(vol.id, "delete", fp, async () => {
      const client = this.#config.clientFactory(creds, this.#config.region);
      if (vol.mode === "dedicated") await this.#deleteBucket(client, vol);
      else await this.#deletePrefix(client, vol);
      return {};
    });
  }

  async #deleteBucket(client: ObjectClient, vol: VolumeRef): Promise<void> {
    const vlog = log.with({ volume: vol.id, bucket: vol.bucket });
    try {
      await client.deleteBucket(vol.bucket);
      vlog.info("bucket deleted");
    } catch (err) {
      if (isS3Error(err, "NoSuchBucket")) {
        vlog.info("bucket already gone");
        return;
      }
      if (isS3Error(err, "BucketNotEmpty")) {
        const count = await countObjects(client, vol.bucket, "");
        vlog.warn("bucket is not empty: kept to protect its data, volume deleted", {
          objects: count,
        });
        return;
      }
      throw s3Failure(`delete bucket "${vol.bucket}"`, err);
    }
  }

  async #deletePrefix(client: ObjectClient, vol: VolumeRef): Promise<void> {
    const vlog = log.with({ volume: vol.id, bucket: vol.bucket, prefix: vol.prefix });
    let count: string;
    try {
      // The marker itself is the only object allowed under the prefix.
      const page = await client.listObjects(vol.bucket, { prefix: vol.prefix, maxKeys: 2 });
      const others = page.objects.filter((o) => o.key !== vol.prefix);
      if (others.length > 0) {
        count = await countObjects(client, vol.bucket, vol.prefix, vol.prefix);
        vlog.warn("prefix is not empty: kept to protect its data, volume deleted", {
          objects: count,
        });
        return;
      }
      if (page.objects.length === 0) {
        vlog.info("prefix already gone");
        return;
      }
      await client.deleteObject(vol.bucket, vol.prefix);
      vlog.info("prefix deleted");
    } catch (err) {
      if (isS3Error(err, "NoSuchBucket")) {
        vlog.info("bucket already gone");
        return;
      }
      throw s3Failure(`delete prefix "${vol.prefix}" in bucket "${vol.bucket}"`, err);
    }
  }

  async validateVolumeCapabilities(req: ValidateRequest) {
    const id = req.volume_id ?? "";
    if (id === "") throw new InvalidArgumentError("volume_id", "Missing volume_id");
    const caps = req.volume_capabilities ?? [];
    if (caps.length === 0) {
      throw new InvalidArgumentError("volume_capabilities", "Missing volume_capabilities");
    }
    const creds = credentialsFromSecrets(req.secrets, "controller-validate");
    const vol = parseVolumeId(id);
    if (!vol) throw new NotFoundError(`Volume "${id}" does not exist`);
    const client = this.#config.clientFactory(creds, this.#config.region);
    await this.#requireExists(client, vol);
    for (const cap of caps) {
      const reason = unsupportedReason(cap);
      if (reason) return { message: `Unsupported capability: ${reason}` };
    }
    return {
      confirmed: {
        volume_context: req.volume_context ?? {},
        volume_capabilities: caps,
        parameters: req.parameters ?? {},
      },
    };
  }

  async #requireExists(client: ObjectClient, vol: VolumeRef): Promise<void> {
    try {
      if (vol.mode === "dedicated") {
        await client.headBucket(vol.bucket);
        return;
      }
      const marker = await client.headObject(vol.bucket, vol.prefix);
      if (marker) return;
      const page = await client.listObjects(vol.bucket, { prefix: vol.prefix, maxKeys: 1 });
      if (page.objects.length > 0) return;
    } catch (err) {
      if (!isS3Error(err, "NoSuchBucket")) throw s3Failure(`look up volume "${vol.id}"`, err);
    }
    throw new NotFoundError(`Volume "${vol.id}" does not exist`);
  }
}

interface ValidateRequest {
  volume_id?: string;
  volume_context?: Record<string, string>;
  volume_capabilities?: VolumeCapabilityMsg[];
  parameters?: Record<string, string>;
  secrets?: Record<string, string>;
}

/** Counts objects under `prefix` (stops at 10,000 and says so) for the warning log line. */
async function countObjects(
  client: ObjectClient,
  bucket: string,
  prefix: string,
  exclude?: string,
): Promise<string> {
  let count = 0;
  let token: string | undefined;
  try {
    for (let pages = 0; pages < 10; pages++) {
      const page = await client.listObjects(bucket, {
        prefix,
        continuationToken: token,
        maxKeys: 1000,
      });
      count += page.objects.filter((o) => o.key !== exclude).length;
      token = page.nextContinuationToken;
      if (!token) return String(count);
    }
    return `${count}+`;
  } catch {
    return count > 0 ? `${count}+` : "unknown";
  }
}

/** A short digest that tells credential sets apart without revealing them. */
async function hashCredentials(c: Credentials): Promise<string> {
  const digest = await sha256Hex(`${c.accessKeyId}\0${c.secretAccessKey}\0${c.sessionToken ?? ""}`);
  return digest.slice(0, 16);
}
