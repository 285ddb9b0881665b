/**
 * The Mountpoint Pod: the unprivileged pod that serves one FUSE mount for
 * the workloads of one sharing key on one node. The node opens /dev/fuse,
 * mounts, and hands the pod the fd over `mount.sock` in the `comm` emptyDir
 * (`internal/podmount/contract.ts`), so the pod needs no device, no
 * capability and no root: it runs as 1000:1000 with every capability
 * dropped, no privilege escalation, a read-only root file system and the
 * runtime's default seccomp profile, which fits the `restricted` Pod
 * Security profile of its namespace.
 *
 * Placement: `nodeName` (the scheduler is bypassed: the pod must be where
 * the workload is), tolerating every taint (the workload's node may be
 * tainted in ways the reconciler cannot foresee, and the mount must follow
 * the workload), and a priority class so that it is not the first thing
 * evicted under pressure.
 *
 * Restart policy `OnFailure`: a crash restarts the container in the same
 * pod (same UID, same comm directory), so the node can hand the new server
 * a clone of the fd it kept; a clean exit means the node unmounted the
 * source (the session ended), after which there is nothing to serve and the
 * reconciler deletes the pod.
 *
 * Resources come from the PV's volume attributes or the driver's defaults.
 * `--max-memory` follows the memory limit, less headroom for what the mount
 * does not budget (the runtime's own growth, the kernel's view of page
 * cache), so the mount throttles before the container is OOM-killed.
 *
 * @module
 */
import type { V1PersistentVolume, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import {
  CACHE_MOUNT_PATH,
  CACHE_VOLUME,
  COMM_MOUNT_PATH,
  COMM_VOLUME,
  COMPONENT_MOUNTPOINT,
  LABEL_COMPONENT,
  LABEL_NODE,
  LABEL_VERSION,
  LABEL_VOLUME,
  MOUNTPOINT_ARGS,
  MOUNTPOINT_NAMESPACE,
} from "../podmount/contract.ts";
import { quantityValue } from "./quantity.ts";

/** PV volume attributes that shape the Mountpoint Pod. */
export const PodAttr = {
  requestsCpu: "mountpointContainerResourcesRequestsCpu",
  requestsMemory: "mountpointContainerResourcesRequestsMemory",
  limitsCpu: "mountpointContainerResourcesLimitsCpu",
  limitsMemory: "mountpointContainerResourcesLimitsMemory",
  cache: "cache",
  cacheSizeLimit: "cacheEmptyDirSizeLimit",
} as const;

/** The container resources used when a PV's attributes say nothing ("" means unset). */
export interface ResourceDefaults {
  requestsCpu: string;
  requestsMemory: string;
  limitsCpu: string;
  limitsMemory: string;
}

export const DEFAULT_RESOURCES: ResourceDefaults = {
  requestsCpu: "100m",
  requestsMemory: "256Mi",
  limitsCpu: "",
  limitsMemory: "1Gi",
};

export interface PodSettings {
  image: string;
  priorityClassName: string;
  version: string;
  resources: ResourceDefaults;
  /** Warns about a volume attribute that was ignored. */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
}

export interface PodIdentity {
  name: string;
  nodeName: string;
  /** Label values (`nodeLabel`, `volumeLabel` of the contract). */
  nodeLabel: string;
  volumeLabel: string;
}

const MIB = 2 ** 20;
/** The mount's own memory flag refuses less. */
const MIN_MAX_MEMORY_MIB = 64;

/**
 * `--max-memory` (MiB) for a memory limit: a tenth, at least 384 MiB, is
 * left as headroom. With four readers and two writers at once the mount goes
 * past `--max-memory` by up to ~250 MiB (measured at 384-768 MiB), and with
 * twelve readers and six writers at `--max-memory 64` it peaks at 306-358
 * MiB (docs/benchmarks.md); past the limit the kernel kills it.
 */
export function maxMemoryMiB(limitBytes: number): number {
  const limit = Math.floor(limitBytes / MIB);
  const headroom = Math.max(384, Math.ceil(limit / 10));
  return Math.max(MIN_MAX_MEMORY_MIB, limit - headroom);
}

/** The Mountpoint Pod for `pv` (not yet created). */
export function mountpointPod(id: PodIdentity, pv: V1PersistentVolume, s: PodSettings): V1Pod {
  const attrs = pv.spec?.csi?.volumeAttributes ?? {};
  const pick = (attr: string, fallback: string): string => {
    const v = attrs[attr]?.trim();
    if (v === undefined || v === "") return fallback;
    if (quantityValue(v) !== undefined) return v;
    s.warn?.("ignoring a malformed quantity in a volume attribute", {
      pv: pv.metadata?.name,
      attribute: attr,
      value: v,
    });
    return fallback;
  };
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  const set = (to: Record<string, string>, res: string, v: string) => v && (to[res] = v);
  set(requests, "cpu", pick(PodAttr.requestsCpu, s.resources.requestsCpu));
  set(requests, "memory", pick(PodAttr.requestsMemory, s.resources.requestsMemory));
  set(limits, "cpu", pick(PodAttr.limitsCpu, s.resources.limitsCpu));
  set(limits, "memory", pick(PodAttr.limitsMemory, s.resources.limitsMemory));
  const resources: V1ResourceRequirements = { requests };
  if (Object.keys(limits).length > 0) resources.limits = limits;

  const args: string[] = [...MOUNTPOINT_ARGS];
  if (limits.memory) args.push("--max-memory", String(maxMemoryMiB(quantityValue(limits.memory)!)));
  const volumes: NonNullable<V1Pod["spec"]>["volumes"] = [
    { name: COMM_VOLUME, emptyDir: {} },
    // Deno and libraries may write temporary files; the root file system is read-only.
    { name: "tmp", emptyDir: {} },
  ];
  const mounts = [
    { name: COMM_VOLUME, mountPath: COMM_MOUNT_PATH },
    { name: "tmp", mountPath: "/tmp" },
  ];
  if (attrs[PodAttr.cache] === "emptyDir") {
    const sizeLimit = pick(PodAttr.cacheSizeLimit, "");
    volumes.push({ name: CACHE_VOLUME, emptyDir: sizeLimit ? { sizeLimit } : {} });
    mounts.push({ name: CACHE_VOLUME, mountPath: CACHE_MOUNT_PATH });
    args.push("--cache", CACHE_MOUNT_PATH);
  }

  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: id.name,
      namespace: MOUNTPOINT_NAMESPACE,
      labels: {
        [LABEL_COMPONENT]: COMPONENT_MOUNTPOINT,
        [LABEL_NODE]: id.nodeLabel,
        [LABEL_VOLUME]: id.volumeLabel,
        [LABEL_VERSION]: s.version,
      },
    },
    spec: {
      nodeName: id.nodeName,
      restartPolicy: "OnFailure",
      priorityClassName: s.priorityClassName,
      tolerations: [{ operator: "Exists" }],
      // It talks to S3 and to the node over the socket, never to the API server.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 30,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [{
        name: "mountpoint",
        image: s.image,
        imagePullPolicy: "IfNotPresent",
        command: ["s3csi"],
        args,
        env: [{ name: "HOME", value: "/tmp" }],
        resources,
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: mounts,
      }],
      volumes,
    },
  };
}
