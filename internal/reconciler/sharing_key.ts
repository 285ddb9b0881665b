/**
 * The sharing key: which workloads may share one Mountpoint Pod. Two
 * workloads on the same node share one when they use the same PV (name and
 * volume ID) with the same mount options, the same fsGroup and the same
 * authentication source (the seeds' "Volume Sharing"); anything else gets
 * its own attachment and pod. Mount options are normalised with the node's
 * own parser, so `uid=1000` and `--uid 1000` are one key; options the node
 * would refuse are kept as written (trimmed, sorted), so such a volume
 * still gets a pod and the node reports the refusal. A workload's own
 * readOnly is not in the key: the node makes only that workload's target
 * read-only, on the source it shares with writable workloads.
 *
 * A workload's volumes are found through its claims (and generic ephemeral
 * volumes' claims, named `<pod>-<volume>`) bound to PVs of this driver.
 *
 * @module
 */
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { parseMountOptions } from "../mounter/mount_options.ts";
import { mountArgs } from "../mount/options.ts";
import { DRIVER_NAME } from "../version.ts";
import { Ctx } from "../csi/volume_context.ts";
import type { AttachmentKey, AttachmentSpec } from "../kube/mod.ts";

/** The node's default cache area: only used to normalise `cache` options alike. */
const CACHE_ROOT = `/var/lib/kubelet/plugins/${DRIVER_NAME}/cache`;

export type SharingKey = AttachmentKey;

/** A canonical text of the key: equal keys, equal text. */
export function keyText(k: SharingKey): string {
  return JSON.stringify([
    k.nodeName,
    k.persistentVolumeName,
    k.volumeID,
    k.mountOptions,
    k.workloadFSGroup,
    k.authenticationSource,
  ]);
}

/** The key an attachment was made for. */
export function keyOfAttachment(spec: AttachmentSpec): SharingKey {
  return {
    nodeName: spec.nodeName,
    persistentVolumeName: spec.persistentVolumeName,
    volumeID: spec.volumeID,
    mountOptions: spec.mountOptions ?? "",
    workloadFSGroup: spec.workloadFSGroup ?? "",
    authenticationSource: spec.authenticationSource ?? "",
  };
}

/** The mount options of a PV as one normalised string. */
export function normaliseMountOptions(flags: string[] = []): string {
  try {
    return mountArgs(parseMountOptions(flags, { cacheRoot: CACHE_ROOT })).join(" ");
  } catch {
    return flags.map((f) => f.trim()).filter(Boolean).sort().join(" ");
  }
}

/** One volume of this driver used by a workload pod. */
export interface WorkloadVolume {
  pv: V1PersistentVolume;
  key: SharingKey;
}

export interface ClaimLookup {
  claim(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
  volume(name: string): V1PersistentVolume | undefined;
}

/** The claims a pod's volumes name: a PVC's claimName, or `<pod>-<volume>` for an ephemeral one. */
export function claimNames(pod: V1Pod): string[] {
  return (pod.spec?.volumes ?? []).flatMap((v) => {
    const name = v.persistentVolumeClaim?.claimName ??
      (v.ephemeral ? `${pod.metadata?.name}-${v.name}` : undefined);
    return name ? [name] : [];
  });
}

/** The volumes of this driver a scheduled pod uses, with their sharing keys. */
export function workloadVolumes(pod: V1Pod, lookup: ClaimLookup): WorkloadVolume[] {
  const nodeName = pod.spec?.nodeName;
  const namespace = pod.metadata?.namespace ?? "";
  if (!nodeName) return [];
  const out: WorkloadVolume[] = [];
  const seen = new Set<string>();
  for (const claimName of claimNames(pod)) {
    const pvName = lookup.claim(namespace, claimName)?.spec?.volumeName;
    const pv = pvName ? lookup.volume(pvName) : undefined;
    const csi = pv?.spec?.csi;
    if (!pv || csi?.driver !== DRIVER_NAME || seen.has(pvName!)) continue;
    seen.add(pvName!);
    out.push({
      pv,
      key: {
        nodeName,
        persistentVolumeName: pvName!,
        volumeID: csi.volumeHandle,
        mountOptions: normaliseMountOptions(pv.spec?.mountOptions),
        workloadFSGroup: String(pod.spec?.securityContext?.fsGroup ?? ""),
        // Anything but "secret" is the driver's (the node refuses an invalid value at publish).
        authenticationSource: csi.volumeAttributes?.[Ctx.authenticationSource] === "secret"
          ? "secret"
          : "driver",
      },
    });
  }
  return out;
}

/** True while a pod may still use its volumes: not Succeeded or Failed. */
export function isActive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed";
}
