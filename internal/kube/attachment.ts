/**
 * The `MountpointS3PodAttachment` (s3pa) resource as an API object (its
 * spec is the contract's, `internal/podmount/contract.ts`), and the helpers
 * that read it safely: one attachment per sharing key records,
 * for each Mountpoint Pod serving that key on the node, the workload pods it
 * serves. The CRD's schema (`deploy/kubernetes/base/crd.yaml`) has exactly
 * these fields; `spec.mountpointS3PodAttachments` maps a Mountpoint Pod's
 * name to its workloads.
 *
 * @module
 */
import type { KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";
import { RESOURCES } from "./api.ts";

import type { AttachmentEntry, AttachmentSpec } from "../podmount/contract.ts";

export type { AttachmentSpec } from "../podmount/contract.ts";
/** One workload served by a Mountpoint Pod. */
export type WorkloadAttachment = AttachmentEntry;
/** The sharing key an attachment is for (the reconciler's `sharing_key.ts` computes it). */
export type AttachmentKey = Omit<AttachmentSpec, "mountpointS3PodAttachments">;

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
