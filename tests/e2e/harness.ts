/**
 * What the end-to-end scenarios share: the cluster, the bucket store, and
 * the questions they ask of the API server (workloads running, attachments,
 * Mountpoint Pods, claims bound, events), each a poll with a deadline that
 * describes what it waited for when it gives up.
 *
 * A workload is the s3csi image's Deno running a script with the volume at
 * /data; it prints `done` when the script has run and then stays running,
 * so its mount stays.
 *
 * @module
 */
import type { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { MinioServer } from "../support/minio.ts";
import { waitFor } from "./deploy.ts";

export const DRIVER = "s3.csi.scality.com";
export const DRIVER_NS = "s3csi";
export const MOUNT_NS = "mount-s3";

/** How a scenario runs one named step (the test's `t.step`). */
export type Step = (name: string, fn: () => Promise<void>) => Promise<unknown>;

export interface Attachment {
  metadata: { name: string };
  spec: {
    persistentVolumeName: string;
    workloadFSGroup: string;
    mountpointS3PodAttachments: Record<string, { workloadPodUID: string }[]>;
  };
}

/** Every workload pod of the scenarios carries it, so they can be deleted together. */
export const WORKLOAD_LABEL = "s3csi-e2e/workload";

export interface WorkloadOptions {
  namespace?: string;
  fsGroup?: number;
  readOnly?: boolean;
}

/** A workload pod manifest: Deno runs `script` with the claim at /data, then idles. */
export function workload(
  c: Cluster,
  name: string,
  claim: string,
  script: string,
  opts: WorkloadOptions = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: opts.namespace ?? "default",
      labels: { [WORKLOAD_LABEL]: "true" },
    },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      ...(opts.fsGroup ? { securityContext: { fsGroup: opts.fsGroup } } : {}),
      containers: [{
        name: "main",
        image: c.env.S3CSI_IMAGE,
        imagePullPolicy: "Never",
        command: [
          "/usr/local/bin/deno",
          "eval",
          `${script}\nconsole.log("done");\nsetInterval(() => {}, 1 << 30);`,
        ],
        volumeMounts: [{ name: "data", mountPath: "/data" }],
      }],
      volumes: [{
        name: "data",
        persistentVolumeClaim: { claimName: claim, ...(opts.readOnly ? { readOnly: true } : {}) },
      }],
    },
  };
}

/** A StorageClass of this driver; `Immediate` and `Delete` unless told. */
export function storageClass(
  name: string,
  parameters: Record<string, string>,
  opts: { mountOptions?: string[]; reclaimPolicy?: string; volumeBindingMode?: string } = {},
) {
  return {
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name },
    provisioner: DRIVER,
    reclaimPolicy: opts.reclaimPolicy ?? "Delete",
    volumeBindingMode: opts.volumeBindingMode ?? "Immediate",
    parameters,
    ...(opts.mountOptions ? { mountOptions: opts.mountOptions } : {}),
  };
}

/** A claim of `storageClass` (ReadWriteMany, 1Gi). */
export function claim(name: string, storageClass: string, namespace = "default") {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace },
    spec: {
      accessModes: ["ReadWriteMany"],
      storageClassName: storageClass,
      resources: { requests: { storage: "1Gi" } },
    },
  };
}

/** A Secret holding S3 keys under the driver's key names. */
export function s3Secret(name: string, namespace: string, accessKeyId: string, secret: string) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace },
    type: "Opaque",
    stringData: { access_key_id: accessKeyId, secret_access_key: secret },
  };
}

export class E2e {
  constructor(
    readonly c: Cluster,
    readonly s3: AwsObjectClient,
    readonly minio: MinioServer,
  ) {}

  kubectl(args: string[], stdin?: string): Promise<string> {
    return this.c.kubectl(args, stdin);
  }

  // deno-lint-ignore no-explicit-any
  async json(args: string[]): Promise<any> {
    return JSON.parse(await this.c.kubectl([...args, "-o", "json"]));
  }

  /** The driver's pods of one component (the deploy's `app.kubernetes.io/component` label). */
  // deno-lint-ignore no-explicit-any
  async driverPods(component: "node" | "controller"): Promise<any[]> {
    const pods = await this.json([
      "-n",
      DRIVER_NS,
      "get",
      "pods",
      "-l",
      `app.kubernetes.io/component=${component}`,
    ]);
    return pods.items;
  }

  apply(obj: unknown): Promise<string> {
    return this.c.kubectl(["apply", "-f", "-"], JSON.stringify(obj));
  }

  async uid(pod: string, namespace = "default"): Promise<string> {
    return (await this.json(["-n", namespace, "get", "pod", pod])).metadata.uid;
  }

  async attachments(): Promise<Attachment[]> {
    return (await this.json(["get", "s3pa"])).items;
  }

  async mountpointPods(): Promise<string[]> {
    return (await this.json(["-n", MOUNT_NS, "get", "pods"])).items
      .map((p: { metadata: { name: string } }) => p.metadata.name);
  }

