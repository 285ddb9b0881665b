/**
 * The contract between the node plugin, the reconciler and a Mountpoint Pod:
 * every name, path, label and message they share is defined here and nowhere
 * else, so the three sides cannot drift apart.
 *
 * The flow (the seeds' phases 4, 5 and 7):
 * 1. The reconciler sees a scheduled workload pod using a PV of this driver,
 *    finds or creates the `MountpointS3PodAttachment` (s3pa) of its sharing
 *    key, and a Mountpoint Pod in `MOUNTPOINT_NAMESPACE` on that node, and
 *    records the workload's UID in the attachment.
 * 2. The node's NodePublishVolume waits for an attachment that lists its
 *    workload (labels `LABEL_NODE` + `LABEL_VOLUME`, then the UID), takes the
 *    Mountpoint Pod's UID, and finds the pod's `comm` emptyDir on the host
 *    (`hostCommDir`). It opens /dev/fuse, mounts the source directory, keeps
 *    that fd, and sends a clone of it with a `MountRequest` over `SOCKET_NAME`
 *    (SCM_RIGHTS). The Mountpoint Pod answers INIT and serves; it writes
 *    `READY_FILE` once the file system answers, or `ERROR_FILE` with the one
 *    line the node reports verbatim.
 *    The Mountpoint Pod keeps the connection open for as long as it serves,
 *    so the node sees the server's end as the peer hanging up.
 * 3. Rotated credentials: the node writes `CREDENTIALS_FILE` in the comm
 *    directory again; the Mountpoint Pod re-reads it on change.
 * 4. The last unpublish unmounts the source, which ends the session; the
 *    reconciler deletes a Mountpoint Pod left with no workload.
 * 5. Takeover. The Mountpoint Pod journals its session in `JOURNAL_FILE`.
 *    When it hangs up while the source is mounted (its container crashed,
 *    or it sent `HAND_OVER_NOTICE` because it was asked to stop), the node
 *    keeps the connection (its keeper) and hands a new clone to whichever
 *    pod the attachment names next, the restarted container of the same
 *    pod or a new pod (to which it copies the journal), with `takeOver`.
 * 6. Keeper. After `{ok: true}` the node sends `KEEPER_SPARE` with one more
 *    clone of the connection, which the pod never reads from and hands to
 *    whoever connects to `KEEPER_SOCKET` of internal/takeover/keeper.ts: a
 *    node plugin that restarted takes its keeper back there, so the mount
 *    still survives its pod. That connection is then the node's: the pod
 *    sends `HAND_OVER_NOTICE` on the newest one.
 *
 * @module
 */
import { sha256Hex } from "../util/hash.ts";

/** API group of the driver's custom resources (also the label prefix). */
export const GROUP = "s3.csi.scality.com";
/** The attachment custom resource. */
export const ATTACHMENT = {
  group: GROUP,
  version: "v1",
  kind: "MountpointS3PodAttachment",
  plural: "mountpoints3podattachments",
  shortName: "s3pa",
} as const;

/** Namespace of every Mountpoint Pod. */
export const MOUNTPOINT_NAMESPACE = "mount-s3";

/** Labels on attachments and Mountpoint Pods, so the node lists only its own. */
export const LABEL_NODE = `${GROUP}/node`;
/** The volume ID's digest (volume IDs may be longer than a label value). */
export const LABEL_VOLUME = `${GROUP}/volume`;
/** The driver version that made a Mountpoint Pod: reused only by the same version. */
export const LABEL_VERSION = `${GROUP}/version`;
/** Marks Mountpoint Pods made by the reconciler. */
export const LABEL_COMPONENT = `${GROUP}/component`;
export const COMPONENT_MOUNTPOINT = "mountpoint-pod";

/**
 * The value of `LABEL_VOLUME` for a volume ID: label values are at most 63
 * characters, volume IDs may be longer (`bucket/csi-s3-{uuid}`) and hold `/`.
 */
export async function volumeLabel(volumeId: string): Promise<string> {
  return (await sha256Hex(volumeId)).slice(0, 32);
}

/** The value of `LABEL_NODE`: the node's name, or its digest when it is too long for a label. */
export async function nodeLabel(nodeName: string): Promise<string> {
  return nodeName.length <= 63 ? nodeName : (await sha256Hex(nodeName)).slice(0, 32);
}

