/**
 * CSI Node service: publishes S3 volumes into pods.
 *
 * NodePublishVolume resolves what to mount (bucket and prefix from the
 * volume context of a dynamic volume or the attributes of a static PV, mount
 * options with their policy, read-only, fsGroup, credentials), derives a
 * sharing key from everything but the credential values, and asks the
 * Mounter for a healthy FUSE mount on the key's source directory. It then
 * bind-mounts that source onto the pod's target. Publishes with the same
 * effective options share one FUSE mount; the credential values are left out
 * of the key so that a rotated secret updates the running mount instead of
 * starting a second one.
 *
 * Every path and mount-table operation goes through `TargetOps` (health,
 * which source a target shows and whether read-only, whether a source still
 * has targets, target directories, bind mounts), so this module holds only
 * the decisions and runs against in-memory doubles in its unit tests. A
 * source is unmounted when its last target goes.
 *
 * Read-only has two levels. A reader-only access mode or the `read-only`
 * mount option is the PV's, the same for every workload, so it is an option
 * of the source. The publish's `readonly` (a pod's readOnly, or the PV's
 * csi.readOnly the kubelet folds into it) is one workload's: it only makes
 * that target's bind mount read-only, so a read-only and a writable workload
 * share one source, as they share one Mountpoint Pod (the reconciler's
 * sharing key cannot see a pod's readOnly).
 *
 * Idempotency: publishing onto a target that already shows the right source
 * with the right read-only flag refreshes the credentials and succeeds; onto
 * a target that shows another of our sources (other options or volume
 * attributes), or the right one with the other flag, is ALREADY_EXISTS, as
 * the CSI spec asks, rather than a swap under a running pod; a target left
 * behind by a dead mount (ENOTCONN) or mounted from something that is not
 * ours is cleaned and published again. Unpublishing a missing or unmounted
 * target succeeds and removes the directory. Calls on one volume run one at
 * a time: an identical concurrent call joins the running one, a different
 * one gets ABORTED.
 *
 * @module
 */
import type { VolumeSource } from "../metrics/mod.ts";
import { metricsSources } from "../mounter/metrics_sources.ts";
import {
  AlreadyExistsError,
  InternalError,
  InvalidArgumentError,
  UnimplementedError,
} from "../errors/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { applyFsGroup, type MountOptions, parseMountOptions } from "../mounter/mount_options.ts";
import type { Mounter, MountSpec } from "../mounter/mounter.ts";
import type { TargetOps } from "../mounter/target_ops.ts";
import type { Credentials } from "../s3/object_client.ts";
import { READER_ONLY_MODES, unsupportedReason, type VolumeCapabilityMsg } from "./capabilities.ts";
import { credentialsFromSecrets } from "./credentials.ts";
import type { ServiceImpl } from "./server.ts";
import { type AuthenticationSource, Ctx } from "./volume_context.ts";
import { validateBucketName } from "./volume_id.ts";
import { fingerprint, SerialQueue, VolumeLocks } from "./volume_locks.ts";
import { DRIVER_NAME } from "../version.ts";
import { normalisePath } from "../util/path.ts";
import { sha256Hex } from "../util/hash.ts";

const log = rootLog.with({ component: "node" });

export interface NodeConfig {
  nodeId: string;
  /** The kubelet's root directory; targets must be inside it. */
  kubeletPath: string;
  mounter: Mounter;
  targets: TargetOps;
  /** Driver-level credentials, used when a volume does not bring its own. */
  driverCredentials?: Credentials;
}

interface PublishRequest {
  volume_id?: string;
  target_path?: string;
  staging_target_path?: string;
  volume_capability?: VolumeCapabilityMsg | null;
  readonly?: boolean;
  secrets?: Record<string, string>;
  volume_context?: Record<string, string>;
}

export class NodeServer {
  readonly #config: NodeConfig;
  /** Per volume and target: a retry joins its twin, a conflicting call is ABORTED. */
  readonly #locks = new VolumeLocks();
  /** Per source mount: the targets of one mount are published and released one at a time. */
  readonly #sources = new SerialQueue();
  readonly #pluginDir: string;

