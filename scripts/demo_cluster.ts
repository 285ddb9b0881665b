/**
 * `scripts/demo --cluster`: the demo's story on the local single-node
 * Kubernetes (`scripts/cluster`, built and cached on first use). The driver
 * is deployed from `deploy/kubernetes/base` (the end-to-end tier's overlay:
 * local images, the demo's MinIO); a StorageClass and a claim make a bucket;
 * a workload pod writes a file through a Mountpoint Pod; the demo shows that
 * pod, the `MountpointS3PodAttachment` and the object in the bucket, then
 * deletes the workload and the claim and tears everything down. Needs root.
 *
 * @module
 */
import { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { type Cluster, clusterDown, clusterUp } from "../tests/cluster/cluster.ts";
import { deployDriver, writeOverlay } from "../tests/e2e/deploy.ts";
import { claim, E2e, MOUNT_NS, storageClass, workload } from "../tests/e2e/harness.ts";
import { minioClientConfig, type MinioServer, startMinio } from "../tests/support/minio.ts";

function step(msg: string): void {
  console.log(`\n==> ${msg}`);
}

function indent(text: string): string {
  return text.trimEnd().split("\n").map((l) => `    ${l}`).join("\n");
}

async function show(c: Cluster, args: string[]): Promise<void> {
  console.log(`    $ kubectl ${args.join(" ")}`);
  console.log(indent(await c.kubectl(args)));
}

async function demo(c: Cluster, minio: MinioServer, overlay: string): Promise<void> {
  const e = new E2e(c, new AwsObjectClient(minioClientConfig(minio)), minio);
  step("Deploying the driver from deploy/kubernetes/base (controller, reconciler, node plugin)");
  await writeOverlay(overlay, c, minio);
  await deployDriver(c, overlay);
  await show(c, ["-n", "s3csi", "get", "pods", "-o", "wide"]);

  step("A StorageClass and a claim: the provisioner asks the controller for a bucket");
  await e.apply(
    storageClass("s3-demo", { bucketNaming: "dedicated" }, { mountOptions: ["allow-delete"] }),
  );
  await e.apply(claim("demo", "s3-demo"));
  const { pv, bucket } = await e.bound("demo");
  await show(c, ["get", "pvc", "demo"]);
  console.log(`    PV ${pv} is bucket "${bucket}"`);

  step("A workload pod writes /data/hello.txt");
  const text = `hello from a pod, ${new Date().toISOString()}\n`;
  await e.apply(
    workload(
      c,
      "demo-writer",
      "demo",
      `Deno.writeTextFileSync("/data/hello.txt", ${JSON.stringify(text)});`,
    ),
  );
  await e.running("demo-writer");
  await show(c, ["get", "pod", "demo-writer", "-o", "wide"]);

  step(
    `The reconciler made a Mountpoint Pod in ${MOUNT_NS} and an attachment listing the workload`,
  );
  await show(c, ["-n", MOUNT_NS, "get", "pods", "-o", "wide"]);
  await show(c, ["get", "s3pa"]);

  step("The file is an object in the bucket");
  const got = await e.s3.getObject(bucket, "hello.txt");
  console.log(
    `    s3://${bucket}/hello.txt: ${JSON.stringify(new TextDecoder().decode(got.body))}`,
  );

  step("Deleting the workload: the node unmounts, the Mountpoint Pod and the attachment go");
  await e.deleteAndWait("pod", ["demo-writer"], "default");
  await e.noMountpointPods();
  await show(c, ["get", "s3pa"]);

  step("Deleting the claim: the bucket holds data, so it is kept (the PV goes)");
  await e.deleteAndWait("pvc", ["demo"], "default");
  await e.pvDeleted(pv);
  const left = await e.s3.listObjects(bucket);
  console.log(`    bucket "${bucket}" still holds ${left.objects.map((o) => o.key).join(", ")}`);
}

let code = 0;
let minio: MinioServer | undefined;
const overlay = await Deno.makeTempDir({ prefix: "s3csi-demo-cluster-" });
try {
  step("Bringing up the local single-node Kubernetes (built and cached on first run)");
  const c = await clusterUp();
  console.log(`    API server ${c.env.S3CSI_CLUSTER_API}, node ${c.env.S3CSI_CLUSTER_NODE}`);
  step(`Starting MinIO on ${c.env.S3CSI_CLUSTER_HOST_IP}, where pods reach it`);
  minio = await startMinio({ host: c.env.S3CSI_CLUSTER_HOST_IP, quiet: true });
  console.log(`    endpoint ${minio.endpoint}`);
  await demo(c, minio, overlay);
  step("Done: tearing down");
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.stack : err}`);
  code = 1;
} finally {
  await clusterDown().catch((err) => console.error(`cluster down failed: ${err}`));
  await minio?.stop().catch(() => {});
  await Deno.remove(overlay, { recursive: true }).catch(() => {});
}
Deno.exit(code);
