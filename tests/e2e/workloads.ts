/**
 * End-to-end scenarios of workloads on a provisioned volume: a file written
 * in a pod is an object in the bucket; workloads of one sharing key share a
 * Mountpoint Pod (a read-only one too, with EROFS on its side), another
 * fsGroup gets its own; deleting the workloads unmounts and deletes the
 * Mountpoint Pods and attachments; deleting claims removes an empty bucket
 * and keeps a non-empty one; a static PV serves an existing bucket, and a
 * read-only claim gives EROFS.
 *
 * @module
 */
import assert from "node:assert/strict";
import { readMountInfo } from "../../internal/fuse/mod.ts";
import { isS3Error } from "../../internal/s3/object_client.ts";
import { claim, DRIVER, type E2e, type Step, storageClass, workload } from "./harness.ts";

/** The node plugin's metrics port (deploy/kubernetes/base/node.yaml). */
const NODE_METRICS_PORT = 9810;

/** The shared volume of the workload scenarios (claim-a), filled in by the first step. */
export interface SharedVolume {
  claim: string;
  pv: string;
  bucket: string;
  /** What `writer` wrote to hello.txt. */
  content: string;
}

const READ_HELLO = `console.log("read " + Deno.readTextFileSync("/data/hello.txt").trim());`;
const TRY_WRITE = `
try { Deno.writeTextFileSync("/data/new-" + crypto.randomUUID(), "x"); console.log("wrote"); }
catch (e) { console.log("write " + e.message); }`;

export async function provisionAndShare(e: E2e, step: Step): Promise<SharedVolume> {
  const vol: SharedVolume = {
    claim: "claim-a",
    pv: "",
    bucket: "",
    content: `hello from e2e ${crypto.randomUUID()}\n`,
  };

  await step("a StorageClass and a claim make a bucket, and the claim is Bound", async () => {
    await e.apply(
      storageClass("e2e-dedicated", { bucketNaming: "dedicated" }, {
        mountOptions: ["allow-delete", "allow-overwrite"],
      }),
    );
    for (const name of [vol.claim, "claim-empty"]) await e.apply(claim(name, "e2e-dedicated"));
    Object.assign(vol, await e.bound(vol.claim));
    assert.match(vol.bucket, /^csi-s3-/);
    await e.s3.headBucket(vol.bucket);
  });

  await step("a workload runs; its file lands in the bucket through a Mountpoint Pod", async () => {
    const write = `Deno.writeTextFileSync("/data/hello.txt", ${JSON.stringify(vol.content)});`;
    await e.apply(workload(e.c, "writer", vol.claim, write));
    await e.running("writer");
    const got = await e.s3.getObject(vol.bucket, "hello.txt");
    assert.equal(new TextDecoder().decode(got.body), vol.content);
    const pods = await e.mountpointPods();
    assert.equal(pods.length, 1, `Mountpoint Pods: ${pods}`);
    const atts = await e.attachments();
    assert.equal(atts.length, 1);
    assert.equal(atts[0].spec.persistentVolumeName, vol.pv);
    assert.deepEqual(await e.workloadsByMountpointPod(), { [pods[0]]: [await e.uid("writer")] });
  });

  await step(
    "the node's metrics endpoint shows the Mountpoint Pod's figures for the volume",
    async () => {
      const ip = (await e.driverPods("node"))[0].status.podIP;
      const text = await (await fetch(`http://${ip}:${NODE_METRICS_PORT}/metrics`)).text();
      // Dedicated buckets: the bucket's name is the volume ID.
      const written = new RegExp(
        `^s3csi_fuse_written_bytes_total\\{volume_id="${vol.bucket}"\\} (\\d+)$`,
        "m",
      ).exec(text);
      assert.ok(written, `no written bytes for ${vol.bucket} in:\n${text.slice(0, 2000)}`);
      assert.equal(Number(written[1]), new TextEncoder().encode(vol.content).length);
      assert.match(text, new RegExp(`^s3csi_mounts_active\\{volume_id="${vol.bucket}"\\} 1$`, "m"));
      assert.match(text, /^s3csi_mounts_active 1$/m, "the node holds one mount");
    },
  );

  await step(
    "workloads of one key share the Mountpoint Pod, a read-only one too; another fsGroup gets its own",
    async () => {
      await e.apply(workload(e.c, "reader", vol.claim, READ_HELLO));
      await e.apply(
        workload(e.c, "reader-ro", vol.claim, READ_HELLO + TRY_WRITE, { readOnly: true }),
      );
      const want = new RegExp(`read ${vol.content.trim()}`);
      assert.match(await e.running("reader"), want);
      const ro = await e.running("reader-ro");
      assert.match(ro, want);
      assert.match(ro, /write Read-only file system \(os error 30\)/);
      const pods = await e.mountpointPods();
      assert.equal(pods.length, 1, `Mountpoint Pods: ${pods}`);
      const uids = await Promise.all(["writer", "reader", "reader-ro"].map((p) => e.uid(p)));
      assert.deepEqual(await e.workloadsByMountpointPod(), { [pods[0]]: uids.sort() });

      await e.apply(workload(e.c, "grouped", vol.claim, READ_HELLO, { fsGroup: 2000 }));
      assert.match(await e.running("grouped"), want);
      const after = await e.mountpointPods();
      assert.equal(after.length, 2, `Mountpoint Pods: ${after}`);
      const groups = (await e.attachments()).map((a) => a.spec.workloadFSGroup ?? "").sort();
      assert.deepEqual(groups, ["", "2000"]);
    },
  );
  return vol;
}

