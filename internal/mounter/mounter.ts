/**
 * The Mounter contract: who serves a volume's FUSE mount.
 *
 * The node service decides *what* to mount (bucket, prefix, options,
 * credentials, a source directory per sharing key) and bind-mounts the
 * source onto each pod's target (through `TargetOps`, which also tells the
 * health of sources and targets). A Mounter makes the source a healthy FUSE
 * mount and keeps it so. Two implementations fit behind it:
 * - `process` (`process_mounter.ts`): the node opens /dev/fuse, mounts the
 *   source itself and hands the fd to a child `s3csi mount … /dev/fd/N`;
 * - `pod` (`pod_mounter.ts`, the seeds' Mountpoint Pods): the node mounts the
 *   source the same way (`source.ts`) and sends a clone of the fd with the
 *   options over a unix socket to the Mountpoint Pod the reconciler chose,
 *   the credentials in a file beside the socket.
 * Both receive everything through `MountSpec`, so the node code is the same.
 *
 * @module
 */
import type { Credentials } from "../s3/object_client.ts";
import type { MountOptions } from "./mount_options.ts";

export interface MountSpec {
  volumeId: string;
  bucket: string;
  /** Effective options (prefix already merged with the volume's own prefix). */
  options: MountOptions;
  /** Static credentials to use; undefined means the driver-level credentials. */
  credentials?: Credentials;
  /** Where the credentials came from, for logs and user agent. */
  authenticationSource: "driver" | "secret";
  /** The per-mount directory the FUSE file system is mounted on. */
  sourceDir: string;
  /** A private directory for this mount's state (credentials file, logs, status). */
  stateDir: string;
  /** A stable identifier of this mount (sharing key digest). */
  mountId: string;
  /**
   * The UID of the workload pod being published (volume context
   * `csi.storage.k8s.io/pod.uid`, given with `podInfoOnMount`): the `pod`
   * Mounter finds the Mountpoint Pod serving it by this UID.
   */
  workloadPodUid?: string;
  /** The pod's fsGroup (CSI `volume_mount_group`), already applied to `options`. */
  fsGroup?: string;
}

export interface Mounter {
  /**
   * Makes `spec.sourceDir` a healthy mount serving `spec`. If it already is,
   * only refreshes the credentials (rotation). A stale mount is cleaned and
   * mounted again. Errors carry the mount process's own explanation.
   */
  ensureMounted(spec: MountSpec): Promise<void>;
  /** Unmounts the source and stops whatever served it. Missing or unmounted is success. */
  unmount(sourceDir: string, stateDir: string): Promise<void>;
  /**
   * At start: takes charge again of the mounts an earlier node instance
   * left serving, whose state directories are under `stateRoot`.
   */
  recover?(stateRoot: string): Promise<void>;
}
