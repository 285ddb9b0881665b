/**
 * The node's one question to Kubernetes: which Mountpoint Pod serves this
 * workload's use of this volume on this node? The reconciler answers it by
 * recording the workload's UID in a `MountpointS3PodAttachment`; the node
 * only reads.
 *
 * `AttachmentLookup` is the seam: the `pod` Mounter asks it (and polls,
 * bounded, while the answer is "not yet"), and tests give it a fake. The
 * real one lists the attachments of the node and volume by their labels
 * (`LABEL_NODE`, `LABEL_VOLUME`: no list of every attachment in the
 * cluster), picks the Mountpoint Pod whose entry lists the workload, and
 * reads that pod's UID, which names its comm directory on the host. The
 * parsing is done by plain functions over plain objects, so it is tested
 * without a cluster.
 *
 * `@kubernetes/client-node` is loaded only when the real lookup is made, so
 * roles and mounts that never ask pay nothing for it at start.
 *
 * @module
 */
import {
  ATTACHMENT,
  type AttachmentSpec,
  LABEL_NODE,
  LABEL_VOLUME,
  MOUNTPOINT_NAMESPACE,
  nodeLabel,
  volumeLabel,
} from "./contract.ts";

export interface AttachmentQuery {
  nodeName: string;
  volumeId: string;
  workloadPodUid: string;
}

/** A Mountpoint Pod, by name (in `MOUNTPOINT_NAMESPACE`) and UID. */
export interface MountpointPodRef {
  name: string;
  uid: string;
}

export interface AttachmentLookup {
  /**
   * The Mountpoint Pod serving the query's workload, or undefined while the
   * reconciler has not recorded it (or the pod does not exist yet). Throws
   * only when the question cannot be asked (API unreachable, forbidden).
   */
  find(query: AttachmentQuery): Promise<MountpointPodRef | undefined>;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : undefined;
}

/**
 * In a list of attachment objects, the name of the Mountpoint Pod whose
 * entries list `query.workloadPodUid`, for the query's node and volume (the
 * labels select them; the spec is checked too, since a label holds only a
 * digest of the volume ID). Malformed items are skipped.
 */
export function mountpointPodFor(items: unknown[], query: AttachmentQuery): string | undefined {
  for (const item of items) {
    const spec = record(record(item)?.spec) as Partial<AttachmentSpec> | undefined;
    if (!spec || spec.nodeName !== query.nodeName || spec.volumeID !== query.volumeId) continue;
    const pods = record(spec.mountpointS3PodAttachments);
    for (const [name, entries] of Object.entries(pods ?? {})) {
      if (
        Array.isArray(entries) &&
        entries.some((e) => record(e)?.workloadPodUID === query.workloadPodUid)
      ) {
        return name;
      }
    }
  }
  return undefined;
}

/** The UID of a pod object, unless it is missing or the pod is being deleted. */
export function livePodUid(pod: unknown): string | undefined {
  const meta = record(record(pod)?.metadata);
  if (!meta || meta.deletionTimestamp) return undefined;
  return typeof meta.uid === "string" && meta.uid !== "" ? meta.uid : undefined;
}

/** The label selector of one node's attachments of one volume. */
export async function attachmentSelector(nodeName: string, volumeId: string): Promise<string> {
  return `${LABEL_NODE}=${await nodeLabel(nodeName)},${LABEL_VOLUME}=${await volumeLabel(
    volumeId,
  )}`;
}

/** The real lookup, on the in-cluster configuration (or the kubeconfig given by KUBECONFIG). */
export async function kubeAttachmentLookup(): Promise<AttachmentLookup> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return {
    async find(query) {
      const list = await custom.listClusterCustomObject({
        group: ATTACHMENT.group,
        version: ATTACHMENT.version,
        plural: ATTACHMENT.plural,
        labelSelector: await attachmentSelector(query.nodeName, query.volumeId),
      });
      const items = Array.isArray(record(list)?.items) ? (list.items as unknown[]) : [];
      const name = mountpointPodFor(items, query);
      if (!name) return undefined;
      try {
        const pod = await core.readNamespacedPod({ name, namespace: MOUNTPOINT_NAMESPACE });
        const uid = livePodUid(pod);
        return uid ? { name, uid } : undefined;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
  };
}
