/**
 * The local end-to-end demo behind `scripts/demo`: real MinIO, real driver
 * processes talking CSI over unix sockets, printed step by step.
 *
 * @module
 */
import { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { CsiClient, mountCapability } from "../tests/support/csi_client.ts";
import { type DriverProcess, spawnDriver } from "../tests/support/driver.ts";
import { minioClientConfig, startMinio, tempDir } from "../tests/support/mod.ts";

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
    env: {
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      AWS_REGION: minio.region,
    },
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

  step("Writing an object into the bucket, then DeleteVolume: the bucket is kept");
  await s3.putObject(volume.volume_id, "hello.txt", new TextEncoder().encode("hello from s3csi\n"));
  await csi.call("Controller", "DeleteVolume", { volume_id: volume.volume_id });
  await s3.headBucket(volume.volume_id);
  console.log(
    `    DeleteVolume returned OK; bucket and hello.txt are still there (data is never deleted)`,
  );

  step("Emptying the bucket, then DeleteVolume: the bucket is removed");
  await s3.deleteObject(volume.volume_id, "hello.txt");
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
