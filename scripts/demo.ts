/**
 * The local end-to-end demo behind `scripts/demo`: real MinIO, real driver
 * processes talking CSI over unix sockets, a real FUSE mount, printed step
 * by step. Needs root (it mounts file systems).
 *
 * @module
 */
import { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { CsiClient, mountCapability } from "../tests/support/csi_client.ts";
import { type DriverProcess, spawnDriver } from "../tests/support/driver.ts";
import { minioClientConfig, minioEnv, startMinio, tempDir } from "../tests/support/mod.ts";

function step(msg: string): void {
  console.log(`\n==> ${msg}`);
}

const started: Array<() => Promise<unknown>> = [];

async function main(): Promise<void> {
  step("Starting a local S3 server (MinIO on 127.0.0.1)");
  const minio = await startMinio();
  started.push(() => minio.stop());
  console.log(`    endpoint ${minio.endpoint}, region ${minio.region}`);
  const s3 = new AwsObjectClient(minioClientConfig(minio));

  const dir = await tempDir("s3csi-demo-");
  started.push(() => Deno.remove(dir, { recursive: true }));
  const socket = `${dir}/controller.sock`;
  step("Starting s3csi controller");
  const controller: DriverProcess = await spawnDriver({
    socket,
    args: ["controller", "--endpoint", `unix://${socket}`, "--s3-endpoint-url", minio.endpoint],
    env: minioEnv(minio),
  });
  started.push(() => controller.stop());
  console.log(`    listening on unix://${socket}`);
  const csi = new CsiClient(socket);
  started.push(() => Promise.resolve(csi.close()));

  const info = await csi.call("Identity", "GetPluginInfo", {});
  console.log(`    GetPluginInfo: ${info.name} ${info.vendor_version}`);

  step('CreateVolume "pvc-demo" (dedicated bucket, 1 GiB, ReadWriteMany)');
  const req = {
    name: "pvc-demo",
    capacity_range: { required_bytes: 1 << 30 },
    volume_capabilities: [mountCapability()],
    parameters: {},
  };
  const { volume } = await csi.call("Controller", "CreateVolume", req);
  console.log(`    volume_id      ${volume.volume_id}`);
  console.log(`    volume_context ${JSON.stringify(volume.volume_context)}`);
  await s3.headBucket(volume.volume_id);
  console.log(`    bucket "${volume.volume_id}" exists in S3`);

  step("CreateVolume again with the same name (a retry): same volume, no second bucket");
  const again = await csi.call("Controller", "CreateVolume", req);
  console.log(
    `    volume_id      ${again.volume.volume_id} (same: ${
      again.volume.volume_id === volume.volume_id
    })`,
  );

  step("Starting s3csi node (kubelet directory: a temporary directory)");
  const kubelet = `${dir}/kubelet`;
  await Deno.mkdir(kubelet);
  const nodeSocket = `${dir}/node.sock`;
  const node: DriverProcess = await spawnDriver({
    socket: nodeSocket,
    args: [
      "node",
      "--endpoint",
      `unix://${nodeSocket}`,
      "--kubelet-path",
      kubelet,
      "--node-id",
      "demo-node",
      "--s3-endpoint-url",
      minio.endpoint,
    ],
    env: minioEnv(minio),
  });
  started.push(() => node.stop());
  const nodeCsi = new CsiClient(nodeSocket);
  started.push(() => Promise.resolve(nodeCsi.close()));
  console.log(`    listening on unix://${nodeSocket}`);

  const target = `${kubelet}/pods/demo-pod-uid/volumes/kubernetes.io~csi/pvc-demo/mount`;
  step("NodePublishVolume: mount the volume at a pod's target directory (what kubelet asks for)");
  const publish = {
    volume_id: volume.volume_id,
    target_path: target,
    volume_capability: mountCapability("MULTI_NODE_MULTI_WRITER", ["allow-delete"]),
    volume_context: volume.volume_context,
  };
  await nodeCsi.call("Node", "NodePublishVolume", publish);
  console.log(`    mounted at ${target}`);
  const mountLine = (await Deno.readTextFile("/proc/self/mounts")).split("\n").find((l) =>
    l.includes(target)
  );
  console.log(`    /proc/mounts: ${mountLine}`);

  step("Writing a file through the mount, then reading it back");
  const text = `hello from a pod, written at ${new Date().toISOString()}\n`;
  await Deno.mkdir(`${target}/reports`);
  await Deno.writeTextFile(`${target}/reports/hello.txt`, text);
  console.log(`    wrote   reports/hello.txt (${text.length} bytes)`);
  const back = await Deno.readTextFile(`${target}/reports/hello.txt`);
  console.log(`    read    ${JSON.stringify(back)} (same: ${back === text})`);
  const listing = await new Deno.Command("ls", { args: ["-l", `${target}/reports`] }).output();
  console.log(new TextDecoder().decode(listing.stdout).trimEnd().replace(/^/gm, "    "));

  step("The object in the bucket, seen directly through S3");
  const head = await s3.headObject(volume.volume_id, "reports/hello.txt");
  console.log(
    `    s3://${volume.volume_id}/reports/hello.txt: ${head?.size} bytes, ETag ${head?.etag}`,
  );
  const obj = await s3.getObject(volume.volume_id, "reports/hello.txt");
  console.log(`    content: ${JSON.stringify(new TextDecoder().decode(obj.body))}`);

  step("NodeUnpublishVolume: the target is unmounted and removed, the FUSE mount stops");
  await nodeCsi.call("Node", "NodeUnpublishVolume", {
    volume_id: volume.volume_id,
    target_path: target,
  });
  const still = (await Deno.readTextFile("/proc/self/mounts")).includes(kubelet);
  console.log(
    `    mounts left under the kubelet directory: ${still ? "some (unexpected)" : "none"}`,
  );

  step("DeleteVolume while the bucket holds data: the bucket is kept (data is never deleted)");
  await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
  await s3.headBucket(volume.volume_id);
  console.log(
    `    DeleteVolume returned OK; bucket "${volume.volume_id}" and its object are still there`,
  );

  step("Emptying the bucket, then DeleteVolume: the bucket is removed");
  await s3.deleteObject(volume.volume_id, "reports/hello.txt");
  await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
  try {
    await s3.headBucket(volume.volume_id);
    throw new Error("bucket still exists");
  } catch (err) {
    if ((err as { code?: string }).code !== "NoSuchBucket") throw err;
    console.log(`    bucket "${volume.volume_id}" is gone`);
  }
  step("Done");
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.stack : err}`);
  code = 1;
} finally {
  for (const stop of started.reverse()) await stop().catch(() => {});
}
Deno.exit(code);
