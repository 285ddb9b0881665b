/**
 * The reconciler's pure core: from what should be (the active workloads on
 * one node that use one volume) and what is (that node's attachments and
 * Mountpoint Pods for the volume), the writes that bring the second to the
 * first. Level-triggered: it reads only state, never the event that led
 * here, so running it again on the result asks for nothing.
 *
 * Rules, for each sharing key:
 * - The attachment lists, per Mountpoint Pod name, the UIDs of the active
 *   workloads it serves; finished (Succeeded, Failed) or deleted workloads
 *   are dropped. An attachment left empty is deleted.
 * - A new workload joins a listed pod made by this driver version (or one
 *   listed but not created yet, which will be); else a new pod name is
 *   listed. Workloads of an older version's pod stay on it until they go.
 * - The attachment is the record: it is written before the pods it names
 *   are created, so a pod never exists unlisted except as garbage. A listed
 *   pod that does not exist is created; one that ended (Succeeded, Failed)
 *   is deleted, to be created again while it still has workloads.
 * - A Mountpoint Pod no attachment lists (its last workload went) is
 *   deleted once it has ended. A workload counts as gone as soon as it
 *   finishes or is being deleted, which is before the kubelet unpublishes
 *   its volume; the node's last unpublish then unmounts the source, which
 *   ends the pod's session. Deleting the pod earlier would leave the
 *   unpublish waiting on a mount with no server. A pod whose workloads
 *   went before any publish has no session to end: its server exits 0 when
 *   no node connects within its accept timeout (`podmount/server.ts`).
 * - Upgrade (`mayUpgrade`, given when the reconciler runs with
 *   `--upgrade-mountpoint-pods` and no upgrade is under way on the node):
 *   one listed, running Mountpoint Pod of another driver version is
 *   deleted. Its server hands its live mounts over on SIGTERM, and the pod
 *   created again under the same name (by the rule above, at this version)
 *   is handed them by the node (`mounter/pod_mounter.ts`): the workloads
 *   keep their mounts. One pod per run, and the caller allows one per node
 *   at a time.
 * - When the node is gone, its attachments and Mountpoint Pods are deleted.
 *
 * Writes are ordered so that a failure part-way leaves a state the next run
 * continues from: attachment writes, then pod creations, pod deletions,
 * attachment deletions.
 *
 * @module
 */
import type { V1PersistentVolume, V1Pod } from "@kubernetes/client-node";
import {
  type Attachment,
  newAttachment,
  podEntries,
  type WorkloadAttachment,
} from "../kube/mod.ts";
import { LABEL_NODE, LABEL_VERSION, LABEL_VOLUME } from "../podmount/contract.ts";
import { isActive, keyOfAttachment, keyText, type SharingKey } from "./sharing_key.ts";

/** One active workload's use of the volume. */
export interface Workload {
  uid: string;
  key: SharingKey;
  pv: V1PersistentVolume;
}

export interface KeyState {
  nodeName: string;
  nodeExists: boolean;
  nodeLabel: string;
  volumeLabel: string;
  workloads: Workload[];
  attachments: Attachment[];
  mountpointPods: V1Pod[];
  version: string;
  now: Date;
  /** Whether one Mountpoint Pod of another version may be replaced now (the upgrade rule). */
  mayUpgrade?: boolean;
}

export interface PlanContext {
  /** The attachment name of a key (deterministic: one attachment per key). */
  attachmentName(key: SharingKey): string;
  /** A fresh Mountpoint Pod name for a key. */
  newPodName(key: SharingKey): string;
  /** The Mountpoint Pod to create under `name` for a workload of the key. */
  podFor(name: string, workload: Workload): V1Pod;
}

export type Action =
  | { type: "createAttachment"; attachment: Attachment }
  | { type: "updateAttachment"; attachment: Attachment }
  | { type: "createPod"; pod: V1Pod }
  | { type: "deletePod"; name: string; uid: string; upgrade?: true }
  | { type: "deleteAttachment"; name: string; uid: string };

const ORDER: Action["type"][] = [
  "createAttachment",
  "updateAttachment",
  "createPod",
  "deletePod",
  "deleteAttachment",
];