/** The Node taint the node plugin removes once it serves. */
export const AGENT_NOT_READY_TAINT = `${GROUP}/agent-not-ready`;

/** The emptyDir volume shared by node and Mountpoint Pod, and where the pod sees it. */
export const COMM_VOLUME = "comm";
export const COMM_MOUNT_PATH = "/comm";
/**
 * The optional local cache of a Mountpoint Pod (volume attribute `cache:
 * emptyDir`), and where the pod sees it: its command line then carries
 * `--cache CACHE_MOUNT_PATH`.
 */
export const CACHE_VOLUME = "cache";
export const CACHE_MOUNT_PATH = "/cache";
/** The unix socket the Mountpoint Pod listens on, in the comm directory. */
export const SOCKET_NAME = "mount.sock";
/**
 * How a Mountpoint Pod is started (after the image's entrypoint): it serves
 * one mount, received on `SOCKET_NAME`. The reconciler may append
 * `--max-memory <MiB>` (from the pod's memory limit) and `--cache
 * CACHE_MOUNT_PATH`; they bound the pod's own resources and win over the
 * same options in `MountRequest.args`.
 */
export const MOUNTPOINT_ARGS = [
  "mount",
  "--from-socket",
  `${COMM_MOUNT_PATH}/${SOCKET_NAME}`,
] as const;

/**
 * Where a Mountpoint Pod serves its metrics once it serves the mount (in the
 * comm directory, as JSON, see internal/metrics/gather.ts); the node gathers
 * them into its own endpoint with the volume's ID.
 */
export const METRICS_SOCKET = "metrics.sock";

/**
 * The driver's custom CA bundle (`--ca-bundle`), copied by the node into the
 * comm directory before each mount: the Mountpoint Pod cannot see the node's
 * files, and the request's `--ca-bundle` names this copy as the pod sees it.
 */
export const CA_BUNDLE_FILE = "ca-bundle.pem";

/**
 * The Mountpoint Pod's takeover journal (internal/takeover): what the kernel
 * holds of its session, so that a restarted container, or a new Mountpoint
 * Pod the node copies it to, continues the live connection.
 */
export const JOURNAL_FILE = "journal";

/** Written by the Mountpoint Pod when the file system answers. */
export const READY_FILE = "ready";
/** Written by the Mountpoint Pod when the mount fails: one line, shown to the user as is. */
export const ERROR_FILE = "error";
/**
 * Written by the node (0600, owned by the user the Mountpoint Pod runs as,
 * i.e. the owner of `SOCKET_NAME`) whenever it has credentials for the
 * mount: an AWS shared credentials file with the one profile
 * `CREDENTIALS_PROFILE`. Re-read by the Mountpoint Pod when it changes.
 */
export const CREDENTIALS_FILE = "credentials";
export const CREDENTIALS_PROFILE = "s3csi";

/**
 * The node mounts every source as root (`user_id=0,group_id=0`): files and
 * directories belong to it unless the mount options set `uid`/`gid`, and it
 * is the owner `allow-root` lets in.
 */
export const SOURCE_OWNER = 0;

/** One workload recorded in an attachment. */
export interface AttachmentEntry {
  workloadPodUID: string;
  /** RFC 3339. */
  attachmentTime: string;
}

/** `spec` of a `MountpointS3PodAttachment` (the CRD in deploy/ has the same fields). */
export interface AttachmentSpec {
  nodeName: string;
  persistentVolumeName: string;
  volumeID: string;
  mountOptions: string;
  workloadFSGroup: string;
  authenticationSource: "driver" | "secret";
  /** Mountpoint Pod name → the workloads it serves. */
  mountpointS3PodAttachments: Record<string, AttachmentEntry[]>;
}

/** The comm directory of a Mountpoint Pod, as the node sees it on the host. */
export function hostCommDir(kubeletDir: string, mountpointPodUid: string): string {
  return `${kubeletDir}/pods/${mountpointPodUid}/volumes/kubernetes.io~empty-dir/${COMM_VOLUME}`;
}

