/**
 * The fault tier, controller side: `s3csi controller` provisions through
 * Toxiproxy in front of MinIO. With S3 down, or with every answer lost on
 * the way back (the bucket made, the reply cut), CreateVolume and
 * DeleteVolume fail with a code the provisioner retries, and the retries,
 * once S3 answers again, converge on exactly one bucket per volume. A
 * controller killed between making a bucket and tagging it leaves a bucket
 * that the retry adopts.
 */
import assert from "node:assert/strict";
import { CsiClient, mountCapability } from "../support/csi_client.ts";
import { spawnDriver } from "../support/driver.ts";
import {
  listBucketNames,
  minioEnv,
  type MinioServer,
  pids,
  startMinio,
  tempDir,
} from "../support/mod.ts";
import { type Proxy, startToxiproxy } from "../support/toxiproxy.ts";
import { startSlowdownProxy } from "../support/slowdown_proxy.ts";

/** Codes external-provisioner retries (it retries every code, but these say "try again"). */
const RETRYABLE = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "INTERNAL"];

async function withController(fn: (csi: CsiClient, proxy: Proxy, m: MinioServer) => Promise<void>) {
  const minio = await startMinio({ quiet: true });
  const toxiproxy = await startToxiproxy();
  const dir = await tempDir("s3csi-ctl-faults-");
  const socket = `${dir}/csi.sock`;
  const proxy = await toxiproxy.proxy("s3", new URL(minio.endpoint).host);
  const driver = await spawnDriver({
    socket,
    args: [
      "controller",
      "--endpoint",
      `unix://${socket}`,
      "--s3-endpoint-url",
      proxy.endpoint,
      "--aws-max-attempts",
      "2",
    ],
    env: minioEnv(minio),
  });
  const csi = new CsiClient(socket);
  try {
    await fn(csi, proxy, minio);
  } finally {
    csi.close();
    await driver.stop();
    await toxiproxy.stop();
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const createReq = (name: string) => ({
  name,
  capacity_range: { required_bytes: 1 << 30 },
  volume_capabilities: [mountCapability()],
  parameters: {},
});

Deno.test("faults: CreateVolume and DeleteVolume with S3 down fail with a retryable code; their retries converge on one bucket, then none", async () => {
  await withController(async (csi, proxy, minio) => {
    await proxy.setEnabled(false);
    const down = await csi.code("Controller", "CreateVolume", createReq("pvc-down"));
    assert.ok(RETRYABLE.includes(down.code), `retryable: ${down.code} ${down.details}`);
    console.log(`S3 down: CreateVolume ${down.code} (${down.details})`);
    await proxy.setEnabled(true);
    const first = await csi.call("Controller", "CreateVolume", createReq("pvc-down")) as {
      volume: { volume_id: string };
    };
    const again = await csi.call("Controller", "CreateVolume", createReq("pvc-down")) as {
      volume: { volume_id: string };
    };
    assert.equal(again.volume.volume_id, first.volume.volume_id);
    assert.deepEqual((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")), [
      first.volume.volume_id,
    ]);
    await proxy.setEnabled(false);
    const del = await csi.code("Controller", "DeleteVolume", { volume_id: first.volume.volume_id });
    assert.ok(RETRYABLE.includes(del.code), `retryable: ${del.code} ${del.details}`);
    await proxy.setEnabled(true);
    await csi.call("Controller", "DeleteVolume", { volume_id: first.volume.volume_id });
    assert.deepEqual((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")), []);
  });
});

Deno.test("faults: CreateVolume whose answers are all lost on the way back (the bucket made, the reply cut) converges on one bucket once they arrive", async () => {
  await withController(async (csi, proxy, minio) => {
    // Every connection closes before a byte of the answer reaches the controller.
    const cut = await proxy.add({ type: "limit_data", attributes: { bytes: 1 } });
    const lost = await csi.code("Controller", "CreateVolume", createReq("pvc-lost"));
    assert.ok(RETRYABLE.includes(lost.code), `retryable: ${lost.code} ${lost.details}`);
    const made = (await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-"));
    console.log(
      `answers lost: ${lost.code} (${lost.details}); buckets made meanwhile: ${made.length}`,
    );
    await proxy.remove(cut);
    const ok = await csi.call("Controller", "CreateVolume", createReq("pvc-lost")) as {
      volume: { volume_id: string };
    };
    assert.deepEqual((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")), [
      ok.volume.volume_id,
    ]);
  });
});

Deno.test("faults: the controller SIGKILLed between CreateBucket and tagging the bucket: the provisioner's retry, to a new controller, gives one consistent volume", async () => {
  const minio = await startMinio({ quiet: true });
  const url = new URL(minio.endpoint);
  const proxy = startSlowdownProxy({ hostname: url.hostname, port: Number(url.port) });
  const dir = await tempDir("s3csi-ctl-kill-");
  const socket = `${dir}/csi.sock`;
  const start = () =>
    spawnDriver({
      socket,
      args: ["controller", "--endpoint", `unix://${socket}`, "--s3-endpoint-url", proxy.endpoint],
      env: minioEnv(minio),
    });
  let driver = await start();
  let csi = new CsiClient(socket);
  try {
    // The tagging request is held: the bucket exists, its tags do not, when the process dies.
    const tagging = proxy.hold(/^PUT \S*[?&]tagging/);
    const first = csi.call("Controller", "CreateVolume", createReq("pvc-killed")).catch((e) => e);
    await tagging;
    const [pid] = await pids(socket);
    Deno.kill(pid, "SIGKILL");
    await driver.status;
    assert.ok(await first instanceof Error, "the call in flight failed");
    assert.equal((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")).length, 1);
    csi.close();
    await Deno.remove(socket); // the dead process's; the new one is waited for by its socket
    driver = await start();
    csi = new CsiClient(socket);
    const retried = await csi.call("Controller", "CreateVolume", createReq("pvc-killed")) as {
      volume: { volume_id: string };
    };
    assert.deepEqual((await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-")), [
      retried.volume.volume_id,
    ]);
    // Consistent: the adopted bucket now carries the volume's record, so a conflicting request is refused.
    const again = await csi.call("Controller", "CreateVolume", createReq("pvc-killed")) as {
      volume: { volume_id: string };
    };
    assert.equal(again.volume.volume_id, retried.volume.volume_id);
    const conflict = await csi.code("Controller", "CreateVolume", {
      ...createReq("pvc-killed"),
      capacity_range: { required_bytes: 1 << 20, limit_bytes: 1 << 20 },
    });
    assert.equal(conflict.code, "ALREADY_EXISTS", conflict.details);
  } finally {
    csi.close();
    await driver.stop();
    await proxy.stop();
    await minio.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
