/**
 * `s3csi reconciler`: keeps Mountpoint Pods and `MountpointS3PodAttachment`
 * objects for the workloads that use this driver's volumes. Wiring only:
 * flags → Kubernetes client, leader election, reconciler (internal/).
 *
 * @module
 */
import {
  bool,
  COMMON_FLAGS,
  type FlagSpecs,
  type Kind,
  logLevel,
  METRICS_FLAGS,
  metricsAddress,
  num,
  parseFlags,
  shutdownSignal,
  str,
  uint,
  usage,
  UsageError,
  ValueError,
} from "../../internal/cli/mod.ts";
import { KubeClient, loadKubeConfig } from "../../internal/kube/mod.ts";
import { log, setLevel } from "../../internal/log/mod.ts";
import {
  DEFAULT_RESOURCES,
  LeaderElector,
  leaderIdentity,
  quantityValue,
  realClock,
  Reconciler,
} from "../../internal/reconciler/mod.ts";
import { ownImage } from "../../internal/reconciler/own_image.ts";
import { VERSION } from "../../internal/version.ts";
import { MetricsServer } from "../../internal/metrics/mod.ts";

/** A resource quantity, or "" for none. */
const QUANTITY: Kind<string> = {
  parse(raw) {
    if (raw !== "" && quantityValue(raw) === undefined) {
      throw new ValueError(`"${raw}" is not a resource quantity`);
    }
    return raw;
  },
  format: (v) => v,
};

const resource = (name: keyof typeof DEFAULT_RESOURCES, help: string) => ({
  type: "string" as const,
  kind: QUANTITY,
  default: DEFAULT_RESOURCES[name] || undefined,
  help: `${help} of Mountpoint Pods, unless the PV's attributes say ("" for none)`,
});

const FLAGS: FlagSpecs = {
  kubeconfig: {
    type: "string",
    env: "KUBECONFIG",
    help: "Kubeconfig file (default: the in-cluster service account)",
  },
  namespace: {
    type: "string",
    default: "s3csi",
    env: "POD_NAMESPACE",
    help: "The driver's namespace (its pod's, for the lease)",
  },
  "pod-name": {
    type: "string",
    env: "POD_NAME",
    help:
      "This pod's name: the prefix of the leader identity, and where --image is read from when unset",
  },
  image: {
    type: "string",
    env: "S3CSI_IMAGE",
    help: "Image of Mountpoint Pods (default: this pod's own)",
  },
  "priority-class": {
    type: "string",
    default: "s3csi-mountpoint",
    help: "PriorityClass of Mountpoint Pods",
  },
  "lease-name": { type: "string", default: "s3csi-reconciler", help: "Leader election Lease" },
  "lease-namespace": { type: "string", help: "Namespace of the Lease (default: --namespace)" },
  "lease-duration": {
    type: "string",
    kind: uint({ min: 2, max: 600 }),
    default: "15",
    help: "Seconds a leader's lease lasts without renewal (the take-over time)",
  },
  "resync-period": {
    type: "string",
    kind: uint({ min: 10, max: 86400 }),
    default: "300",
    help: "Seconds between full resyncs and sweeps",
  },
  workers: {
    type: "string",
    kind: uint({ min: 1, max: 64 }),
    default: "4",
    help: "Keys reconciled in parallel",
  },
  "upgrade-mountpoint-pods": {
    type: "boolean",
    help:
      "Replace Mountpoint Pods of other driver versions, one per node at a time; their live mounts are handed over, not dropped",
  },
  "mountpoint-cpu-request": resource("requestsCpu", "CPU request"),
  "mountpoint-memory-request": resource("requestsMemory", "Memory request"),
  "mountpoint-cpu-limit": resource("limitsCpu", "CPU limit"),
  "mountpoint-memory-limit": resource("limitsMemory", "Memory limit (and --max-memory)"),
  ...METRICS_FLAGS,
  ...COMMON_FLAGS,
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi reconciler [options]", FLAGS));
    return 0;
  }
  setLevel(logLevel(values));
  const namespace = str(values, "namespace")!;
  const podName = str(values, "pod-name");
  const api = new KubeClient(loadKubeConfig(str(values, "kubeconfig")));
  const image = str(values, "image") ??
    (podName ? await ownImage(api, namespace, podName) : undefined);
  if (!image) throw new UsageError("Give --image, or --pod-name to use this pod's image");
  const leaseMs = num(values, "lease-duration")! * 1000;
  const resyncMs = num(values, "resync-period")! * 1000;
  const identity = leaderIdentity(podName);

  const metricsAt = metricsAddress(values);
  const metrics = metricsAt ? new MetricsServer(metricsAt) : undefined;
  const stop = new AbortController();
  shutdownSignal().then((signal) => {
    log.info("shutting down", { signal });
    stop.abort();
  });
  const elector = new LeaderElector({
    api,
    clock: realClock,
    log,
    namespace: str(values, "lease-namespace") ?? namespace,
    name: str(values, "lease-name")!,
    identity,
    leaseDurationMs: leaseMs,
    // client-go's proportions: renew well before expiry, retry a few times per lease.
    renewDeadlineMs: Math.floor(leaseMs * 2 / 3),
    retryPeriodMs: Math.max(1000, Math.floor(leaseMs / 7.5)),
  });
  log.info("reconciler starting", {
    version: VERSION,
    identity,
    image,
    upgradeMountpointPods: bool(values, "upgrade-mountpoint-pods"),
  });
  await elector.run(stop.signal, (leading) =>
    new Reconciler({
      api,
      clock: realClock,
      log,
      version: VERSION,
      image,
      priorityClassName: str(values, "priority-class")!,
      resources: {
        requestsCpu: str(values, "mountpoint-cpu-request") ?? "",
        requestsMemory: str(values, "mountpoint-memory-request") ?? "",
        limitsCpu: str(values, "mountpoint-cpu-limit") ?? "",
        limitsMemory: str(values, "mountpoint-memory-limit") ?? "",
      },
      resyncMs,
      sweepMs: resyncMs,
      expectationsTtlMs: 5 * 60_000,
      backoff: { baseMs: 200, maxMs: 60_000 },
      workers: num(values, "workers")!,
      upgradeMountpointPods: bool(values, "upgrade-mountpoint-pods"),
    }).run(leading));
  await metrics?.stop();
  return 0;
}
