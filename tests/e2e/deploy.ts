/**
 * The driver deployed on the test cluster as a user deploys it: the manifests
 * of `deploy/kubernetes/base` through `kubectl apply -k` of a throwaway
 * overlay. The overlay changes only what this machine needs: the local images
 * with `imagePullPolicy: Never` (nothing can be pulled), the S3 endpoint and
 * the driver credentials of the test's MinIO, host networking with the API
 * server on 127.0.0.1 for the pods that talk to it (there is no kube-proxy),
 * the controller without the livenessprobe sidecar (its image cannot be had
 * here) and without host ports (its two replicas share the one node's
 * network). The node's `pod` mounter is the base's own setting.
 *
 * @module
 */
import { relative } from "node:path";
import type { Cluster } from "../cluster/cluster.ts";
import type { MinioServer } from "../support/minio.ts";

const BASE = new URL("../../deploy/kubernetes/base", import.meta.url).pathname;
/** The placeholder images of the base manifests. */
const BASE_IMAGE = "ghcr.io/example/s3csi";
const BASE_PROVISIONER = "registry.k8s.io/sig-storage/csi-provisioner";

/** How long the driver may take to come up before the test gives up (not a timing assert). */
const ROLLOUT_DEADLINE = "180s";

export function splitImage(ref: string): { newName: string; newTag: string } {
  const at = ref.lastIndexOf(":");
  return { newName: ref.slice(0, at), newTag: ref.slice(at + 1) };
}

/** A strategic-merge list that removes the container port `port`. */
function noPort(port: number) {
  return [{ containerPort: port, $patch: "delete" }];
}

/** The API server as a hostNetwork pod reaches it. */
export function apiEnv(cluster: Cluster) {
  const api = new URL(cluster.env.S3CSI_CLUSTER_API);
  return [
    { name: "KUBERNETES_SERVICE_HOST", value: api.hostname },
    { name: "KUBERNETES_SERVICE_PORT", value: api.port },
  ];
}

/** Writes the overlay's files into `dir`: a kustomization over the base and its patches. */
export async function writeOverlay(
  dir: string,
  cluster: Cluster,
  minio: MinioServer,
): Promise<void> {
  const never = { imagePullPolicy: "Never" };
  const anyPort = { name: "S3CSI_METRICS_ADDRESS", value: "127.0.0.1:0" };
  const files: Record<string, unknown> = {
    "kustomization.yaml": {
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: [relative(dir, BASE), "credentials.yaml"],
      images: [
        { name: BASE_IMAGE, ...splitImage(cluster.env.S3CSI_IMAGE) },
        { name: BASE_PROVISIONER, ...splitImage(cluster.env.CSI_PROVISIONER_IMAGE) },
      ],
      patches: [{ path: "config.yaml" }, { path: "controller.yaml" }, { path: "node.yaml" }],
    },
    "credentials.yaml": {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s3csi-credentials", namespace: "s3csi" },
      type: "Opaque",
      stringData: { access_key_id: minio.accessKeyId, secret_access_key: minio.secretAccessKey },
    },
    "config.yaml": {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "s3csi-config", namespace: "s3csi" },
      data: { AWS_ENDPOINT_URL: minio.endpoint, AWS_REGION: minio.region },
    },
    "controller.yaml": {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "s3csi-controller", namespace: "s3csi" },
      spec: {
        template: {
          spec: {
            hostNetwork: true,
            containers: [
              // Host ports: the node plugin's /healthz has 9808 on this (the only) node.
              // Two replicas share the host's network: their metrics take any free port.
              {
                name: "s3csi",
                ...never,
                livenessProbe: null,
                ports: [...noPort(9808), ...noPort(9811)],
                env: [anyPort],
              },
              {
                name: "reconciler",
                ...never,
                env: [...apiEnv(cluster), anyPort],
                ports: noPort(9812),
              },
              {
                name: "csi-provisioner",
                ...never,
                env: apiEnv(cluster),
                livenessProbe: null,
                ports: noPort(8080),
                // The host's port 8080 may be anyone's: bind the health endpoint nowhere.
                args: [
                  "--csi-address=/csi/csi.sock",
                  "--extra-create-metadata",
                  "--leader-election",
                  "--timeout=60s",
                  "--v=2",
                ],
              },
              { name: "liveness-probe", $patch: "delete" },
            ],
          },
        },
      },
    },
    "node.yaml": {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "s3csi-node", namespace: "s3csi" },
      spec: {
        template: {
          spec: {
            hostNetwork: true,
            containers: [{
              name: "s3csi",
              ...never,
              env: apiEnv(cluster),
            }],
          },
        },
      },
    },
  };
  for (const [name, body] of Object.entries(files)) {
    // JSON is YAML.
    await Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(body, null, 1));
  }
}

/**
 * Applies the overlay and waits until the driver serves: the controller and
 * node pods ready, the node plugin registered with the kubelet (CSINode).
 */
export async function deployDriver(c: Cluster, dir: string): Promise<void> {
  await c.kubectl(["apply", "-k", dir]);
  await driverServing(c);
}

/** Waits until the controller and node pods are ready and the node is registered (CSINode). */
export async function driverServing(c: Cluster): Promise<void> {
  await c.kubectl([
    "-n",
    "s3csi",
    "rollout",
    "status",
    "deployment/s3csi-controller",
    `--timeout=${ROLLOUT_DEADLINE}`,
  ]);
  // `rollout status` does not follow an OnDelete DaemonSet.
  await waitFor(
    "the node plugin's pod ready",
    async () => {
      const ds = JSON.parse(
        await c.kubectl(["-n", "s3csi", "get", "daemonset/s3csi-node", "-o", "json"]),
      );
      const want = ds.status?.desiredNumberScheduled ?? 0;
      return want > 0 && ds.status?.numberReady === want;
    },
    () => c.kubectl(["-n", "s3csi", "describe", "pods", "-l", "app.kubernetes.io/component=node"]),
  );
  await waitFor("the node plugin's registration in CSINode", async () => {
    const n = JSON.parse(
      await c.kubectl(["get", "csinode", c.env.S3CSI_CLUSTER_NODE, "-o", "json"]).catch(() => "{}"),
    );
    return (n.spec?.drivers ?? []).some((d: { name: string }) => d.name === "s3.csi.scality.com");
  });
}

/** How long a condition may take before the test gives up (not a timing assert). */
const WAIT_DEADLINE_MS = 120_000;

/** Polls `check` until it returns a truthy value; throws naming `what` after the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false | null>,
  describe?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) {
      const more = describe ? `\n${await describe().catch((e) => String(e))}` : "";
      throw new Error(`timed out waiting for ${what}${more}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
