/**
 * A planned hand-over between driver versions (process mounter, real kernel
 * FUSE, real MinIO): a node of version "old" publishes a volume and stops;
 * a node of version "new" started with `--upgrade-mounts` takes the keeper
 * back and hands the live mount over to a server of its own version
 * (internal/mounter/process_mounter.ts `handOver`, internal/mount/run.ts).
 * The version is the `S3CSI_VERSION` flag, so one checkout plays both.
 *
 * Under a read load (a reader that keeps one handle open on a 64 MiB file,
 * and a loop of whole-file reads) no call fails at all, and a file being
 * written when the hand-over starts is waited for and completes whole.
 */
import assert from "node:assert/strict";
import { AwsObjectClient } from "../../internal/s3/aws_object_client.ts";
import { checkMount } from "../../internal/fuse/mod.ts";
import { CsiClient } from "../support/csi_client.ts";
import { logLines, type NodeProcess, spawnNode } from "../support/driver.ts";
import {
  detachFuseMountsUnder,
  fuseMountsUnder,
  listUploads,
  minioClientConfig,
  startMinio,
} from "../support/mod.ts";
import { PLUGIN, publishReq, serverPid, target } from "../support/node_env.ts";
import { canMount, errnoName, MIB } from "../mount/harness.ts";

const BIG = 64 * MIB;

/** Runs `step` in a loop until `stop()`; the errno name of every failed step. */
function loop(step: () => Promise<void>): { stop(): Promise<{ runs: number; errors: string[] }> } {
  let running = true;
  let runs = 0;
  const errors: string[] = [];
  const done = (async () => {
    while (running) {
      try {
        await step();
        runs++;
      } catch (err) {
        errors.push(err instanceof Deno.errors.BadResource ? String(err) : errnoName(err));
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { runs, errors };
    },
  };
}

/** Reads `path` with one open handle, over and over (seeking back at the end), checking every byte. */
function handleReader(path: string, expected: Uint8Array) {
  const buf = new Uint8Array(MIB);
  let f: Deno.FsFile | undefined;
  let offset = 0;
  const reader = loop(async () => {
    f ??= await Deno.open(path);
    const n = await f.read(buf);
    if (n === null) {
      offset = 0;
      await f.seek(0, Deno.SeekMode.Start);
      return;
    }
    const want = expected.subarray(offset, offset + n);
    if (!buf.subarray(0, n).every((b, i) => b === want[i])) {
      throw new Error(`wrong bytes at ${offset}`);
    }
    offset += n;
    await new Promise((r) => setTimeout(r, 5));
  });
  return {
    async stop() {
      const r = await reader.stop();
      f?.close();
      return r;
    },
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test({
  name:
    "upgrade: a node of a new version hands a live mount over from the old version's server under a read load, with no failed call and the open write completed",
  ignore: !canMount,
  async fn() {
    const minio = await startMinio();
    const s3 = new AwsObjectClient(minioClientConfig(minio));
    let node: NodeProcess | undefined;
    let kubelet = "";
    try {
      node = await spawnNode(minio, "upgrade-node", ["--controller"], undefined, {
        S3CSI_VERSION: "1.0.0-old",
      });
      kubelet = node.kubelet;
      const stateRoot = `${kubelet}/${PLUGIN}/state`;
      await s3.createBucket("upgrade");
      const big = new Uint8Array(BIG);
      for (let i = 0; i < BIG; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
      await s3.putObject("upgrade", "big.bin", big);
      await s3.putObject("upgrade", "small.txt", new TextEncoder().encode("steady"));
      const t = target(kubelet, "pod-upgrade");
      let csi = new CsiClient(node.socket);
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq("upgrade-vol", { bucketName: "upgrade" }, t),
      );
      csi.close();
      const old = await serverPid(stateRoot);

      const handle = handleReader(`${t}/big.bin`, big);
      const whole = loop(async () => {
        const text = await Deno.readTextFile(`${t}/small.txt`);
        if (text !== "steady") throw new Error(`wrong content "${text}"`);
        for await (const _ of Deno.readDir(t)) { /* list */ }
      });
      // A file being written across the start of the hand-over: closed 2 s later.
      const chunk = new Uint8Array(256 * 1024).fill(7);
      const writing = (async () => {
        const f = await Deno.open(`${t}/written.bin`, { write: true, create: true });
        for (let i = 0; i < 40; i++) {
          await f.write(chunk);
          await new Promise((r) => setTimeout(r, 50));
        }
        f.close();
      })();

      // The old node goes (its server goes on); the new version's node takes over and upgrades.
      await node.driver.stop();
      await Deno.remove(node.socket).catch(() => {});
      node = await spawnNode(minio, "upgrade-node", ["--controller", "--upgrade-mounts"], kubelet, {
        S3CSI_VERSION: "2.0.0-new",
      });
      await waitFor(
        () => Promise.resolve(node!.driver.output().includes("mount handed over")),
        "the hand-over to the new version",
      );
      await writing;
      await new Promise((r) => setTimeout(r, 500));
      const reads = await handle.stop();
      const wholes = await whole.stop();
      console.log(
        `upgrade: ${reads.runs} reads on one open handle, ${wholes.runs} read+list rounds; ` +
          `errors [${reads.errors}] [${wholes.errors}]`,
      );
      assert.deepEqual(reads.errors, [], "the open handle reads on, no call fails");
      assert.deepEqual(wholes.errors, [], "no read or listing fails");

      const successor = await serverPid(stateRoot);
      assert.notEqual(successor, old, "a new server serves");
      const environ = await Deno.readTextFile(`/proc/${successor}/environ`);
      assert.ok(environ.split("\0").includes("S3CSI_VERSION=2.0.0-new"), "of the new version");
      const upgrade = logLines(node.driver.output()).find((l) =>
        l.msg === "upgrading a mount: handing it over to this version"
      );
      assert.equal(upgrade?.from, "1.0.0-old");

      // The write that was open when the hand-over began was waited for: the object is whole.
      const head = await s3.headObject("upgrade", "written.bin");
      assert.equal(head?.size, 40 * chunk.byteLength);
      assert.deepEqual(await listUploads(minio, "upgrade"), []);
      await Deno.writeTextFile(`${t}/after.txt`, "new version");
      assert.equal(await Deno.readTextFile(`${t}/after.txt`), "new version");
      assert.equal(await checkMount(t), "ok");

      csi = new CsiClient(node.socket);
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "upgrade-vol", target_path: t });
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