export async function cleanUp(e: E2e, step: Step, vol: SharedVolume): Promise<void> {
  await step(
    "deleting the workloads unmounts and deletes Mountpoint Pods and attachments",
    async () => {
      await e.kubectl([
        "-n",
        "default",
        "delete",
        "pods",
        "--all",
        "--wait=true",
        "--timeout=120s",
      ]);
      await e.noMountpointPods();
      // Neither the workloads' targets nor the node's sources are left mounted.
      const kubelet = `${e.c.env.S3CSI_KUBELET_DIR}/`;
      const left = (await readMountInfo())
        .filter((m) => m.fstype === "fuse.s3csi" && m.mountPoint.startsWith(kubelet));
      assert.deepEqual(left.map((m) => m.mountPoint), []);
    },
  );

  await step("deleting claims removes an empty bucket and keeps a non-empty one", async () => {
    const empty = await e.bound("claim-empty");
    await e.s3.headBucket(empty.bucket);
    await e.deleteAndWait("pvc", [vol.claim, "claim-empty"], "default");
    for (const name of [vol.pv, empty.pv]) await e.pvDeleted(name);
    await assert.rejects(e.s3.headBucket(empty.bucket), (err) => isS3Error(err));
    const kept = await e.s3.getObject(vol.bucket, "hello.txt");
    assert.equal(new TextDecoder().decode(kept.body), vol.content);
  });
}

export async function staticVolumes(e: E2e, step: Step): Promise<void> {
  await step("a static PV serves an existing bucket; a read-only claim gives EROFS", async () => {
    await e.s3.createBucket("e2e-static");
    await e.s3.putObject("e2e-static", "seed.txt", new TextEncoder().encode("seeded\n"));
    for (const [name, mode] of [["static", "ReadWriteMany"], ["static-ro", "ReadOnlyMany"]]) {
      await e.apply({
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: `e2e-${name}` },
        spec: {
          capacity: { storage: "1Gi" },
          accessModes: [mode],
          persistentVolumeReclaimPolicy: "Retain",
          storageClassName: "",
          mountOptions: ["allow-delete"],
          claimRef: { namespace: "default", name },
          csi: {
            driver: DRIVER,
            volumeHandle: `e2e-${name}`,
            volumeAttributes: { bucketName: "e2e-static" },
          },
        },
      });
      await e.apply({
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name, namespace: "default" },
        spec: {
          accessModes: [mode],
          storageClassName: "",
          volumeName: `e2e-${name}`,
          resources: { requests: { storage: "1Gi" } },
        },
      });
    }
    // A pod made before its claim binds may wait minutes for the scheduler to try again.
    for (const name of ["static", "static-ro"]) await e.bound(name);
    const script = `console.log("read " + Deno.readTextFileSync("/data/seed.txt").trim());
${TRY_WRITE}`;
    await e.apply(workload(e.c, "static-rw", "static", script));
    const rw = await e.running("static-rw");
    assert.match(rw, /read seeded/);
    assert.match(rw, /^wrote$/m);
    const listed = await e.s3.listObjects("e2e-static", { prefix: "new-" });
    assert.equal(listed.objects.length, 1);

    await e.apply(workload(e.c, "static-ro", "static-ro", script, { readOnly: true }));
    const ro = await e.running("static-ro");
    assert.match(ro, /read seeded/);
    assert.match(ro, /write Read-only file system \(os error 30\)/);
  });
}