/** Running and Ready: serving, so that it has something to hand over (and a successor will too). */
export function isServing(p: V1Pod): boolean {
  return p.status?.phase === "Running" &&
    (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
}

function terminating(o: { metadata?: { deletionTimestamp?: unknown } }): boolean {
  return Boolean(o.metadata?.deletionTimestamp);
}

type PodMap = Record<string, WorkloadAttachment[]>;

function sameMap(a: PodMap, b: PodMap): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.join("\n") !== kb.join("\n")) return false;
  return ka.every((k) =>
    a[k].map((w) => w.workloadPodUID).join(",") === b[k].map((w) => w.workloadPodUID).join(",")
  );
}

export function plan(s: KeyState, ctx: PlanContext): Action[] {
  const actions: Action[] = [];
  const deletePod = (p: V1Pod) => {
    if (!terminating(p)) {
      actions.push({ type: "deletePod", name: p.metadata!.name!, uid: p.metadata!.uid ?? "" });
    }
  };
  const deleteAttachment = (a: Attachment) =>
    actions.push({ type: "deleteAttachment", name: a.metadata.name, uid: a.metadata.uid ?? "" });
  if (!s.nodeExists) {
    s.mountpointPods.forEach(deletePod);
    s.attachments.forEach(deleteAttachment);
    return actions;
  }

  const byKey = new Map<string, { key: SharingKey; workloads: Workload[]; att?: Attachment }>();
  const entry = (key: SharingKey) => {
    const text = keyText(key);
    let e = byKey.get(text);
    if (!e) byKey.set(text, e = { key, workloads: [] });
    return e;
  };
  for (const w of s.workloads) entry(w.key).workloads.push(w);
  for (const a of s.attachments) {
    const e = entry(keyOfAttachment(a.spec));
    // One attachment per key: its name is the key's. Another is garbage of an older naming.
    if (a.metadata.name === ctx.attachmentName(e.key)) e.att = a;
    else deleteAttachment(a);
  }

  const pods = new Map(s.mountpointPods.map((p) => [p.metadata!.name!, p]));
  const reusable = (name: string) => {
    const p = pods.get(name);
    return !p || (p.metadata?.labels?.[LABEL_VERSION] === s.version && !terminating(p));
  };
  const listed = new Set<string>();
  let upgrading = false;
  const upgradable = (p: V1Pod) =>
    s.mayUpgrade === true && !upgrading && !terminating(p) && isServing(p) &&
    p.metadata?.labels?.[LABEL_VERSION] !== s.version;

  for (const { key, workloads, att } of byKey.values()) {
    const wanted = new Map(workloads.map((w) => [w.uid, w]));
    const placed = new Set<string>();
    const map: PodMap = {};
    for (const [podName, ws] of att ? podEntries(att) : []) {
      const kept = ws.filter((w) => wanted.has(w.workloadPodUID) && !placed.has(w.workloadPodUID));
      kept.forEach((w) => placed.add(w.workloadPodUID));
      if (kept.length > 0) map[podName] = kept;
    }
    const newcomers = workloads.filter((w) => !placed.has(w.uid));
    if (newcomers.length > 0) {
      const target = Object.keys(map).find(reusable) ?? ctx.newPodName(key);
      const time = s.now.toISOString();
      map[target] = [
        ...(map[target] ?? []),
        ...newcomers.map((w) => ({ workloadPodUID: w.uid, attachmentTime: time })),
      ];
    }

    const names = Object.keys(map);
    if (names.length === 0) {
      if (att) deleteAttachment(att);
      continue;
    }
    if (!att) {
      const labels = { [LABEL_NODE]: s.nodeLabel, [LABEL_VOLUME]: s.volumeLabel };
      const spec = { ...key, mountpointS3PodAttachments: map };
      actions.push({
        type: "createAttachment",
        attachment: newAttachment(ctx.attachmentName(key), labels, spec),
      });
    } else if (!sameMap(att.spec.mountpointS3PodAttachments ?? {}, map)) {
      const attachment = { ...att, spec: { ...att.spec, mountpointS3PodAttachments: map } };
      actions.push({ type: "updateAttachment", attachment });
    }
    for (const name of names) {
      listed.add(name);
      const p = pods.get(name);
      if (!p) {
        actions.push({
          type: "createPod",
          pod: ctx.podFor(name, wanted.get(map[name][0].workloadPodUID)!),
        });
      } else if (!isActive(p)) deletePod(p);
      else if (upgradable(p)) {
        actions.push({ type: "deletePod", name, uid: p.metadata!.uid ?? "", upgrade: true });
        upgrading = true;
      }
    }
  }
  for (const p of s.mountpointPods) {
    if (!listed.has(p.metadata!.name!) && !isActive(p)) deletePod(p);
  }
  return actions.sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type));
}
