/**
 * The `MountpointS3PodAttachment` (s3pa) resource as TypeScript types, and
 * the helpers that read it safely: one attachment per sharing key records,
 * for each Mountpoint Pod serving that key on the node, the workload pods it
 * serves. The CRD's schema (`deploy/kubernetes/base/crd.yaml`) has exactly
 * these fields; `spec.mountpointS3PodAttachments` maps a Mountpoint Pod's
 * name to its workloads.
 *
 * @module
 */
import type { KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";
import { RESOURCES } from "./api.ts";

/** One workload served by a Mountpoint Pod. */
export interface WorkloadAttachment {
  workloadPodUID: string;
  /** RFC 3339 time the workload was recorded. */
  attachmentTime: string;
}

/** The sharing key an attachment is for (the reconciler's `sharing_key.ts` computes it). */
export interface AttachmentKey {
  nodeName: string;
  persistentVolumeName: string;
  volumeID: string;
  /** The volume's mount options, normalised. */
  mountOptions: string;
  /** The workloads' fsGroup, "" when they set none. */
  workloadFSGroup: string;
  authenticationSource: string;
}

export interface AttachmentSpec extends AttachmentKey {
  /** Mountpoint Pod name → the workloads it serves. */
  mountpointS3PodAttachments: Record<string, WorkloadAttachment[]>;
}

export interface Attachment extends KubernetesObject {
  metadata: V1ObjectMeta & { name: string };
  spec: AttachmentSpec;
}

/** A new attachment object (no resourceVersion: for create). */
export function newAttachment(
  name: string,
  labels: Record<string, string>,
  spec: AttachmentSpec,
): Attachment {
  return {
    apiVersion: RESOURCES.attachment.apiVersion,
    kind: RESOURCES.attachment.kind,
    metadata: { name, labels },
    spec,
  };
}

/** The Mountpoint Pod names an attachment lists, with their workloads (an absent map is empty). */
export function podEntries(a: Attachment): [string, WorkloadAttachment[]][] {
  return Object.entries(a.spec?.mountpointS3PodAttachments ?? {});
}

/** Every workload UID an attachment lists. */
export function workloadUids(a: Attachment): Set<string> {
  return new Set(podEntries(a).flatMap(([, ws]) => ws.map((w) => w.workloadPodUID)));
}
