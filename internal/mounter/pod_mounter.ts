/**
 * The `pod` Mounter: a source mount served by a Mountpoint Pod, the pod the
 * reconciler runs for the mount's sharing key on this node.
 *
 * A mount, in order, every wait bounded:
 * 1. Ask the `AttachmentLookup` (polling while the answer is "not yet")
 *    which Mountpoint Pod serves the workload pod being published; no
 *    answer in time is UNAVAILABLE, naming the attachment waited for.
 * 2. Connect to the pod's socket in its comm directory on the host
 *    (`hostCommDir`); no socket in time is UNAVAILABLE too.
 * 3. Write `CREDENTIALS_FILE` there (0600, owned by the pod's user) when the
 *    spec has credentials.
 * 4. Mount FUSE on the source (the same code as the `process` Mounter,
 *    `source.ts`), send a clone of the fd with the `MountRequest`, and wait
 *    for the reply. A failure is reported with the pod's own line, verbatim,
 *    and leaves nothing mounted.
 *
 * The node keeps the original /dev/fuse fd (the keeper) and the connection
 * for as long as the source is mounted. The keeper keeps the kernel
 * connection alive when the Mountpoint Pod's process dies: requests wait for
 * a server instead of failing with ENOTCONN. The connection tells the node
 * the server is gone (the peer hangs up). Handing a new server a new clone
 * of the keeper is the live-recovery issue's; until then, the next
 * `ensureMounted` of a source whose server is gone drops the keeper and
 * mounts again, as the `process` Mounter does with a dead child.
 *
 * `ensureMounted` on a healthy source only rewrites the credentials file,
 * which the Mountpoint Pod re-reads (rotation without a remount).
 * `unmount` unmounts the source, which ends the pod's session; then the
 * keeper is closed.
 *
 * Keepers live in this process only. After a node plugin restart they are
 * gone: a source still served by its Mountpoint Pod keeps working, and its
 * comm directory is found again from the state directory for rotation, but
 * it no longer survives its server's death (the live-recovery issue).
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { FailedPreconditionError, UnavailableError } from "../errors/mod.ts";
import { checkMount, unmount } from "../fuse/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { writeCredentialsFile } from "../mount/credentials.ts";
import type { AttachmentLookup, MountpointPodRef } from "../podmount/attachment_lookup.ts";
import {
  ATTACHMENT,
  CA_BUNDLE_FILE,
  COMM_MOUNT_PATH,
  CREDENTIALS_FILE,
  CREDENTIALS_PROFILE,
  hostCommDir,
  METRICS_SOCKET,
  MOUNT_REQUEST_VERSION,
  MOUNTPOINT_NAMESPACE,
  type MountReply,
  SOCKET_NAME,
} from "../podmount/contract.ts";
import { connectMountpoint, handOver, type MountpointConnection } from "../podmount/handoff.ts";
import { peerGone, waitPeerGone, WireTimeout } from "../podmount/wire.ts";
import { close } from "../sys/libc.ts";
import type { Mounter, MountSpec } from "./mounter.ts";
import { recordMetricsSource } from "./metrics_sources.ts";
import {
  detachSource,
  mountSource,
  prepareStateDir,
  sourceMountArgs,
  tuneSource,
} from "./source.ts";

const log = rootLog.with({ component: "mounter" });

/** The state-directory file that remembers a source's comm directory. */
const COMM_RECORD = "comm";

export interface PodMounterConfig extends S3Connection {
  /** This node's name, as attachments record it. */
  nodeName: string;
  /** The kubelet's root directory, where Mountpoint Pods' comm directories are. */
  kubeletPath: string;
  lookup: AttachmentLookup;
  /** How long to wait for the attachment, then for the Mountpoint Pod's socket. */
  attachTimeoutMs?: number;
  /** How long a mount may take to become ready once handed over. */
  startTimeoutMs?: number;
  /** How often to ask the lookup again while the answer is "not yet". */
  pollMs?: number;
  /** How long an unmount waits for the Mountpoint Pod to end its session. */
  stopTimeoutMs?: number;
}

