/**
 * The end-to-end tier: the driver installed with its Helm chart on the real
 * single-node test cluster (`scripts/cluster`), against a MinIO that the
 * pods reach on the host's pod-network address. It follows what a user
 * does, in one cluster run (the scenarios are in their own files):
 * - `helm.ts` `installChart`: `helm install` with this machine's values;
 * - `workloads.ts`: provisioning, a workload's file in the bucket through a
 *   Mountpoint Pod and an attachment, the node's metrics of that mount,
 *   sharing, cleanup, bucket deletion, static and read-only volumes;
 * - `privileges.ts`: the Mountpoint Pod's server unprivileged, its
 *   credentials file its own, no TCP listener nobody asked for;
 * - `resilience.ts`: a Mountpoint Pod deleted, the node plugin restarted and
 *   the reconciler's leader killed under running workloads;
 * - `provisioning.ts`: templated per-namespace secrets, a missing secret,
 *   `WaitForFirstConsumer` and `Retain`;
 * - `helm.ts` `helmChart`: dry runs of other value sets, `s3csi doctor` in
 *   the node pod, `helm upgrade`, `helm uninstall` leaving nothing;
 * - `kustomize.ts`: the same driver from `deploy/kubernetes/base`, a
 *   workload through it, `kubectl delete -k` leaving nothing.
 *
 * Everything is torn down whatever happens: the cluster (which also unmounts
 * what pods left), MinIO, the overlay; no mount may be left under the
 * kubelet's directory.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readMountInfo } from "../../internal/fuse/mod.ts";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { type Cluster, clusterDown, clusterUp } from "../cluster/cluster.ts";
import { minioClientConfig, type MinioServer, startMinio } from "../support/minio.ts";
import { E2e } from "./harness.ts";
import { helmChart, installChart } from "./helm.ts";
import { kustomizeManifests } from "./kustomize.ts";
import { templatedSecrets, waitForFirstConsumer } from "./provisioning.ts";
import { privileges } from "./privileges.ts";
import { leaderKilled, mountpointPodDeleted, nodePluginRestart } from "./resilience.ts";
import { cleanUp, provisionAndShare, staticVolumes } from "./workloads.ts";

const isRoot = Deno.uid() === 0;
if (!isRoot) console.warn("tests/e2e: skipped: running a kubelet and containerd needs root");

/** Mount points at or below any of `dirs`. */
async function mountsUnder(dirs: string[]): Promise<string[]> {
  return (await readMountInfo()).map((m) => m.mountPoint)
    .filter((p) => dirs.some((d) => p === d || p.startsWith(d + "/")));
}

Deno.test({
  name:
    "e2e: the driver installed with Helm provisions, mounts through Mountpoint Pods and cleans up",
  ignore: !isRoot,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = Date.now();
    let cluster: Cluster | undefined;
    let minio: MinioServer | undefined;
    const overlay = await Deno.makeTempDir({ prefix: "s3csi-e2e-" });
    try {
      cluster = await clusterUp();
      minio = await startMinio({ host: cluster.env.S3CSI_CLUSTER_HOST_IP, quiet: true });
      const e = new E2e(cluster, new AwsObjectClient(minioClientConfig(minio)), minio);
      await installChart(e, minio);
      console.log(`driver installed after ${((Date.now() - started) / 1000).toFixed(1)}s`);
      // A failed step fails the test; later steps still run, each on what it finds.
      const step = (name: string, fn: () => Promise<void>) => t.step(name, fn);

      const vol = await provisionAndShare(e, step);
      await privileges(e, step, vol);
      await mountpointPodDeleted(e, step, vol);
      await nodePluginRestart(e, step, vol);
      await leaderKilled(e, step, vol);
      await cleanUp(e, step, vol);
      await staticVolumes(e, step);
      await templatedSecrets(e, step);
      await waitForFirstConsumer(e, step);
      await helmChart(e, step, minio);
      await kustomizeManifests(e, step, overlay, minio);
    } finally {
      const stopping = Date.now();
      try {
        await clusterDown();
      } finally {
        await minio?.stop();
        await Deno.remove(overlay, { recursive: true }).catch(() => {});
      }
      console.log(`cluster down in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
      console.log(`e2e tier took ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    const env = cluster?.env;
    if (env) {
      assert.deepEqual(await mountsUnder([env.S3CSI_KUBELET_DIR, env.S3CSI_CLUSTER_DIR]), []);
    }
  },
});
