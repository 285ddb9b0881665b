/**
 * Metrics as an operator sees them: a real Prometheus scrapes the node's
 * endpoint while a volume is created, published and written through the
 * real kernel FUSE on a real MinIO, and its query API returns what happened:
 * the CreateVolume count, the bytes `dd` wrote (through FUSE and to S3,
 * labelled with the volume's ID), the mounts the node holds, and after
 * unpublish no mount left.
 */
import assert from "node:assert/strict";
import { CsiClient, mountCapability } from "../support/csi_client.ts";
import { spawnNode } from "../support/driver.ts";
import { startPrometheus } from "../support/prometheus.ts";
import { detachFuseMountsUnder, freePort, startMinio } from "../support/mod.ts";

const PLUGIN = "plugins/s3.csi.scality.com";
const SIZE = 3 * 1024 * 1024;

/** Polls `check` until it returns true; fails with the last value seen. */
async function eventually(
  what: string,
  check: () => Promise<{ ok: boolean; seen: unknown }>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: unknown;
  while (Date.now() < deadline) {
    const r = await check();
    if (r.ok) return;
    seen = r.seen;
    await new Promise((res) => setTimeout(res, 500));
  }
  assert.fail(`${what}: last seen ${JSON.stringify(seen)}`);
}

Deno.test("Prometheus scraping the node sees CreateVolume, the bytes dd wrote per volume, and the mounts", async () => {
  const minio = await startMinio();
  const metricsPort = freePort();
  const { driver, kubelet, socket } = await spawnNode(minio, "metrics-node", [
    "--controller",
    "--metrics-address",
    `127.0.0.1:${metricsPort}`,
  ]);
  const csi = new CsiClient(socket);
  const prom = await startPrometheus({ node: `127.0.0.1:${metricsPort}` });
  const value = async (expr: string) => {
    const r = await prom.query(expr);
    return { ok: false, seen: r, values: r.map((s) => s.value) };
  };
  try {
    const { volume } = await csi.call("Controller", "CreateVolume", {
      name: "pvc-metrics",
      volume_capabilities: [mountCapability()],
      capacity_range: { required_bytes: 1 << 30 },
    });
    const id = volume.volume_id as string;
    const target = `${kubelet}/pods/pod-m/volumes/kubernetes.io~csi/pv-m/mount`;
    await csi.call("Node", "NodePublishVolume", {
      volume_id: id,
      target_path: target,
      volume_capability: mountCapability(),
      volume_context: volume.volume_context,
      readonly: false,
    });
    const dd = await new Deno.Command("dd", {
      args: ["if=/dev/urandom", `of=${target}/blob`, "bs=1M", "count=3", "status=none"],
    }).output();
    assert.equal(dd.code, 0, new TextDecoder().decode(dd.stderr));

    await eventually("the CreateVolume count", async () => {
      const v = await value(
        'sum(s3csi_csi_requests_total{job="node",method="CreateVolume",code="OK"})',
      );
      return { ok: v.values[0] === 1, seen: v.seen };
    });
    const sel = `{job="node",volume_id="${id}"}`;
    await eventually("the bytes dd wrote through FUSE, for this volume", async () => {
      const v = await value(`s3csi_fuse_written_bytes_total${sel}`);
      return { ok: v.values.length === 1 && v.values[0] === SIZE, seen: v.seen };
    });
    await eventually("the bytes uploaded to S3, for this volume", async () => {
      const v = await value(`s3csi_s3_sent_bytes_total${sel}`);
      return { ok: v.values[0] === SIZE, seen: v.seen };
    });
    await eventually("FUSE WRITE requests answered without error", async () => {
      const v = await value(
        `s3csi_fuse_requests_total{job="node",volume_id="${id}",` +
          'opcode="WRITE",errno="0"}',
      );
      return { ok: (v.values[0] ?? 0) > 0, seen: v.seen };
    });
    await eventually("one mount held by the node", async () => {
      const v = await value('s3csi_mounts_active{job="node",volume_id=""}');
      return { ok: v.values[0] === 1, seen: v.seen };
    });

    // The exposition carries no credential.
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.ok(!text.includes(minio.secretAccessKey), "no secret key in the metrics");
    assert.ok(!text.includes(minio.accessKeyId), "no access key in the metrics");

    await csi.call("Node", "NodeUnpublishVolume", { volume_id: id, target_path: target });
    await eventually("no mount left after unpublish, and the volume's series gone", async () => {
      const mounts = await value('s3csi_mounts_active{job="node",volume_id=""}');
      const vol = await value(`s3csi_fuse_written_bytes_total${sel}`);
      return {
        ok: mounts.values[0] === 0 && vol.values.length === 0,
        seen: { mounts: mounts.seen, vol: vol.seen },
      };
    });
    const health = await prom.targets();
    assert.deepEqual(health.map((t) => [t.job, t.health]), [["node", "up"]]);
  } finally {
    await prom.stop();
    csi.close();
    await driver.stop();
    await detachFuseMountsUnder(kubelet);
    await new Deno.Command("pkill", { args: ["-f", `${kubelet}/${PLUGIN}/state`] }).output();
    await minio.stop();
    await Deno.remove(kubelet, { recursive: true }).catch(() => {});
  }
});
