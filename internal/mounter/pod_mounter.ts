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
 * a server instead of failing with ENOTCONN. A watcher on the connection
 * sees the server go (the peer hangs up) and recovers the live mount:
 * 1. The journal (`JOURNAL_FILE`) is copied from the comm directory into the
 *    state directory. A pod that hands over (SIGTERM: deleted, evicted,
 *    upgraded) says so first (`HAND_OVER_NOTICE`) and waits for the copy,
 *    because its emptyDir goes with it; a crashed container leaves the
 *    journal where its restart finds it.
 * 2. The lookup is asked again, bounded by `recoverTimeoutMs`, for the pod
 *    serving the workload: the restarted container of the same pod (same
 *    comm directory), or the pod the reconciler created in its place, into
 *    whose comm directory the journal is copied.
 * 3. A new clone goes there with `takeOver`: the pod replays the journal
 *    and continues the session; the calls the kernel queued meanwhile are
 *    answered. If no pod comes in time or the takeover is refused, the
 *    keeper is closed: the mount turns stale and the next `ensureMounted`
 *    mounts again.
 *
 * `ensureMounted` on a healthy source only rewrites the credentials file,
 * which the Mountpoint Pod re-reads (rotation without a remount); during a
 * recovery it waits for its outcome first. `unmount` unmounts the source,
 * which ends the pod's session; then the keeper is closed.
 *
 * After each hand-over the node gives the pod a spare clone (contract step
 * 6). A node plugin that restarts has lost its keepers: `recover()` finds
 * each source it served (`served.json` in the state directory), takes a
 * keeper back from the pod's keeper socket, and watches that connection as
 * it watched the first, so the mount survives its pod again. A source it
 * cannot take back keeps working until its pod goes, and is mounted again
 * by the next publish after that.
 *
 * @module
 */
import type { S3Connection } from "../cli/mod.ts";
import { FailedPreconditionError, UnavailableError } from "../errors/mod.ts";
import { checkMount, unmount } from "../fuse/mod.ts";
import { log as rootLog } from "../log/mod.ts";
import { readCredentialsFile, writeCredentialsFile } from "../mount/credentials.ts";
import type { AttachmentLookup, MountpointPodRef } from "../podmount/attachment_lookup.ts";
import {
  ATTACHMENT,
  CA_BUNDLE_FILE,
  COMM_MOUNT_PATH,
  CREDENTIALS_FILE,
  CREDENTIALS_PROFILE,
  hostCommDir,
  isHandOverNotice,
  KEEPER_SPARE,
  METRICS_SOCKET,
  MOUNT_REQUEST_VERSION,
  MOUNTPOINT_NAMESPACE,
  type MountReply,
  type MountRequest,
  SOCKET_NAME,
} from "../podmount/contract.ts";
import { connectMountpoint, handOver, type MountpointConnection } from "../podmount/handoff.ts";
import { receiveLine, sendLine, WireTimeout } from "../podmount/wire.ts";
import { close } from "../sys/libc.ts";
import { cloneFuseFd } from "../fuse/mod.ts";
import { takeKeeper } from "../takeover/keeper.ts";
import type { Mounter, MountSpec } from "./mounter.ts";
import { recordMetricsSource } from "./metrics_sources.ts";
import {
  COMM_RECORD,
  placeJournal,
  readServedRecord,
  saveJournal,
  type ServedRecord,
  writeServedRecord,
} from "./pod_state.ts";
import {
  detachSource,
  mountSource,
  prepareStateDir,
  sourceMountArgs,
  tuneSource,
} from "./source.ts";

const log = rootLog.with({ component: "mounter" });

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
  /** How long a live mount whose server went waits for a new one before it is given up. */
  recoverTimeoutMs?: number;
}

interface Served {
  readonly spec: MountSpec;
  /** The node's own /dev/fuse fd of the connection. */
  readonly keeper: number;
  /** The serving pod's connection; its watcher alone reads and closes it. */
  conn: MountpointConnection;
  commDir: string;
  pod: MountpointPodRef;
  /** Resolves when the current server hung up (or the watcher was released). */
  watched: Promise<void>;
  /** The server is gone and no successor serves yet. */
  gone: boolean;
  /** Settles once a recovery under way has ended (served again, or given up). */
  recovering?: Promise<void>;
  unmounting: boolean;
  /** This process let go of the mount: the watcher stops, no recovery. */
  released: boolean;
}

