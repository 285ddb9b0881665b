/**
 * The CSI node plugin restarted under a live mount (process mounter, real
 * kernel FUSE, real MinIO): the mount keeps serving while no node runs, the
 * new node takes a keeper back from the server (internal/takeover/
 * keeper.ts), and when the server is then killed, the new node replaces
 * it on the live connection: node and server restarted one after the
 * other, and the workload's reads never see ENOTCONN.
 */
import assert from "node:assert/strict";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { checkMount } from "../../internal/fuse/mod.ts";
import { CsiClient } from "../support/csi_client.ts";
import { type NodeProcess, spawnNode } from "../support/driver.ts";
import {
  detachFuseMountsUnder,
  fuseMountsUnder,
  minioClientConfig,
  startMinio,
} from "../support/mod.ts";
import { PLUGIN, publishReq, serverPid, target } from "../support/node_env.ts";
import { canMount, errnoName } from "../mount/harness.ts";

/** Reads `path` in a loop until `stop()`; the errno name of every failed read. */
function readLoop(path: string, expected: string): { stop(): Promise<string[]> } {
  let running = true;
  const errors: string[] = [];
  const done = (async () => {
    while (running) {
      try {
        const text = await Deno.readTextFile(path);
        if (text !== expected) errors.push(`wrong content "${text.slice(0, 20)}"`);
      } catch (err) {
        errors.push(errnoName(err));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return errors;
    },
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test({
  name:
    "the node plugin restarts under a live mount, takes its keeper back, and replaces the mount server killed afterwards: reads never fail",
  ignore: !canMount,
  async fn() {
    const minio = await startMinio();
    const s3 = new AwsObjectClient(minioClientConfig(minio));
    let node: NodeProcess | undefined;
    let kubelet = "";
    try {
      node = await spawnNode(minio, "restart-node", ["--controller"]);
      kubelet = node.kubelet;
      const stateRoot = `${kubelet}/${PLUGIN}/state`;
      await s3.createBucket("restart-bucket");
      await s3.putObject("restart-bucket", "data.txt", new TextEncoder().encode("steady"));
      const t = target(kubelet, "pod-restart");
      let csi = new CsiClient(node.socket);
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq("restart-vol", { bucketName: "restart-bucket" }, t),
      );
      csi.close();
      const reads = readLoop(`${t}/data.txt`, "steady");
      const first = await serverPid(stateRoot);

      // The node goes; its mount server goes on serving.
      await node.driver.stop();
      await Deno.remove(node.socket).catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await checkMount(t), "ok", "the mount serves while no node runs");

      node = await spawnNode(minio, "restart-node", ["--controller"], kubelet);
      await waitFor(
        () => Promise.resolve(node!.driver.output().includes("took back the keeper")),
        "the new node to take the keeper back",
      );

      // Now the server dies: the new node replaces it.
      Deno.kill(first, "SIGKILL");
      await waitFor(async () => (await serverPid(stateRoot)) !== first, "a replacement");
      // Its pid file comes first; the node says so once the replacement serves.
      await waitFor(
        () => Promise.resolve(node!.driver.output().includes("mount process replaced")),
        "the node to say the replacement serves",
      );
      await new Promise((r) => setTimeout(r, 300));
      const errors = await reads.stop();
      assert.ok(!errors.includes("ENOTCONN"), `no ENOTCONN: ${errors}`);
      // A read the dead server had taken fails once, with ECONNABORTED; nothing else fails.
      assert.ok(errors.every((e) => e === "ECONNABORTED") && errors.length <= 1, `${errors}`);
      await Deno.writeTextFile(`${t}/after.txt`, "new");
      assert.ok(await s3.headObject("restart-bucket", "after.txt"));

      csi = new CsiClient(node.socket);
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "restart-vol", target_path: t });
      csi.close();
      assert.deepEqual(await fuseMountsUnder(kubelet), []);
    } finally {
      await node?.driver.stop();
      if (kubelet) {
        await detachFuseMountsUnder(kubelet);
        await new Deno.Command("pkill", { args: ["-f", `${kubelet}/${PLUGIN}/state`] }).output();
        await Deno.remove(kubelet, { recursive: true }).catch(() => {});
      }
      s3.close();
      await minio.stop();
    }
  },
});