interface Served {
  /** The node's own /dev/fuse fd of the connection. */
  keeper: number;
  conn: MountpointConnection;
  commDir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class PodMounter implements Mounter {
  readonly #config: PodMounterConfig;
  readonly #served = new Map<string, Served>();

  constructor(config: PodMounterConfig) {
    this.#config = config;
  }

  async ensureMounted(spec: MountSpec): Promise<void> {
    await prepareStateDir(spec.stateDir);
    const served = this.#served.get(spec.sourceDir);
    if (served) {
      if (!(await peerGone(served.conn.sock))) {
        await this.#writeCredentials(spec, served.commDir);
        return;
      }
      log.warn("the Mountpoint Pod serving this source is gone: mounting again", {
        source: spec.sourceDir,
      });
      this.#forget(spec.sourceDir);
      unmount(spec.sourceDir, { lazy: true });
    } else {
      const health = await checkMount(spec.sourceDir);
      if (health === "ok") {
        // Mounted before this node plugin started, and still served.
        const commDir = await Deno.readTextFile(`${spec.stateDir}/${COMM_RECORD}`).catch(() => "");
        if (commDir) await this.#writeCredentials(spec, commDir);
        else {log.warn("no comm directory recorded: credentials not refreshed", {
            source: spec.sourceDir,
          });}
        return;
      }
      if (health === "stale") {
        log.warn("source mount is dead: remounting", { source: spec.sourceDir });
        unmount(spec.sourceDir, { lazy: true });
      }
    }
    await this.#mount(spec);
  }

  async #mount(spec: MountSpec): Promise<void> {
    const mlog = log.with({ volume: spec.volumeId, mount: spec.mountId, source: spec.sourceDir });
    const what = `Cannot mount bucket "${spec.bucket}" for volume "${spec.volumeId}"`;
    if (!spec.workloadPodUid) {
      throw new FailedPreconditionError(
        `${what}: the pod mounter needs the workload pod's UID (volume context "csi.storage.k8s.io/pod.uid"): set podInfoOnMount: true on the CSIDriver`,
      );
    }
    const attachTimeout = this.#config.attachTimeoutMs ?? 60_000;
    const deadline = Date.now() + attachTimeout;
    const pod = await this.#waitAttachment(what, spec.volumeId, spec.workloadPodUid, deadline);
    const commDir = hostCommDir(this.#config.kubeletPath, pod.uid);
    let conn: MountpointConnection;
    try {
      conn = await connectMountpoint(commDir, deadline);
    } catch (err) {
      if (!(err instanceof WireTimeout)) throw err;
      throw new UnavailableError(
        `${what}: timed out after ${
          attachTimeout / 1000
        } s waiting for Mountpoint Pod "${MOUNTPOINT_NAMESPACE}/${pod.name}" to listen on "${commDir}/${SOCKET_NAME}"`,
      );
    }
    let keeper = -1;
    let reply: MountReply;
    try {
      await Deno.writeTextFile(`${spec.stateDir}/${COMM_RECORD}`, commDir);
      await this.#writeCredentials(spec, commDir, conn.owner);
      keeper = await mountSource(spec);
      const timeoutMs = this.#config.startTimeoutMs ?? 60_000;
      reply = await handOver(conn, commDir, keeper, {
        version: MOUNT_REQUEST_VERSION,
        bucket: spec.bucket,
        args: sourceMountArgs(spec, await this.#podConnection(commDir)),
        authenticationSource: spec.authenticationSource,
      }, Date.now() + timeoutMs).catch((err) => ({
        ok: false as const,
        error: err instanceof WireTimeout
          ? `the Mountpoint Pod "${MOUNTPOINT_NAMESPACE}/${pod.name}" did not become ready in ${
            timeoutMs / 1000
          } s`
          : (err as Error).message,
      }));
    } catch (err) {
      this.#undo(spec.sourceDir, keeper, conn);
      throw err;
    }
    if (!reply.ok) {
      this.#undo(spec.sourceDir, keeper, conn);
      await Deno.remove(spec.sourceDir).catch(() => {});
      mlog.error("mount failed", { reason: reply.error, mountpointPod: pod.name });
      throw new FailedPreconditionError(`${what}: ${reply.error}`);
    }
    this.#served.set(spec.sourceDir, { keeper, conn, commDir });
    await recordMetricsSource(spec.stateDir, spec.volumeId, `${commDir}/${METRICS_SOCKET}`);
    await tuneSource(spec.sourceDir, mlog);
    mlog.info("mounted by a Mountpoint Pod", { pod: pod.name, bucket: spec.bucket });
  }

  /**
   * Polls the lookup until it names the Mountpoint Pod of `workloadPodUid`,
   * or `deadline`; the error then starts with `what`.
   */
  async #waitAttachment(
    what: string,
    volumeId: string,
    workloadPodUid: string,
    deadline: number,
  ): Promise<MountpointPodRef> {
    const { lookup, nodeName } = this.#config;
    const query = { nodeName, volumeId, workloadPodUid };
    const pollMs = this.#config.pollMs ?? 500;
    const started = Date.now();
    let lastError: unknown;
    while (true) {
      try {
        const found = await lookup.find(query);
        if (found) return found;
      } catch (err) {
        lastError = err;
        log.debug("attachment lookup failed", { error: err, volume: volumeId });
      }
      if (Date.now() + pollMs > deadline) {
        const waited = Math.round((Date.now() - started) / 1000);
        throw new UnavailableError(
          `${what}: timed out after ${waited} s waiting for a ${ATTACHMENT.kind} on node "${nodeName}" that lists pod "${workloadPodUid}" and a Mountpoint Pod for it${
            lastError ? ` (last lookup error: ${(lastError as Error).message})` : ""
          }`,
        );
      }
      await sleep(pollMs);
    }
  }

  /**
   * Rewrites the credentials file in `commDir`, owned by `owner` or by the
   * owner of the file it replaces.
   */
  /**
   * The driver's S3 connection as the Mountpoint Pod sees it: a custom CA is
   * copied into the comm directory (a public certificate: world-readable).
   */
  async #podConnection(commDir: string): Promise<S3Connection> {
    const ca = this.#config.caBundlePath;
    if (!ca) return this.#config;
    const tmp = `${commDir}/${CA_BUNDLE_FILE}.tmp`;
    await Deno.copyFile(ca, tmp);
    await Deno.chmod(tmp, 0o644);
    await Deno.rename(tmp, `${commDir}/${CA_BUNDLE_FILE}`);
    return { ...this.#config, caBundlePath: `${COMM_MOUNT_PATH}/${CA_BUNDLE_FILE}` };
  }

  async #writeCredentials(
    spec: MountSpec,
    commDir: string,
    owner?: { uid: number; gid: number },
  ): Promise<void> {
    if (!spec.credentials) return;
    const path = `${commDir}/${CREDENTIALS_FILE}`;
    if (!owner) {
      const st = await Deno.stat(path).catch(() => undefined);
      owner = { uid: st?.uid ?? 0, gid: st?.gid ?? 0 };
    }
    await writeCredentialsFile(path, CREDENTIALS_PROFILE, spec.credentials, owner);
  }

  /** Takes down a mount that did not become ready. */
  #undo(sourceDir: string, keeper: number, conn: MountpointConnection): void {
    if (keeper >= 0) {
      unmount(sourceDir, { lazy: true });
      close(keeper);
    }
    close(conn.sock);
  }

  /** Closes what this process holds of a source. */
  #forget(sourceDir: string): Served | undefined {
    const served = this.#served.get(sourceDir);
    if (!served) return undefined;
    this.#served.delete(sourceDir);
    close(served.conn.sock);
    close(served.keeper);
    return served;
  }

  async unmount(sourceDir: string, stateDir: string): Promise<void> {
    detachSource(sourceDir);
    const served = this.#served.get(sourceDir);
    if (served) {
      // The unmount ends the session: the Mountpoint Pod completes pending uploads and hangs up.
      const ended = await waitPeerGone(
        served.conn.sock,
        Date.now() + (this.#config.stopTimeoutMs ?? 30_000),
      );
      if (!ended) log.warn("the Mountpoint Pod did not end its session", { source: sourceDir });
      this.#forget(sourceDir);
    }
    await Deno.remove(sourceDir).catch(() => {});
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}
