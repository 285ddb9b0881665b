/**
 * Live takeover with the process mounter, end to end: a real `s3csi node`
 * publishes a volume from a real MinIO through the kernel's FUSE, and its
 * mount server is killed with SIGKILL under load. The node replaces it on
 * the live connection (internal/mounter/process_mounter.ts), the successor
 * replays the journal (internal/takeover), and the workload's mount never
 * reports ENOTCONN.
 *
 * The workload here is the test process itself, reading and listing with
 * Deno's file APIs (it never serves the mount, so it may): errors are
 * collected by errno name rather than thrown, so that the test can say
 * which calls failed and how often.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { checkMount } from "../../internal/fuse/mod.ts";
import { canMount, errnoOf, MIB } from "../mount/harness.ts";
import { listLoop, randomBytes, streamRead, waitFor } from "./load.ts";
import { fuseMountsUnder, listUploads } from "../support/mod.ts";
import { publishReq, serverPid, target, withNode } from "../support/node_env.ts";

const BIG = 1024 * MIB;
const KILL_AT = 256 * MIB;

Deno.test({
  name:
    "a mount server SIGKILLed under a 1 GiB reader and a lister is replaced on the live mount: no ENOTCONN, the right bytes to the end, new files after",
  ignore: !canMount,
  async fn() {
    await withNode(async ({ csi, s3, kubelet, stateRoot, driver }) => {
      await s3.createBucket("live");
      const big = randomBytes(BIG);
      const expected = createHash("sha256").update(big).digest("hex");
      await s3.putObject("live", "big.bin", big);
      for (let i = 0; i < 20; i++) await s3.putObject("live", `d/f${i}`, new Uint8Array([i]));
      const t = target(kubelet, "pod-live");
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq("live-vol", { bucketName: "live" }, t),
      );

      const lister = listLoop(`${t}/d`);
      const started = performance.now();
      const pid = await serverPid(stateRoot);
      const kill: { at: number; served?: Promise<number> } = { at: 0 };
      const read = await streamRead(`${t}/big.bin`, (offset) => {
        if (kill.served || offset < KILL_AT) return;
        Deno.kill(pid, "SIGKILL");
        kill.at = performance.now();
        // The first listing answered after the kill: the successor serves.
        kill.served = waitFor(async () => {
          for await (const _ of Deno.readDir(`${t}/d`)) { /* each entry */ }
          return true;
        }, "the first request served after the kill");
      });
      assert.ok(kill.served, "the server was killed during the read");
      const servedAfterMs = await kill.served;
      const listed = await lister.stop();
      console.log(
        `takeover: first request served ${servedAfterMs.toFixed(0)} ms after SIGKILL ` +
          `(read ${(KILL_AT / MIB)} MiB in ${(kill.at - started).toFixed(0)} ms before it, ` +
          `the other ${(BIG - KILL_AT) / MIB} MiB in ${
            (performance.now() - kill.at).toFixed(0)
          } ms after); ` +
          `reader errors [${read.errors}], lister errors [${listed.errors}] in ${listed.lists} listings`,
      );

      assert.equal(read.sha256, expected, "the reader got the right bytes to the end");
      const all = [...read.errors, ...listed.errors];
      assert.ok(!all.includes("ENOTCONN"), `no ENOTCONN: ${all}`);
      // Only the calls the dead server had read fail, once each.
      assert.ok(all.every((e) => e === "ECONNABORTED"), `only aborted calls fail: ${all}`);
      assert.ok(read.errors.length <= 1 && listed.errors.length <= 1, `at most once: ${all}`);
      assert.notEqual(await serverPid(stateRoot), pid, "a new server serves");
      assert.match(driver.output(), /mount process replaced/);

      await Deno.writeTextFile(`${t}/after.txt`, "after the takeover");
      assert.equal(await Deno.readTextFile(`${t}/after.txt`), "after the takeover");
      assert.ok(await s3.headObject("live", "after.txt"));
      assert.equal(await checkMount(t), "ok");

      const successor = await serverPid(stateRoot);
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "live-vol", target_path: t });
      assert.deepEqual(await fuseMountsUnder(kubelet), []);
      await waitFor(async () => {
        try {
          await Deno.stat(`/proc/${successor}`);
          return false;
        } catch {
          return true;
        }
      }, "the successor to exit after unpublish");
    });
  },
});

Deno.test({
  name:
    "a write in progress when its mount server is killed fails with EIO after the takeover; no object and no multipart upload is left",
  ignore: !canMount,
  async fn() {
    await withNode(async ({ minio, csi, s3, kubelet, stateRoot }) => {
      await s3.createBucket("wr-bucket");
      const t = target(kubelet, "pod-wr");
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq("wr-vol", { bucketName: "wr-bucket" }, t),
      );
      const f = await Deno.open(`${t}/half.bin`, { write: true, create: true });
      try {
        const chunk = randomBytes(MIB);
        for (let i = 0; i < 20; i++) await f.write(chunk);
        // 20 MiB is two 8 MiB parts sent: the multipart upload exists in S3.
        await waitFor(
          async () => (await listUploads(minio, "wr-bucket")).length === 1,
          "the upload",
        );
        const pid = await serverPid(stateRoot);
        Deno.kill(pid, "SIGKILL");
        await waitFor(async () => (await serverPid(stateRoot)) !== pid, "a replacement");
        assert.equal(await errnoOf(f.write(chunk)), "EIO", "a write after the takeover");
        assert.equal(await errnoOf(f.sync()), "EIO", "fsync after the takeover");
      } finally {
        f.close();
      }
      // The successor aborts the upload the dead server left, in the background.
      await waitFor(
        async () => (await listUploads(minio, "wr-bucket")).length === 0,
        "no upload left",
      );
      assert.equal(await s3.headObject("wr-bucket", "half.bin"), null, "no object");
      await assert.rejects(Deno.stat(`${t}/half.bin`), "the name is gone too");
      await Deno.writeTextFile(`${t}/half.bin`, "whole");
      assert.equal(await Deno.readTextFile(`${t}/half.bin`), "whole");
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "wr-vol", target_path: t });
      assert.deepEqual(await fuseMountsUnder(kubelet), []);
    });
  },
});
