/**
 * Load on a real `s3csi node --controller` (process mounter, real FUSE,
 * real MinIO), as a busy node sees it: many calls at once, on many volumes
 * and on the same names. What must hold is counted, not timed: every call
 * succeeds (or fails with the code the CSI spec gives concurrent calls on
 * one name, and then succeeds on retry), the mount table and the process
 * table end as they began, and the node holds no more fds than before.
 */
import assert from "node:assert/strict";
import { canMount } from "../mount/harness.ts";
import { mountCapability } from "../support/csi_client.ts";
import { fuseMountsUnder, listBucketNames, pids } from "../support/mod.ts";
import { publishReq, target, withNode } from "../support/node_env.ts";

/** Runs `tasks` with at most `limit` at once; their settled results, in order. */
async function pool<T>(limit: number, tasks: (() => Promise<T>)[]) {
  const results: PromiseSettledResult<T>[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]().then(
        (value) => ({ status: "fulfilled" as const, value }),
        (reason) => ({ status: "rejected" as const, reason }),
      );
    }
  }));
  return results;
}

async function fdCount(pid: number): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) n++;
  return n;
}

async function eventually(what: string, ms: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name:
    "load: 100 concurrent NodePublishVolume over 20 volumes x 5 targets, then 100 concurrent unpublishes: all succeed, no mount, server or fd left",
  ignore: !canMount,
  sanitizeResources: false,
  async fn() {
    await withNode(async ({ csi, s3, kubelet, stateRoot, driver }) => {
      const volumes = 20;
      const targets = 5;
      for (let v = 0; v < volumes; v++) await s3.createBucket(`load-${v}`);
      const [node] = await pids(driver.socket);
      assert.ok(node, "the node process");
      // One call first: the node's lazy parts (gRPC, S3 clients) are open before the count.
      const warm = target(kubelet, "warm", "pv-warm");
      await csi.call(
        "Node",
        "NodePublishVolume",
        publishReq("warm", { bucketName: "load-0" }, warm),
      );
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "warm", target_path: warm });
      await eventually(
        "the warm-up's server is gone",
        30_000,
        async () => (await pids(stateRoot)).length === 0,
      );
      const fdsBefore = await fdCount(node);

      const calls = [];
      for (let v = 0; v < volumes; v++) {
        for (let t = 0; t < targets; t++) {
          calls.push({ v, path: target(kubelet, `pod-${v}-${t}`, `pv-${v}`) });
        }
      }
      const published = await Promise.allSettled(
        calls.map(({ v, path }) =>
          csi.call(
            "Node",
            "NodePublishVolume",
            publishReq(`vol-${v}`, { bucketName: `load-${v}` }, path),
          )
        ),
      );
      const failed = published.filter((r) => r.status === "rejected");
      assert.deepEqual(failed.map((r) => String((r as PromiseRejectedResult).reason)), []);
      assert.equal((await pids(stateRoot)).length, volumes, "one mount server per volume");
      // Every target serves its volume's bucket.
      await s3.putObject("load-7", "probe", new TextEncoder().encode("7"));
      for (let t = 0; t < targets; t++) {
        assert.equal(
          await Deno.readTextFile(`${target(kubelet, `pod-7-${t}`, "pv-7")}/probe`),
          "7",
        );
      }

      const unpublished = await Promise.allSettled(
        calls.map(({ v, path }) =>
          csi.call("Node", "NodeUnpublishVolume", { volume_id: `vol-${v}`, target_path: path })
        ),
      );
      assert.deepEqual(
        unpublished.filter((r) => r.status === "rejected").map((r) =>
          String((r as PromiseRejectedResult).reason)
        ),
        [],
      );
      assert.deepEqual(await fuseMountsUnder(kubelet), [], "the mount table ends empty");
      await eventually(
        "every mount server has exited",
        30_000,
        async () => (await pids(stateRoot)).length === 0,
      );
      const fdsAfter = await fdCount(node);
      console.log(`node fds: ${fdsBefore} before, ${fdsAfter} after 100 publishes and unpublishes`);
      assert.ok(fdsAfter <= fdsBefore + 2, `no fd leak: ${fdsBefore} before, ${fdsAfter} after`);
    });
  },
});

Deno.test({
  name:
    "load: 500 CreateVolume calls with 250 distinct names at concurrency 50 make exactly 250 buckets, one per name",
  ignore: !canMount,
  async fn() {
    await withNode(async ({ csi, minio }) => {
      const names = 250;
      const req = (i: number) => ({
        name: `pvc-load-${i % names}`,
        capacity_range: { required_bytes: 1 << 30 },
        volume_capabilities: [mountCapability()],
        parameters: {},
      });
      const call = (i: number) =>
        csi.call("Controller", "CreateVolume", req(i)) as Promise<
          { volume: { volume_id: string } }
        >;
      const results = await pool(50, Array.from({ length: 2 * names }, (_, i) => () => call(i)));
      // A call that met another on the same name may be ABORTED (the spec's code); it is retried.
      const ids = new Map<string, string>();
      let aborted = 0;
      for (let i = 0; i < results.length; i++) {
        let r = results[i];
        if (r.status === "rejected") {
          assert.equal((r.reason as { code?: number }).code, 10, `only ABORTED: ${r.reason}`);
          aborted++;
          r = { status: "fulfilled", value: await call(i) };
        }
        const name = req(i).name;
        const id = r.value.volume.volume_id;
        assert.equal(ids.get(name) ?? id, id, `one volume per name: ${name}`);
        ids.set(name, id);
      }
      const buckets = (await listBucketNames(minio)).filter((b) => b.startsWith("csi-s3-"));
      console.log(`500 CreateVolume: ${aborted} ABORTED and retried, ${buckets.length} buckets`);
      assert.equal(buckets.length, names, "exactly one bucket per name");
      assert.deepEqual(new Set(buckets), new Set(ids.values()));
    });
  },
});