/**
 * The one message the node sends, with the /dev/fuse fd attached (SCM_RIGHTS),
 * as one JSON line. Credentials never travel in it: they are in
 * `CREDENTIALS_FILE`, which the node writes first.
 */
export interface MountRequest {
  /** Protocol version of this contract; a Mountpoint Pod refuses one it does not know. */
  version: typeof MOUNT_REQUEST_VERSION;
  bucket: string;
  /**
   * The `s3csi mount` arguments after the bucket and mount point (as the
   * node builds them for the process mounter), so both mounters share one
   * option schema.
   */
  args: string[];
  /**
   * "secret": credentials come from `CREDENTIALS_FILE`, which must exist.
   * "driver": from the pod's own environment (AWS variables or its default
   * profile), else from `CREDENTIALS_FILE` when the node wrote the driver's
   * credentials there.
   */
  authenticationSource: "driver" | "secret";
  /**
   * The fd is a clone of a live connection whose server is gone: continue
   * it from `JOURNAL_FILE` (no INIT comes). Absent: a new mount.
   */
  takeOver?: boolean;
}

export const MOUNT_REQUEST_VERSION = 1;

/**
 * Sent by a serving Mountpoint Pod that hands its mount over (it was asked
 * to stop: the pod is deleted, evicted or upgraded) once its journal is
 * complete; it waits, bounded, for `{ok: true}` from the node, which copies
 * the journal out of the comm directory first (it goes with the pod).
 */
export const HAND_OVER_NOTICE = { handedOver: true } as const;

/** The node's line after `{ok: true}`, with a spare clone of the connection attached. */
export const KEEPER_SPARE = { keeperSpare: true } as const;

/** Whether a line from the node is `KEEPER_SPARE`. */
export function isKeeperSpare(line: string): boolean {
  try {
    return (JSON.parse(line) as { keeperSpare?: unknown })?.keeperSpare === true;
  } catch {
    return false;
  }
}

/** Whether a line from a serving Mountpoint Pod is `HAND_OVER_NOTICE`. */
export function isHandOverNotice(line: string): boolean {
  try {
    return (JSON.parse(line) as { handedOver?: unknown })?.handedOver === true;
  } catch {
    return false;
  }
}

/** The Mountpoint Pod's answer on the socket, one JSON line, after READY_FILE or ERROR_FILE. */
export type MountReply = { ok: true } | { ok: false; error: string };

/** A contract violation on the socket: the message says which part. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

function parseLine(line: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new ProtocolError(`Invalid ${what}: not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError(`Invalid ${what}: not a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** Checks one line received as a `MountRequest`. */
export function parseMountRequest(line: string): MountRequest {
  const v = parseLine(line, "mount request");
  if (v.version !== MOUNT_REQUEST_VERSION) {
    throw new ProtocolError(
      `Unsupported mount request version ${
        JSON.stringify(v.version)
      }: this Mountpoint Pod speaks version ${MOUNT_REQUEST_VERSION}`,
    );
  }
  if (typeof v.bucket !== "string" || v.bucket === "") {
    throw new ProtocolError("Invalid mount request: no bucket");
  }
  if (!Array.isArray(v.args) || !v.args.every((a) => typeof a === "string")) {
    throw new ProtocolError("Invalid mount request: args is not a list of strings");
  }
  if (v.takeOver !== undefined && typeof v.takeOver !== "boolean") {
    throw new ProtocolError("Invalid mount request: takeOver is not a boolean");
  }
  if (v.authenticationSource !== "driver" && v.authenticationSource !== "secret") {
    throw new ProtocolError(
      `Invalid mount request: authenticationSource ${
        JSON.stringify(v.authenticationSource)
      } is not "driver" or "secret"`,
    );
  }
  return {
    version: MOUNT_REQUEST_VERSION,
    bucket: v.bucket,
    args: v.args,
    authenticationSource: v.authenticationSource,
    ...(v.takeOver ? { takeOver: true } : {}),
  };
}

/** Checks one line received as a `MountReply`. */
export function parseMountReply(line: string): MountReply {
  const v = parseLine(line, "mount reply");
  if (v.ok === true) return { ok: true };
  if (v.ok === false && typeof v.error === "string") return { ok: false, error: v.error };
  throw new ProtocolError("Invalid mount reply: neither ok nor an error");
}