  constructor(config: NodeConfig) {
    this.#config = { ...config, kubeletPath: normalisePath(config.kubeletPath) };
    this.#pluginDir = `${this.#config.kubeletPath}/plugins/${DRIVER_NAME}`;
  }

  /** Where FUSE source mounts live. */
  get #sourceRoot(): string {
    return `${this.#pluginDir}/mnt`;
  }

  /** At start: the mounter takes charge again of the mounts an earlier node left serving. */
  async recover(): Promise<void> {
    try {
      await this.#config.mounter.recover?.(this.#stateRoot);
    } catch (err) {
      log.warn("cannot recover the mounts of an earlier node instance", { error: err });
    }
  }

  /** The mounts serving on this node whose metrics the node's endpoint gathers. */
  metricsSources(): Promise<VolumeSource[]> {
    return metricsSources(this.#stateRoot);
  }

  /** Where per-mount private state lives (credentials, status, logs). */
  get #stateRoot(): string {
    return `${this.#pluginDir}/state`;
  }

  /** The only place a `cache` mount option may point to. */
  get #cacheRoot(): string {
    return `${this.#pluginDir}/cache`;
  }

  handlers(): ServiceImpl {
    return {
      NodePublishVolume: (req: PublishRequest) => this.publish(req),
      NodeUnpublishVolume: (req: { volume_id?: string; target_path?: string }) =>
        this.unpublish(req),
      NodeGetCapabilities: () =>
        Promise.resolve({
          capabilities: [
            { rpc: { type: "VOLUME_MOUNT_GROUP" } },
            { rpc: { type: "SINGLE_NODE_MULTI_WRITER" } },
          ],
        }),
      NodeGetInfo: () => Promise.resolve({ node_id: this.#config.nodeId, max_volumes_per_node: 0 }),
      // GET_VOLUME_STATS is not advertised, so the kubelet never asks; a client that asks anyway
      // learns why instead of getting a made-up capacity.
      NodeGetVolumeStats: () =>
        Promise.reject(
          new UnimplementedError(
            "NodeGetVolumeStats is not offered: an S3 bucket has no capacity, and its usage " +
              "would take a full listing; see the s3csi_* metrics for what each mount does",
          ),
        ),
    };
  }

  #targetPath(raw: string | undefined): string {
    if (!raw) throw new InvalidArgumentError("target_path", "Missing target_path");
    if (!raw.startsWith("/")) {
      throw new InvalidArgumentError("target_path", `Invalid target_path "${raw}": not absolute`);
    }
    const path = normalisePath(raw);
    const root = this.#config.kubeletPath;
    if (!path.startsWith(root + "/") || path.startsWith(this.#pluginDir + "/")) {
      throw new InvalidArgumentError(
        "target_path",
        `Invalid target_path "${raw}": it must be inside the kubelet directory "${root}"`,
      );
    }
    return path;
  }

  /** `#targetPath`, then what is on the file system: no link out of the kubelet directory, no file. */
  async #confinedTarget(raw: string | undefined): Promise<string> {
    const target = this.#targetPath(raw);
    const why = await this.#config.targets.confine(target, this.#config.kubeletPath);
    if (why) throw new InvalidArgumentError("target_path", `Invalid target_path "${raw}": ${why}`);
    return target;
  }

  /** Resolves the mount spec of a publish request (no side effects). */
  async #resolve(req: PublishRequest, target: string): Promise<{
    spec: MountSpec;
    readOnly: boolean;
  }> {
    const volumeId = req.volume_id!;
    const cap = req.volume_capability;
    if (!cap) throw new InvalidArgumentError("volume_capability", "Missing volume_capability");
    const reason = unsupportedReason(cap);
    if (reason) {
      throw new InvalidArgumentError("volume_capability", `Invalid volume_capability: ${reason}`);
    }
    const ctx = req.volume_context ?? {};
    const bucket = ctx[Ctx.bucketName] ?? "";
    if (bucket === "") {
      throw new InvalidArgumentError(
        `volume_context.${Ctx.bucketName}`,
        `Missing volume attribute "${Ctx.bucketName}": a static PersistentVolume must name its bucket in spec.csi.volumeAttributes`,
      );
    }
    const bucketProblem = validateBucketName(bucket);
    if (bucketProblem) {
      throw new InvalidArgumentError(
        `volume_context.${Ctx.bucketName}`,
        `Invalid volume attribute "${Ctx.bucketName}": "${bucket}" ${bucketProblem}`,
      );
    }
    const authRaw = ctx[Ctx.authenticationSource] ?? "";
    if (authRaw !== "" && authRaw !== "driver" && authRaw !== "secret") {
      throw new InvalidArgumentError(
        `volume_context.${Ctx.authenticationSource}`,
        `Invalid volume attribute "${Ctx.authenticationSource}": "${authRaw}" is not "driver" or "secret"`,
      );
    }
    let options: MountOptions = parseMountOptions(cap.mount?.mount_flags ?? [], {
      cacheRoot: this.#cacheRoot,
    });
    // Only the PV-level read-only is the source's; `req.readonly` is this target's bind alone,
    // as the reconciler's sharing key cannot see it (see the module note).
    const sourceReadOnly = READER_ONLY_MODES.has(cap.access_mode?.mode ?? "") || options.readOnly;
    const readOnly = sourceReadOnly || req.readonly === true;
    options = applyFsGroup(
      { ...options, readOnly: sourceReadOnly },
      cap.mount?.volume_mount_group || undefined,
    );
    // A dynamic shared-bucket volume lives under its own prefix; a prefix option nests inside it.
    const volumePrefix = ctx[Ctx.prefix] ?? "";
    if (volumePrefix !== "" || options.prefix !== undefined) {
      options = { ...options, prefix: `${volumePrefix}${options.prefix ?? ""}` };
    }
    if (ctx[Ctx.region] && options.region === undefined) {
      options = { ...options, region: ctx[Ctx.region] };
    }
    let authenticationSource: AuthenticationSource = "driver";
    let credentials: Credentials | undefined;
    if (authRaw === "secret") {
      credentials = credentialsFromSecrets(req.secrets, "node-publish");
      if (credentials) authenticationSource = "secret";
      else {
        log.warn(
          "authenticationSource is secret but no node-publish secret was given: using driver credentials",
          { volume: volumeId, target },
        );
      }
    }
    credentials ??= this.#config.driverCredentials;
    const key = fingerprint({ volumeId, bucket, options, authenticationSource });
    const mountId = (await sha256Hex(key)).slice(0, 32);
    const spec: MountSpec = {
      volumeId,
      bucket,
      options,
      authenticationSource,
      sourceDir: `${this.#sourceRoot}/${mountId}`,
      stateDir: `${this.#stateRoot}/${mountId}`,
      mountId,
    };
    if (credentials) spec.credentials = credentials;
    if (ctx[Ctx.podUid]) spec.workloadPodUid = ctx[Ctx.podUid];
    if (cap.mount?.volume_mount_group) spec.fsGroup = cap.mount.volume_mount_group;
    return { spec, readOnly };
  }

  async publish(req: PublishRequest) {
    const volumeId = checkedVolumeId(req.volume_id);
    const target = await this.#confinedTarget(req.target_path);
    const { spec, readOnly } = await this.#resolve(req, target);
    const fp = fingerprint({ target, mountId: spec.mountId, readOnly });
    const key = lockKey(volumeId, target);
    return await this.#locks.run(
      key,
      "publish",
      fp,
      () =>
        this.#sources.run(spec.sourceDir, async () => {
          const { mounter, targets } = this.#config;
          const vlog = log.with({ volume: volumeId, target, mount: spec.mountId });
          const state = await targets.check(target);
          if (state === "ok") {
            const current = await targets.sourceOf(target, this.#sourceRoot);
            if (current === spec.sourceDir && await targets.readOnly(target) === readOnly) {
              // Already published: refresh credentials (rotation) and succeed.
              await mounter.ensureMounted(spec);
              vlog.info("target already published");
              return {};
            }
            if (current !== undefined) {
              const shown = current === spec.sourceDir
                ? `${readOnly ? "writable" : "read-only"} on the same mount`
                : `mount "${current.slice(this.#sourceRoot.length + 1)}"`;
              throw new AlreadyExistsError(
                `Cannot publish volume "${volumeId}" at "${target}": the target is already published with other options (${shown}); unpublish it first`,
              );
            }
            vlog.warn("target is mounted from something else: remounting");
            await targets.unmount(target, true);
          } else if (state === "stale") {
            vlog.warn("target shows a dead mount (transport endpoint is not connected): cleaning");
            await targets.unmount(target, true);
          }
          await mounter.ensureMounted(spec);
          try {
            await targets.makeTarget(target);
            await targets.bind(spec.sourceDir, target, readOnly);
          } catch (err) {
            await this.#releaseSourceIfUnused(spec.sourceDir).catch(() => {});
            await targets.removeTarget(target).catch(() => {});
            throw new InternalError(
              `Cannot publish volume "${volumeId}" at "${target}": ${(err as Error).message}`,
              { cause: err },
            );
          }
          vlog.info("published", {
            bucket: spec.bucket,
            prefix: spec.options.prefix ?? "",
            readOnly,
            authenticationSource: spec.authenticationSource,
          });
          return {};
        }),
    );
  }

  async unpublish(req: { volume_id?: string; target_path?: string }) {
    const volumeId = checkedVolumeId(req.volume_id);
    const target = await this.#confinedTarget(req.target_path);
    const key = lockKey(volumeId, target);
    return await this.#locks.run(key, "unpublish", fingerprint({ target }), async () => {
      const { targets } = this.#config;
      const vlog = log.with({ volume: volumeId, target });
      const state = await targets.check(target);
      const source = state === "ok" || state === "stale"
        ? await targets.sourceOf(target, this.#sourceRoot)
        : undefined;
      // Under the source's queue: no publish binds to it between the check of its use and its release.
      return await this.#sources.run(source ?? target, async () => {
        if (state === "ok" || state === "stale") {
          await targets.unmount(target, state === "stale");
          vlog.info("target unmounted");
        }
        try {
          await targets.removeTarget(target);
        } catch (err) {
          throw new InternalError(`Cannot remove target "${target}": ${(err as Error).message}`, {
            cause: err,
          });
        }
        if (source) await this.#releaseSourceIfUnused(source);
        return {};
      });
    }, `volume "${volumeId}" at "${target}"`);
  }

  /** Unmounts a source mount once no target shows it any more (under the source's queue). */
  async #releaseSourceIfUnused(sourceDir: string): Promise<void> {
    if (await this.#config.targets.inUse(sourceDir)) return;
    const mountId = sourceDir.slice(this.#sourceRoot.length + 1);
    await this.#config.mounter.unmount(sourceDir, `${this.#stateRoot}/${mountId}`);
    log.info("source mount released", { source: sourceDir });
  }
}

/** The lock of a volume's call on one target: distinct targets of a volume proceed at once. */
function lockKey(volumeId: string, target: string): string {
  return `${volumeId}\0${target}`;
}

/** The longest volume ID taken: far above what a CO sends, far below what would flood a log line. */
const MAX_VOLUME_ID = 1024;

/**
 * A node call's volume ID, which the node uses in locks, logs and state: an
 * opaque string, but never empty, never with control characters (NUL,
 * newlines), never huge.
 */
function checkedVolumeId(raw: string | undefined): string {
  const id = raw ?? "";
  if (id === "") throw new InvalidArgumentError("volume_id", "Missing volume_id");
  if ([...id].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new InvalidArgumentError(
      "volume_id",
      `Invalid volume_id ${JSON.stringify(id.slice(0, 80))}: it holds control characters`,
    );
  }
  if (new TextEncoder().encode(id).byteLength > MAX_VOLUME_ID) {
    throw new InvalidArgumentError(
      "volume_id",
      `Invalid volume_id: longer than ${MAX_VOLUME_ID} bytes`,
    );
  }
  return id;
}