  /** The workload UIDs each attachment lists, by Mountpoint Pod name (sorted). */
  async workloadsByMountpointPod(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const a of await this.attachments()) {
      for (const [pod, ws] of Object.entries(a.spec.mountpointS3PodAttachments ?? {})) {
        out[pod] = ws.map((w) => w.workloadPodUID).sort();
      }
    }
    return out;
  }

  /** The pod, the reconciler's and the node plugin's last lines: what a stuck wait shows. */
  describe(pod: string, namespace = "default"): () => Promise<string> {
    return async () =>
      await this.kubectl(["-n", namespace, "describe", "pod", pod]) +
      await this.kubectl([
        "-n",
        DRIVER_NS,
        "logs",
        "deployment/s3csi-controller",
        "-c",
        "reconciler",
        "--tail=30",
      ]).catch((e) => String(e)) +
      await this.kubectl(["-n", DRIVER_NS, "logs", "daemonset/s3csi-node", "--tail=30"])
        .catch((e) => String(e));
  }

  /** Waits until the workload runs and its script is done; returns its log. */
  async running(pod: string, namespace = "default"): Promise<string> {
    const ns = ["-n", namespace];
    return await waitFor(`pod ${namespace}/${pod} Running with its script done`, async () => {
      const p = await this.json([...ns, "get", "pod", pod]);
      if (p.status?.phase === "Failed") {
        throw new Error(`pod ${pod} failed: ${await this.describe(pod, namespace)()}`);
      }
      if (p.status?.phase !== "Running") return false;
      const log = await this.kubectl([...ns, "logs", pod]);
      return log.includes("done\n") ? log : false;
    }, this.describe(pod, namespace));
  }

  /** Waits until the claim is Bound; returns its PV's name and bucket. */
  async bound(name: string, namespace = "default"): Promise<{ pv: string; bucket: string }> {
    const pvc = await waitFor(
      `claim ${namespace}/${name} Bound`,
      async () => {
        const p = await this.json(["-n", namespace, "get", "pvc", name]);
        return p.status?.phase === "Bound" ? p : false;
      },
      () => this.kubectl(["-n", namespace, "describe", "pvc", name]),
    );
    const pv = pvc.spec.volumeName as string;
    return { pv, bucket: (await this.json(["get", "pv", pv])).spec.csi.volumeHandle };
  }

  /** The messages of the claim's events with `reason`, oldest first. */
  async events(kind: string, name: string, namespace: string, reason: string): Promise<string[]> {
    const list = await this.json([
      "-n",
      namespace,
      "get",
      "events",
      `--field-selector=involvedObject.kind=${kind},involvedObject.name=${name},reason=${reason}`,
    ]);
    return list.items.map((e: { message: string }) => e.message);
  }

  /** Waits until an event of the claim with `reason` matches `pattern`; returns its message. */
  async claimEvent(
    name: string,
    namespace: string,
    reason: string,
    pattern: RegExp,
  ): Promise<string> {
    return await waitFor(
      `a ${reason} event of claim ${namespace}/${name} matching ${pattern}`,
      async () =>
        (await this.events("PersistentVolumeClaim", name, namespace, reason))
          .find((m) => pattern.test(m)),
      () => this.kubectl(["-n", namespace, "describe", "pvc", name]),
    );
  }

  /** Deletes objects and waits for them to be gone. */
  async deleteAndWait(kind: string, names: string[], namespace?: string): Promise<void> {
    if (names.length === 0) return;
    await this.kubectl([
      ...(namespace ? ["-n", namespace] : []),
      "delete",
      kind,
      ...names,
      "--wait=true",
      "--timeout=120s",
    ]);
  }

  /** Waits until the PV `name` is gone. */
  async pvDeleted(name: string): Promise<void> {
    await waitFor(
      `PV ${name} deleted`,
      async () =>
        !(await this.kubectl(["get", "pv", "-o", "name"])).includes(`persistentvolume/${name}\n`),
    );
  }

  /** Waits until no Mountpoint Pod and no attachment is left. */
  async noMountpointPods(): Promise<void> {
    await waitFor(
      "no Mountpoint Pod and no attachment",
      async () =>
        (await this.mountpointPods()).length === 0 && (await this.attachments()).length === 0,
      async () => {
        const pods = (await this.json(["-n", MOUNT_NS, "get", "pods"])).items as {
          metadata: { name: string; deletionTimestamp?: string };
          status: { phase?: string };
        }[];
        const lines = [`attachments: ${JSON.stringify(await this.workloadsByMountpointPod())}`];
        for (const p of pods) {
          const deleting = p.metadata.deletionTimestamp ? ", deleting" : "";
          lines.push(`${p.metadata.name}: ${p.status.phase}${deleting}`);
          lines.push(
            await this.kubectl(["-n", MOUNT_NS, "logs", p.metadata.name, "--tail=15"])
              .catch((e) => String(e)),
          );
        }
        lines.push(
          await this.kubectl(["-n", DRIVER_NS, "logs", "daemonset/s3csi-node", "--tail=40"])
            .catch((e) => String(e)),
        );
        return lines.join("\n");
      },
    );
  }
}