/** A source served by `pod`, before its watcher starts. */
function newServed(
  spec: MountSpec,
  keeper: number,
  conn: MountpointConnection,
  commDir: string,
  pod: MountpointPodRef,
): Served {
  const state = { watched: Promise.resolve(), gone: false, unmounting: false, released: false };
  return { spec, keeper, conn, commDir, pod, ...state };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a hand-over notice is answered within; the pod waits 5 s. */
const ACK_TIMEOUT_MS = 2_000;
/** How long one attempt to reach a pod during a recovery may take before the lookup is asked again. */
const RECOVER_ATTEMPT_MS = 2_000;

export class PodMounter implements Mounter {
  readonly #config: PodMounterConfig;
  readonly #served = new Map<string, Served>();

  constructor(config: PodMounterConfig) {
    this.#config = config;
  }

  async ensureMounted(spec: MountSpec): Promise<void> {
    await prepareStateDir(spec.stateDir);
    let served = this.#served.get(spec.sourceDir);
    if (served?.recovering) await served.recovering;
    served = this.#served.get(spec.sourceDir);
    if (served) {
      if (!served.gone) {
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

  /** The request that hands `spec`'s connection to the pod of `commDir`. */
  async #request(spec: MountSpec, commDir: string, takeOver: boolean): Promise<MountRequest> {
    return {
      version: MOUNT_REQUEST_VERSION,
      bucket: spec.bucket,
      args: sourceMountArgs(spec, await this.#podConnection(commDir)),
      authenticationSource: spec.authenticationSource,
      ...(takeOver ? { takeOver: true } : {}),
    };
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
      reply = await handOver(
        conn,
        commDir,
        keeper,
        await this.#request(spec, commDir, false),
        Date.now() + timeoutMs,
      ).catch((err) => ({
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
    const served = newServed(spec, keeper, conn, commDir, pod);
    this.#served.set(spec.sourceDir, served);
    await this.#giveSpare(served);
    this.#watch(served);
    await writeServedRecord(served);
    await recordMetricsSource(spec.stateDir, spec.volumeId, `${commDir}/${METRICS_SOCKET}`);
    await tuneSource(spec.sourceDir, mlog);
    mlog.info("mounted by a Mountpoint Pod", { pod: pod.name, bucket: spec.bucket });
  }

  /**
   * Watches the serving pod's connection until it hangs up: answers a
   * hand-over notice once the journal is copied, then, unless the source
   * is going away, recovers the live mount. The watcher is the only reader
   * of the socket, and closes it.
   */
  #watch(served: Served): void {
    const conn = served.conn;
    const mlog = log.with({ source: served.spec.sourceDir, pod: served.pod.name });
    served.watched = (async () => {
      let handedOver = false;
      try {
        while (!served.released) {
          let got: { line: string; fd: number };
          try {
            got = await receiveLine(conn.sock, Date.now() + 1000, "a notice");
          } catch (err) {
            if (err instanceof WireTimeout) continue;
            break; // hung up
          }
          if (got.fd >= 0) close(got.fd);
          if (!isHandOverNotice(got.line)) continue;
          handedOver = true;
          mlog.info("the Mountpoint Pod hands its mount over: keeping its journal");
          await saveJournal(served.commDir, served.spec);
          await sendLine(conn.sock, { ok: true }, Date.now() + ACK_TIMEOUT_MS).catch(() => {});
        }
      } finally {
        close(conn.sock);
      }
      if (served.released || served.unmounting) return;
      served.gone = true;
      if (!handedOver) {
        mlog.warn("the Mountpoint Pod serving a live mount is gone: waiting for its successor");
        await saveJournal(served.commDir, served.spec);
      }
      served.recovering = this.#recover(served);
    })();
  }

  /** Step 2 and 3 of the module note: hands the live connection to the pod that serves next. */
  async #recover(served: Served): Promise<void> {
    const { spec } = served;
    const mlog = log.with({ volume: spec.volumeId, source: spec.sourceDir });
    const started = Date.now();
    const deadline = started + (this.#config.recoverTimeoutMs ?? 300_000);
    const query = {
      nodeName: this.#config.nodeName,
      volumeId: spec.volumeId,
      workloadPodUid: spec.workloadPodUid!,
    };
    let failure = `no Mountpoint Pod served it within ${(deadline - started) / 1000} s`;
    try {
      while (Date.now() < deadline && !served.released && !served.unmounting) {
        const pod = await this.#config.lookup.find(query).catch(() => undefined);
        if (!pod) {
          await sleep(this.#config.pollMs ?? 500);
          continue;
        }
        const commDir = hostCommDir(this.#config.kubeletPath, pod.uid);
        let conn: MountpointConnection;
        try {
          conn = await connectMountpoint(commDir, Date.now() + RECOVER_ATTEMPT_MS);
        } catch (err) {
          if (!(err instanceof WireTimeout)) mlog.debug("cannot reach a pod", { error: err });
          continue;
        }
        let reply: MountReply;
        try {
          if (commDir !== served.commDir) await placeJournal(spec.stateDir, commDir, conn.owner);
          await this.#writeCredentials(spec, commDir, conn.owner);
          reply = await handOver(
            conn,
            commDir,
            served.keeper,
            await this.#request(spec, commDir, true),
            Date.now() + (this.#config.startTimeoutMs ?? 60_000),
          );
        } catch (err) {
          reply = { ok: false, error: (err as Error).message };
        }
        if (!reply.ok) {
          close(conn.sock);
          failure =
            `Mountpoint Pod "${MOUNTPOINT_NAMESPACE}/${pod.name}" could not take it over: ${reply.error}`;
          break;
        }
        served.conn = conn;
        served.commDir = commDir;
        served.pod = pod;
        served.gone = false;
        await this.#giveSpare(served);
        await writeServedRecord(served);
        await recordMetricsSource(spec.stateDir, spec.volumeId, `${commDir}/${METRICS_SOCKET}`);
        this.#watch(served);
        mlog.info("a Mountpoint Pod took over the live mount", {
          pod: pod.name,
          waitedMs: Date.now() - started,
        });
        return;
      }
      if (served.released || served.unmounting) return;
      mlog.error("giving up a live mount: it turns stale and the next publish mounts it again", {
        reason: failure,
      });
      this.#forget(spec.sourceDir);
    } finally {
      served.recovering = undefined;
    }
  }

  /** Contract step 6: a spare clone for the pod's keeper socket. */
  async #giveSpare(served: Served): Promise<void> {
    let spare = -1;
    try {
      spare = cloneFuseFd(served.keeper);
      await sendLine(served.conn.sock, KEEPER_SPARE, Date.now() + ACK_TIMEOUT_MS, spare);
    } catch (err) {
      log.warn("cannot give the Mountpoint Pod a spare keeper", {
        source: served.spec.sourceDir,
        error: err,
      });
    } finally {
      if (spare >= 0) close(spare); // the pod has its own now
    }
  }

  /**
   * At start: takes back a keeper of every source an earlier node instance
   * left served under `stateRoot`, from its pod's keeper socket, and
   * watches it again (the module note). A source that is not healthy, or
   * whose pod gives no keeper, is left to the next publish.
   */
  async recover(stateRoot: string): Promise<void> {
    let dirs: string[];
    try {
      dirs = [...Deno.readDirSync(stateRoot)].filter((e) => e.isDirectory).map((e) => e.name);
    } catch {
      return; // nothing mounted yet
    }
    await Promise.all(dirs.map((d) => this.#reclaim(`${stateRoot}/${d}`)));
  }

  async #reclaim(stateDir: string): Promise<void> {
    let record: ServedRecord;
    try {
      record = await readServedRecord(stateDir);
    } catch {
      return; // not a source of this mounter, or mounted by an older version
    }
    const { spec, commDir, pod } = record;
    const mlog = log.with({ volume: spec.volumeId, source: spec.sourceDir, pod: pod.name });
    if (this.#served.has(spec.sourceDir) || (await checkMount(spec.sourceDir)) !== "ok") return;
    let taken: Awaited<ReturnType<typeof takeKeeper>>;
    let owner: { uid: number; gid: number };
    try {
      const st = await Deno.stat(commDir);
      owner = { uid: st.uid ?? 0, gid: st.gid ?? 0 };
      taken = await takeKeeper(commDir);
    } catch (err) {
      mlog.warn("cannot take back the keeper of a live mount: it will not survive its pod", {
        error: err,
      });
      return;
    }
    if (record.hasCredentials) {
      // Kept in memory only, for the pod that may come next (its comm directory starts empty).
      const c = await readCredentialsFile(`${commDir}/${CREDENTIALS_FILE}`, CREDENTIALS_PROFILE);
      if (c) spec.credentials = c;
    }
    const conn = { sock: taken.sock, owner };
    const served = newServed(spec, taken.keeper, conn, commDir, pod);
    this.#served.set(spec.sourceDir, served);
    this.#watch(served);
    mlog.info("took back the keeper of a live mount", { serverVersion: taken.version });
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

  /**
   * Rewrites the credentials file in `commDir`, owned by `owner` or by the
   * owner of the file it replaces.
   */
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

  /** Lets go of a source: the watcher stops (and closes the socket), the keeper is closed. */
  #forget(sourceDir: string): void {
    const served = this.#served.get(sourceDir);
    if (!served) return;
    this.#served.delete(sourceDir);
    served.released = true;
    close(served.keeper);
  }

  /**
   * Lets go of every source without unmounting, as a node plugin that exits
   * does: watchers stop, keepers close; the pods go on serving, and the
   * next instance's `recover()` takes them back.
   */
  release(): void {
    for (const sourceDir of [...this.#served.keys()]) this.#forget(sourceDir);
  }

  async unmount(sourceDir: string, stateDir: string): Promise<void> {
    const served = this.#served.get(sourceDir);
    if (served) served.unmounting = true;
    detachSource(sourceDir);
    if (served) {
      // The unmount ends the session: the Mountpoint Pod completes pending uploads and hangs up.
      if (!served.gone) {
        const stopMs = this.#config.stopTimeoutMs ?? 30_000;
        const ended = await Promise.race([
          served.watched.then(() => true),
          sleep(stopMs).then(() => false),
        ]);
        if (!ended) log.warn("the Mountpoint Pod did not end its session", { source: sourceDir });
      }
      this.#forget(sourceDir);
      await served.recovering;
    }
    await Deno.remove(sourceDir).catch(() => {});
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}
