/**
 * Publish latency: how long a pod waits for its volume. `s3csi node` runs as
 * its own process (as in a cluster, with kubelet's directory layout under a
 * temporary directory); each round publishes a static volume of a distinct
 * volume ID to a fresh target, so every call starts a new `s3csi mount`
 * process, and the time runs from the NodePublishVolume call until a
 * `readdir` of the target answers from the mount.
 *
 * The baseline is what no driver can avoid: a new Deno process that builds
 * the S3 client and sends HeadBucket and one ListObjectsV2 page, timed from
 * spawn to exit. Run as a script (`bench_publish.ts --raw <endpoint>
 * <bucket>`, credentials in the environment) it is that process.
 *
 * @module
 */
import { AwsObjectClient } from "../internal/s3/aws_object_client.ts";
import { CsiClient, mountCapability } from "../tests/support/csi_client.ts";
import { spawnNode } from "../tests/support/driver.ts";
import { detachFuseMountsUnder, minioEnv, type MinioServer } from "../tests/support/mod.ts";
import { median } from "./bench_shell.ts";

export interface PublishTimes {
  /** NodePublishVolume until the target lists the bucket's root, per round (ms). */
  publish: number[];
  /** Process start + HeadBucket + ListObjectsV2, per round (ms). */
  raw: number[];
}

/** `rounds` publishes of `bucket` through a node process, and as many raw baselines. */
export async function publishLatency(
  minio: MinioServer,
  bucket: string,
  rounds: number,
): Promise<PublishTimes> {
  const { driver, kubelet, socket } = await spawnNode(minio, "bench-node");
  const csi = new CsiClient(socket);
  const publish: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const target = `${kubelet}/pods/pod-${i}/volumes/kubernetes.io~csi/pv-${i}/mount`;
      const volumeId = `bench-pv-${i}`;
      const t = performance.now();
      await csi.call("Node", "NodePublishVolume", {
        volume_id: volumeId,
        target_path: target,
        volume_capability: mountCapability(),
        volume_context: { bucketName: bucket },
        readonly: false,
      });
      // One entry is enough; breaking out closes the directory (an open one would keep the mount busy).
      for await (const _ of Deno.readDir(target)) break;
      publish.push(performance.now() - t);
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: volumeId, target_path: target });
    }
  } finally {
    csi.close();
    await driver.stop();
    await detachFuseMountsUnder(kubelet);
    await Deno.remove(kubelet, { recursive: true }).catch(() => {});
  }
  const raw: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--raw", minio.endpoint, bucket],
      env: minioEnv(minio),
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`raw publish baseline failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    raw.push(performance.now() - t);
  }
  return { publish, raw };
}

/** The table row's cells: medians with the range. */
export function publishCells(
  t: PublishTimes,
): { mount: string; baseline: string; ratio: string } {
  const fmt = (xs: number[]) =>
    `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  const ratio = `${(median(t.raw) / median(t.publish) * 100).toFixed(0)} %`;
  return { mount: fmt(t.publish), baseline: fmt(t.raw), ratio };
}

if (import.meta.main && Deno.args[0] === "--raw") {
  const [, endpoint, bucket] = Deno.args;
  const env = (name: string) => Deno.env.get(name) ?? "";
  const client = new AwsObjectClient({
    endpointUrl: endpoint,
    region: env("AWS_REGION"),
    forcePathStyle: true,
    credentials: {
      accessKeyId: env("AWS_ACCESS_KEY_ID"),
      secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
    },
  });
  await client.headBucket(bucket);
  await client.listObjects(bucket, { delimiter: "/", maxKeys: 1000 });
  client.close();
}
